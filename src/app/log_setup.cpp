#include "app/log_setup.hpp"

#include "runtime/log.hpp"

namespace harbor::app {

tl::expected<void, std::string> setup_logging(const config::Config& cfg) {
  reload_logging(cfg);
  return {};
}

void reload_logging(const config::Config& cfg) {
  runtime::LogLevel level;
  if (runtime::parse_log_level(cfg.log.level, level)) runtime::set_log_level(level);
}

std::string describe_logging(const config::Config& cfg) {
  std::string out = cfg.log.level + " to";
  for (const auto& to : cfg.log.to) out += " " + to;
  return out;
}

}  // namespace harbor::app
