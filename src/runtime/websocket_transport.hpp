// The WebSocket side of a client connection accepted on listeners.ws (MQTT §6, RFC 6455):
// the upgrade handshake, then the client's frames unmasked into the MQTT byte stream, and the
// broker's plain MQTT output wrapped in binary frames. Owned by its Connection, called by
// that connection's owner thread only; no I/O of its own (the Connection reads and writes).
//
// Input, for each take() call (bytes just read into the protocol decoder's buffer):
//   - Upgrading: the bytes go to the UpgradeParser (it copies at most kMaxHead); nothing is
//     committed to MQTT until the head is complete. Done: the 101 response is queued on the
//     wire, the bytes after the head are handled as frames. Refused: the HTTP error response
//     is queued and Result::refused is set (the caller closes after flushing).
//   - Open: frames are unmasked in place and their payload runs moved to the front of the
//     buffer; Result::payload bytes are MQTT input to commit. A Ping queues a Pong; a Close
//     queues its echo, a broken rule our Close, and the stream ends (ended() is true).
// Output: frame() copies MQTT bytes behind a binary frame header into the wire buffer; the
// caller sends wire() and then consume()s. Nothing is queued outside these calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "wire/websocket_frames.hpp"
#include "wire/websocket_upgrade.hpp"

namespace harbor::runtime {

class WebSocketTransport {
 public:
  // The head of an upgrade request may be this long (its empty line included).
  static constexpr size_t kMaxHead = wire::kDefaultMaxRequestHead;
  // MQTT output is framed in frames of at most this much, one after the other once the
  // previous one is on the wire, so the framed copy stays this small.
  static constexpr size_t kMaxFramePayload = 64 * 1024;

  explicit WebSocketTransport(std::string path);

  enum class Phase : uint8_t { Upgrading, Open, Ended };

  struct Result {
    size_t payload = 0;    // MQTT bytes now at the front of the buffer, to commit
    bool refused = false;  // the upgrade was refused: its response is queued
    std::string why;       // refused, or the stream ended: for the close reason
  };

  // `bytes`: what was just read, in a buffer this call may rewrite.
  Result take(std::span<uint8_t> bytes);

  Phase phase() const { return phase_; }
  bool upgraded() const { return phase_ != Phase::Upgrading; }
  // The stream ended (the client's Close, or a broken rule): our Close is queued.
  bool ended() const { return phase_ == Phase::Ended; }
  // The close reason once ended().
  const std::string& end_reason() const { return end_reason_; }
  // Bytes of an incomplete upgrade head held (for the pre-CONNECT input budget).
  size_t buffered_head() const { return parser_ ? parser_->buffered() : 0; }

  // Appends `mqtt` as one binary frame to the wire buffer.
  void frame(std::string_view mqtt);
  // Appends a Close with status 1000 (the server ends the connection), once; never before
  // the upgrade or after a Close was queued.
  void close_normally();
  bool close_queued() const { return close_queued_; }

  std::string_view wire() const { return std::string_view(wire_).substr(wire_offset_); }
  size_t wire_pending() const { return wire_.size() - wire_offset_; }
  void consume(size_t n);
  size_t wire_capacity() const { return wire_.capacity(); }
  // Gives back the wire buffer's memory while it is empty (an idle connection).
  size_t trim();

 private:
  void end(std::string why);

  Phase phase_ = Phase::Upgrading;
  // Reset once the upgrade is answered: its buffers are not kept for the connection's life.
  std::optional<wire::UpgradeParser> parser_;
  wire::FrameDecoder decoder_;
  std::string wire_;  // bytes for the socket: HTTP response, frames
  size_t wire_offset_ = 0;
  bool close_queued_ = false;
  std::string end_reason_;
};

}  // namespace harbor::runtime
