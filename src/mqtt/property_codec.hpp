// Internal to src/mqtt: reading a 5.0 property block with the per-packet rules of
// section 2.2.2.2 (which identifiers a packet may carry, which may repeat).
#pragma once

#include <cstdint>

#include "mqtt/byte_reader.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/types.hpp"

namespace harbor::mqtt::detail {

// Where a property block sits: a packet type, or the will properties of CONNECT.
enum class PropertyContext : uint8_t {
  Will = 0,
  Connect = 1,
  Connack = 2,
  Publish = 3,
  PubAck = 4,  // PUBACK, PUBREC, PUBREL and PUBCOMP allow the same set
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Disconnect = 14,
  Auth = 15,
};

// User Properties one packet may still carry (mqtt.property_size). Shared by every property
// block of a packet (CONNECT: its own and the will's).
struct UserPropertyBudget {
  uint32_t max = 0xFFFFFFFF;
  uint32_t used = 0;
};

// Reads the property length and the properties into `out`. Errors are recorded in `r`:
// an identifier unknown or not allowed here → MalformedPacket (section 2.2.2.2); a property
// that may appear once appearing twice → ProtocolError; out-of-range values → ProtocolError;
// a User Property beyond `budget` → ImplementationSpecificError, before it is stored.
void read_properties(ByteReader& r, Properties& out, PropertyContext where,
                     UserPropertyBudget& budget);

}  // namespace harbor::mqtt::detail
