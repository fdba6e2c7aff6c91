// Batch: the unit of group commit. Core appends the mutations of many commands, in order, into
// one Batch; the commit writer hands it to Store::Commit, which applies all of it in a single
// transaction (one fsync) or none of it.
//
// Order matters and is preserved: a job inserted and then cancelled before the commit appears as
// an InsertJob followed by an UpdateJob of the same id.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/cron/schedule_record.h"
#include "core/job.h"
#include "core/queue_config.h"
#include "store/api_token_row.h"
#include "store/audit_chain.h"

namespace ym {

// A new job: the whole record.
struct InsertJob {
  JobRecord job;
};

// A state change of an existing job: every mutable field of the record is rewritten from `job`;
// the immutable ones (ns, queue, kind, payload, created_at, idempotency/concurrency keys, tags)
// are not written, but `queue` must be the job's queue: the store counts finished jobs per queue
// by it (store/finished_counts.h). Its lease fields replace the stored lease; a record that is
// not active, or has no token, removes it (the lease fields are only kept with state active and
// a token).
struct UpdateJob {
  JobRecord job;
};

// A lease change of a live job, the hot-path sibling of UpdateJob: changes only `state`,
// `attempts`, `updated_at_ms` and the lease. Written when a job is leased (the attempt is
// counted durably; state active with a token), handed back (no token), or when a heartbeat's
// extension must be made durable. A no-op for a missing id or a job the store holds as
// terminal. SqliteStore keeps a lease (active, token) in a row of its own without touching the
// job row, and skips one that a later mutation of the same job in the batch overwrites.
struct UpdateLease {
  JobId id = 0;
  JobState state = JobState::kActive;
  std::int32_t attempts = 0;
  std::int64_t updated_at_ms = 0;
  std::uint64_t token = 0;         // 0: no lease (handed back)
  std::int64_t expires_at_ms = 0;  // wall clock; 0 with no lease
  std::string worker_id;
  std::int64_t deadline_at_ms = 0;  // wall clock; the attempt's timeout deadline, 0: none
};

// Removes a job row (a succeeded job whose queue keeps none, or retention).
struct DeleteJob {
  JobId id = 0;
};

// Upserts a queue's configuration.
struct PutQueue {
  QueueConfig config;
};

// Removes a queue's configuration (DELETE /v1/queues/{q}): the queue follows the server's
// defaults again. A no-op when it has none.
struct DeleteQueue {
  std::string name;
};

// Creates or replaces a limit (core/flow/limit_set.h): its name and its spec as JSON text
// (LimitSpec::ToJson), kept as given; the store does not interpret it.
struct PutLimit {
  std::string name;
  std::string spec_json;
};

// Removes a limit. A no-op when there is none.
struct DeleteLimit {
  std::string name;
};

// A start counted toward a limit's calendar quota (core/flow/limit_set.h, QuotaUse): the count
// of `key` in the window starting at `window_start_ms` is now `used`. Written in the batch of
// the lease that made the start, so a restart never forgets or double-counts it.
// `drop_before_ms`: the counts of that limit in windows starting earlier are over and go (set
// with the first count of a new window; INT64_MIN: none).
struct PutQuotaCount {
  std::string limit;
  std::string key;
  std::int64_t window_start_ms = 0;
  std::int64_t used = 0;
  std::int64_t drop_before_ms = std::numeric_limits<std::int64_t>::min();
};

// Removes every stored quota count of a limit (its quota was removed, or its period or time
// zone changed). DeleteLimit removes them too.
struct DropQuotaCounts {
  std::string limit;
};

// Creates or replaces a namespace's configuration (core/flow/namespace_limits.h): its name and
// its spec as JSON text (NamespaceSpec::ToJson), kept as given.
struct PutNamespace {
  std::string name;
  std::string spec_json;
};

// Removes a namespace's configuration. A no-op when there is none.
struct DeleteNamespace {
  std::string name;
};

// Creates or rewrites a schedule (core/cron/schedule_book.h): its spec JSON and state, and
// appends the history entries decided since its last row; the store keeps the newest
// kScheduleHistory entries (by seq). Written in the same batch as the jobs its windows emitted,
// so the cursor and the jobs are durable together (docs/storage-format.md, "Schedules").
struct PutSchedule {
  static constexpr std::uint64_t kScheduleHistory = 64;
  cron::ScheduleRow row;
};

// Removes a schedule and its history. A no-op when there is none.
struct DeleteSchedule {
  std::string id;
};

// Records an idempotency key -> job mapping until `expires_at_ms`.
struct PutIdempotencyKey {
  std::string ns;
  std::string key;
  JobId job_id = 0;
  std::int64_t expires_at_ms = 0;
};

// Deletes idempotency keys that expired at or before `before_ms`, at most `limit` of them (the
// ones that expired first; 0: all), so one commit never deletes an unbounded number of rows.
struct ExpireIdempotencyKeys {
  std::int64_t before_ms = 0;
  std::uint32_t limit = 0;
};

// Records the final state of the job a key created, so a duplicate of a job that retention
// purged answers what the job became. Only if the key still points at `job_id`.
struct FinishIdempotencyKey {
  std::string ns;
  std::string key;
  JobId job_id = 0;
  JobState state = JobState::kSucceeded;
};

// Deletes the idempotency key (ns, key) if it still points at `job_id` (a namespace wipe,
// core/namespace_wipe.h). A no-op otherwise.
struct DeleteIdempotencyKey {
  std::string ns;
  std::string key;
  JobId job_id = 0;
};

// API tokens (docs/security.md, "Tokens"). Core does not interpret these: the token service
// (server/token_service.h) hands them to Broker::CommitMutations, which commits them in the open
// batch like any configuration change.
// A new token row. The name and hash are unique: the service checks before committing.
struct PutApiToken {
  ApiTokenRow row;
};

// Marks a token revoked at `revoked_at_ms` (a token already revoked keeps its first time).
// A no-op for an unknown id.
struct RevokeApiToken {
  std::string id;
  std::int64_t revoked_at_ms = 0;
};

// Records when tokens were last used (written lazily, at most about once a minute per token and
// at shutdown; never one write per request). A time older than the stored one is ignored.
struct TouchApiTokens {
  std::vector<std::pair<std::string, std::int64_t>> last_used;  // id, Unix ms
};

// An idempotency key as the store holds it (reads and recovery).
struct IdempotencyKeyRecord {
  std::string ns;
  std::string key;
  JobId job_id = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<JobState> final_state;  // set once the job finished
};

// Retention: deletes the oldest-finished terminal jobs of `state` in `queue`, at most `limit`
// rows (0: no limit): first as many as the queue holds above `max_kept` (0: no cap), then those
// that finished at or before `before_ms`. Always through the (state, queue, finished_at_ms)
// index, so its cost is the rows it deletes plus a logarithm, never a scan. Core decides what
// to purge (core/retention_work.h); the store executes it and reports a PurgeOutcome.
//
// With `ns` set it is a namespace pass chunk instead (core/flow/namespace_retention.h): `queue`
// and `max_kept` are ignored; the finished jobs of (state, ns) with id > `after_id` are read in
// id order through the (state, ns, id) index, at most `limit` of them, stopping at the first
// created after `before_ms`; those finished at or before `before_ms` are deleted (by the one
// delete path, as DeleteJob). The outcome's `resume_after` is the last id read when the chunk
// stopped at `limit`, else 0 (the pass is complete).
struct PurgeFinished {
  std::string queue;
  JobState state = JobState::kSucceeded;
  std::int64_t before_ms = 0;
  std::uint64_t max_kept = 0;
  std::uint64_t limit = 0;
  std::string ns{};
  JobId after_id = 0;
};

// What one PurgeFinished did, reported by the store after its commit (Store::TakePurgeOutcomes)
// so core knows whether the queue needs more purging: rows deleted, the queue's finished rows
// of that state left, and when the oldest of them finished (none left: INT64_MAX).
//
// A namespace pass chunk (PurgeFinished::ns set) reports `ns`, `state`, `deleted` and
// `resume_after` (0: the pass is complete); its `queue`, `remaining` and `oldest_ms` are unused.
struct PurgeOutcome {
  std::string queue;
  JobState state = JobState::kSucceeded;
  std::uint64_t deleted = 0;
  std::uint64_t remaining = 0;
  std::int64_t oldest_ms = 0;
  std::string ns{};
  JobId resume_after = 0;
};

// Appends an entry to the audit log (store/audit_chain.h, docs/security.md "Audit log"),
// written in the same transaction as the action it records. The store assigns `entry.seq`,
// `prev_hash` and `hash` at commit, in commit order, from the chain's head; whatever the batch
// holds in those fields is ignored.
struct AppendAudit {
  audit::Entry entry;
};

using Mutation =
    std::variant<InsertJob, UpdateJob, UpdateLease, DeleteJob, PutQueue, PutIdempotencyKey,
                 ExpireIdempotencyKeys, PurgeFinished, FinishIdempotencyKey, DeleteQueue, PutLimit,
                 DeleteLimit, PutQuotaCount, DropQuotaCounts, PutNamespace, DeleteNamespace,
                 PutSchedule, DeleteSchedule, PutApiToken, RevokeApiToken, TouchApiTokens,
                 AppendAudit, DeleteIdempotencyKey>;

struct Batch {
  std::uint64_t seq = 0;  // assigned by core, increasing by one per batch handed to the writer
  std::vector<Mutation> mutations;
  // The id allocator's high-water mark after this batch: the store keeps the maximum it has seen
  // so that ids are never reused, even after the jobs that carried them were deleted. 0: unchanged.
  JobId next_id = 0;
  // A probe of a degraded broker (server/broker.cc): the store must really write and sync
  // something (a no-op rewrite) even when the batch holds no mutation, so that a successful
  // commit shows the disk takes writes again.
  bool probe = false;
  // How many AppendAudit mutations the batch holds (Scheduler::RecordAudit counts them), so the
  // commit writer learns that the audit head moved without looking at the mutations.
  std::uint32_t audit_entries = 0;
  // The batch erases tenant data (a namespace wipe, core/namespace_wipe.h): the store overwrites
  // what it deletes (SQLite's secure_delete) instead of leaving the bytes in free pages.
  bool erase = false;
  // After the commit, the store moves the WAL into the database file and truncates it, so that
  // no older copy of a page the wipe overwrote stays in the WAL (a finished wipe). Best effort:
  // a reader holding an old snapshot at that moment leaves the WAL as it is (the next finished
  // wipe, or SQLite's own checkpoints, copy it later).
  bool checkpoint = false;

  bool empty() const { return mutations.empty() && next_id == 0 && !probe && !checkpoint; }
};

}  // namespace ym
