// The process's logger, on spdlog: one line per call, with time and level, to the outputs of
// `log.to` (console = stderr, a size-rotated file, syslog).
//
// Any thread may log. Lines pass through a bounded queue to one writer thread, so a shard never
// waits on a disk or a full stderr pipe: when the queue is full the oldest queued line is
// dropped and counted (log_lines_dropped(); the writer notes drops in the log, rate-limited).
// Lines from the control thread (the one that called open_log_outputs, i.e. main) at info and
// above are written through before log_line returns, with every line queued before them, so the
// start banner and the shutdown summary are on disk even when the process ends with _exit().
// The writer flushes its outputs after every line at warn or above, and whenever the queue
// runs empty (so a burst costs one flush, and a quiet broker's file is always current).
//
// Levels: trace < debug < info < warn < error, NanoMQ's log.level ("fatal" is read as error).
// Broker code logs with ints through BrokerContext::log: 0 debug, 1 info, 2 warn, 3 error,
// which are the LogLevel values below (trace is -1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace harbor::runtime {

enum class LogLevel : int { Trace = -1, Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Least severe level written; a reload may change it while other threads log.
void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);
// trace, debug, info, warn (warning), error (fatal).
bool parse_log_level(std::string_view text, LogLevel& out);
std::string_view to_string(LogLevel level);

void log_line(LogLevel level, std::string_view text);

inline void log_trace(std::string_view t) { log_line(LogLevel::Trace, t); }
inline void log_debug(std::string_view t) { log_line(LogLevel::Debug, t); }
inline void log_info(std::string_view t) { log_line(LogLevel::Info, t); }
inline void log_warn(std::string_view t) { log_line(LogLevel::Warn, t); }
inline void log_error(std::string_view t) { log_line(LogLevel::Error, t); }

struct LogOutputs {
  bool console = true;       // stderr
  bool syslog = false;       // ident "harbormq", facility user
  std::string file;          // path of the log file; empty = no file
  uint64_t rotate_bytes = 10u * 1024 * 1024;  // a file past this size is rotated
  uint32_t rotate_count = 5;  // rotated files kept: NAME.1.EXT (newest) … NAME.N.EXT
  // Lines waiting for the writer before the oldest are dropped (~400 bytes each, allocated
  // up front).
  uint32_t queue_lines = 2048;
};

// Replaces the outputs (start; tests). Until the first call, lines go to stderr directly.
// Fails, with the output left as it was, when the file cannot be opened for appending: the
// message names the file and the system's reason. The calling thread becomes the control
// thread. Not concurrently with itself or flush_logs().
tl::expected<void, std::string> open_log_outputs(const LogOutputs& outputs);

// Writes every line queued so far and flushes the outputs; waits at most `timeout_ms`.
// Call before _exit().
void flush_logs(int timeout_ms = 2000);

// Lines dropped because the queue was full, since the outputs were opened.
uint64_t log_lines_dropped();

}  // namespace harbor::runtime
