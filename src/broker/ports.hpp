// The broker's outward interfaces. Broker logic talks to persistence only through these.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/message.hpp"
#include "mqtt/types.hpp"

namespace harbor::broker {

// ---- Persistence operations (DESIGN.md §4) ----
// Sessions are keyed by client id in the store. Queue entries are keyed by
// (client_id, seq): seq is a per-session number, increasing in delivery order.

enum class OutState : uint8_t {
  Queued = 0,        // not sent yet (offline queue / beyond the inflight window)
  AwaitPuback = 1,   // QoS 1 sent
  AwaitPubrec = 2,   // QoS 2 PUBLISH sent
  AwaitPubcomp = 3,  // QoS 2 PUBREL sent
};

struct StoredWill {
  std::string topic;
  std::string payload;
  mqtt::QoS qos = 0;
  bool retain = false;
  std::string props;      // 5.0 will properties that travel with it, wire encoding
  uint32_t delay_s = 0;   // Will Delay Interval
  uint32_t expiry_s = 0;  // Message Expiry Interval, 0 = none
};

struct OpSessionUpsert {
  std::string client_id;
  uint8_t version = 4;       // protocol level
  uint32_t expiry_s = 0;     // Session Expiry Interval; 0xFFFFFFFF = never
  int64_t last_seen_ms = 0;  // Unix ms of the last disconnect (0 while connected)
  // Shared and immutable: keeps every queued op small (the store holds ops by the
  // hundred thousand while a queue drains), and the will is rare.
  std::shared_ptr<const StoredWill> will;
};
struct OpSessionDelete {
  std::string client_id;  // also deletes its subscriptions, queue and QoS 2 state
};
struct OpSubscriptionAdd {
  std::string client_id;
  std::string filter;  // as subscribed, "$share/g/f" included
  mqtt::QoS qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0 = none
};
struct OpSubscriptionRemove {
  std::string client_id;
  std::string filter;
};
// A queue entry and the message it delivers, in one op so the store can never see the
// reference without its message. The store keeps one message row per store_id however
// many entries (and retained rows) refer to it, and writes no row for a message whose
// entries are all removed before their commit.
struct OpQueueAdd {
  std::string client_id;
  uint64_t seq = 0;
  MessagePtr message;   // message->store_id is set
  mqtt::QoS qos = 0;    // delivery QoS for this subscriber
  bool retain = false;  // RETAIN flag for this delivery
  std::vector<uint32_t> subscription_ids;
};
// The entry (client_id, seq), just added, came through the shared subscription `filter`
// ("$share/g/f", "$queue/f"): stored with it so that after a restart the entry can still go
// to another member of the group. A separate op, so that OpQueueAdd (and every op: the
// variant is as large as its largest member) does not carry a string for the common case.
struct OpQueueShared {
  std::string client_id;
  uint64_t seq = 0;
  std::string filter;
};
struct OpQueueUpdate {
  std::string client_id;
  uint64_t seq = 0;
  OutState state = OutState::Queued;
  uint16_t packet_id = 0;
};
// The receiver acknowledged (or the entry expired / was dropped). The store deletes the
// message row when no queue entry and no retained row refers to it any more.
// message_id is the entry's message (0: not known to the sender); with it the store deletes
// a run of acknowledged rows without reading each one back to find its message.
struct OpQueueRemove {
  std::string client_id;
  uint64_t seq = 0;
  int64_t message_id = 0;
};
struct OpQos2InAdd {
  std::string client_id;
  uint16_t packet_id = 0;
};
struct OpQos2InRemove {
  std::string client_id;
  uint16_t packet_id = 0;
};
struct OpRetainedSet {
  MessagePtr message;  // keyed by message->topic; message->store_id is set; stored with it
};
struct OpRetainedClear {
  std::string topic;
};

using PersistOp =
    std::variant<OpSessionUpsert, OpSessionDelete, OpSubscriptionAdd, OpSubscriptionRemove,
                 OpQueueAdd, OpQueueUpdate, OpQueueRemove, OpQos2InAdd, OpQos2InRemove,
                 OpRetainedSet, OpRetainedClear, OpQueueShared>;

struct RestoredQueueEntry;

// Where shards send persistence operations. Implemented by store::Store (writer thread)
// and by a null sink when persistence is off. Thread-safe: any shard may call submit().
class PersistenceSink {
 public:
  virtual ~PersistenceSink() = default;
  // Queues `op`; returns its sequence number. Ops are applied in submission order per
  // calling thread. Never blocks on the disk.
  virtual uint64_t submit(PersistOp op) = 0;
  // Queues several ops; returns the sequence number of the last one.
  virtual uint64_t submit_batch(std::vector<PersistOp> ops) = 0;
  // Highest sequence number known durable (committed). Any thread.
  virtual uint64_t durable_seq() const = 0;
  // True when the store failed to commit and is refusing to promise durability
  // (full disk, I/O error); callers stop acknowledging what must be stored.
  virtual bool degraded() const = 0;
  // Whether a QoS 1/2 acknowledgement must wait until durable_seq() >= its op's seq.
  virtual bool ack_after_commit() const = 0;
  // The broker refused a message because of degraded(): counted by the store (metrics).
  virtual void note_refused() {}
  // A fresh, never reused message store id.
  virtual MessageId next_message_id() = 0;
  // Operations submitted and not committed yet: senders of stored entries wait (for
  // durable progress) while it is high, so what a drain submits stays bounded.
  virtual uint64_t pending_ops() const { return 0; }
  // Appends to `out` up to `limit` stored queue entries of `client_id` with seq >= from_seq,
  // in seq order, as committed (never what is still being written). Reads the disk: the
  // caller pages a session's queue in a batch at a time. False with `error` set on failure.
  virtual bool read_queue(const std::string& client_id, uint64_t from_seq, size_t limit,
                          std::vector<RestoredQueueEntry>& out, std::string& error) {
    (void)client_id, (void)from_seq, (void)limit, (void)out;
    error = "this store keeps no queues";
    return false;
  }
};

// ---- State restored at startup (before listeners open) ----
struct RestoredQueueEntry {
  uint64_t seq = 0;
  MessagePtr message;  // shared between entries that refer to the same message
  mqtt::QoS qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  OutState state = OutState::Queued;
  uint16_t packet_id = 0;
  std::string shared_filter;  // as OpQueueShared::filter; empty if none
};

struct RestoredSession {
  OpSessionUpsert session;
  std::vector<OpSubscriptionAdd> subscriptions;
  // Ordered by seq: the entries in flight, then the head of the queue (all of it when
  // restore was given no head bound).
  std::vector<RestoredQueueEntry> queue;
  std::vector<uint16_t> qos2_in;  // packet ids awaiting PUBREL
  // The queue goes on in the store from this seq, paged in as it drains (0: all loaded).
  uint64_t paged_from = 0;
  uint64_t next_seq = 0;  // the highest stored seq + 1 (0: none)
};

struct RestoredState {
  std::vector<RestoredSession> sessions;
  std::vector<MessagePtr> retained;
};

// Wall clock for expiry and last-seen times; steady time is passed to state machines.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_unix_ms() const = 0;
  virtual int64_t now_steady_ms() const = 0;
};

// ---- auth.http_auth: an HTTP server decides who may connect, publish and subscribe (off
// the shard threads) ----

// What is asked: may this client connect (auth_req, then super_req), or may it publish or
// subscribe to a topic (acl_req).
enum class HttpAuthKind : uint8_t { Connect, Acl };

struct HttpAuthRequest {
  unsigned shard = 0;    // where the answer goes (ShardBroker::on_http_auth_answer)
  uint64_t link_id = 0;  // the connection waiting for it
  HttpAuthKind kind = HttpAuthKind::Connect;
  uint8_t access = 0;  // Acl: 1 subscribe, 2 publish (NanoMQ's and EMQX's %A)
  std::string topic;   // Acl: the topic or filter (%t)
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary as the client sent it; never logged
  std::string client_id;
  std::string address;   // the client's IP address
  uint8_t protocol = 4;  // protocol level: 3, 4 or 5
  uint16_t port = 0;     // the listener's port (%p)
  std::string cert_cn;   // a TLS client's verified certificate: its CN (%C)
  std::string cert_subject;  // and its subject (%d)
};

enum class HttpAuthVerdict : uint8_t {
  Allow,        // auth_req answered 200
  Deny,         // it answered 4xx
  Unavailable,  // no answer: down, timed out, 5xx, or too many requests waiting
};

struct HttpAuthAnswer {
  HttpAuthVerdict verdict = HttpAuthVerdict::Unavailable;
  bool superuser = false;  // super_req answered 200: no ACL applies to this client
  std::string detail;      // for the log: the status or the error (never the password)
  HttpAuthKind kind = HttpAuthKind::Connect;  // the request's
};

class HttpAuthPort {
 public:
  virtual ~HttpAuthPort() = default;
  // Any shard thread; returns at once. The answer is handed to ShardBroker::
  // on_http_auth_answer on request.shard's thread, exactly once per request.
  virtual void ask(HttpAuthRequest request) = 0;
};

}  // namespace harbor::broker
