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

// auth {} is enforced (config/auth.cpp, broker/access_control.hpp) except http_auth's
// acl_req (HTTP authorisation of each publish and subscribe).
void check_auth(const hocon::Value& auth, std::vector<ConfigError>& out) {
  if (!auth.is_object()) return;
  if (const auto* http = auth.find("http_auth"); http && http->is_object()) {
    if (const auto* acl = http->find("acl_req")) {
      out.push_back(
          at(*acl, "auth.http_auth.acl_req", "HTTP authorisation of each publish and subscribe"));
    }
  }
}

}  // namespace

std::vector<ConfigError> find_unenforced_protections(const hocon::Value& root) {
  std::vector<ConfigError> out;
  if (const auto* auth = root.find("auth")) check_auth(*auth, out);
  if (const auto* authorization = root.find("authorization")) {
    out.push_back(at(*authorization, "authorization", "authorization rules"));
  }
  return out;
}

}  // namespace harbor::config
