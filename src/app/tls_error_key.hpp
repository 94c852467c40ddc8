// Which TLS key of a config section an error of wire::TlsContext is about, from its wording
// (wire/tls.hpp: "cannot read CA file ...", "cannot read key file ...", "key file ... does
// not match ..."), so that the error names that key's file and line. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace harbor::app {

// `section`: "listeners.ssl", "bridges.mqtt.b.ssl", ...
inline std::string tls_error_key(std::string_view error, std::string_view section) {
  std::string_view key = "certfile";
  if (error.find("CA file") != std::string_view::npos ||
      error.find("trusted CAs") != std::string_view::npos)
    key = "cacertfile";
  else if (error.find("verify_peer") != std::string_view::npos)
    key = "verify_peer";
  else if (error.find("wrong key_password") != std::string_view::npos)
    key = "key_password";
  else if (error.find("key file") != std::string_view::npos ||
           error.find("keyfile") != std::string_view::npos)
    key = "keyfile";
  return std::string(section) + "." + std::string(key);
}

}  // namespace harbor::app
