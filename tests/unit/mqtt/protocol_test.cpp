// Server and client state machines: phases, direction checks, topic aliases, limits.
#include "mqtt/protocol.hpp"

#include <gtest/gtest.h>

#include "mqtt/samples.hpp"

namespace harbor::mqtt {
namespace {

Connect connect_packet(Version v) {
  Connect c;
  c.version = v;
  c.protocol_name = v == Version::v31 ? "MQIsdp" : "MQTT";
  c.client_id = "cid";
  return c;
}

// Feeds `p` encoded in `v` and returns what next() says.
template <class Proto>
Result<std::optional<Packet>> send(Proto& proto, const Packet& p, Version v) {
  proto.feed(encode(p, v));
  return proto.next();
}

ServerProtocol connected_server(Version v, uint16_t max_alias = 0) {
  ServerProtocol s({.max_topic_alias = max_alias});
  auto r = send(s, connect_packet(v), v);
  EXPECT_TRUE(r && *r);
  EXPECT_EQ(s.phase(), ProtocolPhase::Connected);
  return s;
}

Publish aliased(std::string topic, uint16_t alias) {
  Publish p;
  p.topic = std::move(topic);
  p.props.topic_alias = alias;
  p.payload = "x";
  return p;
}

TEST(ServerProtocol, StartsAwaitingConnectAndAdoptsItsVersion) {
  for (Version v : {Version::v31, Version::v311, Version::v5}) {
    ServerProtocol s({});
    EXPECT_EQ(s.phase(), ProtocolPhase::AwaitingConnect);
    auto r = send(s, connect_packet(v), v);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(s.phase(), ProtocolPhase::Connected);
    EXPECT_EQ(s.version(), v);
    std::string out;
    s.encode(Connack{}, out);
    EXPECT_EQ(out, encode(Connack{}, v));
  }
}

TEST(ServerProtocol, NeedsMoreBytes) {
  ServerProtocol s({});
  const std::string wire = encode(connect_packet(Version::v5), Version::v5);
  s.feed(std::string_view(wire).substr(0, 5));
  auto r = s.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(s.phase(), ProtocolPhase::AwaitingConnect);
  s.feed(std::string_view(wire).substr(5));
  r = s.next();
  ASSERT_TRUE(r && *r);
}

// [MQTT-3.1.0-1] the first packet must be CONNECT.
TEST(ServerProtocol, MQTT_3_1_0_1_FirstPacketMustBeConnect) {
  ServerProtocol s({});
  auto r = send(s, Pingreq{}, Version::v311);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
  // Closed: nothing more comes out.
  s.feed(encode(connect_packet(Version::v311), Version::v311));
  auto after = s.next();
  ASSERT_TRUE(after);
  EXPECT_FALSE(*after);
}

// [MQTT-3.1.0-1] decided from the first byte: garbage or another packet type closes the
// connection before the rest of it arrives (issue 10: such connections stayed open until a
// 10 s timer).
TEST(ServerProtocol, MQTT_3_1_0_1_FirstByteThatIsNotConnectFailsAtOnce) {
  for (uint8_t first : {uint8_t{0x30}, uint8_t{0xC0}, uint8_t{0x11}, uint8_t{0xFF}, uint8_t{0x00}}) {
    ServerProtocol s({});
    s.feed(std::string_view(reinterpret_cast<const char*>(&first), 1));
    auto r = s.next();
    ASSERT_FALSE(r) << int(first);
    EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
    EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
  }
  ServerProtocol ok({});
  ok.feed(std::string_view("\x10", 1));  // the start of a CONNECT: wait for the rest
  auto r = ok.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(ok.phase(), ProtocolPhase::AwaitingConnect);
}

// [MQTT-3.1.0-2] a second CONNECT is a Protocol Error.
TEST(ServerProtocol, MQTT_3_1_0_2_SecondConnectIsProtocolError) {
  auto s = connected_server(Version::v5);
  auto r = send(s, connect_packet(Version::v5), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
}

// Server-to-client packets coming from a client are Protocol Errors.
TEST(ServerProtocol, ServerOnlyPacketsFromClientAreProtocolErrors) {
  Suback suback;
  suback.packet_id = 1;
  suback.reasons = {ReasonCode::Success};
  Unsuback unsuback;
  unsuback.packet_id = 1;
  unsuback.reasons = {ReasonCode::Success};
  for (Version v : {Version::v311, Version::v5}) {
    for (const Packet& p :
         {Packet{Connack{}}, Packet{suback}, Packet{unsuback}, Packet{Pingresp{}}}) {
      auto s = connected_server(v);
      auto r = send(s, p, v);
      ASSERT_FALSE(r) << to_string(packet_type(p));
      EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
      EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
    }
  }
}

TEST(ServerProtocol, ClientPacketsPass) {
  Subscribe sub;
  sub.packet_id = 1;
  sub.topics.push_back({"a/#", 1});
  Unsubscribe unsub;
  unsub.packet_id = 2;
  unsub.filters = {"a/#"};
  Publish pub;
  pub.topic = "t";
  for (Version v : {Version::v311, Version::v5}) {
    auto s = connected_server(v);
    for (const Packet& p : {Packet{pub}, Packet{sub}, Packet{unsub}, Packet{Pingreq{}},
                            Packet{PubAck{PacketType::Pubrel, 5}}}) {
      auto r = send(s, p, v);
      ASSERT_TRUE(r && *r) << to_string(packet_type(p));
      EXPECT_EQ(**r, p);
    }
    auto r = send(s, Disconnect{}, v);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
  }
}

TEST(ServerProtocol, DecodeErrorsCloseTheConnection) {
  auto s = connected_server(Version::v311);
  s.feed(std::string("\x30\x03\x00\x01#", 5));
  auto r = s.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::TopicNameInvalid);
  EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
}

TEST(ServerProtocol, RefusedConnectKeepsItsVersion) {
  ServerProtocol s({});
  s.feed(std::string("\x10\x0D\x00\x04MQTT\x05\x03\x00\x3C\x00\x00\x00", 15));
  auto r = s.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(s.version(), Version::v5);
}

TEST(ServerProtocol, MaximumPacketSize) {
  ServerProtocol s({.max_packet_size = 64});
  ASSERT_TRUE(send(s, connect_packet(Version::v5), Version::v5));
  Publish big;
  big.topic = "t";
  big.payload.assign(100, 'x');
  auto r = send(s, big, Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::PacketTooLarge);
}

// Section 3.3.2.3.4: an alias with a topic establishes the mapping; an alias alone uses it.
TEST(ServerProtocol, TopicAliasesAreResolved) {
  auto s = connected_server(Version::v5, 10);
  auto r = send(s, aliased("a/b", 3), Version::v5);
  ASSERT_TRUE(r && *r);
  auto& first = std::get<Publish>(**r);
  EXPECT_EQ(first.topic, "a/b");
  EXPECT_FALSE(first.props.topic_alias) << "aliases are per hop and not forwarded";
  r = send(s, aliased("", 3), Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<Publish>(**r).topic, "a/b");
  // Re-mapping replaces the topic.
  ASSERT_TRUE(send(s, aliased("c", 3), Version::v5));
  r = send(s, aliased("", 3), Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<Publish>(**r).topic, "c");
}

// [MQTT-3.3.2-8] alias 0 is invalid.
TEST(ServerProtocol, MQTT_3_3_2_8_TopicAliasZero) {
  auto s = connected_server(Version::v5, 10);
  auto r = send(s, aliased("a", 0), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::TopicAliasInvalid);
  EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
}

// [MQTT-3.3.2-9] above the Topic Alias Maximum the server sent (0 = none allowed).
TEST(ServerProtocol, MQTT_3_3_2_9_TopicAliasAboveMaximum) {
  auto s = connected_server(Version::v5, 10);
  auto r = send(s, aliased("a", 11), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::TopicAliasInvalid);
  auto none = connected_server(Version::v5, 0);
  r = send(none, aliased("a", 1), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::TopicAliasInvalid);
}

TEST(ServerProtocol, UnknownTopicAliasIsProtocolError) {
  auto s = connected_server(Version::v5, 10);
  auto r = send(s, aliased("", 4), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
}

TEST(ServerProtocol, AuthIsAllowedIn5) {
  auto s = connected_server(Version::v5);
  Auth a;
  a.reason = ReasonCode::ReAuthenticate;
  a.props.authentication_method = "m";
  auto r = send(s, a, Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(s.phase(), ProtocolPhase::Connected);
}

// ---- Client -------------------------------------------------------------------------------

// [MQTT-3.2.0-1] the server's first packet is CONNACK.
TEST(ClientProtocol, FirstPacketMustBeConnack) {
  ClientProtocol c(Version::v311);
  EXPECT_EQ(c.phase(), ProtocolPhase::AwaitingConnect);
  Publish p;
  p.topic = "t";
  auto r = send(c, p, Version::v311);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  EXPECT_EQ(c.phase(), ProtocolPhase::Closed);
}

TEST(ClientProtocol, ConnackConnects) {
  for (Version v : {Version::v31, Version::v311, Version::v5}) {
    ClientProtocol c(v);
    auto r = send(c, Connack{}, v);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(c.phase(), ProtocolPhase::Connected);
    // A second CONNACK is a protocol error.
    r = send(c, Connack{}, v);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  }
}

TEST(ClientProtocol, RefusedConnackCloses) {
  ClientProtocol c(Version::v5);
  Connack refused;
  refused.reason = ReasonCode::BadUserNameOrPassword;
  auto r = send(c, refused, Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<Connack>(**r).reason, ReasonCode::BadUserNameOrPassword);
  EXPECT_EQ(c.phase(), ProtocolPhase::Closed);
}

TEST(ClientProtocol, AuthBeforeConnackIn5) {
  ClientProtocol c(Version::v5);
  Auth a;
  a.reason = ReasonCode::ContinueAuthentication;
  a.props.authentication_method = "m";
  auto r = send(c, a, Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(c.phase(), ProtocolPhase::AwaitingConnect);
  ASSERT_TRUE(send(c, Connack{}, Version::v5));
  EXPECT_EQ(c.phase(), ProtocolPhase::Connected);
}

TEST(ClientProtocol, ClientOnlyPacketsFromServerAreProtocolErrors) {
  Subscribe sub;
  sub.packet_id = 1;
  sub.topics.push_back({"a", 0});
  Unsubscribe unsub;
  unsub.packet_id = 1;
  unsub.filters = {"a"};
  for (const Packet& p :
       {Packet{connect_packet(Version::v311)}, Packet{sub}, Packet{unsub}, Packet{Pingreq{}}}) {
    ClientProtocol c(Version::v311);
    ASSERT_TRUE(send(c, Connack{}, Version::v311));
    auto r = send(c, p, Version::v311);
    ASSERT_FALSE(r) << to_string(packet_type(p));
    EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  }
}

TEST(ClientProtocol, ServerPacketsPass) {
  Suback suback;
  suback.packet_id = 1;
  suback.reasons = {ReasonCode::GrantedQoS1};
  ClientProtocol c(Version::v5);
  ASSERT_TRUE(send(c, Connack{}, Version::v5));
  for (const Packet& p :
       {Packet{suback}, Packet{Pingresp{}}, Packet{PubAck{PacketType::Puback, 3}}}) {
    auto r = send(c, p, Version::v5);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(**r, p);
  }
  Disconnect d;
  d.reason = ReasonCode::ServerShuttingDown;
  auto r = send(c, d, Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(c.phase(), ProtocolPhase::Closed);
}

TEST(ClientProtocol, InboundTopicAliases) {
  ClientProtocol c(Version::v5);
  c.set_max_topic_alias(2);
  ASSERT_TRUE(send(c, Connack{}, Version::v5));
  ASSERT_TRUE(send(c, aliased("x/y", 2), Version::v5));
  auto r = send(c, aliased("", 2), Version::v5);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<Publish>(**r).topic, "x/y");
  r = send(c, aliased("z", 3), Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::TopicAliasInvalid);
}

TEST(ClientProtocol, EncodesInItsVersion) {
  ClientProtocol c(Version::v311);
  std::string out;
  c.encode(Disconnect{ReasonCode::DisconnectWithWill, {}}, out);
  EXPECT_EQ(out, std::string("\xE0\x00", 2));
}

}  // namespace
}  // namespace harbor::mqtt

namespace harbor::mqtt {
namespace {

// [MQTT-3.3.4-6] a client PUBLISH never carries a Subscription Identifier.
TEST(ServerProtocol, MQTT_3_3_4_6_SubscriptionIdentifierFromClient) {
  auto s = connected_server(Version::v5);
  Publish p;
  p.topic = "t";
  p.props.subscription_identifiers = {5};
  auto r = send(s, p, Version::v5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
}

}  // namespace
}  // namespace harbor::mqtt

namespace harbor::mqtt {
namespace {

// A whole client session (every client-to-server sample) through the server state machine,
// split at every fragment size up to 64 bytes.
TEST(ServerProtocol, WholeClientSessionAtEveryFragmentSize) {
  for (Version v : {Version::v31, Version::v311, Version::v5}) {
    std::string stream;
    std::vector<Packet> sent;
    for (const auto& sample : testing::sample_packets(v)) {
      const PacketType t = packet_type(sample.packet);
      if (t == PacketType::Connack || t == PacketType::Suback || t == PacketType::Unsuback ||
          t == PacketType::Pingresp || t == PacketType::Disconnect ||
          (t == PacketType::Connect && !sent.empty()))
        continue;
      Packet p = sample.packet;
      if (auto* pub = std::get_if<Publish>(&p)) {
        pub->props.subscription_identifiers.clear();  // server-to-client only
        pub->props.topic_alias.reset();
      }
      encode(p, v, stream);
      sent.push_back(p);
    }
    for (size_t step = 1; step <= 64; ++step) {
      ServerProtocol s({});
      std::vector<Packet> got;
      for (size_t pos = 0; pos < stream.size(); pos += step) {
        s.feed(std::string_view(stream).substr(pos, step));
        for (;;) {
          auto r = s.next();
          ASSERT_TRUE(r) << testing::name_of(v) << " step " << step << ": " << r.error().message;
          if (!*r) break;
          got.push_back(std::move(**r));
        }
      }
      ASSERT_EQ(got, sent) << testing::name_of(v) << " step " << step;
      EXPECT_EQ(s.phase(), ProtocolPhase::Connected);
    }
  }
}

}  // namespace
}  // namespace harbor::mqtt

namespace harbor::mqtt {
namespace {

// 3.1.1 section 3.14: DISCONNECT is sent by the client only; 5.0 lets the server send it.
TEST(ClientProtocol, DisconnectFromServerOnlyIn5) {
  ClientProtocol old(Version::v311);
  ASSERT_TRUE(send(old, Connack{}, Version::v311));
  auto r = send(old, Disconnect{}, Version::v311);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::ProtocolError);
  ClientProtocol v5(Version::v5);
  ASSERT_TRUE(send(v5, Connack{}, Version::v5));
  r = send(v5, Disconnect{}, Version::v5);
  ASSERT_TRUE(r && *r);
}

}  // namespace
}  // namespace harbor::mqtt
