// WebSocket framing (RFC 6455 §5) for MQTT over WebSocket, server side: a streaming decoder
// of the client's frames into the MQTT byte stream, and the encoder of the server's frames.
// Pure data: no sockets, no clocks, no threads, no logging.
//
// MQTT over WebSocket is a byte stream: "a single WebSocket data frame can contain multiple
// or partial MQTT Control Packets" [MQTT-6.0.0-2], [MQTT-6.0.0-3], so message and frame
// boundaries mean nothing and payload bytes are passed on as they arrive. Only binary data
// frames may carry it [MQTT-6.0.0-1].
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace harbor::wire {

enum class Opcode : uint8_t {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};

// Close status codes (RFC 6455 §7.4.1). A peer may send others (1012-1014, 3000-4999): they
// are reported as the same type holding the number.
enum class CloseCode : uint16_t {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  UnsupportedData = 1003,
  NoStatus = 1005,  // the peer's Close had no body; never put on the wire
  InvalidPayload = 1007,
  PolicyViolation = 1008,
  MessageTooBig = 1009,
  InternalError = 1011,
};

constexpr size_t kMaxClientFrameHeader = 14;  // 2 + 8 (64-bit length) + 4 (masking key)
constexpr size_t kMaxServerFrameHeader = 10;  // 2 + 8: a server does not mask [RFC 6455 §5.1]
constexpr size_t kMaxControlPayload = 125;    // RFC 6455 §5.5
// One largest MQTT packet: 1 + 4 length bytes + 268,435,455 [MQTT-2.2.3].
constexpr uint64_t kDefaultMaxFramePayload = 268'435'460;

enum class StreamState : uint8_t {
  Open,
  Closed,  // the client sent Close; its echo is in `reply`; the stream is over
  Failed,  // the client broke RFC 6455 or MQTT's use of it; our Close is in `reply`
};

// What one FrameDecoder::feed() call did.
struct FeedResult {
  StreamState state = StreamState::Open;
  // Input bytes used. All of them while Open; when the call ends the stream, the bytes up to
  // the end of the Close frame or the byte that broke a rule (the rest are to be discarded).
  size_t consumed = 0;
  // Closed: the client's status (NoStatus if its Close had none). Failed: the status sent.
  CloseCode code = CloseCode::NoStatus;
  // Failed: what was wrong, for the log (static text).
  std::string_view reason;
};

// A non-owning reference to a callable taking std::span<const uint8_t>; the callable must
// outlive the call it is passed to.
class PayloadSink {
 public:
  template <class F>
  requires std::invocable<F&, std::span<const uint8_t>> &&
      (!std::same_as<std::remove_cvref_t<F>, PayloadSink>)
          PayloadSink(F&& f)  // NOLINT(google-explicit-constructor): used like a function parameter
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, std::span<const uint8_t> bytes) {
          (*static_cast<std::remove_reference_t<F>*>(o))(bytes);
        }) {}

  void operator()(std::span<const uint8_t> bytes) const { call_(object_, bytes); }

 private:
  void* object_;
  void (*call_)(void*, std::span<const uint8_t>);
};

// Decodes the frames a client sends (RFC 6455 §5.2), split anywhere, into the MQTT byte
// stream. Belongs to one connection; called by its owner thread only.
//
// For each call, before it returns: the unmasked payload of binary frames and their
// continuations goes to the payload output as it arrives (even a frame's first bytes); a
// complete Ping appends a Pong with the same payload to `reply`; a Pong is ignored; a Close
// appends the Close echoing the client's status to `reply` and ends the stream as Closed; a
// broken rule appends a Close with its status to `reply` and ends the stream as Failed:
//   1002 ProtocolError: an unmasked frame [RFC 6455 §5.1], RSV bits set (no extension is ever
//        negotiated, §5.2), an unknown opcode, a control frame that is fragmented or longer
//        than 125 bytes (§5.5), a continuation with no message open or a new data frame
//        while one is (§5.4), a 64-bit length with its top bit set (§5.2), a Close body of
//        one byte or with a status no endpoint may send (§7.4).
//   1003 UnsupportedData: a text frame [MQTT-6.0.0-1].
//   1007 InvalidPayload: a Close reason that is not UTF-8 (§5.5.1, §8.1).
//   1009 MessageTooBig: a data frame longer than max_frame_payload.
// Non-minimal length encodings are accepted. Over a stream's life `reply` holds at most the
// bytes consumed plus one Close frame (a Pong is shorter than its Ping); one call grows it by at
// most its input's size plus kMaxBuffered plus one Close frame, as the Pong of a Ping buffered
// by earlier calls comes out of the call that completes it. Nothing is emitted outside feed();
// the caller sends `reply` and, when the stream has ended, closes the connection after it.
//
// The decoder itself holds at most a frame header and a control frame's payload
// (buffered() ≤ kMaxBuffered): data payload is never accumulated.
class FrameDecoder {
 public:
  static constexpr size_t kMaxBuffered = kMaxClientFrameHeader + kMaxControlPayload;

  // `max_frame_payload`: the longest data frame accepted (frame, not message: a fragmented
  // message is unbounded here, as the stream is; the MQTT decoder bounds packets).
  explicit FrameDecoder(uint64_t max_frame_payload = kDefaultMaxFramePayload);

  // Appends the payload bytes to `payload`. Once the stream has ended, returns the same
  // state and code with consumed = 0 and appends nothing.
  FeedResult feed(std::span<const uint8_t> input, std::string& payload, std::string& reply);
  FeedResult feed(std::string_view input, std::string& payload, std::string& reply);

  // The same, copying nothing: unmasks the payload in place in `input` and passes the
  // unmasked runs to `sink` (bytes of `input` outside payload runs are left as they were).
  FeedResult feed_in_place(std::span<uint8_t> input, PayloadSink sink, std::string& reply);

  StreamState state() const { return state_; }
  // Bytes the decoder holds: the part of a frame header read so far, or a control frame's
  // payload read so far.
  size_t buffered() const { return header_size_ + control_size_; }
  // True inside a fragmented binary message (its first frame had FIN clear).
  bool message_open() const { return message_open_; }

 private:
  enum class Phase : uint8_t { Header, Payload };

  template <class Emit>
  FeedResult run(const uint8_t* data, size_t size, Emit&& emit, std::string& reply);
  // Each returns true when the stream goes on; false after calling fail() or close_from_peer().
  bool check_first_byte(std::string& reply);
  bool check_second_byte(std::string& reply);
  bool check_length(std::string& reply);
  bool finish_control_frame(std::string& reply);
  void fail(CloseCode code, std::string_view reason, std::string& reply);
  FeedResult ended(size_t consumed) const;

  uint64_t max_frame_payload_;
  StreamState state_ = StreamState::Open;
  CloseCode code_ = CloseCode::NoStatus;
  std::string_view reason_;

  Phase phase_ = Phase::Header;
  std::array<uint8_t, kMaxClientFrameHeader> header_{};
  uint8_t header_size_ = 0;
  uint8_t header_needed_ = 2;

  // The frame being read.
  Opcode opcode_ = Opcode::Binary;
  uint64_t payload_left_ = 0;
  std::array<uint8_t, 4> mask_{};
  uint8_t mask_phase_ = 0;  // index into mask_ of the next payload byte
  bool message_open_ = false;

  std::array<uint8_t, kMaxControlPayload> control_{};
  uint8_t control_size_ = 0;
};

// The header of one unmasked frame with FIN set, as the server sends them: write `view()`
// then the payload (a writev of the two copies nothing).
struct FrameHeader {
  std::array<uint8_t, kMaxServerFrameHeader> bytes{};
  uint8_t size = 0;
  std::span<const uint8_t> view() const { return {bytes.data(), size}; }
  std::string_view text() const { return {reinterpret_cast<const char*>(bytes.data()), size}; }
};

// The shortest header for `payload_size` bytes (7-bit, 16-bit or 64-bit length). Any thread.
FrameHeader frame_header(Opcode opcode, uint64_t payload_size);
inline FrameHeader binary_frame_header(uint64_t payload_size) {
  return frame_header(Opcode::Binary, payload_size);
}

// Appends whole frames to `out`. Any thread.
void append_binary_frame(std::string& out, std::string_view payload);
// A Pong carries at most 125 bytes: a longer `payload` is cut to its first 125.
void append_pong(std::string& out, std::string_view payload);
// `code` NoStatus gives an empty body (1005 is never sent, RFC 6455 §7.4.1). `reason` is cut
// to the 123 bytes a control frame leaves it, at a UTF-8 character boundary.
void append_close(std::string& out, CloseCode code, std::string_view reason = {});

}  // namespace harbor::wire
