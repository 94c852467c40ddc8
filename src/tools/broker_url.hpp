// `-L URL` of pub and sub, as mosquitto_pub/sub take it:
//   mqtt://[username[:password]@]host[:port]/topic      (port 1883 by default)
// The scheme is matched case-insensitively; the topic is everything after the first '/'
// following the host. mqtts:// is refused: the tools do not speak TLS yet. Pure function.
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
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string topic;
};

// Errors are usage messages, mosquitto's where it has one ("unsupported URL scheme.").
tl::expected<BrokerUrl, std::string> parse_broker_url(std::string_view url);

}  // namespace harbor::tools
