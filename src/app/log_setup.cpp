#include "app/log_setup.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "runtime/log.hpp"

namespace harbor::app {

namespace {

bool has(const config::LogSettings& log, std::string_view to) {
  return std::find(log.to.begin(), log.to.end(), to) != log.to.end();
}

std::string log_file_path(const config::LogSettings& log) {
  if (!log.file.empty() && log.file.front() == '/') return log.file;
  return (std::filesystem::path(log.dir) / log.file).string();
}

// "10MB" for the banner; sizes are 1024-based like the config's.
std::string show_size(uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KB", "MB", "GB"};
  int unit = 0;
  while (unit < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + kUnits[unit];
}

}  // namespace

tl::expected<void, std::string> setup_logging(const config::Config& cfg) {
  const auto& log = cfg.log;
  runtime::LogOutputs outputs;
  outputs.console = has(log, "console");
  outputs.syslog = has(log, "syslog");
  if (has(log, "file")) outputs.file = log_file_path(log);
  outputs.rotate_bytes = log.rotation_size;
  outputs.rotate_count = log.rotation_count;
  reload_logging(cfg);
  if (auto opened = runtime::open_log_outputs(outputs); !opened) {
    // The directory is the usual culprit; name the file key when the directory is usable.
    std::error_code ec;
    const bool file_at_fault = (!log.file.empty() && log.file.front() == '/') ||
                               (std::filesystem::is_directory(log.dir, ec) &&
                                ::access(log.dir.c_str(), W_OK | X_OK) == 0);
    return tl::unexpected(cfg.key_error(file_at_fault ? "log.file" : "log.dir", opened.error()));
  }
  return {};
}

void reload_logging(const config::Config& cfg) {
  runtime::LogLevel level;
  if (runtime::parse_log_level(cfg.log.level, level)) runtime::set_log_level(level);
}

std::string describe_logging(const config::Config& cfg) {
  const auto& log = cfg.log;
  std::string out = log.level + " to ";
  std::string where;
  auto add = [&](const std::string& part) { where += (where.empty() ? "" : ", ") + part; };
  if (has(log, "console")) add("console");
  if (has(log, "file")) {
    add(log_file_path(log) + " (rotated at " + show_size(log.rotation_size) + ", " +
        std::to_string(log.rotation_count) + " kept)");
  }
  if (has(log, "syslog")) add("syslog");
  return out + (where.empty() ? std::string("nowhere") : where);
}

}  // namespace harbor::app
