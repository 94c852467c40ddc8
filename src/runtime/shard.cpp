#include "runtime/shard.hpp"

#include <malloc.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "runtime/log.hpp"

namespace harbor::runtime {

std::atomic<uint64_t> Shard::next_connection_id_{1};

namespace {
constexpr int64_t kSweepIntervalMs = 250;
constexpr size_t kHeapTrimBytes = 1u << 20;    // released by idle connections before a heap trim
constexpr int64_t kHeapTrimIntervalMs = 2000;  // at most this often per shard
constexpr int64_t kResumeInbox = 1024;         // cross-shard backlog below which publishers resume

mqtt::ServerProtocol::Limits limits_from(const broker::Settings& s) {
  mqtt::ServerProtocol::Limits l;
  l.max_packet_size = s.max_packet_size;
  l.max_topic_alias = s.max_topic_alias;
  l.max_user_properties = s.max_user_properties;
  return l;
}
}  // namespace

Shard::Shard(unsigned index, broker::BrokerContext& ctx, std::vector<std::unique_ptr<Shard>>& all)
    : index_(index), ctx_(ctx), all_(all), broker_(ctx, *this) {
  loop_.set_after_io([this] { after_io(); });
}

Shard::~Shard() { join(); }

void Shard::start() {
  thread_ = std::thread([this] {
    arm_sweep();
    loop_.run();
  });
}

void Shard::join() {
  if (thread_.joinable()) thread_.join();
}

int64_t Shard::now_unix_ms() const { return loop_.now_unix_ms(); }

void Shard::arm_sweep() {
  loop_.add_timer_after(kSweepIntervalMs, [this] {
    broker_.sweep();
    const int64_t now = loop_.now_ms();
    lingerer_.sweep(now);
    if (released_bytes_ >= kHeapTrimBytes && now - last_heap_trim_ms_ >= kHeapTrimIntervalMs) {
      released_bytes_ = 0;
      last_heap_trim_ms_ = now;
      ::malloc_trim(0);  // glibc: free pages inside the heap go back too (MADV_DONTNEED)
    }
    arm_sweep();
  });
}

void Shard::adopt_socket(int fd) {
  loop_.post([this, fd] { adopt_socket_here(fd); });
}

void Shard::adopt_socket_here(int fd, std::string remote, bool read_now,
                              const std::string* websocket_path,
                              std::shared_ptr<const TlsListener> tls) {
  uint64_t id = next_connection_id_.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_unique<Connection>(fd, id, this, limits_from(broker_.settings()),
                                        std::move(remote), websocket_path, std::move(tls));
  Connection* raw = c.get();
  connections_[id] = std::move(c);
  loop_.add(fd, EPOLLIN | EPOLLRDHUP, raw);
  raw->contained([&] { broker_.on_link_opened(raw); });
  if (read_now) fresh_.push_back(raw);
}

Connection* Shard::adopt_outbound(int fd, std::string remote, OutboundRole* role, mqtt::Version v,
                                  uint32_t max_packet_size,
                                  std::shared_ptr<const wire::TlsContext> tls) {
  uint64_t id = next_connection_id_.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_unique<Connection>(fd, id, this, role, v, max_packet_size, std::move(remote),
                                        std::move(tls));
  Connection* raw = c.get();
  connections_[id] = std::move(c);
  ctx_.stats.sockets_open.fetch_add(1, std::memory_order_relaxed);  // given back in after_io
  loop_.add(fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT, raw);
  raw->contained([&] { broker_.on_link_opened(raw); });
  return raw;
}

void Shard::notify_durable() {
  if (!durable_pending_.exchange(true, std::memory_order_acq_rel)) {
    loop_.post([this] {
      durable_pending_.store(false, std::memory_order_release);
      broker_.on_durable();
    });
  }
}

void Shard::begin_shutdown() {
  loop_.post([this] {
    stopping_ = true;
    broker_.shutdown();
    after_io();  // flush DISCONNECTs and close sockets
    loop_.stop();
  });
}

void Shard::mark_dirty(Connection* c) { dirty_.push_back(c); }

void Shard::connection_closed(Connection* c) {
  closed_.push_back(c);  // first: destroyed in after_io even if the broker throws below
  broker_.on_link_closed(c);
}

void Shard::set_congested(Connection* c, bool congested) {
  if (congested) {
    congested_.push_back(c);
  } else {
    congested_.erase(std::remove(congested_.begin(), congested_.end(), c), congested_.end());
  }
}

void Shard::schedule_resume(Connection* c) {
  paused_.push_back(c->link_id());
  arm_resume();
}

bool Shard::receivers_draining() const {
  // A receiver that still drains holds publishers back; one that made no progress for a
  // while is stuck, and its QoS 0 traffic is dropped rather than stalling everyone.
  for (Connection* c : congested_)
    if (loop_.now_ms() - c->last_write_ms < broker::kStuckWriteMs) return true;
  return broker_.receivers_congested();
}

bool Shard::congestion_cleared() const {
  if (receivers_draining()) return false;
  for (unsigned i = 0; i < ctx_.num_shards; ++i)
    if (i != index_ && ctx_.shard_congested &&
        ctx_.shard_congested[i].load(std::memory_order_relaxed))
      return false;
  for (unsigned i = 0; i < ctx_.num_shards; ++i)
    if (ctx_.inbox_load && ctx_.inbox_load[i].load(std::memory_order_relaxed) > kResumeInbox)
      return false;
  return true;
}

void Shard::arm_resume() {
  if (resume_armed_) return;
  resume_armed_ = true;
  loop_.add_timer_after(1, [this] {
    resume_armed_ = false;
    if (paused_.empty()) return;
    // No time cap: a receiver that drains, however slowly, sets the pace of its publishers
    // (a stuck one stops counting after kStuckWriteMs, so this always ends).
    if (!congestion_cleared()) {
      arm_resume();
      return;
    }
    std::vector<uint64_t> ids;
    ids.swap(paused_);
    for (uint64_t id : ids) {
      auto it = connections_.find(id);
      if (it != connections_.end()) {
        Connection* c = it->second.get();
        c->contained([c] { c->resume_reading(); });
      }
    }
  });
}

void Shard::pause_link(uint64_t link_id) {
  auto it = connections_.find(link_id);
  if (it != connections_.end() && !it->second->closed && !it->second->moving)
    it->second->pause_reading();
}

void Shard::post_to_shard(unsigned shard, std::function<void(broker::ShardBroker&)> fn) {
  Shard* target = all_[shard].get();
  target->loop_.post([target, fn = std::move(fn)] { fn(target->broker_); });
}

void Shard::move_link(broker::Link* link, unsigned shard, mqtt::Connect connect) {
  auto* c = static_cast<Connection*>(link);
  c->moving = true;
  // The hand-off happens in after_io, once this connection's on_io has returned.
  moves_.push_back(Move{c, shard, std::move(connect)});
}

void Shard::adopt_moved(std::unique_ptr<Connection> c, mqtt::Connect connect) {
  Connection* raw = c.get();
  raw->attach(this);
  raw->moving = false;
  connections_[raw->link_id()] = std::move(c);
  loop_.add(raw->fd(), EPOLLIN | EPOLLRDHUP, raw);
  raw->contained([&] {
    broker_.on_link_opened(raw);
    broker_.on_connect(raw, std::move(connect));
    // Packets pipelined behind CONNECT were buffered on the old shard.
    raw->process_input();
  });
}

void Shard::after_io() {
  // New sockets: their CONNECT is mostly there already. Read after this iteration's events,
  // so the broker sees packets in the order they came in (a PUBACK sent on the old
  // connection before a takeover's CONNECT is taken first). Level-triggered: whatever this
  // read leaves, or what arrives later, epoll reports.
  for (size_t i = 0; i < fresh_.size(); ++i) {
    Connection* c = fresh_[i];
    if (!c->closed && !c->moving) c->on_io(EPOLLIN);
  }
  fresh_.clear();
  // Writes first (swap: flushing may close, and closing may dirty others).
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Connection* c = dirty_[i];
    c->dirty = false;
    if (!c->closed && !c->moving) c->contained([c] { c->flush(); });
  }
  dirty_.clear();
  broker_.flush_outboxes();
  for (auto& m : moves_) {
    auto it = connections_.find(m.conn->link_id());
    if (it == connections_.end()) continue;
    std::unique_ptr<Connection> owned = std::move(it->second);
    connections_.erase(it);
    loop_.remove(owned->fd());
    Shard* target = all_[m.shard].get();
    auto* raw = owned.release();
    target->loop_.post([target, raw, connect = std::move(m.connect)]() mutable {
      target->adopt_moved(std::unique_ptr<Connection>(raw), std::move(connect));
    });
  }
  moves_.clear();
  for (Connection* c : closed_) {
    connections_.erase(c->link_id());
    ctx_.stats.sockets_open.fetch_sub(1, std::memory_order_relaxed);
  }
  closed_.clear();
  // Tell the other shards whether our receivers are congested (they slow their publishers).
  if (ctx_.shard_congested) {
    ctx_.shard_congested[index_].store(receivers_draining(), std::memory_order_relaxed);
  }
}

}  // namespace harbor::runtime
