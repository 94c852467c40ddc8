// Walking topic names and filters level by level without allocating, shared by the
// subscription tree and the retained store. Pure functions, any thread.
//
// Both trees are path-compressed: a node keyed by one level may stand for a chain of
// further literal levels, kept as its "rest", each level preceded by '/' ("/b/c" for the
// node keyed "a" that stands for "a/b/c"; "/" is one empty level; "" is no further level).
// The helpers below compare such a rest with the text of a topic or filter after a level.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace harbor::broker::levels {

constexpr size_t kEnd = std::string_view::npos;

// Transparent hash so maps keyed by std::string can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// The level of `s` starting at `pos`; advances `pos` past the following '/', or to kEnd
// when this was the last level. Empty levels are levels too.
inline std::string_view next_level(std::string_view s, size_t& pos) {
  const size_t slash = s.find('/', pos);
  std::string_view level;
  if (slash == kEnd) {
    level = s.substr(pos);
    pos = kEnd;
  } else {
    level = s.substr(pos, slash - pos);
    pos = slash + 1;
  }
  return level;
}

// What follows the level just read by next_level (which left `pos`), in rest form: "" after
// the last level, else the text from the '/' on.
inline std::string_view tail(std::string_view s, size_t pos) {
  return pos == kEnd ? std::string_view{} : s.substr(pos - 1);
}

// Bytes of `rest` that `tail` repeats level for level: the longest common prefix that ends
// where both end or continue with '/'. Wildcard levels in `tail` are compared as text, so
// they never match a rest level (rests hold literal levels only).
inline size_t common_levels(std::string_view rest, std::string_view tail) {
  const size_t limit = std::min(rest.size(), tail.size());
  size_t n = static_cast<size_t>(
      std::mismatch(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(limit), tail.begin())
          .first -
      rest.begin());
  auto boundary = [](std::string_view s, size_t at) { return at == s.size() || s[at] == '/'; };
  while (n > 0 && !(boundary(rest, n) && boundary(tail, n))) --n;
  return n;
}

// `pos` (as left by next_level) moved past `bytes` bytes of tail(s, pos), which end at a
// level boundary.
inline size_t skip(std::string_view s, size_t pos, size_t bytes) {
  if (bytes == 0) return pos;
  const size_t at = pos - 1 + bytes;
  return at == s.size() ? kEnd : at + 1;
}

// The literal levels of a filter that follow the level just read, up to (not including) the
// first '+' or '#' level, in rest form; advances `pos` past them.
inline std::string_view literal_run(std::string_view s, size_t& pos) {
  size_t end = pos;
  size_t last = pos;  // where the run ends: kEnd or the start of a wildcard level
  while (end != kEnd) {
    size_t next = end;
    const std::string_view level = next_level(s, next);
    if (level == "+" || level == "#") break;
    end = next;
    last = next;
  }
  if (last == pos) return {};
  const std::string_view run =
      last == kEnd ? s.substr(pos - 1) : s.substr(pos - 1, (last - 1) - (pos - 1));
  pos = last;
  return run;
}

// Number of levels in a rest: one per '/'.
inline size_t rest_levels(std::string_view rest) {
  return static_cast<size_t>(std::count(rest.begin(), rest.end(), '/'));
}

// Frees the subtree below `root` without recursing as deep as the tree: a node type with
// release_children_into(std::vector<std::unique_ptr<Node>>&) hands its children over, and
// they are destroyed one at a time (a chain of 65,535 levels must not blow the stack).
template <class Node>
void release_subtree(Node& root) {
  std::vector<std::unique_ptr<Node>> doomed;
  root.release_children_into(doomed);
  while (!doomed.empty()) {
    std::unique_ptr<Node> node = std::move(doomed.back());
    doomed.pop_back();
    node->release_children_into(doomed);
  }
}

}  // namespace harbor::broker::levels
