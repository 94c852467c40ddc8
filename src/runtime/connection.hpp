// One client TCP connection on a shard: socket I/O, the ServerProtocol decoder and the
// output buffer; on a WebSocket listener also its WebSocketTransport (the upgrade, then
// frames in and out; the broker's side sees the same plain MQTT bytes as on TCP), and on a TLS
// listener its TlsTransport (the handshake, then records in and out); on a secure WebSocket
// listener both, stacked: socket -> TLS -> WebSocket -> decoder, and out_ -> WebSocket frames
// -> TLS records -> socket. Owner: its
// shard's thread (moves at most once, at CONNECT, to the shard that holds the client id's session).
// Hands decoded packets to the shard's ShardBroker. Logging: a socket error or EOF becomes the
// link's close reason (the broker logs the disconnect line of a connected client); a connection
// that ends before its CONNECT is accepted is logged here, rate-limited (info for a protocol error
// or a refused CONNECT, debug for a peer that just went away).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "broker/link.hpp"
#include "mqtt/protocol.hpp"
#include "runtime/contained.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/tls_transport.hpp"
#include "runtime/websocket_transport.hpp"

namespace harbor::runtime {

class Shard;

// Output still waiting above this keeps the connection "congested": publishers paused for
// backpressure resume only when no connection of the shard is congested and still draining.
constexpr size_t kCongestionLowWater = broker::kOutputLowWater;

class Connection;

// The client role of a connection the broker dialled (a bridge's link): it speaks first
// (CONNECT) and takes the server's packets. Owned by whoever dialled; it outlives every
// connection it is given to. Called on the connection's shard thread.
class OutboundRole {
 public:
  virtual ~OutboundRole() = default;
  // The TCP connection is up: append CONNECT to c.out() (flushed after the call).
  virtual void on_socket_connected(Connection& c) = 0;
  // One validated server-to-client packet (CONNACK first). Pause: stop reading until the
  // local receivers drained (as for a client's PUBLISH).
  virtual broker::Flow on_packet(Connection& c, mqtt::Packet& p) = 0;
  // The connection is gone (after the broker's on_link_closed); it is destroyed at the end
  // of this loop turn. Called once.
  virtual void on_closed(Connection& c) = 0;
};

class Connection final : public IoHandler, public broker::Link {
 public:
  // An outbound connection: `fd` is connecting (non-blocking connect in progress); the
  // connection takes the server's packets through `role` in protocol version `v`.
  // tls: non-null to speak TLS as the client with this context: the handshake starts once
  // the TCP connect completed, with what on_socket_connected() wrote (CONNECT) held by the
  // session and sent encrypted when it completes; a failed handshake closes the connection
  // with "TLS handshake failed: <OpenSSL's reason>" as its close reason.
  Connection(int fd, uint64_t id, Shard* shard, OutboundRole* role, mqtt::Version v,
             uint32_t max_packet_size, std::string remote_address,
             std::shared_ptr<const wire::TlsContext> tls = nullptr);
  // remote_address: the peer as accept() reported it (empty: asked of the socket).
  // websocket_path: non-null for a WebSocket listener's socket, the path to upgrade on.
  // tls: non-null for a TLS listener's socket: its session's context and options.
  Connection(int fd, uint64_t id, Shard* shard, mqtt::ServerProtocol::Limits limits,
             std::string remote_address = {}, const std::string* websocket_path = nullptr,
             std::shared_ptr<const TlsListener> tls = nullptr);
  ~Connection() override;

  // IoHandler
  void on_io(uint32_t events) override;

  // broker::Link
  std::string& out() override { return out_; }
  void mark_dirty() override;
  void close_after_flush() override;
  mqtt::Version version() const override {
    return client_ ? client_->version() : protocol_.version();
  }
  // WebSocket: out_ is framed from out_offset_ on; the framed bytes wait in ws_'s wire buffer.
  // TLS the same: out_ is encrypted from out_offset_ on, the records wait in tls_'s. wss:
  // out_ is framed from out_offset_ on, the frames are encrypted as the TLS buffer drains.
  size_t pending_bytes() const override {
    return out_.size() - out_offset_ + (ws_ ? ws_->wire_pending() : 0) +
           (tls_ ? tls_->wire_pending() : 0);
  }
  uint64_t link_id() const override { return id_; }
  void trim_buffers() override;
  void resume_held_input() override;
  uint16_t local_port() const override;

  int fd() const { return fd_; }
  bool is_outbound() const { return role_ != nullptr; }
  // Outbound: the client-side protocol (e.g. for the Topic Alias Maximum it advertised).
  mqtt::ClientProtocol* client_protocol() { return client_.get(); }
  // The TLS side of a TLS connection (either role); null on plain TCP and WebSocket.
  const TlsTransport* tls_transport() const { return tls_.get(); }
  // Writes what it can; registers for EPOLLOUT when the socket is full.
  void flush();
  // Decodes and dispatches buffered packets (also after a move to another shard).
  void process_input();
  void attach(Shard* shard);
  // Backpressure: stop reading the socket until resume_reading() (the shard calls it after
  // a short pause). Writing goes on.
  void pause_reading();
  void resume_reading();
  // Runs `f` (this connection's handling) inside the connection's catch boundary: an
  // exception is logged with the client id and closes this connection at once.
  template <class F>
  void contained(F&& f);

  bool dirty = false;     // in the shard's flush list
  bool closing = false;   // close once out_ is flushed
  bool closed = false;    // socket closed, waiting to be destroyed
  bool moving = false;    // being handed to another shard
  bool epollout = false;  // registered for EPOLLOUT

 private:
  // Flags first, beside the public ones above, so they share one word (an idle
  // connection's footprint, issue 10).
  bool graceful_ = false;     // closed on purpose with all output written
  bool peer_closed_ = false;  // read() returned 0: the peer closed its side
  bool connecting_ = false;   // outbound: the non-blocking connect has not finished
  bool paused_ = false;
  bool congested_ = false;       // counted in the shard's congested total
  bool cn_as_username_ = false;  // TLS: TlsListener::cn_as_username
  int fd_;                       // -1 once handed to the shard's Lingerer

  void read_socket();
  // WebSocket: `bytes` were read into the protocol's input buffer; commits the MQTT payload.
  void take_websocket_input(std::span<uint8_t> bytes);
  // WebSocket: the stream ended (the client's Close or a broken rule): close after our Close.
  void end_websocket_stream();
  // TLS: `bytes` were read into the protocol's input buffer (outbound: the client
  // protocol's); feeds the decrypted MQTT bytes to the decoder in their place (wss: puts the
  // decrypted bytes there and hands them to take_websocket_input).
  void take_tls_input(std::span<uint8_t> bytes);
  // TLS: the peer's close_notify or a failed session: close after what is queued.
  void end_tls_stream();
  // Each writes out what it can; false when the socket is full or the connection failed.
  // Output is sent up to here: all of out_, or while closing up to close_mark_.
  size_t send_end() const { return closing ? std::min(close_mark_, out_.size()) : out_.size(); }
  // One send of `bytes`: the bytes the socket took (> 0), or -1 when it is full
  // (on_send_blocked ran) or failed (the connection is closed).
  ssize_t send_some(std::string_view bytes);
  bool write_plain();
  bool write_websocket();
  bool write_tls();  // wss too: encrypts what fill_websocket_wire() framed
  // WebSocket: frames more of out_ (our Close once closing and all is framed) into ws_'s
  // wire buffer when it is empty; true when the wire buffer holds something to send.
  bool fill_websocket_wire();
  void on_send_blocked();
  uint32_t interest() const;  // epoll events wanted now
  void update_congestion();
  void fail();  // socket error or EOF: close now
  // Input bytes of a CONNECT not complete yet, counted in the process-wide budget.
  void account_unconnected_input();
  void log_unconnected_close() const;
  void on_internal_error(const std::string& what);

  size_t close_mark_ = 0;     // closing: out_ is sent up to here, the rest dropped
  uint64_t id_;
  Shard* shard_;
  mqtt::ServerProtocol protocol_;
  // Outbound only: the client-side protocol and who drives it.
  std::unique_ptr<mqtt::ClientProtocol> client_;
  OutboundRole* role_ = nullptr;
  void finish_connect();
  std::span<uint8_t> prepare_input(size_t n) {
    return client_ ? client_->prepare(n) : protocol_.prepare(n);
  }
  void commit_input(size_t n) {
    if (client_)
      client_->commit(n);
    else
      protocol_.commit(n);
  }
  size_t input_buffered() const { return client_ ? client_->buffered() : protocol_.buffered(); }
  size_t input_reserved() const { return client_ ? client_->reserved() : protocol_.reserved(); }
  void release_input() {
    if (client_)
      client_->release_buffer();
    else
      protocol_.release_buffer();
  }
  void process_outbound_input();
  std::string out_;
  size_t out_offset_ = 0;
  uint32_t read_chunk_ = 256;               // grows x2 per full read to 64 KiB; small while idle
  uint32_t unconnected_bytes_ = 0;          // this connection's share of the pre-CONNECT budget
  std::unique_ptr<WebSocketTransport> ws_;  // null on a TCP listener's connection
  std::unique_ptr<TlsTransport> tls_;  // null but on a TLS or wss listener's or TLS bridge's
};

template <class F>
void Connection::contained(F&& f) {
  if (auto what = run_contained(std::forward<F>(f))) on_internal_error(*what);
}

}  // namespace harbor::runtime
