// Stream framing: buffers bytes split anywhere and hands whole packets to decode().
#include <algorithm>
#include <cstring>

#include "mqtt/codec.hpp"

namespace harbor::mqtt {

namespace {

constexpr size_t kInitialBuffer = 256;  // callers ask for what they need; idle connections stay small

}  // namespace

Decoder::Decoder(uint32_t max_packet_size) : max_packet_size_(max_packet_size) {}

std::span<uint8_t> Decoder::prepare(size_t min_bytes) {
  if (buf_.size() - end_ < min_bytes) {
    // Compacting only when the tail is too short keeps the copy rare: in steady state the
    // buffer empties after each read and begin_/end_ go back to 0 for free (see next()).
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min_bytes)
      buf_.resize(std::max({buf_.size() * 2, end_ + min_bytes, kInitialBuffer}));
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void Decoder::commit(size_t n) { end_ = static_cast<uint32_t>(std::min(end_ + n, buf_.size())); }

void Decoder::release_if_empty() {
  if (begin_ != end_) return;
  std::vector<uint8_t>().swap(buf_);
  begin_ = end_ = 0;
}

void Decoder::feed(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  auto room = prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void Decoder::feed(std::string_view bytes) {
  feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::optional<Packet>> Decoder::next() {
  if (failed_) return tl::unexpected(*failed_);
  const uint8_t* p = buf_.data() + begin_;
  const size_t avail = end_ - begin_;
  if (avail < 2) return std::nullopt;

  // Remaining length: a variable byte integer of at most four bytes (section 2.2.3).
  uint32_t remaining = 0;
  size_t header = 1;
  for (;;) {
    if (header > 4) {
      failed_ = std::make_unique<Error>(
          Error{ReasonCode::MalformedPacket, "remaining length longer than 4 bytes"});
      return tl::unexpected(*failed_);
    }
    if (header >= avail) return std::nullopt;
    const uint8_t b = p[header];
    remaining |= uint32_t{b & 0x7Fu} << (7 * (header - 1));
    ++header;
    if ((b & 0x80) == 0) {
      // [MQTT-1.5.5-1] minimal encoding: a trailing zero continuation is not.
      if (header > 2 && b == 0) {
        failed_ = std::make_unique<Error>(
            Error{ReasonCode::MalformedPacket, "remaining length not minimally encoded"});
        return tl::unexpected(*failed_);
      }
      break;
    }
  }
  const size_t total = header + remaining;
  // Refused as soon as the header is known, before buffering the body.
  if (total > max_packet_size_) {
    failed_ = std::make_unique<Error>(
        Error{ReasonCode::PacketTooLarge, "packet of " + std::to_string(total) +
                                              " bytes exceeds maximum " +
                                              std::to_string(max_packet_size_)});
    return tl::unexpected(*failed_);
  }
  // An incomplete packet holds only the bytes that arrived: the buffer grows (doubling)
  // as the caller's prepare() asks for room to read into, never to the size the header
  // announces, so a header claiming 256 MB followed by silence costs what was sent.
  if (avail < total) return std::nullopt;

  const uint8_t first = p[0];
  std::span<const uint8_t> body(p + header, remaining);
  // A CONNECT states the version of the connection; adopt its level even when the rest of
  // the packet is refused, so the caller can answer in the client's version.
  if ((first >> 4) == 1 && body.size() >= 7 && body[0] == 0) {
    const size_t name_len = body[1];
    if (body.size() > 2 + name_len) {
      const uint8_t level = body[2 + name_len];
      if (level >= 3 && level <= 5) version_ = static_cast<Version>(level);
    }
  }
  auto packet = decode(first, body, version_, limits_);
  begin_ += static_cast<uint32_t>(total);
  if (begin_ == end_) begin_ = end_ = 0;
  if (!packet) {
    failed_ = std::make_unique<Error>(packet.error());
    return tl::unexpected(*failed_);
  }
  if (auto* c = std::get_if<Connect>(&*packet)) version_ = c->version;
  return std::optional<Packet>(std::move(*packet));
}

}  // namespace harbor::mqtt
