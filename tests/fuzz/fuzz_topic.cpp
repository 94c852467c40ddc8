// libFuzzer target for topic names, filters and matching. The input is split at its first
// NUL byte into a filter and a topic (no NUL: both are the whole input).
// Properties checked: no crash; the validators agree with each other; matching is
// consistent with the spec's rules for the inputs they accept.
#include <cstdint>
#include <string_view>

#include "mqtt/topic.hpp"

using namespace harbor::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view filter = nul == std::string_view::npos ? input : input.substr(0, nul);
  const std::string_view topic = nul == std::string_view::npos ? input : input.substr(nul + 1);

  const bool name_ok = valid_topic_name(topic);
  const bool filter_ok = valid_topic_filter(filter);
  if (name_ok && (!valid_utf8(topic) || topic.find_first_of("+#") != std::string_view::npos))
    __builtin_trap();
  if (filter_ok && !valid_utf8(filter)) __builtin_trap();
  auto shared = parse_shared_filter(filter);
  // A valid shared filter has a non-empty share name without wildcards or '/', and a
  // non-empty filter part (which is itself checked as a plain filter, "$share/" included).
  if (filter_ok && shared &&
      (shared->group.empty() || shared->group.find_first_of("/+#") != std::string_view::npos ||
       shared->filter.empty()))
    __builtin_trap();
  if (name_ok) {
    // Every topic name is a filter matching itself, unless it spells a shared filter
    // ("$share/..." or "$queue/...").
    if (!topic.starts_with("$share/") && !topic.starts_with("$queue/")) {
      if (!valid_topic_filter(topic)) __builtin_trap();
      if (!topic_matches(topic, topic)) __builtin_trap();
    }
    // '#' matches every topic except those starting with '$' [MQTT-4.7.2-1].
    if (topic_matches("#", topic) != (topic.front() != '$')) __builtin_trap();
  }
  if (filter_ok && !shared) {
    const bool m = topic_matches(filter, topic);
    // A filter without wildcards matches exactly itself.
    if (filter.find_first_of("+#") == std::string_view::npos && m != (filter == topic))
      __builtin_trap();
  }
  return 0;
}
