// Retained messages (section 3.3.1.3), kept apart from sessions in their own topic tree
// (DESIGN.md §3), the latest retained message at the node of its topic. A chain of levels
// with no message at its intermediate levels is one node holding the chain's text (path
// compression): a retained topic costs about its own bytes plus ~200 bytes per branch point,
// whatever its level count.
//
// Threads: every member may be called from any thread. match() and all() take one reader
// slot's lock shared (one slot per shard, each on its own cache line); set(), erase() and
// take_expired() take every slot's lock exclusively.
//
// The store never touches persistence: whenever a message leaves the tree (replaced,
// deleted, expired) it is handed back to the caller, who releases its store row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "broker/guarded.hpp"
#include "broker/message.hpp"

namespace harbor::broker {

class RetainedStore {
 public:
  // One reader slot per shard; `reader_slots` == 0 is treated as 1.
  explicit RetainedStore(unsigned reader_slots);
  ~RetainedStore();
  RetainedStore(const RetainedStore&) = delete;
  RetainedStore& operator=(const RetainedStore&) = delete;

  // Makes `msg` the retained message of msg->topic; an empty payload deletes the retained
  // message of that topic instead and is not stored [MQTT-3.3.1-10], [MQTT-3.3.1-11].
  // Returns the message that left the store (or nullptr).
  MessagePtr set(MessagePtr msg);

  // Removes the retained message of `topic`; returns it (or nullptr).
  MessagePtr erase(std::string_view topic);

  // Appends every retained message whose topic matches `filter` (a plain, non-shared,
  // valid filter) to `out`. Wildcards as in SubscriptionTree: '+' one level, '#' any number
  // including the parent [MQTT-4.7.1-2]; a '$' topic is not matched by a filter beginning
  // with a wildcard [MQTT-4.7.2-1]. Walks the tree: cost follows the matching part only,
  // except under '#'. Messages with expires_at_ms != 0 && expires_at_ms <= now_unix_ms are
  // skipped [MQTT-3.3.2-5] but stay stored until take_expired().
  void match(std::string_view filter, unsigned reader_slot, int64_t now_unix_ms,
             std::vector<MessagePtr>& out) const;

  // Removes and returns every message expired at `now_unix_ms` (callers release their
  // store rows). Meant for a periodic sweep; walks the whole tree.
  std::vector<MessagePtr> take_expired(int64_t now_unix_ms);

  // Number of retained messages (expired but not yet swept ones included).
  size_t size() const;

  // Number of tree levels, root included: one per distinct level prefix of the topics
  // (metrics; shows that deletion prunes). A chain stored as one node counts one per level.
  // Walks the whole tree under reader slot 0.
  size_t node_count() const;

  // Snapshot of all retained messages, in no particular order (tests, management).
  std::vector<MessagePtr> all() const;

  struct Node;  // defined in retained_store.cpp

 private:
  struct Root {
    std::unique_ptr<Node> node;
    size_t count = 0;
  };
  SlottedGuarded<Root> root_;
};

}  // namespace harbor::broker
