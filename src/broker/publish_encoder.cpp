#include "broker/publish_encoder.hpp"

#include "mqtt/codec.hpp"
#include "mqtt/properties.hpp"

namespace harbor::broker {

namespace {

std::string_view topic_of(const Message& m, const Delivery& d);

size_t props_body_size(const Message& m, const Delivery& d) {
  size_t n = m.forward_props.size();
  if (d.topic_alias != 0) n += 1 + 2;
  if (d.expiry_remaining_s != 0) n += 1 + 4;
  for (uint32_t id : d.subscription_ids) n += 1 + mqtt::varint_size(id);
  return n;
}

size_t remaining_length(mqtt::Version v, const Message& m, const Delivery& d, size_t props) {
  size_t n = 2 + (d.alias_only ? 0 : topic_of(m, d).size()) + m.payload.size();
  if (d.qos > 0) n += 2;
  if (mqtt::is_v5(v)) n += mqtt::varint_size(static_cast<uint32_t>(props)) + props;
  return n;
}

std::string_view topic_of(const Message& m, const Delivery& d) {
  return d.topic.empty() ? std::string_view(m.topic) : d.topic;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

}  // namespace

size_t publish_packet_size(mqtt::Version v, const Message& m, const Delivery& d) {
  size_t props = mqtt::is_v5(v) ? props_body_size(m, d) : 0;
  size_t rl = remaining_length(v, m, d, props);
  return 1 + mqtt::varint_size(static_cast<uint32_t>(rl)) + rl;
}

void encode_publish(mqtt::Version v, const Message& m, const Delivery& d, std::string& out) {
  size_t props = mqtt::is_v5(v) ? props_body_size(m, d) : 0;
  size_t rl = remaining_length(v, m, d, props);
  out.reserve(out.size() + 1 + 4 + rl);
  uint8_t first = static_cast<uint8_t>(static_cast<uint8_t>(mqtt::PacketType::Publish) << 4);
  if (d.dup && d.qos > 0) first |= 0x08;  // DUP is 0 for QoS 0 [MQTT-3.3.1-2]
  first |= static_cast<uint8_t>(d.qos << 1);
  if (d.retain) first |= 0x01;
  out.push_back(static_cast<char>(first));
  mqtt::put_varint(out, static_cast<uint32_t>(rl));
  if (d.alias_only) {
    put_u16(out, 0);
  } else {
    const std::string_view topic = topic_of(m, d);
    put_u16(out, static_cast<uint16_t>(topic.size()));
    out.append(topic);
  }
  if (d.qos > 0) put_u16(out, d.packet_id);
  if (mqtt::is_v5(v)) {
    mqtt::put_varint(out, static_cast<uint32_t>(props));
    if (d.topic_alias != 0) {
      out.push_back(static_cast<char>(mqtt::PropertyId::TopicAlias));
      put_u16(out, d.topic_alias);
    }
    if (d.expiry_remaining_s != 0) {
      out.push_back(static_cast<char>(mqtt::PropertyId::MessageExpiryInterval));
      uint32_t e = d.expiry_remaining_s;
      out.push_back(static_cast<char>(e >> 24));
      out.push_back(static_cast<char>((e >> 16) & 0xFF));
      out.push_back(static_cast<char>((e >> 8) & 0xFF));
      out.push_back(static_cast<char>(e & 0xFF));
    }
    for (uint32_t id : d.subscription_ids) {
      out.push_back(static_cast<char>(mqtt::PropertyId::SubscriptionIdentifier));
      mqtt::put_varint(out, id);
    }
    out.append(m.forward_props);
  }
  out.append(m.payload);
}

void OutboundAliases::apply(const std::string& topic, Delivery& d, bool may_assign) {
  if (auto it = by_topic_.find(topic); it != by_topic_.end()) {
    d.topic_alias = it->second;
    d.alias_only = true;
    return;
  }
  if (!may_assign || by_topic_.size() >= max_) return;
  const auto alias = static_cast<uint16_t>(by_topic_.size() + 1);  // 1..max [MQTT-3.3.2-8]
  by_topic_.emplace(topic, alias);
  d.topic_alias = alias;
  d.alias_only = false;
}

}  // namespace harbor::broker
