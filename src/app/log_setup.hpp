// The broker's logging, set from the `log {}` section: level and destinations at start, the
// level again on reload. Main thread only (the logger itself is safe from any thread).
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "config/config.hpp"

namespace harbor::app {

// Start: destinations (log.to, log.dir, log.file, log.rotation) and level. An error names
// the file, line and key (a log directory that cannot be written, say).
tl::expected<void, std::string> setup_logging(const config::Config& cfg);

// Reload: applies the reloadable log keys of `cfg` (log.level).
void reload_logging(const config::Config& cfg);

// "info to console" — for the start banner.
std::string describe_logging(const config::Config& cfg);

}  // namespace harbor::app
