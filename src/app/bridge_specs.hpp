// The bridges.mqtt sections (config::BridgeSettings) as the bridge layer's own Spec
// (DESIGN.md §2: only app sees config types). Pure; any thread.
#pragma once

#include <vector>

#include "bridge/bridge.hpp"
#include "config/config.hpp"

namespace harbor::app {

bridge::Spec bridge_spec_from(const config::BridgeSettings& b, uint32_t max_inflight_window);
// The enabled bridges, in file order.
std::vector<bridge::Spec> bridge_specs_from(const config::Config& cfg);

}  // namespace harbor::app
