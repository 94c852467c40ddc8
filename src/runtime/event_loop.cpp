#include "runtime/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

namespace harbor::runtime {

namespace {
constexpr int kMaxEvents = 256;

[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

namespace {
int64_t clock_ms(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}
}  // namespace

int64_t EventLoop::steady_ms() { return clock_ms(CLOCK_MONOTONIC); }

int64_t EventLoop::unix_ms() { return clock_ms(CLOCK_REALTIME); }

EventLoop::EventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw_errno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up eventfd
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) throw_errno("epoll_ctl(wake)");
  now_ms_ = steady_ms();
  now_unix_ms_ = unix_ms();
}

EventLoop::~EventLoop() {
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl(add)");
}

void EventLoop::modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0) throw_errno("epoll_ctl(mod)");
}

void EventLoop::remove(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

TimerId EventLoop::add_timer(int64_t at_ms, std::function<void()> fn) {
  TimerId id = next_timer_id_++;
  timers_.emplace(id, std::move(fn));
  timer_heap_.push(TimerEntry{at_ms, id});
  return id;
}

void EventLoop::cancel_timer(TimerId id) { timers_.erase(id); }

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back(std::move(task));
  }
  // Only the first producer after the owner drained the inbox pays for a syscall.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof one);
    (void)n;  // EAGAIN means the counter is already non-zero: the owner will wake anyway
  }
}

void EventLoop::stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof one);
  (void)n;
}

void EventLoop::drain_inbox() {
  uint64_t counter;
  ssize_t n = read(wake_fd_, &counter, sizeof counter);
  (void)n;
  // Clear the flag before swapping so a post() racing with the swap re-arms the eventfd.
  wake_pending_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_work_.swap(inbox_);
  }
  for (auto& task : inbox_work_) task();
  inbox_work_.clear();
}

void EventLoop::run_timers() {
  while (!timer_heap_.empty() && timer_heap_.top().at_ms <= now_ms_) {
    TimerId id = timer_heap_.top().id;
    timer_heap_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    auto fn = std::move(it->second);
    timers_.erase(it);
    fn();
  }
}

int EventLoop::next_timeout(int cap_ms) const {
  // Skip cancelled entries lazily: a stale top only causes an early, harmless wake-up.
  if (timer_heap_.empty()) return cap_ms;
  int64_t delta = timer_heap_.top().at_ms - now_ms_;
  if (delta < 0) delta = 0;
  if (cap_ms >= 0 && delta > cap_ms) return cap_ms;
  return static_cast<int>(delta);
}

void EventLoop::run_once(int timeout_ms) {
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epoll_fd_, events, kMaxEvents, next_timeout(timeout_ms));
  if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
  now_ms_ = steady_ms();
  now_unix_ms_ = unix_ms();
  bool woke = false;
  for (int i = 0; i < n; ++i) {
    auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
    if (handler == nullptr) {
      woke = true;
      continue;
    }
    handler->on_io(events[i].events);
  }
  if (woke || wake_pending_.load(std::memory_order_acquire)) drain_inbox();
  run_timers();
  if (after_io_) after_io_();
}

void EventLoop::run() {
  while (!stop_.load(std::memory_order_acquire)) run_once(-1);
  // Run what was posted before stop() so no hand-off is lost.
  drain_inbox();
  if (after_io_) after_io_();
}

}  // namespace harbor::runtime
