// The bridge keys as data: the reader's "did you mean" candidates and the "Bridges" section
// of docs/configuration.md come from these tables, so the two cannot disagree.
#include <array>

#include "config/bridges.hpp"

namespace harbor::config {
namespace {

constexpr std::string_view kServerDoc =
    "`mqtt-tcp://host:port` or `tcp://host:port`; the port is 1883 when left out. Over TLS: "
    "`tls+mqtt-tcp://host:port` or `mqtts://host:port` (`tls+tcp://` and `ssl://` too); the "
    "port is 8883 when left out, and `ssl` (below) applies. The host is kept as written: a "
    "name, an IPv4 address, NanoMQ's short `127.1`, or an IPv6 address in brackets "
    "(`[::1]:1883`, kept without them); over TLS the remote's certificate must be for that "
    "name or address. `mqtt-quic://` is refused.";

const std::array kBridge = {
    BridgeKeyDoc{"server", "server", "required", kServerDoc},
    BridgeKeyDoc{"enable", "bool", "`true`",
                 "Ours. `false` keeps the bridge in the configuration without starting it."},
    BridgeKeyDoc{"proto_ver", "4 or 5", "`4`",
                 "MQTT version spoken to the remote: 4 = 3.1.1, 5 = 5.0. NanoMQ's 3 (MQTT 3.1) "
                 "is refused."},
    BridgeKeyDoc{"clientid", "string", "`\"\"`",
                 "Client Identifier on the remote. Empty: `harbormq-bridge-<name>`, stable so "
                 "the remote session survives restarts (NanoMQ picks a random one)."},
    BridgeKeyDoc{"keepalive", "duration (bare number: seconds)", "`60s`",
                 "Keep Alive sent in CONNECT: whole seconds, 0–65535."},
    BridgeKeyDoc{"clean_start", "bool", "`false`", "Clean Start (3.1.1: Clean Session) flag."},
    BridgeKeyDoc{"username", "string", "none",
                 "User Name sent in CONNECT; unquoted text is a "
                 "string (`username = username`)."},
    BridgeKeyDoc{"password", "string", "none", "Password sent in CONNECT."},
    BridgeKeyDoc{"conn_properties", "object", "none",
                 "MQTT 5 CONNECT properties (below). Not sent by a `proto_ver = 4` bridge, which "
                 "warns about them."},
    BridgeKeyDoc{"will", "object", "none", "Will message registered on the remote (below)."},
    BridgeKeyDoc{"forwards", "list of objects", "`[]`",
                 "Local messages sent to the remote (below)."},
    BridgeKeyDoc{"subscription", "list of objects", "`[]`",
                 "Subscriptions made on the remote; what arrives is published locally (below)."},
    BridgeKeyDoc{"backoff_max", "duration (bare number: seconds), 100ms–1d", "`60s`",
                 "Longest wait between two connection attempts after the link is lost."},
    BridgeKeyDoc{"hybrid_servers", "list of servers", "`[]`",
                 "Servers tried after `server`, in turn, when a connection fails; each written "
                 "like `server`; plain and TLS schemes may be mixed, each server is dialled "
                 "over TLS when its scheme says so. `mqtt-quic://` entries are skipped with one "
                 "warning."},
    BridgeKeyDoc{"max_parallel_processes", "integer 1–4294967295", "`2`",
                 "NanoMQ: outstanding requests handled at once. Accepted, warned, not acted on: "
                 "one link per bridge, whose window bounds what is in flight.",
                 false},
    BridgeKeyDoc{"max_send_queue_len", "integer 1–4294967295", "`32`",
                 "NanoMQ: length of the send queue. Accepted, warned, not acted on: the "
                 "bridge's queue is bounded by `bridges.mqtt.cache.disk_cache_size`.",
                 false},
    BridgeKeyDoc{"max_recv_queue_len", "integer 1–4294967295", "`128`",
                 "NanoMQ: length of the receive queue. Accepted, warned, not acted on: what "
                 "the remote sends is read as fast as local receivers drain.",
                 false},
    BridgeKeyDoc{"resend_interval", "duration (bare number: ms), 1ms–1d", "`5000ms`",
                 "MQTT 3.1.1 bridges: interval at which unacknowledged QoS 1/2 messages are "
                 "resent while the link is up (in place of `mqtt.retry_interval`). MQTT 5 "
                 "resends only on reconnect."},
    BridgeKeyDoc{"resend_wait", "duration (bare number: ms), 1ms–1d", "`3000ms`",
                 "NanoMQ: wait after publishing before a message is resent. Accepted, warned, "
                 "not acted on (`resend_interval` applies).",
                 false},
    BridgeKeyDoc{"cancel_timeout", "duration (bare number: ms), 1ms–1d", "`8000ms`",
                 "NanoMQ: longest wait for a QoS message's acknowledgement. Accepted, warned, "
                 "not acted on: a message stays until the remote acknowledges it.",
                 false},
    BridgeKeyDoc{"max_inflight", "integer 0–65535", "`0`",
                 "Ours: QoS 1/2 messages in flight to the remote at most; 0 = "
                 "`mqtt.max_inflight_window`."},
    BridgeKeyDoc{"transparent", "bool", "`false`",
                 "NanoMQ's transparent bridging (local SUBSCRIBE/UNSUBSCRIBE proxied to the "
                 "remote) is not implemented; `true` warns.",
                 false},
    BridgeKeyDoc{"hybrid_bridging", "bool", "`false`",
                 "Not needed: a bridge always fails over through `hybrid_servers` when that "
                 "list is not empty.",
                 false},
    BridgeKeyDoc{"quic_*", "any", "", "QUIC transport settings (no QUIC transport).", false},
    BridgeKeyDoc{"sub_properties", "object", "", "MQTT 5 SUBSCRIBE properties.", false},
    BridgeKeyDoc{"tcp", "object", "", "TCP socket options (`nodelay`, `bind_interface`, ...).",
                 false},
    BridgeKeyDoc{"retry_qos_0", "bool", "", "NanoMQ's switch for caching QoS 0 messages.", false},
    BridgeKeyDoc{"ssl", "object", "none",
                 "TLS settings for the bridge's TLS servers (below). Without it a TLS server is "
                 "verified against the system's CAs and no certificate of ours is sent. An "
                 "enabled `ssl` on a bridge with no TLS server is an error."},
};

const std::array kSsl = {
    BridgeKeyDoc{"enable", "bool", "`true`",
                 "`false`: the block is ignored; then no server of the bridge may be a TLS one."},
    BridgeKeyDoc{"cacertfile", "string (path)", "`\"\"`",
                 "PEM file of the CAs the remote's certificate is verified against; empty: the "
                 "system's CA store."},
    BridgeKeyDoc{"certfile", "string (path)", "`\"\"`",
                 "PEM file of our certificate (then its chain), sent when the remote asks for "
                 "one (mutual TLS). Needs `keyfile`."},
    BridgeKeyDoc{"keyfile", "string (path)", "`\"\"`",
                 "PEM file of `certfile`'s private key. Needs `certfile`."},
    BridgeKeyDoc{"key_password", "string", "`\"\"`",
                 "Password of an encrypted `keyfile`; empty: the key is not encrypted."},
    BridgeKeyDoc{"verify_peer", "bool", "`true`",
                 "Verify the remote's certificate chain and that it is for the host in the "
                 "server's address (DNS name, sent as SNI, or IP address). `false` accepts any "
                 "certificate, a man in the middle's too, and warns."},
    BridgeKeyDoc{"fail_if_no_peer_cert", "bool", "",
                 "A TLS server's setting (NanoMQ's shared TLS keys); a bridge is the client.",
                 false},
};

const std::array kConnProperties = {
    BridgeKeyDoc{"maximum_packet_size", "integer 1–4294967295", "none", "Maximum Packet Size."},
    BridgeKeyDoc{"receive_maximum", "integer 1–65535", "none", "Receive Maximum."},
    BridgeKeyDoc{"topic_alias_maximum", "integer 0–65535", "none", "Topic Alias Maximum."},
    BridgeKeyDoc{"request_problem_infomation", "0 or 1", "none",
                 "Request Problem Information; NanoMQ's spelling, the correct one is accepted "
                 "too (not both).",
                 true, "request_problem_information"},
    BridgeKeyDoc{"request_response_infomation", "0 or 1", "none",
                 "Request Response Information; NanoMQ's spelling, the correct one is accepted "
                 "too (not both).",
                 true, "request_response_information"},
    BridgeKeyDoc{"session_expiry_interval", "integer 0–4294967295 (seconds)", "none",
                 "Session Expiry Interval."},
    BridgeKeyDoc{"user_property", "object", "none",
                 "User Properties, `{ name = value, ... }` in order; `user_properties` is "
                 "accepted too.",
                 true, "user_properties"},
};

const std::array kWill = {
    BridgeKeyDoc{"topic", "topic name", "required", "Will Topic (no wildcards)."},
    BridgeKeyDoc{"payload", "string", "`\"\"`", "Will Payload."},
    BridgeKeyDoc{"qos", "integer 0–2", "`0`", "Will QoS."},
    BridgeKeyDoc{"retain", "bool", "`false`", "Will Retain."},
    BridgeKeyDoc{"properties", "object", "", "MQTT 5 Will properties.", false},
};

const std::array kForward = {
    BridgeKeyDoc{"local_topic", "topic filter", "required",
                 "Local messages whose topic matches are sent to the remote."},
    BridgeKeyDoc{"remote_topic", "topic name", "`\"\"`",
                 "Topic on the remote; empty keeps the message's own topic."},
    BridgeKeyDoc{"prefix", "string", "`\"\"`", "Put before the remote topic (no wildcards)."},
    BridgeKeyDoc{"suffix", "string", "`\"\"`", "Put after the remote topic (no wildcards)."},
    BridgeKeyDoc{"qos", "integer 0–2", "unset", "Replaces the message's QoS; unset keeps it."},
    BridgeKeyDoc{"retain", "0, 1, 2 or bool", "`2`",
                 "0/1 (false/true) replace the message's retain flag; 2 keeps it."},
};

const std::array kSubscription = {
    BridgeKeyDoc{"remote_topic", "topic filter", "required", "Filter subscribed on the remote."},
    BridgeKeyDoc{"local_topic", "topic name", "`\"\"`",
                 "Topic the messages are published on locally; empty keeps their own topic."},
    BridgeKeyDoc{"prefix", "string", "`\"\"`", "Put before the local topic (no wildcards)."},
    BridgeKeyDoc{"suffix", "string", "`\"\"`", "Put after the local topic (no wildcards)."},
    BridgeKeyDoc{"qos", "integer 0–2", "`0`",
                 "Maximum QoS of the subscription. NanoMQ requires it; HarborMQ uses 0 when "
                 "it is left out."},
    BridgeKeyDoc{"nolocal", "bool or 0/1", "`false`", "MQTT 5 No Local option.", true, "no_local"},
    BridgeKeyDoc{"retain_as_published", "bool or 0/1", "`false`",
                 "MQTT 5 Retain As Published option."},
    BridgeKeyDoc{"retain_handling", "integer 0–2", "`0`", "MQTT 5 Retain Handling option."},
    BridgeKeyDoc{"retain", "0, 1, 2 or bool", "", "NanoMQ's override of the local retain flag.",
                 false},
};

const std::array kCache = {
    BridgeKeyDoc{"disk_cache_size", "integer 0–∞", "`102400`",
                 "Messages waiting for a remote, per bridge, at most; 0 = unbounded."},
    BridgeKeyDoc{"flush_mem_threshold", "integer 1–4294967295", "`100`",
                 "Waiting messages per bridge held in memory (the session's in-memory head, "
                 "in place of `sqlite.flush_mem_threshold`); the rest waits on disk."},
    BridgeKeyDoc{"resend_interval", "duration (bare number: ms), 1ms–1d", "`5000ms`",
                 "Accepted, warned, not acted on. NanoMQ moved this key into each bridge in "
                 "0.22.8; the bridge's own `resend_interval` is used.",
                 false},
    BridgeKeyDoc{"mounted_file_path", "string", "",
                 "The bridges' cache lives in the SQLite store at `sqlite.mounted_file_path`.",
                 false},
};

// Markdown tables treat '|' as a column break.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string key_cell(const BridgeKeyDoc& k) {
  std::string out = "`" + std::string(k.key) + "`";
  if (!k.alias.empty()) out += " / `" + std::string(k.alias) + "`";
  return out;
}

// `intro`: paragraphs between the heading and the table, each line ending in '\n'.
std::string table(std::string_view title, std::span<const BridgeKeyDoc> keys,
                  std::string_view intro = {}) {
  std::string out = "\n### " + std::string(title) + "\n\n";
  if (!intro.empty()) out += std::string(intro) + "\n";
  out += "| Key | Type | Default | Description |\n|---|---|---|---|\n";
  for (const auto& k : keys) {
    if (!k.acted_on) continue;
    out += "| " + key_cell(k) + " | " + cell(k.type) + " | " + cell(k.default_value) + " | " +
           cell(k.doc) + " |\n";
  }
  return out;
}

}  // namespace

std::span<const BridgeKeyDoc> bridge_keys(BridgeKeyGroup group) {
  switch (group) {
    case BridgeKeyGroup::Bridge:
      return kBridge;
    case BridgeKeyGroup::ConnProperties:
      return kConnProperties;
    case BridgeKeyGroup::Will:
      return kWill;
    case BridgeKeyGroup::Forward:
      return kForward;
    case BridgeKeyGroup::Subscription:
      return kSubscription;
    case BridgeKeyGroup::Ssl:
      return kSsl;
    case BridgeKeyGroup::Cache:
      return kCache;
  }
  return {};
}

std::string render_bridges_markdown() {
  std::string out =
      "\n## Bridges\n"
      "\n"
      "`bridges.mqtt.<name> { ... }` (or `bridges.mqtt.<name> = { ... }`) declares one MQTT\n"
      "bridge to a remote broker, with NanoMQ's keys. Every object under `bridges.mqtt` but\n"
      "`cache` is a bridge named by its key, kept in file order; names are unique and must not\n"
      "be empty or hold a `.`. `bridges.mqtt.cache { ... }` holds the settings of the store\n"
      "that keeps what waits for a remote. `bridges.aws`, `bridges.nng` and any other\n"
      "`bridges.<type>` are NanoMQ sections not implemented yet (see the last table).\n"
      "\n"
      "Every value error names the file, line and full key, e.g.\n"
      "`bridges.mqtt.emqx1.forwards[0].qos`; an unknown key inside a bridge, `will`,\n"
      "`conn_properties`, a `forwards` or a `subscription` entry, or the cache is an error\n"
      "that suggests the closest known key. Bridges are reloadable: `harbormq reload` adds,\n"
      "removes and restarts the bridges whose settings changed (docs/bridges.md).\n"
      "\n"
      "Bool values take `true`/`false` (also `yes`/`no`, `on`/`off`) and `1`/`0`. Topic\n"
      "filters must not be empty, `#` must stand alone in the last level and `+` alone in its\n"
      "level; topic names (a forward's `remote_topic`, a subscription's `local_topic`,\n"
      "`prefix`, `suffix`, the will's `topic`) hold no wildcards.\n"
      "\n"
      "Topic mapping: a local message whose topic matches a forward's `local_topic` goes to\n"
      "the remote on `prefix` + (`remote_topic`, or the message's own topic when `remote_topic`\n"
      "is empty) + `suffix`. A message arriving through a subscription's `remote_topic` is\n"
      "published locally on `prefix` + (`local_topic`, or its own topic when `local_topic` is\n"
      "empty) + `suffix`.\n";
  out += table("`bridges.mqtt.<name>`", kBridge);
  out += table("`bridges.mqtt.<name>.conn_properties`", kConnProperties);
  out += table("`bridges.mqtt.<name>.will`", kWill);
  out += table("`bridges.mqtt.<name>.forwards[]`", kForward);
  out += table("`bridges.mqtt.<name>.subscription[]`", kSubscription);
  out += table(
      "`bridges.mqtt.<name>.ssl`", kSsl,
      "NanoMQ's TLS keys, used for each server of the bridge written `tls+mqtt-tcp://` or\n"
      "`mqtts://`: the TLS handshake follows the TCP connect, then CONNECT goes out encrypted\n"
      "(TLS 1.2 or 1.3). The files are read once, when the broker starts; one that cannot be\n"
      "used stops the start with an error naming the file, line and key. A handshake that\n"
      "fails (a certificate from another CA, for another name, expired; the remote refusing\n"
      "ours) is logged with OpenSSL's reason, the bridge's name and the server, and the\n"
      "server is dialled again with the bridge's back-off.\n");
  out += table("`bridges.mqtt.cache`", kCache);
  out +=
      "\n### Bridge keys accepted but not acted on\n"
      "\n"
      "Each is accepted with one warning naming the full key (`transparent` only when it is\n"
      "`true`), e.g. `FILE:LINE: bridges.mqtt.emqx1.quic_keepalive: accepted, not acted on\n"
      "(QUIC transport)`; its value is not used.\n"
      "\n"
      "| Key | Why |\n"
      "|---|---|\n";
  const std::pair<std::string_view, std::span<const BridgeKeyDoc>> groups[] = {
      {"bridges.mqtt.<name>.", kBridge},
      {"bridges.mqtt.<name>.will.", kWill},
      {"bridges.mqtt.<name>.subscription[].", kSubscription},
      {"bridges.mqtt.<name>.ssl.", kSsl},
      {"bridges.mqtt.cache.", kCache},
  };
  for (const auto& [prefix, keys] : groups) {
    for (const auto& k : keys) {
      if (k.acted_on) continue;
      out += "| `" + std::string(prefix) + std::string(k.key) + "` | " + cell(k.doc) + " |\n";
    }
  }
  return out;
}

}  // namespace harbor::config
