// Encoder and decoder for every MQTT control packet, 3.1, 3.1.1 and 5.0.
// Pure functions and a byte-buffering decoder: no I/O, no clocks, no threads.
// Any thread may call these; a Decoder belongs to one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "mqtt/packets.hpp"

namespace harbor::mqtt {

// A protocol violation. `reason` is what an MQTT 5 peer is told in DISCONNECT
// (MalformedPacket, ProtocolError, PacketTooLarge, UnsupportedProtocolVersion, ...).
struct Error {
  ReasonCode reason = ReasonCode::MalformedPacket;
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ReasonCode rc, std::string message) {
  return tl::unexpected<Error>(Error{rc, std::move(message)});
}

constexpr uint32_t kMaxRemainingLength = 268'435'455;  // 4-byte variable byte integer

// Variable byte integer helpers (section 1.5.5).
size_t varint_size(uint32_t value);
void put_varint(std::string& out, uint32_t value);

// Appends the encoding of `p` for protocol version `v` to `out`.
// 3.1.1: reason codes map to return codes, properties are dropped.
// A Connect is encoded in its own `version` with the protocol name that version requires
// ("MQIsdp" for 3.1, "MQTT" otherwise); `v` and `protocol_name` are not consulted.
// 5.0 short forms are used where allowed (PUBACK family, DISCONNECT, AUTH). An Auth has no
// encoding before 5.0: nothing is appended. The caller keeps packets within the 256 MB
// limit of the remaining length.
void encode(const Packet& p, Version v, std::string& out);
std::string encode(const Packet& p, Version v);

// Appends a 5.0 property block without its length prefix.
void encode_properties(const Properties& props, std::string& out);
// Size of that block.
size_t properties_size(const Properties& props);

// Limits a receiver sets beyond the spec's own.
struct DecodeLimits {
  // Most User Properties in one packet, all its property blocks together (mqtt.property_size).
  // One more is refused with ImplementationSpecificError before it is stored.
  uint32_t max_user_properties = 0xFFFFFFFF;
};

// Decodes one packet from its fixed-header first byte and its body (the bytes after the
// remaining length). CONNECT carries its own version; every other type uses `v`.
// Checks everything the spec checks at packet level: reserved flags, lengths, UTF-8,
// property ids allowed for the packet type and duplicates, packet id 0 for QoS > 0,
// wildcards in PUBLISH topics, QoS 3, empty SUBSCRIBE/UNSUBSCRIBE. A 3.1 packet is checked
// by 3.1's rules: no reserved fixed-header flags, lenient CONNECT flags (decode.cpp).
Result<Packet> decode(uint8_t first_byte, std::span<const uint8_t> body, Version v,
                      const DecodeLimits& limits = {});

// Fits a 5.0 CONNACK into the client's Maximum Packet Size [MQTT-3.1.2-24] by dropping, in
// this order, what may go: properties sent with the value their absence means (Retain,
// Wildcard, Subscription Identifier and Shared Subscription Available = 1), Reason String
// [MQTT-3.2.2-19], User Properties from the last [MQTT-3.2.2-20], Response Information
// and Topic Alias Maximum (absent = the client sends no aliases). Everything else changes
// what the client may do and stays. Returns false when the CONNACK still does not fit: it
// must not be sent, and the connection is closed.
bool fit_connack(Connack& c, uint32_t max_packet_size);

// Buffers a byte stream split anywhere and yields whole packets.
// After an error the decoder stays failed: every later next() returns the same error.
class Decoder {
 public:
  explicit Decoder(uint32_t max_packet_size = kMaxRemainingLength + 5);

  // Version for every packet but CONNECT. Decoding a CONNECT adopts its version.
  void set_version(Version v) { version_ = v; }
  Version version() const { return version_; }
  // Largest whole packet accepted (fixed header included); larger → PacketTooLarge.
  void set_max_packet_size(uint32_t n) { max_packet_size_ = n; }
  // See DecodeLimits.
  void set_max_user_properties(uint32_t n) { limits_.max_user_properties = n; }

  // Zero-copy feeding: write up to `span.size()` bytes into prepare(min), then commit(n).
  std::span<uint8_t> prepare(size_t min_bytes);
  void commit(size_t n);
  // Copying convenience.
  void feed(std::span<const uint8_t> bytes);
  void feed(std::string_view bytes);

  // The next whole packet; std::nullopt when more bytes are needed.
  Result<std::optional<Packet>> next();

  // Bytes buffered but not yet returned as packets.
  size_t buffered() const { return end_ - begin_; }
  // Bytes allocated for the buffer (the connection's input footprint).
  size_t reserved() const { return buf_.size(); }
  // Frees the buffer when nothing is buffered; the next prepare() allocates again.
  void release_if_empty();
  // The first byte of what is buffered (the fixed header's type and flags), if any.
  std::optional<uint8_t> first_byte() const {
    if (end_ == begin_) return std::nullopt;
    return buf_[begin_];
  }

 private:
  std::vector<uint8_t> buf_;
  uint32_t begin_ = 0;  // buffer offsets: a buffer never reaches 4 GiB (packets are < 256 MiB)
  uint32_t end_ = 0;
  Version version_ = Version::v311;
  uint32_t max_packet_size_;
  DecodeLimits limits_;
  std::unique_ptr<Error> failed_;  // allocated on the first error (most decoders never fail)
};

}  // namespace harbor::mqtt
