// ShardBroker, delivery out: QoS downgrade, queue and inflight window, flow control to the
// receiver, PUBLISH encoding, PUBACK/PUBREC/PUBCOMP from the receiver.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

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

}  // namespace harbor::broker
