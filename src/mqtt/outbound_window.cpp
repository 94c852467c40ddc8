#include "mqtt/outbound_window.hpp"

#include <bit>

namespace harbor::mqtt {

namespace {
constexpr uint32_t kWords = 65536 / 64;
}  // namespace

std::string_view to_string(OutboundState s) {
  switch (s) {
    case OutboundState::AwaitPuback: return "AwaitPuback";
    case OutboundState::AwaitPubrec: return "AwaitPubrec";
    case OutboundState::AwaitPubcomp: return "AwaitPubcomp";
  }
  return "?";
}

std::string_view to_string(WindowAction a) {
  switch (a) {
    case WindowAction::Nothing: return "Nothing";
    case WindowAction::SendPublish: return "SendPublish";
    case WindowAction::SendPubrel: return "SendPubrel";
    case WindowAction::Release: return "Release";
    case WindowAction::Full: return "Full";
    case WindowAction::NoPacketId: return "NoPacketId";
    case WindowAction::UnknownPacketId: return "UnknownPacketId";
    case WindowAction::ProtocolError: return "ProtocolError";
  }
  return "?";
}

void PacketIdSet::activate() {
  bits_ = std::make_unique<uint64_t[]>(kWords);  // zeroed
  bits_[0] = 1;  // packet id 0 is never valid [MQTT-2.2.1-3]
}

uint16_t PacketIdSet::first_free_from(uint16_t from) const {
  if (from == 0) from = 1;
  uint32_t word = from >> 6;
  // The first word is looked at twice: from `from` on, and at the end of the round for
  // the ids below `from`.
  uint64_t free = ~bits_[word] & (~uint64_t{0} << (from & 63));
  for (uint32_t n = 0; n <= kWords; ++n) {
    if (free != 0) return static_cast<uint16_t>((word << 6) + static_cast<uint32_t>(std::countr_zero(free)));
    word = (word + 1) % kWords;
    free = ~bits_[word];
  }
  return 0;
}

}  // namespace harbor::mqtt
