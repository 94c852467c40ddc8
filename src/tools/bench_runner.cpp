// Main-thread orchestration of a bench run: start workers, wait for the connections, run
// the publishing / receiving window, drain, disconnect, report.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "tools/bench.hpp"
#include "tools/bench_report.hpp"
#include "tools/bench_worker.hpp"
#include "tools/exit_codes.hpp"
#include "tools/payload.hpp"
#include "tools/stop_signal.hpp"

namespace harbor::tools {

namespace {
constexpr auto kPollInterval = std::chrono::milliseconds(20);

struct Totals {
  uint64_t started = 0, connected = 0, failed = 0, lost = 0, ready = 0, session_present = 0;
  uint64_t sent = 0, acked = 0, rejected = 0, abandoned = 0, received = 0, finished = 0;
  uint64_t ack_timeouts = 0;
  uint64_t last_send_ns = 0, first_receive_ns = 0, last_receive_ns = 0;
  uint64_t settled() const { return connected + failed; }
  uint64_t outstanding() const { return sent - std::min(sent, acked + abandoned); }
};

Totals sum(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (const auto& w : workers) {
    const auto& c = w->counters;
    t.started += get(c.connect_started);
    t.connected += get(c.connected);
    t.failed += get(c.connect_failed);
    t.lost += get(c.connection_lost);
    t.ready += get(c.ready);
    t.session_present += get(c.session_present);
    t.sent += get(c.sent);
    t.acked += get(c.acked);
    t.rejected += get(c.rejected);
    t.abandoned += get(c.abandoned);
    t.ack_timeouts += get(c.ack_timeouts);
    t.received += get(c.received);
    t.finished += get(c.finished_publishers);
    t.last_send_ns = std::max(t.last_send_ns, get(c.last_send_ns));
    uint64_t f = get(c.first_receive_ns);
    if (f && (!t.first_receive_ns || f < t.first_receive_ns)) t.first_receive_ns = f;
    t.last_receive_ns = std::max(t.last_receive_ns, get(c.last_receive_ns));
  }
  return t;
}

const char* mode_name(BenchMode m) {
  return m == BenchMode::Pub ? "pub" : m == BenchMode::Sub ? "sub" : "conn";
}

// Once a second: a single updating line on a terminal, plain lines otherwise.
class Progress {
 public:
  Progress(const BenchOptions& o, std::vector<std::unique_ptr<Worker>>& workers)
      : o_(o), workers_(workers), tty_(isatty(STDERR_FILENO) == 1), t0_(monotonic_ns()), next_ns_(t0_ + 1'000'000'000) {}

  void maybe_print(const char* phase) {
    uint64_t now = monotonic_ns();
    if (o_.quiet || now < next_ns_) return;
    double dt = static_cast<double>(now - last_ns_) / 1e9;
    last_ns_ = now;
    next_ns_ += 1'000'000'000;
    if (next_ns_ < now) next_ns_ = now + 1'000'000'000;
    Totals t = sum(workers_);
    Histogram lat;
    for (auto& w : workers_) w->take_interval_latency(lat);
    char line[512];
    int n = std::snprintf(line, sizeof line, "[%4.0fs %-7s] conn %llu/%d fail %llu lost %llu",
                          static_cast<double>(now - t0_) / 1e9, phase, (unsigned long long)(t.connected - t.lost),
                          o_.clients, (unsigned long long)t.failed, (unsigned long long)t.lost);
    auto rate = [dt](uint64_t cur, uint64_t prev) { return dt > 0 ? static_cast<double>(cur - prev) / dt : 0.0; };
    if (o_.mode == BenchMode::Conn) {
      n += std::snprintf(line + n, sizeof line - n, " | %.0f conn/s", rate(t.connected, prev_.connected));
    } else if (o_.mode == BenchMode::Pub) {
      n += std::snprintf(line + n, sizeof line - n, " | sent %.0f/s", rate(t.sent, prev_.sent));
      if (o_.qos > 0)
        n += std::snprintf(line + n, sizeof line - n, " acked %.0f/s inflight %llu", rate(t.acked, prev_.acked),
                           (unsigned long long)t.outstanding());
      n += std::snprintf(line + n, sizeof line - n, " total %s", format_count(t.sent).c_str());
    } else {
      n += std::snprintf(line + n, sizeof line - n, " | recv %.0f/s total %s", rate(t.received, prev_.received),
                         format_count(t.received).c_str());
      if (lat.count())
        n += std::snprintf(line + n, sizeof line - n, " | lat p50 %s p99 %s max %s",
                           format_duration_ns(lat.percentile(0.5)).c_str(),
                           format_duration_ns(lat.percentile(0.99)).c_str(), format_duration_ns(lat.max()).c_str());
    }
    prev_ = t;
    if (tty_) {
      std::fprintf(stderr, "\r\x1b[K%s", line);
      printed_inline_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }

  void finish() {
    if (printed_inline_) std::fputc('\n', stderr);
    printed_inline_ = false;
  }

 private:
  const BenchOptions& o_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  bool tty_;
  uint64_t t0_;
  uint64_t next_ns_;
  uint64_t last_ns_ = monotonic_ns();
  Totals prev_;
  bool printed_inline_ = false;
};
}  // namespace

uint64_t raise_fd_limit(uint64_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < wanted) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, wanted);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

int run_bench(BenchOptions& o) {
  if (auto r = finalize(o); !r) {
    std::fprintf(stderr, "Error: %s\n", r.error().c_str());
    return kExitUsage;
  }
  install_stop_signals();
  uint64_t limit = raise_fd_limit(static_cast<uint64_t>(o.clients) + 64);
  if (limit < static_cast<uint64_t>(o.clients) + 16)
    std::fprintf(stderr, "Warning: open file limit %llu is too low for %d clients\n", (unsigned long long)limit,
                 o.clients);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    std::vector<uint64_t> numbers;
    for (int i = t; i < o.clients; i += o.threads) numbers.push_back(o.start_number + static_cast<uint64_t>(i));
    workers.push_back(std::make_unique<Worker>(o, std::move(numbers)));
  }
  Progress progress(o, workers);
  uint64_t t0 = monotonic_ns();
  for (auto& w : workers) w->start();

  // Setup: every client connected (and subscribed) or failed.
  uint64_t setup_done_ns = 0;
  for (;;) {
    Totals t = sum(workers);
    if (t.settled() >= static_cast<uint64_t>(o.clients) && t.ready + t.failed + t.lost >= static_cast<uint64_t>(o.clients)) {
      setup_done_ns = monotonic_ns();
      break;
    }
    if (stop_requested()) break;
    progress.maybe_print("connect");
    std::this_thread::sleep_for(kPollInterval);
  }
  Totals after_setup = sum(workers);
  double connect_s = static_cast<double>((setup_done_ns ? setup_done_ns : monotonic_ns()) - t0) / 1e9;

  if (!o.ready_file.empty() && !stop_requested()) {
    std::ofstream(o.ready_file) << after_setup.ready << "\n";
  }

  uint64_t start_ns = monotonic_ns();
  uint64_t end_ns = start_ns;
  bool run_window = !o.subscribe_only && !stop_requested() && after_setup.ready > after_setup.lost;
  if (run_window) {
    if (o.mode == BenchMode::Pub)
      for (auto& w : workers) w->begin_publishing(start_ns);
    const char* phase = o.mode == BenchMode::Pub ? "publish" : o.mode == BenchMode::Sub ? "receive" : "hold";
    for (;;) {
      std::this_thread::sleep_for(kPollInterval);
      uint64_t now = monotonic_ns();
      Totals t = sum(workers);
      end_ns = now;
      if (stop_requested()) break;
      if (o.duration_s > 0 && now - start_ns >= static_cast<uint64_t>(o.duration_s * 1e9)) break;
      if (t.connected - t.lost == 0) break;  // nothing left to measure
      if (o.mode == BenchMode::Pub && o.count > 0 && t.finished >= t.ready - std::min(t.ready, t.lost)) {
        end_ns = t.last_send_ns ? t.last_send_ns : now;
        break;
      }
      if (o.mode == BenchMode::Sub && o.count > 0 && t.received >= o.count) break;
      // --idle counts from the last message, or from the end of setup (every subscriber
      // subscribed) while none has arrived, so a run with no publisher ends too.
      // Workers stamp last_receive_ns concurrently: it may be later than `now` (read
      // before the sum), and the unsigned difference must not wrap into "idle".
      const uint64_t idle_since = t.received > 0 ? t.last_receive_ns : start_ns;
      if (o.mode == BenchMode::Sub && o.idle_s > 0 && now > idle_since &&
          now - idle_since >= static_cast<uint64_t>(o.idle_s * 1e9))
        break;
      progress.maybe_print(phase);
    }
    if (o.mode == BenchMode::Pub) {
      for (auto& w : workers) w->stop_publishing();
      uint64_t drain_until = monotonic_ns() + static_cast<uint64_t>(o.drain_s * 1e9);
      while (o.qos > 0 && monotonic_ns() < drain_until && !stop_requested()) {
        Totals t = sum(workers);
        if (t.outstanding() == 0) break;
        progress.maybe_print("drain");
        std::this_thread::sleep_for(kPollInterval);
      }
    }
  }
  for (auto& w : workers) w->disconnect_all();
  for (auto& w : workers) w->join();
  progress.finish();

  Totals t = sum(workers);
  BenchResult r;
  r.mode = mode_name(o.mode);
  r.options = options_json(o);
  r.clients = o.clients;
  r.threads = o.threads;
  r.connected = t.connected;
  r.connect_failed = t.failed;
  r.connection_lost = t.lost;
  r.ready = t.ready;
  r.session_present = t.session_present;
  r.connect_s = connect_s;
  r.run_s = run_window ? static_cast<double>(end_ns - start_ns) / 1e9 : 0;
  r.start_ns = start_ns;
  r.end_ns = end_ns;
  r.sent = t.sent;
  r.acked = t.acked;
  r.rejected = t.rejected;
  r.abandoned = t.abandoned;
  r.received = t.received;
  r.first_receive_ns = t.first_receive_ns;
  r.last_receive_ns = t.last_receive_ns;
  for (auto& w : workers) {
    const auto& rep = w->report();
    r.latency_ns.merge(rep.latency_ns);
    r.connect_us.merge(rep.connect_us);
    for (const auto& [id, c] : rep.streams) r.streams[id].add(c);
    r.unstamped += rep.unstamped;
    r.error_count += rep.error_count;
    for (const auto& e : rep.errors)
      if (r.errors.size() < 8 && std::find(r.errors.begin(), r.errors.end(), e) == r.errors.end()) r.errors.push_back(e);
  }
  std::fputs(format_summary(r).c_str(), stdout);
  std::fflush(stdout);
  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    if (!out) {
      std::fprintf(stderr, "Error: cannot write '%s'\n", o.json_file.c_str());
      return kExitIo;
    }
    out << to_json(r).dump(2) << "\n";
  }
  if (t.connected == 0) {
    std::fprintf(stderr, "Error: no client could connect%s%s\n", r.errors.empty() ? "" : ": ",
                 r.errors.empty() ? "" : r.errors.front().c_str());
    return kExitConnectFailed;
  }
  if (t.ack_timeouts != 0) {
    std::fprintf(stderr, "Error: %llu publisher(s) gave up waiting %g s for acknowledgements\n",
                 static_cast<unsigned long long>(t.ack_timeouts), o.conn.timeout_s);
    return kExitTimeout;
  }
  return kExitOk;
}

}  // namespace harbor::tools
