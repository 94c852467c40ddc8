// Names for logs and the 5.0 → 3.1.1 CONNACK mapping.
#include "mqtt/types.hpp"

#include <type_traits>
#include <variant>

#include "mqtt/packets.hpp"

namespace harbor::mqtt {

std::string_view to_string(PacketType t) {
  switch (t) {
    case PacketType::Connect:
      return "CONNECT";
    case PacketType::Connack:
      return "CONNACK";
    case PacketType::Publish:
      return "PUBLISH";
    case PacketType::Puback:
      return "PUBACK";
    case PacketType::Pubrec:
      return "PUBREC";
    case PacketType::Pubrel:
      return "PUBREL";
    case PacketType::Pubcomp:
      return "PUBCOMP";
    case PacketType::Subscribe:
      return "SUBSCRIBE";
    case PacketType::Suback:
      return "SUBACK";
    case PacketType::Unsubscribe:
      return "UNSUBSCRIBE";
    case PacketType::Unsuback:
      return "UNSUBACK";
    case PacketType::Pingreq:
      return "PINGREQ";
    case PacketType::Pingresp:
      return "PINGRESP";
    case PacketType::Disconnect:
      return "DISCONNECT";
    case PacketType::Auth:
      return "AUTH";
  }
  return "UNKNOWN";
}

std::string_view to_string(ReasonCode rc) {
  switch (rc) {
    case ReasonCode::Success:
      return "Success";
    case ReasonCode::GrantedQoS1:
      return "Granted QoS 1";
    case ReasonCode::GrantedQoS2:
      return "Granted QoS 2";
    case ReasonCode::DisconnectWithWill:
      return "Disconnect with Will Message";
    case ReasonCode::NoMatchingSubscribers:
      return "No matching subscribers";
    case ReasonCode::NoSubscriptionExisted:
      return "No subscription existed";
    case ReasonCode::ContinueAuthentication:
      return "Continue authentication";
    case ReasonCode::ReAuthenticate:
      return "Re-authenticate";
    case ReasonCode::UnspecifiedError:
      return "Unspecified error";
    case ReasonCode::MalformedPacket:
      return "Malformed Packet";
    case ReasonCode::ProtocolError:
      return "Protocol Error";
    case ReasonCode::ImplementationSpecificError:
      return "Implementation specific error";
    case ReasonCode::UnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case ReasonCode::ClientIdentifierNotValid:
      return "Client Identifier not valid";
    case ReasonCode::BadUserNameOrPassword:
      return "Bad User Name or Password";
    case ReasonCode::NotAuthorized:
      return "Not authorized";
    case ReasonCode::ServerUnavailable:
      return "Server unavailable";
    case ReasonCode::ServerBusy:
      return "Server busy";
    case ReasonCode::Banned:
      return "Banned";
    case ReasonCode::ServerShuttingDown:
      return "Server shutting down";
    case ReasonCode::BadAuthenticationMethod:
      return "Bad authentication method";
    case ReasonCode::KeepAliveTimeout:
      return "Keep Alive timeout";
    case ReasonCode::SessionTakenOver:
      return "Session taken over";
    case ReasonCode::TopicFilterInvalid:
      return "Topic Filter invalid";
    case ReasonCode::TopicNameInvalid:
      return "Topic Name invalid";
    case ReasonCode::PacketIdentifierInUse:
      return "Packet Identifier in use";
    case ReasonCode::PacketIdentifierNotFound:
      return "Packet Identifier not found";
    case ReasonCode::ReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case ReasonCode::TopicAliasInvalid:
      return "Topic Alias invalid";
    case ReasonCode::PacketTooLarge:
      return "Packet too large";
    case ReasonCode::MessageRateTooHigh:
      return "Message rate too high";
    case ReasonCode::QuotaExceeded:
      return "Quota exceeded";
    case ReasonCode::AdministrativeAction:
      return "Administrative action";
    case ReasonCode::PayloadFormatInvalid:
      return "Payload format invalid";
    case ReasonCode::RetainNotSupported:
      return "Retain not supported";
    case ReasonCode::QoSNotSupported:
      return "QoS not supported";
    case ReasonCode::UseAnotherServer:
      return "Use another server";
    case ReasonCode::ServerMoved:
      return "Server moved";
    case ReasonCode::SharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case ReasonCode::ConnectionRateExceeded:
      return "Connection rate exceeded";
    case ReasonCode::MaximumConnectTime:
      return "Maximum connect time";
    case ReasonCode::SubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case ReasonCode::WildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
  }
  return "Unknown reason code";
}

// 3.1.1 has six return codes (section 3.2.2.3); every 5.0 failure is folded onto the one a
// 3.1.1 client understands best. Failures without a close match become "server unavailable",
// which a 3.1.1 client treats as transient.
ConnectReturnCode311 to_311_connack(ReasonCode rc) {
  switch (rc) {
    case ReasonCode::Success:
      return ConnectReturnCode311::Accepted;
    case ReasonCode::UnsupportedProtocolVersion:
      return ConnectReturnCode311::UnacceptableProtocolVersion;
    case ReasonCode::ClientIdentifierNotValid:
      return ConnectReturnCode311::IdentifierRejected;
    case ReasonCode::BadUserNameOrPassword:
    case ReasonCode::BadAuthenticationMethod:
      return ConnectReturnCode311::BadUserNameOrPassword;
    case ReasonCode::NotAuthorized:
    case ReasonCode::Banned:
      return ConnectReturnCode311::NotAuthorized;
    default:
      return ConnectReturnCode311::ServerUnavailable;
  }
}

PacketType packet_type(const Packet& p) {
  return std::visit(
      [](const auto& pk) -> PacketType {
        using T = std::decay_t<decltype(pk)>;
        if constexpr (std::is_same_v<T, Connect>)
          return PacketType::Connect;
        else if constexpr (std::is_same_v<T, Connack>)
          return PacketType::Connack;
        else if constexpr (std::is_same_v<T, Publish>)
          return PacketType::Publish;
        else if constexpr (std::is_same_v<T, PubAck>)
          return pk.type;
        else if constexpr (std::is_same_v<T, Subscribe>)
          return PacketType::Subscribe;
        else if constexpr (std::is_same_v<T, Suback>)
          return PacketType::Suback;
        else if constexpr (std::is_same_v<T, Unsubscribe>)
          return PacketType::Unsubscribe;
        else if constexpr (std::is_same_v<T, Unsuback>)
          return PacketType::Unsuback;
        else if constexpr (std::is_same_v<T, Pingreq>)
          return PacketType::Pingreq;
        else if constexpr (std::is_same_v<T, Pingresp>)
          return PacketType::Pingresp;
        else if constexpr (std::is_same_v<T, Disconnect>)
          return PacketType::Disconnect;
        else
          return PacketType::Auth;
      },
      p);
}

}  // namespace harbor::mqtt
