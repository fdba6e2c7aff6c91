// Clock: the only source of time for code that must be testable with virtual time.
//
// Two time lines:
//   * NowMs(): wall clock, Unix epoch milliseconds. For what users see and what is persisted:
//     run_at, created/updated/finished times, idempotency expiry, a lease's displayed and
//     stored expiry. It may step forward or back (NTP, an operator's `date -s`).
//   * MonoMs(): a monotonic clock in milliseconds since an arbitrary origin. For durations that
//     must not stretch or shrink when the wall clock steps: lease expiry, long-poll deadlines,
//     timers of the core loop. Never goes back; meaningless across processes, so a value to
//     persist is converted to wall time first (and back at load).
// Core never calls std::chrono clocks directly; it asks the Clock it was given, so tests drive it
// with ManualClock.
//
// Thread-safety: SystemClock is stateless. ManualClock is meant for single-threaded tests, but
// its values are atomic so a test thread may advance it while a core thread reads it.
#pragma once

#include <atomic>
#include <cstdint>

namespace ym {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall clock: milliseconds since the Unix epoch.
  virtual std::int64_t NowMs() const = 0;
  // Monotonic clock: milliseconds since an arbitrary origin; never decreases.
  virtual std::int64_t MonoMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override;   // std::chrono::system_clock
  std::int64_t MonoMs() const override;  // std::chrono::steady_clock
};

// Virtual time for tests. Advance() moves both clocks (time passes); StepWall() moves only the
// wall clock, as an NTP step or an operator changing the date would.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  std::int64_t NowMs() const override { return now_.load(std::memory_order_relaxed); }
  std::int64_t MonoMs() const override { return mono_.load(std::memory_order_relaxed); }
  // Moves the wall clock to `ms`; the monotonic clock advances by the same amount when that is
  // forward and stays put when it is back (as real time would not run backwards).
  void Set(std::int64_t ms) {
    const std::int64_t delta = ms - now_.exchange(ms, std::memory_order_relaxed);
    if (delta > 0) mono_.fetch_add(delta, std::memory_order_relaxed);
  }
  void Advance(std::int64_t ms) {
    now_.fetch_add(ms, std::memory_order_relaxed);
    mono_.fetch_add(ms, std::memory_order_relaxed);
  }
  // Steps the wall clock by `ms` (either sign) without any time passing.
  void StepWall(std::int64_t ms) { now_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  // Atomic only so a test thread may move time while another thread reads it.
  std::atomic<std::int64_t> now_;
  // Starts far from 0 and from the wall value, so code that mixes the two time lines shows up
  // in tests as wildly wrong times.
  std::atomic<std::int64_t> mono_{5'000'000'000};
};

}  // namespace ym
