// The global subscription tree: every topic filter of every session, shared by all shards
// (DESIGN.md §3). Entries hold a session id and its shard, never pointers (STYLE.md rule 5).
//
// Threads: every member may be called from any thread. The tree is read-mostly: match()
// takes only the shared lock of the caller's reader slot (one slot per shard, each on its
// own cache line); subscribe(), unsubscribe() and move_session() take every slot's lock
// exclusively. match() does not allocate per topic level: it walks the topic by string_view
// and looks children up heterogeneously; it only appends to the caller's vector.
//
// Memory: a chain of literal levels with nothing subscribed at its intermediate levels is one
// node holding the chain's text (path compression), so a filter costs about its own bytes
// plus ~200 bytes per branch point, whatever its level count; each '+' or '#' level is one
// 64-byte node.
//
// Filters are expected to be valid (mqtt::valid_topic_filter); the tree does not re-check.
// A filter "$share/{group}/{filter}" or "$queue/{filter}" (group "$queue") is a shared
// subscription [MQTT-4.8.2] (mqtt::parse_shared_filter); anything else, including
// "$share/group" without a filter, is a plain filter.
//
// Shared selection (SharedStrategy, mqtt.shared_subscription_strategy): each message that
// matches a group's filter goes to exactly one member, picked in match() under the reader
// lock without writing a cache line that other shards write per message:
//  - round_robin: a cursor per group and per reader slot (each on its own cache line, bumped
//    only by that slot's shard), so each shard takes the members in turn; publishers on one
//    shard see strict alternation, several shards together an even spread.
//  - random: a per-thread generator; no shared state.
//  - sticky: one member per group (an atomic every shard reads and writes only when the
//    member is chosen anew: at the first message and after it left the group).
//  - hash_clientid / hash_topic: a hash of the publisher's client id / of the topic, modulo
//    the member count: stable while the group's membership does not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/guarded.hpp"
#include "broker/message.hpp"
#include "mqtt/types.hpp"

namespace harbor::broker {

struct SubscriberRef {
  SessionId session = 0;
  uint16_t shard = 0;
};

struct SubscriptionOptions {
  mqtt::QoS qos = 0;
  bool no_local = false;             // [MQTT-3.8.3-3]
  bool retain_as_published = false;  // [MQTT-3.3.1-12], [MQTT-3.3.1-13]
  uint8_t retain_handling = 0;       // 0, 1 or 2 [MQTT-3.3.1-9..11]
  uint32_t subscription_id = 0;      // 0 = none [MQTT-3.8.2.1.2]
};

// A shared group (one share name on one filter) while it has members; ids are not reused
// for a later group (32 bits: wraps after 4·10⁹ groups created). 0 = not shared.
using SharedGroupId = uint32_t;

enum class SharedStrategy : uint8_t { RoundRobin, Random, Sticky, HashClientId, HashTopic };

struct SharedSelection {
  SharedStrategy strategy = SharedStrategy::RoundRobin;
  std::string_view publisher;  // client id of the publishing session (hash_clientid)
};

struct SubscriptionMatch {
  SubscriberRef who;
  SubscriptionOptions options;
  bool shared = false;
  SharedGroupId group = 0;  // shared: the group it was picked from
};

class SubscriptionTree {
 public:
  // One reader slot per shard; `reader_slots` == 0 is treated as 1.
  explicit SubscriptionTree(unsigned reader_slots);
  ~SubscriptionTree();
  SubscriptionTree(const SubscriptionTree&) = delete;
  SubscriptionTree& operator=(const SubscriptionTree&) = delete;

  // `filter` as the client sent it, possibly "$share/group/f". Returns true if the
  // subscription is new; false if it replaced the options (and shard) of the existing
  // subscription of the same session to the same filter [MQTT-3.8.4-3].
  bool subscribe(std::string_view filter, SubscriberRef who, const SubscriptionOptions& options);

  // True if the subscription existed. Nodes left empty are pruned.
  bool unsubscribe(std::string_view filter, SessionId session);

  // A session moved to another shard (takeover): every entry of `session` under `filters`
  // (as sent by the client, shared or not) now points at `new_shard`. Filters the session
  // has no entry under are ignored.
  void move_session(SessionId session, uint16_t new_shard, const std::vector<std::string>& filters);

  // Appends every match for the topic NAME `topic` to `out` (does not clear it).
  //  - Non-shared: one entry per (session, filter) that matches; a session with overlapping
  //    filters appears once per filter (the caller merges them [MQTT-3.3.4-2]).
  //  - Shared: exactly one entry per matching (group, filter), member chosen by
  //    `selection` (round robin without it), `shared` = true, `group` set (MQTT 5 §4.8.2:
  //    each message goes to one session of the group).
  //  - '+' matches exactly one level, possibly empty [MQTT-4.7.1-3]; '#' matches any number
  //    of levels including the parent level ("a/#" matches "a") [MQTT-4.7.1-2].
  //  - A topic beginning with '$' is not matched by a filter beginning with '+' or '#'
  //    [MQTT-4.7.2-1].
  // `reader_slot` is the calling shard's index.
  void match(std::string_view topic, unsigned reader_slot,
             std::vector<SubscriptionMatch>& out) const;
  void match(std::string_view topic, unsigned reader_slot, std::vector<SubscriptionMatch>& out,
             const SharedSelection& selection) const;

  // A member of shared group `group` other than `excluding`, round robin, for a message the
  // group had given `excluding` (redelivery); nullopt if the group is gone or has no other.
  std::optional<SubscriptionMatch> pick_other_member(SharedGroupId group, SessionId excluding,
                                                     unsigned reader_slot) const;

  // The group a shared `filter` ("$share/g/f", "$queue/f") names while it has members; 0 for
  // a plain filter or a group that has none (ids are not kept across restarts: the filter
  // text is what identifies a group in the store).
  SharedGroupId group_of(std::string_view filter, unsigned reader_slot) const;

  // Number of subscriptions (shared members count one each).
  size_t size() const;

  // Number of tree levels, root included: one per distinct level prefix of the filters
  // (metrics; shows that unsubscribe prunes). A chain of literal levels is stored as one
  // node but counts one per level. Walks the whole tree under reader slot 0.
  size_t node_count() const;

  struct Node;  // defined in subscription_tree.cpp

 private:
  struct GroupIndex;  // shared groups by id; defined in subscription_tree.cpp
  struct Root {
    std::unique_ptr<Node> node;
    size_t count = 0;
    std::unique_ptr<GroupIndex> groups;
  };
  unsigned slots_;
  SlottedGuarded<Root> root_;
};

}  // namespace harbor::broker
