// Internal to src/config: reading `bridges.mqtt` (NanoMQ's MQTT bridge keys) into
// Config::bridges and Config::bridge_cache, the bridge keys' documentation, and the short
// text reload messages show for them. Pure functions; any thread.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "config/config.hpp"
#include "config/hocon.hpp"

namespace harbor::config {

// What the bridge reader borrows from the Builder (config.cpp), so bridge keys get the same
// once-per-key warnings ("FILE:LINE: KEY: MESSAGE") and key origins as every other key.
struct BridgeReaderHooks {
  std::function<void(const std::string& key, const hocon::Origin&, const std::string& message)>
      warn_once;
  std::function<void(std::string_view key, const hocon::Origin&)> record_origin;
};

// Reads the object at `bridges.mqtt`: `cache` into config.bridge_cache, every other field
// into one BridgeSettings named by its key, appended to config.bridges in file order.
// Errors name the file, line and full key (`bridges.mqtt.emqx1.forwards[0].qos`).
tl::expected<void, ConfigError> read_mqtt_bridges(const hocon::Value& mqtt, Config& config,
                                                  const BridgeReaderHooks& hooks);

// A value as an error message shows it: "an object", "a list" or the quoted text
// (config.cpp; the bridge reader's errors read the same).
std::string describe_value(const hocon::Value& v);

// The bridges as short text for reload messages: "emqx1 (127.0.0.1:1883), b (h:8883, TLS)",
// "none" when there are none.
std::string describe_bridges(const Config& config);

// One documented key of a bridge, a forward, ... (drives "did you mean" and the docs).
struct BridgeKeyDoc {
  std::string_view key;
  std::string_view type;
  std::string_view default_value;
  std::string_view doc;
  bool acted_on = true;    // false: accepted with one warning, value not used
  std::string_view alias;  // another accepted spelling
};

enum class BridgeKeyGroup : uint8_t {
  Bridge,
  ConnProperties,
  Will,
  Forward,
  Subscription,
  Ssl,
  Cache
};

std::span<const BridgeKeyDoc> bridge_keys(BridgeKeyGroup group);

// The "Bridges" section of docs/configuration.md (render_markdown includes it).
std::string render_bridges_markdown();

}  // namespace harbor::config
