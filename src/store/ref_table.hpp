// Message id -> change of its reference count within one batch, for the store's writer: an
// open-addressing hash table with linear probing and backward-shift deletion (no heap node
// per id, no tombstones). The counts themselves live in messages.refs; this table holds only
// the ids one batch touches and is reset after it, keeping its array for the next batch.
// Ids are never 0 (0 marks an empty slot). Not thread-safe: the writer thread owns it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace harbor::broker {
struct Message;
}

namespace harbor::store {

class RefTable {
 public:
  struct Ref {
    int32_t delta = 0;                          // references added minus released
    const broker::Message* message = nullptr;   // the body, when this batch references it
  };

  // nullptr when absent. The pointer is valid until the next insert or erase.
  Ref* find(int64_t id) {
    if (slots_.empty()) return nullptr;
    for (size_t i = home(id);; i = (i + 1) & mask_) {
      if (slots_[i].id == id) return &slots_[i].ref;
      if (slots_[i].id == 0) return nullptr;
    }
  }

  // Sets the value of `id`, inserting it when absent.
  void set(int64_t id, Ref ref) {
    if (Ref* r = find(id)) {
      *r = ref;
      return;
    }
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 64 : slots_.size() * 2);
    size_t i = home(id);
    while (slots_[i].id != 0) i = (i + 1) & mask_;
    slots_[i] = Slot{id, ref};
    ++size_;
  }

  void erase(int64_t id) {
    if (slots_.empty()) return;
    size_t i = home(id);
    while (slots_[i].id != id) {
      if (slots_[i].id == 0) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: pull later entries of the cluster into the hole when that keeps them
    // reachable from their home slot.
    for (size_t j = (i + 1) & mask_; slots_[j].id != 0; j = (j + 1) & mask_) {
      size_t h = home(slots_[j].id);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    // Give memory back after a large queue drained.
    if (slots_.size() > 1024 && size_ * 8 < slots_.size()) rehash(slots_.size() / 2);
  }

  void clear() {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

  // Empties the table; the array is kept for the next batch unless it grew past kKeepSlots.
  void reset() {
    if (slots_.size() > kKeepSlots) {
      clear();
      return;
    }
    if (size_ != 0) std::fill(slots_.begin(), slots_.end(), Slot{});
    size_ = 0;
  }
  static constexpr size_t kKeepSlots = 1u << 14;

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    int64_t id = 0;
    Ref ref;
  };

  size_t home(int64_t id) const {
    // Runs of 16 consecutive ids keep their order in adjacent slots (one or two cache lines
    // for a writer that counts ids in the order they were given out); the runs themselves
    // are spread by Fibonacci hashing, so ids with a common stride do not pile up.
    auto u = static_cast<uint64_t>(id);
    uint64_t run = ((u >> 4) * 0x9E3779B97F4A7C15ull) >> 32;
    return static_cast<size_t>((run << 4) | (u & 15)) & mask_;
  }

  void rehash(size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& s : old) {
      if (s.id == 0) continue;
      size_t i = home(s.id);
      while (slots_[i].id != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;  // size is a power of two, at most half full
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace harbor::store
