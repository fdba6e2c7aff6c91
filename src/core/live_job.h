// LiveJob: core's compact in-memory form of a live (non-terminal) job.
//
// Kept small on purpose (the memory target is < 300 bytes per queued job beyond its payload):
// strings that repeat across jobs (queue, namespace, kind) are interned to 32-bit indexes, and
// everything most jobs never use lives behind one optional pointer (`extra`).
//
// Owner: the Scheduler (through JobIndex), core thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/job_origin.h"

namespace ym {

struct JobExtra {
  Backoff backoff;  // meaningful only when has_backoff
  bool has_backoff = false;
  std::string idempotency_key;
  std::string concurrency_key;
  std::vector<std::string> tags;
  std::vector<AttemptError> errors;
  std::string progress;  // the running attempt's progress (JSON object text); empty: none
};

struct LiveJob {
  JobId id = 0;
  std::int64_t run_at_ms = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;  // last state change; for a ready job, when it became ready
  // Lease expiry on the monotonic clock (Clock::MonoMs), and the expiry last written to the
  // store (also monotonic; heartbeats persist extensions lazily, see Scheduler::Heartbeat).
  std::int64_t lease_expires_ms = 0;
  std::int64_t lease_durable_ms = 0;
  std::uint64_t lease_token = 0;
  // Sequence of the job's current entry in a ready heap or timer heap. Heap entries carry the
  // seq they were pushed with; a mismatch marks them stale (lazy deletion keeps every removal
  // O(1) and every heap operation O(log n)).
  std::uint64_t seq = 0;
  std::uint32_t queue = 0;   // index into Scheduler::queues_
  std::uint32_t ns = 0;      // interned namespace
  std::uint32_t kind = 0;    // interned kind
  std::uint32_t worker = 0;  // interned worker id of the current lease (0: none given)
  std::int32_t priority = 0;
  std::int32_t attempts = 0;
  std::int32_t max_attempts = 0;
  std::int32_t runs = 1;
  std::int32_t lease_ms = 0;
  JobState state = JobState::kReady;
  // Enqueued (or replayed) but not yet durable: invisible to dispatch until its batch commits.
  bool pending = false;
  bool cancel_requested = false;
  // Scheduled because of a retry backoff (for blocked_reason), not an initial delay.
  bool retry_wait = false;
  // Terminal in memory, waiting for its batch to commit before it leaves core.
  bool evicting = false;
  // Scheduled while it waits in a debounce group (blocked_reason "debounced", counted in its
  // queue's `debounced`; core/flow/key_groups.h). Fits the padding: the struct does not grow.
  bool debounced = false;
  // Length of the current lease as granted or last extended by a heartbeat (fits the padding
  // after the flags above, so the struct does not grow).
  std::int32_t lease_length_ms = 0;
  // Execution timeout (core/attempt_timeout.h; 0: none) and, while active, the attempt's
  // deadline on the monotonic clock (0: none).
  std::int32_t timeout_ms = 0;
  // Gate set (core/flow/limit_set.h; 0: none), a reference held while the job is in the index.
  // Fits the padding before deadline_ms: the struct does not grow.
  std::uint32_t gates = 0;
  // Its label set in JobStats (core/job_stats.h; 0 when none is kept), resolved once when core
  // takes the job in, so that counting an event needs no lookup by name.
  std::uint32_t stats = 0;
  std::int64_t deadline_ms = 0;
  // When the running attempt was leased (monotonic; 0: unknown, an attempt recovered from the
  // store), for its run time (JobStats).
  std::int64_t attempt_started_ms = 0;
  std::string payload;
  std::unique_ptr<JobExtra> extra;
  // Its enqueue request's id and trace context (core/job_origin.h); one pointer, null when none.
  JobOrigin origin;

  JobExtra& Extra() {
    if (!extra) extra = std::make_unique<JobExtra>();
    return *extra;
  }
};

}  // namespace ym
