// The frame decoder reads a header byte by byte into a 14-byte buffer, judging each field as
// soon as its bytes are there (so a bad frame fails at the same byte however the input is
// split), then passes data payload through, unmasked, as it arrives. Only a control frame's
// payload (≤ 125 bytes) is held until the frame is whole.
#include "wire/websocket_frames.hpp"

#include <algorithm>
#include <cstring>

namespace harbor::wire {
namespace {

bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

size_t extended_length_size(uint8_t length7) {
  if (length7 == 126) return 2;
  if (length7 == 127) return 8;
  return 0;
}

// XORs `n` bytes of `src` with the masking key into `dst` (which may be `src`), the key's
// byte `phase` applying to src[0] (RFC 6455 §5.3). Eight bytes at a time: the key repeated
// twice, rotated to the phase, is one 64-bit word; whole words leave the phase unchanged.
void unmask(const uint8_t* src, uint8_t* dst, size_t n, const std::array<uint8_t, 4>& key,
            uint8_t phase) {
  size_t i = 0;
  if (n >= 8) {
    std::array<uint8_t, 8> pattern;
    for (size_t j = 0; j < 8; ++j) pattern[j] = key[(phase + j) & 3];
    uint64_t word_mask;
    std::memcpy(&word_mask, pattern.data(), 8);
    for (; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, src + i, 8);
      word ^= word_mask;
      std::memcpy(dst + i, &word, 8);
    }
  }
  for (; i < n; ++i) dst[i] = src[i] ^ key[(phase + i) & 3];
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_utf8(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code_point;
    uint32_t smallest;
    if ((c & 0xE0) == 0xC0) {
      length = 2, code_point = c & 0x1F, smallest = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, code_point = c & 0x0F, smallest = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, code_point = c & 0x07, smallest = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (s[i + k] & 0x3F);
    }
    if (code_point < smallest || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

// Status codes an endpoint may put in a Close (RFC 6455 §7.4.1, §7.4.2 and the IANA
// registry): 1004-1006 and 1015 are reserved or never sent, below 1000 and 1016-2999 are
// unassigned, 3000-4999 belong to libraries and applications.
bool is_sendable_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

void append_frame(std::string& out, Opcode opcode, std::string_view payload) {
  const FrameHeader h = frame_header(opcode, payload.size());
  out.reserve(out.size() + h.size + payload.size());
  out += h.text();
  out += payload;
}

}  // namespace

FrameDecoder::FrameDecoder(uint64_t max_frame_payload) : max_frame_payload_(max_frame_payload) {}

FeedResult FrameDecoder::feed(std::string_view input, std::string& payload, std::string& reply) {
  return feed(std::span(reinterpret_cast<const uint8_t*>(input.data()), input.size()), payload,
              reply);
}

FeedResult FrameDecoder::feed(std::span<const uint8_t> input, std::string& payload,
                              std::string& reply) {
  return run(
      input.data(), input.size(),
      [&](const uint8_t* src, size_t n) {
        const size_t old = payload.size();
        payload.resize(old + n);
        unmask(src, reinterpret_cast<uint8_t*>(payload.data()) + old, n, mask_, mask_phase_);
      },
      reply);
}

FeedResult FrameDecoder::feed_in_place(std::span<uint8_t> input, PayloadSink sink,
                                       std::string& reply) {
  uint8_t* const base = input.data();
  return run(
      input.data(), input.size(),
      [&](const uint8_t* src, size_t n) {
        // `src` points into `input`, which is ours to write.
        uint8_t* p = base + (src - base);
        unmask(p, p, n, mask_, mask_phase_);
        sink(std::span<const uint8_t>(p, n));
      },
      reply);
}

template <class Emit>
FeedResult FrameDecoder::run(const uint8_t* data, size_t size, Emit&& emit, std::string& reply) {
  if (state_ != StreamState::Open) return ended(0);
  size_t pos = 0;
  while (pos < size) {
    if (phase_ == Phase::Header) {
      while (header_size_ < header_needed_ && pos < size) {
        header_[header_size_++] = data[pos++];
        if (header_size_ == 1 && !check_first_byte(reply)) return ended(pos);
        if (header_size_ == 2) {
          if (!check_second_byte(reply)) return ended(pos);
          header_needed_ = static_cast<uint8_t>(2 + extended_length_size(header_[1] & 0x7F) + 4);
        }
        if (header_size_ + 4 == header_needed_ && !check_length(reply)) return ended(pos);
      }
      if (header_size_ < header_needed_) break;
      std::memcpy(mask_.data(), header_.data() + header_needed_ - 4, 4);
      mask_phase_ = 0;
      header_size_ = 0;
      header_needed_ = 2;
      if (payload_left_ != 0) {
        phase_ = Phase::Payload;
      } else if (is_control(opcode_) && !finish_control_frame(reply)) {
        return ended(pos);
      }
      continue;
    }

    const size_t n = static_cast<size_t>(std::min<uint64_t>(payload_left_, size - pos));
    if (is_control(opcode_)) {
      unmask(data + pos, control_.data() + control_size_, n, mask_, mask_phase_);
      control_size_ = static_cast<uint8_t>(control_size_ + n);
    } else {
      emit(data + pos, n);
    }
    mask_phase_ = static_cast<uint8_t>((mask_phase_ + n) & 3);
    pos += n;
    payload_left_ -= n;
    if (payload_left_ == 0) {
      phase_ = Phase::Header;
      if (is_control(opcode_) && !finish_control_frame(reply)) return ended(pos);
    }
  }
  return FeedResult{.state = StreamState::Open, .consumed = size};
}

// Everything byte 0 decides is judged when it arrives, so a frame broken there stops the
// stream at that byte (FeedResult::consumed), not at the next one.
bool FrameDecoder::check_first_byte(std::string& reply) {
  const uint8_t b0 = header_[0];
  const bool fin = (b0 & 0x80) != 0;
  const uint8_t op = b0 & 0x0F;
  if ((b0 & 0x70) != 0) {
    fail(CloseCode::ProtocolError, "reserved bits set with no extension negotiated", reply);
    return false;
  }
  switch (static_cast<Opcode>(op)) {
    case Opcode::Continuation:
    case Opcode::Text:
    case Opcode::Binary:
    case Opcode::Close:
    case Opcode::Ping:
    case Opcode::Pong:
      break;
    default:
      fail(CloseCode::ProtocolError, "unknown opcode", reply);
      return false;
  }
  const auto opcode = static_cast<Opcode>(op);
  if (is_control(opcode)) {
    if (!fin) {
      fail(CloseCode::ProtocolError, "fragmented control frame", reply);
      return false;
    }
  } else {
    if (opcode == Opcode::Continuation && !message_open_) {
      fail(CloseCode::ProtocolError, "continuation frame with no message open", reply);
      return false;
    }
    if (opcode != Opcode::Continuation && message_open_) {
      fail(CloseCode::ProtocolError, "new data frame inside a fragmented message", reply);
      return false;
    }
    // "If any other type of data frame is received the recipient MUST close the Network
    // Connection" [MQTT-6.0.0-1].
    if (opcode == Opcode::Text) {
      fail(CloseCode::UnsupportedData, "text frame: MQTT is carried in binary frames", reply);
      return false;
    }
    // A binary frame opens a message unless FIN is set; a continuation with FIN ends it.
    message_open_ = !fin;
  }
  opcode_ = opcode;
  return true;
}

bool FrameDecoder::check_second_byte(std::string& reply) {
  const uint8_t b1 = header_[1];
  // "The server MUST close the connection upon receiving a frame that is not masked" (§5.1).
  if ((b1 & 0x80) == 0) {
    fail(CloseCode::ProtocolError, "unmasked client frame", reply);
    return false;
  }
  if (is_control(opcode_) && (b1 & 0x7F) > kMaxControlPayload) {
    fail(CloseCode::ProtocolError, "control frame over 125 bytes", reply);
    return false;
  }
  return true;
}

bool FrameDecoder::check_length(std::string& reply) {
  const uint8_t length7 = header_[1] & 0x7F;
  uint64_t length = length7;
  const size_t extra = extended_length_size(length7);
  if (extra != 0) {
    length = 0;
    for (size_t i = 0; i < extra; ++i) length = (length << 8) | header_[2 + i];
  }
  // "the most significant bit MUST be 0" (§5.2).
  if (extra == 8 && (length >> 63) != 0) {
    fail(CloseCode::ProtocolError, "64-bit length with the top bit set", reply);
    return false;
  }
  if (!is_control(opcode_) && length > max_frame_payload_) {
    fail(CloseCode::MessageTooBig, "data frame over the size limit", reply);
    return false;
  }
  payload_left_ = length;
  return true;
}

bool FrameDecoder::finish_control_frame(std::string& reply) {
  const std::span<const uint8_t> body(control_.data(), control_size_);
  control_size_ = 0;
  switch (opcode_) {
    case Opcode::Ping:
      // "the endpoint MUST send a Pong frame in response ... the same Application data" (§5.5.2).
      append_pong(reply, std::string_view(reinterpret_cast<const char*>(body.data()), body.size()));
      return true;
    case Opcode::Close: {
      CloseCode code = CloseCode::NoStatus;
      if (body.size() == 1) {
        fail(CloseCode::ProtocolError, "Close body of one byte", reply);
        return false;
      }
      if (body.size() >= 2) {
        const auto status = static_cast<uint16_t>((body[0] << 8) | body[1]);
        if (!is_sendable_close_code(status)) {
          fail(CloseCode::ProtocolError, "Close with a status no endpoint may send", reply);
          return false;
        }
        if (!is_utf8(body.subspan(2))) {
          fail(CloseCode::InvalidPayload, "Close reason is not UTF-8", reply);
          return false;
        }
        code = static_cast<CloseCode>(status);
      }
      // "the endpoint typically echos the status code it received" (§5.5.1).
      append_close(reply, code);
      state_ = StreamState::Closed;
      code_ = code;
      header_size_ = 0;
      return false;
    }
    default:  // Pong: unsolicited or not, nothing to do (§5.5.3).
      return true;
  }
}

void FrameDecoder::fail(CloseCode code, std::string_view reason, std::string& reply) {
  append_close(reply, code, reason);
  state_ = StreamState::Failed;
  code_ = code;
  reason_ = reason;
  header_size_ = 0;
  control_size_ = 0;
}

FeedResult FrameDecoder::ended(size_t consumed) const {
  return FeedResult{.state = state_, .consumed = consumed, .code = code_, .reason = reason_};
}

FrameHeader frame_header(Opcode opcode, uint64_t payload_size) {
  FrameHeader h;
  h.bytes[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(opcode));
  size_t extra = 0;
  if (payload_size < 126) {
    h.bytes[1] = static_cast<uint8_t>(payload_size);
  } else if (payload_size <= 0xFFFF) {
    h.bytes[1] = 126;
    extra = 2;
  } else {
    h.bytes[1] = 127;
    extra = 8;
  }
  for (size_t i = 0; i < extra; ++i) {
    h.bytes[2 + i] = static_cast<uint8_t>(payload_size >> (8 * (extra - 1 - i)));
  }
  h.size = static_cast<uint8_t>(2 + extra);
  return h;
}

void append_binary_frame(std::string& out, std::string_view payload) {
  append_frame(out, Opcode::Binary, payload);
}

void append_pong(std::string& out, std::string_view payload) {
  append_frame(out, Opcode::Pong, payload.substr(0, kMaxControlPayload));
}

void append_close(std::string& out, CloseCode code, std::string_view reason) {
  if (code == CloseCode::NoStatus) {
    append_frame(out, Opcode::Close, {});
    return;
  }
  constexpr size_t kMaxReason = kMaxControlPayload - 2;
  if (reason.size() > kMaxReason) {
    size_t cut = kMaxReason;
    while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  const auto status = static_cast<uint16_t>(code);
  std::array<char, kMaxControlPayload> body;
  body[0] = static_cast<char>(status >> 8);
  body[1] = static_cast<char>(status & 0xFF);
  if (!reason.empty()) std::memcpy(body.data() + 2, reason.data(), reason.size());
  append_frame(out, Opcode::Close, std::string_view(body.data(), 2 + reason.size()));
}

}  // namespace harbor::wire
