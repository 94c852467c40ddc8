// The configuration turned into each layer's own settings (DESIGN.md §2: only app sees
// config types; store and broker get plain structs of what they use).
#pragma once

#include <memory>

#include "broker/access_control.hpp"
#include "broker/settings.hpp"
#include "config/config.hpp"
#include "store/store_settings.hpp"

namespace harbor::app {

// The sqlite {} section as the store's settings.
inline store::StoreSettings store_settings_from(const config::SqliteSettings& s) {
  store::StoreSettings out;
  out.directory = s.mounted_file_path;
  out.disk_cache_size = s.disk_cache_size;
  out.disk_cache_bytes = s.disk_cache_bytes;
  out.ack_policy = s.ack_policy == config::AckPolicy::Immediate ? store::AckPolicy::Immediate
                                                                 : store::AckPolicy::AfterCommit;
  out.synchronous = s.synchronous == config::SyncMode::Full ? store::SyncMode::Full
                                                             : store::SyncMode::Normal;
  out.commit_interval = s.commit_interval;
  out.commit_batch = s.commit_batch;
  return out;
}

// The mqtt {} section as the broker's settings (mqtt.max_connections stays with the
// acceptors, which app owns).
inline broker::SharedStrategy shared_strategy_from(config::SharedStrategy s) {
  switch (s) {
    case config::SharedStrategy::RoundRobin: return broker::SharedStrategy::RoundRobin;
    case config::SharedStrategy::Random: return broker::SharedStrategy::Random;
    case config::SharedStrategy::Sticky: return broker::SharedStrategy::Sticky;
    case config::SharedStrategy::HashClientId: return broker::SharedStrategy::HashClientId;
    case config::SharedStrategy::HashTopic: return broker::SharedStrategy::HashTopic;
  }
  return broker::SharedStrategy::RoundRobin;
}

// `q`: the sqlite {} keys the broker acts on (the in-memory head of each persistent queue).
inline broker::Settings broker_settings_from(const config::MqttSettings& m,
                                             const config::SqliteSettings& q = {}) {
  broker::Settings out;
  out.max_packet_size = m.max_packet_size;
  out.max_mqueue_len = m.max_mqueue_len;
  out.retry_interval = m.retry_interval;
  out.keepalive_multiplier = m.keepalive_multiplier;
  out.max_inflight_window = m.max_inflight_window;
  out.max_awaiting_rel = m.max_awaiting_rel;
  out.await_rel_timeout = m.await_rel_timeout;
  out.max_user_properties = m.property_size;
  out.max_topic_alias = m.max_topic_alias;
  out.queue_qos0 = m.queue_qos0;
  out.session_expiry_311 = m.session_expiry_311;
  out.connect_timeout = m.connect_timeout;
  out.shared_strategy = shared_strategy_from(m.shared_subscription_strategy);
  out.max_topic_levels = m.max_topic_levels;
  out.max_keepalive = m.max_keepalive;
  out.queue_head = q.flush_mem_threshold;
  out.queue_head_bytes = q.flush_mem_bytes;
  return out;
}

// auth {} as the broker's access control; null when there is no auth section (anyone may
// connect, publish and subscribe). The config reader checked every address and filter.
inline std::shared_ptr<const broker::AccessControl> access_control_from(
    const config::AuthSettings& a) {
  if (!a.present) return nullptr;
  broker::AccessSettings out;
  out.allow_anonymous = a.allow_anonymous;
  out.no_match_allow = a.no_match_allow;
  out.deny_disconnect = a.deny_disconnect;
  out.cache_size = a.cache_max_size;
  out.check_users = a.check_users;
  out.http_auth = a.http.present;
  out.http_acl = a.http.present && a.http.acl_req.present;
  out.http_acl_ttl_ms = a.cache_ttl.count();
  for (const auto& [user, secret] : a.passwords) out.passwords[user] = secret;
  for (const auto& r : a.acl_rules) {
    broker::AclRule rule;
    rule.allow = r.allow;
    rule.actions = r.actions;
    rule.combine = r.any ? broker::AclRule::Combine::Any : broker::AclRule::Combine::All;
    rule.topics = r.topics;
    for (const auto& w : r.who) {
      broker::AclWho who;
      who.username = w.username;
      who.client_id = w.clientid;
      if (w.ipaddr) who.ipaddr = broker::IpRange::parse(*w.ipaddr);
      rule.who.push_back(std::move(who));
    }
    out.rules.push_back(std::move(rule));
  }
  return std::make_shared<const broker::AccessControl>(std::move(out));
}

// Everything the broker layer is configured with.
inline broker::Settings broker_settings_from(const config::Config& c) {
  broker::Settings out = broker_settings_from(c.mqtt, c.sqlite);
  out.access = access_control_from(c.auth);
  return out;
}

}  // namespace harbor::app
