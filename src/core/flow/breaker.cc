#include "core/flow/breaker.h"

#include <algorithm>
#include <string>

namespace ym::flow {

namespace {
std::string Range(std::int64_t lo, std::int64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}
}  // namespace

Status BreakerConfig::Validate() const {
  if (consecutive_failures < 0 || consecutive_failures > kMaxConsecutive) {
    return Validation("field \"breaker.consecutive_failures\": must be 0 (off) or " +
                      Range(1, kMaxConsecutive) + ", got " + std::to_string(consecutive_failures));
  }
  if (window < 0 || window > kMaxWindow) {
    return Validation("field \"breaker.window\": must be 0 (off) or " + Range(1, kMaxWindow) +
                      " outcomes, got " + std::to_string(window));
  }
  if (consecutive_failures == 0 && window == 0) {
    return Validation(
        "field \"breaker\": needs consecutive_failures or window (a failure ratio) to trip");
  }
  if (window > 0) {
    if (min_samples < 1 || min_samples > window) {
      return Validation("field \"breaker.min_samples\": must be " + Range(1, window) +
                        " (at most the window), got " + std::to_string(min_samples));
    }
    if (failure_percent < 1 || failure_percent > 100) {
      return Validation("field \"breaker.failure_percent\": must be 1..100, got " +
                        std::to_string(failure_percent));
    }
  }
  if (open_base_ms < 1 || open_base_ms > kMaxOpenMs) {
    return Validation("field \"breaker.open_base_ms\": must be " + Range(1, kMaxOpenMs) + ", got " +
                      std::to_string(open_base_ms));
  }
  if (open_max_ms < open_base_ms || open_max_ms > kMaxOpenMs) {
    return Validation("field \"breaker.open_max_ms\": must be " + Range(open_base_ms, kMaxOpenMs) +
                      " (at least open_base_ms), got " + std::to_string(open_max_ms));
  }
  return Status::Ok();
}

std::string_view BreakerPhaseName(BreakerPhase phase) {
  switch (phase) {
    case BreakerPhase::kClosed:
      return "closed";
    case BreakerPhase::kOpen:
      return "open";
    case BreakerPhase::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

Result<CircuitBreaker> CircuitBreaker::Make(const BreakerConfig& config) {
  YM_RETURN_IF_ERROR(config.Validate());
  return CircuitBreaker(config);
}

CircuitBreaker::CircuitBreaker(const BreakerConfig& config)
    : config_(config), ring_(static_cast<std::size_t>(config.window)) {}

std::optional<BreakerPermit> CircuitBreaker::Admit(std::int64_t now) {
  switch (phase_) {
    case BreakerPhase::kClosed:
      return BreakerPermit{epoch_};
    case BreakerPhase::kOpen:
      if (now < next_open_at_) return std::nullopt;
      // The interval has passed: this caller carries the trial, in an epoch of its own so that
      // no permit granted before can pass for it.
      phase_ = BreakerPhase::kHalfOpen;
      ++epoch_;
      trial_in_flight_ = true;
      return BreakerPermit{epoch_};
    case BreakerPhase::kHalfOpen:
      if (trial_in_flight_) return std::nullopt;
      trial_in_flight_ = true;  // the previous trial was abandoned
      return BreakerPermit{epoch_};
  }
  return std::nullopt;
}

bool CircuitBreaker::OnSuccess(BreakerPermit permit, std::int64_t now) {
  if (permit.epoch != epoch_) return false;
  switch (phase_) {
    case BreakerPhase::kClosed:
      Record(false, now);
      return true;
    case BreakerPhase::kHalfOpen:
      CloseFresh();
      return true;
    case BreakerPhase::kOpen:
      return false;  // unreachable: opening bumps the epoch
  }
  return false;
}

bool CircuitBreaker::OnFailure(BreakerPermit permit, std::int64_t now) {
  if (permit.epoch != epoch_) return false;
  switch (phase_) {
    case BreakerPhase::kClosed:
      Record(true, now);
      return true;
    case BreakerPhase::kHalfOpen:
      Open(now);  // the trial failed: open again for a doubled interval
      return true;
    case BreakerPhase::kOpen:
      return false;
  }
  return false;
}

bool CircuitBreaker::OnAbandoned(BreakerPermit permit) {
  if (permit.epoch != epoch_ || phase_ != BreakerPhase::kHalfOpen || !trial_in_flight_) {
    return false;
  }
  // A new epoch, so the abandoned permit cannot report later and pass for the next trial.
  ++epoch_;
  trial_in_flight_ = false;
  return true;
}

std::int64_t CircuitBreaker::NextOpen(std::int64_t now) const {
  switch (phase_) {
    case BreakerPhase::kClosed:
      return now;
    case BreakerPhase::kOpen:
      return std::max(now, next_open_at_);
    case BreakerPhase::kHalfOpen:
      return trial_in_flight_ ? kNever : now;
  }
  return now;
}

void CircuitBreaker::Reset() { CloseFresh(); }

void CircuitBreaker::Record(bool failure, std::int64_t now) {
  consecutive_failures_ = failure ? consecutive_failures_ + 1 : 0;
  if (config_.window > 0) {
    const auto window = static_cast<std::size_t>(config_.window);
    if (samples_ < config_.window) {
      ring_[(head_ + static_cast<std::size_t>(samples_)) % window] = failure;
      ++samples_;
    } else {
      // Full: the oldest outcome leaves as the new one takes its slot.
      failures_ -= ring_[head_] ? 1 : 0;
      ring_[head_] = failure;
      head_ = (head_ + 1) % window;
    }
    failures_ += failure ? 1 : 0;
  }
  const bool by_run =
      config_.consecutive_failures > 0 && consecutive_failures_ >= config_.consecutive_failures;
  // samples_ <= 10,000, so failures_ * 100 cannot overflow.
  const bool by_ratio = config_.window > 0 && samples_ >= config_.min_samples &&
                        failures_ * 100 >= config_.failure_percent * samples_;
  if (by_run || by_ratio) Open(now);
}

void CircuitBreaker::Open(std::int64_t now) {
  // Doubling from a value <= kMaxOpenMs (2.6e9) cannot overflow.
  interval_ =
      consecutive_opens_ == 0 ? config_.open_base_ms : std::min(interval_ * 2, config_.open_max_ms);
  ++consecutive_opens_;
  phase_ = BreakerPhase::kOpen;
  ++epoch_;
  opened_at_ = now;
  next_open_at_ = SatAdd(now, interval_);
  trial_in_flight_ = false;
  // The closed-state history is not carried into the next closed period: it reopens judged
  // only on what happens after it closes.
  consecutive_failures_ = 0;
  head_ = 0;
  samples_ = 0;
  failures_ = 0;
}

void CircuitBreaker::CloseFresh() {
  phase_ = BreakerPhase::kClosed;
  ++epoch_;
  opened_at_ = 0;
  next_open_at_ = 0;
  interval_ = 0;
  consecutive_opens_ = 0;
  trial_in_flight_ = false;
  consecutive_failures_ = 0;
  head_ = 0;
  samples_ = 0;
  failures_ = 0;
}

BreakerState CircuitBreaker::State() const {
  BreakerState s;
  s.phase = phase_;
  s.opened_at_ms = opened_at_;
  s.next_open_at_ms = phase_ == BreakerPhase::kOpen ? next_open_at_ : 0;
  s.open_interval_ms = interval_;
  s.consecutive_failures = consecutive_failures_;
  s.consecutive_opens = consecutive_opens_;
  s.window_samples = samples_;
  s.window_failures = failures_;
  s.trial_in_flight = trial_in_flight_;
  return s;
}

}  // namespace ym::flow
