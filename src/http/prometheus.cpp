// GET /api/v4/prometheus and /metrics: the counters in Prometheus' text exposition format
// (0.0.4). NanoMQ's metric names first, then ours (harbormq_*).
#include <cstdio>

#include "http/resources.hpp"

namespace harbor::http {
namespace {

void metric(std::string& out, const char* name, const char* type, const char* help,
            const std::string& value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += value;
  out += '\n';
}

void metric(std::string& out, const char* name, const char* type, const char* help,
            uint64_t value) {
  metric(out, name, type, help, std::to_string(value));
}

}  // namespace

std::string prometheus_text(const ProcessInfo& p, const Counters& c) {
  std::string out;
  metric(out, "nanomq_connections_count", "gauge", "Clients connected now.", c.connections);
  metric(out, "nanomq_sessions_count", "gauge", "Sessions, online and offline.", c.sessions);
  metric(out, "nanomq_subscribers_count", "gauge", "Subscriptions.", c.subscriptions);
  metric(out, "nanomq_messages_received", "counter", "PUBLISH messages received from clients.",
         c.messages_in);
  metric(out, "nanomq_messages_sent", "counter", "PUBLISH messages sent to clients.",
         c.messages_out);
  metric(out, "nanomq_messages_dropped", "counter", "Messages dropped, every reason.", c.dropped());
  metric(out, "nanomq_memory_usage", "gauge", "Resident memory of the process (bytes).",
         p.memory_bytes);
  char cpu[32];
  std::snprintf(cpu, sizeof cpu, "%.2f", p.cpu_percent);
  metric(out, "nanomq_cpu_usage", "gauge", "CPU time over wall time since start (percent).",
         std::string(cpu));
  metric(out, "harbormq_sockets_open", "gauge", "Client sockets accepted and not closed.",
         static_cast<uint64_t>(c.sockets_open < 0 ? 0 : c.sockets_open));
  metric(out, "harbormq_retained_messages", "gauge", "Retained messages stored.", c.retained);
  metric(out, "harbormq_uptime_seconds", "gauge", "Seconds since the broker started.",
         static_cast<uint64_t>(p.uptime_ms / 1000));
  // One counter family per drop reason.
  out +=
      "# HELP harbormq_messages_dropped_total Messages dropped, by reason.\n"
      "# TYPE harbormq_messages_dropped_total counter\n";
  const std::pair<const char*, uint64_t> reasons[] = {{"queue_full", c.dropped_queue_full},
                                                      {"qos0_slow", c.dropped_qos0_slow},
                                                      {"expired", c.dropped_expired},
                                                      {"too_large", c.dropped_too_large}};
  for (const auto& [reason, n] : reasons) {
    out += "harbormq_messages_dropped_total{reason=\"";
    out += reason;
    out += "\"} " + std::to_string(n) + "\n";
  }
  metric(out, "harbormq_messages_refused_by_store_total", "counter",
         "QoS 1/2 messages the store could not take.", c.refused_store);
  metric(out, "harbormq_messages_no_subscribers_total", "counter",
         "Accepted messages that matched no subscription.", c.no_subscribers);
  metric(out, "harbormq_messages_queued_total", "counter",
         "Deliveries that waited in a session queue.", c.queued);
  metric(out, "harbormq_connections_refused_total", "counter",
         "Sockets closed over mqtt.max_connections.", c.refused_max_connections);
  metric(out, "harbormq_connections_fd_limit_total", "counter",
         "Sockets closed at accept while out of file descriptors.", c.refused_fd_limit);
  metric(out, "harbormq_auth_refused_total", "counter", "CONNECTs refused by auth.",
         c.auth_refused);
  metric(out, "harbormq_acl_denied_total", "counter", "Operations denied by the ACL.",
         c.acl_denied);
  return out;
}

}  // namespace harbor::http
