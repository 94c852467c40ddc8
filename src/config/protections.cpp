#include "config/protections.hpp"

#include <string>

#include "config/units.hpp"

namespace harbor::config {
namespace {

constexpr std::string_view kLater =
    " is not implemented yet; HarborMQ refuses to start rather than run without it. Remove the "
    "setting to run unprotected on purpose.";

bool is_false(const hocon::Value& v) {
  return v.kind == hocon::Value::Kind::Scalar && parse_bool(v.text) == false;
}

// A listener section that is present and not switched off with enable/enabled = false.
bool listener_requested(const hocon::Value& v) {
  if (!v.is_object()) return true;
  for (const char* key : {"enable", "enabled"}) {
    if (const auto* e = v.find(key); e && is_false(*e)) return false;
  }
  return true;
}

ConfigError at(const hocon::Value& v, std::string key, std::string what) {
  return ConfigError{v.origin.file, v.origin.line, std::move(key), what + std::string(kLater)};
}

void check_tls_listeners(const hocon::Value& listeners, std::vector<ConfigError>& out) {
  if (!listeners.is_object()) return;
  for (const auto& f : listeners.fields) {
    if (f.key != "ssl" && f.key != "wss") continue;
    const std::string key = "listeners." + f.key;
    const char* what = f.key == "ssl"
                           ? "an additional MQTT over TLS listener (listeners.ssl.<name>)"
                           : "an additional secure WebSocket listener (listeners.wss.<name>)";
    // listeners.ssl and listeners.wss themselves are served (app/server.cpp).
    // NanoMQ's named listeners: listeners.ssl.<name> { ... }.
    if (!f.value.is_object()) continue;
    for (const auto& named : f.value.fields) {
      if (named.value.is_object() && listener_requested(named.value) &&
          named.value.find("bind") != nullptr) {
        out.push_back(at(named.value, key + "." + named.key, what));
      }
    }
  }
}

}  // namespace

std::vector<ConfigError> find_unenforced_protections(const hocon::Value& root) {
  std::vector<ConfigError> out;
  if (const auto* listeners = root.find("listeners")) check_tls_listeners(*listeners, out);
  if (const auto* authorization = root.find("authorization")) {
    out.push_back(at(*authorization, "authorization", "authorization rules"));
  }
  return out;
}

}  // namespace harbor::config
