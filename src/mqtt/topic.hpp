// Topic name and topic filter rules (section 4.7) and UTF-8 string rules (section 1.5.4).
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace harbor::mqtt {

// Well-formed UTF-8 without U+0000 and without surrogates [MQTT-1.5.4-1], [MQTT-1.5.4-2].
bool valid_utf8(std::string_view s);

// Non-empty, valid UTF-8, no '+' or '#' [MQTT-4.7.3-1], [MQTT-3.3.2-2].
bool valid_topic_name(std::string_view topic);

// Non-empty, valid UTF-8; '#' only as the whole last level [MQTT-4.7.1-2];
// '+' only as a whole level [MQTT-4.7.1-3]. Shared filters "$share/group/filter" are valid
// when the group has no '/', '+', '#' and the filter is valid [MQTT-4.8.2-1], [MQTT-4.8.2-2];
// "$queue/filter" when the filter is valid ("$queue/" alone is not).
bool valid_topic_filter(std::string_view filter);

// The group of "$queue/{filter}" (EMQX and NanoMQ's queue subscription): all "$queue/"
// subscribers to one filter share one group, the same as "$share/$queue/{filter}".
inline constexpr std::string_view kQueueGroup = "$queue";

// "$share/group/filter" or "$queue/filter" split into its parts; std::nullopt for a plain
// filter. `group` points into `filter`, or at kQueueGroup.
struct SharedFilter {
  std::string_view group;
  std::string_view filter;
};
std::optional<SharedFilter> parse_shared_filter(std::string_view filter);

// Reference matcher: does `filter` (not shared) match `topic`? Topics starting with '$'
// are not matched by a leading '+' or '#' [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic);

// Does every topic `inner` matches also match `outer` (both valid plain filters)? "a/#"
// covers "a", "a/b" and "a/+/c"; "a/+" does not cover "a/#". The '$' rule holds: a filter
// starting with a wildcard covers no filter whose first level starts with '$'.
bool filter_covers(std::string_view outer, std::string_view inner);

// Is there a topic both filters match (both valid plain filters)? "a/+" and "+/b" overlap
// ("a/b"); "a/b" and "a/c" do not; "#" and "$SYS/x" do not (the '$' rule).
bool filters_overlap(std::string_view a, std::string_view b);

// Does `topic` (a topic name or filter, taken as given) have more than `max_levels` levels?
// Levels are the count of '/' plus one: "" and "a" are 1 level, "/" and "a//" are 2 and 3
// (empty levels count). A shared filter is counted as the whole string; callers that want
// only the filter part pass parse_shared_filter()->filter. Does not allocate; stops at the
// first '/' past the limit, so a 65,535-level topic costs at most max_levels steps.
bool exceeds_topic_levels(std::string_view topic, uint32_t max_levels);

}  // namespace harbor::mqtt
