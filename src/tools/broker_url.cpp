#include "tools/broker_url.hpp"

#include <charconv>

namespace harbor::tools {

namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != prefix[i]) return false;
  }
  return true;
}

tl::unexpected<std::string> fail(std::string text) { return tl::unexpected(std::move(text)); }

}  // namespace

tl::expected<BrokerUrl, std::string> parse_broker_url(std::string_view url) {
  BrokerUrl out;
  struct Scheme {
    std::string_view prefix;
    uint16_t port;
    bool tls;
    bool websocket;
  };
  static constexpr Scheme kSchemes[] = {{"mqtt://", 1883, false, false},
                                        {"mqtts://", 8883, true, false},
                                        {"ws://", 8083, false, true},
                                        {"wss://", 8084, true, true}};
  const Scheme* scheme = nullptr;
  for (const auto& s : kSchemes) {
    if (starts_with_nocase(url, s.prefix)) scheme = &s;
  }
  if (!scheme) return fail("unsupported URL scheme (use mqtt://, mqtts://, ws:// or wss://).");
  out.port = scheme->port;
  out.tls = scheme->tls;
  out.websocket = scheme->websocket;
  std::string_view rest = url.substr(scheme->prefix.size());

  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size())
    return fail("Invalid URL for -L argument specified - topic missing.");
  out.topic = std::string(rest.substr(slash + 1));
  std::string_view authority = rest.substr(0, slash);

  // The last '@' ends the user information, so a password may contain '@'.
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      out.username = std::string(userinfo.substr(0, colon));
      out.password = std::string(userinfo.substr(colon + 1));
    } else {
      out.username = std::string(userinfo);
    }
  }

  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {  // [IPv6]:port
    auto close = host.find(']');
    if (close == std::string_view::npos) return fail("Invalid URL for -L argument specified - unclosed '[' in host.");
    std::string_view after = host.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("Invalid URL for -L argument specified - bad host.");
      port = after.substr(1);
      if (port.empty()) return fail("Invalid URL for -L argument specified - empty port.");
    }
    host = host.substr(1, close - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) return fail("Invalid URL for -L argument specified - empty port.");
  }
  if (host.empty()) return fail("Invalid URL for -L argument specified - host missing.");
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return fail("Invalid URL for -L argument specified - bad port '" + std::string(port) + "'.");
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

}  // namespace harbor::tools
