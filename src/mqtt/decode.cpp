// Packet-level decoding with the checks of sections 2 and 3 of the 3.1.1 and 5.0 specs.
// Each decode_* reads one packet type from its body; errors carry the spec's outcome.
#include <algorithm>
#include <initializer_list>

#include "mqtt/byte_reader.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/property_codec.hpp"
#include "mqtt/topic.hpp"

namespace harbor::mqtt {

namespace {

using detail::ByteReader;
using detail::PropertyContext;
using detail::read_properties;
using detail::UserPropertyBudget;

// Reason codes each 5.0 packet may carry (section 2.4 table and the per-packet lists).
bool reason_in(uint8_t rc, std::initializer_list<uint8_t> allowed) {
  return std::find(allowed.begin(), allowed.end(), rc) != allowed.end();
}

bool valid_reason(PacketType t, uint8_t rc) {
  switch (t) {
    case PacketType::Connack:
      return reason_in(rc, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                            0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F});
    case PacketType::Puback:
    case PacketType::Pubrec:
      return reason_in(rc, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      return reason_in(rc, {0x00, 0x92});
    case PacketType::Suback:
      return reason_in(rc,
                       {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2});
    case PacketType::Unsuback:
      return reason_in(rc, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91});
    case PacketType::Disconnect:
      return reason_in(rc, {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                            0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                            0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2});
    case PacketType::Auth:
      return reason_in(rc, {0x00, 0x18, 0x19});
    default:
      return false;
  }
}

ReasonCode read_reason(ByteReader& r, PacketType t) {
  uint8_t rc = r.u8();
  if (!r.failed() && !valid_reason(t, rc))
    r.fail(ReasonCode::MalformedPacket, std::string("reason code ") + std::to_string(rc) +
                                            " not valid in " + std::string(to_string(t)));
  return static_cast<ReasonCode>(rc);
}

// [MQTT-2.3.1-1] SUBSCRIBE, UNSUBSCRIBE and PUBLISH with QoS > 0 carry a non-zero packet
// identifier; the acknowledgements echo it, so 0 there is malformed as well.
uint16_t read_packet_id(ByteReader& r) {
  uint16_t id = r.u16();
  if (!r.failed() && id == 0) r.fail(ReasonCode::MalformedPacket, "packet identifier 0");
  return id;
}

// The message is built only on failure: acknowledgements are on the hot path.
void expect_end(ByteReader& r, std::string_view packet) {
  if (!r.empty()) r.fail(ReasonCode::MalformedPacket, "trailing bytes in " + std::string(packet));
}

Result<Packet> finish(ByteReader& r, Packet p) {
  if (r.failed()) return tl::unexpected(r.error());
  return p;
}

Result<Packet> decode_connect(ByteReader& r, UserPropertyBudget& budget) {
  Connect c;
  c.protocol_name = r.utf8();
  const uint8_t level = r.u8();
  if (r.failed()) return tl::unexpected(r.error());
  // [MQTT-3.1.2-1] / [MQTT-3.1.2-2]: "MQTT" with level 4 or 5, or 3.1's "MQIsdp" with
  // level 3. An unknown level is answered with "unacceptable protocol version"; so is an
  // unknown name, except that 5.0 (section 3.1.2.1) makes a bad name under level 5 a
  // Protocol Error.
  const bool name_ok = (c.protocol_name == "MQTT" && (level == 4 || level == 5)) ||
                       (c.protocol_name == "MQIsdp" && level == 3);
  if (!name_ok) {
    const bool known_name = c.protocol_name == "MQTT" || c.protocol_name == "MQIsdp";
    if (level == 5 && !known_name)
      return fail(ReasonCode::ProtocolError, "unknown protocol name " + c.protocol_name);
    return fail(ReasonCode::UnsupportedProtocolVersion,
                "unsupported protocol " + c.protocol_name + " level " + std::to_string(level));
  }
  c.version = static_cast<Version>(level);
  const bool v5 = is_v5(c.version);

  const uint8_t flags = r.u8();
  // 3.1 (level 3) states neither rule below: its bit 0 is just "reserved", and its Will QoS
  // and Will Retain only mean something when the Will flag is set (3.1 section 3.1). A 3.1
  // CONNECT is read by those rules: bit 0 ignored, will QoS/retain ignored without a will.
  const bool v31 = c.version == Version::v31;
  // [MQTT-3.1.2-3] the reserved flag must be 0.
  if (!v31 && (flags & 0x01)) r.fail(ReasonCode::MalformedPacket, "CONNECT reserved flag set");
  c.clean_start = flags & 0x02;
  const bool will = flags & 0x04;
  const auto will_qos = static_cast<QoS>((flags >> 3) & 0x03);
  const bool will_retain = flags & 0x20;
  const bool has_password = flags & 0x40;
  const bool has_username = flags & 0x80;
  // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]: without a will, will QoS and retain are 0.
  if (!v31 && !will && (will_qos != 0 || will_retain))
    r.fail(ReasonCode::MalformedPacket, "will QoS or retain set without will flag");
  // [MQTT-3.1.2-14] will QoS 3 is invalid (3.1 too, when there is a will).
  if (will_qos == 3 && (will || !v31)) r.fail(ReasonCode::MalformedPacket, "will QoS 3");
  // [MQTT-3.1.2-22] 3.1.1 (and 3.1) forbid a password without a user name; 5.0 allows it.
  if (!v5 && has_password && !has_username)
    r.fail(ReasonCode::MalformedPacket, "password without user name");
  c.keep_alive = r.u16();
  if (v5) read_properties(r, c.props, PropertyContext::Connect, budget);
  // [MQTT-3.1.3-4] the client identifier is a UTF-8 string (any length; the broker decides
  // whether it accepts an empty or long one).
  c.client_id = r.utf8();
  if (will) {
    Will w;
    w.qos = will_qos;
    w.retain = will_retain;
    if (v5) read_properties(r, w.props, PropertyContext::Will, budget);
    w.topic = r.utf8();
    // A will topic is a topic name; 5.0 answers a wildcard one with 0x90 (section 3.2.2.2).
    if (!r.failed() && !valid_topic_name(w.topic))
      r.fail(ReasonCode::TopicNameInvalid, "will topic is not a valid topic name");
    w.payload = r.binary();
    c.will = std::move(w);
  }
  if (has_username) c.username = r.utf8();  // [MQTT-3.1.3-11]
  if (has_password) c.password = r.binary();
  expect_end(r, "CONNECT");
  return finish(r, std::move(c));
}

Result<Packet> decode_connack(ByteReader& r, Version v, UserPropertyBudget& budget) {
  Connack c;
  const uint8_t ack_flags = r.u8();
  if (v == Version::v31) {
    // 3.1 has no acknowledge flags: the byte is unused and ignored.
  } else {
    // [MQTT-3.2.2-1] bits 7..1 are reserved.
    if (ack_flags & 0xFE) r.fail(ReasonCode::MalformedPacket, "CONNACK reserved flags set");
    c.session_present = ack_flags & 0x01;
  }
  if (is_v5(v)) {
    c.reason = read_reason(r, PacketType::Connack);
    read_properties(r, c.props, PropertyContext::Connack, budget);
  } else {
    const uint8_t rc = r.u8();
    switch (rc) {
      case 0:
        c.reason = ReasonCode::Success;
        break;
      case 1:
        c.reason = ReasonCode::UnsupportedProtocolVersion;
        break;
      case 2:
        c.reason = ReasonCode::ClientIdentifierNotValid;
        break;
      case 3:
        c.reason = ReasonCode::ServerUnavailable;
        break;
      case 4:
        c.reason = ReasonCode::BadUserNameOrPassword;
        break;
      case 5:
        c.reason = ReasonCode::NotAuthorized;
        break;
      default:
        r.fail(ReasonCode::MalformedPacket, "reserved CONNACK return code");
    }
  }
  // [MQTT-3.2.2-4] / [MQTT-3.2.2-6] a refused connection never has a session.
  if (!r.failed() && c.session_present && c.reason != ReasonCode::Success)
    r.fail(ReasonCode::ProtocolError, "session present on a refused CONNACK");
  expect_end(r, "CONNACK");
  return finish(r, std::move(c));
}

Result<Packet> decode_publish(uint8_t flags, ByteReader& r, Version v,
                              UserPropertyBudget& budget) {
  Publish p;
  p.dup = flags & 0x08;
  p.qos = static_cast<QoS>((flags >> 1) & 0x03);
  p.retain = flags & 0x01;
  // [MQTT-3.3.1-4] both QoS bits set is malformed.
  if (p.qos == 3) return fail(ReasonCode::MalformedPacket, "PUBLISH QoS 3");
  // [MQTT-3.3.1-2] DUP must be 0 for QoS 0. 3.1 only says DUP applies to QoS > 0: there a
  // QoS 0 DUP means nothing and is dropped.
  if (p.qos == 0 && p.dup) {
    if (v != Version::v31) return fail(ReasonCode::MalformedPacket, "DUP set on QoS 0 PUBLISH");
    p.dup = false;
  }
  p.topic = r.utf8();
  if (p.qos > 0) p.packet_id = read_packet_id(r);
  if (is_v5(v)) read_properties(r, p.props, PropertyContext::Publish, budget);
  if (r.failed()) return tl::unexpected(r.error());
  // [MQTT-3.3.2-2] no wildcards in a topic name.
  if (p.topic.find_first_of("+#") != std::string::npos)
    return fail(ReasonCode::TopicNameInvalid, "wildcard in PUBLISH topic");
  if (p.topic.empty()) {
    // 5.0 allows an empty topic only with a Topic Alias (section 3.3.2.1); 3.1.1 never
    // [MQTT-4.7.3-1].
    if (!is_v5(v)) return fail(ReasonCode::TopicNameInvalid, "empty PUBLISH topic");
    if (!p.props.topic_alias)
      return fail(ReasonCode::ProtocolError, "empty PUBLISH topic without topic alias");
  }
  p.payload = r.rest();
  return p;
}

Result<Packet> decode_puback(PacketType t, ByteReader& r, Version v,
                             UserPropertyBudget& budget) {
  PubAck a;
  a.type = t;
  a.packet_id = read_packet_id(r);
  if (is_v5(v)) {
    // Section 3.4.2.1: a 2-byte body means Success without properties; 3 bytes adds the
    // reason code alone.
    if (!r.empty()) a.reason = read_reason(r, t);
    if (!r.empty()) read_properties(r, a.props, PropertyContext::PubAck, budget);
  }
  expect_end(r, to_string(t));
  return finish(r, std::move(a));
}

Result<Packet> decode_subscribe(ByteReader& r, Version v, UserPropertyBudget& budget) {
  Subscribe s;
  s.packet_id = read_packet_id(r);
  const bool v5 = is_v5(v);
  if (v5) read_properties(r, s.props, PropertyContext::Subscribe, budget);
  if (r.failed()) return tl::unexpected(r.error());
  // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one topic filter.
  if (r.empty()) return fail(ReasonCode::ProtocolError, "SUBSCRIBE without topic filters");
  while (!r.empty()) {
    SubscribeTopic t;
    // Filter syntax is not checked here: a bad filter is answered per filter in SUBACK.
    t.filter = r.utf8();
    // [MQTT-4.7.3-1] a topic filter is at least one character: an empty one is a protocol
    // violation that closes the connection, not a per-filter failure.
    if (!r.failed() && t.filter.empty()) {
      return fail(ReasonCode::ProtocolError, "zero-length topic filter in SUBSCRIBE");
    }
    const uint8_t options = r.u8();
    if (r.failed()) break;
    t.qos = options & 0x03;
    if (v5) {
      // [MQTT-3.8.3-5] bits 7 and 6 are reserved.
      if (options & 0xC0) r.fail(ReasonCode::MalformedPacket, "subscription options reserved");
      t.no_local = options & 0x04;
      t.retain_as_published = options & 0x08;
      t.retain_handling = (options >> 4) & 0x03;
      // Section 3.8.3.1: Maximum QoS 3 and Retain Handling 3 are Protocol Errors.
      if (t.qos == 3) r.fail(ReasonCode::ProtocolError, "subscription QoS 3");
      if (t.retain_handling == 3) r.fail(ReasonCode::ProtocolError, "retain handling 3");
      // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
      if (t.no_local && parse_shared_filter(t.filter))
        r.fail(ReasonCode::ProtocolError, "No Local on a shared subscription");
    } else {
      // [MQTT-3-8.3-4] (3.1.1): the upper six bits are reserved and QoS 3 is malformed.
      if (options & 0xFC) r.fail(ReasonCode::MalformedPacket, "requested QoS reserved bits");
      if (t.qos == 3) r.fail(ReasonCode::MalformedPacket, "requested QoS 3");
    }
    s.topics.push_back(std::move(t));
  }
  return finish(r, std::move(s));
}

Result<Packet> decode_suback(ByteReader& r, Version v, UserPropertyBudget& budget) {
  Suback s;
  s.packet_id = read_packet_id(r);
  if (is_v5(v)) read_properties(r, s.props, PropertyContext::Suback, budget);
  if (!r.failed() && r.empty()) r.fail(ReasonCode::ProtocolError, "SUBACK without reason codes");
  while (!r.empty()) {
    if (is_v5(v)) {
      s.reasons.push_back(read_reason(r, PacketType::Suback));
    } else {
      // Section 3.9.3: 0x00, 0x01, 0x02 or 0x80; the rest are reserved.
      const uint8_t rc = r.u8();
      if (rc > 2 && rc != 0x80) r.fail(ReasonCode::MalformedPacket, "reserved SUBACK code");
      s.reasons.push_back(static_cast<ReasonCode>(rc));
    }
  }
  return finish(r, std::move(s));
}

Result<Packet> decode_unsubscribe(ByteReader& r, Version v, UserPropertyBudget& budget) {
  Unsubscribe u;
  u.packet_id = read_packet_id(r);
  if (is_v5(v)) read_properties(r, u.props, PropertyContext::Unsubscribe, budget);
  if (r.failed()) return tl::unexpected(r.error());
  // [MQTT-3.10.3-2]: at least one topic filter.
  if (r.empty()) return fail(ReasonCode::ProtocolError, "UNSUBSCRIBE without topic filters");
  while (!r.empty()) {
    u.filters.push_back(r.utf8());
    // [MQTT-4.7.3-1] as for SUBSCRIBE.
    if (!r.failed() && u.filters.back().empty()) {
      return fail(ReasonCode::ProtocolError, "zero-length topic filter in UNSUBSCRIBE");
    }
  }
  return finish(r, std::move(u));
}

Result<Packet> decode_unsuback(ByteReader& r, Version v, UserPropertyBudget& budget) {
  Unsuback u;
  u.packet_id = read_packet_id(r);
  if (is_v5(v)) {
    read_properties(r, u.props, PropertyContext::Unsuback, budget);
    if (!r.failed() && r.empty())
      r.fail(ReasonCode::ProtocolError, "UNSUBACK without reason codes");
    while (!r.empty()) u.reasons.push_back(read_reason(r, PacketType::Unsuback));
  }
  expect_end(r, "UNSUBACK");
  return finish(r, std::move(u));
}

// DISCONNECT and AUTH: empty body = Success without properties (sections 3.14.2.1, 3.15.2.1).
template <class T>
Result<Packet> decode_reason_only(PacketType t, PropertyContext where, ByteReader& r,
                                  UserPropertyBudget& budget) {
  T p;
  if (!r.empty()) p.reason = read_reason(r, t);
  if (!r.empty()) read_properties(r, p.props, where, budget);
  expect_end(r, to_string(t));
  return finish(r, std::move(p));
}

}  // namespace

Result<Packet> decode(uint8_t first_byte, std::span<const uint8_t> body, Version v,
                      const DecodeLimits& limits) {
  const uint8_t type = first_byte >> 4;
  const uint8_t flags = first_byte & 0x0F;
  // Section 2.1.3: fixed-header flags are reserved except for PUBLISH; PUBREL, SUBSCRIBE
  // and UNSUBSCRIBE carry 0b0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1], the others
  // 0b0000 [MQTT-2.2.2-1] [MQTT-2.2.2-2] (5.0: [MQTT-2.1.3-1]).
  // MQTT 3.1 (level 3) reserves none of them: its DUP, QoS and RETAIN bits exist in every
  // fixed header, are "not used" outside PUBLISH, PUBREL, SUBSCRIBE and UNSUBSCRIBE, and
  // those three carry QoS 1 with DUP set on a retry (3.1 section 2.1). So a 3.1 PUBREL
  // resent as 0x6A is valid; the flags are ignored, as 3.1 receivers always did.
  if (type != 3 && v != Version::v31) {
    const uint8_t expected = (type == 6 || type == 8 || type == 10) ? 0x02 : 0x00;
    if (flags != expected) return fail(ReasonCode::MalformedPacket, "reserved fixed-header flags");
  }
  ByteReader r(body);
  UserPropertyBudget budget{limits.max_user_properties};
  switch (type) {
    case 1:
      return decode_connect(r, budget);
    case 2:
      return decode_connack(r, v, budget);
    case 3:
      return decode_publish(flags, r, v, budget);
    case 4:
    case 5:
    case 6:
    case 7:
      return decode_puback(static_cast<PacketType>(type), r, v, budget);
    case 8:
      return decode_subscribe(r, v, budget);
    case 9:
      return decode_suback(r, v, budget);
    case 10:
      return decode_unsubscribe(r, v, budget);
    case 11:
      return decode_unsuback(r, v, budget);
    case 12:
      if (!body.empty()) return fail(ReasonCode::MalformedPacket, "PINGREQ with a body");
      return Pingreq{};
    case 13:
      if (!body.empty()) return fail(ReasonCode::MalformedPacket, "PINGRESP with a body");
      return Pingresp{};
    case 14:
      if (!is_v5(v)) {
        if (!body.empty()) return fail(ReasonCode::MalformedPacket, "DISCONNECT with a body");
        return Disconnect{};
      }
      return decode_reason_only<Disconnect>(PacketType::Disconnect, PropertyContext::Disconnect, r,
                                            budget);
    case 15:
      // AUTH is reserved (forbidden) before 5.0.
      if (!is_v5(v)) return fail(ReasonCode::MalformedPacket, "packet type 15 before MQTT 5");
      return decode_reason_only<Auth>(PacketType::Auth, PropertyContext::Auth, r, budget);
    default:
      return fail(ReasonCode::MalformedPacket, "reserved packet type 0");
  }
}

}  // namespace harbor::mqtt
