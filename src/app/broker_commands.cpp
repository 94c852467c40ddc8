#include "app/broker_commands.hpp"

#include <memory>

#include "app/broker_control.hpp"
#include "app/broker_process.hpp"

namespace harbor::app {

namespace {

void add_common(CLI::App* sub, StartArgs& a) {
  sub->add_option("--conf,-c", a.conf, "HOCON config file (NanoMQ nanomq.conf keys); default: built-in defaults")
      ->check(CLI::ExistingFile);
  sub->add_option("--set", a.sets, "Override a key: --set mqtt.max_inflight_window=100 (repeatable)");
  sub->add_option("--pid-file", a.pid_file, "Pid file (default: system.pid_file)");
}

}  // namespace

void add_broker_commands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StartArgs>();
  auto* start = app.add_subcommand("start", "Run the broker in the foreground (logs to stderr)");
  add_common(start, *args);
  start->callback([args, exit_code] { *exit_code = run_broker(*args); });

  auto* stop = app.add_subcommand(
      "stop", "Stop the running broker (SIGTERM to the process holding its pid file's lock)");
  add_common(stop, *args);
  stop->callback([args, exit_code] { *exit_code = stop_broker(*args, false); });

  auto* restart = app.add_subcommand(
      "restart",
      "Stop the running broker and start it again in the foreground with its own command line, "
      "working directory and HARBORMQ_* environment (options here only locate it)");
  add_common(restart, *args);
  restart->callback([args, exit_code] { *exit_code = restart_broker(*args); });

  auto* reload = app.add_subcommand(
      "reload",
      "Make the running broker re-read its file and apply the reloadable keys; prints what was "
      "applied, exits 1 with the error when the file is invalid");
  add_common(reload, *args);
  reload->callback([args, exit_code] { *exit_code = reload_broker(*args); });
}

}  // namespace harbor::app
