// Minimal thread-safe logger to stderr: one line per call, with time and level.
// Any thread. The level is set once at startup from log.level.
#pragma once

#include <string>
#include <string_view>

namespace harbor::runtime {

enum class LogLevel : int { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_log_level(LogLevel level);
bool parse_log_level(std::string_view text, LogLevel& out);
void log_line(LogLevel level, std::string_view text);

inline void log_debug(std::string_view t) { log_line(LogLevel::Debug, t); }
inline void log_info(std::string_view t) { log_line(LogLevel::Info, t); }
inline void log_warn(std::string_view t) { log_line(LogLevel::Warn, t); }
inline void log_error(std::string_view t) { log_line(LogLevel::Error, t); }

}  // namespace harbor::runtime
