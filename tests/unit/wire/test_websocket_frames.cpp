// WebSocket framing, server side (RFC 6455 §5): the client frame decoder at every split
// point, control frames, each protocol error with its Close code and the byte it stops at,
// feed_in_place against feed, and the server frame encoder.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/websocket_client_frames.hpp"
#include "wire/websocket_frames.hpp"

namespace harbor::wire {
namespace {

using support::client_close;
using support::client_frame;
using support::close_body;
using support::op;

constexpr size_t kLargestCloseFrame = 2 + kMaxControlPayload;

std::string pattern(size_t n, uint8_t seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed * 7 + (i >> 8)) & 0xFF);
  return s;
}

std::string server_pong(std::string_view payload) {
  std::string s;
  append_pong(s, payload);
  return s;
}

std::string server_close(CloseCode code, std::string_view reason = {}) {
  std::string s;
  append_close(s, code, reason);
  return s;
}

// What a decoder made of a byte stream.
struct Decoded {
  std::string payload;
  std::string reply;
  StreamState state = StreamState::Open;
  CloseCode code = CloseCode::NoStatus;
  std::string_view reason;
  size_t consumed = 0;  // over all calls
  bool message_open = false;
};

bool operator==(const Decoded& a, const Decoded& b) {
  return a.payload == b.payload && a.reply == b.reply && a.state == b.state && a.code == b.code &&
         a.reason == b.reason && a.consumed == b.consumed && a.message_open == b.message_open;
}

std::ostream& operator<<(std::ostream& os, const Decoded& d) {
  return os << "{payload " << d.payload.size() << " bytes, reply " << d.reply.size()
            << " bytes, state " << static_cast<int>(d.state) << ", code "
            << static_cast<int>(d.code) << " '" << d.reason << "', consumed " << d.consumed
            << ", message_open " << d.message_open << "}";
}

// Checks made after every call, whatever the input.
void check_call(const FrameDecoder& d, const FeedResult& r, size_t input_size, size_t reply_growth,
                bool was_open) {
  EXPECT_LE(d.buffered(), FrameDecoder::kMaxBuffered);
  EXPECT_EQ(r.state, d.state());
  if (!was_open) {
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(reply_growth, 0u);
    return;
  }
  if (r.state == StreamState::Open) {
    EXPECT_EQ(r.consumed, input_size);
    EXPECT_EQ(r.code, CloseCode::NoStatus);
  } else {
    EXPECT_LE(r.consumed, input_size);
    EXPECT_GT(r.consumed, 0u);
    EXPECT_EQ(d.buffered(), 0u);
  }
  // A Ping buffered by earlier calls gets its Pong from this one.
  EXPECT_LE(reply_growth, input_size + FrameDecoder::kMaxBuffered + kLargestCloseFrame);
}

// Feeds `stream` cut at `cuts` (ascending) through feed(), or feed_in_place() on a copy.
Decoded decode(std::string_view stream, const std::vector<size_t>& cuts, bool in_place = false,
               uint64_t max_frame = kDefaultMaxFramePayload) {
  FrameDecoder d(max_frame);
  Decoded out;
  std::string copy(stream);
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  size_t start = 0;
  for (size_t end : ends) {
    const bool was_open = d.state() == StreamState::Open;
    const size_t reply_before = out.reply.size();
    const size_t payload_before = out.payload.size();
    FeedResult r;
    if (in_place) {
      auto sink = [&](std::span<const uint8_t> run) {
        out.payload.append(reinterpret_cast<const char*>(run.data()), run.size());
      };
      r = d.feed_in_place(std::span(reinterpret_cast<uint8_t*>(copy.data()) + start, end - start),
                          sink, out.reply);
    } else {
      r = d.feed(stream.substr(start, end - start), out.payload, out.reply);
    }
    check_call(d, r, end - start, out.reply.size() - reply_before, was_open);
    EXPECT_LE(out.reply.size(), out.consumed + r.consumed + kLargestCloseFrame);
    EXPECT_LE(out.payload.size() - payload_before, r.consumed);
    if (was_open) {
      out.consumed += r.consumed;
      out.state = r.state;
      out.code = r.code;
      out.reason = r.reason;
    } else {
      EXPECT_EQ(r.state, out.state);
      EXPECT_EQ(r.code, out.code);
      EXPECT_EQ(out.payload.size(), payload_before);
    }
    start = end;
  }
  out.message_open = d.message_open();
  return out;
}

Decoded decode_whole(std::string_view stream, uint64_t max_frame = kDefaultMaxFramePayload) {
  return decode(stream, {}, false, max_frame);
}

Decoded decode_byte_by_byte(std::string_view stream, bool in_place = false,
                            uint64_t max_frame = kDefaultMaxFramePayload) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return decode(stream, cuts, in_place, max_frame);
}

// One-shot, every single cut, byte by byte and a few random chunkings, through feed() and
// feed_in_place(): all the same as one-shot feed().
void expect_split_invariant(std::string_view stream, const Decoded& expected,
                            uint64_t max_frame = kDefaultMaxFramePayload) {
  ASSERT_EQ(decode_whole(stream, max_frame), expected);
  ASSERT_EQ(decode(stream, {}, true, max_frame), expected) << "in place";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(decode(stream, {cut}, false, max_frame), expected) << "cut at " << cut;
    ASSERT_EQ(decode(stream, {cut}, true, max_frame), expected) << "in place, cut at " << cut;
  }
  ASSERT_EQ(decode_byte_by_byte(stream, false, max_frame), expected) << "byte by byte";
  ASSERT_EQ(decode_byte_by_byte(stream, true, max_frame), expected) << "in place, byte by byte";
  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    std::vector<size_t> cuts;
    size_t at = 0;
    while (true) {
      at += 1 + rng() % 23;
      if (at >= stream.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(decode(stream, cuts, round % 2 == 1, max_frame), expected) << "round " << round;
  }
}

// --- data frames --------------------------------------------------------------------------

TEST(FrameDecoder, BinaryFramesOfEachLengthFormAtEverySplitPoint) {
  struct Case {
    size_t size;
    std::optional<int> length_bytes;
  };
  // Shortest forms, and the 16- and 64-bit forms used for short payloads (non-minimal
  // encodings are accepted) so every split point stays cheap.
  for (const Case c : {Case{0, {}}, Case{1, {}}, Case{125, {}}, Case{126, {}}, Case{300, {}},
                       Case{0, 2}, Case{5, 2}, Case{0, 8}, Case{9, 8}, Case{130, 8}}) {
    const std::string payload = pattern(c.size, static_cast<uint8_t>(c.size));
    const std::string frame = client_frame(payload, {.length_bytes = c.length_bytes});
    SCOPED_TRACE("size " + std::to_string(c.size));
    Decoded expected;
    expected.payload = payload;
    expected.consumed = frame.size();
    expect_split_invariant(frame, expected);
  }
}

TEST(FrameDecoder, LargestSixteenBitAndSmallestSixtyFourBitFrames) {
  for (size_t size : {size_t{65535}, size_t{65536}, size_t{70000}}) {
    const std::string payload = pattern(size, 3);
    const std::string frame = client_frame(payload, {.key = {0xde, 0xad, 0xbe, 0xef}});
    EXPECT_EQ(frame.size(), size + (size > 0xFFFF ? 14 : 8));
    Decoded expected;
    expected.payload = payload;
    expected.consumed = frame.size();
    ASSERT_EQ(decode_whole(frame), expected);
    ASSERT_EQ(decode(frame, {}, true), expected);
    // Every cut within the header and around both ends of the payload, a stride elsewhere.
    std::vector<size_t> cut_points;
    for (size_t i = 0; i <= 20; ++i) cut_points.push_back(i);
    for (size_t i = frame.size() - 20; i <= frame.size(); ++i) cut_points.push_back(i);
    for (size_t i = 21; i < frame.size() - 20; i += 997) cut_points.push_back(i);
    for (size_t cut : cut_points) {
      ASSERT_EQ(decode(frame, {cut}), expected) << "cut at " << cut;
      ASSERT_EQ(decode(frame, {cut}, true), expected) << "in place, cut at " << cut;
    }
    ASSERT_EQ(decode_byte_by_byte(frame), expected);
  }
}

TEST(FrameDecoder, UnmasksWithAnyKey) {
  const std::string payload = pattern(40);
  for (const std::array<uint8_t, 4> key :
       {std::array<uint8_t, 4>{0, 0, 0, 0}, std::array<uint8_t, 4>{0xff, 0xff, 0xff, 0xff},
        std::array<uint8_t, 4>{1, 2, 3, 4}}) {
    const std::string frame = client_frame(payload, {.key = key});
    const Decoded d = decode_whole(frame);
    EXPECT_EQ(d.payload, payload);
  }
}

// [MQTT-6.0.0-2], [MQTT-6.0.0-3]: frame boundaries mean nothing; payload flows as it comes,
// even a frame's first bytes.
TEST(FrameDecoder, PayloadIsPassedOnAsItArrives) {
  const std::string payload = pattern(100);
  const std::string frame = client_frame(payload);
  FrameDecoder d;
  std::string out, reply;
  d.feed(std::string_view(frame).substr(0, 6 + 10), out, reply);
  EXPECT_EQ(out, payload.substr(0, 10));
  d.feed(std::string_view(frame).substr(16, 1), out, reply);
  EXPECT_EQ(out, payload.substr(0, 11));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameDecoder, FragmentedMessage) {
  const std::string a = pattern(10, 1), b = pattern(200, 2), c = pattern(3, 3), e = pattern(0);
  std::string stream = client_frame(a, {.fin = false});
  stream += client_frame(b, {.opcode = op(Opcode::Continuation), .fin = false});
  stream += client_frame(e, {.opcode = op(Opcode::Continuation), .fin = false});
  stream += client_frame(c, {.opcode = op(Opcode::Continuation)});
  stream += client_frame(a, {.key = {9, 8, 7, 6}});
  Decoded expected;
  expected.payload = a + b + e + c + a;
  expected.consumed = stream.size();
  expect_split_invariant(stream, expected);

  // Inside the message, message_open() says so.
  FrameDecoder d;
  std::string out, reply;
  d.feed(client_frame(a, {.fin = false}), out, reply);
  EXPECT_TRUE(d.message_open());
  d.feed(client_frame(b, {.opcode = op(Opcode::Continuation), .fin = false}), out, reply);
  EXPECT_TRUE(d.message_open());
  d.feed(client_frame(c, {.opcode = op(Opcode::Continuation)}), out, reply);
  EXPECT_FALSE(d.message_open());
  EXPECT_EQ(out, a + b + c);
  EXPECT_TRUE(reply.empty());
}

// --- control frames -----------------------------------------------------------------------

// RFC 6455 §5.5.2: a Pong with the Ping's payload.
TEST(FrameDecoder, PingGetsPongWithTheSamePayload) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{4}, size_t{125}}) {
    const std::string payload = pattern(size, 5);
    const std::string ping = client_frame(payload, {.opcode = op(Opcode::Ping)});
    Decoded expected;
    expected.reply = server_pong(payload);
    expected.consumed = ping.size();
    SCOPED_TRACE("ping of " + std::to_string(size));
    expect_split_invariant(ping, expected);
  }
}

// A Pong is sent only once the whole Ping is in.
TEST(FrameDecoder, PongOnlyOnceThePingIsWhole) {
  const std::string payload = pattern(125);
  const std::string ping = client_frame(payload, {.opcode = op(Opcode::Ping)});
  FrameDecoder d;
  std::string out, reply;
  for (size_t i = 0; i + 1 < ping.size(); ++i) {
    d.feed(std::string_view(ping).substr(i, 1), out, reply);
    ASSERT_TRUE(reply.empty()) << i;
    ASSERT_LE(d.buffered(), FrameDecoder::kMaxBuffered);
  }
  EXPECT_EQ(d.buffered(), 124u);
  d.feed(std::string_view(ping).substr(ping.size() - 1), out, reply);
  EXPECT_EQ(reply, server_pong(payload));
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_TRUE(out.empty());
}

// The bound on `reply`: a call of one byte can complete a buffered 125-byte Ping and then fail
// on the next frame, growing `reply` by a whole Pong and a Close; over the stream, `reply`
// stays within the bytes consumed plus one Close.
TEST(FrameDecoder, ReplyGrowthOfACallThatCompletesABufferedPing) {
  const std::string payload = pattern(125);
  const std::string ping = client_frame(payload, {.opcode = op(Opcode::Ping)});
  FrameDecoder d;
  std::string out, reply;
  d.feed(std::string_view(ping).substr(0, ping.size() - 1), out, reply);
  EXPECT_TRUE(reply.empty());
  const size_t held = d.buffered();
  EXPECT_EQ(held, 124u);
  const std::string last = ping.substr(ping.size() - 1) + "\x81";  // then a text frame
  const FeedResult r = d.feed(last, out, reply);
  EXPECT_EQ(r.state, StreamState::Failed);
  EXPECT_EQ(r.code, CloseCode::UnsupportedData);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(reply, server_pong(payload) + server_close(CloseCode::UnsupportedData, r.reason));
  EXPECT_GT(reply.size(), last.size() + kLargestCloseFrame);
  EXPECT_LE(reply.size(), last.size() + held + kLargestCloseFrame);
  EXPECT_LE(reply.size(), ping.size() + 1 + kLargestCloseFrame);
}

// RFC 6455 §5.4: control frames may be injected in the middle of a fragmented message.
TEST(FrameDecoder, PingsInsideAFragmentedMessage) {
  const std::string a = pattern(20, 1), b = pattern(130, 2), c = pattern(7, 3);
  const std::string p1 = "first", p2 = pattern(125, 9);
  std::string stream = client_frame(a, {.fin = false});
  stream += client_frame(p1, {.opcode = op(Opcode::Ping)});
  stream += client_frame(b, {.opcode = op(Opcode::Continuation), .fin = false});
  stream += client_frame(p2, {.opcode = op(Opcode::Ping), .key = {5, 6, 7, 8}});
  stream += client_frame("ignored", {.opcode = op(Opcode::Pong)});
  stream += client_frame(c, {.opcode = op(Opcode::Continuation)});
  Decoded expected;
  expected.payload = a + b + c;
  expected.reply = server_pong(p1) + server_pong(p2);
  expected.consumed = stream.size();
  expect_split_invariant(stream, expected);

  // A stream that stops inside the message says it is open.
  const size_t before_last = stream.size() - client_frame(c).size();
  const Decoded partial = decode_whole(std::string_view(stream).substr(0, before_last));
  EXPECT_TRUE(partial.message_open);
  EXPECT_EQ(partial.payload, a + b);
}

// RFC 6455 §5.5.3: an unsolicited Pong needs no answer.
TEST(FrameDecoder, PongIsIgnored) {
  std::string stream = client_frame("", {.opcode = op(Opcode::Pong)});
  stream += client_frame(pattern(125), {.opcode = op(Opcode::Pong)});
  stream += client_frame("data");
  Decoded expected;
  expected.payload = "data";
  expected.consumed = stream.size();
  expect_split_invariant(stream, expected);
}

// RFC 6455 §5.5.1: the Close is echoed with the client's status, the stream ends after it and
// the bytes behind it are not consumed.
TEST(FrameDecoder, CloseWithStatusIsEchoed) {
  for (uint16_t status : {uint16_t{1000}, uint16_t{1001}, uint16_t{1003}, uint16_t{1007},
                          uint16_t{1011}, uint16_t{1014}, uint16_t{3000}, uint16_t{4999}}) {
    const std::string close = client_close(status, "bye \xe2\x82\xac");
    const std::string stream = client_frame("ab") + close + client_frame("after");
    Decoded expected;
    expected.payload = "ab";
    expected.reply = server_close(static_cast<CloseCode>(status));
    expected.state = StreamState::Closed;
    expected.code = static_cast<CloseCode>(status);
    expected.consumed = stream.size() - client_frame("after").size();
    SCOPED_TRACE("status " + std::to_string(status));
    expect_split_invariant(stream, expected);
  }
}

// RFC 3629 boundaries: each of these reasons is well-formed UTF-8.
TEST(FrameDecoder, CloseReasonAtUtf8Boundaries) {
  for (const char* reason :
       {"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", ""}) {
    const Decoded d = decode_whole(client_close(1000, reason));
    EXPECT_EQ(d.state, StreamState::Closed) << std::strlen(reason) << " bytes: " << d.reason;
    EXPECT_EQ(d.code, CloseCode::Normal);
  }
}

TEST(FrameDecoder, CloseWithoutStatusIsEchoedEmpty) {
  const std::string stream = client_frame("", {.opcode = op(Opcode::Close)}) + "trailing";
  Decoded expected;
  expected.reply = std::string("\x88\x00", 2);
  expected.state = StreamState::Closed;
  expected.code = CloseCode::NoStatus;
  expected.consumed = stream.size() - 8;
  expect_split_invariant(stream, expected);
}

TEST(FrameDecoder, CloseInsideAFragmentedMessage) {
  const std::string stream =
      client_frame("part", {.fin = false}) + client_close(1001) + client_frame("x");
  Decoded expected;
  expected.payload = "part";
  expected.reply = server_close(CloseCode::GoingAway);
  expected.state = StreamState::Closed;
  expected.code = CloseCode::GoingAway;
  expected.consumed = stream.size() - client_frame("x").size();
  expected.message_open = true;
  expect_split_invariant(stream, expected);
}

// --- broken rules -------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::string prefix;  // valid frames before the broken one
  std::string frame;   // the broken frame (maybe followed by junk)
  CloseCode code;
  size_t stop;  // bytes of `frame` consumed
  uint64_t max_frame = kDefaultMaxFramePayload;
};

std::vector<ErrorCase> error_cases() {
  const std::string valid = client_frame("hello") + client_frame("", {.opcode = op(Opcode::Ping)});
  const std::string open = client_frame("frag", {.fin = false});
  const std::string body = pattern(20);
  auto whole = [](const std::string& f) { return f.size(); };
  std::vector<ErrorCase> cases;
  auto add = [&](std::string name, std::string prefix, std::string frame, CloseCode code,
                 size_t stop, uint64_t max_frame = kDefaultMaxFramePayload) {
    cases.push_back({std::move(name), std::move(prefix), std::move(frame), code, stop, max_frame});
  };
  // §5.1: an unmasked frame, known at its second byte.
  add("unmasked binary", valid, client_frame(body, {.masked = false}), CloseCode::ProtocolError, 2);
  add("unmasked ping", valid, client_frame("", {.opcode = op(Opcode::Ping), .masked = false}),
      CloseCode::ProtocolError, 2);
  // §5.2: RSV bits with no extension, an unknown opcode: known at the first byte.
  for (uint8_t rsv : {uint8_t{4}, uint8_t{2}, uint8_t{1}, uint8_t{7}}) {
    add("rsv " + std::to_string(rsv), valid, client_frame(body, {.rsv = rsv}),
        CloseCode::ProtocolError, 1);
  }
  for (uint8_t code : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    add("opcode " + std::to_string(code), valid, client_frame(body, {.opcode = code}),
        CloseCode::ProtocolError, 1);
  }
  // §5.5: control frames are not fragmented and carry at most 125 bytes.
  add("fragmented ping", valid, client_frame("p", {.opcode = op(Opcode::Ping), .fin = false}),
      CloseCode::ProtocolError, 1);
  add("fragmented close", valid, client_frame("", {.opcode = op(Opcode::Close), .fin = false}),
      CloseCode::ProtocolError, 1);
  add("ping of 126", valid, client_frame(pattern(126), {.opcode = op(Opcode::Ping)}),
      CloseCode::ProtocolError, 2);
  add("pong of 126 in 8 bytes", valid,
      client_frame(pattern(126), {.opcode = op(Opcode::Pong), .length_bytes = 8}),
      CloseCode::ProtocolError, 2);
  add("close of 127 declared", valid,
      client_frame("", {.opcode = op(Opcode::Close), .declared_length = 127}),
      CloseCode::ProtocolError, 2);
  // §5.4: continuation with no message open, a new data frame while one is.
  add("continuation first", "", client_frame(body, {.opcode = op(Opcode::Continuation)}),
      CloseCode::ProtocolError, 1);
  add("continuation after whole message", valid,
      client_frame(body, {.opcode = op(Opcode::Continuation), .fin = false}),
      CloseCode::ProtocolError, 1);
  add("binary inside message", open, client_frame(body), CloseCode::ProtocolError, 1);
  add("binary no-fin inside message", open + client_frame("", {.opcode = op(Opcode::Ping)}),
      client_frame(body, {.fin = false}), CloseCode::ProtocolError, 1);
  add("text inside message", open, client_frame(body, {.opcode = op(Opcode::Text)}),
      CloseCode::ProtocolError, 1);
  // §5.2: the most significant bit of a 64-bit length is 0; known once the length is in.
  add("64-bit top bit", valid, client_frame("", {.declared_length = uint64_t{1} << 63}),
      CloseCode::ProtocolError, 10);
  add("64-bit all ones", valid, client_frame("", {.declared_length = ~uint64_t{0}}),
      CloseCode::ProtocolError, 10);
  // §7.4: a Close body of one byte, a status no endpoint may send.
  {
    const std::string f = client_frame("\x03", {.opcode = op(Opcode::Close)});
    add("close of one byte", valid, f + "junk", CloseCode::ProtocolError, whole(f));
  }
  for (uint16_t status : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    const std::string f = client_close(status, "r");
    add("close status " + std::to_string(status), valid, f + "junk", CloseCode::ProtocolError,
        whole(f));
  }
  // [MQTT-6.0.0-1]: only binary frames carry MQTT.
  add("text", valid, client_frame(body, {.opcode = op(Opcode::Text)}), CloseCode::UnsupportedData,
      1);
  add("text fin clear", "", client_frame(body, {.opcode = op(Opcode::Text), .fin = false}),
      CloseCode::UnsupportedData, 1);
  // §5.5.1, §8.1: a Close reason is UTF-8.
  for (const char* reason :
       {"\xff", "ok\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xe2\x82",
        "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xe2\x28\xa1"}) {
    const std::string f = client_close(1000, reason);
    add(std::string("close reason ") + std::to_string(std::strlen(reason)) + " bytes", valid,
        f + "junk", CloseCode::InvalidPayload, whole(f));
  }
  // A data frame longer than max_frame_payload, known once the length is in.
  add("too big 7-bit", valid, client_frame(pattern(101)), CloseCode::MessageTooBig, 2, 100);
  add("too big 16-bit", valid, client_frame(pattern(1001)), CloseCode::MessageTooBig, 4, 1000);
  add("too big 64-bit", valid, client_frame("", {.declared_length = 70'000}),
      CloseCode::MessageTooBig, 10, 65'536);
  add("too big continuation", open, client_frame(pattern(6), {.opcode = op(Opcode::Continuation)}),
      CloseCode::MessageTooBig, 2, 5);
  add("too big default", valid, client_frame("", {.declared_length = kDefaultMaxFramePayload + 1}),
      CloseCode::MessageTooBig, 10);
  return cases;
}

TEST(FrameDecoder, EachBrokenRuleGivesItsCloseCodeAndStopsAtItsByte) {
  for (const ErrorCase& c : error_cases()) {
    SCOPED_TRACE(c.name);
    const std::string stream = c.prefix + c.frame;
    const Decoded d = decode_whole(stream, c.max_frame);
    EXPECT_EQ(d.state, StreamState::Failed);
    EXPECT_EQ(static_cast<int>(d.code), static_cast<int>(c.code));
    EXPECT_FALSE(d.reason.empty());
    EXPECT_EQ(d.consumed, c.prefix.size() + c.stop);
    // The reply ends with our Close carrying the code and the reason.
    const std::string close = server_close(c.code, d.reason);
    ASSERT_GE(d.reply.size(), close.size());
    EXPECT_EQ(d.reply.substr(d.reply.size() - close.size()), close);
    expect_split_invariant(stream, d, c.max_frame);
  }
}

// Exactly max_frame_payload is accepted, for each frame that can carry data.
TEST(FrameDecoder, FrameOfExactlyTheLimitIsAccepted) {
  const std::string stream = client_frame(pattern(100), {.fin = false}) +
                             client_frame(pattern(100), {.opcode = op(Opcode::Continuation)}) +
                             client_frame(pattern(100, 2), {.length_bytes = 8});
  Decoded expected;
  expected.payload = pattern(100) + pattern(100) + pattern(100, 2);
  expected.consumed = stream.size();
  expect_split_invariant(stream, expected, 100);
}

// A control frame's length is not bounded by max_frame_payload, only by 125.
TEST(FrameDecoder, ControlFramesIgnoreTheDataLimit) {
  const std::string stream = client_frame(pattern(125), {.opcode = op(Opcode::Ping)});
  Decoded expected;
  expected.reply = server_pong(pattern(125));
  expected.consumed = stream.size();
  expect_split_invariant(stream, expected, 10);
}

// Once the stream has ended, feed() returns the same state and code, consumes nothing and
// appends nothing.
TEST(FrameDecoder, AfterTheEndNothingMoreHappens) {
  const std::vector<std::pair<std::string, StreamState>> endings = {
      {client_close(1000), StreamState::Closed},
      {client_frame("x", {.opcode = op(Opcode::Text)}), StreamState::Failed},
  };
  for (const auto& [ending, state] : endings) {
    FrameDecoder d;
    std::string out, reply;
    const FeedResult first = d.feed(ending, out, reply);
    ASSERT_EQ(first.state, state);
    const std::string reply_then = reply;
    for (const std::string& more :
         {client_frame("data"), client_frame("", {.opcode = op(Opcode::Ping)}), std::string()}) {
      FeedResult r = d.feed(more, out, reply);
      EXPECT_EQ(r.state, first.state);
      EXPECT_EQ(r.code, first.code);
      EXPECT_EQ(r.reason, first.reason);
      EXPECT_EQ(r.consumed, 0u);
      std::string copy = more;
      r = d.feed_in_place(
          std::span(reinterpret_cast<uint8_t*>(copy.data()), copy.size()),
          [&](std::span<const uint8_t>) { ADD_FAILURE() << "payload emitted"; }, reply);
      EXPECT_EQ(r.state, first.state);
      EXPECT_EQ(r.consumed, 0u);
      EXPECT_EQ(copy, more);
    }
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(reply, reply_then);
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameDecoder, BufferedCountsTheHeaderSoFar) {
  const std::string frame = client_frame(pattern(70'000));  // 14-byte header
  FrameDecoder d;
  std::string out, reply;
  for (size_t i = 0; i < 13; ++i) {
    d.feed(std::string_view(frame).substr(i, 1), out, reply);
    EXPECT_EQ(d.buffered(), i + 1);
  }
  d.feed(std::string_view(frame).substr(13, 1), out, reply);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_LE(13u, FrameDecoder::kMaxBuffered);
}

// --- feed_in_place ------------------------------------------------------------------------

// The payload is unmasked in place and handed out as runs of the input; the header bytes are
// left as they were.
TEST(FrameDecoder, FeedInPlaceUnmasksInTheInput) {
  const std::string a = pattern(30, 1), b = pattern(300, 2);
  const std::string fa = client_frame(a, {.fin = false});
  const std::string ping = client_frame("pp", {.opcode = op(Opcode::Ping)});
  const std::string fb = client_frame(b, {.opcode = op(Opcode::Continuation)});
  const std::string stream = fa + ping + fb;
  std::string copy = stream;
  uint8_t* base = reinterpret_cast<uint8_t*>(copy.data());
  std::vector<std::pair<size_t, size_t>> runs;  // offset, size
  std::string reply;
  FrameDecoder d;
  const FeedResult r = d.feed_in_place(
      std::span(base, copy.size()),
      [&](std::span<const uint8_t> run) {
        runs.emplace_back(static_cast<size_t>(run.data() - base), run.size());
      },
      reply);
  EXPECT_EQ(r.state, StreamState::Open);
  EXPECT_EQ(r.consumed, stream.size());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0], (std::pair<size_t, size_t>{6, a.size()}));
  EXPECT_EQ(runs[1], (std::pair<size_t, size_t>{fa.size() + ping.size() + 8, b.size()}));
  EXPECT_EQ(copy.substr(6, a.size()), a);
  EXPECT_EQ(copy.substr(runs[1].first, b.size()), b);
  // Outside the runs, nothing changed: headers and the control frame as received.
  EXPECT_EQ(copy.substr(0, 6), stream.substr(0, 6));
  EXPECT_EQ(copy.substr(fa.size(), ping.size() + 8), stream.substr(fa.size(), ping.size() + 8));
  EXPECT_EQ(reply, server_pong("pp"));
}

// --- the encoder --------------------------------------------------------------------------

TEST(FrameEncoder, HeaderSizesAtTheLengthFormBoundaries) {
  struct Case {
    uint64_t size;
    std::vector<uint8_t> bytes;
  };
  const std::vector<Case> cases = {
      {0, {0x82, 0}},
      {1, {0x82, 1}},
      {125, {0x82, 125}},
      {126, {0x82, 126, 0x00, 0x7E}},
      {65535, {0x82, 126, 0xFF, 0xFF}},
      {65536, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
      {268'435'460, {0x82, 127, 0, 0, 0, 0, 0x10, 0x00, 0x00, 0x04}},
      {uint64_t{0x0123456789ABCDEF}, {0x82, 127, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}},
  };
  for (const Case& c : cases) {
    const FrameHeader h = binary_frame_header(c.size);
    const auto v = h.view();
    EXPECT_EQ(std::vector<uint8_t>(v.begin(), v.end()), c.bytes) << c.size;
    EXPECT_EQ(h.text().size(), h.size);
    EXPECT_LE(h.size, kMaxServerFrameHeader);
  }
  EXPECT_EQ(frame_header(Opcode::Pong, 3).bytes[0], 0x8A);
  EXPECT_EQ(frame_header(Opcode::Close, 0).bytes[0], 0x88);
  EXPECT_EQ(frame_header(Opcode::Ping, 0).bytes[0], 0x89);
}

TEST(FrameEncoder, BinaryFrame) {
  std::string out = "x";
  append_binary_frame(out, "abc");
  EXPECT_EQ(out, std::string("x\x82\x03"
                             "abc"));
  const std::string big = pattern(300);
  out.clear();
  append_binary_frame(out, big);
  EXPECT_EQ(out, std::string(binary_frame_header(300).text()) + big);
}

TEST(FrameEncoder, PongIsCutTo125Bytes) {
  const std::string p = pattern(200);
  for (size_t size : {size_t{0}, size_t{124}, size_t{125}, size_t{126}, size_t{200}}) {
    std::string out;
    append_pong(out, std::string_view(p).substr(0, size));
    const size_t kept = std::min<size_t>(size, 125);
    ASSERT_EQ(out.size(), 2 + kept) << size;
    EXPECT_EQ(static_cast<uint8_t>(out[0]), 0x8A);
    EXPECT_EQ(static_cast<uint8_t>(out[1]), kept);
    EXPECT_EQ(out.substr(2), p.substr(0, kept));
  }
}

TEST(FrameEncoder, CloseWithoutStatusHasNoBody) {
  EXPECT_EQ(server_close(CloseCode::NoStatus), std::string("\x88\x00", 2));
  EXPECT_EQ(server_close(CloseCode::NoStatus, "ignored"), std::string("\x88\x00", 2));
}

TEST(FrameEncoder, CloseCarriesStatusAndReason) {
  EXPECT_EQ(server_close(CloseCode::Normal), std::string("\x88\x02\x03\xe8", 4));
  EXPECT_EQ(server_close(CloseCode::MessageTooBig, "big"), std::string("\x88\x05\x03\xf1"
                                                                       "big"));
  EXPECT_EQ(server_close(static_cast<CloseCode>(4000)), std::string("\x88\x02\x0f\xa0", 4));
}

// The reason is cut to 123 bytes at a UTF-8 character boundary.
TEST(FrameEncoder, CloseReasonIsCutAtACharacterBoundary) {
  const std::string euro = "\xe2\x82\xac";       // 3 bytes
  const std::string e_acute = "\xc3\xa9";        // 2 bytes
  const std::string emoji = "\xf0\x9f\x98\x80";  // 4 bytes
  auto times = [](const std::string& s, size_t n) {
    std::string r;
    for (size_t i = 0; i < n; ++i) r += s;
    return r;
  };
  struct Case {
    std::string reason;
    size_t kept;
  };
  const std::vector<Case> cases = {
      {std::string(123, 'a'), 123},     {std::string(124, 'a'), 123},
      {std::string(500, 'a'), 123},     {times(euro, 41), 123},  // fits exactly
      {times(euro, 42), 123},                                    // cut between characters
      {"a" + times(euro, 41), 121},                              // byte 123 is inside a character
      {"ab" + times(euro, 41), 122},  // the last whole character does not fit
      {times(e_acute, 62), 122},      // 124 bytes: byte 123 starts a character
      {"a" + times(e_acute, 62), 123},  {times(emoji, 31), 120},  // 124 bytes
      {"abc" + times(emoji, 30), 123},                            // 123 bytes
      {"abcd" + times(emoji, 30), 120},
  };
  for (const Case& c : cases) {
    const std::string f = server_close(CloseCode::PolicyViolation, c.reason);
    ASSERT_EQ(f.size(), 4 + c.kept) << c.reason.size();
    EXPECT_EQ(static_cast<uint8_t>(f[1]), 2 + c.kept);
    EXPECT_EQ(f.substr(2, 2), "\x03\xf0");
    EXPECT_EQ(f.substr(4), c.reason.substr(0, c.kept));
    // What was kept is whole UTF-8: a client decoder takes it (the echo proves it).
    std::string masked = client_frame(f.substr(2), {.opcode = op(Opcode::Close)});
    const Decoded d = decode_whole(masked);
    EXPECT_EQ(d.state, StreamState::Closed) << c.reason.size() << ": " << d.reason;
  }
}

// The decoder's Pong and Close come out of the same encoder, framed like any server frame.
TEST(FrameEncoder, RepliesAreUnmaskedServerFrames) {
  const Decoded d = decode_whole(client_frame("ping!", {.opcode = op(Opcode::Ping)}) +
                                 client_frame("x", {.opcode = op(Opcode::Text)}));
  ASSERT_GE(d.reply.size(), 7u);
  EXPECT_EQ(d.reply.substr(0, 7), "\x8a\x05ping!");
  EXPECT_EQ(static_cast<uint8_t>(d.reply[7]), 0x88);
  EXPECT_EQ(static_cast<uint8_t>(d.reply[8]) & 0x80, 0);  // not masked
  EXPECT_EQ(d.reply.substr(9, 2), "\x03\xeb");            // 1003
}

}  // namespace
}  // namespace harbor::wire
