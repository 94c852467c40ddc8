// A connection as the broker logic sees it: somewhere to append encoded packets, and a way
// to close it. Implemented by runtime::Connection. Owner: the shard thread of the session.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/access_control.hpp"
#include "broker/enhanced_auth.hpp"
#include "broker/ports.hpp"
#include "broker/publish_encoder.hpp"
#include "mqtt/types.hpp"

namespace harbor::broker {

class Session;

struct HttpAuthWait {
  std::unique_ptr<mqtt::Connect> connect;  // null once the answer came
  std::optional<HttpAuthAnswer> answer;
  // acl_req, once connected: the PUBLISH or SUBSCRIBE waiting for the answer about
  // (access, topic), and the answers already given for it (a SUBSCRIBE asks once per
  // filter), which hold for this packet whatever the cache keeps.
  struct Decided {
    uint8_t access = 0;  // kAclPublish / kAclSubscribe
    std::string topic;
    bool allow = false;
  };
  std::unique_ptr<mqtt::Packet> parked;
  uint8_t access = 0;
  std::string topic;
  std::vector<Decided> decided;
};

// Flow control (docs/architecture.md "Flow control"). A receiver whose output has waited
// this long without the socket accepting a byte is stuck, not slow: publishers stop
// waiting for it and its QoS 0 traffic beyond its bound is dropped.
constexpr int64_t kStuckWriteMs = 500;
// Output waiting above this pauses the publishers that feed the connection; they read again
// once every receiver that paused them is below kOutputLowWater (or stuck).
constexpr size_t kOutputHighWater = 512u * 1024;
constexpr size_t kOutputLowWater = 256u * 1024;
// What the broker tells the connection layer after a packet: go on reading, or stop reading
// this client until its receivers have drained (TCP backpressure).
enum class Flow : uint8_t { Continue, Pause };

class Link {
 public:
  // Broker-side bookkeeping, touched only by the owner shard. Ordered so that the small
  // fields share words (an idle connection's footprint, issue 10).
  Session* session = nullptr;   // attached session once CONNECT succeeded
  int64_t last_rx_ms = 0;       // steady ms of the last byte received
  int64_t opened_ms = 0;        // steady ms the socket was accepted
  // Steady ms the socket last accepted output bytes, or the output started waiting (the
  // clock of write progress; see kStuckWriteMs).
  int64_t last_write_ms = 0;
  uint32_t inbound_unacked = 0;    // QoS 1/2 PUBLISH not yet acknowledged (Receive Maximum)
  uint16_t keep_alive_s = 0;       // negotiated keep alive; 0 = none
  bool connected = false;          // CONNACK success sent
  bool normal_disconnect = false;  // DISCONNECT without will received
  bool assigned_client_id = false; // the server chose the client id (told in CONNACK, 5.0)
  // A connection the broker dialled (a bridge): the broker is the client on it, so it
  // sends client DISCONNECT reason codes and never a CONNACK.
  bool outbound = false;
  bool read_paused = false;  // not read for backpressure: keep alive does not count
  // The broker has more to write once the output drains (ShardBroker::on_link_writable).
  bool wants_writable = false;
  // Packets after CONNECT stay buffered, unread, while this is set (an answer is awaited);
  // the broker clears it and calls resume_held_input().
  bool input_held = false;
  // auth.http_auth.acl_req: the answer for the PUBLISH being handled, found by
  // ShardBroker::park_for_http_acl just before on_publish reads it.
  bool http_publish_allowed = false;
  // 5.0 client with a Topic Alias Maximum: the aliases we assigned on this connection.
  std::unique_ptr<OutboundAliases> out_aliases;
  std::unique_ptr<ClientAcl> acl;  // auth.acl rules for this client; null: none apply
  std::unique_ptr<EnhancedAuth> enhanced_auth;  // 5.0 Authentication Method given; else null
  // auth.http_auth: the CONNECT waiting for the HTTP server, then its answer (kept for admit).
  std::unique_ptr<HttpAuthWait> http_auth;
  // For the connect and disconnect log lines (the session may be gone when the link closes).
  std::string remote;  // peer "address:port", set once at accept
  // Set by a TLS listener with use_cn_as_username once the handshake completed: the verified
  // client certificate's CN, which replaces the CONNECT's user name for authentication and
  // the ACL (empty: no certificate verified, the CONNECT has no user name). Null: the
  // CONNECT's own stands. (A pointer: most connections have none.)
  std::unique_ptr<std::string> certificate_username;
  // A TLS client's certificate, once its handshake completed (null: none, or not TLS): what
  // auth.http_auth's %C and %d send (the CN and the subject; empty when not verified).
  struct PeerCertificate {
    std::string cn;
    std::string subject;
  };
  std::unique_ptr<PeerCertificate> peer_certificate;

  // Why the connection ends; the first cause recorded wins. Empty until one is.
  const std::string& close_reason() const { return close_reason_ ? *close_reason_ : kNoText; }
  void set_close_reason(std::string why) {
    if (!why.empty() && !close_reason_)
      close_reason_ = std::make_unique<std::string>(std::move(why));
  }
  // The client id once its session is detached (while attached, session->client_id() is it):
  // a copy only for the connections that are closing.
  const std::string& detached_client_id() const { return client_id_ ? *client_id_ : kNoText; }
  void keep_client_id(const std::string& id) { client_id_ = std::make_unique<std::string>(id); }

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
  // Gives back input and output buffer memory while nothing is buffered (idle connection).
  virtual void trim_buffers() = 0;
  // input_held was cleared: handle the packets that waited.
  virtual void resume_held_input() {}
  // The port of the listener the client came in on (asked of the socket: for auth.http_auth's
  // %p only); 0 when not known.
  virtual uint16_t local_port() const { return 0; }

 private:
  inline static const std::string kNoText;
  // Allocated when set (few connections ever need them): 8 bytes each instead of 32.
  std::unique_ptr<std::string> close_reason_;
  std::unique_ptr<std::string> client_id_;
};

}  // namespace harbor::broker
