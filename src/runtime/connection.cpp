#include "runtime/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "broker/session.hpp"
#include "runtime/log.hpp"
#include "runtime/log_rate_limit.hpp"
#include "runtime/shard.hpp"
#include "runtime/socket.hpp"

namespace harbor::runtime {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 8;  // fairness between connections of one shard
constexpr size_t kCarefulChunk = 8 * 1024;

}  // namespace

Connection::Connection(int fd, uint64_t id, Shard* shard, mqtt::ServerProtocol::Limits limits,
                       std::string remote_address, const std::string* websocket_path,
                       std::shared_ptr<const TlsListener> tls)
    : fd_(fd), id_(id), shard_(shard), protocol_(limits) {
  remote = remote_address.empty() ? peer_address(fd) : std::move(remote_address);
  if (websocket_path != nullptr) ws_ = std::make_unique<WebSocketTransport>(*websocket_path);
  if (tls) {
    tls_ = std::make_unique<TlsTransport>(tls->context);
    cn_as_username_ = tls->cn_as_username;
  }
}

Connection::Connection(int fd, uint64_t id, Shard* shard, OutboundRole* role, mqtt::Version v,
                       uint32_t max_packet_size, std::string remote_address,
                       std::shared_ptr<const wire::TlsContext> tls)
    : connecting_(true),
      fd_(fd),
      id_(id),
      shard_(shard),
      protocol_(mqtt::ServerProtocol::Limits{}),
      client_(std::make_unique<mqtt::ClientProtocol>(v, max_packet_size)),
      role_(role) {
  remote = std::move(remote_address);
  outbound = true;
  epollout = true;  // registered for EPOLLOUT: the connect's completion
  if (tls) tls_ = std::make_unique<TlsTransport>(std::move(tls));
}

void Connection::finish_connect() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == EINPROGRESS || err == EALREADY) return;  // not yet
  if (err != 0) {
    set_close_reason(std::string("connect failed: ") + std::strerror(err));
    fail();
    return;
  }
  connecting_ = false;
  epollout = false;
  shard_->loop().modify(fd_, interest(), this);
  role_->on_socket_connected(*this);
  mark_dirty();
}

void Connection::process_outbound_input() {
  while (!closing && !closed && !paused_) {
    auto next = client_->next();
    if (!next) {
      shard_->broker().on_protocol_error(this, next.error());
      return;
    }
    if (!next->has_value()) break;
    if (role_->on_packet(*this, **next) == broker::Flow::Pause) pause_reading();
  }
  // TLS: a failure or the server's close_notify, after the packets before it.
  if (tls_ && tls_->ended() && !closing && !closed && !paused_) end_tls_stream();
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::attach(Shard* shard) { shard_ = shard; }

void Connection::mark_dirty() {
  if (!dirty && !closed) {
    // Output starts waiting: the clock of write progress starts now (a receiver idle for an
    // hour is not stuck because its first burst has not been written yet).
    if (out_offset_ == 0 && out_.size() > 0 && !epollout) last_write_ms = shard_->now_steady_ms();
    dirty = true;
    shard_->mark_dirty(this);
  }
}

void Connection::close_after_flush() {
  if (closing || closed) return;
  closing = true;
  // What the broker appends after this (e.g. deliveries to a session not yet detached) is
  // never sent: the last packet is the one that closed it (a DISCONNECT) [MQTT-3.14.4-1].
  close_mark_ = out_.size();
  mark_dirty();
}

void Connection::on_io(uint32_t events) {
  if (closed || moving) return;
  contained([&] {
    if (connecting_) {
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) finish_connect();
      return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      read_socket();
      if (closed || moving) return;
    }
    if ((events & EPOLLOUT) && !closed) flush();
  });
}

void Connection::on_internal_error(const std::string& what) {
  const std::string& id = session != nullptr ? session->client_id() : detached_client_id();
  log_limited(LogLevel::Error, "internal error on a connection",
              "internal error handling the connection from " + remote +
                  (id.empty() ? std::string() : " (client \"" + id + "\")") + ": " + what +
                  "; that connection is closed, the broker goes on");
  set_close_reason("internal error: " + what);
  moving = false;
  if (auto again = run_contained([this] { fail(); })) {
    // Closing it failed too: it is at least out of epoll and marked closed.
    closed = true;
    log_limited(LogLevel::Error, "internal error on a connection",
                "internal error closing the connection from " + remote + ": " + *again);
  }
}

void Connection::read_socket() {
  // While a receiver of this shard is congested, read in small steps so a resumed
  // publisher cannot push a burst far past what the receivers drain.
  const bool careful = shard_->congested();
  const int reads = careful ? 1 : kMaxReadsPerEvent;
  for (int i = 0; i < reads && !paused_ && !closing && !closed && !moving; ++i) {
    // Each read is decoded before the next, so the input buffer holds at most one chunk and
    // one partial packet. Idle connections read small chunks; busy ones grow to 64 KiB.
    size_t chunk = careful ? std::min<size_t>(read_chunk_, kCarefulChunk) : read_chunk_;
    auto span = prepare_input(chunk);
    if (span.size() > chunk) span = span.first(chunk);
    ssize_t n = ::read(fd_, span.data(), span.size());
    if (n > 0) {
      if (tls_)  // on wss, it hands the plaintext to take_websocket_input
        take_tls_input(span.first(static_cast<size_t>(n)));
      else if (ws_)
        take_websocket_input(span.first(static_cast<size_t>(n)));
      else
        commit_input(static_cast<size_t>(n));
      last_rx_ms = shard_->now_steady_ms();
      const bool short_read = static_cast<size_t>(n) < span.size();
      if (!short_read && read_chunk_ < kReadChunk) read_chunk_ *= 2;
      if (!connected && !client_) account_unconnected_input();
      if (closing || closed) return;
      process_input();
      if (short_read) break;
      continue;
    }
    if (n == 0) {
      set_close_reason("socket closed by peer");
      peer_closed_ = true;
      if (!moving) fail();
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      set_close_reason(std::string("socket error: ") + std::strerror(errno));
      if (!moving) fail();
    }
    return;
  }
}

namespace {
// Bytes all connections that have not completed CONNECT may buffer together (partial
// packets before any authentication). Over it, a connection that holds more than
// kSmallUnconnected is closed when it grows; a small CONNECT still passes, so whoever fills
// the budget with large partial packets cannot lock ordinary clients out.
constexpr int64_t kUnconnectedBudget = 16 * 1024 * 1024;
constexpr size_t kSmallUnconnected = 64 * 1024;
std::atomic<int64_t> g_unconnected_bytes{0};
}  // namespace

void Connection::take_websocket_input(std::span<uint8_t> bytes) {
  WebSocketTransport::Result r = ws_->take(bytes);
  if (r.payload != 0) commit_input(r.payload);
  if (ws_->wire_pending() != 0) mark_dirty();  // the 101, a refusal, a Pong, a Close
  if (r.refused) {
    set_close_reason(std::move(r.why));
    close_after_flush();
  }
  // An ended stream is closed once the MQTT bytes before the client's Close are handled
  // (a DISCONNECT right before it must still count): see process_input().
}

void Connection::end_websocket_stream() {
  set_close_reason(ws_->end_reason());
  close_after_flush();
  // Our Close is queued: MQTT output not framed yet is not sent after it (RFC 6455 §5.5.1).
  close_mark_ = out_offset_;
}

void Connection::take_tls_input(std::span<uint8_t> bytes) {
  // The ciphertext sits in the decoder's buffer past what it holds, uncommitted: the session
  // has consumed all of it when take() returns, and feed() copies the plaintext over it.
  const bool was_done = tls_->handshake_done();
  const std::string_view plain = tls_->take(bytes);
  if (!was_done && tls_->handshake_done() && !client_) {
    // Only a certificate that verified names anyone: an unverified one is what the client
    // claims, so it gives no CN, subject or user name.
    auto peer = tls_->peer_certificate();
    const bool verified = peer && peer->verified;
    if (verified)
      peer_certificate =
          std::make_unique<PeerCertificate>(PeerCertificate{peer->subject_cn, peer->subject});
    // Without a verified certificate the CONNECT's user name is dropped all the same, so
    // that no client picks the name the certificate would give.
    if (cn_as_username_)
      certificate_username =
          std::make_unique<std::string>(verified ? peer->subject_cn : std::string());
  }
  if (!plain.empty() && ws_) {
    // wss: the plaintext is WebSocket input, copied over the ciphertext as feed() would,
    // and unframed there.
    const std::span<uint8_t> room = protocol_.prepare(plain.size()).first(plain.size());
    std::memcpy(room.data(), plain.data(), plain.size());
    take_websocket_input(room);
  } else if (!plain.empty() && client_) {
    client_->feed(plain);
  } else if (!plain.empty()) {
    protocol_.feed(plain);
  }
  if (tls_->wire_pending() != 0) mark_dirty();  // a handshake flight, an alert, close_notify
  // A failure or the client's close_notify ends the stream once the MQTT bytes before it are
  // handled (a DISCONNECT right before close_notify must still count): see process_input().
}

void Connection::end_tls_stream() {
  set_close_reason(tls_->end_reason());
  close_after_flush();
  // Nothing follows a close_notify or an alert: MQTT output not encrypted yet is dropped.
  close_mark_ = out_offset_;
}

void Connection::account_unconnected_input() {
  // A WebSocket upgrade head still being read counts as input before CONNECT too.
  const size_t now = connected ? 0 : protocol_.buffered() + (ws_ ? ws_->buffered_head() : 0);
  const int64_t delta = static_cast<int64_t>(now) - static_cast<int64_t>(unconnected_bytes_);
  unconnected_bytes_ = static_cast<uint32_t>(now);  // below max_packet_size plus one head
  if (delta == 0) return;
  const int64_t total = g_unconnected_bytes.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0 && total > kUnconnectedBudget && now > kSmallUnconnected && !connected) {
    set_close_reason("input before CONNECT above the " + std::to_string(kUnconnectedBudget >> 20) +
                     " MiB shared by all unconnected clients");
    fail();
  }
}

uint32_t Connection::interest() const {
  uint32_t ev = paused_ ? 0u : static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP);
  if (epollout) ev |= EPOLLOUT;
  return ev;
}

void Connection::pause_reading() {
  if (paused_ || closed) return;
  paused_ = true;
  read_paused = true;
  shard_->loop().modify(fd_, interest(), this);
  shard_->schedule_resume(this);
}

void Connection::resume_reading() {
  if (!paused_ || closed || moving) return;
  paused_ = false;
  read_paused = false;
  last_rx_ms = shard_->now_steady_ms();  // not read on purpose: keep alive starts again
  shard_->loop().modify(fd_, interest(), this);
  process_input();  // packets already buffered when the pause began
  if (!paused_ && !closed && !closing && !moving) read_socket();
}

void Connection::process_input() {
  if (client_) {
    process_outbound_input();
    return;
  }
  while (!closing && !closed && !moving && !paused_ && !input_held) {
    auto next = protocol_.next();
    if (!next) {
      shard_->broker().on_protocol_error(this, next.error());
      return;
    }
    if (!next->has_value()) break;
    mqtt::Packet& packet = **next;
    if (auto* c = std::get_if<mqtt::Connect>(&packet)) {
      shard_->broker().on_connect(this, std::move(*c));
      if (connected) account_unconnected_input();  // its bytes leave the pre-CONNECT budget
      // Most clients then go quiet: free the read buffer now rather than at the idle trim,
      // so the next connection's first read reuses this chunk instead of leaving a hole
      // between long-lived objects (heap fragmentation is most of an idle client's cost).
      if (protocol_.buffered() == 0) protocol_.release_buffer();
    } else if (shard_->broker().on_packet(this, std::move(packet)) == broker::Flow::Pause) {
      // A receiver of that PUBLISH is full: what follows stays buffered (and in the socket)
      // until it has drained.
      pause_reading();
    }
  }
  if (ws_ && ws_->ended() && !closing && !closed && !moving && !paused_) end_websocket_stream();
  // TLS likewise: a failure or the client's close_notify, after the packets before it.
  if (tls_ && tls_->ended() && !closing && !closed && !moving && !paused_) end_tls_stream();
}

uint16_t Connection::local_port() const { return fd_ >= 0 ? runtime::local_port(fd_) : 0; }

void Connection::resume_held_input() {
  if (closed || closing || moving || input_held) return;
  process_input();
  if (!paused_ && !closed && !closing && !moving) read_socket();
}

void Connection::trim_buffers() {
  if (closed || moving) return;
  size_t released = input_reserved();
  release_input();
  released -= input_reserved();
  if (input_reserved() == 0) read_chunk_ = 256;
  if (out_offset_ == out_.size() && out_.capacity() > 15) {
    released += out_.capacity();
    std::string().swap(out_);
    out_offset_ = 0;
  }
  if (ws_) released += ws_->trim();
  if (tls_) released += tls_->trim();
  if (released != 0) shard_->note_released(released);
}

void Connection::update_congestion() {
  bool now = pending_bytes() > kCongestionLowWater;
  if (now != congested_) {
    congested_ = now;
    shard_->set_congested(this, now);
  }
}

void Connection::on_send_blocked() {
  // Give back the sent prefix once it dominates, or a receiver that never fully drains would
  // make the buffer grow without bound.
  if (out_offset_ > 64 * 1024 && out_offset_ * 2 > out_.size()) {
    out_.erase(0, out_offset_);
    if (closing) close_mark_ -= out_offset_;
    out_offset_ = 0;
  }
  update_congestion();
  if (wants_writable && !closing && pending_bytes() <= kCongestionLowWater) {
    shard_->broker().on_link_writable(this);
  }
  if (!epollout) {
    epollout = true;
    shard_->loop().modify(fd_, interest(), this);
  }
}

ssize_t Connection::send_some(std::string_view bytes) {
  for (;;) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      last_write_ms = shard_->now_steady_ms();
      return n;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      on_send_blocked();
      return -1;
    }
    set_close_reason(std::string("socket error on send: ") + std::strerror(errno));
    fail();
    return -1;
  }
}

bool Connection::write_plain() {
  while (out_offset_ < send_end()) {
    const ssize_t n = send_some({out_.data() + out_offset_, send_end() - out_offset_});
    if (n < 0) return false;
    out_offset_ += static_cast<size_t>(n);
  }
  return true;
}

bool Connection::fill_websocket_wire() {
  // out_ holds plain MQTT bytes; out_offset_ marks how far they have been framed into the
  // transport's wire buffer. The next frame is cut only once the previous ones are written
  // (or, on wss, encrypted), so the framed copy holds at most one frame (kMaxFramePayload)
  // besides control frames.
  WebSocketTransport& ws = *ws_;
  const size_t end = send_end();
  while (ws.wire_pending() == 0 && out_offset_ < end) {
    const size_t n = std::min(end - out_offset_, WebSocketTransport::kMaxFramePayload);
    // Before the upgrade there is no frame to put MQTT in (nothing is written then).
    if (ws.upgraded() && !ws.close_queued()) ws.frame({out_.data() + out_offset_, n});
    out_offset_ += n;
  }
  if (ws.wire_pending() == 0 && closing && ws.upgraded() && !ws.close_queued()) ws.close_normally();
  return ws.wire_pending() != 0;
}

bool Connection::write_websocket() {
  WebSocketTransport& ws = *ws_;
  for (;;) {
    if (!fill_websocket_wire()) return true;
    const ssize_t n = send_some(ws.wire());
    if (n < 0) return false;
    ws.consume(static_cast<size_t>(n));
  }
}

bool Connection::write_tls() {
  // The plaintext is out_ from out_offset_ on, or on wss the WebSocket wire buffer (frames
  // cut from out_, the 101, control frames). More is encrypted, a record's worth at a time,
  // only while less than kMaxPendingCipher waits for the socket.
  TlsTransport& tls = *tls_;
  for (;;) {
    bool drained = false;
    while (tls.wire_pending() < TlsTransport::kMaxPendingCipher) {
      std::string_view plain;
      if (ws_ && fill_websocket_wire())
        plain = ws_->wire();
      else if (!ws_ && out_offset_ < send_end())
        plain = std::string_view(out_).substr(out_offset_, send_end() - out_offset_);
      if (plain.empty()) {
        drained = true;
        break;
      }
      const size_t n = std::min(plain.size(), TlsTransport::kMaxChunk);
      if (!tls.encrypt(plain.substr(0, n)) && !tls.ended() && !tls.close_sent()) {
        // Only before the handshake completed, past what the session may hold: a server says
        // nothing before CONNECT (nor before the upgrade on wss), so this is a bug rather
        // than a client's doing.
        set_close_reason("TLS: output before the handshake completed");
        fail();
        return false;
      }
      // After a close or failure nothing more can be sent: dropped.
      if (ws_)
        ws_->consume(n);
      else
        out_offset_ += n;
    }
    if (closing && drained && !tls.close_sent()) tls.close();
    if (tls.wire_pending() == 0) return true;
    const ssize_t n = send_some(tls.wire());
    if (n < 0) return false;
    tls.consume(static_cast<size_t>(n));
  }
}

void Connection::flush() {
  const bool written = tls_ ? write_tls() : ws_ ? write_websocket() : write_plain();
  if (!written) return;
  // Everything written: reuse the buffer's capacity, but give back a huge one.
  last_write_ms = shard_->now_steady_ms();
  if (wants_writable && !closing) {
    shard_->broker().on_link_writable(this);  // may write more: flushed again this iteration
    if (out_offset_ < out_.size()) return;
  }
  out_.clear();
  out_offset_ = 0;
  update_congestion();
  if (out_.capacity() > 4 * 1024 * 1024) out_.shrink_to_fit();
  if (epollout) {
    epollout = false;
    shard_->loop().modify(fd_, interest(), this);
  }
  if (closing) {
    graceful_ = true;  // everything we had to say is written: the peer gets to read it
    fail();
  }
}

void Connection::fail() {
  if (closed) return;
  closed = true;
  if (unconnected_bytes_ != 0) {
    g_unconnected_bytes.fetch_sub(static_cast<int64_t>(unconnected_bytes_),
                                  std::memory_order_relaxed);
    unconnected_bytes_ = 0;
  }
  if (congested_) {
    congested_ = false;
    shard_->set_congested(this, false);
  }
  if (graceful_) {
    shard_->loop().remove(fd_);
    shard_->linger(fd_);  // the shard closes it once the peer has closed too (lingerer.hpp)
    fd_ = -1;
  } else if (!peer_closed_) {
    shard_->loop().remove(fd_);
    ::shutdown(fd_, SHUT_RDWR);
  }
  // Closed by the peer: nothing to tell it. The destructor's close(), at the end of this
  // loop iteration (Shard::after_io), takes the socket out of epoll too (never dup'ed).
  if (!connected && !client_) log_unconnected_close();
  // Its buffers are freed with it (Shard::after_io): they count toward the next heap trim,
  // as an idle connection's do (a drained subscriber leaves megabytes of output buffer).
  shard_->note_released(out_.capacity() + input_reserved() + (ws_ ? ws_->wire_capacity() : 0) +
                        (tls_ ? tls_->wire_capacity() : 0));
  shard_->connection_closed(this);
  if (role_ != nullptr) role_->on_closed(*this);
}

void Connection::log_unconnected_close() const {
  std::string why = close_reason();
  if (why.empty()) why = closing ? "closed by the server" : "socket closed by peer";
  if (ws_ && !ws_->upgraded()) why += " (WebSocket upgrade not complete)";
  if (tls_ && !tls_->handshake_done() && !close_reason().starts_with("TLS "))
    why += " (TLS handshake not complete)";
  std::string text = "connection from " + remote + " closed before CONNECT was accepted: " + why;
  // A TCP probe that connects and goes away is routine; a bad CONNECT is worth seeing, but a
  // client retrying in a loop must not flood the log.
  const bool routine = close_reason().empty() || close_reason().starts_with("socket ");
  if (routine)
    log_limited(LogLevel::Debug, "unconnected close", text);
  else
    log_limited(LogLevel::Info, "refused before CONNECT", text);
}

}  // namespace harbor::runtime
