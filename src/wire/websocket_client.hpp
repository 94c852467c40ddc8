// Client side of MQTT over WebSocket (RFC 6455), for the client tools: the opening request,
// the check of the server's 101 answer, masked frames out and the server's unmasked frames
// in. Pure data: no sockets, no clocks, no threads, no logging, no randomness (the caller
// gives the key nonce and the masking keys). The server side is websocket_upgrade.hpp and
// websocket_frames.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "wire/websocket_frames.hpp"
#include "wire/websocket_upgrade.hpp"

namespace harbor::wire {

using MaskKey = std::array<uint8_t, 4>;

// The Sec-WebSocket-Key for a 16-byte nonce: its base64 (24 characters) [RFC 6455 §4.1].
std::string websocket_client_key(std::span<const uint8_t, 16> nonce);

// The opening handshake's GET request for `path` (origin-form, e.g. "/mqtt") on `host`
// (the Host field as given, "host:port"), offering the "mqtt" subprotocol [MQTT-6.0.0-3].
std::string websocket_upgrade_request(std::string_view host, std::string_view path,
                                      std::string_view key);

// Appends one frame with FIN set, masked with `mask` as a client must [RFC 6455 §5.3].
// Any thread.
void append_masked_frame(std::string& out, Opcode opcode, std::string_view payload,
                         const MaskKey& mask);

// Reads the server's answer to websocket_upgrade_request(), split anywhere: a head of at most
// max_head bytes ending in an empty line, whose status line is "HTTP/1.1 101" and which
// carries `Sec-WebSocket-Accept` equal to websocket_accept_key(key). One connection's owner
// thread only.
class UpgradeResponseReader {
 public:
  enum class Status : uint8_t { Incomplete, Accepted, Refused };
  struct Result {
    Status status = Status::Incomplete;
    // Accepted: the bytes of this call's input that belong to the head (the rest are frames).
    size_t consumed = 0;
    // Refused: why, e.g. "the server answered HTTP/1.1 404 Not Found".
    std::string reason;
  };

  explicit UpgradeResponseReader(std::string key, size_t max_head = kDefaultMaxRequestHead);

  // Once Accepted or Refused, later calls return the same status with consumed = 0.
  Result feed(std::string_view bytes);

 private:
  Result judge(size_t head_end);

  std::string expected_accept_;
  size_t max_head_;
  std::string head_;
  Status status_ = Status::Incomplete;
  std::string reason_;
};

// Decodes the frames a server sends (unmasked, RFC 6455 §5.1), split anywhere, into the MQTT
// byte stream. One connection's owner thread only. For each call, before it returns: binary
// and continuation payload goes to `payload` as it arrives; a complete Ping appends a masked
// Pong (masked with the call's `mask`) to `reply`; a Pong is ignored; a Close ends the stream
// as Closed (the caller closes the connection: the tools never hold one open to answer it);
// a masked frame, RSV bits, an unknown opcode, a text frame [MQTT-6.0.0-1] or a broken
// control frame ends it as Failed with a reason. Holds at most a header and one control
// frame's payload.
class ServerFrameReader {
 public:
  FeedResult feed(std::string_view input, std::string& payload, std::string& reply,
                  const MaskKey& mask);
  StreamState state() const { return state_; }

 private:
  FeedResult fail(size_t consumed, std::string_view reason);
  bool take_header(std::string_view input, size_t& pos, std::string_view& error);

  StreamState state_ = StreamState::Open;
  std::array<uint8_t, kMaxServerFrameHeader> header_{};
  uint8_t header_size_ = 0;
  Opcode opcode_ = Opcode::Binary;
  uint64_t payload_left_ = 0;
  bool in_payload_ = false;
  std::string control_;
};

}  // namespace harbor::wire
