// Internal to src/config: NanoMQ's named listeners (`listeners.tcp.<name> { bind = ... }`,
// and likewise ws, ssl, wss) into Config::named_listeners, the check that no two listeners
// share an address, their reload diff and merge, and their documentation. Pure; any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "config/config.hpp"
#include "config/hocon.hpp"
#include "config/schema.hpp"

namespace harbor::config {

// What the listener reader borrows from the Builder (config.cpp): `apply_row` converts
// `value` by `row` exactly as a file value of `key` (errors name the file, line and `key`)
// and applies it to `scratch`; `record_origin` as for every other key.
struct ListenerReaderHooks {
  std::function<tl::expected<void, ConfigError>(const SchemaRow& row, const std::string& key,
                                                const hocon::Value& value, Config& scratch)>
      apply_row;
  std::function<void(std::string_view key, const hocon::Origin&)> record_origin;
};

// The kind whose unnamed section is `section` ("listeners.ssl"), if it is one of the four.
std::optional<ListenerKind> listener_kind_of(std::string_view section);
// "listeners.tcp", "listeners.ws", "listeners.ssl", "listeners.wss".
std::string_view listener_section(ListenerKind kind);
// "tcp", "ws", "ssl", "wss".
std::string_view listener_kind_name(ListenerKind kind);

// Whether the unnamed listener of a present `listeners.<kind>` section is asked for (NanoMQ's
// presence rule): the section is empty or sets a key of its own. A section that holds only
// named listeners (`listeners.ssl.extra { ... }`) does not switch the unnamed one on.
bool unnamed_listener_present(const hocon::Value& section);

// Reads `listeners.<kind>.<name>` (an object) and appends it to config.named_listeners.
// Errors name the file, line and full key (`listeners.ssl.extra.verify_peer`): an unknown
// key (with "did you mean"), a bad value, a missing bind, an ssl listener without certfile
// and keyfile, a wss listener that sets TLS options but has no certificate of its own.
tl::expected<void, ConfigError> read_named_listener(ListenerKind kind, const std::string& name,
                                                    const hocon::Value& section, Config& config,
                                                    const ListenerReaderHooks& hooks);

// Two enabled listeners (named or not) on one address (the same host and port, or the same
// port with a wildcard host; port 0 never clashes): an error at the second's bind naming both
// keys and where they were set.
tl::expected<void, ConfigError> check_listener_addresses(const Config& config);

// Every named listener of `config`, enabled or not: tcp, ws, ssl, then wss, each kind in
// file order.
std::vector<const NamedListener*> named_listeners_of(const Config& config);

// Reload: appends to `out` one change (not reloadable) per named listener added, removed, or
// with another bind, path or enable, and one (reloadable) per certificate key that differs
// on a named ssl/wss listener present in both.
void diff_named_listeners(const Config& before, const Config& after, std::vector<KeyChange>& out);
// Reload: `merged` (a copy of `fresh`) gets `running`'s named listeners, each with `fresh`'s
// certificate keys when `fresh` has it too, and the matching key origins.
void keep_running_listeners(const Config& running, const Config& fresh, Config& merged);

// The "Named listeners" section of docs/configuration.md (render_markdown includes it).
std::string render_listeners_markdown();

}  // namespace harbor::config
