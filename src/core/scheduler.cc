#include "core/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "core/attempt_timeout.h"
#include "core/job_events.h"
#include "core/job_stats.h"
#include "core/live_job.h"

namespace ym {
namespace {

constexpr std::int32_t kMaxPriority = 1'000'000;
constexpr std::int64_t kMaxBackoffMs = 30LL * 24 * 3600 * 1000;
constexpr std::int64_t kMaxDelayMs = 10LL * 365 * 24 * 3600 * 1000;
// A job keeps at most this many attempt errors: max_attempts is capped at 1000 per run, and a
// job replayed many times must not grow without bound.
constexpr std::size_t kMaxErrorsKept = 1000;

Status CheckBackoff(const Backoff& b, const char* field) {
  if (b.initial_ms < 1 || b.initial_ms > kMaxBackoffMs) {
    return Validation(std::string("field \"") + field + ".initial_ms\": must be 1.." +
                      std::to_string(kMaxBackoffMs));
  }
  if (b.max_ms < b.initial_ms || b.max_ms > kMaxBackoffMs) {
    return Validation(std::string("field \"") + field +
                      ".max_ms\": must be between initial_ms and " + std::to_string(kMaxBackoffMs));
  }
  if (!(b.multiplier >= 1.0 && b.multiplier <= 100.0)) {
    return Validation(std::string("field \"") + field + ".multiplier\": must be 1..100");
  }
  return Status::Ok();
}

Status CheckRetention(const Retention& r) {
  if (r.succeeded_ms < 0 || r.dead_ms < 0 || r.cancelled_ms < 0) {
    return Validation("field \"retention\": durations must be >= 0");
  }
  if (r.max_succeeded < 0 || r.max_dead < 0 || r.max_cancelled < 0) {
    return Validation("field \"retention\": caps must be >= 0 (0: no cap)");
  }
  return Status::Ok();
}

// The position of a blocked reason in kBlockedReasons.
std::size_t BlockedIndex(std::string_view reason) {
  for (std::size_t i = 0; i < kBlockedReasonCount; ++i) {
    if (reason == kBlockedReasons[i]) return i;
  }
  return kBlockedReasonCount - 1;
}

// Job metrics (core/job_stats.h): the thin hooks where jobs change state. Each is one branch
// when no JobStats is given.
void CountEvent(JobStats* stats, const LiveJob& job, JobEvent e) {
  if (stats != nullptr) stats->Count(job.stats, e);
}

// The run time of `job`'s attempt, which ends now (ack, fail, expiry, timeout).
void ObserveRun(JobStats* stats, const Clock& clock, const LiveJob& job) {
  if (stats != nullptr && job.attempt_started_ms != 0) {
    stats->Observe(job.stats, JobTime::kRun, clock.MonoMs() - job.attempt_started_ms);
  }
}

}  // namespace

Scheduler::Scheduler(const Clock& clock, Rng& rng, SchedulerOptions options)
    : clock_(clock),
      rng_(rng),
      options_(std::move(options)),
      end_waits_(options_.max_end_waits),
      cancel_watches_(options_.max_cancel_watches),
      idempotency_(options_.idempotency_cache_keys) {
  next_sweep_ms_ = clock_.MonoMs() + options_.retention_sweep_interval_ms;
  retention_policy_ = [this](const std::string& queue) -> const Retention& {
    return RetentionOf(queue);
  };
}

const Retention& Scheduler::RetentionOf(const std::string& queue) const {
  auto it = queue_ids_.find(queue);
  return it == queue_ids_.end() ? options_.default_retention : Q(it->second).config.retention;
}

Scheduler::~Scheduler() = default;

// Queues come into being when a job, a waiter or a config first names them. Only explicitly
// configured queues (PutQueue) get a stored row; the others follow the server's defaults, and
// retention purges their terminal jobs by the default retention (RetentionOf). An unconfigured
// queue is freed again once it held no job and no waiter at two retention sweeps in a row
// (CollectQueues), so a queue that just drained still shows its zero counts for a while.
std::uint32_t Scheduler::QueueIndex(const std::string& name) {
  auto it = queue_ids_.find(name);
  if (it != queue_ids_.end()) return it->second;
  std::uint32_t qi;
  if (!free_queues_.empty()) {
    qi = free_queues_.back();
    free_queues_.pop_back();
  } else {
    qi = static_cast<std::uint32_t>(queues_.size());
    queues_.emplace_back();
  }
  auto q = std::make_unique<QueueState>();
  q->config.name = name;
  q->config.max_attempts = options_.default_max_attempts;
  q->config.lease_ms = options_.default_lease_ms;
  q->config.timeout_ms = options_.default_timeout_ms;
  q->config.backoff = options_.default_backoff;
  q->config.retention = options_.default_retention;
  queues_[qi] = std::move(q);
  queue_ids_.emplace(name, qi);
  ++queue_epoch_;  // a name resolves now (LeaseNames)
  MarkChanged(qi);
  return qi;
}

void Scheduler::MarkChanged(std::uint32_t qi) {
  QueueState& q = Q(qi);
  if (q.changed || changes_full_) return;
  q.changed = true;
  changed_queues_.push_back(qi);
  // Untaken changes are bounded by the queues: past the bound the next take is a full one.
  if (changed_queues_.size() > 2 * queue_ids_.size() + 64) {
    changes_full_ = true;
    for (std::uint32_t c : changed_queues_) {
      if (queues_[c]) Q(c).changed = false;
    }
    changed_queues_.clear();
    removed_queues_.clear();
  }
}

template <typename Changes, typename Render>
Changes Scheduler::TakeChanges(const Render& render) {
  Changes out;
  if (changes_full_) {
    out.full = true;
    out.changed.reserve(queue_ids_.size());
    for (const auto& [name, qi] : queue_ids_) out.changed.push_back(render(qi));
    changes_full_ = false;
  } else {
    out.removed = std::move(removed_queues_);
    out.changed.reserve(changed_queues_.size());
    for (std::uint32_t qi : changed_queues_) {
      if (!queues_[qi] || !Q(qi).changed) continue;  // freed, or listed twice after a reuse
      Q(qi).changed = false;
      out.changed.push_back(render(qi));
    }
  }
  changed_queues_.clear();
  removed_queues_.clear();
  return out;
}

Scheduler::QueueChanges Scheduler::TakeQueueChanges() {
  return TakeChanges<QueueChanges>([this](std::uint32_t qi) { return ToQueueInfo(qi); });
}

Scheduler::GaugeChanges Scheduler::TakeGaugeChanges() {
  if ((!limits_.empty() || !namespaces_.empty()) && !queues_.empty()) {
    // A gate can refuse or admit a queue's ready jobs with no change to that queue: a bounded,
    // round-robin re-check of the slots keeps their blocked reasons at most
    // ceil(slots / kGaugeRecheckSlots) takes old (scheduler.h).
    const auto slots = static_cast<std::uint32_t>(queues_.size());
    for (std::uint32_t n = 0; n < std::min(slots, kGaugeRecheckSlots); ++n) {
      const std::uint32_t qi = gauge_recheck_next_++ % slots;
      if (queues_[qi] && Q(qi).ready > 0) MarkChanged(qi);
    }
    gauge_recheck_next_ %= slots;
  }
  return TakeChanges<GaugeChanges>([this](std::uint32_t qi) { return ToGaugeValues(qi); });
}

std::uint32_t Scheduler::LaneFor(QueueState& q, std::uint32_t ns, std::uint32_t gates) {
  const auto li = static_cast<std::uint32_t>(q.lanes.size());
  auto [it, added] = q.lane_of_key.try_emplace(LaneKey(ns, gates), li);
  if (!added) return it->second;
  q.lanes.emplace_back();
  q.lanes.back().ns = ns;
  q.lanes.back().gates = gates;
  ns_.Ref(ns);
  limits_.Ref(gates);
  return li;
}

void Scheduler::DropLane(QueueState& q, std::uint32_t li) {
  const std::uint32_t last = static_cast<std::uint32_t>(q.lanes.size() - 1);
  const std::uint32_t ns = q.lanes[li].ns;
  const std::uint32_t gates = q.lanes[li].gates;
  q.lane_of_key.erase(LaneKey(ns, gates));
  if (q.lanes[li].wait_until != 0) --timed_lanes_;  // its timer entry is now stale
  if (li != last) {
    // The last lane moves into the hole; the rotation and a waiting registration name lanes by
    // key (LaneKey, LaneRef), so they need no update.
    q.lanes[li] = std::move(q.lanes[last]);
    q.lane_of_key[LaneKey(q.lanes[li].ns, q.lanes[li].gates)] = li;
  }
  q.lanes.pop_back();
  ns_.Release(ns);
  limits_.Unref(gates);
}

void Scheduler::SetWorker(LiveJob& job, std::uint32_t worker) {
  const std::uint32_t old = job.worker;
  job.worker = worker;
  workers_.Release(old);
}

void Scheduler::DropJob(LiveJob& job) {
  const std::uint32_t qi = job.queue;
  ns_.Release(job.ns);
  kinds_.Release(job.kind);
  SetWorker(job, 0);
  limits_.Unref(job.gates);
  index_.Erase(job.id);
  --Q(qi).jobs;
}

void Scheduler::CollectQueues() {
  for (std::uint32_t qi = 0; qi < queues_.size(); ++qi) {
    if (!queues_[qi]) continue;
    QueueState& q = Q(qi);
    if (q.persisted || q.jobs > 0 || q.live_waiters > 0) {
      q.idle_sweeps = 0;
      continue;
    }
    if (++q.idle_sweeps < 2) continue;
    for (const Lane& lane : q.lanes) {
      ns_.Release(lane.ns);
      limits_.Unref(lane.gates);
    }
    if (!changes_full_) {
      removed_queues_.push_back(q.config.name);
      if (removed_queues_.size() > 2 * queue_ids_.size() + 64) {
        changes_full_ = true;
        removed_queues_.clear();
      }
    }
    if (q.retention != nullptr) retention_.Unpin(q.retention);
    queue_ids_.erase(q.config.name);
    ++queue_epoch_;  // the name no longer resolves, and the slot may be reused (LeaseNames)
    queues_[qi].reset();
    free_queues_.push_back(qi);
  }
}

// --- Recovery -------------------------------------------------------------------------------

void Scheduler::LoadNextId(JobId next_id) { next_id_ = std::max(next_id_, next_id); }

void Scheduler::LoadLastCreatedAt(std::int64_t created_at_ms) {
  last_created_at_ms_ = std::max(last_created_at_ms_, created_at_ms);
}

void Scheduler::LoadQueue(const QueueConfig& config) {
  const std::uint32_t qi = QueueIndex(config.name);
  Q(qi).config = config;
  Q(qi).persisted = true;
  MarkChanged(qi);
}

Status Scheduler::LoadLimit(const flow::LimitSpec& spec) {
  bool created = false;
  // What a rate admitted before the restart is not stored: it starts saturated (LimitSet).
  return limits_.Put(spec, clock_.MonoMs(), &created, flow::LimitSet::RateStart::kSaturated);
}

void Scheduler::LoadQuotaCount(const std::string& limit, const std::string& key,
                               std::int64_t window_start_ms, std::int64_t used) {
  limits_.RestoreQuota(limit, key, window_start_ms, used, clock_.NowMs());
}

Status Scheduler::LoadLimit(const std::string& name, const std::string& spec_json) {
  auto spec = flow::LimitSpec::FromJson(name, spec_json);
  if (!spec.ok()) return spec.status();
  return LoadLimit(*spec);
}

void Scheduler::LoadIdempotencyKey(const IdempotencyKeyRecord& key) {
  IdempotencyCache::Entry e;
  e.job = key.job_id;
  e.expires_at_ms = key.expires_at_ms;
  e.finished = key.final_state.has_value();
  e.state = key.final_state.value_or(JobState::kReady);
  idempotency_.Put(IdempotencyCache::KeyOf(key.ns, key.key), e, clock_.NowMs());
}

void Scheduler::LoadIdempotencyKeysOmitted(std::int64_t max_expires_at_ms) {
  idempotency_.MarkIncompleteUntil(max_expires_at_ms);
}

void Scheduler::LoadFinished(const std::string& queue, JobState state, std::uint64_t count,
                             std::int64_t oldest_ms) {
  retention_.Load(queue, state, count, oldest_ms);
}

void Scheduler::LoadJob(JobRecord&& record) {
  next_id_ = std::max(next_id_, record.id + 1);
  last_created_at_ms_ = std::max(last_created_at_ms_, record.created_at_ms);
  const bool cancel = record.cancel_requested;
  const JobState stored = record.state;
  const std::uint64_t token = record.lease_token;
  const std::int64_t expires_wall = record.lease_expires_at_ms;
  const std::int64_t deadline_wall = record.lease_deadline_at_ms;
  const std::string worker = std::move(record.worker_id);
  LiveJob* job = AddJob(std::move(record), /*pending=*/false);
  if (stored == JobState::kActive && token != 0) {
    // Its lease was recorded: the worker may well still be running it (a graceful restart, or a
    // crash of the server alone), so the job stays leased to it under the same token until the
    // recorded expiry. If the worker is gone, the lease expires then like any other and counts
    // the attempt; a cancel request is delivered by its next heartbeat or completes at expiry.
    job->state = JobState::kActive;
    job->lease_token = token;
    SetWorker(*job, workers_.Acquire(worker));
    // The attempt's timeout still holds across the restart: its deadline was recorded with the
    // lease (the recorded expiry is never later), and heartbeats after the restart stay capped.
    job->deadline_ms = deadline_wall != 0 ? MonoOf(deadline_wall) : 0;
    job->lease_expires_ms = AttemptTimeout::Cap(MonoOf(expires_wall), job->deadline_ms);
    job->lease_durable_ms = job->lease_expires_ms;
    // Its length as last recorded: the record is written when the lease is granted or extended,
    // with updated_at set to that moment (the job's lease_ms if that does not add up).
    const std::int64_t length = expires_wall - job->updated_at_ms;
    job->lease_length_ms = length > 0 && length <= options_.max_lease_ms
                               ? static_cast<std::int32_t>(length)
                               : job->lease_ms;
    job->cancel_requested = cancel;
    if (cancel) cancel_watches_.Requested(worker, job->id);
    job->seq = next_seq_++;
    leases_.push(TimerEntry{job->lease_expires_ms, token, job->id});
    // The recovered lease holds its gates: a restart never lets more jobs run than the caps.
    if (job->gates != flow::LimitSet::kNoGates) limits_.Hold(job->gates);
    if (limits_.keyed_modes() > 0) RestoreKeys(*job);
    ns_active_.Started(job->ns);  // counts toward its namespace's max_active too
    ++Q(job->queue).active;
    ++active_total_;
    MarkChanged(job->queue);
    return;
  }
  if (cancel) {
    // It was active with a cancel requested but no recorded lease (format 1 data): its worker is
    // unknown, so the cancel completes now instead of running the job again.
    Finish(*job, JobState::kCancelled, "", "");
    return;
  }
  const std::int64_t now = clock_.NowMs();
  const std::int64_t stored_updated_at = job->updated_at_ms;
  if (job->run_at_ms > now) {
    MakeScheduled(*job, job->run_at_ms, stored == JobState::kScheduled && job->attempts > 0);
  } else {
    MakeReady(*job);
    // A job that was ready before the restart has been waiting since then: its oldest-ready
    // age (the lag gauge, lag alerts) keeps counting from that time, not from the restart.
    if (stored == JobState::kReady) job->updated_at_ms = std::min(now, stored_updated_at);
  }
  // A waiting debounce job's group gets its run_at as deadline (never later than the true one,
  // core/flow/key_groups.h, "Durability without a stored field").
  if (limits_.keyed_modes() > 0) RestoreKeys(*job);
}

LiveJob* Scheduler::AddJob(JobRecord&& r, bool pending) {
  const std::uint32_t qi = QueueIndex(r.queue);
  return AddJobFrom(std::move(r), pending, qi);
}

LiveJob* Scheduler::AddJob(const JobRecord& r, bool pending, std::uint32_t qi) {
  return AddJobFrom(r, pending, qi);
}

// Moves the strings out of an rvalue record (recovery, replay) and copies them from an lvalue
// one (enqueue, whose record also goes into the batch).
template <typename Record>
LiveJob* Scheduler::AddJobFrom(Record&& r, bool pending, std::uint32_t qi) {
  auto job = std::make_unique<LiveJob>();
  job->id = r.id;
  job->run_at_ms = r.run_at_ms;
  job->created_at_ms = r.created_at_ms;
  job->updated_at_ms = r.updated_at_ms;
  job->queue = qi;
  ++Q(job->queue).jobs;
  job->ns = ns_.Acquire(r.ns);
  CountLive(job->ns, true);  // until Finish
  job->kind = kinds_.Acquire(r.kind);
  job->priority = r.priority;
  job->attempts = r.attempts;
  job->max_attempts = r.max_attempts;
  job->runs = r.runs;
  job->lease_ms = static_cast<std::int32_t>(r.lease_ms);
  job->timeout_ms = static_cast<std::int32_t>(r.timeout_ms);
  job->state = r.state == JobState::kActive ? JobState::kReady : r.state;
  job->pending = pending;
  job->payload = std::forward<Record>(r).payload;
  const bool own_backoff = !(r.backoff == Q(job->queue).config.backoff);
  if (own_backoff || !r.idempotency_key.empty() || !r.concurrency_key.empty() || !r.tags.empty() ||
      !r.errors.empty()) {
    JobExtra& x = job->Extra();
    x.backoff = r.backoff;
    x.has_backoff = own_backoff;
    x.idempotency_key = std::forward<Record>(r).idempotency_key;
    x.concurrency_key = std::forward<Record>(r).concurrency_key;
    x.tags = std::forward<Record>(r).tags;
    x.errors = std::forward<Record>(r).errors;
  }
  job->origin = JobOrigin(r.request_id, r.trace);
  if (options_.job_stats != nullptr) {
    job->stats = options_.job_stats->Resolve(Q(qi).config.name, kinds_.Name(job->kind));
  }
  LiveJob* p = index_.Insert(std::move(job));
  if (!limits_.empty()) p->gates = limits_.Acquire(SubjectOf(*p));
  return p;
}

flow::LimitSubject Scheduler::SubjectOf(const LiveJob& job) const {
  flow::LimitSubject s;
  s.queue = Q(job.queue).config.name;
  s.kind = kinds_.Name(job.kind);
  s.ns = ns_.Name(job.ns);
  if (job.extra) s.concurrency_key = job.extra->concurrency_key;
  s.payload = job.payload;
  return s;
}

// --- Singleton and debounce (core/flow/key_groups.h) -----------------------------------------

std::vector<flow::KeyGate> Scheduler::KeyGatesOf(const LiveJob& job) const {
  return limits_.KeyGates(SubjectOf(job));
}

bool Scheduler::NotStarted(const LiveJob& job) {
  return !job.evicting && job.attempts == 0 && job.state != JobState::kActive &&
         !IsTerminal(job.state);
}

Status Scheduler::KeyRefusal(const flow::KeyDecision& d,
                             const std::vector<flow::KeyGate>& gates) const {
  const LiveJob* holder = index_.Find(d.holder);
  const flow::KeyGate& g = gates[d.gate];
  return flow::SingletonConflict(d.holder, holder ? StateName(holder->state) : "live",
                                 limits_.SpecAt(g.limit).name, g.key);
}

void Scheduler::RestoreKeys(LiveJob& job) {
  for (JobId d : key_groups_.Restore(KeyGatesOf(job), job.id, NotStarted(job), job.run_at_ms)) {
    if (LiveJob* older = index_.Find(d)) SetDebounced(*older, false);
  }
  SetDebounced(job, key_groups_.IsWaiting(job.id));
}

void Scheduler::SetDebounced(LiveJob& job, bool on) {
  on = on && job.state == JobState::kScheduled && !job.retry_wait && !job.pending && !job.evicting;
  if (job.debounced == on) return;
  job.debounced = on;
  QueueState& q = Q(job.queue);
  if (on) {
    ++q.debounced;
  } else {
    --q.debounced;
  }
  MarkChanged(job.queue);
}

void Scheduler::Supersede(JobId id, JobId by) {
  LiveJob* job = index_.Find(id);
  // Only a not-started job waits in a debounce group (Started takes a leased one out).
  if (job == nullptr || !NotStarted(*job)) return;
  LeaveState(*job);
  job->updated_at_ms = clock_.NowMs();
  Finish(*job, JobState::kCancelled, flow::SupersededReason(by), "");
}

// --- State transitions ----------------------------------------------------------------------

void Scheduler::MakeReady(LiveJob& job) {
  QueueState& q = Q(job.queue);
  job.state = JobState::kReady;
  job.pending = false;
  job.retry_wait = false;
  job.seq = next_seq_++;
  // Becoming ready is a state change; updated_at then also dates the oldest-ready age.
  job.updated_at_ms = clock_.NowMs();
  const std::uint32_t li = LaneFor(q, job.ns, job.gates);
  Lane& lane = q.lanes[li];
  lane.ready.push(ReadyEntry{job.priority, job.seq, job.id});
  ++lane.ready_count;
  // A lane waiting on a gate stays out until the gate opens (WakeLanes).
  if (!lane.in_rotation && !lane.waiting) {
    lane.in_rotation = true;
    q.rotation.Push(job.ns, LaneKey(job.ns, job.gates), NsWeight(job.ns));
  }
  q.ready_fifo.push_back(FifoEntry{job.seq, job.id});
  ++q.ready;
  MarkChanged(job.queue);
  MaybeCompactLane(lane);
  MaybeCompactFifo(q);
}

void Scheduler::MakeScheduled(LiveJob& job, std::int64_t run_at_ms, bool retry) {
  job.state = JobState::kScheduled;
  job.pending = false;
  job.retry_wait = retry;
  job.run_at_ms = run_at_ms;
  job.seq = next_seq_++;
  timers_.push(TimerEntry{run_at_ms, job.seq, job.id});
  ++Q(job.queue).scheduled;
  if (retry) ++Q(job.queue).retry_waiting;
  ++scheduled_total_;
  if (!retry && !key_groups_.empty()) SetDebounced(job, key_groups_.IsWaiting(job.id));
  MarkChanged(job.queue);
}

void Scheduler::LeaveState(LiveJob& job, flow::BreakerOutcome outcome) {
  if (job.pending || job.evicting) return;  // never counted
  QueueState& q = Q(job.queue);
  MarkChanged(job.queue);
  switch (job.state) {
    case JobState::kScheduled:
      --q.scheduled;
      if (job.retry_wait) --q.retry_waiting;
      if (job.debounced) {
        --q.debounced;
        job.debounced = false;
      }
      --scheduled_total_;
      break;
    case JobState::kReady: {
      --q.ready;
      Lane& lane = q.lanes[q.lane_of_key.at(LaneKey(job.ns, job.gates))];
      --lane.ready_count;
      MaybeCompactLane(lane);
      MaybeCompactFifo(q);
      break;
    }
    case JobState::kActive:
      --q.active;
      --active_total_;
      (void)ns_active_.Ended(job.ns, NsMaxActive(job.ns), woken_);  // may wake its lanes
      // The job stops holding its gates; lanes that waited on one that opens are woken at the
      // end of the command (WakeLanes), not here in the middle of a transition.
      if (job.gates != flow::LimitSet::kNoGates) (void)limits_.Release(job.gates, woken_);
      if (!breaker_holds_.empty()) {
        // Its breakers hear how it ended; a trial's outcome wakes the lanes that waited for it.
        auto [first, last] = breaker_holds_.equal_range(job.id);
        for (auto it = first; it != last; ++it) {
          limits_.ReportBreaker(it->second, outcome, clock_.MonoMs(), woken_);
        }
        breaker_holds_.erase(first, last);
      }
      if (job.cancel_requested) cancel_watches_.Withdrawn(workers_.Name(job.worker), job.id);
      job.deadline_ms = 0;  // the deadline belongs to the attempt
      // Progress belongs to the attempt that reported it.
      if (job.extra) job.extra->progress.clear();
      break;
    default:
      break;
  }
  // Bumping seq invalidates whatever heap entry still points at the job.
  job.seq = next_seq_++;
}

void Scheduler::Finish(LiveJob& job, JobState terminal, std::string dead_reason,
                       const std::string& result, bool erase) {
  const std::int64_t now = clock_.NowMs();
  // Kept for the waits on this job (below) only when there are any: the record takes the
  // original.
  const std::string dead_reason_copy = end_waits_.empty() ? std::string() : dead_reason;
  if (!key_groups_.empty()) key_groups_.Ended(job.id);
  if (!schedules_.empty()) schedules_.OnJobEnded(job.id);  // a buffered window may be due
  job.state = terminal;
  job.pending = false;
  job.evicting = true;
  CountLive(job.ns, false);
  job.updated_at_ms = now;
  if (options_.job_stats != nullptr && !erase) {
    options_.job_stats->Count(job.stats, terminal == JobState::kSucceeded ? JobEvent::kSucceeded
                                         : terminal == JobState::kDead    ? JobEvent::kDead
                                                                          : JobEvent::kCancelled);
    options_.job_stats->Observe(job.stats, JobTime::kEndToEnd, now - job.created_at_ms);
  }
  if (terminal != JobState::kSucceeded && !erase) {
    NoteEvent(job, terminal == JobState::kDead ? JobEvent::kDead : JobEvent::kCancelled,
              dead_reason);
  }
  const Retention& keep = Q(job.queue).config.retention;
  if (erase || (terminal == JobState::kSucceeded && keep.succeeded_ms == 0)) {
    // Delete-on-ack (succeeded_ms 0, the cheapest setting for high-volume queues) or a wipe:
    // nothing of the job is kept, so no record is built.
    open_.mutations.emplace_back(DeleteJob{job.id});
  } else {
    JobRecord rec = ToRecord(job, /*with_payload=*/false);
    rec.finished_at_ms = now;
    rec.dead_reason = std::move(dead_reason);
    rec.result = result;
    open_.mutations.emplace_back(UpdateJob{std::move(rec)});
    // Kept: retention counts it (a queue over its cap is purged from the next batch on),
    // through the queue's pinned entry (no lookup by name per job).
    QueueState& q = Q(job.queue);
    if (q.retention == nullptr) q.retention = retention_.Pin(q.config.name);
    retention_.OnKept(q.retention, terminal, now, keep);
    ++kept_in_open_batch_;
  }
  if (job.extra && !job.extra->idempotency_key.empty() && erase) {
    EraseIdempotencyKey(ns_.Name(job.ns), job.extra->idempotency_key, job.id);
  } else if (job.extra && !job.extra->idempotency_key.empty()) {
    // The final state goes with the key, so a duplicate answers it after retention purged
    // the job.
    const std::string& ns = ns_.Name(job.ns);
    idempotency_.SetFinal(IdempotencyCache::KeyOf(ns, job.extra->idempotency_key), job.id,
                          terminal);
    open_.mutations.emplace_back(
        FinishIdempotencyKey{ns, job.extra->idempotency_key, job.id, terminal});
  }
  open_evict_.push_back(job.id);
  if (!end_waits_.empty()) {
    // Waiting clients get the job as it ended: what the stored record will hold, result and
    // all (the caller answers from the store once this batch is durable, and from this view
    // when nothing of the job is kept).
    JobView view = ToView(job);
    view.job.finished_at_ms = now;
    view.job.dead_reason = dead_reason_copy;
    view.job.result = result;
    end_waits_.Ended(job.id, view);
  }
}

void Scheduler::RecordUpdate(LiveJob& job) {
  open_.mutations.push_back(UpdateJob{ToRecord(job, /*with_payload=*/false)});
  if (job.state == JobState::kActive) job.lease_durable_ms = job.lease_expires_ms;
}

void Scheduler::RecordLease(LiveJob& job) {
  UpdateLease m;
  m.id = job.id;
  m.state = job.state;
  m.attempts = job.attempts;
  m.updated_at_ms = job.updated_at_ms;
  if (job.state == JobState::kActive) {
    m.token = job.lease_token;
    m.expires_at_ms = WallOf(job.lease_expires_ms);
    m.worker_id = workers_.Name(job.worker);
    if (job.deadline_ms != 0) m.deadline_at_ms = WallOf(job.deadline_ms);
    job.lease_durable_ms = job.lease_expires_ms;
  }
  open_.mutations.emplace_back(std::move(m));
}

// The two clocks are read one after the other, so their difference jitters by a millisecond
// from call to call. A cached offset, moved only when the wall clock really stepped (more than
// kWallStepToleranceMs), keeps a lease's displayed expiry stable from one GET to the next and
// makes wall -> mono -> wall round trips exact.
std::int64_t Scheduler::WallOffset() const {
  const std::int64_t current = clock_.NowMs() - clock_.MonoMs();
  if (!wall_offset_known_ || current - wall_offset_ > kWallStepToleranceMs ||
      wall_offset_ - current > kWallStepToleranceMs) {
    wall_offset_ = current;
    wall_offset_known_ = true;
  }
  return wall_offset_;
}

std::int64_t Scheduler::WallOf(std::int64_t mono_ms) const { return mono_ms + WallOffset(); }

std::int64_t Scheduler::MonoOf(std::int64_t wall_ms) const { return wall_ms - WallOffset(); }

std::int64_t Scheduler::BackoffDelay(const LiveJob& job) {
  const Backoff& b =
      (job.extra && job.extra->has_backoff) ? job.extra->backoff : Q(job.queue).config.backoff;
  const int n = std::max(job.attempts, 1);
  double cap = static_cast<double>(b.initial_ms) * std::pow(b.multiplier, n - 1);
  if (!(cap < static_cast<double>(b.max_ms))) cap = static_cast<double>(b.max_ms);
  const auto cap_ms = static_cast<std::uint64_t>(cap);
  // Full jitter (uniform in [0, cap]): spreads a burst of failures instead of retrying them in
  // lock-step against the same broken dependency.
  return static_cast<std::int64_t>(rng_.Uniform(cap_ms + 1));
}

JobState Scheduler::FailAttempt(LiveJob& job, const FailSpec& error) {
  const std::int64_t now = clock_.NowMs();
  JobExtra& x = job.Extra();
  x.errors.push_back(AttemptError{job.attempts, error.type, error.message, now});
  if (x.errors.size() > kMaxErrorsKept) x.errors.erase(x.errors.begin());
  ObserveRun(options_.job_stats, clock_, job);
  // A job whose cancel was requested ends cancelled, whatever its worker reported: no outcome
  // for its breakers (the failure may be the cancel itself).
  LeaveState(job, job.cancel_requested ? flow::BreakerOutcome::kAbandoned
                                       : flow::BreakerOutcome::kFailure);
  SetWorker(job, 0);
  job.lease_token = 0;
  job.updated_at_ms = now;
  if (job.cancel_requested) {
    Finish(job, JobState::kCancelled, "", "");
  } else if (!error.retryable) {
    Finish(job, JobState::kDead, std::string(kDeadNonRetryable), "");
  } else if (job.attempts >= job.max_attempts) {
    Finish(job, JobState::kDead, std::string(kDeadMaxAttempts), "");
  } else {
    const std::int64_t delay =
        error.retry_in_ms ? std::max<std::int64_t>(*error.retry_in_ms, 0) : BackoffDelay(job);
    if (delay == 0) {
      MakeReady(job);
      job.run_at_ms = now;
    } else {
      MakeScheduled(job, now + delay, /*retry=*/true);
    }
    RecordUpdate(job);
    CountEvent(options_.job_stats, job, JobEvent::kRetried);
    NoteEvent(job, JobEvent::kRetried, error.type);
  }
  return job.state;
}

void Scheduler::NoteEvent(const LiveJob& job, JobEvent e, std::string_view reason) {
  JobEventSink* sink = options_.job_events;
  if (sink == nullptr || !sink->Wants(e)) return;
  JobEventNote n;
  n.event = e;
  n.id = job.id;
  n.queue = Q(job.queue).config.name;
  n.kind = kinds_.Name(job.kind);
  n.attempt = job.attempts;
  n.request_id = job.origin.request_id();
  n.traceparent = job.origin.traceparent();
  n.reason = reason;
  sink->Note(n);
}

JobState Scheduler::TimeOut(LiveJob& job) {
  CountEvent(options_.job_stats, job, JobEvent::kTimedOut);
  NoteEvent(job, JobEvent::kTimedOut, "timeout");
  return FailAttempt(job, AttemptTimeout::Failure(job.timeout_ms));
}

// --- Commands -------------------------------------------------------------------------------

bool Scheduler::NeedsIdempotencyLookup(const EnqueueSpec& spec) {
  if (spec.idempotency_key.empty()) return false;
  const std::int64_t now = clock_.NowMs();
  if (idempotency_.Find(IdempotencyCache::KeyOf(spec.ns, spec.idempotency_key), now)) return false;
  return !idempotency_.Complete(now);
}

std::uint64_t Scheduler::BeginIdempotencyLookup() {
  const std::uint64_t ticket = next_ticket_++;
  lookups_.emplace(ticket, durable_seq_);
  lookup_seqs_.insert(durable_seq_);
  return ticket;
}

void Scheduler::EndIdempotencyLookup(std::uint64_t ticket) {
  auto it = lookups_.find(ticket);
  if (it == lookups_.end()) return;
  lookup_seqs_.erase(lookup_seqs_.find(it->second));
  lookups_.erase(it);
  UpdateEvictable();
}

void Scheduler::UpdateEvictable() {
  std::uint64_t seq = durable_seq_;
  if (!lookup_seqs_.empty()) seq = std::min(seq, *lookup_seqs_.begin());
  idempotency_.SetEvictableUpTo(seq, clock_.NowMs());
}

EnqueueOutcome Scheduler::Duplicate(JobId id, bool finished, JobState state) const {
  EnqueueOutcome out;
  out.id = id;
  out.duplicate = true;
  if (const LiveJob* live = index_.Find(id)) {
    out.state = live->state;
  } else if (finished) {
    out.state = state;
  } else {
    // Finished after the key was read (or before its final state was recorded): the caller
    // reads the job from the store.
    out.state_known = false;
  }
  return out;
}

Result<EnqueueOutcome> Scheduler::Enqueue(EnqueueSpec spec, const IdempotencyLookup* lookup) {
  struct EndLookup {
    Scheduler* s;
    const IdempotencyLookup* l;
    ~EndLookup() {
      if (l) s->EndIdempotencyLookup(l->ticket);
    }
  } end_lookup{this, lookup};
  if (!IsValidName(spec.queue)) return Validation("field \"queue\": invalid name");
  if (!IsValidName(spec.kind)) return Validation("field \"kind\": invalid name");
  if (!IsValidName(spec.ns)) return Validation("field \"namespace\": invalid name");
  if (spec.priority < -kMaxPriority || spec.priority > kMaxPriority) {
    return Validation("field \"priority\": must be an integer between -1000000 and 1000000");
  }
  if (spec.delay_ms && spec.run_at_ms) {
    return Validation("fields \"delay_ms\" and \"run_at\" are mutually exclusive");
  }
  if (spec.delay_ms && (*spec.delay_ms < 0 || *spec.delay_ms > kMaxDelayMs)) {
    return Validation("field \"delay_ms\": must be 0.." + std::to_string(kMaxDelayMs));
  }
  if (spec.max_attempts &&
      (*spec.max_attempts < 1 || *spec.max_attempts > options_.max_max_attempts)) {
    return Validation("field \"max_attempts\": must be 1.." +
                      std::to_string(options_.max_max_attempts));
  }
  if (spec.lease_ms &&
      (*spec.lease_ms < options_.min_lease_ms || *spec.lease_ms > options_.max_lease_ms)) {
    return Validation("field \"lease_ms\": must be " + std::to_string(options_.min_lease_ms) +
                      ".." + std::to_string(options_.max_lease_ms));
  }
  if (spec.backoff) YM_RETURN_IF_ERROR(CheckBackoff(*spec.backoff, "backoff"));
  if (spec.timeout_ms) YM_RETURN_IF_ERROR(AttemptTimeout::Check(*spec.timeout_ms, "timeout_ms"));
  if (spec.idempotency_ttl_ms &&
      (*spec.idempotency_ttl_ms < 1 || *spec.idempotency_ttl_ms > kMaxDelayMs)) {
    return Validation("field \"idempotency_ttl_ms\": must be 1.." + std::to_string(kMaxDelayMs));
  }
  if (!spec.concurrency_key.empty() && !IsValidName(spec.concurrency_key)) {
    return Validation("field \"concurrency_key\": invalid name");
  }

  const std::int64_t now = clock_.NowMs();
  std::string idem;
  if (!spec.idempotency_key.empty()) {
    idem = IdempotencyCache::KeyOf(spec.ns, spec.idempotency_key);
    // The cache first, also after a lookup: an enqueue with the same key may have created the
    // job while the store was read.
    // A tombstone (a wipe deleted the key) says the key is free, whatever a lookup read.
    const IdempotencyCache::Entry* cached = idempotency_.Find(idem, now);
    if (cached != nullptr && !cached->erased) {
      return Duplicate(cached->job, cached->finished, cached->state);
    }
    if (cached == nullptr && lookup != nullptr && lookup->job_id && lookup->expires_at_ms > now) {
      IdempotencyCache::Entry e;
      e.job = *lookup->job_id;
      e.expires_at_ms = lookup->expires_at_ms;
      e.finished = lookup->final_state.has_value();
      e.state = lookup->final_state.value_or(JobState::kReady);
      idempotency_.Put(idem, e, now);
      return Duplicate(e.job, e.finished, e.state);
    }
    if (cached == nullptr && lookup == nullptr && !idempotency_.Complete(now)) {
      return Internal("idempotency key " + spec.idempotency_key +
                      " missed the cache and needs a store lookup first");
    }
  }

  // Singleton and debounce, after idempotency (a duplicate was answered above, before either).
  // Decided here on the core thread against every live job, pending ones included, so two
  // producers can never both pass a singleton.
  const std::int64_t own_run_at =
      spec.run_at_ms ? *spec.run_at_ms : now + spec.delay_ms.value_or(0);
  std::vector<flow::KeyGate> key_gates;
  flow::KeyDecision keys;
  if (limits_.keyed_modes() > 0) {
    key_gates = limits_.KeyGates(
        flow::LimitSubject{spec.queue, spec.kind, spec.ns, spec.concurrency_key, spec.payload});
    if (!key_gates.empty()) {
      keys = key_groups_.Decide(key_gates, now, own_run_at);
      if (keys.verdict == flow::KeyDecision::Verdict::kRefuse) {
        return KeyRefusal(keys, key_gates);
      }
      if (keys.verdict == flow::KeyDecision::Verdict::kSkip) {
        EnqueueOutcome skipped;
        skipped.id = keys.holder;
        const LiveJob* holder = index_.Find(keys.holder);
        skipped.state = holder ? holder->state : JobState::kReady;
        skipped.skipped = true;
        return skipped;
      }
    }
  }

  // Namespace limits after the duplicates and the key modes (an idempotent retry or a skip
  // answers its job, never 429), and before anything changes: refused, nothing changes.
  if (!namespaces_.empty()) {
    if (auto refused = namespaces_.AdmitEnqueue(spec.ns, LiveJobsIn(spec.ns), 1, clock_.MonoMs(),
                                                !spec.namespace_rate_counted)) {
      return NamespaceRefused(*refused);
    }
  }

  const std::uint32_t qi = QueueIndex(spec.queue);
  const QueueConfig& qc = Q(qi).config;
  JobRecord r;
  r.id = next_id_++;
  r.ns = spec.ns;
  r.queue = spec.queue;
  r.kind = std::move(spec.kind);
  r.priority = spec.priority;
  r.payload = std::move(spec.payload);
  // Never before the previous job's creation (the wall clock may step back): ids and creation
  // times then sort alike.
  last_created_at_ms_ = std::max(last_created_at_ms_, now);
  r.created_at_ms = last_created_at_ms_;
  r.updated_at_ms = last_created_at_ms_;
  r.run_at_ms = key_gates.empty() ? own_run_at : keys.run_at_ms;
  r.state = r.run_at_ms > now ? JobState::kScheduled : JobState::kReady;
  r.max_attempts = spec.max_attempts.value_or(qc.max_attempts);
  r.backoff = spec.backoff.value_or(qc.backoff);
  r.lease_ms = spec.lease_ms.value_or(qc.lease_ms);
  r.timeout_ms = AttemptTimeout::Resolve(spec.timeout_ms, qc.timeout_ms);
  r.idempotency_key = spec.idempotency_key;
  r.concurrency_key = std::move(spec.concurrency_key);
  r.tags = std::move(spec.tags);
  r.trace = std::move(spec.trace);
  r.request_id = std::move(spec.request_id);
  open_.next_id = next_id_;
  EnqueueOutcome out;
  out.id = r.id;
  out.state = r.state;
  // Copies the payload: the batch keeps the record's own.
  CountEvent(options_.job_stats, *AddJob(r, /*pending=*/true, qi), JobEvent::kEnqueued);
  open_.mutations.emplace_back(InsertJob{std::move(r)});
  if (!key_gates.empty()) {
    for (JobId w : keys.superseded) Supersede(w, out.id);
    key_groups_.Join(key_gates, out.id, keys);
    out.superseded = std::move(keys.superseded);
  }
  if (!idem.empty()) {
    const std::int64_t expires =
        now + spec.idempotency_ttl_ms.value_or(options_.idempotency_window_ms);
    IdempotencyCache::Entry e;
    e.job = out.id;
    e.expires_at_ms = expires;
    e.written_seq = next_batch_seq_;  // the open batch's seq once sealed
    idempotency_.Put(idem, e, now);
    ++keys_in_open_batch_;
    open_.mutations.emplace_back(
        PutIdempotencyKey{std::move(spec.ns), std::move(spec.idempotency_key), out.id, expires});
  }
  open_promote_.push_back(out.id);
  return out;
}

bool Scheduler::HasReady(std::uint32_t qi) const {
  const QueueState& q = Q(qi);
  return !q.config.paused && q.ready > 0;
}

std::optional<std::uint32_t> Scheduler::ScopedLane(QueueState& q, const LeaseScope& scope,
                                                   const std::vector<std::uint32_t>& tried) {
  std::optional<ScopedLaneCandidate> best;
  for (std::uint32_t li = 0; li < q.lanes.size(); ++li) {
    Lane& lane = q.lanes[li];
    if (!lane.in_rotation || lane.ready_count == 0 || !scope.Allows(lane.ns)) continue;
    if (std::find(tried.begin(), tried.end(), li) != tried.end()) continue;
    // Its next job: stale entries on top are dropped, as the rotation's own pass does.
    while (!lane.ready.empty()) {
      const ReadyEntry& e = lane.ready.top();
      const LiveJob* j = index_.Find(e.id);
      if (j && j->state == JobState::kReady && !j->pending && !j->evicting && j->seq == e.seq) {
        break;
      }
      lane.ready.pop();
    }
    if (lane.ready.empty()) continue;
    const ScopedLaneCandidate c{li, lane.ready.top().priority, lane.ready.top().seq};
    if (!best || RunsBefore(c, *best)) best = c;
  }
  if (!best) return std::nullopt;
  return best->lane;
}

void Scheduler::TakeFromQueue(std::uint32_t qi, std::uint32_t max, std::int64_t lease_ms_override,
                              const std::string& worker_id, std::vector<LeasedJob>& out,
                              const LeaseScope* scope) {
  QueueState& q = Q(qi);
  if (q.config.paused) return;
  const std::int64_t now = clock_.NowMs();
  const std::int64_t mono = clock_.MonoMs();
  std::uint32_t taken = 0;
  // A lease limited to namespaces (core/lease_scope.h) takes from its own lanes only, in ready
  // order, and touches the rotation only when the lane it takes from is the rotation's front;
  // a lane it finds refused (a gate, a namespace at max_active) is left for the rotation's pass
  // and not tried again in this lease.
  std::vector<std::uint32_t> tried;
  while (taken < max) {
    const std::optional<flow::FairLanes::Entry> front = q.rotation.Front();
    if (!front) break;
    std::uint32_t li = q.lane_of_key.find(front->lane)->second;
    bool at_front = true;
    if (scope != nullptr) {
      const std::optional<std::uint32_t> pick = ScopedLane(q, *scope, tried);
      if (!pick) break;
      at_front = *pick == li;
      li = *pick;
    }
    Lane& lane = q.lanes[li];
    LiveJob* job = nullptr;
    while (!lane.ready.empty()) {
      const ReadyEntry& e = lane.ready.top();
      LiveJob* j = index_.Find(e.id);
      if (j && j->state == JobState::kReady && !j->pending && !j->evicting && j->seq == e.seq) {
        job = j;
        break;
      }
      lane.ready.pop();
    }
    if (job == nullptr) {  // only stale entries were left
      if (!at_front) {     // (ScopedLane saw a job: not reached; kept for safety)
        tried.push_back(li);
        continue;
      }
      q.rotation.Drop();
      lane.in_rotation = false;
      decltype(lane.ready)().swap(lane.ready);
      DropLane(q, li);
      continue;
    }
    if (NsAtMaxActive(lane.ns) && !at_front) {
      tried.push_back(li);
      continue;
    }
    if (NsAtMaxActive(lane.ns)) {
      // Its namespace is at its max_active: the lane leaves the rotation and waits for one of
      // the namespace's active jobs to end (one lane out, none of its jobs scanned).
      q.rotation.Drop();  // no charge to its namespace
      lane.in_rotation = false;
      lane.waiting = true;
      ns_active_.Wait(lane.ns, flow::LaneRef{qi, lane.ns, lane.gates});
      continue;
    }
    bool quota_counted = false;
    if (lane.gates != flow::LimitSet::kNoGates) {
      // Every job of the lane has the same gates, so a refusal holds for the whole lane: it
      // leaves the rotation and waits for the gate that refused (a cap: its release; a rate or
      // a quota: the time it opens), and no other lane is held up.
      quota_uses_.clear();
      holds_.clear();
      if (auto refused = limits_.Admit(lane.gates, mono, now, &quota_uses_, &holds_)) {
        if (!at_front) {  // a refusal changes nothing: left for the rotation's pass
          tried.push_back(li);
          continue;
        }
        q.rotation.Drop();  // no charge to its namespace
        lane.in_rotation = false;
        lane.waiting = true;
        const flow::LaneRef ref{qi, lane.ns, lane.gates};
        if (refused->why == flow::Block::kConcurrency) {
          limits_.Wait(lane.gates, refused->pos, ref);
        } else if (refused->why == flow::Block::kCircuit && refused->until == flow::kNever) {
          // Half-open with its trial out: the trial's outcome wakes the lane, not a timer.
          if (lane.wait_until != 0) --timed_lanes_;
          lane.wait_until = 0;
          lane.wait_why = refused->why;
          limits_.WaitForTrial(lane.gates, refused->pos, ref);
        } else {
          if (lane.wait_until == 0) ++timed_lanes_;
          lane.wait_until = refused->until;
          lane.wait_why = refused->why;
          (refused->why == flow::Block::kRate    ? rate_timers_
           : refused->why == flow::Block::kQuota ? quota_timers_
                                                 : circuit_timers_)
              .push(LaneTimer{refused->until, ref});
        }
        continue;
      }
      // The starts counted toward quotas are durable with the lease (same batch), and its reply
      // waits for that batch (LeasedJob::quota_counted).
      quota_counted = !quota_uses_.empty();
      for (flow::QuotaUse& u : quota_uses_) {
        PutQuotaCount m;
        m.limit = std::move(u.limit);
        m.key = std::move(u.key);
        m.window_start_ms = u.window_start_ms;
        m.used = u.used;
        if (u.new_window) m.drop_before_ms = u.window_start_ms;
        open_.mutations.emplace_back(std::move(m));
      }
    }
    lane.ready.pop();
    // Jobs mostly leave in the order they became ready: drop the job's own entry from the
    // front of the ready order now, without a lookup, instead of leaving it stale.
    if (!q.ready_fifo.empty() && q.ready_fifo.front().id == job->id &&
        q.ready_fifo.front().seq == job->seq) {
      q.ready_fifo.pop_front();
    }
    LeaveState(*job);
    // Its breaker tickets stay with it while it is active (reported by LeaveState).
    for (flow::BreakerHold& h : holds_) breaker_holds_.emplace(job->id, std::move(h));
    holds_.clear();  // the next lane may have no gates, and so no Admit that clears it
    if (!key_groups_.empty()) key_groups_.Started(job->id);  // its debounce group closes
    // The namespace is charged one job; the lane goes to the back of its namespace's lanes.
    const bool lane_done = lane.ready_count == 0 && at_front;
    if (!at_front) {
      // Taken out of turn: the rotation is left as it is (a lane left with no job stays in it
      // and is dropped when it comes to the front, as a lane of stale entries is).
    } else if (!lane_done) {
      q.rotation.Served();
    } else {
      q.rotation.ServedLast();
      lane.in_rotation = false;
      decltype(lane.ready)().swap(lane.ready);  // whatever is left is stale
    }
    job->state = JobState::kActive;
    ++job->attempts;
    std::uint64_t token = rng_.Next();
    if (token == 0) token = 1;
    job->lease_token = token;
    const std::int64_t lease_ms = lease_ms_override > 0 ? lease_ms_override : job->lease_ms;
    // The attempt starts now; with a timeout, the lease ends at its deadline at the latest.
    job->deadline_ms = AttemptTimeout::Deadline(mono, job->timeout_ms);
    job->lease_expires_ms = AttemptTimeout::Cap(mono + lease_ms, job->deadline_ms);
    job->lease_length_ms = static_cast<std::int32_t>(job->lease_expires_ms - mono);
    SetWorker(*job, workers_.Acquire(worker_id));
    job->updated_at_ms = now;
    job->attempt_started_ms = mono;
    if (options_.job_stats != nullptr) {
      // Waiting since it could first run: created, or its run_at (a delay, a retry's backoff).
      options_.job_stats->Count(job->stats, JobEvent::kLeased);
      options_.job_stats->Observe(job->stats, JobTime::kWait,
                                  now - std::max(job->run_at_ms, job->created_at_ms));
    }
    leases_.push(TimerEntry{job->lease_expires_ms, token, job->id});
    ns_active_.Started(job->ns);
    ++q.active;
    ++active_total_;
    MarkChanged(qi);
    // The lease (and the attempt it counts) is durable before its reply leaves: a restart keeps
    // it, and a job that keeps crashing the server still reaches max_attempts.
    RecordLease(*job);

    LeasedJob l;
    l.id = job->id;
    l.ns = ns_.Name(job->ns);
    l.queue = q.config.name;
    l.kind = kinds_.Name(job->kind);
    l.payload = job->payload;
    l.attempt = job->attempts;
    l.max_attempts = job->max_attempts;
    l.priority = job->priority;
    l.created_at_ms = job->created_at_ms;
    if (job->extra) l.tags = job->extra->tags;
    l.timeout_ms = job->timeout_ms;
    if (!job->origin.empty()) {
      l.trace = job->origin.trace();
      l.request_id = job->origin.request_id();
    }
    l.lease = LeaseInfo{token, WallOf(job->lease_expires_ms), worker_id,
                        job->deadline_ms != 0 ? WallOf(job->deadline_ms) : 0};
    l.quota_counted = quota_counted;
    out.push_back(std::move(l));
    ++taken;
    if (lane_done) DropLane(q, li);
  }
}

std::int64_t Scheduler::NsWeight(std::uint32_t ns) const {
  return namespaces_.empty() ? 1 : namespaces_.Weight(ns_.Name(ns));
}

std::optional<std::int64_t> Scheduler::NsMaxActive(std::uint32_t ns) const {
  if (namespaces_.with_max_active() == 0) return std::nullopt;
  return namespaces_.MaxActive(ns_.Name(ns));
}

bool Scheduler::NsAtMaxActive(std::uint32_t ns) const {
  return namespaces_.with_max_active() > 0 && !ns_active_.HasRoom(ns, NsMaxActive(ns));
}

// --- Namespaces -------------------------------------------------------------------------------

std::uint64_t Scheduler::LiveJobsIn(const std::string& name) const {
  const std::optional<std::uint32_t> id = ns_.Find(name);
  return id && *id < ns_live_.size() ? ns_live_[*id] : 0;
}

Status Scheduler::NamespaceRefused(const flow::NamespaceRefusal& r) {
  if (r.retry_after_ms == std::numeric_limits<std::int64_t>::max()) return Validation(r.message);
  Status s(Code::kNamespaceLimit, r.message);
  s.WithRetryAfter(r.retry_after_ms);
  return s;
}

Status Scheduler::AdmitBatch(std::vector<EnqueueSpec>& specs) {
  if (namespaces_.empty()) return Status::Ok();
  const std::int64_t now = clock_.NowMs();
  const std::int64_t mono = clock_.MonoMs();
  std::map<std::string_view, std::int64_t> count;
  for (const EnqueueSpec& s : specs) {
    if (namespaces_.Find(s.ns) == nullptr) continue;
    // A duplicate core knows now creates nothing; one that needs a store lookup counts.
    if (!s.idempotency_key.empty()) {
      const IdempotencyCache::Entry* e =
          idempotency_.Find(IdempotencyCache::KeyOf(s.ns, s.idempotency_key), now);
      if (e != nullptr && !e->erased) continue;
    }
    ++count[s.ns];
  }
  for (const auto& [ns, n] : count) {
    if (auto refused = namespaces_.Check(ns, LiveJobsIn(std::string(ns)), n, mono)) {
      return NamespaceRefused(*refused);
    }
  }
  for (const auto& [ns, n] : count) namespaces_.Charge(ns, n, mono);
  for (EnqueueSpec& s : specs) {
    if (count.count(s.ns) != 0) s.namespace_rate_counted = true;
  }
  return Status::Ok();
}

NamespaceInfo Scheduler::NamespaceInfoOf(const flow::NamespaceSpec& spec) const {
  NamespaceInfo info;
  info.spec = spec;
  info.live_jobs = LiveJobsIn(spec.name);
  if (const std::optional<std::uint32_t> id = ns_.Find(spec.name)) {
    info.active_jobs = ns_active_.Active(*id);
  }
  return info;
}

void Scheduler::ApplyNamespaceWeight(const std::string& name) {
  const std::optional<std::uint32_t> id = ns_.Find(name);
  if (!id) return;  // no job or lane names it
  const std::int64_t w = namespaces_.Weight(name);
  for (auto& qp : queues_) {
    if (qp) qp->rotation.SetWeight(*id, w);
  }
}

// A namespace's max_active changed or went: the lanes waiting on it re-check (waiting
// long-polls are answered when they may now start).
void Scheduler::ReopenNamespace(const std::string& name) {
  const std::optional<std::uint32_t> id = ns_.Find(name);
  if (!id) return;  // no job or lane names it
  ns_active_.Reopen(*id, woken_);
  WakeLanes();
}

Status Scheduler::LoadNamespace(const std::string& name, const std::string& spec_json) {
  auto spec = flow::NamespaceSpec::FromJson(name, spec_json);
  if (!spec.ok()) return spec.status();
  bool created = false;
  YM_RETURN_IF_ERROR(namespaces_.Put(*spec, &created));
  ns_retention_.Configure(name, spec->retention);
  return Status::Ok();
}

Result<NamespaceInfo> Scheduler::PutNamespace(const flow::NamespaceSpec& spec) {
  bool created = false;
  const std::optional<std::int64_t> old_max_active = namespaces_.MaxActive(spec.name);
  YM_RETURN_IF_ERROR(namespaces_.Put(spec, &created));
  open_.mutations.emplace_back(ym::PutNamespace{spec.name, spec.ToJson()});
  ns_retention_.Configure(spec.name, spec.retention);
  if (!spec.retention.empty()) {
    // New windows apply now, not at the next sweep (passes in flight keep their cutoff).
    ns_retention_.Scan(clock_.NowMs());
    PlanPurges(clock_.NowMs(), options_.retention_purge_chunk);
  }
  ApplyNamespaceWeight(spec.name);
  if (spec.max_active != old_max_active) ReopenNamespace(spec.name);
  NamespaceInfo info = NamespaceInfoOf(spec);
  info.created = created;
  return info;
}

Status Scheduler::DeleteNamespace(const std::string& name) {
  if (!namespaces_.Delete(name)) return NotFound("namespace " + name + " has no configuration");
  open_.mutations.emplace_back(ym::DeleteNamespace{name});
  ns_retention_.Configure(name, flow::NamespaceRetentionSpec{});
  ApplyNamespaceWeight(name);
  ReopenNamespace(name);
  return Status::Ok();
}

std::optional<NamespaceInfo> Scheduler::GetNamespace(const std::string& name) const {
  const flow::NamespaceSpec* spec = namespaces_.Find(name);
  if (spec == nullptr) return std::nullopt;
  return NamespaceInfoOf(*spec);
}

std::vector<NamespaceInfo> Scheduler::NamespacesPage(const std::string& after, std::uint32_t limit,
                                                     bool* more) const {
  std::vector<NamespaceInfo> out;
  for (const flow::NamespaceSpec* spec : namespaces_.Page(after, limit, more)) {
    out.push_back(NamespaceInfoOf(*spec));
  }
  return out;
}

void Scheduler::WakeLanes() {
  if (woken_.empty()) return;
  std::vector<flow::LaneRef> woken;
  woken.swap(woken_);
  std::vector<std::uint32_t> touched;
  for (const flow::LaneRef& ref : woken) {
    // A registration outlives its lane only if the lane was dropped (its queue freed): then
    // nothing is found, or a lane of the same key that re-checks its gates (harmless).
    if (ref.queue >= queues_.size() || !queues_[ref.queue]) continue;
    QueueState& q = Q(ref.queue);
    auto it = q.lane_of_key.find(LaneKey(ref.ns, ref.set));
    if (it == q.lane_of_key.end()) continue;
    Lane& lane = q.lanes[it->second];
    if (!lane.waiting) continue;
    lane.waiting = false;
    if (lane.wait_until != 0) {
      lane.wait_until = 0;
      --timed_lanes_;
    }
    if (!lane.in_rotation) {
      lane.in_rotation = true;
      q.rotation.Push(ref.ns, it->first, NsWeight(ref.ns));
    }
    touched.push_back(ref.queue);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (std::uint32_t qi : touched) ServeWaiters(qi);
}

void Scheduler::Rebind() {
  // Lanes first: they hold references on the old gate sets.
  for (auto& qp : queues_) {
    if (!qp) continue;
    for (const Lane& lane : qp->lanes) {
      ns_.Release(lane.ns);
      limits_.Unref(lane.gates);
    }
    qp->lanes.clear();
    qp->lane_of_key.clear();
    qp->rotation.Clear();
  }
  woken_.clear();
  ns_active_.ClearWaits();
  // Every lane re-enters the rotation: the timer entries are stale (dropped by the next
  // compaction or skipped when they fire).
  timed_lanes_ = 0;
  limits_.BeginRecount();
  key_groups_.BeginRebuild();
  index_.Scan(0, ~std::uint64_t{0}, [&](LiveJob& job) {
    const std::uint32_t old = job.gates;
    job.gates = limits_.empty() ? flow::LimitSet::kNoGates : limits_.Acquire(SubjectOf(job));
    limits_.Unref(old);
    // Ascending ids: the newest not-started job of a debounce key waits in its group.
    if (!job.evicting) {
      if (limits_.keyed_modes() > 0) {
        RestoreKeys(job);
      } else {
        SetDebounced(job, false);
      }
    }
    if (job.pending || job.evicting) return true;
    if (job.state == JobState::kActive) {
      if (job.gates != flow::LimitSet::kNoGates) limits_.Hold(job.gates);
    } else if (job.state == JobState::kReady) {
      // Same seq: its ready_fifo entry stays valid.
      QueueState& q = Q(job.queue);
      const std::uint32_t li = LaneFor(q, job.ns, job.gates);
      Lane& lane = q.lanes[li];
      lane.ready.push(ReadyEntry{job.priority, job.seq, job.id});
      ++lane.ready_count;
      if (!lane.in_rotation) {
        lane.in_rotation = true;
        q.rotation.Push(job.ns, LaneKey(job.ns, job.gates), NsWeight(job.ns));
      }
    }
    return true;
  });
  key_groups_.EndRebuild();
  // Every lane with ready jobs is in the rotation; a capped one leaves it at its first try.
  for (std::uint32_t qi = 0; qi < queues_.size(); ++qi) {
    if (queues_[qi] && queues_[qi]->live_waiters > 0) ServeWaiters(qi);
  }
}

LimitInfo Scheduler::InfoOf(const flow::LimitSpec& spec) const {
  LimitInfo info;
  info.spec = spec;
  info.active = limits_.TopCounts(spec.name, LimitInfo::kTopKeys, &info.active_keys);
  if (spec.quota) {
    info.quota_window =
        limits_.QuotaTop(spec.name, LimitInfo::kTopKeys, &info.quota_used, &info.quota_keys);
  }
  if (spec.breaker) {
    info.breakers = limits_.BreakerTop(spec.name, LimitInfo::kTopKeys, &info.breaker_keys,
                                       &info.breaker_tripped);
    for (auto& [key, st] : info.breakers) {
      // Shown on the wall clock, like every time of the API.
      if (st.opened_at_ms != 0) st.opened_at_ms = WallOf(st.opened_at_ms);
      if (st.next_open_at_ms != 0) st.next_open_at_ms = WallOf(st.next_open_at_ms);
    }
  }
  return info;
}

Result<LimitInfo> Scheduler::ResetBreaker(const std::string& name, const std::string* key) {
  std::size_t tripped = 0;
  YM_RETURN_IF_ERROR(limits_.ResetBreaker(name, key, woken_, &tripped));
  // Lanes waiting for an open breaker's time are in circuit_timers_, not registered on the
  // limit: every such lane re-checks now (an admin operation, O(lanes)); one still refused by
  // another breaker waits again, and its old timer entry goes stale.
  for (std::uint32_t qi = 0; qi < queues_.size(); ++qi) {
    if (!queues_[qi]) continue;
    for (const Lane& lane : queues_[qi]->lanes) {
      if (lane.waiting && lane.wait_until != 0 && lane.wait_why == flow::Block::kCircuit) {
        woken_.push_back(flow::LaneRef{qi, lane.ns, lane.gates});
      }
    }
  }
  WakeLanes();
  LimitInfo info = InfoOf(*limits_.Find(name));
  info.reset_tripped = tripped;
  return info;
}

Result<LimitInfo> Scheduler::PutLimit(const flow::LimitSpec& spec) {
  bool created = false;
  std::optional<flow::LimitQuota> old_quota;
  if (const flow::LimitSpec* old = limits_.Find(spec.name)) old_quota = old->quota;
  YM_RETURN_IF_ERROR(limits_.Put(spec, clock_.MonoMs(), &created));
  open_.mutations.emplace_back(ym::PutLimit{spec.name, spec.ToJson()});
  // Counts of a quota that is gone, or now counts other windows, are over (LimitSet::Put).
  if (old_quota && (!spec.quota || spec.quota->period != old_quota->period ||
                    spec.quota->time_zone != old_quota->time_zone)) {
    open_.mutations.emplace_back(DropQuotaCounts{spec.name});
  }
  Rebind();
  LimitInfo info = InfoOf(spec);
  info.created = created;
  return info;
}

Status Scheduler::DeleteLimit(const std::string& name) {
  if (!limits_.Delete(name)) return NotFound("limit " + name + " not found");
  open_.mutations.emplace_back(ym::DeleteLimit{name});
  Rebind();
  return Status::Ok();
}

std::optional<LimitInfo> Scheduler::GetLimit(const std::string& name) const {
  const flow::LimitSpec* spec = limits_.Find(name);
  if (spec == nullptr) return std::nullopt;
  return InfoOf(*spec);
}

std::vector<LimitInfo> Scheduler::LimitsPage(const std::string& after, std::uint32_t limit,
                                             bool* more) const {
  std::vector<LimitInfo> out;
  for (const flow::LimitSpec* spec : limits_.Page(after, limit, more)) out.push_back(InfoOf(*spec));
  return out;
}

std::vector<LeasedJob> Scheduler::Lease(const LeaseRequest& request) {
  std::vector<LeasedJob> out;
  if (request.max == 0) return out;
  // The slots of the named queues (those that exist), resolved once per list of names and
  // queue epoch (core/lease_names.h).
  const LeaseNames::Resolved& names =
      lease_names_.Resolve(request.queues, queue_epoch_,
                           [this](const std::string& name) -> std::optional<std::uint32_t> {
                             auto it = queue_ids_.find(name);
                             if (it == queue_ids_.end()) return std::nullopt;
                             return it->second;
                           });
  const std::vector<std::uint32_t>& qs = names.slots;
  if (qs.empty()) return out;
  // Workers poll these queues now (ym_queue_last_poll_timestamp_seconds).
  const std::int64_t polled_at = clock_.NowMs();
  for (std::uint32_t qi : qs) {
    if (Q(qi).last_poll_ms != polled_at) {
      Q(qi).last_poll_ms = polled_at;
      MarkChanged(qi);
    }
  }
  const std::int64_t lease_ms = request.lease_ms.value_or(0);
  std::optional<LeaseScope> scope;
  if (request.namespaces) {
    scope = LeaseScope::Resolve(*request.namespaces,
                                [this](const std::string& name) { return ns_.Find(name); });
    if (scope->empty()) return out;  // none of its namespaces has a job in core
  }
  const LeaseScope* only = scope ? &*scope : nullptr;
  if (qs.size() == 1) {
    TakeFromQueue(qs[0], request.max, lease_ms, request.worker_id, out, only);
    return out;
  }
  // Several queues: weighted fair queueing between them, one job at a time, with the state of
  // this list of queues kept between leases (every worker naming the same queues shares it).
  auto it = lease_sets_.find(names.slots_key);
  if (it == lease_sets_.end()) {
    if (lease_sets_.size() >= kMaxLeaseSets) lease_sets_.clear();
    it = lease_sets_.try_emplace(names.slots_key).first;
  }
  flow::WeightedRotation& rot = it->second.rotation;
  std::vector<std::int64_t>& in = it->second.in;
  in.resize(qs.size(), 0);
  // A queue with ready jobs is in the rotation with its weight now; others are out. O(queues
  // named), like reading the request.
  for (std::size_t k = 0; k < qs.size(); ++k) {
    const bool ready = HasReady(qs[k]);
    const std::int64_t w = Q(qs[k]).config.weight;
    if (ready && in[k] == 0) {
      (void)rot.Add(k, w);
    } else if (!ready && in[k] != 0) {
      (void)rot.Remove(k);
    } else if (ready && in[k] != w) {
      (void)rot.SetWeight(k, w);
    }
    in[k] = ready ? w : 0;
  }
  while (out.size() < request.max) {
    const std::optional<flow::WeightedRotation::LaneId> k = rot.Peek();
    if (!k) break;
    const std::size_t before = out.size();
    TakeFromQueue(qs[*k], 1, lease_ms, request.worker_id, out, only);
    if (out.size() > before) {
      (void)rot.Pick();  // charged one job
      if (HasReady(qs[*k])) continue;
    }
    // Empty, or nothing admissible there now: out until the next lease, uncharged.
    (void)rot.Remove(*k);
    in[*k] = 0;
  }
  return out;
}

void Scheduler::AddWaiter(LeaseRequest request, std::int64_t deadline_mono_ms,
                          LeaseCallback callback) {
  Waiter w;
  for (const auto& name : request.queues) w.queues.push_back(QueueIndex(name));
  w.request = std::move(request);
  w.callback = std::move(callback);
  const std::uint64_t id = next_waiter_id_++;
  const std::int64_t polled_at = clock_.NowMs();
  for (std::uint32_t qi : w.queues) {
    QueueState& q = Q(qi);
    q.last_poll_ms = polled_at;  // a queue the lease did not find yet is polled too
    q.waiters.push_back(id);
    ++q.live_waiters;
    MarkChanged(qi);
  }
  waiters_.emplace(id, std::move(w));
  waiter_deadlines_.push(TimerEntry{deadline_mono_ms, id, 0});
}

void Scheduler::RemoveWaiter(std::unordered_map<std::uint64_t, Waiter>::iterator it) {
  std::vector<std::uint32_t> queues = std::move(it->second.queues);
  waiters_.erase(it);
  for (std::uint32_t qi : queues) {
    QueueState& q = Q(qi);
    --q.live_waiters;
    MarkChanged(qi);
    MaybeCompactQueueWaiters(q);
  }
}

void Scheduler::ServeWaiters(std::uint32_t qi) {
  QueueState& q = Q(qi);
  // Waiters limited to namespaces that found nothing of theirs go to the back and wait on; the
  // pass ends once each waiter left has been tried.
  std::size_t passed = 0;
  while (!q.waiters.empty() && HasReady(qi) && passed < q.waiters.size()) {
    auto it = waiters_.find(q.waiters.front());
    if (it == waiters_.end()) {  // served or timed out through another queue
      q.waiters.pop_front();
      continue;
    }
    std::vector<LeasedJob> jobs = Lease(it->second.request);
    if (jobs.empty() && it->second.request.namespaces) {
      const std::uint64_t id = q.waiters.front();
      q.waiters.pop_front();
      q.waiters.push_back(id);
      ++passed;
      continue;
    }
    if (jobs.empty()) break;
    q.waiters.pop_front();
    LeaseCallback cb = std::move(it->second.callback);
    RemoveWaiter(it);
    cb(std::move(jobs));
  }
  // Entries of waiters that are gone pile up only while nothing is ready; trim them then.
  while (!q.waiters.empty() && !waiters_.count(q.waiters.front())) q.waiters.pop_front();
}

void Scheduler::Release(JobId id, std::uint64_t token) {
  LiveJob* job = index_.Find(id);
  if (!job || job->state != JobState::kActive || job->lease_token != token || job->evicting) {
    return;
  }
  LeaveState(*job);
  --job->attempts;  // the worker never saw it
  job->lease_token = 0;
  SetWorker(*job, 0);
  if (job->cancel_requested) {
    // A cancel was accepted while this lease was on its way, and the lease never reached a
    // worker: nothing runs the job, so the cancel completes now. Back to ready, it would run
    // and could succeed after the cancel was answered 2xx.
    job->updated_at_ms = clock_.NowMs();
    Finish(*job, JobState::kCancelled, "", "");
    WakeLanes();
    return;
  }
  if (job->attempts == 0 && limits_.keyed_modes() > 0) {
    // Not started after all: it waits in its debounce groups again, unless a newer job arrived
    // there while it was out, which replaces it (only the newest not-started job is kept).
    if (auto newer = key_groups_.Rejoin(KeyGatesOf(*job), job->id, clock_.NowMs())) {
      job->updated_at_ms = clock_.NowMs();
      Finish(*job, JobState::kCancelled, flow::SupersededReason(*newer), "");
      WakeLanes();
      return;
    }
  }
  MakeReady(*job);
  RecordLease(*job);  // un-counts the attempt in the store too, and clears the lease
  ServeWaiters(job->queue);
  WakeLanes();
}

Result<LiveJob*> Scheduler::FindLeased(JobId id, std::uint64_t token) {
  LiveJob* job = index_.Find(id);
  if (!job) {
    if (!Issued(id)) return NotFound("job " + FormatJobId(id) + " not found");
    // It existed: it finished (and may have been removed by retention) or was never leased
    // under this token. Either way the caller's lease is not current.
    return StaleLease("job " + FormatJobId(id) + " is not active");
  }
  if (job->state != JobState::kActive || job->evicting || job->lease_token != token) {
    return StaleLease("job " + FormatJobId(id) + " is " + std::string(StateName(job->state)) +
                      (job->state == JobState::kActive ? " under another lease" : ""));
  }
  if (AttemptTimeout::Due(job->deadline_ms, clock_.MonoMs())) {
    // The deadline passed before the timer fired: the attempt is over whatever the worker says
    // now, exactly as if the timer had run first.
    const std::int64_t timeout_ms = job->timeout_ms;
    if (TimeOut(*job) == JobState::kReady) ServeWaiters(job->queue);
    return StaleLease("job " + FormatJobId(id) + ": the attempt exceeded its timeout of " +
                      std::to_string(timeout_ms) + " ms");
  }
  return job;
}

Result<HeartbeatOutcome> Scheduler::Heartbeat(JobId id, std::uint64_t token, std::int64_t extend_ms,
                                              const std::optional<std::string>& progress) {
  auto found = FindLeased(id, token);
  if (!found.ok()) {
    WakeLanes();  // FindLeased may have timed the attempt out
    return found.status();
  }
  LiveJob& job = **found;
  if (extend_ms != 0 && (extend_ms < options_.min_lease_ms || extend_ms > options_.max_lease_ms)) {
    return Validation("field \"extend_ms\": must be " + std::to_string(options_.min_lease_ms) +
                      ".." + std::to_string(options_.max_lease_ms));
  }
  if (progress) job.Extra().progress = *progress;
  const std::int64_t now = clock_.NowMs();
  const std::int64_t mono = clock_.MonoMs();
  // Never past the attempt's deadline: a heartbeat cannot keep a job beyond its timeout.
  const std::int64_t expires =
      AttemptTimeout::Cap(mono + (extend_ms > 0 ? extend_ms : job.lease_ms), job.deadline_ms);
  const std::int64_t length = expires - mono;
  // Lease heap entries are re-pushed lazily when they fire early (see ExpireLeases), so a
  // heartbeat that extends costs O(1); only a shortening needs a new, earlier entry.
  if (expires < job.lease_expires_ms) leases_.push(TimerEntry{expires, token, id});
  job.lease_expires_ms = expires;
  job.lease_length_ms = static_cast<std::int32_t>(length);
  job.updated_at_ms = now;
  HeartbeatOutcome out{WallOf(expires), job.cancel_requested, false};
  // Lazy persistence: write the extension only when the durable expiry would lapse within half
  // of the lease length from now (or a shortening made it too late). A worker that beats at
  // least every half lease (the SDKs beat every third) therefore never finds its lease expired
  // after a server crash, and a steady beat costs a write about every other beat, not each.
  if (job.lease_durable_ms != expires &&
      (job.lease_durable_ms - mono < length / 2 || job.lease_durable_ms > expires)) {
    RecordLease(job);
    out.persisted = true;
  }
  return out;
}

Status Scheduler::AddEndWait(JobId id, std::int64_t deadline_mono_ms, EndWaits::Callback callback) {
  const LiveJob* job = index_.Find(id);
  if (!job || job->evicting) return NotFound("job " + FormatJobId(id) + " is not live");
  return end_waits_.Add(id, deadline_mono_ms, std::move(callback));
}

Status Scheduler::AddCancelWatch(const std::string& worker_id, std::vector<JobId> known,
                                 std::int64_t deadline_mono_ms, CancelWatches::Callback callback) {
  return cancel_watches_.Add(worker_id, std::move(known), deadline_mono_ms, std::move(callback));
}

Result<JobState> Scheduler::Ack(JobId id, std::uint64_t token, const std::string& result) {
  LiveJob* job = index_.Find(id);
  // A repeated ack (the worker retried after losing the first reply) is answered the same way
  // while the job is still in memory.
  if (job && job->evicting && job->state == JobState::kSucceeded && job->lease_token == token) {
    return JobState::kSucceeded;
  }
  auto found = FindLeased(id, token);
  if (!found.ok()) {
    WakeLanes();  // FindLeased may have timed the attempt out
    return found.status();
  }
  ObserveRun(options_.job_stats, clock_, **found);
  LeaveState(**found, flow::BreakerOutcome::kSuccess);
  Finish(**found, JobState::kSucceeded, "", result);
  WakeLanes();
  return JobState::kSucceeded;
}

Result<JobState> Scheduler::Fail(JobId id, std::uint64_t token, const FailSpec& error) {
  if (error.retry_in_ms && (*error.retry_in_ms < 0 || *error.retry_in_ms > kMaxDelayMs)) {
    return Validation("field \"retry_in_ms\": must be 0.." + std::to_string(kMaxDelayMs));
  }
  auto found = FindLeased(id, token);
  if (!found.ok()) {
    WakeLanes();  // FindLeased may have timed the attempt out
    return found.status();
  }
  LiveJob& job = **found;
  CountEvent(options_.job_stats, job, JobEvent::kFailed);
  const JobState s = FailAttempt(job, error);
  if (s == JobState::kReady) ServeWaiters(job.queue);
  WakeLanes();
  return s;
}

Result<JobView> Scheduler::Cancel(JobId id) {
  LiveJob* job = index_.Find(id);
  if (!job) return NotFound("job " + FormatJobId(id) + " is not live");
  if (job->evicting) {
    if (job->state == JobState::kCancelled) return ToView(*job);
    return InvalidState("job " + FormatJobId(id) + " is " + std::string(StateName(job->state)) +
                        "; terminal states never change");
  }
  CancelLive(*job);
  return ToView(*job);
}

void Scheduler::CancelLive(LiveJob& job) {
  if (job.state == JobState::kActive) {
    if (!job.cancel_requested) {
      job.cancel_requested = true;
      job.updated_at_ms = clock_.NowMs();
      RecordUpdate(job);
      // Its worker's cancel watch hears of it now, not at the next heartbeat.
      cancel_watches_.Requested(workers_.Name(job.worker), job.id);
    }
    return;
  }
  LeaveState(job);
  Finish(job, JobState::kCancelled, "", "");
}

bool Scheduler::IsLive(JobId id) const { return index_.Find(id) != nullptr; }

namespace {

Status NotReplayable(JobId id, JobState state, bool dead_only) {
  return InvalidState("job " + FormatJobId(id) + " is " + std::string(StateName(state)) +
                      (dead_only ? "; only dead jobs are replayed here"
                                 : "; only dead or cancelled jobs can be replayed"));
}

bool Replayable(JobState state, bool dead_only) {
  return state == JobState::kDead || (!dead_only && state == JobState::kCancelled);
}

}  // namespace

std::optional<Result<JobView>> Scheduler::ReplayInCore(JobId id, bool dead_only) {
  LiveJob* job = index_.Find(id);
  if (!job) {
    if (!Issued(id)) return Result<JobView>(NotFound("job " + FormatJobId(id) + " not found"));
    return std::nullopt;
  }
  if (!job->evicting || !Replayable(job->state, dead_only)) {
    return Result<JobView>(NotReplayable(id, job->state, dead_only));
  }
  // Terminal, and its terminal write is still on its way to disk: core has the whole job, so the
  // new run starts from memory. Its write goes into the open batch, after the terminal one.
  const std::int64_t now = clock_.NowMs();
  // A new run is an arrival for singleton and debounce (docs/flow-control.md): a singleton
  // refuses it (either mode: a replay has no job to answer instead) while another job holds the
  // key; a debounce makes it the group's newest waiting job.
  std::vector<flow::KeyGate> key_gates;
  flow::KeyDecision keys;
  if (limits_.keyed_modes() > 0) key_gates = KeyGatesOf(*job);
  if (!key_gates.empty()) {
    keys = key_groups_.Decide(key_gates, now, now);
    if (keys.verdict != flow::KeyDecision::Verdict::kAdmit) {
      return Result<JobView>(KeyRefusal(keys, key_gates));
    }
  }
  job->evicting = false;     // OnCommitted's eviction of the terminal batch skips it
  CountLive(job->ns, true);  // live again (a replay is an operator's act: no namespace check)
  CountEvent(options_.job_stats, *job, JobEvent::kEnqueued);  // a new run
  job->pending = true;
  job->state = JobState::kReady;
  job->attempts = 0;
  job->runs += 1;
  job->run_at_ms = now;
  job->updated_at_ms = now;
  job->cancel_requested = false;
  job->retry_wait = false;
  job->lease_token = 0;
  job->worker = 0;
  if (!key_gates.empty()) {
    job->run_at_ms = keys.run_at_ms;
    if (job->run_at_ms > now) job->state = JobState::kScheduled;
    for (JobId w : keys.superseded) Supersede(w, id);
    key_groups_.Join(key_gates, id, keys);
  }
  RecordUpdate(*job);
  open_promote_.push_back(id);
  return Result<JobView>(ToView(*job));
}

std::optional<Result<JobView>> Scheduler::ReplayStored(const ReadTicket& ticket, JobId id,
                                                       std::optional<JobRecord>&& stored,
                                                       bool dead_only) {
  // Core's own view first: if it holds the job now (replayed meanwhile), that is the truth.
  if (const LiveJob* live = index_.Find(id)) {
    if (!live->evicting) return Result<JobView>(NotReplayable(id, live->state, dead_only));
    return ReplayInCore(id, dead_only);
  }
  if (guard_.MaybeStale(ticket, id)) return std::nullopt;
  if (!stored) return Result<JobView>(NotFound("job " + FormatJobId(id) + " not found"));
  if (!IsTerminal(stored->state)) {
    // Should not happen: every stored live job is in core (recovery loads them all), and a read
    // that raced a change is caught by the guard above.
    return Result<JobView>(Internal("job " + FormatJobId(id) + " is stored as " +
                                    std::string(StateName(stored->state)) +
                                    " but is not live in core"));
  }
  if (!Replayable(stored->state, dead_only)) {
    return Result<JobView>(NotReplayable(id, stored->state, dead_only));
  }
  return NewRunOf(std::move(*stored));
}

Result<JobView> Scheduler::NewRunOf(JobRecord&& stored) {
  const std::int64_t now = clock_.NowMs();
  // An arrival for singleton and debounce, as in ReplayInCore.
  std::vector<flow::KeyGate> key_gates;
  flow::KeyDecision keys;
  if (limits_.keyed_modes() > 0) {
    key_gates = limits_.KeyGates(flow::LimitSubject{stored.queue, stored.kind, stored.ns,
                                                    stored.concurrency_key, stored.payload});
  }
  if (!key_gates.empty()) {
    keys = key_groups_.Decide(key_gates, now, now);
    if (keys.verdict != flow::KeyDecision::Verdict::kAdmit) return KeyRefusal(keys, key_gates);
  }
  stored.attempts = 0;
  stored.runs += 1;
  stored.run_at_ms = key_gates.empty() ? now : keys.run_at_ms;
  stored.state = stored.run_at_ms > now ? JobState::kScheduled : JobState::kReady;
  stored.updated_at_ms = now;
  stored.finished_at_ms = 0;
  stored.dead_reason.clear();
  stored.result.clear();
  stored.cancel_requested = false;
  stored.lease_token = 0;
  stored.lease_expires_at_ms = 0;
  stored.worker_id.clear();
  QueueIndex(stored.queue);
  // UpdateJob does not rewrite the payload: keep it out of the batch's copy.
  std::string payload = std::move(stored.payload);
  open_.mutations.push_back(UpdateJob{stored});
  stored.payload = std::move(payload);
  LiveJob* job = AddJob(std::move(stored), /*pending=*/true);
  CountEvent(options_.job_stats, *job, JobEvent::kEnqueued);  // a new run
  open_promote_.push_back(job->id);
  if (!key_gates.empty()) {
    for (JobId w : keys.superseded) Supersede(w, job->id);
    key_groups_.Join(key_gates, job->id, keys);
  }
  return ToView(*job);
}

std::optional<Result<JobView>> Scheduler::CancelStored(const ReadTicket& ticket, JobId id,
                                                       std::optional<JobRecord>&& stored) {
  if (IsLive(id)) return Cancel(id);
  if (guard_.MaybeStale(ticket, id)) return std::nullopt;
  if (!stored) return Result<JobView>(NotFound("job " + FormatJobId(id) + " not found"));
  if (!IsTerminal(stored->state)) {
    // Should not happen, as in ReplayStored.
    return Result<JobView>(Internal("job " + FormatJobId(id) + " is stored as " +
                                    std::string(StateName(stored->state)) +
                                    " but is not live in core"));
  }
  if (stored->state != JobState::kCancelled) {
    return Result<JobView>(InvalidState("job " + FormatJobId(id) + " is " +
                                        std::string(StateName(stored->state)) +
                                        "; terminal states never change"));
  }
  JobView v;
  v.job = std::move(*stored);
  return Result<JobView>(std::move(v));
}

// --- Bulk operations ------------------------------------------------------------------------

JobId Scheduler::CancelMatching(const JobFilter& filter, JobId after, std::uint32_t max_matched,
                                std::uint64_t budget, bool dry_run, BulkOutcome& out,
                                std::uint64_t* examined) {
  const std::optional<JobFilter::LiveNames> names = ResolveFilter(filter);
  if (!names || max_matched == 0) return 0;
  // Collected first, decided after the scan: a decision changes the job (and the index scan
  // must not see it half-way).
  std::vector<JobId> matched;
  const JobId resume = index_.Scan(after, budget, [&](LiveJob& j) {
    ++*examined;
    // An ending job (terminal in memory) is no longer live; the narrowed filter's states are
    // live ones, so Matches skips it too.
    if (j.evicting || !filter.Matches(j, *names)) return true;
    matched.push_back(j.id);
    return matched.size() < max_matched;
  });
  out.matched += matched.size();
  if (!dry_run) {
    for (JobId id : matched) {
      LiveJob* job = index_.Find(id);
      if (job == nullptr || job->evicting || IsTerminal(job->state) ||
          (job->state == JobState::kActive && job->cancel_requested)) {
        ++out.skipped;
        continue;
      }
      const bool active = job->state == JobState::kActive;
      CancelLive(*job);
      ++out.applied;
      if (active) ++out.cancel_requested;
    }
  }
  if (matched.size() >= max_matched) return matched.back();
  return resume;
}

Scheduler::BulkVerdict Scheduler::BulkReplayStored(const ReadTicket& ticket, JobId id,
                                                   std::optional<JobRecord>&& stored,
                                                   const JobFilter& filter) {
  if (const LiveJob* live = index_.Find(id)) {
    // Live: not replayable now (a retried request finds the run it started here). Ending: its
    // final row is on its way to the store; decide on that once it is there.
    return live->evicting ? BulkVerdict::kReadAgain : BulkVerdict::kSkipped;
  }
  if (guard_.MaybeStale(ticket, id)) return BulkVerdict::kReadAgain;
  // The listed row may have changed before this read (a re-read): the filter is checked on the
  // record decided on, not on the one listed.
  if (!stored || !IsTerminal(stored->state) || !filter.Matches(*stored) ||
      !Replayable(stored->state, /*dead_only=*/false)) {
    return BulkVerdict::kSkipped;
  }
  // A singleton limit refuses a new run while another job holds the key: skipped.
  if (!NewRunOf(std::move(*stored)).ok()) return BulkVerdict::kSkipped;
  return BulkVerdict::kApplied;
}

Scheduler::BulkVerdict Scheduler::BulkDeleteStored(const ReadTicket& ticket, JobId id,
                                                   const std::optional<JobRecord>& stored,
                                                   const JobFilter& filter) {
  if (const LiveJob* live = index_.Find(id)) {
    return live->evicting ? BulkVerdict::kReadAgain : BulkVerdict::kSkipped;
  }
  if (guard_.MaybeStale(ticket, id)) return BulkVerdict::kReadAgain;
  if (!stored || !IsTerminal(stored->state) || !filter.Matches(*stored)) {
    return BulkVerdict::kSkipped;
  }
  open_.mutations.push_back(DeleteJob{id});
  // A replay or cancel whose read of this row is in flight, or starts before this batch is
  // durable, must not act on it: the guard makes that record stale.
  guard_.OnDeleted(id, next_batch_seq_);
  return BulkVerdict::kApplied;
}

// --- Reads ----------------------------------------------------------------------------------

JobRecord Scheduler::ToRecord(const LiveJob& job, bool with_payload) const {
  JobRecord r;
  r.id = job.id;
  r.ns = ns_.Name(job.ns);
  r.queue = Q(job.queue).config.name;
  r.kind = kinds_.Name(job.kind);
  r.state = job.state;
  r.priority = job.priority;
  if (with_payload) r.payload = job.payload;
  r.run_at_ms = job.run_at_ms;
  r.created_at_ms = job.created_at_ms;
  r.updated_at_ms = job.updated_at_ms;
  r.finished_at_ms = IsTerminal(job.state) ? job.updated_at_ms : 0;
  r.attempts = job.attempts;
  r.max_attempts = job.max_attempts;
  r.runs = job.runs;
  r.lease_ms = job.lease_ms;
  r.timeout_ms = job.timeout_ms;
  r.cancel_requested = job.cancel_requested;
  if (job.state == JobState::kActive && !job.evicting) {
    r.lease_token = job.lease_token;
    r.lease_expires_at_ms = WallOf(job.lease_expires_ms);
    r.worker_id = workers_.Name(job.worker);
    if (job.deadline_ms != 0) r.lease_deadline_at_ms = WallOf(job.deadline_ms);
  }
  r.backoff =
      (job.extra && job.extra->has_backoff) ? job.extra->backoff : Q(job.queue).config.backoff;
  if (job.extra) {
    r.idempotency_key = job.extra->idempotency_key;
    r.concurrency_key = job.extra->concurrency_key;
    r.tags = job.extra->tags;
    r.errors = job.extra->errors;
  }
  // Not for the store's UpdateJob records (with_payload false): the store writes the origin
  // once, with the insert, and an update never names it, so copying it would only cost an
  // allocation per state change.
  if (with_payload && !job.origin.empty()) {
    r.trace = job.origin.trace();
    r.request_id = job.origin.request_id();
  }
  return r;
}

JobView Scheduler::ToView(const LiveJob& job) const {
  JobView v;
  v.job = ToRecord(job, /*with_payload=*/true);
  const QueueState& q = Q(job.queue);
  if (job.state == JobState::kActive && !job.evicting) {
    v.lease = LeaseInfo{job.lease_token, WallOf(job.lease_expires_ms), workers_.Name(job.worker),
                        job.deadline_ms != 0 ? WallOf(job.deadline_ms) : 0};
    if (job.extra) v.progress = job.extra->progress;
  } else if (!job.evicting && !job.pending) {
    if (job.state == JobState::kScheduled) {
      v.blocked_reason = job.retry_wait  ? "retry_backoff"
                         : job.debounced ? "debounced"
                                         : "scheduled";
      v.blocked_until_ms = job.run_at_ms;
    } else if (job.state == JobState::kReady) {
      if (q.config.paused) {
        v.blocked_reason = "paused";
      } else if (NsAtMaxActive(job.ns)) {
        v.blocked_reason = "namespace_limit";
      } else if (auto refused = LaneBlocked(job.gates)) {
        v.blocked_reason = std::string(flow::BlockReason(refused->why));
        v.blocked_until_ms = OpensAt(*refused);
      } else if (q.live_waiters == 0) {
        v.blocked_reason = "no_workers";
      }
    }
  }
  return v;
}

std::optional<JobView> Scheduler::Get(JobId id) const {
  const LiveJob* job = index_.Find(id);
  if (!job) return std::nullopt;
  return ToView(*job);
}

std::optional<JobFilter::LiveNames> Scheduler::ResolveFilter(const JobFilter& filter) const {
  JobFilter::LiveNames names;
  if (!filter.queue.empty()) {
    auto it = queue_ids_.find(filter.queue);
    if (it == queue_ids_.end()) return std::nullopt;
    names.queue = it->second;
  }
  if (!filter.ns.empty()) {
    names.ns = ns_.Find(filter.ns);
    if (!names.ns) return std::nullopt;
  }
  if (!filter.kind.empty()) {
    names.kind = kinds_.Find(filter.kind);
    if (!names.kind) return std::nullopt;
  }
  return names;
}

JobPage Scheduler::ListLive(const ListQuery& query) const {
  JobPage page;
  const std::optional<JobFilter::LiveNames> names = ResolveFilter(query.filter);
  if (!names) return page;
  const std::uint32_t limit = std::max<std::uint32_t>(query.limit, 1);
  JobId last_taken = 0;
  std::size_t bytes = 0;
  bool full = false;
  const JobId resume = index_.Scan(query.after_id, options_.list_scan_budget, [&](LiveJob& j) {
    if (!query.filter.Matches(j, *names)) return true;
    page.items.push_back(ToView(j));
    last_taken = j.id;
    bytes += j.payload.size();
    full = page.items.size() >= limit || bytes >= query.max_bytes;
    return !full;
  });
  if (resume == 0 && !full) {
    page.next_after_id = 0;
  } else if (full) {
    page.next_after_id = last_taken;
  } else {
    page.next_after_id = resume;
  }
  return page;
}

QueueInfo Scheduler::ToQueueInfo(std::uint32_t qi) const {
  const QueueState& q = Q(qi);
  QueueInfo info;
  info.config = q.config;
  info.counts["scheduled"] = q.scheduled;
  info.counts["ready"] = q.ready;
  info.counts["active"] = q.active;
  const std::array<std::uint64_t, kBlockedReasonCount> blocked = BlockedCounts(q);
  for (std::size_t i = 0; i < kBlockedReasonCount; ++i) {
    info.blocked[kBlockedReasons[i]] = blocked[i];
  }
  info.oldest_ready_age_ms = OldestReadyAge(q);
  info.waiting_workers = q.live_waiters;
  return info;
}

std::array<std::uint64_t, kBlockedReasonCount> Scheduler::BlockedCounts(const QueueState& q) const {
  std::array<std::uint64_t, kBlockedReasonCount> b{};
  b[BlockedIndex("scheduled")] = q.scheduled - q.retry_waiting - q.debounced;
  b[BlockedIndex("debounced")] = q.debounced;
  b[BlockedIndex("retry_backoff")] = q.retry_waiting;
  if (q.config.paused) {
    b[BlockedIndex("paused")] = q.ready;
    return b;
  }
  // O(lanes): every ready job is in exactly one lane, and all of a lane's jobs share its gates,
  // so they are blocked (or not) together.
  for (const Lane& lane : q.lanes) {
    if (lane.ready_count == 0) continue;
    if (NsAtMaxActive(lane.ns)) {
      b[BlockedIndex("namespace_limit")] += lane.ready_count;
    } else if (auto refused = LaneBlocked(lane.gates)) {
      b[BlockedIndex(flow::BlockReason(refused->why))] += lane.ready_count;
    } else if (q.live_waiters == 0) {
      b[BlockedIndex("no_workers")] += lane.ready_count;
    }
  }
  return b;
}

std::int64_t Scheduler::OldestReadyAge(const QueueState& q) const {
  for (const FifoEntry& e : q.ready_fifo) {
    const LiveJob* j = index_.Find(e.id);
    if (j && j->state == JobState::kReady && j->seq == e.seq && !j->evicting) {
      return std::max<std::int64_t>(clock_.NowMs() - j->updated_at_ms, 0);
    }
  }
  return 0;
}

Scheduler::QueueGaugeValues Scheduler::ToGaugeValues(std::uint32_t qi) const {
  const QueueState& q = Q(qi);
  QueueGaugeValues v;
  v.name = q.config.name;
  v.scheduled = q.scheduled;
  v.ready = q.ready;
  v.active = q.active;
  v.oldest_ready_age_ms = OldestReadyAge(q);
  v.waiting_workers = q.live_waiters;
  v.paused = q.config.paused;
  v.blocked = BlockedCounts(q);
  v.last_poll_ms = q.last_poll_ms;
  return v;
}

std::vector<QueueInfo> Scheduler::QueuesPage(const std::string& after, std::uint32_t limit,
                                             bool* more) const {
  std::vector<QueueInfo> out;
  auto it = queue_ids_.upper_bound(after);
  for (; it != queue_ids_.end() && out.size() < limit; ++it) out.push_back(ToQueueInfo(it->second));
  *more = it != queue_ids_.end();
  return out;
}

std::optional<QueueInfo> Scheduler::Queue(const std::string& name) const {
  auto it = queue_ids_.find(name);
  if (it == queue_ids_.end()) return std::nullopt;
  return ToQueueInfo(it->second);
}

Result<QueueInfo> Scheduler::PutQueue(const QueueConfigPatch& patch) {
  if (!IsValidName(patch.name)) return Validation("queue name: invalid name");
  if (patch.max_attempts &&
      (*patch.max_attempts < 1 || *patch.max_attempts > options_.max_max_attempts)) {
    return Validation("field \"max_attempts\": must be 1.." +
                      std::to_string(options_.max_max_attempts));
  }
  if (patch.lease_ms &&
      (*patch.lease_ms < options_.min_lease_ms || *patch.lease_ms > options_.max_lease_ms)) {
    return Validation("field \"lease_ms\": must be " + std::to_string(options_.min_lease_ms) +
                      ".." + std::to_string(options_.max_lease_ms));
  }
  if (patch.backoff) YM_RETURN_IF_ERROR(CheckBackoff(*patch.backoff, "backoff"));
  if (patch.timeout_ms) {
    YM_RETURN_IF_ERROR(AttemptTimeout::Check(*patch.timeout_ms, "timeout_ms"));
  }
  if (patch.retention) YM_RETURN_IF_ERROR(CheckRetention(*patch.retention));
  if (patch.weight) {
    if (Status s = flow::WeightedRotation::ValidateWeight(*patch.weight); !s.ok()) {
      return Validation("field \"weight\": " + s.message());
    }
  }
  const std::uint32_t qi = QueueIndex(patch.name);
  QueueConfig& c = Q(qi).config;
  const bool was_paused = c.paused;
  if (patch.paused) c.paused = *patch.paused;
  if (patch.max_attempts) c.max_attempts = *patch.max_attempts;
  if (patch.lease_ms) c.lease_ms = *patch.lease_ms;
  if (patch.timeout_ms) c.timeout_ms = *patch.timeout_ms;
  if (patch.backoff) c.backoff = *patch.backoff;
  if (patch.retention) c.retention = *patch.retention;
  if (patch.weight) c.weight = *patch.weight;
  Q(qi).persisted = true;
  if (patch.retention) retention_.Recheck(c.name, clock_.NowMs(), retention_policy_);
  MarkChanged(qi);
  open_.mutations.push_back(::ym::PutQueue{c});
  if (was_paused && !c.paused) ServeWaiters(qi);
  return ToQueueInfo(qi);
}

std::optional<QueueInfo> Scheduler::ResetQueue(const std::string& name) {
  auto it = queue_ids_.find(name);
  if (it == queue_ids_.end()) return std::nullopt;
  const std::uint32_t qi = it->second;
  QueueState& q = Q(qi);
  if (q.persisted) {
    const bool was_paused = q.config.paused;
    q.config.paused = false;
    q.config.max_attempts = options_.default_max_attempts;
    q.config.lease_ms = options_.default_lease_ms;
    q.config.timeout_ms = options_.default_timeout_ms;
    q.config.backoff = options_.default_backoff;
    q.config.retention = options_.default_retention;
    q.config.weight = 1;
    q.persisted = false;
    retention_.Recheck(name, clock_.NowMs(), retention_policy_);
    q.idle_sweeps = 0;  // freed at the second sweep from now that finds it unused
    MarkChanged(qi);
    open_.mutations.push_back(DeleteQueue{name});
    if (was_paused) ServeWaiters(qi);
  }
  return ToQueueInfo(qi);
}

// --- Time -----------------------------------------------------------------------------------

std::int64_t Scheduler::NextDeadlineInMs() const {
  const std::int64_t mono = clock_.MonoMs();
  std::int64_t next = next_sweep_ms_ - mono;
  if (retention_.has_due() || ns_retention_.has_due()) {
    next = std::min(next, next_purge_ms_ - mono);
  }
  if (!timers_.empty()) next = std::min(next, timers_.top().due_ms - clock_.NowMs());
  if (!leases_.empty()) next = std::min(next, leases_.top().due_ms - mono);
  if (!waiter_deadlines_.empty()) next = std::min(next, waiter_deadlines_.top().due_ms - mono);
  if (auto d = end_waits_.NextDeadline()) next = std::min(next, *d - mono);
  if (auto d = cancel_watches_.NextDeadline()) next = std::min(next, *d - mono);
  if (!rate_timers_.empty()) next = std::min(next, rate_timers_.top().due - mono);
  if (!quota_timers_.empty()) next = std::min(next, quota_timers_.top().due - clock_.NowMs());
  if (!circuit_timers_.empty()) next = std::min(next, circuit_timers_.top().due - mono);
  if (auto d = schedules_.EarliestTimer()) {
    const std::int64_t now = clock_.NowMs();
    next = std::min(next, *d <= now ? 0 : *d - now);
  }
  return std::max<std::int64_t>(next, 0);
}

void Scheduler::FireLaneTimers(std::int64_t mono, std::int64_t wall) {
  struct Source {
    LaneTimerHeap* heap;
    std::int64_t now;
    flow::Block why;
  };
  for (const Source& src : {Source{&rate_timers_, mono, flow::Block::kRate},
                            Source{&quota_timers_, wall, flow::Block::kQuota},
                            Source{&circuit_timers_, mono, flow::Block::kCircuit}}) {
    while (!src.heap->empty() && src.heap->top().due <= src.now) {
      const LaneTimer t = src.heap->top();
      src.heap->pop();
      if (TimedLaneWaits(t, src.why)) woken_.push_back(t.lane);  // else stale: skipped
    }
  }
}

bool Scheduler::TimedLaneWaits(const LaneTimer& t, flow::Block why) const {
  if (t.lane.queue >= queues_.size() || !queues_[t.lane.queue]) return false;
  const QueueState& q = Q(t.lane.queue);
  auto it = q.lane_of_key.find(LaneKey(t.lane.ns, t.lane.set));
  if (it == q.lane_of_key.end()) return false;
  const Lane& lane = q.lanes[it->second];
  return lane.waiting && lane.wait_until == t.due && lane.wait_why == why;
}

std::optional<flow::Refusal> Scheduler::LaneBlocked(std::uint32_t gates) const {
  if (gates == flow::LimitSet::kNoGates) return std::nullopt;
  return limits_.Blocked(gates, clock_.MonoMs(), clock_.NowMs());
}

std::int64_t Scheduler::OpensAt(const flow::Refusal& r) const {
  switch (r.why) {
    case flow::Block::kRate:
      return WallOf(r.until);
    case flow::Block::kQuota:
      return r.until;
    case flow::Block::kCircuit:
      return r.until == flow::kNever ? 0 : WallOf(r.until);  // kNever: at the trial's outcome
    case flow::Block::kConcurrency:
      break;
  }
  return 0;
}

void Scheduler::ExpireLeases(std::int64_t now) {
  while (!leases_.empty() && leases_.top().due_ms <= now) {
    const TimerEntry e = leases_.top();
    leases_.pop();
    LiveJob* job = index_.Find(e.id);
    if (!job || job->state != JobState::kActive || job->evicting || job->lease_token != e.seq) {
      continue;
    }
    if (job->lease_expires_ms > now) {  // extended by heartbeats since this entry was pushed
      leases_.push(TimerEntry{job->lease_expires_ms, e.seq, e.id});
      continue;
    }
    if (AttemptTimeout::Due(job->deadline_ms, now)) {
      // The lease ran to the attempt's deadline: the attempt timed out (retried by backoff).
      if (TimeOut(*job) == JobState::kReady) ServeWaiters(job->queue);
      continue;
    }
    FailSpec expired;
    expired.type = "lease_expired";
    // The length of this lease as granted or last extended, which is not job->lease_ms when the
    // lease request or a heartbeat chose another one.
    expired.message = "lease of " + std::to_string(job->lease_length_ms) +
                      " ms expired without ack, fail or heartbeat";
    // An expired lease counts as a failed attempt but returns the job to `ready` at once
    // (docs/guarantees.md §4, the life-cycle diagram in core/job.h): the retry backoff is for
    // failures the job reported, not for a worker that vanished. Without this the job waited
    // in `scheduled` (`retry_backoff`) for a jittered backoff delay (up to an hour by default).
    expired.retry_in_ms = 0;
    CountEvent(options_.job_stats, *job, JobEvent::kLeaseExpired);
    NoteEvent(*job, JobEvent::kLeaseExpired, expired.type);
    if (FailAttempt(*job, expired) == JobState::kReady) ServeWaiters(job->queue);
  }
}

void Scheduler::Tick() {
  const std::int64_t now = clock_.NowMs();
  const std::int64_t mono = clock_.MonoMs();
  std::vector<std::uint32_t> touched;
  while (!timers_.empty() && timers_.top().due_ms <= now) {
    const TimerEntry e = timers_.top();
    timers_.pop();
    LiveJob* job = index_.Find(e.id);
    if (!job || job->state != JobState::kScheduled || job->seq != e.seq || job->evicting ||
        job->pending) {
      continue;
    }
    LeaveState(*job);
    MakeReady(*job);
    touched.push_back(job->queue);
  }
  ExpireLeases(mono);
  while (!waiter_deadlines_.empty() && waiter_deadlines_.top().due_ms <= mono) {
    const std::uint64_t wid = waiter_deadlines_.top().seq;
    waiter_deadlines_.pop();
    auto it = waiters_.find(wid);
    if (it == waiters_.end()) continue;
    LeaseCallback cb = std::move(it->second.callback);
    RemoveWaiter(it);
    cb({});
  }
  end_waits_.Expire(mono);
  cancel_watches_.Expire(mono);
  FireLaneTimers(mono, now);
  if (!schedules_.empty()) FireSchedules(now);
  if (mono >= next_sweep_ms_) {
    Sweep(now);
  } else if ((retention_.has_due() || ns_retention_.has_due()) && mono >= next_purge_ms_) {
    PlanPurges(now, options_.retention_purge_chunk);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (std::uint32_t qi : touched) ServeWaiters(qi);
  WakeLanes();
  MaybeCompactHeaps();
}

namespace {

// A heap or FIFO is rebuilt once it holds more than kStaleFactor times its valid entries plus
// kSlack: the rebuild is O(size) and leaves only valid entries, so at least (kStaleFactor - 1)
// times the valid count plus kSlack entries went stale (each an O(1) event) between two rebuilds.
constexpr std::size_t kStaleFactor = 2;
constexpr std::size_t kSlack = 64;

bool OverStaleBound(std::size_t size, std::uint64_t valid) {
  return size > kStaleFactor * valid + kSlack;
}

// Rebuilds a std::priority_queue keeping the entries for which keep(e) is true. O(n): the kept
// entries are heapified at once rather than pushed one by one.
template <typename Heap, typename Keep>
void RebuildHeap(Heap& heap, Keep&& keep) {
  struct Access : Heap {
    using Heap::c;
    using Heap::comp;
  };
  auto& c = heap.*(&Access::c);
  auto& comp = heap.*(&Access::comp);
  c.erase(std::remove_if(c.begin(), c.end(), [&](const auto& e) { return !keep(e); }), c.end());
  c.shrink_to_fit();
  std::make_heap(c.begin(), c.end(), comp);
}

}  // namespace

void Scheduler::MaybeCompactLane(Lane& lane) {
  if (!OverStaleBound(lane.ready.size(), lane.ready_count)) return;
  RebuildHeap(lane.ready, [&](const ReadyEntry& e) {
    const LiveJob* j = index_.Find(e.id);
    return j && j->state == JobState::kReady && j->seq == e.seq && !j->evicting && !j->pending;
  });
}

void Scheduler::MaybeCompactFifo(QueueState& q) {
  if (!OverStaleBound(q.ready_fifo.size(), q.ready)) return;
  q.ready_fifo.Filter([&](const FifoEntry& e) {
    const LiveJob* j = index_.Find(e.id);
    return j && j->state == JobState::kReady && j->seq == e.seq && !j->evicting && !j->pending;
  });
}

void Scheduler::MaybeCompactQueueWaiters(QueueState& q) {
  if (!OverStaleBound(q.waiters.size(), q.live_waiters)) return;
  q.waiters.Filter([&](std::uint64_t id) { return waiters_.count(id) > 0; });
}

void Scheduler::MaybeCompactHeaps() {
  if (OverStaleBound(timers_.size(), scheduled_total_)) {
    RebuildHeap(timers_, [&](const TimerEntry& e) {
      const LiveJob* j = index_.Find(e.id);
      return j && j->state == JobState::kScheduled && j->seq == e.seq && !j->evicting &&
             !j->pending;
    });
  }
  if (OverStaleBound(leases_.size(), active_total_)) {
    // One entry per active job is enough (ExpireLeases re-pushes an entry that fires before the
    // job's current expiry), so duplicates left by lease-shortening heartbeats go too.
    // The kept entry is due at the job's current expiry, which is never later than any of its
    // entries' (a heartbeat that shortens pushes an earlier entry; one that extends does not).
    std::unordered_set<JobId> seen;
    seen.reserve(active_total_);
    std::vector<TimerEntry> kept;
    kept.reserve(active_total_);
    while (!leases_.empty()) {
      const TimerEntry e = leases_.top();
      leases_.pop();
      const LiveJob* j = index_.Find(e.id);
      if (!j || j->state != JobState::kActive || j->evicting || j->lease_token != e.seq) continue;
      if (seen.insert(e.id).second) kept.push_back(TimerEntry{j->lease_expires_ms, e.seq, e.id});
    }
    leases_ = TimerHeap(std::greater<>(), std::move(kept));
  }
  if (OverStaleBound(waiter_deadlines_.size(), waiters_.size())) {
    RebuildHeap(waiter_deadlines_, [&](const TimerEntry& e) { return waiters_.count(e.seq) > 0; });
  }
  if (OverStaleBound(rate_timers_.size() + quota_timers_.size() + circuit_timers_.size(),
                     timed_lanes_)) {
    // One entry per waiting lane: a lane refused again for the same time (after a Rebind, or a
    // stale wake-up) pushed an equal entry, which TimedLaneWaits alone cannot tell apart.
    for (const auto& source : {std::pair{&rate_timers_, flow::Block::kRate},
                               std::pair{&quota_timers_, flow::Block::kQuota},
                               std::pair{&circuit_timers_, flow::Block::kCircuit}}) {
      std::set<std::tuple<std::uint32_t, std::uint64_t>> seen;
      RebuildHeap(*source.first, [&](const LaneTimer& t) {
        return TimedLaneWaits(t, source.second) &&
               seen.emplace(t.lane.queue, LaneKey(t.lane.ns, t.lane.set)).second;
      });
    }
  }
}

void Scheduler::PlanPurges(std::int64_t now, std::uint64_t rows) {
  next_purge_ms_ = clock_.MonoMs() + options_.retention_purge_interval_ms;
  // At most one purge per queue and state is in flight; 64 statements bound a batch's extra
  // work when many small queues are due at once. Namespace passes (core/flow/
  // namespace_retention.h) read at most `rows` index entries per chunk, 16 chunks a batch.
  std::size_t planned = 0;
  if (retention_.has_due())
    planned += retention_.Plan(now, retention_policy_, rows, 64, open_.mutations);
  if (ns_retention_.has_due()) planned += ns_retention_.Plan(rows, 16, open_.mutations);
  if (planned > 0) {
    // The purges go into the open batch, which will be sealed as next_batch_seq_.
    guard_.OnPurge(next_batch_seq_);
  }
}

void Scheduler::Sweep(std::int64_t now) {
  next_sweep_ms_ = clock_.MonoMs() + options_.retention_sweep_interval_ms;
  // Only queues that hold finished rows are looked at (in memory, O(those queues)); the store
  // then deletes by its (state, queue, finished_at_ms) index, a bounded chunk per batch.
  retention_.Scan(now, retention_policy_);
  ns_retention_.Scan(now);
  PlanPurges(now, options_.retention_purge_chunk);
  for (auto& slot : queues_) {
    if (!slot) continue;
    QueueState& q = *slot;
    for (Lane& lane : q.lanes) MaybeCompactLane(lane);
    MaybeCompactFifo(q);
    while (!q.ready_fifo.empty()) {
      const LiveJob* j = index_.Find(q.ready_fifo.front().id);
      if (j && j->state == JobState::kReady && j->seq == q.ready_fifo.front().seq) break;
      q.ready_fifo.pop_front();
    }
  }
  CollectQueues();
  // Expired keys go by the store's expiry index, a bounded chunk at a time (batches that
  // create keys delete more, SealBatch); the cache drops expired entries as it meets them.
  open_.mutations.push_back(ExpireIdempotencyKeys{now, options_.idempotency_expiry_chunk});
}

// --- Group commit ---------------------------------------------------------------------------

std::uint64_t Scheduler::VisibleSeq() const {
  if (!open_.mutations.empty() || open_.checkpoint) return next_batch_seq_;
  return last_sealed_with_mutations_;
}

Batch Scheduler::SealBatch() {
  if (keys_in_open_batch_ > 0) {
    // Deletion keeps pace with creation: every key created deletes up to two expired ones.
    open_.mutations.push_back(ExpireIdempotencyKeys{clock_.NowMs(), 2 * keys_in_open_batch_ + 16});
    keys_in_open_batch_ = 0;
  }
  if (kept_in_open_batch_ > 0) {
    // Purging keeps pace with finishing: a batch that keeps finished jobs purges up to twice
    // as many rows while some queue is over its cap or window (a no-op otherwise).
    if (retention_.has_due() &&
        retention_.Plan(clock_.NowMs(), retention_policy_, 2 * kept_in_open_batch_ + 16, 64,
                        open_.mutations) > 0) {
      guard_.OnPurge(next_batch_seq_);
    }
    kept_in_open_batch_ = 0;
  }
  Batch b = std::move(open_);
  open_ = Batch{};
  // The next batch likely holds about as many mutations: room for them at once, rather than
  // growing by doubling and moving every mutation each time (bounded: a burst does not pin a
  // large buffer).
  open_.mutations.reserve(std::min<std::size_t>(b.mutations.size(), kMutationsReserveMax));
  b.seq = next_batch_seq_++;
  if (!b.mutations.empty() || b.checkpoint) last_sealed_with_mutations_ = b.seq;
  sealed_.push_back(Sealed{b.seq, std::move(open_promote_), std::move(open_evict_)});
  open_promote_.clear();
  open_evict_.clear();
  return b;
}

void Scheduler::OnPurged(const std::vector<PurgeOutcome>& outcomes) {
  const std::int64_t now = clock_.NowMs();
  for (const PurgeOutcome& o : outcomes) {
    if (o.ns.empty()) {
      retention_.OnOutcome(o, now, retention_policy_);
    } else {
      ns_retention_.OnOutcome(o);
    }
  }
}

void Scheduler::OnCommitted(std::uint64_t seq) {
  durable_seq_ = std::max(durable_seq_, seq);
  guard_.OnDurable(durable_seq_);
  UpdateEvictable();
  const std::int64_t now = clock_.NowMs();
  std::vector<std::uint32_t> touched;
  while (!sealed_.empty() && sealed_.front().seq <= seq) {
    Sealed s = std::move(sealed_.front());
    sealed_.pop_front();
    for (JobId id : s.promote) {
      LiveJob* job = index_.Find(id);
      if (!job || !job->pending) continue;  // cancelled before it became durable
      if (job->run_at_ms > now) {
        MakeScheduled(*job, job->run_at_ms, false);
      } else {
        MakeReady(*job);
        touched.push_back(job->queue);
      }
    }
    for (JobId id : s.evict) {
      LiveJob* job = index_.Find(id);
      if (job && job->evicting) {
        DropJob(*job);
        guard_.OnEvicted(id);
      }
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (std::uint32_t qi : touched) ServeWaiters(qi);
}

std::uint64_t Scheduler::active_jobs() const { return active_total_; }

void Scheduler::Shutdown() {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, w] : waiters) {
    for (std::uint32_t qi : w.queues) {
      --Q(qi).live_waiters;
      MarkChanged(qi);
    }
  }
  for (auto& [id, w] : waiters) w.callback({});
  end_waits_.Shutdown();
  cancel_watches_.Shutdown();
}

SchedulerFootprint Scheduler::Footprint() const {
  SchedulerFootprint f;
  f.live_jobs = index_.size();
  f.index_pages = index_.pages();
  f.index_dense_pages = index_.dense_pages();
  f.index_bytes = index_.MemoryBytes();
  f.timer_entries = timers_.size();
  f.scheduled_jobs = scheduled_total_;
  f.lease_entries = leases_.size();
  f.active_jobs = active_total_;
  f.waiters = waiters_.size();
  f.waiter_deadline_entries = waiter_deadlines_.size();
  f.end_waits = end_waits_.size();
  f.end_wait_deadline_entries = end_waits_.deadline_entries();
  f.cancel_watches = cancel_watches_.size();
  f.cancel_watch_deadline_entries = cancel_watches_.deadline_entries();
  f.cancels_pending = cancel_watches_.pending_jobs();
  f.queue_slots = queues_.size();
  for (const auto& slot : queues_) {
    if (!slot) continue;
    ++f.queues;
    f.lanes += slot->lanes.size();
    for (const Lane& lane : slot->lanes) f.ready_entries += lane.ready.size();
    f.ready_fifo_entries += slot->ready_fifo.size();
    f.ready_jobs += slot->ready;
    f.queue_waiter_entries += slot->waiters.size();
  }
  f.namespaces = ns_.size();
  f.kinds = kinds_.size();
  f.workers = workers_.size();
  f.intern_slots = ns_.slots() + kinds_.slots() + workers_.slots();
  f.idempotency_keys = idempotency_.size();
  f.limit_gate_sets = limits_.live_sets();
  f.limit_waiting_lanes = limits_.waiting_lanes();
  f.lane_timer_entries = rate_timers_.size() + quota_timers_.size() + circuit_timers_.size();
  f.timed_lanes = timed_lanes_;
  f.rate_keys = limits_.rate_keys();
  f.quota_keys = limits_.quota_keys();
  f.breaker_keys = limits_.breaker_keys();
  f.breaker_holds = breaker_holds_.size();
  f.key_groups = key_groups_.groups();
  f.key_group_jobs = key_groups_.jobs();
  f.schedules = schedules_.size();
  f.schedule_timer_entries = schedules_.timer_entries();
  return f;
}

}  // namespace ym
