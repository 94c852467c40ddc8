// Shared subscriptions through ShardBroker with fakes (one shard, no sockets, manual clock):
// redelivery to another member when a member's session ends (MQTT 5 §4.8.2), the QoS 2 and
// refusal rules [MQTT-4.8.2-4..6], the granted QoS of the new member [MQTT-4.8.2-3], no
// retained messages on a shared subscribe, and the configured strategy reaching the tree.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/retained_store.hpp"
#include "broker/shard_broker.hpp"
#include "broker/subscription_tree.hpp"
#include "mqtt/codec.hpp"
#include "broker_fakes.hpp"

namespace harbor::broker {
namespace {

using fakes::FakeLink;
using fakes::FakeServices;
using fakes::FakeSink;
using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

struct Member {
  Version version = Version::v311;
  bool clean_start = true;
  std::optional<uint32_t> session_expiry;   // 5.0
  std::optional<uint16_t> receive_maximum;  // 5.0
};

class SharedSubscriptionTest : public ::testing::Test, public fakes::BrokerWorld {
 protected:
  FakeLink& connect(const std::string& client_id, Member m = {}) {
    FakeLink& l = open(m.version);
    mqtt::Connect c;
    c.version = m.version;
    c.clean_start = m.clean_start;
    c.client_id = client_id;
    c.props.session_expiry_interval = m.session_expiry;
    c.props.receive_maximum = m.receive_maximum;
    b().on_connect(&l, std::move(c));
    auto packets = l.take_packets();
    EXPECT_FALSE(packets.empty());
    if (!packets.empty()) {
      EXPECT_TRUE(std::holds_alternative<mqtt::Connack>(packets.front()));
      for (size_t i = 1; i < packets.size(); ++i) mqtt::encode(packets[i], l.version(), l.out());
    }
    return l;
  }

  void send(FakeLink& l, mqtt::Packet p) {
    l.last_rx_ms = services.now_steady_ms();
    b().on_packet(&l, std::move(p));
  }

  // SUBSCRIBE; returns what followed the SUBACK (retained messages).
  std::vector<mqtt::Publish> subscribe(FakeLink& l, const std::string& filter, mqtt::QoS qos,
                                       uint8_t retain_handling = 0) {
    mqtt::Subscribe s;
    s.packet_id = 1;
    s.topics.push_back(mqtt::SubscribeTopic{filter, qos, false, false, retain_handling});
    send(l, std::move(s));
    auto packets = l.take_packets();
    EXPECT_FALSE(packets.empty());
    std::vector<mqtt::Publish> after;
    for (size_t i = 0; i < packets.size(); ++i) {
      if (i == 0) {
        const auto* ack = std::get_if<mqtt::Suback>(&packets[0]);
        EXPECT_NE(ack, nullptr);
        if (ack != nullptr) {
          EXPECT_EQ(ack->reasons, std::vector<ReasonCode>{ReasonCode(qos)});
        }
      } else if (const auto* p = std::get_if<mqtt::Publish>(&packets[i])) {
        after.push_back(*p);
      }
    }
    return after;
  }

  uint16_t next_packet_id = 1;
  void publish(FakeLink& l, const std::string& topic, const std::string& payload, mqtt::QoS qos,
               bool retain = false) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.retain = retain;
    p.packet_id = qos > 0 ? next_packet_id++ : 0;
    send(l, std::move(p));
    l.take_packets();  // the publisher's acknowledgements are not what these tests check
  }

  void ack(FakeLink& l, PacketType type, uint16_t packet_id, ReasonCode rc = ReasonCode::Success) {
    mqtt::PubAck a;
    a.type = type;
    a.packet_id = packet_id;
    a.reason = rc;
    send(l, a);
  }

  std::vector<mqtt::Publish> received(FakeLink& l) {
    std::vector<mqtt::Publish> out;
    for (auto& p : l.take_packets())
      if (auto* pub = std::get_if<mqtt::Publish>(&p)) out.push_back(std::move(*pub));
    return out;
  }

  static std::vector<std::string> payloads(const std::vector<mqtt::Publish>& pubs) {
    std::vector<std::string> out;
    for (const auto& p : pubs) out.push_back(p.payload);
    return out;
  }
};

// QoS 1 sent and not acknowledged, and QoS 1 not sent yet, go to the other member when the
// (non-persistent) session of the first ends: MQTT 5 §4.8.2 ("SHOULD send the Application
// Message to another Client"), for a 3.1.1 and a 5.0 group alike.
TEST_F(SharedSubscriptionTest, UnacknowledgedQos1GoesToAnotherMemberWhenTheSessionEnds) {
  for (Version v : {Version::v311, Version::v5}) {
    SCOPED_TRACE(v == Version::v5 ? "5.0" : "3.1.1");
    start();
    Member m;
    m.version = v;
    m.receive_maximum = v == Version::v5 ? std::optional<uint16_t>(1) : std::nullopt;
    FakeLink& a = connect("a", m);
    subscribe(a, "$share/g/jobs/#", 1);
    FakeLink& pub = connect("pub");
    for (int i = 1; i <= 3; ++i) publish(pub, "jobs/x", "m" + std::to_string(i), 1);
    const auto to_a = received(a);
    ASSERT_FALSE(to_a.empty());
    ack(a, PacketType::Puback, to_a[0].packet_id);  // m1 is done
    received(a);
    FakeLink& other = connect("b", Member{v});  // room for both
    subscribe(other, "$share/g/jobs/#", 1);
    EXPECT_TRUE(received(other).empty());
    b().on_link_closed(&a);  // gone without DISCONNECT; clean session: the session ends
    const auto to_b = received(other);
    EXPECT_EQ(payloads(to_b), (std::vector<std::string>{"m2", "m3"}));
    for (const auto& p : to_b) EXPECT_EQ(p.qos, 1);
  }
}

// [MQTT-4.8.2-5]: a QoS 2 message sent to a member whose session ends before the flow is
// complete goes to no other client; QoS 2 messages not sent yet do.
TEST_F(SharedSubscriptionTest, Qos2InFlightIsNotRedeliveredButQueuedQos2Is) {
  Member m;
  m.version = Version::v5;
  m.receive_maximum = 2;
  FakeLink& a = connect("a", m);
  subscribe(a, "$share/g/jobs/#", 2);
  FakeLink& pub = connect("pub");
  for (int i = 1; i <= 4; ++i) publish(pub, "jobs/x", "m" + std::to_string(i), 2);
  const auto to_a = received(a);
  ASSERT_EQ(payloads(to_a), (std::vector<std::string>{"m1", "m2"}));  // Receive Maximum 2
  ack(a, PacketType::Pubrec, to_a[0].packet_id);  // m1: PUBREC, the member has it
  FakeLink& other = connect("b", m);
  subscribe(other, "$share/g/jobs/#", 2);
  b().on_link_closed(&a);
  EXPECT_EQ(payloads(received(other)), (std::vector<std::string>{"m3", "m4"}));
}

// [MQTT-4.8.2-6]: a message the member refused (PUBACK 0x80+) is not offered to another.
TEST_F(SharedSubscriptionTest, RefusedMessageIsNotRedelivered) {
  Member m;
  m.version = Version::v5;
  FakeLink& a = connect("a", m);
  subscribe(a, "$share/g/jobs/#", 1);
  FakeLink& pub = connect("pub");
  publish(pub, "jobs/x", "refused", 1);
  const auto to_a = received(a);
  ASSERT_EQ(to_a.size(), 1u);
  ack(a, PacketType::Puback, to_a[0].packet_id, ReasonCode::UnspecifiedError);
  FakeLink& other = connect("b", m);
  subscribe(other, "$share/g/jobs/#", 1);
  b().on_link_closed(&a);
  EXPECT_TRUE(received(other).empty());
}

// [MQTT-4.8.2-3]: the new member gets the message at the QoS it was granted.
TEST_F(SharedSubscriptionTest, RedeliveryUsesTheNewMembersGrantedQos) {
  FakeLink& a = connect("a");
  subscribe(a, "$share/g/jobs/#", 1);
  FakeLink& pub = connect("pub");
  publish(pub, "jobs/x", "m1", 1);
  ASSERT_EQ(received(a).size(), 1u);
  FakeLink& other = connect("b");
  subscribe(other, "$share/g/jobs/#", 0);
  b().on_link_closed(&a);
  const auto to_b = received(other);
  ASSERT_EQ(to_b.size(), 1u);
  EXPECT_EQ(to_b[0].qos, 0);
}

// A persistent member that only goes offline keeps what it was given (MQTT 5 §4.8.2: the
// server MAY wait for it; for QoS 2 in flight it MUST [MQTT-4.8.2-4]) and gets it again on
// reconnect; when its session expires, what is left goes to another member, stored for a
// persistent one (OpQueueAdd) while the old rows go with the session (OpSessionDelete).
TEST_F(SharedSubscriptionTest, PersistentMemberKeepsMessagesUntilItsSessionExpires) {
  start(/*with_store=*/true);
  Member persistent;
  persistent.version = Version::v5;
  persistent.clean_start = false;
  persistent.session_expiry = 10;
  FakeLink& a = connect("a", persistent);
  subscribe(a, "$share/g/jobs/#", 1);
  FakeLink& pub = connect("pub");
  publish(pub, "jobs/x", "m1", 1);
  ASSERT_EQ(received(a).size(), 1u);
  Member other_opts = persistent;
  other_opts.session_expiry = 3600;
  FakeLink& other = connect("b", other_opts);
  subscribe(other, "$share/g/jobs/#", 1);
  b().on_link_closed(&a);
  EXPECT_TRUE(received(other).empty()) << "an offline persistent member keeps its messages";

  FakeLink& again = connect("a", persistent);  // resumes: m1 again, DUP
  auto resent = received(again);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_TRUE(resent[0].dup);
  b().on_link_closed(&again);

  sink.clear();
  services.advance(11'000);  // the session expires
  EXPECT_EQ(payloads(received(other)), (std::vector<std::string>{"m1"}));
  ASSERT_EQ(sink.count<OpSessionDelete>(), 1u);
  const auto adds = sink.ops_of<OpQueueAdd>();
  ASSERT_EQ(adds.size(), 1u);
  EXPECT_EQ(adds[0].client_id, "b");
  EXPECT_EQ(adds[0].message->payload, "m1");
}

// The last member leaving: nobody to give it to, nothing is sent anywhere.
TEST_F(SharedSubscriptionTest, NoOtherMemberMeansTheMessageEndsWithTheSession) {
  FakeLink& a = connect("a");
  subscribe(a, "$share/g/jobs/#", 1);
  FakeLink& plain = connect("plain");
  subscribe(plain, "jobs/#", 1);
  FakeLink& pub = connect("pub");
  publish(pub, "jobs/x", "m1", 1);
  ASSERT_EQ(received(a).size(), 1u);
  ASSERT_EQ(received(plain).size(), 1u);
  b().on_link_closed(&a);
  EXPECT_TRUE(received(plain).empty()) << "redelivery goes only to the same group";
  EXPECT_EQ(tree->size(), 1u);
}

// No retained messages on a shared subscribe, whatever Retain Handling says and for $queue
// too (MQTT 5 §3.3.1.3 and §3.8.4: retained messages are sent for non-shared subscriptions);
// a plain subscription on the same topic gets them.
TEST_F(SharedSubscriptionTest, NoRetainedMessagesOnSharedSubscribe) {
  FakeLink& pub = connect("pub");
  publish(pub, "jobs/x", "kept", 1, /*retain=*/true);
  Member v5;
  v5.version = Version::v5;
  FakeLink& s = connect("s", v5);
  for (uint8_t handling : {0, 1, 2}) {
    SCOPED_TRACE(int(handling));
    EXPECT_TRUE(subscribe(s, "$share/g" + std::to_string(handling) + "/jobs/#", 1, handling).empty());
  }
  EXPECT_TRUE(subscribe(s, "$queue/jobs/#", 1).empty());
  FakeLink& old = connect("old");  // 3.1.1
  EXPECT_TRUE(subscribe(old, "$share/g/jobs/+", 1).empty());
  const auto plain = subscribe(old, "jobs/+", 1);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_TRUE(plain[0].retain);
}

// The configured strategy reaches the tree; hash_clientid needs the publisher's client id,
// which route() finds from the message's origin session.
TEST_F(SharedSubscriptionTest, HashClientIdKeepsEachPublisherOnOneMember) {
  settings.shared_strategy = SharedStrategy::HashClientId;
  start();
  std::vector<FakeLink*> members;
  for (const char* id : {"w1", "w2", "w3"}) {
    members.push_back(&connect(id));
    subscribe(*members.back(), "$queue/jobs/#", 0);
  }
  for (int p = 0; p < 6; ++p) {
    FakeLink& pub = connect("publisher-" + std::to_string(p));
    for (int i = 0; i < 4; ++i) publish(pub, "jobs/" + std::to_string(i), "x", 0);
    int members_used = 0;
    for (FakeLink* m : members) {
      const size_t n = received(*m).size();
      if (n != 0) {
        ++members_used;
        EXPECT_EQ(n, 4u);
      }
    }
    EXPECT_EQ(members_used, 1) << "publisher " << p;
  }
}

}  // namespace
}  // namespace harbor::broker
