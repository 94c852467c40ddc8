// The broker's typed, immutable configuration, built from HOCON (NanoMQ's nanomq.conf keys
// plus HarborMQ's own), environment variables and command-line overrides.
// Built once on the main thread, then shared read-only (std::shared_ptr<const Config>).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>
#include <vector>

#include "config/auth_settings.hpp"
#include "config/bridge_settings.hpp"

namespace harbor::config {

struct TcpListener {
  bool enabled = true;
  std::string bind = "127.0.0.1:1883";  // "host:port"; loopback unless opened on purpose
  bool operator==(const TcpListener&) const = default;
};

// listeners.ws: MQTT over WebSocket (RFC 6455, MQTT §6). NanoMQ writes the address and the
// HTTP path as one value, "host:port/path"; it is kept split here.
struct WsListener {
  bool enabled = false;  // on when the section is present (NanoMQ's rule), off by default
  std::string bind = "127.0.0.1:8083";  // "host:port"
  std::string path = "/mqtt";           // the request path a client must upgrade on
  bool operator==(const WsListener&) const = default;
};

// listeners.wss: MQTT over WebSocket over TLS. As in NanoMQ it has no certificate keys of its
// own: the TLS side uses listeners.ssl's certfile, keyfile, key_password, cacertfile,
// verify_peer and fail_if_no_peer_cert (whether listeners.ssl itself is enabled or not).
struct WssListener {
  bool enabled = false;  // on when the section is present (NanoMQ's rule), off by default
  std::string bind = "127.0.0.1:8086";  // "host:port"
  std::string path = "/mqtt";           // the request path a client must upgrade on
  bool operator==(const WssListener&) const = default;
};

// listeners.ssl: MQTT over TLS (TLS 1.2 and 1.3), NanoMQ's keys. The certificates and the
// key are read at start and again on every reload (the runtime builds a wire::TlsContext).
struct SslListener {
  bool enabled = false;  // on when the section is present (NanoMQ's rule), off by default
  std::string bind = "127.0.0.1:8883";  // "host:port"; loopback unless opened on purpose
  std::string certfile;                 // PEM: the server's certificate and chain
  std::string keyfile;                  // PEM: its private key
  std::string key_password;             // empty: the key is not encrypted
  std::string cacertfile;               // PEM: CAs client certificates are verified against
  bool verify_peer = false;
  bool fail_if_no_peer_cert = false;
  bool use_cn_as_username = false;  // ours: the verified client certificate's CN is the user
  bool operator==(const SslListener&) const = default;
};

// NanoMQ's additional named listeners: `listeners.tcp.<name> { bind = ... }`, and likewise
// `listeners.ws.<name>`, `listeners.ssl.<name>`, `listeners.wss.<name>`. Each is served like
// the unnamed listener of its kind. Which ones exist, and their binds, need a restart; the
// certificate keys of ssl and wss ones are re-read on reload.
enum class ListenerKind : uint8_t { Tcp, Ws, Ssl, Wss };

struct NamedListener {
  ListenerKind kind = ListenerKind::Tcp;
  std::string name;  // the <name> of `listeners.<kind>.<name>`
  std::string key;   // "listeners.<kind>.<name>", what errors and logs name
  bool enabled = true;
  std::string bind;  // "host:port"; required
  std::string path;  // ws, wss: the request path a client must upgrade on
  // ssl, wss: the certificate keys (its `enabled` and `bind` are unused). A wss one that
  // sets neither certfile nor keyfile serves listeners.ssl's keys, as the unnamed wss does.
  SslListener tls;
  bool tls_from_ssl = false;
  bool operator==(const NamedListener&) const = default;
};

struct NamedListeners {
  std::vector<NamedListener> tcp;  // each list in file order
  std::vector<NamedListener> ws;
  std::vector<NamedListener> ssl;
  std::vector<NamedListener> wss;
  bool operator==(const NamedListeners&) const = default;
};

// How a shared subscription picks the one member a message goes to (ours, EMQX's names).
enum class SharedStrategy : uint8_t { RoundRobin, Random, Sticky, HashClientId, HashTopic };

struct MqttSettings {
  uint32_t max_packet_size = 256u * 1024 * 1024;  // bytes, whole packet
  uint32_t max_mqueue_len = 2048;                 // offline/overflow queue per session; 0 = unbounded
  std::chrono::milliseconds retry_interval{10'000};  // 3.1.1 resend while online
  double keepalive_multiplier = 1.25;
  uint32_t max_inflight_window = 2048;  // outbound inflight per session (also 5.0 Receive Maximum cap)
  uint32_t max_awaiting_rel = 2048;     // inbound QoS 2 awaiting PUBREL per session
  std::chrono::milliseconds await_rel_timeout{10'000};
  uint32_t property_size = 32;      // max user properties per packet
  uint16_t max_topic_alias = 65535; // inbound topic aliases per connection (5.0)
  bool queue_qos0 = false;          // ours: also queue QoS 0 for offline persistent sessions
  uint32_t session_expiry_311 = 0;  // ours: seconds; 0 = 3.1.1 persistent sessions never expire
  std::chrono::milliseconds connect_timeout{5'000};  // ours: socket to complete CONNECT
  uint32_t max_connections = 0;     // ours: open client connections at most; 0 = no limit
  SharedStrategy shared_subscription_strategy = SharedStrategy::RoundRobin;  // ours
  uint32_t max_topic_levels = 128;  // ours: levels in a topic name or filter
  uint16_t max_keepalive = 0;       // ours: seconds; 5.0 Server Keep Alive above it; 0 = none
  bool operator==(const MqttSettings&) const = default;
};

// SQLite persistence (issue 4). NanoMQ keys plus ours.
enum class AckPolicy : uint8_t { AfterCommit, Immediate };
enum class SyncMode : uint8_t { Normal, Full };

struct SqliteSettings {
  bool enabled = false;  // a default-constructed Config runs in memory; defaults() and the
                         // shipped file enable it (a present sqlite {} section enables it)
  std::string mounted_file_path = "./data";  // directory holding harbormq.db
  uint64_t disk_cache_size = 102400;          // max stored messages; 0 = unbounded
  uint64_t disk_cache_bytes = 0;              // ours: max bytes of database pages in use; 0 = unbounded
  uint32_t flush_mem_threshold = 100;         // queue entries per session in memory
  uint32_t flush_mem_bytes = 1u << 20;        // ours: and their bytes (topic + payload)
  std::chrono::milliseconds resend_interval{5000};  // NanoMQ key; accepted, see docs
  AckPolicy ack_policy = AckPolicy::AfterCommit;    // ours
  SyncMode synchronous = SyncMode::Normal;          // ours
  std::chrono::milliseconds commit_interval{0};     // ours: group commit linger (0 = none)
  uint32_t commit_batch = 1000;                      // ours: ops per transaction at most
  bool operator==(const SqliteSettings&) const = default;
};

struct LogSettings {
  std::string level = "info";  // trace, debug, info, warn, error (fatal = error)
  std::vector<std::string> to = {"console"};
  std::string dir = "/tmp";
  std::string file = "harbormq.log";
  uint64_t rotation_size = 10u * 1024 * 1024;  // bytes; the file is rotated past this size
  uint32_t rotation_count = 5;                 // rotated files kept besides the current one
  bool operator==(const LogSettings&) const = default;
};

// http_server: the management HTTP API (src/http), NanoMQ's keys. Off unless the section is
// present (NanoMQ's rule); it binds to loopback by default (ours, like every listener here).
enum class HttpAuthType : uint8_t { Basic, Jwt };

struct HttpServerSettings {
  bool enabled = false;
  uint16_t port = 8081;
  std::string ip_addr = "127.0.0.1";
  uint32_t limit_conn = 2;         // worker threads: requests served at once
  std::string username = "admin";  // NanoMQ's default credentials; empty: no authentication
  std::string password = "public";
  uint64_t max_body = 65535;                     // bytes of a request body
  HttpAuthType auth_type = HttpAuthType::Basic;  // jwt is refused at load (not implemented)
  std::string jwt_public_keyfile;
  bool operator==(const HttpServerSettings&) const = default;
};

// Where each key's value came from ("FILE:LINE", "<environment>", "<command line>"), for
// errors found after loading (a port in use, a data directory that cannot be locked).
// Not part of the configuration's value: two configs with equal keys compare equal.
struct KeyOrigins {
  std::vector<std::pair<std::string, std::string>> entries;  // schema key → origin
  bool operator==(const KeyOrigins&) const { return true; }
};

// A config error: always names the file, line and key.
struct ConfigError {
  std::string file;
  int line = 0;
  std::string key;
  std::string message;
  std::string to_string() const;  // "FILE:LINE: KEY: MESSAGE"; ":LINE" and "KEY: " are left
                                  // out when unknown (line 0 for <environment>/<command line>)
  bool operator==(const ConfigError&) const = default;
};

struct Config {
  std::string source;  // file it came from, "" for built-in defaults
  uint32_t num_threads = 0;  // system.num_taskq_thread; 0 = number of CPUs
  std::string pid_file = "/tmp/harbormq.pid";  // ours: for stop/restart/reload
  TcpListener tcp;
  WsListener ws;
  SslListener ssl;
  WssListener wss;
  NamedListeners named_listeners;  // listeners.<kind>.<name> (listeners.cpp reads them)
  MqttSettings mqtt;
  SqliteSettings sqlite;
  LogSettings log;
  HttpServerSettings http_server;
  // `bridges.mqtt.<name>` in file order, and `bridges.mqtt.cache` (bridges.cpp reads them).
  std::vector<BridgeSettings> bridges;
  BridgeCacheSettings bridge_cache;
  AuthSettings auth;  // `auth {}` (auth.cpp reads it); reloadable as one unit
  // Sections accepted but not implemented yet (one warning each was emitted).
  std::vector<std::string> unimplemented_sections;
  // Protections the file asks for that HarborMQ does not enforce yet (auth, ACL, TLS):
  // the broker refuses to start, and a reload refuses the file, while this is not empty.
  std::vector<ConfigError> unenforced_protections;
  KeyOrigins origins;
  bool operator==(const Config&) const = default;

  // "FILE:LINE: KEY: MESSAGE" naming where `key`'s value came from ("<defaults>" when it
  // is the built-in default), for errors found after loading.
  std::string key_error(std::string_view key, std::string_view message) const;
};

// Warnings collected while loading (unimplemented sections, deprecated forms).
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<std::string> warnings;
};

// Loads `path` (HOCON). Unknown keys are errors with a "did you mean" suggestion.
tl::expected<LoadResult, ConfigError> load_file(const std::string& path);
// Parses HOCON text; `name` is used in error messages in place of a file name.
tl::expected<LoadResult, ConfigError> load_string(const std::string& text, const std::string& name);
// Built-in defaults (equal to etc/harbormq.conf).
std::shared_ptr<const Config> defaults();

// What to load: a file (empty path = built-in defaults), then HARBORMQ_* environment
// variables (HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW=10: "__" separates levels), then
// command-line "key=value" overrides (`--set mqtt.max_inflight_window=10`), in that order.
struct LoadOptions {
  std::string path;
  std::vector<std::string> overrides;
  bool read_environment = true;
};
tl::expected<LoadResult, ConfigError> load(const LoadOptions& options);

// One key whose value differs between two configurations, for `harbormq reload`: the
// caller applies the change when `reloadable`, else logs that it needs a restart.
struct KeyChange {
  std::string key;     // schema key, e.g. "mqtt.max_inflight_window"
  std::string before;  // values as text: durations in ms ("10000ms"), sizes in bytes
  std::string after;
  bool reloadable = false;
  bool operator==(const KeyChange&) const = default;
};
// Every schema key whose value differs, in schema order, then one change per named listener
// added, removed or moved (never reloadable) and per certificate key of a named one
// (reloadable), one "bridges.mqtt" change (never reloadable) when the bridges or their cache
// differ, and one "auth" change (reloadable) when the auth section or its files differ.
// Pure; any thread.
std::vector<KeyChange> diff(const Config& before, const Config& after);

// What a reload runs with: `fresh`'s values for every reloadable key and for auth,
// `running`'s for every other key, for the bridges and for the set of named listeners (they
// take effect only on restart); a named listener's certificate keys are `fresh`'s.
// Pure; any thread.
std::shared_ptr<const Config> merge_for_reload(const Config& running, const Config& fresh);

}  // namespace harbor::config
