// The bridges.mqtt sections (config::BridgeSettings) as the bridge layer's own Spec
// (DESIGN.md §2: only app sees config types). Pure; any thread.
#pragma once

#include <vector>

#include "bridge/bridge.hpp"
#include "config/config.hpp"

namespace harbor::app {

// `cfg`: the mqtt {}, sqlite {} and bridges.mqtt.cache keys a bridge also follows.
bridge::Spec bridge_spec_from(const config::BridgeSettings& b, const config::Config& cfg);
// The enabled bridges, in file order.
std::vector<bridge::Spec> bridge_specs_from(const config::Config& cfg);

}  // namespace harbor::app
