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
                                std::vector<uint32_t> sub_ids, AckWaiter* token,
                                SharedGroupId shared_group) {
  const Settings& cfg = *settings_;
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
            log(2, "client '" + s->client_id() + "' does not read (" +
                       std::to_string(pending >> 10) + " KiB waiting" +
                       (stuck ? ", no write progress" : "") +
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
    if (!cfg.queue_qos0 || !s->persistent()) return false;
    if (s->paged_from != 0) {
      // QoS 0 is not stored, so it cannot wait behind entries that are on disk: dropped as
      // for a full queue (documented policy), counted.
      stats_.dropped_queue_full.add();
      return false;
    }
  }
  const bool direct = link != nullptr && s->paged_from == 0 && s->queue.empty() &&
                      (qos == 0 || s->inflight.has_room());
  const size_t limit = s->bridge ? s->bridge->max_queued : cfg.max_mqueue_len;
  const size_t queued = s->queued();  // in memory and on disk
  bool full = false;
  if (!direct && limit != 0 && queued >= limit) {
    // Queue full. An online receiver that still acknowledges gets what its publishers sent
    // before they were paused (bounded by kQueueOvershoot); an offline or stuck one loses
    // the new message (documented policy), counted, logged once.
    const bool live = link != nullptr && !receiver_stuck(s);
    if (!live || queued >= limit + std::max<size_t>(limit, kQueueOvershoot)) {
      stats_.dropped_queue_full.add();
      if (!logged_queue_full_) {
        log(2, "session queue full (" +
                   (s->bridge ? s->bridge->max_queued_key : std::string("mqtt.max_mqueue_len")) +
                   "=" + std::to_string(limit) + ") for " +
                   (link == nullptr ? "offline"
                    : live          ? "online"
                                    : "stuck") +
                   " client '" + s->client_id() + "': dropping new messages; counted in metrics");
        logged_queue_full_ = true;
      }
      return link != nullptr && live;
    }
  }
  if (link != nullptr && (queued + 1 >= queue_pause_len() || pending > kOutputHighWater)) {
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
  e.shared_group = shared_group;
  if (store_on() && (s->persistent() || s->paged_from != 0) && qos > 0) {
    uint64_t seq = submit(OpQueueAdd{s->client_id(), e.seq, msg, qos, retain, e.subscription_ids});
    if (shared_group != 0) {
      if (std::string filter = shared_filter_of(*s, shared_group); !filter.empty())
        seq = submit(OpQueueShared{s->client_id(), e.seq, std::move(filter)});
    }
    if (token) token->note(seq);
    e.stored = true;
    if (!direct && (s->paged_from != 0 || head_full(*s, e))) {
      // Past the in-memory head: the entry lives in the store only until page_in reads it.
      if (s->paged_from == 0) {
        s->paged_from = e.seq;
        s->paged_first_store_seq = seq;
      }
      s->paged_last_store_seq = seq;
      stats_.queued.add();
      return full;
    }
  }
  if (!direct || !send_new(s, e)) {
    stats_.queued.add();
    s->enqueue(std::move(e));
  }
  return full;
}

size_t ShardBroker::send_budget() const {
  // Sending a stored entry submits its state change and, once acknowledged, its removal
  // (about two ops): a fast receiver draining a stored queue would pile those up faster
  // than the writer commits them. Not bounded while the store is degraded (commits
  // failing): in-memory entries still go out, bounded by the store's own limit on held ops.
  if (ctx_.store->degraded()) return kMaxPage;
  const uint64_t pending = ctx_.store->pending_ops();
  return pending >= kMaxPendingStoreOps ? 0
                                        : static_cast<size_t>((kMaxPendingStoreOps - pending) / 2);
}

bool ShardBroker::store_backlogged(Session* s) {
  if (send_budget() != 0) return false;
  page_waiters_.insert(s->id());  // on_durable goes on
  return true;
}

void ShardBroker::resume_page_waiters() {
  // pump puts back whoever must wait longer.
  std::vector<SessionId> waiting(page_waiters_.begin(), page_waiters_.end());
  page_waiters_.clear();
  for (SessionId id : waiting)
    if (auto it = by_id_.find(id); it != by_id_.end() && it->second->link != nullptr)
      pump(it->second);
}

bool ShardBroker::head_full(const Session& s, const OutEntry& e) const {
  if (s.queue.empty()) return false;  // one entry always fits
  const Settings& cfg = *settings_;
  return s.queue.size() >= head_len(s) || s.queue_bytes + Session::bytes_of(e) > cfg.queue_head_bytes;
}

size_t ShardBroker::head_len(const Session& s) const {
  const uint32_t n = s.bridge && s.bridge->queue_head != 0 ? s.bridge->queue_head : settings_->queue_head;
  return std::max<uint32_t>(1, n);
}

void ShardBroker::page_in(Session* s) {
  const Settings& cfg = *settings_;
  const size_t head = head_len(*s);
  // Refilled at half the head, so the window is fed from memory while a page is read.
  if (s->queue.size() > head / 2 || s->queue_bytes > cfg.queue_head_bytes / 2) return;
  if (!page_waiters_.empty() && page_waiters_.count(s->id()) != 0) return;
  // Read before the page: what was durable then is all on disk.
  const uint64_t durable = ctx_.store->durable_seq();
  if (durable < s->paged_first_store_seq) {
    page_waiters_.insert(s->id());  // on_durable reads it
    return;
  }
  // At most kMaxPage rows a read. A page read into an empty head also feeds the window's
  // free room at once (those entries are in flight, not in the head), so a wide window
  // drains in few large reads; entries behind a non-empty head cannot pass it.
  const size_t sendable = s->queue.empty() ? std::min(s->inflight.room(), send_budget()) : 0;
  const size_t want = std::min(std::max(head - s->queue.size(), sendable), kMaxPage);
  page_.clear();
  std::string error;
  if (!ctx_.store->read_queue(s->client_id(), s->paged_from, want, page_, error)) {
    if (!logged_page_error_) {
      logged_page_error_ = true;
      log(3, "client '" + s->client_id() + "': cannot read its queue from the store (" + error +
                 "); retrying with each commit and sweep");
    }
    page_waiters_.insert(s->id());
    return;
  }
  bool cut = false;  // the byte bound ended the page before its last row
  for (RestoredQueueEntry& q : page_) {
    OutEntry e = entry_from_store(*s, q);  // Queued: only entries never sent are on disk
    if (s->queue.empty()) {
      // Nothing waits before it: straight into the window while it has room.
      if (expired(*e.msg, services_.now_unix_ms())) {
        stats_.dropped_expired.add();
        drop_entry_storage(s, e);
        s->paged_from = e.seq + 1;
        continue;
      }
      if (s->inflight.has_room() && !store_backlogged(s) && send_new(s, e)) {
        s->paged_from = e.seq + 1;
        continue;
      }
    }
    if (head_full(*s, e)) {
      s->paged_from = e.seq;
      cut = true;
      break;
    }
    s->paged_from = e.seq + 1;
    s->enqueue(std::move(e));
  }
  const size_t got = page_.size();
  page_.clear();
  if (cut) return;
  if (s->paged_from >= s->next_seq) {
    s->end_paging();  // all of it is in memory again
  } else if (got < want) {
    // A short page: the rest is not committed yet, or, once everything written to the store
    // only was durable before this read, not there at all (restore dropped expired rows, or
    // a write failed and was reported): the queue is all in memory.
    if (durable >= s->paged_last_store_seq)
      s->end_paging();
    else
      page_waiters_.insert(s->id());
  }
}

bool ShardBroker::receiver_stuck(const Session* s) const {
  if (s->link == nullptr) return true;
  const int64_t now = services_.now_steady_ms();
  if (s->link->pending_bytes() > 0 && now - s->link->last_write_ms >= kStuckWriteMs) return true;
  // Messages in flight and no acknowledgement for a while (since it connected, at least).
  return !s->inflight.empty() && now - std::max(s->last_ack_ms, s->link->opened_ms) >= kAckStuckMs;
}

bool ShardBroker::write_publish(Session* s, const MessagePtr& m, const Delivery& d,
                                uint64_t needs_seq) {
  Link* link = s->link;
  if (s->max_packet_out != 0xFFFFFFFF &&
      publish_packet_size(link->version(), *m, d) + bridge_topic_growth(*s, *m) > s->max_packet_out) {
    // Too large for this client: not sent, as if delivered [MQTT-3.1.2-25].
    stats_.dropped_too_large.add();
    return false;
  }
  if (store_on() && (needs_seq != 0 || !gate_.empty()) &&
      gate_.must_wait(s->id(), DurabilityGate::Chain::kPublish, needs_seq,
                      ctx_.store->durable_seq())) {
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

// The shared subscription of `s` that group `group` is (its filter text identifies the group
// in the store; the id does not outlive the process).
std::string ShardBroker::shared_filter_of(const Session& s, SharedGroupId group) const {
  for (const auto& [filter, opts] : s.subscriptions)
    if (ctx_.tree->group_of(filter, shard_) == group) return filter;
  return {};
}

int64_t ShardBroker::bridge_topic_growth(const Session& s, const Message& m) {
  if (!s.bridge) return 0;
  const BridgeForwardRule* rule = s.bridge->rule_for(m.topic);
  if (rule == nullptr) return 0;
  const size_t base = rule->remote_topic.empty() ? m.topic.size() : rule->remote_topic.size();
  return static_cast<int64_t>(rule->prefix.size() + base + rule->suffix.size()) -
         static_cast<int64_t>(m.topic.size());
}

void ShardBroker::emit_publish(Link* link, const Message& m, const Delivery& d) {
  if (const Session* s = link->session; s != nullptr && s->bridge) {
    // A bridge: the remote topic and retain flag of the first forward rule that matches.
    Delivery mapped = d;
    if (const BridgeForwardRule* rule = s->bridge->rule_for(m.topic)) {
      BridgeRules::remote_topic(*rule, m.topic, bridge_topic_);
      mapped.topic = bridge_topic_;
      if (rule->retain) mapped.retain = *rule->retain;
    }
    encode_publish(link->version(), m, mapped, link->out());
  } else if (link->out_aliases) {
    // Decided here, at the moment of writing, so an alias is always set up on the wire
    // before a PUBLISH that uses it alone (held PUBLISHes are written later, in order).
    Delivery aliased = d;
    const uint32_t max = link->session != nullptr ? link->session->max_packet_out : 0xFFFFFFFF;
    const bool room = max == 0xFFFFFFFF || publish_packet_size(link->version(), m, d) + 3 <= max;
    link->out_aliases->apply(m.topic, aliased, room);
    encode_publish(link->version(), m, aliased, link->out());
  } else {
    encode_publish(link->version(), m, d, link->out());
  }
  link->mark_dirty();
  stats_.messages_out.add();
}

Delivery ShardBroker::delivery_of(const OutEntry& e, mqtt::QoS qos, uint16_t packet_id,
                                  bool dup) const {
  Delivery d;
  d.qos = qos;
  d.dup = dup;
  d.retain = e.retain;
  d.subscription_ids = e.subscription_ids;
  d.packet_id = packet_id;
  d.expiry_remaining_s = remaining_expiry_s(*e.msg, services_.now_unix_ms());
  return d;
}

uint64_t ShardBroker::qos2_publish_seq(const OutEntry& e, mqtt::QoS qos) const {
  // A QoS 2 PUBLISH to a persistent receiver goes out once its packet id is stored.
  return qos == 2 && e.stored && ctx_.store->ack_after_commit() ? e.store_seq : 0;
}

bool ShardBroker::send_new(Session* s, OutEntry& e) {
  const mqtt::QoS qos = e.qos;
  if (qos == 0) {  // queued while offline: written and forgotten
    write_publish(s, e.msg, delivery_of(e, 0, 0, false));
    return true;
  }
  const auto out = s->inflight.submit(std::move(e), qos, services_.now_steady_ms());
  if (out.action != mqtt::WindowAction::SendPublish) return false;  // `e` untouched
  OutEntry& h = *s->inflight.handle_of(out.packet_id);
  if (h.stored) {
    const OutState state = qos == 1 ? OutState::AwaitPuback : OutState::AwaitPubrec;
    h.store_seq = submit(OpQueueUpdate{s->client_id(), h.seq, state, out.packet_id});
  }
  if (!write_publish(s, h.msg, delivery_of(h, qos, out.packet_id, false),
                     qos2_publish_seq(h, qos))) {
    // Too large for the client: discarded as if delivered.
    if (auto gone = s->inflight.discard(out.packet_id)) drop_entry_storage(s, *gone);
  }
  return true;
}

bool ShardBroker::write_resend(Session* s, const mqtt::WindowOutput<OutEntry>& out) {
  const OutEntry& h = *out.publish;
  if (out.action == mqtt::WindowAction::SendPubrel) {
    if (!(h.stored &&
          hold_until_durable(h.store_seq, s, DurabilityGate::Kind::kPubrel, out.packet_id)))
      send_pubrel(s->link, out.packet_id);
    return true;
  }
  // PUBLISH again with DUP=1 [MQTT-3.3.1-1]; too large for the client's (new) Maximum
  // Packet Size: the window drops it as if delivered.
  if (write_publish(s, h.msg, delivery_of(h, out.qos, out.packet_id, true),
                    qos2_publish_seq(h, out.qos)))
    return true;
  drop_entry_storage(s, h);
  return false;
}

void ShardBroker::send_pubrel(Link* link, uint16_t packet_id) {
  mqtt::PubAck rel;
  rel.type = mqtt::PacketType::Pubrel;
  rel.packet_id = packet_id;
  mqtt::encode(mqtt::Packet{std::move(rel)}, link->version(), link->out());
  link->mark_dirty();
}

void ShardBroker::drop_entry_storage(Session* s, const OutEntry& e) {
  if (e.stored) {
    submit(OpQueueRemove{s->client_id(), e.seq, e.msg ? static_cast<int64_t>(e.msg->store_id) : 0});
  }
}

size_t ShardBroker::queue_pause_len() const {
  // Half the limit, so what the publishers had already sent fits in the other half.
  const size_t limit = settings_->max_mqueue_len;
  return limit != 0 ? std::max<size_t>(1, limit / 2) : kLongQueue;
}

size_t ShardBroker::queue_resume_len() const { return queue_pause_len() / 2; }

bool ShardBroker::receivers_congested() const {
  const size_t low = queue_resume_len();
  for (SessionId id : congested_sessions_) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;
    const Session* s = it->second;
    if (s->link != nullptr && s->queued() > low && !receiver_stuck(s)) return true;
  }
  return false;
}

void ShardBroker::pump(Session* s) {
  if (s->link != nullptr && s->inflight.owed() > 0) {
    // Resends held back on reconnect by a smaller Receive Maximum go first.
    s->inflight.resume(
        services_.now_steady_ms(),
        [this, s](const mqtt::WindowOutput<OutEntry>& out) { return write_resend(s, out); });
  }
  while (s->link != nullptr) {
    // Ahead of need: at half the head while the window is full, or once the head is sent.
    if (s->paged_from != 0 && (s->queue.empty() || !s->inflight.has_room())) page_in(s);
    if (s->queue.empty()) break;
    OutEntry& front = s->queue.front();
    const uint64_t bytes = Session::bytes_of(front);
    if (expired(*front.msg, services_.now_unix_ms())) {
      // Also how entries paged in expired are dropped: their rows go in the writer's batches.
      stats_.dropped_expired.add();
      drop_entry_storage(s, front);
      s->dequeue(bytes);
      continue;
    }
    if (front.qos > 0 && !s->inflight.has_room()) break;
    if (front.stored && store_backlogged(s)) break;
    if (!send_new(s, front)) break;  // no room after all: stays first in the queue
    s->dequeue(bytes);               // `front` was moved into the window
  }
  if (!congested_sessions_.empty() && s->queued() <= queue_resume_len())
    congested_sessions_.erase(s->id());
  if (s->retained_backlog && s->link != nullptr) feed_retained(s);
}

void ShardBroker::resend_inflight(Session* s) {
  // Unacknowledged messages first, in order, on the new connection [MQTT-4.4.0-1].
  s->inflight.on_connected(
      s->version, s->window, services_.now_steady_ms(),
      [this, s](const mqtt::WindowOutput<OutEntry>& out) { return write_resend(s, out); });
}

void ShardBroker::finish_outbound(Session* s, OutEntry& done) {
  drop_entry_storage(s, done);
  pump(s);
}

void ShardBroker::on_puback(Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  auto out = s->inflight.on_puback(a.packet_id, a.reason);
  // An unknown id (a 3.1.1 retry acknowledged twice) or a PUBACK for a QoS 2 flow changes
  // nothing; the latter is tolerated as before rather than closing the connection.
  if (out.action == mqtt::WindowAction::Release) finish_outbound(s, out.released);
}

void ShardBroker::on_pubrec(Link* link, Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  const auto* entry = s->inflight.find(a.packet_id);
  const bool first = entry != nullptr && entry->state == mqtt::OutboundState::AwaitPubrec;
  auto out = s->inflight.on_pubrec(a.packet_id, a.reason, services_.now_steady_ms());
  switch (out.action) {
    case mqtt::WindowAction::ProtocolError:
      // PUBREC answers a QoS 2 PUBLISH only; for a QoS 1 one it is a protocol error
      // [MQTT-4.3.2], [MQTT-4.8.0-1].
      link->set_close_reason("PUBREC for packet id " + std::to_string(a.packet_id) +
                             ", which was sent at QoS 1");
      close_with(link, ReasonCode::ProtocolError);
      return;
    case mqtt::WindowAction::Release:  // the receiver refused it: the flow ends [MQTT-4.3.3-4]
      finish_outbound(s, out.released);
      return;
    case mqtt::WindowAction::SendPubrel: {
      if (entry == nullptr) {  // 5.0, unknown id: PUBREL 0x92 so the receiver drops its state
        mqtt::PubAck rel;
        rel.type = mqtt::PacketType::Pubrel;
        rel.packet_id = a.packet_id;
        rel.reason = out.reason;
        mqtt::encode(mqtt::Packet{std::move(rel)}, link->version(), link->out());
        link->mark_dirty();
        return;
      }
      OutEntry& h = *s->inflight.handle_of(a.packet_id);
      if (first && h.stored)
        h.store_seq =
            submit(OpQueueUpdate{s->client_id(), h.seq, OutState::AwaitPubcomp, a.packet_id});
      if (h.stored &&
          hold_until_durable(h.store_seq, s, DurabilityGate::Kind::kPubrel, a.packet_id))
        return;
      send_pubrel(link, a.packet_id);
      return;
    }
    default:
      return;  // unknown id (3.1.1)
  }
}

void ShardBroker::on_pubcomp(Session* s, const mqtt::PubAck& a) {
  s->last_ack_ms = services_.now_steady_ms();
  auto out = s->inflight.on_pubcomp(a.packet_id, a.reason);
  // A PUBCOMP before our PUBREL changes nothing (tolerated as before).
  if (out.action == mqtt::WindowAction::Release) finish_outbound(s, out.released);
}

}  // namespace harbor::broker
