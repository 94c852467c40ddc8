#include "tools/bench_worker.hpp"

#include <algorithm>
#include <cmath>

#include "tools/bench_conn.hpp"
#include "tools/payload.hpp"

namespace harbor::tools {

namespace {
constexpr int64_t kTickMs = 2;          // rate-limited publishing, paced reading, connection pacing
constexpr int64_t kSweepMs = 200;       // timeouts and keep-alive
constexpr int64_t kLatencyFlushMs = 250;
constexpr int64_t kCloseGraceMs = 3000;  // wait for the broker's EOF after DISCONNECT
constexpr size_t kMaxErrorsKept = 8;
}  // namespace

Worker::Worker(const BenchOptions& options, std::vector<uint64_t> client_numbers)
    : options_(options), numbers_(std::move(client_numbers)) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    loop_.stop();
    thread_.join();
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  conns_.reserve(numbers_.size());
  for (auto n : numbers_) conns_.push_back(std::make_unique<BenchConn>(*this, n));
  connect_begin_ms_ = loop_.now_ms();
  report_.first_connect_ms = connect_begin_ms_;
  loop_.set_after_io([this] {
    if (want_connect_more_) {
      want_connect_more_ = false;
      connect_more();
    }
  });
  connect_more();
  loop_.add_timer_after(kTickMs, [this] { tick(); });
  loop_.add_timer_after(kSweepMs, [this] { sweep(); });
  loop_.add_timer_after(kLatencyFlushMs, [this] { flush_latency(); });
  loop_.run();
  for (auto& c : conns_) c->tracker().collect(report_.streams);
  conns_.clear();
  flush_latency();
}

void Worker::connect_more() {
  if (closing_) return;
  int per_worker_pending = std::max(1, options_.max_pending_connects /
                                           std::max(1, static_cast<int>(options_.threads)));
  size_t allowed = conns_.size();
  if (options_.connect_rate > 0) {
    double rate = options_.connect_rate / options_.threads;
    double elapsed_s = static_cast<double>(loop_.now_ms() - connect_begin_ms_) / 1000.0;
    allowed = std::min(allowed, static_cast<size_t>(rate * elapsed_s) + 1);
  }
  while (next_to_connect_ < allowed && pending_connects < per_worker_pending) {
    conns_[next_to_connect_++]->start_connect();
  }
}

void Worker::tick() {
  if (closing_) return;
  if (next_to_connect_ < conns_.size()) connect_more();
  if (options_.mode == BenchMode::Sub && options_.rate > 0) {
    // Paced subscribers whose read budget ran out read again once it has refilled.
    uint64_t now = monotonic_ns();
    for (auto& c : conns_)
      if (c->read_paused()) c->resume_reading(now);
  }
  if (publishing_ && options_.rate > 0) {
    uint64_t now = monotonic_ns();
    for (auto& c : conns_) {
      if (!c->is_publisher_active()) continue;
      c->pump(now);
      c->on_io(0);  // flush and refresh interest
    }
  }
  loop_.add_timer_after(kTickMs, [this] { tick(); });
}

void Worker::sweep() {
  if (closing_) return;
  int64_t now = loop_.now_ms();
  for (auto& c : conns_) c->sweep(now);
  loop_.add_timer_after(kSweepMs, [this] { sweep(); });
}

void Worker::flush_latency() {
  {
    std::lock_guard lock(shared_mutex_);
    shared_latency_.merge(interval_latency_);
  }
  report_.latency_ns.merge(interval_latency_);
  interval_latency_.reset();
  if (!closing_) loop_.add_timer_after(kLatencyFlushMs, [this] { flush_latency(); });
}

void Worker::take_interval_latency(Histogram& into) {
  std::lock_guard lock(shared_mutex_);
  into.merge(shared_latency_);
  shared_latency_.reset();
}

void Worker::record_connect(uint64_t elapsed_ns, int64_t now_ms) {
  report_.connect_us.record(elapsed_ns / 1000);
  report_.last_connack_ms = std::max(report_.last_connack_ms, now_ms);
}

void Worker::record_error(const std::string& message) {
  ++report_.error_count;
  if (report_.errors.size() < kMaxErrorsKept &&
      std::find(report_.errors.begin(), report_.errors.end(), message) == report_.errors.end())
    report_.errors.push_back(message);
}

void Worker::begin_publishing(uint64_t start_ns) {
  loop_.post([this, start_ns] {
    publishing_ = true;
    publish_start_ns_ = start_ns;
    uint64_t now = monotonic_ns();
    for (auto& c : conns_) {
      if (!c->is_publisher_active()) continue;
      c->pump(now);
      c->on_io(0);
    }
  });
}

void Worker::stop_publishing() {
  loop_.post([this] {
    publishing_ = false;
    for (auto& c : conns_) {
      if (c->state() == BenchConn::State::Ready) c->on_io(0);
    }
  });
}

void Worker::disconnect_all() {
  loop_.post([this] {
    closing_ = true;
    publishing_ = false;
    for (auto& c : conns_) c->disconnect();
    close_check(loop_.now_ms() + kCloseGraceMs);
  });
}

void Worker::close_check(int64_t deadline) {
  bool all_closed = std::all_of(conns_.begin(), conns_.end(), [](const auto& c) {
    return c->state() == BenchConn::State::Closed || c->state() == BenchConn::State::Idle;
  });
  if (all_closed || loop_.now_ms() >= deadline) {
    for (auto& c : conns_) c->force_close();
    loop_.stop();
    return;
  }
  loop_.add_timer_after(10, [this, deadline] { close_check(deadline); });
}

}  // namespace harbor::tools
