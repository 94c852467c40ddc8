// Test doubles for driving a ShardBroker with no sockets and no threads:
//  - FakeLink: a connection whose output is decoded back into mqtt::Packet values.
//  - FakeServices: tests/support/manual_services.hpp (manual clock, timers, queued posts;
//    single shard), misuse a test failure.
//  - FakeSink: a PersistenceSink recording every op in order with its sequence number;
//    the test decides what is durable, whether the store is degraded and the ack policy.
// Everything here is used from the test's thread only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker/context.hpp"
#include "broker/link.hpp"
#include "broker/ports.hpp"
#include "broker/retained_store.hpp"
#include "broker/settings.hpp"
#include "broker/shard_broker.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/packets.hpp"
#include "support/manual_services.hpp"
#include "support/one_shard.hpp"

namespace harbor::broker::fakes {

class FakeLink final : public Link {
 public:
  FakeLink(uint64_t id, mqtt::Version v) : id_(id), version_(v) {}

  std::string& out() override { return out_; }
  void mark_dirty() override { ++dirty_count_; }
  void close_after_flush() override { ++close_requests_; }
  mqtt::Version version() const override { return version_; }
  size_t pending_bytes() const override { return pending_bytes_; }
  uint64_t link_id() const override { return id_; }
  void trim_buffers() override { ++trims_; }
  int trims() const { return trims_; }

  // Decodes and removes every whole packet written so far. A decoding failure is a test
  // failure: the broker must only write well-formed packets.
  std::vector<mqtt::Packet> take_packets() {
    mqtt::Decoder decoder;
    decoder.set_version(version_);
    decoder.feed(std::string_view(out_));
    out_.clear();
    std::vector<mqtt::Packet> packets;
    for (;;) {
      auto next = decoder.next();
      if (!next) {
        ADD_FAILURE() << "broker wrote an undecodable packet: " << next.error().message;
        break;
      }
      if (!next->has_value()) break;
      packets.push_back(std::move(**next));
    }
    EXPECT_EQ(decoder.buffered(), 0u) << "broker wrote a partial packet";
    return packets;
  }

  // Raw bytes written so far (not consumed).
  const std::string& raw() const { return out_; }

  bool closed() const { return close_requests_ > 0; }
  int close_requests() const { return close_requests_; }
  int dirty_count() const { return dirty_count_; }
  void set_pending_bytes(size_t n) { pending_bytes_ = n; }

 private:
  uint64_t id_;
  mqtt::Version version_;
  std::string out_;
  int dirty_count_ = 0;
  int close_requests_ = 0;
  size_t pending_bytes_ = 0;
  int trims_ = 0;
};

// ManualServices with misuse reported as a test failure.
class FakeServices final : public support::ManualServices {
 public:
  FakeServices() : ManualServices([](const std::string& what) { ADD_FAILURE() << what; }) {}
};

class FakeSink final : public PersistenceSink {
 public:
  struct Recorded {
    uint64_t seq;
    PersistOp op;
  };

  uint64_t submit(PersistOp op) override {
    ops_.push_back(Recorded{++last_seq_, std::move(op)});
    return last_seq_;
  }
  uint64_t submit_batch(std::vector<PersistOp> ops) override {
    for (auto& op : ops) submit(std::move(op));
    return last_seq_;
  }
  uint64_t durable_seq() const override { return durable_; }
  bool degraded() const override { return degraded_; }
  bool ack_after_commit() const override { return ack_after_commit_; }
  void note_refused() override { ++refused_; }
  MessageId next_message_id() override { return ++last_message_id_; }
  uint64_t pending_ops() const override { return pending_ops_; }
  // What a store holds once the ops through durable_seq() are committed: the queue rows of
  // `client_id` from `from_seq` on, replayed from the recorded ops (adds, state changes,
  // removals, session deletes), so a page never shows what is not committed yet.
  bool read_queue(const std::string& client_id, uint64_t from_seq, size_t limit,
                  std::vector<RestoredQueueEntry>& out, std::string& error) override {
    ++reads_;
    if (fail_reads_) {
      error = "injected read failure";
      return false;
    }
    std::map<uint64_t, RestoredQueueEntry> rows;
    for (const auto& r : ops_) {
      if (r.seq > durable_) break;
      if (const auto* add = std::get_if<OpQueueAdd>(&r.op); add && add->client_id == client_id) {
        RestoredQueueEntry e;
        e.seq = add->seq;
        e.message = add->message;
        e.qos = add->qos;
        e.retain = add->retain;
        e.subscription_ids = add->subscription_ids;
        rows[add->seq] = std::move(e);
      } else if (const auto* up = std::get_if<OpQueueUpdate>(&r.op); up && up->client_id == client_id) {
        if (auto it = rows.find(up->seq); it != rows.end()) {
          it->second.state = up->state;
          it->second.packet_id = up->packet_id;
        }
      } else if (const auto* rm = std::get_if<OpQueueRemove>(&r.op); rm && rm->client_id == client_id) {
        rows.erase(rm->seq);
      } else if (const auto* del = std::get_if<OpSessionDelete>(&r.op); del && del->client_id == client_id) {
        rows.clear();
      }
    }
    for (auto it = rows.lower_bound(from_seq); it != rows.end() && limit > 0; ++it, --limit)
      out.push_back(it->second);
    return true;
  }

  // ---- test controls ----
  void set_durable(uint64_t seq) { durable_ = seq; }
  void commit_all() { durable_ = last_seq_; }
  void set_degraded(bool d) { degraded_ = d; }
  void set_ack_after_commit(bool a) { ack_after_commit_ = a; }
  void set_fail_reads(bool f) { fail_reads_ = f; }
  void set_pending_ops(uint64_t n) { pending_ops_ = n; }
  uint64_t reads() const { return reads_; }

  // ---- inspection ----
  const std::vector<Recorded>& ops() const { return ops_; }
  uint64_t last_seq() const { return last_seq_; }
  uint64_t refused() const { return refused_; }
  void clear() { ops_.clear(); }

  template <class T>
  std::vector<T> ops_of() const {
    std::vector<T> found;
    for (const auto& r : ops_)
      if (const T* op = std::get_if<T>(&r.op)) found.push_back(*op);
    return found;
  }
  template <class T>
  size_t count() const {
    return static_cast<size_t>(std::count_if(
        ops_.begin(), ops_.end(), [](const Recorded& r) { return std::holds_alternative<T>(r.op); }));
  }
  // Op kinds in submission order, as variant indices (see kinds() in the tests).
  std::vector<size_t> kinds() const {
    std::vector<size_t> k;
    for (const auto& r : ops_) k.push_back(r.op.index());
    return k;
  }

 private:
  std::vector<Recorded> ops_;
  uint64_t last_seq_ = 0;
  uint64_t durable_ = 0;
  bool degraded_ = false;
  bool ack_after_commit_ = false;
  bool fail_reads_ = false;
  uint64_t pending_ops_ = 0;
  uint64_t reads_ = 0;
  uint64_t refused_ = 0;
  MessageId last_message_id_ = 0;
};

// One single-shard broker with everything it shares, driven from the test's thread: the
// state both broker fixtures (test_shard_broker, test_shared_subscriptions) build on.
class BrokerWorld : public support::OneShard {
 public:
  // Tests change `settings` (and the sink's flags) before start().
  Settings settings;
  FakeServices services;
  FakeSink sink;
  std::vector<std::unique_ptr<FakeLink>> links;
  uint64_t next_link_id = 100;

  // The broker (in the base, which outlives these members) goes before the services, sink
  // and links it points to.
  ~BrokerWorld() { broker.reset(); }

  // (Re)creates the broker and everything it shares, so a test may loop over versions.
  void start(bool with_store = false) {
    broker.reset();  // it may still point at the links
    links.clear();
    build(settings, services, with_store ? &sink : nullptr);
  }

  ShardBroker& b() {
    if (!broker) start();
    return *broker;
  }

  // A new link the broker was told of (no CONNECT yet).
  FakeLink& open(mqtt::Version v) {
    b();  // starts with the current settings if no test did; start() drops old links
    links.push_back(std::make_unique<FakeLink>(next_link_id++, v));
    FakeLink& l = *links.back();
    b().on_link_opened(&l);
    return l;
  }
};

}  // namespace harbor::broker::fakes
