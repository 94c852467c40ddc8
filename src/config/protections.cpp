#include "config/protections.hpp"

#include <string>

#include "config/units.hpp"

namespace harbor::config {
namespace {

constexpr std::string_view kLater =
    " is not implemented yet; HarborMQ refuses to start rather than run without it. Remove the "
    "setting to run unprotected on purpose.";

ConfigError at(const hocon::Value& v, std::string key, std::string what) {
  return ConfigError{v.origin.file, v.origin.line, std::move(key), what + std::string(kLater)};
}

}  // namespace

// auth {} (config/auth.cpp, broker/access_control.hpp, broker/http_acl.cpp) and every
// listener, named ones included (app/server.cpp), are enforced: only NanoMQ's
// `authorization` section is left.
std::vector<ConfigError> find_unenforced_protections(const hocon::Value& root) {
  std::vector<ConfigError> out;
  if (const auto* authorization = root.find("authorization")) {
    out.push_back(at(*authorization, "authorization", "authorization rules"));
  }
  return out;
}

}  // namespace harbor::config
