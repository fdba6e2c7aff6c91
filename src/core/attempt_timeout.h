// AttemptTimeout: the execution timeout of one attempt (`timeout_ms`, issue 9 item 6).
//
// A job may carry a timeout (its own `timeout_ms` at enqueue, else its queue's, else the
// server's default; 0 means none). An attempt that starts (is leased) at monotonic time `start`
// must end by `start + timeout`, its deadline. The rules, kept here so the Scheduler only wires
// them:
//   * a lease never expires after the deadline: the expiry a lease or a heartbeat would grant
//     is capped at it (Cap), so heartbeats cannot keep a hung handler alive;
//   * once the deadline has come (Due), the attempt fails with error type `timeout`
//     (Failure), retried by the job's backoff like any reported failure, or dead when its
//     attempts are used up;
//   * a lease that lapses before its deadline (the worker stopped beating) is an ordinary
//     `lease_expired`, not a timeout.
//
//   lease granted at start          heartbeats extend...        ...but never past the deadline
//   |------ lease ------|---- extension ----|-- ext --|
//   |<------------------------ timeout_ms ------------------------>| deadline: fail "timeout"
//
// Pure value functions: no clock reads (time passed in), no state. Deadlines are on the
// monotonic clock like lease expiries; 0 stands for "no deadline".
#pragma once

#include <cstdint>
#include <optional>

#include "common/status.h"
#include "core/types.h"

namespace ym {

struct AttemptTimeout {
  // Largest timeout accepted (a day, the longest lease).
  static constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;

  // kValidation unless `timeout_ms` is 0 (none) or 1..kMaxMs; `field` names it in the message.
  static Status Check(std::int64_t timeout_ms, const char* field);
  // The timeout a new job gets: its own when given (0 included, which opts out of the queue's),
  // else its queue's.
  static std::int64_t Resolve(const std::optional<std::int64_t>& job_ms, std::int64_t queue_ms) {
    return job_ms ? *job_ms : queue_ms;
  }
  // The deadline of an attempt started at `start_mono_ms`: 0 when the job has no timeout.
  static std::int64_t Deadline(std::int64_t start_mono_ms, std::int64_t timeout_ms) {
    return timeout_ms > 0 ? start_mono_ms + timeout_ms : 0;
  }
  // The expiry to grant: `expires` capped at `deadline` (0: no cap).
  static std::int64_t Cap(std::int64_t expires, std::int64_t deadline) {
    return deadline != 0 && deadline < expires ? deadline : expires;
  }
  // True when an attempt with this deadline has run out of time at `now` (monotonic).
  static bool Due(std::int64_t deadline, std::int64_t now) {
    return deadline != 0 && now >= deadline;
  }
  // The failure recorded for an attempt that ran out of time: type "timeout", retryable, and
  // retried after the job's backoff (no retry_in_ms), unlike a lapsed lease.
  static FailSpec Failure(std::int64_t timeout_ms);
};

}  // namespace ym
