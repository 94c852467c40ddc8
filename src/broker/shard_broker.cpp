#include "broker/shard_broker.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <random>

#include "broker/publish_encoder.hpp"
#include "mqtt/topic.hpp"

namespace harbor::broker {

using mqtt::ReasonCode;
using mqtt::Version;

struct AckWaiter {
  unsigned origin_shard = 0;
  uint64_t link_id = 0;
  uint16_t packet_id = 0;
  mqtt::QoS qos = 0;
  SessionId session = 0;
  std::atomic<uint64_t> max_seq{0};
  std::atomic<bool> refused{false};
  bool no_subscribers = false;  // set by on_publish (whose own part is open) after routing
  // Parts not finished yet: on_publish's own, plus one per delivery handed to another shard.
  std::atomic<uint32_t> parts{1};

  void note(uint64_t seq) {
    uint64_t cur = max_seq.load(std::memory_order_relaxed);
    while (seq > cur && !max_seq.compare_exchange_weak(cur, seq, std::memory_order_relaxed)) {
    }
  }
  void add_part() { parts.fetch_add(1, std::memory_order_relaxed); }
  // True for the one caller that finishes the last part: it releases the acknowledgement
  // (ShardBroker::finish_ack_part). The acquire pairs with the other parts' release, so
  // their notes are seen.
  bool finish_part() { return parts.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  AckRelease release() const {
    return AckRelease{link_id, packet_id, qos, max_seq.load(std::memory_order_relaxed), session,
                      refused.load(std::memory_order_relaxed), no_subscribers};
  }
};

namespace {

// Flow control bounds (docs/architecture.md "Flow control"); link.hpp has the output ones.
// QoS 0 output waiting for a stuck receiver beyond this is dropped (counted, logged once);
// for a receiver that still drains, only beyond kQos0HardBytes (its publishers are paused
// long before: this is what a burst already read may add).
constexpr size_t kQos0StuckBytes = 4u * 1024 * 1024;
constexpr size_t kQos0HardBytes = 16u * 1024 * 1024;
constexpr int64_t kCongestedInbox = 4096;  // queued cross-shard deliveries that pause publishers
constexpr size_t kLongQueue = 1024;         // queue length that pauses publishers (unbounded queue)
constexpr int64_t kAckStuckMs = 1000;       // inflight and no ack for this long: stuck receiver
// A live receiver's queue may pass mqtt.max_mqueue_len by what was already read when its
// publishers were paused; it is never cut below this many entries beyond the limit.
constexpr size_t kQueueOvershoot = 8192;
constexpr int64_t kTrimIdleMs = 1000;  // no input for this long: buffers are given back

mqtt::Properties forward_subset(const mqtt::Properties& p) {
  // Properties the server forwards unaltered to subscribers [MQTT-3.3.2-15..20].
  mqtt::Properties f;
  f.payload_format_indicator = p.payload_format_indicator;
  f.content_type = p.content_type;
  f.response_topic = p.response_topic;
  f.correlation_data = p.correlation_data;
  f.user_properties = p.user_properties;
  return f;
}

uint32_t remaining_expiry_s(const Message& m, int64_t now_unix_ms) {
  if (m.expires_at_ms == 0) return 0;
  int64_t left = m.expires_at_ms - now_unix_ms;
  if (left <= 0) return 1;
  return static_cast<uint32_t>((left + 999) / 1000);
}

bool expired(const Message& m, int64_t now_unix_ms) {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_unix_ms;
}

// For the connect and disconnect log lines.
std::string_view version_name(Version v) {
  switch (v) {
    case Version::v31: return "3.1";
    case Version::v311: return "3.1.1";
    case Version::v5: return "5.0";
  }
  return "?";
}

std::string reason_text(ReasonCode rc) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto code = static_cast<uint8_t>(rc);
  std::string name(rc == ReasonCode::Success ? "Normal disconnection" : mqtt::to_string(rc));
  return name + " (0x" + kHex[code >> 4] + kHex[code & 0xF] + ")";
}

std::string random_client_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "harbormq-";
  uint64_t v = rng();
  for (int i = 0; i < 16; ++i) id.push_back(kHex[(v >> (i * 4)) & 0xF]);
  return id;
}

}  // namespace

ShardBroker::ShardBroker(BrokerContext& ctx, ShardServices& services)
    : ctx_(ctx), config_(ctx.config), services_(services), shard_(services.shard_index()),
      stats_(ctx.shard_stats[shard_]) {
  outboxes_.resize(ctx_.num_shards);
  ack_outboxes_.resize(ctx_.num_shards);
}

ShardBroker::~ShardBroker() = default;

void ShardBroker::finish_ack_part(const AckToken& token) {
  if (!token || !token->finish_part()) return;
  const AckRelease r = token->release();
  if (token->origin_shard == shard_) {
    on_ack_ready(r);
  } else {
    ack_outboxes_[token->origin_shard].push_back(r);  // posted by flush_outboxes
  }
}

void ShardBroker::log(int level, const std::string& text) const {
  if (ctx_.log) ctx_.log(level, text);
}

uint64_t ShardBroker::submit(PersistOp op) { return ctx_.store->submit(std::move(op)); }

unsigned ShardBroker::home_shard(const std::string& client_id) const {
  return broker::home_shard(client_id, ctx_.num_shards);
}

// ---------------------------------------------------------------- connection lifecycle

void ShardBroker::on_link_opened(Link* link) {
  links_[link->link_id()] = link;
  link->opened_ms = services_.now_steady_ms();
  link->last_rx_ms = link->opened_ms;
}

bool ShardBroker::send_connack(Link* link, bool session_present, ReasonCode rc,
                               mqtt::Properties props) {
  mqtt::Connack ack;
  ack.session_present = session_present;
  ack.reason = rc;
  ack.props = std::move(props);
  // [MQTT-3.1.2-24] the CONNACK too stays within the client's Maximum Packet Size (known
  // once the session is attached); what cannot be trimmed to fit is not sent at all.
  if (link->session != nullptr && mqtt::is_v5(link->version()) &&
      !mqtt::fit_connack(ack, link->session->max_packet_out)) {
    link->set_close_reason("CONNACK does not fit the client's Maximum Packet Size of " +
                           std::to_string(link->session->max_packet_out) + " bytes");
    link->close_after_flush();
    return false;
  }
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  return true;
}

void ShardBroker::reject_connect(Link* link, ReasonCode rc) {
  link->set_close_reason("CONNECT refused: " + reason_text(rc));
  send_connack(link, false, rc);
  link->close_after_flush();
}

Session* ShardBroker::create_session(const std::string& client_id) {
  SessionId id = ctx_.next_session_id.fetch_add(1, std::memory_order_relaxed);
  auto s = std::make_unique<Session>(client_id, id, static_cast<uint16_t>(shard_));
  Session* raw = s.get();
  sessions_.emplace(raw->client_id(), std::move(s));  // keyed by a view of the session's id
  by_id_[id] = raw;
  ctx_.stats.sessions.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

void ShardBroker::destroy_session(Session* s, bool delete_from_store) {
  for (const auto& [filter, opts] : s->subscriptions) ctx_.tree->unsubscribe(filter, s->id());
  if (s->will_timer) services_.cancel_timer(s->will_timer);
  if (s->expiry_timer) services_.cancel_timer(s->expiry_timer);
  if (delete_from_store && store_on()) submit(OpSessionDelete{s->client_id()});
  by_id_.erase(s->id());
  gate_.forget(s->id());
  congested_sessions_.erase(s->id());
  ctx_.stats.sessions.fetch_sub(1, std::memory_order_relaxed);
  sessions_.erase(sessions_.find(s->client_id()));  // destroys s
}

void ShardBroker::persist_session(Session* s) {
  if (!store_on() || !s->persistent()) return;
  OpSessionUpsert op;
  op.client_id = s->client_id();
  op.version = static_cast<uint8_t>(s->version);
  op.expiry_s = s->expiry_s;
  op.last_seen_ms = s->link ? 0 : s->last_seen_ms;
  if (s->will) {
    StoredWill w;
    w.topic = s->will->topic;
    w.payload = s->will->payload;
    w.qos = s->will->qos;
    w.retain = s->will->retain;
    mqtt::encode_properties(forward_subset(s->will->props), w.props);
    w.delay_s = s->will->props.will_delay_interval.value_or(0);
    w.expiry_s = s->will->props.message_expiry_interval.value_or(0);
    op.will = std::make_shared<const StoredWill>(std::move(w));
  }
  submit(std::move(op));
}

void ShardBroker::on_connect(Link* link, mqtt::Connect c) {
  const auto& cfg = *config_;
  const bool v5 = mqtt::is_v5(c.version);
  mqtt::Properties ack_props;
  // MQTT 3.1 (protocol level 3): the Client Identifier is 1 to 23 characters; others are
  // refused with CONNACK 0x02 (identifier rejected). 3.1.1 and 5.0 allow an empty one.
  if (c.version == Version::v31 && (c.client_id.empty() || c.client_id.size() > 23)) {
    return reject_connect(link, ReasonCode::ClientIdentifierNotValid);
  }
  if (c.client_id.empty()) {
    // 3.1.1: a server may assign an id only with a clean session [MQTT-3.1.3-7], [MQTT-3.1.3-8].
    if (!v5 && !c.clean_start) return reject_connect(link, ReasonCode::ClientIdentifierNotValid);
    c.client_id = random_client_id();
    // Assigned ids hash like any other: the connection may still have to move.
    link->assigned_client_id = true;
  }
  if (v5 && link->assigned_client_id) ack_props.assigned_client_identifier = c.client_id;
  if (v5 && c.props.authentication_method) {
    // Enhanced authentication (AUTH exchanges) is not supported: refuse the method
    // [MQTT-4.12.0-1] with 0x8C rather than ignore it.
    return reject_connect(link, ReasonCode::BadAuthenticationMethod);
  }
  if (c.will && mqtt::exceeds_topic_levels(c.will->topic, config_->mqtt.max_topic_levels))
    return reject_connect(link, ReasonCode::TopicNameInvalid);  // mqtt.max_topic_levels
  unsigned home = home_shard(c.client_id);
  if (home != shard_) {
    links_.erase(link->link_id());
    services_.move_link(link, home, std::move(c));
    return;
  }
  link->keep_alive_s = c.keep_alive;

  bool session_present = false;
  Session* s = nullptr;
  if (auto it = sessions_.find(c.client_id); it != sessions_.end()) {
    s = it->second.get();
    if (s->link != nullptr) {
      // Session takeover [MQTT-3.1.4-3]: the older connection is closed (5.0: 0x8E first).
      Link* old = s->link;
      if (mqtt::is_v5(old->version())) {
        mqtt::Disconnect d;
        d.reason = ReasonCode::SessionTakenOver;
        mqtt::encode(mqtt::Packet{std::move(d)}, old->version(), old->out());
      }
      old->session = nullptr;
      old->set_close_reason("taken over by a new connection from " + link->remote);
      old->close_after_flush();
      detach(s, /*abnormal=*/true);
      auto again = sessions_.find(c.client_id);  // detach may have ended the session
      s = again != sessions_.end() ? again->second.get() : nullptr;
    }
    if (s != nullptr && c.clean_start) {
      destroy_session(s, /*delete_from_store=*/true);
      s = nullptr;
    }
    if (s != nullptr) session_present = true;
  }
  if (s == nullptr) s = create_session(c.client_id);
  if (s->will_timer) {
    // Reconnected before the will delay elapsed: the will is not sent [MQTT-3.1.3-9].
    services_.cancel_timer(s->will_timer);
    s->will_timer = 0;
  }
  if (s->expiry_timer) {
    services_.cancel_timer(s->expiry_timer);
    s->expiry_timer = 0;
  }

  bool was_persistent = session_present && s->persistent();
  s->version = c.version;
  if (v5) {
    s->expiry_s = c.props.session_expiry_interval.value_or(0);
    uint16_t rm = c.props.receive_maximum.value_or(65535);
    s->window = static_cast<uint16_t>(std::min<uint32_t>(rm, cfg.mqtt.max_inflight_window));
    s->max_packet_out = c.props.maximum_packet_size.value_or(0xFFFFFFFF);
  } else {
    s->expiry_s = c.clean_start ? 0
                  : cfg.mqtt.session_expiry_311 ? cfg.mqtt.session_expiry_311
                                                : kExpiryNever;
    s->window = static_cast<uint16_t>(std::min<uint32_t>(65535, cfg.mqtt.max_inflight_window));
    s->max_packet_out = 0xFFFFFFFF;
  }
  if (s->window == 0) s->window = 1;
  s->will = c.will ? std::make_unique<mqtt::Will>(std::move(*c.will)) : nullptr;
  s->link = link;
  link->session = s;
  link->connected = true;
  ctx_.stats.connections.fetch_add(1, std::memory_order_relaxed);

  if (store_on()) {
    if (s->persistent())
      persist_session(s);
    else if (was_persistent)
      submit(OpSessionDelete{s->client_id()});
  }

  if (v5) {
    ack_props.topic_alias_maximum = cfg.mqtt.max_topic_alias;
    ack_props.receive_maximum =
        static_cast<uint16_t>(std::clamp<uint32_t>(cfg.mqtt.max_awaiting_rel, 1, 65535));
    // At most the largest packet the protocol can express (some clients reject more).
    ack_props.maximum_packet_size = std::min<uint32_t>(cfg.mqtt.max_packet_size, mqtt::kMaxRemainingLength);
    ack_props.retain_available = 1;
    ack_props.wildcard_subscription_available = 1;
    ack_props.subscription_identifier_available = 1;
    ack_props.shared_subscription_available = 1;
  }
  // A CONNACK that cannot fit closes the connection: nothing else may follow it.
  if (!send_connack(link, session_present, ReasonCode::Success, std::move(ack_props))) return;
  log(1, "client \"" + c.client_id + "\"" + (link->assigned_client_id ? " (id assigned)" : "") +
             " connected from " + link->remote + " (MQTT " + std::string(version_name(c.version)) +
             ", keepalive " + std::to_string(c.keep_alive) + " s, " +
             (v5 ? "clean start " : "clean session ") + (c.clean_start ? "1" : "0") +
             ", session present " + (session_present ? "1" : "0") + ")");
  // Unacknowledged messages first, in order, then the queue [MQTT-4.4.0-1].
  resend_inflight(s);
  pump(s);
}

void ShardBroker::detach(Session* s, bool abnormal) {
  Link* link = s->link;
  if (link != nullptr) {
    link->session = nullptr;
    link->client_id = s->client_id();  // for its disconnect log line
    ctx_.stats.connections.fetch_sub(1, std::memory_order_relaxed);
  }
  s->link = nullptr;
  // Held PUBLISHes were for that connection: the session resends its state on reconnect.
  // Held control packets stay: a PUBCOMP still waiting may answer a PUBREL resent on the
  // next connection (DurabilityGate::retarget_pubcomp).
  gate_.drop(s->id(), DurabilityGate::Chain::kPublish);
  s->last_seen_ms = services_.now_unix_ms();
  if (s->retained_backlog) {
    if (s->persistent()) feed_retained(s);  // offline now: queued like any message
    s->retained_backlog.reset();
  }
  if (abnormal && s->will) {
    uint32_t delay = s->will->props.will_delay_interval.value_or(0);
    if (delay == 0 || !s->persistent()) {
      // Delay 0, or the session ends now: publish at once [MQTT-3.1.2-8].
      publish_will(s);
    } else {
      uint32_t wait = std::min(delay, s->expiry_s);
      SessionId id = s->id();
      s->will_timer = services_.add_timer(services_.now_steady_ms() + int64_t{wait} * 1000, [this, id] {
        auto it = by_id_.find(id);
        if (it == by_id_.end()) return;
        it->second->will_timer = 0;
        publish_will(it->second);
      });
    }
  } else if (!abnormal) {
    s->will.reset();  // normal DISCONNECT deletes the will [MQTT-3.1.2-10]
  }
  if (!s->persistent()) {
    destroy_session(s, /*delete_from_store=*/false);
    return;
  }
  persist_session(s);
  schedule_expiry(s);
}

void ShardBroker::schedule_expiry(Session* s) {
  if (s->expiry_s == kExpiryNever || s->link != nullptr) return;
  SessionId id = s->id();
  s->expiry_timer =
      services_.add_timer(services_.now_steady_ms() + int64_t{s->expiry_s} * 1000, [this, id] {
        auto it = by_id_.find(id);
        if (it == by_id_.end()) return;
        Session* sess = it->second;
        sess->expiry_timer = 0;
        if (sess->link != nullptr) return;
        if (sess->will_timer) {
          // The session ends before the will delay: the will goes now [MQTT-3.1.2-8].
          services_.cancel_timer(sess->will_timer);
          sess->will_timer = 0;
          publish_will(sess);
        }
        destroy_session(sess, /*delete_from_store=*/true);
      });
}

void ShardBroker::publish_will(Session* s) {
  if (!s->will) return;
  mqtt::Publish p;
  p.topic = std::move(s->will->topic);
  p.payload = std::move(s->will->payload);
  p.qos = s->will->qos;
  p.retain = s->will->retain;
  p.props = std::move(s->will->props);
  s->will.reset();
  MessagePtr msg = make_message(s, p);
  if (p.retain) {
    if (msg->payload.empty()) {
      ctx_.retained->erase(msg->topic);
      if (store_on()) submit(OpRetainedClear{msg->topic});
    } else {
      ctx_.retained->set(msg);
      if (store_on()) submit(OpRetainedSet{msg});
    }
  }
  route(msg, nullptr, 0);
  if (s->persistent()) persist_session(s);
}

void ShardBroker::on_link_closed(Link* link) {
  links_.erase(link->link_id());
  // Once per connection: the runtime reports each closed link once.
  if (link->connected) {
    const std::string& id = link->session != nullptr ? link->session->client_id() : link->client_id;
    log(1, "client \"" + id + "\" disconnected from " + link->remote + ": " +
               (link->close_reason.empty() ? std::string("connection closed")
                                           : link->close_reason));
  }
  Session* s = link->session;
  if (s == nullptr) return;
  detach(s, /*abnormal=*/!link->normal_disconnect);
}

void ShardBroker::close_with(Link* link, ReasonCode rc) {
  if (rc == ReasonCode::KeepAliveTimeout) {
    int64_t idle_s = (services_.now_steady_ms() - link->last_rx_ms) / 1000;
    link->set_close_reason("keepalive timeout (" + std::to_string(idle_s) +
                           " s without a packet, keepalive " +
                           std::to_string(link->keep_alive_s) + " s)");
  } else if (rc == ReasonCode::ServerShuttingDown) {
    link->set_close_reason("server shutdown");
  } else {
    link->set_close_reason("closed by the server: " + reason_text(rc));
  }
  if (link->connected && mqtt::is_v5(link->version())) {
    mqtt::Disconnect d;
    d.reason = rc;
    mqtt::encode(mqtt::Packet{std::move(d)}, link->version(), link->out());
    link->mark_dirty();
  }
  link->close_after_flush();
}

void ShardBroker::on_protocol_error(Link* link, const mqtt::Error& error) {
  log(0, "closing connection: " + error.message);
  link->set_close_reason("protocol error: " + error.message + ", " + reason_text(error.reason));
  if (!link->connected) {
    // Before CONNACK: answer a CONNECT we could not accept with a CONNACK [MQTT-3.1.4-1].
    if (error.reason == ReasonCode::UnsupportedProtocolVersion) {
      // Unknown level: answer in the 3.1.1 layout, return code 0x01 [MQTT-3.1.2-2].
      mqtt::Connack ack;
      ack.reason = ReasonCode::UnsupportedProtocolVersion;
      mqtt::encode(mqtt::Packet{std::move(ack)},
                   link->version() == Version::v5 ? Version::v5 : Version::v311, link->out());
      link->mark_dirty();
    } else if (mqtt::is_v5(link->version()) && mqtt::is_error(error.reason)) {
      // A 5.0 CONNECT refused while decoding (malformed, too large, too many user
      // properties): the CONNACK says why [MQTT-3.2.2-8].
      mqtt::Connack ack;
      ack.reason = error.reason;
      mqtt::encode(mqtt::Packet{std::move(ack)}, Version::v5, link->out());
      link->mark_dirty();
    }
    link->close_after_flush();
    return;
  }
  close_with(link, error.reason);
}

void ShardBroker::on_disconnect(Link* link, Session* s, const mqtt::Disconnect& d) {
  if (mqtt::is_v5(link->version()) && d.props.session_expiry_interval) {
    // Setting a non-zero expiry on DISCONNECT after connecting with 0 is a protocol
    // error [MQTT-3.14.2-2].
    if (s->expiry_s == 0 && *d.props.session_expiry_interval != 0) {
      close_with(link, ReasonCode::ProtocolError);
      return;
    }
    if (s->expiry_s != 0 && *d.props.session_expiry_interval == 0 && store_on())
      submit(OpSessionDelete{s->client_id()});
    s->expiry_s = *d.props.session_expiry_interval;
  }
  link->set_close_reason(mqtt::is_v5(link->version())
                             ? "client sent DISCONNECT: " + reason_text(d.reason)
                             : std::string("client sent DISCONNECT"));
  // 0x04: disconnect with will message [MQTT-3.14.4-3].
  link->normal_disconnect = d.reason != ReasonCode::DisconnectWithWill;
  link->close_after_flush();
}

// ---------------------------------------------------------------- packet dispatch

Flow ShardBroker::on_packet(Link* link, mqtt::Packet packet) {
  Session* s = link->session;
  if (s == nullptr) return Flow::Continue;  // closing
  // Dispatch by type (PUBLISH first: the hot path). ServerProtocol already refused
  // server-to-client types, so anything else here is a protocol error.
  if (auto* p = std::get_if<mqtt::Publish>(&packet)) {
    return on_publish(link, *p);
  } else if (auto* a = std::get_if<mqtt::PubAck>(&packet)) {
    switch (a->type) {
      case mqtt::PacketType::Puback: on_puback(s, *a); break;
      case mqtt::PacketType::Pubrec: on_pubrec(link, s, *a); break;
      case mqtt::PacketType::Pubrel: on_pubrel(link, s, *a); break;
      case mqtt::PacketType::Pubcomp: on_pubcomp(s, *a); break;
      default: break;
    }
  } else if (auto* sub = std::get_if<mqtt::Subscribe>(&packet)) {
    on_subscribe(link, s, *sub);
  } else if (auto* unsub = std::get_if<mqtt::Unsubscribe>(&packet)) {
    on_unsubscribe(link, s, *unsub);
  } else if (std::holds_alternative<mqtt::Pingreq>(packet)) {
    mqtt::encode(mqtt::Packet{mqtt::Pingresp{}}, link->version(), link->out());
    link->mark_dirty();
  } else if (auto* d = std::get_if<mqtt::Disconnect>(&packet)) {
    on_disconnect(link, s, *d);
  } else {
    // Includes AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-1].
    close_with(link, ReasonCode::ProtocolError);
  }
  return Flow::Continue;
}

// ---------------------------------------------------------------- PUBLISH in

MessagePtr ShardBroker::make_message(Session* origin, mqtt::Publish& p) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  m->received_at_ms = services_.now_unix_ms();
  if (p.props.message_expiry_interval)
    m->expires_at_ms = m->received_at_ms + int64_t{*p.props.message_expiry_interval} * 1000;
  const auto& pp = p.props;
  if (pp.payload_format_indicator || pp.content_type || pp.response_topic ||
      pp.correlation_data || !pp.user_properties.empty())
    mqtt::encode_properties(forward_subset(pp), m->forward_props);
  m->origin = origin ? origin->id() : 0;
  if (store_on() && (m->qos > 0 || m->retain)) m->store_id = ctx_.store->next_message_id();
  return m;
}

Flow ShardBroker::on_publish(Link* link, mqtt::Publish& p) {
  Session* s = link->session;
  const auto& cfg = *config_;
  stats_.messages_in.add();
  if (mqtt::exceeds_topic_levels(p.topic, cfg.mqtt.max_topic_levels)) {
    // Deeper than mqtt.max_topic_levels: each level costs a tree node, so it is refused
    // like an invalid topic name (5.0: DISCONNECT 0x90; 3.1.1: close).
    link->set_close_reason("topic with more than mqtt.max_topic_levels=" +
                           std::to_string(cfg.mqtt.max_topic_levels) + " levels");
    close_with(link, ReasonCode::TopicNameInvalid);
    return Flow::Continue;
  }
  if (p.topic == "$SYS" || p.topic.starts_with("$SYS/")) return refuse_sys_publish(link, p);
  if (p.qos > 0) {
    if (auto q2 = p.qos == 2 ? s->qos2_in.find(p.packet_id) : s->qos2_in.end(); q2 != s->qos2_in.end()) {
      // Resent PUBLISH of a QoS 2 flow we already own: never deliver twice [MQTT-4.3.3-9].
      // If its PUBREC still waits for the store, that PUBREC answers this one too.
      if (!q2->second.acked) return Flow::Continue;
      mqtt::PubAck rec;
      rec.type = mqtt::PacketType::Pubrec;
      rec.packet_id = p.packet_id;
      mqtt::encode(mqtt::Packet{std::move(rec)}, link->version(), link->out());
      link->mark_dirty();
      return Flow::Continue;
    }
    const uint32_t limit = std::max<uint32_t>(1, std::min<uint32_t>(cfg.mqtt.max_awaiting_rel, 65535));
    if (mqtt::is_v5(link->version())) {
      // 5.0: the Receive Maximum we sent in CONNACK (QoS 1 and 2 together) [MQTT-3.3.4-9].
      if (link->inbound_unacked >= limit) {
        link->set_close_reason("more than the Receive Maximum of " + std::to_string(limit) +
                               " unacknowledged QoS 1/2 PUBLISH (0x93)");
        close_with(link, ReasonCode::ReceiveMaximumExceeded);
        return Flow::Continue;
      }
    } else if (p.qos == 2 && s->qos2_in.size() >= limit) {
      // 3.1.1 has no Receive Maximum and no way to refuse: closing would make a client that
      // resends its whole queue on reconnect loop forever, and dropping loses what it sent.
      // The flow is accepted (the packet-id space bounds this state at 65,535 per session);
      // counted, logged once per session.
      stats_.awaiting_rel_over_limit.add();
      if (!s->logged_awaiting_rel) {
        s->logged_awaiting_rel = true;
        log(2, "client '" + s->client_id() + "' has more than mqtt.max_awaiting_rel=" +
                   std::to_string(limit) +
                   " QoS 2 messages awaiting PUBREL (MQTT 3.1.1 cannot be refused): accepted, counted");
      }
    }
    if (store_on() && ctx_.store->degraded()) {
      stats_.refused_store.add();
      ctx_.store->note_refused();
      if (!logged_store_refusal_) {
        log(2, "store unavailable: refusing QoS 1/2 publishes until it recovers");
        logged_store_refusal_ = true;
      }
      link->inbound_unacked++;
      complete_ack(link, p.packet_id, p.qos, /*refused=*/true);
      return Flow::Continue;
    }
    logged_store_refusal_ = false;
    link->inbound_unacked++;
    if (p.qos == 2) s->qos2_in[p.packet_id] = Session::Qos2In{services_.now_steady_ms(), false};
  }
  uint16_t packet_id = p.packet_id;
  mqtt::QoS qos = p.qos;
  MessagePtr msg = make_message(s, p);

  const bool wait_for_store =
      store_on() && ctx_.store->ack_after_commit() && qos > 0;
  AckToken token;
  if (wait_for_store) {
    token = std::make_shared<AckWaiter>();
    token->origin_shard = shard_;
    token->link_id = link->link_id();
    token->packet_id = packet_id;
    token->qos = qos;
    token->session = s->id();
  }
  if (msg->retain) {
    if (msg->payload.empty()) {
      ctx_.retained->erase(msg->topic);  // empty retained payload deletes [MQTT-3.3.1-10]
      if (store_on()) {
        uint64_t seq = submit(OpRetainedClear{msg->topic});
        if (token) token->note(seq);
      }
    } else {
      ctx_.retained->set(msg);
      if (store_on()) {
        uint64_t seq = submit(OpRetainedSet{msg});
        if (token) token->note(seq);
      }
    }
  }
  const bool full = route(msg, token, link->link_id());
  // MQTT 5: PUBACK/PUBREC 0x10 when no subscription matched (a success code; Mosquitto and
  // EMQX send it too), so a client can tell its message reached no one.
  const bool nobody = matches_.empty();
  if (token) {
    token->no_subscribers = nobody;
    finish_ack_part(token);  // ours; the acknowledgement goes when the last part is done
  }
  if (qos > 0 && !wait_for_store) {
    if (qos == 2 && store_on() && s->persistent()) submit(OpQos2InAdd{s->client_id(), packet_id});
    complete_ack(link, packet_id, qos, false, nobody);
  }
  return full ? Flow::Pause : Flow::Continue;
}

Flow ShardBroker::refuse_sys_publish(Link* link, const mqtt::Publish& p) {
  // `$SYS/` belongs to the broker (its own status topics): a client may not publish there.
  // Not routed, not retained; counted, logged once. 5.0 refuses QoS 1/2 with 0x87; 3.1.1
  // cannot refuse, so the flow completes normally and the message is discarded.
  stats_.refused_sys_publish.add();
  if (!logged_sys_publish_) {
    logged_sys_publish_ = true;
    log(2, "client '" + link->session->client_id() + "' published to " + p.topic +
               ": $SYS topics are the broker's; discarded (5.0: 0x87); counted in metrics");
  }
  if (p.qos == 0) return Flow::Continue;
  Session* s = link->session;
  mqtt::PubAck ack;
  ack.type = p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec;
  ack.packet_id = p.packet_id;
  if (mqtt::is_v5(link->version())) {
    ack.reason = ReasonCode::NotAuthorized;  // a refused PUBREC ends the QoS 2 flow
  } else if (p.qos == 2 && s->qos2_in.find(p.packet_id) == s->qos2_in.end()) {
    s->qos2_in[p.packet_id] = Session::Qos2In{services_.now_steady_ms(), true};  // its PUBREL completes it
    link->inbound_unacked++;
  }
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  return Flow::Continue;
}

void ShardBroker::on_ack_ready(const AckRelease& r) {
  auto it = links_.find(r.link_id);
  if (it == links_.end()) return;  // the publisher is gone; it resends on reconnect
  uint64_t seq = r.seq;
  if (!r.refused && r.qos == 2 && store_on()) {
    auto sit = by_id_.find(r.session);
    if (sit != by_id_.end() && sit->second->persistent())
      seq = std::max(seq, submit(OpQos2InAdd{sit->second->client_id(), r.packet_id}));
  }
  Link* link = it->second;
  if (!r.refused && link->session != nullptr &&
      hold_until_durable(seq, link->session, DurabilityGate::Kind::kAck, r.packet_id, r.qos,
                         r.no_subscribers))
    return;
  complete_ack(link, r.packet_id, r.qos, r.refused, r.no_subscribers);
}

bool ShardBroker::hold_until_durable(uint64_t seq, Session* s, DurabilityGate::Kind kind,
                                     uint16_t packet_id, mqtt::QoS qos, bool no_subscribers) {
  if (!store_on() || !ctx_.store->ack_after_commit() || s->link == nullptr) return false;
  if (!gate_.must_wait(s->id(), DurabilityGate::chain_of(kind), seq, ctx_.store->durable_seq()))
    return false;
  DurabilityGate::Output out;
  out.kind = kind;
  out.seq = seq;
  out.link_id = s->link->link_id();
  out.packet_id = packet_id;
  out.qos = qos;
  out.no_subscribers = no_subscribers;
  gate_.hold(s->id(), std::move(out));
  return true;
}

void ShardBroker::on_durable() {
  if (ctx_.store == nullptr || gate_.empty()) return;
  released_.clear();
  gate_.release(ctx_.store->durable_seq(), released_);
  for (DurabilityGate::Released& r : released_) write_released(r);
  released_.clear();
}

void ShardBroker::write_released(DurabilityGate::Released& r) {
  auto sit = by_id_.find(r.session);
  if (sit == by_id_.end()) return;
  Session* s = sit->second;
  Link* link = s->link;
  DurabilityGate::Output& out = r.output;
  if (link == nullptr || link->link_id() != out.link_id) return;  // resent on reconnect
  switch (out.kind) {
    case DurabilityGate::Kind::kAck:
      complete_ack(link, out.packet_id, out.qos, false, out.no_subscribers);
      return;
    case DurabilityGate::Kind::kPubcomp: {
      mqtt::PubAck comp;
      comp.type = mqtt::PacketType::Pubcomp;
      comp.packet_id = out.packet_id;
      mqtt::encode(mqtt::Packet{std::move(comp)}, link->version(), link->out());
      link->mark_dirty();
      return;
    }
    case DurabilityGate::Kind::kPubrel:
      if (OutEntry* e = s->find_inflight(out.packet_id); e != nullptr && e->state == OutState::AwaitPubcomp)
        send_pubrel(link, out.packet_id);
      return;
    case DurabilityGate::Kind::kPublish:
      emit_publish(link, *out.msg, out.delivery);
      return;
  }
}

void ShardBroker::complete_ack(Link* link, uint16_t packet_id, mqtt::QoS qos, bool refused,
                               bool no_subscribers) {
  const bool v5 = mqtt::is_v5(link->version());
  if (refused) {
    if (qos == 2 && link->session) link->session->qos2_in.erase(packet_id);
    if (link->inbound_unacked) link->inbound_unacked--;
    if (!v5) return;  // 3.1.1 cannot refuse: no acknowledgement, the client resends later
  }
  mqtt::PubAck ack;
  ack.type = qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec;
  ack.packet_id = packet_id;
  if (refused) ack.reason = ReasonCode::QuotaExceeded;  // 0x97: not stored, not accepted
  else if (no_subscribers && v5) ack.reason = ReasonCode::NoMatchingSubscribers;
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  if (qos == 1 && !refused && link->inbound_unacked) link->inbound_unacked--;
  if (qos == 2 && !refused && link->session) {
    if (auto it = link->session->qos2_in.find(packet_id); it != link->session->qos2_in.end())
      it->second.acked = true;
  }
}

void ShardBroker::on_pubrel(Link* link, Session* s, const mqtt::PubAck& a) {
  auto it = s->qos2_in.find(a.packet_id);
  mqtt::PubAck comp;
  comp.type = mqtt::PacketType::Pubcomp;
  comp.packet_id = a.packet_id;
  if (it != s->qos2_in.end()) {
    s->qos2_in.erase(it);
    if (link->inbound_unacked) link->inbound_unacked--;
    if (store_on() && s->persistent()) {
      uint64_t seq = submit(OpQos2InRemove{s->client_id(), a.packet_id});
      if (hold_until_durable(seq, s, DurabilityGate::Kind::kPubcomp, a.packet_id)) return;
    }
  } else {
    // A PUBREL resent while its PUBCOMP waits for the store: that PUBCOMP answers it, on
    // this connection.
    if (gate_.retarget_pubcomp(s->id(), a.packet_id, link->link_id())) return;
    if (mqtt::is_v5(link->version())) comp.reason = ReasonCode::PacketIdentifierNotFound;
  }
  mqtt::encode(mqtt::Packet{std::move(comp)}, link->version(), link->out());
  link->mark_dirty();
}

// ---------------------------------------------------------------- routing

bool ShardBroker::route(const MessagePtr& msg, const AckToken& token, uint64_t publisher_link) {
  matches_.clear();
  ctx_.tree->match(msg->topic, shard_, matches_);
  if (matches_.empty()) {
    stats_.no_subscribers.add();
    return false;
  }
  bool full = false;  // a receiver of it is full: pause the publisher
  // Overlapping subscriptions of one session give one delivery at the highest QoS with
  // every subscription identifier [MQTT-3.3.4-2], [MQTT-3.3.4-3]; shared ones stand alone.
  if (matches_.size() > 1) {
    std::sort(matches_.begin(), matches_.end(),
              [](const SubscriptionMatch& a, const SubscriptionMatch& b) {
                if (a.shared != b.shared) return a.shared < b.shared;
                return a.who.session < b.who.session;
              });
  }
  size_t i = 0;
  while (i < matches_.size()) {
    const SubscriptionMatch& first = matches_[i];
    size_t j = i;
    mqtt::QoS granted = 0;
    bool any = false;
    bool retain = false;
    std::vector<uint32_t> sub_ids;
    do {
      const SubscriptionMatch& m = matches_[j];
      // No Local: not to the publishing session [MQTT-3.8.3-3].
      if (!(m.options.no_local && m.who.session == msg->origin)) {
        any = true;
        granted = std::max(granted, m.options.qos);
        if (m.options.retain_as_published && msg->retain) retain = true;  // [MQTT-3.3.1-12]
        if (m.options.subscription_id) sub_ids.push_back(m.options.subscription_id);
      }
      ++j;
    } while (!first.shared && j < matches_.size() && !matches_[j].shared &&
             matches_[j].who.session == first.who.session);
    if (any) {
      mqtt::QoS qos = std::min(granted, msg->qos);
      if (first.who.shard == shard_) {
        auto it = by_id_.find(first.who.session);
        if (it != by_id_.end() &&
            deliver_local(it->second, msg, qos, retain, std::move(sub_ids), token.get()) &&
            it->second->id() != msg->origin)  // never wait for oneself (it would not read acks)
          full = true;
      } else {
        // The destination shard tells us (pause_publishers) if the receiver is full; a long
        // inbox means that shard is behind as a whole.
        if (token) token->add_part();  // finished by deliver_batch on that shard
        outboxes_[first.who.shard].push_back(RemoteDelivery{first.who.session, msg, qos, retain,
                                                            std::move(sub_ids), token,
                                                            publisher_link, shard_});
        // What that shard has not processed yet, and what this iteration adds to it, bound
        // how far a publisher runs ahead of a receiver there before it hears it is full.
        const auto& outbox = outboxes_[first.who.shard];
        if (ctx_.inbox_load && static_cast<int64_t>(outbox.size()) +
                                       ctx_.inbox_load[first.who.shard].load(std::memory_order_relaxed) >
                                   kCongestedInbox)
          full = true;
      }
    }
    i = j;
  }
  return full && publisher_link != 0;
}

void ShardBroker::flush_outboxes() {
  for (unsigned shard = 0; shard < outboxes_.size(); ++shard) {
    if (outboxes_[shard].empty()) continue;
    auto batch = std::make_shared<std::vector<RemoteDelivery>>(std::move(outboxes_[shard]));
    outboxes_[shard].clear();
    if (ctx_.inbox_load)
      ctx_.inbox_load[shard].fetch_add(static_cast<int64_t>(batch->size()), std::memory_order_relaxed);
    services_.post_to_shard(shard, [batch](ShardBroker& b) { b.deliver_batch(*batch); });
  }
  // Acknowledgements finished here for publishers of other shards: one task per shard.
  for (unsigned shard = 0; shard < ack_outboxes_.size(); ++shard) {
    if (ack_outboxes_[shard].empty()) continue;
    services_.post_to_shard(shard, [acks = std::move(ack_outboxes_[shard])](ShardBroker& b) {
      for (const AckRelease& r : acks) b.on_ack_ready(r);
    });
    ack_outboxes_[shard].clear();
  }
}

void ShardBroker::deliver_batch(std::vector<RemoteDelivery>& batch) {
  std::vector<std::vector<uint64_t>> pause;  // per origin shard: publishers to pause
  for (auto& d : batch) {
    auto it = by_id_.find(d.session);
    if (it != by_id_.end() &&
        deliver_local(it->second, d.msg, d.qos, d.retain, std::move(d.subscription_ids), d.token.get()) &&
        d.publisher_link != 0 && it->second->id() != d.msg->origin) {
      if (pause.empty()) pause.resize(ctx_.num_shards);
      auto& ids = pause[d.publisher_shard];
      if (std::find(ids.begin(), ids.end(), d.publisher_link) == ids.end()) ids.push_back(d.publisher_link);
    }
    finish_ack_part(d.token);  // this part is done
    d.token.reset();
  }
  for (unsigned shard = 0; shard < pause.size(); ++shard) {
    if (pause[shard].empty()) continue;
    services_.post_to_shard(shard, [ids = std::move(pause[shard])](ShardBroker& b) {
      for (uint64_t id : ids) b.services_.pause_link(id);
    });
  }
  if (ctx_.inbox_load)
    ctx_.inbox_load[shard_].fetch_sub(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
}

// ---------------------------------------------------------------- delivery out

bool ShardBroker::deliver_local(Session* s, const MessagePtr& msg, mqtt::QoS qos, bool retain,
                                std::vector<uint32_t> sub_ids, AckWaiter* token) {
  const auto& cfg = *config_;
  int64_t now = services_.now_unix_ms();
  if (expired(*msg, now)) {
    stats_.dropped_expired.add();
    return false;
  }
  Link* link = s->link;
  const size_t pending = link != nullptr ? link->pending_bytes() : 0;
  if (qos == 0) {
    if (link != nullptr) {
      if (pending >= kQos0StuckBytes) {
        const bool stuck = services_.now_steady_ms() - link->last_write_ms >= kStuckWriteMs;
        if (stuck || pending >= kQos0HardBytes) {
          // Documented policy: QoS 0 to a receiver that does not read is dropped, counted,
          // logged once; publishers are not held back by it.
          stats_.dropped_qos0_slow.add();
          if (!logged_qos0_drop_) {
            logged_qos0_drop_ = true;
            log(2, "client '" + s->client_id() + "' does not read (" + std::to_string(pending >> 10) +
                       " KiB waiting" + (stuck ? ", no write progress" : "") +
                       "): dropping QoS 0 messages to it; counted in metrics");
          }
          return false;
        }
      }
      // QoS 0 is written and forgotten: no entry, no packet id, no extra reference.
      Delivery d;
      d.retain = retain;
      d.subscription_ids = sub_ids;
      d.expiry_remaining_s = remaining_expiry_s(*msg, now);
      write_publish(s, msg, d);
      return link->pending_bytes() > kOutputHighWater;
    }
    if (!cfg.mqtt.queue_qos0 || !s->persistent()) return false;
  }
  const bool direct = link != nullptr && s->queue.empty() && s->inflight.size() < s->window;
  const size_t limit = cfg.mqtt.max_mqueue_len;
  bool full = false;
  if (!direct && limit != 0 && s->queue.size() >= limit) {
    // Queue full. An online receiver that still acknowledges gets what its publishers sent
    // before they were paused (bounded by kQueueOvershoot); an offline or stuck one loses
    // the new message (documented policy), counted, logged once.
    const bool live = link != nullptr && !receiver_stuck(s);
    if (!live || s->queue.size() >= limit + std::max<size_t>(limit, kQueueOvershoot)) {
      stats_.dropped_queue_full.add();
      if (!logged_queue_full_) {
        log(2, "session queue full (mqtt.max_mqueue_len=" + std::to_string(limit) + ") for " +
                   (link == nullptr ? "offline" : live ? "online" : "stuck") + " client '" +
                   s->client_id() + "': dropping new messages; counted in metrics");
        logged_queue_full_ = true;
      }
      return link != nullptr && live;
    }
  }
  if (link != nullptr && (s->queue.size() + 1 >= queue_pause_len() || pending > kOutputHighWater)) {
    // An online receiver behind on this: its publishers wait (backpressure), unless it is
    // stuck, and then the queue limit applies as for an offline one.
    if (!receiver_stuck(s)) {
      full = true;
      congested_sessions_.insert(s->id());
    }
  }
  OutEntry e;
  e.seq = s->next_seq++;
  e.msg = msg;
  e.qos = qos;
  e.retain = retain;
  e.subscription_ids = std::move(sub_ids);
  if (store_on() && s->persistent() && qos > 0) {
    uint64_t seq = submit(OpQueueAdd{s->client_id(), e.seq, msg, qos, retain, e.subscription_ids});
    if (token) token->note(seq);
    e.stored = true;
  }
  if (direct) {
    if (send_entry(s, e, false) && qos > 0) s->inflight.push_back(std::move(e));
  } else {
    stats_.queued.add();
    s->queue.push_back(std::move(e));
  }
  return full;
}

bool ShardBroker::receiver_stuck(const Session* s) const {
  if (s->link == nullptr) return true;
  const int64_t now = services_.now_steady_ms();
  if (s->link->pending_bytes() > 0 && now - s->link->last_write_ms >= kStuckWriteMs) return true;
  // Messages in flight and no acknowledgement for a while (since it connected, at least).
  return !s->inflight.empty() && now - std::max(s->last_ack_ms, s->link->opened_ms) >= kAckStuckMs;
}

bool ShardBroker::write_publish(Session* s, const MessagePtr& m, const Delivery& d, uint64_t needs_seq) {
  Link* link = s->link;
  if (s->max_packet_out != 0xFFFFFFFF && publish_packet_size(link->version(), *m, d) > s->max_packet_out) {
    // Too large for this client: not sent, as if delivered [MQTT-3.1.2-25].
    stats_.dropped_too_large.add();
    return false;
  }
  if (store_on() && (needs_seq != 0 || !gate_.empty()) &&
      gate_.must_wait(s->id(), DurabilityGate::Chain::kPublish, needs_seq, ctx_.store->durable_seq())) {
    // A QoS 2 PUBLISH whose packet id is not stored yet, or one behind it: held, in order.
    DurabilityGate::Output out;
    out.kind = DurabilityGate::Kind::kPublish;
    out.seq = needs_seq;
    out.link_id = link->link_id();
    out.msg = m;
    out.delivery = d;
    out.subscription_ids.assign(d.subscription_ids.begin(), d.subscription_ids.end());
    gate_.hold(s->id(), std::move(out));
    return true;
  }
  emit_publish(link, *m, d);
  return true;
}

void ShardBroker::emit_publish(Link* link, const Message& m, const Delivery& d) {
  encode_publish(link->version(), m, d, link->out());
  link->mark_dirty();
  stats_.messages_out.add();
}

bool ShardBroker::send_entry(Session* s, OutEntry& e, bool dup) {
  if (e.qos > 0 && e.packet_id == 0) {
    e.packet_id = s->allocate_packet_id();
    e.state = e.qos == 1 ? OutState::AwaitPuback : OutState::AwaitPubrec;
    if (e.stored) e.store_seq = submit(OpQueueUpdate{s->client_id(), e.seq, e.state, e.packet_id});
  }
  // A QoS 2 PUBLISH to a persistent receiver goes out once its packet id is stored.
  const uint64_t needs_seq =
      e.qos == 2 && e.stored && ctx_.store->ack_after_commit() ? e.store_seq : 0;
  Delivery d;
  d.qos = e.qos;
  d.dup = dup;
  d.retain = e.retain;
  d.subscription_ids = e.subscription_ids;
  d.packet_id = e.packet_id;
  d.expiry_remaining_s = remaining_expiry_s(*e.msg, services_.now_unix_ms());
  if (!write_publish(s, e.msg, d, needs_seq)) {
    drop_entry_storage(s, e);
    if (e.packet_id != 0) s->release_packet_id(e.packet_id);
    return false;
  }
  e.sent_ms = services_.now_steady_ms();
  return true;
}

void ShardBroker::send_pubrel(Link* link, uint16_t packet_id) {
  mqtt::PubAck rel;
  rel.type = mqtt::PacketType::Pubrel;
  rel.packet_id = packet_id;
  mqtt::encode(mqtt::Packet{std::move(rel)}, link->version(), link->out());
  link->mark_dirty();
}

void ShardBroker::drop_entry_storage(Session* s, const OutEntry& e) {
  if (e.stored) submit(OpQueueRemove{s->client_id(), e.seq});
}

size_t ShardBroker::queue_pause_len() const {
  // Half the limit, so what the publishers had already sent fits in the other half.
  const size_t limit = config_->mqtt.max_mqueue_len;
  return limit != 0 ? std::max<size_t>(1, limit / 2) : kLongQueue;
}

size_t ShardBroker::queue_resume_len() const { return queue_pause_len() / 2; }

bool ShardBroker::receivers_congested() const {
  const size_t low = queue_resume_len();
  for (SessionId id : congested_sessions_) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;
    const Session* s = it->second;
    if (s->link != nullptr && s->queue.size() > low && !receiver_stuck(s)) return true;
  }
  return false;
}

void ShardBroker::pump(Session* s) {
  while (s->link != nullptr && !s->queue.empty() && s->inflight.size() < s->window) {
    OutEntry e = std::move(s->queue.front());
    s->queue.pop_front();
    if (expired(*e.msg, services_.now_unix_ms())) {
      stats_.dropped_expired.add();
      drop_entry_storage(s, e);
      continue;
    }
    if (send_entry(s, e, false) && e.qos > 0) s->inflight.push_back(std::move(e));
  }
  if (!congested_sessions_.empty() && s->queue.size() <= queue_resume_len()) congested_sessions_.erase(s->id());
  if (s->retained_backlog && s->link != nullptr) feed_retained(s);
}

void ShardBroker::resend_inflight(Session* s) {
  for (auto it = s->inflight.begin(); it != s->inflight.end();) {
    if (it->state == OutState::AwaitPubcomp) {
      if (!(it->stored && hold_until_durable(it->store_seq, s, DurabilityGate::Kind::kPubrel,
                                             it->packet_id)))
        send_pubrel(s->link, it->packet_id);
      it->sent_ms = services_.now_steady_ms();
    } else if (!send_entry(s, *it, /*dup=*/true)) {  // [MQTT-3.3.1-1]
      // Too large for the client's new Maximum Packet Size: discarded as if delivered.
      s->release_packet_id(it->packet_id);
      it = s->inflight.erase(it);
      continue;
    }
    ++it;
  }
}

void ShardBroker::on_puback(Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  OutEntry* e = s->find_inflight(a.packet_id);
  if (e == nullptr || e->state != OutState::AwaitPuback) return;
  auto taken = s->take_inflight(a.packet_id);
  drop_entry_storage(s, *taken);
  pump(s);
}

void ShardBroker::on_pubrec(Link* link, Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  OutEntry* e = s->find_inflight(a.packet_id);
  if (e != nullptr && e->qos == 1) {
    // PUBREC answers a QoS 2 PUBLISH only; for a QoS 1 one it is a protocol error
    // [MQTT-4.3.2], [MQTT-4.8.0-1].
    link->set_close_reason("PUBREC for packet id " + std::to_string(a.packet_id) +
                           ", which was sent at QoS 1");
    close_with(link, ReasonCode::ProtocolError);
    return;
  }
  if (e == nullptr) {
    if (s->link && mqtt::is_v5(s->link->version())) {
      mqtt::PubAck rel;
      rel.type = mqtt::PacketType::Pubrel;
      rel.packet_id = a.packet_id;
      rel.reason = ReasonCode::PacketIdentifierNotFound;
      mqtt::encode(mqtt::Packet{std::move(rel)}, s->link->version(), s->link->out());
      s->link->mark_dirty();
    }
    return;
  }
  if (mqtt::is_error(a.reason)) {
    // The receiver refused it: the flow ends here [MQTT-4.3.3-4].
    auto taken = s->take_inflight(a.packet_id);
    drop_entry_storage(s, *taken);
    pump(s);
    return;
  }
  if (e->state == OutState::AwaitPubrec) {
    e->state = OutState::AwaitPubcomp;
    if (e->stored) e->store_seq = submit(OpQueueUpdate{s->client_id(), e->seq, e->state, e->packet_id});
  }
  e->sent_ms = services_.now_steady_ms();
  if (e->stored && hold_until_durable(e->store_seq, s, DurabilityGate::Kind::kPubrel, a.packet_id))
    return;
  send_pubrel(s->link, a.packet_id);
}

void ShardBroker::on_pubcomp(Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  OutEntry* e = s->find_inflight(a.packet_id);
  if (e == nullptr || e->state != OutState::AwaitPubcomp) return;
  auto taken = s->take_inflight(a.packet_id);
  drop_entry_storage(s, *taken);
  pump(s);
}

// ---------------------------------------------------------------- SUBSCRIBE

void ShardBroker::on_subscribe(Link* link, Session* s, mqtt::Subscribe& sub) {
  const bool v5 = mqtt::is_v5(link->version());
  uint32_t sub_id = sub.props.subscription_identifiers.empty() ? 0 : sub.props.subscription_identifiers.front();
  mqtt::Suback ack;
  ack.packet_id = sub.packet_id;
  struct Granted {
    std::string filter;
    SubscriptionOptions opts;
    bool is_new;
  };
  std::vector<Granted> granted;
  for (auto& t : sub.topics) {
    if (!mqtt::valid_topic_filter(t.filter) ||
        mqtt::exceeds_topic_levels(t.filter, config_->mqtt.max_topic_levels)) {
      ack.reasons.push_back(v5 ? ReasonCode::TopicFilterInvalid : ReasonCode::UnspecifiedError);
      continue;
    }
    bool shared = mqtt::parse_shared_filter(t.filter).has_value();
    if (shared && t.no_local && v5) {
      close_with(link, ReasonCode::ProtocolError);  // [MQTT-3.8.3-4]
      return;
    }
    SubscriptionOptions opts;
    opts.qos = std::min<mqtt::QoS>(t.qos, 2);
    opts.no_local = t.no_local;
    opts.retain_as_published = t.retain_as_published;
    opts.retain_handling = t.retain_handling;
    opts.subscription_id = sub_id;
    bool is_new = ctx_.tree->subscribe(t.filter, SubscriberRef{s->id(), static_cast<uint16_t>(shard_)}, opts);
    s->subscriptions[t.filter] = opts;
    if (store_on() && s->persistent()) {
      submit(OpSubscriptionAdd{s->client_id(), t.filter, opts.qos, opts.no_local,
                               opts.retain_as_published, opts.retain_handling, opts.subscription_id});
    }
    ack.reasons.push_back(static_cast<ReasonCode>(opts.qos));
    if (!shared) granted.push_back(Granted{t.filter, opts, is_new});
  }
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  // Retained messages after the SUBACK [MQTT-3.8.4-4]; handling 1 only for a new
  // subscription, 2 never [MQTT-3.3.1-9..11]; not for shared subscriptions.
  for (const auto& g : granted) {
    if (g.opts.retain_handling == 2 || (g.opts.retain_handling == 1 && !g.is_new)) continue;
    send_retained(s, g.filter, g.opts);
  }
}

void ShardBroker::send_retained(Session* s, const std::string& filter, const SubscriptionOptions& opts) {
  std::vector<MessagePtr> found;
  ctx_.retained->match(filter, shard_, services_.now_unix_ms(), found);
  if (found.empty()) return;
  // Sent with RETAIN=1 [MQTT-3.3.1-8], at min(message QoS, granted QoS), as fast as the
  // receiver takes them: all go to the backlog, which feeds the window (DESIGN: long work
  // is budgeted; thousands of retained messages never overflow the session queue).
  if (!s->retained_backlog) s->retained_backlog = std::make_unique<std::deque<Session::PendingRetained>>();
  for (auto& msg : found) {
    const mqtt::QoS qos = std::min(msg->qos, opts.qos);
    s->retained_backlog->push_back(Session::PendingRetained{std::move(msg), qos, opts.subscription_id});
  }
  feed_retained(s);
}

void ShardBroker::feed_retained(Session* s) {
  if (!s->retained_backlog) return;
  auto& backlog = *s->retained_backlog;
  const size_t high = queue_pause_len();
  while (!backlog.empty()) {
    Link* link = s->link;
    if (link != nullptr) {
      Session::PendingRetained& r = backlog.front();
      const bool room = r.qos == 0 ? link->pending_bytes() <= kOutputLowWater
                                   : s->queue.size() < high && link->pending_bytes() <= kOutputHighWater;
      if (!room) {
        link->wants_writable = true;  // on_link_writable or pump() goes on from here
        return;
      }
    }
    Session::PendingRetained r = std::move(backlog.front());
    backlog.pop_front();
    std::vector<uint32_t> ids;
    if (r.subscription_id) ids.push_back(r.subscription_id);
    // Offline (the client left meanwhile): queued as any message for an offline session.
    deliver_local(s, r.msg, r.qos, true, std::move(ids), nullptr);
  }
  s->retained_backlog.reset();
  if (s->link != nullptr) s->link->wants_writable = false;
}

void ShardBroker::on_link_writable(Link* link) {
  link->wants_writable = false;
  if (link->session != nullptr) feed_retained(link->session);
}

void ShardBroker::on_unsubscribe(Link* link, Session* s, mqtt::Unsubscribe& unsub) {
  mqtt::Unsuback ack;
  ack.packet_id = unsub.packet_id;
  for (const auto& f : unsub.filters) {
    auto it = s->subscriptions.find(f);
    if (it == s->subscriptions.end()) {
      ack.reasons.push_back(ReasonCode::NoSubscriptionExisted);
      continue;
    }
    s->subscriptions.erase(it);
    ctx_.tree->unsubscribe(f, s->id());
    if (store_on() && s->persistent()) submit(OpSubscriptionRemove{s->client_id(), f});
    ack.reasons.push_back(ReasonCode::Success);
  }
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
}

// ---------------------------------------------------------------- timers and restore

void ShardBroker::sweep() {
  const auto& cfg = *config_;
  int64_t now = services_.now_steady_ms();
  std::vector<Link*> expired_links;
  for (auto& [id, link] : links_) {
    if (!link->connected) {
      // A socket whose CONNECT is not complete within mqtt.connect_timeout is closed.
      if (now - link->opened_ms > cfg.mqtt.connect_timeout.count()) expired_links.push_back(link);
      continue;
    }
    // An idle connection gives its buffers back (an idle client costs well under 1 KiB).
    if (now - link->last_rx_ms > kTrimIdleMs && link->pending_bytes() == 0) {
      link->trim_buffers();
      if (Session* idle = link->session) idle->trim();
    }
    if (link->keep_alive_s != 0 && !link->read_paused) {
      // Keep alive × multiplier without a packet → disconnect [MQTT-3.1.2-22]. Not while we
      // do not read it ourselves (backpressure): its PINGREQ waits in the socket.
      auto limit = static_cast<int64_t>(link->keep_alive_s * 1000.0 * cfg.mqtt.keepalive_multiplier);
      if (now - link->last_rx_ms > limit) {
        expired_links.push_back(link);
        continue;
      }
    }
    Session* s = link->session;
    if (s == nullptr) continue;
    // 3.1.1 only: resend unacknowledged messages while online; 5.0 resends only on
    // reconnect [MQTT-4.4.0-1].
    if (!mqtt::is_v5(link->version()) && cfg.mqtt.retry_interval.count() > 0) {
      for (auto& e : s->inflight) {
        if (now - e.sent_ms < cfg.mqtt.retry_interval.count()) continue;
        if (e.state == OutState::AwaitPubcomp) {
          if (!(e.stored && hold_until_durable(e.store_seq, s, DurabilityGate::Kind::kPubrel, e.packet_id)))
            send_pubrel(link, e.packet_id);
          e.sent_ms = now;
        } else {
          send_entry(s, e, true);
        }
      }
    }
    // QoS 2 receiver state that never saw its PUBREL is dropped after await_rel_timeout.
    if (!s->qos2_in.empty() && cfg.mqtt.await_rel_timeout.count() > 0) {
      for (auto it = s->qos2_in.begin(); it != s->qos2_in.end();) {
        if (it->second.acked && now - it->second.received_ms > cfg.mqtt.await_rel_timeout.count()) {
          if (link->inbound_unacked) link->inbound_unacked--;
          if (store_on() && s->persistent()) submit(OpQos2InRemove{s->client_id(), it->first});
          it = s->qos2_in.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  for (Link* link : expired_links) close_with(link, ReasonCode::KeepAliveTimeout);
  // Expired retained messages leave the tree and the store (shard 0 owns this sweep).
  if (shard_ == 0 && now >= next_retained_sweep_ms_) {
    next_retained_sweep_ms_ = now + 5000;  // a full walk under the writer lock: not too often
    for (const auto& msg : ctx_.retained->take_expired(services_.now_unix_ms()))
      if (store_on()) submit(OpRetainedClear{msg->topic});
  }
}

void ShardBroker::restore_session(RestoredSession r) {
  Session* s = create_session(r.session.client_id);
  s->version = static_cast<Version>(r.session.version);
  s->expiry_s = r.session.expiry_s;
  s->last_seen_ms = r.session.last_seen_ms ? r.session.last_seen_ms : services_.now_unix_ms();
  s->window = static_cast<uint16_t>(std::min<uint32_t>(65535, config_->mqtt.max_inflight_window));
  if (r.session.will) {
    // A stored will belongs to a connection that ended with the broker; it is kept so a
    // later abnormal disconnect of the resumed session still publishes the client's latest one.
    mqtt::Will w;
    w.topic = r.session.will->topic;
    w.payload = r.session.will->payload;
    w.qos = r.session.will->qos;
    w.retain = r.session.will->retain;
    if (r.session.will->delay_s) w.props.will_delay_interval = r.session.will->delay_s;
    if (r.session.will->expiry_s) w.props.message_expiry_interval = r.session.will->expiry_s;
    s->will = std::make_unique<mqtt::Will>(std::move(w));
  }
  for (const auto& sub : r.subscriptions) {
    SubscriptionOptions o;
    o.qos = sub.qos;
    o.no_local = sub.no_local;
    o.retain_as_published = sub.retain_as_published;
    o.retain_handling = sub.retain_handling;
    o.subscription_id = sub.subscription_id;
    ctx_.tree->subscribe(sub.filter, SubscriberRef{s->id(), static_cast<uint16_t>(shard_)}, o);
    s->subscriptions[sub.filter] = o;
  }
  for (auto& q : r.queue) {
    OutEntry e;
    e.seq = q.seq;
    e.msg = std::move(q.message);
    e.qos = q.qos;
    e.retain = q.retain;
    e.subscription_ids = std::move(q.subscription_ids);
    e.state = q.state;
    e.packet_id = q.packet_id;
    e.stored = true;
    s->next_seq = std::max(s->next_seq, e.seq + 1);
    if (e.state == OutState::Queued || e.packet_id == 0) {
      e.state = OutState::Queued;
      e.packet_id = 0;
      s->queue.push_back(std::move(e));
    } else {
      s->reserve_packet_id(e.packet_id);
      s->inflight.push_back(std::move(e));
    }
  }
  int64_t steady = services_.now_steady_ms();
  for (uint16_t pid : r.qos2_in) s->qos2_in[pid] = Session::Qos2In{steady, true};
  schedule_expiry(s);
}

void ShardBroker::shutdown() {
  std::vector<Link*> all;
  for (auto& [id, link] : links_) all.push_back(link);
  for (Link* link : all) {
    if (link->connected) close_with(link, ReasonCode::ServerShuttingDown);
    else link->close_after_flush();
    // A broker shutdown is not the client's failure: no will; a persistent session keeps
    // its will for a later abnormal disconnect.
    if (Session* s = link->session) {
      link->normal_disconnect = true;
      SessionId id = s->id();
      auto will = std::move(s->will);
      detach(s, /*abnormal=*/false);  // may destroy a non-persistent session
      if (auto it = by_id_.find(id); it != by_id_.end() && will) {
        it->second->will = std::move(will);
        persist_session(it->second);
      }
    }
  }
}

}  // namespace harbor::broker
