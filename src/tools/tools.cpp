#include "tools/tools.hpp"

#include <CLI/CLI.hpp>
#include <memory>

#include "tools/bench.hpp"
#include "tools/options.hpp"
#include "tools/pub_tool.hpp"

namespace harbor::tools {

namespace {
void add_bench_command(CLI::App& parent, const char* name, const char* help, BenchMode mode, int* exit_code) {
  auto opts = std::make_shared<BenchOptions>();
  opts->mode = mode;
  auto* cmd = parent.add_subcommand(name, help);
  add_bench_options(*cmd, *opts);
  cmd->callback([opts, exit_code] { *exit_code = run_bench(*opts); });
}
}  // namespace

void add_tool_commands(CLI::App& app, int* exit_code) {
  auto pub = std::make_shared<PubOptions>();
  auto* pub_cmd = app.add_subcommand("pub", "Publish a message (like mosquitto_pub)");
  add_pub_options(*pub_cmd, *pub);
  pub_cmd->callback([pub, exit_code] { *exit_code = run_pub(*pub); });

  auto sub = std::make_shared<SubOptions>();
  auto* sub_cmd = app.add_subcommand("sub", "Subscribe and print messages (like mosquitto_sub)");
  add_sub_options(*sub_cmd, *sub);
  sub_cmd->callback([sub, exit_code] { *exit_code = run_sub(*sub); });

  add_bench_command(app, "conn", "Open N connections at a rate, hold them, report connect rate and times",
                    BenchMode::Conn, exit_code);

  auto* bench = app.add_subcommand("bench", "Benchmark: many clients per thread (pub, sub, conn)");
  bench->set_help_flag("--help", "Print this help message and exit");
  bench->require_subcommand(1);
  add_bench_command(*bench, "pub", "Publishers with stamped payloads", BenchMode::Pub, exit_code);
  add_bench_command(*bench, "sub", "Subscribers measuring latency, loss, duplicates and order", BenchMode::Sub,
                    exit_code);
  add_bench_command(*bench, "conn", "Connections: connect rate and time to CONNACK", BenchMode::Conn, exit_code);
}

}  // namespace harbor::tools
