#include "broker/subscription_tree.hpp"

#include <atomic>
#include <functional>
#include <random>
#include <unordered_map>
#include <utility>

#include "broker/topic_levels.hpp"
#include "mqtt/topic.hpp"

namespace harbor::broker {

namespace {

using levels::kEnd;
using levels::next_level;
using levels::common_levels;
using levels::literal_run;
using levels::rest_levels;
using levels::skip;
using levels::StringHash;
using levels::tail;

struct ParsedFilter {
  std::string_view group;  // empty for a plain filter
  std::string_view filter;
  bool shared = false;
};

// "$share/{group}/{filter}" [MQTT-4.8.2-1], [MQTT-4.8.2-2] and "$queue/{filter}" (group
// "$queue"); anything else, "$share/{group}" without the '/' or "$share//f", is plain.
ParsedFilter parse_filter(std::string_view filter) {
  const auto shared = mqtt::parse_shared_filter(filter);
  if (shared && !shared->group.empty() && (!shared->filter.empty() || filter.ends_with('/')))
    return {shared->group, shared->filter, true};
  return {{}, filter, false};
}

struct Subscriber {
  SubscriberRef who;
  SubscriptionOptions options;
};

// The subscribers of one node (or the members of one share group): a dense vector for
// the match path, plus a session index once the set is large enough that linear lookup
// on subscribe/unsubscribe would hurt (many clients on one filter).
class SubscriberSet {
 public:
  const std::vector<Subscriber>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }

  const Subscriber* find(SessionId session) const {
    if (index_) {
      auto it = index_->find(session);
      return it == index_->end() ? nullptr : &items_[it->second];
    }
    for (const Subscriber& s : items_) {
      if (s.who.session == session) return &s;
    }
    return nullptr;
  }
  Subscriber* find(SessionId session) {
    return const_cast<Subscriber*>(std::as_const(*this).find(session));
  }

  // True if new; otherwise the existing entry is replaced.
  bool upsert(SubscriberRef who, const SubscriptionOptions& options) {
    if (Subscriber* existing = find(who.session)) {
      existing->who = who;
      existing->options = options;
      return false;
    }
    items_.push_back(Subscriber{who, options});
    if (index_) {
      index_->emplace(who.session, static_cast<uint32_t>(items_.size() - 1));
    } else if (items_.size() > kIndexAbove) {
      build_index();
    }
    return true;
  }

  bool erase(SessionId session) {
    Subscriber* found = find(session);
    if (found == nullptr) return false;
    const size_t at = static_cast<size_t>(found - items_.data());
    if (at + 1 != items_.size()) {
      items_[at] = items_.back();
      if (index_) (*index_)[items_[at].who.session] = static_cast<uint32_t>(at);
    }
    items_.pop_back();
    if (index_) {
      index_->erase(session);
      // Hysteresis so a set hovering around the threshold does not rebuild each time.
      if (items_.size() < kIndexAbove / 2) index_.reset();
    }
    return true;
  }

 private:
  static constexpr size_t kIndexAbove = 16;

  void build_index() {
    index_ = std::make_unique<std::unordered_map<SessionId, uint32_t>>();
    index_->reserve(items_.size() * 2);
    for (size_t i = 0; i < items_.size(); ++i) {
      index_->emplace(items_[i].who.session, static_cast<uint32_t>(i));
    }
  }

  std::vector<Subscriber> items_;
  std::unique_ptr<std::unordered_map<SessionId, uint32_t>> index_;
};

// One reader slot's round-robin position in a group, alone on its cache line: only that
// slot's shard bumps it per message, so publishing on one shard never invalidates a line
// another shard reads. Atomic because a slot past the last one wraps onto a shared one;
// relaxed because only fairness depends on it (the members are read under the lock).
struct alignas(64) RoundRobinCursor {
  std::atomic<uint32_t> next{0};
};

struct SharedGroup {
  std::string name;
  SharedGroupId id = 0;
  SubscriberSet members;
  std::unique_ptr<RoundRobinCursor[]> cursors;  // one per reader slot
  // sticky: the member every message goes to, 0 until one is chosen. Read by every shard
  // per message but written only when the member is chosen anew, so the line stays shared
  // in every cache. Relaxed: it only names a member; the members are read under the lock.
  mutable std::atomic<SessionId> sticky{0};
};

// The subscriptions held at one node; allocated only for nodes that have any, so a
// path-through node (most nodes of a deep filter) does not pay for them.
struct Entries {
  SubscriberSet subscribers;
  std::vector<std::unique_ptr<SharedGroup>> groups;

  bool empty() const { return subscribers.empty() && groups.empty(); }

  SharedGroup* find_group(std::string_view name) const {
    for (const auto& g : groups) {
      if (g->name == name) return g.get();
    }
    return nullptr;
  }
};

}  // namespace

// One node: 64 bytes, plus its rest when that is longer than the string's inline buffer,
// plus its children map and its entries when it has any. A chain of literal levels with
// nothing at the intermediate levels is one node (see topic_levels.hpp), so a filter's
// memory follows its literal text, not its level count; '+' and '#' levels are a node each.
struct SubscriptionTree::Node {
  using Children = std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>>;

  // Literal levels after this node's own, each preceded by '/'; the intermediate ones have
  // no entries and no other children.
  std::string rest;
  std::unique_ptr<Children> children;  // keyed by the child's first level; null when none
  std::unique_ptr<Node> plus;  // the '+' level
  std::unique_ptr<Node> hash;  // the '#' level (always a leaf)
  std::unique_ptr<Entries> entries;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { levels::release_subtree(*this); }

  void release_children_into(std::vector<std::unique_ptr<Node>>& out) {
    if (plus) out.push_back(std::move(plus));
    if (hash) out.push_back(std::move(hash));
    if (children) {
      for (auto& entry : *children) out.push_back(std::move(entry.second));
      children.reset();
    }
  }

  bool empty() const {
    return (!children || children->empty()) && !plus && !hash && (!entries || entries->empty());
  }

  const Node* child(std::string_view level) const {
    if (!children) return nullptr;
    auto it = children->find(level);
    return it == children->end() ? nullptr : it->second.get();
  }

  Entries& entries_or_create() {
    if (!entries) entries = std::make_unique<Entries>();
    return *entries;
  }
};

namespace {

using Node = SubscriptionTree::Node;

// One step down the tree, remembered so that empty nodes can be pruned bottom-up.
struct Step {
  Node* parent;
  Node* child;
  std::string_view level;
};

std::unique_ptr<Node>& child_slot(Node& node, std::string_view level) {
  if (level == "+") return node.plus;
  if (level == "#") return node.hash;
  if (!node.children) node.children = std::make_unique<Node::Children>();
  auto it = node.children->find(level);
  if (it == node.children->end()) it = node.children->emplace(std::string(level), nullptr).first;
  return it->second;
}

// Cuts the node in `slot` after `keep` bytes of its rest: a new node with the first part
// takes the slot and holds the old node, keyed by the first level of the remainder.
void split(std::unique_ptr<Node>& slot, size_t keep) {
  auto upper = std::make_unique<Node>();
  Node& lower = *slot;
  upper->rest = lower.rest.substr(0, keep);
  size_t pos = keep + 1;  // past the '/' that starts the remainder
  const std::string key(next_level(lower.rest, pos));
  lower.rest.erase(0, pos == kEnd ? std::string::npos : pos - 1);
  upper->children = std::make_unique<Node::Children>();
  upper->children->emplace(key, std::move(slot));
  slot = std::move(upper);
}

Node* find_or_create(Node& root, std::string_view filter) {
  Node* node = &root;
  size_t pos = 0;
  while (pos != kEnd) {
    const std::string_view level = next_level(filter, pos);
    std::unique_ptr<Node>& slot = child_slot(*node, level);
    if (!slot) {
      // A new branch takes every literal level that follows in one node.
      slot = std::make_unique<Node>();
      if (level != "#") slot->rest = std::string(literal_run(filter, pos));
    } else if (!slot->rest.empty()) {
      const size_t same = common_levels(slot->rest, tail(filter, pos));
      if (same < slot->rest.size()) split(slot, same);
      pos = skip(filter, pos, same);
    }
    node = slot.get();
  }
  return node;
}

// The node of `filter`, or nullptr. Records the path in `path` when given.
Node* find_node(Node& root, std::string_view filter, std::vector<Step>* path) {
  Node* node = &root;
  size_t pos = 0;
  while (pos != kEnd) {
    const std::string_view level = next_level(filter, pos);
    Node* child = level == "+"   ? node->plus.get()
                  : level == "#" ? node->hash.get()
                                 : const_cast<Node*>(node->child(level));
    if (child == nullptr) return nullptr;
    if (!child->rest.empty()) {
      if (common_levels(child->rest, tail(filter, pos)) != child->rest.size()) return nullptr;
      pos = skip(filter, pos, child->rest.size());
    }
    if (path != nullptr) path->push_back(Step{node, child, level});
    node = child;
  }
  return node;
}

// Folds a node's only child into it when the node itself holds nothing else, so that what
// is left of a chain after an unsubscribe is one node again.
void merge_single_child(Node& node) {
  if (node.plus || node.hash || (node.entries && !node.entries->empty())) return;
  if (!node.children || node.children->size() != 1) return;
  auto only = node.children->begin();
  std::unique_ptr<Node> child = std::move(only->second);
  node.rest += '/';
  node.rest += only->first;
  node.rest += child->rest;
  node.children = std::move(child->children);
  node.plus = std::move(child->plus);
  node.hash = std::move(child->hash);
  node.entries = std::move(child->entries);
}

void prune(std::vector<Step>& path) {
  while (!path.empty() && path.back().child->empty()) {
    const Step step = path.back();
    path.pop_back();
    if (step.child == step.parent->plus.get()) {
      step.parent->plus.reset();
    } else if (step.child == step.parent->hash.get()) {
      step.parent->hash.reset();
    } else {
      auto it = step.parent->children->find(step.level);
      if (it != step.parent->children->end()) step.parent->children->erase(it);
      if (step.parent->children->empty()) step.parent->children.reset();
    }
  }
  // The root stands for no level, so it never takes a rest.
  if (!path.empty()) merge_single_child(*path.back().child);
}

// What match() needs to pick a shared group's member.
struct Picker {
  SharedSelection selection;
  unsigned slot;  // the caller's reader slot, below the tree's slot count
  std::string_view topic;
};

// Groups are removed when their last member leaves, so `members` is never empty.
const Subscriber& round_robin(const SharedGroup& group, unsigned slot) {
  const auto& members = group.members.items();
  const uint32_t turn = group.cursors[slot].next.fetch_add(1, std::memory_order_relaxed);
  return members[turn % members.size()];
}

size_t random_below(size_t n) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
}

const Subscriber& pick_member(const SharedGroup& group, const Picker& p) {
  const auto& members = group.members.items();
  const size_t n = members.size();
  switch (p.selection.strategy) {
    case SharedStrategy::Random:
      return members[random_below(n)];
    case SharedStrategy::HashTopic:
      return members[std::hash<std::string_view>{}(p.topic) % n];
    case SharedStrategy::HashClientId:
      // No publisher id (a message the broker made itself): round robin.
      if (p.selection.publisher.empty()) break;
      return members[std::hash<std::string_view>{}(p.selection.publisher) % n];
    case SharedStrategy::Sticky: {
      SessionId want = group.sticky.load(std::memory_order_relaxed);
      if (want != 0) {
        if (const Subscriber* held = group.members.find(want)) return *held;
      }
      const Subscriber& chosen = round_robin(group, p.slot);
      if (group.sticky.compare_exchange_strong(want, chosen.who.session, std::memory_order_relaxed))
        return chosen;
      // Another shard chose first: its member, so that every shard stays on one.
      if (const Subscriber* other = group.members.find(want)) return *other;
      return chosen;
    }
    case SharedStrategy::RoundRobin:
      break;
  }
  return round_robin(group, p.slot);
}

void emit(const Node& node, const Picker& picker, std::vector<SubscriptionMatch>& out) {
  if (!node.entries) return;
  for (const Subscriber& s : node.entries->subscribers.items()) {
    out.push_back(SubscriptionMatch{s.who, s.options, false, 0});
  }
  for (const auto& group : node.entries->groups) {
    const Subscriber& chosen = pick_member(*group, picker);
    out.push_back(SubscriptionMatch{chosen.who, chosen.options, true, group->id});
  }
}

}  // namespace

struct SubscriptionTree::GroupIndex {
  std::unordered_map<SharedGroupId, const SharedGroup*> by_id;
  SharedGroupId next = 1;
};

SubscriptionTree::SubscriptionTree(unsigned reader_slots)
    : slots_(reader_slots == 0 ? 1 : reader_slots),
      root_(reader_slots, Root{std::make_unique<Node>(), 0, std::make_unique<GroupIndex>()}) {}

SubscriptionTree::~SubscriptionTree() = default;

bool SubscriptionTree::subscribe(std::string_view filter, SubscriberRef who,
                                 const SubscriptionOptions& options) {
  const ParsedFilter parsed = parse_filter(filter);
  auto root = root_.write();
  Entries& entries = find_or_create(*root->node, parsed.filter)->entries_or_create();
  bool added;
  if (parsed.shared) {
    SharedGroup* group = entries.find_group(parsed.group);
    if (group == nullptr) {
      entries.groups.push_back(std::make_unique<SharedGroup>());
      group = entries.groups.back().get();
      group->name = std::string(parsed.group);
      GroupIndex& index = *root->groups;
      group->id = index.next;
      index.next = index.next == UINT32_MAX ? 1 : index.next + 1;
      index.by_id[group->id] = group;
      group->cursors = std::make_unique<RoundRobinCursor[]>(slots_);
      // Each shard starts at another member.
      for (unsigned i = 0; i < slots_; ++i) group->cursors[i].next.store(i, std::memory_order_relaxed);
    }
    added = group->members.upsert(who, options);
  } else {
    added = entries.subscribers.upsert(who, options);
  }
  if (added) ++root->count;
  return added;
}

bool SubscriptionTree::unsubscribe(std::string_view filter, SessionId session) {
  const ParsedFilter parsed = parse_filter(filter);
  std::vector<Step> path;
  auto root = root_.write();
  Node* node = find_node(*root->node, parsed.filter, &path);
  if (node == nullptr || !node->entries) return false;
  Entries& entries = *node->entries;
  bool removed = false;
  if (parsed.shared) {
    for (auto it = entries.groups.begin(); it != entries.groups.end(); ++it) {
      SharedGroup& group = **it;
      if (group.name != parsed.group) continue;
      removed = group.members.erase(session);
      // sticky: the member left, the next message chooses anew.
      if (group.sticky.load(std::memory_order_relaxed) == session)
        group.sticky.store(0, std::memory_order_relaxed);
      if (group.members.empty()) {
        root->groups->by_id.erase(group.id);
        entries.groups.erase(it);
      }
      break;
    }
  } else {
    removed = entries.subscribers.erase(session);
  }
  if (entries.empty()) node->entries.reset();
  if (removed) --root->count;
  prune(path);
  return removed;
}

void SubscriptionTree::move_session(SessionId session, uint16_t new_shard,
                                    const std::vector<std::string>& filters) {
  auto root = root_.write();
  for (const std::string& filter : filters) {
    const ParsedFilter parsed = parse_filter(filter);
    Node* node = find_node(*root->node, parsed.filter, nullptr);
    if (node == nullptr || !node->entries) continue;
    Subscriber* entry = nullptr;
    if (parsed.shared) {
      if (SharedGroup* group = node->entries->find_group(parsed.group))
        entry = group->members.find(session);
    } else {
      entry = node->entries->subscribers.find(session);
    }
    if (entry != nullptr) entry->who.shard = new_shard;
  }
}

void SubscriptionTree::match(std::string_view topic, unsigned reader_slot,
                             std::vector<SubscriptionMatch>& out) const {
  match(topic, reader_slot, out, SharedSelection{});
}

void SubscriptionTree::match(std::string_view topic, unsigned reader_slot,
                             std::vector<SubscriptionMatch>& out,
                             const SharedSelection& selection) const {
  const Picker picker{selection, reader_slot % slots_, topic};
  struct Frame {
    const Node* node;
    size_t pos;  // start of the next topic level; kEnd once every level is consumed
  };
  // Reused across calls so the walk allocates nothing once warm; depth is bounded by the
  // tree, not by the topic, since only existing nodes are pushed.
  thread_local std::vector<Frame> stack;
  stack.clear();
  // A child reached by one topic level also needs its rest repeated by the topic.
  auto descend = [&](const Node* child, size_t pos) {
    if (!child->rest.empty()) {
      const std::string_view rest = child->rest;
      if (pos == kEnd || topic.compare(pos - 1, rest.size(), rest) != 0) return;
      const size_t after = pos - 1 + rest.size();
      if (after != topic.size() && topic[after] != '/') return;
      pos = after == topic.size() ? kEnd : after + 1;
    }
    stack.push_back(Frame{child, pos});
  };

  auto root = root_.read(reader_slot);
  const Node* top = root->node.get();
  const bool dollar_topic = topic.starts_with('$');
  stack.push_back(Frame{top, 0});
  while (!stack.empty()) {
    const Frame frame = stack.back();
    stack.pop_back();
    const Node& node = *frame.node;
    if (frame.pos == kEnd) {
      emit(node, picker, out);
      // "a/#" also matches "a" [MQTT-4.7.1-2].
      if (node.hash) emit(*node.hash, picker, out);
      continue;
    }
    // No wildcard at the first level matches a '$' topic [MQTT-4.7.2-1].
    const bool wildcards = !(dollar_topic && &node == top);
    if (wildcards && node.hash) emit(*node.hash, picker, out);
    size_t pos = frame.pos;
    const std::string_view level = next_level(topic, pos);
    if (wildcards && node.plus) descend(node.plus.get(), pos);
    if (const Node* child = node.child(level)) descend(child, pos);
  }
}

std::optional<SubscriptionMatch> SubscriptionTree::pick_other_member(SharedGroupId group,
                                                                    SessionId excluding,
                                                                    unsigned reader_slot) const {
  auto root = root_.read(reader_slot);
  auto it = root->groups->by_id.find(group);
  if (it == root->groups->by_id.end()) return std::nullopt;
  const SharedGroup& g = *it->second;
  const auto& members = g.members.items();
  const Subscriber* chosen = &round_robin(g, reader_slot % slots_);
  if (chosen->who.session == excluding) {
    if (members.size() == 1) return std::nullopt;
    chosen = &members[(static_cast<size_t>(chosen - members.data()) + 1) % members.size()];
  }
  return SubscriptionMatch{chosen->who, chosen->options, true, g.id};
}

SharedGroupId SubscriptionTree::group_of(std::string_view filter, unsigned reader_slot) const {
  const ParsedFilter parsed = parse_filter(filter);
  if (!parsed.shared) return 0;
  auto root = root_.read(reader_slot);
  // find_node only reads: the const_cast lets it share the writer's walk.
  const Node* node = find_node(const_cast<Node&>(*root->node), parsed.filter, nullptr);
  if (node == nullptr || !node->entries) return 0;
  const SharedGroup* group = node->entries->find_group(parsed.group);
  return group != nullptr ? group->id : 0;
}

size_t SubscriptionTree::size() const { return root_.read(0)->count; }

size_t SubscriptionTree::node_count() const {
  auto root = root_.read(0);
  size_t count = 0;
  std::vector<const Node*> stack{root->node.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    count += 1 + rest_levels(node->rest);
    if (node->plus) stack.push_back(node->plus.get());
    if (node->hash) stack.push_back(node->hash.get());
    if (node->children) {
      for (const auto& entry : *node->children) stack.push_back(entry.second.get());
    }
  }
  return count;
}

}  // namespace harbor::broker
