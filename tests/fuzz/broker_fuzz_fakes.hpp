// Test doubles for driving a ShardBroker inside a libFuzzer target: no sockets, no threads,
// no GoogleTest. The same roles as tests/unit/broker/broker_fakes.hpp, but a violation
// aborts the process with a message (libFuzzer records the input):
//  - FuzzLink: a connection that refuses any use after the broker was told it closed
//    (on_link_closed), so a write to a gone connection stops the run where it happens.
//  - FuzzServices: a manual clock, timers fired when the fuzzer advances time, and
//    post_to_shard tasks queued until the fuzzer runs them (single shard).
//  - FuzzSink: a PersistenceSink that only numbers ops; the fuzzer decides what is durable,
//    whether the store is degraded and the acknowledgement policy.
// Everything here is used from the fuzzer's thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "broker/context.hpp"
#include "broker/link.hpp"
#include "broker/ports.hpp"
#include "broker/shard_broker.hpp"
#include "mqtt/types.hpp"

namespace harbor::broker::fuzz {

// A broken invariant: says which, then aborts (libFuzzer saves the input as a crash).
[[noreturn]] inline void violation(const std::string& what) {
  std::fprintf(stderr, "fuzz_broker: invariant violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

class FuzzLink final : public Link {
 public:
  explicit FuzzLink(uint64_t id) : id_(id) {}

  std::string& out() override {
    require_open("out()");
    return out_;
  }
  void mark_dirty() override { require_open("mark_dirty()"); }
  // As runtime::Connection: what is written after the first request is never sent (the
  // close mark), so the client sees the conversation end with the packet that ended it.
  void close_after_flush() override {
    require_open("close_after_flush()");
    if (close_requests_++ == 0) close_mark_ = out_.size();
  }
  mqtt::Version version() const override { return version_; }
  size_t pending_bytes() const override { return pending_bytes_; }
  uint64_t link_id() const override { return id_; }
  void trim_buffers() override { require_open("trim_buffers()"); }

  // ---- fuzzer controls ----
  // The version the connection layer learnt from the CONNECT (3.1.1 before one arrived).
  void set_version(mqtt::Version v) { version_ = v; }
  void set_pending_bytes(size_t n) { pending_bytes_ = n; }
  // After on_link_closed: any further use by the broker is a violation.
  void mark_closed() { closed_ = true; }

  // ---- inspection ----
  // Everything written since the last call that the connection would send (nothing past
  // the close mark).
  std::string take_output() {
    std::string bytes;
    bytes.swap(out_);
    if (close_requests_ > 0) {
      if (bytes.size() > close_mark_) bytes.resize(close_mark_);
      close_mark_ = 0;
    }
    return bytes;
  }
  bool closed() const { return closed_; }
  bool close_requested() const { return close_requests_ > 0; }

 private:
  void require_open(const char* what) const {
    if (closed_) {
      violation(std::string("broker used ") + what + " of link " + std::to_string(id_) +
                " after on_link_closed");
    }
  }

  uint64_t id_;
  mqtt::Version version_ = mqtt::Version::v311;
  std::string out_;
  size_t pending_bytes_ = 0;
  int close_requests_ = 0;
  size_t close_mark_ = 0;  // bytes of out_ sent when close was requested
  bool closed_ = false;
};

class FuzzServices final : public ShardServices {
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
    if (shard != 0) violation("a single-shard broker posted to shard " + std::to_string(shard));
    posted_.push_back(std::move(fn));
  }
  void move_link(Link*, unsigned shard, mqtt::Connect) override {
    violation("move_link to shard " + std::to_string(shard) + " with a single shard");
  }
  void pause_link(uint64_t) override {}

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

  // Runs queued post_to_shard tasks (and any they queue) on `broker`.
  void run_posted(ShardBroker& broker) {
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn(broker);
    }
  }

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

class FuzzSink final : public PersistenceSink {
 public:
  uint64_t submit(PersistOp) override { return ++last_seq_; }
  uint64_t submit_batch(std::vector<PersistOp> ops) override {
    last_seq_ += ops.size();
    return last_seq_;
  }
  uint64_t durable_seq() const override { return durable_; }
  bool degraded() const override { return degraded_; }
  bool ack_after_commit() const override { return ack_after_commit_; }
  MessageId next_message_id() override { return ++last_message_id_; }

  // ---- fuzzer controls ----
  // Durable through `seq` (never beyond what was submitted, never backwards).
  void set_durable(uint64_t seq) { durable_ = std::clamp(seq, durable_, last_seq_); }
  void set_degraded(bool d) { degraded_ = d; }
  void set_ack_after_commit(bool a) { ack_after_commit_ = a; }

  uint64_t last_seq() const { return last_seq_; }

 private:
  uint64_t last_seq_ = 0;
  uint64_t durable_ = 0;
  bool degraded_ = false;
  bool ack_after_commit_ = false;
  MessageId last_message_id_ = 0;
};

}  // namespace harbor::broker::fuzz
