// DurabilityGate: the one place that holds an output until the store says what it depends on
// is durable (DESIGN.md §3, §4). Under the default acknowledge-after-commit policy:
//   - PUBACK/PUBREC to a publisher wait until its message is stored (DESIGN 4);
//   - PUBCOMP waits until the inbound packet id is deleted: else, after a crash, the client's
//     next PUBLISH reusing that id would be taken for a resend and dropped;
//   - PUBREL waits until the PUBREC is stored: else a restart resends the PUBLISH to a
//     receiver that has already completed it, and it is delivered twice;
//   - a QoS 2 PUBLISH to a persistent receiver waits until its packet id is stored (else a
//     crash would restore it as unsent and it would be delivered twice under a new id).
// Order is kept per session and per chain: an output that is durable already still waits
// behind an earlier held one of the same session and chain. Control packets (acknowledgements
// to a session as publisher, PUBREL/PUBCOMP) and PUBLISHes to it as receiver are two chains,
// so a client's own unacknowledged publishes never hold up what it receives.
//
// Pure data: no store, no links, no clock. The broker asks `must_wait` before writing; if
// true it calls `hold`; when the store reports progress it calls `release` and writes what
// comes back. An output is held for one connection (`link_id`): the broker drops a released
// one whose connection is gone (the client resends its PUBLISH/PUBREL, the broker its
// inflight state, on reconnect).
//
// Thread: the owner shard only.
// Emits: nothing by itself; `release` returns the outputs that may be written now, in order.
// Bounds: what is held is bounded by the windows behind it (Receive Maximum and
// mqtt.max_awaiting_rel on the inbound side, the session's inflight window and output bound
// on the outbound side) for the time of one commit.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"
#include "broker/publish_encoder.hpp"

namespace harbor::broker {

class DurabilityGate {
 public:
  enum class Kind : uint8_t {
    kAck,      // PUBACK (qos 1) or PUBREC (qos 2) to a publisher
    kPubrel,   // PUBREL for an outbound QoS 2 flow
    kPubcomp,  // PUBCOMP for an inbound QoS 2 flow
    kPublish,  // a PUBLISH to a receiver
  };
  enum class Chain : uint8_t { kControl, kPublish };
  static Chain chain_of(Kind k) { return k == Kind::kPublish ? Chain::kPublish : Chain::kControl; }

  struct Output {
    Kind kind = Kind::kAck;
    uint64_t seq = 0;      // durable through this store sequence first (0: order only)
    uint64_t link_id = 0;  // the connection it is for
    uint16_t packet_id = 0;
    mqtt::QoS qos = 0;            // kAck: PUBACK (1) or PUBREC (2)
    bool no_subscribers = false;  // kAck: 5.0 reason 0x10
    // kPublish: the message and how it goes out; `delivery.subscription_ids` is re-pointed
    // at `subscription_ids` by release.
    MessagePtr msg;
    Delivery delivery;
    std::vector<uint32_t> subscription_ids;
  };
  struct Released {
    SessionId session;
    Output output;
  };

  // Whether an output of `session` on `chain` that depends on store sequence `seq` must wait,
  // with the store durable through `durable`: `seq` is not durable yet, or an earlier output
  // of that session and chain still waits.
  bool must_wait(SessionId session, Chain chain, uint64_t seq, uint64_t durable) const;
  // Holds `out` behind whatever that session's chain already holds.
  void hold(SessionId session, Output out);
  // Appends to `ready`, in order per session and chain, every output whose sequence (and
  // every earlier one's of its chain) is durable through `durable`, and forgets them.
  void release(uint64_t durable, std::vector<Released>& ready);
  // A held PUBCOMP for `packet_id` answers a resent PUBREL on connection `link_id` instead of
  // the earlier one. False if none is held.
  bool retarget_pubcomp(SessionId session, uint16_t packet_id, uint64_t link_id);
  // The same for a held PUBREC (QoS 2 kAck) and a resent QoS 2 PUBLISH.
  bool retarget_pubrec(SessionId session, uint16_t packet_id, uint64_t link_id);
  // Drops what `session` holds on `chain` (its connection went: resent on reconnect).
  void drop(SessionId session, Chain chain);
  // Drops everything `session` holds (the session ends).
  void forget(SessionId session);

  bool empty() const { return held_.empty(); }
  size_t held_count() const;

 private:
  struct Key {
    SessionId session;
    Chain chain;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>{}(k.session * 2 + static_cast<uint64_t>(k.chain));
    }
  };
  // Per session and chain: its held outputs, oldest first (a vector with a read position, so
  // a partial release does not shift what stays).
  struct Queue {
    std::vector<Output> items;
    size_t head = 0;
  };
  bool retarget(SessionId session, Kind kind, mqtt::QoS qos, uint16_t packet_id, uint64_t link_id);
  std::unordered_map<Key, Queue, KeyHash> held_;
};

}  // namespace harbor::broker
