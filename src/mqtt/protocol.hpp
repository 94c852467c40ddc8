// Per-connection protocol state machines, sans-I/O: bytes in, validated packets out;
// packets in, bytes out. One owner thread each (the connection's shard).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <memory>
#include <unordered_map>

#include "mqtt/codec.hpp"

namespace harbor::mqtt {

enum class ProtocolPhase : uint8_t {
  AwaitingConnect,  // server: nothing received yet / client: CONNECT sent, awaiting CONNACK
  Connected,
  Closed,  // after an error or DISCONNECT; next() yields nothing more
};

// Server side of one connection.
// Enforces: the first packet is CONNECT [MQTT-3.1.0-1]; a second CONNECT is a protocol
// error [MQTT-3.1.0-2]; only client-to-server packet types; inbound topic aliases resolved
// (Publish.topic is always filled in on output; alias 0 or above the maximum →
// TopicAliasInvalid [MQTT-3.3.2-8], [MQTT-3.3.2-9]; unknown alias with empty topic →
// ProtocolError); the maximum packet size.
// The Topic Alias property of an inbound PUBLISH is removed once resolved: aliases belong to
// one hop and must never be forwarded.
class ServerProtocol {
 public:
  struct Limits {
    uint32_t max_packet_size = kMaxRemainingLength + 5;
    uint16_t max_topic_alias = 0;  // what the server advertises in CONNACK (5.0)
    // Most User Properties in one packet (mqtt.property_size); beyond it the packet is
    // refused with ImplementationSpecificError (5.0; 3.1.1 has no properties).
    uint32_t max_user_properties = 0xFFFFFFFF;
  };
  explicit ServerProtocol(Limits limits);

  std::span<uint8_t> prepare(size_t min_bytes) { return decoder_.prepare(min_bytes); }
  void commit(size_t n) { decoder_.commit(n); }
  void feed(std::string_view bytes) { decoder_.feed(bytes); }
  // Input buffered and not yet returned as packets; the buffer's allocated size.
  size_t buffered() const { return decoder_.buffered(); }
  size_t reserved() const { return decoder_.reserved(); }
  // Frees the input buffer if nothing is buffered (an idle connection's footprint).
  void release_buffer() { decoder_.release_if_empty(); }

  // The next validated packet, std::nullopt when more bytes are needed, or the violation.
  // After an error the phase is Closed.
  Result<std::optional<Packet>> next();

  // Appends `p` encoded in the connection's version.
  void encode(const Packet& p, std::string& out) const { mqtt::encode(p, version_, out); }

  Version version() const { return version_; }
  ProtocolPhase phase() const { return phase_; }
  void close() { phase_ = ProtocolPhase::Closed; }

 private:
  Result<std::optional<Packet>> violation(ReasonCode rc, std::string message);

  Decoder decoder_;
  Limits limits_;
  Version version_ = Version::v311;
  ProtocolPhase phase_ = ProtocolPhase::AwaitingConnect;
  // Allocated by the first PUBLISH with a Topic Alias (most connections never use one).
  std::unique_ptr<std::unordered_map<uint16_t, std::string>> inbound_aliases_;
};

// Client side of one connection (tools and bridges).
// Enforces: CONNACK first; only server-to-client packet types; inbound topic aliases.
class ClientProtocol {
 public:
  explicit ClientProtocol(Version v, uint32_t max_packet_size = kMaxRemainingLength + 5);

  std::span<uint8_t> prepare(size_t min_bytes) { return decoder_.prepare(min_bytes); }
  void commit(size_t n) { decoder_.commit(n); }
  void feed(std::string_view bytes) { decoder_.feed(bytes); }
  // Input buffered and not yet returned as packets; the buffer's allocated size.
  size_t buffered() const { return decoder_.buffered(); }
  size_t reserved() const { return decoder_.reserved(); }
  // Frees the input buffer if nothing is buffered (an idle connection's footprint).
  void release_buffer() { decoder_.release_if_empty(); }

  Result<std::optional<Packet>> next();
  void encode(const Packet& p, std::string& out) const { mqtt::encode(p, version_, out); }

  Version version() const { return version_; }
  ProtocolPhase phase() const { return phase_; }

  // Topic Alias Maximum this client advertised in CONNECT (5.0). Inbound aliases above it
  // are TopicAliasInvalid; until set, any alias 1..65535 is accepted.
  void set_max_topic_alias(uint16_t n) { max_topic_alias_ = n; }

 private:
  Result<std::optional<Packet>> violation(ReasonCode rc, std::string message);

  Decoder decoder_;
  Version version_;
  ProtocolPhase phase_ = ProtocolPhase::AwaitingConnect;
  std::unordered_map<uint16_t, std::string> inbound_aliases_;
  uint16_t max_topic_alias_ = 0xFFFF;
};

}  // namespace harbor::mqtt
