// Test doubles for driving a ShardBroker with no sockets and no threads:
//  - FakeLink: a connection whose output is decoded back into mqtt::Packet values.
//  - FakeServices: a manual clock, timers fired when the test advances time, and
//    post_to_shard tasks queued until the test runs them (single shard).
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
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker/context.hpp"
#include "broker/link.hpp"
#include "broker/ports.hpp"
#include "broker/shard_broker.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/packets.hpp"

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

class FakeServices final : public ShardServices {
 public:
  unsigned shard_index() const override { return 0; }
  int64_t now_steady_ms() const override { return steady_ms_; }
  int64_t now_unix_ms() const override { return unix_ms_; }

  uint64_t add_timer(int64_t at_steady_ms, std::function<void()> fn) override {
    uint64_t id = next_timer_id_++;
    timers_.emplace(id, Timer{at_steady_ms, std::move(fn)});
    return id;
  }
  void cancel_timer(uint64_t id) override { timers_.erase(id); }

  void post_to_shard(unsigned shard, std::function<void(ShardBroker&)> fn) override {
    EXPECT_EQ(shard, 0u) << "a single-shard broker only posts to itself";
    posted_.push_back(std::move(fn));
  }

  void move_link(Link*, unsigned shard, mqtt::Connect) override {
    ADD_FAILURE() << "move_link to shard " << shard << " with a single shard";
  }
  void pause_link(uint64_t link_id) override { paused_links.push_back(link_id); }
  std::vector<uint64_t> paused_links;  // pause_link calls, in order

  // Advances both clocks by `ms`, firing due timers in time order (each at its own time).
  void advance(int64_t ms) {
    const int64_t target = steady_ms_ + ms;
    for (;;) {
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.at <= target && (due == timers_.end() || it->second.at < due->second.at))
          due = it;
      }
      if (due == timers_.end()) break;
      const int64_t step = std::max<int64_t>(0, due->second.at - steady_ms_);
      steady_ms_ += step;
      unix_ms_ += step;
      auto fn = std::move(due->second.fn);
      timers_.erase(due);
      fn();
    }
    unix_ms_ += target - steady_ms_;
    steady_ms_ = target;
  }

  // Runs queued post_to_shard tasks (and any they queue) on `broker`; returns how many.
  size_t run_posted(ShardBroker& broker) {
    size_t n = 0;
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn(broker);
      ++n;
    }
    return n;
  }

  size_t posted_count() const { return posted_.size(); }
  size_t timer_count() const { return timers_.size(); }

 private:
  struct Timer {
    int64_t at;
    std::function<void()> fn;
  };
  int64_t steady_ms_ = 1'000'000;
  int64_t unix_ms_ = 1'700'000'000'000;
  uint64_t next_timer_id_ = 1;
  std::map<uint64_t, Timer> timers_;
  std::deque<std::function<void(ShardBroker&)>> posted_;
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

  // ---- test controls ----
  void set_durable(uint64_t seq) { durable_ = seq; }
  void commit_all() { durable_ = last_seq_; }
  void set_degraded(bool d) { degraded_ = d; }
  void set_ack_after_commit(bool a) { ack_after_commit_ = a; }

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
  uint64_t refused_ = 0;
  MessageId last_message_id_ = 0;
};

}  // namespace harbor::broker::fakes
