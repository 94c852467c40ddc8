// GET /api/v4/brokers, /nodes and /metrics: the one node this broker is, NanoMQ's shapes.
#include <cstdio>
#include <ctime>

#include "http/resources.hpp"

namespace harbor::http {

std::string uptime_text(int64_t uptime_ms) {
  int64_t s = uptime_ms / 1000;
  return std::to_string(s / 3600) + " Hours, " + std::to_string(s / 60 % 60) + " minutes, " +
         std::to_string(s % 60) + " seconds";
}

std::string datetime_text(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm local{};
  localtime_r(&t, &local);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

nlohmann::json brokers_body(const ProcessInfo& p) {
  nlohmann::json node = {{"datetime", datetime_text(p.now_unix_ms)},
                         {"node_status", "Running"},
                         {"sysdescr", "HarborMQ Broker"},
                         {"uptime", uptime_text(p.uptime_ms)},
                         {"version", p.version}};
  return {{"code", kSucceed}, {"data", nlohmann::json::array({std::move(node)})}};
}

nlohmann::json nodes_body(const ProcessInfo& p, const Counters& c) {
  nlohmann::json node = {{"connections", c.connections},
                         {"node_status", "Running"},
                         {"uptime", uptime_text(p.uptime_ms)},
                         {"version", p.version}};
  return {{"code", kSucceed}, {"data", nlohmann::json::array({std::move(node)})}};
}

nlohmann::json metrics_body(const ProcessInfo& p, const Counters& c) {
  char cpu[32];
  std::snprintf(cpu, sizeof cpu, "%.2f%%", p.cpu_percent);
  // NanoMQ's "metrics" holds one object per bridge; bridges are not shown here yet.
  return {{"code", kSucceed},
          {"metrics", nlohmann::json::array()},
          {"cpuinfo", cpu},
          {"memory", std::to_string(p.memory_bytes)},
          {"connections", c.connections}};
}

}  // namespace harbor::http
