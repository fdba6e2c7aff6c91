// GCRA: the Generic Cell Rate Algorithm, an exact rate limiter with one integer state per key.
//
// A rate of `count` per `period_ms` with a `burst` admits, at most, in EVERY closed time window
// [t, t + W] (W >= 0, in ms):
//
//     admitted <= count * W / period_ms + burst                                            (1)
//
// and admits every call that would keep (1) true: a caller's sequence of calls is admitted in
// full exactly when that sequence itself satisfies (1). Nothing is approximated: no float, no
// rounding of the rate.
//
// The math. T = period_ms / count is the emission interval (the spacing of a steady caller) and
// tau = (burst - 1) * T the burst tolerance (how far ahead of schedule a caller may run). The
// state is the theoretical arrival time TAT: when the next call would be due if the caller had
// kept exactly to the rate. A call at `now` conforms iff
//
//     TAT - tau <= now                                  then   TAT = max(TAT, now) + T
//
// Unrolling the max, after admits at a_1 <= ... <= a_{j-1}, TAT = max_i (a_i + (j - i) * T), so
// a_j conforms iff a_j - a_i >= (j - i) * T - tau for every earlier admit i, which is (1) for the
// window [a_i, a_j] holding j - i + 1 admits. That is why tau is (burst - 1) * T and not
// burst * T: a fresh key admits exactly `burst` calls at one instant. Refused calls do not move
// TAT, so the admitted calls always form a sequence satisfying (1).
//
// Exact time. T is rarely a whole number of ms (7/s is 142.857... ms), and rounding it to ms or
// µs makes the limiter admit slightly more than the rate, which (1) checked over a long window
// catches. So times are kept as a ms part plus a fraction in units of 1/count ms: T is
// `period_ms / count` ms plus `period_ms % count` units, added with a carry. A TAT costs 16 bytes
// and every comparison is integer and exact; no product of `now` with `count` is formed, so no
// `now` can overflow it (a 128-bit "time * count" would also be exact but costs the same memory
// and needs __int128).
//
// Memory. A key whose TAT <= now behaves exactly like a key never seen (both admit with
// TAT = now + T), so its state can be dropped. KeyedGcra drops such keys lazily through a min-heap
// of expiry times with one entry per key; see there for the bound.
//
// Pure and single-threaded: no clock is read, every call takes `now` in ms from the scheduler's
// injected clock. A rate is a duration, so the wiring should pass the monotonic clock (MonoMs,
// common/clock.h), which never steps back, and convert NextOpen to wall time for display.
// Should a clock step back anyway, one state is safe by construction: after any call at time L
// its TAT is > L (admitted: TAT >= L + T; refused: TAT > L + tau), so a later call at an
// earlier time conforms only if it would at L and moves TAT exactly as it would at L. Across
// keys that is not enough (a key dropped at L, or never seen, would take an earlier time at
// face value and admit again what it admitted at L), so KeyedGcra treats every call as made at
// the latest time it has seen: (1) then holds per key with each admit stamped at that time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/flow/sat_math.h"

namespace ym::flow {

struct GcraConfig {
  // Bounds that keep every derived span below 2^62 ms: tau <= kMaxBurst * kMaxPeriodMs = 8.64e16.
  static constexpr std::int64_t kMaxCount = 1'000'000'000;
  static constexpr std::int64_t kMaxPeriodMs = 86'400'000;  // a day
  static constexpr std::int64_t kMaxBurst = 1'000'000'000;

  std::int64_t count = 1;         // admits per period, 1..kMaxCount
  std::int64_t period_ms = 1000;  // 1000 (per second), 60000 (minute), 3600000 (hour); 1..a day
  std::int64_t burst = 1;         // admits allowed at one instant from rest, 1..kMaxBurst

  static GcraConfig PerSecond(std::int64_t n, std::int64_t burst = 1) { return {n, 1000, burst}; }
  static GcraConfig PerMinute(std::int64_t n, std::int64_t burst = 1) { return {n, 60000, burst}; }
  static GcraConfig PerHour(std::int64_t n, std::int64_t burst = 1) { return {n, 3600000, burst}; }

  // kValidation naming the bad field and its allowed range, else OK.
  Status Validate() const;
  bool operator==(const GcraConfig&) const = default;
};

// A time with a fraction: `ms + frac / count` ms, 0 <= frac < count (count from the config).
struct GcraTime {
  std::int64_t ms = std::numeric_limits<std::int64_t>::min();  // default: before any `now`
  std::int64_t frac = 0;
};

// The rate, with its interval and tolerance precomputed; the per-key state (a GcraTime) is kept
// by the caller. Immutable once made.
class Gcra {
 public:
  // The config must Validate(); Make returns its error otherwise.
  static Result<Gcra> Make(const GcraConfig& config);

  const GcraConfig& config() const { return config_; }

  // True when a call at `now` conforms; then `tat` is advanced by one interval.
  bool Admit(GcraTime& tat, std::int64_t now) const;
  // The earliest ms >= now at which Admit would succeed (== now when it would now).
  std::int64_t NextOpen(const GcraTime& tat, std::int64_t now) const;
  // The first ms at which this state is equivalent to a fresh one (TAT <= that ms).
  static std::int64_t ExpiresAt(const GcraTime& tat) { return SatAdd(tat.ms, tat.frac > 0); }
  // The state of a key that has just used its whole burst at `t0` (TAT = t0 + burst * T): the
  // largest TAT any sequence of admits at or before t0 can leave, so a limiter started from it
  // at t0 stays within (1) together with whatever was admitted before t0 (GCRA is monotone in
  // TAT: a later TAT never admits a call an earlier one refuses). The next admit is at t0 + T.
  GcraTime Saturated(std::int64_t t0) const;

 private:
  explicit Gcra(const GcraConfig& config);
  // a <= b, both normalised (0 <= frac < count).
  static bool LessEq(const GcraTime& a, const GcraTime& b) {
    return a.ms < b.ms || (a.ms == b.ms && a.frac <= b.frac);
  }

  GcraConfig config_;
  GcraTime interval_;   // T = period_ms / count
  GcraTime tolerance_;  // tau = (burst - 1) * T
};

// One global limit: a Gcra and its single TAT.
class GcraLimiter {
 public:
  explicit GcraLimiter(Gcra rate) : rate_(std::move(rate)) {}
  bool Admit(std::int64_t now) { return rate_.Admit(tat_, now); }
  std::int64_t NextOpen(std::int64_t now) const { return rate_.NextOpen(tat_, now); }
  const Gcra& rate() const { return rate_; }

 private:
  Gcra rate_;
  GcraTime tat_;
};

// One limit applied per key (a customer id, a concurrency key, an interned lane id), with memory
// bounded by the keys that are actually constrained.
//
// A map key -> TAT plus a min-heap of {expiry, key}, exactly one heap entry per key, whose expiry
// is never later than the key's real ExpiresAt (TAT only grows). Every Admit first sweeps the heap
// top: an entry that is due is either erased (its key's TAT <= now: equivalent to a fresh key) or
// re-pushed at the key's current expiry (the key was admitted again since). At most
// kSweepErasePerCall keys are erased per call; re-pushes are not limited but each is paid for by
// an earlier Admit of that key, so a call costs amortised O(log keys).
//
// Bound: each call adds at most one key and, while expired keys remain, erases two, so the map
// never holds more than (the largest number of keys unexpired at once) + 1 entries, however many
// distinct keys pass through. The scheduler may also call Sweep from its Tick.
//
// The limiter is owned here rather than left to the caller's map so that the expiry bookkeeping
// cannot drift from the TATs: no caller can grow a TAT without the heap knowing.
template <typename Key, typename Hash = std::hash<Key>>
class KeyedGcra {
 public:
  static constexpr std::size_t kSweepErasePerCall = 2;

  explicit KeyedGcra(Gcra rate) : rate_(std::move(rate)) {}

  // Every key not holding state is treated as holding `floor` (default: fresh). A limiter
  // (re)started at t0 without the state it had, after a restart or a change of its rate, starts
  // from Gcra::Saturated(t0): as if every key had just used its whole burst, which keeps (1)
  // across the gap whatever was admitted before it, at the cost of at most one burst.
  void SetFloor(const GcraTime& floor) { floor_ = floor; }

  bool Admit(const Key& key, std::int64_t now) {
    now = latest_ = std::max(latest_, now);
    Sweep(now, kSweepErasePerCall);
    auto [it, inserted] = tats_.try_emplace(key, floor_);
    const bool ok = rate_.Admit(it->second, now);
    if (inserted) expiry_.push({Gcra::ExpiresAt(it->second), key});
    return ok;
  }

  std::int64_t NextOpen(const Key& key, std::int64_t now) const {
    now = std::max(latest_, now);
    auto it = tats_.find(key);
    return rate_.NextOpen(it == tats_.end() ? floor_ : it->second, now);
  }

  // Erases up to `max_erase` keys that are equivalent to fresh ones at `now`; returns how many.
  std::size_t Sweep(std::int64_t now, std::size_t max_erase) {
    now = latest_ = std::max(latest_, now);
    std::size_t erased = 0;
    while (erased < max_erase && !expiry_.empty() && expiry_.top().due <= now) {
      Entry e = expiry_.top();
      expiry_.pop();
      auto it = tats_.find(e.key);
      const std::int64_t due = Gcra::ExpiresAt(it->second);
      if (due <= now) {
        tats_.erase(it);
        ++erased;
      } else {
        expiry_.push({due, std::move(e.key)});  // admitted since: look again when it expires
      }
    }
    return erased;
  }

  // Keys holding state (fresh-equivalent keys not yet swept included).
  std::size_t size() const { return tats_.size(); }
  const Gcra& rate() const { return rate_; }

 private:
  struct Entry {
    std::int64_t due;
    Key key;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.due > b.due; }
  };

  Gcra rate_;
  std::int64_t latest_ = std::numeric_limits<std::int64_t>::min();  // latest `now` seen
  GcraTime floor_;  // the state of keys not in tats_
  std::unordered_map<Key, GcraTime, Hash> tats_;
  std::priority_queue<Entry, std::vector<Entry>, Later> expiry_;
};

}  // namespace ym::flow
