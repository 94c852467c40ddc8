// Test doubles for driving a ShardBroker inside a libFuzzer target: no sockets, no threads,
// no GoogleTest. The same roles as tests/unit/broker/broker_fakes.hpp, but a violation
// aborts the process with a message (libFuzzer records the input):
//  - FuzzLink: a connection that refuses any use after the broker was told it closed
//    (on_link_closed), so a write to a gone connection stops the run where it happens.
//  - FuzzServices: tests/support/manual_services.hpp (manual clock, timers, queued posts;
//    single shard), misuse a violation.
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
#include "support/manual_services.hpp"

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

// ManualServices with misuse a violation.
class FuzzServices final : public support::ManualServices {
 public:
  FuzzServices() : ManualServices([](const std::string& what) { violation(what); }) {}
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
