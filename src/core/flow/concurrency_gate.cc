#include "core/flow/concurrency_gate.h"

namespace ym::flow {

Status ConcurrencyConfig::Validate() const {
  if (cap < 1 || cap > kMaxCap) {
    return Validation("concurrency cap must be 1.." + std::to_string(kMaxCap) +
                      " (1 runs one at a time), got " + std::to_string(cap));
  }
  return Status::Ok();
}

Result<ConcurrencyGate> ConcurrencyGate::Make(const ConcurrencyConfig& config) {
  YM_RETURN_IF_ERROR(config.Validate());
  return ConcurrencyGate(config.cap);
}

Status ConcurrencyGate::Release() {
  if (count_ == 0) return InvalidState("concurrency gate: release with no slot held");
  --count_;
  return Status::Ok();
}

Status ConcurrencyGate::SetCap(const ConcurrencyConfig& config) {
  YM_RETURN_IF_ERROR(config.Validate());
  cap_ = config.cap;
  return Status::Ok();
}

}  // namespace ym::flow
