#include "tools/bench_report.hpp"

#include <cstdio>
#include <sstream>

namespace harbor::tools {

std::string format_count(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  int k = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it, ++k) {
    if (k && k % 3 == 0) out.push_back(',');
    out.push_back(*it);
  }
  return {out.rbegin(), out.rend()};
}

std::string format_duration_ns(uint64_t ns) {
  char buf[32];
  if (ns < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.0f us", static_cast<double>(ns) / 1e3);
  } else if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

StreamCounts total_streams(const BenchResult& r) {
  StreamCounts t;
  for (const auto& [id, c] : r.streams) t.add(c);
  return t;
}

namespace {
double per_second(uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0.0; }

void row(std::ostringstream& os, const char* name, const std::string& value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %-22s ", name);
  os << buf << value << '\n';
}

std::string rate_text(uint64_t n, double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s  (%.0f msg/s)", format_count(n).c_str(), per_second(n, seconds));
  return buf;
}

nlohmann::json histogram_json(const Histogram& h, double scale) {
  return {{"count", h.count()},
          {"min", static_cast<double>(h.min()) / scale},
          {"mean", h.mean() / scale},
          {"p50", static_cast<double>(h.percentile(0.50)) / scale},
          {"p90", static_cast<double>(h.percentile(0.90)) / scale},
          {"p99", static_cast<double>(h.percentile(0.99)) / scale},
          {"p999", static_cast<double>(h.percentile(0.999)) / scale},
          {"max", static_cast<double>(h.max()) / scale}};
}
}  // namespace

std::string format_summary(const BenchResult& r) {
  std::ostringstream os;
  os << "\n== harbormq bench " << r.mode << " ==\n";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%d clients on %d threads", r.clients, r.threads);
  row(os, "clients", buf);
  std::snprintf(buf, sizeof buf, "%s ok, %s failed, %s lost", format_count(r.connected).c_str(),
                format_count(r.connect_failed).c_str(), format_count(r.connection_lost).c_str());
  row(os, "connections", buf);
  if (r.connect_us.count()) {
    std::snprintf(buf, sizeof buf, "%.0f conn/s over %.2f s", per_second(r.connected, r.connect_s), r.connect_s);
    row(os, "connect rate", buf);
    row(os, "connect time",
        "p50 " + format_duration_ns(r.connect_us.percentile(0.5) * 1000) + "  p99 " +
            format_duration_ns(r.connect_us.percentile(0.99) * 1000) + "  max " +
            format_duration_ns(r.connect_us.max() * 1000));
  }
  if (r.mode == "pub") {
    std::snprintf(buf, sizeof buf, "%.2f s", r.run_s);
    row(os, "duration", buf);
    row(os, "sent", rate_text(r.sent, r.run_s));
    if (r.acked || r.rejected) {
      row(os, "acknowledged", rate_text(r.acked, r.run_s));
      row(os, "rejected", format_count(r.rejected));
    }
    if (r.abandoned) row(os, "unacked on lost conn", format_count(r.abandoned));
  }
  if (r.mode == "sub") {
    double window = r.last_receive_ns > r.first_receive_ns ? static_cast<double>(r.last_receive_ns - r.first_receive_ns) / 1e9 : 0;
    std::snprintf(buf, sizeof buf, "%.2f s (first to last message)", window);
    row(os, "receive window", buf);
    row(os, "received", rate_text(r.received, window));
    auto t = total_streams(r);
    row(os, "unique", format_count(t.unique));
    row(os, "duplicates", format_count(t.duplicates));
    row(os, "out of order", format_count(t.out_of_order));
    row(os, "gaps (lost)", format_count(t.gaps()) + "  (below each publisher's highest sequence)");
    if (r.unstamped) row(os, "unstamped", format_count(r.unstamped));
    std::snprintf(buf, sizeof buf, "%zu", r.streams.size());
    row(os, "publishers seen", buf);
    const auto& h = r.latency_ns;
    if (h.count()) {
      row(os, "latency",
          "p50 " + format_duration_ns(h.percentile(0.5)) + "  p90 " + format_duration_ns(h.percentile(0.9)) +
              "  p99 " + format_duration_ns(h.percentile(0.99)) + "  p99.9 " +
              format_duration_ns(h.percentile(0.999)) + "  max " + format_duration_ns(h.max()));
    }
  }
  if (r.error_count) {
    row(os, "errors", format_count(r.error_count));
    for (const auto& e : r.errors) row(os, "", e);
  }
  return os.str();
}

nlohmann::json options_json(const BenchOptions& o) {
  return {{"host", o.conn.host},       {"port", o.conn.port},         {"version", o.conn.version_text},
          {"clients", o.clients},      {"threads", o.threads},        {"topic", o.topic},
          {"qos", o.qos},              {"payload_size", o.payload_size}, {"rate", o.rate},
          {"duration_s", o.duration_s}, {"count", o.count},           {"group", o.group},
          {"inflight", o.inflight},    {"clean_start", o.conn.clean_start},
          {"client_id", o.conn.client_id}};
}

nlohmann::json to_json(const BenchResult& r) {
  auto t = total_streams(r);
  double window =
      r.last_receive_ns > r.first_receive_ns ? static_cast<double>(r.last_receive_ns - r.first_receive_ns) / 1e9 : 0;
  nlohmann::json publishers = nlohmann::json::array();
  for (const auto& [id, c] : r.streams) {
    publishers.push_back({{"publisher", id},
                          {"unique", c.unique},
                          {"duplicates", c.duplicates},
                          {"out_of_order", c.out_of_order},
                          {"gaps", c.gaps()}});
  }
  return {{"mode", r.mode},
          {"options", r.options},
          {"clients", r.clients},
          {"threads", r.threads},
          {"connected", r.connected},
          {"connect_failed", r.connect_failed},
          {"connection_lost", r.connection_lost},
          {"ready", r.ready},
          {"session_present", r.session_present},
          {"connect_s", r.connect_s},
          {"connect_rate", per_second(r.connected, r.connect_s)},
          {"connect_time_ms", histogram_json(r.connect_us, 1e3)},
          {"run_s", r.run_s},
          {"start_ns", r.start_ns},
          {"end_ns", r.end_ns},
          {"sent", r.sent},
          {"send_rate", per_second(r.sent, r.run_s)},
          {"acked", r.acked},
          {"ack_rate", per_second(r.acked, r.run_s)},
          {"rejected", r.rejected},
          {"abandoned", r.abandoned},
          {"received", r.received},
          {"receive_window_s", window},
          {"receive_rate", per_second(r.received, window)},
          {"first_receive_ns", r.first_receive_ns},
          {"last_receive_ns", r.last_receive_ns},
          {"unique", t.unique},
          {"duplicates", t.duplicates},
          {"out_of_order", t.out_of_order},
          {"gaps", t.gaps()},
          {"unstamped", r.unstamped},
          {"latency_ms", histogram_json(r.latency_ns, 1e6)},
          {"publishers", publishers},
          {"error_count", r.error_count},
          {"errors", r.errors}};
}

}  // namespace harbor::tools
