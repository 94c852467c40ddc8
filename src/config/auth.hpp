// Internal to src/config: reading the `auth {}` section into Config::auth (auth_settings.hpp):
// NanoMQ's keys, its password and ACL files (inline, included or named by path), and
// Mosquitto's password file (`auth.password_file`, ours). Pure; any thread.
#pragma once

#include <tl/expected.hpp>

#include "config/bridges.hpp"
#include "config/config.hpp"
#include "config/hocon.hpp"

namespace harbor::config {

// Errors name the file, line and full key (`auth.acl.rules[2].permit`); a password file's
// errors name that file and line. `http_auth` is accepted here and refused by the
// protections check until HTTP authentication exists.
tl::expected<void, ConfigError> read_auth(const hocon::Value& auth, Config& config,
                                          const BridgeReaderHooks& hooks);

// The "Authentication and ACL" section of docs/configuration.md.
std::string render_auth_markdown();

// "auth (password: N user(s), acl: N rule(s), ...)" for reload messages; "none".
std::string describe_auth(const Config& config);

}  // namespace harbor::config
