// Request and result values exchanged with the scheduling core (core/scheduler.h) and the
// Broker (server/broker.h). Plain data: validated by the HTTP layer for shape and by core for
// meaning; no behaviour here.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/job_filter.h"
#include "core/queue_config.h"

namespace ym {

class JobStats;      // core/job_stats.h
class JobEventSink;  // core/job_events.h

// Limits and defaults of the scheduler; every one is a server option (docs/operations.md).
struct SchedulerOptions {
  std::int64_t default_lease_ms = 30'000;
  std::int64_t min_lease_ms = 100;
  std::int64_t max_lease_ms = 24LL * 3600 * 1000;
  std::int32_t default_max_attempts = 10;
  // Execution timeout of jobs whose queue and spec set none (--default-timeout-ms); 0: none.
  std::int64_t default_timeout_ms = 0;
  std::int32_t max_max_attempts = 1000;
  Backoff default_backoff;
  Retention default_retention;
  std::int64_t idempotency_window_ms = 24LL * 3600 * 1000;
  // Idempotency keys held in memory (an LRU); the store holds all of them. A key that misses
  // the cache costs a store read on the reader pool before its enqueue is decided.
  std::uint32_t idempotency_cache_keys = 100'000;
  // Expired keys deleted per retention sweep at least (each batch that creates keys also
  // deletes up to twice as many expired ones, so deletion keeps up with creation).
  std::uint32_t idempotency_expiry_chunk = 10'000;
  std::int64_t max_wait_ms = 30'000;  // longest long-poll
  // Clients waiting at once for jobs to end (GET /v1/jobs/{id}?wait_ms=N); more get 429.
  std::uint32_t max_end_waits = 10'000;
  // Workers watching for cancels at once (POST /v1/cancels:watch, one per worker process);
  // more get 429.
  std::uint32_t max_cancel_watches = 10'000;
  std::uint32_t max_lease_batch = 1000;  // most jobs one lease may return
  // How many live jobs one list request may examine in core before it returns a partial page
  // with a cursor; bounds the time one list can hold the core thread.
  std::uint32_t list_scan_budget = 50'000;
  // How often retention looks for finished jobs past their window (core/retention_work.h); a
  // queue over its cap is found at once.
  std::int64_t retention_sweep_interval_ms = 60'000;
  // While purging is due, a chunk of at most this many rows goes into a batch every
  // retention_purge_interval_ms (and each batch that keeps finished jobs purges up to twice as
  // many, so purging keeps pace with finishing). Bounds the rows one commit deletes.
  std::uint32_t retention_purge_chunk = 2'000;
  std::int64_t retention_purge_interval_ms = 250;
  // Per-(queue, kind) job events and times for /metrics (core/job_stats.h), counted by the
  // scheduler where jobs change state; null: none counted. Owned by the caller (the Broker),
  // so the counts outlive a rebuilt scheduler.
  JobStats* job_stats = nullptr;
  // Where the events no request sees (dead, lease expiry, timeout, retry, cancel) are reported
  // for the job log lines (core/job_events.h); null: nowhere. Not owned.
  JobEventSink* job_events = nullptr;
};

// One job to enqueue. Optional fields fall back to the queue's config, then server defaults.
struct EnqueueSpec {
  std::string ns = "default";
  std::string queue;
  std::string kind;
  std::string payload = "null";  // JSON text (already validated as JSON by the caller)
  std::int32_t priority = 0;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::int64_t> run_at_ms;
  std::optional<std::int32_t> max_attempts;
  std::optional<Backoff> backoff;
  std::optional<std::int64_t> lease_ms;
  // 0: no timeout, even when the queue has one; nullopt: the queue's.
  std::optional<std::int64_t> timeout_ms;
  std::string idempotency_key;
  std::optional<std::int64_t> idempotency_ttl_ms;
  std::string concurrency_key;
  std::vector<std::string> tags;
  // Validated by the HTTP layer (core/trace_context.h); stored with the job as given.
  TraceContext trace;
  std::string request_id;  // the enqueue request's id; empty: none
  // Set by Scheduler::AdmitBatch: the namespace's enqueue rate already counted this job (with
  // the rest of its batch), so Enqueue checks only max_live_jobs. Not part of the API.
  bool namespace_rate_counted = false;
};

// The answer of a store read for an idempotency key that missed core's cache
// (Scheduler::NeedsIdempotencyLookup), handed back to Scheduler::Enqueue.
struct IdempotencyLookup {
  std::uint64_t ticket = 0;     // from Scheduler::BeginIdempotencyLookup
  std::optional<JobId> job_id;  // the key's job, if the store holds the key unexpired
  std::int64_t expires_at_ms = 0;
  std::optional<JobState> final_state;
};

struct EnqueueOutcome {
  JobId id = 0;
  JobState state = JobState::kReady;
  bool duplicate = false;  // an idempotency key matched an existing job; nothing was created
  // False when a duplicate points at a job that left core before a restart: its state must be
  // read from the store.
  bool state_known = true;
  // Key modes (core/flow/key_groups.h). `skipped`: a singleton limit in mode skip found a live
  // job of the key; `id`/`state` are that job's and nothing was created. `superseded`: the
  // waiting jobs of a debounce limit this new job replaced (cancelled, naming it).
  bool skipped = false;
  std::vector<JobId> superseded;
};

struct LeaseRequest {
  std::vector<std::string> queues;
  std::uint32_t max = 1;
  std::int64_t wait_ms = 0;
  std::string worker_id;
  std::optional<std::int64_t> lease_ms;  // default: each job's lease_ms
  // Only jobs of these namespaces (a namespace-scoped token's lease; core/lease_scope.h);
  // nullopt: every namespace.
  std::optional<std::vector<std::string>> namespaces;
};

struct LeasedJob {
  JobId id = 0;
  std::string ns;
  std::string queue;
  std::string kind;
  std::string payload;
  std::int32_t attempt = 0;  // 1 for the first attempt of a run
  std::int32_t max_attempts = 0;
  std::int32_t priority = 0;
  std::int64_t created_at_ms = 0;
  std::vector<std::string> tags;
  std::int64_t timeout_ms = 0;  // the job's execution timeout; 0: none (see lease.deadline_at_ms)
  TraceContext trace;           // given with the enqueue; empty: none
  std::string request_id;       // the enqueue request's id; empty: none
  LeaseInfo lease;
  // The admission counted a start toward a calendar quota (its count is in the lease's batch):
  // the reply must wait until that batch is durable, in every --lease-reply mode, or a crash
  // could lose the count of a start a worker already made (Broker::ReplyLeased).
  bool quota_counted = false;
};

struct HeartbeatOutcome {
  std::int64_t expires_at_ms = 0;  // wall clock
  bool cancel_requested = false;
  // The extension was written to the open batch (the durable expiry would have lapsed too
  // soon); the reply should then wait for durability like other writes.
  bool persisted = false;
};

struct FailSpec {
  std::string type = "error";
  std::string message;
  bool retryable = true;
  std::optional<std::int64_t> retry_in_ms;  // overrides the backoff for this retry
};

struct AckItem {
  JobId id = 0;
  std::uint64_t token = 0;
  std::string result;  // JSON text, or empty
};

struct FailItem {
  JobId id = 0;
  std::uint64_t token = 0;
  FailSpec error;
};

// A job as GET shows it: the record plus what only core knows.
struct JobView {
  JobRecord job;
  std::optional<LeaseInfo> lease;  // set while active
  // Why a non-running live job is not running (one of kBlockedReasons); empty when it is
  // running or terminal, or ready with a worker waiting for it.
  std::string blocked_reason;
  // When it may run next, when known (wall clock ms; 0: unknown or not blocked): the run_at of
  // a scheduled job, the time a rate or quota opens, an open breaker's next_open_at.
  std::int64_t blocked_until_ms = 0;
  // The running attempt's progress as its worker last reported it (JSON object text, see
  // HeartbeatRequest::progress); empty when none was reported or the job is not active.
  std::string progress;
};

// The view of a record read from the store (a finished job: nothing only core knows).
inline JobView StoredView(JobRecord&& record) {
  JobView v;
  v.job = std::move(record);
  return v;
}

struct ListQuery {
  JobFilter filter;    // which jobs (core/job_filter.h); empty: every job
  JobId after_id = 0;  // from the previous page's next_cursor
  std::uint32_t limit = 100;
  // Stop collecting once the payloads and results taken reach this many bytes (at least one job
  // is always taken): a page is capped by size as well as by count.
  std::size_t max_bytes = SIZE_MAX;
};

struct JobPage {
  std::vector<JobView> items;
  // Resume after this id; 0 when the listing is complete. A page may hold fewer than `limit`
  // items and still have a cursor (the scan budget ran out first).
  JobId next_after_id = 0;
};

// Every blocked_reason (docs/flow-control.md, "Reason codes"), in the order they are checked
// for a ready job: a paused queue first, then the job's gates, then whether anyone polls.
inline constexpr const char* kBlockedReasons[] = {
    "scheduled",          "retry_backoff", "debounced",       "paused",       "namespace_limit",
    "concurrency_capped", "rate_limited",  "quota_exhausted", "circuit_open", "no_workers",
};
inline constexpr std::size_t kBlockedReasonCount = std::size(kBlockedReasons);

struct QueueInfo {
  QueueConfig config;
  // Counts per state name; live states from core, terminal states from the store.
  std::map<std::string, std::uint64_t> counts;
  // Live jobs not running, per reason (every name of kBlockedReasons, 0 included). A ready
  // job not counted here runs as soon as a worker asks.
  std::map<std::string, std::uint64_t> blocked;
  std::int64_t oldest_ready_age_ms = 0;  // 0 when nothing is ready
  std::uint32_t waiting_workers = 0;     // long-poll leases waiting on this queue now
};

// A page of GET /v1/queues, in name order.
struct QueuePage {
  std::vector<QueueInfo> items;
  // Resume after this name; empty when the listing is complete.
  std::string next_after;
};

// PUT /v1/queues/{q}: only the fields present change.
struct QueueConfigPatch {
  std::string name;
  std::optional<bool> paused;
  std::optional<std::int32_t> max_attempts;
  std::optional<std::int64_t> lease_ms;
  std::optional<std::int64_t> timeout_ms;  // 0: none
  std::optional<Backoff> backoff;
  std::optional<Retention> retention;
  std::optional<std::int64_t> weight;  // 1..1000
};

}  // namespace ym
