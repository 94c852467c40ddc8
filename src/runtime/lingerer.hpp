// Graceful close of client sockets. When the broker closes a connection on purpose (after a
// DISCONNECT with a reason code, a refusing CONNACK, a protocol error answer), closing the
// socket while the peer's input is still unread makes the kernel send RST, and a peer that
// has not read our last packet yet loses it (it sees "connection reset", not the reason).
// So once the last output is written the socket is shut down for writing only, and what the
// peer still sends is read and discarded until it closes its side, for at most kLingerMs and
// kLingerBytes per socket and kMaxLingering sockets per shard; then it is closed.
//
// Owner: one shard's loop thread. Emits nothing; closes the descriptors it was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "runtime/event_loop.hpp"

namespace harbor::runtime {

class Lingerer {
 public:
  static constexpr int64_t kLingerMs = 2000;
  static constexpr size_t kLingerBytes = 1024 * 1024;
  static constexpr size_t kMaxLingering = 4096;

  // The three bounds; the shard uses the defaults (tests pass small ones).
  struct Limits {
    int64_t linger_ms = kLingerMs;
    size_t linger_bytes = kLingerBytes;
    size_t max_lingering = kMaxLingering;
  };

  explicit Lingerer(EventLoop& loop) : Lingerer(loop, Limits{}) {}
  Lingerer(EventLoop& loop, Limits limits) : loop_(loop), limits_(limits) {}
  ~Lingerer();
  Lingerer(const Lingerer&) = delete;
  Lingerer& operator=(const Lingerer&) = delete;

  // Takes `fd` (non-blocking, not in the loop's epoll set, output all written): shuts down its
  // writing side and discards input until the peer closes or a bound is reached; closed at
  // once when max_lingering sockets already linger.
  void add(int fd, int64_t now_ms);
  // Closes the sockets whose time is up and frees what finished.
  void sweep(int64_t now_ms);
  size_t lingering() const { return entries_.size(); }

 private:
  struct Entry final : IoHandler {
    Lingerer* owner = nullptr;
    int fd = -1;
    int64_t deadline_ms = 0;
    size_t discarded = 0;
    void on_io(uint32_t events) override;
  };
  void finish(Entry& e);

  EventLoop& loop_;
  const Limits limits_;
  std::unordered_map<int, std::unique_ptr<Entry>> entries_;
  std::vector<int> finished_;  // closed in on_io; their entries are freed by sweep
};

}  // namespace harbor::runtime
