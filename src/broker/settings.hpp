// What the broker layer is configured with: the mqtt {} keys it acts on, as a plain struct
// (DESIGN.md §2: only app sees config types; app builds this in app/layer_settings.hpp).
// The defaults are the configuration's defaults (a unit test in tests/unit/app checks it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "broker/access_control.hpp"
#include "broker/subscription_tree.hpp"

namespace harbor::broker {

struct Settings {
  uint32_t max_packet_size = 256u * 1024 * 1024;  // bytes, whole packet, both directions
  uint32_t max_mqueue_len = 2048;                 // queued per session; 0 = unbounded
  std::chrono::milliseconds retry_interval{10'000};  // 3.1.1 resend while online; 0 = never
  double keepalive_multiplier = 1.25;             // a link silent this × keep alive is closed
  uint32_t max_inflight_window = 2048;  // outbound in flight per session (caps Receive Maximum)
  uint32_t max_awaiting_rel = 2048;     // inbound QoS 2 awaiting PUBREL per session
  std::chrono::milliseconds await_rel_timeout{10'000};
  uint32_t max_user_properties = 32;  // per packet
  uint16_t max_topic_alias = 65535;   // inbound topic aliases per connection (5.0)
  bool queue_qos0 = false;            // queue QoS 0 for offline persistent sessions too
  uint32_t session_expiry_311 = 0;    // seconds; 0 = 3.1.1 persistent sessions never expire
  std::chrono::milliseconds connect_timeout{5'000};  // socket to complete CONNECT
  SharedStrategy shared_strategy = SharedStrategy::RoundRobin;
  uint32_t max_topic_levels = 128;  // levels in a topic name or filter
  uint16_t max_keepalive = 0;       // seconds; 5.0 Server Keep Alive above it; 0 = none
  // Store on: a persistent session keeps at most this many queue entries (and bytes of their
  // messages) in memory; the rest waits in the store, paged in as it drains (sqlite.
  // flush_mem_threshold, sqlite.flush_mem_bytes). At least one entry is always kept.
  uint32_t queue_head = 100;
  uint32_t queue_head_bytes = 1u << 20;
  // auth {}: who may connect and what each client may publish and subscribe to. Null: anyone,
  // anything (no auth section). A reload installs a new snapshot; connections pick it up.
  std::shared_ptr<const AccessControl> access;
  bool operator==(const Settings&) const = default;
};

}  // namespace harbor::broker
