// Encodes one delivery of a shared Message straight into a connection's output buffer,
// without building an intermediate mqtt::Publish (no copy of topic/payload into a packet
// struct). Per-delivery fields (QoS, DUP, RETAIN, packet id, subscription ids, remaining
// expiry) are written around the message's cached forward properties. Any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

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
};

// Size in bytes of the whole packet that encode_publish would append.
size_t publish_packet_size(mqtt::Version v, const Message& m, const Delivery& d);

// Appends the PUBLISH packet to `out`.
void encode_publish(mqtt::Version v, const Message& m, const Delivery& d, std::string& out);

}  // namespace harbor::broker
