// What the management API renders: plain values copied from the broker (thread-safe counters
// read on the HTTP thread, client lists collected on each shard). Pure data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "broker/client_summary.hpp"

namespace harbor::http {

// Counters and gauges summed over the shards when asked (broker/context.hpp).
struct Counters {
  uint64_t connections = 0;  // clients connected now
  int64_t sockets_open = 0;  // accepted sockets, CONNECT done or not
  uint64_t sessions = 0;     // sessions, online and offline
  uint64_t subscriptions = 0;
  uint64_t retained = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_qos0_slow = 0;
  uint64_t dropped_expired = 0;
  uint64_t dropped_too_large = 0;
  uint64_t refused_store = 0;
  uint64_t no_subscribers = 0;
  uint64_t queued = 0;
  uint64_t refused_max_connections = 0;
  uint64_t refused_fd_limit = 0;
  uint64_t auth_refused = 0;
  uint64_t acl_denied = 0;
  uint64_t dropped() const {
    return dropped_queue_full + dropped_qos0_slow + dropped_expired + dropped_too_large;
  }
};

// The process: what GET /api/v4/brokers, /nodes and /metrics show besides the counters.
struct ProcessInfo {
  std::string version;
  int64_t now_unix_ms = 0;
  int64_t uptime_ms = 0;
  double cpu_percent = 0;     // CPU time over wall time since start, in percent
  uint64_t memory_bytes = 0;  // resident set size
};

}  // namespace harbor::http
