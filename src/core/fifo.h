// Fifo<T>: a first-in first-out queue that costs nothing while empty.
//
// Core keeps several FIFOs per queue (the lane rotation, the ready order, the waiter ids).
// libstdc++'s std::deque allocates a 512-byte block and its map even when empty, which made an
// idle queue cost about 1.7 KB in deques alone; this one is a vector with a moving head: no
// allocation until the first push, a buffer of more than 16 elements is given back when the
// queue empties, and the
// consumed prefix is dropped once it is half the buffer (amortised O(1) per pop).
//
// Owner: whoever holds it; not thread-safe.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace ym {

template <typename T>
class Fifo {
 public:
  bool empty() const { return head_ == buf_.size(); }
  std::size_t size() const { return buf_.size() - head_; }
  // Elements allocated, including the consumed prefix not yet dropped (memory accounting).
  std::size_t capacity() const { return buf_.capacity(); }

  const T& front() const { return buf_[head_]; }
  T& front() { return buf_[head_]; }
  void push_back(T v) { buf_.push_back(std::move(v)); }
  void pop_front() {
    ++head_;
    if (head_ == buf_.size()) {
      // Emptied: a small buffer is kept for the next push (a one-lane rotation pops and pushes
      // once per leased job), a large one is given back.
      if (buf_.capacity() > kKeepCapacity) {
        clear();
      } else {
        buf_.clear();
        head_ = 0;
      }
    } else if (head_ >= 32 && 2 * head_ >= buf_.size()) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    std::vector<T>().swap(buf_);
    head_ = 0;
  }

  auto begin() const { return buf_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() const { return buf_.end(); }
  auto begin() { return buf_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return buf_.end(); }

  // Keeps the elements for which keep(e) is true, in order, in a right-sized buffer.
  template <typename Pred>
  void Filter(Pred&& keep) {
    std::vector<T> kept;
    for (auto it = begin(); it != end(); ++it) {
      if (keep(*it)) kept.push_back(std::move(*it));
    }
    kept.shrink_to_fit();
    buf_.swap(kept);
    head_ = 0;
  }

 private:
  static constexpr std::size_t kKeepCapacity = 16;
  std::vector<T> buf_;
  std::size_t head_ = 0;
};

}  // namespace ym
