// The bridges.mqtt sections (config::BridgeSettings) as the bridge layer's own Spec
// (DESIGN.md §2: only app sees config types). Any thread; bridge_specs_from reads the TLS
// bridges' certificate files, the rest is pure.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "bridge/bridge.hpp"
#include "config/config.hpp"

namespace harbor::app {

// `cfg`: the mqtt {}, sqlite {} and bridges.mqtt.cache keys a bridge also follows. The
// servers' TLS contexts are left null (see add_bridge_tls).
bridge::Spec bridge_spec_from(const config::BridgeSettings& b, const config::Config& cfg);
// Builds the client TLS context of each TLS server of `b` (b.ssl's files read now, once for
// all the bridge's dials) into `s`, made by bridge_spec_from(b, ...). An error names the
// ssl key (file and line) it is about, e.g. "t.conf:9: bridges.mqtt.b.ssl.cacertfile:
// cannot read CA file /x.pem: ...".
tl::expected<void, std::string> add_bridge_tls(const config::BridgeSettings& b,
                                               const config::Config& cfg, bridge::Spec& s);
// The enabled bridges, in file order, with their TLS contexts.
tl::expected<std::vector<bridge::Spec>, std::string> bridge_specs_from(const config::Config& cfg);

}  // namespace harbor::app
