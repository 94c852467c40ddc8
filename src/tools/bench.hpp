// `harbormq bench pub|sub|conn` and `harbormq conn`: many clients per thread on the epoll
// runtime. Main thread; returns the process exit code after printing the summary.
#pragma once

#include "tools/options.hpp"

namespace harbor::tools {

int run_bench(BenchOptions& o);

// Raises the soft RLIMIT_NOFILE to at least `wanted` (up to the hard limit).
// Returns the resulting soft limit.
uint64_t raise_fd_limit(uint64_t wanted);

}  // namespace harbor::tools
