// harbormq: the broker (start/stop/restart/reload) and the client tools (pub/sub/conn/bench)
// in one binary. Startup failures are reported here, once, with what to do.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "app/broker_commands.hpp"
#include "app/passwd_command.hpp"
#include "config/schema.hpp"
#include "runtime/log.hpp"
#include "tools/tools.hpp"

namespace {

// "statr" → "start": the closest subcommand name, for the unknown-command message.
std::string closest_command(const CLI::App& app, const std::string& word) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    size_t d = harbor::config::edit_distance(word, sub->get_name());
    if (d < best_distance) {
      best_distance = d;
      best = sub->get_name();
    }
  }
  return best_distance <= 2 ? best : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HarborMQ: a durable MQTT 3.1.1 / 5.0 broker for the edge"};
  app.set_version_flag("--version,-v", std::string("harbormq ") + HARBOR_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  harbor::app::add_broker_commands(app, &exit_code);
  harbor::tools::add_tool_commands(app, &exit_code);
  harbor::app::add_passwd_command(app, &exit_code);
  // An unknown first word is an unknown command, not "a subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    std::string word = argv[1];
    bool known = false;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || sub->check_name(word);
    }
    if (!known) {
      std::string near = closest_command(app, word);
      std::fprintf(stderr, "harbormq: unknown command \"%s\"%s\nRun with --help for more information.\n",
                   word.c_str(), near.empty() ? "" : ("; did you mean \"" + near + "\"?").c_str());
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every invalid option or value exits 1 (docs/benchmark.md).
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  harbor::runtime::flush_logs();
  std::fflush(stdout);
  std::fflush(stderr);
  // Threads and loops are stopped by now; skip static destructors of half-torn state.
  _exit(exit_code);
}
