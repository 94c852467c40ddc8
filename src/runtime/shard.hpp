// A shard: one event-loop thread owning its connections, the sessions homed on it (by
// hash of client id) and their timers. Other threads reach it only by posting to its
// loop (DESIGN.md §3).
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/shard_broker.hpp"
#include "runtime/connection.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/lingerer.hpp"

namespace harbor::runtime {

class Shard final : public broker::ShardServices {
 public:
  Shard(unsigned index, broker::BrokerContext& ctx, std::vector<std::unique_ptr<Shard>>& all);
  ~Shard() override;

  void start();  // spawns the thread
  void join();
  EventLoop& loop() { return loop_; }
  broker::ShardBroker& broker() { return broker_; }

  // Any thread: hand an accepted socket to this shard.
  void adopt_socket(int fd);
  // Owner thread: the same for a socket this shard accepted itself (no hand-off), with the
  // peer's address from accept() (empty: asked of the socket). read_now: read what has
  // arrived in this loop iteration (after its other events) instead of waiting for epoll to
  // report it. websocket_path: non-null for a WebSocket listener's socket (the path clients
  // upgrade on; copied). tls: non-null for a TLS listener's socket (its session's
  // context and options).
  void adopt_socket_here(int fd, std::string remote = {}, bool read_now = false,
                         const std::string* websocket_path = nullptr,
                         std::shared_ptr<const TlsListener> tls = nullptr);
  // Owner thread: a socket this shard dialled (non-blocking connect in progress) becomes an
  // outbound connection driven by `role` (a bridge's link). Returns it; it is the shard's
  // like any other (destroyed at the end of the loop turn it closes in, after
  // role->on_closed). `tls`: non-null for a TLS link (the client context to speak it with).
  Connection* adopt_outbound(int fd, std::string remote, OutboundRole* role, mqtt::Version v,
                             uint32_t max_packet_size,
                             std::shared_ptr<const wire::TlsContext> tls = nullptr);
  // Owner thread: begin_shutdown's task has started (no bridge dials again).
  bool stopping() const { return stopping_; }
  // Any thread: the store committed more; coalesced into one on_durable per iteration.
  void notify_durable();
  // Any thread: DISCONNECT everyone, flush, stop the loop.
  void begin_shutdown();

  // Owner thread, from Connection.
  void mark_dirty(Connection* c);
  void connection_closed(Connection* c);
  // Resumes reading `c` once congestion clears (or after a cap, so a stuck receiver only
  // slows publishers down).
  void schedule_resume(Connection* c);
  void set_congested(Connection* c, bool congested);
  bool congested() const { return !congested_.empty(); }
  // Buffer bytes given back by idle connections; the sweep returns free heap pages to the
  // kernel once enough has accumulated (else freed buffers of idle clients stay resident).
  void note_released(size_t bytes) { released_bytes_ += bytes; }
  // Owner thread: a socket closed on purpose, all output written (see lingerer.hpp).
  void linger(int fd) { lingerer_.add(fd, loop_.now_ms()); }

  // broker::ShardServices
  unsigned shard_index() const override { return index_; }
  int64_t now_steady_ms() const override { return loop_.now_ms(); }
  int64_t now_unix_ms() const override;
  uint64_t add_timer(int64_t at_steady_ms, std::function<void()> fn) override {
    return loop_.add_timer(at_steady_ms, std::move(fn));
  }
  void cancel_timer(uint64_t id) override { loop_.cancel_timer(id); }
  void post_to_shard(unsigned shard, std::function<void(broker::ShardBroker&)> fn) override;
  void move_link(broker::Link* link, unsigned shard, mqtt::Connect connect) override;
  void pause_link(uint64_t link_id) override;

 private:
  void after_io();
  void arm_sweep();
  void adopt_moved(std::unique_ptr<Connection> c, mqtt::Connect connect);

  unsigned index_;
  broker::BrokerContext& ctx_;
  std::vector<std::unique_ptr<Shard>>& all_;
  EventLoop loop_;
  broker::ShardBroker broker_;
  Lingerer lingerer_{loop_};
  std::thread thread_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> dirty_;
  // Accepted in this loop iteration with read_now: read in after_io, once the events the
  // iteration already reported (say a PUBACK on another connection) have been handled.
  std::vector<Connection*> fresh_;
  std::vector<Connection*> closed_;
  struct Move {
    Connection* conn;
    unsigned shard;
    mqtt::Connect connect;
  };
  std::vector<Move> moves_;
  std::atomic<bool> durable_pending_{false};
  std::vector<uint64_t> paused_;  // link ids of connections paused by backpressure
  bool resume_armed_ = false;
  std::vector<Connection*> congested_;  // connections above the low water mark
  void arm_resume();
  bool congestion_cleared() const;
  // This shard's receivers are congested but still making progress.
  bool receivers_draining() const;
  static std::atomic<uint64_t> next_connection_id_;
  size_t released_bytes_ = 0;
  int64_t last_heap_trim_ms_ = 0;
  bool stopping_ = false;
};

}  // namespace harbor::runtime
