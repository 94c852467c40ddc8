// Connection state machines for both roles. Each next() is the single transition function:
// it takes the decoder's next packet, checks it against the phase and the direction, and
// either returns it or closes the connection with the violation.
#include "mqtt/protocol.hpp"

#include <cstdio>

namespace harbor::mqtt {

namespace {

// Inbound topic alias (5.0, section 3.3.2.3.4). Fills in the topic from the alias map or
// records a new mapping, then drops the property: an alias only means something on this hop.
std::optional<Error> resolve_alias(Publish& p, uint16_t max_alias,
                                   std::unordered_map<uint16_t, std::string>& aliases) {
  if (!p.props.topic_alias) return std::nullopt;
  const uint16_t alias = *p.props.topic_alias;
  // [MQTT-3.3.2-8] alias 0 and [MQTT-3.3.2-9] above the advertised maximum are invalid.
  if (alias == 0 || alias > max_alias)
    return Error{ReasonCode::TopicAliasInvalid, "topic alias " + std::to_string(alias) +
                                                    " outside 1.." + std::to_string(max_alias)};
  if (p.topic.empty()) {
    auto it = aliases.find(alias);
    // Section 3.3.2.3.4: an alias with no mapping and an empty topic is a Protocol Error.
    if (it == aliases.end())
      return Error{ReasonCode::ProtocolError, "unknown topic alias " + std::to_string(alias)};
    p.topic = it->second;
  } else {
    aliases[alias] = p.topic;
  }
  p.props.topic_alias.reset();
  return std::nullopt;
}

bool is_client_to_server(PacketType t) {
  switch (t) {
    case PacketType::Connack:
    case PacketType::Suback:
    case PacketType::Unsuback:
    case PacketType::Pingresp:
      return false;
    default:
      return true;
  }
}

bool is_server_to_client(PacketType t) {
  switch (t) {
    case PacketType::Connect:
    case PacketType::Subscribe:
    case PacketType::Unsubscribe:
    case PacketType::Pingreq:
      return false;
    default:
      return true;
  }
}

}  // namespace

ServerProtocol::ServerProtocol(Limits limits) : decoder_(limits.max_packet_size), limits_(limits) {
  decoder_.set_max_user_properties(limits.max_user_properties);
}

Result<std::optional<Packet>> ServerProtocol::violation(ReasonCode rc, std::string message) {
  phase_ = ProtocolPhase::Closed;
  return fail(rc, std::move(message));
}

Result<std::optional<Packet>> ServerProtocol::next() {
  if (phase_ == ProtocolPhase::Closed) return std::nullopt;
  // [MQTT-3.1.0-1] the first packet is CONNECT: a first byte that is not CONNECT's (0x10,
  // whose flags are reserved as 0 [MQTT-2.1.3-1]) closes the connection at once, without
  // waiting for the rest of whatever the peer is sending.
  if (phase_ == ProtocolPhase::AwaitingConnect) {
    if (auto first = decoder_.first_byte(); first && *first != 0x10) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", *first);
      return violation(ReasonCode::ProtocolError,
                       std::string("first packet is not CONNECT (first byte ") + hex + ")");
    }
  }
  auto r = decoder_.next();
  if (phase_ == ProtocolPhase::AwaitingConnect) {
    // The decoder adopts the CONNECT's level even when refusing it, so a CONNACK with the
    // refusal can be encoded in the client's version.
    version_ = decoder_.version();
  }
  if (!r) {
    phase_ = ProtocolPhase::Closed;
    return tl::unexpected(r.error());
  }
  if (!*r) return std::nullopt;
  Packet& packet = **r;
  const PacketType type = packet_type(packet);

  if (phase_ == ProtocolPhase::AwaitingConnect) {
    // [MQTT-3.1.0-1] the first packet from the client is CONNECT.
    if (type != PacketType::Connect)
      return violation(ReasonCode::ProtocolError,
                       std::string("first packet is ") + std::string(to_string(type)));
    version_ = std::get<Connect>(packet).version;
    phase_ = ProtocolPhase::Connected;
    return r;
  }
  // [MQTT-3.1.0-2] a second CONNECT is a Protocol Error.
  if (type == PacketType::Connect) return violation(ReasonCode::ProtocolError, "second CONNECT");
  if (!is_client_to_server(type))
    return violation(ReasonCode::ProtocolError, std::string(to_string(type)) + " sent by a client");
  if (auto* pub = std::get_if<Publish>(&packet)) {
    // [MQTT-3.3.4-6] Subscription Identifiers only travel from server to client.
    if (!pub->props.subscription_identifiers.empty())
      return violation(ReasonCode::ProtocolError, "Subscription Identifier in a client PUBLISH");
    if (pub->props.topic_alias) {
      if (!inbound_aliases_) inbound_aliases_ = std::make_unique<std::unordered_map<uint16_t, std::string>>();
      if (auto err = resolve_alias(*pub, limits_.max_topic_alias, *inbound_aliases_))
        return violation(err->reason, std::move(err->message));
    }
  } else if (type == PacketType::Disconnect) {
    phase_ = ProtocolPhase::Closed;
  }
  return r;
}

ClientProtocol::ClientProtocol(Version v, uint32_t max_packet_size)
    : decoder_(max_packet_size), version_(v) {
  decoder_.set_version(v);
}

Result<std::optional<Packet>> ClientProtocol::violation(ReasonCode rc, std::string message) {
  phase_ = ProtocolPhase::Closed;
  return fail(rc, std::move(message));
}

Result<std::optional<Packet>> ClientProtocol::next() {
  if (phase_ == ProtocolPhase::Closed) return std::nullopt;
  auto r = decoder_.next();
  if (!r) {
    phase_ = ProtocolPhase::Closed;
    return tl::unexpected(r.error());
  }
  if (!*r) return std::nullopt;
  Packet& packet = **r;
  const PacketType type = packet_type(packet);
  if (!is_server_to_client(type))
    return violation(ReasonCode::ProtocolError, std::string(to_string(type)) + " sent by a server");
  // Before 5.0 DISCONNECT only travels from client to server (3.1.1 section 3.14).
  if (type == PacketType::Disconnect && !is_v5(version_))
    return violation(ReasonCode::ProtocolError, "DISCONNECT sent by a 3.1.1 server");

  if (phase_ == ProtocolPhase::AwaitingConnect) {
    // [MQTT-3.2.0-1] the server's first packet is CONNACK; 5.0 enhanced authentication may
    // exchange AUTH packets before it (section 4.12).
    if (type == PacketType::Auth && is_v5(version_)) return r;
    if (type != PacketType::Connack)
      return violation(ReasonCode::ProtocolError,
                       std::string("first packet is ") + std::string(to_string(type)));
    // A refused connection ends here [MQTT-3.2.2-7] (5.0) / [MQTT-3.2.2-5] (3.1.1).
    phase_ = is_error(std::get<Connack>(packet).reason) ? ProtocolPhase::Closed
                                                        : ProtocolPhase::Connected;
    return r;
  }
  if (type == PacketType::Connack) return violation(ReasonCode::ProtocolError, "second CONNACK");
  if (auto* pub = std::get_if<Publish>(&packet)) {
    if (auto err = resolve_alias(*pub, max_topic_alias_, inbound_aliases_))
      return violation(err->reason, std::move(err->message));
  } else if (type == PacketType::Disconnect) {
    phase_ = ProtocolPhase::Closed;
  }
  return r;
}

}  // namespace harbor::mqtt
