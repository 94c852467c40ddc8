// ShardBroker, SUBSCRIBE/UNSUBSCRIBE and retained messages on subscribe (paced backlog).
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

namespace {

// Whole size of a 5.0 SUBACK or UNSUBACK with `reasons` reason codes and no properties: the
// broker sends neither a Reason String nor User Properties in them.
size_t ack_size_v5(size_t reasons) {
  const size_t body = 2 + 1 + reasons;  // packet id, property length 0, one code per filter
  return 1 + mqtt::varint_size(static_cast<uint32_t>(body)) + body;
}

// [MQTT-3.1.2-24] A SUBACK or UNSUBACK carries one reason code per filter [MQTT-3.8.4-6],
// [MQTT-3.11.3-1], so one that exceeds the client's Maximum Packet Size cannot be trimmed,
// and leaving the request unanswered would hang the client: the caller closes the
// connection with 0x95 before anything is changed. Returns why, or nothing when it fits.
std::optional<std::string> ack_too_large(const Link* link, const Session* s, const char* type,
                                         size_t reasons) {
  if (!mqtt::is_v5(link->version())) return std::nullopt;  // no Maximum Packet Size in 3.1.1
  const size_t size = ack_size_v5(reasons);
  if (size <= s->max_packet_out) return std::nullopt;
  return std::string(type) + " for " + std::to_string(reasons) + " filters (" +
         std::to_string(size) + " bytes) exceeds the client's Maximum Packet Size of " +
         std::to_string(s->max_packet_out) + " bytes";
}

}  // namespace

void ShardBroker::on_subscribe(Link* link, Session* s, mqtt::Subscribe& sub) {
  const bool v5 = mqtt::is_v5(link->version());
  if (auto why = ack_too_large(link, s, "SUBACK", sub.topics.size())) {
    link->set_close_reason(std::move(*why));
    close_with(link, ReasonCode::PacketTooLarge);
    return;
  }
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
        mqtt::exceeds_topic_levels(t.filter, settings_->max_topic_levels)) {
      ack.reasons.push_back(v5 ? ReasonCode::TopicFilterInvalid : ReasonCode::UnspecifiedError);
      continue;
    }
    const auto shared_parts = mqtt::parse_shared_filter(t.filter);
    const std::string_view acl_filter = shared_parts ? shared_parts->filter : t.filter;
    if (ClientAcl* acl = acl_of(link);
        (acl && !acl->may_subscribe(settings_->access, acl_filter)) ||
        (http_acl_on(link) && !http_acl_allows(link, kAclSubscribe, acl_filter))) {
      ClientAcl* acl_here = link->acl.get();
      stats_.acl_denied.add();
      if (acl_here->deny_disconnects()) {
        link->set_close_reason("the ACL denies subscribing to '" + t.filter +
                               "' (auth.deny_action = disconnect)");
        close_with(link, ReasonCode::NotAuthorized);
        return;
      }
      ack.reasons.push_back(v5 ? ReasonCode::NotAuthorized : ReasonCode::UnspecifiedError);
      continue;
    }
    bool shared = shared_parts.has_value();
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
                                   : s->queued() < high && link->pending_bytes() <= kOutputHighWater;
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
  if (auto why = ack_too_large(link, s, "UNSUBACK", unsub.filters.size())) {
    link->set_close_reason(std::move(*why));
    close_with(link, ReasonCode::PacketTooLarge);
    return;
  }
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

}  // namespace harbor::broker
