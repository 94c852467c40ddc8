#include "tools/property_options.hpp"

#include <array>
#include <charconv>
#include <limits>

#include "mqtt/topic.hpp"

namespace harbor::tools {

namespace {

// Every packet name mosquitto's -D recognises. The tools send only some of them; the others
// are recognised so that the error says "not supported" rather than "invalid command".
enum class Cmd : uint8_t { Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Unsubscribe,
                           Disconnect, Auth, Will };

constexpr uint32_t bit(Cmd c) { return 1u << static_cast<uint8_t>(c); }
constexpr uint32_t kAcks = bit(Cmd::Puback) | bit(Cmd::Pubrec) | bit(Cmd::Pubrel) | bit(Cmd::Pubcomp);
constexpr uint32_t kMessage = bit(Cmd::Publish) | bit(Cmd::Will);
constexpr uint32_t kAll = (1u << 12) - 1;

struct CommandName {
  std::string_view name;
  Cmd cmd;
};
constexpr std::array<CommandName, 12> kCommands{{
    {"connect", Cmd::Connect},
    {"connack", Cmd::Connack},
    {"publish", Cmd::Publish},
    {"puback", Cmd::Puback},
    {"pubrec", Cmd::Pubrec},
    {"pubrel", Cmd::Pubrel},
    {"pubcomp", Cmd::Pubcomp},
    {"subscribe", Cmd::Subscribe},
    {"unsubscribe", Cmd::Unsubscribe},
    {"disconnect", Cmd::Disconnect},
    {"auth", Cmd::Auth},
    {"will", Cmd::Will},
}};

enum class Kind : uint8_t { Flag, U16, U16NonZero, U32, U32NonZero, VarInt, Utf8, Binary, Pair };

struct PropertySpec {
  std::string_view name;
  mqtt::PropertyId id;
  Kind kind;
  uint32_t allowed;  // the packets that may carry it: the table of MQTT 5.0 section 2.2.2.2
};

using mqtt::PropertyId;
constexpr std::array<PropertySpec, 27> kProperties{{
    {"payload-format-indicator", PropertyId::PayloadFormatIndicator, Kind::Flag, kMessage},
    {"message-expiry-interval", PropertyId::MessageExpiryInterval, Kind::U32, kMessage},
    {"content-type", PropertyId::ContentType, Kind::Utf8, kMessage},
    {"response-topic", PropertyId::ResponseTopic, Kind::Utf8, kMessage},
    {"correlation-data", PropertyId::CorrelationData, Kind::Binary, kMessage},
    {"subscription-identifier", PropertyId::SubscriptionIdentifier, Kind::VarInt,
     bit(Cmd::Publish) | bit(Cmd::Subscribe)},
    {"session-expiry-interval", PropertyId::SessionExpiryInterval, Kind::U32,
     bit(Cmd::Connect) | bit(Cmd::Connack) | bit(Cmd::Disconnect)},
    {"assigned-client-identifier", PropertyId::AssignedClientIdentifier, Kind::Utf8, bit(Cmd::Connack)},
    {"server-keep-alive", PropertyId::ServerKeepAlive, Kind::U16, bit(Cmd::Connack)},
    {"authentication-method", PropertyId::AuthenticationMethod, Kind::Utf8,
     bit(Cmd::Connect) | bit(Cmd::Connack) | bit(Cmd::Auth)},
    {"authentication-data", PropertyId::AuthenticationData, Kind::Binary,
     bit(Cmd::Connect) | bit(Cmd::Connack) | bit(Cmd::Auth)},
    {"request-problem-information", PropertyId::RequestProblemInformation, Kind::Flag, bit(Cmd::Connect)},
    {"will-delay-interval", PropertyId::WillDelayInterval, Kind::U32, bit(Cmd::Will)},
    {"request-response-information", PropertyId::RequestResponseInformation, Kind::Flag, bit(Cmd::Connect)},
    {"response-information", PropertyId::ResponseInformation, Kind::Utf8, bit(Cmd::Connack)},
    {"server-reference", PropertyId::ServerReference, Kind::Utf8, bit(Cmd::Connack) | bit(Cmd::Disconnect)},
    {"reason-string", PropertyId::ReasonString, Kind::Utf8,
     bit(Cmd::Connack) | kAcks | bit(Cmd::Disconnect) | bit(Cmd::Auth)},
    {"receive-maximum", PropertyId::ReceiveMaximum, Kind::U16NonZero, bit(Cmd::Connect) | bit(Cmd::Connack)},
    {"topic-alias-maximum", PropertyId::TopicAliasMaximum, Kind::U16, bit(Cmd::Connect) | bit(Cmd::Connack)},
    {"topic-alias", PropertyId::TopicAlias, Kind::U16NonZero, bit(Cmd::Publish)},
    {"maximum-qos", PropertyId::MaximumQoS, Kind::Flag, bit(Cmd::Connack)},
    {"retain-available", PropertyId::RetainAvailable, Kind::Flag, bit(Cmd::Connack)},
    {"user-property", PropertyId::UserProperty, Kind::Pair, kAll},
    {"maximum-packet-size", PropertyId::MaximumPacketSize, Kind::U32NonZero,
     bit(Cmd::Connect) | bit(Cmd::Connack)},
    {"wildcard-subscription-available", PropertyId::WildcardSubscriptionAvailable, Kind::Flag, bit(Cmd::Connack)},
    {"subscription-identifier-available", PropertyId::SubscriptionIdentifierAvailable, Kind::Flag,
     bit(Cmd::Connack)},
    {"shared-subscription-available", PropertyId::SharedSubscriptionAvailable, Kind::Flag, bit(Cmd::Connack)},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

const CommandName* find_command(std::string_view text) {
  for (const auto& c : kCommands)
    if (iequals(text, c.name)) return &c;
  return nullptr;
}

const PropertySpec* find_property(std::string_view text) {
  for (const auto& p : kProperties)
    if (iequals(text, p.name)) return &p;
  return nullptr;
}

// Which of the packets a -D names the tools can send with properties of this kind. The
// spec lets a client send a subscription identifier only in SUBSCRIBE [MQTT-3.3.4-6], and
// SUBSCRIBE carries only that and user properties; the tools never send AUTH or acks
// with properties, nor CONNACK at all.
bool supported(Cmd cmd, PropertyId id) {
  switch (cmd) {
    case Cmd::Connect:
    case Cmd::Unsubscribe:
    case Cmd::Disconnect:
    case Cmd::Will:
      return true;
    case Cmd::Publish:
      return id != PropertyId::SubscriptionIdentifier;
    case Cmd::Subscribe:
      return id == PropertyId::SubscriptionIdentifier || id == PropertyId::UserProperty;
    default:
      return false;
  }
}

std::optional<PropertyCommand> tool_command(Cmd c) {
  switch (c) {
    case Cmd::Connect: return PropertyCommand::Connect;
    case Cmd::Publish: return PropertyCommand::Publish;
    case Cmd::Subscribe: return PropertyCommand::Subscribe;
    case Cmd::Unsubscribe: return PropertyCommand::Unsubscribe;
    case Cmd::Disconnect: return PropertyCommand::Disconnect;
    case Cmd::Will: return PropertyCommand::Will;
    default: return std::nullopt;
  }
}

std::string_view packet_name(PropertyCommand c) {
  switch (c) {
    case PropertyCommand::Connect: return "CONNECT";
    case PropertyCommand::Publish: return "PUBLISH";
    case PropertyCommand::Subscribe: return "SUBSCRIBE";
    case PropertyCommand::Unsubscribe: return "UNSUBSCRIBE";
    case PropertyCommand::Disconnect: return "DISCONNECT";
    case PropertyCommand::Will: return "Will";
  }
  return "";
}

tl::unexpected<std::string> fail(std::string text) { return tl::unexpected(std::move(text)); }

// The numeric value of a -D: decimal digits only (mosquitto's atol() would read "abc" as 0).
tl::expected<uint64_t, std::string> parse_number(const std::string& value, const PropertySpec& spec,
                                                 uint64_t max) {
  const char* first = value.data();
  const char* last = first + value.size();
  bool negative = first != last && *first == '-';
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(first + (negative ? 1 : 0), last, n);
  if (value.empty() || end != last || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
      end == first + (negative ? 1 : 0))
    return fail("Property value (" + value + ") is not a number for property " + std::string(spec.name) + ".");
  if (negative || ec == std::errc::result_out_of_range || n > max)
    return fail("Property value (" + value + ") out of range for property " + std::string(spec.name) + ".");
  return n;
}

template <class T>
tl::expected<void, std::string> set_once(std::optional<T>& field, T value, const PropertySpec& spec,
                                         PropertyCommand cmd) {
  if (field)
    return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec.name) +
                " given more than once.");
  field = std::move(value);
  return {};
}

tl::expected<void, std::string> check_string(const std::string& s, const PropertySpec& spec, bool utf8) {
  if (s.size() > 65535)
    return fail("Property value for " + std::string(spec.name) + " is longer than 65535 bytes.");
  if (utf8 && !mqtt::valid_utf8(s))
    return fail("Property value for " + std::string(spec.name) + " is not valid UTF-8.");
  return {};
}

}  // namespace

mqtt::Properties& PacketProperties::of(PropertyCommand c) {
  switch (c) {
    case PropertyCommand::Connect: return connect;
    case PropertyCommand::Publish: return publish;
    case PropertyCommand::Subscribe: return subscribe;
    case PropertyCommand::Unsubscribe: return unsubscribe;
    case PropertyCommand::Disconnect: return disconnect;
    case PropertyCommand::Will: return will;
  }
  return connect;
}

const mqtt::Properties& PacketProperties::of(PropertyCommand c) const {
  return const_cast<PacketProperties*>(this)->of(c);
}

tl::expected<void, std::string> add_property_argument(const std::vector<std::string>& args,
                                                      PacketProperties& out) {
  const std::string not_enough = "--property argument given but not enough arguments specified.";
  if (args.size() < 3) return fail(not_enough);
  const CommandName* command = find_command(args[0]);
  if (!command) return fail("Invalid command given in --property argument.");
  const PropertySpec* spec = find_property(args[1]);
  if (!spec) return fail("Invalid property name given in --property argument.");
  if (!(spec->allowed & bit(command->cmd)))
    return fail(args[1] + " property not allowed for " + args[0] + " in --property argument.");
  if (!supported(command->cmd, spec->id))
    return fail(args[1] + " property not supported for " + args[0] + " in --property argument.");
  const size_t wanted = spec->kind == Kind::Pair ? 4 : 3;
  if (args.size() < wanted) return fail(not_enough);
  if (args.size() > wanted)
    return fail("--property argument given with too many arguments: '" + args[wanted] + "'.");

  const PropertyCommand cmd = *tool_command(command->cmd);
  mqtt::Properties& props = out.of(cmd);
  out.any = true;
  const std::string& value = args[2];
  switch (spec->kind) {
    case Kind::Pair: {
      if (auto r = check_string(args[2], *spec, true); !r) return r;
      if (auto r = check_string(args[3], *spec, true); !r) return r;
      props.user_properties.emplace_back(args[2], args[3]);
      return {};
    }
    case Kind::Utf8:
    case Kind::Binary: {
      if (auto r = check_string(value, *spec, spec->kind == Kind::Utf8); !r) return r;
      std::optional<std::string>* field = nullptr;
      switch (spec->id) {
        case PropertyId::ContentType: field = &props.content_type; break;
        case PropertyId::ResponseTopic: field = &props.response_topic; break;
        case PropertyId::CorrelationData: field = &props.correlation_data; break;
        case PropertyId::AuthenticationMethod: field = &props.authentication_method; break;
        case PropertyId::AuthenticationData: field = &props.authentication_data; break;
        case PropertyId::ServerReference: field = &props.server_reference; break;
        case PropertyId::ReasonString: field = &props.reason_string; break;
        default: return fail("internal: no field for " + std::string(spec->name));
      }
      if (spec->id == PropertyId::ResponseTopic && !mqtt::valid_topic_name(value))
        return fail("Property value for response-topic must be a topic name without wildcards.");
      return set_once(*field, value, *spec, cmd);
    }
    case Kind::Flag: {
      auto n = parse_number(value, *spec, 255);
      if (!n) return tl::unexpected(n.error());
      if (spec->kind == Kind::Flag && *n > 1)
        return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec->name) +
                    " must be 0 or 1.");
      std::optional<uint8_t>* field = nullptr;
      switch (spec->id) {
        case PropertyId::PayloadFormatIndicator: field = &props.payload_format_indicator; break;
        case PropertyId::RequestProblemInformation: field = &props.request_problem_information; break;
        case PropertyId::RequestResponseInformation: field = &props.request_response_information; break;
        default: return fail("internal: no field for " + std::string(spec->name));
      }
      return set_once(*field, static_cast<uint8_t>(*n), *spec, cmd);
    }
    case Kind::U16:
    case Kind::U16NonZero: {
      auto n = parse_number(value, *spec, 65535);
      if (!n) return tl::unexpected(n.error());
      if (spec->kind == Kind::U16NonZero && *n == 0)
        return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec->name) +
                    " must not be 0.");
      std::optional<uint16_t>* field = nullptr;
      switch (spec->id) {
        case PropertyId::ReceiveMaximum: field = &props.receive_maximum; break;
        case PropertyId::TopicAliasMaximum: field = &props.topic_alias_maximum; break;
        case PropertyId::TopicAlias: field = &props.topic_alias; break;
        default: return fail("internal: no field for " + std::string(spec->name));
      }
      return set_once(*field, static_cast<uint16_t>(*n), *spec, cmd);
    }
    case Kind::U32:
    case Kind::U32NonZero: {
      auto n = parse_number(value, *spec, std::numeric_limits<uint32_t>::max());
      if (!n) return tl::unexpected(n.error());
      if (spec->kind == Kind::U32NonZero && *n == 0)
        return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec->name) +
                    " must not be 0.");
      std::optional<uint32_t>* field = nullptr;
      switch (spec->id) {
        case PropertyId::MessageExpiryInterval: field = &props.message_expiry_interval; break;
        case PropertyId::SessionExpiryInterval: field = &props.session_expiry_interval; break;
        case PropertyId::WillDelayInterval: field = &props.will_delay_interval; break;
        case PropertyId::MaximumPacketSize: field = &props.maximum_packet_size; break;
        default: return fail("internal: no field for " + std::string(spec->name));
      }
      return set_once(*field, static_cast<uint32_t>(*n), *spec, cmd);
    }
    case Kind::VarInt: {
      // Subscription Identifier: 1 .. 268,435,455 [MQTT-3.8.2.1.2].
      auto n = parse_number(value, *spec, 268'435'455);
      if (!n) return tl::unexpected(n.error());
      if (*n == 0)
        return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec->name) +
                    " must not be 0.");
      if (!props.subscription_identifiers.empty())
        return fail("Error in " + std::string(packet_name(cmd)) + " properties: " + std::string(spec->name) +
                    " given more than once.");
      props.subscription_identifiers.push_back(static_cast<uint32_t>(*n));
      return {};
    }
  }
  return {};
}

tl::expected<void, std::string> merge_properties(const mqtt::Properties& from, mqtt::Properties& into,
                                                 std::string_view packet) {
  std::string clash;
  auto take = [&](const auto& src, auto& dst, std::string_view name) {
    if (!src) return;
    if (dst) {
      if (clash.empty()) clash = name;
      return;
    }
    dst = src;
  };
  take(from.payload_format_indicator, into.payload_format_indicator, "payload-format-indicator");
  take(from.message_expiry_interval, into.message_expiry_interval, "message-expiry-interval");
  take(from.content_type, into.content_type, "content-type");
  take(from.response_topic, into.response_topic, "response-topic");
  take(from.correlation_data, into.correlation_data, "correlation-data");
  take(from.session_expiry_interval, into.session_expiry_interval, "session-expiry-interval");
  take(from.authentication_method, into.authentication_method, "authentication-method");
  take(from.authentication_data, into.authentication_data, "authentication-data");
  take(from.request_problem_information, into.request_problem_information, "request-problem-information");
  take(from.will_delay_interval, into.will_delay_interval, "will-delay-interval");
  take(from.request_response_information, into.request_response_information, "request-response-information");
  take(from.server_reference, into.server_reference, "server-reference");
  take(from.reason_string, into.reason_string, "reason-string");
  take(from.receive_maximum, into.receive_maximum, "receive-maximum");
  take(from.topic_alias_maximum, into.topic_alias_maximum, "topic-alias-maximum");
  take(from.topic_alias, into.topic_alias, "topic-alias");
  take(from.maximum_packet_size, into.maximum_packet_size, "maximum-packet-size");
  if (!from.subscription_identifiers.empty()) {
    if (!into.subscription_identifiers.empty() && clash.empty()) clash = "subscription-identifier";
    if (into.subscription_identifiers.empty()) into.subscription_identifiers = from.subscription_identifiers;
  }
  if (!clash.empty())
    return fail("Error in " + std::string(packet) + " properties: " + clash +
                " given both by -D and by its own option.");
  into.user_properties.insert(into.user_properties.begin(), from.user_properties.begin(),
                              from.user_properties.end());
  return {};
}

}  // namespace harbor::tools
