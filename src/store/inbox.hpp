// The store's multi-producer, single-consumer op queue: submitters append under a mutex
// and the writer swaps the whole vector out, so nobody holds the lock while SQLite runs.
// The mutex is private: the queued ops are reachable only through these members.
//
// Threads: push/request_stop/size from any thread; wait_*/take from the writer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "store/op_applier.hpp"

namespace harbor::store {

class Inbox {
 public:
  using Clock = std::chrono::steady_clock;

  // Appends ops[0, count) (moved from) with consecutive sequence numbers; returns the last
  // one (or the last one handed out when count is 0). Wakes the writer when the queue was
  // empty or reached `wake_at` ops (coalesced: no wake-up per op while the writer is
  // collecting a batch).
  uint64_t push(PendingOp* ops, size_t count, size_t wake_at) {
    bool wake = false;
    uint64_t last;
    {
      std::lock_guard lock(mutex_);
      wake = ops_.empty();
      for (size_t i = 0; i < count; ++i) {
        ops[i].seq = next_seq_++;
        ops_.push_back(std::move(ops[i]));
      }
      last = next_seq_ - 1;
      wake = wake || ops_.size() >= wake_at;
    }
    if (wake && count != 0) cv_.notify_one();
    return last;
  }

  // Hands out a sequence number without queueing anything (for an op that was dropped).
  uint64_t skip_seq() {
    std::lock_guard lock(mutex_);
    return next_seq_++;
  }

  void request_stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
  }

  size_t size() const {
    std::lock_guard lock(mutex_);
    return ops_.size();
  }

  // Waits until at least `count` ops are queued, stop was requested, or `until` passes.
  void wait_for(size_t count, Clock::time_point until) {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, until, [&] { return stopping_ || ops_.size() >= count; });
  }

  // Gives back the array of an empty inbox (after a burst it keeps the burst's capacity).
  void release_memory() {
    std::lock_guard lock(mutex_);
    if (ops_.empty()) std::vector<PendingOp>().swap(ops_);
  }

  // Moves every queued op to the end of `out`; returns whether stop was requested.
  bool take(std::vector<PendingOp>& out) {
    std::lock_guard lock(mutex_);
    if (out.empty()) {
      out.swap(ops_);
    } else {
      out.insert(out.end(), std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.end()));
      ops_.clear();
    }
    return stopping_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<PendingOp> ops_;
  uint64_t next_seq_ = 1;
  bool stopping_ = false;
};

}  // namespace harbor::store
