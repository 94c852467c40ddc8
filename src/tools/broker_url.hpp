// `-L URL` of pub and sub, as mosquitto_pub/sub take it:
//   mqtt://[username[:password]@]host[:port]/topic      (port 1883 by default)
//   mqtts://...  TLS (port 8883 by default), as mosquitto_pub/sub take it;
//   ws://...     MQTT over WebSocket (port 8083), wss://... over TLS (port 8084): ours, with
//                the WebSocket path "/mqtt" (NanoMQ's listeners.ws default; --ws PATH
//                names another).
// The scheme is matched case-insensitively; the topic is everything after the first '/'
// following the host. Pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace harbor::tools {

struct BrokerUrl {
  std::string host;
  uint16_t port = 1883;
  bool tls = false;        // mqtts://, wss://
  bool websocket = false;  // ws://, wss://
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string topic;
};

// Errors are usage messages, mosquitto's where it has one ("unsupported URL scheme.").
tl::expected<BrokerUrl, std::string> parse_broker_url(std::string_view url);

}  // namespace harbor::tools
