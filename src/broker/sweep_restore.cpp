// ShardBroker, timers and state: the periodic sweep (keepalive, retry, timeouts, trims),
// restoring sessions at startup and shutdown.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

void ShardBroker::sweep() {
  const Settings& cfg = *settings_;
  int64_t now = services_.now_steady_ms();
  std::vector<Link*> expired_links;
  for (auto& [id, link] : links_) {
    if (!link->connected) {
      // A socket whose CONNECT is not complete within mqtt.connect_timeout is closed.
      if (now - link->opened_ms > cfg.connect_timeout.count()) expired_links.push_back(link);
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
      auto limit = static_cast<int64_t>(link->keep_alive_s * 1000.0 * cfg.keepalive_multiplier);
      if (now - link->last_rx_ms > limit) {
        expired_links.push_back(link);
        continue;
      }
    }
    Session* s = link->session;
    if (s == nullptr) continue;
    // 3.1.1 only: resend unacknowledged messages while online; 5.0 resends only on
    // reconnect [MQTT-4.4.0-1].
    const int64_t retry_ms = s->bridge && s->bridge->retry_interval_ms != 0
                                 ? s->bridge->retry_interval_ms
                                 : cfg.retry_interval.count();
    if (!s->inflight.empty() && retry_ms > 0) {
      s->inflight.on_retry_tick(now, retry_ms,
                                [this, s](const mqtt::WindowOutput<OutEntry>& out) { return write_resend(s, out); });
    }
    // QoS 2 receiver state that never saw its PUBREL is dropped after await_rel_timeout.
    if (!s->qos2_in.empty() && cfg.await_rel_timeout.count() > 0) {
      for (auto it = s->qos2_in.begin(); it != s->qos2_in.end();) {
        if (it->second.acked && now - it->second.received_ms > cfg.await_rel_timeout.count()) {
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
  if (!page_waiters_.empty()) resume_page_waiters();  // a failed page read is retried
  // Expired retained messages leave the tree and the store (shard 0 owns this sweep).
  if (shard_ == 0 && now >= next_retained_sweep_ms_) {
    next_retained_sweep_ms_ = now + 5000;  // a full walk under the writer lock: not too often
    for (const auto& msg : ctx_.retained->take_expired(services_.now_unix_ms()))
      if (store_on()) submit(OpRetainedClear{msg->topic});
  }
}

void ShardBroker::restore_session(RestoredSession r) {
  // Restored before any listener opens, each on home_shard(), which is the directory key
  // modulo the shard count: the claim always answers this shard (ids that share a key share
  // it), and the session takes the reservation.
  ctx_.directory.claim(SessionDirectory::key_of(r.session.client_id), shard_);
  Session* s = create_session(r.session.client_id);
  s->version = static_cast<Version>(r.session.version);
  s->expiry_s = r.session.expiry_s;
  s->last_seen_ms = r.session.last_seen_ms ? r.session.last_seen_ms : services_.now_unix_ms();
  s->window = static_cast<uint16_t>(std::min<uint32_t>(65535, settings_->max_inflight_window));
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
    OutEntry e = entry_from_store(*s, q);
    s->next_seq = std::max(s->next_seq, e.seq + 1);
    if (e.state == OutState::Queued || e.packet_id == 0) {
      e.state = OutState::Queued;
      e.packet_id = 0;
      s->enqueue(std::move(e));
    } else {
      const uint16_t packet_id = e.packet_id;
      const auto state = static_cast<mqtt::OutboundState>(e.state);
      if (s->inflight.restore(std::move(e), state, packet_id)) continue;
      // Two stored entries with one packet id (not written by this broker): the message is
      // sent again under a new id, unless its PUBLISH was already received (PUBREL owed).
      log(2, "restore: client '" + s->client_id() + "': queue entry " + std::to_string(e.seq) +
                 " has packet id " + std::to_string(packet_id) + " already in use; " +
                 (state == mqtt::OutboundState::AwaitPubcomp ? "its flow is dropped" : "queued again"));
      if (state == mqtt::OutboundState::AwaitPubcomp) {
        drop_entry_storage(s, e);
        continue;
      }
      e.state = OutState::Queued;
      e.packet_id = 0;
      s->enqueue(std::move(e));
    }
  }
  // The rest of the queue is on disk, paged in as it drains.
  s->paged_from = r.paged_from;
  s->next_seq = std::max(s->next_seq, r.next_seq);
  int64_t steady = services_.now_steady_ms();
  for (uint16_t pid : r.qos2_in) s->qos2_in[pid] = Session::Qos2In{steady, true};
  schedule_expiry(s);
}

OutEntry ShardBroker::entry_from_store(const Session& s, RestoredQueueEntry& q) const {
  OutEntry e;
  e.seq = q.seq;
  e.msg = std::move(q.message);
  e.qos = q.qos;
  e.retain = q.retain;
  e.subscription_ids = std::move(q.subscription_ids);
  e.state = q.state;
  e.packet_id = q.packet_id;
  e.stored = true;
  // A shared subscription's entry belongs to its group again (redelivery when the session
  // ends), if the session still holds that subscription.
  if (!q.shared_filter.empty() && s.subscriptions.count(q.shared_filter) != 0)
    e.shared_group = ctx_.tree->group_of(q.shared_filter, shard_);
  return e;
}

void ShardBroker::shutdown() {
  shutting_down_ = true;
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
