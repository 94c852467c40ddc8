// A connection as the broker logic sees it: somewhere to append encoded packets, and a way
// to close it. Implemented by runtime::Connection. Owner: the shard thread of the session.
#pragma once

#include <cstdint>
#include <string>

#include "mqtt/types.hpp"

namespace harbor::broker {

class Session;

class Link {
 public:
  // Broker-side bookkeeping, touched only by the owner shard.
  Session* session = nullptr;   // attached session once CONNECT succeeded
  uint16_t keep_alive_s = 0;    // negotiated keep alive; 0 = none
  int64_t last_rx_ms = 0;       // steady ms of the last byte received
  int64_t opened_ms = 0;        // steady ms the socket was accepted
  bool connected = false;       // CONNACK success sent
  bool normal_disconnect = false;  // DISCONNECT without will received
  bool assigned_client_id = false; // the server chose the client id (told in CONNACK, 5.0)
  uint32_t inbound_unacked = 0;    // QoS 1/2 PUBLISH not yet acknowledged (Receive Maximum)
  // For the connect and disconnect log lines (the session may be gone when the link closes).
  std::string remote;        // peer "address:port", set once at accept
  std::string client_id;     // set when CONNECT succeeds
  std::string close_reason;  // why the connection ends; the first cause recorded wins

  void set_close_reason(std::string why) {
    if (close_reason.empty()) close_reason = std::move(why);
  }

  virtual ~Link() = default;
  // Output buffer; bytes appended here are written after the current loop iteration.
  virtual std::string& out() = 0;
  // Schedules a flush of out() at the end of this iteration.
  virtual void mark_dirty() = 0;
  // Flushes what is buffered, then closes the socket. No further packets are handled.
  virtual void close_after_flush() = 0;
  virtual mqtt::Version version() const = 0;
  // Bytes queued and not yet accepted by the kernel.
  virtual size_t pending_bytes() const = 0;
  virtual uint64_t link_id() const = 0;
};

}  // namespace harbor::broker
