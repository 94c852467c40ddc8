#include "app/service_notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <string>

namespace harbor::app {

namespace {

// sd_notify() itself returns 0 without NOTIFY_SOCKET; checking first also skips building the
// message. unset_environment = 0: later notifications must still find the socket.
void send(const std::string& state) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  sd_notify(0, state.c_str());
}

// One STATUS= line: the protocol separates assignments by newlines.
std::string status_line(std::string_view status) {
  std::string line = "STATUS=";
  line.reserve(line.size() + status.size());
  for (char c : status) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line;
}

}  // namespace

void notify_ready(std::string_view status) { send("READY=1\n" + status_line(status)); }

void notify_reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
              static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_status(std::string_view status) { send(status_line(status)); }

void notify_stopping() { send("STOPPING=1"); }

}  // namespace harbor::app
