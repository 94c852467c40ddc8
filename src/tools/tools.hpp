// Entry point of the client tools: `harbormq pub | sub | conn | bench pub|sub|conn`.
// Called once by src/app/main.cpp on the main thread before CLI11 parses the command line.
#pragma once

namespace CLI {
class App;
}

namespace harbor::tools {

// Registers the subcommands on `app`. The callback of the subcommand that runs stores the
// process exit code (see tools/exit_codes.hpp) in *exit_code.
void add_tool_commands(CLI::App& app, int* exit_code);

}  // namespace harbor::tools
