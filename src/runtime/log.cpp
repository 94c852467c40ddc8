#include "runtime/log.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace harbor::runtime {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mutex;
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "trace" || text == "debug") out = LogLevel::Debug;
  else if (text == "info") out = LogLevel::Info;
  else if (text == "warn" || text == "warning") out = LogLevel::Warn;
  else if (text == "error" || text == "fatal") out = LogLevel::Error;
  else return false;
  return true;
}

void log_line(LogLevel level, std::string_view text) {
  int index = static_cast<int>(level);
  if (index < 0) index = 0;
  if (index > 3) index = 3;
  level = static_cast<LogLevel>(index);
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tm_buf{};
  localtime_r(&ts.tv_sec, &tm_buf);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm_buf);
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s.%03ld [%s] %.*s\n", stamp, ts.tv_nsec / 1'000'000,
               kNames[static_cast<int>(level)], static_cast<int>(text.size()), text.data());
}

}  // namespace harbor::runtime
