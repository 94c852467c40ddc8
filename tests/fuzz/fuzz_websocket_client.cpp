// libFuzzer target: arbitrary bytes as a server's answer to the client tools' WebSocket
// upgrade (UpgradeResponseReader), then as its frame stream (ServerFrameReader).
// Input layout: byte 0 picks a split point (a fraction of the stream, in 255ths), byte 1 a
// chunk size (1 + byte % 64); the rest is what the server sent. The reader's key is fixed, so
// an accepted answer needs the right Sec-WebSocket-Accept (seeds carry it).
// Properties checked: no crash or sanitizer report; one-shot, split in two and fed in chunks
// all give the same verdict, head length, payload, reply and end state; an open frame stream
// consumed everything; an ended one takes nothing more; the reply is whole masked Pongs.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wire/websocket_client.hpp"

namespace {

using namespace harbor::wire;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §4.1's sample
constexpr MaskKey kMask{0xA1, 0xB2, 0xC3, 0xD4};

struct Outcome {
  UpgradeResponseReader::Status status = UpgradeResponseReader::Status::Incomplete;
  size_t head = 0;  // bytes of the head, when accepted
  std::string payload;
  std::string reply;
  StreamState state = StreamState::Open;
  size_t frame_bytes = 0;  // frame bytes consumed

  bool operator==(const Outcome&) const = default;
};

Outcome run(std::string_view stream, const std::vector<size_t>& ends) {
  Outcome out;
  UpgradeResponseReader reader{std::string(kKey), 512};
  ServerFrameReader frames;
  size_t start = 0;
  size_t fed = 0;  // bytes given to the reader so far
  for (size_t end : ends) {
    std::string_view piece = stream.substr(start, end - start);
    start = end;
    if (out.status == UpgradeResponseReader::Status::Incomplete) {
      auto r = reader.feed(piece);
      out.status = r.status;
      if (r.status != UpgradeResponseReader::Status::Accepted) {
        fed += piece.size();
        continue;
      }
      check(r.consumed <= piece.size());
      out.head = fed + r.consumed;
      piece.remove_prefix(r.consumed);
    } else if (out.status == UpgradeResponseReader::Status::Refused) {
      check(reader.feed(piece).status == UpgradeResponseReader::Status::Refused);
      continue;
    }
    const bool was_open = frames.state() == StreamState::Open;
    auto f = frames.feed(piece, out.payload, out.reply, kMask);
    if (!was_open) check(f.consumed == 0);
    if (f.state == StreamState::Open) check(f.consumed == piece.size());
    out.state = f.state;
    out.frame_bytes += f.consumed;
  }
  return out;
}

// Every Pong in the reply is a whole masked frame with at most 125 bytes of payload.
void check_reply(std::string_view reply) {
  size_t pos = 0;
  while (pos < reply.size()) {
    check(reply.size() - pos >= 6);
    check(static_cast<uint8_t>(reply[pos]) == 0x8A);
    const uint8_t b1 = static_cast<uint8_t>(reply[pos + 1]);
    check((b1 & 0x80) != 0);
    const size_t length = b1 & 0x7F;
    check(length <= kMaxControlPayload);
    pos += 6 + length;
    check(pos <= reply.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t split = stream.size() * data[0] / 255;
  const size_t chunk = 1 + data[1] % 64;

  const Outcome whole = run(stream, {stream.size()});
  check(run(stream, {split, stream.size()}) == whole);
  std::vector<size_t> ends;
  for (size_t e = chunk; e < stream.size(); e += chunk) ends.push_back(e);
  ends.push_back(stream.size());
  check(run(stream, ends) == whole);

  check_reply(whole.reply);
  if (whole.status == UpgradeResponseReader::Status::Accepted) {
    check(whole.head <= stream.size());
    check(whole.payload.size() <= stream.size() - whole.head);
  } else {
    check(whole.payload.empty() && whole.reply.empty());
  }
  return 0;
}
