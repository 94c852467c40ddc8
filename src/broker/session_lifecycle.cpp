// ShardBroker, session lifecycle: CONNECT (new session, resume, takeover), CONNACK,
// detach, expiry, wills, DISCONNECT and the connection closing.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

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

// The caller holds a SessionDirectory reservation for `client_id` on this shard; the session
// takes it over (destroy_session gives it back).
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
  if (!shutting_down_) redeliver_shared(s);  // at shutdown every session is going
  if (s->will_timer) services_.cancel_timer(s->will_timer);
  if (s->expiry_timer) services_.cancel_timer(s->expiry_timer);
  if ((delete_from_store || s->store_rows_until_end) && store_on()) submit(OpSessionDelete{s->client_id()});
  page_waiters_.erase(s->id());
  by_id_.erase(s->id());
  gate_.forget(s->id());
  congested_sessions_.erase(s->id());
  ctx_.stats.sessions.fetch_sub(1, std::memory_order_relaxed);
  ctx_.directory.release(SessionDirectory::key_of(s->client_id()), shard_);
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

namespace {

// mqtt.max_keepalive: a 5.0 client asking for more than the maximum, or for none (0), is told
// the maximum as Server Keep Alive and must use it [MQTT-3.2.2-21]; otherwise its own value
// holds [MQTT-3.2.2-22]. 3.1/3.1.1 have no way to tell the client, and timing it out sooner
// than it pings would cut healthy connections: its value is kept (docs/conformance.md).
uint16_t negotiated_keep_alive(const mqtt::Connect& c, uint16_t max_keepalive) {
  if (!mqtt::is_v5(c.version) || max_keepalive == 0) return c.keep_alive;
  if (c.keep_alive == 0 || c.keep_alive > max_keepalive) return max_keepalive;
  return c.keep_alive;
}

}  // namespace

namespace {

// The address part of Link::remote ("1.2.3.4:port", "[::1]:port").
std::string_view address_of(std::string_view remote) {
  if (remote.starts_with('[')) {
    size_t end = remote.find(']');
    return end == std::string_view::npos ? remote : remote.substr(1, end - 1);
  }
  size_t colon = remote.rfind(':');
  return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

}  // namespace

// auth {}: the password check, then this client's ACL (its will's topic included). Runs on
// the shard that keeps the session, once per CONNECT. Never logs a password.
bool ShardBroker::admit(Link* link, const mqtt::Connect& c) {
  const auto& access = settings_->access;
  const EnhancedAuth* ea = link->enhanced_auth.get();
  if (ea != nullptr && ea->user && c.username && *c.username != *ea->user) {
    stats_.auth_refused.add();
    link->set_close_reason("CONNECT refused: its User Name is not the user SCRAM proved");
    reject_connect(link, ReasonCode::NotAuthorized);
    return false;
  }
  // A user proven by enhanced authentication needs no password check; an HTTP server's
  // answer (or the password file's, asked first) is the verdict.
  ConnectVerdict verdict = ConnectVerdict::Accept;
  bool superuser = false;
  if (link->http_auth && link->http_auth->answer) {
    const HttpAuthAnswer answer = std::move(*link->http_auth->answer);
    link->http_auth.reset();
    if (answer.verdict == HttpAuthVerdict::Unavailable) {
      stats_.auth_refused.add();
      link->set_close_reason("CONNECT refused: the HTTP auth server gave no answer (" +
                             answer.detail + ")");
      reject_connect(link, ReasonCode::ServerUnavailable);
      return false;
    }
    if (answer.verdict == HttpAuthVerdict::Deny) {
      stats_.auth_refused.add();
      link->set_close_reason("CONNECT refused by the HTTP auth server (" + answer.detail + ")" +
                             (c.username ? " for user '" + *c.username + "'" : std::string()));
      reject_connect(link, ReasonCode::BadUserNameOrPassword);
      return false;
    }
    superuser = answer.superuser;
  } else if (ea == nullptr || !ea->user) {
    verdict = access->check_connect(c.username, c.password);
  }
  if (verdict != ConnectVerdict::Accept) {
    stats_.auth_refused.add();
    const bool bad = verdict == ConnectVerdict::BadCredentials;
    link->set_close_reason(
        std::string("CONNECT refused: ") +
        (bad ? "bad user name or password (user '" + *c.username + "')"
         : c.username
             ? std::string("not authorized (auth.allow_anonymous = false and no "
                           "auth.password to check user names against)")
             : std::string("not authorized (no user name; auth.allow_anonymous = false)")));
    reject_connect(link, bad ? ReasonCode::BadUserNameOrPassword : ReasonCode::NotAuthorized);
    return false;
  }
  if (superuser) return true;  // super_req said so: no ACL applies
  // Made even while there are no rules, so that rules a reload adds apply to this client.
  link->acl = std::make_unique<ClientAcl>(access, ea != nullptr && ea->user ? ea->user : c.username,
                                          c.client_id, std::string(address_of(link->remote)));
  if (c.will && access->has_rules() && !link->acl->may_publish(access, c.will->topic)) {
    stats_.acl_denied.add();
    link->set_close_reason("CONNECT refused: the ACL denies publishing the will's topic '" +
                           c.will->topic + "'");
    reject_connect(link, ReasonCode::NotAuthorized);
    return false;
  }
  return true;
}

// auth.http_auth, before the session is claimed: true when the CONNECT now waits for the
// HTTP server. The password file is asked first (a user it accepts needs no request); a
// client without a user name while anonymous ones are refused is refused by admit().
bool ShardBroker::ask_http_auth(Link* link, mqtt::Connect& c) {
  const EnhancedAuth* ea = link->enhanced_auth.get();
  if (ea != nullptr && ea->user) return false;  // SCRAM proved the user
  const AccessSettings& a = settings_->access->settings();
  if (!c.username && !a.allow_anonymous) return false;
  link->http_auth = std::make_unique<HttpAuthWait>();
  if (c.username && a.check_users && a.passwords.contains(*c.username)) {
    if (settings_->access->check_connect(c.username, c.password) == ConnectVerdict::Accept) {
      link->http_auth->answer = HttpAuthAnswer{HttpAuthVerdict::Allow, false, "password file"};
      return false;
    }
  }
  HttpAuthRequest r;
  r.shard = shard_;
  r.link_id = link->link_id();
  r.username = c.username;
  r.password = c.password;
  r.client_id = c.client_id;
  r.address = std::string(address_of(link->remote));
  r.protocol = static_cast<uint8_t>(c.version);
  fill_connection_params(link, r);
  link->http_auth->connect = std::make_unique<mqtt::Connect>(std::move(c));
  link->input_held = true;
  ctx_.http_auth->ask(std::move(r));
  return true;
}

void ShardBroker::on_http_auth_answer(uint64_t link_id, HttpAuthAnswer answer) {
  auto it = links_.find(link_id);
  if (it == links_.end()) return;  // the client went away meanwhile
  Link* link = it->second;
  if (answer.kind == HttpAuthKind::Acl) {
    on_http_acl_answer(link, std::move(answer));
    return;
  }
  if (!link->http_auth || !link->http_auth->connect || link->connected) return;
  link->http_auth->answer = std::move(answer);
  std::unique_ptr<mqtt::Connect> c = std::move(link->http_auth->connect);
  link->input_held = false;
  on_connect(link, std::move(*c));
  link->resume_held_input();
}

void ShardBroker::on_connect(Link* link, mqtt::Connect c) {
  const Settings& cfg = *settings_;
  if (link->certificate_username) {  // listeners.ssl.use_cn_as_username
    if (link->certificate_username->empty())
      c.username.reset();
    else
      c.username = *link->certificate_username;
  }
  const bool v5 = mqtt::is_v5(c.version);
  mqtt::Properties ack_props;
  // MQTT 3.1 (protocol level 3): the Client Identifier is 1 to 23 characters; others are
  // refused with CONNACK 0x02 (identifier rejected). 3.1.1 and 5.0 allow an empty one.
  if (c.version == Version::v31 && (c.client_id.empty() || c.client_id.size() > 23)) {
    return reject_connect(link, ReasonCode::ClientIdentifierNotValid);
  }
  if (std::string_view(c.client_id).starts_with(kBridgeClientPrefix)) {
    // Reserved for the broker's own bridge sessions (their queues are not a client's).
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
  if (v5 && c.props.authentication_method && !(link->enhanced_auth && link->enhanced_auth->user)) {
    // Enhanced authentication: the CONNECT waits for the AUTH exchange (enhanced_auth.cpp),
    // which calls on_connect again once the user is proven.
    return begin_enhanced_auth(link, std::move(c));
  }
  if (c.will && mqtt::exceeds_topic_levels(c.will->topic, settings_->max_topic_levels))
    return reject_connect(link, ReasonCode::TopicNameInvalid);  // mqtt.max_topic_levels
  if (cfg.access && cfg.access->settings().http_auth && ctx_.http_auth && !link->http_auth &&
      ask_http_auth(link, c)) {
    return;  // on_http_auth_answer calls on_connect again
  }
  // The session stays where it is (SessionDirectory): claim its id here, or move the
  // connection to the shard that holds it. A local session holds its entry already; the
  // reservation taken here keeps the id on this shard while takeover or a clean start ends
  // that session, and becomes the new session's or is given back when the old one goes on.
  const uint64_t key = SessionDirectory::key_of(c.client_id);
  if (unsigned holder = ctx_.directory.claim(key, shard_); holder != shard_) {
    links_.erase(link->link_id());
    services_.move_link(link, holder, std::move(c));
    return;
  }
  if (cfg.access && !admit(link, c)) {
    ctx_.directory.release(key, shard_);  // the reservation claim() just took
    return;
  }
  link->keep_alive_s = negotiated_keep_alive(c, cfg.max_keepalive);
  if (link->keep_alive_s != c.keep_alive) ack_props.server_keep_alive = link->keep_alive_s;

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
  if (s == nullptr)
    s = create_session(c.client_id);  // takes the reservation
  else
    ctx_.directory.release(key, shard_);  // the session held its entry already
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
    s->window = static_cast<uint16_t>(std::min<uint32_t>(rm, cfg.max_inflight_window));
    s->max_packet_out = c.props.maximum_packet_size.value_or(0xFFFFFFFF);
    if (c.props.topic_alias_maximum.value_or(0) > 0)
      link->out_aliases = std::make_unique<OutboundAliases>(*c.props.topic_alias_maximum);
  } else {
    s->expiry_s = c.clean_start ? 0
                  : cfg.session_expiry_311 ? cfg.session_expiry_311
                                                : kExpiryNever;
    s->window = static_cast<uint16_t>(std::min<uint32_t>(65535, cfg.max_inflight_window));
    s->max_packet_out = 0xFFFFFFFF;
  }
  if (s->window == 0) s->window = 1;
  s->will = c.will ? std::make_unique<mqtt::Will>(std::move(*c.will)) : nullptr;
  s->clean_start = c.clean_start;
  s->username = c.username ? std::make_unique<std::string>(*c.username) : nullptr;
  s->connected_ms = services_.now_unix_ms();
  s->link = link;
  link->session = s;
  link->connected = true;
  ctx_.stats.connections.fetch_add(1, std::memory_order_relaxed);

  if (store_on()) {
    if (s->persistent())
      persist_session(s);
    else if (was_persistent && s->paged_from != 0)
      s->store_rows_until_end = true;  // entries on disk are owed on this connection
    else if (was_persistent)
      submit(OpSessionDelete{s->client_id()});
  }

  if (v5) {
    ack_props.topic_alias_maximum = cfg.max_topic_alias;
    ack_props.receive_maximum =
        static_cast<uint16_t>(std::clamp<uint32_t>(cfg.max_awaiting_rel, 1, 65535));
    // At most the largest packet the protocol can express (some clients reject more).
    ack_props.maximum_packet_size = std::min<uint32_t>(cfg.max_packet_size, mqtt::kMaxRemainingLength);
    ack_props.retain_available = 1;
    ack_props.wildcard_subscription_available = 1;
    ack_props.subscription_identifier_available = 1;
    ack_props.shared_subscription_available = 1;
  }
  if (link->enhanced_auth && link->enhanced_auth->final_data) {
    ack_props.authentication_method = link->enhanced_auth->method;
    ack_props.authentication_data = std::move(*link->enhanced_auth->final_data);
    link->enhanced_auth->final_data.reset();
  }
  // A CONNACK that cannot fit closes the connection: nothing else may follow it.
  if (!send_connack(link, session_present, ReasonCode::Success, std::move(ack_props))) return;
  log(1, "client \"" + c.client_id + "\"" + (link->assigned_client_id ? " (id assigned)" : "") +
             " connected from " + link->remote + " (MQTT " + std::string(version_name(c.version)) +
             ", keepalive " + std::to_string(link->keep_alive_s) + " s" +
             (link->keep_alive_s != c.keep_alive
                  ? " (Server Keep Alive; asked " + std::to_string(c.keep_alive) + " s)"
                  : std::string()) +
             ", " +
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
    link->keep_client_id(s->client_id());  // for its disconnect log line
    ctx_.stats.connections.fetch_sub(1, std::memory_order_relaxed);
  }
  s->link = nullptr;
  s->inflight.on_disconnected();
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
  if (const std::string& t = s->will->topic; t == "$SYS" || t.starts_with("$SYS/")) {
    // `$SYS/` is the broker's, for wills as for PUBLISH (refuse_sys_publish): discarded,
    // counted with the refused publishes.
    stats_.refused_sys_publish.add();
    s->will.reset();
    return;
  }
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
  // Once per connection: the runtime reports each closed link once. A bridge's link is
  // logged by its bridge.
  if (link->connected && !link->outbound) {
    const std::string& id =
        link->session != nullptr ? link->session->client_id() : link->detached_client_id();
    log(1, "client \"" + id + "\" disconnected from " + link->remote + ": " +
               (link->close_reason().empty() ? std::string("connection closed")
                                             : link->close_reason()));
  }
  Session* s = link->session;
  if (s == nullptr) return;
  detach(s, /*abnormal=*/!link->normal_disconnect);
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

}  // namespace harbor::broker
