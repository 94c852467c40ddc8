// One test per packet-level rule, named after the spec clause it checks. Packets are written
// out byte by byte so that each breaks exactly one rule.
#include <gtest/gtest.h>

#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"

namespace harbor::mqtt {
namespace {

// Fixed header + remaining length + body.
std::string frame(uint8_t first, std::string_view body) {
  std::string out(1, static_cast<char>(first));
  put_varint(out, static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

std::string b(const char* s, size_t n) { return std::string(s, n); }

// Decodes one packet; returns its error reason, or Success with the packet in `out`.
ReasonCode outcome(std::string_view wire, Version v, Packet* out = nullptr) {
  Decoder d;
  d.set_version(v);
  d.feed(wire);
  auto r = d.next();
  if (!r) return r.error().reason;
  EXPECT_TRUE(r->has_value()) << "packet incomplete";
  if (r->has_value() && out) *out = std::move(**r);
  return ReasonCode::Success;
}

constexpr auto kMalformed = ReasonCode::MalformedPacket;
constexpr auto kProtocolError = ReasonCode::ProtocolError;
constexpr auto kOk = ReasonCode::Success;

// ---- Fixed header (section 2) ------------------------------------------------------------

// [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0): reserved flags must be as listed.
TEST(FixedHeader, MQTT_2_2_2_1_ReservedFlagsMustMatch) {
  struct Case {
    uint8_t first;
    std::string body;
  };
  const std::vector<Case> wrong = {
      {0x11, b("\x00\x04MQTT\x04\x02\x00\x3C\x00\x00", 12)},  // CONNECT
      {0x21, b("\x00\x00", 2)},                               // CONNACK
      {0x41, b("\x00\x01", 2)},                               // PUBACK
      {0x58, b("\x00\x01", 2)},                               // PUBREC
      {0x60, b("\x00\x01", 2)},                               // PUBREL needs 0010
      {0x63, b("\x00\x01", 2)},                               // PUBREL
      {0x72, b("\x00\x01", 2)},                               // PUBCOMP
      {0x80, b("\x00\x01\x00\x01"
               "a\x00",
               6)},                  // SUBSCRIBE needs 0010
      {0x92, b("\x00\x01\x00", 3)},  // SUBACK
      {0xA0, b("\x00\x01\x00\x01"
               "a",
               5)},              // UNSUBSCRIBE needs 0010
      {0xB1, b("\x00\x01", 2)},  // UNSUBACK
      {0xC1, ""},                // PINGREQ
      {0xD4, ""},                // PINGRESP
      {0xE2, ""},                // DISCONNECT
  };
  for (const auto& c : wrong) {
    EXPECT_EQ(outcome(frame(c.first, c.body), Version::v311), kMalformed) << int(c.first);
    EXPECT_EQ(outcome(frame(c.first, c.body), Version::v5), kMalformed) << int(c.first);
  }
  EXPECT_EQ(outcome(frame(0xF1, ""), Version::v5), kMalformed);  // AUTH
  // The right flags decode.
  EXPECT_EQ(outcome(frame(0x62, b("\x00\x01", 2)), Version::v311), kOk);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01"
                                  "a\x00",
                                  6)),
                    Version::v311),
            kOk);
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01\x00\x01"
                                  "a",
                                  5)),
                    Version::v311),
            kOk);
}

// Section 2.2.3: the remaining length has at most four bytes.
TEST(FixedHeader, RemainingLengthLongerThanFourBytesIsMalformed) {
  EXPECT_EQ(outcome(b("\x30\xFF\xFF\xFF\xFF\x01", 6), Version::v311), kMalformed);
  // Detected before the (impossible) body arrives.
  EXPECT_EQ(outcome(b("\x30\x80\x80\x80\x80", 5), Version::v311), kMalformed);
}

// [MQTT-1.5.5-1] variable byte integers use the minimum number of bytes.
TEST(FixedHeader, MQTT_1_5_5_1_RemainingLengthNotMinimalIsMalformed) {
  EXPECT_EQ(outcome(b("\xC0\x80\x00", 3), Version::v311), kMalformed);
}

// Section 2.1.2: packet type 0 is reserved; type 15 (AUTH) only exists in 5.0.
TEST(FixedHeader, ReservedPacketTypes) {
  EXPECT_EQ(outcome(b("\x00\x00", 2), Version::v311), kMalformed);
  EXPECT_EQ(outcome(b("\xF0\x00", 2), Version::v311), kMalformed);
  EXPECT_EQ(outcome(b("\xF0\x00", 2), Version::v5), kOk);
}

// ---- UTF-8 strings (section 1.5.4) ---------------------------------------------------------

std::string publish_with_topic(std::string_view topic) {
  std::string body;
  body.push_back(static_cast<char>(topic.size() >> 8));
  body.push_back(static_cast<char>(topic.size() & 0xFF));
  body.append(topic);
  return frame(0x30, body);
}

// [MQTT-1.5.4-1] ill-formed UTF-8 (here an overlong encoding) is a Malformed Packet.
TEST(Utf8, MQTT_1_5_4_1_IllFormedUtf8IsMalformed) {
  EXPECT_EQ(outcome(publish_with_topic("a\xC0\xAF"), Version::v311), kMalformed);
  EXPECT_EQ(outcome(publish_with_topic("a\xFF"), Version::v5), kMalformed);
  EXPECT_EQ(outcome(publish_with_topic("\xE2\x82"), Version::v311), kMalformed);  // truncated
}

// [MQTT-1.5.4-1] surrogate code points U+D800..U+DFFF are not allowed.
TEST(Utf8, MQTT_1_5_4_1_SurrogatesAreMalformed) {
  EXPECT_EQ(outcome(publish_with_topic("a\xED\xA0\x80"), Version::v311), kMalformed);
  EXPECT_EQ(outcome(publish_with_topic("a\xED\xBF\xBF"), Version::v5), kMalformed);
}

// [MQTT-1.5.4-2] U+0000 is not allowed.
TEST(Utf8, MQTT_1_5_4_2_NullCharacterIsMalformed) {
  EXPECT_EQ(outcome(publish_with_topic(std::string("a\0b", 3)), Version::v311), kMalformed);
}

TEST(Utf8, MultibyteCharactersDecode) {
  EXPECT_EQ(outcome(publish_with_topic("caf\xC3\xA9/\xF0\x9F\x98\x80"), Version::v311), kOk);
}

// Section 1.5.4 applies to every UTF-8 field: client identifier, user properties.
TEST(Utf8, ClientIdAndUserPropertiesAreChecked) {
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x04MQTT\x04\x02\x00\x3C\x00\x02"
                                  "a\xC0",
                                  14)),
                    Version::v311),
            kMalformed);
  // PUBLISH "t" with a user property whose key is a lone continuation byte.
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x07\x26\x00\x01\x80\x00\x01v", 11)), Version::v5),
            kMalformed);
}

// ---- PUBLISH (section 3.3) -----------------------------------------------------------------

// [MQTT-3.3.2-2] a topic name must not contain wildcards.
TEST(Publish, MQTT_3_3_2_2_WildcardInTopicIsTopicNameInvalid) {
  EXPECT_EQ(outcome(publish_with_topic("a/+"), Version::v311), ReasonCode::TopicNameInvalid);
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x03"
                                  "a/#\x00",
                                  6)),
                    Version::v5),
            ReasonCode::TopicNameInvalid);
}

// [MQTT-3.3.1-4] a PUBLISH must not have both QoS bits set.
TEST(Publish, MQTT_3_3_1_4_QoS3IsMalformed) {
  EXPECT_EQ(outcome(frame(0x36, b("\x00\x01t\x00\x01", 5)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x36, b("\x00\x01t\x00\x01\x00", 6)), Version::v5), kMalformed);
}

// [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
TEST(Publish, MQTT_3_3_1_2_DupWithQoS0IsMalformed) {
  EXPECT_EQ(outcome(frame(0x38, b("\x00\x01t", 3)), Version::v311), kMalformed);
  Packet p;
  EXPECT_EQ(outcome(frame(0x3A, b("\x00\x01t\x00\x01", 5)), Version::v311, &p), kOk);
  EXPECT_TRUE(std::get<Publish>(p).dup);
}

// [MQTT-2.3.1-1] QoS 1 and 2 PUBLISH carry a non-zero packet identifier.
TEST(Publish, MQTT_2_3_1_1_PacketIdZeroIsMalformed) {
  EXPECT_EQ(outcome(frame(0x32, b("\x00\x01t\x00\x00", 5)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x34, b("\x00\x01t\x00\x00\x00", 6)), Version::v5), kMalformed);
}

// [MQTT-4.7.3-1] topic names are at least one character (3.1.1 has no topic alias).
TEST(Publish, MQTT_4_7_3_1_EmptyTopicIn311IsInvalid) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x00", 2)), Version::v311), ReasonCode::TopicNameInvalid);
}

// Section 3.3.2.1 (5.0): an empty topic needs a Topic Alias.
TEST(Publish, EmptyTopicWithoutAliasIsProtocolError5) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x00\x00", 3)), Version::v5), kProtocolError);
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x00\x03\x23\x00\x01", 6)), Version::v5), kOk);
}

// Section 3.3.2.3.8: Subscription Identifier 0 is a Protocol Error.
TEST(Publish, SubscriptionIdentifierZeroIsProtocolError) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x02\x0B\x00", 6)), Version::v5), kProtocolError);
}

// Section 2.2.2.2: User Property and (in PUBLISH) Subscription Identifier may repeat.
TEST(Publish, RepeatableProperties) {
  Packet p;
  ASSERT_EQ(outcome(frame(0x30, b("\x00\x01t\x04\x0B\x01\x0B\x02", 8)), Version::v5, &p), kOk);
  EXPECT_EQ(std::get<Publish>(p).props.subscription_identifiers, (std::vector<uint32_t>{1, 2}));
}

// Section 2.2.2.2: any other property twice is a Protocol Error.
TEST(Publish, DuplicatePropertyIsProtocolError) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x04\x01\x00\x01\x01", 8)), Version::v5),
            kProtocolError);
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x06\x23\x00\x01\x23\x00\x02", 10)), Version::v5),
            kProtocolError);
}

// Section 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
TEST(Publish, PropertyNotAllowedInPacketIsMalformed) {
  // Session Expiry Interval belongs to CONNECT/CONNACK/DISCONNECT.
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x05\x11\x00\x00\x00\x01", 9)), Version::v5),
            kMalformed);
  // Unknown identifier.
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x02\x7F\x00", 6)), Version::v5), kMalformed);
}

TEST(Publish, PropertyLengthBeyondPacketIsMalformed) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x09\x01\x00", 6)), Version::v5), kMalformed);
  // A property value cut short by the property length.
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x02\x02\x00\x00\x00\x00", 9)), Version::v5),
            kMalformed);
}

// Payload Format Indicator is 0 or 1 (section 3.3.2.3.2).
TEST(Publish, PayloadFormatIndicatorOutOfRange) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x02\x01\x02", 6)), Version::v5), kProtocolError);
}

// [MQTT-3.3.2-14] the Response Topic is a topic name.
TEST(Publish, MQTT_3_3_2_14_ResponseTopicWithWildcard) {
  EXPECT_EQ(outcome(frame(0x30, b("\x00\x01t\x04\x08\x00\x01#", 8)), Version::v5), kProtocolError);
}

// ---- CONNECT (section 3.1) -----------------------------------------------------------------

std::string connect311(uint8_t flags, std::string_view payload) {
  std::string body = b("\x00\x04MQTT\x04", 7);
  body.push_back(static_cast<char>(flags));
  body.append("\x00\x3C", 2);
  body.append(payload);
  return frame(0x10, body);
}

const std::string kClientId =
    b("\x00\x01"
      "c",
      3);

// [MQTT-3.1.2-3] the reserved connect flag must be 0.
TEST(Connect, MQTT_3_1_2_3_ReservedFlagIsMalformed) {
  EXPECT_EQ(outcome(connect311(0x03, kClientId), Version::v311), kMalformed);
}

// [MQTT-3.1.2-13] without a will, Will QoS is 0.
TEST(Connect, MQTT_3_1_2_13_WillQoSWithoutWillIsMalformed) {
  EXPECT_EQ(outcome(connect311(0x0A, kClientId), Version::v311), kMalformed);
}

// [MQTT-3.1.2-15] without a will, Will Retain is 0.
TEST(Connect, MQTT_3_1_2_15_WillRetainWithoutWillIsMalformed) {
  EXPECT_EQ(outcome(connect311(0x22, kClientId), Version::v311), kMalformed);
}

// [MQTT-3.1.2-14] Will QoS 3 is invalid.
TEST(Connect, MQTT_3_1_2_14_WillQoS3IsMalformed) {
  const std::string will = kClientId + b("\x00\x01w\x00\x01p", 6);
  EXPECT_EQ(outcome(connect311(0x1E, will), Version::v311), kMalformed);
  Packet p;
  ASSERT_EQ(outcome(connect311(0x36, will), Version::v311, &p), kOk);  // QoS 2, retain
  const auto& c = std::get<Connect>(p);
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->qos, 2);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->topic, "w");
}

// Section 3.1.3.3: the will topic is a topic name.
TEST(Connect, WillTopicWithWildcardIsTopicNameInvalid) {
  EXPECT_EQ(outcome(connect311(0x06, kClientId + b("\x00\x01#\x00\x00", 5)), Version::v311),
            ReasonCode::TopicNameInvalid);
}

// [MQTT-3.1.2-22] 3.1.1: a password without a user name is malformed; 5.0 allows it.
TEST(Connect, MQTT_3_1_2_22_PasswordWithoutUserName) {
  EXPECT_EQ(outcome(connect311(0x42, kClientId + b("\x00\x02pw", 4)), Version::v311), kMalformed);
  const std::string v5 = frame(0x10, b("\x00\x04MQTT\x05\x42\x00\x3C\x00\x00\x01"
                                       "c\x00\x02pw",
                                       18));
  Packet p;
  ASSERT_EQ(outcome(v5, Version::v311, &p), kOk);
  EXPECT_EQ(std::get<Connect>(p).password, "pw");
  EXPECT_FALSE(std::get<Connect>(p).username);
}

// [MQTT-3.1.2-2] an unsupported protocol level.
TEST(Connect, MQTT_3_1_2_2_UnknownLevelIsUnsupportedProtocolVersion) {
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x04MQTT\x06\x02\x00\x3C\x00\x01"
                                  "c",
                                  13)),
                    Version::v311),
            ReasonCode::UnsupportedProtocolVersion);
  // 3.1's name with 3.1.1's level, and the reverse.
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x06MQIsdp\x04\x02\x00\x3C\x00\x01"
                                  "c",
                                  15)),
                    Version::v311),
            ReasonCode::UnsupportedProtocolVersion);
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x04MQTT\x03\x02\x00\x3C\x00\x01"
                                  "c",
                                  13)),
                    Version::v311),
            ReasonCode::UnsupportedProtocolVersion);
}

// [MQTT-3.1.2-1] an unknown protocol name: 5.0 makes it a Protocol Error (section 3.1.2.1);
// under older levels the server answers "unacceptable protocol version".
TEST(Connect, MQTT_3_1_2_1_UnknownProtocolName) {
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x04MQTX\x05\x02\x00\x3C\x00\x00\x01"
                                  "c",
                                  14)),
                    Version::v311),
            kProtocolError);
  EXPECT_EQ(outcome(frame(0x10, b("\x00\x04MQTX\x04\x02\x00\x3C\x00\x01"
                                  "c",
                                  13)),
                    Version::v311),
            ReasonCode::UnsupportedProtocolVersion);
}

TEST(Connect, TrailingBytesAreMalformed) {
  EXPECT_EQ(outcome(connect311(0x02, kClientId + "x"), Version::v311), kMalformed);
}

TEST(Connect, TruncatedIsMalformed) {
  EXPECT_EQ(outcome(connect311(0x82, kClientId), Version::v311), kMalformed);  // no user name
}

// Section 3.1.2.11: CONNECT properties are checked against the CONNECT set.
TEST(Connect, PropertyRules5) {
  auto connect5 = [](std::string_view props) {
    std::string body = b("\x00\x04MQTT\x05\x02\x00\x3C", 10);
    body.push_back(static_cast<char>(props.size()));
    body.append(props);
    body.append(kClientId);
    return frame(0x10, body);
  };
  EXPECT_EQ(outcome(connect5(b("\x21\x00\x0A", 3)), Version::v311), kOk);
  EXPECT_EQ(outcome(connect5(b("\x21\x00\x00", 3)), Version::v311), kProtocolError);  // RM 0
  EXPECT_EQ(outcome(connect5(b("\x27\x00\x00\x00\x00", 5)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(connect5(b("\x19\x02", 2)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(connect5(b("\x0B\x01", 2)), Version::v311), kMalformed);      // sub id
  EXPECT_EQ(outcome(connect5(b("\x13\x00\x01", 3)), Version::v311), kMalformed);  // CONNACK only
  EXPECT_EQ(outcome(connect5(b("\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02", 10)), Version::v311),
            kProtocolError);
}

// Will properties (section 3.1.3.2) are their own set: Will Delay is allowed, Topic Alias not.
TEST(Connect, WillPropertyRules5) {
  auto with_will_props = [](std::string_view props) {
    std::string body = b("\x00\x04MQTT\x05\x06\x00\x3C\x00", 11);
    body.append(kClientId);
    body.push_back(static_cast<char>(props.size()));
    body.append(props);
    body.append(b("\x00\x01w\x00\x00", 5));
    return frame(0x10, body);
  };
  EXPECT_EQ(outcome(with_will_props(b("\x18\x00\x00\x00\x05", 5)), Version::v311), kOk);
  EXPECT_EQ(outcome(with_will_props(b("\x23\x00\x01", 3)), Version::v311), kMalformed);
  EXPECT_EQ(
      outcome(with_will_props(b("\x18\x00\x00\x00\x05\x18\x00\x00\x00\x05", 10)), Version::v311),
      kProtocolError);
}

// ---- CONNACK (section 3.2) -----------------------------------------------------------------

// [MQTT-3.2.2-1] reserved acknowledge flags.
TEST(Connack, MQTT_3_2_2_1_ReservedAckFlagsAreMalformed) {
  EXPECT_EQ(outcome(frame(0x20, b("\x02\x00", 2)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x20, b("\x80\x00\x00", 3)), Version::v5), kMalformed);
}

TEST(Connack, ReturnCodes) {
  Packet p;
  ASSERT_EQ(outcome(frame(0x20, b("\x00\x05", 2)), Version::v311, &p), kOk);
  EXPECT_EQ(std::get<Connack>(p).reason, ReasonCode::NotAuthorized);
  EXPECT_EQ(outcome(frame(0x20, b("\x00\x06", 2)), Version::v311), kMalformed);
  // 0x10 is not a CONNACK reason code.
  EXPECT_EQ(outcome(frame(0x20, b("\x00\x10\x00", 3)), Version::v5), kMalformed);
}

// [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): a refusal has session present 0.
TEST(Connack, SessionPresentOnRefusalIsProtocolError) {
  EXPECT_EQ(outcome(frame(0x20, b("\x01\x05", 2)), Version::v311), kProtocolError);
}

// ---- PUBACK family (sections 3.4 - 3.7) ----------------------------------------------------

TEST(PubAck, BodyLength311IsExactlyTwo) {
  EXPECT_EQ(outcome(frame(0x40, b("\x00\x01\x00", 3)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x40, b("\x00", 1)), Version::v311), kMalformed);
}

// [MQTT-2.3.1-1] packet identifiers are non-zero, and acknowledgements echo them.
TEST(PubAck, MQTT_2_3_1_1_PacketIdZeroIsMalformed) {
  EXPECT_EQ(outcome(frame(0x40, b("\x00\x00", 2)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x62, b("\x00\x00", 2)), Version::v5), kMalformed);
}

// Section 3.4.2.1: only the listed reason codes.
TEST(PubAck, ReasonCodeMustBeValidForType) {
  EXPECT_EQ(outcome(frame(0x40, b("\x00\x01\x92", 3)), Version::v5), kMalformed);
  EXPECT_EQ(outcome(frame(0x62, b("\x00\x01\x92", 3)), Version::v5), kOk);
  EXPECT_EQ(outcome(frame(0x62, b("\x00\x01\x10", 3)), Version::v5), kMalformed);
}

TEST(PubAck, PropertyNotAllowedIsMalformed) {
  EXPECT_EQ(outcome(frame(0x40, b("\x00\x01\x00\x03\x23\x00\x01", 7)), Version::v5), kMalformed);
  EXPECT_EQ(outcome(frame(0x40, b("\x00\x01\x00\x04\x1F\x00\x01r", 8)), Version::v5), kOk);
}

// ---- SUBSCRIBE (section 3.8) ---------------------------------------------------------------

// [MQTT-2.3.1-1] SUBSCRIBE needs a non-zero packet identifier.
TEST(Subscribe, MQTT_2_3_1_1_PacketIdZeroIsMalformed) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x00\x00\x01"
                                  "a\x00",
                                  6)),
                    Version::v311),
            kMalformed);
}

// [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one topic filter.
TEST(Subscribe, MQTT_3_8_3_3_EmptyPayloadIsProtocolError) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01", 2)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00", 3)), Version::v5), kProtocolError);
}

// [MQTT-3-8.3-4] (3.1.1): the upper six bits of the requested QoS byte are 0; QoS 3 is
// malformed.
TEST(Subscribe, MQTT_3_8_3_4_RequestedQoSReservedBits311) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01"
                                  "a\x04",
                                  6)),
                    Version::v311),
            kMalformed);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01"
                                  "a\x03",
                                  6)),
                    Version::v311),
            kMalformed);
}

// [MQTT-3.8.3-5] (5.0): subscription option bits 7 and 6 are reserved.
TEST(Subscribe, MQTT_3_8_3_5_OptionsReservedBits5) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x01"
                                  "a\x40",
                                  7)),
                    Version::v5),
            kMalformed);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x01"
                                  "a\x2E",
                                  7)),
                    Version::v5),
            kOk);
}

// Section 3.8.3.1 (5.0): Retain Handling 3 and Maximum QoS 3 are Protocol Errors.
TEST(Subscribe, RetainHandling3AndQoS3In5) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x01"
                                  "a\x30",
                                  7)),
                    Version::v5),
            kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x01"
                                  "a\x03",
                                  7)),
                    Version::v5),
            kProtocolError);
}

// [MQTT-3.8.3-4] (5.0): No Local on a shared subscription is a Protocol Error.
TEST(Subscribe, MQTT_3_8_3_4_NoLocalOnSharedSubscription) {
  const std::string filter = "$share/g/t";
  std::string body = b("\x00\x01\x00\x00\x0A", 5) + filter + "\x04";
  EXPECT_EQ(outcome(frame(0x82, body), Version::v5), kProtocolError);
}

// Section 3.8.2.1.2: one Subscription Identifier at most, never 0.
TEST(Subscribe, SubscriptionIdentifierRules) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x04\x0B\x01\x0B\x02\x00\x01"
                                  "a\x00",
                                  11)),
                    Version::v5),
            kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x02\x0B\x00\x00\x01"
                                  "a\x00",
                                  9)),
                    Version::v5),
            kProtocolError);
  Packet p;
  ASSERT_EQ(outcome(frame(0x82, b("\x00\x01\x03\x0B\xFF\x7F\x00\x01"
                                  "a\x00",
                                  10)),
                    Version::v5, &p),
            kOk);
  EXPECT_EQ(std::get<Subscribe>(p).props.subscription_identifiers, std::vector<uint32_t>{16383});
}

// Filter syntax is answered per filter in SUBACK (0x8F / 0x80), not with a disconnect: the
// decoder returns the filter and valid_topic_filter judges it.
TEST(Subscribe, InvalidFilterSyntaxIsNotADecodeError) {
  Packet p;
  ASSERT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x05"
                                  "a/#/b\x00\x00\x02"
                                  "a+\x01",
                                  15)),
                    Version::v311, &p),
            kOk);
  const auto& s = std::get<Subscribe>(p);
  ASSERT_EQ(s.topics.size(), 2u);
  EXPECT_FALSE(valid_topic_filter(s.topics[0].filter));
  EXPECT_FALSE(valid_topic_filter(s.topics[1].filter));
}

TEST(Subscribe, MissingOptionsByteIsMalformed) {
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01"
                                  "a",
                                  5)),
                    Version::v311),
            kMalformed);
}

// ---- SUBACK, UNSUBSCRIBE, UNSUBACK ---------------------------------------------------------

TEST(Suback, ReturnCodes311) {
  EXPECT_EQ(outcome(frame(0x90, b("\x00\x01\x03", 3)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0x90, b("\x00\x01\x80", 3)), Version::v311), kOk);
  EXPECT_EQ(outcome(frame(0x90, b("\x00\x01\x00\x10", 4)), Version::v5), kMalformed);
}

// [MQTT-3.10.3-2]: at least one topic filter.
TEST(Unsubscribe, MQTT_3_10_3_2_EmptyPayloadIsProtocolError) {
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01", 2)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01\x00", 3)), Version::v5), kProtocolError);
}

TEST(Unsubscribe, MQTT_2_3_1_1_PacketIdZeroIsMalformed) {
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x00\x00\x01"
                                  "a",
                                  5)),
                    Version::v311),
            kMalformed);
}

TEST(Unsuback, BodyIsPacketIdOnlyIn311) {
  EXPECT_EQ(outcome(frame(0xB0, b("\x00\x01\x00", 3)), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0xB0, b("\x00\x01\x00\x11", 4)), Version::v5), kOk);
  EXPECT_EQ(outcome(frame(0xB0, b("\x00\x01\x00\x02", 4)), Version::v5), kMalformed);
}

// ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---------------------------------------------------

TEST(Ping, BodyIsMalformed) {
  EXPECT_EQ(outcome(frame(0xC0, "x"), Version::v311), kMalformed);
  EXPECT_EQ(outcome(frame(0xD0, "x"), Version::v5), kMalformed);
}

TEST(Disconnect, BodyIn311IsMalformed) {
  EXPECT_EQ(outcome(frame(0xE0, b("\x00", 1)), Version::v311), kMalformed);
}

TEST(Disconnect, ReasonAndProperties5) {
  Packet p;
  ASSERT_EQ(outcome(frame(0xE0, b("\x8E", 1)), Version::v5, &p), kOk);
  EXPECT_EQ(std::get<Disconnect>(p).reason, ReasonCode::SessionTakenOver);
  EXPECT_EQ(outcome(frame(0xE0, b("\x05", 1)), Version::v5), kMalformed);  // not a reason
  EXPECT_EQ(outcome(frame(0xE0, b("\x00\x02\x21\x00", 4)), Version::v5), kMalformed);
}

TEST(Auth, ReasonCodes5) {
  EXPECT_EQ(outcome(frame(0xF0, b("\x18\x00", 2)), Version::v5), kOk);
  EXPECT_EQ(outcome(frame(0xF0, b("\x00\x00", 2)), Version::v5), kOk);
  EXPECT_EQ(outcome(frame(0xF0, b("\x80\x00", 2)), Version::v5), kMalformed);
}

}  // namespace
}  // namespace harbor::mqtt

namespace harbor::mqtt {
namespace {

// Section 3.1.2.11.10: Authentication Data without an Authentication Method.
TEST(Properties, AuthenticationDataWithoutMethodIsProtocolError) {
  EXPECT_EQ(outcome(frame(0xF0, b("\x18\x04\x16\x00\x01x", 6)), Version::v5), kProtocolError);
  EXPECT_EQ(outcome(frame(0xF0, b("\x18\x08\x15\x00\x01m\x16\x00\x01x", 10)), Version::v5), kOk);
}

}  // namespace
}  // namespace harbor::mqtt

namespace harbor::mqtt {
namespace {

// [MQTT-4.7.3-1] topic filters are at least one character: an empty one in SUBSCRIBE or
// UNSUBSCRIBE closes the connection (issue 10: it got a per-filter failure code).
TEST(Subscribe, MQTT_4_7_3_1_EmptyTopicFilterIsProtocolError) {
  // SUBSCRIBE id 1, filter "" QoS 0 / filter "a" QoS 0 then "".
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x00", 5)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01" "a\x00\x00\x00\x00", 9)), Version::v311),
            kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x00\x00\x00", 6)), Version::v5), kProtocolError);
  EXPECT_EQ(outcome(frame(0x82, b("\x00\x01\x00\x01" "a\x00", 6)), Version::v311), kOk);
  // UNSUBSCRIBE id 1, filter "".
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01\x00\x00", 4)), Version::v311), kProtocolError);
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01\x00\x00\x00", 5)), Version::v5), kProtocolError);
  EXPECT_EQ(outcome(frame(0xA2, b("\x00\x01\x00\x01" "a", 5)), Version::v311), kOk);
}

}  // namespace
}  // namespace harbor::mqtt
