#include "server/broker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "common/build_info.h"
#include "common/rng.h"
#include "core/scheduler.h"
#include "obs/logging.h"
#include "server/job_log.h"
#include "server/scheduler_loader.h"

namespace ym {
namespace {

std::uint64_t DefaultSeed(const Clock& clock) {
  return static_cast<std::uint64_t>(clock.NowMs()) * 0x9e3779b97f4a7c15ULL ^
         (static_cast<std::uint64_t>(::getpid()) << 32) ^
         static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

// How often one job's record is read before a replay or cancel gives up with 503. A read is
// stale only when the job changed or a retention purge ran while it was in flight, so the second
// read almost always settles it.
constexpr int kMaxStoreReads = 5;
// The longest the core thread sleeps while idle: its heartbeat's period (Broker::core_alive).
constexpr std::int64_t kCoreBeatMs = 1000;
// Jobs a bulk replay reads and decides per step on the core thread; other commands run between
// steps, so a bulk replay of 100,000 jobs never holds the core thread for long.
constexpr std::size_t kReplayChunk = 100;

// One POST /v1/dead:replay in progress. Touched by one thread at a time: each step runs on the
// core thread, and the reader thread it hands a read to only reads the store.
struct BulkReplay {
  bool by_filter = false;
  std::string queue;        // by filter: empty means every queue
  std::uint32_t limit = 0;  // by filter: most jobs to replay
  JobId after_id = 0;       // by filter: listing cursor
  bool listing_done = false;
  // Ids still to decide, with how often each was read already (by ids, or rows of the listing
  // whose read turned out stale).
  std::deque<std::pair<JobId, int>> pending;
  std::uint64_t replayed = 0;
  Status error;  // the first server-side error; answered only if nothing was replayed
  const std::atomic<bool>* draining = nullptr;
  Broker::Callback<std::uint64_t> done;
  AuditNote audit;  // recorded with the last step, with the count
};

// A bulk cancel, replay or delete in progress (Broker::Bulk): the request, its counts so far,
// and the listing's position.
struct BulkRun {
  BulkRequest request;
  BulkOutcome out;
  JobId cursor = 0;  // every candidate with id <= cursor was examined
  bool listing_done = false;
  std::uint64_t examined = 0;
  // Stored jobs to decide again (their record may have been stale, or they were ending in
  // core), with how often each was read already.
  std::deque<std::pair<JobId, int>> pending;
  bool first_step = true;
  const std::atomic<bool>* draining = nullptr;
  Broker::Callback<BulkOutcome> done;
  AuditNote audit;  // recorded with the last step, with the counts
};

// A namespace wipe in progress (Broker::WipeNamespace): its phases in order.
struct WipeRun {
  enum class Phase : std::uint8_t { kLive, kFinished, kKeys, kSchedules, kDone };
  WipeRequest request;
  WipeOutcome out;
  Phase phase = Phase::kLive;
  JobId live_cursor = 0;
  std::uint64_t examined = 0;  // live jobs examined by this request (at most kBulkExamineBudget)
  std::string after_key;       // the keys phase's position (key order)
  bool first_step = true;
  const std::atomic<bool>* draining = nullptr;
  Broker::Callback<WipeOutcome> done;
  AuditNote audit;  // recorded with the first step, with the mark
};

// Adds `"key":value` to the JSON object text `object` ("{}" or "{...}").
void AddDetail(std::string& object, std::string_view key, std::uint64_t value) {
  if (object.size() < 2 || object.back() != '}') object = "{}";
  object.pop_back();
  if (object.size() > 1) object += ',';
  object += '"';
  object += key;
  object += "\":";
  object += std::to_string(value);
  object += '}';
}

// One listing step of a bulk replay or delete: the stored jobs matching the filter after
// `after` (the store's bounded, indexed search, as GET /v1/jobs uses), and where to list on.
Result<FinishedPage> ListBulkCandidates(Store& store, const JobFilter& filter, JobId after,
                                        std::uint32_t limit, std::uint64_t max_examined) {
  FinishedSearch q;
  q.filter = filter;
  q.after_id = after;
  q.limit = limit;
  q.max_examined = static_cast<std::uint32_t>(std::max<std::uint64_t>(max_examined, 1));
  return store.SearchFinished(q);
}

}  // namespace

// An enqueue spec waiting for its idempotency key to be read from the store.
struct Broker::KeyLookup {
  std::size_t slot;
  EnqueueSpec spec;
  IdempotencyLookup lookup;
  Status error;
};

namespace {

// Which cap a client command is admitted under (BrokerOptions::max_queued_commands).
enum class Admission {
  kNew,         // new work and reads
  kCompletion,  // acks, fails, heartbeats of running jobs: admitted within the margin too
};

}  // namespace

class Broker::Impl {
 public:
  Impl(Store& store, const Clock& clock, BrokerOptions options)
      : store_(store),
        clock_(clock),
        options_(std::move(options)),
        rng_(options_.seed != 0 ? options_.seed : DefaultSeed(clock)),
        job_stats_(options_.metrics_max_label_sets),
        readers_(static_cast<std::size_t>(std::max(1, options_.reader_threads))) {
    // Every scheduler this broker builds (Rebuild) counts into the same JobStats, so the
    // counters stay monotonic across a rebuild after a failed commit.
    options_.scheduler.job_stats = &job_stats_;
    options_.scheduler.job_events = &job_log_;
  }

  ~Impl() { Stop(); }

  Status Start() {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = Rebuild();
    if (!s.ok()) return s;
    recovery_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    recovered_jobs_ = sched_->live_jobs();
    started_at_ms_ = clock_.NowMs();
    running_ = true;
    core_beat_mono_.store(clock_.MonoMs(), std::memory_order_relaxed);
    writer_ = std::thread([this] { WriterLoop(); });
    core_ = std::thread([this] { CoreLoop(); });
    return Status::Ok();
  }

  void Stop() {
    {
      std::lock_guard lk(mu_);
      if (!running_) return;
      stop_requested_ = true;
    }
    cv_.notify_one();
    if (core_.joinable()) core_.join();
    {
      std::lock_guard lk(wmu_);
      writer_stop_ = true;
    }
    wcv_.notify_one();
    if (writer_.joinable()) writer_.join();
    readers_.join();
    running_ = false;
  }

  // Runs `fn` on the core thread. Internal work (commit results, hand-backs, the second step of
  // a command already admitted) always gets in.
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lk(mu_);
      tasks_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

  // Admission of a new command from a client, before it is posted: refuses it at once when
  // the queue to core already holds `max_queued_commands` of weight (`completion_margin` more
  // for acks, fails and heartbeats); otherwise reserves its weight, and the caller posts it.
  Status Admit(Admission kind, std::uint64_t weight) {
    std::lock_guard lk(mu_);
    YM_RETURN_IF_ERROR(CheckAdmission(kind, queued_weight_));
    queued_weight_ += std::max<std::uint64_t>(weight, 1);
    return Status::Ok();
  }

  // The same for a command that starts with a store read, counted on the reads in flight.
  Status AdmitRead() {
    return CheckAdmission(Admission::kNew, reads_in_flight_.load(std::memory_order_relaxed));
  }

  // Runs `fn` on a reader thread (store reads never block the core thread).
  void Read(std::function<void()> fn) {
    reads_in_flight_.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(readers_, [this, fn = std::move(fn)] {
      fn();
      reads_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    });
  }

  // Core thread: calls `reply(status)` once everything written or observed so far is durable
  // (Ok), or the commit failed (kStoreUnavailable).
  void AfterDurable(std::function<void(Status)> reply) {
    const std::uint64_t seq = sched_->VisibleSeq();
    if (seq <= sched_->durable_seq()) {
      reply(Status::Ok());
      return;
    }
    replies_.push_back(PendingReply{seq, std::move(reply)});
  }

  // Core thread: appends `note`'s entry to the open batch when it is audited, so it commits
  // with the mutations the current command made (AuditNote).
  void Audit(const AuditNote& note) {
    if (note.enabled) sched_->RecordAudit(note.ToEntry(clock_.NowMs()));
  }

  Scheduler& sched() { return *sched_; }
  Store& store() { return store_; }
  const Clock& clock() const { return clock_; }
  BrokerCounters& counters() { return counters_; }
  const JobStats& job_stats() const { return job_stats_; }
  std::int64_t started_at_ms() const { return started_at_ms_; }
  std::uint64_t recovered_jobs() const { return recovered_jobs_; }
  std::vector<ApiTokenRow> TakeRecoveredApiTokens() { return std::move(recovered_api_tokens_); }
  std::int64_t recovery_ms() const { return recovery_ms_; }
  const BrokerOptions& options() const { return options_; }

  // --- Decisions against the current state (definitions below the class). -----------------
  // Replay, and cancel of a job core no longer holds, are decided on the core thread; a reader
  // thread only fetches the stored record. core/read_guard.h explains when such a record may be
  // stale and how core knows.
  using Decide = std::function<std::optional<Result<JobView>>(const Scheduler::ReadTicket&,
                                                              std::optional<JobRecord>&&)>;
  // Core thread: answers `r` once everything core observed so far is durable.
  void AnswerWhenDurable(Result<JobView> r, Callback<JobView> done);
  // Reader thread: answers queue `name` (core's view in `live`, empty when core does not hold
  // it) with the store's finished counts; QueueNotFound when neither knows it.
  void AnswerQueue(const std::string& name, std::vector<QueueInfo> live, Callback<QueueInfo> done);
  // Core thread: reads job `id` and lets `decide` judge the record on the core thread; reads
  // again (at most kMaxStoreReads times in all) while `decide` says it may be stale.
  void DecideFromStore(JobId id, Decide decide, Callback<JobView> done, int reads);
  // Core thread: runs the next step of a bulk replay, or answers it.
  void BulkStep(const std::shared_ptr<BulkReplay>& b);
  // Core thread: the next step of a bulk operation (Broker::Bulk), or its answer.
  void BulkOpStep(const std::shared_ptr<BulkRun>& b);
  // One step of a namespace wipe (Broker::WipeNamespace), on the core thread.
  void WipeStep(const std::shared_ptr<WipeRun>& w);

  // Any thread: false while read-only after a failed commit.
  bool store_available() const { return store_available_.load(std::memory_order_acquire); }
  // Any thread: how long ago (monotonic ms) the core thread last went round its loop. It goes
  // round at least every kCoreBeatMs while idle, so a large age means it is stuck in one task.
  std::int64_t core_heartbeat_age_ms() const {
    return std::max<std::int64_t>(clock_.MonoMs() - core_beat_mono_.load(std::memory_order_relaxed),
                                  0);
  }
  std::string store_error() const {
    std::lock_guard lk(store_error_mu_);
    return store_error_;
  }
  // Core thread: true while read-only. Writes check this on the core thread (the I/O thread's
  // check of store_available() is only a shortcut), so no client write's mutation ever enters a
  // batch while the store is unavailable: the batches then hold only what timers produced
  // (lease expiries, retention) and lazily persisted heartbeats, which nobody was promised.
  bool read_only() const { return read_only_; }
  Status ReadOnlyError() const {
    return StoreUnavailable("read-only: the store refuses writes (" + read_only_cause_ +
                            "); retry later");
  }

 private:
  struct PendingReply {
    std::uint64_t seq;
    std::function<void(Status)> reply;
  };

  Status CheckAdmission(Admission kind, std::uint64_t queued) {
    std::uint64_t cap = options_.max_queued_commands;
    if (kind == Admission::kCompletion) cap += options_.completion_margin;
    if (queued < cap) return Status::Ok();
    counters_.refused_busy.fetch_add(1, std::memory_order_relaxed);
    return Status(Code::kResourceExhausted,
                  "server busy: " + std::to_string(queued) +
                      " commands are waiting for the core (max_queued_commands " +
                      std::to_string(options_.max_queued_commands) + "); retry later");
  }

  // Builds a new scheduler from the store. Used at start and after a failed commit, when the
  // in-memory state may hold changes the disk does not.
  Status Rebuild() {
    auto fresh = std::make_unique<Scheduler>(clock_, rng_, options_.scheduler);
    SchedulerLoader loader(*fresh, options_.scheduler.idempotency_cache_keys);
    YM_RETURN_IF_ERROR(store_.Recover(clock_.NowMs(), loader));
    if (loader.bad_limits() > 0) {
      YM_LOG(err, kStore)
          .Uint("count", loader.bad_limits())
          .Str("limit", loader.first_bad_limit())
          .Msg("{} stored limit(s) could not be loaded and are not enforced; first: {}",
               loader.bad_limits(), loader.first_bad_limit());
    }
    sched_ = std::move(fresh);
    ++generation_;
    if (generation_ == 1) recovered_api_tokens_ = std::move(loader.api_tokens());
    return Status::Ok();
  }

  void BulkRead(const std::shared_ptr<BulkReplay>& b, std::vector<std::pair<JobId, int>> chunk);
  void BulkList(const std::shared_ptr<BulkReplay>& b);
  void BulkFinish(const std::shared_ptr<BulkReplay>& b);
  void BulkOpList(const std::shared_ptr<BulkRun>& b);
  void BulkOpReread(const std::shared_ptr<BulkRun>& b, std::vector<std::pair<JobId, int>> chunk);
  // Decides one stored job of a bulk replay or delete; false when it must be read again.
  void BulkOpDecide(const std::shared_ptr<BulkRun>& b, const Scheduler::ReadTicket& ticket,
                    JobId id, std::optional<JobRecord>&& row, int reads);
  // Continues after a step: once its writes are durable when it wrote any.
  void BulkOpNext(const std::shared_ptr<BulkRun>& b, bool wrote);
  void WipeFinished(const std::shared_ptr<WipeRun>& w);
  void WipeKeys(const std::shared_ptr<WipeRun>& w);
  void WipeNext(const std::shared_ptr<WipeRun>& w, bool wrote);
  void WipeAnswer(const std::shared_ptr<WipeRun>& w, Status error);
  void BulkOpAnswer(const std::shared_ptr<BulkRun>& b, Status error);

  void CoreLoop() {
    std::vector<std::function<void()>> batch;
    bool shutdown_done = false;
    for (;;) {
      bool stop = false;
      {
        std::unique_lock lk(mu_);
        if (tasks_.empty() && !stop_requested_) {
          // Deadline-driven: sleep until the next timer (at most a retention sweep away) or
          // until a command arrives. The wait is a duration on the steady clock, so a step of
          // the wall clock does not make core oversleep a lease expiry or a long-poll deadline.
          std::int64_t delay = sched_->NextDeadlineInMs();
          if (read_only_ && !commit_in_flight_) {
            delay = std::min(delay, std::max<std::int64_t>(next_probe_mono_ - clock_.MonoMs(), 0));
          }
          // At most kCoreBeatMs, so that an idle core still proves it is alive (/livez).
          delay = std::min(delay, kCoreBeatMs);
          if (delay > 0) cv_.wait_for(lk, std::chrono::milliseconds(delay));
        }
        batch.swap(tasks_);
        core_beat_mono_.store(clock_.MonoMs(), std::memory_order_relaxed);
        counters_.queued_commands.store(queued_weight_, std::memory_order_relaxed);
        queued_weight_ = 0;
        stop = stop_requested_;
      }
      for (auto& fn : batch) fn();
      batch.clear();
      sched_->Tick();
      if (stop && !shutdown_done) {
        // Long-poll waiters get an empty answer now rather than when their wait ends.
        sched_->Shutdown();
        shutdown_done = true;
      }
      MaybeCommit();
      RefreshGauges();
      counters_.live_jobs.store(sched_->live_jobs(), std::memory_order_relaxed);
      counters_.active_jobs.store(sched_->active_jobs(), std::memory_order_relaxed);
      counters_.waiting_leases.store(sched_->waiters(), std::memory_order_relaxed);
      counters_.end_waits.store(sched_->end_waits(), std::memory_order_relaxed);
      counters_.cancel_watches.store(sched_->cancel_watches(), std::memory_order_relaxed);
      if (!sched_->schedules().empty() || counters_.schedules.load(std::memory_order_relaxed)) {
        const cron::ScheduleBook& book = sched_->schedules();
        counters_.schedules.store(book.size(), std::memory_order_relaxed);
        counters_.schedule_windows_emitted.store(book.emitted_total(), std::memory_order_relaxed);
        counters_.schedule_windows_skipped.store(book.skipped_total(), std::memory_order_relaxed);
        for (std::int64_t lag : sched_->TakeScheduleLags()) {
          counters_.schedule_fire_lag_ms.Observe(
              static_cast<std::uint64_t>(std::max<std::int64_t>(lag, 0)));
        }
      }

      if (stop) {
        std::lock_guard lk(mu_);
        // Read-only, what is left open was produced by timers and promised to nobody: it is
        // dropped rather than waited for (the next start recovers the durable state).
        if (tasks_.empty() && !commit_in_flight_ && (read_only_ || !sched_->HasOpenMutations())) {
          break;
        }
      }
    }
  }

  void RefreshGauges() {
    const std::int64_t now = clock_.NowMs();
    if (now < next_gauges_ms_) return;
    next_gauges_ms_ = now + 1000;
    // Only what changed since the last refresh: O(changes), not O(queues).
    Scheduler::GaugeChanges changes = sched_->TakeGaugeChanges();
    if (!changes.full && changes.changed.empty() && changes.removed.empty()) return;
    std::lock_guard lk(gauges_mu_);
    if (changes.full) gauges_.clear();
    for (const std::string& name : changes.removed) gauges_.erase(name);
    for (const Scheduler::QueueGaugeValues& q : changes.changed) {
      QueueGauge& x = gauges_[q.name];
      x.queue = q.name;
      x.scheduled = q.scheduled;
      x.ready = q.ready;
      x.active = q.active;
      // The age grows with time without any change to the queue: keep when the oldest ready
      // job became ready, and compute the age when the gauges are read.
      x.oldest_ready_since_ms = now - q.oldest_ready_age_ms;
      x.waiting_workers = q.waiting_workers;
      x.paused = q.paused;
      x.blocked = q.blocked;
      x.last_poll_ms = q.last_poll_ms;
    }
  }

 public:
  std::vector<QueueGauge> Gauges() const {
    const std::int64_t now = clock_.NowMs();
    std::lock_guard lk(gauges_mu_);
    std::vector<QueueGauge> out;
    out.reserve(gauges_.size());
    for (const auto& [name, g] : gauges_) {
      out.push_back(g);
      out.back().oldest_ready_age_ms =
          g.ready > 0 ? std::max<std::int64_t>(now - g.oldest_ready_since_ms, 0) : 0;
    }
    return out;
  }

 private:
  void MaybeCommit() {
    if (commit_in_flight_) return;
    Batch b;
    if (read_only_) {
      // The probe: the batch that failed last (retried as it was, so batches still commit in
      // sequence), else whatever timers added since; marked so that the store really writes
      // and syncs even when it holds no mutation.
      if (clock_.MonoMs() < next_probe_mono_) return;
      if (retry_batch_) {
        b = std::move(*retry_batch_);
        retry_batch_.reset();
      } else {
        b = sched_->SealBatch();
      }
      b.probe = true;
      counters_.store_probes.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (!sched_->HasOpenMutations()) return;
      b = sched_->SealBatch();
    }
    commit_in_flight_ = true;
    {
      std::lock_guard lk(wmu_);
      to_write_ = std::move(b);
    }
    wcv_.notify_one();
  }

  void WriterLoop() {
    for (;;) {
      Batch b;
      {
        std::unique_lock lk(wmu_);
        wcv_.wait(lk, [&] { return to_write_.has_value() || writer_stop_; });
        if (!to_write_) return;
        b = std::move(*to_write_);
        to_write_.reset();
      }
      const auto t0 = std::chrono::steady_clock::now();
      Status s = store_.Commit(b);
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
      counters_.commit_micros.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
      counters_.commit_duration_us.Observe(static_cast<std::uint64_t>(us));
      if (s.ok()) {
        counters_.commit_batch_mutations.Observe(b.mutations.size());
        counters_.commits.fetch_add(1, std::memory_order_relaxed);
        counters_.committed_mutations.fetch_add(b.mutations.size(), std::memory_order_relaxed);
        if (b.audit_entries > 0 && options_.on_audit_committed) {
          options_.on_audit_committed(store_.AuditHead());
        }
      }
      const std::uint64_t seq = b.seq;
      // A failed batch goes back to core: while read-only it is retried as the next probe.
      std::optional<Batch> failed;
      std::vector<PurgeOutcome> purged;
      if (!s.ok()) {
        failed = std::move(b);
      } else {
        purged = store_.TakePurgeOutcomes();
      }
      Post([this, seq, s = std::move(s), failed = std::move(failed),
            purged = std::move(purged)]() mutable {
        OnCommitDone(seq, s, std::move(failed), purged);
      });
    }
  }

  void OnCommitDone(std::uint64_t seq, const Status& s, std::optional<Batch> failed,
                    const std::vector<PurgeOutcome>& purged) {
    commit_in_flight_ = false;
    if (s.ok()) {
      if (!purged.empty()) {
        std::uint64_t n = 0;
        for (const PurgeOutcome& o : purged) n += o.deleted;
        counters_.purged.fetch_add(n, std::memory_order_relaxed);
        sched_->OnPurged(purged);
      }
      sched_->OnCommitted(seq);
      while (!replies_.empty() && replies_.front().seq <= seq) {
        auto reply = std::move(replies_.front().reply);
        replies_.pop_front();
        reply(Status::Ok());
      }
      if (read_only_) LeaveReadOnly();
      return;
    }
    counters_.commit_failures.fetch_add(1, std::memory_order_relaxed);
    if (read_only_) {
      // A probe failed. Core's state is the durable state plus this batch and the open one, and
      // neither holds anything a client was promised, so nothing needs reloading: keep the
      // batch for the next probe and back off. Logged at debug level: the episode was logged
      // once when it began.
      retry_batch_ = std::move(failed);
      probe_delay_ms_ = std::min(probe_delay_ms_ * 2, kProbeMaxMs);
      next_probe_mono_ = clock_.MonoMs() + probe_delay_ms_;
      YM_LOG(debug, kStore)
          .Uint("batch", seq)
          .Str("error", s.ToString())
          .Int("next_probe_ms", probe_delay_ms_)
          .Msg("store probe (batch {}) failed: {}; next in {} ms", seq, s.ToString(),
               probe_delay_ms_);
      return;
    }
    EnterReadOnly(seq, s);
  }

  // The first failed commit of an episode. Nothing of the batch reached the disk, but core already
  // acted on it (and on the open batch built on top of it), so the only state we can trust is the
  // store's: every write waiting on either batch is answered with the error (it did not happen),
  // and the state is reloaded once. Leases are persisted, so the reload keeps every durable
  // lease: running jobs stay with their workers, whose heartbeats still work. Then the broker is
  // read-only until a probe commit succeeds, so a persistent fault (disk full, EIO) costs one
  // reload per episode instead of a reload and a re-dispatch of every running job per commit.
  void EnterReadOnly(std::uint64_t seq, const Status& s) {
    read_only_ = true;
    read_only_cause_ = s.message();
    read_only_since_mono_ = clock_.MonoMs();
    probes_at_start_ = counters_.store_probes.load(std::memory_order_relaxed);
    {
      std::lock_guard lk(store_error_mu_);
      store_error_ = s.message();
    }
    store_available_.store(false, std::memory_order_release);
    counters_.store_unavailable_episodes.fetch_add(1, std::memory_order_relaxed);
    YM_LOG(err, kStore)
        .Uint("batch", seq)
        .Str("error", s.ToString())
        .Msg(
            "commit of batch {} failed: {}; the server is read-only (writes answer 503 "
            "store_unavailable) and probes the store until it takes writes again",
            seq, s.ToString());
    auto replies = std::move(replies_);
    replies_.clear();
    for (auto& r : replies) {
      r.reply(StoreUnavailable("the write could not be made durable: " + s.message()));
    }
    sched_->Shutdown();
    Status rebuilt = Rebuild();
    if (!rebuilt.ok()) {
      // Without a consistent state we must not serve: exiting lets the supervisor restart us,
      // and recovery at start is the same code path.
      YM_LOG(critical, kStore)
          .Str("error", rebuilt.ToString())
          .Msg("cannot reload state after a failed commit: {}", rebuilt.ToString());
      std::_Exit(70);
    }
    retry_batch_.reset();
    // A small probe can succeed on a disk that still cannot take a real batch (it rewrites one
    // page, which may fit where the failed batch did not), so episodes can follow each other.
    // One that starts soon after the last ended keeps backing off from where that one stopped,
    // which bounds the reloads under a persistent fault to one per kProbeMaxMs.
    const std::int64_t now = clock_.MonoMs();
    const bool recent = resumed_mono_ != 0 && now - resumed_mono_ < kRecentEpisodeMs;
    probe_delay_ms_ = recent ? std::min(last_probe_delay_ms_ * 2, kProbeMaxMs) : kProbeFirstMs;
    next_probe_mono_ = now + probe_delay_ms_;
  }

  void LeaveReadOnly() {
    read_only_ = false;
    resumed_mono_ = clock_.MonoMs();
    last_probe_delay_ms_ = probe_delay_ms_;
    {
      std::lock_guard lk(store_error_mu_);
      store_error_.clear();
    }
    store_available_.store(true, std::memory_order_release);
    const std::int64_t read_only_ms = clock_.MonoMs() - read_only_since_mono_;
    const std::uint64_t probes =
        counters_.store_probes.load(std::memory_order_relaxed) - probes_at_start_;
    YM_LOG(info, kStore)
        .Int("read_only_ms", read_only_ms)
        .Uint("probes", probes)
        .Msg("the store takes writes again after {} ms ({} probes); writes are accepted",
             read_only_ms, probes);
  }

  // Probe back-off while read-only: the first probe 250 ms after the failure, then doubling up
  // to one every 5 s, so a short hiccup (a lock held by an operator's shell) costs little and a
  // full disk costs one small write attempt every few seconds.
  static constexpr std::int64_t kProbeFirstMs = 250;
  static constexpr std::int64_t kProbeMaxMs = 5000;
  static constexpr std::int64_t kRecentEpisodeMs = 30'000;

  Store& store_;
  const Clock& clock_;
  BrokerOptions options_;
  Rng rng_;
  // Written by the core thread only (through the scheduler), read by /metrics.
  JobStats job_stats_;
  JobLog job_log_;                    // the log lines of core's job events (server/job_log.h)
  std::unique_ptr<Scheduler> sched_;  // core thread only (and Start before threads exist)
  BrokerCounters counters_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  std::uint64_t queued_weight_ = 0;           // GUARDED_BY(mu_): admitted weight in tasks_
  // Store reads queued or running; relaxed: an approximate count is enough for admission.
  std::atomic<std::uint64_t> reads_in_flight_{0};
  bool stop_requested_ = false;  // GUARDED_BY(mu_)
  bool running_ = false;

  // Core thread only.
  // Bumped by every Rebuild(): a read ticket of an earlier scheduler means nothing to this one.
  std::uint64_t generation_ = 0;
  bool commit_in_flight_ = false;
  std::deque<PendingReply> replies_;
  bool read_only_ = false;
  std::string read_only_cause_;
  std::optional<Batch> retry_batch_;  // the failed probe batch, committed next
  std::int64_t probe_delay_ms_ = kProbeFirstMs;
  std::int64_t next_probe_mono_ = 0;
  std::int64_t read_only_since_mono_ = 0;
  std::uint64_t probes_at_start_ = 0;
  std::int64_t resumed_mono_ = 0;  // when the last episode ended; 0: none yet
  std::int64_t last_probe_delay_ms_ = kProbeFirstMs;

  // Published by the core thread for /readyz and /metrics (any thread). The flag is atomic on
  // its own; the cause's text is guarded by a mutex as it is a string.
  std::atomic<bool> store_available_{true};
  // Monotonic ms of the core loop's last wake-up (core_heartbeat_age_ms).
  std::atomic<std::int64_t> core_beat_mono_{0};
  mutable std::mutex store_error_mu_;
  std::string store_error_;  // GUARDED_BY(store_error_mu_)

  std::mutex wmu_;
  std::condition_variable wcv_;
  std::optional<Batch> to_write_;  // GUARDED_BY(wmu_)
  bool writer_stop_ = false;       // GUARDED_BY(wmu_)

  boost::asio::thread_pool readers_;
  std::thread core_;
  std::thread writer_;
  std::int64_t started_at_ms_ = 0;
  std::uint64_t recovered_jobs_ = 0;
  std::vector<ApiTokenRow> recovered_api_tokens_;  // from the first Rebuild, until taken
  std::int64_t recovery_ms_ = 0;
  std::int64_t next_gauges_ms_ = 0;  // core thread only
  mutable std::mutex gauges_mu_;
  std::map<std::string, QueueGauge> gauges_;  // GUARDED_BY(gauges_mu_); by name
};

// --- Decisions against the current state ----------------------------------------------------

void Broker::Impl::AnswerWhenDurable(Result<JobView> r, Callback<JobView> done) {
  // Errors wait too: a 409 naming a state, or a 404 because a purge removed the row, must not
  // be answered before what it reports is on disk.
  AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
    if (!s.ok()) return done(s);
    done(std::move(r));
  });
}

void Broker::Impl::DecideFromStore(JobId id, Decide decide, Callback<JobView> done, int reads) {
  const Scheduler::ReadTicket ticket = sched_->OpenRead();
  const std::uint64_t generation = generation_;
  Read([this, id, ticket, generation, decide = std::move(decide), done = std::move(done),
        reads]() mutable {
    auto stored = store_.GetJob(id);
    Post([this, id, ticket, generation, stored = std::move(stored), decide = std::move(decide),
          done = std::move(done), reads]() mutable {
      if (generation != generation_) {
        // The state was reloaded from the store meanwhile; ask again against the new one.
        if (reads + 1 >= kMaxStoreReads) {
          return done(Unavailable("job " + FormatJobId(id) + ": the state kept being reloaded"));
        }
        return DecideFromStore(id, std::move(decide), std::move(done), reads + 1);
      }
      if (!stored.ok()) {
        sched_->CloseRead(ticket);
        return done(stored.status());
      }
      if (read_only_) {
        // The store refuses writes since the read began: decide nothing.
        sched_->CloseRead(ticket);
        return done(ReadOnlyError());
      }
      auto decided = decide(ticket, std::move(*stored));
      sched_->CloseRead(ticket);
      if (decided) return AnswerWhenDurable(std::move(*decided), std::move(done));
      if (reads + 1 >= kMaxStoreReads) {
        return done(Unavailable("job " + FormatJobId(id) + " kept changing while it was read; " +
                                "try again"));
      }
      // The record may predate a change. Read again once every purge the read may have missed
      // is durable (VisibleSeq covers them), so the next read sees it.
      AfterDurable(
          [this, id, decide = std::move(decide), done = std::move(done), reads](Status s) mutable {
            if (!s.ok()) return done(s);
            DecideFromStore(id, std::move(decide), std::move(done), reads + 1);
          });
    });
  });
}

void Broker::Impl::BulkStep(const std::shared_ptr<BulkReplay>& b) {
  if (b->draining->load(std::memory_order_acquire)) {
    if (b->error.ok()) b->error = Unavailable("draining: replays are refused");
    return BulkFinish(b);
  }
  if (read_only_) {
    // Each step decides (and writes) on the core thread, so checking here covers every step.
    if (b->error.ok()) b->error = ReadOnlyError();
    return BulkFinish(b);
  }
  if (b->by_filter && b->replayed >= b->limit) return BulkFinish(b);
  if (!b->pending.empty()) {
    // Ids first (the caller's, or listed rows whose read was stale): a listing is only continued
    // once they are decided, so a filtered replay never goes past its limit.
    std::vector<std::pair<JobId, int>> chunk;
    std::size_t budget = kReplayChunk;
    if (b->by_filter) budget = std::min<std::size_t>(budget, b->limit - b->replayed);
    bool reread = false;
    while (!b->pending.empty() && chunk.size() < budget) {
      chunk.push_back(b->pending.front());
      reread = reread || chunk.back().second > 0;
      b->pending.pop_front();
    }
    if (!reread) return BulkRead(b, std::move(chunk));
    // Read again once every purge the earlier read may have missed is durable.
    return AfterDurable([this, b, chunk = std::move(chunk)](Status s) mutable {
      if (!s.ok()) {
        b->error = s;
        b->replayed = 0;  // nothing of it is durable
        return b->done(s);
      }
      BulkRead(b, std::move(chunk));
    });
  }
  if (b->by_filter && !b->listing_done) return BulkList(b);
  BulkFinish(b);
}

void Broker::Impl::BulkRead(const std::shared_ptr<BulkReplay>& b,
                            std::vector<std::pair<JobId, int>> chunk) {
  if (read_only_) {
    if (b->error.ok()) b->error = ReadOnlyError();
    return BulkFinish(b);
  }
  // Core decides alone what it holds; the rest is read.
  std::vector<std::pair<JobId, int>> to_read;
  for (const auto& [id, reads] : chunk) {
    if (auto now = sched_->ReplayInCore(id, /*dead_only=*/true)) {
      if (now->ok()) ++b->replayed;
    } else {
      to_read.emplace_back(id, reads);
    }
  }
  if (to_read.empty()) {
    Post([this, b] { BulkStep(b); });
    return;
  }
  const Scheduler::ReadTicket ticket = sched_->OpenRead();
  const std::uint64_t generation = generation_;
  Read([this, b, ticket, generation, to_read = std::move(to_read)]() mutable {
    std::vector<std::optional<JobRecord>> rows;
    Status error;
    for (const auto& [id, reads] : to_read) {
      auto stored = store_.GetJob(id);
      if (!stored.ok()) {
        error = stored.status();
        break;
      }
      rows.push_back(std::move(*stored));
    }
    Post([this, b, ticket, generation, to_read = std::move(to_read), rows = std::move(rows),
          error = std::move(error)]() mutable {
      if (generation != generation_) {
        for (const auto& [id, reads] : to_read) b->pending.emplace_back(id, reads + 1);
        return BulkStep(b);
      }
      if (read_only_) {
        sched_->CloseRead(ticket);
        if (b->error.ok()) b->error = ReadOnlyError();
        return BulkFinish(b);
      }
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto [id, reads] = to_read[i];
        auto decided = sched_->ReplayStored(ticket, id, std::move(rows[i]), /*dead_only=*/true);
        if (!decided) {
          if (reads + 1 < kMaxStoreReads) b->pending.emplace_back(id, reads + 1);
        } else if (decided->ok()) {
          ++b->replayed;
        }
      }
      sched_->CloseRead(ticket);
      if (!error.ok()) {
        b->error = error;
        return BulkFinish(b);
      }
      BulkStep(b);
    });
  });
}

void Broker::Impl::BulkList(const std::shared_ptr<BulkReplay>& b) {
  StoreListQuery q;
  q.queue = b->queue;
  q.states = {JobState::kDead};
  q.after_id = b->after_id;
  q.limit =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(kReplayChunk, b->limit - b->replayed));
  const Scheduler::ReadTicket ticket = sched_->OpenRead();
  const std::uint64_t generation = generation_;
  Read([this, b, q, ticket, generation]() mutable {
    auto rows = store_.ListJobs(q);
    Post([this, b, q, ticket, generation, rows = std::move(rows)]() mutable {
      if (generation != generation_) return BulkStep(b);  // list the same page again
      if (read_only_) {
        sched_->CloseRead(ticket);
        if (b->error.ok()) b->error = ReadOnlyError();
        return BulkFinish(b);
      }
      if (!rows.ok()) {
        sched_->CloseRead(ticket);
        b->error = rows.status();
        return BulkFinish(b);
      }
      for (JobRecord& row : *rows) {
        const JobId id = row.id;
        auto decided = sched_->ReplayStored(ticket, id, std::move(row), /*dead_only=*/true);
        if (!decided) {
          b->pending.emplace_back(id, 1);
        } else if (decided->ok()) {
          ++b->replayed;
        }
      }
      sched_->CloseRead(ticket);
      if (rows->size() < q.limit) {
        b->listing_done = true;
      } else {
        b->after_id = rows->back().id;
      }
      BulkStep(b);
    });
  });
}

void Broker::Impl::BulkFinish(const std::shared_ptr<BulkReplay>& b) {
  if (b->audit.enabled && (b->replayed > 0 || b->error.ok())) {
    // With the last step's writes; earlier steps are durable already (docs/security.md says
    // what a crash in between loses).
    AddDetail(b->audit.detail, "replayed", b->replayed);
    Audit(b->audit);
  }
  AfterDurable([b](Status s) {
    if (!s.ok()) return b->done(s);
    if (b->replayed == 0 && !b->error.ok()) return b->done(b->error);
    b->done(b->replayed);
  });
}

// --- Bulk operations --------------------------------------------------------------------------

namespace {
// Per core task: at most this many live jobs examined (a cancel step) and decided.
constexpr std::uint64_t kBulkStepExamined = 4096;
constexpr std::uint32_t kBulkStepJobs = 500;
}  // namespace

void Broker::Impl::BulkOpStep(const std::shared_ptr<BulkRun>& b) {
  const bool first = b->first_step;
  b->first_step = false;
  if (b->draining->load(std::memory_order_acquire)) {
    // Refused before it began; stopped between steps once begun (the counts so far and the
    // cursor are answered, so the client resumes after the restart).
    if (first) return BulkOpAnswer(b, Unavailable("draining: bulk operations are refused"));
    return BulkOpAnswer(b, Status::Ok());
  }
  if (read_only_) return BulkOpAnswer(b, ReadOnlyError());
  const BulkRequest& r = b->request;
  if (r.action == BulkAction::kCancel) {
    if (b->listing_done || b->out.matched >= r.limit || b->examined >= kBulkExamineBudget) {
      return BulkOpAnswer(b, Status::Ok());
    }
    const std::uint64_t budget =
        std::min<std::uint64_t>(kBulkStepExamined, kBulkExamineBudget - b->examined);
    const auto max_matched = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(kBulkStepJobs, r.limit - b->out.matched));
    const std::uint64_t applied = b->out.applied;
    const std::uint64_t before = b->examined;
    const std::uint64_t matched = b->out.matched;
    const JobId resume = sched_->CancelMatching(r.filter, b->cursor, max_matched, budget, r.dry_run,
                                                b->out, &b->examined);
    // A scan that stopped on its budget used all of it (index slots, empty ones included), so
    // the request's budget bounds its steps whatever the jobs' spread.
    if (resume != 0 && b->out.matched - matched < max_matched) b->examined = before + budget;
    if (resume == 0) {
      b->listing_done = true;
    } else {
      b->cursor = resume;
    }
    return BulkOpNext(b, b->out.applied > applied);
  }
  if (!b->pending.empty()) {
    std::vector<std::pair<JobId, int>> chunk;
    while (!b->pending.empty() && chunk.size() < kReplayChunk) {
      chunk.push_back(b->pending.front());
      b->pending.pop_front();
    }
    // Read again once everything that made the first read stale (a purge, a delete, the job's
    // own end) is durable, so the new read sees it.
    return AfterDurable([this, b, chunk = std::move(chunk)](Status s) mutable {
      if (!s.ok()) return BulkOpAnswer(b, s);
      BulkOpReread(b, std::move(chunk));
    });
  }
  if (b->listing_done || b->out.matched >= r.limit || b->examined >= kBulkExamineBudget) {
    return BulkOpAnswer(b, Status::Ok());
  }
  BulkOpList(b);
}

void Broker::Impl::BulkOpList(const std::shared_ptr<BulkRun>& b) {
  const BulkRequest& r = b->request;
  const auto limit =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(kReplayChunk, r.limit - b->out.matched));
  const std::uint64_t max_examined =
      std::min<std::uint64_t>(kBulkStepExamined, kBulkExamineBudget - b->examined);
  const Scheduler::ReadTicket ticket = sched_->OpenRead();
  const std::uint64_t generation = generation_;
  Read([this, b, ticket, generation, limit, max_examined] {
    auto page = ListBulkCandidates(store_, b->request.filter, b->cursor, limit, max_examined);
    Post([this, b, ticket, generation, page = std::move(page)]() mutable {
      if (generation != generation_) {
        return BulkOpAnswer(b, Unavailable("the server reloaded its state; retry the request"));
      }
      if (read_only_ || !page.ok()) {
        sched_->CloseRead(ticket);
        return BulkOpAnswer(b, read_only_ ? ReadOnlyError() : page.status());
      }
      const std::uint64_t applied = b->out.applied;
      const JobId max_id = b->request.max_id;
      bool past = max_id != 0 && page->resume_after >= max_id;  // nothing in range follows
      for (JobRecord& row : page->jobs) {
        if (max_id != 0 && row.id > max_id) {
          past = true;
          break;
        }
        ++b->out.matched;
        if (b->request.dry_run) continue;
        const JobId id = row.id;
        BulkOpDecide(b, ticket, id, std::optional<JobRecord>(std::move(row)), 1);
      }
      if (b->request.erase && b->out.applied > applied) sched_->MarkErasing();
      sched_->CloseRead(ticket);
      b->examined += page->examined;
      if (page->resume_after == 0 || past) {
        b->listing_done = true;
      } else {
        b->cursor = page->resume_after;
      }
      BulkOpNext(b, b->out.applied > applied);
    });
  });
}

void Broker::Impl::BulkOpDecide(const std::shared_ptr<BulkRun>& b,
                                const Scheduler::ReadTicket& ticket, JobId id,
                                std::optional<JobRecord>&& row, int reads) {
  const BulkRequest& r = b->request;
  const Scheduler::BulkVerdict v =
      r.action == BulkAction::kReplay
          ? sched_->BulkReplayStored(ticket, id, std::move(row), r.filter)
          : sched_->BulkDeleteStored(ticket, id, row, r.filter);
  switch (v) {
    case Scheduler::BulkVerdict::kApplied:
      ++b->out.applied;
      return;
    case Scheduler::BulkVerdict::kSkipped:
      ++b->out.skipped;
      return;
    case Scheduler::BulkVerdict::kReadAgain:
      // A job that keeps changing is left alone (and counted skipped) rather than read forever.
      if (reads >= kMaxStoreReads) {
        ++b->out.skipped;
      } else {
        b->pending.emplace_back(id, reads);
      }
      return;
  }
}

void Broker::Impl::BulkOpReread(const std::shared_ptr<BulkRun>& b,
                                std::vector<std::pair<JobId, int>> chunk) {
  if (read_only_) return BulkOpAnswer(b, ReadOnlyError());
  const Scheduler::ReadTicket ticket = sched_->OpenRead();
  const std::uint64_t generation = generation_;
  Read([this, b, ticket, generation, chunk = std::move(chunk)]() mutable {
    std::vector<std::optional<JobRecord>> rows;
    Status error;
    for (const auto& [id, reads] : chunk) {
      auto stored = store_.GetJob(id);
      if (!stored.ok()) {
        error = stored.status();
        break;
      }
      rows.push_back(std::move(*stored));
    }
    Post([this, b, ticket, generation, chunk = std::move(chunk), rows = std::move(rows),
          error = std::move(error)]() mutable {
      if (generation != generation_) {
        return BulkOpAnswer(b, Unavailable("the server reloaded its state; retry the request"));
      }
      if (read_only_ || !error.ok()) {
        sched_->CloseRead(ticket);
        return BulkOpAnswer(b, read_only_ ? ReadOnlyError() : error);
      }
      const std::uint64_t applied = b->out.applied;
      for (std::size_t i = 0; i < rows.size(); ++i) {
        BulkOpDecide(b, ticket, chunk[i].first, std::move(rows[i]), chunk[i].second + 1);
      }
      if (b->request.erase && b->out.applied > applied) sched_->MarkErasing();
      sched_->CloseRead(ticket);
      BulkOpNext(b, b->out.applied > applied);
    });
  });
}

void Broker::Impl::BulkOpNext(const std::shared_ptr<BulkRun>& b, bool wrote) {
  if (!wrote) {
    // Another task, so that other commands run between the steps of a long request.
    Post([this, b] { BulkOpStep(b); });
    return;
  }
  // Bounded commits: the next step waits until this one's writes are on disk.
  AfterDurable([this, b](Status s) {
    if (!s.ok()) return BulkOpAnswer(b, s);
    BulkOpStep(b);
  });
}

void Broker::Impl::BulkOpAnswer(const std::shared_ptr<BulkRun>& b, Status error) {
  if (!error.ok()) return b->done(error);
  BulkOutcome out = b->out;
  if (!b->pending.empty()) {
    // Stopped early with jobs still to decide: resume before the first of them.
    JobId first = b->pending.front().first;
    for (const auto& [id, reads] : b->pending) first = std::min(first, id);
    out.next_after_id = first - 1;
  } else {
    if (!b->listing_done) out.next_after_id = b->cursor;
  }
  if (b->audit.enabled && !b->request.dry_run) {
    AddDetail(b->audit.detail, "matched", out.matched);
    AddDetail(b->audit.detail, "applied", out.applied);
    Audit(b->audit);
  }
  // What it did (and what it observed) is durable before the answer.
  AfterDurable([b, out](Status s) {
    if (!s.ok()) return b->done(s);
    b->done(out);
  });
}

// --- Namespace wipe (core/namespace_wipe.h) -----------------------------------------------------

void Broker::Impl::WipeStep(const std::shared_ptr<WipeRun>& w) {
  const bool first = w->first_step;
  w->first_step = false;
  if (w->draining->load(std::memory_order_acquire)) {
    if (first) return WipeAnswer(w, Unavailable("draining: a namespace wipe is refused"));
    return WipeAnswer(w, Status::Ok());
  }
  if (read_only_) return WipeAnswer(w, ReadOnlyError());
  WipeRequest& r = w->request;
  bool wrote = false;
  if (first) {
    // The mark: jobs created after this moment are not this wipe's (the reply's cursor keeps it).
    if (r.up_to_id == 0) r.up_to_id = sched_->last_issued_id();
    w->out.up_to_id = r.up_to_id;
    w->live_cursor = r.after_id;
    AddDetail(w->audit.detail, "up_to_id", r.up_to_id);
    // In the open batch, with this step's erasures: none is durable without the entry.
    if (w->audit.enabled) {
      Audit(w->audit);
      wrote = true;
    }
  }
  const std::uint64_t erased = w->out.erased();
  // The request's limit is reached: answered (once durable) with the cursor; the next goes on.
  if (erased >= r.limit && w->phase != WipeRun::Phase::kDone) return WipeAnswer(w, Status::Ok());
  switch (w->phase) {
    case WipeRun::Phase::kLive: {
      const auto max =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(kBulkStepJobs, r.limit - erased));
      const JobId resume = sched_->EraseLive(r.ns, r.up_to_id, w->live_cursor, max,
                                             kBulkStepExamined, &w->out.live_jobs, &w->examined);
      if (resume == 0) {
        w->live_cursor = r.up_to_id;
        w->phase = WipeRun::Phase::kFinished;
      } else {
        w->live_cursor = resume;
        // A request examines a bounded number of live jobs (those of other namespaces too):
        // the next one goes on from the cursor.
        if (w->examined >= kBulkExamineBudget) return WipeAnswer(w, Status::Ok());
      }
      return WipeNext(w, wrote || w->out.erased() > erased);
    }
    case WipeRun::Phase::kFinished:  // after the live phase (the first step is always that)
      return WipeFinished(w);
    case WipeRun::Phase::kKeys:
      return WipeKeys(w);
    case WipeRun::Phase::kSchedules:
      w->out.schedules += sched_->EraseSchedules(r.ns);
      w->phase = WipeRun::Phase::kDone;
      // Every erasure is committed by now or in this batch: after it the store truncates its
      // WAL, so that no older copy of an overwritten page stays there (Batch::checkpoint).
      sched_->RequestCheckpoint();
      return WipeNext(w, true);
    case WipeRun::Phase::kDone:
      w->out.done = true;
      return WipeAnswer(w, Status::Ok());
  }
}

// The finished jobs: a bulk delete of the namespace's terminal jobs up to the mark, as
// POST /v1/jobs:delete runs it (its steps, re-reads and durability), then the next phase.
void Broker::Impl::WipeFinished(const std::shared_ptr<WipeRun>& w) {
  auto b = std::make_shared<BulkRun>();
  b->request.action = BulkAction::kDelete;
  JobFilter filter;
  filter.ns = w->request.ns;
  auto narrowed = NarrowBulkFilter(BulkAction::kDelete, std::move(filter));
  if (!narrowed.ok()) return WipeAnswer(w, narrowed.status());
  b->request.filter = std::move(narrowed).value();
  b->request.max_id = w->request.up_to_id;
  b->request.erase = true;
  // WipeStep calls this only below the request's limit.
  b->request.limit = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(kMaxBulkLimit, w->request.limit - w->out.erased()));
  b->draining = w->draining;
  b->done = [this, w](Result<BulkOutcome> r) {
    if (!r.ok()) return WipeAnswer(w, r.status());
    w->out.finished_jobs += r->applied;
    w->out.skipped += r->skipped;
    // Stopped before the end (the request's limit, or the examine budget): the next request
    // goes on (deleted rows are gone, so it lists from the start again).
    if (r->next_after_id) return WipeAnswer(w, Status::Ok());
    w->phase = WipeRun::Phase::kKeys;
    Post([this, w] { WipeStep(w); });
  };
  BulkOpStep(b);
}

// The idempotency keys naming a job up to the mark, read from the store in key order, then
// deleted one by one (the cache's tombstones keep a lookup in flight from reviving one).
void Broker::Impl::WipeKeys(const std::shared_ptr<WipeRun>& w) {
  const auto limit = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(kReplayChunk, w->request.limit - w->out.erased()));
  const std::uint64_t generation = generation_;
  Read([this, w, limit, generation] {
    auto keys = store_.NamespaceKeys(w->request.ns, w->after_key, w->request.up_to_id, limit);
    Post([this, w, limit, generation, keys = std::move(keys)]() mutable {
      if (generation != generation_) {
        return WipeAnswer(w, Unavailable("the server reloaded its state; retry the request"));
      }
      if (read_only_ || !keys.ok())
        return WipeAnswer(w, read_only_ ? ReadOnlyError() : keys.status());
      for (const IdempotencyKeyRecord& k : *keys) {
        sched_->EraseIdempotencyKey(k.ns, k.key, k.job_id);
        ++w->out.idempotency_keys;
      }
      if (!keys->empty()) w->after_key = keys->back().key;
      if (keys->size() < limit) w->phase = WipeRun::Phase::kSchedules;
      WipeNext(w, !keys->empty());
    });
  });
}

void Broker::Impl::WipeNext(const std::shared_ptr<WipeRun>& w, bool wrote) {
  if (!wrote) {
    Post([this, w] { WipeStep(w); });
    return;
  }
  AfterDurable([this, w](Status s) {
    if (!s.ok()) return WipeAnswer(w, s);
    WipeStep(w);
  });
}

void Broker::Impl::WipeAnswer(const std::shared_ptr<WipeRun>& w, Status error) {
  if (!error.ok()) return w->done(error);
  WipeOutcome out = w->out;
  out.after_id = w->live_cursor;
  if (out.erased() > 0) {
    YM_LOG(info, kBroker)
        .Str("namespace", w->request.ns)
        .Uint("live_jobs", out.live_jobs)
        .Uint("finished_jobs", out.finished_jobs)
        .Uint("idempotency_keys", out.idempotency_keys)
        .Uint("schedules", out.schedules)
        .Msg("namespace {} wiped: {} live and {} finished jobs, {} keys, {} schedules{}",
             w->request.ns, out.live_jobs, out.finished_jobs, out.idempotency_keys, out.schedules,
             out.done ? "" : " (more to erase)");
  }
  AfterDurable([w, out](Status s) {
    if (!s.ok()) return w->done(s);
    w->done(out);
  });
}

// ---------------------------------------------------------------------------------------------

Broker::Broker(Store& store, const Clock& clock, BrokerOptions options)
    : impl_(std::make_unique<Impl>(store, clock, std::move(options))) {}

Broker::~Broker() { Stop(); }

Status Broker::Start() {
  YM_RETURN_IF_ERROR(impl_->Start());
  ready_.store(true, std::memory_order_release);
  return Status::Ok();
}

void Broker::BeginDrain() {
  if (draining_.exchange(true, std::memory_order_acq_rel)) return;
  ready_.store(false, std::memory_order_release);
  // Idle long-polls are answered now so workers notice the drain without waiting 30 s. We wait
  // for core to run this, so that when BeginDrain returns every lease granted before it is
  // counted in counters().active_jobs (the caller waits on that gauge).
  std::promise<void> drained;
  impl_->Post([this, &drained] {
    impl_->sched().Shutdown();
    impl_->counters().active_jobs.store(impl_->sched().active_jobs(), std::memory_order_relaxed);
    drained.set_value();
  });
  drained.get_future().wait();
}

void Broker::Stop() {
  ready_.store(false, std::memory_order_release);
  draining_.store(true, std::memory_order_release);
  impl_->Stop();
}

const BrokerCounters& Broker::counters() const { return impl_->counters(); }

bool Broker::store_available() const { return impl_->store_available(); }

std::int64_t Broker::core_heartbeat_age_ms() const { return impl_->core_heartbeat_age_ms(); }

bool Broker::core_alive() const {
  return core_heartbeat_age_ms() <= impl_->options().liveness_deadline_ms;
}

std::int64_t Broker::liveness_deadline_ms() const { return impl_->options().liveness_deadline_ms; }

std::string Broker::store_error() const { return impl_->store_error(); }

std::vector<QueueGauge> Broker::QueueGauges() const { return impl_->Gauges(); }

const JobStats& Broker::job_stats() const { return impl_->job_stats(); }

BrokerInfo Broker::Info() const {
  BrokerInfo info;
  info.version = std::string(kVersion);
  info.commit = std::string(BuildCommit());
  info.started_at_ms = impl_->started_at_ms();
  info.live_jobs = impl_->counters().live_jobs.load(std::memory_order_relaxed);
  info.commits = impl_->counters().commits.load(std::memory_order_relaxed);
  info.draining = draining();
  info.recovered_jobs = impl_->recovered_jobs();
  info.recovery_ms = impl_->recovery_ms();
  const StoreStats stats = impl_->store().Stats();
  info.store_journal_mode = stats.journal_mode;
  info.store_synchronous = stats.synchronous;
  return info;
}

void Broker::Enqueue(std::vector<EnqueueSpec> specs,
                     std::function<void(std::vector<Result<EnqueueOutcome>>)> done) {
  if (draining()) {
    std::vector<Result<EnqueueOutcome>> out(specs.size(),
                                            Result<EnqueueOutcome>(Unavailable("draining")));
    done(std::move(out));
    return;
  }
  if (Status a = impl_->Admit(Admission::kNew, specs.size()); !a.ok()) {
    done(std::vector<Result<EnqueueOutcome>>(specs.size(), Result<EnqueueOutcome>(a)));
    return;
  }
  impl_->Post([this, specs = std::move(specs), done = std::move(done)]() mutable {
    if (impl_->read_only()) {
      done(std::vector<Result<EnqueueOutcome>>(specs.size(), impl_->ReadOnlyError()));
      return;
    }
    auto& sched = impl_->sched();
    // A batch is all or nothing against the namespace limits (Scheduler::AdmitBatch): refused
    // whole, nothing changes.
    if (specs.size() > 1) {
      if (Status s = sched.AdmitBatch(specs); !s.ok()) {
        done(std::vector<Result<EnqueueOutcome>>(specs.size(), Result<EnqueueOutcome>(s)));
        return;
      }
    }
    auto results = std::make_shared<std::vector<Result<EnqueueOutcome>>>(
        specs.size(), Result<EnqueueOutcome>(Internal("enqueue not decided")));
    // Specs whose idempotency key missed core's cache: the key is read from the store on the
    // reader pool and the spec comes back to core, which decides it then (see
    // Scheduler::NeedsIdempotencyLookup). The others are decided now, in order.
    auto lookups = std::make_shared<std::vector<KeyLookup>>();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (sched.NeedsIdempotencyLookup(specs[i])) {
        lookups->push_back(KeyLookup{i, std::move(specs[i]), {}, Status::Ok()});
        lookups->back().lookup.ticket = sched.BeginIdempotencyLookup();
        continue;
      }
      (*results)[i] = sched.Enqueue(std::move(specs[i]));
    }
    if (lookups->empty()) return FinishEnqueue(results, std::move(done));
    impl_->Read([this, results, lookups, done = std::move(done)]() mutable {
      const std::int64_t now = impl_->clock().NowMs();
      for (KeyLookup& l : *lookups) {
        auto key = impl_->store().GetIdempotencyKey(l.spec.ns, l.spec.idempotency_key, now);
        if (!key.ok()) {
          l.error = key.status();
        } else if (key->has_value()) {
          l.lookup.job_id = (*key)->job_id;
          l.lookup.expires_at_ms = (*key)->expires_at_ms;
          l.lookup.final_state = (*key)->final_state;
        }
      }
      impl_->Post([this, results, lookups, done = std::move(done)]() mutable {
        auto& sched = impl_->sched();
        for (KeyLookup& l : *lookups) {
          // The store went read-only while the key was read: refused like any other write.
          if (l.error.ok() && impl_->read_only()) l.error = impl_->ReadOnlyError();
          if (!l.error.ok()) {
            sched.EndIdempotencyLookup(l.lookup.ticket);
            (*results)[l.slot] = l.error;
            continue;
          }
          (*results)[l.slot] = sched.Enqueue(std::move(l.spec), &l.lookup);
        }
        FinishEnqueue(results, std::move(done));
      });
    });
  });
}

// Core thread: counts the outcomes and answers once everything they observed is durable.
void Broker::FinishEnqueue(std::shared_ptr<std::vector<Result<EnqueueOutcome>>> results,
                           std::function<void(std::vector<Result<EnqueueOutcome>>)> done) {
  bool unknown = false;  // duplicates whose job left core before its final state was known
  for (const auto& r : *results) {
    if (!r.ok()) continue;
    if (r->duplicate) {
      impl_->counters().duplicates.fetch_add(1, std::memory_order_relaxed);
      if (!r->state_known) unknown = true;
    } else if (!r->skipped) {
      impl_->counters().enqueued.fetch_add(1, std::memory_order_relaxed);
    }
  }
  impl_->AfterDurable([this, results, unknown, done = std::move(done)](Status s) mutable {
    if (!s.ok()) {
      for (auto& r : *results) {
        // A singleton refusal observed a job whose write did not become durable either.
        if (r.ok() || r.status().code() == Code::kSingletonConflict) r = s;
      }
      done(std::move(*results));
      return;
    }
    if (!unknown) {
      done(std::move(*results));
      return;
    }
    impl_->Read([this, results, done = std::move(done)]() mutable {
      for (auto& r : *results) {
        if (!r.ok() || r->state_known) continue;
        auto stored = impl_->store().GetJob(r->id);
        if (stored.ok() && stored->has_value()) {
          r->state = (*stored)->state;
        } else {
          // The job finished (its final state reached the key after this key was read) and
          // was deleted with its ack: only a succeeded job is deleted that early. Keys written
          // before format 3 whose job was purged before the upgrade also land here.
          r->state = JobState::kSucceeded;
        }
        r->state_known = true;
      }
      done(std::move(*results));
    });
  });
}

void Broker::Lease(LeaseRequest request, Callback<std::vector<LeasedJob>> done) {
  if (draining()) {
    done(Unavailable("draining: no new leases"));
    return;
  }
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, request = std::move(request), done = std::move(done)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto& s = impl_->sched();
    auto jobs = s.Lease(request);
    if (!jobs.empty() || request.wait_ms <= 0 || draining()) {
      ReplyLeased(std::move(jobs), std::move(done));
      return;
    }
    const std::int64_t wait =
        std::min<std::int64_t>(request.wait_ms, impl_->options().scheduler.max_wait_ms);
    // A long-poll deadline is a duration: it runs on the monotonic clock.
    const std::int64_t deadline = impl_->clock().MonoMs() + wait;
    s.AddWaiter(std::move(request), deadline,
                [this, done = std::move(done)](std::vector<LeasedJob> got) mutable {
                  ReplyLeased(std::move(got), std::move(done));
                });
  });
}

// Core thread. Leases are persisted (Scheduler::Lease appends them to the open batch). With
// --lease-reply after-commit the reply with jobs waits for durability like any write: a worker
// never holds a lease that a restart would not know. With immediate (the default) it goes at
// once, except when a job of the reply counted a start toward a quota: its count is in the same
// batch, and a crash before that commit would lose the count of a start the worker may already
// make, so such a reply waits too (the other leases keep the immediate reply). If the commit
// fails, the worker gets the error and the jobs, whose leases were never durable, go back to
// ready with the reload.
void Broker::ReplyLeased(std::vector<LeasedJob> jobs, Callback<std::vector<LeasedJob>> done) {
  const bool wait =
      impl_->options().lease_reply_after_commit ||
      std::any_of(jobs.begin(), jobs.end(), [](const LeasedJob& j) { return j.quota_counted; });
  if (jobs.empty() || !wait) {
    impl_->counters().leased.fetch_add(jobs.size(), std::memory_order_relaxed);
    done(std::move(jobs));
    return;
  }
  auto shared = std::make_shared<std::vector<LeasedJob>>(std::move(jobs));
  impl_->AfterDurable([this, shared, done = std::move(done)](Status s) mutable {
    if (!s.ok()) return done(s);
    impl_->counters().leased.fetch_add(shared->size(), std::memory_order_relaxed);
    done(std::move(*shared));
  });
}

void Broker::Release(std::vector<std::pair<JobId, std::uint64_t>> leases) {
  impl_->Post([this, leases = std::move(leases)] {
    for (const auto& [id, token] : leases) impl_->sched().Release(id, token);
  });
}

void Broker::Heartbeat(JobId id, std::uint64_t token, std::int64_t extend_ms,
                       std::optional<std::string> progress, Callback<HeartbeatOutcome> done) {
  if (Status a = impl_->Admit(Admission::kCompletion, 1); !a.ok()) return done(a);
  impl_->Post([this, id, token, extend_ms, progress = std::move(progress),
               done = std::move(done)]() mutable {
    auto r = impl_->sched().Heartbeat(id, token, extend_ms, progress);
    // Read-only, the extension is kept in memory and in the open batch (committed when the store
    // is back) and answered at once: refusing it would expire leases whose workers are alive.
    if (!r.ok() || !r->persisted || impl_->read_only() ||
        !impl_->options().lease_reply_after_commit) {
      return done(std::move(r));
    }
    // The extension was written because the durable expiry was about to lapse: answer once it
    // is on disk, so that a crash right after the reply cannot expire the lease early.
    impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      done(std::move(r));
    });
  });
}

void Broker::WatchCancels(std::string worker_id, std::vector<JobId> known, std::int64_t wait_ms,
                          Callback<std::vector<JobId>> done) {
  if (Status a = impl_->Admit(Admission::kCompletion, 1); !a.ok()) return done(a);
  impl_->Post([this, worker_id = std::move(worker_id), known = std::move(known), wait_ms,
               done = std::move(done)]() mutable {
    std::sort(known.begin(), known.end());
    auto shared = std::make_shared<Callback<std::vector<JobId>>>(std::move(done));
    auto answer = [this, shared, known](std::vector<JobId> ids) {
      const bool news = std::any_of(ids.begin(), ids.end(), [&](JobId id) {
        return !std::binary_search(known.begin(), known.end(), id);
      });
      // A cancel the worker acts on must be on disk first, as the cancel's own reply is: a
      // crash must not bring the job back without its cancel after the worker stopped it.
      if (!news || impl_->read_only()) return (*shared)(std::move(ids));
      auto held = std::make_shared<std::vector<JobId>>(std::move(ids));
      impl_->AfterDurable([shared, held](Status s) {
        if (!s.ok()) return (*shared)(s);
        (*shared)(std::move(*held));
      });
    };
    // wait_ms 0, or a server draining towards a stop (a watch registered after the scheduler's
    // shutdown would never be answered): the set as it is now.
    if (wait_ms <= 0 || draining()) return answer(impl_->sched().CancelsRequested(worker_id));
    const std::int64_t deadline =
        impl_->clock().MonoMs() + std::min(wait_ms, impl_->options().scheduler.max_wait_ms);
    Status added = impl_->sched().AddCancelWatch(worker_id, known, deadline, std::move(answer));
    if (!added.ok()) return (*shared)(added);
  });
}

void Broker::Complete(
    std::vector<AckItem> acks, std::vector<FailItem> fails,
    std::function<void(std::vector<Status>, std::vector<Result<JobState>>)> done) {
  if (Status a = impl_->Admit(Admission::kCompletion, acks.size() + fails.size()); !a.ok()) {
    done(std::vector<Status>(acks.size(), a),
         std::vector<Result<JobState>>(fails.size(), Result<JobState>(a)));
    return;
  }
  impl_->Post(
      [this, acks = std::move(acks), fails = std::move(fails), done = std::move(done)]() mutable {
        if (impl_->read_only()) {
          const Status e = impl_->ReadOnlyError();
          done(std::vector<Status>(acks.size(), e),
               std::vector<Result<JobState>>(fails.size(), Result<JobState>(e)));
          return;
        }
        auto ack_results = std::make_shared<std::vector<Status>>();
        auto fail_results = std::make_shared<std::vector<Result<JobState>>>();
        for (const auto& a : acks) {
          auto r = impl_->sched().Ack(a.id, a.token, a.result);
          if (r.ok()) impl_->counters().acked.fetch_add(1, std::memory_order_relaxed);
          ack_results->push_back(r.status());
        }
        for (const auto& f : fails) {
          auto r = impl_->sched().Fail(f.id, f.token, f.error);
          if (r.ok()) impl_->counters().failed.fetch_add(1, std::memory_order_relaxed);
          fail_results->push_back(std::move(r));
        }
        impl_->AfterDurable([ack_results, fail_results, done = std::move(done)](Status s) {
          if (!s.ok()) {
            for (auto& r : *ack_results) {
              if (r.ok()) r = s;
            }
            for (auto& r : *fail_results) {
              if (r.ok()) r = s;
            }
          }
          done(std::move(*ack_results), std::move(*fail_results));
        });
      });
}

void Broker::Cancel(JobId id, Callback<JobView> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id, done = std::move(done), audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    Scheduler& s = impl_->sched();
    auto r = s.Cancel(id);
    if (r.ok() || r.status().code() != Code::kNotFound) {
      if (r.ok()) impl_->Audit(audit);
      return impl_->AnswerWhenDurable(std::move(r), std::move(done));
    }
    if (!s.Issued(id)) return done(NotFound("job " + FormatJobId(id) + " not found"));
    // Core no longer holds it: finished (the store has it, unless retention removed it). The
    // answer is decided back on the core thread, where a job replayed meanwhile is cancelled.
    impl_->DecideFromStore(
        id,
        [this, id, audit = std::move(audit)](const Scheduler::ReadTicket& t,
                                             std::optional<JobRecord>&& rec) {
          auto decided = impl_->sched().CancelStored(t, id, std::move(rec));
          if (decided && decided->ok()) impl_->Audit(audit);
          return decided;
        },
        std::move(done), 0);
  });
}

void Broker::Replay(JobId id, Callback<JobView> done, AuditNote audit) {
  if (draining()) {
    done(Unavailable("draining: replays are refused"));
    return;
  }
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id, done = std::move(done), audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    if (auto now = impl_->sched().ReplayInCore(id, /*dead_only=*/false)) {
      if (now->ok()) impl_->Audit(audit);
      return impl_->AnswerWhenDurable(std::move(*now), std::move(done));
    }
    impl_->DecideFromStore(
        id,
        [this, id, audit = std::move(audit)](const Scheduler::ReadTicket& t,
                                             std::optional<JobRecord>&& rec) {
          auto decided = impl_->sched().ReplayStored(t, id, std::move(rec), /*dead_only=*/false);
          if (decided && decided->ok()) impl_->Audit(audit);
          return decided;
        },
        std::move(done), 0);
  });
}

void Broker::ReplayDead(std::string queue, std::vector<JobId> ids, std::uint32_t limit,
                        Callback<std::uint64_t> done, AuditNote audit) {
  if (draining()) {
    done(Unavailable("draining: replays are refused"));
    return;
  }
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  auto b = std::make_shared<BulkReplay>();
  b->by_filter = ids.empty();
  b->queue = std::move(queue);
  b->limit = limit;
  for (JobId id : ids) b->pending.emplace_back(id, 0);
  b->draining = &draining_;
  b->done = std::move(done);
  b->audit = std::move(audit);
  impl_->Post([this, b] { impl_->BulkStep(b); });
}

void Broker::Bulk(BulkRequest request, Callback<BulkOutcome> done, AuditNote audit) {
  if (draining()) return done(Unavailable("draining: bulk operations are refused"));
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  auto b = std::make_shared<BulkRun>();
  b->request = std::move(request);
  b->request.limit = std::clamp<std::uint32_t>(b->request.limit, 1, kMaxBulkLimit);
  b->cursor = b->request.after_id;
  b->draining = &draining_;
  b->done = std::move(done);
  b->audit = std::move(audit);
  impl_->Post([this, b] { impl_->BulkOpStep(b); });
}

void Broker::WipeNamespace(WipeRequest request, Callback<WipeOutcome> done, AuditNote audit) {
  if (draining()) return done(Unavailable("draining: a namespace wipe is refused"));
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  auto w = std::make_shared<WipeRun>();
  w->request = std::move(request);
  w->request.limit = std::clamp<std::uint32_t>(w->request.limit, 1, kMaxWipeLimit);
  w->draining = &draining_;
  w->done = std::move(done);
  w->audit = std::move(audit);
  impl_->Post([this, w] { impl_->WipeStep(w); });
}

void Broker::GetJob(JobId id, Callback<JobView> done, std::int64_t wait_ms) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  // Core drops a terminal job only after its batch committed, so the store has it then (or
  // retention removed it).
  auto read_stored = [this, id](Callback<JobView> done) {
    impl_->Read([this, id, done = std::move(done)] {
      auto stored = impl_->store().GetJob(id);
      if (!stored.ok()) return done(stored.status());
      if (!stored->has_value()) return done(NotFound("job " + FormatJobId(id) + " not found"));
      JobView v;
      v.job = std::move(**stored);
      done(std::move(v));
    });
  };
  impl_->Post([this, id, wait_ms, read_stored, done = std::move(done)]() mutable {
    auto v = impl_->sched().Get(id);
    if (!v) return read_stored(std::move(done));
    if (wait_ms > 0 && !IsTerminal(v->job.state) && !draining()) {
      const std::int64_t deadline =
          impl_->clock().MonoMs() + std::min(wait_ms, impl_->options().scheduler.max_wait_ms);
      auto shared = std::make_shared<Callback<JobView>>(std::move(done));
      Status added = impl_->sched().AddEndWait(
          id, deadline, [this, id, read_stored, shared](std::optional<JobView> ended) {
            if (!ended) {
              // The wait ran out (or the server stops): the job's state now. While read-only
              // core may hold changes the disk does not: the stored record is the answer then.
              if (!impl_->read_only()) {
                if (auto now = impl_->sched().Get(id)) return (*shared)(std::move(*now));
              }
              return read_stored(std::move(*shared));
            }
            // Ended: answered once durable, from the stored record like any read of a finished
            // job; from the view at the end when nothing of the job is kept.
            impl_->AfterDurable(
                [this, id, read_stored, shared, view = std::move(*ended)](Status s) mutable {
                  if (!s.ok()) {
                    if (auto now = impl_->sched().Get(id)) return (*shared)(std::move(*now));
                    return read_stored(std::move(*shared));
                  }
                  impl_->Read([this, id, shared, view = std::move(view)]() mutable {
                    auto stored = impl_->store().GetJob(id);
                    if (!stored.ok()) return (*shared)(stored.status());
                    if (!stored->has_value()) return (*shared)(std::move(view));
                    JobView v;
                    v.job = std::move(**stored);
                    (*shared)(std::move(v));
                  });
                });
          });
      if (!added.ok()) return (*shared)(added);
      return;
    }
    // While the store is unavailable, a commit may be far off: reads are answered at once.
    if (!IsTerminal(v->job.state) || impl_->read_only()) return done(std::move(*v));
    // Terminal but still in memory: its batch is not durable yet, and only the stored record
    // holds what the end wrote (finished_at, dead_reason, result). Answer once that batch is on
    // disk, from the store, so a reader never sees a terminal state the disk might not keep, nor
    // a half-filled one. If the commit failed, the state core went back to is the answer.
    impl_->AfterDurable([this, id, read_stored, done = std::move(done)](Status s) mutable {
      if (s.ok()) return read_stored(std::move(done));
      if (auto now = impl_->sched().Get(id)) return done(std::move(*now));
      read_stored(std::move(done));
    });
  });
}

namespace {

// Candidates one list request may examine in the store (index entries of the search's driving
// index, store/store.h FinishedSearch) before it answers with what it found and a cursor: a
// filter that matches few of many finished jobs costs a bounded amount per page (a page may then
// be short, even empty, with a cursor).
constexpr std::uint32_t kStoreListBudget = 8192;

// Stored terminal jobs matching `filter` after `after`, read in small chunks so that the rows
// held stop once their payloads and results reach `max_bytes`: a page of large payloads costs
// about max_bytes of memory, not limit times the payload size.
struct StoredPage {
  std::vector<JobRecord> rows;  // ascending id, at most `limit`
  JobId bound = 0;              // every match with id <= bound is in `rows`; 0: every match is
};

Result<StoredPage> SearchStored(Store& store, const JobFilter& filter, JobId after,
                                std::uint32_t limit, std::size_t max_bytes) {
  constexpr std::uint32_t kChunk = 64;
  StoredPage out;
  FinishedSearch q;
  q.filter = filter;
  q.after_id = after;
  std::uint32_t examined = 0;
  std::size_t bytes = 0;
  for (;;) {
    q.limit = std::min<std::uint32_t>(kChunk, limit - static_cast<std::uint32_t>(out.rows.size()));
    q.max_examined = kStoreListBudget - examined;
    auto page = store.SearchFinished(q);
    if (!page.ok()) return page.status();
    examined += page->examined;
    for (auto& r : page->jobs) {
      bytes += r.payload.size() + r.result.size();
      out.rows.push_back(std::move(r));
      if (bytes >= max_bytes && out.rows.size() < limit) {
        out.bound = out.rows.back().id;
        return out;
      }
    }
    out.bound = page->resume_after;
    if (out.bound == 0 || out.rows.size() >= limit || examined >= kStoreListBudget) return out;
    q.after_id = out.bound;
  }
}

}  // namespace

void Broker::ExportNamespacePage(std::string ns, JobId after, std::uint32_t limit,
                                 std::uint32_t max_examined, Callback<JobPage> done) {
  // Not admitted against max_queued_commands: an export has at most one page in flight, and
  // refusing a page midway would cut a stream the client cannot resume.
  impl_->Read([this, ns = std::move(ns), after, limit, max_examined, done = std::move(done)] {
    auto stored = impl_->store().NamespaceJobs(ns, after, std::max<std::uint32_t>(limit, 1),
                                               std::max<std::uint32_t>(max_examined, 1));
    if (!stored.ok()) return done(stored.status());
    JobPage page;
    page.items.reserve(stored->jobs.size());
    for (auto& r : stored->jobs) page.items.push_back(StoredView(std::move(r)));
    page.next_after_id = stored->resume_after;
    done(std::move(page));
  });
}

void Broker::ListJobs(ListQuery query, Callback<JobPage> done) {
  const std::uint32_t limit = std::clamp<std::uint32_t>(query.limit, 1, 1000);
  query.limit = limit;
  query.filter.Normalize();
  const bool live = query.filter.MayMatchLive();
  const bool finished = query.filter.MayMatchFinished();
  if (!live && !finished) return done(JobPage{});
  if (!live) {
    // Finished jobs only: the store answers (a job ending in core shows once durable).
    if (Status a = impl_->AdmitRead(); !a.ok()) return done(a);
    impl_->Read([this, query, done = std::move(done)] {
      auto stored =
          SearchStored(impl_->store(), query.filter, query.after_id, query.limit, query.max_bytes);
      if (!stored.ok()) return done(stored.status());
      JobPage page;
      for (auto& r : stored->rows) page.items.push_back(StoredView(std::move(r)));
      page.next_after_id = stored->bound;
      done(std::move(page));
    });
    return;
  }
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, query, finished, done = std::move(done)]() mutable {
    JobPage live = impl_->sched().ListLive(query);
    if (!finished) return done(std::move(live));
    // Live and finished states: merge core's live jobs with the store's terminal ones by id.
    impl_->Read([this, query, live = std::move(live), done = std::move(done)]() mutable {
      auto stored =
          SearchStored(impl_->store(), query.filter, query.after_id, query.limit, query.max_bytes);
      if (!stored.ok()) return done(stored.status());
      std::vector<JobRecord>& rows = stored->rows;
      constexpr JobId kEnd = ~JobId{0};
      const JobId live_bound = live.next_after_id == 0 ? kEnd : live.next_after_id;
      const JobId store_bound = stored->bound == 0 ? kEnd : stored->bound;
      const JobId bound = std::min(live_bound, store_bound);
      std::vector<JobView> merged;
      for (auto& v : live.items) {
        if (v.job.id <= bound) merged.push_back(std::move(v));
      }
      for (auto& r : rows) {
        if (r.id > bound) continue;
        auto same = std::find_if(merged.begin(), merged.end(),
                                 [&](const JobView& v) { return v.job.id == r.id; });
        // A job seen live in core and then committed as terminal shows up twice; keep the
        // newer record.
        if (same != merged.end()) {
          if (r.updated_at_ms > same->job.updated_at_ms) *same = StoredView(std::move(r));
          continue;
        }
        merged.push_back(StoredView(std::move(r)));
      }
      std::sort(merged.begin(), merged.end(),
                [](const JobView& a, const JobView& b) { return a.job.id < b.job.id; });
      JobPage page;
      if (merged.size() > query.limit) merged.resize(query.limit);
      page.items = std::move(merged);
      if (page.items.size() >= query.limit) {
        page.next_after_id = page.items.back().job.id;
      } else {
        page.next_after_id = bound == kEnd ? 0 : bound;
      }
      done(std::move(page));
    });
  });
}

namespace {

QueueInfo DefaultQueue(const std::string& name, const SchedulerOptions& defaults) {
  QueueInfo q;
  q.config.name = name;
  q.config.max_attempts = defaults.default_max_attempts;
  q.config.lease_ms = defaults.default_lease_ms;
  q.config.backoff = defaults.default_backoff;
  q.config.retention = defaults.default_retention;
  for (const char* s : {"scheduled", "ready", "active"}) q.counts[s] = 0;
  return q;
}

// Merges core's live view (in name order) with the store's terminal counts (in queue name
// order): O(n). A queue that only the store knows (its jobs all finished and it was never
// configured, or core freed it since) is shown with the defaults.
std::vector<QueueInfo> MergeFinished(std::vector<QueueInfo> live,
                                     const std::vector<FinishedCount>& counts,
                                     const SchedulerOptions& defaults) {
  std::vector<QueueInfo> out;
  out.reserve(live.size() + counts.size());
  std::size_t i = 0;
  auto take_live_before = [&](const std::string* name) {
    while (i < live.size() && (name == nullptr || live[i].config.name < *name)) {
      out.push_back(std::move(live[i++]));
      for (const char* s : {"succeeded", "dead", "cancelled"}) out.back().counts[s] = 0;
    }
  };
  for (std::size_t c = 0; c < counts.size();) {
    const std::string& name = counts[c].queue;
    take_live_before(&name);
    if (i < live.size() && live[i].config.name == name) {
      out.push_back(std::move(live[i++]));
    } else {
      out.push_back(DefaultQueue(name, defaults));
    }
    QueueInfo& q = out.back();
    for (const char* s : {"succeeded", "dead", "cancelled"}) q.counts[s] = 0;
    for (; c < counts.size() && counts[c].queue == name; ++c) {
      q.counts[std::string(StateName(counts[c].state))] += counts[c].count;
    }
  }
  take_live_before(nullptr);
  return out;
}

std::size_t DistinctQueues(const std::vector<FinishedCount>& counts) {
  std::size_t n = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    if (c == 0 || counts[c].queue != counts[c - 1].queue) ++n;
  }
  return n;
}

}  // namespace

void Broker::Impl::AnswerQueue(const std::string& name, std::vector<QueueInfo> live,
                               Callback<QueueInfo> done) {
  FinishedCountQuery query;
  query.queue = name;
  auto counts = store().CountFinished(query);
  if (!counts.ok()) return done(counts.status());
  live = MergeFinished(std::move(live), *counts, options().scheduler);
  if (live.empty()) return done(QueueNotFound("queue " + name + " not found"));
  done(std::move(live.front()));
}

void Broker::ListQueues(std::string after, std::uint32_t limit, Callback<QueuePage> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  limit = std::max<std::uint32_t>(limit, 1);
  impl_->Post([this, after = std::move(after), limit, done = std::move(done)]() mutable {
    bool core_more = false;
    std::vector<QueueInfo> live = impl_->sched().QueuesPage(after, limit, &core_more);
    impl_->Read([this, after = std::move(after), limit, core_more, live = std::move(live),
                 done = std::move(done)]() mutable {
      // One queue more than the page, to know whether the store holds further ones.
      FinishedCountQuery query;
      query.after = after;
      query.max_queues = limit + 1;
      auto counts = impl_->store().CountFinished(query);
      if (!counts.ok()) return done(counts.status());
      const bool store_more = DistinctQueues(*counts) > limit;
      // The first `limit` names of the union are among the first `limit` of each side.
      QueuePage page;
      page.items = MergeFinished(std::move(live), *counts, impl_->options().scheduler);
      bool more = core_more || store_more;
      if (page.items.size() > limit) {
        page.items.resize(limit);
        more = true;
      }
      if (more && !page.items.empty()) page.next_after = page.items.back().config.name;
      done(std::move(page));
    });
  });
}

void Broker::GetQueue(std::string name, Callback<QueueInfo> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, name = std::move(name), done = std::move(done)]() mutable {
    std::vector<QueueInfo> one;
    if (auto q = impl_->sched().Queue(name)) one.push_back(std::move(*q));
    impl_->Read([this, name, one = std::move(one), done = std::move(done)]() mutable {
      impl_->AnswerQueue(name, std::move(one), std::move(done));
    });
  });
}

void Broker::PutQueue(QueueConfigPatch patch, bool create, Callback<QueueInfo> done,
                      AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  // Applied on the core thread once the queue is known to exist (or is to be created).
  auto apply = [this, audit = std::move(audit)](QueueConfigPatch patch, Callback<QueueInfo> done) {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto r = impl_->sched().PutQueue(patch);
    if (!r.ok()) return done(r.status());
    impl_->Audit(audit);
    impl_->AfterDurable([this, r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      // The reply shows the finished counts too, as GET does (read off the core thread).
      impl_->Read([this, info = std::move(r).value(), done = std::move(done)]() mutable {
        const std::string name = info.config.name;
        std::vector<QueueInfo> one;
        one.push_back(std::move(info));
        impl_->AnswerQueue(name, std::move(one), std::move(done));
      });
    });
  };
  impl_->Post([this, apply, patch = std::move(patch), create, done = std::move(done)]() mutable {
    if (create || impl_->sched().Queue(patch.name)) return apply(std::move(patch), std::move(done));
    // Core does not hold it: it exists only if the store keeps finished jobs of it. Read that
    // off the core thread, then apply on the core thread (where it is a plain update now).
    impl_->Read([this, apply, patch = std::move(patch), done = std::move(done)]() mutable {
      FinishedCountQuery query;
      query.queue = patch.name;
      auto counts = impl_->store().CountFinished(query);
      if (!counts.ok()) return done(counts.status());
      if (counts->empty()) {
        return done(QueueNotFound("queue " + patch.name +
                                  " not found (it has no jobs and no configuration); pass "
                                  "create=true to create it"));
      }
      impl_->Post([apply, patch = std::move(patch), done = std::move(done)]() mutable {
        apply(std::move(patch), std::move(done));
      });
    });
  });
}

void Broker::ResetQueue(std::string name, Callback<QueueInfo> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, name = std::move(name), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        std::vector<QueueInfo> one;
        // Audited when core held the queue (its configuration, if any, is removed); a queue only
        // the store knows has nothing to reset, and an unknown one is answered kQueueNotFound
        // below.
        if (auto q = impl_->sched().ResetQueue(name)) {
          one.push_back(std::move(*q));
          impl_->Audit(audit);
        }
        // Durable before the reply (the reset may have written nothing: then at once), and with the
        // store's finished counts, which also tell whether a queue core does not hold exists.
        impl_->AfterDurable(
            [this, name, one = std::move(one), done = std::move(done)](Status s) mutable {
              if (!s.ok()) return done(s);
              impl_->Read([this, name, one = std::move(one), done = std::move(done)]() mutable {
                impl_->AnswerQueue(name, std::move(one), std::move(done));
              });
            });
      });
}

void Broker::PutLimit(flow::LimitSpec spec, Callback<flow::LimitInfo> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, spec = std::move(spec), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        auto r = impl_->sched().PutLimit(spec);
        if (!r.ok()) return done(r.status());
        impl_->Audit(audit);
        impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(r).value());
        });
      });
}

void Broker::DeleteLimit(std::string name, Callback<std::string> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, name = std::move(name), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        Status d = impl_->sched().DeleteLimit(name);
        if (!d.ok()) return done(d);
        impl_->Audit(audit);
        impl_->AfterDurable([name = std::move(name), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(name));
        });
      });
}

void Broker::GetLimit(std::string name, Callback<flow::LimitInfo> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, name = std::move(name), done = std::move(done)]() mutable {
    auto info = impl_->sched().GetLimit(name);
    if (!info) return done(NotFound("limit " + name + " not found"));
    done(std::move(*info));
  });
}

void Broker::ListLimits(std::string after, std::uint32_t limit, Callback<flow::LimitPage> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  limit = std::max<std::uint32_t>(limit, 1);
  impl_->Post([this, after = std::move(after), limit, done = std::move(done)]() mutable {
    bool more = false;
    flow::LimitPage page;
    page.items = impl_->sched().LimitsPage(after, limit, &more);
    if (more && !page.items.empty()) page.next_after = page.items.back().spec.name;
    done(std::move(page));
  });
}

std::vector<ApiTokenRow> Broker::TakeRecoveredApiTokens() {
  return impl_->TakeRecoveredApiTokens();
}

void Broker::CommitMutations(std::vector<Mutation> mutations, std::function<void(Status)> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, mutations = std::move(mutations), done = std::move(done)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    impl_->sched().StageMutations(std::move(mutations));
    impl_->AfterDurable(std::move(done));
  });
}

void Broker::PutNamespace(flow::NamespaceSpec spec, Callback<flow::NamespaceInfo> done,
                          AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, spec = std::move(spec), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        auto r = impl_->sched().PutNamespace(spec);
        if (!r.ok()) return done(r.status());
        impl_->Audit(audit);
        impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(r).value());
        });
      });
}

void Broker::DeleteNamespace(std::string name, Callback<std::string> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, name = std::move(name), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        Status d = impl_->sched().DeleteNamespace(name);
        if (!d.ok()) return done(d);
        impl_->Audit(audit);
        impl_->AfterDurable([name = std::move(name), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(name));
        });
      });
}

void Broker::GetNamespace(std::string name, Callback<flow::NamespaceInfo> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, name = std::move(name), done = std::move(done)]() mutable {
    auto info = impl_->sched().GetNamespace(name);
    if (!info) return done(NotFound("namespace " + name + " has no configuration"));
    done(std::move(*info));
  });
}

void Broker::ListNamespaces(std::string after, std::uint32_t limit,
                            Callback<flow::NamespacePage> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  limit = std::max<std::uint32_t>(limit, 1);
  impl_->Post([this, after = std::move(after), limit, done = std::move(done)]() mutable {
    bool more = false;
    flow::NamespacePage page;
    page.items = impl_->sched().NamespacesPage(after, limit, &more);
    if (more && !page.items.empty()) page.next_after = page.items.back().spec.name;
    done(std::move(page));
  });
}

void Broker::ResetBreaker(std::string name, std::optional<std::string> key,
                          Callback<flow::LimitInfo> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, name = std::move(name), key = std::move(key), done = std::move(done),
               audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto r = impl_->sched().ResetBreaker(name, key ? &*key : nullptr);
    if (!r.ok() || !audit.enabled) return done(std::move(r));
    // The reset itself is in memory only; its audit entry is answered once durable.
    impl_->Audit(audit);
    impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      done(std::move(r));
    });
  });
}

void Broker::SetPaused(std::string name, bool paused, bool create, Callback<QueueInfo> done,
                       AuditNote audit) {
  QueueConfigPatch patch;
  patch.name = std::move(name);
  patch.paused = paused;
  PutQueue(std::move(patch), create, std::move(done), std::move(audit));
}

// --- Schedules ---------------------------------------------------------------------------

void Broker::CreateSchedule(ScheduleUpdate request, Callback<ScheduleView> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, request = std::move(request), done = std::move(done),
               audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto r = impl_->sched().CreateSchedule(std::move(request.spec), request.paused.value_or(false));
    if (!r.ok()) return done(r.status());
    impl_->Audit(audit);
    impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      done(std::move(r).value());
    });
  });
}

void Broker::ReplaceSchedule(ScheduleUpdate request, Callback<ScheduleView> done, AuditNote audit) {
  // The id is copied first: the order in which arguments are evaluated is unspecified, and the
  // lambda below moves `request` away.
  std::string id = request.spec.id;
  PatchSchedule(
      std::move(id),
      [request = std::move(request)](const std::string&) mutable -> Result<ScheduleUpdate> {
        return std::move(request);
      },
      std::move(done), std::move(audit));
}

void Broker::PatchSchedule(
    std::string id, std::function<Result<ScheduleUpdate>(const std::string& current_json)> merge,
    Callback<ScheduleView> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id = std::move(id), merge = std::move(merge), done = std::move(done),
               audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto& sched = impl_->sched();
    const cron::Schedule* current = sched.schedules().Find(id);
    if (current == nullptr) return done(NotFound("schedule " + id + " not found"));
    auto request = merge(current->spec.json);
    if (!request.ok()) return done(request.status());
    auto r = sched.UpdateSchedule(std::move(request->spec), request->paused);
    if (!r.ok()) return done(r.status());
    impl_->Audit(audit);
    impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      done(std::move(r).value());
    });
  });
}

void Broker::DeleteSchedule(std::string id, Callback<std::string> done, AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, id = std::move(id), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        Status d = impl_->sched().DeleteSchedule(id);
        if (!d.ok()) return done(d);
        impl_->Audit(audit);
        impl_->AfterDurable([id = std::move(id), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(id));
        });
      });
}

void Broker::PauseSchedule(std::string id, bool paused, Callback<ScheduleView> done,
                           AuditNote audit) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id = std::move(id), paused, done = std::move(done),
               audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto r = impl_->sched().PauseSchedule(id, paused);
    if (!r.ok()) return done(r.status());
    impl_->Audit(audit);
    impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      done(std::move(r).value());
    });
  });
}

void Broker::TriggerSchedule(std::string id, Callback<EnqueueOutcome> done, AuditNote audit) {
  if (draining()) return done(Unavailable("draining"));
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post(
      [this, id = std::move(id), done = std::move(done), audit = std::move(audit)]() mutable {
        if (impl_->read_only()) return done(impl_->ReadOnlyError());
        auto r = impl_->sched().TriggerSchedule(id);
        if (!r.ok()) return done(r.status());
        if (audit.enabled) {
          AddDetail(audit.detail, "job", r->id);
          impl_->Audit(audit);
        }
        impl_->counters().enqueued.fetch_add(1, std::memory_order_relaxed);
        impl_->AfterDurable([r = std::move(r), done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(std::move(r).value());
        });
      });
}

void Broker::BackfillSchedule(std::string id, std::int64_t from, std::int64_t to,
                              Callback<BackfillOutcome> done, AuditNote audit) {
  if (draining()) return done(Unavailable("draining"));
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id = std::move(id), from, to, done = std::move(done),
               audit = std::move(audit)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    auto outcome = std::make_shared<BackfillOutcome>();
    auto specs = impl_->sched().BackfillSpecs(id, from, to, outcome.get());
    if (!specs.ok()) return done(specs.status());
    if (specs->empty()) {
      if (!audit.enabled) return done(*outcome);
      AddDetail(audit.detail, "emitted", 0);
      impl_->Audit(audit);
      return impl_->AfterDurable([outcome, done = std::move(done)](Status s) mutable {
        if (!s.ok()) return done(s);
        done(*outcome);
      });
    }
    std::vector<std::int64_t> windows;
    std::vector<EnqueueSpec> batch;
    for (auto& [w, spec] : *specs) {
      windows.push_back(w);
      batch.push_back(std::move(spec));
    }
    // Through the ordinary enqueue path: a window's key that core's cache misses is read from
    // the store first, so a window emitted before (by the schedule or another backfill) is a
    // duplicate and creates nothing.
    Enqueue(std::move(batch), [this, id = std::move(id), windows = std::move(windows), outcome,
                               done = std::move(done), audit = std::move(audit)](
                                  std::vector<Result<EnqueueOutcome>> results) mutable {
      Status failed;
      std::vector<std::pair<std::int64_t, JobId>> created;
      for (std::size_t i = 0; i < results.size(); ++i) {
        if (!results[i].ok()) {
          if (failed.ok()) failed = results[i].status();
          continue;
        }
        if (results[i]->duplicate) {
          ++outcome->duplicates;
        } else if (!results[i]->skipped) {
          ++outcome->emitted;
          created.emplace_back(windows[i], results[i]->id);
        }
      }
      if (!failed.ok() && created.empty()) return done(failed);
      // The history records the windows created, on the core thread, durably before the
      // reply.
      impl_->Post([this, id = std::move(id), created = std::move(created), outcome,
                   done = std::move(done), audit = std::move(audit)]() mutable {
        for (const auto& [w, job] : created) impl_->sched().RecordBackfill(id, w, job);
        if (audit.enabled) {
          // With the history; the jobs themselves may have committed just before
          // (docs/security.md, "What a crash can lose").
          AddDetail(audit.detail, "emitted", outcome->emitted);
          AddDetail(audit.detail, "duplicates", outcome->duplicates);
          impl_->Audit(audit);
        }
        impl_->AfterDurable([outcome, done = std::move(done)](Status s) mutable {
          if (!s.ok()) return done(s);
          done(*outcome);
        });
      });
    });
  });
}

// --- Audit log -----------------------------------------------------------------------------

void Broker::RecordAudit(AuditNote note, Callback<std::uint64_t> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  note.enabled = true;
  impl_->Post([this, note = std::move(note), done = std::move(done)]() mutable {
    if (impl_->read_only()) return done(impl_->ReadOnlyError());
    impl_->Audit(note);
    impl_->AfterDurable([this, done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(s);
      // Durable, so the head covers it (a later entry may already have moved it on).
      done(impl_->store().AuditHead().seq);
    });
  });
}

void Broker::ReadAudit(std::uint64_t after_seq, std::uint32_t limit,
                       Callback<std::vector<audit::Entry>> done) {
  if (Status a = impl_->AdmitRead(); !a.ok()) return done(a);
  impl_->Read([this, after_seq, limit, done = std::move(done)]() mutable {
    done(impl_->store().ReadAudit(after_seq, limit));
  });
}

audit::Head Broker::AuditHead() const { return impl_->store().AuditHead(); }

void Broker::GetSchedule(std::string id, std::size_t next_n, Callback<ScheduleView> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  impl_->Post([this, id = std::move(id), next_n, done = std::move(done)]() mutable {
    auto v = impl_->sched().GetSchedule(id, next_n);
    if (!v) return done(NotFound("schedule " + id + " not found"));
    done(std::move(*v));
  });
}

void Broker::ListSchedules(std::string after, std::uint32_t limit, Callback<SchedulePage> done) {
  if (Status a = impl_->Admit(Admission::kNew, 1); !a.ok()) return done(a);
  limit = std::max<std::uint32_t>(limit, 1);
  impl_->Post([this, after = std::move(after), limit, done = std::move(done)]() mutable {
    SchedulePage page;
    page.items = impl_->sched().SchedulesPage(after, limit, &page.more);
    done(std::move(page));
  });
}

}  // namespace ym
