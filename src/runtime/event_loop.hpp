// One epoll event loop, owned by one thread (a shard, a bench worker, a bridge).
// Owner thread: add/modify/remove, timers, run. Any thread: post(), stop().
// Cross-thread work arrives through post(): an MPSC inbox whose eventfd is written only
// when the inbox goes from empty to non-empty (coalesced wake-ups, DESIGN.md §3).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <vector>

namespace harbor::runtime {

// Receives readiness events for one file descriptor (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP).
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void on_io(uint32_t events) = 0;
};

using TimerId = uint64_t;

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // ---- owner thread ----
  // `handler` must stay alive until the current iteration ends (after_io has run) even
  // after remove(): another event of the same epoll batch may still name it. Owners
  // therefore destroy handlers in after_io, never inside on_io.
  void add(int fd, uint32_t events, IoHandler* handler);
  void modify(int fd, uint32_t events, IoHandler* handler);
  void remove(int fd);

  // Runs `fn` once at steady time `at_ms` (or later). Returns an id for cancel_timer.
  TimerId add_timer(int64_t at_ms, std::function<void()> fn);
  TimerId add_timer_after(int64_t delay_ms, std::function<void()> fn) {
    return add_timer(now_ms() + delay_ms, std::move(fn));
  }
  void cancel_timer(TimerId id);

  // Called after each batch of I/O events and inbox tasks, before sleeping again: the
  // place to flush batched writes and cross-shard deliveries.
  void set_after_io(std::function<void()> fn) { after_io_ = std::move(fn); }

  // Runs until stop(). run_once waits at most timeout_ms (-1 = until an event).
  void run();
  void run_once(int timeout_ms);

  // Steady clock in ms, refreshed every iteration (cheap to call).
  int64_t now_ms() const { return now_ms_; }
  // Wall clock (Unix ms), also refreshed once per iteration: expiry bookkeeping needs no
  // more precision than that, and a clock read per message is measurable.
  int64_t now_unix_ms() const { return now_unix_ms_; }
  static int64_t unix_ms();
  static int64_t steady_ms();

  // ---- any thread ----
  void post(std::function<void()> task);
  void stop();
  bool stopped() const { return stop_.load(std::memory_order_acquire); }

 private:
  void drain_inbox();
  void run_timers();
  int next_timeout(int cap_ms) const;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  int64_t now_ms_ = 0;
  int64_t now_unix_ms_ = 0;

  // Inbox (MPSC): producers append under the mutex; the owner swaps the vector out.
  std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mutex_
  std::atomic<bool> wake_pending_{false};
  std::vector<std::function<void()>> inbox_work_;  // owner only

  struct TimerEntry {
    int64_t at_ms;
    TimerId id;
    bool operator>(const TimerEntry& o) const { return at_ms > o.at_ms || (at_ms == o.at_ms && id > o.id); }
  };
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timer_heap_;
  std::unordered_map<TimerId, std::function<void()>> timers_;
  TimerId next_timer_id_ = 1;
  std::function<void()> after_io_;
};

}  // namespace harbor::runtime
