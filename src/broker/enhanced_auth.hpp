// One connection's MQTT 5 enhanced authentication (Authentication Method in CONNECT,
// section 4.12): the exchange in progress and, once done, who the client proved to be.
// Owner: the connection's shard, through Link::enhanced_auth (null for a client that gave
// no Authentication Method, i.e. almost all of them).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "broker/scram.hpp"
#include "mqtt/packets.hpp"

namespace harbor::broker {

struct EnhancedAuth {
  std::string method;               // as the CONNECT named it; AUTH packets must repeat it
  std::optional<std::string> user;  // proven (the initial exchange succeeded)
  std::string claimed;              // the user named in the exchange in progress
  // The exchange in progress: the initial one or a re-authentication; null between them.
  std::unique_ptr<ScramServer> exchange;
  // Set when the user the client named has no usable password: the exchange goes on with
  // made-up credentials (the answers do not tell that the user is unknown) and fails.
  std::string_view doomed;
  // The CONNECT waiting for the initial exchange; null once it is handled.
  std::unique_ptr<mqtt::Connect> pending_connect;
  // server-final-message for the CONNACK that ends the initial exchange.
  std::optional<std::string> final_data;
};

}  // namespace harbor::broker
