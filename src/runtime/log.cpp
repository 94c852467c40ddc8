#include "runtime/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/async_logger.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include "runtime/log_rate_limit.hpp"

namespace harbor::runtime {

namespace {

constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error"};
constexpr const char* kPattern = "%Y-%m-%d %H:%M:%S.%e [%*] %v";
constexpr int64_t kDropNoteIntervalMs = 10'000;

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};

int clamp_level(LogLevel level) {
  int index = static_cast<int>(level);
  if (index < static_cast<int>(LogLevel::Trace)) return static_cast<int>(LogLevel::Trace);
  if (index > static_cast<int>(LogLevel::Error)) return static_cast<int>(LogLevel::Error);
  return index;
}

spdlog::level::level_enum to_spdlog(int level) {
  switch (level) {
    case -1: return spdlog::level::trace;
    case 0: return spdlog::level::debug;
    case 1: return spdlog::level::info;
    case 2: return spdlog::level::warn;
    default: return spdlog::level::err;
  }
}

std::string_view name_of(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return kNames[0];
    case spdlog::level::debug: return kNames[1];
    case spdlog::level::info: return kNames[2];
    case spdlog::level::warn: return kNames[3];
    default: return kNames[4];
  }
}

// "%*": our level names ("warn", not spdlog's "warning"), as the logger always wrote them.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    auto name = name_of(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<LevelFlag>('*').set_pattern(kPattern);
  return f;
}

// Last in each logger's sink list, so it sees a line after every real output wrote it:
// counts written lines for drain waits, flushes the outputs when the queue is empty, and
// notes dropped lines (writer thread only).
class DrainSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit DrainSink(std::vector<spdlog::sink_ptr> outputs)
      : outputs_(std::move(outputs)), drop_notes_(kDropNoteIntervalMs) {}

  void bind(spdlog::details::thread_pool* pool) { pool_ = pool; }

  // Waits until at least `target` lines were written or dropped.
  bool wait_done(uint64_t target, int timeout_ms) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return written_ + dropped() >= target; });
  }

  uint64_t dropped() const { return pool_ ? pool_->overrun_counter() : 0; }

 protected:
  void sink_it_(const spdlog::details::log_msg&) override {
    note_drops();
    // Idle: make what was written visible (a burst is flushed once, at its end).
    if (pool_ && pool_->queue_size() == 0) flush_outputs();
    {
      std::lock_guard lock(mutex_);
      ++written_;
    }
    cv_.notify_all();
  }
  void flush_() override {}

 private:
  void flush_outputs() {
    for (auto& out : outputs_) {
      try {
        out->flush();
      } catch (const std::exception&) {
        // Reported through the logger's error handler on the next write.
      }
    }
  }

  void note_drops() {
    uint64_t now_dropped = dropped();
    if (now_dropped == noted_dropped_) return;
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    if (!drop_notes_.admit(now_ms)) return;
    std::string text = "log: " + std::to_string(now_dropped - noted_dropped_) +
                       " lines dropped (the log queue was full; " +
                       std::to_string(now_dropped) + " in all)";
    noted_dropped_ = now_dropped;
    spdlog::details::log_msg note("harbormq", spdlog::level::warn,
                                  spdlog::string_view_t(text.data(), text.size()));
    for (auto& out : outputs_) {
      try {
        out->log(note);
      } catch (const std::exception&) {
        // An output that cannot write reports through the logger's error handler already.
      }
    }
  }

  std::vector<spdlog::sink_ptr> outputs_;
  spdlog::details::thread_pool* pool_ = nullptr;
  RateLimiter drop_notes_;
  uint64_t noted_dropped_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t written_ = 0;
};

struct Backend {
  std::vector<spdlog::sink_ptr> outputs;
  std::shared_ptr<DrainSink> drain;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
  std::atomic<uint64_t> posted{0};
};

// Replaced only by open_log_outputs; loggers of earlier backends stay usable until released.
std::atomic<std::shared_ptr<Backend>> g_backend;
std::atomic<std::thread::id> g_control{};
std::mutex g_stderr_mutex;

// Before open_log_outputs: straight to stderr, one fprintf per line.
void write_direct(int level, std::string_view text) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tm_buf{};
  localtime_r(&ts.tv_sec, &tm_buf);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm_buf);
  std::lock_guard lock(g_stderr_mutex);
  std::fprintf(stderr, "%s.%03ld [%s] %.*s\n", stamp, ts.tv_nsec / 1'000'000,
               std::string(kNames[level + 1]).c_str(), static_cast<int>(text.size()),
               text.data());
}

void drain(Backend& b, int timeout_ms) {
  b.drain->wait_done(b.posted.load(std::memory_order_acquire), timeout_ms);
  for (auto& out : b.outputs) {
    try {
      out->flush();
    } catch (const std::exception&) {
      // Reported by the writer's error handler when it next writes.
    }
  }
}

// Checks that `path` can be opened for appending, creating missing directories.
tl::expected<void, std::string> check_writable(const std::string& path) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    return tl::unexpected("cannot open the log file \"" + path + "\" for writing: " +
                          std::strerror(err));
  }
  ::close(fd);
  return {};
}

}  // namespace

void set_log_level(LogLevel level) { g_level.store(clamp_level(level), std::memory_order_relaxed); }

LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "trace") out = LogLevel::Trace;
  else if (text == "debug") out = LogLevel::Debug;
  else if (text == "info") out = LogLevel::Info;
  else if (text == "warn" || text == "warning") out = LogLevel::Warn;
  else if (text == "error" || text == "fatal") out = LogLevel::Error;
  else return false;
  return true;
}

std::string_view to_string(LogLevel level) { return kNames[clamp_level(level) + 1]; }

void log_line(LogLevel level, std::string_view text) {
  int index = clamp_level(level);
  if (index < g_level.load(std::memory_order_relaxed)) return;
  auto backend = g_backend.load(std::memory_order_acquire);
  if (!backend) {
    write_direct(index, text);
    return;
  }
  backend->posted.fetch_add(1, std::memory_order_acq_rel);
  backend->logger->log(to_spdlog(index), spdlog::string_view_t(text.data(), text.size()));
  // The control thread's lines (start, reload, shutdown) are few and must survive _exit().
  if (index >= static_cast<int>(LogLevel::Info) &&
      std::this_thread::get_id() == g_control.load(std::memory_order_relaxed)) {
    drain(*backend, 1000);
  }
}

tl::expected<void, std::string> open_log_outputs(const LogOutputs& o) {
  auto b = std::make_shared<Backend>();
  try {
    if (o.console) b->outputs.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    if (!o.file.empty()) {
      if (auto ok = check_writable(o.file); !ok) return tl::unexpected(ok.error());
      b->outputs.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          o.file, static_cast<size_t>(o.rotate_bytes), o.rotate_count));
    }
    // Formatting is ours (syslog adds its own time and ident).
    if (o.syslog) {
      b->outputs.push_back(std::make_shared<spdlog::sinks::syslog_sink_mt>(
          "harbormq", LOG_PID, LOG_USER, /*enable_formatting=*/false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return tl::unexpected(std::string(e.what()));
  }
  for (auto& out : b->outputs) {
    out->set_formatter(make_formatter());
    out->set_level(spdlog::level::trace);
  }
  b->drain = std::make_shared<DrainSink>(b->outputs);
  b->pool = std::make_shared<spdlog::details::thread_pool>(o.queue_lines ? o.queue_lines : 1, 1);
  b->drain->bind(b->pool.get());
  std::vector<spdlog::sink_ptr> sinks = b->outputs;
  sinks.push_back(b->drain);
  b->logger = std::make_shared<spdlog::async_logger>(
      "harbormq", sinks.begin(), sinks.end(), b->pool,
      spdlog::async_overflow_policy::overrun_oldest);
  b->logger->set_level(spdlog::level::trace);
  b->logger->flush_on(spdlog::level::warn);

  g_control.store(std::this_thread::get_id(), std::memory_order_relaxed);
  auto old = g_backend.exchange(b, std::memory_order_acq_rel);
  if (old) drain(*old, 2000);
  return {};
}

void flush_logs(int timeout_ms) {
  if (auto backend = g_backend.load(std::memory_order_acquire)) drain(*backend, timeout_ms);
  std::fflush(stderr);
}

uint64_t log_lines_dropped() {
  auto backend = g_backend.load(std::memory_order_acquire);
  return backend ? backend->drain->dropped() : 0;
}

}  // namespace harbor::runtime
