// auth.http_auth.acl_req: the HTTP server's say on each publish and subscribe, asked off the
// shard (HttpAuthPort) while the asking connection's input waits (ShardBroker::
// park_for_http_acl).
#include <algorithm>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"
#include "mqtt/topic.hpp"

namespace harbor::broker {

namespace {

// Calls f(access, topic) for each answer a packet needs, in order.
template <class F>
void each_question(const mqtt::Packet& packet, uint32_t max_levels, F&& f) {
  if (const auto* p = std::get_if<mqtt::Publish>(&packet)) {
    // Refused before any ACL is asked: $SYS topics and topics too deep.
    if (p->topic == "$SYS" || p->topic.starts_with("$SYS/")) return;
    if (mqtt::exceeds_topic_levels(p->topic, max_levels)) return;
    f(kAclPublish, std::string_view(p->topic));
  } else if (const auto* sub = std::get_if<mqtt::Subscribe>(&packet)) {
    for (const auto& t : sub->topics) {
      if (!mqtt::valid_topic_filter(t.filter) || mqtt::exceeds_topic_levels(t.filter, max_levels))
        continue;
      const auto shared = mqtt::parse_shared_filter(t.filter);
      f(kAclSubscribe, shared ? std::string_view(shared->filter) : std::string_view(t.filter));
    }
  }
}

const HttpAuthWait::Decided* decided_for(const Link* link, uint8_t access, std::string_view topic) {
  if (!link->http_auth) return nullptr;
  for (const auto& d : link->http_auth->decided)
    if (d.access == access && d.topic == topic) return &d;
  return nullptr;
}

}  // namespace

bool ShardBroker::park_for_http_acl(Link* link, mqtt::Packet& packet) {
  const int64_t now = services_.now_steady_ms();
  std::optional<std::pair<uint8_t, std::string>> ask;
  each_question(packet, settings_->max_topic_levels, [&](uint8_t access, std::string_view topic) {
    if (ask) return;
    std::optional<bool> known;
    if (const auto* d = decided_for(link, access, topic))
      known = d->allow;
    else
      known = link->acl->http_decision(settings_->access, access, topic, now);
    if (!known) {
      ask.emplace(access, std::string(topic));
      return;
    }
    // A PUBLISH has one topic: its answer is kept for on_publish, which does not look again.
    if (access == kAclPublish) link->http_publish_allowed = *known;
  });
  if (!ask) return false;
  if (!link->http_auth) link->http_auth = std::make_unique<HttpAuthWait>();
  HttpAuthWait& w = *link->http_auth;
  w.parked = std::make_unique<mqtt::Packet>(std::move(packet));
  w.access = ask->first;
  w.topic = ask->second;
  HttpAuthRequest r;
  r.shard = shard_;
  r.link_id = link->link_id();
  r.kind = HttpAuthKind::Acl;
  r.access = ask->first == kAclSubscribe ? 1 : 2;  // NanoMQ's / EMQX's %A
  r.topic = std::move(ask->second);
  r.username = link->acl->username();
  r.client_id = link->acl->client_id();
  r.address = link->acl->address();
  r.protocol = static_cast<uint8_t>(link->version());
  fill_connection_params(link, r);
  link->input_held = true;
  ctx_.http_auth->ask(std::move(r));
  return true;
}

bool ShardBroker::http_acl_allows(Link* link, uint8_t access, std::string_view topic) {
  if (const auto* d = decided_for(link, access, topic)) return d->allow;
  if (auto known =
          link->acl->http_decision(settings_->access, access, topic, services_.now_steady_ms()))
    return *known;
  // Not asked (cannot happen: park_for_http_acl asked first): what no rule decides.
  return settings_->access->settings().no_match_allow;
}

void ShardBroker::on_http_acl_answer(Link* link, HttpAuthAnswer answer) {
  HttpAuthWait* w = link->http_auth.get();
  if (w == nullptr || !w->parked || link->session == nullptr) return;
  const bool unavailable = answer.verdict == HttpAuthVerdict::Unavailable;
  // No answer (down, 5xx, timed out): auth.no_match decides, as for a topic no rule names.
  const bool allow = unavailable ? settings_->access->settings().no_match_allow
                                 : answer.verdict == HttpAuthVerdict::Allow;
  if (unavailable && !logged_http_acl_unavailable_) {
    logged_http_acl_unavailable_ = true;
    log(2, "auth.http_auth.acl_req: no answer from the HTTP server (" + answer.detail +
               "); auth.no_match (" + (allow ? "allow" : "deny") +
               ") decides until it answers (logged once per shard)");
  } else if (!unavailable) {
    link->acl->remember_http(w->access, w->topic, allow, services_.now_steady_ms());
  }
  w->decided.push_back(HttpAuthWait::Decided{w->access, std::move(w->topic), allow});
  std::unique_ptr<mqtt::Packet> packet = std::move(w->parked);
  link->input_held = false;
  // Handled again from the start: it may ask about its next filter (and park once more).
  on_packet(link, std::move(*packet));
  if (!link->input_held) {
    link->http_auth.reset();  // this packet is done: its answers go
    link->resume_held_input();
  }
}

}  // namespace harbor::broker
