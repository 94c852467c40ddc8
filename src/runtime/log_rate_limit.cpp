#include "runtime/log_rate_limit.hpp"

#include <memory>
#include <unordered_map>

namespace harbor::runtime {

namespace {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::optional<uint64_t> RateLimiter::admit(int64_t now_ms) {
  if (started_ && now_ms - last_ms_ < interval_ms_) {
    ++held_back_;
    return std::nullopt;
  }
  started_ = true;
  last_ms_ = now_ms;
  uint64_t held = held_back_;
  held_back_ = 0;
  return held;
}

std::string with_held_back(std::string_view text, uint64_t held_back, int64_t elapsed_ms) {
  std::string out(text);
  if (held_back == 0) return out;
  int64_t seconds = (elapsed_ms + 500) / 1000;
  out += " (" + std::to_string(held_back) + " more in the last " +
         std::to_string(seconds < 1 ? 1 : seconds) + " s)";
  return out;
}

bool RateLimitedLog::log(std::string_view text) {
  if (!log_enabled(level_)) return false;
  return log(text, steady_now_ms());
}

bool RateLimitedLog::log(std::string_view text, int64_t now_ms) {
  if (!log_enabled(level_)) return false;
  std::string line;
  {
    std::lock_guard lock(mutex_);
    auto held = limiter_.admit(now_ms);
    if (!held) return false;
    line = with_held_back(text, *held, now_ms - last_logged_ms_);
    last_logged_ms_ = now_ms;
  }
  log_line(level_, line);
  return true;
}

bool log_limited(LogLevel level, std::string_view key, std::string_view text,
                 std::chrono::milliseconds interval) {
  if (!log_enabled(level)) return false;
  static std::mutex mutex;
  static auto* limits = new std::unordered_map<std::string, std::unique_ptr<RateLimitedLog>>();
  RateLimitedLog* limit = nullptr;
  {
    std::lock_guard lock(mutex);
    std::string k(key);
    if (limits->size() >= kMaxLimitedKeys && !limits->count(k)) k = "(other)";
    auto& slot = (*limits)[k];
    if (!slot) slot = std::make_unique<RateLimitedLog>(level, interval);
    limit = slot.get();
  }
  return limit->log(text);
}

}  // namespace harbor::runtime
