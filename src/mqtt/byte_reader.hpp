// Internal to src/mqtt: a bounds-checked reader over one packet body with a sticky first
// error, so that decoders read field after field and check once at decision points.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"

namespace harbor::mqtt::detail {

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool failed() const { return error_.has_value(); }
  const Error& error() const { return *error_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  // Records the first error only; later reads see an empty reader so loops end.
  void fail(ReasonCode rc, std::string message) {
    if (!error_) error_ = Error{rc, std::move(message)};
    p_ = end_;
  }

  uint8_t u8() {
    if (!need(1, "byte")) return 0;
    return *p_++;
  }
  uint16_t u16() {
    if (!need(2, "two-byte integer")) return 0;
    uint16_t v = static_cast<uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4, "four-byte integer")) return 0;
    uint32_t v = (uint32_t{p_[0]} << 24) | (uint32_t{p_[1]} << 16) | (uint32_t{p_[2]} << 8) |
                 uint32_t{p_[3]};
    p_ += 4;
    return v;
  }
  // Variable byte integer (section 1.5.5): at most 4 bytes, minimal encoding [MQTT-1.5.5-1].
  uint32_t varint() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (!need(1, "variable byte integer")) return 0;
      uint8_t b = *p_++;
      value |= uint32_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) {
          fail(ReasonCode::MalformedPacket, "variable byte integer not minimally encoded");
          return 0;
        }
        return value;
      }
    }
    fail(ReasonCode::MalformedPacket, "variable byte integer longer than 4 bytes");
    return 0;
  }
  // Binary data: two-byte length then bytes (section 1.5.6).
  std::string binary() {
    uint16_t n = u16();
    if (!need(n, "binary data")) return {};
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // UTF-8 string (section 1.5.4); ill-formed text is a Malformed Packet [MQTT-1.5.4-1].
  std::string utf8() {
    std::string s = binary();
    if (!failed() && !valid_utf8(s)) fail(ReasonCode::MalformedPacket, "invalid UTF-8 string");
    return s;
  }
  // The rest of the body, as-is (PUBLISH payload).
  std::string rest() {
    std::string s(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return s;
  }
  // A sub-reader over the next n bytes (property blocks); advances past them.
  std::optional<ByteReader> take(size_t n) {
    if (!need(n, "property block")) return std::nullopt;
    ByteReader sub(std::span<const uint8_t>(p_, n));
    p_ += n;
    return sub;
  }

 private:
  bool need(size_t n, const char* what) {
    if (remaining() >= n) return true;
    fail(ReasonCode::MalformedPacket, std::string("truncated ") + what);
    return false;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  std::optional<Error> error_;
};

}  // namespace harbor::mqtt::detail
