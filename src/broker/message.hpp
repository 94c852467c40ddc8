// An immutable, reference-counted application message: one per accepted PUBLISH, shared by
// every subscriber queue, every shard and the store. Never mutated after construction, so
// any thread may read it; the refcount is atomic (std::shared_ptr).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mqtt/types.hpp"

namespace harbor::broker {

using SessionId = uint64_t;  // process-local id of a session; 0 = none
using MessageId = uint64_t;  // store id of a persisted message; 0 = not persisted

struct Message {
  std::string topic;
  std::string payload;
  mqtt::QoS qos = 0;
  bool retain = false;
  // MQTT 5 properties that travel with the message to subscribers, in wire encoding
  // without the length prefix: payload format, content type, response topic, correlation
  // data, user properties. Message expiry and subscription identifiers are not in here:
  // they are re-encoded per delivery.
  std::string forward_props;
  // Absolute expiry, Unix milliseconds; 0 = never [MQTT-3.3.2-5].
  int64_t expires_at_ms = 0;
  // Unix milliseconds when the broker accepted it (to compute the remaining expiry).
  int64_t received_at_ms = 0;
  SessionId origin = 0;  // publishing session, for No Local [MQTT-3.8.3-3]
  MessageId store_id = 0;
};

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace harbor::broker
