#include "core/attempt_timeout.h"

#include <string>

namespace ym {

Status AttemptTimeout::Check(std::int64_t timeout_ms, const char* field) {
  if (timeout_ms < 0 || timeout_ms > kMaxMs) {
    return Validation(std::string("field \"") + field + "\": must be 0 (no timeout) or 1.." +
                      std::to_string(kMaxMs) + " milliseconds");
  }
  return Status::Ok();
}

FailSpec AttemptTimeout::Failure(std::int64_t timeout_ms) {
  FailSpec f;
  f.type = "timeout";
  f.message = "attempt exceeded its timeout of " + std::to_string(timeout_ms) +
              " ms (timeout_ms) and was failed by the broker";
  f.retryable = true;
  return f;
}

}  // namespace ym
