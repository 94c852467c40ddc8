// Basic MQTT enums shared by every layer: versions, packet types, QoS, reason codes.
// Thread-agnostic value types.
#pragma once

#include <cstdint>
#include <string_view>

namespace harbor::mqtt {

// Protocol level byte of CONNECT [MQTT-3.1.2-2].
enum class Version : uint8_t { v31 = 3, v311 = 4, v5 = 5 };

inline bool is_v5(Version v) { return v == Version::v5; }

enum class PacketType : uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  Auth = 15,
};

std::string_view to_string(PacketType t);

using QoS = uint8_t;  // 0, 1 or 2

// MQTT 5.0 reason codes (section 2.4). 3.1.1 return codes are mapped by the encoder.
enum class ReasonCode : uint8_t {
  Success = 0x00,  // also NormalDisconnection, GrantedQoS0
  GrantedQoS1 = 0x01,
  GrantedQoS2 = 0x02,
  DisconnectWithWill = 0x04,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  Banned = 0x8A,
  ServerShuttingDown = 0x8B,
  BadAuthenticationMethod = 0x8C,
  KeepAliveTimeout = 0x8D,
  SessionTakenOver = 0x8E,
  TopicFilterInvalid = 0x8F,
  TopicNameInvalid = 0x90,
  PacketIdentifierInUse = 0x91,
  PacketIdentifierNotFound = 0x92,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  MessageRateTooHigh = 0x96,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  PayloadFormatInvalid = 0x99,
  RetainNotSupported = 0x9A,
  QoSNotSupported = 0x9B,
  UseAnotherServer = 0x9C,
  ServerMoved = 0x9D,
  SharedSubscriptionsNotSupported = 0x9E,
  ConnectionRateExceeded = 0x9F,
  MaximumConnectTime = 0xA0,
  SubscriptionIdentifiersNotSupported = 0xA1,
  WildcardSubscriptionsNotSupported = 0xA2,
};

std::string_view to_string(ReasonCode rc);

inline bool is_error(ReasonCode rc) { return static_cast<uint8_t>(rc) >= 0x80; }

// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3).
enum class ConnectReturnCode311 : uint8_t {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUserNameOrPassword = 4,
  NotAuthorized = 5,
};

// Maps a 5.0 CONNACK reason code to the closest 3.1.1 return code.
ConnectReturnCode311 to_311_connack(ReasonCode rc);

}  // namespace harbor::mqtt
