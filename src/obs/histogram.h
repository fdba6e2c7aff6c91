// Histogram: a Prometheus histogram with fixed bucket bounds, for the hot path.
//
// Observe() is O(1) in practice and lock-free: a branch-free search over at most kMaxBuckets
// upper bounds, then two relaxed atomic adds (the bucket and the sum) and one for the count.
// Values are integers in the histogram's base unit (microseconds for durations, mutations for
// batch sizes); the exposition scales them (seconds = µs × 1e-6), so no floating-point atomic is
// needed. Buckets are stored non-cumulative and summed at scrape time.
//
// Why relaxed ordering is enough: each counter is independent and monotonic. A scrape that runs
// during an Observe may see the bucket incremented but not yet the count (or the sum); the skew
// is one observation for microseconds, which Prometheus's rate() over seconds cannot see.
//
// Threads: Observe from any thread (ObserveSingleWriter from one thread only); Take from any
// thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace ym::obs {

class Histogram {
 public:
  static constexpr std::size_t kMaxBuckets = 24;

  // `bounds`: strictly increasing upper bounds (inclusive, Prometheus `le`) in the base unit, at
  // most kMaxBuckets; values above the last fall in the +Inf bucket.
  explicit Histogram(std::initializer_list<std::uint64_t> bounds);
  // LatencyBoundsUs(): a duration histogram in microseconds.
  Histogram() : Histogram(LatencyBoundsUs()) {}
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(std::uint64_t value);
  // Observe for a histogram that only one thread ever observes (Take may still run on any
  // thread): relaxed loads and stores instead of read-modify-writes, so no locked instruction
  // on the hot path, and no lost update since nobody else writes.
  void ObserveSingleWriter(std::uint64_t value);

  struct Snapshot {
    std::vector<std::uint64_t> bounds;      // upper bounds, base unit
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (bounds.size() + 1)
    std::uint64_t sum = 0;                  // base unit
    std::uint64_t count = 0;
  };
  Snapshot Take() const;

  // Durations in microseconds from 100 µs to 60 s (a roughly ×2.5 ladder); for request,
  // commit, wait and run times.
  static std::initializer_list<std::uint64_t> LatencyBoundsUs();

 private:
  std::array<std::uint64_t, kMaxBuckets> bounds_{};
  std::size_t n_ = 0;
  std::array<std::atomic<std::uint64_t>, kMaxBuckets + 1> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

}  // namespace ym::obs
