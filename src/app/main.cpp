// harbormq: the broker (start/stop/restart/reload) and the client tools (pub/sub/conn/bench)
// in one binary. Startup failures are reported here, once, with what to do.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "app/broker_commands.hpp"
#include "tools/tools.hpp"

int main(int argc, char** argv) {
  CLI::App app{"HarborMQ: a durable MQTT 3.1.1 / 5.0 broker for the edge"};
  app.require_subcommand(1);
  int exit_code = 0;
  harbor::app::add_broker_commands(app, &exit_code);
  harbor::tools::add_tool_commands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // Threads and loops are stopped by now; skip static destructors of half-torn state.
  _exit(exit_code);
}
