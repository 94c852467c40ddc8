// OutboundWindow and InboundQuota as pure data: every transition, packet ids (wrap-around
// with ids in use, exhaustion), Receive Maximum both ways, order across a full window,
// resend with DUP on reconnect, the 3.1.1 retry and the MQTT 5 no-resend rule.
#include "mqtt/outbound_window.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace harbor::mqtt {
namespace {

using Window = OutboundWindow<int>;
using A = WindowAction;
using S = OutboundState;
using E = WindowEvent;

// What a sink saw: one line per packet, e.g. "PUBLISH 7 pid=3 dup" or "PUBREL pid=3".
struct Recorder {
  std::vector<std::string> lines;
  void operator()(const WindowOutput<int>& o) {
    if (o.action == A::SendPublish) {
      lines.push_back("PUBLISH " + std::to_string(*o.publish) + " pid=" + std::to_string(o.packet_id) +
                      " q" + std::to_string(o.qos) + (o.dup ? " dup" : ""));
    } else {
      lines.push_back(std::string(to_string(o.action)) + " pid=" + std::to_string(o.packet_id));
    }
  }
};

Window connected(Version v = Version::v5, uint16_t quota = 65535) {
  Window w;
  Recorder r;
  w.on_connected(v, quota, 0, r);
  EXPECT_TRUE(r.lines.empty());
  return w;
}

// Submits `h`, expects it to be sent; returns its packet id.
uint16_t send(Window& w, int h, QoS qos, int64_t now = 0) {
  auto out = w.submit(int{h}, qos, now);
  EXPECT_EQ(out.action, A::SendPublish) << to_string(out.action);
  EXPECT_FALSE(out.dup);
  EXPECT_EQ(out.qos, qos);
  EXPECT_NE(out.packet_id, 0);
  if (out.publish) {
    EXPECT_EQ(*out.publish, h);
  }
  return out.packet_id;
}

// ---------------------------------------------------------------- the transition table

TEST(WindowTransition, EveryStateAndEvent) {
  struct Row {
    S from;
    E event;
    A action;
    S next;
  };
  const Row rows[] = {
      {S::AwaitPuback, E::Puback, A::Release, S::AwaitPuback},
      {S::AwaitPuback, E::Pubrec, A::ProtocolError, S::AwaitPuback},
      {S::AwaitPuback, E::PubrecRefused, A::ProtocolError, S::AwaitPuback},
      {S::AwaitPuback, E::Pubcomp, A::ProtocolError, S::AwaitPuback},
      {S::AwaitPuback, E::Resend, A::SendPublish, S::AwaitPuback},
      {S::AwaitPubrec, E::Puback, A::ProtocolError, S::AwaitPubrec},
      {S::AwaitPubrec, E::Pubrec, A::SendPubrel, S::AwaitPubcomp},
      {S::AwaitPubrec, E::PubrecRefused, A::Release, S::AwaitPubrec},
      {S::AwaitPubrec, E::Pubcomp, A::ProtocolError, S::AwaitPubrec},
      {S::AwaitPubrec, E::Resend, A::SendPublish, S::AwaitPubrec},
      {S::AwaitPubcomp, E::Puback, A::ProtocolError, S::AwaitPubcomp},
      {S::AwaitPubcomp, E::Pubrec, A::SendPubrel, S::AwaitPubcomp},
      {S::AwaitPubcomp, E::PubrecRefused, A::Release, S::AwaitPubcomp},
      {S::AwaitPubcomp, E::Pubcomp, A::Release, S::AwaitPubcomp},
      {S::AwaitPubcomp, E::Resend, A::SendPubrel, S::AwaitPubcomp},  // [MQTT-4.3.3-6]
  };
  for (const Row& r : rows) {
    auto t = window_transition(r.from, r.event);
    EXPECT_EQ(t.action, r.action) << to_string(r.from) << " event " << int(r.event);
    if (r.action != A::Release && r.action != A::ProtocolError) {
      EXPECT_EQ(t.next, r.next) << to_string(r.from) << " event " << int(r.event);
    }
  }
  static_assert(window_transition(S::AwaitPubrec, E::Pubrec).next == S::AwaitPubcomp);
}

// ---------------------------------------------------------------- footprint

TEST(OutboundWindow, IdleFootprintIsSmall) {
  static_assert(sizeof(OutboundWindow<std::shared_ptr<const std::string>>) <= 64);
  static_assert(sizeof(OutboundWindow<int>) <= 64);
  static_assert(sizeof(InboundQuota) == 4);
  static_assert(sizeof(OutboundWindow<std::shared_ptr<const std::string>>::Entry) <= 32);
}

TEST(OutboundWindow, HandleIsMovedNeverCopied) {
  OutboundWindow<std::unique_ptr<int>> w;
  w.on_connected(Version::v5, 10, 0, [](const auto&) {});
  auto h = std::make_unique<int>(42);
  auto out = w.submit(std::move(h), 1, 0);
  ASSERT_EQ(out.action, A::SendPublish);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(**out.publish, 42);
  auto rel = w.on_puback(out.packet_id);
  ASSERT_EQ(rel.action, A::Release);
  ASSERT_NE(rel.released, nullptr);
  EXPECT_EQ(*rel.released, 42);
  w.trim();
}

// ---------------------------------------------------------------- QoS 1 and QoS 2 flows

TEST(OutboundWindow, NothingIsSentBeforeConnect) {
  Window w;
  EXPECT_FALSE(w.has_room());
  EXPECT_EQ(w.submit(1, 1, 0).action, A::Full);
  EXPECT_TRUE(w.empty());
}

TEST(OutboundWindow, QosZeroIsNotAFlow) {
  Window w = connected();
  EXPECT_EQ(w.submit(1, 0, 0).action, A::Nothing);
  EXPECT_EQ(w.submit(1, 3, 0).action, A::Nothing);
  EXPECT_TRUE(w.empty());
}

TEST(OutboundWindow, Qos1Flow) {
  Window w = connected();
  const uint16_t id = send(w, 7, 1);
  EXPECT_EQ(id, 1);
  ASSERT_NE(w.find(id), nullptr);
  EXPECT_EQ(w.find(id)->state, S::AwaitPuback);
  EXPECT_EQ(w.quota_used(), 1);
  auto r = w.on_puback(id, ReasonCode::NoMatchingSubscribers);
  EXPECT_EQ(r.action, A::Release);
  EXPECT_EQ(r.released, 7);
  EXPECT_EQ(r.reason, ReasonCode::NoMatchingSubscribers);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.quota_used(), 0);
  // A just-released id is not handed out again at once.
  EXPECT_EQ(send(w, 8, 1), 2);
}

TEST(OutboundWindow, Qos1RejectedByPubackStillEndsTheFlow) {
  Window w = connected();
  const uint16_t id = send(w, 1, 1);
  auto r = w.on_puback(id, ReasonCode::NotAuthorized);
  EXPECT_EQ(r.action, A::Release);
  EXPECT_EQ(r.reason, ReasonCode::NotAuthorized);
  EXPECT_TRUE(w.empty());
}

TEST(OutboundWindow, Qos2Flow) {
  Window w = connected();
  const uint16_t id = send(w, 9, 2);
  EXPECT_EQ(w.find(id)->state, S::AwaitPubrec);
  auto rel = w.on_pubrec(id, ReasonCode::Success, 50);
  EXPECT_EQ(rel.action, A::SendPubrel);
  EXPECT_EQ(rel.packet_id, id);
  EXPECT_EQ(rel.reason, ReasonCode::Success);
  EXPECT_EQ(w.find(id)->state, S::AwaitPubcomp);
  EXPECT_EQ(w.find(id)->sent_ms, 50);
  EXPECT_EQ(w.quota_used(), 1);  // quota comes back with PUBCOMP [MQTT-4.9.0-2]
  // A repeated PUBREC (after the receiver saw a resent PUBLISH) gets PUBREL again.
  EXPECT_EQ(w.on_pubrec(id, ReasonCode::Success, 60).action, A::SendPubrel);
  auto done = w.on_pubcomp(id);
  EXPECT_EQ(done.action, A::Release);
  EXPECT_EQ(done.released, 9);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.quota_used(), 0);
}

TEST(OutboundWindow, Qos2RefusedByPubrecEndsTheFlow) {
  Window w = connected(Version::v5, 1);
  const uint16_t id = send(w, 3, 2);
  EXPECT_FALSE(w.has_room());
  auto r = w.on_pubrec(id, ReasonCode::QuotaExceeded, 0);
  EXPECT_EQ(r.action, A::Release);
  EXPECT_EQ(r.released, 3);
  EXPECT_EQ(r.reason, ReasonCode::QuotaExceeded);
  EXPECT_TRUE(w.has_room());  // PUBREC 0x80+ gives the quota back
}

TEST(OutboundWindow, PubcompWithErrorReasonEndsTheFlow) {
  Window w = connected();
  const uint16_t id = send(w, 3, 2);
  ASSERT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).action, A::SendPubrel);
  auto r = w.on_pubcomp(id, ReasonCode::PacketIdentifierNotFound);
  EXPECT_EQ(r.action, A::Release);
  EXPECT_EQ(r.reason, ReasonCode::PacketIdentifierNotFound);
}

// ---------------------------------------------------------------- protocol errors

TEST(OutboundWindow, PubackForUnknownIdChangesNothing) {
  Window w = connected();
  const uint16_t id = send(w, 1, 1);
  EXPECT_EQ(w.on_puback(static_cast<uint16_t>(id + 1)).action, A::UnknownPacketId);
  EXPECT_EQ(w.on_puback(0).action, A::UnknownPacketId);
  EXPECT_EQ(w.on_pubcomp(500).action, A::UnknownPacketId);
  EXPECT_EQ(w.size(), 1u);
  Window empty = connected();
  EXPECT_EQ(empty.on_puback(1).action, A::UnknownPacketId);
}

TEST(OutboundWindow, PubrecForQos1IdIsAProtocolError) {
  Window w = connected();
  const uint16_t id = send(w, 1, 1);
  auto r = w.on_pubrec(id, ReasonCode::Success, 0);
  EXPECT_EQ(r.action, A::ProtocolError);
  EXPECT_EQ(r.reason, ReasonCode::ProtocolError);
  EXPECT_EQ(w.find(id)->state, S::AwaitPuback);
  EXPECT_EQ(w.on_pubrec(id, ReasonCode::UnspecifiedError, 0).action, A::ProtocolError);
  EXPECT_EQ(w.on_pubcomp(id).action, A::ProtocolError);
  EXPECT_EQ(w.size(), 1u);
}

TEST(OutboundWindow, PubcompBeforePubrelIsAProtocolError) {
  Window w = connected();
  const uint16_t id = send(w, 1, 2);
  auto r = w.on_pubcomp(id);
  EXPECT_EQ(r.action, A::ProtocolError);
  EXPECT_EQ(r.reason, ReasonCode::ProtocolError);
  EXPECT_EQ(w.find(id)->state, S::AwaitPubrec);
}

TEST(OutboundWindow, PubackForQos2IdIsAProtocolError) {
  Window w = connected();
  const uint16_t id = send(w, 1, 2);
  EXPECT_EQ(w.on_puback(id).action, A::ProtocolError);
  ASSERT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).action, A::SendPubrel);
  EXPECT_EQ(w.on_puback(id).action, A::ProtocolError);
  EXPECT_EQ(w.find(id)->state, S::AwaitPubcomp);
}

TEST(OutboundWindow, PubrecForUnknownIdGetsPubrelNotFoundInV5Only) {
  Window v5 = connected(Version::v5);
  auto r = v5.on_pubrec(12, ReasonCode::Success, 0);
  EXPECT_EQ(r.action, A::SendPubrel);
  EXPECT_EQ(r.packet_id, 12);
  EXPECT_EQ(r.reason, ReasonCode::PacketIdentifierNotFound);
  Window v311 = connected(Version::v311);
  EXPECT_EQ(v311.on_pubrec(12, ReasonCode::Success, 0).action, A::UnknownPacketId);
  EXPECT_TRUE(v5.empty());
}

// ---------------------------------------------------------------- Receive Maximum, order

TEST(OutboundWindow, ReceiveMaximumLimitsWhatIsInFlight) {
  Window w = connected(Version::v5, 3);
  for (int i = 0; i < 3; ++i) send(w, i, 1);
  EXPECT_FALSE(w.has_room());
  EXPECT_EQ(w.submit(3, 1, 0).action, A::Full);
  EXPECT_EQ(w.submit(3, 2, 0).action, A::Full);
  EXPECT_EQ(w.size(), 3u);
  ASSERT_EQ(w.on_puback(2).action, A::Release);  // out of order
  EXPECT_TRUE(w.has_room());
  send(w, 3, 2);
  EXPECT_EQ(w.submit(4, 1, 0).action, A::Full);
  EXPECT_EQ(w.send_quota(), 3);
}

TEST(OutboundWindow, FullKeepsTheHandle) {
  OutboundWindow<std::string> w;
  w.on_connected(Version::v5, 1, 0, [](const auto&) {});
  ASSERT_EQ(w.submit(std::string("first"), 1, 0).action, A::SendPublish);
  std::string second = "second";
  EXPECT_EQ(w.submit(std::move(second), 1, 0).action, A::Full);
  EXPECT_EQ(second, "second");  // not moved from
}

TEST(OutboundWindow, ReceiveMaximumZeroIsTakenAsOne) {
  Window w = connected(Version::v5, 0);
  send(w, 1, 1);
  EXPECT_EQ(w.submit(2, 1, 0).action, A::Full);
}

// A caller's queue in front of a small window: everything goes out once, in order, whatever
// the order of the acknowledgements.
TEST(OutboundWindow, OrderIsKeptAcrossAFullWindow) {
  Window w = connected(Version::v5, 4);
  std::deque<int> queue;
  for (int i = 0; i < 100; ++i) queue.push_back(i);
  std::vector<int> sent;
  std::vector<uint16_t> in_flight;
  auto pump = [&] {
    while (!queue.empty()) {
      auto out = w.submit(int{queue.front()}, queue.front() % 3 == 0 ? 2 : 1, 0);
      if (out.action == A::Full) break;
      ASSERT_EQ(out.action, A::SendPublish);
      sent.push_back(*out.publish);
      in_flight.push_back(out.packet_id);
      queue.pop_front();
    }
  };
  pump();
  EXPECT_EQ(sent.size(), 4u);
  std::mt19937 rng(7);
  std::vector<int> released;
  while (!in_flight.empty()) {
    // Acknowledge a random one of those in flight.
    const size_t k = std::uniform_int_distribution<size_t>(0, in_flight.size() - 1)(rng);
    const uint16_t id = in_flight[k];
    WindowOutput<int> r;
    if (w.find(id)->qos() == 1) {
      r = w.on_puback(id);
    } else {
      ASSERT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).action, A::SendPubrel);
      r = w.on_pubcomp(id);
    }
    ASSERT_EQ(r.action, A::Release);
    released.push_back(r.released);
    in_flight.erase(in_flight.begin() + static_cast<long>(k));
    EXPECT_LE(w.size(), 4u);
    pump();
  }
  std::vector<int> expected(100);
  for (int i = 0; i < 100; ++i) expected[i] = i;
  EXPECT_EQ(sent, expected);
  std::sort(released.begin(), released.end());
  EXPECT_EQ(released, expected);
}

TEST(OutboundWindow, ForEachWalksInSubmissionOrder) {
  Window w = connected();
  for (int i = 0; i < 10; ++i) send(w, i, 1);
  ASSERT_EQ(w.on_puback(4).action, A::Release);
  std::vector<int> seen;
  w.for_each([&](const Window::Entry& e) { seen.push_back(e.handle); });
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 4, 5, 6, 7, 8, 9}));
}

// ---------------------------------------------------------------- packet ids

TEST(OutboundWindow, PacketIdsWrapAroundSkippingIdsInUse) {
  Window w = connected(Version::v5, 65535);
  const uint16_t stuck1 = send(w, -1, 1);  // id 1, never acknowledged
  EXPECT_EQ(stuck1, 1);
  int h = 0;
  std::set<uint16_t> held{stuck1};
  // Ids 2..65535, acknowledged at once except 3 and 70 (kept in flight).
  for (uint32_t expect = 2; expect <= 65535; ++expect) {
    const uint16_t id = send(w, h++, 1);
    ASSERT_EQ(id, expect);
    if (id == 3 || id == 70) {
      held.insert(id);
    } else {
      ASSERT_EQ(w.on_puback(id).action, A::Release);
    }
  }
  // Round again: 1 and 3 are still in flight, so 2 and 4 come next [MQTT-2.2.1-3].
  EXPECT_EQ(send(w, h++, 1), 2);
  EXPECT_EQ(send(w, h++, 1), 4);
  for (uint32_t expect = 5; expect < 70; ++expect) EXPECT_EQ(send(w, h++, 2), expect);
  EXPECT_EQ(send(w, h++, 1), 71);
  EXPECT_EQ(w.find(1)->handle, -1);
  EXPECT_EQ(w.find(3)->handle, 1);
  // Every id maps to its own entry.
  std::set<uint16_t> ids;
  w.for_each([&](const Window::Entry& e) { EXPECT_TRUE(ids.insert(e.packet_id).second); });
  EXPECT_EQ(ids.size(), w.size());
  // Drain it; ids carry on cyclically from where they were.
  std::vector<uint16_t> all(ids.begin(), ids.end());
  for (uint16_t id : all) {
    if (w.find(id)->qos() == 2) {
      ASSERT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).action, A::SendPubrel);
      ASSERT_EQ(w.on_pubcomp(id).action, A::Release);
    } else {
      ASSERT_EQ(w.on_puback(id).action, A::Release);
    }
  }
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(send(w, h++, 1), 72);
}

TEST(OutboundWindow, EveryIdInFlight) {
  Window w = connected(Version::v5, 65535);
  std::set<uint16_t> ids;
  for (int i = 0; i < 65535; ++i) ids.insert(send(w, i, 1));
  EXPECT_EQ(ids.size(), 65535u);
  EXPECT_EQ(*ids.begin(), 1);
  EXPECT_EQ(w.submit(0, 1, 0).action, A::Full);  // the quota ends before the ids do
  ASSERT_EQ(w.on_puback(40000).action, A::Release);
  EXPECT_EQ(send(w, 70000, 1), 40000);  // the only free one
  EXPECT_EQ(w.find(40000)->handle, 70000);
  EXPECT_EQ(w.find(39999)->handle, 39998);
}

TEST(OutboundWindow, NoPacketIdWhenAllAreHeld) {
  // PUBRELs carried over from an earlier connection hold ids but no quota.
  Window w;
  for (uint32_t id = 1; id <= 65535; ++id)
    ASSERT_TRUE(w.restore(static_cast<int>(id), S::AwaitPubcomp, static_cast<uint16_t>(id)));
  EXPECT_FALSE(w.restore(0, S::AwaitPubcomp, 7));
  size_t pubrels = 0;
  w.on_connected(Version::v5, 10, 0, [&](const WindowOutput<int>& o) {
    EXPECT_EQ(o.action, A::SendPubrel);
    ++pubrels;
  });
  EXPECT_EQ(pubrels, 65535u);
  EXPECT_EQ(w.quota_used(), 0);
  EXPECT_EQ(w.submit(1, 1, 0).action, A::NoPacketId);
  ASSERT_EQ(w.on_pubcomp(300).action, A::Release);
  EXPECT_EQ(send(w, 1, 1), 300);
}

// Random acknowledgements against a model: ids unique and never reused while in flight,
// every acknowledgement finds its entry, order kept. Long enough to wrap the id space
// several times; with hold_every != 0 a few ids (handle % hold_every == 0) are held across
// every wrap, so allocation meets ids in use.
void random_flows(int hold_every) {
  Window w = connected(Version::v5, 200);
  std::mt19937 rng(12345);
  std::map<uint16_t, int> model;      // id → handle
  std::map<int, uint16_t> by_handle;  // handle → id: submission order
  int next = 0;
  uint64_t releases = 0;
  constexpr int kSteps = 500000;
  auto held_long = [&](int handle, int step) {
    return hold_every != 0 && handle % hold_every == 0 && step < kSteps;
  };
  auto acknowledge = [&](uint16_t id) {
    const Window::Entry* e = w.find(id);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->handle, model[id]);
    WindowOutput<int> out;
    if (e->qos() == 1) {
      out = w.on_puback(id);
    } else {
      ASSERT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).action, A::SendPubrel);
      out = w.on_pubcomp(id);
    }
    ASSERT_EQ(out.action, A::Release);
    ASSERT_EQ(out.released, model[id]);
    by_handle.erase(model[id]);
    model.erase(id);
    ++releases;
  };
  auto check = [&] {
    std::vector<int> seen;
    w.for_each([&](const Window::Entry& en) { seen.push_back(en.handle); });
    std::vector<int> want;
    for (const auto& kv : by_handle) want.push_back(kv.first);
    ASSERT_EQ(seen, want);
    for (uint16_t probe : {uint16_t{1}, uint16_t{777}, uint16_t{65535}})
      ASSERT_EQ(w.find(probe) != nullptr, model.count(probe) == 1);
  };
  for (int step = 0; step < kSteps; ++step) {
    const int r = std::uniform_int_distribution<int>(0, 99)(rng);
    if (r < 52) {
      auto out = w.submit(int{next}, static_cast<QoS>(1 + (next & 1)), 0);
      if (model.size() >= 200) {
        ASSERT_EQ(out.action, A::Full);
        continue;
      }
      ASSERT_EQ(out.action, A::SendPublish);
      ASSERT_EQ(model.count(out.packet_id), 0u) << "id reused while in flight";
      model[out.packet_id] = next;
      by_handle[next] = out.packet_id;
      ++next;
    } else if (!model.empty()) {
      uint16_t id = 0;
      if (r < 85) {  // the oldest not held
        for (const auto& [h, i] : by_handle) {
          if (!held_long(h, step)) {
            id = i;
            break;
          }
        }
      } else {  // any
        auto it = model.begin();
        std::advance(it, std::uniform_int_distribution<size_t>(0, model.size() - 1)(rng));
        if (!held_long(it->second, step)) id = it->first;
      }
      if (id != 0) acknowledge(id);
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (step % 4096 == 0) {
      check();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  EXPECT_GT(releases, 3u * 65535u);  // the id space went round several times
  std::vector<uint16_t> rest;
  for (const auto& kv : model) rest.push_back(kv.first);
  if (hold_every != 0) {
    EXPECT_GT(rest.size(), 10u);  // the long-held ones
  }
  for (uint16_t id : rest) acknowledge(id);
  check();
  EXPECT_TRUE(w.empty());
}

TEST(OutboundWindow, RandomFlowsMatchAModel) { random_flows(0); }
TEST(OutboundWindow, RandomFlowsWithIdsHeldAcrossTheWrapMatchAModel) { random_flows(10007); }

// ---------------------------------------------------------------- reconnect and resend

TEST(OutboundWindow, ReconnectResendsEverythingInOrderWithDup) {
  Window w = connected(Version::v5);
  const uint16_t a = send(w, 10, 1);
  const uint16_t b = send(w, 11, 2);
  const uint16_t c = send(w, 12, 2);
  const uint16_t d = send(w, 13, 1);
  ASSERT_EQ(w.on_pubrec(c, ReasonCode::Success, 0).action, A::SendPubrel);
  w.on_disconnected();
  EXPECT_FALSE(w.has_room());
  EXPECT_EQ(w.submit(14, 1, 0).action, A::Full);
  Recorder r;
  w.on_connected(Version::v5, 100, 5, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{
                         "PUBLISH 10 pid=" + std::to_string(a) + " q1 dup",
                         "PUBLISH 11 pid=" + std::to_string(b) + " q2 dup",
                         "SendPubrel pid=" + std::to_string(c),
                         "PUBLISH 13 pid=" + std::to_string(d) + " q1 dup",
                     }));  // [MQTT-4.4.0-1], [MQTT-3.3.1-1], [MQTT-4.6.0-1]
  EXPECT_EQ(w.quota_used(), 3);  // the resent PUBLISH packets; a PUBREL takes no quota
  EXPECT_EQ(w.find(a)->sent_ms, 5);
  // The flows go on as before.
  EXPECT_EQ(w.on_puback(a).action, A::Release);
  EXPECT_EQ(w.on_pubcomp(c).action, A::Release);
  EXPECT_EQ(w.on_pubrec(b, ReasonCode::Success, 6).action, A::SendPubrel);
}

TEST(OutboundWindow, ReconnectWithASmallerReceiveMaximumOwesTheRest) {
  Window w = connected(Version::v5, 10);
  for (int i = 1; i <= 4; ++i) send(w, i, 1);  // ids 1..4
  const uint16_t q2 = send(w, 5, 2);           // id 5, PUBREL sent below
  ASSERT_EQ(w.on_pubrec(q2, ReasonCode::Success, 0).action, A::SendPubrel);
  w.on_disconnected();
  Recorder r;
  w.on_connected(Version::v5, 2, 0, r);
  // Two PUBLISH fit; the PUBREL is not held back by the quota [MQTT-4.9.0-3].
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 1 pid=1 q1 dup", "PUBLISH 2 pid=2 q1 dup",
                                               "SendPubrel pid=5"}));
  EXPECT_EQ(w.owed(), 2u);
  EXPECT_EQ(w.quota_used(), 2);
  EXPECT_EQ(w.submit(6, 1, 0).action, A::Full);  // nothing new before what is owed
  r.lines.clear();
  w.resume(0, r);
  EXPECT_TRUE(r.lines.empty());  // no quota yet
  ASSERT_EQ(w.on_puback(2).action, A::Release);
  w.resume(0, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 3 pid=3 q1 dup"}));
  EXPECT_EQ(w.submit(6, 1, 0).action, A::Full);
  ASSERT_EQ(w.on_pubcomp(5).action, A::Release);  // no quota was held by it
  EXPECT_EQ(w.submit(6, 1, 0).action, A::Full);
  ASSERT_EQ(w.on_puback(1).action, A::Release);
  r.lines.clear();
  w.resume(0, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 4 pid=4 q1 dup"}));
  EXPECT_EQ(w.owed(), 0u);
  EXPECT_EQ(w.submit(6, 1, 0).action, A::Full);  // 3 and 4 fill the quota of 2
  ASSERT_EQ(w.on_puback(3).action, A::Release);
  EXPECT_EQ(send(w, 6, 1), 6);
}

TEST(OutboundWindow, AnOwedEntryAcknowledgedIsNoLongerOwed) {
  Window w = connected(Version::v5, 10);
  send(w, 1, 1);
  send(w, 2, 2);
  w.on_disconnected();
  w.on_connected(Version::v5, 1, 0, [](const auto&) {});
  EXPECT_EQ(w.owed(), 1u);
  EXPECT_EQ(w.on_pubrec(2, ReasonCode::Success, 0).action, A::SendPubrel);
  EXPECT_EQ(w.owed(), 0u);
  EXPECT_EQ(w.on_puback(1).action, A::Release);
  EXPECT_EQ(w.on_pubcomp(2).action, A::Release);
  EXPECT_TRUE(w.has_room());
}

TEST(OutboundWindow, SinkRefusingAPublishDropsTheEntry) {
  Window w = connected(Version::v5);
  send(w, 1, 1);
  send(w, 2, 1);
  send(w, 3, 2);
  ASSERT_EQ(w.on_pubrec(3, ReasonCode::Success, 0).action, A::SendPubrel);
  w.on_disconnected();
  std::vector<int> written;
  // Handle 2 is now too large for the peer: not written, dropped as if delivered.
  w.on_connected(Version::v5, 100, 0, [&](const WindowOutput<int>& o) {
    if (o.action == A::SendPublish && *o.publish == 2) return false;
    written.push_back(o.action == A::SendPublish ? *o.publish : -o.packet_id);
    return true;
  });
  EXPECT_EQ(written, (std::vector<int>{1, -3}));
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.find(2), nullptr);
  EXPECT_EQ(w.quota_used(), 1);
}

TEST(OutboundWindow, DiscardTakesAnEntryBack) {
  Window w = connected(Version::v5, 2);
  send(w, 1, 1);
  const uint16_t id = send(w, 2, 2);
  EXPECT_FALSE(w.has_room());
  auto h = w.discard(id);
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, 2);
  EXPECT_TRUE(w.has_room());
  EXPECT_FALSE(w.discard(id));
  EXPECT_EQ(w.on_pubrec(id, ReasonCode::Success, 0).reason, ReasonCode::PacketIdentifierNotFound);
}

// ---------------------------------------------------------------- retry tick

TEST(OutboundWindow, V311RetryResendsWhatIsOlderThanTheInterval) {
  Window w = connected(Version::v311);
  send(w, 1, 1, 0);
  send(w, 2, 2, 0);
  send(w, 3, 2, 400);
  ASSERT_EQ(w.on_pubrec(2, ReasonCode::Success, 500).action, A::SendPubrel);
  Recorder r;
  w.on_retry_tick(999, 1000, r);
  EXPECT_TRUE(r.lines.empty());
  w.on_retry_tick(1000, 1000, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 1 pid=1 q1 dup"}));
  r.lines.clear();
  w.on_retry_tick(1500, 1000, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"SendPubrel pid=2", "PUBLISH 3 pid=3 q2 dup"}));
  r.lines.clear();
  w.on_retry_tick(1999, 1000, r);  // each was just resent
  EXPECT_TRUE(r.lines.empty());
  w.on_retry_tick(5000, 0, r);  // retry off
  EXPECT_TRUE(r.lines.empty());
  w.on_disconnected();
  w.on_retry_tick(9000, 1000, r);  // nothing goes out while offline
  EXPECT_TRUE(r.lines.empty());
}

TEST(OutboundWindow, V5NeverResendsWhileConnected) {
  Window w = connected(Version::v5);
  send(w, 1, 1, 0);
  send(w, 2, 2, 0);
  ASSERT_EQ(w.on_pubrec(2, ReasonCode::Success, 0).action, A::SendPubrel);
  Recorder r;
  for (int64_t t = 0; t <= 10'000'000; t += 1'000'000) w.on_retry_tick(t, 1000, r);
  EXPECT_TRUE(r.lines.empty());  // [MQTT-4.4.0-1]
  // Only a reconnect resends.
  w.on_disconnected();
  w.on_connected(Version::v5, 10, 0, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 1 pid=1 q1 dup", "SendPubrel pid=2"}));
}

TEST(OutboundWindow, VersionFollowsTheLatestConnection) {
  Window w = connected(Version::v5);
  send(w, 1, 1, 0);
  w.on_disconnected();
  Recorder r;
  w.on_connected(Version::v311, 10, 0, r);
  r.lines.clear();
  w.on_retry_tick(2000, 1000, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 1 pid=1 q1 dup"}));
}

// ---------------------------------------------------------------- restore

TEST(OutboundWindow, RestoredEntriesAreResentAndTheirIdsAvoided) {
  Window w;
  EXPECT_TRUE(w.restore(1, S::AwaitPuback, 100));
  EXPECT_TRUE(w.restore(2, S::AwaitPubcomp, 101));
  EXPECT_TRUE(w.restore(3, S::AwaitPubrec, 7));  // out of allocation order
  EXPECT_FALSE(w.restore(4, S::AwaitPuback, 101));  // in use
  EXPECT_FALSE(w.restore(4, S::AwaitPuback, 0));
  EXPECT_EQ(w.size(), 3u);
  Recorder r;
  w.on_connected(Version::v5, 10, 0, r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"PUBLISH 1 pid=100 q1 dup", "SendPubrel pid=101",
                                               "PUBLISH 3 pid=7 q2 dup"}));
  EXPECT_EQ(w.quota_used(), 2);
  EXPECT_EQ(send(w, 4, 1), 8);  // after the newest restored id
  EXPECT_EQ(w.on_pubcomp(101).action, A::Release);
  EXPECT_EQ(w.on_pubrec(7, ReasonCode::Success, 0).action, A::SendPubrel);
  EXPECT_EQ(w.on_puback(100).action, A::Release);
}

TEST(OutboundWindow, RestoreInAllocationOrderAcrossTheWrap) {
  Window w;
  EXPECT_TRUE(w.restore(1, S::AwaitPuback, 65534));
  EXPECT_TRUE(w.restore(2, S::AwaitPuback, 65535));
  EXPECT_TRUE(w.restore(3, S::AwaitPuback, 1));
  w.on_connected(Version::v5, 10, 0, [](const auto&) {});
  EXPECT_EQ(send(w, 4, 1), 2);
  EXPECT_EQ(w.find(65535)->handle, 2);
  EXPECT_EQ(w.find(1)->handle, 3);
  EXPECT_EQ(w.on_puback(65535).action, A::Release);
  EXPECT_EQ(w.find(1)->handle, 3);
  EXPECT_EQ(w.find(2)->handle, 4);
}

TEST(OutboundWindow, ClearAndTrim) {
  OutboundWindow<std::shared_ptr<int>> w;
  w.on_connected(Version::v5, 10, 0, [](const auto&) {});
  auto msg = std::make_shared<int>(1);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(w.submit(std::shared_ptr<int>(msg), 1, 0).action, A::SendPublish);
  EXPECT_EQ(msg.use_count(), 6);
  ASSERT_EQ(w.on_puback(1).action, A::Release);
  EXPECT_EQ(msg.use_count(), 5);  // a released entry holds nothing
  w.clear();
  EXPECT_EQ(msg.use_count(), 1);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.quota_used(), 0);
  w.trim();
  EXPECT_TRUE(w.has_room());
}

// ---------------------------------------------------------------- InboundQuota

TEST(InboundQuota, ExceedingOurReceiveMaximumIs0x93) {
  InboundQuota q(2);
  EXPECT_EQ(q.on_publish(), ReasonCode::Success);
  EXPECT_EQ(q.on_publish(), ReasonCode::Success);
  EXPECT_EQ(q.on_publish(), ReasonCode::ReceiveMaximumExceeded);
  EXPECT_EQ(q.unacknowledged(), 2);
  q.on_acknowledged();
  EXPECT_EQ(q.on_publish(), ReasonCode::Success);
  q.reset(0);
  EXPECT_EQ(q.receive_maximum(), 1);
  EXPECT_EQ(q.unacknowledged(), 0);
  q.on_acknowledged();  // never below zero
  EXPECT_EQ(q.unacknowledged(), 0);
  EXPECT_EQ(q.on_publish(), ReasonCode::Success);
  EXPECT_EQ(q.on_publish(), ReasonCode::ReceiveMaximumExceeded);
}

}  // namespace
}  // namespace harbor::mqtt
