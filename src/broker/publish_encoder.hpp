// Encodes one delivery of a shared Message straight into a connection's output buffer,
// without building an intermediate mqtt::Publish (no copy of topic/payload into a packet
// struct). Per-delivery fields (QoS, DUP, RETAIN, packet id, subscription ids, remaining
// expiry) are written around the message's cached forward properties. Any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/message.hpp"
#include "mqtt/types.hpp"

namespace harbor::broker {

struct Delivery {
  mqtt::QoS qos = 0;
  bool dup = false;
  bool retain = false;
  uint16_t packet_id = 0;
  std::span<const uint32_t> subscription_ids;
  // Remaining Message Expiry Interval in seconds to send (5.0) [MQTT-3.3.2-6]; 0 = none.
  uint32_t expiry_remaining_s = 0;
  // 5.0 Topic Alias (0 = none). With alias_only the topic name is sent empty: the client
  // already has this alias for it on this connection [MQTT-3.3.2-12].
  uint16_t topic_alias = 0;
  bool alias_only = false;
  // The topic name to send instead of the message's (a bridge's remote topic); empty: the
  // message's own. Points into storage that outlives the encode call.
  std::string_view topic;
};

// Topic aliases the broker assigns for one connection's outbound PUBLISHes (MQTT 5 §3.3.2.3.4),
// within the client's Topic Alias Maximum and kOutboundTopicAliases. Policy: the first topics
// sent get the free aliases, one each, for the life of the connection; once all are taken, a
// new topic goes out in full without an alias (no replacement: a stream of ever-new topics
// then costs nothing extra, and a hot topic keeps its alias). Owner: the connection's shard.
inline constexpr uint16_t kOutboundTopicAliases = 32;
class OutboundAliases {
 public:
  explicit OutboundAliases(uint16_t client_maximum)
      : max_(client_maximum < kOutboundTopicAliases ? client_maximum : kOutboundTopicAliases) {}
  // The alias of `topic` if it has one (alias_only), else a new one if any is free (the
  // PUBLISH carries topic and alias), else nothing.
  void apply(const std::string& topic, Delivery& d, bool may_assign);
  size_t size() const { return by_topic_.size(); }

 private:
  uint16_t max_;
  std::unordered_map<std::string, uint16_t> by_topic_;
};

// Size in bytes of the whole packet that encode_publish would append.
size_t publish_packet_size(mqtt::Version v, const Message& m, const Delivery& d);

// Appends the PUBLISH packet to `out`.
void encode_publish(mqtt::Version v, const Message& m, const Delivery& d, std::string& out);

}  // namespace harbor::broker
