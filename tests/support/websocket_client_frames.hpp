// A WebSocket client's frame encoder (RFC 6455 §5.2, §5.3), the other side of
// wire::FrameDecoder, for the wire unit tests and fuzz_websocket_frames. It can also break the
// rules on purpose (unmasked, RSV bits, any opcode, a declared length other than the
// payload's, non-minimal length forms). No GoogleTest here; pure data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wire/websocket_frames.hpp"

namespace harbor::wire::support {

struct ClientFrameSpec {
  uint8_t opcode = static_cast<uint8_t>(Opcode::Binary);  // any 4-bit value
  bool fin = true;
  uint8_t rsv = 0;  // the three RSV bits, RSV1 the highest
  bool masked = true;
  std::array<uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d};
  // 0, 2 or 8 extended length bytes; empty: the shortest form.
  std::optional<int> length_bytes;
  // The length written in the header; empty: the payload's.
  std::optional<uint64_t> declared_length;
};

constexpr uint8_t op(Opcode o) { return static_cast<uint8_t>(o); }

inline std::string client_frame(std::string_view payload, const ClientFrameSpec& spec = {}) {
  const uint64_t length = spec.declared_length.value_or(payload.size());
  int extra = 0;
  if (spec.length_bytes) {
    extra = *spec.length_bytes;
  } else if (length > 0xFFFF) {
    extra = 8;
  } else if (length > 125) {
    extra = 2;
  }
  std::string out;
  out += static_cast<char>((spec.fin ? 0x80 : 0) | ((spec.rsv & 7) << 4) | (spec.opcode & 0x0F));
  const uint8_t mask_bit = spec.masked ? 0x80 : 0;
  if (extra == 0) {
    out += static_cast<char>(mask_bit | (length & 0x7F));
  } else {
    out += static_cast<char>(mask_bit | (extra == 2 ? 126 : 127));
    for (int i = extra - 1; i >= 0; --i) out += static_cast<char>((length >> (8 * i)) & 0xFF);
  }
  if (spec.masked) {
    for (uint8_t k : spec.key) out += static_cast<char>(k);
  }
  for (size_t i = 0; i < payload.size(); ++i) {
    const auto k = spec.masked ? spec.key[i % 4] : uint8_t{0};
    out += static_cast<char>(static_cast<uint8_t>(payload[i]) ^ k);
  }
  return out;
}

// A Close body: the status in network byte order, then the reason as given.
inline std::string close_body(uint16_t status, std::string_view reason = {}) {
  std::string body;
  body += static_cast<char>(status >> 8);
  body += static_cast<char>(status & 0xFF);
  body += reason;
  return body;
}

inline std::string client_close(uint16_t status, std::string_view reason = {}) {
  return client_frame(close_body(status, reason), {.opcode = op(Opcode::Close)});
}

}  // namespace harbor::wire::support
