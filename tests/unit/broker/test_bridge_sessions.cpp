// ShardBroker's bridge sessions (issue 13) with fakes only: a bridge is a persistent session
// whose subscriptions are its forward rules; what it forwards carries the rule's remote
// topic; what it publishes locally never goes back to it; its session waits while the
// link is down; a client cannot take its client id.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "broker/bridge_rules.hpp"
#include "broker/shard_broker.hpp"
#include "broker_fakes.hpp"
#include "mqtt/codec.hpp"

namespace harbor::broker {
namespace {

using fakes::FakeLink;
using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

std::shared_ptr<const BridgeRules> rules_for_test() {
  auto r = std::make_shared<BridgeRules>();
  r->name = "cloud";
  BridgeForwardRule a;
  a.filter = "up/#";
  a.prefix = "edge1/";
  a.qos = 1;
  r->forwards.push_back(a);
  BridgeForwardRule b;
  b.filter = "alarm";
  b.remote_topic = "site/alarm";
  b.retain = false;
  r->forwards.push_back(b);
  return r;
}

class BridgeSessionTest : public ::testing::Test, public fakes::BrokerWorld {
 protected:
  FakeLink& client(const std::string& id) {
    FakeLink& l = open(Version::v311);
    mqtt::Connect c;
    c.client_id = id;
    c.keep_alive = 0;
    b().on_connect(&l, std::move(c));
    l.take_packets();  // CONNACK
    return l;
  }
  void publish(FakeLink& l, const std::string& topic, const std::string& payload, mqtt::QoS qos,
               uint16_t id, bool retain = false) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.packet_id = qos ? id : 0;
    p.retain = retain;
    b().on_packet(&l, mqtt::Packet{std::move(p)});
  }
  std::vector<mqtt::Publish> publishes(FakeLink& l) {
    std::vector<mqtt::Publish> out;
    for (auto& p : l.take_packets())
      if (auto* pub = std::get_if<mqtt::Publish>(&p)) out.push_back(*pub);
    return out;
  }
  FakeLink& attach(uint16_t window = 100) {
    FakeLink& l = open(Version::v311);
    ShardBroker::BridgeAttach a;
    a.client_id = rules_->client_id();
    a.window = window;
    EXPECT_TRUE(b().attach_bridge(&l, a));
    return l;
  }
  std::shared_ptr<const BridgeRules> rules_ = rules_for_test();
};

TEST_F(BridgeSessionTest, RulesMapTopicsByTheFirstMatchingRule) {
  std::string out;
  const BridgeForwardRule* r = rules_->rule_for("up/a/b");
  ASSERT_NE(r, nullptr);
  BridgeRules::remote_topic(*r, "up/a/b", out);
  EXPECT_EQ(out, "edge1/up/a/b");
  r = rules_->rule_for("alarm");
  ASSERT_NE(r, nullptr);
  BridgeRules::remote_topic(*r, "alarm", out);
  EXPECT_EQ(out, "site/alarm");
  EXPECT_EQ(rules_->rule_for("down/x"), nullptr);
}

TEST_F(BridgeSessionTest, SessionSubscribesToEachForwardFilterAndQueuesWhileDown) {
  b().ensure_bridge_session(rules_, Version::v311);
  FakeLink& pub = client("pub");
  publish(pub, "up/t1", "a", 1, 1);
  publish(pub, "alarm", "b", 1, 4, /*retain=*/true);
  publish(pub, "down/t", "c", 1, 2);  // no rule: not forwarded
  FakeLink& link = attach();
  auto got = publishes(link);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "edge1/up/t1");
  EXPECT_EQ(got[0].payload, "a");
  EXPECT_EQ(got[0].qos, 1);
  // Retain as published, then the rule's retain = false.
  EXPECT_EQ(got[1].topic, "site/alarm");
  EXPECT_FALSE(got[1].retain);
  // The remote's PUBACK ends the flow like a client's.
  mqtt::PubAck ack;
  ack.type = PacketType::Puback;
  ack.packet_id = got[0].packet_id;
  b().on_packet(&link, mqtt::Packet{ack});
  publish(pub, "up/t2", "d", 1, 3);
  got = publishes(link);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "edge1/up/t2");
}

TEST_F(BridgeSessionTest, WhatTheBridgePublishesLocallyDoesNotGoBack) {
  b().ensure_bridge_session(rules_, Version::v311);
  FakeLink& link = attach();
  FakeLink& local = client("local");
  mqtt::Subscribe sub;
  sub.packet_id = 1;
  sub.topics.push_back(mqtt::SubscribeTopic{"up/#", 1});
  b().on_packet(&local, mqtt::Packet{sub});
  local.take_packets();
  // From the remote over the bridge's link, on a topic its own forward rule matches.
  publish(link, "up/from-remote", "x", 1, 7);
  EXPECT_EQ(publishes(local).size(), 1u);
  for (const auto& p : publishes(link)) ADD_FAILURE() << "sent back to the remote: " << p.topic;
}

TEST_F(BridgeSessionTest, StaleSubscriptionsAreRemovedWhenRulesChange) {
  b().ensure_bridge_session(rules_, Version::v311);
  auto fewer = std::make_shared<BridgeRules>(*rules_);
  fewer->forwards.pop_back();  // "alarm" is no longer forwarded
  b().ensure_bridge_session(fewer, Version::v311);
  rules_ = fewer;
  FakeLink& pub = client("pub");
  publish(pub, "alarm", "b", 0, 0);
  publish(pub, "up/x", "a", 0, 0);
  FakeLink& link = attach();
  auto got = publishes(link);
  ASSERT_EQ(got.size(), 0u) << "QoS 0 is not queued for an offline session";
  publish(pub, "alarm", "b", 0, 0);
  publish(pub, "up/x", "a", 0, 0);
  got = publishes(link);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "edge1/up/x");
}

TEST_F(BridgeSessionTest, ClientsCannotUseABridgeClientId) {
  b().ensure_bridge_session(rules_, Version::v311);
  FakeLink& l = open(Version::v311);
  mqtt::Connect c;
  c.client_id = rules_->client_id();
  b().on_connect(&l, std::move(c));
  auto packets = l.take_packets();
  ASSERT_EQ(packets.size(), 1u);
  const auto* ack = std::get_if<mqtt::Connack>(&packets[0]);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->reason, ReasonCode::ClientIdentifierNotValid);
}

TEST_F(BridgeSessionTest, UnconfiguredBridgeSessionsEnd) {
  b().ensure_bridge_session(rules_, Version::v311);
  const size_t before = b().session_count();
  b().drop_unconfigured_bridges({});
  EXPECT_EQ(b().session_count(), before - 1);
  FakeLink& l = open(Version::v311);
  ShardBroker::BridgeAttach a;
  a.client_id = rules_->client_id();
  EXPECT_FALSE(b().attach_bridge(&l, a));
}

}  // namespace
}  // namespace harbor::broker
