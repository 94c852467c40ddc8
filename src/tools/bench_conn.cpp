#include "tools/bench_conn.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "runtime/socket.hpp"
#include "tools/bench_worker.hpp"
#include "tools/payload.hpp"
#include "tools/sync_client.hpp"
#include "tools/topic_template.hpp"

namespace harbor::tools {

namespace {
constexpr size_t kMaxOutBuffered = 256 * 1024;  // stop producing above this much unsent data
constexpr int kPublishBatch = 64;               // publishes per wake-up before yielding
constexpr size_t kReadBudget = 512 * 1024;      // bytes read per wake-up before yielding
constexpr size_t kReadChunk = 64 * 1024;        // bytes asked of one recv()
// Paced subscribers (sub --rate): the budget holds at most 5 ms of messages (at least one),
// so a pause never turns into a burst; reads are at least 64 bytes (a small PUBLISH).
constexpr double kPacedBurstS = 0.005;
constexpr size_t kMinPacedRead = 64;
constexpr size_t kFirstMessageGuess = 128;      // bytes per PUBLISH before any was read
constexpr uint64_t kMaxPlausibleLatencyNs = 3600ULL * 1'000'000'000ULL;
}  // namespace

BenchConn::BenchConn(Worker& worker, uint64_t number)
    : w_(worker), number_(number), proto_(worker.options().conn.version) {
  const auto& o = w_.options();
  client_id_ = expand_template(o.conn.client_id, number, "");
  if (o.mode == BenchMode::Pub) {
    pub_.topic = expand_template(o.topic, number, client_id_);
    pub_.qos = static_cast<mqtt::QoS>(o.qos);
    pub_.retain = o.retain;
    pub_.payload = make_payload(o.payload_size);
    if (o.rate > 0) {
      // Publisher k of n starts k/n of an interval late so the broker sees a steady stream.
      double interval_ns = 1e9 / o.rate;
      phase_ns_ = static_cast<uint64_t>(interval_ns * static_cast<double>(number % 997) / 997.0);
    }
  }
}

BenchConn::~BenchConn() { close_fd(); }

void BenchConn::close_fd() {
  if (fd_ >= 0) {
    w_.loop().remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void BenchConn::start_connect() {
  const auto& o = w_.options();
  started_ms_ = w_.loop().now_ms();
  started_ns_ = monotonic_ns();
  WorkerCounters::bump(w_.counters.connect_started);
  ++w_.pending_connects;
  counted_pending_ = true;
  auto fd = runtime::connect_tcp_nonblocking(runtime::HostPort{o.conn.host, o.conn.port});
  if (!fd) {
    fail(fd.error());
    return;
  }
  fd_ = *fd;
  state_ = State::Connecting;
  interest_ = EPOLLOUT;
  w_.loop().add(fd_, interest_, this);
}

bool BenchConn::is_publisher_active() const {
  return state_ == State::Ready && w_.options().mode == BenchMode::Pub && w_.publishing() && !finished_;
}

void BenchConn::fail(const std::string& why) {
  if (state_ == State::Closed) return;
  if (state_ == State::Closing) {
    force_close();
    return;
  }
  bool was_connected = state_ == State::Ready || state_ == State::AwaitSuback;
  if (counted_pending_) {
    counted_pending_ = false;
    --w_.pending_connects;
    w_.connect_slot_freed();
  }
  if (was_connected) {
    WorkerCounters::bump(w_.counters.connection_lost);
  } else {
    WorkerCounters::bump(w_.counters.connect_failed);
  }
  if (!window_.empty()) WorkerCounters::bump(w_.counters.abandoned, window_.size());
  window_.clear();
  window_.on_disconnected();
  w_.record_error(why);
  state_ = State::Closed;
  close_fd();
}

void BenchConn::on_io(uint32_t events) {
  if (state_ == State::Closed) return;
  if (state_ == State::Closing) {
    on_closing_io(events);
    return;
  }
  if (state_ == State::Connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (int err = runtime::connect_result(fd_); err != 0) {
      fail(std::string("connect: ") + std::strerror(err));
      return;
    }
    state_ = State::AwaitConnack;
    if (w_.options().conn.stream.any()) {
      stream_ = std::make_unique<ClientStream>(w_.options().conn.stream);
      stream_->start(out_);
    }
    mqtt::Connect c = make_connect(w_.options().conn, client_id_);
    proto_.encode(c, mqtt_sink());
    flush();
    if (state_ == State::Closed) return;
    update_interest();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    read_input(events);
    if (state_ == State::Closed) return;
  }
  if (is_publisher_active()) pump(monotonic_ns());
  if (state_ == State::Closed) return;
  flush();
  if (state_ != State::Closed) update_interest();
}

void BenchConn::read_input(uint32_t events) {
  // A hang-up or error is read through regardless of the pacing, or the level-triggered
  // EPOLLHUP would spin while the budget is empty.
  const bool hangup = (events & (EPOLLHUP | EPOLLERR)) != 0;
  size_t budget = kReadBudget;
  while (budget > 0) {
    size_t want = kReadChunk;
    if (paced() && !hangup) {
      refill_read_budget(monotonic_ns());
      if (read_budget_ < 1) {
        read_paused_ = true;  // update_interest() drops EPOLLIN; the worker's tick resumes
        return;
      }
      want = paced_read_size();
    }
    std::span<uint8_t> buf;
    if (stream_) {
      raw_in_.resize(want);
      buf = std::span(reinterpret_cast<uint8_t*>(raw_in_.data()), want);
    } else {
      buf = proto_.prepare(want);
    }
    ssize_t n = ::recv(fd_, buf.data(), want, 0);
    if (n == 0) {
      fail("connection closed by broker");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      fail(std::string("recv: ") + std::strerror(errno));
      return;
    }
    if (!take_input(buf, static_cast<size_t>(n))) return;
    bytes_read_ += static_cast<uint64_t>(n);
    budget -= std::min(budget, static_cast<size_t>(n));
    for (;;) {
      auto next = proto_.next();
      if (!next) {
        fail("protocol error: " + next.error().message);
        return;
      }
      if (!*next) break;
      on_packet(**next);
      if (state_ == State::Closed) return;
    }
    if (static_cast<size_t>(n) < want) break;
  }
}

bool BenchConn::take_input(std::span<uint8_t> buf, size_t n) {
  if (!stream_) {
    proto_.commit(n);
    return true;
  }
  mqtt_in_.clear();
  auto r =
      stream_->read(std::string_view(reinterpret_cast<const char*>(buf.data()), n), mqtt_in_, out_);
  if (!r) {
    fail(r.error());
    return false;
  }
  if (!mqtt_in_.empty()) {
    auto dst = proto_.prepare(mqtt_in_.size());
    std::memcpy(dst.data(), mqtt_in_.data(), mqtt_in_.size());
    proto_.commit(mqtt_in_.size());
  }
  return true;
}

void BenchConn::pass_through() {
  if (!stream_ || mqtt_out_.empty()) return;
  if (!stream_->write(mqtt_out_, out_)) fail("TLS session closed");
  mqtt_out_.clear();
}

bool BenchConn::paced() const {
  const auto& o = w_.options();
  return o.mode == BenchMode::Sub && o.rate > 0 && state_ == State::Ready;
}

void BenchConn::refill_read_budget(uint64_t now_ns) {
  const double rate = w_.options().rate;
  if (budget_at_ns_ == 0) {
    budget_at_ns_ = now_ns;
    read_budget_ = 1;
    return;
  }
  const double cap = std::max(1.0, rate * kPacedBurstS);
  const double earned = rate * static_cast<double>(now_ns - budget_at_ns_) / 1e9;
  read_budget_ = std::min(cap, read_budget_ + earned);
  budget_at_ns_ = now_ns;
}

size_t BenchConn::paced_read_size() const {
  // About as many bytes as the budget's messages take, from the sizes seen so far. A
  // packet cut in two stays in the decoder until the next read.
  const double per_message = publishes_read_ > 0 ? static_cast<double>(bytes_read_) / static_cast<double>(publishes_read_)
                                                 : static_cast<double>(kFirstMessageGuess);
  const double bytes = std::floor(read_budget_) * per_message;
  return std::clamp(static_cast<size_t>(bytes), kMinPacedRead, kReadChunk);
}

void BenchConn::resume_reading(uint64_t now_ns) {
  if (!read_paused_ || state_ != State::Ready) return;
  refill_read_budget(now_ns);
  if (read_budget_ < 1) return;
  read_paused_ = false;
  on_io(EPOLLIN);
}

void BenchConn::on_packet(mqtt::Packet& p) {
  if (auto* ack = std::get_if<mqtt::Connack>(&p)) {
    on_connack(*ack);
  } else if (auto* pub = std::get_if<mqtt::Publish>(&p)) {
    on_publish(*pub);
  } else if (auto* a = std::get_if<mqtt::PubAck>(&p)) {
    on_ack(*a);
  } else if (auto* s = std::get_if<mqtt::Suback>(&p)) {
    if (state_ != State::AwaitSuback) return;
    for (auto r : s->reasons) {
      if (mqtt::is_error(r)) {
        fail("subscription refused: " + describe(r));
        return;
      }
    }
    state_ = State::Ready;
    WorkerCounters::bump(w_.counters.ready);
  } else if (auto* d = std::get_if<mqtt::Disconnect>(&p)) {
    fail("broker sent DISCONNECT " + describe(d->reason));
  }
}

void BenchConn::on_connack(const mqtt::Connack& ack) {
  if (state_ != State::AwaitConnack) return;
  if (counted_pending_) {
    counted_pending_ = false;
    --w_.pending_connects;
    w_.connect_slot_freed();
  }
  if (ack.reason != mqtt::ReasonCode::Success) {
    fail("CONNACK " + describe(ack.reason));
    return;
  }
  w_.record_connect(monotonic_ns() - started_ns_, w_.loop().now_ms());
  WorkerCounters::bump(w_.counters.connected);
  if (ack.session_present) WorkerCounters::bump(w_.counters.session_present);
  const auto& o = w_.options();
  if (o.mode == BenchMode::Pub && o.qos > 0) {
    // The broker's Receive Maximum bounds what is in flight as much as --inflight does
    // [MQTT-3.3.4-7]. A new connection has nothing to resend.
    const uint32_t quota = std::min<uint32_t>(static_cast<uint32_t>(o.inflight),
                                              ack.props.receive_maximum.value_or(65535));
    window_.on_connected(o.conn.version, static_cast<uint16_t>(quota), w_.loop().now_ms(),
                         [](const mqtt::WindowOutput<uint32_t>&) {});
  }
  if (o.mode == BenchMode::Sub && !o.no_subscribe) {
    mqtt::Subscribe sub;
    sub.packet_id = 1;
    mqtt::SubscribeTopic t;
    t.filter = shared_filter(o.group, expand_template(o.topic, number_, client_id_));
    t.qos = static_cast<mqtt::QoS>(o.qos);
    sub.topics.push_back(std::move(t));
    proto_.encode(sub, mqtt_sink());
    state_ = State::AwaitSuback;
  } else {
    state_ = State::Ready;
    WorkerCounters::bump(w_.counters.ready);
  }
}

void BenchConn::on_publish(const mqtt::Publish& p) {
  ++publishes_read_;
  if (paced()) read_budget_ -= 1;
  if (p.qos == 1) {
    ack_.type = mqtt::PacketType::Puback;
    ack_.packet_id = p.packet_id;
    proto_.encode(ack_, mqtt_sink());
  } else if (p.qos == 2) {
    ack_.type = mqtt::PacketType::Pubrec;
    ack_.packet_id = p.packet_id;
    proto_.encode(ack_, mqtt_sink());
  }
  uint64_t now = monotonic_ns();
  auto& c = w_.counters;
  WorkerCounters::bump(c.received);
  if (c.first_receive_ns.load(std::memory_order_relaxed) == 0) c.first_receive_ns.store(now, std::memory_order_relaxed);
  c.last_receive_ns.store(now, std::memory_order_relaxed);
  auto stamp = read_stamp(p.payload);
  if (!stamp || stamp->sent_ns > now || now - stamp->sent_ns > kMaxPlausibleLatencyNs) {
    w_.note_unstamped();
    return;
  }
  w_.record_latency(now - stamp->sent_ns);
  tracker_.on_message(stamp->publisher, stamp->seq);
}

void BenchConn::on_ack(const mqtt::PubAck& a) {
  switch (a.type) {
    case mqtt::PacketType::Puback:
      on_window_output(window_.on_puback(a.packet_id, a.reason));
      break;
    case mqtt::PacketType::Pubrec:
      on_window_output(window_.on_pubrec(a.packet_id, a.reason, w_.loop().now_ms()));
      break;
    case mqtt::PacketType::Pubcomp:
      on_window_output(window_.on_pubcomp(a.packet_id, a.reason));
      break;
    case mqtt::PacketType::Pubrel:  // subscriber side of QoS 2
      ack_.type = mqtt::PacketType::Pubcomp;
      ack_.packet_id = a.packet_id;
      proto_.encode(ack_, mqtt_sink());
      break;
    default:
      break;
  }
}

void BenchConn::on_window_output(const mqtt::WindowOutput<uint32_t>& out) {
  switch (out.action) {
    case mqtt::WindowAction::Release:
      last_ack_ms_ = w_.loop().now_ms();
      WorkerCounters::bump(w_.counters.acked);
      if (mqtt::is_error(out.reason)) WorkerCounters::bump(w_.counters.rejected);
      break;
    case mqtt::WindowAction::SendPubrel:
      ack_.type = mqtt::PacketType::Pubrel;
      ack_.packet_id = out.packet_id;
      ack_.reason = out.reason;
      proto_.encode(ack_, mqtt_sink());
      ack_.reason = mqtt::ReasonCode::Success;
      break;
    case mqtt::WindowAction::ProtocolError:
      fail("protocol error: broker acknowledged packet id " + std::to_string(out.packet_id) +
           " with the wrong packet for its QoS flow");
      break;
    default:  // an id not in flight (e.g. a late duplicate): nothing to do
      break;
  }
}

bool BenchConn::send_publish(uint64_t now_ns) {
  if (pub_.qos > 0) {
    const int64_t now_ms = w_.loop().now_ms();
    auto out = window_.submit(uint32_t{seq_}, pub_.qos, now_ms);
    if (out.action != mqtt::WindowAction::SendPublish) return false;  // full: wait for acks
    if (window_.size() == 1) last_ack_ms_ = now_ms;
    pub_.packet_id = out.packet_id;
  }
  write_stamp(pub_.payload, Stamp{static_cast<uint32_t>(number_), seq_++, now_ns});
  proto_.encode(pub_, mqtt_sink());
  ++sent_;
  WorkerCounters::bump(w_.counters.sent);
  return true;
}

void BenchConn::pump(uint64_t now_ns) {
  if (!is_publisher_active()) return;
  const auto& o = w_.options();
  uint64_t limit = o.count ? o.count : UINT64_MAX;
  if (o.rate > 0) {
    uint64_t start = w_.publish_start_ns() + phase_ns_;
    uint64_t due = now_ns < start ? 0 : static_cast<uint64_t>(static_cast<double>(now_ns - start) * o.rate / 1e9) + 1;
    limit = std::min(limit, due);
  }
  int batch = 0;
  while (sent_ < limit && batch < kPublishBatch &&
         out_.size() - out_off_ + mqtt_out_.size() < kMaxOutBuffered &&
         (pub_.qos == 0 || window_.has_room())) {
    if (!send_publish(now_ns)) break;
    ++batch;
  }
  if (batch > 0) w_.counters.last_send_ns.store(now_ns, std::memory_order_relaxed);
  if (o.count && sent_ >= o.count && !finished_) {
    finished_ = true;
    WorkerCounters::bump(w_.counters.finished_publishers);
  }
}

void BenchConn::flush() {
  pass_through();
  if (state_ == State::Closed) return;
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      fail(std::string("send: ") + std::strerror(errno));
      return;
    }
    out_off_ += static_cast<size_t>(n);
    last_send_ms_ = w_.loop().now_ms();
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > 64 * 1024) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
}

void BenchConn::update_interest() {
  if (fd_ < 0) return;
  uint32_t want = read_paused_ ? 0u : static_cast<uint32_t>(EPOLLIN);
  bool unsent = out_off_ < out_.size() || !mqtt_out_.empty();
  // An unlimited QoS 0 publisher writes whenever the socket has room.
  const auto& o = w_.options();
  bool greedy = is_publisher_active() && o.rate == 0 && (o.qos == 0 || window_.has_room());
  if (unsent || greedy) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    w_.loop().modify(fd_, interest_, this);
  }
}

void BenchConn::sweep(int64_t now_ms) {
  const auto& o = w_.options();
  if (state_ == State::Connecting || state_ == State::AwaitConnack) {
    if (now_ms - started_ms_ > static_cast<int64_t>(o.conn.timeout_s * 1000))
      fail(state_ == State::Connecting ? "connect timed out" : "timed out waiting for CONNACK");
    return;
  }
  if (state_ != State::Ready && state_ != State::AwaitSuback) return;
  // A broker that stops acknowledging (a 3.1.1 broker refusing what it cannot store sends
  // nothing) must not hold the run forever.
  if (!window_.empty() && now_ms - last_ack_ms_ > static_cast<int64_t>(o.conn.timeout_s * 1000)) {
    WorkerCounters::bump(w_.counters.ack_timeouts);
    fail("no acknowledgement for " + std::to_string(static_cast<int64_t>(o.conn.timeout_s)) +
         " s with " + std::to_string(window_.size()) + " messages in flight");
    return;
  }
  if (o.conn.keepalive > 0 && now_ms - last_send_ms_ >= int64_t{o.conn.keepalive} * 500) {
    proto_.encode(mqtt::Pingreq{}, mqtt_sink());
    flush();
    if (state_ != State::Closed) update_interest();
  }
}

void BenchConn::disconnect() {
  if (state_ == State::Closed || state_ == State::Idle || state_ == State::Closing) return;
  if (counted_pending_) {
    counted_pending_ = false;
    --w_.pending_connects;
  }
  if (state_ == State::Connecting) {
    force_close();
    return;
  }
  proto_.encode(mqtt::Disconnect{}, mqtt_sink());
  pass_through();
  if (state_ == State::Closed) return;
  state_ = State::Closing;
  on_closing_io(EPOLLOUT);
}

void BenchConn::on_closing_io(uint32_t events) {
  if (out_off_ < out_.size() && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    while (out_off_ < out_.size()) {
      ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        force_close();
        return;
      }
      out_off_ += static_cast<size_t>(n);
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
      ::shutdown(fd_, SHUT_WR);
    }
  }
  // Read and discard until the broker closes its side, so closing never resets data the
  // broker has not read yet.
  char sink[16 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    force_close();
    return;
  }
  uint32_t want = EPOLLIN;
  if (out_off_ < out_.size()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    w_.loop().modify(fd_, interest_, this);
  }
}

void BenchConn::force_close() {
  state_ = State::Closed;
  close_fd();
}

}  // namespace harbor::tools
