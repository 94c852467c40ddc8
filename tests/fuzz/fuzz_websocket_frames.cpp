// libFuzzer target: arbitrary bytes through the WebSocket FrameDecoder.
// Input layout: byte 0 picks a split point (a fraction of the stream, in 255ths), byte 1 a
// chunk size (1 + byte % 64), byte 2 the frame limit (bit 7 set: the default; else 4 × byte);
// the rest is the client's byte stream.
// Properties checked: no crash or sanitizer report; one-shot feed(), feed() split in two at
// the chosen point, feed_in_place() in chunks and one-shot feed_in_place() all give the same
// payload, reply, end state, code, reason and consumed count; after every call buffered() ≤
// kMaxBuffered, an open stream consumed everything, the reply grew by at most the input plus
// kMaxBuffered plus one Close and stays within the bytes consumed plus one Close; an ended
// stream takes nothing more; the reply is a run of unmasked Pongs then at most one Close
// (carrying the failure's code); the payload, re-framed by a client, decodes back.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/websocket_client_frames.hpp"
#include "wire/websocket_frames.hpp"

namespace {

using namespace harbor::wire;

[[noreturn]] void die(const char* why) {
  __builtin_trap();
  (void)why;
}

void check(bool ok, const char* why) {
  if (!ok) die(why);
}

struct Decoded {
  std::string payload;
  std::string reply;
  StreamState state = StreamState::Open;
  CloseCode code = CloseCode::NoStatus;
  std::string_view reason;
  size_t consumed = 0;
  bool message_open = false;

  bool operator==(const Decoded&) const = default;
};

constexpr size_t kLargestClose = 2 + kMaxControlPayload;

// Feeds `stream` in pieces ending at `ends` (ascending, the last one stream.size()).
Decoded decode(std::string_view stream, const std::vector<size_t>& ends, bool in_place,
               uint64_t max_frame) {
  FrameDecoder d(max_frame);
  Decoded out;
  std::string copy(stream);
  size_t start = 0;
  for (size_t end : ends) {
    const size_t n = end - start;
    const bool was_open = d.state() == StreamState::Open;
    const size_t reply_before = out.reply.size();
    const size_t payload_before = out.payload.size();
    FeedResult r;
    if (in_place) {
      auto sink = [&](std::span<const uint8_t> run) {
        out.payload.append(reinterpret_cast<const char*>(run.data()), run.size());
      };
      r = d.feed_in_place(std::span(reinterpret_cast<uint8_t*>(copy.data()) + start, n), sink,
                          out.reply);
    } else {
      r = d.feed(stream.substr(start, n), out.payload, out.reply);
    }
    check(d.buffered() <= FrameDecoder::kMaxBuffered, "buffered() over kMaxBuffered");
    check(r.state == d.state(), "result state differs from state()");
    const size_t reply_growth = out.reply.size() - reply_before;
    if (!was_open) {
      check(r.consumed == 0, "an ended stream consumed bytes");
      check(reply_growth == 0 && out.payload.size() == payload_before,
            "an ended stream emitted bytes");
      check(r.state == out.state && r.code == out.code, "an ended stream changed its state");
    } else {
      if (r.state == StreamState::Open) {
        check(r.consumed == n, "an open stream did not consume everything");
      } else {
        check(r.consumed > 0 && r.consumed <= n, "ending consumed count out of range");
        check(d.buffered() == 0, "an ended stream holds bytes");
      }
      check(reply_growth <= n + FrameDecoder::kMaxBuffered + kLargestClose,
            "reply grew more than input plus kMaxBuffered plus one Close");
      check(out.reply.size() <= out.consumed + r.consumed + kLargestClose,
            "reply longer than the bytes consumed plus one Close");
      check(out.payload.size() - payload_before <= r.consumed, "more payload than input");
      out.consumed += r.consumed;
      out.state = r.state;
      out.code = r.code;
      out.reason = r.reason;
    }
    start = end;
  }
  out.message_open = d.message_open();
  return out;
}

// The reply: unmasked FIN frames, Pongs and, last and only once the stream has ended, a Close.
void check_reply(const Decoded& d) {
  std::string_view rest = d.reply;
  bool saw_close = false;
  while (!rest.empty()) {
    check(!saw_close, "a frame after our Close");
    check(rest.size() >= 2, "truncated reply frame");
    const auto b0 = static_cast<uint8_t>(rest[0]);
    const auto b1 = static_cast<uint8_t>(rest[1]);
    check((b0 & 0xF0) == 0x80, "reply frame without FIN or with RSV bits");
    check((b1 & 0x80) == 0, "masked reply frame");
    const size_t length = b1 & 0x7F;
    check(length <= kMaxControlPayload, "reply control frame over 125 bytes");
    check(rest.size() >= 2 + length, "truncated reply payload");
    const uint8_t opcode = b0 & 0x0F;
    if (opcode == static_cast<uint8_t>(Opcode::Close)) {
      saw_close = true;
      check(length != 1, "Close with a one-byte body");
      if (d.state == StreamState::Failed) {
        check(length >= 2, "failure Close without a status");
        const auto status = static_cast<uint16_t>((static_cast<uint8_t>(rest[2]) << 8) |
                                                  static_cast<uint8_t>(rest[3]));
        check(status == static_cast<uint16_t>(d.code), "failure Close with another code");
      }
    } else {
      check(opcode == static_cast<uint8_t>(Opcode::Pong), "reply frame neither Pong nor Close");
    }
    rest.remove_prefix(2 + length);
  }
  check(saw_close == (d.state != StreamState::Open), "Close in reply iff the stream ended");
}

// The decoded payload, sent again as one masked binary frame, decodes to itself.
void check_reframed(const Decoded& d, uint64_t max_frame) {
  if (d.payload.size() > max_frame) return;
  const std::string frame = harbor::wire::support::client_frame(d.payload, {.key = {1, 2, 3, 4}});
  const Decoded again = decode(frame, {frame.size()}, false, max_frame);
  check(again.state == StreamState::Open && again.payload == d.payload && again.reply.empty(),
        "re-framed payload does not decode to itself");
  const FrameHeader h = binary_frame_header(d.payload.size());
  check(frame.size() - d.payload.size() == h.size + 4u, "frame_header size differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);
  const size_t split = stream.size() * data[0] / 255;
  const size_t chunk = 1 + data[1] % 64;
  const uint64_t max_frame = (data[2] & 0x80) != 0 ? kDefaultMaxFramePayload : data[2] * 4u;

  const Decoded whole = decode(stream, {stream.size()}, false, max_frame);
  check_reply(whole);

  check(decode(stream, {split, stream.size()}, false, max_frame) == whole,
        "feed split in two differs from one-shot feed");
  check(decode(stream, {stream.size()}, true, max_frame) == whole,
        "feed_in_place differs from feed");
  std::vector<size_t> ends;
  for (size_t at = chunk; at < stream.size(); at += chunk) ends.push_back(at);
  ends.push_back(stream.size());
  check(decode(stream, ends, true, max_frame) == whole,
        "feed_in_place in chunks differs from one-shot feed");
  // Once more after the end: nothing changes.
  ends.push_back(stream.size());
  check(decode(stream, ends, false, max_frame) == whole, "an empty last feed changed the result");

  check_reframed(whole, max_frame);
  return 0;
}
