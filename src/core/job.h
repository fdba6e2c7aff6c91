// The job model: the persisted record of a job and the values that describe it.
//
// Life cycle (docs/guarantees.md has the full contract):
//
//            enqueue (durable)                 lease                ack
//   +-----------+   run_at due   +-------+  ------------>  +--------+  ------>  +-----------+
//   | scheduled | -------------> | ready |                 | active |           | succeeded |
//   +-----------+                +-------+  <------------  +--------+           +-----------+
//         ^                          ^    lease expired /      |  fail, attempts left
//         |   retry backoff          |    released              |
//         +--------------------------+--------------------------+
//                                                                | fail non-retryable or
//   cancel (scheduled/ready at once; active via heartbeat flag)  | attempts exhausted
//   ---------------------------------------->  +-----------+      v
//                                              | cancelled |   +------+
//                                              +-----------+   | dead |  -- replay --> ready
//                                                              +------+
// succeeded, dead and cancelled are terminal: nothing changes them except an explicit replay of
// a dead or cancelled job, which starts a new run (attempts reset) of the same job id.
//
// JobRecord is a plain value used at module boundaries (store rows, API rendering). Core keeps
// its own compact in-memory form for live jobs (core/scheduler.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/trace_context.h"

namespace ym {

using JobId = std::uint64_t;

// The numeric values are persisted (docs/storage-format.md): never renumber.
enum class JobState : std::uint8_t {
  kScheduled = 0,
  kReady = 1,
  kActive = 2,
  kSucceeded = 3,
  kDead = 4,
  kCancelled = 5,
};

inline bool IsTerminal(JobState s) { return static_cast<std::uint8_t>(s) >= 3; }
std::string_view StateName(JobState s);
// Parses "scheduled", "ready", ...; nullopt for anything else.
std::optional<JobState> ParseState(std::string_view name);

// Exponential backoff with full jitter: the delay before retry n (n >= 1) is uniform in
// [0, min(max_ms, initial_ms * multiplier^(n-1))].
struct Backoff {
  std::int64_t initial_ms = 1000;
  std::int64_t max_ms = 3'600'000;
  double multiplier = 2.0;

  bool operator==(const Backoff&) const = default;
};

// One failed attempt. `type` is a short machine-readable class ("lease_expired", "timeout",
// or whatever the worker reported), `message` the human text.
struct AttemptError {
  std::int32_t attempt = 0;
  std::string type;
  std::string message;
  std::int64_t at_ms = 0;

  bool operator==(const AttemptError&) const = default;
};

// Why a job went to the dead-letter set.
inline constexpr std::string_view kDeadNonRetryable = "non_retryable";
inline constexpr std::string_view kDeadMaxAttempts = "max_attempts_exceeded";

// The full record of a job, as the store keeps it and the API shows it.
struct JobRecord {
  JobId id = 0;
  std::string ns = "default";  // namespace (tenant)
  std::string queue;
  std::string kind;
  JobState state = JobState::kReady;
  std::int32_t priority = 0;     // higher runs first within a queue
  std::string payload = "null";  // JSON text, validated at enqueue
  std::int64_t run_at_ms = 0;    // when a scheduled job becomes ready
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t finished_at_ms = 0;  // 0 while live
  std::int32_t attempts = 0;        // attempts started in the current run
  std::int32_t max_attempts = 10;
  std::int32_t runs = 1;  // 1 + number of replays
  Backoff backoff;
  std::int64_t lease_ms = 30'000;
  // Longest run of one attempt (core/attempt_timeout.h); 0: none. Fixed at enqueue.
  std::int64_t timeout_ms = 0;
  std::string idempotency_key;  // empty: none
  std::string concurrency_key;  // empty: none
  std::vector<std::string> tags;
  std::vector<AttemptError> errors;  // every failed attempt of every run, oldest first
  std::string dead_reason;           // set when state == kDead
  std::string result;                // JSON text given with the ack; empty: none
  bool cancel_requested = false;
  // The current lease while state == kActive (all zero / empty otherwise). Persisted so that a
  // restart keeps running jobs leased to their workers (docs/architecture.md §8). The expiry is
  // wall-clock time: core converts it from and to its monotonic clock.
  std::uint64_t lease_token = 0;
  std::int64_t lease_expires_at_ms = 0;
  std::string worker_id;
  // The current attempt's deadline (wall clock) when the job has a timeout; 0: none. Kept with
  // the lease, so that a restart still enforces it.
  std::int64_t lease_deadline_at_ms = 0;
  // Where the job came from (format 9): the W3C trace context given with the enqueue and the
  // enqueue request's id; empty when none. Fixed at enqueue, kept across retries and replays.
  TraceContext trace;
  std::string request_id;

  bool operator==(const JobRecord&) const = default;
};

// A lease as core hands it out (and as GET shows it). `expires_at_ms` is wall-clock time.
struct LeaseInfo {
  std::uint64_t token = 0;
  std::int64_t expires_at_ms = 0;
  std::string worker_id;
  // When the attempt's timeout ends it (wall clock); 0 when the job has no timeout. The lease
  // never expires later than this.
  std::int64_t deadline_at_ms = 0;
};

// Lease tokens travel as 16 lowercase hex digits.
std::string FormatToken(std::uint64_t token);
std::optional<std::uint64_t> ParseToken(std::string_view text);
// Job ids travel as decimal strings.
std::string FormatJobId(JobId id);
std::optional<JobId> ParseJobId(std::string_view text);

// Names (queue, kind, namespace, concurrency key): 1..128 bytes of [A-Za-z0-9_.:-].
bool IsValidName(std::string_view name);

}  // namespace ym
