// ShardBroker, PUBLISH in: checks, the message, QoS 1/2 acknowledgements to the publisher
// (held by the DurabilityGate until durable), PUBREL from the publisher.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

void ShardBroker::finish_ack_part(const AckToken& token) {
  if (!token || !token->finish_part()) return;
  const AckRelease r = token->release();
  if (token->origin_shard == shard_) {
    on_ack_ready(r);
  } else {
    ack_outboxes_[token->origin_shard].push_back(r);  // posted by flush_outboxes
  }
}

MessagePtr ShardBroker::make_message(Session* origin, mqtt::Publish& p) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  m->received_at_ms = services_.now_unix_ms();
  if (p.props.message_expiry_interval)
    m->expires_at_ms = m->received_at_ms + int64_t{*p.props.message_expiry_interval} * 1000;
  const auto& pp = p.props;
  if (pp.payload_format_indicator || pp.content_type || pp.response_topic ||
      pp.correlation_data || !pp.user_properties.empty())
    mqtt::encode_properties(forward_subset(pp), m->forward_props);
  m->origin = origin ? origin->id() : 0;
  if (store_on() && (m->qos > 0 || m->retain)) m->store_id = ctx_.store->next_message_id();
  return m;
}

Flow ShardBroker::on_publish(Link* link, mqtt::Publish& p) {
  Session* s = link->session;
  const Settings& cfg = *settings_;
  stats_.messages_in.add();
  if (mqtt::exceeds_topic_levels(p.topic, cfg.max_topic_levels)) {
    // Deeper than mqtt.max_topic_levels: each level costs a tree node, so it is refused
    // like an invalid topic name (5.0: DISCONNECT 0x90; 3.1.1: close).
    link->set_close_reason("topic with more than mqtt.max_topic_levels=" +
                           std::to_string(cfg.max_topic_levels) + " levels");
    close_with(link, ReasonCode::TopicNameInvalid);
    return Flow::Continue;
  }
  if (p.topic == "$SYS" || p.topic.starts_with("$SYS/")) return refuse_sys_publish(link, p);
  if (ClientAcl* acl = acl_of(link); acl && !acl->may_publish(cfg.access, p.topic))
    return deny_publish(link, p);
  if (http_acl_on(link) && !link->http_publish_allowed) return deny_publish(link, p);
  if (p.qos > 0) {
    if (auto q2 = p.qos == 2 ? s->qos2_in.find(p.packet_id) : s->qos2_in.end(); q2 != s->qos2_in.end()) {
      // Resent PUBLISH of a QoS 2 flow we already own: never deliver twice [MQTT-4.3.3-9].
      // If its PUBREC still waits for the store, that PUBREC answers this one too.
      if (!q2->second.acked) {
        // Its PUBREC still waits for the store: it answers this copy, on this connection
        // (the first copy may have come on a connection that is gone).
        gate_.retarget_pubrec(s->id(), p.packet_id, link->link_id());
        return Flow::Continue;
      }
      mqtt::PubAck rec;
      rec.type = mqtt::PacketType::Pubrec;
      rec.packet_id = p.packet_id;
      mqtt::encode(mqtt::Packet{std::move(rec)}, link->version(), link->out());
      link->mark_dirty();
      return Flow::Continue;
    }
    const uint32_t limit = std::max<uint32_t>(1, std::min<uint32_t>(cfg.max_awaiting_rel, 65535));
    if (mqtt::is_v5(link->version())) {
      // 5.0: the Receive Maximum we sent in CONNACK (QoS 1 and 2 together) [MQTT-3.3.4-9].
      if (link->inbound_unacked >= limit) {
        link->set_close_reason("more than the Receive Maximum of " + std::to_string(limit) +
                               " unacknowledged QoS 1/2 PUBLISH (0x93)");
        close_with(link, ReasonCode::ReceiveMaximumExceeded);
        return Flow::Continue;
      }
    } else if (p.qos == 2 && s->qos2_in.size() >= limit) {
      // 3.1.1 has no Receive Maximum and no way to refuse: closing would make a client that
      // resends its whole queue on reconnect loop forever, and dropping loses what it sent.
      // The flow is accepted (the packet-id space bounds this state at 65,535 per session);
      // counted, logged once per session.
      stats_.awaiting_rel_over_limit.add();
      if (!s->logged_awaiting_rel) {
        s->logged_awaiting_rel = true;
        log(2, "client '" + s->client_id() + "' has more than mqtt.max_awaiting_rel=" +
                   std::to_string(limit) +
                   " QoS 2 messages awaiting PUBREL (MQTT 3.1.1 cannot be refused): accepted, counted");
      }
    }
    if (store_on() && ctx_.store->degraded()) {
      stats_.refused_store.add();
      ctx_.store->note_refused();
      if (!logged_store_refusal_) {
        log(2, "store unavailable: refusing QoS 1/2 publishes until it recovers");
        logged_store_refusal_ = true;
      }
      link->inbound_unacked++;
      complete_ack(link, p.packet_id, p.qos, /*refused=*/true);
      return Flow::Continue;
    }
    logged_store_refusal_ = false;
    link->inbound_unacked++;
    if (p.qos == 2) s->qos2_in[p.packet_id] = Session::Qos2In{services_.now_steady_ms(), false};
  }
  uint16_t packet_id = p.packet_id;
  mqtt::QoS qos = p.qos;
  MessagePtr msg = make_message(s, p);

  const bool wait_for_store =
      store_on() && ctx_.store->ack_after_commit() && qos > 0;
  AckToken token;
  if (wait_for_store) {
    token = std::make_shared<AckWaiter>();
    token->origin_shard = shard_;
    token->link_id = link->link_id();
    token->packet_id = packet_id;
    token->qos = qos;
    token->session = s->id();
  }
  if (msg->retain) {
    if (msg->payload.empty()) {
      ctx_.retained->erase(msg->topic);  // empty retained payload deletes [MQTT-3.3.1-10]
      if (store_on()) {
        uint64_t seq = submit(OpRetainedClear{msg->topic});
        if (token) token->note(seq);
      }
    } else {
      ctx_.retained->set(msg);
      if (store_on()) {
        uint64_t seq = submit(OpRetainedSet{msg});
        if (token) token->note(seq);
      }
    }
  }
  const bool full = route(msg, token, link->link_id());
  // MQTT 5: PUBACK/PUBREC 0x10 when no subscription matched (a success code; Mosquitto and
  // EMQX send it too), so a client can tell its message reached no one.
  const bool nobody = matches_.empty();
  if (token) {
    token->no_subscribers = nobody;
    finish_ack_part(token);  // ours; the acknowledgement goes when the last part is done
  }
  if (qos > 0 && !wait_for_store) {
    if (qos == 2 && store_on() && s->persistent()) submit(OpQos2InAdd{s->client_id(), packet_id});
    complete_ack(link, packet_id, qos, false, nobody);
  }
  return full ? Flow::Pause : Flow::Continue;
}

Flow ShardBroker::refuse_sys_publish(Link* link, const mqtt::Publish& p) {
  // `$SYS/` belongs to the broker (its own status topics): a client may not publish there.
  // Not routed, not retained; counted, logged once. 5.0 refuses QoS 1/2 with 0x87; 3.1.1
  // cannot refuse, so the flow completes normally and the message is discarded.
  stats_.refused_sys_publish.add();
  if (!logged_sys_publish_) {
    logged_sys_publish_ = true;
    log(2, "client '" + link->session->client_id() + "' published to " + p.topic +
               ": $SYS topics are the broker's; discarded (5.0: 0x87); counted in metrics");
  }
  return discard_publish(link, p);
}

Flow ShardBroker::deny_publish(Link* link, const mqtt::Publish& p) {
  // auth.acl: not routed, not retained; counted, logged once per shard. deny_action =
  // disconnect closes the connection (5.0: DISCONNECT 0x87); ignore answers as for $SYS.
  stats_.acl_denied.add();
  if (!logged_acl_denial_) {
    logged_acl_denial_ = true;
    log(2, "client '" + link->session->client_id() + "': the ACL denies publishing to '" + p.topic +
               "'; discarded (5.0: 0x87); further denials are counted in metrics");
  }
  if (link->acl->deny_disconnects()) {
    link->set_close_reason("the ACL denies publishing to '" + p.topic +
                           "' (auth.deny_action = disconnect)");
    close_with(link, ReasonCode::NotAuthorized);
    return Flow::Continue;
  }
  return discard_publish(link, p);
}

Flow ShardBroker::discard_publish(Link* link, const mqtt::Publish& p) {
  if (p.qos == 0) return Flow::Continue;
  Session* s = link->session;
  mqtt::PubAck ack;
  ack.type = p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec;
  ack.packet_id = p.packet_id;
  if (mqtt::is_v5(link->version())) {
    ack.reason = ReasonCode::NotAuthorized;  // a refused PUBREC ends the QoS 2 flow
  } else if (p.qos == 2 && s->qos2_in.find(p.packet_id) == s->qos2_in.end()) {
    s->qos2_in[p.packet_id] = Session::Qos2In{services_.now_steady_ms(), true};  // its PUBREL completes it
    link->inbound_unacked++;
  }
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  return Flow::Continue;
}

void ShardBroker::on_ack_ready(const AckRelease& r) {
  auto sit = by_id_.find(r.session);
  Session* s = sit == by_id_.end() ? nullptr : sit->second;
  uint64_t seq = r.seq;
  if (!r.refused && r.qos == 2 && store_on() && s != nullptr && s->persistent())
    seq = std::max(seq, submit(OpQos2InAdd{s->client_id(), r.packet_id}));
  auto it = links_.find(r.link_id);
  if (it == links_.end()) {
    // The publisher's connection is gone; it resends on reconnect. A QoS 2 flow stays ours:
    // the resent PUBLISH is not delivered again and gets the PUBREC once this is durable.
    if (s != nullptr && r.qos == 2) settle_orphan_pubrec(s, r, seq);
    return;
  }
  Link* link = it->second;
  if (!r.refused && link->session != nullptr &&
      hold_until_durable(seq, link->session, DurabilityGate::Kind::kAck, r.packet_id, r.qos,
                         r.no_subscribers))
    return;
  complete_ack(link, r.packet_id, r.qos, r.refused, r.no_subscribers);
}

void ShardBroker::settle_orphan_pubrec(Session* s, const AckRelease& r, uint64_t seq) {
  auto q2 = s->qos2_in.find(r.packet_id);
  if (q2 == s->qos2_in.end()) return;
  if (r.refused) {
    s->qos2_in.erase(q2);  // not accepted: the resend is a new message
    return;
  }
  const bool durable = !store_on() || !ctx_.store->ack_after_commit() || ctx_.store->durable_seq() >= seq;
  if (durable) {
    q2->second.acked = true;  // the resend gets its PUBREC at once
    return;
  }
  // Held for no connection: a resend retargets it (retarget_pubrec); released with none,
  // it marks the flow acknowledged (write_released).
  DurabilityGate::Output out;
  out.kind = DurabilityGate::Kind::kAck;
  out.seq = seq;
  out.packet_id = r.packet_id;
  out.qos = 2;
  out.no_subscribers = r.no_subscribers;
  gate_.hold(s->id(), std::move(out));
}

bool ShardBroker::hold_until_durable(uint64_t seq, Session* s, DurabilityGate::Kind kind,
                                     uint16_t packet_id, mqtt::QoS qos, bool no_subscribers) {
  if (!store_on() || !ctx_.store->ack_after_commit() || s->link == nullptr) return false;
  if (!gate_.must_wait(s->id(), DurabilityGate::chain_of(kind), seq, ctx_.store->durable_seq()))
    return false;
  DurabilityGate::Output out;
  out.kind = kind;
  out.seq = seq;
  out.link_id = s->link->link_id();
  out.packet_id = packet_id;
  out.qos = qos;
  out.no_subscribers = no_subscribers;
  gate_.hold(s->id(), std::move(out));
  return true;
}

void ShardBroker::on_durable() {
  if (ctx_.store == nullptr) return;
  if (!page_waiters_.empty()) resume_page_waiters();
  if (gate_.empty()) return;
  released_.clear();
  gate_.release(ctx_.store->durable_seq(), released_);
  for (DurabilityGate::Released& r : released_) write_released(r);
  released_.clear();
}

void ShardBroker::write_released(DurabilityGate::Released& r) {
  auto sit = by_id_.find(r.session);
  if (sit == by_id_.end()) return;
  Session* s = sit->second;
  Link* link = s->link;
  DurabilityGate::Output& out = r.output;
  if (link == nullptr || link->link_id() != out.link_id) {
    // Its connection is gone (the client resends on reconnect). A PUBREC that found no
    // connection leaves its flow acknowledged: the resent PUBLISH gets a PUBREC at once.
    if (out.kind == DurabilityGate::Kind::kAck && out.qos == 2) {
      if (auto q2 = s->qos2_in.find(out.packet_id); q2 != s->qos2_in.end()) q2->second.acked = true;
    }
    return;
  }
  switch (out.kind) {
    case DurabilityGate::Kind::kAck:
      complete_ack(link, out.packet_id, out.qos, false, out.no_subscribers);
      return;
    case DurabilityGate::Kind::kPubcomp: {
      mqtt::PubAck comp;
      comp.type = mqtt::PacketType::Pubcomp;
      comp.packet_id = out.packet_id;
      mqtt::encode(mqtt::Packet{std::move(comp)}, link->version(), link->out());
      link->mark_dirty();
      return;
    }
    case DurabilityGate::Kind::kPubrel:
      if (const auto* e = s->inflight.find(out.packet_id);
          e != nullptr && e->state == mqtt::OutboundState::AwaitPubcomp)
        send_pubrel(link, out.packet_id);
      return;
    case DurabilityGate::Kind::kPublish:
      if (out.delivery.qos > 0) {
        // A resend (3.1.1 retry) held behind a QoS 2 PUBLISH may have been acknowledged
        // meanwhile: only what is still in flight, as that message, goes out.
        const auto* e = s->inflight.find(out.delivery.packet_id);
        if (e == nullptr || e->handle.msg != out.msg || e->state == mqtt::OutboundState::AwaitPubcomp)
          return;
      }
      emit_publish(link, *out.msg, out.delivery);
      return;
  }
}

void ShardBroker::complete_ack(Link* link, uint16_t packet_id, mqtt::QoS qos, bool refused,
                               bool no_subscribers) {
  const bool v5 = mqtt::is_v5(link->version());
  if (refused) {
    if (qos == 2 && link->session) link->session->qos2_in.erase(packet_id);
    if (link->inbound_unacked) link->inbound_unacked--;
    if (!v5) return;  // 3.1.1 cannot refuse: no acknowledgement, the client resends later
  }
  mqtt::PubAck ack;
  ack.type = qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec;
  ack.packet_id = packet_id;
  if (refused) ack.reason = ReasonCode::QuotaExceeded;  // 0x97: not stored, not accepted
  else if (no_subscribers && v5) ack.reason = ReasonCode::NoMatchingSubscribers;
  mqtt::encode(mqtt::Packet{std::move(ack)}, link->version(), link->out());
  link->mark_dirty();
  if (qos == 1 && !refused && link->inbound_unacked) link->inbound_unacked--;
  if (qos == 2 && !refused && link->session) {
    if (auto it = link->session->qos2_in.find(packet_id); it != link->session->qos2_in.end())
      it->second.acked = true;
  }
}

void ShardBroker::on_pubrel(Link* link, Session* s, const mqtt::PubAck& a) {
  auto it = s->qos2_in.find(a.packet_id);
  mqtt::PubAck comp;
  comp.type = mqtt::PacketType::Pubcomp;
  comp.packet_id = a.packet_id;
  if (it != s->qos2_in.end()) {
    s->qos2_in.erase(it);
    if (link->inbound_unacked) link->inbound_unacked--;
    if (store_on() && s->persistent()) {
      uint64_t seq = submit(OpQos2InRemove{s->client_id(), a.packet_id});
      if (hold_until_durable(seq, s, DurabilityGate::Kind::kPubcomp, a.packet_id)) return;
    }
  } else {
    // A PUBREL resent while its PUBCOMP waits for the store: that PUBCOMP answers it, on
    // this connection.
    if (gate_.retarget_pubcomp(s->id(), a.packet_id, link->link_id())) return;
    if (mqtt::is_v5(link->version())) comp.reason = ReasonCode::PacketIdentifierNotFound;
  }
  mqtt::encode(mqtt::Packet{std::move(comp)}, link->version(), link->out());
  link->mark_dirty();
}

}  // namespace harbor::broker
