// The running broker process (`harbormq start`): pid-file lock, server, signals, reload.
// Main thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "config/config.hpp"

namespace harbor::app {

// How a broker command was invoked: the file, the --set overrides, an explicit pid file.
struct StartArgs {
  std::string conf;
  std::vector<std::string> sets;
  std::string pid_file;
};

// Loads the configuration the way `start` does (file, environment, --set). Warnings are
// logged, or handed to `warnings` when given (start logs them once its log is set up).
// The error is "FILE:LINE: KEY: message".
tl::expected<std::shared_ptr<const config::Config>, std::string> load_config(
    const StartArgs& a, std::vector<std::string>* warnings = nullptr);

// The pid file a command uses: --pid-file, else system.pid_file of `cfg`, else the default.
std::string pid_file_of(const StartArgs& a, const config::Config* cfg);

// Where the broker answers a reload request: next to its pid file. Its first line is
// "token N" (the value sent with SIGHUP through sigqueue, 0 for a plain kill -HUP), the
// second "ok" or "error", then the lines to show.
std::string reload_status_path(const std::string& pid_file);

// Runs the broker in the foreground until SIGTERM/SIGINT; the process exit code.
// 0 after a clean stop; 1 when it cannot start; 2 for a bad or refused configuration.
int run_broker(const StartArgs& a);

}  // namespace harbor::app
