// ShardBroker driven through its connection-layer entry points with fakes only: no sockets,
// no threads, a manual clock. Each test names the spec clause it checks (MQTT 3.1.1 and 5.0
// conformance statements) and inspects the packets the broker wrote, decoded back with
// mqtt::Decoder, and the persistence ops it submitted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
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

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;
using fakes::FakeLink;
using fakes::FakeServices;
using fakes::FakeSink;

template <class T>
std::vector<T> all_of(const std::vector<mqtt::Packet>& packets) {
  std::vector<T> found;
  for (const auto& p : packets)
    if (const T* t = std::get_if<T>(&p)) found.push_back(*t);
  return found;
}

std::vector<std::string> payloads(const std::vector<mqtt::Publish>& pubs) {
  std::vector<std::string> out;
  for (const auto& p : pubs) out.push_back(p.payload);
  return out;
}

mqtt::Publish make_publish(std::string topic, std::string payload, mqtt::QoS qos,
                           uint16_t packet_id = 0, bool retain = false) {
  mqtt::Publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = qos;
  p.packet_id = qos > 0 ? packet_id : 0;
  p.retain = retain;
  return p;
}

mqtt::PubAck make_ack(PacketType type, uint16_t packet_id,
                      ReasonCode rc = ReasonCode::Success) {
  mqtt::PubAck a;
  a.type = type;
  a.packet_id = packet_id;
  a.reason = rc;
  return a;
}

struct ConnectOptions {
  Version version = Version::v311;
  bool clean_start = true;
  uint16_t keep_alive = 0;  // most tests move the clock far; keepalive tests set it
  std::optional<uint32_t> session_expiry;   // 5.0
  std::optional<uint16_t> receive_maximum;  // 5.0
  std::optional<uint32_t> maximum_packet_size;  // 5.0
  std::optional<mqtt::Will> will;
};

class ShardBrokerTest : public ::testing::Test, public fakes::BrokerWorld {
 protected:
  // Opens a link and sends CONNECT; the CONNACK is left in the link's output.
  FakeLink& connect(const std::string& client_id, ConnectOptions o = {}) {
    FakeLink& l = open(o.version);
    mqtt::Connect c;
    c.version = o.version;
    c.clean_start = o.clean_start;
    c.keep_alive = o.keep_alive;
    c.client_id = client_id;
    c.will = o.will;
    c.props.session_expiry_interval = o.session_expiry;
    c.props.receive_maximum = o.receive_maximum;
    c.props.maximum_packet_size = o.maximum_packet_size;
    b().on_connect(&l, std::move(c));
    return l;
  }

  // Connects, expects exactly a successful CONNACK with `session_present`, then whatever
  // the broker sends right after it (resent/queued messages) is left in the output.
  FakeLink& connect_ok(const std::string& client_id, ConnectOptions o = {},
                       std::optional<bool> session_present = std::nullopt) {
    FakeLink& l = connect(client_id, o);
    auto packets = l.take_packets();
    EXPECT_FALSE(packets.empty());
    if (packets.empty()) return l;
    const auto* ack = std::get_if<mqtt::Connack>(&packets.front());
    EXPECT_NE(ack, nullptr) << "first packet is not CONNACK";
    if (ack != nullptr) {
      EXPECT_EQ(ack->reason, ReasonCode::Success);
      if (session_present) {
        EXPECT_EQ(ack->session_present, *session_present);
      }
    }
    // Put back what followed the CONNACK so the test can read it.
    for (size_t i = 1; i < packets.size(); ++i) mqtt::encode(packets[i], l.version(), l.out());
    return l;
  }

  // A session that outlives its connection (clean_start=false).
  FakeLink& connect_persistent(const std::string& client_id) {
    ConnectOptions o;
    o.clean_start = false;
    return connect_ok(client_id, o);
  }

  // With the store on, acknowledging only what is committed (sqlite.ack_policy = after_commit).
  void start_ack_after_commit() {
    sink.set_ack_after_commit(true);
    start(/*with_store=*/true);
  }

  // Everything submitted so far is committed, and the broker hears of it.
  void commit() {
    sink.commit_all();
    b().on_durable();
  }

  Flow send(FakeLink& l, mqtt::Packet p) {
    l.last_rx_ms = services.now_steady_ms();
    return b().on_packet(&l, std::move(p));
  }

  Flow publish(FakeLink& l, std::string topic, std::string payload, mqtt::QoS qos,
               uint16_t packet_id = 0, bool retain = false) {
    return send(l, make_publish(std::move(topic), std::move(payload), qos, packet_id, retain));
  }

  // SUBSCRIBE with one filter; consumes and checks the SUBACK, leaves what follows.
  void subscribe(FakeLink& l, const std::string& filter, mqtt::QoS qos,
                 mqtt::SubscribeTopic opts = {}, uint32_t subscription_id = 0,
                 uint16_t packet_id = 1) {
    mqtt::Subscribe s;
    s.packet_id = packet_id;
    opts.filter = filter;
    opts.qos = qos;
    s.topics.push_back(opts);
    if (subscription_id) s.props.subscription_identifiers.push_back(subscription_id);
    send(l, std::move(s));
    auto packets = l.take_packets();
    ASSERT_FALSE(packets.empty());
    const auto* ack = std::get_if<mqtt::Suback>(&packets.front());
    ASSERT_NE(ack, nullptr) << "first packet after SUBSCRIBE is not SUBACK";
    EXPECT_EQ(ack->packet_id, packet_id);
    ASSERT_EQ(ack->reasons.size(), 1u);
    EXPECT_EQ(ack->reasons[0], static_cast<ReasonCode>(qos));
    for (size_t i = 1; i < packets.size(); ++i) mqtt::encode(packets[i], l.version(), l.out());
  }

  void disconnect(FakeLink& l, ReasonCode rc = ReasonCode::Success) {
    mqtt::Disconnect d;
    d.reason = rc;
    send(l, d);
    EXPECT_TRUE(l.closed());
    b().on_link_closed(&l);
  }

  // The socket went away without DISCONNECT.
  void drop(FakeLink& l) { b().on_link_closed(&l); }

  std::vector<mqtt::Publish> publishes(FakeLink& l) {
    return all_of<mqtt::Publish>(l.take_packets());
  }
};

// ================================================================ CONNECT / CONNACK

// [MQTT-3.2.2-2] / [MQTT-3.2.2-3]: session present 0 for a new session, 1 when the server
// resumes a stored session (clean session 0 on both connections).
TEST_F(ShardBrokerTest, SessionPresentFalseThenTrueForPersistentSession311) {
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& first = connect_ok("c1", o, false);
  disconnect(first);
  FakeLink& second = connect_ok("c1", o, true);
  EXPECT_FALSE(second.closed());
}

// [MQTT-3.2.2-2] (5.0): Session Expiry Interval > 0 keeps the session; Clean Start 0 resumes.
TEST_F(ShardBrokerTest, SessionPresentFalseThenTrueForPersistentSession5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 300;
  FakeLink& first = connect_ok("c5", o, false);
  drop(first);
  connect_ok("c5", o, true);
}

// [MQTT-3.1.2-6] (3.1.1): a session with clean session 1 ends with the connection.
TEST_F(ShardBrokerTest, CleanSessionIsNotResumed311) {
  FakeLink& first = connect_ok("c1");
  disconnect(first);
  ConnectOptions o;
  o.clean_start = false;
  connect_ok("c1", o, false);
}

// [MQTT-3.1.2-4] (5.0 [MQTT-3.1.2-4]): Clean Start discards the existing session, its
// subscriptions and queued messages.
TEST_F(ShardBrokerTest, CleanStartDiscardsStoredSession) {
  ConnectOptions persistent;
  persistent.clean_start = false;
  FakeLink& sub = connect_ok("sub", persistent, false);
  subscribe(sub, "t/#", 1);
  disconnect(sub);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "t/1", "queued", 1, 1);

  FakeLink& fresh = connect_ok("sub", ConnectOptions{}, false);
  EXPECT_TRUE(fresh.take_packets().empty()) << "queued message of the discarded session sent";
  publish(pub, "t/2", "after", 1, 2);
  EXPECT_TRUE(fresh.take_packets().empty()) << "subscription of the discarded session kept";
  EXPECT_EQ(tree->size(), 0u);
}

// [MQTT-3.1.3-8]: 3.1.1 zero-length client id with clean session 0 → CONNACK return code
// 0x02 (identifier rejected), then close.
TEST_F(ShardBrokerTest, EmptyClientIdWithoutCleanSessionRejected311) {
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& l = connect("", o);
  EXPECT_EQ(l.raw(), std::string("\x20\x02\x00\x02", 4));
  EXPECT_TRUE(l.closed());
  EXPECT_EQ(b().session_count(), 0u);
}

// [MQTT-3.1.3-6] / [MQTT-3.1.3-7]: 3.1.1 zero-length id with clean session 1 is accepted and
// the server assigns a unique id.
TEST_F(ShardBrokerTest, EmptyClientIdWithCleanSessionAccepted311) {
  FakeLink& l = connect_ok("", ConnectOptions{}, false);
  EXPECT_FALSE(l.closed());
  EXPECT_EQ(b().session_count(), 1u);
}

// 5.0 §3.2.2.3.7, [MQTT-3.2.2-16]: an assigned client id is returned in the Assigned Client
// Identifier property; two such clients get different ids.
TEST_F(ShardBrokerTest, AssignedClientIdentifierProperty5) {
  ConnectOptions o;
  o.version = Version::v5;
  std::set<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    FakeLink& l = connect("", o);
    auto packets = l.take_packets();
    ASSERT_EQ(packets.size(), 1u);
    const auto& ack = std::get<mqtt::Connack>(packets[0]);
    EXPECT_EQ(ack.reason, ReasonCode::Success);
    ASSERT_TRUE(ack.props.assigned_client_identifier.has_value());
    EXPECT_FALSE(ack.props.assigned_client_identifier->empty());
    ids.insert(*ack.props.assigned_client_identifier);
  }
  EXPECT_EQ(ids.size(), 2u);
}

// [MQTT-3.1.4-3] (5.0 §3.1.4, §4.13): a second connection with the same client id takes the
// session over; the old one gets DISCONNECT 0x8E and is closed.
TEST_F(ShardBrokerTest, TakeoverSendsSessionTakenOverAndClosesOldLink5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 600;
  FakeLink& old = connect_ok("dup", o, false);
  FakeLink& now = connect_ok("dup", o, true);
  auto old_packets = old.take_packets();
  ASSERT_EQ(old_packets.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Disconnect>(old_packets[0]).reason, ReasonCode::SessionTakenOver);
  EXPECT_TRUE(old.closed());
  EXPECT_FALSE(now.closed());
  // The old socket goes away later; the session stays with the new connection.
  drop(old);
  subscribe(now, "x", 0);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "x", "to-new", 0);
  EXPECT_EQ(payloads(publishes(now)), std::vector<std::string>{"to-new"});
}

// [MQTT-3.1.4-2] (3.1.1): the server disconnects the existing client; 3.1.1 has no
// DISCONNECT from the server.
TEST_F(ShardBrokerTest, TakeoverClosesOldLinkWithoutDisconnect311) {
  FakeLink& old = connect_ok("dup");
  connect_ok("dup", ConnectOptions{}, false);
  EXPECT_TRUE(old.raw().empty());
  EXPECT_TRUE(old.closed());
  drop(old);
  EXPECT_EQ(b().session_count(), 1u);
}

// ================================================================ QoS 1 outbound

// [MQTT-4.9.0-2] (inflight window) and [MQTT-4.6.0-2] (order): beyond the window messages
// wait in order; each PUBACK frees one slot and the next one is sent [MQTT-4.3.2-4]
// (PUBACK for the packet id ends the flow).
TEST_F(ShardBrokerTest, Qos1WindowRespectedAndQueueDrainsInOrder) {
  settings.max_inflight_window = 2;
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q", 1);
  FakeLink& pub = connect_ok("pub");
  for (int i = 0; i < 5; ++i) publish(pub, "q", "m" + std::to_string(i), 1, uint16_t(i + 1));

  auto first = publishes(sub);
  ASSERT_EQ(payloads(first), (std::vector<std::string>{"m0", "m1"}));
  for (const auto& p : first) {
    EXPECT_EQ(p.qos, 1);
    EXPECT_FALSE(p.dup);
    EXPECT_NE(p.packet_id, 0);
  }
  EXPECT_NE(first[0].packet_id, first[1].packet_id);

  send(sub, make_ack(PacketType::Puback, first[0].packet_id));
  auto next = publishes(sub);
  ASSERT_EQ(payloads(next), std::vector<std::string>{"m2"});
  EXPECT_NE(next[0].packet_id, first[1].packet_id);

  // A PUBACK for an id not in flight frees nothing.
  send(sub, make_ack(PacketType::Puback, 999));
  EXPECT_TRUE(publishes(sub).empty());

  send(sub, make_ack(PacketType::Puback, first[1].packet_id));
  send(sub, make_ack(PacketType::Puback, next[0].packet_id));
  EXPECT_EQ(payloads(publishes(sub)), (std::vector<std::string>{"m3", "m4"}));
}

// [MQTT-3.3.4-7] / [MQTT-3.3.4-8] (5.0): the server sends no more unacknowledged QoS 1/2
// PUBLISH than the client's Receive Maximum.
TEST_F(ShardBrokerTest, ReceiveMaximumLimitsOutboundWindow5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.receive_maximum = 3;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 2);
  FakeLink& pub = connect_ok("pub");
  for (int i = 0; i < 6; ++i) publish(pub, "q", "m" + std::to_string(i), 1, uint16_t(i + 1));
  auto sent = publishes(sub);
  ASSERT_EQ(payloads(sent), (std::vector<std::string>{"m0", "m1", "m2"}));
  send(sub, make_ack(PacketType::Puback, sent[1].packet_id));
  EXPECT_EQ(payloads(publishes(sub)), std::vector<std::string>{"m3"});
}

// The smaller of Receive Maximum and mqtt.max_inflight_window wins.
TEST_F(ShardBrokerTest, MaxInflightWindowCapsReceiveMaximum5) {
  settings.max_inflight_window = 2;
  ConnectOptions o;
  o.version = Version::v5;
  o.receive_maximum = 10;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  FakeLink& pub = connect_ok("pub");
  for (int i = 0; i < 4; ++i) publish(pub, "q", "m", 1, uint16_t(i + 1));
  EXPECT_EQ(publishes(sub).size(), 2u);
}

// [MQTT-2.2.1-3] (5.0 [MQTT-2.2.1-4]): a packet id is not reused while its flow is in
// progress. Acknowledges out of order for many rounds and checks every new id is free.
TEST_F(ShardBrokerTest, PacketIdsNeverReusedWhileInflight) {
  settings.max_inflight_window = 4;
  settings.max_mqueue_len = 0;  // unbounded: every message must eventually go out
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q", 1);
  FakeLink& pub = connect_ok("pub");
  constexpr int kMessages = 300;
  for (int i = 0; i < kMessages; ++i) publish(pub, "q", std::to_string(i), 1, uint16_t(i % 60000 + 1));
  std::vector<uint16_t> inflight;
  std::vector<std::string> received;
  uint32_t lcg = 12345;
  for (int round = 0; round < 10 * kMessages && received.size() < size_t(kMessages); ++round) {
    for (const auto& p : publishes(sub)) {
      EXPECT_NE(p.packet_id, 0);
      EXPECT_EQ(std::count(inflight.begin(), inflight.end(), p.packet_id), 0)
          << "packet id " << p.packet_id << " reused while in flight";
      inflight.push_back(p.packet_id);
      received.push_back(p.payload);
    }
    ASSERT_LE(inflight.size(), 4u);
    if (inflight.empty()) break;
    lcg = lcg * 1103515245u + 12345u;
    size_t pick = (lcg >> 16) % inflight.size();
    send(sub, make_ack(PacketType::Puback, inflight[pick]));
    inflight.erase(inflight.begin() + static_cast<long>(pick));
  }
  ASSERT_EQ(received.size(), size_t(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(received[size_t(i)], std::to_string(i));
}

// ================================================================ QoS 2 outbound

// [MQTT-4.3.3-1..4] (sender side): PUBLISH QoS 2 → PUBREC → PUBREL with the same id →
// PUBCOMP; the slot is held until PUBCOMP.
TEST_F(ShardBrokerTest, Qos2OutboundPubrecPubrelPubcomp) {
  settings.max_inflight_window = 1;
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q", 2);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", "a", 2, 1);
  publish(pub, "q", "b", 2, 2);

  auto first = publishes(sub);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].qos, 2);
  EXPECT_EQ(first[0].payload, "a");
  const uint16_t pid = first[0].packet_id;

  send(sub, make_ack(PacketType::Pubrec, pid));
  auto after_rec = sub.take_packets();
  ASSERT_EQ(after_rec.size(), 1u) << "only PUBREL; the slot is still taken";
  const auto& rel = std::get<mqtt::PubAck>(after_rec[0]);
  EXPECT_EQ(rel.type, PacketType::Pubrel);
  EXPECT_EQ(rel.packet_id, pid);

  send(sub, make_ack(PacketType::Pubcomp, pid));
  auto next = publishes(sub);
  ASSERT_EQ(payloads(next), std::vector<std::string>{"b"});
  EXPECT_FALSE(next[0].dup);
}

// [MQTT-4.4.0-1] (5.0 [MQTT-4.4.0-1], [MQTT-4.4.0-2]) and [MQTT-3.3.1-1]: on reconnect with
// a resumed session, unacknowledged PUBLISH are resent with DUP=1 and PUBREL for those
// awaiting PUBCOMP, in the original order, before anything queued.
TEST_F(ShardBrokerTest, ReconnectResendsDupPublishAndPubrelInOrderThenQueue) {
  for (Version v : {Version::v311, Version::v5}) {
    SCOPED_TRACE(v == Version::v5 ? "5.0" : "3.1.1");
    settings.max_inflight_window = 3;
    start();
    ConnectOptions o;
    o.version = v;
    o.clean_start = false;
    o.session_expiry = 3600;
    FakeLink* sub = &connect_ok("sub", o);
    subscribe(*sub, "q", 2);
    FakeLink& pub = connect_ok("pub");
    for (int i = 1; i <= 4; ++i) publish(pub, "q", "m" + std::to_string(i), 2, uint16_t(i));
    auto sent = publishes(*sub);
    ASSERT_EQ(payloads(sent), (std::vector<std::string>{"m1", "m2", "m3"}));
    send(*sub, make_ack(PacketType::Pubrec, sent[0].packet_id));
    ASSERT_EQ(sub->take_packets().size(), 1u);  // PUBREL
    drop(*sub);
    publish(pub, "q", "m5", 2, 5);

    sub = &connect_ok("sub", o, true);
    auto resent = sub->take_packets();
    // PUBREL m1, DUP m2, DUP m3, then the queue's m4: the send quota (3) counts PUBLISH
    // packets sent on this connection, and m1's was sent on the previous one (MQTT 5 §4.9:
    // the quota starts again at Receive Maximum on each connection; a PUBREL takes none).
    ASSERT_EQ(resent.size(), 4u);
    const auto* rel = std::get_if<mqtt::PubAck>(&resent[0]);
    ASSERT_NE(rel, nullptr);
    EXPECT_EQ(rel->type, PacketType::Pubrel);
    EXPECT_EQ(rel->packet_id, sent[0].packet_id);
    for (int i = 1; i <= 2; ++i) {
      const auto* p = std::get_if<mqtt::Publish>(&resent[size_t(i)]);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(p->dup);
      EXPECT_EQ(p->packet_id, sent[size_t(i)].packet_id);
      EXPECT_EQ(p->payload, sent[size_t(i)].payload);
    }
    const auto* m4 = std::get_if<mqtt::Publish>(&resent[3]);
    ASSERT_NE(m4, nullptr);
    EXPECT_EQ(m4->payload, "m4");
    EXPECT_FALSE(m4->dup);
    // m1's PUBCOMP frees no quota on this connection; m2's does, and the queue follows.
    send(*sub, make_ack(PacketType::Pubcomp, sent[0].packet_id));
    EXPECT_TRUE(publishes(*sub).empty());
    send(*sub, make_ack(PacketType::Pubrec, sent[1].packet_id));
    send(*sub, make_ack(PacketType::Pubcomp, sent[1].packet_id));
    EXPECT_EQ(payloads(publishes(*sub)), std::vector<std::string>{"m5"});
    broker.reset();
  }
}

// ================================================================ QoS 2 inbound

// [MQTT-4.3.3-9] (5.0 [MQTT-4.3.3-10]..[MQTT-4.3.3-11]): until PUBREL, a PUBLISH with the same
// packet id is answered with PUBREC and not delivered again; PUBREL → PUBCOMP; after that
// the id starts a new message.
TEST_F(ShardBrokerTest, Qos2InboundDuplicateBeforePubrelDeliveredOnce) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q", 2);
  FakeLink& pub = connect_ok("pub");

  publish(pub, "q", "once", 2, 7);
  auto rec = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].type, PacketType::Pubrec);
  EXPECT_EQ(rec[0].packet_id, 7);
  EXPECT_EQ(payloads(publishes(sub)), std::vector<std::string>{"once"});

  auto dup = make_publish("q", "once", 2, 7);
  dup.dup = true;
  send(pub, dup);
  rec = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].type, PacketType::Pubrec);
  EXPECT_TRUE(publishes(sub).empty()) << "duplicate QoS 2 delivered twice";

  send(pub, make_ack(PacketType::Pubrel, 7));
  auto comp = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].type, PacketType::Pubcomp);
  EXPECT_EQ(comp[0].packet_id, 7);
  EXPECT_EQ(comp[0].reason, ReasonCode::Success);

  publish(pub, "q", "again", 2, 7);
  EXPECT_EQ(payloads(publishes(sub)), std::vector<std::string>{"again"});
}

// 5.0 §3.7.2.1: PUBREL for an unknown packet id → PUBCOMP 0x92.
TEST_F(ShardBrokerTest, PubrelUnknownIdAnsweredWithNotFound5) {
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& pub = connect_ok("pub", o);
  send(pub, make_ack(PacketType::Pubrel, 42));
  auto comp = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].type, PacketType::Pubcomp);
  EXPECT_EQ(comp[0].reason, ReasonCode::PacketIdentifierNotFound);
}

// mqtt.await_rel_timeout: inbound QoS 2 state that never sees PUBREL is dropped by sweep.
TEST_F(ShardBrokerTest, AwaitRelTimeoutDropsInboundQos2State) {
  settings.await_rel_timeout = std::chrono::milliseconds(1000);
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q", 2);
  FakeLink& pub = connect_ok("pub", o);
  publish(pub, "q", "x", 2, 9);
  pub.take_packets();
  ASSERT_EQ(publishes(sub).size(), 1u);

  services.advance(900);
  b().sweep();
  send(pub, make_publish("q", "x", 2, 9));  // still tracked: not delivered again
  EXPECT_TRUE(publishes(sub).empty());
  pub.take_packets();

  services.advance(1200);
  b().sweep();
  EXPECT_FALSE(pub.closed());
  send(pub, make_ack(PacketType::Pubrel, 9));
  auto comp = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].reason, ReasonCode::PacketIdentifierNotFound) << "state not dropped";
}

// ================================================================ 3.1.1 retry / 5.0 no retry

// 3.1.1 §4.4 (and mqtt.retry_interval): while online, unacknowledged PUBLISH are resent with
// DUP=1 [MQTT-3.3.1-1] and the same packet id after the retry interval; PUBREL likewise.
TEST_F(ShardBrokerTest, Retry311OnSweepAfterRetryIntervalWithDup) {
  settings.retry_interval = std::chrono::milliseconds(5000);
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "q1", 1);
  subscribe(sub, "q2", 2, {}, 0, 2);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q1", "one", 1, 1);
  publish(pub, "q2", "two", 2, 2);
  auto sent = publishes(sub);
  ASSERT_EQ(sent.size(), 2u);
  send(sub, make_ack(PacketType::Pubrec, sent[1].packet_id));
  ASSERT_EQ(sub.take_packets().size(), 1u);  // PUBREL

  services.advance(4000);
  b().sweep();
  EXPECT_TRUE(sub.take_packets().empty()) << "resent before retry_interval";

  services.advance(1500);
  b().sweep();
  auto again = sub.take_packets();
  ASSERT_EQ(again.size(), 2u);
  const auto& p = std::get<mqtt::Publish>(again[0]);
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.packet_id, sent[0].packet_id);
  EXPECT_EQ(p.payload, "one");
  const auto& rel = std::get<mqtt::PubAck>(again[1]);
  EXPECT_EQ(rel.type, PacketType::Pubrel);
  EXPECT_EQ(rel.packet_id, sent[1].packet_id);

  // Acknowledged: no more retries.
  send(sub, make_ack(PacketType::Puback, sent[0].packet_id));
  send(sub, make_ack(PacketType::Pubcomp, sent[1].packet_id));
  services.advance(6000);
  b().sweep();
  EXPECT_TRUE(sub.take_packets().empty());
}

// 5.0 [MQTT-4.4.0-1]: PUBLISH is resent only on reconnect, never while the connection lives.
TEST_F(ShardBrokerTest, V5NeverResentWhileOnline) {
  settings.retry_interval = std::chrono::milliseconds(1000);
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", "x", 1, 1);
  ASSERT_EQ(publishes(sub).size(), 1u);
  for (int i = 0; i < 5; ++i) {
    services.advance(10'000);
    b().sweep();
  }
  EXPECT_TRUE(sub.take_packets().empty());
  EXPECT_FALSE(sub.closed());
}

// ================================================================ offline queue

// mqtt.max_mqueue_len (STYLE rule 11): an offline session queues at most that many; newer
// messages are dropped and counted; the kept ones arrive in order [MQTT-4.6.0-2].
TEST_F(ShardBrokerTest, OfflineQueueBoundedDropsNewAndCounts) {
  settings.max_mqueue_len = 3;
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  disconnect(sub);
  FakeLink& pub = connect_ok("pub");
  for (int i = 0; i < 5; ++i) publish(pub, "q", "m" + std::to_string(i), 1, uint16_t(i + 1));
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 2u);
  // The publisher is still acknowledged for every message.
  EXPECT_EQ(all_of<mqtt::PubAck>(pub.take_packets()).size(), 5u);

  FakeLink& back = connect_ok("sub", o, true);
  EXPECT_EQ(payloads(publishes(back)), (std::vector<std::string>{"m0", "m1", "m2"}));
}

// QoS 0 is not queued for an offline session unless mqtt.queue_qos0.
TEST_F(ShardBrokerTest, OfflineQos0NotQueuedByDefault) {
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  disconnect(sub);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", "zero", 0);
  publish(pub, "q", "one", 1, 1);
  FakeLink& back = connect_ok("sub", o, true);
  EXPECT_EQ(payloads(publishes(back)), std::vector<std::string>{"one"});
}

// ================================================================ keepalive and wills

mqtt::Will make_will(std::string topic, std::string payload) {
  mqtt::Will w;
  w.topic = std::move(topic);
  w.payload = std::move(payload);
  return w;
}

// [MQTT-3.1.2-24] (3.1.1 [MQTT-3.1.2-24]; 5.0 §3.1.2.10): no packet within 1.5 (here
// mqtt.keepalive_multiplier) × Keep Alive → the server disconnects; as a network failure,
// the will is published [MQTT-3.1.2-8]. 5.0 gets DISCONNECT 0x8D first.
TEST_F(ShardBrokerTest, KeepaliveTimeoutClosesAndPublishesWill) {
  for (Version v : {Version::v311, Version::v5}) {
    SCOPED_TRACE(v == Version::v5 ? "5.0" : "3.1.1");
    start();
    FakeLink& watcher = connect_ok("watcher");
    subscribe(watcher, "will/#", 0);
    ConnectOptions o;
    o.version = v;
    o.keep_alive = 10;
    o.will = make_will("will/c", "gone");
    FakeLink& c = connect_ok("c", o);

    services.advance(5000);
    send(c, mqtt::Pingreq{});  // activity restarts the keepalive period
    EXPECT_EQ(all_of<mqtt::Pingresp>(c.take_packets()).size(), 1u);
    services.advance(12'000);  // 12 s since the last packet: within 12.5 s
    b().sweep();
    EXPECT_FALSE(c.closed());

    services.advance(1000);
    b().sweep();
    EXPECT_TRUE(c.closed());
    auto out = c.take_packets();
    if (v == Version::v5) {
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(std::get<mqtt::Disconnect>(out[0]).reason, ReasonCode::KeepAliveTimeout);
    } else {
      EXPECT_TRUE(out.empty());
    }
    EXPECT_TRUE(publishes(watcher).empty()) << "will before the connection closed";
    drop(c);
    EXPECT_EQ(payloads(publishes(watcher)), std::vector<std::string>{"gone"});
    broker.reset();
  }
}

// [MQTT-3.1.2-10] (5.0 [MQTT-3.1.2-10]): DISCONNECT 0x00 removes the will: not published.
TEST_F(ShardBrokerTest, NormalDisconnectDoesNotPublishWill) {
  for (Version v : {Version::v311, Version::v5}) {
    SCOPED_TRACE(v == Version::v5 ? "5.0" : "3.1.1");
    start();
    FakeLink& watcher = connect_ok("watcher");
    subscribe(watcher, "will/#", 0);
    ConnectOptions o;
    o.version = v;
    o.will = make_will("will/c", "gone");
    FakeLink& c = connect_ok("c", o);
    disconnect(c);
    EXPECT_TRUE(publishes(watcher).empty());
    broker.reset();
  }
}

// [MQTT-3.14.4-3] (5.0 §3.14.2.1): DISCONNECT with reason 0x04 publishes the will.
TEST_F(ShardBrokerTest, DisconnectWithWillMessagePublishesWill5) {
  FakeLink& watcher = connect_ok("watcher");
  subscribe(watcher, "will/#", 0);
  ConnectOptions o;
  o.version = Version::v5;
  o.will = make_will("will/c", "bye");
  FakeLink& c = connect_ok("c", o);
  disconnect(c, ReasonCode::DisconnectWithWill);
  EXPECT_EQ(payloads(publishes(watcher)), std::vector<std::string>{"bye"});
}

// [MQTT-3.1.2-8]: a connection closed without DISCONNECT publishes the will.
TEST_F(ShardBrokerTest, NetworkCloseWithoutDisconnectPublishesWill) {
  FakeLink& watcher = connect_ok("watcher");
  subscribe(watcher, "will/#", 0);
  ConnectOptions o;
  o.will = make_will("will/c", "lost");
  FakeLink& c = connect_ok("c", o);
  drop(c);
  EXPECT_EQ(payloads(publishes(watcher)), std::vector<std::string>{"lost"});
}

// ================================================================ retained

// [MQTT-3.8.4-4] / [MQTT-3.3.1-6] / [MQTT-3.3.1-8]: retained messages matching a new
// subscription are sent after the SUBACK with RETAIN=1 at min(message QoS, granted QoS).
TEST_F(ShardBrokerTest, RetainedSentAfterSubackWithRetainFlagAtMinQos) {
  FakeLink& pub = connect_ok("pub");
  publish(pub, "r/a", "two", 2, 1, /*retain=*/true);
  publish(pub, "r/b", "zero", 0, 0, /*retain=*/true);
  EXPECT_EQ(retained->size(), 2u);

  FakeLink& sub = connect_ok("sub");
  mqtt::Subscribe s;
  s.packet_id = 3;
  s.topics.push_back(mqtt::SubscribeTopic{"r/#", 1});
  send(sub, s);
  auto packets = sub.take_packets();
  ASSERT_EQ(packets.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<mqtt::Suback>(packets[0])) << "retained before SUBACK";
  std::vector<mqtt::Publish> got = all_of<mqtt::Publish>(packets);
  std::sort(got.begin(), got.end(),
            [](const mqtt::Publish& a, const mqtt::Publish& b) { return a.topic < b.topic; });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "r/a");
  EXPECT_TRUE(got[0].retain);
  EXPECT_EQ(got[0].qos, 1);
  EXPECT_EQ(got[1].topic, "r/b");
  EXPECT_TRUE(got[1].retain);
  EXPECT_EQ(got[1].qos, 0);

  // A live publish to an existing subscription carries RETAIN=0 [MQTT-3.3.1-9] (3.1.1).
  publish(pub, "r/a", "live", 0, 0, /*retain=*/true);
  auto live = publishes(sub);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_FALSE(live[0].retain);
}

// 5.0 [MQTT-3.3.1-9]..[MQTT-3.3.1-11]: Retain Handling 0 sends on every subscribe, 1 only
// when the subscription is new, 2 never.
TEST_F(ShardBrokerTest, RetainHandlingZeroOneTwo5) {
  FakeLink& pub = connect_ok("pub");
  publish(pub, "r/x", "kept", 1, 1, /*retain=*/true);
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& sub = connect_ok("sub", o);

  mqtt::SubscribeTopic rh1;
  rh1.retain_handling = 1;
  subscribe(sub, "r/x", 1, rh1, 0, 1);
  EXPECT_EQ(publishes(sub).size(), 1u) << "handling 1, new subscription";
  subscribe(sub, "r/x", 1, rh1, 0, 2);
  EXPECT_TRUE(publishes(sub).empty()) << "handling 1, existing subscription";

  mqtt::SubscribeTopic rh0;
  subscribe(sub, "r/x", 1, rh0, 0, 3);
  EXPECT_EQ(publishes(sub).size(), 1u) << "handling 0, existing subscription";

  mqtt::SubscribeTopic rh2;
  rh2.retain_handling = 2;
  subscribe(sub, "r/+", 1, rh2, 0, 4);
  EXPECT_TRUE(publishes(sub).empty()) << "handling 2";
}

// [MQTT-3.3.1-10] / [MQTT-3.3.1-11] (3.1.1): a retained PUBLISH with an empty payload removes
// the retained message; it is not stored; later subscribers get nothing.
TEST_F(ShardBrokerTest, EmptyRetainedPayloadClears) {
  FakeLink& pub = connect_ok("pub");
  publish(pub, "r/c", "v", 1, 1, true);
  ASSERT_EQ(retained->size(), 1u);
  publish(pub, "r/c", "", 1, 2, true);
  EXPECT_EQ(retained->size(), 0u);
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "r/#", 1);
  EXPECT_TRUE(sub.take_packets().empty());
}

// ================================================================ overlapping subscriptions

// 5.0 [MQTT-3.3.4-2] / [MQTT-3.3.4-3] / [MQTT-3.3.4-5]: overlapping subscriptions of one
// session give one delivery at the highest granted QoS carrying every Subscription
// Identifier.
TEST_F(ShardBrokerTest, OverlappingSubscriptionsOneDeliveryMaxQosAllIds5) {
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "a/+", 0, {}, 11, 1);
  subscribe(sub, "a/#", 2, {}, 22, 2);
  subscribe(sub, "a/b", 1, {}, 0, 3);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "a/b", "m", 2, 1);
  auto got = publishes(sub);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, 2);
  auto ids = got[0].props.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint32_t>{11, 22}));

  // The delivered QoS is never above the published one [MQTT-3.8.4-8].
  publish(pub, "a/b", "m1", 1, 2);
  got = publishes(sub);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, 1);
}

// 5.0 [MQTT-3.8.3-3]: No Local — not sent back to the publishing session; others get it.
TEST_F(ShardBrokerTest, NoLocalNotSentToPublisher5) {
  ConnectOptions o;
  o.version = Version::v5;
  FakeLink& me = connect_ok("me", o);
  mqtt::SubscribeTopic nl;
  nl.no_local = true;
  subscribe(me, "n/t", 1, nl);
  FakeLink& other = connect_ok("other", o);
  subscribe(other, "n/t", 1, nl);
  publish(me, "n/t", "hello", 1, 1);
  auto mine = me.take_packets();
  EXPECT_TRUE(all_of<mqtt::Publish>(mine).empty());
  EXPECT_EQ(all_of<mqtt::PubAck>(mine).size(), 1u);
  EXPECT_EQ(payloads(publishes(other)), std::vector<std::string>{"hello"});
}

// ================================================================ persistence ops

// DESIGN §4 ops for a persistent QoS 1 delivery: a queue entry per subscriber carrying the
// one shared message (QueueAdd), its state when sent (QueueUpdate AwaitPuback + packet id),
// its removal on PUBACK (QueueRemove); non-persistent subscribers add nothing.
TEST_F(ShardBrokerTest, PersistentQos1DeliveryEmitsStoreOps) {
  start(/*with_store=*/true);
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& s1 = connect_ok("s1", o);
  subscribe(s1, "p", 1);
  FakeLink& s2 = connect_ok("s2", o);
  subscribe(s2, "p", 1);
  disconnect(s2);  // s2 offline: queued, not sent
  FakeLink& volatile_sub = connect_ok("v");
  subscribe(volatile_sub, "p", 1);
  FakeLink& pub = connect_ok("pub");
  sink.clear();

  publish(pub, "p", "body", 1, 1);
  auto qadds = sink.ops_of<OpQueueAdd>();
  ASSERT_EQ(qadds.size(), 2u);
  ASSERT_TRUE(qadds[0].message);
  const MessageId mid = qadds[0].message->store_id;
  EXPECT_NE(mid, 0u);
  EXPECT_EQ(qadds[0].message->payload, "body");
  EXPECT_EQ(qadds[0].message.get(), qadds[1].message.get()) << "one message, shared";
  std::set<std::string> owners;
  for (const auto& q : qadds) {
    owners.insert(q.client_id);
    EXPECT_EQ(q.message->store_id, mid);
    EXPECT_EQ(q.qos, 1);
  }
  EXPECT_EQ(owners, (std::set<std::string>{"s1", "s2"}));

  auto updates = sink.ops_of<OpQueueUpdate>();
  ASSERT_EQ(updates.size(), 1u) << "only the online subscriber's row changes state";
  EXPECT_EQ(updates[0].client_id, "s1");
  EXPECT_EQ(updates[0].state, OutState::AwaitPuback);
  auto sent = publishes(s1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(updates[0].packet_id, sent[0].packet_id);

  // Order: QueueAdd(s1) before QueueUpdate(s1).
  const auto& ops = sink.ops();
  size_t qadd_s1 = 0, upd_s1 = 0;
  bool seen_add = false, seen_update = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (auto* q = std::get_if<OpQueueAdd>(&ops[i].op); q && q->client_id == "s1") {
      qadd_s1 = i;
      seen_add = true;
    }
    if (auto* u = std::get_if<OpQueueUpdate>(&ops[i].op); u && u->client_id == "s1") {
      upd_s1 = i;
      seen_update = true;
    }
  }
  ASSERT_TRUE(seen_add && seen_update);
  EXPECT_LT(qadd_s1, upd_s1);

  send(s1, make_ack(PacketType::Puback, sent[0].packet_id));
  auto removes = sink.ops_of<OpQueueRemove>();
  ASSERT_EQ(removes.size(), 1u);
  EXPECT_EQ(removes[0].client_id, "s1");
  EXPECT_EQ(removes[0].seq, updates[0].seq);

  // A second message gets its own store id, shared by its two entries.
  sink.clear();
  publish(pub, "p", "body2", 1, 2);
  auto second = sink.ops_of<OpQueueAdd>();
  ASSERT_EQ(second.size(), 2u);
  EXPECT_NE(second[0].message->store_id, mid);
  EXPECT_EQ(second[0].message->store_id, second[1].message->store_id);
}

// Durability before acknowledgement (sqlite.ack_policy = after_commit, DESIGN §4): the
// publisher's PUBACK is withheld until durable_seq covers every op of the message.
TEST_F(ShardBrokerTest, AckAfterCommitWithholdsPubackUntilDurable) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 1);
  FakeLink& pub = connect_ok("pub");
  sink.commit_all();
  const uint64_t before = sink.last_seq();

  publish(pub, "p", "durable", 1, 5);
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBACK before the store committed";
  EXPECT_EQ(publishes(sub).size(), 1u) << "delivery itself need not wait";
  ASSERT_GT(sink.last_seq(), before);

  services.run_posted(b());
  EXPECT_TRUE(pub.take_packets().empty());

  // Committed up to the QueueAdd but not yet... everything before the last covering op.
  uint64_t needed = 0;
  for (const auto& r : sink.ops())
    if (std::holds_alternative<OpQueueAdd>(r.op))
      needed = std::max(needed, r.seq);
  sink.set_durable(needed - 1);
  b().on_durable();
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBACK before its ops were durable";

  sink.set_durable(needed);
  b().on_durable();
  auto acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].type, PacketType::Puback);
  EXPECT_EQ(acks[0].packet_id, 5);
  b().on_durable();
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBACK sent twice";
}

// A QoS 2 publish from a persistent publisher under ack-after-commit: PUBREC waits for the
// Qos2InAdd row too; PUBREL removes it.
TEST_F(ShardBrokerTest, AckAfterCommitQos2WaitsForQos2InRow) {
  start_ack_after_commit();
  FakeLink& pub = connect_persistent("pub");
  publish(pub, "nobody", "x", 2, 8);
  services.run_posted(b());
  EXPECT_TRUE(pub.take_packets().empty());
  auto rows = sink.ops_of<OpQos2InAdd>();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].client_id, "pub");
  EXPECT_EQ(rows[0].packet_id, 8);
  commit();
  auto rec = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].type, PacketType::Pubrec);
  send(pub, make_ack(PacketType::Pubrel, 8));
  EXPECT_EQ(sink.count<OpQos2InRemove>(), 1u);
}

// PUBCOMP tells the client its packet id is free again: it waits until the QoS 2 receiver
// row is deleted, or after a crash the client's next PUBLISH with that id would be taken
// for a resend and dropped. A PUBREL resent meanwhile is answered by that one PUBCOMP.
TEST_F(ShardBrokerTest, AckAfterCommitPubcompWaitsForQos2InRemoval) {
  start_ack_after_commit();
  FakeLink& pub = connect_persistent("pub");
  publish(pub, "nobody", "x", 2, 8);
  services.run_posted(b());
  commit();
  ASSERT_EQ(all_of<mqtt::PubAck>(pub.take_packets()).size(), 1u);  // PUBREC

  send(pub, make_ack(PacketType::Pubrel, 8));
  EXPECT_EQ(sink.count<OpQos2InRemove>(), 1u);
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBCOMP before the receiver row was deleted";
  send(pub, make_ack(PacketType::Pubrel, 8));
  EXPECT_TRUE(pub.take_packets().empty());
  commit();
  auto comp = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].type, PacketType::Pubcomp);
  EXPECT_EQ(comp[0].packet_id, 8);
  EXPECT_EQ(comp[0].reason, mqtt::ReasonCode::Success);
  b().on_durable();
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBCOMP sent twice";
}

// PUBREL to a persistent receiver waits until its PUBREC is stored: else a restart would
// resend the PUBLISH to a receiver that already completed it.
TEST_F(ShardBrokerTest, AckAfterCommitPubrelWaitsForStoredPubrec) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 2);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "p", "m", 2, 3);
  services.run_posted(b());
  commit();
  auto got = publishes(sub);
  ASSERT_EQ(got.size(), 1u);

  send(sub, make_ack(PacketType::Pubrec, got[0].packet_id));
  auto updates = sink.ops_of<OpQueueUpdate>();
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().state, OutState::AwaitPubcomp);
  EXPECT_TRUE(sub.take_packets().empty()) << "PUBREL before the PUBREC state was stored";
  commit();
  auto rel = all_of<mqtt::PubAck>(sub.take_packets());
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].type, PacketType::Pubrel);
  EXPECT_EQ(rel[0].packet_id, got[0].packet_id);
}

// PUBRELs go out in the order of their PUBRECs: one whose state is already durable still
// waits behind an earlier one that waits for the store (clients such as paho deliver a QoS 2
// message on PUBREL, so the order of PUBRELs is the order the application sees).
TEST_F(ShardBrokerTest, AckAfterCommitHeldPubrelsKeepTheirOrder) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 2);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "p", "1", 2, 1);
  publish(pub, "p", "2", 2, 2);
  services.run_posted(b());
  commit();
  auto got = publishes(sub);
  ASSERT_EQ(got.size(), 2u);

  send(sub, make_ack(PacketType::Pubrec, got[0].packet_id));  // waits for its state
  EXPECT_TRUE(sub.take_packets().empty());
  sink.set_durable(1'000'000);  // committed, but the broker has not heard yet
  send(sub, make_ack(PacketType::Pubrec, got[1].packet_id));
  EXPECT_TRUE(sub.take_packets().empty()) << "second PUBREL overtook the first";
  b().on_durable();
  auto rel = all_of<mqtt::PubAck>(sub.take_packets());
  ASSERT_EQ(rel.size(), 2u);
  EXPECT_EQ(rel[0].packet_id, got[0].packet_id);
  EXPECT_EQ(rel[1].packet_id, got[1].packet_id);
}

// A publisher's acknowledgements keep the order of its publishes: one with nothing to store
// still waits behind an earlier one that waits for the store.
TEST_F(ShardBrokerTest, AckAfterCommitPubacksKeepTheirOrder) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 1);
  FakeLink& pub = connect_ok("pub");
  commit();
  publish(pub, "p", "stored", 1, 1);
  services.run_posted(b());
  EXPECT_TRUE(pub.take_packets().empty());
  sink.set_durable(1'000'000);  // committed, but the broker has not heard yet
  publish(pub, "nobody", "not stored", 1, 2);
  services.run_posted(b());
  EXPECT_TRUE(pub.take_packets().empty()) << "second PUBACK overtook the first";
  b().on_durable();
  auto acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].packet_id, 1);
  EXPECT_EQ(acks[1].packet_id, 2);
}

// A QoS 2 PUBLISH to a persistent receiver waits until its packet id is stored (else a
// crash would restore it as unsent and send it again under a new id); later messages to that
// receiver, whatever their QoS, wait behind it so the order is kept. Other receivers do not wait.
TEST_F(ShardBrokerTest, AckAfterCommitQos2PublishWaitsForItsPacketIdAndKeepsOrder) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 2);
  FakeLink& plain = connect_ok("plain");  // clean session: nothing stored for it
  subscribe(plain, "p", 2);
  FakeLink& pub = connect_ok("pub");
  commit();

  publish(pub, "p", "one", 2, 1);
  publish(pub, "p", "two", 1, 2);
  publish(pub, "p", "three", 0, 0);
  services.run_posted(b());
  EXPECT_TRUE(publishes(sub).empty()) << "PUBLISH before its packet id was stored";
  EXPECT_EQ(publishes(plain).size(), 3u);
  uint64_t update_seq = 0;  // the store sequence of the packet id assignment
  for (const auto& r : sink.ops())
    if (std::holds_alternative<OpQueueUpdate>(r.op) && update_seq == 0) update_seq = r.seq;
  ASSERT_NE(update_seq, 0u);
  sink.set_durable(update_seq - 1);
  b().on_durable();
  EXPECT_TRUE(publishes(sub).empty()) << "PUBLISH before its packet id was stored";

  commit();
  auto got = publishes(sub);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_EQ(got[0].qos, 2);
  EXPECT_EQ(got[1].payload, "two");
  EXPECT_EQ(got[2].payload, "three");
  b().on_durable();
  EXPECT_TRUE(publishes(sub).empty()) << "held PUBLISH sent twice";

  publish(pub, "p", "four", 1, 3);  // nothing held any more: straight out
  EXPECT_EQ(publishes(sub).size(), 1u);
}

// A local acknowledgement is released on the publisher's shard in place (no posted task, no
// thread-bound state): at once with nothing to store, once its ops are durable otherwise.
TEST_F(ShardBrokerTest, AckAfterCommitIsReleasedInPlaceOnceDurable) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 1);
  FakeLink& pub = connect_ok("pub");
  sink.commit_all();

  publish(pub, "nobody", "x", 1, 3);  // nothing to store
  auto acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 3);

  publish(pub, "p", "y", 1, 4);  // stored for the persistent subscriber
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBACK before the store committed";
  EXPECT_EQ(services.run_posted(b()), 0u) << "a cross-thread task for a local acknowledgement";
  EXPECT_TRUE(pub.take_packets().empty());
  commit();
  acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 4);
}

// A degraded store cannot promise durability: 5.0 PUBACK 0x97 (Quota exceeded), 3.1.1 no
// acknowledgement (the client resends); the message is not delivered.
TEST_F(ShardBrokerTest, DegradedStoreRefusesQos1) {
  for (Version v : {Version::v311, Version::v5}) {
    SCOPED_TRACE(v == Version::v5 ? "5.0" : "3.1.1");
    start(/*with_store=*/true);
    FakeLink& sub = connect_ok("sub");
    subscribe(sub, "p", 1);
    ConnectOptions o;
    o.version = v;
    FakeLink& pub = connect_ok("pub", o);
    sink.set_degraded(true);
    const uint64_t refused_before = sink.refused();
    publish(pub, "p", "x", 1, 4);
    auto acks = all_of<mqtt::PubAck>(pub.take_packets());
    if (v == Version::v5) {
      ASSERT_EQ(acks.size(), 1u);
      EXPECT_EQ(acks[0].reason, ReasonCode::QuotaExceeded);
      EXPECT_EQ(acks[0].packet_id, 4);
    } else {
      EXPECT_TRUE(acks.empty());
    }
    EXPECT_TRUE(publishes(sub).empty()) << "refused message delivered";
    EXPECT_EQ(sink.refused(), refused_before + 1);
    EXPECT_EQ(ctx->total(&ShardStats::refused_store), 1u);
    sink.set_degraded(false);
    // Recovered: accepted again.
    publish(pub, "p", "y", 1, 5);
    EXPECT_EQ(all_of<mqtt::PubAck>(pub.take_packets()).size(), 1u);
    EXPECT_EQ(publishes(sub).size(), 1u);
    broker.reset();
  }
}


// ================================================================ more flows

// 5.0 §3.1.4 ([MQTT-3.1.4-3] and the paragraph after it): on takeover the old connection's
// will is published (no delay), and the resumed session resends what was in flight with DUP=1.
TEST_F(ShardBrokerTest, TakeoverPublishesOldWillAndResendsInflight5) {
  FakeLink& watcher = connect_ok("watcher");
  subscribe(watcher, "will/#", 0);
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 600;
  o.will = make_will("will/dup", "taken");
  FakeLink& old = connect_ok("dup", o);
  subscribe(old, "q", 1);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", "m", 1, 1);
  auto first = publishes(old);
  ASSERT_EQ(first.size(), 1u);

  o.will.reset();
  FakeLink& now = connect_ok("dup", o, true);
  EXPECT_EQ(payloads(publishes(watcher)), std::vector<std::string>{"taken"});
  auto resent = publishes(now);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_TRUE(resent[0].dup);
  EXPECT_EQ(resent[0].packet_id, first[0].packet_id);
  drop(old);
  EXPECT_TRUE(publishes(watcher).empty()) << "will published twice";
}


// 5.0 [MQTT-3.3.4-9]: more unacknowledged QoS 2 PUBLISH than the server's Receive Maximum
// (mqtt.max_awaiting_rel, told in CONNACK) → DISCONNECT 0x93.
TEST_F(ShardBrokerTest, InboundReceiveMaximumExceededDisconnects5) {
  settings.max_awaiting_rel = 2;
  FakeLink& pub = open(Version::v5);
  mqtt::Connect c;
  c.version = Version::v5;
  c.client_id = "pub";
  c.keep_alive = 0;
  b().on_connect(&pub, c);
  auto connack = std::get<mqtt::Connack>(pub.take_packets().at(0));
  EXPECT_EQ(connack.props.receive_maximum, std::optional<uint16_t>(2));

  publish(pub, "t", "1", 2, 1);
  publish(pub, "t", "2", 2, 2);
  send(pub, make_ack(PacketType::Pubrel, 1));  // frees one
  publish(pub, "t", "3", 2, 3);
  EXPECT_FALSE(pub.closed());
  pub.take_packets();
  publish(pub, "t", "4", 2, 4);
  EXPECT_TRUE(pub.closed());
  auto out = pub.take_packets();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Disconnect>(out[0]).reason, ReasonCode::ReceiveMaximumExceeded);
}

// 5.0 [MQTT-4.3.3-4] / §3.5.2.1: a PUBREC with a failure reason ends the flow: no PUBREL, the
// slot is free for the next message.
TEST_F(ShardBrokerTest, PubrecWithErrorEndsFlow5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.receive_maximum = 1;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 2);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", "a", 2, 1);
  publish(pub, "q", "b", 2, 2);
  auto first = publishes(sub);
  ASSERT_EQ(first.size(), 1u);
  send(sub, make_ack(PacketType::Pubrec, first[0].packet_id, ReasonCode::UnspecifiedError));
  auto next = sub.take_packets();
  ASSERT_EQ(next.size(), 1u) << "expected only the next PUBLISH, no PUBREL";
  EXPECT_EQ(std::get<mqtt::Publish>(next[0]).payload, "b");
}

// 5.0 §3.1.2.11.2: a session ends Session Expiry Interval seconds after the connection
// closed; a later Clean Start 0 finds no session. With a store, the session row is deleted.
TEST_F(ShardBrokerTest, SessionExpiresAfterInterval5) {
  start(/*with_store=*/true);
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 10;
  FakeLink& c = connect_ok("exp", o, false);
  drop(c);
  services.advance(9'000);
  EXPECT_EQ(b().session_count(), 1u);
  EXPECT_EQ(sink.count<OpSessionDelete>(), 0u);
  services.advance(2'000);
  EXPECT_EQ(b().session_count(), 0u);
  auto deletes = sink.ops_of<OpSessionDelete>();
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].client_id, "exp");
  connect_ok("exp", o, false);
}

// 5.0 [MQTT-3.1.3-9]: a will with a Will Delay Interval is not published if the client
// reconnects within the delay; otherwise it goes when the delay elapses.
TEST_F(ShardBrokerTest, WillDelayIntervalCancelledByReconnect5) {
  FakeLink& watcher = connect_ok("watcher");
  subscribe(watcher, "will/#", 0);
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 100;
  o.will = make_will("will/c", "late");
  o.will->props.will_delay_interval = 5;

  FakeLink& c = connect_ok("c", o);
  drop(c);
  services.advance(4'000);
  EXPECT_TRUE(publishes(watcher).empty());
  FakeLink& c2 = connect_ok("c", o, true);
  services.advance(10'000);
  EXPECT_TRUE(publishes(watcher).empty()) << "will sent despite reconnect within the delay";

  drop(c2);
  services.advance(4'999);
  EXPECT_TRUE(publishes(watcher).empty());
  services.advance(2);
  EXPECT_EQ(payloads(publishes(watcher)), std::vector<std::string>{"late"});
}

// 5.0 [MQTT-3.3.2-5] / [MQTT-3.3.2-6]: a queued message past its expiry is not delivered;
// one still alive carries the remaining Message Expiry Interval.
TEST_F(ShardBrokerTest, QueuedMessageExpiryDropsAndForwardsRemaining5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 3600;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  drop(sub);
  FakeLink& pub = connect_ok("pub", ConnectOptions{Version::v5});
  auto shortlived = make_publish("q", "short", 1, 1);
  shortlived.props.message_expiry_interval = 2;
  send(pub, shortlived);
  auto longer = make_publish("q", "long", 1, 2);
  longer.props.message_expiry_interval = 10;
  send(pub, longer);
  services.advance(4'000);
  FakeLink& back = connect_ok("sub", o, true);
  auto got = publishes(back);
  ASSERT_EQ(payloads(got), std::vector<std::string>{"long"});
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<uint32_t>(6));
}

// [MQTT-3.10.4-4] / [MQTT-3.10.4-5]: UNSUBACK; no more messages for the removed filter.
TEST_F(ShardBrokerTest, UnsubscribeStopsDelivery) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "u/#", 0);
  mqtt::Unsubscribe u;
  u.packet_id = 9;
  u.filters = {"u/#"};
  send(sub, u);
  auto acks = all_of<mqtt::Unsuback>(sub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 9);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "u/x", "m", 0);
  EXPECT_TRUE(sub.take_packets().empty());
}

// A socket whose CONNECT is not complete within mqtt.connect_timeout (default 5 s) is
// closed by the sweep.
TEST_F(ShardBrokerTest, SweepClosesLinkWithoutConnect) {
  FakeLink& idle = open(Version::v311);
  services.advance(4'900);
  b().sweep();
  EXPECT_FALSE(idle.closed());
  services.advance(200);
  b().sweep();
  EXPECT_TRUE(idle.closed());
  EXPECT_TRUE(idle.raw().empty());
}

TEST_F(ShardBrokerTest, SweepHonoursConnectTimeout) {
  settings.connect_timeout = std::chrono::milliseconds(1'000);
  FakeLink& idle = open(Version::v311);
  services.advance(900);
  b().sweep();
  EXPECT_FALSE(idle.closed());
  services.advance(200);
  b().sweep();
  EXPECT_TRUE(idle.closed());
}

// Clean start over a stored session deletes it from the store; a retained QoS 1 message for
// a persistent subscriber is one message referenced twice (retained row and queue entry).
TEST_F(ShardBrokerTest, StoreOpsForCleanStartAndRetainedDelivery) {
  start(/*with_store=*/true);
  ConnectOptions o;
  o.clean_start = false;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "r", 1);
  FakeLink& pub = connect_ok("pub");
  sink.clear();
  publish(pub, "r", "kept", 1, 1, /*retain=*/true);
  ASSERT_EQ(sink.count<OpRetainedSet>(), 1u);
  ASSERT_EQ(sink.count<OpQueueAdd>(), 1u);
  EXPECT_EQ(sink.ops_of<OpRetainedSet>()[0].message.get(), sink.ops_of<OpQueueAdd>()[0].message.get());

  disconnect(sub);
  sink.clear();
  connect_ok("sub", ConnectOptions{}, false);
  auto deletes = sink.ops_of<OpSessionDelete>();
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].client_id, "sub");
}

// [MQTT-3.1.2-25] (5.0): a PUBLISH larger than the client's Maximum Packet Size is discarded
// and the server behaves as if it had been delivered. That holds for a message resent on
// reconnect too, when the client now announces a smaller maximum: it must not stay in flight
// and block the window forever.
TEST_F(ShardBrokerTest, TooLargeInflightMessageOnReconnectIsDiscarded5) {
  ConnectOptions o;
  o.version = Version::v5;
  o.clean_start = false;
  o.session_expiry = 3600;
  o.receive_maximum = 1;
  FakeLink& sub = connect_ok("sub", o);
  subscribe(sub, "q", 1);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "q", std::string(1000, 'x'), 1, 1);
  ASSERT_EQ(publishes(sub).size(), 1u);
  drop(sub);
  publish(pub, "q", "small", 1, 2);

  o.maximum_packet_size = 200;
  FakeLink& back = connect_ok("sub", o, true);
  auto got = publishes(back);
  ASSERT_EQ(payloads(got), std::vector<std::string>{"small"});
  EXPECT_FALSE(got[0].dup);
}

// Ack after commit: a resent QoS 2 PUBLISH [MQTT-4.3.3-9] that arrives while the original is
// still waiting for the store must not be acknowledged before the message is durable, or a
// crash loses a message the client was told the server owns.
TEST_F(ShardBrokerTest, AckAfterCommitDuplicateQos2NotAckedBeforeDurable) {
  start_ack_after_commit();
  FakeLink& sub = connect_persistent("sub");
  subscribe(sub, "p", 2);
  FakeLink& pub = connect_ok("pub");
  sink.commit_all();
  publish(pub, "p", "m", 2, 7);
  services.run_posted(b());
  ASSERT_TRUE(pub.take_packets().empty());
  auto dup = make_publish("p", "m", 2, 7);
  dup.dup = true;
  send(pub, dup);
  EXPECT_TRUE(pub.take_packets().empty()) << "PUBREC for a message not yet durable";
  commit();
  EXPECT_EQ(publishes(sub).size(), 1u) << "the resent PUBLISH was delivered again";
  auto rec = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_GE(rec.size(), 1u);
  EXPECT_EQ(rec[0].type, PacketType::Pubrec);
}

}  // namespace
}  // namespace harbor::broker

// ================================================================ backpressure limits
// STYLE rule 11: every bound has a test. The thresholds are the ones documented in
// docs/architecture.md ("Flow control", "Overflow policies").

namespace harbor::broker {

// A publisher whose message meets an online receiver with more than 512 KiB waiting in its
// output buffer is paused: on_packet answers Flow::Pause (nothing is dropped).
TEST_F(ShardBrokerTest, CongestedReceiverOutputPausesThePublisher) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "t", 0);
  FakeLink& pub = connect_ok("pub");
  EXPECT_EQ(publish(pub, "t", "a", 0, 0), Flow::Continue);
  sub.set_pending_bytes(600 * 1024);
  sub.last_write_ms = services.now_steady_ms();
  EXPECT_EQ(publish(pub, "t", "b", 0, 0), Flow::Pause);
  EXPECT_EQ(payloads(publishes(sub)), (std::vector<std::string>{"a", "b"}));
}

// QoS 0 beyond 4 MiB waiting is dropped (and counted) only for a receiver that made no write
// progress for kStuckWriteMs; one that still drains keeps getting it (its publishers are
// paused instead), up to the 16 MiB hard bound.
TEST_F(ShardBrokerTest, Qos0DroppedOnlyForAStuckReceiver) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "t", 0);
  FakeLink& pub = connect_ok("pub");
  sub.set_pending_bytes(4u * 1024 * 1024 + 1);
  sub.last_write_ms = services.now_steady_ms();
  EXPECT_EQ(publish(pub, "t", "draining", 0, 0), Flow::Pause);
  EXPECT_EQ(payloads(publishes(sub)), std::vector<std::string>{"draining"});
  EXPECT_EQ(ctx->total(&ShardStats::dropped_qos0_slow), 0u);
  services.advance(kStuckWriteMs - 1);
  EXPECT_EQ(publish(pub, "t", "still draining", 0, 0), Flow::Pause);
  services.advance(1);
  EXPECT_EQ(publish(pub, "t", "stuck", 0, 0), Flow::Continue) << "a stuck receiver holds no one back";
  EXPECT_TRUE(publishes(sub).size() == 1u);  // "still draining" only
  EXPECT_EQ(ctx->total(&ShardStats::dropped_qos0_slow), 1u);
  sub.last_write_ms = services.now_steady_ms();  // it wrote again
  sub.set_pending_bytes(16u * 1024 * 1024);
  publish(pub, "t", "hard bound", 0, 0);
  EXPECT_TRUE(publishes(sub).empty());
  EXPECT_EQ(ctx->total(&ShardStats::dropped_qos0_slow), 2u);
}

// An online QoS 1 receiver whose window is full pauses its publisher once its queue reaches
// 1024 (queue unbounded), and counts as congested while it still acknowledges.
TEST_F(ShardBrokerTest, LongQueueBehindFullWindowPausesPublisher) {
  settings.max_inflight_window = 1;
  settings.max_mqueue_len = 0;
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "t", 1);
  FakeLink& pub = connect_ok("pub");
  uint16_t pid = 1;
  publish(pub, "t", "first", 1, pid++);
  auto sent = publishes(sub);
  ASSERT_EQ(sent.size(), 1u);
  for (int i = 0; i < 1023; ++i) {
    ASSERT_EQ(publish(pub, "t", "q", 1, pid), Flow::Continue) << i;
    pid = static_cast<uint16_t>(pid + 1);
  }
  EXPECT_EQ(publish(pub, "t", "1024th queued", 1, pid++), Flow::Pause);
  EXPECT_TRUE(broker->receivers_congested()) << "just connected: not stuck yet";
  services.advance(kStuckWriteMs * 4);
  EXPECT_FALSE(broker->receivers_congested()) << "no acknowledgement for a while: stuck, not draining";
  send(sub, make_ack(PacketType::Puback, sent[0].packet_id));
  EXPECT_TRUE(broker->receivers_congested()) << "acknowledging with a long queue: draining";
}

// The default queue limit (2048) applied to a live receiver: what its publishers sent before
// they were paused is queued, not dropped; an offline session loses what is beyond it.
TEST_F(ShardBrokerTest, LiveReceiverQueueIsNotCutAtTheLimit) {
  settings.max_inflight_window = 1;
  settings.max_mqueue_len = 10;
  FakeLink& sub = connect_ok("sub", ConnectOptions{.clean_start = false});
  subscribe(sub, "t", 1);
  FakeLink& pub = connect_ok("pub");
  uint16_t pid = 1;
  int paused = 0;
  for (int i = 0; i < 30; ++i)
    if (publish(pub, "t", "m" + std::to_string(i), 1, pid++) == Flow::Pause) ++paused;
  EXPECT_EQ(paused, 30 - 5) << "from half the limit on, every message pauses the publisher";
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 0u);
  // It drains: all 30 arrive, in order.
  std::vector<std::string> got;
  for (int i = 0; i < 40 && got.size() < 30; ++i) {
    for (auto& p : publishes(sub)) {
      got.push_back(p.payload);
      send(sub, make_ack(PacketType::Puback, p.packet_id));
    }
  }
  ASSERT_EQ(got.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));
  // Offline: the limit cuts.
  disconnect(sub);
  for (int i = 0; i < 15; ++i) publish(pub, "t", "off", 1, pid++);
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 5u);
}

// The live receiver's allowance is bounded too: beyond max_mqueue_len + max(limit, 8192)
// queued entries the drop policy applies even to a receiver that still drains.
TEST_F(ShardBrokerTest, LiveReceiverQueueHasAHardBound) {
  settings.max_inflight_window = 1;
  settings.max_mqueue_len = 10;
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "t", 1);
  FakeLink& pub = connect_ok("pub");
  const int bound = 10 + 8192;
  for (int i = 0; i < 1 + bound; ++i) publish(pub, "t", "m", 1, static_cast<uint16_t>(i % 65535 + 1));
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 0u) << "1 in flight + the bound queued";
  publish(pub, "t", "over", 1, 9999);
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 1u);
}

// Retained messages on SUBSCRIBE are paced by the window and the queue: 300 retained QoS 1
// messages to a session with window 5 and queue limit 10 all arrive, none is dropped.
TEST_F(ShardBrokerTest, RetainedOnSubscribeArePacedNotDropped) {
  settings.max_inflight_window = 5;
  settings.max_mqueue_len = 10;
  FakeLink& pub = connect_ok("pub");
  uint16_t pid = 1;
  for (int i = 0; i < 300; ++i) publish(pub, "r/" + std::to_string(i), "v", 1, pid++, /*retain=*/true);
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "r/#", 1);
  std::set<std::string> topics;
  for (int round = 0; round < 400 && topics.size() < 300; ++round) {
    auto got = publishes(sub);
    if (got.empty()) break;
    EXPECT_LE(got.size(), 5u) << "never more than the window in flight";
    for (auto& p : got) {
      EXPECT_TRUE(p.retain);
      topics.insert(p.topic);
      send(sub, make_ack(PacketType::Puback, p.packet_id));
    }
  }
  EXPECT_EQ(topics.size(), 300u);
  EXPECT_EQ(ctx->total(&ShardStats::dropped_queue_full), 0u);
}

// QoS 0 retained messages wait for the output to drain below the low-water mark.
TEST_F(ShardBrokerTest, RetainedQos0WaitForTheOutputToDrain) {
  FakeLink& pub = connect_ok("pub");
  for (int i = 0; i < 3; ++i) publish(pub, "r/" + std::to_string(i), "v", 0, 0, /*retain=*/true);
  FakeLink& sub = connect_ok("sub");
  sub.set_pending_bytes(kOutputLowWater + 1);
  subscribe(sub, "r/#", 0);
  EXPECT_TRUE(publishes(sub).empty());
  EXPECT_TRUE(sub.wants_writable);
  sub.set_pending_bytes(0);
  broker->on_link_writable(&sub);
  EXPECT_EQ(publishes(sub).size(), 3u);
  EXPECT_FALSE(sub.wants_writable);
}

// MQTT 3.1.1: max_awaiting_rel limits QoS 2 state only; QoS 1 beyond it is acknowledged, and
// QoS 2 beyond it is accepted too (3.1.1 cannot refuse), counted. Nothing goes unanswered.
TEST_F(ShardBrokerTest, V311PublishesBeyondMaxAwaitingRelAreAnswered) {
  settings.max_awaiting_rel = 3;
  FakeLink& pub = connect_ok("pub");
  for (uint16_t id = 1; id <= 5; ++id) publish(pub, "t", "q2", 2, id);
  for (uint16_t id = 100; id <= 105; ++id) publish(pub, "t", "q1", 1, id);
  int pubrec = 0, puback = 0;
  for (auto& p : pub.take_packets()) {
    if (auto* a = std::get_if<mqtt::PubAck>(&p)) {
      if (a->type == PacketType::Pubrec) ++pubrec;
      if (a->type == PacketType::Puback) ++puback;
    }
  }
  EXPECT_EQ(pubrec, 5);
  EXPECT_EQ(puback, 6);
  EXPECT_FALSE(pub.closed());
  EXPECT_EQ(ctx->total(&ShardStats::awaiting_rel_over_limit), 2u);
}

// A PUBREC for a packet id we sent at QoS 1 is a protocol error: the connection closes.
TEST_F(ShardBrokerTest, PubrecForQos1PacketIdClosesTheConnection) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "t", 1);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "t", "x", 1, 1);
  auto sent = publishes(sub);
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].qos, 1);
  send(sub, make_ack(PacketType::Pubrec, sent[0].packet_id));
  EXPECT_TRUE(sub.closed());
  for (auto& p : sub.take_packets()) EXPECT_FALSE(std::holds_alternative<mqtt::PubAck>(p)) << "no PUBREL";
}

// mqtt.max_topic_levels: a PUBLISH deeper than it closes the connection, a filter deeper
// than it is refused in the SUBACK, a will topic deeper than it refuses the CONNECT.
TEST_F(ShardBrokerTest, MaxTopicLevelsIsEnforced) {
  settings.max_topic_levels = 3;
  FakeLink& sub = connect_ok("sub");
  mqtt::Subscribe deep;
  deep.packet_id = 7;
  deep.topics.push_back(mqtt::SubscribeTopic{.filter = "a/b/c/d", .qos = 0});
  deep.topics.push_back(mqtt::SubscribeTopic{.filter = "a/b/c", .qos = 0});
  send(sub, deep);
  auto acks = all_of<mqtt::Suback>(sub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].reasons.size(), 2u);
  EXPECT_EQ(acks[0].reasons[0], ReasonCode::UnspecifiedError);  // 0x80 in 3.1.1
  EXPECT_EQ(acks[0].reasons[1], ReasonCode::Success);
  FakeLink& pub = connect_ok("pub");
  publish(pub, "a/b/c", "ok", 0);
  EXPECT_EQ(payloads(publishes(sub)), std::vector<std::string>{"ok"});
  EXPECT_FALSE(pub.closed());
  publish(pub, "a/b/c/d", "too deep", 0);
  EXPECT_TRUE(pub.closed());
  mqtt::Will w;
  w.topic = "w/x/y/z";
  FakeLink& willer = connect("willer", ConnectOptions{.will = w});
  auto packets = willer.take_packets();
  ASSERT_FALSE(packets.empty());
  const auto* ack = std::get_if<mqtt::Connack>(&packets.front());
  ASSERT_NE(ack, nullptr);
  EXPECT_NE(ack->reason, ReasonCode::Success);
  EXPECT_TRUE(willer.closed());
}

// Decided in issue 10: client PUBLISH to $SYS/... is not routed and not retained; 5.0
// refuses QoS 1/2 with 0x87, 3.1.1 completes the flow and discards the message.
TEST_F(ShardBrokerTest, PublishToSysIsRefused) {
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "$SYS/#", 0);
  FakeLink& v5 = connect_ok("v5", ConnectOptions{.version = Version::v5});
  publish(v5, "$SYS/broker/uptime", "forged", 1, 1, /*retain=*/true);
  auto acks = all_of<mqtt::PubAck>(v5.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].type, PacketType::Puback);
  EXPECT_EQ(acks[0].reason, ReasonCode::NotAuthorized);
  FakeLink& v3 = connect_ok("v3");
  publish(v3, "$SYS/x", "forged", 2, 5);
  auto recs = all_of<mqtt::PubAck>(v3.take_packets());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].type, PacketType::Pubrec);
  send(v3, make_ack(PacketType::Pubrel, 5));
  auto comps = all_of<mqtt::PubAck>(v3.take_packets());
  ASSERT_EQ(comps.size(), 1u);
  EXPECT_EQ(comps[0].type, PacketType::Pubcomp);
  EXPECT_EQ(comps[0].reason, ReasonCode::Success);
  EXPECT_TRUE(publishes(sub).empty());
  FakeLink& late = connect_ok("late");
  subscribe(late, "$SYS/#", 0);
  EXPECT_TRUE(publishes(late).empty()) << "not retained";
  EXPECT_EQ(ctx->total(&ShardStats::refused_sys_publish), 2u);
}

// MQTT 5: a QoS 1 PUBLISH that matched no subscription is acknowledged with 0x10 (success).
TEST_F(ShardBrokerTest, V5PubackSaysNoMatchingSubscribers) {
  FakeLink& pub = connect_ok("pub", ConnectOptions{.version = Version::v5});
  publish(pub, "nobody/here", "m", 1, 1);
  auto acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::NoMatchingSubscribers);
  FakeLink& sub = connect_ok("sub");
  subscribe(sub, "somebody/#", 0);
  publish(pub, "somebody/here", "m", 1, 2);
  acks = all_of<mqtt::PubAck>(pub.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::Success);
  FakeLink& v3 = connect_ok("v3");
  publish(v3, "nobody/here", "m", 1, 3);
  acks = all_of<mqtt::PubAck>(v3.take_packets());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::Success) << "3.1.1 has no reason codes";
}

}  // namespace harbor::broker

// ================================================================ MQTT 5 flow: keep alive
// and the client's Maximum Packet Size for every packet the broker sends (issue 11 part 4).

namespace harbor::broker {
namespace {

// The packets written to `l` so far, decoded by a client whose Maximum Packet Size is `max`:
// a larger packet is a test failure [MQTT-3.1.2-24]. Consumes the output.
std::vector<mqtt::Packet> take_within(FakeLink& l, uint32_t max) {
  mqtt::Decoder decoder(max);
  decoder.set_version(l.version());
  decoder.feed(std::string_view(l.raw()));
  std::vector<mqtt::Packet> packets;
  for (;;) {
    auto next = decoder.next();
    if (!next) {
      ADD_FAILURE() << "packet beyond the client's Maximum Packet Size of " << max << ": "
                    << next.error().message;
      break;
    }
    if (!next->has_value()) break;
    packets.push_back(std::move(**next));
  }
  l.take_packets();
  return packets;
}

std::optional<uint16_t> server_keep_alive_of(FakeLink& l) {
  auto packets = l.take_packets();
  EXPECT_FALSE(packets.empty());
  if (packets.empty()) return std::nullopt;
  const auto* ack = std::get_if<mqtt::Connack>(&packets.front());
  EXPECT_NE(ack, nullptr) << "first packet is not CONNACK";
  if (ack == nullptr) return std::nullopt;
  EXPECT_EQ(ack->reason, ReasonCode::Success);
  return ack->props.server_keep_alive;
}

}  // namespace

// mqtt.max_keepalive: a 5.0 client asking for more than the maximum, or for 0, is told the
// maximum as Server Keep Alive [MQTT-3.2.2-21]; one within it gets no property and keeps its
// own value [MQTT-3.2.2-22]. Without a maximum (default 0) nobody gets the property.
TEST_F(ShardBrokerTest, ServerKeepAliveFromMaxKeepalive5) {
  settings.max_keepalive = 30;
  start();
  for (uint16_t asked : {uint16_t{0}, uint16_t{31}, uint16_t{65535}}) {
    SCOPED_TRACE(asked);
    FakeLink& l = connect("c" + std::to_string(asked),
                          ConnectOptions{.version = Version::v5, .keep_alive = asked});
    EXPECT_EQ(server_keep_alive_of(l), std::optional<uint16_t>(30));
    EXPECT_EQ(l.keep_alive_s, 30u);
  }
  for (uint16_t asked : {uint16_t{1}, uint16_t{30}}) {
    SCOPED_TRACE(asked);
    FakeLink& l = connect("d" + std::to_string(asked),
                          ConnectOptions{.version = Version::v5, .keep_alive = asked});
    EXPECT_EQ(server_keep_alive_of(l), std::nullopt);
    EXPECT_EQ(l.keep_alive_s, asked);
  }
  settings.max_keepalive = 0;
  start();
  for (uint16_t asked : {uint16_t{0}, uint16_t{65535}}) {
    SCOPED_TRACE(asked);
    FakeLink& l = connect("e" + std::to_string(asked),
                          ConnectOptions{.version = Version::v5, .keep_alive = asked});
    EXPECT_EQ(server_keep_alive_of(l), std::nullopt);
    EXPECT_EQ(l.keep_alive_s, asked);
  }
}

// The sweep times a 5.0 client out by the Server Keep Alive it was told, not by the value it
// asked for: max 10 s x multiplier 1.25 = 12.5 s, for a client that asked 600 s or none.
TEST_F(ShardBrokerTest, SweepUsesServerKeepAlive5) {
  for (uint16_t asked : {uint16_t{600}, uint16_t{0}}) {
    SCOPED_TRACE(asked);
    settings.max_keepalive = 10;
    start();
    FakeLink& c = connect_ok("c", ConnectOptions{.version = Version::v5, .keep_alive = asked});
    services.advance(12'000);
    b().sweep();
    EXPECT_FALSE(c.closed()) << "12 s without a packet: within 12.5 s";
    services.advance(1000);
    b().sweep();
    ASSERT_TRUE(c.closed());
    auto out = c.take_packets();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::get<mqtt::Disconnect>(out[0]).reason, ReasonCode::KeepAliveTimeout);
    EXPECT_NE(c.close_reason().find("keepalive 10 s"), std::string::npos) << c.close_reason();
  }
}

// 3.1/3.1.1 have no Server Keep Alive: the client cannot be told, and timing it out sooner
// than it pings would disconnect a healthy client. Its own value stays in force, 0 included.
TEST_F(ShardBrokerTest, MaxKeepaliveLeavesV311ClientsTheirOwnValue) {
  settings.max_keepalive = 10;
  for (Version v : {Version::v311, Version::v31}) {
    SCOPED_TRACE(v == Version::v31 ? "3.1" : "3.1.1");
    start();
    FakeLink& slow = connect_ok("slow", ConnectOptions{.version = v, .keep_alive = 600});
    FakeLink& none = connect_ok("none", ConnectOptions{.version = v, .keep_alive = 0});
    EXPECT_EQ(slow.keep_alive_s, 600u);
    EXPECT_EQ(none.keep_alive_s, 0u);
    services.advance(700'000);  // far beyond 12.5 s, within 600 x 1.25 = 750 s
    b().sweep();
    EXPECT_FALSE(slow.closed());
    services.advance(51'000);
    b().sweep();
    EXPECT_TRUE(slow.closed());
    EXPECT_FALSE(none.closed()) << "keep alive 0: never timed out";
  }
}

// A reload changes mqtt.max_keepalive for connections made after it; a connection keeps the
// value it was told in its CONNACK.
TEST_F(ShardBrokerTest, ReloadedMaxKeepaliveAppliesToNewConnections5) {
  settings.max_keepalive = 10;
  start();
  FakeLink& before = connect("before", ConnectOptions{.version = Version::v5, .keep_alive = 60});
  EXPECT_EQ(server_keep_alive_of(before), std::optional<uint16_t>(10));
  auto reloaded = std::make_shared<Settings>(settings);
  reloaded->max_keepalive = 20;
  b().set_settings(reloaded);
  FakeLink& after = connect("after", ConnectOptions{.version = Version::v5, .keep_alive = 60});
  EXPECT_EQ(server_keep_alive_of(after), std::optional<uint16_t>(20));
  services.advance(13'000);
  b().sweep();
  EXPECT_TRUE(before.closed());
  EXPECT_FALSE(after.closed());
}

// [MQTT-3.1.2-24] A SUBACK carries one reason code per filter [MQTT-3.8.4-6]: one that would
// exceed the client's Maximum Packet Size cannot be trimmed, so the connection is closed with
// DISCONNECT 0x95 and nothing is subscribed. Max 20: the CONNACK fits once the "available"
// flags are dropped; a SUBACK is 5 bytes + one per filter, so 15 filters fit and 16 do not.
TEST_F(ShardBrokerTest, SubackBeyondMaximumPacketSizeCloses5) {
  ConnectOptions o{.version = Version::v5, .maximum_packet_size = 20};
  FakeLink& c = connect_ok("c", o);
  auto request = [](uint16_t packet_id, int filters, const std::string& prefix) {
    mqtt::Subscribe s;
    s.packet_id = packet_id;
    for (int i = 0; i < filters; ++i) {
      mqtt::SubscribeTopic t;
      t.filter = prefix + std::to_string(i);
      s.topics.push_back(t);
    }
    return s;
  };
  send(c, request(1, 15, "a"));
  auto got = take_within(c, 20);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Suback>(got[0]).reasons.size(), 15u);
  EXPECT_FALSE(c.closed());

  send(c, request(2, 16, "b"));
  got = take_within(c, 20);
  ASSERT_EQ(got.size(), 1u) << "a SUBACK beyond 20 bytes, or nothing";
  EXPECT_EQ(std::get<mqtt::Disconnect>(got[0]).reason, ReasonCode::PacketTooLarge);
  EXPECT_TRUE(c.closed());
  EXPECT_NE(c.close_reason().find("SUBACK for 16 filters (21 bytes)"), std::string::npos)
      << c.close_reason();
  EXPECT_EQ(tree->size(), 15u) << "the refused SUBSCRIBE subscribed something";
}

// The same for UNSUBACK [MQTT-3.11.3-1]: beyond the maximum, DISCONNECT 0x95 and nothing is
// unsubscribed.
TEST_F(ShardBrokerTest, UnsubackBeyondMaximumPacketSizeCloses5) {
  FakeLink& c = connect_ok("c", ConnectOptions{.version = Version::v5, .maximum_packet_size = 20});
  subscribe(c, "x", 0);
  mqtt::Unsubscribe u;
  u.packet_id = 3;
  u.filters.push_back("x");
  for (int i = 0; i < 15; ++i) u.filters.push_back("none" + std::to_string(i));
  send(c, u);
  auto got = take_within(c, 20);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Disconnect>(got[0]).reason, ReasonCode::PacketTooLarge);
  EXPECT_EQ(tree->size(), 1u) << "the refused UNSUBSCRIBE unsubscribed x";

  FakeLink& d = connect_ok("d", ConnectOptions{.version = Version::v5, .maximum_packet_size = 20});
  u.filters.resize(15);
  send(d, u);
  got = take_within(d, 20);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Unsuback>(got[0]).reasons.size(), 15u);
  EXPECT_FALSE(d.closed());
}

// Every other packet the broker sends a 5.0 client is a few bytes with no Reason String or
// User Properties (PUBACK, PUBREC, PUBREL, PUBCOMP: at most 5; DISCONNECT 3; PINGRESP 2), so
// it fits any client whose CONNACK fitted. Checked here at the smallest Maximum Packet Size
// the broker accepts a connection with.
TEST_F(ShardBrokerTest, EveryPacketWithinTheSmallestAcceptedMaximum5) {
  uint32_t smallest = 0;
  for (uint32_t max = 1; max < 64 && smallest == 0; ++max) {
    FakeLink& probe = connect("probe", ConnectOptions{.version = Version::v5, .maximum_packet_size = max});
    if (!probe.raw().empty()) smallest = max;
    drop(probe);
  }
  ASSERT_NE(smallest, 0u);
  EXPECT_LE(smallest, 13u) << "CONNACK: flags, reason, Receive Maximum, Maximum Packet Size";

  ConnectOptions o{.version = Version::v5, .maximum_packet_size = smallest};
  FakeLink& c = connect_ok("c", o);
  subscribe(c, "t", 2);
  FakeLink& pub = connect_ok("pub");
  publish(c, "nobody", "", 1, 1);                  // PUBACK 0x10
  publish(c, "nobody", "", 2, 2);                  // PUBREC 0x10
  send(c, make_ack(PacketType::Pubrel, 2));        // PUBCOMP
  send(c, make_ack(PacketType::Pubrel, 9));        // PUBCOMP 0x92 (unknown packet id)
  publish(pub, "t", "", 2, 1);                     // PUBLISH to c, 8 bytes
  send(c, mqtt::Pingreq{});                        // PINGRESP
  auto got = take_within(c, smallest);
  std::vector<std::pair<PacketType, ReasonCode>> acks;
  for (const auto& a : all_of<mqtt::PubAck>(got)) acks.emplace_back(a.type, a.reason);
  EXPECT_EQ(acks, (std::vector<std::pair<PacketType, ReasonCode>>{
                      {PacketType::Puback, ReasonCode::NoMatchingSubscribers},
                      {PacketType::Pubrec, ReasonCode::NoMatchingSubscribers},
                      {PacketType::Pubcomp, ReasonCode::Success},
                      {PacketType::Pubcomp, ReasonCode::PacketIdentifierNotFound}}));
  EXPECT_EQ(all_of<mqtt::Pingresp>(got).size(), 1u);
  auto delivered = all_of<mqtt::Publish>(got);
  ASSERT_EQ(delivered.size(), 1u);
  send(c, make_ack(PacketType::Pubrec, delivered[0].packet_id));  // PUBREL
  mqtt::Unsubscribe u;
  u.packet_id = 4;
  u.filters = {"t"};
  send(c, u);                                      // UNSUBACK
  send(c, mqtt::Auth{});                           // protocol error: DISCONNECT 0x82
  got = take_within(c, smallest);
  std::vector<PacketType> types;
  for (const auto& p : got) {
    if (const auto* a = std::get_if<mqtt::PubAck>(&p)) types.push_back(a->type);
  }
  EXPECT_EQ(types, std::vector<PacketType>{PacketType::Pubrel});
  EXPECT_EQ(all_of<mqtt::Unsuback>(got).size(), 1u);
  auto disconnects = all_of<mqtt::Disconnect>(got);
  ASSERT_EQ(disconnects.size(), 1u);
  EXPECT_EQ(disconnects[0].reason, ReasonCode::ProtocolError);
}

// ================================================================ queues on disk (paging)
// Store on: a persistent session keeps Settings::queue_head entries in memory; the rest is
// written to the store only and paged back in (FakeSink::read_queue replays what is
// committed, so a page never shows an op that is not durable yet).

class QueuePagingTest : public ShardBrokerTest {
 protected:
  // A persistent 5.0 subscriber to "p" at `qos` with Receive Maximum `window`, offline.
  void offline_subscriber(const std::string& id, mqtt::QoS qos = 1) {
    FakeLink& s = connect_ok(id, persistent5());
    subscribe(s, "p", qos);
    disconnect(s);
  }
  ConnectOptions persistent5(uint16_t window = 2) {
    ConnectOptions o;
    o.version = Version::v5;
    o.clean_start = false;
    o.session_expiry = 3600;
    o.receive_maximum = window;
    return o;
  }
  void publish_n(FakeLink& pub, int from, int count, mqtt::QoS qos = 1) {
    for (int i = from; i < from + count; ++i)
      publish(pub, "p", "m" + std::to_string(i), qos, static_cast<uint16_t>(i % 60000 + 1));
  }
  // Acknowledges what `l` received until nothing more comes (QoS 1 and 2 flows), committing
  // after each round; returns the payloads in the order they arrived.
  std::vector<std::string> drain(FakeLink& l, int max_rounds = 10'000) {
    std::vector<std::string> got;
    for (int round = 0; round < max_rounds; ++round) {
      auto packets = l.take_packets();
      if (packets.empty()) {
        commit();
        packets = l.take_packets();
        if (packets.empty()) break;
      }
      for (const auto& p : packets) {
        if (const auto* pub = std::get_if<mqtt::Publish>(&p)) {
          got.push_back(pub->payload);
          if (pub->qos == 1) send(l, make_ack(PacketType::Puback, pub->packet_id));
          if (pub->qos == 2) send(l, make_ack(PacketType::Pubrec, pub->packet_id));
        } else if (const auto* rel = std::get_if<mqtt::PubAck>(&p); rel && rel->type == PacketType::Pubrel) {
          send(l, make_ack(PacketType::Pubcomp, rel->packet_id));
        }
      }
    }
    return got;
  }
  // The store on with a head of `head`; "sub" offline with `count` messages queued for it,
  // committed.
  void backlog(uint32_t head, int count) {
    settings.queue_head = head;
    start(/*with_store=*/true);
    offline_subscriber("sub");
    publish_n(connect_ok("pub"), 0, count);
    commit();
  }
  static std::vector<std::string> names(int from, int count) {
    std::vector<std::string> out;
    for (int i = from; i < from + count; ++i) out.push_back("m" + std::to_string(i));
    return out;
  }
};

// The head stays in memory, the rest is read back in pages of at most the head, in order,
// each page once it is committed; nothing lost, nothing twice.
TEST_F(QueuePagingTest, HeadInMemoryRestPagedInInOrder) {
  settings.queue_head = 4;
  start(/*with_store=*/true);
  offline_subscriber("sub");
  FakeLink& pub = connect_ok("pub");
  publish_n(pub, 0, 50);
  EXPECT_EQ(sink.count<OpQueueAdd>(), 50u) << "every entry is written, in memory or not";
  EXPECT_EQ(sink.reads(), 0u) << "nothing is read while the session is offline";
  commit();
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  auto got = drain(sub);
  EXPECT_EQ(got, names(0, 50));
  // 46 entries on disk, read 2 to 4 at a time (the head refills at half): a bounded number
  // of reads, not one per message and not the whole backlog at once.
  EXPECT_GE(sink.reads(), 46u / 4);
  EXPECT_LE(sink.reads(), 46u / 2 + 2);
  EXPECT_EQ(sink.count<OpQueueRemove>(), 50u);
}

// A page whose rows are not committed yet is not read as empty: the sender waits for the
// commit (on_durable) and goes on; the publisher's acknowledgements are not needed for it.
TEST_F(QueuePagingTest, PageWaitsForItsCommit) {
  settings.queue_head = 3;
  start(/*with_store=*/true);
  FakeLink& sub = connect_ok("sub", persistent5(/*window=*/1));
  subscribe(sub, "p", 1);
  FakeLink& pub = connect_ok("pub");
  publish_n(pub, 0, 10);  // online, window 1: one in flight, 3 in memory, 6 on disk
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {  // the window and the head, with nothing committed
    auto pubs = publishes(sub);
    ASSERT_EQ(pubs.size(), 1u) << "message " << i;
    got.push_back(pubs[0].payload);
    send(sub, make_ack(PacketType::Puback, pubs[0].packet_id));
  }
  EXPECT_TRUE(publishes(sub).empty()) << "the rest is on disk and not committed";
  commit();
  for (auto& p : drain(sub)) got.push_back(p);
  EXPECT_EQ(got, names(0, 10));
}

// A page read while only part of what was written to disk is committed comes back short:
// the sender waits for the rest instead of taking the queue for ended.
TEST_F(QueuePagingTest, ShortPageBeforeEverythingIsCommittedWaitsForTheRest) {
  settings.queue_head = 2;
  start(/*with_store=*/true);
  FakeLink& sub = connect_ok("sub", persistent5(/*window=*/1));
  subscribe(sub, "p", 1);
  publish_n(connect_ok("pub"), 0, 12);  // m0 in flight, m1-m2 in memory, m3-m11 on disk
  uint64_t m4_committed = 0;
  for (const auto& r : sink.ops())
    if (const auto* add = std::get_if<OpQueueAdd>(&r.op); add && add->message->payload == "m4")
      m4_committed = r.seq;
  ASSERT_NE(m4_committed, 0u);
  sink.set_durable(m4_committed);  // m3 and m4 are on disk, m5-m11 not yet
  b().on_durable();
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {  // m0-m4: memory and the short page
    auto pubs = publishes(sub);
    ASSERT_EQ(pubs.size(), 1u) << "message " << i;
    got.push_back(pubs[0].payload);
    send(sub, make_ack(PacketType::Puback, pubs[0].packet_id));
  }
  EXPECT_TRUE(publishes(sub).empty());
  for (auto& p : drain(sub)) got.push_back(p);  // commits: the rest follows
  EXPECT_EQ(got, names(0, 12));
}

// Entries that expire while on disk are dropped when paged in, their rows removed; the
// others arrive in order.
TEST_F(QueuePagingTest, ExpiredWhilePagedOutIsDroppedAtPageIn) {
  settings.queue_head = 2;
  start(/*with_store=*/true);
  offline_subscriber("sub");
  ConnectOptions v5;
  v5.version = Version::v5;
  FakeLink& pub = connect_ok("pub", v5);
  for (int i = 0; i < 12; ++i) {
    auto p = make_publish("p", "m" + std::to_string(i), 1, static_cast<uint16_t>(i + 1));
    if (i % 3 == 1) p.props.message_expiry_interval = 5;  // m1, m4, m7, m10
    send(pub, std::move(p));
  }
  commit();
  services.advance(6'000);
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  auto got = drain(sub);
  EXPECT_EQ(got, (std::vector<std::string>{"m0", "m2", "m3", "m5", "m6", "m8", "m9", "m11"}));
  EXPECT_EQ(sink.count<OpQueueRemove>(), 12u) << "the expired rows are removed too";
}

// A clean start deletes the old session's rows; a new queue of the same client id that is
// paged before that delete is committed must not read the old rows back.
TEST_F(QueuePagingTest, SessionDeletedWhileItsRowsAreOnDisk) {
  settings.queue_head = 2;
  start(/*with_store=*/true);
  offline_subscriber("sub");
  FakeLink& pub = connect_ok("pub");
  publish_n(pub, 0, 10);
  commit();  // old rows seq 1..10 committed
  ConnectOptions clean = persistent5();
  clean.clean_start = true;
  FakeLink& again = connect_ok("sub", clean, false);
  subscribe(again, "p", 1);
  disconnect(again);  // the delete of the old rows is not committed yet
  publish_n(pub, 100, 6);
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  auto got = drain(sub);
  EXPECT_EQ(got, names(100, 6));
}

// A reconnect in the middle of a drain: what was in flight comes again (DUP), then the
// rest in order, from memory and from disk.
TEST_F(QueuePagingTest, ReconnectInTheMiddleOfAPage) {
  backlog(4, 30);
  FakeLink& first = connect_ok("sub", persistent5(), true);
  std::vector<std::string> got;
  for (int i = 0; i < 9; ++i) {
    auto pubs = publishes(first);
    ASSERT_FALSE(pubs.empty());
    got.push_back(pubs[0].payload);
    // The rest is put back first: what the acknowledgement lets out comes after it.
    for (size_t k = 1; k < pubs.size(); ++k) mqtt::encode(mqtt::Packet{pubs[k]}, first.version(), first.out());
    send(first, make_ack(PacketType::Puback, pubs[0].packet_id));
  }
  drop(first);  // one or two unacknowledged
  FakeLink& second = connect_ok("sub", persistent5(), true);
  for (auto& p : drain(second)) got.push_back(p);
  // Acknowledged ones once; the unacknowledged one(s) again; nothing missing or reordered.
  std::vector<std::string> unique;
  for (auto& p : got)
    if (unique.empty() || unique.back() != p) unique.push_back(p);
  EXPECT_EQ(unique, names(0, 30));
  EXPECT_LE(got.size(), 32u);
}

// Restored with the head in memory and paged_from naming the rest: the rest is read.
TEST_F(QueuePagingTest, RestoredSessionPagesTheRestIn) {
  backlog(2, 8);
  // What a restart with a head of 2 hands over: the session, its subscription, entries 1-2
  // in memory, the rest (seq 3..8) on disk.
  auto adds = sink.ops_of<OpQueueAdd>();
  ASSERT_EQ(adds.size(), 8u);
  RestoredSession r;
  r.session.client_id = "sub";
  r.session.version = 5;
  r.session.expiry_s = 3600;
  OpSubscriptionAdd sa;
  sa.client_id = "sub";
  sa.filter = "p";
  sa.qos = 1;
  r.subscriptions.push_back(sa);
  for (int i = 0; i < 2; ++i) {
    RestoredQueueEntry e;
    e.seq = adds[i].seq;
    e.message = adds[i].message;
    e.qos = 1;
    r.queue.push_back(e);
  }
  r.paged_from = adds[2].seq;
  r.next_seq = adds[7].seq + 1;
  broker.reset();  // a new broker on the same committed store
  build(settings, services, &sink);
  links.clear();
  b().restore_session(std::move(r));
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  EXPECT_EQ(drain(sub), names(0, 8));
  publish_n(connect_ok("pub"), 8, 3);  // new entries after the restored ones
  EXPECT_EQ(drain(sub), names(8, 3));
}

// A page that cannot be read is retried by the sweep; nothing is skipped meanwhile.
TEST_F(QueuePagingTest, FailedReadIsRetried) {
  backlog(2, 8);
  sink.set_fail_reads(true);
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  auto head = drain(sub);
  EXPECT_EQ(head, names(0, 2)) << "the head only";
  sink.set_fail_reads(false);
  b().sweep();
  auto rest = drain(sub);
  EXPECT_EQ(rest, names(2, 6));
}

// A session that resumes as non-persistent (5.0, expiry 0) still gets what waits on disk;
// its rows go when it ends.
TEST_F(QueuePagingTest, ResumedAsNonPersistentKeepsItsRowsUntilItEnds) {
  backlog(2, 8);
  ConnectOptions o = persistent5();
  o.session_expiry = 0;
  FakeLink& sub = connect_ok("sub", o, true);
  EXPECT_EQ(sink.count<OpSessionDelete>(), 0u);
  EXPECT_EQ(drain(sub), names(0, 8));
  disconnect(sub);
  EXPECT_EQ(sink.count<OpSessionDelete>(), 1u);
}

// A drain waits while the store has too many operations to commit (what it sends submits
// more), and goes on with the next commit; a degraded store does not hold it back.
TEST_F(QueuePagingTest, DrainWaitsForTheWriterWhileTooManyOpsArePending) {
  backlog(4, 20);
  sink.set_pending_ops(1'000'000);
  FakeLink& sub = connect_ok("sub", persistent5(/*window=*/100), true);
  EXPECT_TRUE(publishes(sub).empty()) << "nothing stored is sent while the writer is behind";
  sink.set_pending_ops(0);
  b().on_durable();
  EXPECT_EQ(drain(sub), names(0, 20));
}

TEST_F(QueuePagingTest, DegradedStoreDoesNotHoldTheDrainBack) {
  backlog(4, 20);
  sink.set_pending_ops(1'000'000);  // commits failing: the ops are held, not committed
  sink.set_degraded(true);
  FakeLink& sub = connect_ok("sub", persistent5(/*window=*/100), true);
  EXPECT_EQ(drain(sub), names(0, 20));
}

// Store off: no paging; the queue stays in memory bounded by max_mqueue_len.
TEST_F(QueuePagingTest, StoreOffKeepsTheQueueInMemory) {
  settings.queue_head = 2;
  start(/*with_store=*/false);
  offline_subscriber("sub");
  FakeLink& pub = connect_ok("pub");
  publish_n(pub, 0, 8);
  FakeLink& sub = connect_ok("sub", persistent5(), true);
  EXPECT_EQ(drain(sub), names(0, 8));
}

}  // namespace harbor::broker
