// SIGINT/SIGTERM handling for the tools: the first signal asks the running tool to stop
// and report; a second one terminates the process. Main thread installs; any thread reads.
#pragma once

namespace harbor::tools {

void install_stop_signals();
bool stop_requested();

}  // namespace harbor::tools
