// DurabilityGate as pure data: what waits, what is released when, and in which order.
#include "broker/durability_gate.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace harbor::broker {
namespace {

using Kind = DurabilityGate::Kind;
using Chain = DurabilityGate::Chain;

DurabilityGate::Output control(Kind kind, uint64_t seq, uint16_t packet_id, uint64_t link = 1) {
  DurabilityGate::Output out;
  out.kind = kind;
  out.seq = seq;
  out.packet_id = packet_id;
  out.link_id = link;
  out.qos = 1;
  return out;
}

DurabilityGate::Output publish(uint64_t seq, const char* payload, std::vector<uint32_t> ids = {}) {
  auto m = std::make_shared<Message>();
  m->topic = "t";
  m->payload = payload;
  DurabilityGate::Output out;
  out.kind = Kind::kPublish;
  out.seq = seq;
  out.link_id = 1;
  out.msg = m;
  out.subscription_ids = std::move(ids);
  return out;
}

std::vector<uint16_t> packet_ids(const std::vector<DurabilityGate::Released>& r) {
  std::vector<uint16_t> ids;
  for (const auto& x : r) ids.push_back(x.output.packet_id);
  return ids;
}

TEST(DurabilityGate, NothingWaitsWhenDurableAndNothingHeld) {
  DurabilityGate g;
  EXPECT_FALSE(g.must_wait(7, Chain::kControl, 0, 0));   // depends on nothing
  EXPECT_FALSE(g.must_wait(7, Chain::kControl, 5, 5));   // durable already
  EXPECT_TRUE(g.must_wait(7, Chain::kControl, 6, 5));    // not yet
  EXPECT_TRUE(g.empty());
}

TEST(DurabilityGate, ReleasesInOrderPerSessionEvenWhenALaterOneIsDurableFirst) {
  DurabilityGate g;
  g.hold(7, control(Kind::kAck, 10, 1));
  // Durable already, but an earlier output of the session waits: it waits too.
  EXPECT_TRUE(g.must_wait(7, Chain::kControl, 3, 5));
  g.hold(7, control(Kind::kAck, 3, 2));
  g.hold(7, control(Kind::kPubcomp, 12, 3));
  std::vector<DurabilityGate::Released> ready;
  g.release(9, ready);
  EXPECT_TRUE(ready.empty()) << "released past an output that is not durable";
  g.release(10, ready);
  EXPECT_EQ(packet_ids(ready), (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(g.held_count(), 1u);
  ready.clear();
  g.release(12, ready);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].output.kind, Kind::kPubcomp);
  EXPECT_EQ(ready[0].session, 7u);
  EXPECT_TRUE(g.empty());
  EXPECT_FALSE(g.must_wait(7, Chain::kControl, 3, 12));
}

TEST(DurabilityGate, SessionsAndChainsDoNotWaitForEachOther) {
  DurabilityGate g;
  g.hold(7, control(Kind::kAck, 10, 1));
  EXPECT_FALSE(g.must_wait(8, Chain::kControl, 4, 5)) << "another session's hold delays this one";
  EXPECT_FALSE(g.must_wait(7, Chain::kPublish, 0, 5))
      << "a client's own unacknowledged publish delays what it receives";
  g.hold(8, control(Kind::kAck, 4, 2));
  std::vector<DurabilityGate::Released> ready;
  g.release(5, ready);
  EXPECT_EQ(packet_ids(ready), (std::vector<uint16_t>{2}));
}

TEST(DurabilityGate, HeldPublishesKeepTheirSubscriptionIds) {
  DurabilityGate g;
  g.hold(7, publish(20, "qos2", {4, 9}));
  // A later PUBLISH that needs nothing still waits behind the QoS 2 one (order).
  EXPECT_TRUE(g.must_wait(7, Chain::kPublish, 0, 25));
  g.hold(7, publish(0, "next", {1}));
  std::vector<DurabilityGate::Released> ready;
  g.release(19, ready);
  EXPECT_TRUE(ready.empty());
  g.release(20, ready);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].output.msg->payload, "qos2");
  EXPECT_EQ(ready[1].output.msg->payload, "next");
  const auto& d0 = ready[0].output.delivery.subscription_ids;
  EXPECT_EQ(std::vector<uint32_t>(d0.begin(), d0.end()), (std::vector<uint32_t>{4, 9}));
  const auto& d1 = ready[1].output.delivery.subscription_ids;
  EXPECT_EQ(std::vector<uint32_t>(d1.begin(), d1.end()), (std::vector<uint32_t>{1}));
}

TEST(DurabilityGate, PubcompFollowsAResentPubrelToTheNewConnection) {
  DurabilityGate g;
  g.hold(7, control(Kind::kAck, 5, 1, /*link=*/1));
  g.hold(7, control(Kind::kPubcomp, 6, 2, /*link=*/1));
  EXPECT_FALSE(g.retarget_pubcomp(7, 3, 2)) << "no PUBCOMP held for that id";
  EXPECT_FALSE(g.retarget_pubcomp(8, 2, 2)) << "another session's PUBCOMP";
  EXPECT_TRUE(g.retarget_pubcomp(7, 2, 2));
  std::vector<DurabilityGate::Released> ready;
  g.release(6, ready);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].output.link_id, 1u);
  EXPECT_EQ(ready[1].output.link_id, 2u);
}

TEST(DurabilityGate, DropAndForget) {
  DurabilityGate g;
  g.hold(7, control(Kind::kAck, 5, 1));
  g.hold(7, publish(5, "p"));
  g.drop(7, Chain::kPublish);  // the connection went: held PUBLISHes are resent later
  EXPECT_FALSE(g.must_wait(7, Chain::kPublish, 0, 0));
  EXPECT_TRUE(g.must_wait(7, Chain::kControl, 0, 0));
  g.forget(7);  // the session ended
  EXPECT_TRUE(g.empty());
  std::vector<DurabilityGate::Released> ready;
  g.release(100, ready);
  EXPECT_TRUE(ready.empty());
}

TEST(DurabilityGate, APartialReleaseKeepsTheRestInOrder) {
  DurabilityGate g;
  for (uint16_t i = 1; i <= 100; ++i) g.hold(7, control(Kind::kAck, i, i));
  std::vector<DurabilityGate::Released> ready;
  for (uint64_t durable = 10; durable <= 100; durable += 10) g.release(durable, ready);
  ASSERT_EQ(ready.size(), 100u);
  for (uint16_t i = 0; i < 100; ++i) EXPECT_EQ(ready[i].output.packet_id, i + 1);
  EXPECT_TRUE(g.empty());
}

}  // namespace
}  // namespace harbor::broker
