// Encoder for every control packet. 3.1 and 3.1.1 share one layout; 5.0 adds reason codes
// and properties. Short forms are used wherever 5.0 allows them.
#include <cstring>
#include <type_traits>

#include "mqtt/codec.hpp"

namespace harbor::mqtt {

namespace {

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}
void put_bytes(std::string& out, std::string_view s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}
void put_properties(std::string& out, const Properties& props) {
  put_varint(out, static_cast<uint32_t>(properties_size(props)));
  encode_properties(props, out);
}
bool has_properties(const Properties& p) { return p != Properties{}; }
uint8_t code(ReasonCode rc) { return static_cast<uint8_t>(rc); }

// Writes the fixed header in front of a body whose size is not known in advance: five bytes
// are reserved (type + longest remaining length), the body is appended, then the header is
// written right-aligned and the unused reserve removed. Only control packets go this way;
// PUBLISH computes its size first so that its payload is never moved.
template <class Body>
void framed(std::string& out, uint8_t first_byte, Body&& body) {
  const size_t start = out.size();
  out.append(5, '\0');
  body();
  const auto body_len = static_cast<uint32_t>(out.size() - start - 5);
  std::string header;
  header.push_back(static_cast<char>(first_byte));
  put_varint(header, body_len);
  const size_t gap = 5 - header.size();
  std::memcpy(out.data() + start + gap, header.data(), header.size());
  out.erase(start, gap);
}

void encode_connect(const Connect& c, std::string& out) {
  // The CONNECT states its own version; the protocol name follows from it (section 3.1.2.1;
  // 3.1 used "MQIsdp").
  const Version v = c.version;
  const bool v5 = is_v5(v);
  framed(out, 0x10, [&] {
    put_bytes(out, v == Version::v31 ? "MQIsdp" : "MQTT");
    put_u8(out, static_cast<uint8_t>(v));
    uint8_t flags = 0;
    if (c.clean_start) flags |= 0x02;
    if (c.will) {
      flags |= 0x04;
      flags |= static_cast<uint8_t>((c.will->qos & 0x03) << 3);
      if (c.will->retain) flags |= 0x20;
    }
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    put_u8(out, flags);
    put_u16(out, c.keep_alive);
    if (v5) put_properties(out, c.props);
    put_bytes(out, c.client_id);
    if (c.will) {
      if (v5) put_properties(out, c.will->props);
      put_bytes(out, c.will->topic);
      put_bytes(out, c.will->payload);
    }
    if (c.username) put_bytes(out, *c.username);
    if (c.password) put_bytes(out, *c.password);
  });
}

void encode_connack(const Connack& c, Version v, std::string& out) {
  framed(out, 0x20, [&] {
    // 3.1 has no session-present flag; its acknowledge-flags byte is reserved.
    put_u8(out, (c.session_present && v != Version::v31) ? 1 : 0);
    if (is_v5(v)) {
      put_u8(out, code(c.reason));
      put_properties(out, c.props);
    } else {
      put_u8(out, static_cast<uint8_t>(to_311_connack(c.reason)));
    }
  });
}

void encode_publish(const Publish& p, Version v, std::string& out) {
  const bool v5 = is_v5(v);
  const size_t props_len = v5 ? properties_size(p.props) : 0;
  const size_t body = 2 + p.topic.size() + (p.qos > 0 ? 2 : 0) +
                      (v5 ? varint_size(static_cast<uint32_t>(props_len)) + props_len : 0) +
                      p.payload.size();
  out.reserve(out.size() + 1 + varint_size(static_cast<uint32_t>(body)) + body);
  uint8_t first = 0x30 | static_cast<uint8_t>((p.qos & 0x03) << 1);
  if (p.dup) first |= 0x08;
  if (p.retain) first |= 0x01;
  put_u8(out, first);
  put_varint(out, static_cast<uint32_t>(body));
  put_bytes(out, p.topic);
  if (p.qos > 0) put_u16(out, p.packet_id);
  if (v5) {
    put_varint(out, static_cast<uint32_t>(props_len));
    encode_properties(p.props, out);
  }
  out.append(p.payload);
}

void encode_puback(const PubAck& a, Version v, std::string& out) {
  // [MQTT-3.6.1-1] PUBREL carries flags 0b0010.
  const auto type = static_cast<uint8_t>(a.type);
  const uint8_t first = static_cast<uint8_t>(type << 4) | (a.type == PacketType::Pubrel ? 2 : 0);
  framed(out, first, [&] {
    put_u16(out, a.packet_id);
    if (!is_v5(v)) return;
    // Section 3.4.2.1: reason code and property length may be omitted on Success without
    // properties, and the property length alone when there are no properties.
    const bool props = has_properties(a.props);
    if (a.reason != ReasonCode::Success || props) put_u8(out, code(a.reason));
    if (props) put_properties(out, a.props);
  });
}

void encode_subscribe(const Subscribe& s, Version v, std::string& out) {
  framed(out, 0x82, [&] {  // [MQTT-3.8.1-1]
    put_u16(out, s.packet_id);
    if (is_v5(v)) put_properties(out, s.props);
    for (const auto& t : s.topics) {
      put_bytes(out, t.filter);
      uint8_t options = t.qos & 0x03;
      if (is_v5(v)) {
        if (t.no_local) options |= 0x04;
        if (t.retain_as_published) options |= 0x08;
        options |= static_cast<uint8_t>((t.retain_handling & 0x03) << 4);
      }
      put_u8(out, options);
    }
  });
}

void encode_suback(const Suback& s, Version v, std::string& out) {
  framed(out, 0x90, [&] {
    put_u16(out, s.packet_id);
    if (is_v5(v)) put_properties(out, s.props);
    for (ReasonCode rc : s.reasons) {
      // 3.1.1 knows granted QoS 0..2 and one failure code, 0x80 (section 3.9.3).
      uint8_t byte = code(rc);
      if (!is_v5(v) && byte > 2) byte = 0x80;
      put_u8(out, byte);
    }
  });
}

void encode_unsubscribe(const Unsubscribe& u, Version v, std::string& out) {
  framed(out, 0xA2, [&] {  // [MQTT-3.10.1-1]
    put_u16(out, u.packet_id);
    if (is_v5(v)) put_properties(out, u.props);
    for (const auto& f : u.filters) put_bytes(out, f);
  });
}

void encode_unsuback(const Unsuback& u, Version v, std::string& out) {
  framed(out, 0xB0, [&] {
    put_u16(out, u.packet_id);
    if (!is_v5(v)) return;  // 3.1.1 UNSUBACK is the packet id only
    put_properties(out, u.props);
    for (ReasonCode rc : u.reasons) put_u8(out, code(rc));
  });
}

// DISCONNECT and AUTH: empty body for Success without properties (sections 3.14.2.1,
// 3.15.2.1), reason code alone without properties.
void encode_reason_only(uint8_t first, ReasonCode rc, const Properties& props, std::string& out) {
  framed(out, first, [&] {
    const bool has_props = has_properties(props);
    if (rc != ReasonCode::Success || has_props) put_u8(out, code(rc));
    if (has_props) put_properties(out, props);
  });
}

}  // namespace

void encode(const Packet& packet, Version v, std::string& out) {
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Connect>) {
          encode_connect(p, out);
        } else if constexpr (std::is_same_v<T, Connack>) {
          encode_connack(p, v, out);
        } else if constexpr (std::is_same_v<T, Publish>) {
          encode_publish(p, v, out);
        } else if constexpr (std::is_same_v<T, PubAck>) {
          encode_puback(p, v, out);
        } else if constexpr (std::is_same_v<T, Subscribe>) {
          encode_subscribe(p, v, out);
        } else if constexpr (std::is_same_v<T, Suback>) {
          encode_suback(p, v, out);
        } else if constexpr (std::is_same_v<T, Unsubscribe>) {
          encode_unsubscribe(p, v, out);
        } else if constexpr (std::is_same_v<T, Unsuback>) {
          encode_unsuback(p, v, out);
        } else if constexpr (std::is_same_v<T, Pingreq>) {
          out.append("\xC0\x00", 2);
        } else if constexpr (std::is_same_v<T, Pingresp>) {
          out.append("\xD0\x00", 2);
        } else if constexpr (std::is_same_v<T, Disconnect>) {
          if (is_v5(v))
            encode_reason_only(0xE0, p.reason, p.props, out);
          else
            out.append("\xE0\x00", 2);  // 3.1.1 DISCONNECT has no variable header
        } else {
          // AUTH exists only in 5.0; there is nothing to send to an older peer.
          if (is_v5(v)) encode_reason_only(0xF0, p.reason, p.props, out);
        }
      },
      packet);
}

namespace {

size_t connack_size_v5(const Connack& c) {
  const size_t props = properties_size(c.props);
  const size_t body = 2 + varint_size(static_cast<uint32_t>(props)) + props;
  return 1 + varint_size(static_cast<uint32_t>(body)) + body;
}

}  // namespace

bool fit_connack(Connack& c, uint32_t max_packet_size) {
  auto fits = [&] { return connack_size_v5(c) <= max_packet_size; };
  if (fits()) return true;
  Properties& p = c.props;
  // Absent means 1 for these (sections 3.2.2.3.5, 3.2.2.3.11-13): nothing is lost.
  for (auto* flag : {&p.retain_available, &p.wildcard_subscription_available,
                     &p.subscription_identifier_available, &p.shared_subscription_available}) {
    if (*flag == uint8_t{1}) flag->reset();
  }
  if (fits()) return true;
  p.reason_string.reset();  // [MQTT-3.2.2-19]
  while (!fits() && !p.user_properties.empty()) p.user_properties.pop_back();  // [MQTT-3.2.2-20]
  if (fits()) return true;
  // Optional information: the client asked for Response Information but the server may
  // send none (section 3.2.2.3.15); without Topic Alias Maximum the client uses no aliases.
  p.response_information.reset();
  if (fits()) return true;
  p.topic_alias_maximum.reset();
  return fits();
}

std::string encode(const Packet& p, Version v) {
  std::string out;
  encode(p, v, out);
  return out;
}

}  // namespace harbor::mqtt
