#include "broker/session.hpp"

#include <algorithm>

namespace harbor::broker {

uint16_t Session::allocate_packet_id() {
  // The window is at most 65535 entries, so a free id always exists; ids are handed out
  // cyclically so a just-released id is not reused at once.
  for (uint32_t tries = 0; tries < 65536; ++tries) {
    uint16_t id = next_packet_id_;
    next_packet_id_ = static_cast<uint16_t>(next_packet_id_ == 65535 ? 1 : next_packet_id_ + 1);
    if (pids().insert(id).second) return id;
  }
  return 0;
}

OutEntry* Session::find_inflight(uint16_t packet_id) {
  // Acknowledgements mostly arrive in order: the front is the common hit.
  if (!inflight.empty() && inflight.front().packet_id == packet_id) return &inflight.front();
  auto it = std::find_if(inflight.begin(), inflight.end(),
                         [packet_id](const OutEntry& e) { return e.packet_id == packet_id; });
  return it == inflight.end() ? nullptr : &*it;
}

std::optional<OutEntry> Session::take_inflight(uint16_t packet_id) {
  if (!inflight.empty() && inflight.front().packet_id == packet_id) {  // the common case
    OutEntry e = std::move(inflight.front());
    inflight.pop_front();
    release_packet_id(packet_id);
    return e;
  }
  auto it = std::find_if(inflight.begin(), inflight.end(),
                         [packet_id](const OutEntry& e) { return e.packet_id == packet_id; });
  if (it == inflight.end()) return std::nullopt;
  OutEntry e = std::move(*it);
  inflight.erase(it);
  release_packet_id(packet_id);
  return e;
}

}  // namespace harbor::broker
