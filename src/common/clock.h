// Clock: the only source of time for code that must be testable with virtual time.
//
// Times are Unix epoch milliseconds (int64). Core never calls std::chrono::system_clock
// directly; it asks the Clock it was given, so tests drive it with ManualClock.
//
// Thread-safety: SystemClock is stateless. ManualClock is meant for single-threaded tests, but
// its value is atomic so a test thread may advance it while a core thread reads it.
#pragma once

#include <atomic>
#include <cstdint>

namespace ym {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual std::int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  std::int64_t NowMs() const override { return now_.load(std::memory_order_relaxed); }
  void Set(std::int64_t ms) { now_.store(ms, std::memory_order_relaxed); }
  void Advance(std::int64_t ms) { now_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  // Atomic only so a test thread may move time while another thread reads it.
  std::atomic<std::int64_t> now_;
};

}  // namespace ym
