// One MQTT session: subscriptions, the outbound inflight window and queue, inbound QoS 2
// state, will and expiry. Owned by exactly one shard (the one SessionDirectory names for its id) and
// touched only by that shard's thread. The outbound state machine is here; packet
// handling and routing are in ShardBroker.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/bridge_rules.hpp"
#include "broker/link.hpp"
#include "broker/message.hpp"
#include "broker/ports.hpp"
#include "broker/ring.hpp"
#include "broker/subscription_tree.hpp"
#include "mqtt/outbound_window.hpp"
#include "mqtt/packets.hpp"

namespace harbor::broker {

constexpr uint32_t kExpiryNever = 0xFFFFFFFF;

// A hash map allocated on first insert: most sessions never hold QoS 2 state, and an empty
// std::unordered_map costs 56 bytes in every one of them. The subset of the map API the
// session uses; with nothing allocated, find() and end() are the same value-initialized
// iterator.
template <typename Map>
class LazyMap {
 public:
  using iterator = typename Map::iterator;
  using key_type = typename Map::key_type;
  iterator find(const key_type& k) { return m_ ? m_->find(k) : iterator{}; }
  iterator begin() { return m_ ? m_->begin() : iterator{}; }
  iterator end() { return m_ ? m_->end() : iterator{}; }
  iterator erase(iterator it) { return m_->erase(it); }
  size_t erase(const key_type& k) { return m_ ? m_->erase(k) : 0; }
  size_t size() const { return m_ ? m_->size() : 0; }
  bool empty() const { return !m_ || m_->empty(); }
  typename Map::mapped_type& operator[](const key_type& k) { return get()[k]; }
  void release_if_empty() {
    if (m_ && m_->empty()) m_.reset();
  }

 private:
  Map& get() {
    if (!m_) m_ = std::make_unique<Map>();
    return *m_;
  }
  std::unique_ptr<Map> m_;
};

// One message owed to this session, in delivery order (seq). In the queue `state` is Queued
// and `packet_id` 0; in the inflight window the window's own state and packet id are the
// truth and these two fields are not read.
struct OutEntry {
  uint64_t seq = 0;
  MessagePtr msg;
  mqtt::QoS qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  OutState state = OutState::Queued;
  uint16_t packet_id = 0;
  // Given by this shared group (0: not shared), which gets it back for another member if the
  // session ends before it is delivered (ShardBroker::redeliver_shared). Not stored: an entry
  // restored at startup is no longer known to be the group's.
  SharedGroupId shared_group = 0;
  int64_t sent_ms = 0;  // steady ms of the last transmission
  bool stored = false;  // has a queue row in the store
  uint64_t store_seq = 0;  // store sequence of the last state change written for it
};

class Session {
 public:
  Session(std::string client_id, SessionId id, uint16_t shard)
      : client_id_(std::move(client_id)), id_(id), shard_(shard) {}

  const std::string& client_id() const { return client_id_; }
  SessionId id() const { return id_; }
  uint16_t shard() const { return shard_; }

  // ---- settings from the latest CONNECT ----
  // (The small fields are grouped so that they share words: a session's footprint.)
  mqtt::Version version = mqtt::Version::v311;
  uint16_t window = 65535;  // send quota: min(client's Receive Maximum, max_inflight_window)
  uint32_t expiry_s = 0;  // 0: ends with the connection; kExpiryNever: never
  bool persistent() const { return expiry_s != 0; }
  uint32_t max_packet_out = 0xFFFFFFFF;  // client's Maximum Packet Size (5.0)
  // The session turned non-persistent while entries waited on disk: its rows stay until it
  // ends (they are still owed on this connection), then go with it.
  bool store_rows_until_end = false;
  bool logged_awaiting_rel = false;  // 3.1.1: more QoS 2 awaiting PUBREL than the limit, logged
  bool clean_start = false;          // the latest CONNECT's Clean Start (Clean Session in 3.1.1)
  // The latest CONNECT's user name; null when it had none (most clients in tests and benches).
  std::unique_ptr<std::string> username;
  int64_t connected_ms = 0;          // Unix ms of the latest CONNECT accepted
  std::unique_ptr<mqtt::Will> will;  // allocated only when the client set one
  int64_t last_seen_ms = 0;  // Unix ms of the last disconnect

  // ---- state ----
  Link* link = nullptr;  // attached connection, or nullptr while offline
  std::map<std::string, SubscriptionOptions, std::less<>> subscriptions;
  // Sent, awaiting acknowledgement, in seq order: packet ids, QoS 1/2 states, the send
  // quota, DUP resend on reconnect and the 3.1.1 retry (mqtt/outbound_window.hpp).
  mqtt::OutboundWindow<OutEntry> inflight;
  Ring<OutEntry> queue;     // not sent yet, in seq order; push and pop through enqueue/dequeue
  uint64_t queue_bytes = 0;  // topic + payload bytes of the messages in `queue`
  // Store on: the queue goes on in the store from this seq to next_seq (0: all of it is in
  // `queue`). Entries past the in-memory head are written to the store only and read back
  // as the head drains (ShardBroker::page_in); the seqs of the rows on disk follow `queue`.
  uint64_t paged_from = 0;
  // Store sequences of the first and the latest entry written to the store only since
  // paging began: a page is read once the first is durable (so an earlier delete of this
  // client id's rows is committed first), and a short read once the latest is means the
  // rest is not there.
  uint64_t paged_first_store_seq = 0;
  uint64_t paged_last_store_seq = 0;
  // Inbound QoS 2 flows awaiting PUBREL, by packet id. `acked` is false while the PUBREC
  // still waits for the store: a resent PUBLISH then gets nothing yet [MQTT-4.3.3-9].
  struct Qos2In {
    int64_t received_ms = 0;
    bool acked = false;
  };
  LazyMap<std::unordered_map<uint16_t, Qos2In>> qos2_in;
  uint64_t next_seq = 1;
  // Retained messages owed after a SUBSCRIBE that did not fit yet (sent as the window and
  // the output drain: ShardBroker::feed_retained). Allocated only while non-empty.
  struct PendingRetained {
    MessagePtr msg;
    mqtt::QoS qos = 0;
    uint32_t subscription_id = 0;
  };
  std::unique_ptr<std::deque<PendingRetained>> retained_backlog;
  int64_t last_ack_ms = 0;  // steady ms of the last PUBACK/PUBREC/PUBCOMP from the client
  uint64_t will_timer = 0;
  uint64_t expiry_timer = 0;
  // A bridge's session (src/bridge/): the topic and retain flag each message carries to the
  // remote. Null for client sessions.
  std::shared_ptr<const BridgeRules> bridge;

  static uint64_t bytes_of(const OutEntry& e) { return e.msg->topic.size() + e.msg->payload.size(); }
  void enqueue(OutEntry e) {
    queue_bytes += bytes_of(e);
    queue.push_back(std::move(e));
  }
  // Pops the front entry, which held `bytes` (bytes_of it, taken before it was moved from).
  void dequeue(uint64_t bytes) {
    queue_bytes -= bytes;
    queue.pop_front();
  }
  // Entries owed and not sent yet: in memory and on disk (seqs of entries on disk that were
  // dropped since count until they are paged past).
  size_t queued() const { return queue.size() + (paged_from != 0 ? next_seq - paged_from : 0); }
  void end_paging() { paged_from = paged_first_store_seq = paged_last_store_seq = 0; }

  // Gives back what an idle session holds allocated but empty.
  void trim() {
    inflight.trim();
    queue.release_if_empty();
    qos2_in.release_if_empty();
  }

 private:
  std::string client_id_;
  SessionId id_;
  uint16_t shard_;
};

}  // namespace harbor::broker
