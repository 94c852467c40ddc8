// Shared data that is reachable only through its lock (STYLE.md rule 3).
//
//   Guarded<T, Mutex>   one mutex; `lock()` hands out a locked view, `lock_shared()` (only
//                       for shared mutexes) a const view under a shared lock.
//   SlottedGuarded<T>   read-mostly data with one reader lock per slot (one slot per shard),
//                       each on its own cache line, so readers on different shards never
//                       write to a common cache line. `read(slot)` takes that slot's lock
//                       shared; `write()` takes every slot's lock exclusively, in index order
//                       (so concurrent writers serialise on slot 0 and cannot deadlock).
//
// Any thread may call any member. A view releases its lock(s) when destroyed; views are
// movable, not copyable. Never keep a pointer or reference obtained through a view after
// the view is gone.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <utility>

namespace harbor::broker {

// A pointer-like handle that owns a lock. `Value` is T or const T.
template <class Value, class Lock>
class LockedView {
 public:
  LockedView(Value& value, Lock lock) : lock_(std::move(lock)), value_(&value) {}

  Value* operator->() const { return value_; }
  Value& operator*() const { return *value_; }
  Value* get() const { return value_; }

 private:
  Lock lock_;
  Value* value_;
};

template <class T, class Mutex = std::mutex>
class Guarded {
 public:
  template <class... Args>
  explicit Guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}

  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  using View = LockedView<T, std::unique_lock<Mutex>>;
  using ConstView = LockedView<const T, std::unique_lock<Mutex>>;
  using SharedView = LockedView<const T, std::shared_lock<Mutex>>;

  // Exclusive access.
  View lock() { return View(value_, std::unique_lock<Mutex>(mutex_)); }
  ConstView lock() const { return ConstView(value_, std::unique_lock<Mutex>(mutex_)); }

  // Shared, read-only access; only for mutexes with lock_shared().
  SharedView lock_shared() const requires requires(Mutex& m) { m.lock_shared(); }
  { return SharedView(value_, std::shared_lock<Mutex>(mutex_)); }

 private:
  mutable Mutex mutex_;
  T value_;
};

template <class T>
class SlottedGuarded {
  struct alignas(64) Slot {
    std::shared_mutex mutex;
  };

 public:
  // Holds every slot's lock exclusively; releases them in reverse order.
  class WriteLock {
   public:
    explicit WriteLock(Slot* slots, unsigned count) : slots_(slots), count_(count) {
      for (unsigned i = 0; i < count_; ++i) slots_[i].mutex.lock();
    }
    WriteLock(WriteLock&& other) noexcept
        : slots_(std::exchange(other.slots_, nullptr)), count_(std::exchange(other.count_, 0)) {}
    WriteLock(const WriteLock&) = delete;
    WriteLock& operator=(const WriteLock&) = delete;
    WriteLock& operator=(WriteLock&&) = delete;
    ~WriteLock() {
      for (unsigned i = count_; i > 0; --i) slots_[i - 1].mutex.unlock();
    }

   private:
    Slot* slots_;
    unsigned count_;
  };

  using ReadView = LockedView<const T, std::shared_lock<std::shared_mutex>>;
  using WriteView = LockedView<T, WriteLock>;

  template <class... Args>
  explicit SlottedGuarded(unsigned slots, Args&&... args)
      : count_(slots == 0 ? 1 : slots),
        slots_(std::make_unique<Slot[]>(count_)),
        value_(std::forward<Args>(args)...) {}

  SlottedGuarded(const SlottedGuarded&) = delete;
  SlottedGuarded& operator=(const SlottedGuarded&) = delete;

  // Shared access through one slot. A slot index past the end wraps around (still
  // correct, only loses the no-contention property).
  ReadView read(unsigned slot) const {
    Slot& s = slots_[slot < count_ ? slot : slot % count_];
    return ReadView(value_, std::shared_lock<std::shared_mutex>(s.mutex));
  }

  // Exclusive access: waits for every reader of every slot.
  WriteView write() { return WriteView(value_, WriteLock(slots_.get(), count_)); }

  unsigned slots() const { return count_; }

 private:
  unsigned count_;
  std::unique_ptr<Slot[]> slots_;
  T value_;
};

}  // namespace harbor::broker
