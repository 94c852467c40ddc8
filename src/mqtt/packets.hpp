// The 15 MQTT control packets as plain value types, one struct per packet type.
// Shared by the 3.1/3.1.1 and 5.0 encodings: fields that a version lacks are ignored
// by its encoder (reason codes and properties in 3.1.1, for instance).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mqtt/properties.hpp"
#include "mqtt/types.hpp"

namespace harbor::mqtt {

struct Will {
  std::string topic;
  std::string payload;  // binary
  QoS qos = 0;
  bool retain = false;
  Properties props;  // will properties (5.0): delay, expiry, content type, ...
  bool operator==(const Will&) const = default;
};

struct Connect {
  Version version = Version::v311;
  std::string protocol_name = "MQTT";  // "MQIsdp" for 3.1
  bool clean_start = true;              // clean_session in 3.1.1
  uint16_t keep_alive = 60;
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  Properties props;
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  ReasonCode reason = ReasonCode::Success;  // 3.1.1: mapped with to_311_connack
  Properties props;
  bool operator==(const Connack&) const = default;
};

struct Publish {
  bool dup = false;
  QoS qos = 0;
  bool retain = false;
  std::string topic;       // may be empty in 5.0 when a topic alias is used
  uint16_t packet_id = 0;  // only when qos > 0
  Properties props;
  std::string payload;  // binary
  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one layout (sections 3.4 - 3.7).
struct PubAck {
  PacketType type = PacketType::Puback;  // Puback, Pubrec, Pubrel or Pubcomp
  uint16_t packet_id = 0;
  ReasonCode reason = ReasonCode::Success;
  Properties props;
  bool operator==(const PubAck&) const = default;
};

struct SubscribeTopic {
  std::string filter;
  QoS qos = 0;
  bool no_local = false;             // 5.0
  bool retain_as_published = false;  // 5.0
  uint8_t retain_handling = 0;       // 5.0: 0, 1 or 2
  bool operator==(const SubscribeTopic&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  Properties props;  // subscription identifier, user properties
  std::vector<SubscribeTopic> topics;
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  Properties props;
  // Granted QoS (0x00..0x02) or a failure code; 3.1.1 encodes any failure as 0x80.
  std::vector<ReasonCode> reasons;
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<std::string> filters;
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<ReasonCode> reasons;  // 5.0 only; 3.1.1 UNSUBACK has none
  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};

struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};

struct Disconnect {
  ReasonCode reason = ReasonCode::Success;
  Properties props;
  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  ReasonCode reason = ReasonCode::Success;
  Properties props;
  bool operator==(const Auth&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, PubAck, Subscribe, Suback, Unsubscribe,
                            Unsuback, Pingreq, Pingresp, Disconnect, Auth>;

PacketType packet_type(const Packet& p);

}  // namespace harbor::mqtt
