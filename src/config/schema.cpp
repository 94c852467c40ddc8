#include "config/schema.hpp"

#include <algorithm>
#include <array>
#include <limits>

#include "config/auth.hpp"
#include "config/bridges.hpp"
#include "config/listeners.hpp"

namespace harbor::config {
namespace {

constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr int64_t kU16Max = std::numeric_limits<uint16_t>::max();
constexpr int64_t kDayMs = 86'400'000;
// MQTT's largest packet: a 5-byte fixed header plus 268,435,455 bytes of remaining length
// [MQTT-2.2.3]. NanoMQ documents "1 Byte - 260 MB" for the same limit.
constexpr int64_t kMqttMaxPacket = 268'435'455 + 5;

std::string show_bool(bool b) { return b ? "true" : "false"; }
std::string show_ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + "ms"; }
std::string show_double(double d) {
  std::string s = std::to_string(d);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}
// mqtt.shared_subscription_strategy, in the order of SharedStrategy.
constexpr std::array<std::string_view, 5> kSharedStrategies = {
    "round_robin", "random", "sticky", "hash_clientid", "hash_topic"};
std::string_view shared_strategy_name(SharedStrategy s) {
  return kSharedStrategies[static_cast<size_t>(s)];
}
SharedStrategy shared_strategy_of(std::string_view name) {  // one of the row's choices
  const auto* it = std::find(kSharedStrategies.begin(), kSharedStrategies.end(), name);
  const auto index = it == kSharedStrategies.end() ? 0 : it - kSharedStrategies.begin();
  return static_cast<SharedStrategy>(index);
}
std::string show_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items) out += (out.size() > 1 ? ", " : "") + item;
  return out + "]";
}

// Rows are grouped by section in the order the docs list them.
const std::array kRows = {
    // listeners.tcp
    SchemaRow{.key = "listeners.tcp.enable",
              .type = ValueType::Bool,
              .default_value = "true",
              .reloadable = false,
              .ours = false,
              .doc = "Accept plain MQTT over TCP. NanoMQ's classic spelling; `enabled` is "
                     "accepted too. See \"Named listeners\" for more TCP listeners "
                     "(`listeners.tcp.<name> { bind = ... }`).",
              .alias = "enabled",
              .apply = [](Config& c, const Typed& v) { c.tcp.enabled = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.tcp.enabled); }},
    SchemaRow{.key = "listeners.tcp.bind",
              .type = ValueType::Address,
              .default_value = "\"127.0.0.1:1883\"",
              .reloadable = false,
              .ours = false,
              .doc = "Address and port of the MQTT/TCP listener. The default listens on "
                     "loopback only; `0.0.0.0:1883` opens it to every network (NanoMQ's "
                     "files say so explicitly).",
              .apply = [](Config& c, const Typed& v) { c.tcp.bind = v.text; },
              .show = [](const Config& c) -> std::string { return c.tcp.bind; }},
    // listeners.ws
    SchemaRow{.key = "listeners.ws.enable",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = false,
              .ours = false,
              .doc = "Accept MQTT over WebSocket (binary frames, subprotocol `mqtt`). As in "
                     "NanoMQ, a `listeners.ws {}` section that is present is enabled; without "
                     "one there is no WebSocket listener (one holding only named listeners "
                     "does not count). `enabled` is accepted too.",
              .alias = "enabled",
              .apply = [](Config& c, const Typed& v) { c.ws.enabled = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.ws.enabled); }},
    SchemaRow{.key = "listeners.ws.bind",
              .type = ValueType::UrlAddress,
              .default_value = "\"127.0.0.1:8083/mqtt\"",
              .reloadable = false,
              .ours = false,
              .doc = "Address, port and HTTP path of the MQTT/WebSocket listener, NanoMQ's "
                     "`host:port/path`; without a path, `/mqtt` (what MQTT.js and paho use). "
                     "An upgrade request for another path is answered 404. The query string "
                     "is ignored. The upgrade must complete, and CONNECT follow, within "
                     "`mqtt.connect_timeout`.",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.ws.bind = v.text;
                    c.ws.path = v.path;
                  },
              .show = [](const Config& c) -> std::string { return c.ws.bind + c.ws.path; }},
    // listeners.ssl
    SchemaRow{.key = "listeners.ssl.enable",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = false,
              .ours = false,
              .doc = "Accept MQTT over TLS (TLS 1.2 and 1.3). As in NanoMQ, a "
                     "`listeners.ssl {}` section that is present is enabled; without one there "
                     "is no TLS listener (one holding only named listeners, "
                     "`listeners.ssl.<name> { ... }`, does not count). `enabled` is accepted "
                     "too. See \"Named listeners\" for more TLS listeners.",
              .alias = "enabled",
              .apply = [](Config& c, const Typed& v) { c.ssl.enabled = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.ssl.enabled); }},
    SchemaRow{.key = "listeners.ssl.bind",
              .type = ValueType::Address,
              .default_value = "\"127.0.0.1:8883\"",
              .reloadable = false,
              .ours = false,
              .doc = "Address and port of the MQTT/TLS listener. The default listens on "
                     "loopback only, like `listeners.tcp.bind` (NanoMQ's is `0.0.0.0:8883`; "
                     "its files set it explicitly). The TLS handshake must complete, and "
                     "CONNECT follow, within `mqtt.connect_timeout`.",
              .apply = [](Config& c, const Typed& v) { c.ssl.bind = v.text; },
              .show = [](const Config& c) -> std::string { return c.ssl.bind; }},
    SchemaRow{.key = "listeners.ssl.certfile",
              .type = ValueType::String,
              .default_value = "\"\"",
              .reloadable = true,
              .ours = false,
              .doc = "PEM file with the server's certificate, then its chain (leaf first). "
                     "Required with the listener, and with `listeners.wss` (which serves this "
                     "certificate, as in NanoMQ). Re-read on every reload: new connections "
                     "get the new certificate, open ones keep theirs; a reload with a file "
                     "that cannot be used is refused and the old certificate stays.",
              .apply = [](Config& c, const Typed& v) { c.ssl.certfile = v.text; },
              .show = [](const Config& c) -> std::string { return c.ssl.certfile; }},
    SchemaRow{.key = "listeners.ssl.keyfile",
              .type = ValueType::String,
              .default_value = "\"\"",
              .reloadable = true,
              .ours = false,
              .doc = "PEM file with the certificate's private key, encrypted (see "
                     "`key_password`) or not. Required with the listener and with "
                     "`listeners.wss`; re-read on reload.",
              .apply = [](Config& c, const Typed& v) { c.ssl.keyfile = v.text; },
              .show = [](const Config& c) -> std::string { return c.ssl.keyfile; }},
    SchemaRow{.key = "listeners.ssl.key_password",
              .type = ValueType::String,
              .default_value = "\"\"",
              .reloadable = true,
              .ours = false,
              .doc = "Password of an encrypted `keyfile`; empty: the key is not encrypted. "
                     "Never shown (reload reports print `******`).",
              .apply = [](Config& c, const Typed& v) { c.ssl.key_password = v.text; },
              .show = [](const Config& c) -> std::string {
                return c.ssl.key_password.empty() ? std::string() : std::string("******");
              }},
    SchemaRow{.key = "listeners.ssl.cacertfile",
              .type = ValueType::String,
              .default_value = "\"\"",
              .reloadable = true,
              .ours = false,
              .doc = "PEM file with the CAs that client certificates are verified against; "
                     "required with `verify_peer`. Re-read on reload.",
              .apply = [](Config& c, const Typed& v) { c.ssl.cacertfile = v.text; },
              .show = [](const Config& c) -> std::string { return c.ssl.cacertfile; }},
    SchemaRow{.key = "listeners.ssl.verify_peer",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = true,
              .ours = false,
              .doc = "Ask clients for a certificate and refuse the handshake when the one "
                     "sent does not verify against `cacertfile`. A client that sends none is "
                     "still accepted unless `fail_if_no_peer_cert`.",
              .apply = [](Config& c, const Typed& v) { c.ssl.verify_peer = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.ssl.verify_peer); }},
    SchemaRow{.key = "listeners.ssl.fail_if_no_peer_cert",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = true,
              .ours = false,
              .doc = "With `verify_peer`: refuse a client that sends no certificate. As in "
                     "NanoMQ, it means nothing without `verify_peer`.",
              .apply = [](Config& c, const Typed& v) { c.ssl.fail_if_no_peer_cert = v.boolean; },
              .show = [](const Config& c) -> std::string {
                return show_bool(c.ssl.fail_if_no_peer_cert);
              }},
    SchemaRow{
        .key = "listeners.ssl.use_cn_as_username",
        .type = ValueType::Bool,
        .default_value = "false",
        .reloadable = true,
        .ours = true,
        .doc = "The common name (CN) of the client's verified certificate is its user "
               "name, for `auth {}` (passwords, ACL rules with `%u`, http_auth) whatever "
               "the CONNECT says; a client with no verified certificate has no user name. "
               "Needs `verify_peer = true`. Applies to connections made after a reload.",
        .apply = [](Config& c, const Typed& v) { c.ssl.use_cn_as_username = v.boolean; },
        .show = [](const Config& c) -> std::string { return show_bool(c.ssl.use_cn_as_username); }},
    // listeners.wss
    SchemaRow{.key = "listeners.wss.enable",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = false,
              .ours = false,
              .doc = "Accept MQTT over WebSocket over TLS (`wss://`). As in NanoMQ, a "
                     "`listeners.wss {}` section that is present is enabled; without one there "
                     "is no secure WebSocket listener (one holding only named listeners does "
                     "not count). `enabled` is accepted too. Its TLS side "
                     "uses `listeners.ssl`'s certificate keys (`certfile` and `keyfile` are "
                     "required, `key_password`, `cacertfile`, `verify_peer`, "
                     "`fail_if_no_peer_cert` and `use_cn_as_username` apply too), as NanoMQ "
                     "does; they are re-read on reload. `listeners.ssl` itself may be disabled.",
              .alias = "enabled",
              .apply = [](Config& c, const Typed& v) { c.wss.enabled = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.wss.enabled); }},
    SchemaRow{.key = "listeners.wss.bind",
              .type = ValueType::UrlAddress,
              .default_value = "\"127.0.0.1:8086/mqtt\"",
              .reloadable = false,
              .ours = false,
              .doc = "Address, port and HTTP path of the MQTT/WebSocket/TLS listener, NanoMQ's "
                     "`host:port/path`; without a path, `/mqtt`. The default listens on "
                     "loopback only (NanoMQ's example sets `0.0.0.0:8086/mqtt`). An upgrade "
                     "request for another path is answered 404 (over TLS). The TLS handshake "
                     "and the upgrade must complete, and CONNECT follow, within "
                     "`mqtt.connect_timeout`.",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.wss.bind = v.text;
                    c.wss.path = v.path;
                  },
              .show = [](const Config& c) -> std::string { return c.wss.bind + c.wss.path; }},
    // system
    SchemaRow{.key = "system.num_taskq_thread",
              .type = ValueType::Integer,
              .default_value = "0",
              .reloadable = false,
              .ours = false,
              .doc = "Number of shard threads; 0 = one per CPU.",
              .min = 0,
              .max = 1024,
              .apply = [](Config& c,
                          const Typed& v) { c.num_threads = static_cast<uint32_t>(v.integer); },
              .show = [](const Config& c) -> std::string { return std::to_string(c.num_threads); }},
    SchemaRow{.key = "system.pid_file",
              .type = ValueType::String,
              .default_value = "\"/tmp/harbormq.pid\"",
              .reloadable = false,
              .ours = true,
              .doc = "Pid file used by `harbormq stop`, `restart` and `reload`.",
              .apply = [](Config& c, const Typed& v) { c.pid_file = v.text; },
              .show = [](const Config& c) -> std::string { return c.pid_file; }},
    // mqtt
    SchemaRow{
        .key = "mqtt.max_packet_size",
        .type = ValueType::Size,
        .default_value = "256MB",
        .reloadable = true,
        .ours = false,
        .doc = "Largest packet accepted or sent, whole packet in bytes.",
        .min = 1,
        .max = kMqttMaxPacket,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_packet_size = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_packet_size);
        }},
    SchemaRow{
        .key = "mqtt.max_mqueue_len",
        .type = ValueType::Integer,
        .default_value = "2048",
        .reloadable = true,
        .ours = false,
        .doc = "Messages queued per session while offline or while the inflight window "
               "is full; 0 = unbounded.",
        .min = 0,
        .max = kU32Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_mqueue_len = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_mqueue_len);
        }},
    SchemaRow{
        .key = "mqtt.retry_interval",
        .type = ValueType::Duration,
        .default_value = "10s",
        .reloadable = true,
        .ours = false,
        .doc = "Resend interval for unacknowledged QoS 1/2 messages (MQTT 3.1.1 "
               "sessions).",
        .min = 1,
        .max = kDayMs,
        .bare_unit = BareUnit::Seconds,
        .apply =
            [](Config& c, const Typed& v) {
              c.mqtt.retry_interval = std::chrono::milliseconds(v.integer);
            },
        .show = [](const Config& c) -> std::string { return show_ms(c.mqtt.retry_interval); }},
    SchemaRow{.key = "mqtt.keepalive_multiplier",
              .type = ValueType::Double,
              .default_value = "1.25",
              .reloadable = true,
              .ours = false,
              .doc = "A client is disconnected after keepalive x this factor without traffic.",
              .min_double = 0.5,
              .max_double = 100.0,
              .apply = [](Config& c, const Typed& v) { c.mqtt.keepalive_multiplier = v.real; },
              .show = [](const Config& c) -> std::string {
                return show_double(c.mqtt.keepalive_multiplier);
              }},
    SchemaRow{.key = "mqtt.max_inflight_window",
              .type = ValueType::Integer,
              .default_value = "2048",
              .reloadable = true,
              .ours = false,
              .doc = "Unacknowledged outgoing QoS 1/2 messages per session; also caps the MQTT "
                     "5 Receive Maximum.",
              .min = 1,
              .max = kU16Max,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.mqtt.max_inflight_window = static_cast<uint32_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.mqtt.max_inflight_window);
              }},
    SchemaRow{
        .key = "mqtt.max_awaiting_rel",
        .type = ValueType::Count,
        .default_value = "2048",
        .reloadable = true,
        .ours = false,
        .doc = "Incoming QoS 2 messages awaiting PUBREL per session. NanoMQ's files write "
               "`10s`: accepted with a warning, read as 10.",
        .min = 1,
        .max = kU16Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_awaiting_rel = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_awaiting_rel);
        }},
    SchemaRow{
        .key = "mqtt.await_rel_timeout",
        .type = ValueType::Duration,
        .default_value = "10s",
        .reloadable = true,
        .ours = false,
        .doc = "How long an incoming QoS 2 message waits for its PUBREL.",
        .min = 1,
        .max = kDayMs,
        .bare_unit = BareUnit::Seconds,
        .apply =
            [](Config& c, const Typed& v) {
              c.mqtt.await_rel_timeout = std::chrono::milliseconds(v.integer);
            },
        .show = [](const Config& c) -> std::string { return show_ms(c.mqtt.await_rel_timeout); }},
    SchemaRow{
        .key = "mqtt.property_size",
        .type = ValueType::Integer,
        .default_value = "32",
        .reloadable = true,
        .ours = false,
        .doc = "Most user properties accepted in one packet.",
        .min = 1,
        .max = kU16Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.property_size = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.property_size);
        }},
    SchemaRow{
        .key = "mqtt.max_topic_alias",
        .type = ValueType::Integer,
        .default_value = "65535",
        .reloadable = true,
        .ours = false,
        .doc = "Topic Alias Maximum offered to MQTT 5 clients; 0 = no aliases.",
        .min = 0,
        .max = kU16Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_topic_alias = static_cast<uint16_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_topic_alias);
        }},
    SchemaRow{.key = "mqtt.queue_qos0",
              .type = ValueType::Bool,
              .default_value = "false",
              .reloadable = true,
              .ours = true,
              .doc = "Also queue QoS 0 messages for offline persistent sessions.",
              .apply = [](Config& c, const Typed& v) { c.mqtt.queue_qos0 = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.mqtt.queue_qos0); }},
    SchemaRow{.key = "mqtt.session_expiry_311",
              .type = ValueType::Duration,
              .default_value = "0s",
              .reloadable = true,
              .ours = true,
              .doc = "Expiry of MQTT 3.1.1 persistent sessions (clean_session=0); 0 = never. A "
                     "bare number is seconds.",
              .min = 0,
              .max = kU32Max * 1000,
              .bare_unit = BareUnit::Seconds,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.mqtt.session_expiry_311 = static_cast<uint32_t>(v.integer / 1000);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.mqtt.session_expiry_311) + "s";
              }},
    SchemaRow{
        .key = "mqtt.connect_timeout",
        .type = ValueType::Duration,
        .default_value = "5s",
        .reloadable = true,
        .ours = true,
        .doc = "A connection whose CONNECT is not complete this long after the socket was "
               "accepted is closed. A bare number is seconds.",
        .min = 100,
        .max = kDayMs,
        .bare_unit = BareUnit::Seconds,
        .apply =
            [](Config& c, const Typed& v) {
              c.mqtt.connect_timeout = std::chrono::milliseconds(v.integer);
            },
        .show = [](const Config& c) -> std::string { return show_ms(c.mqtt.connect_timeout); }},
    SchemaRow{
        .key = "mqtt.max_connections",
        .type = ValueType::Integer,
        .default_value = "0",
        .reloadable = true,
        .ours = true,
        .doc = "Open client connections at most; one more is closed at accept, logged "
               "(rate-limited) and counted. 0 = no limit but the file descriptor limit.",
        .min = 0,
        .max = kU32Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_connections = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_connections);
        }},
    SchemaRow{.key = "mqtt.shared_subscription_strategy",
              .type = ValueType::Enum,
              .default_value = "round_robin",
              .reloadable = true,
              .ours = true,
              .doc = "Which member of a shared subscription group (`$share/{group}/{filter}`, "
                     "`$queue/{filter}`) gets each message: `round_robin` takes the members in "
                     "turn (per shard), `random` any, `sticky` the same one until it leaves the "
                     "group (unsubscribes, or its session ends), `hash_clientid` one per "
                     "publishing client id, `hash_topic` one per topic (both stable while the "
                     "group's members do not change). A reload applies to the next message.",
              .choices = "round_robin|random|sticky|hash_clientid|hash_topic",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.mqtt.shared_subscription_strategy = shared_strategy_of(v.text);
                  },
              .show = [](const Config& c) -> std::string {
                return std::string(shared_strategy_name(c.mqtt.shared_subscription_strategy));
              }},
    SchemaRow{
        .key = "mqtt.max_topic_levels",
        .type = ValueType::Integer,
        .default_value = "128",
        .reloadable = true,
        .ours = true,
        .doc = "Most levels in a topic name or topic filter; a PUBLISH beyond it closes the "
               "connection (5.0: 0x90 Topic Name invalid), a filter beyond it is refused "
               "(0x8F Topic Filter invalid / 3.1.1: 0x80).",
        .min = 1,
        .max = kU16Max,
        .apply = [](Config& c,
                    const Typed& v) { c.mqtt.max_topic_levels = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.mqtt.max_topic_levels);
        }},
    SchemaRow{.key = "mqtt.max_keepalive",
              .type = ValueType::Duration,
              .default_value = "0s",
              .reloadable = true,
              .ours = true,
              .doc = "Largest keep alive an MQTT 5 client may use; 0 = no maximum (the client's "
                     "value is used). A 5.0 client asking for more, or for 0, gets this value as "
                     "Server Keep Alive in CONNACK and is timed out by it. MQTT 3.1/3.1.1 "
                     "clients cannot be told, so their own value stays in force. Rounded up to "
                     "whole seconds; a reload applies to connections made after it. A bare "
                     "number is seconds.",
              .min = 0,
              .max = kU16Max * 1000,
              .bare_unit = BareUnit::Seconds,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.mqtt.max_keepalive = static_cast<uint16_t>((v.integer + 999) / 1000);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.mqtt.max_keepalive) + "s";
              }},
    // sqlite
    SchemaRow{.key = "sqlite.enable",
              .type = ValueType::Bool,
              .default_value = "true",
              .reloadable = false,
              .ours = false,
              .doc = "Persist sessions, queues and retained messages in SQLite. As in NanoMQ, "
                     "a `sqlite {}` section that is present is enabled; a file without one runs "
                     "in memory. `enabled` is accepted too.",
              .alias = "enabled",
              .apply = [](Config& c, const Typed& v) { c.sqlite.enabled = v.boolean; },
              .show = [](const Config& c) -> std::string { return show_bool(c.sqlite.enabled); }},
    SchemaRow{.key = "sqlite.mounted_file_path",
              .type = ValueType::String,
              .default_value = "\"./data\"",
              .reloadable = false,
              .ours = false,
              .doc = "Directory holding harbormq.db (created if missing).",
              .apply = [](Config& c, const Typed& v) { c.sqlite.mounted_file_path = v.text; },
              .show = [](const Config& c) -> std::string { return c.sqlite.mounted_file_path; }},
    SchemaRow{.key = "sqlite.disk_cache_size",
              .type = ValueType::Integer,
              .default_value = "102400",
              .reloadable = true,
              .ours = false,
              .doc = "Most messages kept on disk; 0 = unbounded.",
              .min = 0,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.disk_cache_size = static_cast<uint64_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.sqlite.disk_cache_size);
              }},
    SchemaRow{.key = "sqlite.disk_cache_bytes",
              .type = ValueType::Size,
              .default_value = "0",
              .reloadable = true,
              .ours = true,
              .doc =
                  "Most bytes the database may use (its pages in use, indexes included); 0 = "
                  "unbounded. When reached, new QoS 1/2 messages that must be stored are refused, "
                  "as for `disk_cache_size`. Checked after each commit, so one batch may pass it.",
              .min = 0,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.disk_cache_bytes = static_cast<uint64_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.sqlite.disk_cache_bytes);
              }},
    SchemaRow{.key = "sqlite.flush_mem_threshold",
              .type = ValueType::Integer,
              .default_value = "100",
              .reloadable = true,
              .ours = false,
              .doc = "Queue entries of one persistent session kept in memory (NanoMQ's key); the "
                     "rest of its queue waits in the database and is paged in as it drains.",
              .min = 1,
              .max = kU32Max,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.flush_mem_threshold = static_cast<uint32_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.sqlite.flush_mem_threshold);
              }},
    SchemaRow{.key = "sqlite.flush_mem_bytes",
              .type = ValueType::Size,
              .default_value = "1MB",
              .reloadable = true,
              .ours = true,
              .doc = "Bytes of messages (topic and payload) of one persistent session's queue kept "
                     "in memory beside `flush_mem_threshold`; at least one entry is always kept.",
              .min = 1,
              .max = kU32Max,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.flush_mem_bytes = static_cast<uint32_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.sqlite.flush_mem_bytes);
              }},
    SchemaRow{
        .key = "sqlite.resend_interval",
        .type = ValueType::Duration,
        .default_value = "5s",
        .reloadable = true,
        .ours = false,
        .doc = "NanoMQ's resend interval after recovery; a bare number is milliseconds "
               "as in NanoMQ.",
        .min = 1,
        .max = kDayMs,
        .bare_unit = BareUnit::Milliseconds,
        .apply =
            [](Config& c, const Typed& v) {
              c.sqlite.resend_interval = std::chrono::milliseconds(v.integer);
            },
        .show = [](const Config& c) -> std::string { return show_ms(c.sqlite.resend_interval); }},
    SchemaRow{.key = "sqlite.ack_policy",
              .type = ValueType::Enum,
              .default_value = "after_commit",
              .reloadable = false,
              .ours = true,
              .doc = "`after_commit`: PUBACK/PUBREC only once the message is committed (survives "
                     "kill -9). `immediate`: acknowledge at once, may lose one batch.",
              .choices = "after_commit|immediate",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.ack_policy =
                        v.text == "immediate" ? AckPolicy::Immediate : AckPolicy::AfterCommit;
                  },
              .show = [](const Config& c) -> std::string {
                return std::string(c.sqlite.ack_policy == AckPolicy::Immediate ? "immediate"
                                                                               : "after_commit");
              }},
    SchemaRow{.key = "sqlite.synchronous",
              .type = ValueType::Enum,
              .default_value = "normal",
              .reloadable = false,
              .ours = true,
              .doc = "SQLite `synchronous` in WAL mode: `normal` survives process crashes, "
                     "`full` also power loss.",
              .choices = "normal|full",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.sqlite.synchronous = v.text == "full" ? SyncMode::Full : SyncMode::Normal;
                  },
              .show = [](const Config& c) -> std::string {
                return std::string(c.sqlite.synchronous == SyncMode::Full ? "full" : "normal");
              }},
    SchemaRow{
        .key = "sqlite.commit_interval",
        .type = ValueType::Duration,
        .default_value = "0ms",
        .reloadable = false,
        .ours = true,
        .doc = "Group commit: how long an idle writer waits for more writes before it "
               "commits. 0 = commit at once; batches still form from the writes that "
               "arrive while a commit runs. A bare number is milliseconds.",
        .min = 0,
        .max = 10'000,
        .bare_unit = BareUnit::Milliseconds,
        .apply =
            [](Config& c, const Typed& v) {
              c.sqlite.commit_interval = std::chrono::milliseconds(v.integer);
            },
        .show = [](const Config& c) -> std::string { return show_ms(c.sqlite.commit_interval); }},
    SchemaRow{
        .key = "sqlite.commit_batch",
        .type = ValueType::Integer,
        .default_value = "1000",
        .reloadable = false,
        .ours = true,
        .doc = "Group commit: most operations in one transaction.",
        .min = 1,
        .max = 1'000'000,
        .apply = [](Config& c,
                    const Typed& v) { c.sqlite.commit_batch = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.sqlite.commit_batch);
        }},
    // http_server
    SchemaRow{
        .key = "http_server.enable",
        .type = ValueType::Bool,
        .default_value = "false",
        .reloadable = false,
        .ours = false,
        .doc = "Serve the management HTTP API (docs/http-api.md). As in NanoMQ, an "
               "`http_server {}` section that is present is enabled; without one there "
               "is no HTTP server. `enabled` is accepted too.",
        .alias = "enabled",
        .apply = [](Config& c, const Typed& v) { c.http_server.enabled = v.boolean; },
        .show = [](const Config& c) -> std::string { return show_bool(c.http_server.enabled); }},
    SchemaRow{
        .key = "http_server.port",
        .type = ValueType::Integer,
        .default_value = "8081",
        .reloadable = false,
        .ours = false,
        .doc = "TCP port of the HTTP API; 0 lets the system choose one (logged).",
        .min = 0,
        .max = 65535,
        .apply = [](Config& c,
                    const Typed& v) { c.http_server.port = static_cast<uint16_t>(v.integer); },
        .show = [](const Config& c) -> std::string { return std::to_string(c.http_server.port); }},
    SchemaRow{.key = "http_server.ip_addr",
              .type = ValueType::String,
              .default_value = "\"127.0.0.1\"",
              .reloadable = false,
              .ours = false,
              .doc = "IP address the HTTP API listens on. The default is loopback only "
                     "(ours; NanoMQ's is 0.0.0.0): set `0.0.0.0` to open it to every network.",
              .apply = [](Config& c, const Typed& v) { c.http_server.ip_addr = v.text; },
              .show = [](const Config& c) -> std::string { return c.http_server.ip_addr; }},
    SchemaRow{.key = "http_server.limit_conn",
              .type = ValueType::Integer,
              .default_value = "2",
              .reloadable = false,
              .ours = false,
              .doc = "Requests served at once (the HTTP server's worker threads); more "
                     "connections wait for a free worker.",
              .min = 1,
              .max = 64,
              .apply =
                  [](Config& c, const Typed& v) {
                    c.http_server.limit_conn = static_cast<uint32_t>(v.integer);
                  },
              .show = [](const Config& c) -> std::string {
                return std::to_string(c.http_server.limit_conn);
              }},
    SchemaRow{.key = "http_server.username",
              .type = ValueType::String,
              .default_value = "\"admin\"",
              .reloadable = false,
              .ours = false,
              .doc = "User name of HTTP Basic authentication (NanoMQ's default `admin`). "
                     "Empty, with an empty `password`: requests are not authenticated (ours).",
              .apply = [](Config& c, const Typed& v) { c.http_server.username = v.text; },
              .show = [](const Config& c) -> std::string { return c.http_server.username; }},
    SchemaRow{.key = "http_server.password",
              .type = ValueType::String,
              .default_value = "\"public\"",
              .reloadable = false,
              .ours = false,
              .doc = "Password of HTTP Basic authentication (NanoMQ's default `public`).",
              .apply = [](Config& c, const Typed& v) { c.http_server.password = v.text; },
              .show = [](const Config& c) -> std::string { return c.http_server.password; }},
    SchemaRow{
        .key = "http_server.max_body",
        .type = ValueType::Size,
        .default_value = "65535",
        .reloadable = false,
        .ours = false,
        .doc = "Largest request body accepted; a longer one is answered 413.",
        .min = 1,
        .max = 64 * 1024 * 1024,
        .apply = [](Config& c,
                    const Typed& v) { c.http_server.max_body = static_cast<uint64_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.http_server.max_body);
        }},
    SchemaRow{.key = "http_server.auth_type",
              .type = ValueType::Enum,
              .default_value = "basic",
              .reloadable = false,
              .ours = false,
              .doc = "`basic`: HTTP Basic authentication with `username` and `password`. "
                     "`jwt` is not implemented yet: a file that asks for it is refused.",
              .choices = "basic|jwt",
              .apply =
                  [](Config& c, const Typed& v) {
                    c.http_server.auth_type =
                        v.text == "jwt" ? HttpAuthType::Jwt : HttpAuthType::Basic;
                  },
              .show = [](const Config& c) -> std::string {
                return c.http_server.auth_type == HttpAuthType::Jwt ? "jwt" : "basic";
              }},
    SchemaRow{
        .key = "http_server.jwt.public.keyfile",
        .type = ValueType::String,
        .default_value = "\"\"",
        .reloadable = false,
        .ours = false,
        .doc = "Public key of `auth_type = jwt`; accepted and unused while jwt is not "
               "implemented.",
        .apply = [](Config& c, const Typed& v) { c.http_server.jwt_public_keyfile = v.text; },
        .show = [](const Config& c) -> std::string { return c.http_server.jwt_public_keyfile; }},
    // log
    SchemaRow{.key = "log.to",
              .type = ValueType::StringList,
              .default_value = "[console]",
              .reloadable = false,
              .ours = false,
              .doc = "Log destinations: any of file, console, syslog.",
              .choices = "file|console|syslog",
              .apply = [](Config& c, const Typed& v) { c.log.to = v.list; },
              .show = [](const Config& c) -> std::string { return show_list(c.log.to); }},
    SchemaRow{.key = "log.level",
              .type = ValueType::Enum,
              .default_value = "info",
              .reloadable = true,
              .ours = false,
              .doc = "Least severe level logged. `info` shows the start banner, client "
                     "connects and disconnects, and the shutdown summary; `fatal` is read as "
                     "`error`.",
              .choices = "trace|debug|info|warn|error|fatal",
              .apply = [](Config& c, const Typed& v) { c.log.level = v.text; },
              .show = [](const Config& c) -> std::string { return c.log.level; }},
    SchemaRow{.key = "log.dir",
              .type = ValueType::String,
              .default_value = "\"/tmp\"",
              .reloadable = false,
              .ours = false,
              .doc = "Directory of the log file (when `to` includes file).",
              .apply = [](Config& c, const Typed& v) { c.log.dir = v.text; },
              .show = [](const Config& c) -> std::string { return c.log.dir; }},
    SchemaRow{.key = "log.file",
              .type = ValueType::String,
              .default_value = "\"harbormq.log\"",
              .reloadable = false,
              .ours = false,
              .doc = "Name of the log file inside `dir` (an absolute path is used as is).",
              .apply = [](Config& c, const Typed& v) { c.log.file = v.text; },
              .show = [](const Config& c) -> std::string { return c.log.file; }},
    SchemaRow{
        .key = "log.rotation.size",
        .type = ValueType::Size,
        .default_value = "10MB",
        .reloadable = false,
        .ours = false,
        .doc = "A log file that would grow past this size is rotated: `harbormq.log` "
               "becomes `harbormq.1.log`, `harbormq.1.log` becomes `harbormq.2.log`, and "
               "so on.",
        .min = 1024,
        .apply = [](Config& c,
                    const Typed& v) { c.log.rotation_size = static_cast<uint64_t>(v.integer); },
        .show = [](const Config& c) -> std::string { return std::to_string(c.log.rotation_size); }},
    SchemaRow{
        .key = "log.rotation.count",
        .type = ValueType::Integer,
        .default_value = "5",
        .reloadable = false,
        .ours = false,
        .doc = "Rotated log files kept besides the current one; the oldest is deleted.",
        .min = 1,
        .max = 1000,
        .apply = [](Config& c,
                    const Typed& v) { c.log.rotation_count = static_cast<uint32_t>(v.integer); },
        .show = [](const Config& c) -> std::string {
          return std::to_string(c.log.rotation_count);
        }},
};

const std::array kSections = {
    UnimplementedSection{"listeners.quic", "MQTT over QUIC listener"},
    UnimplementedSection{"webhook", "web hooks"},
    // bridges.mqtt is read by bridges.cpp; the other bridge types stay here.
    UnimplementedSection{"bridges.aws", "AWS IoT Core bridges"},
    UnimplementedSection{"bridges.nng", "NNG bridges"},
    UnimplementedSection{"rules", "rule engine"},
    UnimplementedSection{"exchange_client", "message exchange"},
    UnimplementedSection{"plugin", "plugins"},
    UnimplementedSection{"parquet", "Parquet storage"},
    UnimplementedSection{"blf", "BLF storage"},
    UnimplementedSection{"preset", "preset sessions"},
    UnimplementedSection{"authorization", "authorization"},
    UnimplementedSection{"vsomeip_gateway", "SOME/IP gateway"},
    UnimplementedSection{"zmq_gateway", "ZeroMQ gateway"},
    UnimplementedSection{"dds_gateway", "DDS gateway"},
};

const std::array kKeys = {
    UnimplementedKey{"system.daemon", "run in the foreground and use a service manager"},
    UnimplementedKey{"system.max_taskq_thread", "the shard count is fixed at start"},
    UnimplementedKey{"system.parallel", "no NNG contexts to size"},
    UnimplementedKey{"system.hook_ipc_url", "no IPC hook channel"},
    UnimplementedKey{"system.cmd_ipc_url", "control goes through the pid file"},
    UnimplementedKey{"system.enable_ipc_internal", "no IPC channel"},
    UnimplementedKey{"log.uds_addr", "no Unix-socket log sink"},
};

const std::array<std::string_view, 10> kImplementedSections = {
    "listeners.tcp", "listeners.ws", "listeners.ssl", "listeners.wss", "system",
    "mqtt",          "sqlite",       "log",           "auth",          "http_server"};

std::string type_hint(const SchemaRow& row) {
  std::string out(type_name(row.type));
  switch (row.type) {
    case ValueType::Integer:
    case ValueType::Count:
    case ValueType::Size:
      out += " " + std::to_string(row.min) + "–" +
             (row.max == INT64_MAX ? std::string("∞") : std::to_string(row.max));
      break;
    case ValueType::Duration:
      if (row.bare_unit == BareUnit::Seconds) out += " (bare number: seconds)";
      if (row.bare_unit == BareUnit::Milliseconds) out += " (bare number: ms)";
      break;
    case ValueType::Enum:
    case ValueType::StringList:
      if (!row.choices.empty()) out += ": " + std::string(row.choices);
      break;
    default:
      break;
  }
  return out;
}

// Markdown tables treat '|' as a column break.
std::string escape_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::span<const SchemaRow> schema() { return kRows; }
std::span<const UnimplementedSection> unimplemented_sections() { return kSections; }
std::span<const UnimplementedKey> unimplemented_keys() { return kKeys; }
std::span<const std::string_view> implemented_sections() { return kImplementedSections; }

const SchemaRow* find_row(std::string_view key) {
  for (const auto& row : kRows) {
    if (row.key == key) return &row;
    if (!row.alias.empty()) {
      auto dot = row.key.rfind('.');
      std::string_view parent = row.key.substr(0, dot + 1);
      if (key.size() == parent.size() + row.alias.size() && key.starts_with(parent) &&
          key.substr(parent.size()) == row.alias) {
        return &row;
      }
    }
  }
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string closest_key(std::string_view key) {
  std::vector<std::string_view> candidates;
  for (const auto& row : kRows) candidates.push_back(row.key);
  for (const auto& section : kImplementedSections) candidates.push_back(section);
  candidates.push_back("listeners");
  for (const auto& section : kSections) candidates.push_back(section.path);
  for (const auto& accepted : kKeys) candidates.push_back(accepted.path);
  candidates.push_back("bridges");
  candidates.push_back("bridges.mqtt");
  return closest_of(key, candidates);
}

std::string closest_of(std::string_view key, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = SIZE_MAX;
  for (auto candidate : candidates) {
    size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return std::string(best);
}

std::string_view type_name(ValueType type) {
  switch (type) {
    case ValueType::Bool:
      return "bool";
    case ValueType::Integer:
      return "integer";
    case ValueType::Count:
      return "integer";
    case ValueType::Double:
      return "number";
    case ValueType::String:
      return "string";
    case ValueType::Address:
      return "host:port";
    case ValueType::UrlAddress:
      return "host:port/path";
    case ValueType::StringList:
      return "list";
    case ValueType::Enum:
      return "one of";
    case ValueType::Duration:
      return "duration";
    case ValueType::Size:
      return "size";
  }
  return "value";
}

std::string render_markdown() {
  std::string out;
  out +=
      "# HarborMQ configuration reference\n"
      "\n"
      "<!-- Generated from src/config/schema.cpp by render_markdown(); a unit test keeps this\n"
      "     file equal to it. Edit the schema, not this file. -->\n"
      "\n"
      "HarborMQ reads HOCON in NanoMQ's `nanomq.conf` layout, so a NanoMQ configuration file\n"
      "starts HarborMQ unchanged. `harbormq start --conf FILE` loads a file; without `--conf`\n"
      "the built-in defaults apply, and they equal the shipped `etc/harbormq.conf`.\n"
      "\n"
      "## Sources and precedence\n"
      "\n"
      "1. The file (or the built-in defaults).\n"
      "2. Environment variables `HARBORMQ_<SECTION>__<KEY>`: `__` separates levels, names are\n"
      "   case-insensitive, e.g. `HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW=10` or\n"
      "   `HARBORMQ_LISTENERS__TCP__BIND=0.0.0.0:1884`. Variables without `__` are not\n"
      "   configuration and are ignored.\n"
      "3. Command-line overrides `key=value`, e.g. `--set mqtt.max_inflight_window=10`.\n"
      "\n"
      "Values from the environment and the command line are read as HOCON values; text that\n"
      "is not a valid HOCON value is taken as a string. Errors name `<environment>` or\n"
      "`<command line>` in place of the file.\n"
      "\n"
      "## Syntax\n"
      "\n"
      "Objects `{}`, dotted keys (`listeners.tcp { }`, `a.b.c = 1`), `=` or `:` (or nothing\n"
      "before `{`), arrays `[a, b]`, quoted strings with JSON escapes and `\"\"\"raw\"\"\"`,\n"
      "unquoted strings, comments `#` and `//`, repeated keys (objects merge, other values:\n"
      "the last wins), `include \"file\"` (relative to the including file; a missing file is a\n"
      "warning, `include required(\"file\")` makes it an error), `key = {include \"file\"}`,\n"
      "substitutions `${a.b}` (a path in the file, else an environment variable of that name)\n"
      "and `${?NAME}` (optional: the key is dropped when nothing is found).\n"
      "\n"
      "Durations: `500ms`, `10s`, `1m`, `1h`, `1d`; a bare number takes the unit shown for the\n"
      "key. Sizes: `1KB` = 1024 bytes, `MB`, `GB` (also `K`, `M`, `G`); a bare number is\n"
      "bytes.\n"
      "\n"
      "Every error names the file, line and key (`FILE:LINE: KEY: message`); an unknown key\n"
      "is an error that suggests the closest known key.\n"
      "\n"
      "## Keys\n"
      "\n"
      "Origin `ours` marks HarborMQ's additions; the others are NanoMQ's keys with NanoMQ's\n"
      "meaning. Reloadable keys take effect on `harbormq reload`.\n";
  std::string_view section;
  for (const auto& row : kRows) {
    std::string_view row_section = row.key.substr(0, row.key.rfind('.'));
    if (row_section != section) {
      section = row_section;
      out += "\n### `" + std::string(section) + "`\n\n";
      out += "| Key | Type | Default | Reloadable | Origin | Description |\n";
      out += "|---|---|---|---|---|---|\n";
    }
    out += "| `" + std::string(row.key) + "` | " + escape_cell(type_hint(row)) + " | `" +
           escape_cell(row.default_value) + "` | " + (row.reloadable ? "yes" : "no") + " | " +
           (row.ours ? "ours" : "NanoMQ") + " | " + escape_cell(row.doc) + " |\n";
  }
  out += render_listeners_markdown();
  out += render_bridges_markdown();
  out += render_auth_markdown();
  out +=
      "\n## NanoMQ keys accepted but not implemented\n"
      "\n"
      "Each is accepted with one warning naming it; its value is not used.\n"
      "\n"
      "| Key | Why |\n"
      "|---|---|\n";
  for (const auto& key : kKeys) {
    out += "| `" + std::string(key.path) + "` | " + escape_cell(key.why) + " |\n";
  }
  out +=
      "\n"
      "## NanoMQ sections accepted but not implemented yet\n"
      "\n"
      "Each present section gives one warning naming it and is listed in\n"
      "`Config::unimplemented_sections`; its contents are checked for syntax only.\n"
      "\n"
      "| Section | What |\n"
      "|---|---|\n";
  for (const auto& s : kSections) {
    out += "| `" + std::string(s.path) + "` | " + escape_cell(s.what) + " |\n";
  }
  out += "| `bridges.<type>` | any other bridge type (not `mqtt`) |\n";
  return out;
}

}  // namespace harbor::config
