// CircuitBreaker: stops dispatching to something that keeps failing, and probes it gently.
//
//              trip (below)              Admit at or after next_open_at
//   closed -----------------> open -----------------------------------> half_open (1 trial)
//    ^  ^                      ^                                             |
//    |  |                      +------ the trial failed: interval doubled ---+
//    |  +------------------------------ the trial succeeded: growth reset ---+
//    +--- Reset(), from any state
//
// Trip: while closed, after recording an outcome, the breaker opens when EITHER
//   * the last `consecutive_failures` outcomes were all failures (0 turns this off), OR
//   * the window of the last `window` outcomes (a ring: exactly the M most recent outcomes the
//     closed breaker recorded, no time decay) holds at least `min_samples` outcomes and
//     failures * 100 >= failure_percent * samples (exact integers; `window` 0 turns this off).
// The ratio is checked after a success too (as Resilience4j does): a success can be the sample
// that makes the window big enough to judge. A count window was chosen over a time window
// because it is exact with no clock-driven decay, its memory is fixed (one bit per slot), and a
// slow stream of failures still trips it.
//
// Open interval: open_base_ms for the first open after closing, doubled at each further
// consecutive open (a failed trial), capped at open_max_ms; a successful trial or Reset() starts
// over at open_base_ms. While open, Admit refuses and NextOpen says when it may run.
//
// Half-open: exactly one trial. The first Admit at or after next_open_at moves to half_open and
// returns the trial's permit; every other Admit is refused until that trial reports. If the
// trial ends without an outcome (cancelled, released), OnAbandoned lets one more trial through.
//
// Permits. Admit returns a permit that the outcome must come back with. It names the "epoch"
// (bumped at every transition and Reset) in which it was granted, and an outcome whose epoch is
// not the current one is ignored: a job admitted while closed and finishing after the breaker
// opened must not extend the open interval, count in the next closed window, or be mistaken for
// the half-open trial's outcome. So the half-open trial is the only permit of its epoch.
//
// Pure and single-threaded; times are ms passed in (the monotonic clock: an open interval is a
// duration). State lives in memory only: a restart starts closed (persisting it is for the
// scheduler wiring to decide).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/flow/sat_math.h"

namespace ym::flow {

struct BreakerConfig {
  static constexpr std::int64_t kMaxConsecutive = 1'000'000;
  static constexpr std::int64_t kMaxWindow = 10'000;
  static constexpr std::int64_t kMaxOpenMs = 30LL * 24 * 3600 * 1000;  // 30 days

  std::int64_t consecutive_failures = 5;  // 0 (off) or 1..kMaxConsecutive
  std::int64_t window = 0;                // 0 (off) or 1..kMaxWindow outcomes
  std::int64_t min_samples = 1;           // 1..window, when the window is on
  std::int64_t failure_percent = 50;      // 1..100, when the window is on
  std::int64_t open_base_ms = 1000;       // 1..kMaxOpenMs
  std::int64_t open_max_ms = 300'000;     // open_base_ms..kMaxOpenMs

  // kValidation naming the bad field (`field "breaker.<member>": ...`, the limit's JSON), else
  // OK. At least one trip condition must be on.
  Status Validate() const;
  bool operator==(const BreakerConfig&) const = default;
};

enum class BreakerPhase : std::uint8_t { kClosed, kOpen, kHalfOpen };
// "closed", "open", "half_open": the API's strings.
std::string_view BreakerPhaseName(BreakerPhase phase);

struct BreakerPermit {
  std::uint64_t epoch = 0;
};

// A snapshot for the API and CLI.
struct BreakerState {
  BreakerPhase phase = BreakerPhase::kClosed;
  std::int64_t opened_at_ms = 0;          // when it last opened; 0 while closed
  std::int64_t next_open_at_ms = 0;       // open: when the trial may start; else 0
  std::int64_t open_interval_ms = 0;      // the current (or last, when half-open) open interval
  std::int64_t consecutive_failures = 0;  // closed: failures in a row
  std::int64_t consecutive_opens = 0;     // opens since it was last closed by a trial or Reset
  std::int64_t window_samples = 0;        // outcomes in the ratio window
  std::int64_t window_failures = 0;
  bool trial_in_flight = false;  // half-open: the one trial is out
};

class CircuitBreaker {
 public:
  // The config must Validate(); Make returns its error otherwise.
  static Result<CircuitBreaker> Make(const BreakerConfig& config);

  // A permit when a job may start now (closed; or the single half-open trial), else nullopt.
  std::optional<BreakerPermit> Admit(std::int64_t now);
  // The outcome of an admitted job. Returns false, changing nothing, for a permit of an earlier
  // epoch (see the header comment); true when the outcome was counted.
  bool OnSuccess(BreakerPermit permit, std::int64_t now);
  bool OnFailure(BreakerPermit permit, std::int64_t now);
  // The admitted job ended without an outcome. Frees the half-open trial slot (the next Admit
  // becomes the trial); no effect otherwise. Returns whether it freed the slot.
  bool OnAbandoned(BreakerPermit permit);
  // The earliest ms >= now at which Admit could succeed: now when closed (or half-open with the
  // trial slot free), next_open_at when open, kNever while the trial is out.
  std::int64_t NextOpen(std::int64_t now) const;
  // An operator's reset: closed, every counter and the interval growth cleared, outstanding
  // permits ignored.
  void Reset();

  BreakerState State() const;
  const BreakerConfig& config() const { return config_; }

 private:
  explicit CircuitBreaker(const BreakerConfig& config);
  // Records one closed-state outcome and opens when a trip condition holds.
  void Record(bool failure, std::int64_t now);
  void Open(std::int64_t now);
  void CloseFresh();

  BreakerConfig config_;
  BreakerPhase phase_ = BreakerPhase::kClosed;
  std::uint64_t epoch_ = 0;
  std::int64_t opened_at_ = 0;
  std::int64_t next_open_at_ = 0;
  std::int64_t interval_ = 0;
  std::int64_t consecutive_failures_ = 0;
  std::int64_t consecutive_opens_ = 0;
  bool trial_in_flight_ = false;
  // The ratio window: ring_[(head_ + i) % window] for i < samples_, oldest first.
  std::vector<bool> ring_;
  std::size_t head_ = 0;
  std::int64_t samples_ = 0;
  std::int64_t failures_ = 0;
};

}  // namespace ym::flow
