// ShardBroker, shared subscriptions: what a group gave a session that ends before receiving
// it goes to another member of the group (MQTT 5 §4.8.2).
//
// Policy (docs/architecture.md "Shared subscriptions", docs/conformance.md):
//  - When: the session ends — a non-persistent session's connection closes, a persistent
//    one expires or is replaced by a clean start. A persistent member that is only offline
//    keeps what it was given and gets it when it reconnects: §4.8.2 lets the server wait for
//    it at QoS 1 and requires it for a QoS 2 message in flight [MQTT-4.8.2-4].
//  - What: entries a shared group gave (OutEntry::shared_group) at QoS 1 or 2 that were not
//    sent yet, and QoS 1 ones sent without a PUBACK. Not a QoS 2 message already sent: if
//    the session ends before the exchange completes it goes to no other client
//    [MQTT-4.8.2-5] (after PUBREC the member has it anyway). Not QoS 0, not an expired
//    message. Entries restored at startup too: the store keeps each one's shared filter
//    (queue.shared_filter), which names the group again once the subscriptions are back.
//  - To whom: another member of the same group (round robin), at the QoS that member was
//    granted [MQTT-4.8.2-3]; when none is left the message is dropped with the session.
//  - A flow the member ended with a refusal (reason 0x80+) is over before this and never
//    offered to another member [MQTT-4.8.2-6].
// The ended session's own store rows go with it (OpSessionDelete); a persistent new member
// stores its entry as any delivery (OpQueueAdd).
#include <algorithm>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

void ShardBroker::redeliver_shared(Session* s) {
  struct Owed {
    MessagePtr msg;
    SharedGroupId group;
  };
  std::vector<Owed> owed;
  // Oldest first, the window before the queue: the order they were given in.
  s->inflight.for_each([&owed](const mqtt::OutboundWindow<OutEntry>::Entry& e) {
    if (e.handle.shared_group != 0 && e.state == mqtt::OutboundState::AwaitPuback)
      owed.push_back(Owed{e.handle.msg, e.handle.shared_group});
  });
  for (const OutEntry& e : s->queue) {
    if (e.shared_group != 0 && e.qos > 0) owed.push_back(Owed{e.msg, e.shared_group});
  }
  const int64_t now = services_.now_unix_ms();
  for (Owed& o : owed) {
    if (expired(*o.msg, now)) continue;
    const auto to = ctx_.tree->pick_other_member(o.group, s->id(), shard_);
    if (!to) continue;  // the group has nobody else
    const mqtt::QoS qos = std::min(o.msg->qos, to->options.qos);
    const bool retain = to->options.retain_as_published && o.msg->retain;  // [MQTT-3.3.1-12]
    std::vector<uint32_t> ids;
    if (to->options.subscription_id) ids.push_back(to->options.subscription_id);
    if (to->who.shard == shard_) {
      auto it = by_id_.find(to->who.session);
      if (it != by_id_.end())
        deliver_local(it->second, o.msg, qos, retain, std::move(ids), nullptr, o.group);
    } else {
      // No publisher waits for it any more: no acknowledgement part, nobody to pause.
      outboxes_[to->who.shard].push_back(RemoteDelivery{to->who.session, std::move(o.msg), qos,
                                                        retain, std::move(ids), nullptr, 0, shard_,
                                                        o.group});
    }
  }
}

}  // namespace harbor::broker
