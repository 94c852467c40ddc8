// WebSocket, client side (RFC 6455): the upgrade request against the server's own parser, the
// 101 answer split at every point, masked frames against the server's decoder, and the
// server's frames decoded at every split point.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "wire/websocket_client.hpp"
#include "wire/websocket_frames.hpp"
#include "wire/websocket_upgrade.hpp"

namespace harbor::wire {
namespace {

constexpr std::array<uint8_t, 16> kNonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
constexpr MaskKey kMask{0x12, 0x34, 0x56, 0x78};

std::string bytes_pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + 11) & 0xFF);
  return s;
}

TEST(WebSocketClient, KeyIsBase64OfTheNonce) {
  // RFC 6455 §4.1's example nonce is "the sample nonce" → "dGhlIHNhbXBsZSBub25jZQ==".
  const std::string_view sample = "the sample nonce";
  std::array<uint8_t, 16> nonce{};
  std::copy(sample.begin(), sample.end(), nonce.begin());
  EXPECT_EQ(websocket_client_key(nonce), "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(WebSocketClient, RequestIsAcceptedByTheServerParser) {
  const std::string key = websocket_client_key(kNonce);
  const std::string request = websocket_upgrade_request("127.0.0.1:8083", "/mqtt", key);
  UpgradeParser parser("/mqtt");
  auto result = parser.feed(request);
  auto* done = std::get_if<UpgradeDone>(&result);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->consumed, request.size());
  EXPECT_EQ(done->subprotocol, "mqtt");

  // The server's own answer is what the client's reader accepts, split at every point.
  for (size_t split = 0; split <= done->response.size(); ++split) {
    UpgradeResponseReader reader(key);
    const std::string tail = "\x82\x02\x20\x00";  // a CONNACK frame right behind the head
    const std::string answer = done->response + tail;
    auto first = reader.feed(std::string_view(answer).substr(0, split));
    if (first.status == UpgradeResponseReader::Status::Accepted) {
      EXPECT_EQ(first.consumed, done->response.size()) << split;
      continue;
    }
    ASSERT_EQ(first.status, UpgradeResponseReader::Status::Incomplete) << split;
    auto second = reader.feed(std::string_view(answer).substr(split));
    ASSERT_EQ(second.status, UpgradeResponseReader::Status::Accepted) << split;
    EXPECT_EQ(second.consumed, done->response.size() - split) << split;
  }
}

TEST(WebSocketClient, RefusedAnswers) {
  const std::string key = websocket_client_key(kNonce);
  {
    UpgradeResponseReader reader(key);
    auto r = reader.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.status, UpgradeResponseReader::Status::Refused);
    EXPECT_EQ(r.reason, "the server answered HTTP/1.1 404 Not Found");
    EXPECT_EQ(reader.feed("more").status, UpgradeResponseReader::Status::Refused);
  }
  {
    UpgradeResponseReader reader(key);
    auto r = reader.feed("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n");
    EXPECT_EQ(r.status, UpgradeResponseReader::Status::Refused);
    EXPECT_EQ(r.reason, "the server's Sec-WebSocket-Accept is missing or wrong");
  }
  {
    UpgradeResponseReader reader(key, 64);
    auto r = reader.feed("HTTP/1.1 101 Switching Protocols\r\n" + std::string(100, 'x'));
    EXPECT_EQ(r.status, UpgradeResponseReader::Status::Refused);
  }
}

TEST(WebSocketClient, MaskedFramesDecodeOnTheServer) {
  for (size_t size : {0, 1, 125, 126, 65535, 65536, 70000}) {
    const std::string payload = bytes_pattern(size);
    std::string frames;
    append_masked_frame(frames, Opcode::Binary, payload, kMask);
    FrameDecoder decoder;
    std::string out, reply;
    auto r = decoder.feed(frames, out, reply);
    EXPECT_EQ(r.state, StreamState::Open) << size;
    EXPECT_EQ(out, payload) << size;
    EXPECT_TRUE(reply.empty()) << size;
  }
}

TEST(WebSocketClient, ServerFramesAtEverySplit) {
  const std::string a = bytes_pattern(300);
  const std::string b = bytes_pattern(5);
  std::string stream;
  append_binary_frame(stream, a);
  stream += frame_header(Opcode::Ping, 3).text();
  stream += "abc";
  append_binary_frame(stream, b);
  append_binary_frame(stream, "");
  std::string expected_pong;
  append_masked_frame(expected_pong, Opcode::Pong, "abc", kMask);
  for (size_t split = 0; split <= stream.size(); ++split) {
    ServerFrameReader reader;
    std::string payload, reply;
    auto r1 = reader.feed(std::string_view(stream).substr(0, split), payload, reply, kMask);
    auto r2 = reader.feed(std::string_view(stream).substr(split), payload, reply, kMask);
    EXPECT_EQ(r1.state, StreamState::Open) << split;
    EXPECT_EQ(r2.state, StreamState::Open) << split;
    EXPECT_EQ(payload, a + b) << split;
    EXPECT_EQ(reply, expected_pong) << split;
  }
}

TEST(WebSocketClient, ServerCloseAndBrokenFrames) {
  std::string payload, reply;
  {
    ServerFrameReader reader;
    std::string close;
    append_close(close, CloseCode::Normal);
    auto r = reader.feed(close + "junk", payload, reply, kMask);
    EXPECT_EQ(r.state, StreamState::Closed);
    EXPECT_EQ(r.consumed, close.size());
  }
  {
    ServerFrameReader reader;
    auto r = reader.feed("\x81\x01x", payload, reply, kMask);
    EXPECT_EQ(r.state, StreamState::Failed);
    EXPECT_EQ(r.reason, "a text frame (MQTT takes binary frames only)");
  }
  {
    ServerFrameReader reader;
    std::string masked;
    append_masked_frame(masked, Opcode::Binary, "x", kMask);
    auto r = reader.feed(masked, payload, reply, kMask);
    EXPECT_EQ(r.state, StreamState::Failed);
    EXPECT_EQ(r.reason, "a masked frame from the server");
    EXPECT_EQ(r.consumed, 2u);
  }
  EXPECT_TRUE(payload.empty());
  EXPECT_TRUE(reply.empty());
}

}  // namespace
}  // namespace harbor::wire
