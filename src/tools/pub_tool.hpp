// The pub and sub tools. Main thread; each returns the process exit code (exit_codes.hpp)
// after printing any error to stderr.
#pragma once

#include "tools/options.hpp"

namespace harbor::tools {

int run_pub(PubOptions& o);
int run_sub(SubOptions& o);

}  // namespace harbor::tools
