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
  // Succeeded jobs are kept a day by default, with their result, so a producer can look up what
  // its job returned (Celery, River and Solid Queue keep a day too). 0 deletes a succeeded job in
  // the same commit as its ack, like Sidekiq: the cheapest choice for high-volume queues. Dead
  // and cancelled jobs default to a week so an operator can act.
  std::int64_t succeeded_ms = 24LL * 3600 * 1000;
  std::int64_t dead_ms = 7LL * 24 * 3600 * 1000;
  std::int64_t cancelled_ms = 7LL * 24 * 3600 * 1000;
  // The most finished jobs of each state kept per queue (0: no cap); past it the oldest-finished
  // are purged first. Per state, so a flood of succeeded jobs never evicts the dead letters an
  // operator must replay. Defaults bound the disk a queue's history takes (about 1 KB a row
  // without payload: a few GB at worst) while keeping far more than anyone pages through.
  std::int64_t max_succeeded = 1'000'000;
  std::int64_t max_dead = 100'000;
  std::int64_t max_cancelled = 100'000;

  // Window and cap for one terminal state.
  std::int64_t WindowMs(JobState s) const {
    return s == JobState::kSucceeded ? succeeded_ms : s == JobState::kDead ? dead_ms : cancelled_ms;
  }
  std::int64_t MaxKept(JobState s) const {
    return s == JobState::kSucceeded ? max_succeeded
           : s == JobState::kDead    ? max_dead
                                     : max_cancelled;
  }

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
  // Share of a lease that names several queues (weighted fair queueing, 1..1000): queues with
  // ready jobs get jobs in proportion to their weights (docs/flow-control.md).
  std::int64_t weight = 1;

  bool operator==(const QueueConfig&) const = default;
};

}  // namespace ym
