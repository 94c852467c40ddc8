// Topic names, topic filters and the UTF-8 rules they rest on.
#include "mqtt/topic.hpp"

#include <cstdint>
#include <cstring>

namespace harbor::mqtt {

namespace {

constexpr std::string_view kSharePrefix = "$share/";
constexpr std::string_view kQueuePrefix = "$queue/";

// Splits at the next '/' starting from `pos`; returns the level and advances `pos` past the
// separator, or to npos after the last level.
std::string_view next_level(std::string_view s, size_t& pos) {
  size_t slash = s.find('/', pos);
  std::string_view level =
      slash == std::string_view::npos ? s.substr(pos) : s.substr(pos, slash - pos);
  pos = slash == std::string_view::npos ? std::string_view::npos : slash + 1;
  return level;
}

bool valid_plain_filter(std::string_view f) {
  if (f.empty()) return false;
  size_t pos = 0;
  while (pos != std::string_view::npos) {
    std::string_view level = next_level(f, pos);
    if (level.find_first_of("+#") == std::string_view::npos) continue;
    if (level == "+") continue;  // [MQTT-4.7.1-3] '+' occupies a whole level
    // [MQTT-4.7.1-2] '#' is a whole level and the last one.
    if (level == "#" && pos == std::string_view::npos) continue;
    return false;
  }
  return true;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    uint8_t c = *p;
    if (c < 0x80) {
      if (c == 0) return false;  // [MQTT-1.5.4-2] no U+0000
      ++p;
      continue;
    }
    uint32_t cp;
    int extra;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F, extra = 1, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F, extra = 2, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07, extra = 3, min = 0x10000;
    } else {
      return false;  // stray continuation byte or 0xF8..0xFF
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      uint8_t cc = p[i];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, code points past U+10FFFF, and [MQTT-1.5.4-1] surrogates.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

bool valid_topic_name(std::string_view topic) {
  // [MQTT-4.7.3-1] at least one character; [MQTT-3.3.2-2] no wildcards.
  if (topic.empty() || topic.size() > 65535) return false;
  if (topic.find_first_of("+#") != std::string_view::npos) return false;
  return valid_utf8(topic);
}

std::optional<SharedFilter> parse_shared_filter(std::string_view filter) {
  // "$queue/{filter}": every such subscriber is in the one group kQueueGroup.
  if (filter.starts_with(kQueuePrefix))
    return SharedFilter{kQueueGroup, filter.substr(kQueuePrefix.size())};
  if (!filter.starts_with(kSharePrefix)) return std::nullopt;
  std::string_view rest = filter.substr(kSharePrefix.size());
  size_t slash = rest.find('/');
  // A "$share/" filter without a second '/' is still a (malformed) shared filter: its
  // filter part is empty, which valid_topic_filter rejects.
  if (slash == std::string_view::npos) return SharedFilter{rest, {}};
  return SharedFilter{rest.substr(0, slash), rest.substr(slash + 1)};
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > 65535 || !valid_utf8(filter)) return false;
  if (auto shared = parse_shared_filter(filter)) {
    // [MQTT-4.8.2-1] ShareName at least one character; [MQTT-4.8.2-2] no '/', '+', '#'.
    if (shared->group.empty() || shared->group.find_first_of("+#") != std::string_view::npos)
      return false;
    return valid_plain_filter(shared->filter);
  }
  return valid_plain_filter(filter);
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  // [MQTT-4.7.2-1] a leading wildcard never matches a topic starting with '$'.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#'))
    return false;
  size_t fpos = 0;
  size_t tpos = 0;
  while (fpos != std::string_view::npos) {
    std::string_view flevel = next_level(filter, fpos);
    // "sport/#" also matches "sport": '#' covers the parent level (section 4.7.1.2).
    if (flevel == "#") return true;
    if (tpos == std::string_view::npos) return false;
    std::string_view tlevel = next_level(topic, tpos);
    if (flevel != "+" && flevel != tlevel) return false;
  }
  return tpos == std::string_view::npos;
}

namespace {

bool starts_with_wildcard(std::string_view f) {
  return !f.empty() && (f.front() == '+' || f.front() == '#');
}

bool starts_with_dollar(std::string_view f) { return !f.empty() && f.front() == '$'; }

}  // namespace

bool filter_covers(std::string_view outer, std::string_view inner) {
  if (starts_with_dollar(inner) && starts_with_wildcard(outer)) return false;
  size_t opos = 0;
  size_t ipos = 0;
  while (opos != std::string_view::npos) {
    std::string_view o = next_level(outer, opos);
    if (o == "#") return true;  // also the parent level: "a/#" covers "a"
    if (ipos == std::string_view::npos) return false;
    std::string_view i = next_level(inner, ipos);
    if (i == "#") return false;            // more levels than `o` can take
    if (o != "+" && o != i) return false;  // a literal covers only itself ('+' included)
  }
  return ipos == std::string_view::npos;
}

bool filters_overlap(std::string_view a, std::string_view b) {
  if ((starts_with_wildcard(a) && starts_with_dollar(b) && !starts_with_wildcard(b)) ||
      (starts_with_wildcard(b) && starts_with_dollar(a) && !starts_with_wildcard(a))) {
    return false;
  }
  size_t apos = 0;
  size_t bpos = 0;
  while (true) {
    const bool a_done = apos == std::string_view::npos;
    const bool b_done = bpos == std::string_view::npos;
    if (a_done && b_done) return true;
    if (a_done) return next_level(b, bpos) == "#";  // "x" and "x/#" share "x"
    if (b_done) return next_level(a, apos) == "#";
    std::string_view la = next_level(a, apos);
    std::string_view lb = next_level(b, bpos);
    if (la == "#" || lb == "#") return true;
    if (la != "+" && lb != "+" && la != lb) return false;
  }
}

bool exceeds_topic_levels(std::string_view topic, uint32_t max_levels) {
  // `levels` starts at 1 for the first level; each '/' opens one more.
  uint64_t levels = 1;
  const char* p = topic.data();
  const char* end = p + topic.size();
  while (levels <= max_levels) {
    if (p == end) return false;  // memchr on an empty range may get a null pointer
    const void* slash = std::memchr(p, '/', static_cast<size_t>(end - p));
    if (slash == nullptr) return false;
    ++levels;
    p = static_cast<const char*>(slash) + 1;
  }
  return true;
}

}  // namespace harbor::mqtt
