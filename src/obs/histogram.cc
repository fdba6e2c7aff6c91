#include "obs/histogram.h"

#include <algorithm>
#include <cassert>

namespace ym::obs {

Histogram::Histogram(std::initializer_list<std::uint64_t> bounds) {
  assert(bounds.size() <= kMaxBuckets);
  for (std::uint64_t b : bounds) {
    if (n_ == kMaxBuckets) break;
    assert(n_ == 0 || b > bounds_[n_ - 1]);
    bounds_[n_++] = b;
  }
}

void Histogram::Observe(std::uint64_t value) {
  // The first bound >= value; n_ (the +Inf bucket) when none.
  const std::size_t i = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_), value) -
      bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::ObserveSingleWriter(std::uint64_t value) {
  const std::size_t i = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_), value) -
      bounds_.begin());
  auto bump = [](std::atomic<std::uint64_t>& a, std::uint64_t by) {
    a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  bump(buckets_[i], 1);
  bump(sum_, value);
  bump(count_, 1);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds.assign(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_));
  s.cumulative.reserve(n_ + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= n_; ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  // The exposition requires count == the +Inf bucket; read apart, they may differ by an
  // observation in flight, so the buckets' total is reported as the count.
  s.count = running;
  return s;
}

std::initializer_list<std::uint64_t> Histogram::LatencyBoundsUs() {
  static constexpr std::initializer_list<std::uint64_t> kBounds = {
      100,       250,       500,       1'000,      2'500,      5'000,
      10'000,    25'000,    50'000,    100'000,    250'000,    500'000,
      1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000};
  return kBounds;
}

}  // namespace ym::obs
