// An acceptor: takes client sockets off the listening socket for one shard. Every shard has
// one, all on the same listening socket, registered with EPOLLEXCLUSIVE so that the kernel
// wakes one waiting shard per new connection (an idle shard takes it first). The shard that
// accepts a socket keeps it: no hand-off to another thread before the CONNECT is read
// (DESIGN.md §3 asks for one acceptor handing out round-robin; measured, that hand-off cost a
// context switch per connection and 0.94x Mosquitto's connections/s; the CONNECT moves the
// connection only if its client id's session is on another shard: broker::SessionDirectory).
//
// Thread: constructed on any thread; every other call on its shard's loop.
// Emits, for each socket accept() returns, one of:
//   - kept: `sockets_open` + 1, then Shard::adopt_socket_here on its own shard;
//   - refused at once (closed before any byte is read) when keeping it would put
//     `sockets_open` over mqtt.max_connections (exact across shards: the count is taken
//     first and given back on refusal): counted in `refused_max_connections`, the first
//     logged at warn, the rest counted into the next rate-limited line.
// Errors: accept() failing with EMFILE/ENFILE (out of file descriptors) closes a spare
// descriptor to accept and close the pending connections (counted in `refused_fd_limit`,
// logged once per burst, naming the limit), then takes the listener out of epoll for a
// delay that doubles from 10 ms up to 1 s and resets on the next successful accept. Any
// other accept error backs off the same way. Without this a full descriptor table keeps the
// listener readable and the loop spins while clients wait in the backlog.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/context.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/shard.hpp"

namespace harbor::app {

class Acceptor final : public runtime::IoHandler {
 public:
  // `listen_fd` is shared by every shard's acceptor of one listener and owned by the caller
  // (closed after every acceptor stopped). `websocket_path`: null for MQTT over TCP; for a
  // WebSocket listener the path clients upgrade on (owned by the caller, outlives the
  // acceptor). `tls`: non-null for MQTT over TLS, what new sessions are built from.
  // Opens the spare descriptor.
  Acceptor(int listen_fd, runtime::Shard& shard, broker::BrokerContext& ctx,
           uint32_t max_connections, const std::string* websocket_path = nullptr,
           std::shared_ptr<const runtime::TlsListener> tls = nullptr);
  ~Acceptor() override;
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Loop thread: registers the listener for reading.
  void start();
  // Loop thread: unregisters the listener and cancels a pending re-arm; nothing is accepted
  // after it. Idempotent.
  void stop();
  // Loop thread: mqtt.max_connections for the sockets accepted from now on (0 = no limit).
  void set_max_connections(uint32_t n) { max_connections_ = n; }
  // Loop thread: the TLS context and options for the sockets accepted from now on (a reload's
  // new certificates); connections already open keep the ones they were built with.
  void set_tls(std::shared_ptr<const runtime::TlsListener> tls) { tls_ = std::move(tls); }

  void on_io(uint32_t events) override;

  static constexpr int64_t kMinBackoffMs = 10;
  static constexpr int64_t kMaxBackoffMs = 1000;

 private:
  void keep_or_refuse(int fd, const sockaddr_storage& peer);
  // Out of descriptors: frees the spare, accepts one pending connection and closes it, takes
  // the spare back. False when nothing was pending or there is no spare.
  bool shed_one();
  int nodelay_inherited_ = -1;  // accepted sockets inherit TCP_NODELAY: -1 not known yet
  void note_fd_limit(int err);
  void end_fd_burst();
  // Takes the listener out of epoll; a timer puts it back after the next backoff delay.
  void pause();
  void resume();
  void open_spare();

  int fd_;
  const std::string* websocket_path_;
  std::shared_ptr<const runtime::TlsListener> tls_;
  runtime::Shard& shard_;
  runtime::EventLoop& loop_;
  broker::BrokerContext& ctx_;
  uint32_t max_connections_;
  int spare_fd_ = -1;
  bool armed_ = false;    // the listener is in the epoll set
  bool stopped_ = false;  // stop() ran: never re-armed
  runtime::TimerId resume_timer_ = 0;
  int64_t backoff_ms_ = 0;  // last pause; 0 after a successful accept
  bool in_fd_burst_ = false;
  uint64_t burst_refused_ = 0;  // shed during the current burst
};

}  // namespace harbor::app
