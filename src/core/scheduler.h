// Scheduler: all scheduling state and rules of Yardmaster, on one thread.
//
// The scheduler is pure: no I/O, no threads, no locks, no direct clock reads. Time comes from
// the injected Clock, randomness (lease tokens, backoff jitter) from the injected Rng, so tests
// drive it deterministically with a ManualClock and a seed. The Broker (server/broker.h) owns one
// Scheduler on its core thread and feeds it commands.
//
// Durability handshake (group commit). Every mutating command appends its store mutations to
// the *open* batch. The Broker seals it (SealBatch), has it committed, then reports
// OnCommitted(seq). Until then:
//   * a newly enqueued or replayed job is `pending`: present, visible to GET, never dispatched;
//   * a job that became terminal stays in memory (`evicting`) so reads never go backwards.
// A write's reply may be released once durable_seq() >= the VisibleSeq() taken right after the
// write; that covers both what the command wrote and anything earlier it observed.
//
// Dispatch structure:
//   queue -> lanes (one per namespace and gate set) -> ready heap (priority desc, ready seq asc)
// Lease takes the queues it names by weighted fair queueing (QueueConfig::weight) and, inside a
// queue, namespaces by weighted fair queueing (their weight, core/flow/fair_lanes.h), a
// namespace's lanes round-robin, and jobs inside a lane by priority, so no queue or namespace
// starves another and a namespace's share does not grow with its number of lanes. A job's gate
// set (core/flow/limit_set.h) is the list of (limit, key) it is subject to; a lane whose set
// refuses leaves the rotation as a whole (its namespace is not charged): refused by a
// concurrency cap, it waits on that gate, which puts it back when one of its jobs stops being
// active; refused by a rate, a quota or an open circuit breaker, it waits in a timer heap until
// the time the gate opens (long-polls of its queue are served then); refused by a half-open
// breaker whose trial is out, it waits for the trial's outcome. With no limits every job has the
// empty set and lanes are one per namespace.
//
// Breakers: an active job admitted through a breaker holds its tickets (breaker_holds_, by job
// id, only for such jobs), and LeaveState reports them with the job's outcome when it stops
// being active: success (ack), failure (fail, lease expiry, attempt timeout) or abandoned (the
// release of a lost lease reply, the end of a job whose cancel was requested).
//
// Complexity: enqueue, lease (per job), ack, fail, heartbeat, cancel and timer firing are
// O(log n) in the number of live jobs or better; no step scans the backlog. List scans are
// bounded by SchedulerOptions::list_scan_budget.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "common/status.h"
#include "core/bulk.h"
#include "core/cancel_watches.h"
#include "core/cron/schedule_book.h"
#include "core/end_waits.h"
#include "core/fifo.h"
#include "core/flow/fair_lanes.h"
#include "core/flow/limit_set.h"
#include "core/flow/namespace_active.h"
#include "core/flow/namespace_limits.h"
#include "core/flow/weighted_rotation.h"
#include "core/idempotency_cache.h"
#include "core/intern_table.h"
#include "core/job_filter.h"
#include "core/job_index.h"
#include "core/lease_names.h"
#include "core/lease_scope.h"
#include "core/queue_names.h"
#include "core/read_guard.h"
#include "core/retention_work.h"
#include "core/types.h"
#include "store/batch.h"

namespace ym {

enum class JobEvent : std::uint8_t;  // core/job_stats.h

// What core holds in memory now, counted in entries, for the memory test and metrics. Every
// structure is bounded by a constant times the live work (live jobs, waiters, queues that hold
// either, names they use), never by history: stale heap entries are dropped by a rebuild once
// they outnumber the valid ones, and names and queues are freed when nothing refers to them.
using flow::LimitInfo;
using flow::NamespaceInfo;

struct SchedulerFootprint {
  std::size_t live_jobs = 0;
  std::size_t index_pages = 0;
  std::size_t index_dense_pages = 0;
  std::size_t index_bytes = 0;     // the index's own memory (not the jobs)
  std::size_t timer_entries = 0;   // delayed-job heap, stale entries included
  std::size_t scheduled_jobs = 0;  // valid entries there
  std::size_t lease_entries = 0;   // lease-expiry heap, stale entries included
  std::size_t active_jobs = 0;     // valid entries there
  std::size_t ready_entries = 0;   // all lanes' ready heaps, stale entries included
  std::size_t ready_fifo_entries = 0;
  std::size_t ready_jobs = 0;
  std::size_t waiters = 0;                    // long-polls registered now
  std::size_t waiter_deadline_entries = 0;    // deadline heap, stale entries included
  std::size_t queue_waiter_entries = 0;       // waiter ids in the per-queue FIFOs, stale included
  std::size_t end_waits = 0;                  // waits for a job to end registered now
  std::size_t end_wait_deadline_entries = 0;  // their deadline heap, stale entries included
  std::size_t cancel_watches = 0;             // workers watching for cancels now
  std::size_t cancel_watch_deadline_entries = 0;
  std::size_t cancels_pending = 0;  // active jobs with a cancel requested, reported to watches
  std::size_t queues = 0;           // queue states allocated
  std::size_t queue_slots = 0;      // queue slots (live + free)
  std::size_t lanes = 0;
  std::size_t namespaces = 0;  // interned names alive
  std::size_t kinds = 0;
  std::size_t workers = 0;
  std::size_t intern_slots = 0;  // slots of the three tables (live + free)
  std::size_t idempotency_keys = 0;
  std::size_t limit_gate_sets = 0;         // distinct gate sets held by live jobs and lanes
  std::size_t limit_waiting_lanes = 0;     // lanes registered as waiting on a gate
  std::size_t lane_timer_entries = 0;      // lanes waiting for a rate or quota, stale included
  std::size_t timed_lanes = 0;             // valid entries there
  std::size_t rate_keys = 0;               // keys holding rate state
  std::size_t quota_keys = 0;              // quota counters of the current windows
  std::size_t breaker_keys = 0;            // keys holding breaker state
  std::size_t breaker_holds = 0;           // breaker tickets held by active jobs
  std::size_t key_groups = 0;              // singleton/debounce groups (core/flow/key_groups.h)
  std::size_t key_group_jobs = 0;          // jobs in them
  std::size_t schedules = 0;               // schedules (core/cron/schedule_book.h)
  std::size_t schedule_timer_entries = 0;  // their timer heap, stale entries included
};

// A schedule as GET shows it (core/cron/schedule_book.h): a copy, with what needs the jobs.
struct ScheduleView {
  cron::Schedule schedule;
  bool live_job = false;  // schedule.state.last_job is live now
  std::vector<std::int64_t> next_fire_times;
};

// A create or replace of a schedule: the spec and, when given, `paused`.
struct ScheduleUpdate {
  cron::ScheduleSpec spec;
  std::optional<bool> paused;
};

// A page of schedules in id order; `more`: schedules follow the last one.
struct SchedulePage {
  std::vector<ScheduleView> items;
  bool more = false;
};

// What a backfill request did (Scheduler::BackfillSpecs, then the enqueues).
struct BackfillOutcome {
  std::uint64_t emitted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t after_cursor = 0;
  std::uint64_t windows = 0;
};

class Scheduler {
 public:
  using LeaseCallback = std::function<void(std::vector<LeasedJob>)>;

  Scheduler(const Clock& clock, Rng& rng, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // --- Recovery: called before any command, with what the store returned. -------------------
  void LoadNextId(JobId next_id);
  void LoadLastCreatedAt(std::int64_t created_at_ms);
  void LoadQueue(const QueueConfig& config);
  // A stored limit; before any LoadJob, so that recovered active leases count toward its cap.
  // kValidation when the stored spec does not validate (it is then not loaded).
  Status LoadLimit(const flow::LimitSpec& spec);
  // The same from the stored row (name and LimitSpec::ToJson text).
  Status LoadLimit(const std::string& name, const std::string& spec_json);
  // A stored quota count (PutQuotaCount), after the limits.
  void LoadQuotaCount(const std::string& limit, const std::string& key,
                      std::int64_t window_start_ms, std::int64_t used);
  // The newest keys, up to the cache's capacity; then, if the store held more, the latest
  // expiry among those not loaded (until then a cache miss needs a store lookup).
  void LoadIdempotencyKey(const IdempotencyKeyRecord& key);
  void LoadIdempotencyKeysOmitted(std::int64_t max_expires_at_ms);
  // The store holds `count` finished jobs of `state` in `queue`, the oldest finished at
  // `oldest_ms` (what retention has to purge, core/retention_work.h).
  void LoadFinished(const std::string& queue, JobState state, std::uint64_t count,
                    std::int64_t oldest_ms);
  // A live job from the store. An active job with a recorded lease comes back active under the
  // same token and worker until its recorded (wall-clock) expiry, converted to the monotonic
  // clock now; an active job without one (format 1 data) comes back ready.
  void LoadJob(JobRecord&& record);

  // --- Commands. ---------------------------------------------------------------------------
  // Idempotency keys live in the store; core caches the recent ones (IdempotencyCache). When
  // this returns true, `spec`'s key missed the cache and the cache cannot prove it absent: the
  // caller takes a ticket (BeginIdempotencyLookup), reads the key from the store off the core
  // thread, and passes the answer to Enqueue. Nothing changes in between.
  bool NeedsIdempotencyLookup(const EnqueueSpec& spec);
  std::uint64_t BeginIdempotencyLookup();
  // Ends a ticket whose lookup failed (Enqueue ends the others).
  void EndIdempotencyLookup(std::uint64_t ticket);
  // kValidation for values out of range (the HTTP layer checks shapes; core checks meaning).
  // With `lookup`, the cache is checked again first (a concurrent enqueue with the same key may
  // have created the job meanwhile: it is then a duplicate) and the lookup's ticket ends.
  // kInternal if a lookup was needed and not given.
  Result<EnqueueOutcome> Enqueue(EnqueueSpec spec, const IdempotencyLookup* lookup = nullptr);
  // Leases up to request.max jobs that are ready now (possibly none). Never waits. Every lease
  // appends an UpdateLease (state, attempt count, token, expiry, worker) to the open batch: a
  // lease reply must wait for durability like any write, so that a restart finds the lease.
  // A job with a timeout (core/attempt_timeout.h) gets a deadline, now + timeout_ms, recorded
  // with the lease; its lease never expires later than that.
  std::vector<LeasedJob> Lease(const LeaseRequest& request);
  // Registers a long-poll waiter that is called exactly once: with jobs when some become ready,
  // or with none at `deadline_mono_ms` (on the monotonic clock, Clock::MonoMs) or on Shutdown().
  void AddWaiter(LeaseRequest request, std::int64_t deadline_mono_ms, LeaseCallback callback);
  // Registers a wait for live job `id` to end (EndWaits, core/end_waits.h), answered exactly
  // once: with the job's view when it reaches a terminal state, or with nothing at
  // `deadline_mono_ms` or on Shutdown(). kNotFound when core does not hold the job, or holds it
  // already ended (its batch not yet durable): then there is nothing to wait for.
  // kResourceExhausted at SchedulerOptions::max_end_waits.
  Status AddEndWait(JobId id, std::int64_t deadline_mono_ms, EndWaits::Callback callback);
  std::size_t end_waits() const { return end_waits_.size(); }
  // Registers a worker's watch for cancels of the jobs leased to `worker_id` (CancelWatches,
  // core/cancel_watches.h): answered with the ids of that worker's active jobs whose cancel is
  // requested, at once when they include one outside `known`, else when a cancel adds one, at
  // `deadline_mono_ms` or on Shutdown(). kResourceExhausted at
  // SchedulerOptions::max_cancel_watches (the callback is then not called).
  Status AddCancelWatch(const std::string& worker_id, std::vector<JobId> known,
                        std::int64_t deadline_mono_ms, CancelWatches::Callback callback);
  std::size_t cancel_watches() const { return cancel_watches_.size(); }
  // What a watch of `worker_id` would be answered with now.
  std::vector<JobId> CancelsRequested(const std::string& worker_id) const {
    return cancel_watches_.Pending(worker_id);
  }
  // Puts a leased job back to ready without counting the attempt (its lease reply was lost).
  // A job whose cancel was requested meanwhile is cancelled instead: no worker has it.
  void Release(JobId id, std::uint64_t token);
  // kNotFound for an id never issued; kStaleLease when the token is not the job's current lease
  // or the job is no longer active (finished, perhaps removed by retention).
  // Extensions are persisted lazily: only when the durable expiry would lapse within half of the
  // new lease length (HeartbeatOutcome::persisted), so a steady heartbeat writes about every
  // other beat, and a crash never expires a lease that was kept extended before the worker's
  // next beat is due.
  // The new expiry is capped at the attempt's deadline when the job has a timeout. Once the
  // deadline has come, Heartbeat, Ack and Fail answer kStaleLease (the attempt failed with type
  // `timeout`), even if the lease timer has not fired yet.
  // `progress` (JSON object text, when given) replaces the attempt's progress, shown by Get()
  // while the job is active and dropped when the attempt ends.
  Result<HeartbeatOutcome> Heartbeat(JobId id, std::uint64_t token, std::int64_t extend_ms,
                                     const std::optional<std::string>& progress = std::nullopt);
  // Returns the job's new state. kNotFound, kStaleLease as for Heartbeat.
  Result<JobState> Ack(JobId id, std::uint64_t token, const std::string& result);
  Result<JobState> Fail(JobId id, std::uint64_t token, const FailSpec& error);
  // Cancels a scheduled or ready job at once; flags an active one (the worker learns it from its
  // cancel watch, AddCancelWatch, or its next heartbeat). Cancelling a cancelled job answers its
  // view again (a retried cancel is not an error). kNotFound when core does not hold the job
  // (unless Issued(id), it never existed; else the caller reads the store and calls CancelStored);
  // kInvalidState for succeeded or dead jobs.
  Result<JobView> Cancel(JobId id);
  // True when the job is live in core.
  bool IsLive(JobId id) const;
  // True when `id` was handed out by an enqueue (it may have finished or been purged since).
  bool Issued(JobId id) const { return id > 0 && id < next_id_; }

  // --- Decisions that need the stored record of a job core no longer holds. ----------------
  // Replay and the cancel of a finished job are decided here, on the core thread, against the
  // current state. When core holds the job it decides alone; otherwise the caller opens a
  // ticket, reads the job's stored record off the core thread, and hands the record back with
  // the ticket; core then decides, unless the ReadGuard (core/read_guard.h) says the record may
  // be stale: then the answer is nullopt and the caller reads again once durable_seq() >=
  // read_again_after(). Close the ticket after its records are decided.
  using ReadTicket = ReadGuard::Ticket;
  ReadTicket OpenRead() { return guard_.Open(durable_seq_); }
  void CloseRead(const ReadTicket& ticket) { guard_.Close(ticket); }
  std::uint64_t read_again_after() const { return guard_.last_purge_seq(); }
  const ReadGuard& read_guard() const { return guard_; }

  // Replay, step 1. Decided at once (a value) when core holds the job: kInvalidState naming its
  // state when it is live, or when it is terminal but not replayable (succeeded; cancelled when
  // `dead_only`); a new run of a dead or cancelled job still in memory; kNotFound for an id never
  // issued. nullopt: read the stored record and call ReplayStored.
  std::optional<Result<JobView>> ReplayInCore(JobId id, bool dead_only);
  // Replay, step 2, with the record read under `ticket` (nullopt: no row). A new run (runs + 1,
  // attempts reset) of a dead or cancelled job (dead only when `dead_only`); kInvalidState when
  // the job is live now or in another state; kNotFound when it is gone (never existed, or purged
  // by retention). nullopt: the record may be stale, read again.
  std::optional<Result<JobView>> ReplayStored(const ReadTicket& ticket, JobId id,
                                              std::optional<JobRecord>&& stored, bool dead_only);
  // Cancel, step 2 (after Cancel answered kNotFound for an issued id): cancels the job if it is
  // live again now; answers a stored cancelled job's view; kInvalidState for another terminal
  // state; kNotFound when the row is gone. nullopt: the record may be stale, read again.
  std::optional<Result<JobView>> CancelStored(const ReadTicket& ticket, JobId id,
                                              std::optional<JobRecord>&& stored);

  // --- Bulk operations (core/bulk.h): each job decided against its state now. --------------
  // Cancels the live jobs matching `filter` (narrowed to live states, NarrowBulkFilter) with
  // id > `after`, in id order, each as Cancel does (a scheduled or ready job at once, an active
  // one flagged; one whose cancel was already requested is skipped), until `max_matched` jobs
  // matched or `budget` jobs were examined; with `dry_run` only counts them. Adds to `out`'s
  // counts and to `*examined`, and returns the id to resume after (0: no live job after it
  // matched).
  JobId CancelMatching(const JobFilter& filter, JobId after, std::uint32_t max_matched,
                       std::uint64_t budget, bool dry_run, BulkOutcome& out,
                       std::uint64_t* examined);
  // What a bulk replay or delete did with one stored job.
  enum class BulkVerdict : std::uint8_t {
    kApplied,    // replayed (a new run, as ReplayStored) / deleted
    kSkipped,    // its state now does not allow it, or it no longer matches, or it is gone
    kReadAgain,  // the record may be stale, or the job is ending in core: read it again once
                 // durable_seq() >= VisibleSeq() (the job has then left core)
  };
  // Replays the job of `stored` (read under `ticket`) if it is dead or cancelled now and still
  // matches `filter`. A job live in core is skipped.
  BulkVerdict BulkReplayStored(const ReadTicket& ticket, JobId id,
                               std::optional<JobRecord>&& stored, const JobFilter& filter);
  // Deletes the stored row of a finished job that still matches `filter`: a DeleteJob in the
  // open batch (the store's one delete path, also used by acks; its side rows go with it, its
  // idempotency key keeps the final state). A job core holds is never deleted: live, it is
  // skipped; ending, it is read again.
  BulkVerdict BulkDeleteStored(const ReadTicket& ticket, JobId id,
                               const std::optional<JobRecord>& stored, const JobFilter& filter);

  // --- Namespace wipe (core/namespace_wipe.h; docs/security.md, "Tenant data"). -----------
  // The id of the newest job created so far (0: none): a wipe erases jobs up to it.
  JobId last_issued_id() const { return next_id_ - 1; }
  // Erases the live jobs of namespace `ns` with after < id <= up_to, in id order, until
  // `max_erased` were erased or `budget` index slots examined: each leaves every structure that
  // holds it (its lane or timer, its gates, breaker tickets, key groups, namespace counts), its
  // end waits are answered (cancelled, reason "namespace wiped"), the worker of an active one
  // hears of it through its cancel watch (a cancel), its row and idempotency key are deleted in
  // the open batch, and nothing of it is kept or counted as an outcome. A later heartbeat, ack
  // or fail of it answers kStaleLease. Adds to `*erased` and `*examined`; returns the id to
  // resume after, 0 when no live job of `ns` remains in (after, up_to].
  JobId EraseLive(const std::string& ns, JobId up_to, JobId after, std::uint32_t max_erased,
                  std::uint64_t budget, std::uint64_t* erased, std::uint64_t* examined);
  // Deletes the idempotency key (ns, key) if it still names job `job` (read from the store by
  // the caller): from the cache and, in the open batch, from the store.
  void EraseIdempotencyKey(const std::string& ns, const std::string& key, JobId job);
  // Deletes every schedule whose job template is of namespace `ns` (their rows and history);
  // the jobs they emitted are not touched here. Returns how many.
  std::uint64_t EraseSchedules(const std::string& ns);
  // The open batch erases tenant data (Batch::erase): the three above mark it themselves; the
  // broker marks the batches of a wipe's bulk delete.
  void MarkErasing() { open_.erase = true; }
  // The store truncates its WAL after the open batch (Batch::checkpoint), which is committed
  // even when it holds no mutation: a finished wipe.
  void RequestCheckpoint() { open_.checkpoint = true; }

  // --- Schedules (core/cron/schedule_book.h, scheduler_cron.cc; docs/api.md "Schedules"). --
  // A window's job is enqueued (Enqueue, with the template) on the core thread when its timer
  // fires in Tick, and the schedule's row (cursor, state, new history) goes into the same open
  // batch as the job: both durable, or neither. Each returns the view after the change.
  // kAlreadyExists, kValidation.
  Result<ScheduleView> CreateSchedule(cron::ScheduleSpec spec, bool paused);
  // Replaces the spec; the new one applies from the next window (ScheduleBook::Update), with
  // `paused` when given. kNotFound, kValidation.
  Result<ScheduleView> UpdateSchedule(cron::ScheduleSpec spec, std::optional<bool> paused);
  // kNotFound. Jobs it emitted are untouched.
  Status DeleteSchedule(const std::string& id);
  Result<ScheduleView> PauseSchedule(const std::string& id, bool paused);
  // A job now, outside the window sequence. kNotFound, or the enqueue's refusal.
  Result<EnqueueOutcome> TriggerSchedule(const std::string& id);
  // Backfill, step 1: the enqueue specs of the windows in [from, to] at or before the cursor
  // (each with its window's idempotency key); the caller enqueues them as any enqueue (store
  // lookups of keys the cache misses included), so a window already emitted is a duplicate,
  // then reports each created one with RecordBackfill. kNotFound, kValidation.
  Result<std::vector<std::pair<std::int64_t, EnqueueSpec>>> BackfillSpecs(const std::string& id,
                                                                          std::int64_t from,
                                                                          std::int64_t to,
                                                                          BackfillOutcome* out);
  // Backfill, step 2: window `window_ms` of `id` emitted job `job`; its history records it (a
  // schedule deleted meanwhile is ignored).
  void RecordBackfill(const std::string& id, std::int64_t window_ms, JobId job);
  // The schedule with its next `next_n` fire times (after now, or after the cursor if later).
  std::optional<ScheduleView> GetSchedule(const std::string& id, std::size_t next_n) const;
  std::vector<ScheduleView> SchedulesPage(const std::string& after, std::uint32_t limit,
                                          bool* more) const;
  // Recovery: a stored schedule, parsed by the caller (after the jobs: its overlap state asks
  // about them at the first Tick, which also reconciles it by its missed-run policy).
  void LoadSchedule(cron::ScheduleSpec spec, cron::ScheduleRow&& row);
  const cron::ScheduleBook& schedules() const { return schedules_; }
  // The lags of the windows emitted since the last call (ScheduleBook::TakeLags), for metrics.
  std::vector<std::int64_t> TakeScheduleLags() { return schedules_.TakeLags(); }
  // The idempotency key of a schedule's window (`schedule:<id>:<window>`).
  static std::string ScheduleKey(const std::string& id, std::int64_t window_ms);
  static constexpr std::int64_t kScheduleKeyTtlMs = 30LL * 86'400'000;

  // --- Reads. ------------------------------------------------------------------------------
  std::optional<JobView> Get(JobId id) const;
  // Live jobs only, ascending id, bounded scan (see JobPage::next_after_id): every filter of
  // query.filter is applied during the scan, so a page examines at most list_scan_budget jobs
  // whatever the filter.
  JobPage ListLive(const ListQuery& query) const;
  // The interned ids of the names `filter` gives, for JobFilter::Matches(LiveJob); nullopt when
  // the filter names a queue, namespace or kind core does not hold (no live job can match).
  std::optional<JobFilter::LiveNames> ResolveFilter(const JobFilter& filter) const;
  // Queues whose name sorts after `after` (byte order), in name order, at most `limit` of them;
  // `*more` tells whether further ones exist. O(limit * log queues): a page costs per page,
  // not per queue in existence.
  std::vector<QueueInfo> QueuesPage(const std::string& after, std::uint32_t limit,
                                    bool* more) const;
  std::optional<QueueInfo> Queue(const std::string& name) const;
  // What changed since the last call, for the per-queue gauges: every queue whose counts,
  // waiters or configuration changed (once each, current values) and the names of queues freed
  // since. O(changes): the caller's periodic refresh then costs what happened meanwhile, not the
  // number of queues. `full` (the first call, or after changes piled up untaken past a bound
  // proportional to the queues) means `changed` lists every queue: replace what you hold.
  struct QueueChanges {
    bool full = false;
    std::vector<QueueInfo> changed;
    std::vector<std::string> removed;
  };
  QueueChanges TakeQueueChanges();
  // The same changes with only the values the per-queue gauges show, not the whole QueueInfo
  // (no configuration copy, no state maps; blocked reasons as an array): what the broker's
  // refresh takes each second, at a small fraction of the cost per changed queue. Takes the
  // same marks: use one or the other. Blocked reasons of ready jobs can change with no change
  // to their queue (a gate shared with other queues fills or opens, a rate window passes):
  // while any limit or namespace is configured, each take also re-marks up to
  // kGaugeRecheckSlots queue slots holding ready jobs, round-robin, so such a change shows
  // within ceil(queue slots / kGaugeRecheckSlots) takes.
  struct QueueGaugeValues {
    std::string name;
    std::uint64_t scheduled = 0;
    std::uint64_t ready = 0;
    std::uint64_t active = 0;
    std::int64_t oldest_ready_age_ms = 0;  // as QueueInfo::oldest_ready_age_ms
    std::uint32_t waiting_workers = 0;
    bool paused = false;
    // Live jobs not running per reason, in kBlockedReasons order (as QueueInfo::blocked):
    // O(lanes of the queue) to compute, never O(its jobs).
    std::array<std::uint64_t, kBlockedReasonCount> blocked{};
    std::int64_t last_poll_ms = 0;  // wall clock of the last lease naming it; 0: none
  };
  struct GaugeChanges {
    bool full = false;
    std::vector<QueueGaugeValues> changed;
    std::vector<std::string> removed;
  };
  GaugeChanges TakeGaugeChanges();
  static constexpr std::uint32_t kGaugeRecheckSlots = 256;
  Result<QueueInfo> PutQueue(const QueueConfigPatch& patch);
  // Forgets the queue's configuration (it follows the server's defaults again, and is freed
  // once unused like any unconfigured queue); a paused queue resumes. nullopt when core does not
  // hold the queue (it may still exist in the store: the caller decides).
  std::optional<QueueInfo> ResetQueue(const std::string& name);
  // --- Limits (core/flow/limit_set.h). ----------------------------------------------------
  // Creates or replaces a limit (kValidation naming the field: nothing changes). Every live job
  // gets its gate set again and the counts are rebuilt from the active jobs: O(live jobs), an
  // admin operation. Lanes that may now run re-enter the rotation and waiters are served.
  Result<LimitInfo> PutLimit(const flow::LimitSpec& spec);
  // kNotFound when no such limit. Rebinds as PutLimit does: its waiting jobs run at once.
  Status DeleteLimit(const std::string& name);
  std::optional<LimitInfo> GetLimit(const std::string& name) const;
  // An operator's reset of limit `name`'s breaker for `key` (every key when null): closed at
  // once, and the lanes it held back re-enter the rotation (waiting long-polls are served).
  // Breaker state lives in memory only: nothing is written. kNotFound (no such limit),
  // kValidation (the limit has no breaker). The answer's reset_tripped counts the keys that
  // were open or half-open.
  Result<LimitInfo> ResetBreaker(const std::string& name, const std::string* key);
  std::vector<LimitInfo> LimitsPage(const std::string& after, std::uint32_t limit,
                                    bool* more) const;
  const flow::LimitSet& limits() const { return limits_; }

  // --- Namespaces (core/flow/namespace_limits.h). -----------------------------------------
  // A stored namespace configuration; before any LoadJob. kValidation when it does not
  // validate (it is then not loaded).
  Status LoadNamespace(const std::string& name, const std::string& spec_json);
  // Creates or replaces (kValidation naming the field: nothing changes). A weight change takes
  // effect in every queue at once (O(queues)); live jobs are never revoked by a lower
  // max_live_jobs, new enqueues are refused until the count is below it.
  Result<NamespaceInfo> PutNamespace(const flow::NamespaceSpec& spec);
  // kNotFound when the namespace has no configuration.
  Status DeleteNamespace(const std::string& name);
  std::optional<NamespaceInfo> GetNamespace(const std::string& name) const;
  std::vector<NamespaceInfo> NamespacesPage(const std::string& after, std::uint32_t limit,
                                            bool* more) const;
  // Live jobs (scheduled, ready, active; pending included) of namespace `name`.
  std::uint64_t LiveJobsIn(const std::string& name) const;
  // A batch of enqueues against the namespace limits, all or nothing: the specs of each
  // configured namespace (less the duplicates core knows now) are checked together; when one
  // namespace refuses, nothing changes and its kNamespaceLimit error (with retry_after_ms) is
  // returned; else their enqueue rates count them now and each spec is marked
  // (namespace_rate_counted), so that Enqueue checks only max_live_jobs. kValidation when the
  // batch's jobs of one namespace outnumber its rate's burst (no retry can succeed).
  Status AdmitBatch(std::vector<EnqueueSpec>& specs);

  std::size_t live_jobs() const { return index_.size(); }
  // Sizes of every structure core keeps (O(queues + index pages); for tests and metrics).
  SchedulerFootprint Footprint() const;
  std::size_t waiters() const { return waiters_.size(); }
  // Jobs leased to workers now, across all queues.
  std::uint64_t active_jobs() const;

  // --- Time. -------------------------------------------------------------------------------
  // Milliseconds from now until Tick() may have something to do (0: now; the next retention
  // sweep at the latest). A delay rather than a time because deadlines live on two clocks:
  // run_at timers on the wall clock, leases, long-polls and the sweep on the monotonic clock.
  std::int64_t NextDeadlineInMs() const;
  // Fires everything due: delayed jobs whose run_at (wall clock) has come become ready; leases,
  // long-poll waiters and the sweep interval fire on the monotonic clock, so a step of the wall
  // clock neither expires nor stretches them. Also rebuilds heaps whose stale entries outnumber
  // the valid ones, and the sweep frees queues nothing refers to any more.
  void Tick();

  // --- Group commit. -----------------------------------------------------------------------
  // Appends an audit entry (store/batch.h, AppendAudit) to the open batch, so that it is
  // committed in the same transaction as the mutations the current command made. Only privileged
  // commands call it; the hot paths never do.
  void RecordAudit(audit::Entry entry) {
    open_.mutations.push_back(ym::AppendAudit{std::move(entry)});
    ++open_.audit_entries;
  }
  bool HasOpenMutations() const { return !open_.empty(); }
  // Appends mutations core does not interpret (API tokens) to the open batch, in order.
  void StageMutations(std::vector<Mutation> mutations) {
    for (Mutation& m : mutations) open_.mutations.push_back(std::move(m));
  }
  std::size_t open_mutations() const { return open_.mutations.size(); }
  // The seq of the newest batch holding any mutation (open or sealed); 0 if none ever.
  std::uint64_t VisibleSeq() const;
  std::uint64_t durable_seq() const { return durable_seq_; }
  // Closes the open batch and returns it for commit. Batches must be committed in seq order.
  Batch SealBatch();
  // The batch `seq` (and every earlier one) is durable.
  void OnCommitted(std::uint64_t seq);
  // What the retention purges of a committed batch did (Store::TakePurgeOutcomes), reported
  // before its OnCommitted: whether their queues need more purging.
  void OnPurged(const std::vector<PurgeOutcome>& outcomes);
  // Retention's picture of the finished jobs (tests, footprint).
  const RetentionWork& retention() const { return retention_; }
  // The namespace windows' purge passes (core/flow/namespace_retention.h).
  const flow::NamespaceRetention& namespace_retention() const { return ns_retention_; }

  // Answers every waiter with no jobs. Used at shutdown.
  void Shutdown();

 private:
  struct ReadyEntry {
    std::int32_t priority;
    std::uint64_t seq;
    JobId id;
  };
  struct ReadyOrder {
    // std::priority_queue is a max-heap: "less" means "runs later".
    bool operator()(const ReadyEntry& a, const ReadyEntry& b) const {
      if (a.priority != b.priority) return a.priority < b.priority;
      return a.seq > b.seq;
    }
  };
  struct TimerEntry {
    std::int64_t due_ms;
    std::uint64_t seq;  // job seq, or waiter id for waiter deadlines
    JobId id;
    bool operator>(const TimerEntry& o) const { return due_ms > o.due_ms; }
  };
  using TimerHeap = std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>>;

  struct Lane {
    std::uint32_t ns = 0;
    std::uint32_t gates = flow::LimitSet::kNoGates;  // the gate set of all its jobs (a ref)
    std::priority_queue<ReadyEntry, std::vector<ReadyEntry>, ReadyOrder> ready;
    std::uint64_t ready_count = 0;  // valid entries in `ready`
    bool in_rotation = false;
    bool waiting = false;  // out of the rotation, registered on a gate that refused it
    // Waiting for a rate or an open breaker (mono ms) or a quota (wall ms) to open, per
    // wait_why; 0: on a cap or a half-open breaker's trial (an event).
    std::int64_t wait_until = 0;
    flow::Block wait_why = flow::Block::kConcurrency;
  };
  // A lane waiting for a time (Lane::wait_until); valid while the lane still waits for it.
  struct LaneTimer {
    std::int64_t due;
    flow::LaneRef lane;
    bool operator>(const LaneTimer& o) const { return due > o.due; }
  };
  using LaneTimerHeap = std::priority_queue<LaneTimer, std::vector<LaneTimer>, std::greater<>>;
  struct FifoEntry {
    std::uint64_t seq;
    JobId id;
  };
  // A queue lives while it is configured (`persisted`), holds a job in the index (in any state,
  // pending and evicting included) or has a waiter; once idle at two sweeps in a row,
  // CollectQueues frees it (in the retention sweep, O(queues) a minute), so names seen
  // once (a long-poll on a typo) do not stay. Lanes hold a reference on their namespace.
  struct QueueState {
    QueueConfig config;
    bool persisted = false;  // has a row in the store
    std::vector<Lane> lanes;
    std::unordered_map<std::uint64_t, std::uint32_t> lane_of_key;  // LaneKey(ns, gates)
    // Lanes with ready jobs (named by LaneKey): namespaces by weight, a namespace's lanes
    // round-robin (core/flow/fair_lanes.h).
    flow::FairLanes rotation;
    // Ready jobs in the order they became ready (lazy deletion), for the oldest-ready age.
    Fifo<FifoEntry> ready_fifo;
    std::uint64_t scheduled = 0, ready = 0, active = 0;
    std::uint64_t retry_waiting = 0;  // scheduled jobs waiting for a retry backoff
    std::uint64_t debounced = 0;      // scheduled jobs waiting in a debounce group
    std::uint64_t jobs = 0;           // jobs in the index that belong to this queue
    std::uint32_t live_waiters = 0;   // registered waiters that name this queue
    std::uint32_t idle_sweeps = 0;    // consecutive sweeps that found it unused
    std::int64_t last_poll_ms = 0;    // wall clock of the last lease naming it (0: none)
    bool changed = false;             // listed in changed_queues_ (TakeQueueChanges)
    Fifo<std::uint64_t> waiters;      // waiter ids, FIFO (lazy deletion)
    // Its retention entry, pinned at its first kept finished job, unpinned when it is freed.
    RetentionWork::Handle retention = nullptr;
  };
  struct Waiter {
    LeaseRequest request;
    std::vector<std::uint32_t> queues;
    LeaseCallback callback;
  };
  struct Sealed {
    std::uint64_t seq;
    std::vector<JobId> promote;  // pending jobs to make dispatchable
    std::vector<JobId> evict;    // terminal jobs to drop from memory
  };

  QueueState& Q(std::uint32_t qi) { return *queues_[qi]; }
  const QueueState& Q(std::uint32_t qi) const { return *queues_[qi]; }
  std::uint32_t QueueIndex(const std::string& name);
  static std::uint64_t LaneKey(std::uint32_t ns, std::uint32_t gates) {
    return (std::uint64_t{gates} << 32) | ns;
  }
  // The index of the lane of (ns, gates), created if needed.
  std::uint32_t LaneFor(QueueState& q, std::uint32_t ns, std::uint32_t gates);
  // Drops a lane that has no ready job and is out of the rotation (its namespace may be gone).
  void DropLane(QueueState& q, std::uint32_t li);
  void SetWorker(LiveJob& job, std::uint32_t worker);
  // Erases a job from the index and releases what it referred to.
  void DropJob(LiveJob& job);
  void RemoveWaiter(std::unordered_map<std::uint64_t, Waiter>::iterator it);
  void CollectQueues();
  // Notes that queue `qi`'s gauge values changed (TakeQueueChanges).
  void MarkChanged(std::uint32_t qi);
  // Stale-entry bounds: each rebuild is O(entries) and runs only once stale entries outnumber
  // valid ones by kStaleFactor (plus a small slack), so its cost is amortised O(1) per entry
  // that went stale.
  void MaybeCompactHeaps();
  void MaybeCompactLane(Lane& lane);
  void MaybeCompactFifo(QueueState& q);
  void MaybeCompactQueueWaiters(QueueState& q);

  LiveJob* AddJob(JobRecord&& record, bool pending);
  // `qi`: the slot of record.queue, already resolved by the caller (enqueue).
  LiveJob* AddJob(const JobRecord& record, bool pending, std::uint32_t qi);
  template <typename Record>
  LiveJob* AddJobFrom(Record&& record, bool pending, std::uint32_t qi);
  void MakeReady(LiveJob& job);
  void MakeScheduled(LiveJob& job, std::int64_t run_at_ms, bool retry);
  // Updates counters when a job leaves its current state. An active job releases its gates and
  // reports `outcome` to the breakers it was admitted through (the one place that does).
  void LeaveState(LiveJob& job, flow::BreakerOutcome outcome = flow::BreakerOutcome::kAbandoned);
  // `erase` (a namespace wipe): the job's row and idempotency key are deleted instead of kept,
  // and its end is neither counted nor reported as an outcome.
  void Finish(LiveJob& job, JobState terminal, std::string dead_reason, const std::string& result,
              bool erase = false);
  // Cancels a live (not ending) job: a scheduled or ready one at once, an active one flagged.
  void CancelLive(LiveJob& job);
  Result<LiveJob*> FindLeased(JobId id, std::uint64_t token);
  JobState FailAttempt(LiveJob& job, const FailSpec& error);
  // Reports `e` of `job` to options_.job_events (core/job_events.h) when it wants it.
  void NoteEvent(const LiveJob& job, JobEvent e, std::string_view reason);
  // Fails the active attempt of `job` whose deadline has come (AttemptTimeout).
  JobState TimeOut(LiveJob& job);
  std::int64_t BackoffDelay(const LiveJob& job);
  // `scope`: only jobs of these namespaces (LeaseRequest::namespaces); null: any.
  void TakeFromQueue(std::uint32_t qi, std::uint32_t max, std::int64_t lease_ms_override,
                     const std::string& worker_id, std::vector<LeasedJob>& out,
                     const LeaseScope* scope = nullptr);
  // The lane of `scope`'s namespaces in `q` whose next job comes first (core/lease_scope.h),
  // among lanes in the rotation and not in `tried`. O(lanes of q).
  std::optional<std::uint32_t> ScopedLane(QueueState& q, const LeaseScope& scope,
                                          const std::vector<std::uint32_t>& tried);
  bool HasReady(std::uint32_t qi) const;
  flow::LimitSubject SubjectOf(const LiveJob& job) const;
  // Puts the lanes whose gates opened (woken_) back into the rotation and serves the waiters of
  // their queues. Called at the end of every command that can end an active job.
  void WakeLanes();
  // Moves the lanes whose rate, quota or breaker has opened from the timer heaps to woken_.
  void FireLaneTimers(std::int64_t mono, std::int64_t wall);
  // True while the lane of `t` still waits for that timer (else the entry is stale).
  bool TimedLaneWaits(const LaneTimer& t, flow::Block why) const;
  // Why a lane of `gates` cannot start a job now (nullopt: it can), with when it may.
  std::optional<flow::Refusal> LaneBlocked(std::uint32_t gates) const;
  // The wall-clock time a refusal opens (0: at an event, not a time).
  std::int64_t OpensAt(const flow::Refusal& r) const;
  // After a limit changed: every live job's gate set again, counts from the active jobs, lanes
  // rebuilt from the ready jobs. O(live jobs + lanes).
  void Rebind();
  LimitInfo InfoOf(const flow::LimitSpec& spec) const;
  void ServeWaiters(std::uint32_t qi);
  void ExpireLeases(std::int64_t now);
  void Sweep(std::int64_t now);
  // Appends retention purges of at most `rows` rows to the open batch, if any is due.
  void PlanPurges(std::int64_t now, std::uint64_t rows);
  const Retention& RetentionOf(const std::string& queue) const;

  JobRecord ToRecord(const LiveJob& job, bool with_payload) const;
  JobView ToView(const LiveJob& job) const;
  QueueInfo ToQueueInfo(std::uint32_t qi) const;
  QueueGaugeValues ToGaugeValues(std::uint32_t qi) const;
  // Live jobs of `q` not running, per reason (kBlockedReasons order). O(lanes of q).
  std::array<std::uint64_t, kBlockedReasonCount> BlockedCounts(const QueueState& q) const;
  std::uint32_t gauge_recheck_next_ = 0;  // TakeGaugeChanges's round-robin position
  // How long the oldest ready job of `q` has been ready (0: none).
  std::int64_t OldestReadyAge(const QueueState& q) const;
  // TakeQueueChanges and TakeGaugeChanges: the changed queues, each rendered by `render`.
  template <typename Changes, typename Render>
  Changes TakeChanges(const Render& render);
  void RecordUpdate(LiveJob& job);
  // kSingletonConflict when a singleton limit refuses the new run.
  Result<JobView> NewRunOf(JobRecord&& stored);
  void RecordLease(LiveJob& job);
  // Conversions between the monotonic clock (in-memory deadlines) and the wall clock (what is
  // shown and persisted), at the current instant.
  std::int64_t WallOf(std::int64_t mono_ms) const;
  std::int64_t MonoOf(std::int64_t wall_ms) const;
  std::int64_t WallOffset() const;

  const Clock& clock_;
  Rng& rng_;
  SchedulerOptions options_;

  JobIndex index_;
  JobId next_id_ = 1;
  // The creation time given to the last job created (or stored). A new job's is never earlier,
  // even if the wall clock steps back, so that creation times are in id order: a created-at
  // bound of a search is an id range (Store::SearchFinished).
  std::int64_t last_created_at_ms_ = 0;
  std::uint64_t next_seq_ = 1;

  // Slots of freed queues are null and reused (free_queues_).
  std::vector<std::unique_ptr<QueueState>> queues_;
  std::vector<std::uint32_t> free_queues_;
  // Ordered, so that a page of queues is a range: GET /v1/queues pages by name; hashed for
  // the lookups of every enqueue and lease (core/queue_names.h).
  QueueNames queue_ids_;
  // Bumped whenever a name starts or stops resolving to a slot (a queue created or freed):
  // the resolutions LeaseNames cached under an older epoch are redone.
  std::uint64_t queue_epoch_ = 0;
  LeaseNames lease_names_;
  // Gauge upkeep (TakeQueueChanges): slots marked `changed` (a freed and reused slot may appear
  // twice; entries of freed slots are skipped), names freed since the last take, and whether the
  // next take must list everything (initially, and when either list outgrew its bound).
  std::vector<std::uint32_t> changed_queues_;
  std::vector<std::string> removed_queues_;
  bool changes_full_ = true;
  // Namespaces are referenced by jobs and lanes, kinds by jobs, workers by active jobs.
  InternTable ns_;
  InternTable kinds_;
  InternTable workers_;
  // Fair shares between the queues of a lease naming several: one rotation per distinct list
  // of queues (what a fleet of workers asks for), the queues as positions in the list. Bounded:
  // past kMaxLeaseSets lists the oldest state is dropped (fairness restarts at equal footing).
  struct LeaseSet {
    flow::WeightedRotation rotation;
    std::vector<std::int64_t> in;  // per position: its weight in the rotation, 0 when out
  };
  static constexpr std::size_t kMaxLeaseSets = 1024;
  std::unordered_map<std::string, LeaseSet> lease_sets_;
  // The weight of namespace `ns` (interned id) between the namespaces of a queue.
  std::int64_t NsWeight(std::uint32_t ns) const;
  // Is namespace `ns` at its max_active (no more of its jobs may start now)? One branch when no
  // namespace has a max_active.
  bool NsAtMaxActive(std::uint32_t ns) const;
  std::optional<std::int64_t> NsMaxActive(std::uint32_t ns) const;
  // Live jobs per interned namespace id (counted from AddJob to Finish).
  std::vector<std::uint64_t> ns_live_;
  void CountLive(std::uint32_t ns, bool up) {
    if (ns >= ns_live_.size()) ns_live_.resize(ns + 1, 0);
    if (up) {
      ++ns_live_[ns];
    } else {
      --ns_live_[ns];
    }
  }
  static Status NamespaceRefused(const flow::NamespaceRefusal& r);
  // Applies a namespace's weight to every queue's rotation.
  void ApplyNamespaceWeight(const std::string& name);
  void ReopenNamespace(const std::string& name);
  NamespaceInfo NamespaceInfoOf(const flow::NamespaceSpec& spec) const;
  flow::NamespaceLimits namespaces_;
  // Active jobs per namespace, and the lanes waiting for a namespace at its max_active.
  flow::NamespaceActive ns_active_;
  std::uint64_t scheduled_total_ = 0;  // valid entries of timers_
  std::uint64_t active_total_ = 0;     // jobs with a valid entry in leases_

  TimerHeap timers_;            // scheduled jobs: run_at (wall clock) -> ready
  TimerHeap leases_;            // active jobs: lease expiry (monotonic)
  TimerHeap waiter_deadlines_;  // monotonic
  std::unordered_map<std::uint64_t, Waiter> waiters_;
  EndWaits end_waits_;
  CancelWatches cancel_watches_;
  std::uint64_t next_waiter_id_ = 1;

  IdempotencyCache idempotency_;  // key: ns + '\0' + key
  // Store lookups in flight: ticket -> durable seq when it started. An entry written after the
  // oldest of them became durable must stay cached (IdempotencyCache, "Pinned entries").
  std::unordered_map<std::uint64_t, std::uint64_t> lookups_;
  std::multiset<std::uint64_t> lookup_seqs_;
  std::uint64_t next_ticket_ = 1;
  std::uint32_t keys_in_open_batch_ = 0;
  void UpdateEvictable();
  EnqueueOutcome Duplicate(JobId id, bool finished, JobState state) const;
  std::int64_t next_sweep_ms_ = 0;  // monotonic
  RetentionWork retention_;
  flow::NamespaceRetention ns_retention_;
  RetentionWork::Policy retention_policy_;
  std::int64_t next_purge_ms_ = 0;        // monotonic: the next purge chunk while one is due
  std::uint64_t kept_in_open_batch_ = 0;  // finished jobs the open batch keeps
  // Wall minus monotonic time, cached (see WallOffset). Mutable: a cache refreshed by reads.
  static constexpr std::int64_t kWallStepToleranceMs = 1000;
  mutable std::int64_t wall_offset_ = 0;
  mutable bool wall_offset_known_ = false;

  ReadGuard guard_;

  flow::LimitSet limits_;
  std::vector<flow::LaneRef> woken_;      // lanes whose gate opened, for WakeLanes
  LaneTimerHeap rate_timers_;             // lanes waiting for a rate: monotonic
  LaneTimerHeap quota_timers_;            // lanes waiting for a quota window: wall clock
  LaneTimerHeap circuit_timers_;          // lanes waiting for an open breaker: monotonic
  std::vector<flow::BreakerHold> holds_;  // scratch for Admit
  // Breaker tickets of active jobs admitted through a breaker (LeaveState reports them). A
  // multimap, one node per ticket: no vector to allocate per job.
  std::unordered_multimap<JobId, flow::BreakerHold> breaker_holds_;
  std::uint64_t timed_lanes_ = 0;           // lanes with wait_until != 0
  std::vector<flow::QuotaUse> quota_uses_;  // scratch for Admit
  // Singleton and debounce (core/flow/key_groups.h): decided at enqueue and replay, told when a
  // job starts, ends or comes back unstarted, rebuilt with the gate sets (Rebind, LoadJob).
  flow::KeyGroups key_groups_;
  std::vector<flow::KeyGate> KeyGatesOf(const LiveJob& job) const;
  // A not-started job (pending, scheduled or ready with no attempt in its run) may wait in a
  // debounce group.
  static bool NotStarted(const LiveJob& job);
  // The error a refused or skipped arrival gets where skipping is not an answer (a replay), or
  // that a refusal gets at enqueue.
  Status KeyRefusal(const flow::KeyDecision& d, const std::vector<flow::KeyGate>& gates) const;
  // Cancels the waiting job `id`, replaced by job `by` (a debounce arrival).
  void Supersede(JobId id, JobId by);
  // Puts a live job back into its key groups (recovery, Rebind) and its `debounced` mark right.
  void RestoreKeys(LiveJob& job);
  // Marks a scheduled job as waiting in a debounce group, or not, and counts it.
  void SetDebounced(LiveJob& job, bool on);

  // Schedules (scheduler_cron.cc). CronEffects is how the book enqueues, asks about and cancels
  // jobs; FireSchedules decides the due ones (Tick) and writes their rows.
  class CronEffects;
  friend class CronEffects;
  cron::ScheduleBook schedules_;
  void FireSchedules(std::int64_t now);
  void WriteSchedule(const std::string& id);
  ScheduleView ViewOf(const cron::Schedule& s, std::size_t next_n) const;

  Batch open_;
  static constexpr std::size_t kMutationsReserveMax = 1024;  // SealBatch: ~0.5 MB at most
  std::vector<JobId> open_promote_;
  std::vector<JobId> open_evict_;
  std::deque<Sealed> sealed_;
  std::uint64_t next_batch_seq_ = 1;
  std::uint64_t durable_seq_ = 0;
  std::uint64_t last_sealed_with_mutations_ = 0;
};

}  // namespace ym
