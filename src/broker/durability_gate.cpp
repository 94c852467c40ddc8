#include "broker/durability_gate.hpp"

#include <cstddef>
#include <utility>

namespace harbor::broker {

bool DurabilityGate::must_wait(SessionId session, Chain chain, uint64_t seq, uint64_t durable) const {
  if (!held_.empty() && held_.count(Key{session, chain}) != 0) return true;  // order
  return seq != 0 && durable < seq;
}

void DurabilityGate::hold(SessionId session, Output out) {
  Queue& q = held_[Key{session, chain_of(out.kind)}];
  q.items.push_back(std::move(out));
}

void DurabilityGate::release(uint64_t durable, std::vector<Released>& ready) {
  for (auto it = held_.begin(); it != held_.end();) {
    Queue& q = it->second;
    while (q.head < q.items.size() && q.items[q.head].seq <= durable) {
      ready.push_back(Released{it->first.session, std::move(q.items[q.head++])});
    }
    if (q.head == q.items.size()) {
      it = held_.erase(it);
      continue;
    }
    if (q.head * 2 >= q.items.size()) {  // give back what was released
      q.items.erase(q.items.begin(), q.items.begin() + static_cast<std::ptrdiff_t>(q.head));
      q.head = 0;
    }
    ++it;
  }
  // Each span points at its own output's vector, which has its final address only now.
  for (Released& r : ready) r.output.delivery.subscription_ids = r.output.subscription_ids;
}

bool DurabilityGate::retarget_pubcomp(SessionId session, uint16_t packet_id, uint64_t link_id) {
  return retarget(session, Kind::kPubcomp, 0, packet_id, link_id);
}

bool DurabilityGate::retarget_pubrec(SessionId session, uint16_t packet_id, uint64_t link_id) {
  return retarget(session, Kind::kAck, 2, packet_id, link_id);
}

bool DurabilityGate::retarget(SessionId session, Kind kind, mqtt::QoS qos, uint16_t packet_id,
                              uint64_t link_id) {
  auto it = held_.find(Key{session, Chain::kControl});
  if (it == held_.end()) return false;
  Queue& q = it->second;
  for (size_t i = q.head; i < q.items.size(); ++i) {
    Output& out = q.items[i];
    if (out.kind == kind && out.packet_id == packet_id && (kind != Kind::kAck || out.qos == qos)) {
      out.link_id = link_id;
      return true;
    }
  }
  return false;
}

void DurabilityGate::drop(SessionId session, Chain chain) { held_.erase(Key{session, chain}); }

void DurabilityGate::forget(SessionId session) {
  drop(session, Chain::kControl);
  drop(session, Chain::kPublish);
}

size_t DurabilityGate::held_count() const {
  size_t n = 0;
  for (const auto& [key, q] : held_) n += q.items.size() - q.head;
  return n;
}

}  // namespace harbor::broker
