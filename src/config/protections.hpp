// Protections a configuration asks for that HarborMQ does not enforce yet (HTTP
// authentication, TLS). A missing protection must never pass silently: the broker refuses such a
// file at start and on reload, naming file, line and key. Pure; any thread.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "config/hocon.hpp"

namespace harbor::config {

// Every requested, unenforced protection in the merged, resolved tree, in file order.
// HTTP API authentication (http_server, Basic) is enforced; JWT is refused at load.
std::vector<ConfigError> find_unenforced_protections(const hocon::Value& root);

}  // namespace harbor::config
