// QueueConfig: the operator-set configuration of one queue (PUT /v1/queues/{q}).
//
// Every field has a server-wide default; a queue that was never configured uses the defaults and
// has no stored row. Per-job fields given at enqueue (max_attempts, backoff, lease_ms) win over
// the queue's.
#pragma once

#include <cstdint>
#include <string>

#include "core/job.h"

namespace ym {

struct Retention {
  // How long terminal jobs stay in the store (and visible to GET/list) after they finish.
  // 0 deletes a succeeded job in the same commit as its ack, like Sidekiq: the cheapest choice
  // for high-volume queues. Dead and cancelled jobs default to a week so an operator can act.
  std::int64_t succeeded_ms = 0;
  std::int64_t dead_ms = 7LL * 24 * 3600 * 1000;
  std::int64_t cancelled_ms = 7LL * 24 * 3600 * 1000;

  bool operator==(const Retention&) const = default;
};

struct QueueConfig {
  std::string name;
  bool paused = false;
  std::int32_t max_attempts = 10;
  std::int64_t lease_ms = 30'000;
  // Default execution timeout of the queue's jobs (core/attempt_timeout.h); 0: none.
  std::int64_t timeout_ms = 0;
  Backoff backoff;
  Retention retention;

  bool operator==(const QueueConfig&) const = default;
};

}  // namespace ym
