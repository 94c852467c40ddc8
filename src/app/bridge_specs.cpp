#include "app/bridge_specs.hpp"

#include <algorithm>
#include <memory>

#include "app/tls_error_key.hpp"
#include "wire/tls.hpp"

namespace harbor::app {

bridge::Spec bridge_spec_from(const config::BridgeSettings& b, const config::Config& cfg) {
  bridge::Spec s;
  auto rules = std::make_shared<broker::BridgeRules>();
  rules->name = b.name;
  for (const auto& f : b.forwards) {
    broker::BridgeForwardRule r;
    r.filter = f.local_topic;
    r.remote_topic = f.remote_topic;
    r.prefix = f.prefix;
    r.suffix = f.suffix;
    r.retain = f.retain;
    r.qos = f.qos.value_or(2);
    rules->forwards.push_back(std::move(r));
  }
  rules->queue_head = cfg.bridge_cache.flush_mem_threshold;
  rules->retry_interval_ms = b.resend_interval.count();
  if (cfg.sqlite.enabled) {
    rules->max_queued = cfg.bridge_cache.disk_cache_size;
  } else {
    rules->max_queued = cfg.mqtt.max_mqueue_len;  // in memory: the sessions' bound
    rules->max_queued_key = "mqtt.max_mqueue_len";
  }
  s.rules = std::move(rules);
  s.servers.push_back(bridge::RemoteAddress{b.server.host, b.server.port, nullptr});
  for (const auto& h : b.hybrid_servers)
    s.servers.push_back(bridge::RemoteAddress{h.host, h.port, nullptr});
  s.version = b.proto_ver == 5 ? mqtt::Version::v5 : mqtt::Version::v311;
  // A stable id by default: the remote keeps the bridge's session across reconnects.
  s.remote_client_id = b.clientid.empty() ? "harbormq-bridge-" + b.name : b.clientid;
  s.keep_alive_s = static_cast<uint16_t>(std::min<int64_t>(b.keepalive.count(), 65535));
  s.clean_start = b.clean_start;
  s.username = b.username;
  s.password = b.password;
  const auto& cp = b.conn_properties;
  s.connect_props.maximum_packet_size = cp.maximum_packet_size;
  s.connect_props.receive_maximum = cp.receive_maximum;
  s.connect_props.topic_alias_maximum = cp.topic_alias_maximum;
  s.connect_props.request_problem_information = cp.request_problem_information;
  s.connect_props.request_response_information = cp.request_response_information;
  s.connect_props.session_expiry_interval = cp.session_expiry_interval;
  s.connect_props.user_properties = cp.user_properties;
  if (b.will) {
    mqtt::Will w;
    w.topic = b.will->topic;
    w.payload = b.will->payload;
    w.qos = b.will->qos;
    w.retain = b.will->retain;
    s.will = std::move(w);
  }
  for (const auto& sub : b.subscriptions) {
    bridge::RemoteSubscription r;
    r.remote_topic = sub.remote_topic;
    r.local_topic = sub.local_topic;
    r.prefix = sub.prefix;
    r.suffix = sub.suffix;
    r.qos = sub.qos;
    r.no_local = sub.no_local;
    r.retain_as_published = sub.retain_as_published;
    r.retain_handling = sub.retain_handling;
    s.subscriptions.push_back(std::move(r));
  }
  s.backoff_max_ms = b.backoff_max.count();
  const uint32_t inflight = b.max_inflight != 0 ? b.max_inflight : cfg.mqtt.max_inflight_window;
  s.max_inflight = static_cast<uint16_t>(std::clamp<uint32_t>(inflight, 1, 65535));
  return s;
}

tl::expected<void, std::string> add_bridge_tls(const config::BridgeSettings& b,
                                               const config::Config& cfg, bridge::Spec& s) {
  const std::string section = "bridges.mqtt." + b.name + ".ssl";
  // s.servers holds `server`, then `hybrid_servers`, in order (bridge_spec_from).
  std::vector<const config::BridgeServer*> servers{&b.server};
  for (const auto& h : b.hybrid_servers) servers.push_back(&h);
  for (size_t i = 0; i < servers.size() && i < s.servers.size(); ++i) {
    if (!servers[i]->tls) continue;
    wire::TlsClientOptions options;
    options.cacertfile = b.ssl.cacertfile;
    options.certfile = b.ssl.certfile;
    options.keyfile = b.ssl.keyfile;
    options.key_password = b.ssl.key_password;
    options.verify_peer = b.ssl.verify_peer;
    // The name (SNI, certificate check) is the host as written in the server's address.
    options.server_name = servers[i]->host;
    auto context = wire::TlsContext::client(options);
    if (!context) {
      // A bad host name is the server's fault; every other error is one of the ssl files'.
      const bool name = context.error().find("bad server name") != std::string::npos;
      const std::string key =
          name ? "bridges.mqtt." + b.name + (i == 0 ? ".server" : ".hybrid_servers")
               : tls_error_key(context.error(), section);
      return tl::unexpected(cfg.key_error(key, context.error()));
    }
    s.servers[i].tls = std::move(*context);
  }
  return {};
}

tl::expected<std::vector<bridge::Spec>, std::string> bridge_specs_from(const config::Config& cfg) {
  std::vector<bridge::Spec> out;
  for (const auto& b : cfg.bridges) {
    if (!b.enabled) continue;
    out.push_back(bridge_spec_from(b, cfg));
    if (auto added = add_bridge_tls(b, cfg, out.back()); !added)
      return tl::unexpected(added.error());
  }
  return out;
}

}  // namespace harbor::app
