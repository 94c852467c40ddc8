// MQTT 5 properties per packet, given the way mosquitto_pub/sub 2.0.11 take them:
//   -D command identifier value        e.g. -D publish content-type text/plain
//   -D command user-property name value
// Commands and identifiers are matched case-insensitively. The error messages are
// mosquitto's, so scripts and habits carry over. Pure data, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "mqtt/properties.hpp"

namespace harbor::tools {

// The packets a -D can name and the tools send. A tool ignores the packets it never sends
// (sub ignores publish, pub ignores subscribe and unsubscribe), as mosquitto does.
enum class PropertyCommand : uint8_t { Connect, Publish, Subscribe, Unsubscribe, Disconnect, Will };

struct PacketProperties {
  mqtt::Properties connect;
  mqtt::Properties publish;
  mqtt::Properties subscribe;
  mqtt::Properties unsubscribe;
  mqtt::Properties disconnect;
  mqtt::Properties will;
  bool any = false;  // at least one -D was given

  mqtt::Properties& of(PropertyCommand c);
  const mqtt::Properties& of(PropertyCommand c) const;
};

// Adds one -D occurrence (`args` are the words after "-D") to `out`. Errors are usage errors
// with mosquitto's text, e.g. "Invalid property name given in --property argument.".
tl::expected<void, std::string> add_property_argument(const std::vector<std::string>& args,
                                                      PacketProperties& out);

// Copies every property set in `from` into `into`; a property that may appear only once and
// is set in both is an error naming it (e.g. --content-type and -D publish content-type).
// `packet` names the packet in the message ("PUBLISH").
tl::expected<void, std::string> merge_properties(const mqtt::Properties& from, mqtt::Properties& into,
                                                 std::string_view packet);

}  // namespace harbor::tools
