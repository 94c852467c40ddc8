// Reading `bridges.mqtt`: one BridgeSettings per `bridges.mqtt.<name> {}` and the shared
// `bridges.mqtt.cache {}`, NanoMQ's keys with NanoMQ's meaning (docs/configuration.md
// "Bridges"). Transport settings we have no transport for (QUIC, TCP options) are accepted
// with one warning each; QUIC servers are refused. TLS servers take the bridge's `ssl {}`.
#include "config/bridges.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <vector>

#include "config/schema.hpp"
#include "config/units.hpp"
#include "config/value_readers.hpp"

namespace harbor::config {
namespace {

using hocon::Value;
using Result = tl::expected<void, ConfigError>;
using namespace readers;  // NOLINT(google-build-using-namespace): this file's own vocabulary

constexpr int64_t kU16Max = std::numeric_limits<uint16_t>::max();
constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kSecondMs = 1000;

constexpr std::string_view kNotActedOn = "accepted, not acted on";
constexpr uint16_t kTlsPort = 8883;

std::string describe(const Value& v) { return describe_value(v); }

// "unknown key, did you mean <parent>.<closest>?", the rest of the config's wording.
tl::unexpected<ConfigError> unknown_key(const Value& v, const std::string& parent,
                                        const std::string& field, BridgeKeyGroup group) {
  std::vector<std::string_view> candidates;
  for (const auto& k : bridge_keys(group)) {
    if (k.key.find('*') == std::string_view::npos) candidates.push_back(k.key);
    if (!k.alias.empty()) candidates.push_back(k.alias);
  }
  return error_at(
      v, parent + "." + field,
      "unknown key, did you mean " + parent + "." + closest_of(field, candidates) + "?");
}

tl::expected<uint8_t, ConfigError> as_qos(const Value& v, const std::string& key) {
  auto n = as_integer(v, key, 0, 2);
  if (!n) return tl::unexpected(n.error());
  return static_cast<uint8_t>(*n);
}

// NanoMQ's retain override: 0/1 (or false/true) set the flag, 2 keeps the message's.
tl::expected<std::optional<bool>, ConfigError> as_retain_override(const Value& v,
                                                                  const std::string& key) {
  if (v.kind == Value::Kind::Scalar && v.text == "2") return std::optional<bool>();
  auto b = as_bool(v, key);
  if (!b) return error_at(v, key, "expected 0, 1, 2 (keep) or true/false, got " + describe(v));
  return std::optional<bool>(*b);
}

enum class Scheme : uint8_t { Plain, Quic };

struct ParsedServer {
  Scheme scheme = Scheme::Plain;
  BridgeServer server;
};

// "mqtt-tcp://host:port" or "tcp://host:port" (port 1883 when left out), over TLS
// "tls+mqtt-tcp://", "mqtts://", "tls+tcp://" or "ssl://" (port 8883 when left out). QUIC
// is left to the caller (an error in `server`, skipped in `hybrid_servers`).
tl::expected<ParsedServer, ConfigError> parse_server(const Value& v, const std::string& key) {
  if (v.kind != Value::Kind::Scalar) {
    return error_at(v, key, "expected \"mqtt-tcp://host:port\", got " + describe(v));
  }
  const std::string& text = v.text;
  size_t sep = text.find("://");
  if (sep == std::string::npos) {
    return error_at(v, key, "expected mqtt-tcp://host:port, got \"" + text + "\"");
  }
  std::string scheme = lower(std::string_view(text).substr(0, sep));
  ParsedServer out;
  if (scheme == "tls+mqtt-tcp" || scheme == "mqtts" || scheme == "tls+tcp" || scheme == "ssl") {
    out.server.tls = true;
    out.server.port = kTlsPort;
  } else if (scheme == "mqtt-quic" || scheme == "quic" || scheme == "tls+mqtt-quic") {
    out.scheme = Scheme::Quic;
  } else if (scheme != "mqtt-tcp" && scheme != "tcp") {
    return error_at(v, key,
                    "unknown scheme \"" + scheme +
                        "://\"; use mqtt-tcp://host:port or tls+mqtt-tcp://host:port, got \"" +
                        text + "\"");
  }
  std::string_view rest = std::string_view(text).substr(sep + 3);
  std::string_view host;
  std::string_view port_text;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return error_at(v, key, "missing ']' after the IPv6 address, got \"" + text + "\"");
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return error_at(v, key, "expected :port after the address, got \"" + text + "\"");
      }
      port_text = after.substr(1);
    }
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos) {
      return error_at(v, key, "an IPv6 address needs brackets ([::1]:1883), got \"" + text + "\"");
    }
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
    if (colon != std::string_view::npos && port_text.empty()) {
      return error_at(v, key, "expected a port after ':', got \"" + text + "\"");
    }
  }
  if (host.empty()) return error_at(v, key, "expected a host, got \"" + text + "\"");
  if (host.find_first_of("/?#@ \t") != std::string_view::npos ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return error_at(v, key, "expected mqtt-tcp://host:port and nothing more, got \"" + text + "\"");
  }
  out.server.host = std::string(host);
  if (!port_text.empty()) {
    auto port = parse_integer(port_text);
    if (!port || *port < 1 || *port > kU16Max) {
      return error_at(v, key, "the port must be 1-65535, got \"" + text + "\"");
    }
    out.server.port = static_cast<uint16_t>(*port);
  }
  return out;
}

class Reader {
 public:
  Reader(Config& config, const BridgeReaderHooks& hooks) : config_(config), hooks_(hooks) {}

  Result read(const Value& mqtt) {
    const std::string base = "bridges.mqtt";
    if (!mqtt.is_object()) {
      return error_at(mqtt, base, "is a section: expected { ... }, got " + describe(mqtt));
    }
    std::set<std::string> names;
    for (const auto& field : mqtt.fields) {
      const std::string key = base + "." + field.key;
      if (field.key == "cache") {
        if (auto r = read_cache(field.value, key); !r) return r;
        continue;
      }
      if (field.key.empty()) {
        return error_at(field.value, key, "a bridge needs a name: bridges.mqtt.<name> { ... }");
      }
      if (field.key.find('.') != std::string::npos) {
        return error_at(field.value, key, "a bridge name must not hold '.'");
      }
      if (!field.value.is_object()) {
        return error_at(field.value, key,
                        "a bridge: expected { server = \"mqtt-tcp://host:port\", ... }, got " +
                            describe(field.value));
      }
      if (!names.insert(field.key).second) {
        return error_at(field.value, key, "a second bridge of this name");
      }
      if (auto r = read_bridge(field.key, field.value, key); !r) return r;
    }
    return {};
  }

 private:
  void warn(const std::string& key, const Value& v, const std::string& message) {
    hooks_.warn_once(key, v.origin, message);
  }
  void not_acted_on(const std::string& key, const Value& v, std::string_view why) {
    warn(key, v, std::string(kNotActedOn) + " (" + std::string(why) + ")");
  }
  void record(const std::string& key, const Value& v) { hooks_.record_origin(key, v.origin); }

  Result read_bridge(const std::string& name, const Value& object, const std::string& base) {
    BridgeSettings b;
    b.name = name;
    record(base, object);
    bool have_server = false;
    const Value* conn_properties = nullptr;
    const Value* ssl = nullptr;           // an enabled `ssl {}`
    const Value* ssl_disabled = nullptr;  // `ssl { enable = false }`
    for (const auto& f : object.fields) {
      const std::string key = base + "." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "server") {
        auto s = parse_server(v, key);
        if (!s) return tl::unexpected(s.error());
        if (s->scheme == Scheme::Quic) {
          return error_at(v, key,
                          "QUIC bridges are not supported; use mqtt-tcp:// or tls+mqtt-tcp://");
        }
        b.server = s->server;
        have_server = true;
      } else if (f.key == "enable") {
        r = set(b.enabled, as_bool(v, key));
      } else if (f.key == "proto_ver") {
        r = read_proto_ver(v, key, b);
      } else if (f.key == "clientid") {
        r = set(b.clientid, as_string(v, key));
      } else if (f.key == "keepalive") {
        r = read_keepalive(v, key, b);
      } else if (f.key == "clean_start") {
        r = set(b.clean_start, as_bool(v, key));
      } else if (f.key == "username") {
        r = set(b.username, as_string(v, key));
      } else if (f.key == "password") {
        r = set(b.password, as_string(v, key));
      } else if (f.key == "conn_properties") {
        conn_properties = &v;
        r = read_conn_properties(v, key, b.conn_properties);
      } else if (f.key == "will") {
        r = read_will(v, key, b);
      } else if (f.key == "forwards") {
        r = read_forwards(v, key, b);
      } else if (f.key == "subscription") {
        r = read_subscriptions(v, key, b);
      } else if (f.key == "backoff_max") {
        r = set(b.backoff_max, as_duration(v, key, kSecondMs, 100, kDayMs));
      } else if (f.key == "hybrid_servers") {
        r = read_hybrid_servers(v, key, b);
      } else if (f.key == "max_parallel_processes") {
        r = set_count(b.max_parallel_processes, v, key);
        not_acted_on(key, v, "one link per bridge; its window bounds what is in flight");
      } else if (f.key == "max_send_queue_len") {
        r = set_count(b.max_send_queue_len, v, key);
        not_acted_on(key, v, "the bridge's session queue is bounded by bridges.mqtt.cache.disk_cache_size");
      } else if (f.key == "max_recv_queue_len") {
        r = set_count(b.max_recv_queue_len, v, key);
        not_acted_on(key, v, "what the remote sends is read as fast as local receivers drain");
      } else if (f.key == "resend_interval") {
        r = set(b.resend_interval, as_duration(v, key, 1, 1, kDayMs));
      } else if (f.key == "resend_wait") {
        r = set(b.resend_wait, as_duration(v, key, 1, 1, kDayMs));
        not_acted_on(key, v, "unacknowledged messages are resent every resend_interval (MQTT 3.1.1) or on reconnect");
      } else if (f.key == "cancel_timeout") {
        r = set(b.cancel_timeout, as_duration(v, key, 1, 1, kDayMs));
        not_acted_on(key, v, "a message stays until the remote acknowledges it");
      } else if (f.key == "max_inflight") {
        auto n = as_integer(v, key, 0, kU16Max);
        if (n) b.max_inflight = static_cast<uint32_t>(*n);
        r = check(n);
      } else if (f.key == "transparent") {
        auto on = as_bool(v, key);
        if (on && *on) {
          not_acted_on(key, v,
                       "transparent bridging is not implemented; local subscriptions "
                       "are not proxied to the remote");
        }
        r = check(on);
      } else if (f.key.starts_with("quic_")) {
        not_acted_on(key, v, "QUIC transport");
      } else if (f.key == "hybrid_bridging") {
        auto on = as_bool(v, key);
        if (on) {
          not_acted_on(key, v,
                       "a bridge always fails over through hybrid_servers when that "
                       "list is not empty");
        }
        r = check(on);
      } else if (f.key == "sub_properties") {
        not_acted_on(key, v, "MQTT 5 SUBSCRIBE properties");
      } else if (f.key == "tcp") {
        not_acted_on(key, v, "TCP socket options");
      } else if (f.key == "retry_qos_0") {
        not_acted_on(key, v, "NanoMQ's QoS 0 caching switch");
      } else if (f.key == "ssl") {
        auto enabled = read_ssl(v, key, b.ssl);
        if (enabled) (*enabled ? ssl : ssl_disabled) = &v;
        r = check(enabled);
      } else {
        return unknown_key(v, base, f.key, BridgeKeyGroup::Bridge);
      }
      if (!r) return r;
      record(key, v);
    }
    if (!have_server) {
      return error_at(object, base + ".server",
                      "required: the remote broker, e.g. server = \"mqtt-tcp://127.0.0.1:1883\"");
    }
    if (auto r = check_tls(b, base, ssl, ssl_disabled); !r) return r;
    if (conn_properties != nullptr && b.proto_ver != 5) {
      not_acted_on(base + ".conn_properties", *conn_properties,
                   "MQTT 5 CONNECT properties are not sent by a proto_ver = 4 bridge");
    }
    config_.bridges.push_back(std::move(b));
    return {};
  }

  // `ssl { ... }`: true when enabled (`enable` is true or left out). Files are only named
  // here; the broker reads them when it starts (app/bridge_specs.cpp).
  tl::expected<bool, ConfigError> read_ssl(const Value& object, const std::string& base,
                                           BridgeTlsSettings& t) {
    if (!object.is_object()) {
      return error_at(object, base,
                      "expected { cacertfile = \"ca.pem\", ... }, got " + describe(object));
    }
    bool enabled = true;
    const Value* certfile = nullptr;
    const Value* keyfile = nullptr;
    const Value* key_password = nullptr;
    const Value* verify_peer = nullptr;
    for (const auto& f : object.fields) {
      const std::string key = base + "." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "enable") {
        r = set(enabled, as_bool(v, key));
      } else if (f.key == "cacertfile") {
        r = set(t.cacertfile, as_string(v, key));
      } else if (f.key == "certfile") {
        r = set(t.certfile, as_string(v, key));
        certfile = &v;
      } else if (f.key == "keyfile") {
        r = set(t.keyfile, as_string(v, key));
        keyfile = &v;
      } else if (f.key == "key_password") {
        r = set(t.key_password, as_string(v, key));
        key_password = &v;
      } else if (f.key == "verify_peer") {
        r = set(t.verify_peer, as_bool(v, key));
        verify_peer = &v;
      } else if (f.key == "fail_if_no_peer_cert") {
        r = check(as_bool(v, key));
        if (r) not_acted_on(key, v, "a server's setting; a bridge is the client");
      } else {
        return unknown_key(v, base, f.key, BridgeKeyGroup::Ssl);
      }
      if (!r) return tl::unexpected(r.error());
      record(key, v);
    }
    if (!enabled) {
      t = BridgeTlsSettings{};
      return false;
    }
    if (!t.certfile.empty() && t.keyfile.empty()) {
      return error_at(*certfile, base + ".keyfile",
                      "required with certfile: the certificate's private key (PEM)");
    }
    if (!t.keyfile.empty() && t.certfile.empty()) {
      return error_at(*keyfile, base + ".certfile",
                      "required with keyfile: the certificate that goes with the key (PEM)");
    }
    if (!t.key_password.empty() && t.keyfile.empty()) {
      return error_at(*key_password, base + ".key_password",
                      "given without keyfile: there is no key to decrypt");
    }
    if (!t.verify_peer) {
      warn(base + ".verify_peer", *verify_peer,
           "the remote's certificate is not verified: any server, a man in the middle too, is "
           "accepted");
    }
    return true;
  }

  // TLS servers need the ssl block enabled (or none); an enabled one needs a TLS server.
  static Result check_tls(const BridgeSettings& b, const std::string& base, const Value* ssl,
                          const Value* ssl_disabled) {
    const BridgeServer* tls_server = b.server.tls ? &b.server : nullptr;
    for (const auto& h : b.hybrid_servers)
      if (tls_server == nullptr && h.tls) tls_server = &h;
    if (tls_server != nullptr && ssl_disabled != nullptr) {
      const Value* enable = ssl_disabled;  // the `enable = false` line
      for (const auto& f : ssl_disabled->fields)
        if (f.key == "enable") enable = &f.value;
      return error_at(*enable, base + ".ssl.enable",
                      "is false, but the bridge dials " + tls_server->host + ":" +
                          std::to_string(tls_server->port) +
                          " over TLS; remove it or use mqtt-tcp://");
    }
    if (tls_server == nullptr && ssl != nullptr) {
      return error_at(*ssl, base + ".ssl",
                      "TLS settings, but no server of the bridge is a TLS one: use "
                      "tls+mqtt-tcp://host:port (or mqtts://) in server or hybrid_servers, or "
                      "set ssl.enable = false");
    }
    return {};
  }

  Result read_proto_ver(const Value& v, const std::string& key, BridgeSettings& b) {
    auto n = as_integer(v, key, 0, 255);
    if (!n) return tl::unexpected(n.error());
    if (*n == 3) return error_at(v, key, "MQTT 3.1 bridges are not supported; use 4 or 5");
    if (*n != 4 && *n != 5) {
      return error_at(v, key, "must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0), got " + std::to_string(*n));
    }
    b.proto_ver = static_cast<uint8_t>(*n);
    return {};
  }

  // Keep Alive is a two-byte count of seconds [MQTT-3.1.2.10].
  Result read_keepalive(const Value& v, const std::string& key, BridgeSettings& b) {
    auto ms = as_duration(v, key, kSecondMs, 0, kU16Max * kSecondMs);
    if (!ms) return tl::unexpected(ms.error());
    if (ms->count() % kSecondMs != 0) {
      return error_at(v, key,
                      "must be whole seconds (MQTT Keep Alive counts seconds), got " +
                          std::to_string(ms->count()) + "ms");
    }
    b.keepalive = std::chrono::duration_cast<std::chrono::seconds>(*ms);
    return {};
  }

  Result read_conn_properties(const Value& object, const std::string& base,
                              BridgeConnProperties& p) {
    if (!object.is_object()) {
      return error_at(object, base,
                      "expected { receive_maximum = ..., ... }, got " + describe(object));
    }
    // NanoMQ spells "infomation"; the correct spelling is taken too, but not both at once.
    std::string problem_spelling;
    std::string response_spelling;
    auto spelled_once = [&](std::string& seen, const std::string& key, const Value& v) -> Result {
      if (!seen.empty()) {
        return error_at(v, key, "set twice (also as " + base + "." + seen + ")");
      }
      seen = key.substr(base.size() + 1);
      return {};
    };
    for (const auto& f : object.fields) {
      const std::string key = base + "." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "maximum_packet_size") {
        r = set_u32(p.maximum_packet_size, v, key, 1, kU32Max);
      } else if (f.key == "receive_maximum") {
        auto n = as_integer(v, key, 1, kU16Max);
        if (n) p.receive_maximum = static_cast<uint16_t>(*n);
        r = check(n);
      } else if (f.key == "topic_alias_maximum") {
        auto n = as_integer(v, key, 0, kU16Max);
        if (n) p.topic_alias_maximum = static_cast<uint16_t>(*n);
        r = check(n);
      } else if (f.key == "request_problem_infomation" || f.key == "request_problem_information") {
        r = spelled_once(problem_spelling, key, v);
        if (r) r = set_flag(p.request_problem_information, v, key);
      } else if (f.key == "request_response_infomation" ||
                 f.key == "request_response_information") {
        r = spelled_once(response_spelling, key, v);
        if (r) r = set_flag(p.request_response_information, v, key);
      } else if (f.key == "session_expiry_interval") {
        r = set_u32(p.session_expiry_interval, v, key, 0, kU32Max);
      } else if (f.key == "user_property" || f.key == "user_properties") {
        r = read_user_properties(v, key, p.user_properties);
      } else {
        return unknown_key(v, base, f.key, BridgeKeyGroup::ConnProperties);
      }
      if (!r) return r;
    }
    return {};
  }

  Result read_user_properties(const Value& object, const std::string& key,
                              std::vector<std::pair<std::string, std::string>>& out) {
    if (!object.is_object()) {
      return error_at(object, key, "expected { name = value, ... }, got " + describe(object));
    }
    out.clear();
    for (const auto& f : object.fields) {
      auto value = as_string(f.value, key + "." + f.key);
      if (!value) return tl::unexpected(value.error());
      out.emplace_back(f.key, *value);
    }
    return {};
  }

  Result read_will(const Value& object, const std::string& base, BridgeSettings& b) {
    if (!object.is_object()) {
      return error_at(object, base,
                      "expected { topic = ..., payload = ... }, got " + describe(object));
    }
    BridgeWill will;
    bool have_topic = false;
    for (const auto& f : object.fields) {
      const std::string key = base + "." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "topic") {
        r = set(will.topic, as_topic_name(v, key, false));
        have_topic = true;
      } else if (f.key == "payload") {
        r = set(will.payload, as_string(v, key));
      } else if (f.key == "qos") {
        r = set(will.qos, as_qos(v, key));
      } else if (f.key == "retain") {
        r = set(will.retain, as_bool(v, key));
      } else if (f.key == "properties") {
        not_acted_on(key, v, "MQTT 5 Will properties");
      } else {
        return unknown_key(v, base, f.key, BridgeKeyGroup::Will);
      }
      if (!r) return r;
    }
    if (!have_topic) return error_at(object, base + ".topic", "required when a will is given");
    b.will = std::move(will);
    return {};
  }

  // The entries of `forwards` or `subscription`: a list of objects.
  static Result expect_entries(const Value& v, const std::string& key, std::string_view example) {
    if (v.kind != Value::Kind::Array) {
      return error_at(v, key,
                      "expected a list of { " + std::string(example) + " }, got " + describe(v));
    }
    for (size_t i = 0; i < v.items.size(); ++i) {
      if (!v.items[i].is_object()) {
        return error_at(v.items[i], key + "[" + std::to_string(i) + "]",
                        "expected { " + std::string(example) + " }, got " + describe(v.items[i]));
      }
    }
    return {};
  }

  Result read_forwards(const Value& list, const std::string& base, BridgeSettings& b) {
    constexpr std::string_view kExample = "local_topic = \"a/#\", remote_topic = \"b\"";
    if (auto r = expect_entries(list, base, kExample); !r) return r;
    b.forwards.clear();
    for (size_t i = 0; i < list.items.size(); ++i) {
      const Value& object = list.items[i];
      const std::string entry = base + "[" + std::to_string(i) + "]";
      BridgeForward fwd;
      bool have_local = false;
      for (const auto& f : object.fields) {
        const std::string key = entry + "." + f.key;
        const Value& v = f.value;
        Result r;
        if (f.key == "local_topic") {
          r = set(fwd.local_topic, as_filter(v, key));
          have_local = true;
        } else if (f.key == "remote_topic") {
          r = set(fwd.remote_topic, as_topic_name(v, key, true));
        } else if (f.key == "prefix") {
          r = set(fwd.prefix, as_topic_name(v, key, true));
        } else if (f.key == "suffix") {
          r = set(fwd.suffix, as_topic_name(v, key, true));
        } else if (f.key == "qos") {
          auto q = as_qos(v, key);
          if (q) fwd.qos = *q;
          r = check(q);
        } else if (f.key == "retain") {
          r = set(fwd.retain, as_retain_override(v, key));
        } else {
          return unknown_key(v, entry, f.key, BridgeKeyGroup::Forward);
        }
        if (!r) return r;
      }
      if (!have_local) {
        return error_at(object, entry + ".local_topic",
                        "required: the local topic filter to forward, e.g. local_topic = "
                        "\"sensors/#\"");
      }
      record(entry, object);
      b.forwards.push_back(std::move(fwd));
    }
    return {};
  }

  Result read_subscriptions(const Value& list, const std::string& base, BridgeSettings& b) {
    constexpr std::string_view kExample = "remote_topic = \"cmd/#\", qos = 1";
    if (auto r = expect_entries(list, base, kExample); !r) return r;
    b.subscriptions.clear();
    for (size_t i = 0; i < list.items.size(); ++i) {
      const Value& object = list.items[i];
      const std::string entry = base + "[" + std::to_string(i) + "]";
      BridgeSubscription sub;
      bool have_remote = false;
      for (const auto& f : object.fields) {
        const std::string key = entry + "." + f.key;
        const Value& v = f.value;
        Result r;
        if (f.key == "remote_topic") {
          r = set(sub.remote_topic, as_filter(v, key));
          have_remote = true;
        } else if (f.key == "local_topic") {
          r = set(sub.local_topic, as_topic_name(v, key, true));
        } else if (f.key == "prefix") {
          r = set(sub.prefix, as_topic_name(v, key, true));
        } else if (f.key == "suffix") {
          r = set(sub.suffix, as_topic_name(v, key, true));
        } else if (f.key == "qos") {
          r = set(sub.qos, as_qos(v, key));
        } else if (f.key == "nolocal" || f.key == "no_local") {
          r = set(sub.no_local, as_bool(v, key));
        } else if (f.key == "retain_as_published") {
          r = set(sub.retain_as_published, as_bool(v, key));
        } else if (f.key == "retain_handling") {
          auto n = as_integer(v, key, 0, 2);
          if (n) sub.retain_handling = static_cast<uint8_t>(*n);
          r = check(n);
        } else if (f.key == "retain") {
          auto retain = as_retain_override(v, key);
          if (retain) not_acted_on(key, v, "NanoMQ's override of the local retain flag");
          r = check(retain);
        } else {
          return unknown_key(v, entry, f.key, BridgeKeyGroup::Subscription);
        }
        if (!r) return r;
      }
      if (!have_remote) {
        return error_at(object, entry + ".remote_topic",
                        "required: the topic filter to subscribe to on the remote, e.g. "
                        "remote_topic = \"cmd/#\"");
      }
      record(entry, object);
      b.subscriptions.push_back(std::move(sub));
    }
    return {};
  }

  Result read_hybrid_servers(const Value& list, const std::string& key, BridgeSettings& b) {
    if (list.kind != Value::Kind::Array) {
      return error_at(list, key,
                      "expected a list of \"mqtt-tcp://host:port\", got " + describe(list));
    }
    b.hybrid_servers.clear();
    std::string skipped;
    for (size_t i = 0; i < list.items.size(); ++i) {
      auto s = parse_server(list.items[i], key + "[" + std::to_string(i) + "]");
      if (!s) return tl::unexpected(s.error());
      if (s->scheme == Scheme::Quic) {
        skipped += (skipped.empty() ? "\"" : ", \"") + list.items[i].text + "\"";
        continue;
      }
      b.hybrid_servers.push_back(s->server);
    }
    if (!skipped.empty()) {
      warn(key, list, "skipped " + skipped + " (QUIC bridges are not supported)");
    }
    return {};
  }

  Result read_cache(const Value& object, const std::string& base) {
    if (!object.is_object()) {
      return error_at(object, base,
                      "expected { disk_cache_size = ..., ... }, got " + describe(object));
    }
    BridgeCacheSettings& c = config_.bridge_cache;
    for (const auto& f : object.fields) {
      const std::string key = base + "." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "disk_cache_size") {
        auto n = as_integer(v, key, 0, std::numeric_limits<int64_t>::max());
        if (n) c.disk_cache_size = static_cast<uint64_t>(*n);
        r = check(n);
      } else if (f.key == "flush_mem_threshold") {
        r = set_count(c.flush_mem_threshold, v, key);
      } else if (f.key == "resend_interval") {
        r = set(c.resend_interval, as_duration(v, key, 1, 1, kDayMs));
        not_acted_on(key, v, "each bridge's own resend_interval is used");
      } else if (f.key == "mounted_file_path") {
        r = set(c.mounted_file_path, as_string(v, key));
        if (r) not_acted_on(key, v, "the bridges' cache lives in sqlite.mounted_file_path");
      } else {
        return unknown_key(v, base, f.key, BridgeKeyGroup::Cache);
      }
      if (!r) return r;
      record(key, v);
    }
    return {};
  }

  template <typename T, typename U>
  static Result set(T& out, tl::expected<U, ConfigError> value) {
    if (!value) return tl::unexpected(value.error());
    out = std::move(*value);
    return {};
  }
  template <typename T>
  static Result check(const tl::expected<T, ConfigError>& value) {
    if (!value) return tl::unexpected(value.error());
    return {};
  }
  static Result set_count(uint32_t& out, const Value& v, const std::string& key) {
    auto n = as_integer(v, key, 1, kU32Max);
    if (n) out = static_cast<uint32_t>(*n);
    return check(n);
  }
  static Result set_u32(std::optional<uint32_t>& out, const Value& v, const std::string& key,
                        int64_t min, int64_t max) {
    auto n = as_integer(v, key, min, max);
    if (n) out = static_cast<uint32_t>(*n);
    return check(n);
  }
  static Result set_flag(std::optional<uint8_t>& out, const Value& v, const std::string& key) {
    auto n = as_integer(v, key, 0, 1);
    if (n) out = static_cast<uint8_t>(*n);
    return check(n);
  }

  Config& config_;
  const BridgeReaderHooks& hooks_;
};

}  // namespace

tl::expected<void, ConfigError> read_mqtt_bridges(const hocon::Value& mqtt, Config& config,
                                                  const BridgeReaderHooks& hooks) {
  return Reader(config, hooks).read(mqtt);
}

std::string describe_bridges(const Config& config) {
  if (config.bridges.empty()) return "none";
  std::string out;
  for (const auto& b : config.bridges) {
    if (!out.empty()) out += ", ";
    bool v6 = b.server.host.find(':') != std::string::npos;
    out += b.name + " (" + (v6 ? "[" + b.server.host + "]" : b.server.host) + ":" +
           std::to_string(b.server.port) + (b.server.tls ? ", TLS" : "") +
           (b.enabled ? "" : ", disabled") + ")";
  }
  return out;
}

}  // namespace harbor::config
