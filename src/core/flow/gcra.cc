#include "core/flow/gcra.h"

#include <string>

namespace ym::flow {

Status GcraConfig::Validate() const {
  if (count < 1 || count > kMaxCount) {
    return Validation("rate count must be 1.." + std::to_string(kMaxCount) + " per period, got " +
                      std::to_string(count));
  }
  if (period_ms < 1 || period_ms > kMaxPeriodMs) {
    return Validation("rate period must be 1.." + std::to_string(kMaxPeriodMs) +
                      " ms (a second, minute or hour), got " + std::to_string(period_ms));
  }
  if (burst < 1 || burst > kMaxBurst) {
    return Validation("rate burst must be 1.." + std::to_string(kMaxBurst) + ", got " +
                      std::to_string(burst));
  }
  return Status::Ok();
}

Result<Gcra> Gcra::Make(const GcraConfig& config) {
  YM_RETURN_IF_ERROR(config.Validate());
  return Gcra(config);
}

Gcra::Gcra(const GcraConfig& config) : config_(config) {
  // In units of 1/count ms, T is exactly period_ms units and tau exactly (burst - 1) * period_ms
  // units (at most 8.64e16 under the config bounds, no overflow); split each into ms + fraction.
  interval_ = {config.period_ms / config.count, config.period_ms % config.count};
  const std::int64_t tau_units = (config.burst - 1) * config.period_ms;
  tolerance_ = {tau_units / config.count, tau_units % config.count};
}

bool Gcra::Admit(GcraTime& tat, std::int64_t now) const {
  // Conforming iff TAT - tau <= now, compared as TAT <= now + tau to stay in normalised form.
  if (!LessEq(tat, {SatAdd(now, tolerance_.ms), tolerance_.frac})) return false;
  // TAT = max(TAT, now) + T. A TAT at or before `now` restarts from `now`: a caller that was
  // idle gets no credit beyond the burst, which the tolerance already grants.
  GcraTime base = LessEq(tat, {now, 0}) ? GcraTime{now, 0} : tat;
  std::int64_t frac = base.frac + interval_.frac;  // < 2 * count: no overflow
  const bool carry = frac >= config_.count;
  if (carry) frac -= config_.count;
  tat = {SatAdd(SatAdd(base.ms, interval_.ms), carry ? 1 : 0), frac};
  return true;
}

GcraTime Gcra::Saturated(std::int64_t t0) const {
  // burst * T = tau + T, in units of 1/count ms: burst * period_ms <= 8.64e16, no overflow.
  const std::int64_t units = config_.burst * config_.period_ms;
  return {SatAdd(t0, units / config_.count), units % config_.count};
}

std::int64_t Gcra::NextOpen(const GcraTime& tat, std::int64_t now) const {
  if (LessEq(tat, {SatAdd(now, tolerance_.ms), tolerance_.frac})) return now;
  // The first whole ms t with TAT - tau <= t: the ceiling of TAT - tau (which is > now here).
  std::int64_t ms = SatSub(tat.ms, tolerance_.ms);
  std::int64_t frac = tat.frac - tolerance_.frac;
  if (frac < 0) {
    frac += config_.count;
    ms = SatSub(ms, 1);
  }
  return SatAdd(ms, frac > 0 ? 1 : 0);
}

}  // namespace ym::flow
