// OutboundAliases (broker/publish_encoder.hpp): the topic aliases the broker
// assigns to one connection's outbound PUBLISHes. At most kOutboundTopicAliases
// (32) and at most the client's Topic Alias Maximum [MQTT-3.3.2-8]; the first
// topics keep theirs for the life of the connection, a topic beyond the cap is
// sent in full with no alias (no replacement). Each PUBLISH is also encoded and
// decoded to show what goes on the wire.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "broker/publish_encoder.hpp"
#include "mqtt/codec.hpp"

namespace harbor::broker {
namespace {

std::string topic(int i) { return "al/topic/" + std::to_string(i); }

// What apply() decided for one PUBLISH of `t`, as the delivery fields.
Delivery send(OutboundAliases &aliases, const std::string &t,
              bool may_assign = true) {
  Delivery d;
  aliases.apply(t, d, may_assign);
  return d;
}

// The PUBLISH of `t` as a 5.0 client decodes it.
mqtt::Publish on_the_wire(const std::string &t, const Delivery &d) {
  Message m;
  m.topic = t;
  m.payload = "p";
  std::string wire;
  encode_publish(mqtt::Version::v5, m, d, wire);
  size_t header = 1;
  while (static_cast<uint8_t>(wire[header]) & 0x80)
    ++header;
  ++header;
  auto decoded = mqtt::decode(
      static_cast<uint8_t>(wire[0]),
      std::span(reinterpret_cast<const uint8_t *>(wire.data()) + header,
                wire.size() - header),
      mqtt::Version::v5);
  EXPECT_TRUE(decoded) << decoded.error().message;
  if (!decoded)
    return {};
  return std::get<mqtt::Publish>(*decoded);
}

TEST(OutboundAliases, TheFirst32TopicsGetAliases1To32) {
  OutboundAliases aliases(65535);
  for (int i = 0; i < 32; ++i) {
    SCOPED_TRACE(topic(i));
    Delivery d = send(aliases, topic(i));
    EXPECT_EQ(d.topic_alias, i + 1);
    EXPECT_FALSE(
        d.alias_only); // the first use carries the name to set the alias up
    mqtt::Publish p = on_the_wire(topic(i), d);
    EXPECT_EQ(p.topic, topic(i));
    EXPECT_EQ(p.props.topic_alias, uint16_t(i + 1));
  }
  EXPECT_EQ(aliases.size(), 32u);
}

TEST(OutboundAliases, Topic33IsSentInFullWithNoAliasAndNothingIsReplaced) {
  OutboundAliases aliases(65535);
  for (int i = 0; i < 32; ++i)
    send(aliases, topic(i));
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    Delivery d = send(aliases, topic(32));
    EXPECT_EQ(d.topic_alias, 0);
    EXPECT_FALSE(d.alias_only);
    mqtt::Publish p = on_the_wire(topic(32), d);
    EXPECT_EQ(p.topic, topic(32));
    EXPECT_FALSE(p.props.topic_alias.has_value());
  }
  EXPECT_EQ(aliases.size(), 32u);
  // The 32 aliased topics still have theirs: the 33rd took none of them.
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(send(aliases, topic(i)).topic_alias, i + 1);
}

TEST(OutboundAliases, RepeatTopicsReuseTheirAliasWithAnEmptyName) {
  OutboundAliases aliases(65535);
  for (int i = 0; i < 32; ++i)
    send(aliases, topic(i));
  for (int i = 31; i >= 0; --i) {
    SCOPED_TRACE(topic(i));
    Delivery d = send(aliases, topic(i));
    EXPECT_EQ(d.topic_alias, i + 1);
    EXPECT_TRUE(d.alias_only);
    mqtt::Publish p = on_the_wire(topic(i), d);
    EXPECT_EQ(p.topic, ""); // [MQTT-3.3.2-12]: the alias stands for the name
    EXPECT_EQ(p.props.topic_alias, uint16_t(i + 1));
  }
  EXPECT_EQ(aliases.size(), 32u);
}

TEST(OutboundAliases, AClientTopicAliasMaximumBelow32IsHonoured) {
  for (uint16_t client_max :
       {uint16_t(0), uint16_t(1), uint16_t(5), uint16_t(31)}) {
    SCOPED_TRACE(client_max);
    OutboundAliases aliases(client_max);
    for (int i = 0; i < 40; ++i) {
      Delivery d = send(aliases, topic(i));
      if (i < client_max) {
        EXPECT_EQ(d.topic_alias, i + 1);
      } else {
        EXPECT_EQ(d.topic_alias, 0)
            << topic(i); // never above the client's maximum
        EXPECT_FALSE(d.alias_only);
      }
    }
    EXPECT_EQ(aliases.size(), client_max);
    if (client_max > 0) {
      EXPECT_TRUE(send(aliases, topic(0)).alias_only);
    }
  }
}

TEST(OutboundAliases, AClientMaximumAbove32IsCappedAt32) {
  for (uint16_t client_max : {uint16_t(32), uint16_t(33), uint16_t(65535)}) {
    SCOPED_TRACE(client_max);
    OutboundAliases aliases(client_max);
    for (int i = 0; i < 40; ++i)
      send(aliases, topic(i));
    EXPECT_EQ(aliases.size(), size_t(kOutboundTopicAliases));
    EXPECT_EQ(send(aliases, topic(32)).topic_alias, 0);
  }
}

TEST(OutboundAliases, WithoutMayAssignOnlyAnExistingAliasIsUsed) {
  OutboundAliases aliases(10);
  send(aliases, topic(0));
  Delivery known = send(aliases, topic(0), false);
  EXPECT_EQ(known.topic_alias, 1);
  EXPECT_TRUE(known.alias_only);
  Delivery fresh = send(aliases, topic(1), false);
  EXPECT_EQ(fresh.topic_alias, 0);
  EXPECT_EQ(aliases.size(), 1u);
  EXPECT_EQ(send(aliases, topic(1)).topic_alias,
            2); // assigned at its next chance
}

} // namespace
} // namespace harbor::broker
