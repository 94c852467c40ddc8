#include "broker/retained_store.hpp"

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include "broker/topic_levels.hpp"

namespace harbor::broker {

namespace {

using levels::common_levels;
using levels::kEnd;
using levels::literal_run;
using levels::next_level;
using levels::rest_levels;
using levels::skip;
using levels::StringHash;
using levels::tail;

bool expired(const Message& m, int64_t now_unix_ms) {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_unix_ms;
}

}  // namespace

// One node: 56 bytes, plus its rest when that is longer than the string's inline buffer,
// plus its children map when it has children. A chain of levels with no message at the
// intermediate ones is one node (see topic_levels.hpp), so a retained topic's memory
// follows its text, not its level count.
struct RetainedStore::Node {
  using Children = std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>>;

  // Levels after this node's own, each preceded by '/'; the intermediate ones have no
  // message and no other children.
  std::string rest;
  std::unique_ptr<Children> children;  // keyed by the child's first level; null when none
  MessagePtr message;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { levels::release_subtree(*this); }

  void release_children_into(std::vector<std::unique_ptr<Node>>& out) {
    if (!children) return;
    for (auto& entry : *children) out.push_back(std::move(entry.second));
    children.reset();
  }

  bool has_children() const { return children && !children->empty(); }
  bool empty() const { return !has_children() && !message; }

  const Node* child(std::string_view level) const {
    if (!children) return nullptr;
    auto it = children->find(level);
    return it == children->end() ? nullptr : it->second.get();
  }
};

namespace {

using Node = RetainedStore::Node;

// Pushes every message at or below `from` (skipping '$' children when `from` is the root
// [MQTT-4.7.2-1]) that `keep` accepts.
template <class Keep>
void collect_subtree(const Node& from, bool skip_dollar_children, Keep&& keep,
                     std::vector<const Node*>& stack) {
  stack.clear();
  if (from.message) keep(from.message);
  if (from.children) {
    for (const auto& [name, child] : *from.children) {
      if (skip_dollar_children && name.starts_with('$')) continue;
      stack.push_back(child.get());
    }
  }
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (node->message) keep(node->message);
    if (node->children) {
      for (const auto& entry : *node->children) stack.push_back(entry.second.get());
    }
  }
}

// Where the levels of a child's rest leave a filter walk.
enum class RestMatch {
  kNo,       // a level differs, or the filter ends inside the rest (no message there)
  kThrough,  // every rest level matched; the walk continues at the child from `pos`
  kAll,      // a '#' inside the rest: every message at or below the child matches
};

// Matches `rest` level by level against the filter levels from `pos` (as left by
// next_level); '+' matches any one level, '#' everything from there on [MQTT-4.7.1-2].
RestMatch match_rest(std::string_view rest, std::string_view filter, size_t& pos) {
  size_t rpos = 1;  // rest starts with '/'
  while (rpos != kEnd) {
    if (pos == kEnd) return RestMatch::kNo;
    const std::string_view want = next_level(filter, pos);
    const std::string_view have = next_level(rest, rpos);
    if (want == "#") return RestMatch::kAll;
    if (want != "+" && want != have) return RestMatch::kNo;
  }
  return RestMatch::kThrough;
}

// Caller holds the write lock. Creates the nodes for `topic` and returns the one that holds
// its message.
Node* find_or_create(Node& root, std::string_view topic) {
  Node* node = &root;
  size_t pos = 0;
  while (pos != kEnd) {
    const std::string_view level = next_level(topic, pos);
    if (!node->children) node->children = std::make_unique<Node::Children>();
    auto it = node->children->find(level);
    if (it == node->children->end()) {
      // A new branch takes the whole rest of the topic in one node.
      auto fresh = std::make_unique<Node>();
      fresh->rest = std::string(literal_run(topic, pos));
      it = node->children->emplace(std::string(level), std::move(fresh)).first;
    } else if (!it->second->rest.empty()) {
      std::unique_ptr<Node>& slot = it->second;
      const size_t same = common_levels(slot->rest, tail(topic, pos));
      if (same < slot->rest.size()) {
        // Cut the chain after the levels in common; the remainder hangs below, keyed by its
        // first level.
        auto upper = std::make_unique<Node>();
        upper->rest = slot->rest.substr(0, same);
        size_t rpos = same + 1;
        const std::string key(next_level(slot->rest, rpos));
        slot->rest.erase(0, rpos == kEnd ? std::string::npos : rpos - 1);
        upper->children = std::make_unique<Node::Children>();
        upper->children->emplace(key, std::move(slot));
        slot = std::move(upper);
      }
      pos = skip(topic, pos, same);
    }
    node = it->second.get();
  }
  return node;
}

// Folds a node's only child into it when the node has no message, so that what is left of
// a chain after a deletion is one node again.
void merge_single_child(Node& node) {
  if (node.message || !node.children || node.children->size() != 1) return;
  auto only = node.children->begin();
  std::unique_ptr<Node> child = std::move(only->second);
  node.rest += '/';
  node.rest += only->first;
  node.rest += child->rest;
  node.children = std::move(child->children);
  node.message = std::move(child->message);
}

// Caller holds the write lock. Removes the message stored at `topic` if `should` accepts
// it, then prunes the nodes left without message and children, bottom-up, and merges what
// is left of the chain.
template <class Should>
MessagePtr erase_if(Node& root, size_t& count, std::string_view topic, Should&& should) {
  struct Step {
    Node* parent;
    Node::Children::iterator it;
  };
  std::vector<Step> path;
  Node* node = &root;
  size_t pos = 0;
  while (pos != kEnd) {
    const std::string_view level = next_level(topic, pos);
    if (!node->children) return nullptr;
    auto it = node->children->find(level);
    if (it == node->children->end()) return nullptr;
    const std::string& rest = it->second->rest;
    if (!rest.empty()) {
      if (common_levels(rest, tail(topic, pos)) != rest.size()) return nullptr;
      pos = skip(topic, pos, rest.size());
    }
    path.push_back(Step{node, it});
    node = it->second.get();
  }
  if (!node->message || !should(*node->message)) return nullptr;
  MessagePtr old = std::exchange(node->message, nullptr);
  --count;
  while (!path.empty() && path.back().it->second->empty()) {
    Node& parent = *path.back().parent;
    parent.children->erase(path.back().it);
    if (parent.children->empty()) parent.children.reset();
    path.pop_back();
  }
  // The root stands for no level, so it never takes a rest.
  if (!path.empty()) merge_single_child(*path.back().it->second);
  return old;
}

}  // namespace

RetainedStore::RetainedStore(unsigned reader_slots)
    : root_(reader_slots, Root{std::make_unique<Node>(), 0}) {}

RetainedStore::~RetainedStore() = default;

MessagePtr RetainedStore::set(MessagePtr msg) {
  if (!msg) return nullptr;
  // A retained PUBLISH with an empty payload removes the retained message and is not
  // itself retained [MQTT-3.3.1-10], [MQTT-3.3.1-11].
  if (msg->payload.empty()) return erase(msg->topic);
  const std::string_view topic = msg->topic;
  auto root = root_.write();
  Node* node = find_or_create(*root->node, topic);
  MessagePtr old = std::exchange(node->message, std::move(msg));
  if (!old) ++root->count;
  return old;
}

MessagePtr RetainedStore::erase(std::string_view topic) {
  auto root = root_.write();
  return erase_if(*root->node, root->count, topic, [](const Message&) { return true; });
}

void RetainedStore::match(std::string_view filter, unsigned reader_slot, int64_t now_unix_ms,
                          std::vector<MessagePtr>& out) const {
  struct Frame {
    const Node* node;
    size_t pos;  // start of the next filter level; kEnd once every level is consumed
  };
  thread_local std::vector<Frame> stack;
  thread_local std::vector<const Node*> subtree;
  stack.clear();
  auto keep = [&](const MessagePtr& m) {
    if (!expired(*m, now_unix_ms)) out.push_back(m);
  };
  // A child reached by one filter level also needs its rest matched by the filter.
  auto descend = [&](const Node* child, size_t pos) {
    if (!child->rest.empty()) {
      switch (match_rest(child->rest, filter, pos)) {
        case RestMatch::kNo:
          return;
        case RestMatch::kAll:
          collect_subtree(*child, false, keep, subtree);
          return;
        case RestMatch::kThrough:
          break;
      }
    }
    stack.push_back(Frame{child, pos});
  };

  auto root = root_.read(reader_slot);
  const Node* top = root->node.get();
  stack.push_back(Frame{top, 0});
  while (!stack.empty()) {
    const Frame frame = stack.back();
    stack.pop_back();
    const Node& node = *frame.node;
    if (frame.pos == kEnd) {
      if (node.message) keep(node.message);
      continue;
    }
    // A first-level wildcard does not match '$' topics [MQTT-4.7.2-1].
    const bool at_root = &node == top;
    size_t pos = frame.pos;
    const std::string_view level = next_level(filter, pos);
    if (level == "#") {
      // '#' is the last level; it matches this node too ("a/#" matches "a") [MQTT-4.7.1-2].
      collect_subtree(node, at_root, keep, subtree);
    } else if (level == "+") {
      if (!node.children) continue;
      for (const auto& [name, child] : *node.children) {
        if (at_root && name.starts_with('$')) continue;
        descend(child.get(), pos);
      }
    } else if (const Node* child = node.child(level)) {
      descend(child, pos);
    }
  }
}

std::vector<MessagePtr> RetainedStore::take_expired(int64_t now_unix_ms) {
  std::vector<MessagePtr> removed;
  std::vector<std::string> topics;
  std::vector<const Node*> stack;
  auto root = root_.write();
  collect_subtree(
      *root->node, false,
      [&](const MessagePtr& m) {
        if (expired(*m, now_unix_ms)) topics.push_back(m->topic);
      },
      stack);
  for (const std::string& topic : topics) {
    MessagePtr gone = erase_if(*root->node, root->count, topic,
                               [&](const Message& m) { return expired(m, now_unix_ms); });
    if (gone) removed.push_back(std::move(gone));
  }
  return removed;
}

size_t RetainedStore::size() const { return root_.read(0)->count; }

size_t RetainedStore::node_count() const {
  auto root = root_.read(0);
  size_t count = 0;
  std::vector<const Node*> stack{root->node.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    count += 1 + rest_levels(node->rest);
    if (node->children) {
      for (const auto& entry : *node->children) stack.push_back(entry.second.get());
    }
  }
  return count;
}

std::vector<MessagePtr> RetainedStore::all() const {
  std::vector<MessagePtr> out;
  std::vector<const Node*> stack;
  auto root = root_.read(0);
  collect_subtree(
      *root->node, false, [&](const MessagePtr& m) { out.push_back(m); }, stack);
  return out;
}

}  // namespace harbor::broker
