// WebSocketTransport (runtime/websocket_transport.hpp) as pure data: the upgrade and the first
// frames in one read, payload runs moved to the front of the read buffer, control frames
// answered on the wire, and the broker's output framed.
#include "runtime/websocket_transport.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace harbor::runtime {
namespace {

const std::string kUpgrade =
    "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

// A masked client frame.
std::string client_frame(uint8_t first, const std::string& payload) {
  std::string f;
  f += static_cast<char>(first);
  const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  }
  for (uint8_t k : key) f += static_cast<char>(k);
  for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
  return f;
}

struct Taken {
  WebSocketTransport::Result result;
  std::string mqtt;  // the payload bytes left at the front of the buffer
};

Taken take(WebSocketTransport& ws, const std::string& bytes) {
  std::vector<uint8_t> buffer(bytes.begin(), bytes.end());
  Taken t;
  t.result = ws.take(buffer);
  t.mqtt.assign(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(t.result.payload));
  return t;
}

std::string drain(WebSocketTransport& ws) {
  std::string out(ws.wire());
  ws.consume(out.size());
  return out;
}

TEST(WebSocketTransport, UpgradeAndFramesInOneReadLeavePayloadAtTheFront) {
  WebSocketTransport ws("/mqtt");
  // A binary frame opening a message, a Ping inside it, two continuations (the last FIN).
  const std::string valid = kUpgrade + client_frame(0x02, "abc") + client_frame(0x89, "p") +
                            client_frame(0x00, std::string(300, 'x')) + client_frame(0x80, "d");
  Taken t = take(ws, valid);
  EXPECT_FALSE(t.result.refused);
  EXPECT_TRUE(ws.upgraded());
  EXPECT_FALSE(ws.ended());
  EXPECT_EQ(t.mqtt, "abc" + std::string(300, 'x') + "d");
  const std::string wire = drain(ws);
  EXPECT_TRUE(wire.starts_with("HTTP/1.1 101 Switching Protocols\r\n")) << wire;
  // RFC 6455 §1.3's example key and accept value.
  EXPECT_NE(wire.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  EXPECT_TRUE(wire.ends_with(std::string("\r\n\r\n") + "\x8a\x01p")) << wire;
}

TEST(WebSocketTransport, HeadSplitAnywhereIsHeldAndCounted) {
  WebSocketTransport ws("/mqtt");
  Taken t = take(ws, kUpgrade.substr(0, 20));
  EXPECT_EQ(t.result.payload, 0u);
  EXPECT_EQ(ws.buffered_head(), 20u);
  EXPECT_EQ(ws.wire_pending(), 0u);
  t = take(ws, kUpgrade.substr(20) + client_frame(0x82, "z"));
  EXPECT_EQ(t.mqtt, "z");
  EXPECT_EQ(ws.buffered_head(), 0u);
  EXPECT_TRUE(ws.upgraded());
}

TEST(WebSocketTransport, RefusedUpgradeQueuesTheResponseAndNoFrames) {
  WebSocketTransport ws("/mqtt");
  std::string other = kUpgrade;
  other.replace(4, 5, "/else");
  Taken t = take(ws, other);
  EXPECT_TRUE(t.result.refused);
  EXPECT_NE(t.result.why.find("404"), std::string::npos);
  EXPECT_TRUE(drain(ws).starts_with("HTTP/1.1 404 "));
  ws.close_normally();  // nothing may follow an HTTP error
  EXPECT_EQ(ws.wire_pending(), 0u);
}

TEST(WebSocketTransport, BrokenRuleEndsWithItsClose) {
  WebSocketTransport ws("/mqtt");
  take(ws, kUpgrade);
  drain(ws);
  Taken t = take(ws, client_frame(0x82, "ok") + std::string("\x81\x80", 2) + "maskmore");
  EXPECT_EQ(t.mqtt, "ok");  // what came before the bad frame is still MQTT input
  EXPECT_TRUE(ws.ended());
  EXPECT_NE(ws.end_reason().find("1003"), std::string::npos) << ws.end_reason();
  EXPECT_TRUE(drain(ws).starts_with(std::string("\x88", 1)));
  ws.close_normally();  // our Close is already queued
  EXPECT_EQ(ws.wire_pending(), 0u);
}

TEST(WebSocketTransport, ClientCloseIsEchoed) {
  WebSocketTransport ws("/mqtt");
  take(ws, kUpgrade);
  drain(ws);
  take(ws, client_frame(0x88, std::string("\x03\xe8", 2)));
  EXPECT_TRUE(ws.ended());
  EXPECT_EQ(drain(ws), std::string("\x88\x02\x03\xe8", 4));
}

TEST(WebSocketTransport, OutputIsFramedAndCloseSentOnce) {
  WebSocketTransport ws("/mqtt");
  take(ws, kUpgrade);
  drain(ws);
  ws.frame(std::string(200, 'm'));
  std::string wire = drain(ws);
  ASSERT_EQ(wire.size(), 4u + 200u);
  EXPECT_EQ(wire.substr(0, 4), std::string("\x82\x7e\x00\xc8", 4));
  ws.close_normally();
  ws.close_normally();
  EXPECT_EQ(drain(ws), std::string("\x88\x02\x03\xe8", 4));
  EXPECT_TRUE(ws.close_queued());
}

}  // namespace
}  // namespace harbor::runtime
