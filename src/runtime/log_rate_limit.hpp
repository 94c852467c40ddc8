// Rate limiting for lines that can repeat per connection or per packet (a read error, a
// refused accept): the first occurrence is logged at once, then at most one line per interval,
// which tells how many were held back since the previous one.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/log.hpp"

namespace harbor::runtime {

// The decision alone, with time passed in (steady ms). One owner; not thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t interval_ms) : interval_ms_(interval_ms) {}

  // Admitted: the number of occurrences held back since the last admitted one (0 for the
  // first). Held back: nullopt, and the occurrence is counted.
  std::optional<uint64_t> admit(int64_t now_ms);
  // Occurrences held back since the last admitted one.
  uint64_t held_back() const { return held_back_; }
  int64_t interval_ms() const { return interval_ms_; }

 private:
  int64_t interval_ms_;
  bool started_ = false;
  int64_t last_ms_ = 0;
  uint64_t held_back_ = 0;
};

// `text` plus " (N more in the last S s)" when N > 0: N held back in the S seconds since the
// previous line.
std::string with_held_back(std::string_view text, uint64_t held_back, int64_t elapsed_ms);

// A RateLimiter in front of log_line. Any thread (a mutex, taken only when the level is on).
class RateLimitedLog {
 public:
  RateLimitedLog(LogLevel level, std::chrono::milliseconds interval)
      : level_(level), limiter_(interval.count()) {}

  // Returns whether a line was written (false: held back or the level is off).
  bool log(std::string_view text);
  bool log(std::string_view text, int64_t now_ms);

 private:
  LogLevel level_;
  std::mutex mutex_;
  RateLimiter limiter_;
  int64_t last_logged_ms_ = 0;
};

// One RateLimitedLog per `key` (a short constant naming the kind of event, "accept",
// "socket read"), created on first use; at most kMaxLimitedKeys keys, past that they share
// one (with the level of the first call). Any thread.
constexpr size_t kMaxLimitedKeys = 256;
bool log_limited(LogLevel level, std::string_view key, std::string_view text,
                 std::chrono::milliseconds interval = std::chrono::seconds(10));

}  // namespace harbor::runtime
