// The fuzzer's own picture of what the broker may do (tests/fuzz/fuzz_broker.cpp): topic
// matching written independently of src/, the clients' sessions as the clients see them,
// and every message ever published with where it may be delivered and how often.
// The model over-approximates the broker: whatever it allows is a superset of what a correct
// broker can do, so a delivery outside it is a broker bug, never a false alarm. See the
// header of fuzz_broker.cpp for the invariants this supports.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace harbor::broker::fuzz {

// ---------------------------------------------------------------- topics

inline std::vector<std::string_view> topic_levels(std::string_view s) {
  std::vector<std::string_view> levels;
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      levels.push_back(s.substr(start));
      return levels;
    }
    levels.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

// Does the plain (not shared) `filter` match topic name `topic`? An invalid filter matches
// nothing. A leading wildcard does not match a topic starting with '$' [MQTT-4.7.2-1]; "a/#"
// also matches "a" [MQTT-4.7.1-2].
inline bool filter_matches(std::string_view filter, std::string_view topic) {
  if (filter.empty() || topic.empty()) return false;
  const auto f = topic_levels(filter);
  const auto t = topic_levels(topic);
  if (topic.front() == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return i + 1 == f.size();
    if (f[i] != "+" && f[i].find_first_of("+#") != std::string_view::npos) return false;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

// The filter of a "$share/group/filter" subscription, std::nullopt for a plain one. A shared
// filter with an empty or wildcard group keeps an empty filter (matches nothing).
inline std::optional<std::string_view> shared_part(std::string_view filter) {
  constexpr std::string_view kPrefix = "$share/";
  if (!filter.starts_with(kPrefix)) return std::nullopt;
  const std::string_view rest = filter.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::string_view{};
  const std::string_view group = rest.substr(0, slash);
  if (group.find_first_of("+#") != std::string_view::npos) return std::string_view{};
  return rest.substr(slash + 1);
}

// ---------------------------------------------------------------- sessions, client side

// A broker-to-client QoS 1/2 flow the client knows is in flight: it received the PUBLISH and
// has not delivered to the broker the acknowledgement that ends it.
struct InflightOut {
  std::string payload;
  uint8_t qos = 1;
  bool pubrec_delivered = false;  // QoS 2: the broker processed a successful PUBREC
  bool pubrel_seen = false;       // QoS 2: the broker sent PUBREL
  uint64_t last_link = 0;         // connection it was last received on
  // First seen as a DUP=1 resend: the broker may have sent it for a flow already over, so
  // the checks that need it to be in flight at the broker skip it.
  bool uncertain = false;
};

// A client-to-broker QoS 1/2 flow, as the (well-behaved) publisher keeps it.
enum class OwnState : uint8_t {
  AwaitPuback,  // QoS 1 sent
  AwaitPubrec,  // QoS 2 sent
  GotPubrec,    // QoS 2: PUBREC received, PUBREL owed
  Released,     // QoS 2: PUBREL sent, PUBCOMP awaited
};
struct OwnFlow {
  std::string payload;
  std::string topic;
  uint8_t qos = 1;
  bool retain = false;
  OwnState state = OwnState::AwaitPuback;
};

// One broker session as its client sees it: starts with a CONNACK saying session_present=0
// and lasts while later CONNACKs say 1.
struct Epoch {
  int slot = -1;           // client slot (its client id), or the slot an assigned id used
  bool anonymous = false;  // the broker assigned the client id: never resumed
  std::map<std::string, bool> subs;  // filter -> no_local, as last subscribed
  std::vector<std::pair<size_t, std::string>> sub_history;  // (step, filter) of SUBSCRIBEs
  std::map<uint16_t, InflightOut> inflight;
  std::map<uint16_t, OwnFlow> own;
  // Ids the client acknowledged without having received them (a wrong or early ack).
  std::set<uint16_t> clouded;
  // A CONNECT with a small Maximum Packet Size let the broker discard in-flight messages
  // that no longer fit [MQTT-3.1.2-25]: the packet-id bookkeeping of this session is no
  // longer exact, and the checks that need it are off.
  bool tainted = false;
};

// How many times a message may be delivered to `epoch` through one subscription route:
// its non-shared subscriptions together are one route [MQTT-3.3.4-2]; each shared
// subscription is one more. No Local excludes the publisher's own session [MQTT-3.8.3-3].
inline int routes_to(const Epoch& e, int epoch_id, std::string_view topic, int origin_epoch) {
  int plain = 0;
  int shared = 0;
  for (const auto& [filter, no_local] : e.subs) {
    if (auto inner = shared_part(filter)) {
      if (filter_matches(*inner, topic)) ++shared;
    } else if (filter_matches(filter, topic) && !(no_local && epoch_id == origin_epoch)) {
      plain = 1;
    }
  }
  return plain + shared;
}

// ---------------------------------------------------------------- messages

// Every message, identified by its payload (unique per PUBLISH op and per will).
// Each PUBLISH of it that the broker may route adds the routes it had at that moment. A
// QoS 2 flow is routed at most once however often the publisher resends it [MQTT-4.3.3-9]:
// its sends form one segment whose bound is the most routes any of them had. A QoS 0/1
// send, and a QoS 2 resend after the broker may have forgotten the flow, starts a segment.
struct MsgRecord {
  std::string topic;
  uint8_t qos = 0;
  bool retain = false;
  bool is_will = false;
  int origin_epoch = -1;
  size_t first_step = 0;
  std::set<int> allowed;         // epochs a live (non-retained) delivery may go to
  std::map<int, int> bound_closed;  // per epoch: deliveries allowed by finished segments
  std::map<int, int> segment_max;   // per epoch: most routes of a send in this segment
  std::map<int, int> flows;         // per epoch: new deliveries seen
  bool new_segment = true;          // the next send starts a segment
  int64_t segment_start_ms = 0;

  int bound(int epoch) const {
    auto a = bound_closed.find(epoch);
    auto b = segment_max.find(epoch);
    return (a == bound_closed.end() ? 0 : a->second) + (b == segment_max.end() ? 0 : b->second);
  }
  // Counted: non-retained messages only (a retained one is sent again on every SUBSCRIBE).
  bool counted() const { return !retain; }
};

}  // namespace harbor::broker::fuzz
