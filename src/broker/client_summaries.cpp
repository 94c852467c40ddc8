// ShardBroker::client_summaries: the management API's view of this shard's sessions.
#include "broker/shard_broker.hpp"

namespace harbor::broker {

std::vector<ClientSummary> ShardBroker::client_summaries() const {
  std::vector<ClientSummary> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) {
    ClientSummary c;
    c.client_id = s->client_id();
    if (s->username) c.username = *s->username;
    c.connected = s->link != nullptr;
    c.proto_ver = static_cast<uint8_t>(s->version);
    c.keepalive_s = s->link != nullptr ? s->link->keep_alive_s : 0;
    c.clean_start = s->clean_start;
    c.connected_at_ms = s->connected_ms;
    c.subscriptions = s->subscriptions.size();
    c.queued = s->queued();
    c.inflight = s->inflight.size();
    c.bridge = s->bridge != nullptr;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace harbor::broker
