#include "bridge/bridge.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "broker/session.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"
#include "runtime/log.hpp"

namespace harbor::bridge {

namespace {
constexpr int64_t kFirstBackoffMs = 1000;
}  // namespace

std::string local_topic_of(const RemoteSubscription& sub, std::string_view topic) {
  std::string out = sub.prefix;
  out.append(sub.local_topic.empty() ? topic : std::string_view(sub.local_topic));
  out.append(sub.suffix);
  return out;
}

Bridge::Bridge(Spec spec, runtime::Shard& shard)
    : spec_(std::move(spec)),
      shard_(shard),
      lookup_target_(std::make_shared<LookupTarget>()),
      rng_(std::random_device{}()) {
  lookup_target_->bridge = this;
}

Bridge::~Bridge() {
  std::lock_guard lock(lookup_target_->mu);
  lookup_target_->bridge = nullptr;
}

void Bridge::prepare() { shard_.broker().ensure_bridge_session(spec_.rules, spec_.version); }

void Bridge::retire(std::unique_ptr<Bridge> self, bool drop_session) {
  Bridge& b = *self;
  {
    std::lock_guard lock(b.lookup_target_->mu);
    b.lookup_target_->bridge = nullptr;
  }
  for (runtime::TimerId* t : {&b.redial_timer_, &b.ping_timer_}) {
    if (*t != 0) b.shard_.loop().cancel_timer(*t);
    *t = 0;
  }
  b.drop_session_when_retired_ = drop_session;
  if (b.link_ == nullptr) {
    b.finish_retiring();
    return;  // destroyed with `self`
  }
  b.link_->set_close_reason("the bridge was removed or changed by a reload");
  b.link_->close_after_flush();
  b.retiring_self_ = std::move(self);
}

void Bridge::finish_retiring() {
  if (drop_session_when_retired_) shard_.broker().drop_bridge_session(spec_.rules->client_id());
}

void Bridge::start() {
  shard_.loop().post([this] { dial(); });
}

std::string Bridge::describe(const RemoteAddress& a) const {
  return a.host + ":" + std::to_string(a.port);
}

namespace {

addrinfo lookup_hints(bool numeric) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
  return hints;
}

}  // namespace

void Bridge::dial() {
  redial_timer_ = 0;
  if (shard_.stopping() || link_ != nullptr || resolving_ || spec_.servers.empty()) return;
  const RemoteAddress& a = spec_.servers[server_ % spec_.servers.size()];
  // An address needs no lookup: done here at once.
  const addrinfo hints = lookup_hints(true);
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found) != 0) {
    resolve(a);
    return;
  }
  std::shared_ptr<addrinfo> owned(found, ::freeaddrinfo);
  connect_to(a, *owned);
}

void Bridge::resolve(const RemoteAddress& a) {
  resolving_ = true;
  // Detached: at shutdown a lookup may outlive the bridge, and finds lookup_target_ empty.
  std::thread([target = lookup_target_, host = a.host, port = std::to_string(a.port),
               server = server_, loop = &shard_.loop()] {
    const addrinfo hints = lookup_hints(false);
    addrinfo* raw = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &raw);
    std::shared_ptr<addrinfo> found(rc == 0 ? raw : nullptr, [](addrinfo* p) {
      if (p != nullptr) ::freeaddrinfo(p);
    });
    std::lock_guard lock(target->mu);
    if (target->bridge == nullptr) return;  // the bridge (and maybe its loop) is gone
    loop->post([target, server, rc, found = std::move(found)]() mutable {
      // On the loop thread, where the bridge is destroyed too: no race with the check.
      if (Bridge* b = target->bridge) b->on_resolved(server, rc, std::move(found));
    });
  }).detach();
}

void Bridge::on_resolved(size_t server, int rc, std::shared_ptr<addrinfo> found) {
  resolving_ = false;
  if (shard_.stopping() || link_ != nullptr) return;
  const RemoteAddress& a = spec_.servers[server % spec_.servers.size()];
  if (rc != 0) {
    runtime::log_warn("bridge \"" + name() + "\": cannot resolve " + a.host + ": " +
                      ::gai_strerror(rc));
    ++server_;
    redial_later();
    return;
  }
  connect_to(a, *found);
}

void Bridge::connect_to(const RemoteAddress& a, const addrinfo& where) {
  int fd = ::socket(where.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, where.ai_addr, where.ai_addrlen) != 0 && errno != EINPROGRESS) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) {
    runtime::log_warn("bridge \"" + name() + "\": cannot connect to " + describe(a) + ": " +
                      std::strerror(err));
    ++server_;
    redial_later();
    return;
  }
  link_ = shard_.adopt_outbound(fd, describe(a), this, spec_.version,
                                shard_.broker().settings().max_packet_size, a.tls);
}

void Bridge::redial_later() {
  if (shard_.stopping()) return;
  // Doubles per failed attempt from 1 s to backoff_max; half of it fixed, half random, so a
  // fleet of edge brokers losing the same remote does not come back in step.
  int64_t delay = kFirstBackoffMs;
  for (uint32_t i = 0; i < failures_ && delay < spec_.backoff_max_ms; ++i) delay *= 2;
  delay = std::min(delay, std::max<int64_t>(spec_.backoff_max_ms, 1));
  const int64_t half = delay / 2;
  delay = half + static_cast<int64_t>(rng_() % static_cast<uint64_t>(half + 1));
  ++failures_;
  redial_timer_ = shard_.loop().add_timer_after(delay, [this] { dial(); });
}

void Bridge::on_socket_connected(runtime::Connection& c) {
  mqtt::Connect connect;
  connect.version = spec_.version;
  connect.clean_start = spec_.clean_start;
  connect.keep_alive = spec_.keep_alive_s;
  connect.client_id = spec_.remote_client_id;
  connect.username = spec_.username;
  connect.password = spec_.password;
  connect.will = spec_.will;
  if (mqtt::is_v5(spec_.version)) {
    connect.props = spec_.connect_props;
    // What arrives from the remote unacknowledged stays within what a client of ours may
    // have (mqtt.max_awaiting_rel), or the broker would refuse it.
    const uint32_t most =
        std::clamp<uint32_t>(shard_.broker().settings().max_awaiting_rel, 1, 65535);
    connect.props.receive_maximum = static_cast<uint16_t>(
        std::min<uint32_t>(connect.props.receive_maximum.value_or(65535), most));
    if (auto* cp = c.client_protocol())
      cp->set_max_topic_alias(connect.props.topic_alias_maximum.value_or(0));
  }
  mqtt::encode(mqtt::Packet{std::move(connect)}, spec_.version, c.out());
}

broker::Flow Bridge::on_packet(runtime::Connection& c, mqtt::Packet& p) {
  if (auto* ack = std::get_if<mqtt::Connack>(&p)) {
    on_connack(c, *ack);
    return broker::Flow::Continue;
  }
  if (auto* pub = std::get_if<mqtt::Publish>(&p)) {
    ++received_;
    // Remote → local: the topic of the first subscription that matches, then published
    // like a client's (acknowledged to the remote once stored).
    for (const auto& sub : spec_.subscriptions) {
      if (mqtt::topic_matches(sub.remote_topic, pub->topic)) {
        pub->topic = local_topic_of(sub, pub->topic);
        break;
      }
    }
    return shard_.broker().on_packet(&c, std::move(p));
  }
  if (auto* suback = std::get_if<mqtt::Suback>(&p)) {
    if (suback->packet_id == subscribe_id_) subscribe_id_ = 0;
    for (size_t i = 0; i < suback->reasons.size() && i < spec_.subscriptions.size(); ++i) {
      const auto rc = suback->reasons[i];
      if (static_cast<uint8_t>(rc) >= 0x80) {
        runtime::log_warn("bridge \"" + name() + "\": " + c.remote +
                          " refused the subscription to \"" + spec_.subscriptions[i].remote_topic +
                          "\": " + std::string(mqtt::to_string(rc)));
      }
    }
    return broker::Flow::Continue;
  }
  if (std::holds_alternative<mqtt::Pingresp>(p) || std::holds_alternative<mqtt::Unsuback>(p))
    return broker::Flow::Continue;
  if (auto* d = std::get_if<mqtt::Disconnect>(&p)) {
    c.set_close_reason("the remote sent DISCONNECT: " + std::string(mqtt::to_string(d->reason)));
    c.close_after_flush();
    return broker::Flow::Continue;
  }
  // PUBACK, PUBREC, PUBREL, PUBCOMP: the session's flows, as for a client.
  if (const auto* a = std::get_if<mqtt::PubAck>(&p);
      a != nullptr && (a->type == mqtt::PacketType::Puback || a->type == mqtt::PacketType::Pubcomp))
    ++acknowledged_;
  return shard_.broker().on_packet(&c, std::move(p));
}

void Bridge::on_connack(runtime::Connection& c, const mqtt::Connack& ack) {
  if (ack.reason != mqtt::ReasonCode::Success) {
    c.set_close_reason("the remote refused CONNECT: " + std::string(mqtt::to_string(ack.reason)));
    c.close_after_flush();
    return;
  }
  broker::ShardBroker::BridgeAttach a;
  a.client_id = spec_.rules->client_id();
  a.version = spec_.version;
  a.window = static_cast<uint16_t>(std::max<uint32_t>(
      1, std::min<uint32_t>(ack.props.receive_maximum.value_or(65535), spec_.max_inflight)));
  a.max_packet = ack.props.maximum_packet_size.value_or(0xFFFFFFFF);
  a.keep_alive_s = ack.props.server_keep_alive.value_or(spec_.keep_alive_s);
  a.session_present = ack.session_present;
  if (!shard_.broker().attach_bridge(&c, a)) {
    runtime::log_error("bridge \"" + name() + "\": its session is missing on this shard");
    c.set_close_reason("no bridge session");
    c.close_after_flush();
    return;
  }
  if (const runtime::TlsTransport* tls = c.tls_transport()) {
    const auto peer = tls->peer_certificate();
    const bool verified = peer && peer->verified;
    runtime::log_info(
        "bridge \"" + name() + "\": link to " + c.remote + " over " +
        std::string(tls->protocol_version()) + " (" + std::string(tls->cipher()) + "), " +
        (verified ? "the remote's certificate verified"
                  : "the remote's certificate NOT verified (ssl.verify_peer = false)"));
  }
  up_ = true;
  failures_ = 0;
  ++links_;
  link_acknowledged_ = acknowledged_;
  link_received_ = received_;
  up_since_ms_ = shard_.loop().now_ms();
  subscribe_remote(c);
  arm_ping();
}

void Bridge::subscribe_remote(runtime::Connection& c) {
  if (spec_.subscriptions.empty()) return;
  mqtt::Subscribe sub;
  // A packet id no PUBLISH of the session has in flight [MQTT-2.2.1-3].
  uint16_t id = 65535;
  while (id > 1 && c.session != nullptr && c.session->inflight.find(id) != nullptr) --id;
  sub.packet_id = id;
  for (const auto& s : spec_.subscriptions) {
    mqtt::SubscribeTopic t;
    t.filter = s.remote_topic;
    t.qos = s.qos;
    t.no_local = s.no_local;
    t.retain_as_published = s.retain_as_published;
    t.retain_handling = s.retain_handling;
    sub.topics.push_back(std::move(t));
  }
  subscribe_id_ = id;
  mqtt::encode(mqtt::Packet{std::move(sub)}, spec_.version, c.out());
  c.mark_dirty();
}

void Bridge::arm_ping() {
  if (spec_.keep_alive_s == 0) return;
  const int64_t half_ms = int64_t{spec_.keep_alive_s} * 500;
  ping_timer_ = shard_.loop().add_timer_after(std::max<int64_t>(half_ms / 2, 100), [this, half_ms] {
    ping_timer_ = 0;
    if (link_ == nullptr || !up_ || link_->closing || link_->closed) return;
    // Something every half keep alive, so the remote never times us out [MQTT-3.1.2-23].
    if (shard_.loop().now_ms() - link_->last_write_ms >= half_ms || link_->last_write_ms == 0) {
      mqtt::encode(mqtt::Packet{mqtt::Pingreq{}}, spec_.version, link_->out());
      link_->mark_dirty();
    }
    arm_ping();
  });
}

Bridge::Status Bridge::status() const {
  Status st;
  st.connected = up_;
  if (link_ != nullptr) st.remote = link_->remote;
  else if (!spec_.servers.empty()) st.remote = describe(spec_.servers[server_ % spec_.servers.size()]);
  st.connected_since_ms = up_ ? up_since_ms_ : 0;
  st.acknowledged = acknowledged_;
  st.received = received_;
  st.links = links_;
  st.failed_attempts = failures_;
  return st;
}

void Bridge::on_closed(runtime::Connection& c) {
  if (&c != link_) return;
  link_ = nullptr;
  if (retiring_self_) {
    runtime::log_info("bridge \"" + name() + "\": link to " + c.remote + " closed (" +
                      c.close_reason() + ")");
    finish_retiring();
    auto gone = std::move(retiring_self_);  // the last use of this
    return;
  }
  if (ping_timer_ != 0) {
    shard_.loop().cancel_timer(ping_timer_);
    ping_timer_ = 0;
  }
  subscribe_id_ = 0;
  const std::string why =
      c.close_reason().empty() ? std::string("connection closed") : c.close_reason();
  if (up_) {
    const int64_t secs = (shard_.loop().now_ms() - up_since_ms_) / 1000;
    const size_t waiting = shard_.broker().waiting_of(spec_.rules->client_id());
    runtime::log_warn("bridge \"" + name() + "\": link to " + c.remote + " lost after " +
                      std::to_string(secs) + " s (" +
                      std::to_string(acknowledged_ - link_acknowledged_) +
                      " forwarded and acknowledged, " + std::to_string(received_ - link_received_) +
                      " received, " + std::to_string(waiting) + " waiting" +
                      "): " + why);
  } else if (!shard_.stopping()) {
    runtime::log_warn("bridge \"" + name() + "\": cannot connect to " + c.remote + ": " + why);
    ++server_;  // next time, the next of server and hybrid_servers
  }
  up_ = false;
  if (shard_.stopping()) return;
  redial_later();
}

}  // namespace harbor::bridge
