// Representative valid packets for every packet type and version, shared by the codec,
// decoder and fuzz-corpus tests. Pure data.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mqtt/codec.hpp"

namespace harbor::mqtt::testing {

inline std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

inline std::string name_of(Version v) {
  switch (v) {
    case Version::v31:
      return "v31";
    case Version::v311:
      return "v311";
    case Version::v5:
      return "v5";
  }
  return "v?";
}

struct Sample {
  std::string name;
  Packet packet;
};

// Every packet a client or server may send in `v`, with every field that version knows
// filled in (all properties for 5.0), plus large PUBLISHes whose remaining length takes two
// and three bytes.
inline std::vector<Sample> sample_packets(Version v) {
  const bool v5 = is_v5(v);
  std::vector<Sample> out;

  Connect minimal;
  minimal.version = v;
  minimal.protocol_name = v == Version::v31 ? "MQIsdp" : "MQTT";
  minimal.client_id = "c1";
  out.push_back({"connect_minimal", minimal});

  Connect full = minimal;
  full.clean_start = false;
  full.keep_alive = 0xBEEF;
  full.client_id = "client-\xC3\xA9t\xC3\xA9";  // UTF-8 "été"
  full.username = "user";
  full.password = std::string("pa\0ss", 5);
  Will will;
  will.topic = "last/will";
  will.payload = std::string("\x00\x01\xFF", 3);
  will.qos = 2;
  will.retain = true;
  if (v5) {
    will.props.will_delay_interval = 30;
    will.props.payload_format_indicator = 1;
    will.props.message_expiry_interval = 3600;
    will.props.content_type = "text/plain";
    will.props.response_topic = "reply/here";
    will.props.correlation_data = std::string("\x01\x02", 2);
    will.props.user_properties = {{"wk", "wv"}};
    full.props.session_expiry_interval = 0xFFFFFFFF;
    full.props.receive_maximum = 100;
    full.props.maximum_packet_size = 1 << 20;
    full.props.topic_alias_maximum = 10;
    full.props.request_response_information = 1;
    full.props.request_problem_information = 0;
    full.props.user_properties = {{"k", "v"}, {"k", "v2"}};
    full.props.authentication_method = "SCRAM-SHA-1";
    full.props.authentication_data = std::string("\x00\xAA", 2);
  }
  full.will = will;
  out.push_back({"connect_full", full});

  Connack connack;
  connack.session_present = v != Version::v31;
  if (v5) {
    connack.props.session_expiry_interval = 120;
    connack.props.receive_maximum = 20;
    connack.props.maximum_qos = 1;
    connack.props.retain_available = 0;
    connack.props.maximum_packet_size = 65536;
    connack.props.assigned_client_identifier = "auto-1";
    connack.props.topic_alias_maximum = 5;
    connack.props.reason_string = "welcome";
    connack.props.user_properties = {{"a", "b"}};
    connack.props.wildcard_subscription_available = 1;
    connack.props.subscription_identifier_available = 1;
    connack.props.shared_subscription_available = 0;
    connack.props.server_keep_alive = 30;
    connack.props.response_information = "resp/";
    connack.props.server_reference = "other:1883";
    connack.props.authentication_method = "SCRAM-SHA-1";
    connack.props.authentication_data = "xyz";
  }
  out.push_back({"connack", connack});
  Connack refused;
  refused.reason = ReasonCode::NotAuthorized;
  out.push_back({"connack_refused", refused});

  Publish pub0;
  pub0.topic = "a/b/c";
  pub0.payload = "hello";
  out.push_back({"publish_qos0", pub0});

  Publish pub1;
  pub1.qos = 1;
  pub1.retain = true;
  pub1.packet_id = 1;
  pub1.topic = "sensors/temp";
  pub1.payload = "";
  if (v5) {
    pub1.props.payload_format_indicator = 1;
    pub1.props.message_expiry_interval = 60;
    pub1.props.content_type = "application/json";
    pub1.props.response_topic = "reply/to";
    pub1.props.correlation_data = "corr";
    pub1.props.subscription_identifiers = {1, 268'435'455, 200};
    pub1.props.topic_alias = 3;
    pub1.props.user_properties = {{"x", "1"}, {"y", "2"}};
  }
  out.push_back({"publish_qos1_props", pub1});

  Publish pub2;
  pub2.qos = 2;
  pub2.dup = true;
  pub2.packet_id = 0xFFFF;
  pub2.topic = "big/two-byte-length";
  pub2.payload.assign(300, 'x');
  out.push_back({"publish_qos2_dup_300", pub2});

  Publish big;
  big.qos = 1;
  big.packet_id = 7;
  big.topic = "big/three-byte-length";
  big.payload.resize(20'000);
  for (size_t i = 0; i < big.payload.size(); ++i) big.payload[i] = static_cast<char>(i * 31);
  out.push_back({"publish_20k", big});

  for (PacketType t :
       {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
    std::string base(to_string(t));
    for (auto& c : base) c = static_cast<char>(std::tolower(c));
    PubAck plain;
    plain.type = t;
    plain.packet_id = 42;
    out.push_back({base, plain});
    if (v5) {
      PubAck coded = plain;
      coded.reason = (t == PacketType::Pubrel || t == PacketType::Pubcomp)
                         ? ReasonCode::PacketIdentifierNotFound
                         : ReasonCode::NoMatchingSubscribers;
      out.push_back({base + "_reason", coded});
      PubAck props = coded;
      props.props.reason_string = "why";
      props.props.user_properties = {{"u", "p"}};
      out.push_back({base + "_props", props});
      PubAck success_props = plain;
      success_props.props.reason_string = "ok";
      out.push_back({base + "_success_props", success_props});
    }
  }

  Subscribe sub;
  sub.packet_id = 10;
  sub.topics.push_back({"a/+/c", 0});
  sub.topics.push_back({"sport/#", 1});
  sub.topics.push_back({"$share/g/x/y", 2});
  if (v5) {
    sub.props.subscription_identifiers = {77};
    sub.props.user_properties = {{"s", "t"}};
    sub.topics.push_back({"nl/rap", 1, true, true, 2});
    sub.topics.push_back({"rh1", 0, false, false, 1});
  }
  out.push_back({"subscribe", sub});

  Suback suback;
  suback.packet_id = 10;
  suback.reasons = {ReasonCode::Success, ReasonCode::GrantedQoS1, ReasonCode::GrantedQoS2,
                    ReasonCode::UnspecifiedError};
  if (v5) {
    suback.reasons.push_back(ReasonCode::TopicFilterInvalid);
    suback.reasons.push_back(ReasonCode::SharedSubscriptionsNotSupported);
    suback.props.reason_string = "partly";
    suback.props.user_properties = {{"q", "r"}};
  }
  out.push_back({"suback", suback});

  Unsubscribe unsub;
  unsub.packet_id = 11;
  unsub.filters = {"a/+/c", "sport/#"};
  if (v5) unsub.props.user_properties = {{"uu", "vv"}};
  out.push_back({"unsubscribe", unsub});

  Unsuback unsuback;
  unsuback.packet_id = 11;
  if (v5) {
    unsuback.reasons = {ReasonCode::Success, ReasonCode::NoSubscriptionExisted};
    unsuback.props.reason_string = "done";
  }
  out.push_back({"unsuback", unsuback});

  out.push_back({"pingreq", Pingreq{}});
  out.push_back({"pingresp", Pingresp{}});
  out.push_back({"disconnect", Disconnect{}});
  if (v5) {
    Disconnect with_will;
    with_will.reason = ReasonCode::DisconnectWithWill;
    out.push_back({"disconnect_with_will", with_will});
    Disconnect full_disc;
    full_disc.reason = ReasonCode::ServerMoved;
    full_disc.props.session_expiry_interval = 0;
    full_disc.props.reason_string = "moved";
    full_disc.props.server_reference = "b:1883";
    full_disc.props.user_properties = {{"d", "e"}};
    out.push_back({"disconnect_props", full_disc});

    out.push_back({"auth_empty", Auth{}});
    Auth auth;
    auth.reason = ReasonCode::ContinueAuthentication;
    auth.props.authentication_method = "SCRAM-SHA-1";
    auth.props.authentication_data = std::string("\x00\x01", 2);
    auth.props.reason_string = "more";
    auth.props.user_properties = {{"a", "u"}};
    out.push_back({"auth", auth});
    Auth reauth;
    reauth.reason = ReasonCode::ReAuthenticate;
    out.push_back({"auth_reauth", reauth});
  }
  return out;
}

}  // namespace harbor::mqtt::testing
