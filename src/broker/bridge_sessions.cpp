// ShardBroker, bridge sessions: the persistent session behind each configured bridge (made
// or reconciled at startup), and attaching it to the connection the bridge dialled.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

void ShardBroker::ensure_bridge_session(std::shared_ptr<const BridgeRules> rules, Version v) {
  const std::string id = rules->client_id();
  Session* s = nullptr;
  bool restored = true;
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    s = it->second.get();
  } else {
    restored = false;
    ctx_.directory.claim(SessionDirectory::key_of(id), shard_);
    s = create_session(id);  // takes the reservation
    s->last_seen_ms = services_.now_unix_ms();
    s->window = static_cast<uint16_t>(std::min<uint32_t>(65535, settings_->max_inflight_window));
    if (s->window == 0) s->window = 1;
  }
  s->version = v;
  s->expiry_s = kExpiryNever;  // a bridge's queue waits for its remote however long it takes
  s->will.reset();             // a bridge's will goes to the remote, in its CONNECT
  s->bridge = rules;
  persist_session(s);

  // One subscription per distinct filter (the highest QoS of the rules that share it).
  std::unordered_map<std::string, SubscriptionOptions> wanted;
  for (const auto& r : rules->forwards) {
    SubscriptionOptions o = BridgeRules::options(r);
    auto [it, fresh] = wanted.emplace(r.filter, o);
    if (!fresh) it->second.qos = std::max(it->second.qos, o.qos);
  }
  for (auto it = s->subscriptions.begin(); it != s->subscriptions.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    ctx_.tree->unsubscribe(it->first, s->id());
    if (store_on()) submit(OpSubscriptionRemove{id, it->first});
    it = s->subscriptions.erase(it);
  }
  for (const auto& [filter, o] : wanted) {
    if (auto it = s->subscriptions.find(filter);
        it != s->subscriptions.end() && it->second.qos == o.qos &&
        it->second.no_local == o.no_local &&
        it->second.retain_as_published == o.retain_as_published &&
        it->second.retain_handling == o.retain_handling) {
      continue;
    }
    ctx_.tree->subscribe(filter, SubscriberRef{s->id(), static_cast<uint16_t>(shard_)}, o);
    s->subscriptions[filter] = o;
    if (store_on()) {
      submit(OpSubscriptionAdd{id, filter, o.qos, o.no_local, o.retain_as_published,
                               o.retain_handling, o.subscription_id});
    }
  }
  log(1, "bridge \"" + rules->name + "\": " + (restored ? "session restored" : "new session") +
             ", " + std::to_string(wanted.size()) + " forward filter(s), " +
             std::to_string(s->queued() + s->inflight.size()) + " message(s) waiting");
}

void ShardBroker::drop_unconfigured_bridges(const std::vector<std::string>& configured) {
  std::vector<std::string> gone;
  for (auto& [id, s] : sessions_) {
    if (!id.starts_with(kBridgeClientPrefix)) continue;
    if (std::find(configured.begin(), configured.end(), id) != configured.end()) continue;
    gone.emplace_back(id);
  }
  for (const auto& id : gone) drop_bridge_session(id);
}

void ShardBroker::drop_bridge_session(const std::string& client_id) {
  auto it = sessions_.find(client_id);
  if (it == sessions_.end() || !client_id.starts_with(kBridgeClientPrefix)) return;
  Session* s = it->second.get();
  log(2, "bridge \"" + s->client_id().substr(kBridgeClientPrefix.size()) +
             "\" is no longer configured: its session and " +
             std::to_string(s->queued() + s->inflight.size()) + " waiting message(s) are deleted");
  destroy_session(s, /*delete_from_store=*/true);
}

bool ShardBroker::attach_bridge(Link* link, const BridgeAttach& a) {
  auto it = sessions_.find(a.client_id);
  if (it == sessions_.end() || !it->second->bridge) return false;
  Session* s = it->second.get();
  if (s->link != nullptr) {
    // A previous link not closed yet (it closes at the end of this loop turn at the latest).
    Link* old = s->link;
    old->session = nullptr;
    old->set_close_reason("replaced by a new bridge connection");
    old->close_after_flush();
    detach(s, /*abnormal=*/false);
  }
  s->version = a.version;
  s->window = std::max<uint16_t>(1, a.window);
  s->max_packet_out = a.max_packet;
  s->link = link;
  link->session = s;
  link->connected = true;
  link->outbound = true;
  link->keep_alive_s = a.keep_alive_s;
  ctx_.stats.connections.fetch_add(1, std::memory_order_relaxed);
  if (store_on()) persist_session(s);
  log(1, "bridge \"" + s->bridge->name + "\" connected to " + link->remote + " (MQTT " +
             std::string(version_name(a.version)) + ", keepalive " +
             std::to_string(a.keep_alive_s) + " s, window " + std::to_string(s->window) +
             ", remote session present " + (a.session_present ? "1" : "0") + ", " +
             std::to_string(s->queued() + s->inflight.size()) + " message(s) waiting)");
  // What was in flight first, in order (DUP), then the queue [MQTT-4.4.0-1].
  resend_inflight(s);
  pump(s);
  return true;
}

size_t ShardBroker::waiting_of(const std::string& client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? 0 : it->second->queued() + it->second->inflight.size();
}

}  // namespace harbor::broker
