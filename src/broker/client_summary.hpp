// What the management API shows of one session (src/http's GET /api/v4/clients): a copy made
// on the session's shard thread, handed to another thread by value.
#pragma once

#include <cstdint>
#include <string>

namespace harbor::broker {

struct ClientSummary {
  std::string client_id;
  std::string username;      // empty: the CONNECT had none
  bool connected = false;    // a connection is attached (else an offline persistent session)
  uint8_t proto_ver = 4;     // 3 (3.1), 4 (3.1.1) or 5
  uint16_t keepalive_s = 0;  // the negotiated keep alive; 0 while offline
  bool clean_start = false;
  int64_t connected_at_ms = 0;  // Unix ms of the latest CONNECT accepted
  uint64_t subscriptions = 0;
  uint64_t queued = 0;    // messages waiting, not sent yet (memory and disk)
  uint64_t inflight = 0;  // sent, not acknowledged yet
  bool bridge = false;    // the session of one of our bridges (src/bridge)
};

}  // namespace harbor::broker
