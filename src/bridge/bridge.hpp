// One MQTT bridge: a persistent session of ours (broker/bridge_rules.hpp) whose connection
// the broker dials to a remote broker, in the client role. Its forward rules are the
// session's subscriptions, so what it forwards is queued, stored, paged and resent like any
// session's (no second queueing mechanism, DESIGN.md §3); what arrives over its remote
// subscriptions is published locally like a client's PUBLISH and acknowledged to the
// remote after our commit.
//
// Thread: constructed and prepare()d on the main thread before the shards run; everything
// else on its shard's loop thread (the shard home_shard(client id) names).
// Emits: log lines for each connection attempt that fails, each link up and down (with its
// reason; a TLS link's protocol, cipher and whether the certificate was verified), refused
// subscriptions; through the session, PUBLISH/PUBREL to the remote and
// PUBACK/PUBREC/PUBCOMP for what the remote sends.
// Reconnect: after a failed attempt or a lost link, the next server (server, then each of
// hybrid_servers in turn) is dialled after a delay that doubles from 1 s up to backoff_max,
// with jitter (half fixed, half random); a link that reached CONNACK resets the delay.
// TLS: a server with a context (RemoteAddress::tls) gets the TLS handshake after the TCP
// connect, then CONNECT encrypted; a failed handshake is a failed attempt, logged with
// OpenSSL's reason ("cannot connect to h:8883: TLS handshake failed: certificate verify
// failed: ...") and followed by the same back-off.
// Keep alive: PINGREQ when nothing was sent for half the keep alive; a remote silent for
// 1.25x the keep alive (mqtt.keepalive_multiplier) is dropped by the shard's sweep.
#pragma once

#include <netdb.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "broker/bridge_rules.hpp"
#include "mqtt/packets.hpp"
#include "runtime/connection.hpp"
#include "runtime/shard.hpp"
#include "wire/tls.hpp"

namespace harbor::bridge {

struct RemoteAddress {
  std::string host;
  uint16_t port = 1883;
  // Non-null: dialled over TLS with this client context (its server name is `host`), built
  // once when the bridge is made; every dial of this server shares it.
  std::shared_ptr<const wire::TlsContext> tls;
};

// One remote subscription (remote → local).
struct RemoteSubscription {
  std::string remote_topic;  // filter subscribed on the remote
  std::string local_topic;   // replaces the topic when not empty
  std::string prefix;
  std::string suffix;
  mqtt::QoS qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
};

struct Spec {
  std::shared_ptr<const broker::BridgeRules> rules;  // name and forward rules
  std::vector<RemoteAddress> servers;                // `server`, then `hybrid_servers`
  mqtt::Version version = mqtt::Version::v311;
  std::string remote_client_id;
  uint16_t keep_alive_s = 60;
  bool clean_start = false;
  std::optional<std::string> username;
  std::optional<std::string> password;
  mqtt::Properties connect_props;  // 5.0
  std::optional<mqtt::Will> will;
  std::vector<RemoteSubscription> subscriptions;
  int64_t backoff_max_ms = 60'000;
  uint16_t max_inflight = 65535;  // our bound on QoS 1/2 in flight to the remote
};

// The local topic of a message from the remote under `sub`: prefix + (local_topic or
// topic) + suffix.
std::string local_topic_of(const RemoteSubscription& sub, std::string_view topic);

class Bridge final : public runtime::OutboundRole {
 public:
  Bridge(Spec spec, runtime::Shard& shard);
  // Main thread, after the shards stopped: a host name lookup still running finds no bridge.
  ~Bridge() override;
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Main thread before the shards run, or the shard's loop thread (a reload): the bridge's
  // session exists with its subscriptions.
  void prepare();
  // Shard thread (a reload removed or changed the bridge): its timers are cancelled, a host
  // name lookup still running finds no bridge, its link is closed; once the link's on_closed
  // came (at once without a link), `drop_session` deletes its session with its queue
  // (ShardBroker::drop_bridge_session, logged with the count) and the bridge is destroyed,
  // on this thread: nothing calls it after that.
  static void retire(std::unique_ptr<Bridge> self, bool drop_session);
  // Any thread: the first dial, on the shard's loop.
  void start();

  const std::string& name() const { return spec_.rules->name; }
  std::string client_id() const { return spec_.rules->client_id(); }

  // What the bridge is doing, for the log now and the management API later. Shard thread.
  struct Status {
    bool connected = false;
    std::string remote;          // the address of the link or of the current attempt
    int64_t connected_since_ms = 0;  // steady ms of the CONNACK (when connected)
    uint64_t acknowledged = 0;   // forwarded messages the remote acknowledged (PUBACK/PUBCOMP)
    uint64_t received = 0;       // PUBLISHes from the remote
    uint64_t links = 0;          // links that reached CONNACK since start
    uint32_t failed_attempts = 0;  // attempts since the last link came up
  };
  Status status() const;

  // runtime::OutboundRole
  void on_socket_connected(runtime::Connection& c) override;
  broker::Flow on_packet(runtime::Connection& c, mqtt::Packet& p) override;
  void on_closed(runtime::Connection& c) override;

 private:
  void dial();
  // A host name is looked up on a thread of its own (getaddrinfo may wait seconds for a DNS
  // server), the answer posted back to the shard: the shard never blocks on it.
  void resolve(const RemoteAddress& a);
  void on_resolved(size_t server, int rc, std::shared_ptr<addrinfo> found);
  void connect_to(const RemoteAddress& a, const addrinfo& where);
  void redial_later();
  void on_connack(runtime::Connection& c, const mqtt::Connack& ack);
  void subscribe_remote(runtime::Connection& c);
  void arm_ping();
  std::string describe(const RemoteAddress& a) const;
  void finish_retiring();

  Spec spec_;
  runtime::Shard& shard_;
  runtime::Connection* link_ = nullptr;  // the current attempt or link (owned by the shard)
  size_t server_ = 0;                    // index into spec_.servers of the current attempt
  uint32_t failures_ = 0;                // attempts since the last link that came up
  bool up_ = false;                      // CONNACK success on link_
  int64_t up_since_ms_ = 0;
  uint16_t subscribe_id_ = 0;  // packet id of the SUBSCRIBE in flight (0: none)
  runtime::TimerId redial_timer_ = 0;
  // Shared with the lookup threads: `bridge` is cleared (under `mu`) when the bridge goes.
  struct LookupTarget {
    std::mutex mu;
    Bridge* bridge = nullptr;
  };
  std::shared_ptr<LookupTarget> lookup_target_;
  bool resolving_ = false;  // a lookup is running: no other dial until it answers
  runtime::TimerId ping_timer_ = 0;
  std::minstd_rand rng_;
  uint64_t acknowledged_ = 0;
  uint64_t received_ = 0;
  uint64_t links_ = 0;
  uint64_t link_acknowledged_ = 0;  // at the start of the current link
  uint64_t link_received_ = 0;
  // Set by retire() while the link closes: the bridge owns itself until on_closed.
  std::unique_ptr<Bridge> retiring_self_;
  bool drop_session_when_retired_ = false;
};

}  // namespace harbor::bridge
