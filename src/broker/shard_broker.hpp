// The broker logic of one shard: CONNECT/session lifecycle, PUBLISH routing, QoS flows,
// subscriptions, retained messages, wills, keepalive and retry sweeps.
// Owner: the shard's thread. Other shards reach it only through ShardServices::post_to_shard.
// Emits packets by appending to Link::out(); emits persistence ops to BrokerContext::store.
// Defined by concept over: shard_broker.cpp (construction, dispatch, closing),
// session_lifecycle.cpp, inbound_publish.cpp, routing.cpp, outbound_delivery.cpp,
// subscriptions.cpp, sweep_restore.cpp; outputs waiting for the store are in gate_
// (durability_gate.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/client_summary.hpp"
#include "broker/context.hpp"
#include "broker/durability_gate.hpp"
#include "broker/link.hpp"
#include "broker/publish_encoder.hpp"
#include "broker/session.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/packets.hpp"

namespace harbor::broker {

// Tracks the parts of one inbound QoS 1/2 PUBLISH (its routing on the publisher's shard and
// each delivery handed to another shard; each may submit persistence ops). The shard that
// finishes the last part (ShardBroker::finish_ack_part) releases the acknowledgement to the
// origin shard, which sends it once max_seq is durable (DurabilityGate).
struct AckWaiter;
using AckToken = std::shared_ptr<AckWaiter>;

// An acknowledgement whose parts are all done, on its way back to the publisher's shard.
struct AckRelease {
  uint64_t link_id = 0;
  uint16_t packet_id = 0;
  mqtt::QoS qos = 0;
  uint64_t seq = 0;  // durable through this sequence before it is sent
  SessionId session = 0;
  bool refused = false;
  bool no_subscribers = false;  // 5.0: acknowledged with 0x10
};

struct RemoteDelivery {
  SessionId session = 0;
  MessagePtr msg;
  mqtt::QoS qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  AckToken token;
  // The connection the message came from (0: none, e.g. a will), paused on its shard if
  // this receiver is full.
  uint64_t publisher_link = 0;
  unsigned publisher_shard = 0;
  SharedGroupId shared_group = 0;  // from a shared subscription: its group (OutEntry)
};

class ShardBroker {
 public:
  ShardBroker(BrokerContext& ctx, ShardServices& services);
  ~ShardBroker();

  // ---- from the connection layer ----
  void on_link_opened(Link* link);
  void on_connect(Link* link, mqtt::Connect connect);
  // auth.http_auth's answer for the connection `link_id` (HttpAuthPort::ask).
  void on_http_auth_answer(uint64_t link_id, HttpAuthAnswer answer);
  // Flow::Pause: a receiver of this PUBLISH is full; stop reading `link` until the shard's
  // receivers have drained (the runtime resumes it).
  Flow on_packet(Link* link, mqtt::Packet packet);
  // A protocol violation on `link`: answers per version, then closes it.
  void on_protocol_error(Link* link, const mqtt::Error& error);
  // The socket is gone (peer closed, error, or after close_after_flush). Called once.
  void on_link_closed(Link* link);
  // `link` asked for it (wants_writable) and its output is below the low-water mark.
  void on_link_writable(Link* link);

  // ---- from other shards / the runtime ----
  // The settings this shard runs with. Owner thread only. A reload replaces them
  // (set_settings, posted to every shard): new connections and sessions take the new limits;
  // a session keeps the window it was created with.
  const Settings& settings() const { return *settings_; }
  void set_settings(std::shared_ptr<const Settings> s) { settings_ = std::move(s); }
  void deliver_batch(std::vector<RemoteDelivery>& batch);
  void on_ack_ready(const AckRelease& r);
  // The store committed more; release acknowledgements that were waiting for it.
  void on_durable();
  // Restored at startup (before listeners open), on the shard broker::home_shard picks.
  void restore_session(RestoredSession restored);
  // End of a loop iteration: hand batched deliveries to other shards.
  void flush_outboxes();
  // Periodic sweep: keepalive, 3.1.1 retry, QoS 2 await-rel timeout.
  void sweep();
  // Broker shutdown: DISCONNECT 0x8B (5.0) and close every connection; persist last-seen.
  void shutdown();

  size_t session_count() const { return sessions_.size(); }
  // Owner thread: a copy of every session on this shard, online and offline, for the
  // management API (src/http asks by posting to the shard's loop). Unordered.
  std::vector<ClientSummary> client_summaries() const;

  // ---- bridges (src/bridge/): a bridge is a persistent session whose connection the
  // broker dials ----
  // Startup (after restore, before any client connects), on the shard that
  // home_shard(rules->client_id()) names: the bridge's session exists (restored or made),
  // never expires, carries `rules`, and has exactly one subscription per distinct forward
  // filter (others are removed, in the store too). Logged once.
  void ensure_bridge_session(std::shared_ptr<const BridgeRules> rules, mqtt::Version v);
  // Startup: restored bridge sessions whose client id is not in `configured` end, with
  // their queues (logged at warn, one line each).
  void drop_unconfigured_bridges(const std::vector<std::string>& configured);
  // A reload removed the bridge of `client_id` (its link already closed): its session ends
  // with its queue, logged at warn with the number of messages deleted. No-op without one.
  void drop_bridge_session(const std::string& client_id);
  struct BridgeAttach {
    std::string client_id;  // BridgeRules::client_id()
    mqtt::Version version = mqtt::Version::v311;
    uint16_t window = 65535;           // min(remote's Receive Maximum, our in-flight bound)
    uint32_t max_packet = 0xFFFFFFFF;  // remote's Maximum Packet Size (5.0)
    uint16_t keep_alive_s = 0;         // silent for 1.25x this: KeepAliveTimeout (sweep)
    bool session_present = false;      // the remote's CONNACK flag (for the log)
  };
  // The remote accepted the bridge's CONNECT on `link`: the session attaches to it, resends
  // what was in flight (DUP) and sends its queue, through link->out(). False (nothing done)
  // when no bridge session has that id on this shard.
  bool attach_bridge(Link* link, const BridgeAttach& a);
  // Messages the session of `client_id` owes (queued, in memory or on disk, and in flight);
  // 0 when there is none on this shard.
  size_t waiting_of(const std::string& client_id) const;

  // Online sessions with a long queue that still acknowledge (their client drains, just
  // slower than the publishers): paused publishers wait while this is true; the runtime
  // also publishes it as the shard's congestion.
  bool receivers_congested() const;

 private:
  // Finishes one part of `token` (nothing for an empty one); the last part releases the
  // acknowledgement: here at once if this is the origin shard, else batched per origin shard
  // and posted by flush_outboxes (one task per shard and loop turn, not one per message).
  void finish_ack_part(const AckToken& token);

  // CONNECT
  // False when it cannot fit the client's Maximum Packet Size: the link is closing.
  bool send_connack(Link* link, bool session_present, mqtt::ReasonCode rc,
                    mqtt::Properties props = {});
  void reject_connect(Link* link, mqtt::ReasonCode rc);
  bool admit(Link* link, const mqtt::Connect& c);  // auth {}; false: refused (CONNACK sent)
  // MQTT 5 enhanced authentication (enhanced_auth.cpp): SCRAM-SHA-256 against auth's
  // password file, at CONNECT and on re-authentication.
  bool ask_http_auth(Link* link, mqtt::Connect& c);
  // auth.http_auth.acl_req (http_acl.cpp): every PUBLISH topic and SUBSCRIBE filter is also
  // the HTTP server's to allow. A packet with one not answered yet (for this client, within
  // auth.cache.ttl) is parked and the connection's input held until the answer; one
  // question at a time per connection, so packets keep their order.
  bool http_acl_on(const Link* link) const {
    return link->acl && settings_->access && settings_->access->settings().http_acl &&
           ctx_.http_auth != nullptr;
  }
  bool park_for_http_acl(Link* link, mqtt::Packet& packet);
  // %p %C %d: the listener's port and the client certificate's CN and subject.
  static void fill_connection_params(const Link* link, HttpAuthRequest& r) {
    r.port = link->local_port();
    if (link->peer_certificate) {
      r.cert_cn = link->peer_certificate->cn;
      r.cert_subject = link->peer_certificate->subject;
    }
  }
  // The answer for a SUBSCRIBE filter of the packet being handled (asked before it was);
  // a PUBLISH's is in Link::http_publish_allowed.
  bool http_acl_allows(Link* link, uint8_t access, std::string_view topic);
  void on_http_acl_answer(Link* link, HttpAuthAnswer answer);
  void begin_enhanced_auth(Link* link, mqtt::Connect c);
  void on_auth_while_connecting(Link* link, mqtt::Packet& packet);
  void on_reauthenticate(Link* link, mqtt::Auth& auth);
  // Starts link->enhanced_auth->exchange from client-first `data`; the server-first message,
  // or nullopt with the exchange's error when the client's message is refused.
  std::optional<std::string> scram_first(Link* link, std::string_view data);
  void send_auth(Link* link, mqtt::ReasonCode rc, std::string data);
  Session* create_session(const std::string& client_id);
  void destroy_session(Session* s, bool delete_from_store);
  // The session ends (destroy_session, not at shutdown): what shared groups gave it and it
  // has not received goes to another member of each group (shared_redelivery.cpp).
  void redeliver_shared(Session* s);
  std::string shared_filter_of(const Session& s, SharedGroupId group) const;
  void detach(Session* s, bool abnormal);
  void persist_session(Session* s);

  // PUBLISH in
  Flow on_publish(Link* link, mqtt::Publish& p);
  MessagePtr make_message(Session* origin, mqtt::Publish& p);
  // True when a receiver on this shard is full (or another shard is far behind) and the
  // publisher should be paused.
  bool route(const MessagePtr& msg, const AckToken& token, uint64_t publisher_link);
  void publish_will(Session* s);
  void complete_ack(Link* link, uint16_t packet_id, mqtt::QoS qos, bool refused,
                    bool no_subscribers = false);
  Flow refuse_sys_publish(Link* link, const mqtt::Publish& p);
  Flow deny_publish(Link* link, const mqtt::Publish& p);     // auth.acl
  Flow discard_publish(Link* link, const mqtt::Publish& p);  // answers, routes nothing
  // The link's ACL view, or null when the running settings have no ACL rules (none since
  // a reload, or never).
  ClientAcl* acl_of(Link* link) const {
    return link->acl && settings_->access && settings_->access->has_rules() ? link->acl.get()
                                                                            : nullptr;
  }

  // Delivery out
  // Delivers or queues; true when the receiver is now full (its publishers should wait).
  bool deliver_local(Session* s, const MessagePtr& msg, mqtt::QoS qos, bool retain,
                     std::vector<uint32_t> sub_ids, AckWaiter* token,
                     SharedGroupId shared_group = 0);
  // Online but making no progress: output waiting with no write progress, or messages in
  // flight with no acknowledgement, for a while. Offline counts as stuck.
  bool receiver_stuck(const Session* s) const;
  // Queue lengths of flow control: an online session's queue at queue_pause_len() pauses its
  // publishers; it stops counting as congested at queue_resume_len().
  size_t queue_pause_len() const;
  size_t queue_resume_len() const;
  // Encodes one PUBLISH to the session's link unless it exceeds the client's maximum
  // packet size (then it counts as delivered and false is returned).
  // `needs_seq`: the store sequence it must wait for (DurabilityGate), 0 for none; later
  // PUBLISHes to the session wait behind a held one.
  bool write_publish(Session* s, const MessagePtr& m, const Delivery& d, uint64_t needs_seq = 0);
  void emit_publish(Link* link, const Message& m, const Delivery& d);
  // Bytes a bridge's remote topic adds to (or takes from) the message's own (0: no bridge).
  static int64_t bridge_topic_growth(const Session& s, const Message& m);
  // Sends a new entry: QoS 0 (queued while offline) written and forgotten, QoS 1/2 through
  // the session's OutboundWindow (its packet id recorded in the store). False when the window
  // has no room: `e` is untouched and stays queued.
  bool send_new(Session* s, OutEntry& e);
  // The window's sink for resends (reconnect, resume, 3.1.1 retry): PUBLISH with DUP=1 or
  // PUBREL (held until durable where needed). False: the PUBLISH is too large for the client
  // and the window drops the entry.
  bool write_resend(Session* s, const mqtt::WindowOutput<OutEntry>& out);
  Delivery delivery_of(const OutEntry& e, mqtt::QoS qos, uint16_t packet_id, bool dup) const;
  // The store sequence a QoS 2 PUBLISH of `e` must wait for (DurabilityGate), or 0.
  uint64_t qos2_publish_seq(const OutEntry& e, mqtt::QoS qos) const;
  // An outbound flow ended (acknowledged or refused): its row goes, the queue moves on.
  void finish_outbound(Session* s, OutEntry& done);
  void send_pubrel(Link* link, uint16_t packet_id);
  void pump(Session* s);
  // Store on: whether `e` goes past the in-memory head of `s` (Settings::queue_head and
  // queue_head_bytes; one entry always fits).
  bool head_full(const Session& s, const OutEntry& e) const;
  // Entries of the in-memory head: Settings::queue_head, a bridge's own when it has one.
  size_t head_len(const Session& s) const;
  // Reads the next entries of a paged queue from the store into its head once the head is
  // down to half; a page not committed yet is read on the next on_durable.
  void page_in(Session* s);
  // Stored entries that may be sent before the store's pending ops reach kMaxPendingStoreOps.
  size_t send_budget() const;
  // No budget left: `s` waits for on_durable (page_waiters_) and true is returned.
  bool store_backlogged(Session* s);
  // Pumps the sessions in page_waiters_ (after a commit, and from the sweep for a failed read).
  void resume_page_waiters();
  // The entry of `s` a stored queue row describes (restore, page_in); moves from `q`.
  OutEntry entry_from_store(const Session& s, RestoredQueueEntry& q) const;
  void resend_inflight(Session* s);
  void on_puback(Session* s, const mqtt::PubAck& a);
  void on_pubrec(Link* link, Session* s, const mqtt::PubAck& a);
  void on_pubrel(Link* link, Session* s, const mqtt::PubAck& a);
  void on_pubcomp(Session* s, const mqtt::PubAck& a);
  void drop_entry_storage(Session* s, const OutEntry& e);

  // SUBSCRIBE / UNSUBSCRIBE
  void on_subscribe(Link* link, Session* s, mqtt::Subscribe& sub);
  void on_unsubscribe(Link* link, Session* s, mqtt::Unsubscribe& unsub);
  void send_retained(Session* s, const std::string& filter, const SubscriptionOptions& opts);
  // Moves retained messages from the session's backlog into delivery while its window,
  // queue and output have room (paced, never dropped for lack of room).
  void feed_retained(Session* s);

  void on_disconnect(Link* link, Session* s, const mqtt::Disconnect& d);
  void close_with(Link* link, mqtt::ReasonCode rc);
  void schedule_expiry(Session* s);
  void log(int level, const std::string& text) const;
  uint64_t submit(PersistOp op);
  bool store_on() const { return ctx_.store != nullptr; }

  BrokerContext& ctx_;
  std::shared_ptr<const Settings> settings_;
  ShardServices& services_;
  unsigned shard_;
  ShardStats& stats_;  // this shard's counters (ctx_.shard_stats[shard_])
  // SCRAM credentials derived from plain passwords of the snapshot they were made from
  // (PBKDF2 runs once per user and shard, not per CONNECT).
  std::shared_ptr<const AccessControl> scram_source_;
  std::unordered_map<std::string, ScramCredentials> scram_cache_;
  std::string scram_secret_;  // salts of scram_decoy(), made at the first use
  // Keyed by a view of Session::client_id() (one copy of each id; the session outlives its entry).
  std::unordered_map<std::string_view, std::unique_ptr<Session>> sessions_;
  std::unordered_map<SessionId, Session*> by_id_;
  std::unordered_map<uint64_t, Link*> links_;
  std::vector<std::vector<RemoteDelivery>> outboxes_;  // per destination shard
  std::vector<std::vector<AckRelease>> ack_outboxes_;  // per origin shard
  std::vector<SubscriptionMatch> matches_;             // reused by route()
  // Outputs waiting for the store (acknowledge-after-commit): see durability_gate.hpp.
  DurabilityGate gate_;
  std::vector<DurabilityGate::Released> released_;  // scratch of on_durable
  // Whether an output of `s` depending on store sequence `seq` must wait (not durable yet,
  // or an earlier one of its chain waits); if so, the gate holds it.
  bool hold_until_durable(uint64_t seq, Session* s, DurabilityGate::Kind kind, uint16_t packet_id,
                          mqtt::QoS qos = 0, bool no_subscribers = false);
  // Writes an output the gate released, if its connection is still the session's.
  void write_released(DurabilityGate::Released& r);
  // A QoS 2 acknowledgement whose publisher connection is gone: the flow is settled so that
  // the resent PUBLISH on the next connection gets its PUBREC (once durable).
  void settle_orphan_pubrec(Session* s, const AckRelease& r, uint64_t seq);
  int64_t next_retained_sweep_ms_ = 0;
  bool shutting_down_ = false;  // shutdown() began: no shared redelivery
  std::unordered_set<SessionId> congested_sessions_;  // online, queue long: publishers wait
  // Online sessions whose next page waits for a commit (or a failed read's retry), or whose
  // stored entries wait for the store's backlog to shrink (store_backlogged).
  std::unordered_set<SessionId> page_waiters_;
  std::vector<RestoredQueueEntry> page_;  // scratch of page_in
  std::string bridge_topic_;              // scratch of emit_publish (a bridge's remote topic)
  bool logged_page_error_ = false;
  bool logged_queue_full_ = false;
  bool logged_qos0_drop_ = false;
  bool logged_sys_publish_ = false;
  bool logged_acl_denial_ = false;
  bool logged_http_acl_unavailable_ = false;
  bool logged_store_refusal_ = false;
};

}  // namespace harbor::broker
