// MQTT bridges (`bridges.mqtt.<name> {}` and `bridges.mqtt.cache {}`), NanoMQ's keys read
// unchanged (docs/configuration.md "Bridges"). Plain data, part of the immutable Config.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace harbor::config {

// A remote broker's address from `server` or `hybrid_servers`: "mqtt-tcp://host:port"
// (scheme "mqtt-tcp" or "tcp"; port 1883 when left out) or, over TLS,
// "tls+mqtt-tcp://host:port" (also "mqtts", "tls+tcp", "ssl"; port 8883 when left out).
// QUIC schemes are refused (`server`) or skipped (`hybrid_servers`).
struct BridgeServer {
  std::string host;
  uint16_t port = 1883;
  bool tls = false;  // dialled over TLS, with the bridge's `ssl` settings
  bool operator==(const BridgeServer&) const = default;
};

// `ssl {}`: NanoMQ's TLS keys of a bridge, used for each of its TLS servers. Paths are kept
// as written (relative ones are relative to the broker's working directory); the files are
// read when the broker starts, which refuses to start when one cannot be used.
struct BridgeTlsSettings {
  std::string cacertfile;    // PEM: CAs trusted for the remote; empty: the system's store
  std::string certfile;      // PEM: our certificate (mutual TLS); empty: none sent
  std::string keyfile;       // its private key; required with certfile and only with it
  std::string key_password;  // empty: the key is not encrypted
  // Verify the remote's certificate chain and that it is for the host dialled (DNS name or
  // IP address, SNI sent for names). false: any certificate is accepted, with a warning.
  bool verify_peer = true;
  bool operator==(const BridgeTlsSettings&) const = default;
};

// One `forwards` entry: local messages whose topic matches `local_topic` (a filter) go to the
// remote. Their remote topic is `prefix` + (remote_topic, or the message's own topic when
// remote_topic is empty) + `suffix`.
struct BridgeForward {
  std::string local_topic;   // required, a valid filter
  std::string remote_topic;  // a topic name (no wildcards) or empty
  std::string prefix;
  std::string suffix;
  std::optional<uint8_t> qos;  // 0..2: replaces the message's QoS; unset keeps it
  std::optional<bool> retain;  // NanoMQ's 0/1 replace the retain flag; 2 or unset keeps it
  bool operator==(const BridgeForward&) const = default;
};

// One `subscription` entry: subscribed on the remote at `qos`; what arrives is published
// locally on `prefix` + (local_topic, or the message's own topic when local_topic is empty)
// + `suffix`.
struct BridgeSubscription {
  std::string remote_topic;  // required, a valid filter
  std::string local_topic;   // a topic name (no wildcards) or empty
  std::string prefix;
  std::string suffix;
  uint8_t qos = 0;
  bool no_local = false;  // 5.0 subscription options (sent as given)
  bool retain_as_published = false;
  uint8_t retain_handling = 0;  // 0..2
  bool operator==(const BridgeSubscription&) const = default;
};

struct BridgeWill {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  bool operator==(const BridgeWill&) const = default;
};

// MQTT 5 CONNECT properties (`conn_properties`); absent ones are not sent.
struct BridgeConnProperties {
  std::optional<uint32_t> maximum_packet_size;
  std::optional<uint16_t> receive_maximum;
  std::optional<uint16_t> topic_alias_maximum;
  std::optional<uint8_t> request_problem_information;  // NanoMQ spells it "infomation"
  std::optional<uint8_t> request_response_information;
  std::optional<uint32_t> session_expiry_interval;
  std::vector<std::pair<std::string, std::string>> user_properties;
  bool operator==(const BridgeConnProperties&) const = default;
};

struct BridgeSettings {
  std::string name;     // the <name> of bridges.mqtt.<name>
  bool enabled = true;  // ours: `enable` (NanoMQ's nng bridges have it), default on
  BridgeServer server;  // `server`, required
  // `hybrid_servers` in order (QUIC entries are skipped with a warning), tried after
  // `server` in turn when a connection fails.
  std::vector<BridgeServer> hybrid_servers;
  BridgeTlsSettings ssl;  // for the servers with tls; an enabled `ssl {}` needs one of them
  uint8_t proto_ver = 4;  // 4 (3.1.1) or 5; NanoMQ's 3 (3.1) is refused
  std::string clientid;  // empty: "harbormq-bridge-<name>" (stable, so the remote session survives)
  std::chrono::seconds keepalive{60};
  bool clean_start = false;
  std::optional<std::string> username;
  std::optional<std::string> password;
  BridgeConnProperties conn_properties;
  std::optional<BridgeWill> will;
  std::vector<BridgeForward> forwards;
  std::vector<BridgeSubscription> subscriptions;
  std::chrono::milliseconds backoff_max{60'000};
  uint32_t max_parallel_processes = 2;               // accepted; see docs
  uint32_t max_send_queue_len = 32;                  // accepted; see docs
  uint32_t max_recv_queue_len = 128;                 // accepted; see docs
  std::chrono::milliseconds resend_interval{5'000};  // QoS 1/2 resend while the link is up
  std::chrono::milliseconds resend_wait{3'000};      // accepted; see docs
  std::chrono::milliseconds cancel_timeout{8'000};   // accepted; see docs
  uint32_t max_inflight = 0;  // ours: QoS 1/2 in flight to the remote; 0 = mqtt.max_inflight_window
  bool operator==(const BridgeSettings&) const = default;
};

// `bridges.mqtt.cache`: the store that keeps what waits for a remote.
struct BridgeCacheSettings {
  uint64_t disk_cache_size = 102400;   // messages waiting per bridge at most; 0 = unbounded
  std::string mounted_file_path;       // accepted; the bridges use sqlite.mounted_file_path
  uint32_t flush_mem_threshold = 100;  // queue entries per bridge held in memory
  std::chrono::milliseconds resend_interval{5'000};  // accepted; see docs
  bool operator==(const BridgeCacheSettings&) const = default;
};

}  // namespace harbor::config
