// A FIFO of T in one growable circular array: what a session's inflight window and queue
// need (push at the back, pop at the front, walk in order, the odd erase in the middle).
// Unlike std::deque it allocates nothing until the first push, and release_if_empty()
// gives the array back (an idle session then costs sizeof(Ring) only).
// Owner: one thread (the session's shard). Iterators are invalidated by any change.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>

namespace harbor::broker {

template <typename T>
class Ring {
 public:
  template <bool Const>
  class Iter {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using reference = std::conditional_t<Const, const T&, T&>;
    using RingPtr = std::conditional_t<Const, const Ring*, Ring*>;

    Iter() = default;
    Iter(RingPtr r, size_t i) : r_(r), i_(i) {}
    reference operator*() const { return r_->at(i_); }
    pointer operator->() const { return &r_->at(i_); }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    Iter operator++(int) {
      Iter t = *this;
      ++i_;
      return t;
    }
    bool operator==(const Iter& o) const { return i_ == o.i_; }
    size_t index() const { return i_; }

   private:
    RingPtr r_ = nullptr;
    size_t i_ = 0;  // logical position from the front
  };
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  Ring() = default;
  Ring(Ring&&) noexcept = default;
  Ring& operator=(Ring&&) noexcept = default;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return buf_[head_]; }
  const T& front() const { return buf_[head_]; }
  T& back() { return at(size_ - 1); }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  void push_back(T v) {
    if (size_ == cap_) grow();
    buf_[(head_ + size_) & (cap_ - 1)] = std::move(v);
    ++size_;
  }

  void pop_front() {
    buf_[head_] = T{};  // release what the entry holds now, not at the next overwrite
    head_ = (head_ + 1) & (cap_ - 1);
    if (--size_ == 0) head_ = 0;
  }

  // Removes the element at `it`, keeps the order of the others; returns the next one.
  iterator erase(iterator it) {
    const size_t at_index = it.index();
    for (size_t i = at_index; i + 1 < size_; ++i) at(i) = std::move(at(i + 1));
    at(size_ - 1) = T{};
    if (--size_ == 0) head_ = 0;
    return {this, at_index};
  }

  // Frees the array if nothing is in it (kept otherwise: a busy window reuses it).
  void release_if_empty() {
    if (size_ != 0) return;
    buf_.reset();
    cap_ = head_ = 0;
  }

 private:
  T& at(size_t i) { return buf_[(head_ + i) & (cap_ - 1)]; }
  const T& at(size_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }

  void grow() {
    const size_t cap = cap_ == 0 ? 4 : cap_ * 2;
    auto next = std::make_unique<T[]>(cap);
    for (size_t i = 0; i < size_; ++i) next[i] = std::move(at(i));
    buf_ = std::move(next);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<T[]> buf_;
  size_t cap_ = 0;  // a power of two, or 0
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace harbor::broker
