#include "tools/stop_signal.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace harbor::tools {

namespace {
std::atomic<int> g_signals{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}
}  // namespace

void install_stop_signals() {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking waits return EINTR and notice the request
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() { return g_signals.load(std::memory_order_relaxed) > 0; }

}  // namespace harbor::tools
