// Issue 10 conformance rules at codec level: MQTT 3.1's own fixed-header and CONNECT flag
// rules, the User Property limit (mqtt.property_size), and the CONNACK trimmed to the
// client's Maximum Packet Size [MQTT-3.1.2-24].
#include <gtest/gtest.h>

#include "mqtt/codec.hpp"
#include "mqtt/protocol.hpp"

namespace harbor::mqtt {
namespace {

std::string frame(uint8_t first, std::string_view body) {
  std::string out(1, static_cast<char>(first));
  put_varint(out, static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

std::string b(const char* s, size_t n) { return std::string(s, n); }

Result<Packet> decode_one(std::string_view wire, Version v, uint32_t max_user_properties = ~0u) {
  Decoder d;
  d.set_version(v);
  d.set_max_user_properties(max_user_properties);
  d.feed(wire);
  auto r = d.next();
  if (!r) return tl::unexpected(r.error());
  EXPECT_TRUE(r->has_value()) << "packet incomplete";
  if (!r->has_value()) return fail(ReasonCode::UnspecifiedError, "incomplete");
  return std::move(**r);
}

// A 3.1 CONNECT ("MQIsdp", level 3) with the given connect flags and payload.
std::string connect31(uint8_t flags, std::string_view payload) {
  std::string body = b("\x00\x06MQIsdp\x03", 9);
  body.push_back(static_cast<char>(flags));
  body.append("\x00\x3C", 2);
  body.append(payload);
  return frame(0x10, body);
}
std::string connect311(uint8_t flags, std::string_view payload) {
  std::string body = b("\x00\x04MQTT\x04", 7);
  body.push_back(static_cast<char>(flags));
  body.append("\x00\x3C", 2);
  body.append(payload);
  return frame(0x10, body);
}
const std::string kClientId = b("\x00\x01"
                                "c",
                                3);

// ---- MQTT 3.1: fixed-header flags ------------------------------------------------------

// 3.1 section 2.1: PUBREL, SUBSCRIBE and UNSUBSCRIBE carry QoS 1 and set DUP when resent;
// the flags of other packets are "not used". None is a reserved value as in 3.1.1
// [MQTT-2.2.2-1] [MQTT-2.2.2-2], which still applies to 3.1.1 and 5.0.
TEST(Mqtt31, PubrelRetryWithDupDecodes) {
  auto p = decode_one(b("\x6A\x02\x00\x01", 4), Version::v31);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(std::get<PubAck>(*p).type, PacketType::Pubrel);
  EXPECT_EQ(std::get<PubAck>(*p).packet_id, 1);
  for (Version v : {Version::v311, Version::v5}) {
    auto strict = decode_one(b("\x6A\x02\x00\x01", 4), v);
    ASSERT_FALSE(strict);
    EXPECT_EQ(strict.error().reason, ReasonCode::MalformedPacket);
  }
}

TEST(Mqtt31, SubscribeAndUnsubscribeRetriesDecode) {
  auto s = decode_one(frame(0x8A, b("\x00\x07\x00\x01t\x01", 6)), Version::v31);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(std::get<Subscribe>(*s).topics.at(0).filter, "t");
  auto u = decode_one(frame(0xAA, b("\x00\x07\x00\x01t", 5)), Version::v31);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(std::get<Unsubscribe>(*u).filters.at(0), "t");
  EXPECT_FALSE(decode_one(frame(0x8A, b("\x00\x07\x00\x01t\x01", 6)), Version::v311));
  EXPECT_FALSE(decode_one(frame(0xAA, b("\x00\x07\x00\x01t", 5)), Version::v311));
}

TEST(Mqtt31, UnusedFlagsOfOtherPacketsAreIgnored) {
  EXPECT_TRUE(decode_one(b("\x48\x02\x00\x01", 4), Version::v31));  // PUBACK with DUP
  EXPECT_TRUE(decode_one(b("\xC1\x00", 2), Version::v31));          // PINGREQ with RETAIN
  EXPECT_TRUE(decode_one(b("\xE2\x00", 2), Version::v31));          // DISCONNECT with QoS 1
  EXPECT_FALSE(decode_one(b("\xC1\x00", 2), Version::v311));
}

// 3.1: DUP only applies to QoS > 0; on QoS 0 it is meaningless, not malformed
// (3.1.1: [MQTT-3.3.1-2]).
TEST(Mqtt31, DupOnQoS0PublishIsIgnored) {
  const std::string wire = frame(0x38, b("\x00\x01tx", 4));
  auto p = decode_one(wire, Version::v31);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(std::get<Publish>(*p).dup);
  EXPECT_EQ(std::get<Publish>(*p).payload, "x");
  EXPECT_FALSE(decode_one(wire, Version::v311));
}

// ---- MQTT 3.1: CONNECT flags -----------------------------------------------------------

// [MQTT-3.1.2-3] is 3.1.1's: 3.1 calls bit 0 reserved without requiring a value.
TEST(Mqtt31, ConnectReservedFlagIsIgnored) {
  auto p = decode_one(connect31(0x03, kClientId), Version::v31);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(std::get<Connect>(*p).clean_start);
  EXPECT_EQ(std::get<Connect>(*p).version, Version::v31);
  EXPECT_FALSE(decode_one(connect311(0x03, kClientId), Version::v311));
}

// [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] are 3.1.1's: in 3.1 Will QoS and Will
// Retain are only read when the Will flag is set.
TEST(Mqtt31, WillQoSAndRetainWithoutWillAreIgnored) {
  for (uint8_t flags : {uint8_t{0x12}, uint8_t{0x22}, uint8_t{0x3A}, uint8_t{0x1A}}) {
    auto p = decode_one(connect31(flags, kClientId), Version::v31);
    ASSERT_TRUE(p) << int(flags) << ": " << p.error().message;
    EXPECT_FALSE(std::get<Connect>(*p).will) << int(flags);
    EXPECT_EQ(decode_one(connect311(flags, kClientId), Version::v311).error().reason,
              ReasonCode::MalformedPacket)
        << int(flags);
  }
}

// Connect flags 0x14: a will at QoS 2, clean session 0. Means the same in both versions.
TEST(Mqtt31, WillQoS2ConnectDecodes) {
  const std::string payload = kClientId + b("\x00\x01w\x00\x01p", 6);
  auto p = decode_one(connect31(0x14, payload), Version::v31);
  ASSERT_TRUE(p) << p.error().message;
  const auto& c = std::get<Connect>(*p);
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->qos, 2);
  EXPECT_FALSE(c.clean_start);
  // With a will, QoS 3 stays invalid in 3.1 too.
  EXPECT_FALSE(decode_one(connect31(0x1C, payload), Version::v31));
}

// ---- User Property limit (mqtt.property_size) ------------------------------------------

std::string user_props(int n) {
  std::string props;
  for (int i = 0; i < n; ++i) props.append("\x26\x00\x01k\x00\x01v", 7);
  std::string block;
  put_varint(block, static_cast<uint32_t>(props.size()));
  return block + props;
}

std::string publish5(int n_user_props) {
  return frame(0x30, b("\x00\x01t", 3) + user_props(n_user_props) + "x");
}

TEST(UserPropertyLimit, ExactlyTheLimitDecodesOneMoreIsImplementationSpecificError) {
  auto ok = decode_one(publish5(32), Version::v5, 32);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(std::get<Publish>(*ok).props.user_properties.size(), 32u);
  auto over = decode_one(publish5(33), Version::v5, 32);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().reason, ReasonCode::ImplementationSpecificError);
  // No limit set: the spec sets none.
  EXPECT_TRUE(decode_one(publish5(10'000), Version::v5));
}

TEST(UserPropertyLimit, AppliesToEveryPacketWithProperties) {
  const std::string two = user_props(2);
  const std::vector<std::string> packets = {
      frame(0x40, b("\x00\x01\x00", 3) + two),                        // PUBACK
      frame(0x62, b("\x00\x01\x00", 3) + two),                        // PUBREL
      frame(0x82, b("\x00\x01", 2) + two + b("\x00\x01t\x00", 4)),    // SUBSCRIBE
      frame(0xA2, b("\x00\x01", 2) + two + b("\x00\x01t", 3)),        // UNSUBSCRIBE
      frame(0xE0, b("\x00", 1) + two),                                // DISCONNECT
      frame(0xF0, b("\x00", 1) + two),                                // AUTH
      frame(0x20, b("\x00\x00", 2) + two),                            // CONNACK
      frame(0x90, b("\x00\x01", 2) + two + b("\x00", 1)),             // SUBACK
      frame(0xB0, b("\x00\x01", 2) + two + b("\x00", 1)),             // UNSUBACK
      frame(0x10, b("\x00\x04MQTT\x05\x02\x00\x3C", 10) + two + kClientId),  // CONNECT
  };
  for (const auto& wire : packets) {
    EXPECT_TRUE(decode_one(wire, Version::v5, 2)) << int(uint8_t(wire[0]));
    auto r = decode_one(wire, Version::v5, 1);
    ASSERT_FALSE(r) << int(uint8_t(wire[0]));
    EXPECT_EQ(r.error().reason, ReasonCode::ImplementationSpecificError) << int(uint8_t(wire[0]));
  }
}

// CONNECT: its properties and its will's count together ("in one packet").
TEST(UserPropertyLimit, ConnectAndWillPropertiesCountTogether) {
  const std::string wire =
      frame(0x10, b("\x00\x04MQTT\x05\x06\x00\x3C", 10) + user_props(1) + kClientId +
                      user_props(1) + b("\x00\x01w\x00\x00", 5));
  EXPECT_TRUE(decode_one(wire, Version::v5, 2));
  EXPECT_EQ(decode_one(wire, Version::v5, 1).error().reason,
            ReasonCode::ImplementationSpecificError);
}

TEST(UserPropertyLimit, ServerProtocolAppliesItsLimit) {
  ServerProtocol::Limits limits;
  limits.max_user_properties = 3;
  ServerProtocol s(limits);
  s.feed(frame(0x10, b("\x00\x04MQTT\x05\x02\x00\x3C\x00", 11) + kClientId));
  auto c = s.next();
  ASSERT_TRUE(c && *c);
  s.feed(publish5(3));
  auto ok = s.next();
  ASSERT_TRUE(ok && *ok);
  s.feed(publish5(4));
  auto over = s.next();
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().reason, ReasonCode::ImplementationSpecificError);
  EXPECT_EQ(s.phase(), ProtocolPhase::Closed);
}

// ---- CONNACK within the client's Maximum Packet Size [MQTT-3.1.2-24] ---------------------

Connack full_connack() {
  Connack c;
  c.session_present = true;
  c.props.receive_maximum = 100;
  c.props.maximum_packet_size = 1'000'000;
  c.props.topic_alias_maximum = 10;
  c.props.assigned_client_identifier = "assigned";
  c.props.retain_available = 1;
  c.props.wildcard_subscription_available = 1;
  c.props.subscription_identifier_available = 1;
  c.props.shared_subscription_available = 1;
  c.props.reason_string = "welcome";
  c.props.user_properties = {{"a", "1"}, {"b", "2"}};
  return c;
}

size_t wire_size(const Connack& c) { return encode(Packet{c}, Version::v5).size(); }

TEST(ConnackFit, MQTT_3_1_2_24_FittingConnackIsUntouched) {
  Connack c = full_connack();
  const Connack before = c;
  ASSERT_TRUE(fit_connack(c, static_cast<uint32_t>(wire_size(c))));
  EXPECT_EQ(c, before);
}

TEST(ConnackFit, MQTT_3_1_2_24_DropsDefaultsFirstThenReasonStringThenUserProperties) {
  Connack c = full_connack();
  const size_t full = wire_size(c);
  // 8 bytes less: exactly the four "available = 1" properties go, nothing else.
  ASSERT_TRUE(fit_connack(c, static_cast<uint32_t>(full - 8)));
  EXPECT_EQ(wire_size(c), full - 8);
  EXPECT_FALSE(c.props.retain_available);
  EXPECT_FALSE(c.props.shared_subscription_available);
  EXPECT_EQ(c.props.reason_string, "welcome");
  EXPECT_EQ(c.props.user_properties.size(), 2u);

  c = full_connack();
  ASSERT_TRUE(fit_connack(c, static_cast<uint32_t>(full - 9)));  // [MQTT-3.2.2-19]
  EXPECT_FALSE(c.props.reason_string);
  EXPECT_EQ(c.props.user_properties.size(), 2u);
  EXPECT_LE(wire_size(c), full - 9);

  c = full_connack();
  const uint32_t without_reason = static_cast<uint32_t>(full - 8 - 10);
  ASSERT_TRUE(fit_connack(c, without_reason - 1));  // [MQTT-3.2.2-20] the last one goes
  ASSERT_EQ(c.props.user_properties.size(), 1u);
  EXPECT_EQ(c.props.user_properties[0].first, "a");
  EXPECT_LE(wire_size(c), without_reason - 1);
}

TEST(ConnackFit, MQTT_3_1_2_24_WhatTheClientNeedsStaysOrNothingIsSent) {
  Connack c = full_connack();
  Connack minimal;
  minimal.session_present = true;
  minimal.props.receive_maximum = 100;
  minimal.props.maximum_packet_size = 1'000'000;
  minimal.props.assigned_client_identifier = "assigned";
  const auto smallest = static_cast<uint32_t>(wire_size(minimal));
  ASSERT_TRUE(fit_connack(c, smallest));
  EXPECT_EQ(c, minimal);
  EXPECT_EQ(wire_size(c), smallest);
  Connack again = full_connack();
  EXPECT_FALSE(fit_connack(again, smallest - 1));
}

}  // namespace
}  // namespace harbor::mqtt
