// What every shard shares: the broker's settings, the subscription tree, retained messages, the
// persistence sink and global counters. Created before the shards start; the objects it
// points to are thread-safe or immutable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "broker/link.hpp"
#include "broker/ports.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_directory.hpp"
#include "broker/settings.hpp"
#include "broker/subscription_tree.hpp"
#include "mqtt/packets.hpp"

namespace harbor::broker {

class ShardBroker;

// A counter one thread (its shard) writes and any thread reads: a plain load and store,
// no locked read-modify-write and no cache line shared with another shard on the hot path.
class ShardCounter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Message counters of one shard (BrokerContext::shard_stats[i], written by shard i only).
struct alignas(64) ShardStats {
  ShardCounter messages_in;
  ShardCounter messages_out;
  ShardCounter dropped_queue_full;
  ShardCounter dropped_qos0_slow;
  ShardCounter dropped_expired;
  ShardCounter dropped_too_large;  // above a client's Maximum Packet Size
  // 3.1.1 QoS 2 flows accepted beyond mqtt.max_awaiting_rel (cannot be refused in 3.1.1).
  ShardCounter awaiting_rel_over_limit;
  ShardCounter refused_store;
  ShardCounter no_subscribers;  // accepted messages that matched no subscription
  ShardCounter queued;          // deliveries that waited in a session queue
  ShardCounter refused_sys_publish;  // client PUBLISH to $SYS/..., discarded
  ShardCounter auth_refused;         // CONNECTs refused by auth {} (credentials, anonymous)
  ShardCounter acl_denied;           // publishes, subscriptions and wills an ACL denied
};

// Process-wide gauges and the acceptor's counters (changed per connection, not per message).
struct BrokerStats {
  std::atomic<uint64_t> connections{0};
  // Client sockets accepted and not yet destroyed (mqtt.max_connections counts these):
  // the acceptor adds one per accepted socket it keeps, a shard subtracts it when the
  // connection is gone.
  std::atomic<int64_t> sockets_open{0};
  // Sockets the acceptor closed at once: over mqtt.max_connections, and pending connections
  // shed while the process was out of file descriptors (EMFILE/ENFILE).
  std::atomic<uint64_t> refused_max_connections{0};
  std::atomic<uint64_t> refused_fd_limit{0};
  std::atomic<uint64_t> sessions{0};
};

struct BrokerContext {
  std::shared_ptr<const Settings> settings;  // replaced per shard on reload (set_settings)
  unsigned num_shards = 1;
  SubscriptionTree* tree = nullptr;
  RetainedStore* retained = nullptr;
  PersistenceSink* store = nullptr;  // nullptr when persistence is off
  HttpAuthPort* http_auth = nullptr;  // auth.http_auth; nullptr when not configured
  BrokerStats stats;
  // One per shard (num_shards entries), allocated by whoever sets num_shards.
  std::unique_ptr<ShardStats[]> shard_stats;
  void init_shards(unsigned n) {
    num_shards = n;
    shard_stats = std::make_unique<ShardStats[]>(n);
  }
  // The sum of one counter over every shard.
  uint64_t total(ShardCounter ShardStats::*counter) const {
    uint64_t sum = 0;
    for (unsigned i = 0; shard_stats && i < num_shards; ++i) sum += (shard_stats[i].*counter).get();
    return sum;
  }
  std::atomic<uint64_t> next_session_id{1};
  // Which shard holds each client id's session (any thread).
  SessionDirectory directory;
  // Deliveries posted to each shard and not processed yet (backpressure between shards).
  std::unique_ptr<std::atomic<int64_t>[]> inbox_load;
  // Per shard: one of its receivers is congested and still draining (set by its runtime
  // once per loop iteration); publishers on other shards that feed it are slowed down.
  std::unique_ptr<std::atomic<bool>[]> shard_congested;
  // Logging hook (level: 0 debug, 1 info, 2 warn, 3 error). Any thread.
  std::function<void(int, const std::string&)> log;
};

// The shard a session restored at startup goes to (later CONNECTs find it through
// BrokerContext::directory; sessions never move between shards).
inline unsigned home_shard(const std::string& client_id, unsigned num_shards) {
  return static_cast<unsigned>(SessionDirectory::key_of(client_id) % num_shards);
}

// What a ShardBroker needs from its runtime (implemented by runtime::Shard).
// Owner thread only, except post_to_shard which any thread may call.
class ShardServices {
 public:
  virtual ~ShardServices() = default;
  virtual unsigned shard_index() const = 0;
  virtual int64_t now_steady_ms() const = 0;
  virtual int64_t now_unix_ms() const = 0;
  virtual uint64_t add_timer(int64_t at_steady_ms, std::function<void()> fn) = 0;
  virtual void cancel_timer(uint64_t id) = 0;
  // Runs `fn` on shard `shard`'s thread with that shard's broker.
  virtual void post_to_shard(unsigned shard, std::function<void(ShardBroker&)> fn) = 0;
  // Hands the connection (with its buffered input) to `shard`, which then handles `connect`.
  virtual void move_link(Link* link, unsigned shard, mqtt::Connect connect) = 0;
  // Stops reading connection `link_id` of this shard until its receivers have drained
  // (backpressure asked for by another shard); nothing if it is gone.
  virtual void pause_link(uint64_t link_id) = 0;
};

}  // namespace harbor::broker
