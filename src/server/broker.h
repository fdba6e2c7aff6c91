// Broker: the thread-safe face of the scheduling core, used by the HTTP layer (net/), the server
// wiring and tests.
//
// It owns three kinds of threads:
//   * the core thread, which alone owns the Scheduler (all scheduling state). Every method below
//     posts a command to it through a queue; nothing else touches scheduling state.
//   * the commit writer, which takes the batch core has sealed, calls Store::Commit (one
//     transaction, one fsync) and tells core when it is durable (group commit). While one batch
//     is being written, core keeps filling the next.
//   * a small reader pool for store reads (terminal jobs, dead-letter lists), so core never
//     blocks on disk.
//
// Completion callbacks run on the core thread or a reader thread. They must not block and must
// not call back into the Broker synchronously: post the result to your own executor.
//
// Durability contract: a callback that reports success for a write (enqueue, lease, ack, fail,
// cancel, replay, queue config) runs only after the write, and everything it observed, is
// durable. Reads answer at once; heartbeats too, unless their extension had to be persisted.
//
// Store failures (docs/architecture.md §8): after a failed commit the broker answers the writes
// of that batch and of the open one with kStoreUnavailable, reloads its state from the store
// once (durable leases are kept), and turns read-only: writes are refused with
// kStoreUnavailable, reads, heartbeats and health checks are served. It probes the store with a
// small real write (250 ms, doubling to 5 s) and resumes by itself when a commit succeeds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/bulk.h"
#include "core/flow/limit_set.h"
#include "core/flow/namespace_limits.h"
#include "core/job.h"
#include "core/job_stats.h"
#include "core/namespace_wipe.h"
#include "core/queue_config.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "obs/histogram.h"
#include "server/audit_note.h"
#include "store/store.h"

namespace ym {

struct BrokerOptions {
  std::uint64_t seed = 0;  // 0: seeded from the clock and pid
  SchedulerOptions scheduler;
  // Store reads (terminal jobs, dead letters, replays) run on this many threads.
  int reader_threads = 2;
  // Leases are always persisted in the group commit. false (the default, `--lease-reply
  // immediate`): a lease reply is sent at once and its lease is committed with the next batch, a
  // millisecond or so later; a crash in between loses leases that workers already hold (their
  // jobs run again: at-least-once). true (`--lease-reply after-commit`): the lease reply, and
  // that of a heartbeat whose extension is written, waits for the commit like any write, at the
  // price of one more fsynced commit per lease request (-39 % drain, docs/benchmarks.md).
  bool lease_reply_after_commit = false;
  // Admission control. Commands wait for the core thread in one queue, weighted by the items
  // they carry (an enqueue batch of 500 jobs weighs 500). Past `max_queued_commands` new work
  // (enqueue, lease, reads, cancel, replay, queue changes) is refused at once with
  // kResourceExhausted (429 + Retry-After) instead of queueing without bound; acks, fails and
  // heartbeats of running jobs are admitted up to `completion_margin` more, so the jobs already
  // out finish while new work is refused. Commands that start with a store read count against
  // the same cap through the reads in flight.
  std::uint64_t max_queued_commands = 100'000;
  std::uint64_t completion_margin = 20'000;
  // /livez and /healthz fail (503) once the core thread has not gone round its loop for this
  // long (`liveness_deadline_ms`): it wakes at least once a second while idle, so only a core
  // stuck in one task (a bug, a hung store read on the core thread) gets that old.
  std::int64_t liveness_deadline_ms = 10'000;
  // Label sets (queue, kind pairs) the per-job metric families may hold (core/job_stats.h);
  // past it, observations go to queue="~other", kind="~other" (`metrics_max_label_sets`).
  std::uint32_t metrics_max_label_sets = 1000;
  // Called on the commit writer thread after each commit that appended audit entries, with the
  // chain's new head (server/audit_checkpoints.h writes the periodic checkpoints from it). A
  // batch without audit entries never calls it. Must not block or call the Broker.
  std::function<void(const audit::Head&)> on_audit_committed;
};

// Counters kept by the broker, readable from any thread (relaxed atomics: each is an independent
// monotonic count or gauge; no reader needs them consistent with each other).
struct BrokerCounters {
  std::atomic<std::uint64_t> enqueued{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> leased{0};
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_failures{0};
  std::atomic<std::uint64_t> store_unavailable_episodes{0};  // times the broker went read-only
  std::atomic<std::uint64_t> store_probes{0};                // commits tried while read-only
  std::atomic<std::uint64_t> committed_mutations{0};
  std::atomic<std::uint64_t> commit_micros{0};  // total time spent in Store::Commit
  obs::Histogram commit_duration_us;            // each Store::Commit, µs
  // Schedules (issue 11): how many, windows emitted and skipped, and each emitted window's lag
  // (enqueue time - window, ms; jitter excluded).
  std::atomic<std::uint64_t> schedules{0};
  std::atomic<std::uint64_t> schedule_windows_emitted{0};
  std::atomic<std::uint64_t> schedule_windows_skipped{0};
  obs::Histogram schedule_fire_lag_ms{1,    2,    5,    10,    25,    50,    100,    250,    500,
                                      1000, 2500, 5000, 10000, 30000, 60000, 300000, 3600000};
  obs::Histogram commit_batch_mutations{1,   2,    5,    10,   25,    50,    100,   250,
                                        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000};
  std::atomic<std::uint64_t> purged{0};  // finished jobs deleted by retention
  std::atomic<std::uint64_t> live_jobs{0};
  std::atomic<std::uint64_t> active_jobs{0};
  std::atomic<std::uint64_t> waiting_leases{0};
  std::atomic<std::uint64_t> end_waits{0};        // GET /v1/jobs/{id}?wait_ms waiting for an end
  std::atomic<std::uint64_t> cancel_watches{0};   // POST /v1/cancels:watch waiting
  std::atomic<std::uint64_t> refused_busy{0};     // commands refused by admission control
  std::atomic<std::uint64_t> queued_commands{0};  // weight waiting for core (sampled)
};

struct BrokerInfo {
  std::string version;  // kVersion (common/build_info.h)
  std::string commit;   // BuildCommit()
  std::int64_t started_at_ms = 0;
  std::uint64_t live_jobs = 0;
  std::uint64_t commits = 0;
  bool draining = false;
  std::uint64_t recovered_jobs = 0;  // live jobs rebuilt from the store at start
  std::int64_t recovery_ms = 0;      // how long that took
  std::string store_journal_mode;    // StoreStats::journal_mode
  std::string store_synchronous;     // StoreStats::synchronous
};

// A per-queue snapshot for metrics, refreshed by the core thread about once a second so that a
// scrape never waits on core. A refresh updates only the queues that changed since the last one
// (Scheduler::TakeGaugeChanges), so its cost follows the traffic, not the number of queues; the
// oldest-ready age is computed at read time from when that job became ready.
struct QueueGauge {
  std::string queue;
  std::uint64_t scheduled = 0;
  std::uint64_t ready = 0;
  std::uint64_t active = 0;
  std::int64_t oldest_ready_age_ms = 0;    // as of QueueGauges()
  std::int64_t oldest_ready_since_ms = 0;  // wall clock; meaningful while ready > 0
  std::uint32_t waiting_workers = 0;
  bool paused = false;
  std::array<std::uint64_t, kBlockedReasonCount> blocked{};  // kBlockedReasons order
  std::int64_t last_poll_ms = 0;  // wall clock of the last lease naming it; 0: none since start
};

class Broker {
 public:
  Broker(Store& store, const Clock& clock, BrokerOptions options);
  ~Broker();  // calls Stop()
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Rebuilds every live job from the store, then starts the core, writer and reader threads.
  Status Start();
  // Drain mode: new enqueues and leases are refused with kUnavailable; acks, fails and
  // heartbeats are still accepted so running jobs can finish. Returns once core has seen it
  // (counters().active_jobs is then exact). Idempotent. Only after Start().
  void BeginDrain();
  // Stops taking commands, commits everything already accepted, fails long-poll waiters with an
  // empty result, joins all threads. Idempotent.
  void Stop();

  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // False while the broker is read-only after a failed commit (see above).
  bool store_available() const;
  // The error of the commit that made the store unavailable ("" when it is available).
  std::string store_error() const;
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  // How long ago the core thread last went round its loop (monotonic ms), and whether that is
  // within BrokerOptions::liveness_deadline_ms. Any thread.
  std::int64_t core_heartbeat_age_ms() const;
  bool core_alive() const;
  std::int64_t liveness_deadline_ms() const;

  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  // Enqueues every spec; one result per spec, in order (a bad spec fails alone).
  void Enqueue(std::vector<EnqueueSpec> specs,
               std::function<void(std::vector<Result<EnqueueOutcome>>)> done);
  // Leases up to request.max ready jobs; with wait_ms > 0 and nothing ready, waits (as a waiter
  // registered in core, not a blocked thread) until jobs arrive or the wait ends (empty result).
  // Leases are persisted: a reply with jobs is sent once their leases are durable.
  void Lease(LeaseRequest request, Callback<std::vector<LeasedJob>> done);
  // Returns jobs a lease reply could not deliver (client gone) to ready, without counting an
  // attempt. Jobs whose lease changed since are left alone.
  void Release(std::vector<std::pair<JobId, std::uint64_t>> leases);
  // Extends the lease to now + extend_ms (0: the job's own lease_ms); reports whether a cancel
  // was requested. Answers at once, unless the extension had to be persisted (see
  // Scheduler::Heartbeat): then once it is durable.
  void Heartbeat(JobId id, std::uint64_t token, std::int64_t extend_ms,
                 std::optional<std::string> progress, Callback<HeartbeatOutcome> done);
  // A worker's watch for cancels (Scheduler::AddCancelWatch): answered with the ids of the
  // active jobs leased to `worker_id` whose cancel is requested, once that set holds an id
  // outside `known`, or after `wait_ms` (capped at max_wait_ms; 0: at once), or at shutdown.
  // Answers with news wait until the cancel is durable, like the cancel's own reply.
  // While draining it is answered at once with the set then (a watch registered after the
  // scheduler's shutdown would never be answered). kResourceExhausted at
  // SchedulerOptions::max_cancel_watches.
  void WatchCancels(std::string worker_id, std::vector<JobId> known, std::int64_t wait_ms,
                    Callback<std::vector<JobId>> done);
  // Acks and fails, each item answered on its own, in order. A fail's result is the state it
  // led to: kScheduled (retry), kReady (retry at once), kDead or kCancelled.
  void Complete(std::vector<AckItem> acks, std::vector<FailItem> fails,
                std::function<void(std::vector<Status>, std::vector<Result<JobState>>)> done);
  // Cancels a job; returns its state afterwards (kCancelled, or kActive with cancel_requested).
  // A job already cancelled is answered as it is; kInvalidState for succeeded or dead jobs;
  // kNotFound for unknown or removed ones. Decided on the core thread against the job's current
  // state, also when its stored record had to be read.
  void Cancel(JobId id, Callback<JobView> done, AuditNote audit = {});
  // Replays a dead or cancelled job as a new run, decided on the core thread against the job's
  // current state: kInvalidState (naming the state) when it is not dead or cancelled now,
  // kNotFound when it is unknown or was removed, kUnavailable while draining.
  void Replay(JobId id, Callback<JobView> done, AuditNote audit = {});
  // Replays dead jobs: those in `ids` when it is not empty (ids that are not dead are skipped),
  // else up to `limit` of `queue` (all queues when empty), each decided as Replay decides, in
  // steps of 100 jobs per core task. Returns how many were really replayed.
  void ReplayDead(std::string queue, std::vector<JobId> ids, std::uint32_t limit,
                  Callback<std::uint64_t> done, AuditNote audit = {});

  // A bulk operation (core/bulk.h): cancels, replays or deletes the jobs `request.filter`
  // selects (already narrowed, NarrowBulkFilter) with id > request.after_id, in id order, at
  // most request.limit matching jobs and kBulkExamineBudget examined ones; each job decided on
  // the core thread against its state then, in steps whose writes are durable before the next
  // step (so no commit holds more than a step's worth). Answered once everything it did is
  // durable, with the counts and where to resume. kUnavailable while draining (a drain that
  // starts midway stops it: the counts so far and the cursor to resume from are answered);
  // kStoreUnavailable when the store fails (nothing of the request is promised: retrying the
  // same request is safe).
  void Bulk(BulkRequest request, Callback<BulkOutcome> done, AuditNote audit = {});
  // Erases namespace request.ns's data (core/namespace_wipe.h): its live jobs, then its finished
  // jobs, its idempotency keys and its schedules, up to request.limit items, in steps whose
  // writes are durable before the next. `audit` (with the mark, `up_to_id`) is committed with
  // the first step's erasures, so nothing is erased unrecorded. Answered once everything it did
  // is durable. kUnavailable while draining (a drain that starts midway stops it with the
  // counts so far and the cursor); kStoreUnavailable when the store fails (retrying the same
  // request is safe: each phase erases what is left).
  void WipeNamespace(WipeRequest request, Callback<WipeOutcome> done, AuditNote audit = {});

  // With `wait_ms` > 0, a live job is answered when it ends (from its durable record, or as it
  // ended when nothing of it is kept) or, at the latest, after `wait_ms` (capped at the
  // scheduler's max_wait_ms) with its state then. No polling: the end wakes the wait.
  void GetJob(JobId id, Callback<JobView> done, std::int64_t wait_ms = 0);
  void ListJobs(ListQuery query, Callback<JobPage> done);
  // One page of a namespace export (GET /v1/namespaces/{ns}/export): the stored jobs of `ns`,
  // live and finished, with id > `after`, at most `limit`, reading at most `max_examined` stored
  // jobs (Store::NamespaceJobs), on a reader thread: the core thread is not involved, and the
  // store is held for one bounded read. `next_after_id`: where the next page starts (0: done).
  // What a page shows is the store's committed state when it is read.
  void ExportNamespacePage(std::string ns, JobId after, std::uint32_t limit,
                           std::uint32_t max_examined, Callback<JobPage> done);

  // Queues named after `after`, in name order, at most `limit`: those core holds (configured,
  // with live jobs or waiting workers) merged with those the store keeps finished jobs of, with
  // their finished counts. Costs O(limit * log queues) on the core and reader threads.
  void ListQueues(std::string after, std::uint32_t limit, Callback<QueuePage> done);
  // kQueueNotFound when the queue does not exist (QueueExists below).
  void GetQueue(std::string name, Callback<QueueInfo> done);
  // A queue exists while GET /v1/queues lists it: it has a stored configuration, live jobs or
  // waiting workers (core holds it), or finished jobs kept in the store. Configuring, pausing or
  // resuming one that does not exist is kQueueNotFound unless `create`, which creates it (a
  // configured queue is kept until its configuration is removed).
  void PutQueue(QueueConfigPatch patch, bool create, Callback<QueueInfo> done,
                AuditNote audit = {});
  void SetPaused(std::string name, bool paused, bool create, Callback<QueueInfo> done,
                 AuditNote audit = {});
  // Removes the queue's configuration: it follows the server's defaults again (unpaused) and,
  // unconfigured, is freed once nothing uses it. Jobs are not touched. kQueueNotFound when the
  // queue does not exist.
  void ResetQueue(std::string name, Callback<QueueInfo> done, AuditNote audit = {});

  // Limits (docs/flow-control.md, "Concurrency limits"). A create or replace (kValidation naming
  // the field: nothing changes), answered once durable; `created` in the answer tells which.
  // Every live job is rebound to the limits and the counts rebuilt (O(live jobs), core thread).
  void PutLimit(flow::LimitSpec spec, Callback<flow::LimitInfo> done, AuditNote audit = {});
  // kNotFound when no such limit; answered once durable. Its waiting jobs are released at once.
  void DeleteLimit(std::string name, Callback<std::string> done, AuditNote audit = {});
  // With the live counts: the most active keys (at most LimitInfo::kTopKeys). kNotFound.
  void GetLimit(std::string name, Callback<flow::LimitInfo> done);
  // Limits named after `after`, in name order, at most `limit`.
  void ListLimits(std::string after, std::uint32_t limit, Callback<flow::LimitPage> done);
  // Resets the breaker of limit `name` for `key` (every key when nullopt): closed at once, its
  // held-back jobs dispatchable (Scheduler::ResetBreaker). In memory only, so answered at once.
  // kNotFound (no such limit), kValidation (the limit has no breaker).
  void ResetBreaker(std::string name, std::optional<std::string> key,
                    Callback<flow::LimitInfo> done, AuditNote audit = {});
  // Namespaces (docs/flow-control.md, "Namespace limits"): create or replace (kValidation
  // naming the field), delete (kNotFound), get with the live count (kNotFound), list by name.
  void PutNamespace(flow::NamespaceSpec spec, Callback<flow::NamespaceInfo> done,
                    AuditNote audit = {});
  void DeleteNamespace(std::string name, Callback<std::string> done, AuditNote audit = {});
  // Commits mutations core does not interpret (API tokens, server/token_service.h) in the open
  // batch; `done` runs once they are durable (Ok) or could not be (kStoreUnavailable, or
  // kResourceExhausted when the core is busy). Any thread.
  void CommitMutations(std::vector<Mutation> mutations, std::function<void(Status)> done);
  // The API tokens the store held at Start(), once (then empty). After Start().
  std::vector<ApiTokenRow> TakeRecoveredApiTokens();
  void GetNamespace(std::string name, Callback<flow::NamespaceInfo> done);
  void ListNamespaces(std::string after, std::uint32_t limit, Callback<flow::NamespacePage> done);

  // Schedules (docs/api.md "Schedules"; core/cron/schedule_book.h, Scheduler's schedule
  // commands). Writes are answered once durable: a create, update, pause or resume with the
  // schedule, a trigger with its job. kAlreadyExists (create), kNotFound, kValidation.
  void CreateSchedule(ScheduleUpdate request, Callback<ScheduleView> done, AuditNote audit = {});
  void ReplaceSchedule(ScheduleUpdate request, Callback<ScheduleView> done, AuditNote audit = {});
  // PATCH: `merge` turns the schedule's current spec JSON into the new request; it runs on the
  // core thread, so nothing can change between the read and the write.
  void PatchSchedule(std::string id,
                     std::function<Result<ScheduleUpdate>(const std::string& current_json)> merge,
                     Callback<ScheduleView> done, AuditNote audit = {});
  void DeleteSchedule(std::string id, Callback<std::string> done, AuditNote audit = {});
  void PauseSchedule(std::string id, bool paused, Callback<ScheduleView> done,
                     AuditNote audit = {});
  void TriggerSchedule(std::string id, Callback<EnqueueOutcome> done, AuditNote audit = {});
  // Emits the windows in [from, to] at or before the cursor, through Enqueue (a window already
  // emitted is a duplicate of its idempotency key), and records each new one in the history.
  void BackfillSchedule(std::string id, std::int64_t from, std::int64_t to,
                        Callback<BackfillOutcome> done, AuditNote audit = {});
  void GetSchedule(std::string id, std::size_t next_n, Callback<ScheduleView> done);
  void ListSchedules(std::string after, std::uint32_t limit, Callback<SchedulePage> done);

  // The audit log (docs/security.md, "Audit log"). Every write above takes an AuditNote: when
  // it is enabled, the entry is committed in the same transaction as the action, and only when
  // the action succeeds (a no-op that writes nothing records nothing unless said otherwise).
  // RecordAudit appends an entry on its own (for actions that do not go through the core: token
  // create and revoke, a namespace export), answered once durable with the chain's head seq then
  // (the entry's own seq, or a later one if other entries committed with it); kStoreUnavailable
  // when it could not be written (the caller must then not report success).
  void RecordAudit(AuditNote note, Callback<std::uint64_t> done);
  // Entries with seq > after_seq, oldest first, at most `limit` (reader thread).
  void ReadAudit(std::uint64_t after_seq, std::uint32_t limit,
                 Callback<std::vector<audit::Entry>> done);
  // The chain's head as last committed. Any thread.
  audit::Head AuditHead() const;

  BrokerInfo Info() const;
  const BrokerCounters& counters() const;
  // Per-(queue, kind) job events and times (written by the core thread, read by any thread;
  // core/job_stats.h says how that is safe).
  const JobStats& job_stats() const;
  std::vector<QueueGauge> QueueGauges() const;

 private:
  void ReplyLeased(std::vector<LeasedJob> jobs, Callback<std::vector<LeasedJob>> done);

  class Impl;
  struct KeyLookup;
  void FinishEnqueue(std::shared_ptr<std::vector<Result<EnqueueOutcome>>> results,
                     std::function<void(std::vector<Result<EnqueueOutcome>>)> done);
  std::unique_ptr<Impl> impl_;
  // Published by Start/BeginDrain for lock-free health checks from I/O threads.
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace ym
