// The broker's subcommands: start, stop, restart, reload (like `nanomq start|stop|...`).
// Main thread only.
#pragma once

#include <CLI/CLI.hpp>

namespace harbor::app {

void add_broker_commands(CLI::App& app, int* exit_code);

}  // namespace harbor::app
