// JobStats: per-(queue, kind) job counters and time histograms for /metrics (issue 12).
//
// What it holds, per label set (a queue and a kind):
//   * a counter per job event (JobEvent: enqueued, leased, succeeded, failed, retried, dead,
//     cancelled, lease_expired, timed_out), exported as ym_job_events_total{queue,kind,event};
//   * three obs::Histogram of durations (JobTime: wait, run, end to end), in microseconds,
//     exported as ym_job_wait_seconds, ym_job_run_seconds, ym_job_end_to_end_seconds.
// It is pure: it never reads a clock (the scheduler passes durations measured on its injected
// clock) and does no I/O.
//
// Cardinality. At most `max_label_sets` label sets exist (config `metrics_max_label_sets`,
// default 1000); a pair first seen past the cap shares the overflow set, whose queue and kind
// are both "~other" (no valid name can be that: names are [A-Za-z0-9_.:-]), and every event or
// observation that lands there counts in overflow(family). Label sets are never removed:
// counters stay monotonic for the life of the process and the cap bounds the memory (about
// 1.4 KB per label set). Never a job id.
//
// Cost. Resolve() (a hash lookup of the two names; allocates only the first time a pair is
// seen) is called once per job when core takes it in; the job keeps the Ref, so an event is an
// array index and an add, and an observation a binary search over 18 bounds and three adds. No
// allocation once a label set exists.
//
// Threads. One writer: the core thread (Resolve, Count, Observe). Any number of readers (the
// /metrics scrape: ForEach, label_sets, overflow) at the same time, without a lock:
//   * the counters and histogram cells are std::atomic written by the single writer with a
//     relaxed load and store (no read-modify-write: nobody else writes them, so no increment can
//     be lost, and no locked instruction is paid on the hot path) and read relaxed; each value
//     is a monotonic count, and a scrape that races an update sees it or not (the histogram's
//     buckets, sum and count may be one observation apart, which rate() over seconds cannot
//     see; Histogram::Take reports the buckets' total as the count, so the exposition is
//     self-consistent);
//   * a new label set is built completely (names included, never changed after) and stored in
//     the next slot of a fixed array before `published_` is raised with release ordering; a
//     reader loads `published_` with acquire and reads only slots below it, so it never sees a
//     half-built set and never touches a slot the writer is filling. The slot array is sized
//     for the cap at construction and never reallocated.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "obs/histogram.h"

namespace ym {

enum class JobEvent : std::uint8_t {
  kEnqueued,      // a job created by an enqueue (or a schedule), or a new run by a replay
  kLeased,        // an attempt handed to a worker
  kSucceeded,     // acked: terminal
  kFailed,        // a fail report from a worker, retried or not
  kRetried,       // a fail report, lease expiry or timeout that scheduled another attempt
  kDead,          // terminal: out of attempts, or a non-retryable failure
  kCancelled,     // terminal: cancelled (also a debounce supersede)
  kLeaseExpired,  // a lease that expired without ack, fail or heartbeat
  kTimedOut,      // an attempt that reached its execution timeout
};
inline constexpr std::size_t kJobEventCount = 9;
// The `event` label values, in JobEvent order.
inline constexpr const char* kJobEventNames[kJobEventCount] = {
    "enqueued", "leased",    "succeeded",     "failed",    "retried",
    "dead",     "cancelled", "lease_expired", "timed_out",
};

enum class JobTime : std::uint8_t {
  kWait,      // from when an attempt could first run (created, run_at, backoff end) to its lease
  kRun,       // from a lease to the attempt's end (ack, fail, expiry, timeout)
  kEndToEnd,  // from the job's creation to its terminal state
};
inline constexpr std::size_t kJobTimeCount = 3;

// The families a label set appears in, for label_sets() and overflow(): the events counter and
// the three histograms, in this order.
inline constexpr std::size_t kJobFamilyCount = 1 + kJobTimeCount;
inline constexpr const char* kJobFamilyNames[kJobFamilyCount] = {
    "ym_job_events_total",
    "ym_job_wait_seconds",
    "ym_job_run_seconds",
    "ym_job_end_to_end_seconds",
};

class JobStats {
 public:
  using Ref = std::uint32_t;
  static constexpr std::uint32_t kDefaultMaxLabelSets = 1000;
  static constexpr std::uint32_t kMaxMaxLabelSets = 100'000;
  // The queue and kind of the overflow label set.
  static constexpr std::string_view kOverflow = "~other";

  // `max_label_sets`: 1..kMaxMaxLabelSets (clamped; the config validates it first).
  explicit JobStats(std::uint32_t max_label_sets = kDefaultMaxLabelSets);
  ~JobStats();
  JobStats(const JobStats&) = delete;
  JobStats& operator=(const JobStats&) = delete;

  // --- Core thread only. ---------------------------------------------------------------
  // The label set of (queue, kind): the existing one, a new one while under the cap, else the
  // overflow set.
  Ref Resolve(std::string_view queue, std::string_view kind);
  void Count(Ref ref, JobEvent event);
  // A duration in milliseconds (negative ones, from a wall-clock step, count as 0).
  void Observe(Ref ref, JobTime time, std::int64_t ms);

  // --- Any thread. ---------------------------------------------------------------------
  struct LabelSet {
    LabelSet(std::string_view q, std::string_view k) : queue(q), kind(k) {}
    const std::string queue;
    const std::string kind;
    std::array<std::atomic<std::uint64_t>, kJobEventCount> events{};
    std::array<obs::Histogram, kJobTimeCount> times;  // microseconds, LatencyBoundsUs
  };
  // Calls f(const LabelSet&) for every label set, in the order they were created, then the
  // overflow set if anything landed there.
  template <typename F>
  void ForEach(F&& f) const {
    const std::uint32_t n = published_.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) f(*slots_[i]);
    if (overflow_used_.load(std::memory_order_acquire)) f(*overflow_);
  }
  // Label sets held (the overflow set included once used).
  std::size_t label_sets() const {
    return published_.load(std::memory_order_acquire) +
           (overflow_used_.load(std::memory_order_acquire) ? 1 : 0);
  }
  // Events (family 0) or observations (families 1..3, JobTime + 1) folded into the overflow set.
  std::uint64_t overflow(std::size_t family) const {
    return overflow_counts_[family].load(std::memory_order_relaxed);
  }
  std::uint32_t max_label_sets() const { return max_; }

 private:
  // The two names, and a view of them for lookups that allocate nothing.
  struct Key {
    std::string queue;
    std::string kind;
  };
  struct KeyView {
    std::string_view queue;
    std::string_view kind;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(const KeyView& k) const;
    std::size_t operator()(const Key& k) const { return (*this)(KeyView{k.queue, k.kind}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView V(const Key& k) { return {k.queue, k.kind}; }
    static KeyView V(const KeyView& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return V(a).queue == V(b).queue && V(a).kind == V(b).kind;
    }
  };

  LabelSet& At(Ref ref) { return ref == overflow_ref() ? *overflow_ : *slots_[ref]; }
  Ref overflow_ref() const { return max_; }
  // Single writer: a relaxed load and store, no read-modify-write.
  static void Bump(std::atomic<std::uint64_t>& a) {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  const std::uint32_t max_;
  std::unique_ptr<std::unique_ptr<LabelSet>[]> slots_;  // max_ slots, filled in order
  std::atomic<std::uint32_t> published_{0};
  std::unique_ptr<LabelSet> overflow_;
  std::atomic<bool> overflow_used_{false};
  std::array<std::atomic<std::uint64_t>, kJobFamilyCount> overflow_counts_{};
  std::unordered_map<Key, Ref, KeyHash, KeyEq> refs_;  // core thread only
};

}  // namespace ym
