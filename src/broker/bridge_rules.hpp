// The forwarding rules of a bridge session (a persistent session whose connection the
// broker dials: src/bridge/). Which local messages it takes is its subscriptions; these
// rules say what topic and retain flag each one carries to the remote.
// Immutable once built; shared by the session and the bridge (any thread may read).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/subscription_tree.hpp"

namespace harbor::broker {

// Client ids of bridge sessions start with this; a client's CONNECT with such an id is
// refused (0x85), so nobody can take a bridge's queue over.
inline constexpr std::string_view kBridgeClientPrefix = "$harbormq/bridge/";

struct BridgeForwardRule {
  std::string filter;        // local topic filter
  std::string remote_topic;  // replaces the topic when not empty
  std::string prefix;
  std::string suffix;
  std::optional<bool> retain;  // replaces the retain flag when set
  mqtt::QoS qos = 2;           // the subscription's QoS: at most this on the remote
};

struct BridgeRules {
  std::string name;
  std::vector<BridgeForwardRule> forwards;
  // Messages its queue holds at most (in memory and on disk), in place of mqtt.max_mqueue_len:
  // bridges.mqtt.cache.disk_cache_size with the store on, mqtt.max_mqueue_len without it.
  // 0 = unbounded. Full: new messages are dropped, counted, logged once (as for a session).
  uint64_t max_queued = 0;
  std::string max_queued_key = "bridges.mqtt.cache.disk_cache_size";  // for the log line
  // Entries of its queue held in memory (bridges.mqtt.cache.flush_mem_threshold); 0: the
  // sessions' (sqlite.flush_mem_threshold).
  uint32_t queue_head = 0;
  // MQTT 3.1.1: resend of unacknowledged messages while the link is up (the bridge's
  // resend_interval); 0: mqtt.retry_interval.
  int64_t retry_interval_ms = 0;

  std::string client_id() const { return std::string(kBridgeClientPrefix) + name; }
  // The first rule whose filter matches `topic` (file order), or nullptr.
  const BridgeForwardRule* rule_for(std::string_view topic) const;
  // The remote topic of a local one under `rule`: prefix + (remote_topic or topic) + suffix.
  static void remote_topic(const BridgeForwardRule& rule, std::string_view topic, std::string& out);
  // The subscription a rule stands for: no_local, so what the bridge itself publishes
  // locally (from the remote) never goes back; retain as published; no retained messages
  // sent when it is made (a restart would send them all again).
  static SubscriptionOptions options(const BridgeForwardRule& rule);
};

}  // namespace harbor::broker
