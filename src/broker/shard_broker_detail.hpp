// Internals shared by the files of ShardBroker (shard_broker.cpp, session_lifecycle.cpp,
// inbound_publish.cpp, routing.cpp, outbound_delivery.cpp, subscriptions.cpp,
// sweep_restore.cpp): the acknowledgement tracker, the flow-control bounds and small helpers.
// Included by those files only.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>

#include "broker/publish_encoder.hpp"
#include "broker/shard_broker.hpp"
#include "mqtt/topic.hpp"

namespace harbor::broker {

using mqtt::ReasonCode;
using mqtt::Version;

struct AckWaiter {
  unsigned origin_shard = 0;
  uint64_t link_id = 0;
  uint16_t packet_id = 0;
  mqtt::QoS qos = 0;
  SessionId session = 0;
  std::atomic<uint64_t> max_seq{0};
  std::atomic<bool> refused{false};
  bool no_subscribers = false;  // set by on_publish (whose own part is open) after routing
  // Parts not finished yet: on_publish's own, plus one per delivery handed to another shard.
  std::atomic<uint32_t> parts{1};

  void note(uint64_t seq) {
    uint64_t cur = max_seq.load(std::memory_order_relaxed);
    while (seq > cur && !max_seq.compare_exchange_weak(cur, seq, std::memory_order_relaxed)) {
    }
  }
  void add_part() { parts.fetch_add(1, std::memory_order_relaxed); }
  // True for the one caller that finishes the last part: it releases the acknowledgement
  // (ShardBroker::finish_ack_part). The acquire pairs with the other parts' release, so
  // their notes are seen.
  bool finish_part() { return parts.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  AckRelease release() const {
    return AckRelease{link_id, packet_id, qos, max_seq.load(std::memory_order_relaxed), session,
                      refused.load(std::memory_order_relaxed), no_subscribers};
  }
};

namespace detail {

// Flow control bounds (docs/architecture.md "Flow control"); link.hpp has the output ones.
// QoS 0 output waiting for a stuck receiver beyond this is dropped (counted, logged once);
// for a receiver that still drains, only beyond kQos0HardBytes (its publishers are paused
// long before: this is what a burst already read may add).
inline constexpr size_t kQos0StuckBytes = 4u * 1024 * 1024;
inline constexpr size_t kQos0HardBytes = 16u * 1024 * 1024;
inline constexpr int64_t kCongestedInbox = 4096;  // queued cross-shard deliveries that pause publishers
inline constexpr size_t kMaxPage = 1024;          // queue entries read from the store at once
// Store operations submitted and not committed past which senders of stored entries wait.
inline constexpr uint64_t kMaxPendingStoreOps = 65536;
inline constexpr size_t kLongQueue = 1024;         // queue length that pauses publishers (unbounded queue)
inline constexpr int64_t kAckStuckMs = 1000;       // inflight and no ack for this long: stuck receiver
// A live receiver's queue may pass mqtt.max_mqueue_len by what was already read when its
// publishers were paused; it is never cut below this many entries beyond the limit.
inline constexpr size_t kQueueOvershoot = 8192;
inline constexpr int64_t kTrimIdleMs = 1000;  // no input for this long: buffers are given back

inline mqtt::Properties forward_subset(const mqtt::Properties& p) {
  // Properties the server forwards unaltered to subscribers [MQTT-3.3.2-15..20].
  mqtt::Properties f;
  f.payload_format_indicator = p.payload_format_indicator;
  f.content_type = p.content_type;
  f.response_topic = p.response_topic;
  f.correlation_data = p.correlation_data;
  f.user_properties = p.user_properties;
  return f;
}

inline uint32_t remaining_expiry_s(const Message& m, int64_t now_unix_ms) {
  if (m.expires_at_ms == 0) return 0;
  int64_t left = m.expires_at_ms - now_unix_ms;
  if (left <= 0) return 1;
  return static_cast<uint32_t>((left + 999) / 1000);
}

inline bool expired(const Message& m, int64_t now_unix_ms) {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_unix_ms;
}

// For the connect and disconnect log lines.
inline std::string_view version_name(Version v) {
  switch (v) {
    case Version::v31: return "3.1";
    case Version::v311: return "3.1.1";
    case Version::v5: return "5.0";
  }
  return "?";
}

inline std::string reason_text(ReasonCode rc) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto code = static_cast<uint8_t>(rc);
  std::string name(rc == ReasonCode::Success ? "Normal disconnection" : mqtt::to_string(rc));
  return name + " (0x" + kHex[code >> 4] + kHex[code & 0xF] + ")";
}

inline std::string random_client_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "harbormq-";
  uint64_t v = rng();
  for (int i = 0; i < 16; ++i) id.push_back(kHex[(v >> (i * 4)) & 0xF]);
  return id;
}

}  // namespace detail

}  // namespace harbor::broker
