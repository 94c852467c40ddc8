#include "broker/retained_store.hpp"

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include "broker/topic_levels.hpp"

namespace harbor::broker {

namespace {

using levels::kEnd;
using levels::next_level;
using levels::StringHash;

bool expired(const Message& m, int64_t now_unix_ms) {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_unix_ms;
}

}  // namespace

struct RetainedStore::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
  MessagePtr message;

  bool empty() const { return children.empty() && !message; }
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
  for (const auto& [name, child] : from.children) {
    if (skip_dollar_children && name.starts_with('$')) continue;
    stack.push_back(child.get());
  }
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (node->message) keep(node->message);
    for (const auto& entry : node->children) stack.push_back(entry.second.get());
  }
}

// Caller holds the write lock. Removes the message stored at `topic` if `should` accepts
// it, then prunes the nodes left without message and children, bottom-up.
template <class Should>
MessagePtr erase_if(Node& root, size_t& count, std::string_view topic, Should&& should) {
  using Children = decltype(Node::children);
  struct Step {
    Node* parent;
    Children::iterator it;
  };
  std::vector<Step> path;
  Node* node = &root;
  size_t pos = 0;
  while (pos != kEnd) {
    auto it = node->children.find(next_level(topic, pos));
    if (it == node->children.end()) return nullptr;
    path.push_back(Step{node, it});
    node = it->second.get();
  }
  if (!node->message || !should(*node->message)) return nullptr;
  MessagePtr old = std::exchange(node->message, nullptr);
  --count;
  while (!path.empty() && path.back().it->second->empty()) {
    path.back().parent->children.erase(path.back().it);
    path.pop_back();
  }
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
  Node* node = root->node.get();
  size_t pos = 0;
  while (pos != kEnd) {
    const std::string_view level = next_level(topic, pos);
    auto it = node->children.find(level);
    if (it == node->children.end()) {
      it = node->children.emplace(std::string(level), std::make_unique<Node>()).first;
    }
    node = it->second.get();
  }
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
      for (const auto& [name, child] : node.children) {
        if (at_root && name.starts_with('$')) continue;
        stack.push_back(Frame{child.get(), pos});
      }
    } else if (auto it = node.children.find(level); it != node.children.end()) {
      stack.push_back(Frame{it->second.get(), pos});
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
    ++count;
    for (const auto& entry : node->children) stack.push_back(entry.second.get());
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
