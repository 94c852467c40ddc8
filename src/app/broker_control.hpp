// Commands that act on a running broker through its pid file: stop, reload, restart.
// A broker is signalled only when it holds the lock on its pid file (FileLock): a stale
// file naming some other process never gets that process signalled. Main thread only.
#pragma once

#include "app/broker_process.hpp"

namespace harbor::app {

// SIGTERM, then waits until the broker has released its pid file. 0 stopped; 1 none
// running (unless quiet_if_missing) or it did not stop in time.
int stop_broker(const StartArgs& a, bool quiet_if_missing);

// SIGHUP with a token (sigqueue), then waits for the broker's answer and prints it:
// 0 applied, 1 refused (the broker's error naming file, line and key) or no answer.
int reload_broker(const StartArgs& a);

// Stops the running broker and starts it again in the foreground with its own command line,
// working directory and HARBORMQ_* environment (read from /proc before stopping it), so
// the listeners and data directory stay what they were. With no broker running, starts
// one from `a`. Returns only on failure, or with run_broker's code.
int restart_broker(const StartArgs& a);

}  // namespace harbor::app
