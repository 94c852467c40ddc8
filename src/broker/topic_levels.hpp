// Walking topic names and filters level by level without allocating, shared by the
// subscription tree and the retained store. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

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

}  // namespace harbor::broker::levels
