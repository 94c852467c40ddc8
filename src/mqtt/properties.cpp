// 5.0 property blocks: encoding, size, and validated decoding (section 2.2.2).
#include <array>

#include "mqtt/codec.hpp"
#include "mqtt/property_codec.hpp"
#include "mqtt/topic.hpp"

namespace harbor::mqtt {

namespace {

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}
void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put_bytes(std::string& out, const std::string& s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}
void put_id(std::string& out, PropertyId id) { put_u8(out, static_cast<uint8_t>(id)); }

}  // namespace

size_t varint_size(uint32_t value) {
  if (value < 128) return 1;
  if (value < 16'384) return 2;
  if (value < 2'097'152) return 3;
  return 4;
}

void put_varint(std::string& out, uint32_t value) {
  do {
    uint8_t b = value & 0x7F;
    value >>= 7;
    if (value > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (value > 0);
}

void encode_properties(const Properties& p, std::string& out) {
  // Ascending identifier order: deterministic bytes for cached encodings and tests.
  auto u8 = [&](PropertyId id, const std::optional<uint8_t>& v) {
    if (v) put_id(out, id), put_u8(out, *v);
  };
  auto u16 = [&](PropertyId id, const std::optional<uint16_t>& v) {
    if (v) put_id(out, id), put_u16(out, *v);
  };
  auto u32 = [&](PropertyId id, const std::optional<uint32_t>& v) {
    if (v) put_id(out, id), put_u32(out, *v);
  };
  auto str = [&](PropertyId id, const std::optional<std::string>& v) {
    if (v) put_id(out, id), put_bytes(out, *v);
  };
  u8(PropertyId::PayloadFormatIndicator, p.payload_format_indicator);
  u32(PropertyId::MessageExpiryInterval, p.message_expiry_interval);
  str(PropertyId::ContentType, p.content_type);
  str(PropertyId::ResponseTopic, p.response_topic);
  str(PropertyId::CorrelationData, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) {
    put_id(out, PropertyId::SubscriptionIdentifier);
    put_varint(out, id);
  }
  u32(PropertyId::SessionExpiryInterval, p.session_expiry_interval);
  str(PropertyId::AssignedClientIdentifier, p.assigned_client_identifier);
  u16(PropertyId::ServerKeepAlive, p.server_keep_alive);
  str(PropertyId::AuthenticationMethod, p.authentication_method);
  str(PropertyId::AuthenticationData, p.authentication_data);
  u8(PropertyId::RequestProblemInformation, p.request_problem_information);
  u32(PropertyId::WillDelayInterval, p.will_delay_interval);
  u8(PropertyId::RequestResponseInformation, p.request_response_information);
  str(PropertyId::ResponseInformation, p.response_information);
  str(PropertyId::ServerReference, p.server_reference);
  str(PropertyId::ReasonString, p.reason_string);
  u16(PropertyId::ReceiveMaximum, p.receive_maximum);
  u16(PropertyId::TopicAliasMaximum, p.topic_alias_maximum);
  u16(PropertyId::TopicAlias, p.topic_alias);
  u8(PropertyId::MaximumQoS, p.maximum_qos);
  u8(PropertyId::RetainAvailable, p.retain_available);
  for (const auto& [k, v] : p.user_properties) {
    put_id(out, PropertyId::UserProperty);
    put_bytes(out, k);
    put_bytes(out, v);
  }
  u32(PropertyId::MaximumPacketSize, p.maximum_packet_size);
  u8(PropertyId::WildcardSubscriptionAvailable, p.wildcard_subscription_available);
  u8(PropertyId::SubscriptionIdentifierAvailable, p.subscription_identifier_available);
  u8(PropertyId::SharedSubscriptionAvailable, p.shared_subscription_available);
}

size_t properties_size(const Properties& p) {
  size_t n = 0;
  auto fixed = [&](bool present, size_t width) { n += present ? 1 + width : 0; };
  auto str = [&](const std::optional<std::string>& v) { n += v ? 3 + v->size() : 0; };
  fixed(p.payload_format_indicator.has_value(), 1);
  fixed(p.message_expiry_interval.has_value(), 4);
  str(p.content_type);
  str(p.response_topic);
  str(p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) n += 1 + varint_size(id);
  fixed(p.session_expiry_interval.has_value(), 4);
  str(p.assigned_client_identifier);
  fixed(p.server_keep_alive.has_value(), 2);
  str(p.authentication_method);
  str(p.authentication_data);
  fixed(p.request_problem_information.has_value(), 1);
  fixed(p.will_delay_interval.has_value(), 4);
  fixed(p.request_response_information.has_value(), 1);
  str(p.response_information);
  str(p.server_reference);
  str(p.reason_string);
  fixed(p.receive_maximum.has_value(), 2);
  fixed(p.topic_alias_maximum.has_value(), 2);
  fixed(p.topic_alias.has_value(), 2);
  fixed(p.maximum_qos.has_value(), 1);
  fixed(p.retain_available.has_value(), 1);
  for (const auto& [k, v] : p.user_properties) n += 5 + k.size() + v.size();
  fixed(p.maximum_packet_size.has_value(), 4);
  fixed(p.wildcard_subscription_available.has_value(), 1);
  fixed(p.subscription_identifier_available.has_value(), 1);
  fixed(p.shared_subscription_available.has_value(), 1);
  return n;
}

namespace detail {

namespace {

constexpr uint32_t bit(PropertyContext c) { return 1u << static_cast<uint8_t>(c); }

constexpr uint32_t kWill = bit(PropertyContext::Will);
constexpr uint32_t kConnect = bit(PropertyContext::Connect);
constexpr uint32_t kConnack = bit(PropertyContext::Connack);
constexpr uint32_t kPublish = bit(PropertyContext::Publish);
constexpr uint32_t kPubAck = bit(PropertyContext::PubAck);
constexpr uint32_t kSubscribe = bit(PropertyContext::Subscribe);
constexpr uint32_t kSuback = bit(PropertyContext::Suback);
constexpr uint32_t kUnsubscribe = bit(PropertyContext::Unsubscribe);
constexpr uint32_t kUnsuback = bit(PropertyContext::Unsuback);
constexpr uint32_t kDisconnect = bit(PropertyContext::Disconnect);
constexpr uint32_t kAuth = bit(PropertyContext::Auth);
constexpr uint32_t kEverywhere = kWill | kConnect | kConnack | kPublish | kPubAck | kSubscribe |
                                 kSuback | kUnsubscribe | kUnsuback | kDisconnect | kAuth;

// Which packets may carry each identifier: the table of section 2.2.2.2.
constexpr std::array<uint32_t, 0x2B> kAllowed = [] {
  std::array<uint32_t, 0x2B> a{};
  auto set = [&](PropertyId id, uint32_t mask) { a[static_cast<uint8_t>(id)] = mask; };
  set(PropertyId::PayloadFormatIndicator, kPublish | kWill);
  set(PropertyId::MessageExpiryInterval, kPublish | kWill);
  set(PropertyId::ContentType, kPublish | kWill);
  set(PropertyId::ResponseTopic, kPublish | kWill);
  set(PropertyId::CorrelationData, kPublish | kWill);
  set(PropertyId::SubscriptionIdentifier, kPublish | kSubscribe);
  set(PropertyId::SessionExpiryInterval, kConnect | kConnack | kDisconnect);
  set(PropertyId::AssignedClientIdentifier, kConnack);
  set(PropertyId::ServerKeepAlive, kConnack);
  set(PropertyId::AuthenticationMethod, kConnect | kConnack | kAuth);
  set(PropertyId::AuthenticationData, kConnect | kConnack | kAuth);
  set(PropertyId::RequestProblemInformation, kConnect);
  set(PropertyId::WillDelayInterval, kWill);
  set(PropertyId::RequestResponseInformation, kConnect);
  set(PropertyId::ResponseInformation, kConnack);
  set(PropertyId::ServerReference, kConnack | kDisconnect);
  set(PropertyId::ReasonString, kConnack | kPubAck | kSuback | kUnsuback | kDisconnect | kAuth);
  set(PropertyId::ReceiveMaximum, kConnect | kConnack);
  set(PropertyId::TopicAliasMaximum, kConnect | kConnack);
  set(PropertyId::TopicAlias, kPublish);
  set(PropertyId::MaximumQoS, kConnack);
  set(PropertyId::RetainAvailable, kConnack);
  set(PropertyId::UserProperty, kEverywhere);
  set(PropertyId::MaximumPacketSize, kConnect | kConnack);
  set(PropertyId::WildcardSubscriptionAvailable, kConnack);
  set(PropertyId::SubscriptionIdentifierAvailable, kConnack);
  set(PropertyId::SharedSubscriptionAvailable, kConnack);
  return a;
}();

// Byte-valued properties that are booleans (0 or 1); anything else is a Protocol Error
// (e.g. [MQTT-3.1.2-28] for Request Response Information, section 3.2.2.3.5 for Retain
// Available).
uint8_t read_flag(ByteReader& r, const char* name) {
  uint8_t v = r.u8();
  if (v > 1) r.fail(ReasonCode::ProtocolError, std::string(name) + " must be 0 or 1");
  return v;
}

}  // namespace

void read_properties(ByteReader& r, Properties& out, PropertyContext where,
                     UserPropertyBudget& budget) {
  uint32_t length = r.varint();
  if (r.failed()) return;
  auto block = r.take(length);
  if (!block) return;
  ByteReader& b = *block;
  const uint32_t here = bit(where);
  uint64_t seen = 0;
  while (!b.empty()) {
    uint32_t raw = b.varint();
    if (b.failed()) break;
    if (raw >= kAllowed.size() || (kAllowed[raw] & here) == 0) {
      b.fail(ReasonCode::MalformedPacket,
             "property " + std::to_string(raw) + " not allowed in this packet");
      break;
    }
    auto id = static_cast<PropertyId>(raw);
    // Section 2.2.2.2: repeating a property is a Protocol Error, except User Property and,
    // in PUBLISH, Subscription Identifier (section 3.3.2.3.8).
    bool may_repeat = id == PropertyId::UserProperty || (id == PropertyId::SubscriptionIdentifier &&
                                                         where == PropertyContext::Publish);
    if ((seen & (uint64_t{1} << raw)) && !may_repeat) {
      b.fail(ReasonCode::ProtocolError, "property repeated");
      break;
    }
    seen |= uint64_t{1} << raw;
    switch (id) {
      case PropertyId::PayloadFormatIndicator:
        out.payload_format_indicator = read_flag(b, "Payload Format Indicator");
        break;
      case PropertyId::MessageExpiryInterval:
        out.message_expiry_interval = b.u32();
        break;
      case PropertyId::ContentType:
        out.content_type = b.utf8();
        break;
      case PropertyId::ResponseTopic: {
        std::string topic = b.utf8();
        // [MQTT-3.3.2-14] the Response Topic is a Topic Name: no wildcards.
        if (!b.failed() && !valid_topic_name(topic))
          b.fail(ReasonCode::ProtocolError, "Response Topic is not a valid topic name");
        out.response_topic = std::move(topic);
        break;
      }
      case PropertyId::CorrelationData:
        out.correlation_data = b.binary();
        break;
      case PropertyId::SubscriptionIdentifier: {
        uint32_t sub_id = b.varint();
        // Section 3.3.2.3.8 / 3.8.2.1.2: a value of 0 is a Protocol Error.
        if (!b.failed() && sub_id == 0)
          b.fail(ReasonCode::ProtocolError, "Subscription Identifier 0");
        out.subscription_identifiers.push_back(sub_id);
        break;
      }
      case PropertyId::SessionExpiryInterval:
        out.session_expiry_interval = b.u32();
        break;
      case PropertyId::AssignedClientIdentifier:
        out.assigned_client_identifier = b.utf8();
        break;
      case PropertyId::ServerKeepAlive:
        out.server_keep_alive = b.u16();
        break;
      case PropertyId::AuthenticationMethod:
        out.authentication_method = b.utf8();
        break;
      case PropertyId::AuthenticationData:
        out.authentication_data = b.binary();
        break;
      case PropertyId::RequestProblemInformation:
        out.request_problem_information = read_flag(b, "Request Problem Information");
        break;
      case PropertyId::WillDelayInterval:
        out.will_delay_interval = b.u32();
        break;
      case PropertyId::RequestResponseInformation:
        out.request_response_information = read_flag(b, "Request Response Information");
        break;
      case PropertyId::ResponseInformation:
        out.response_information = b.utf8();
        break;
      case PropertyId::ServerReference:
        out.server_reference = b.utf8();
        break;
      case PropertyId::ReasonString:
        out.reason_string = b.utf8();
        break;
      case PropertyId::ReceiveMaximum:
        out.receive_maximum = b.u16();
        // Section 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0 is a Protocol Error.
        if (!b.failed() && *out.receive_maximum == 0)
          b.fail(ReasonCode::ProtocolError, "Receive Maximum 0");
        break;
      case PropertyId::TopicAliasMaximum:
        out.topic_alias_maximum = b.u16();
        break;
      case PropertyId::TopicAlias:
        out.topic_alias = b.u16();
        break;
      case PropertyId::MaximumQoS:
        out.maximum_qos = read_flag(b, "Maximum QoS");
        break;
      case PropertyId::RetainAvailable:
        out.retain_available = read_flag(b, "Retain Available");
        break;
      case PropertyId::UserProperty: {
        // The spec sets no count; mqtt.property_size does. A packet beyond it is valid but
        // not processed: 0x83 Implementation specific error (docs/conformance.md).
        if (budget.used == budget.max) {
          b.fail(ReasonCode::ImplementationSpecificError,
                 "more than " + std::to_string(budget.max) + " user properties (mqtt.property_size)");
          break;
        }
        ++budget.used;
        std::string key = b.utf8();
        std::string value = b.utf8();
        out.user_properties.emplace_back(std::move(key), std::move(value));
        break;
      }
      case PropertyId::MaximumPacketSize:
        out.maximum_packet_size = b.u32();
        // Section 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0 is a Protocol Error.
        if (!b.failed() && *out.maximum_packet_size == 0)
          b.fail(ReasonCode::ProtocolError, "Maximum Packet Size 0");
        break;
      case PropertyId::WildcardSubscriptionAvailable:
        out.wildcard_subscription_available = read_flag(b, "Wildcard Subscription Available");
        break;
      case PropertyId::SubscriptionIdentifierAvailable:
        out.subscription_identifier_available = read_flag(b, "Subscription Identifier Available");
        break;
      case PropertyId::SharedSubscriptionAvailable:
        out.shared_subscription_available = read_flag(b, "Shared Subscription Available");
        break;
    }
  }
  // Sections 3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3: Authentication Data without an
  // Authentication Method is a Protocol Error.
  if (!b.failed() && out.authentication_data && !out.authentication_method)
    b.fail(ReasonCode::ProtocolError, "Authentication Data without Authentication Method");
  if (b.failed()) r.fail(b.error().reason, b.error().message);
}

}  // namespace detail

}  // namespace harbor::mqtt
