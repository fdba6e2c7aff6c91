// The Scheduler's schedules (issue 11): how the schedule book (core/cron/schedule_book.h) is
// wired to jobs and to the open batch. The book decides; this file enqueues a window's job
// through Enqueue and writes the schedule's row after it, in the same open batch, so that the
// cursor and the job it covers are durable together (docs/guarantees.md, "Durable cron").

#include <utility>

#include "core/scheduler.h"

namespace ym {

// What the book may do to jobs, on the core thread, during a command or a Tick.
class Scheduler::CronEffects final : public cron::ScheduleEffects {
 public:
  explicit CronEffects(Scheduler& s) : s_(s) {}

  // Live for overlap: not ended (an ended job waiting to leave memory does not count).
  bool IsLive(JobId id) const override {
    const LiveJob* j = s_.index_.Find(id);
    return j != nullptr && !j->evicting && !IsTerminal(j->state);
  }

  Result<JobId> Emit(const cron::Schedule& sched, std::optional<std::int64_t> window_ms,
                     std::int64_t run_at_ms) override {
    EnqueueSpec spec = sched.spec.job;
    spec.run_at_ms = run_at_ms;
    spec.delay_ms.reset();
    spec.idempotency_key =
        window_ms ? ScheduleKey(sched.spec.id, *window_ms)
                  : "schedule:" + sched.spec.id + ":trigger:" + std::to_string(run_at_ms);
    spec.idempotency_ttl_ms = kScheduleKeyTtlMs;
    // The key of a window after the cursor was never written (the cursor moves with the job, in
    // one batch; backfill stays at or before the cursor; the API refuses `schedule:` keys from
    // producers): the store need not be asked. A trigger's key names the instant.
    IdempotencyLookup absent;
    auto out = s_.Enqueue(std::move(spec), &absent);
    if (!out.ok()) return out.status();
    if (out->skipped) return Status(Code::kSingletonConflict, "skipped by a singleton limit");
    return out->id;
  }

  void Cancel(JobId id) override { (void)s_.Cancel(id); }

 private:
  Scheduler& s_;
};

std::string Scheduler::ScheduleKey(const std::string& id, std::int64_t window_ms) {
  return "schedule:" + id + ":" + std::to_string(window_ms);
}

void Scheduler::WriteSchedule(const std::string& id) {
  cron::ScheduleRow row = schedules_.TakeRow(id);
  if (row.id.empty()) return;
  open_.mutations.emplace_back(PutSchedule{std::move(row)});
}

void Scheduler::FireSchedules(std::int64_t now) {
  CronEffects fx(*this);
  // At most 1024 schedules per tick: NextDeadlineInMs is then 0 and the core loop comes back
  // after serving the commands that queued meanwhile.
  for (const std::string& id : schedules_.Fire(now, fx, 1024)) WriteSchedule(id);
}

ScheduleView Scheduler::ViewOf(const cron::Schedule& s, std::size_t next_n) const {
  ScheduleView v;
  v.schedule = s;
  if (s.state.last_job != 0) {
    const LiveJob* j = index_.Find(s.state.last_job);
    v.live_job = j != nullptr && !j->evicting && !IsTerminal(j->state);
  }
  v.next_fire_times = s.NextWindows(std::max(s.state.cursor_ms, clock_.NowMs()), next_n);
  return v;
}

Result<ScheduleView> Scheduler::CreateSchedule(cron::ScheduleSpec spec, bool paused) {
  const std::string id = spec.id;
  YM_RETURN_IF_ERROR(schedules_.Create(std::move(spec), paused, clock_.NowMs()));
  WriteSchedule(id);
  return ViewOf(*schedules_.Find(id), 1);
}

Result<ScheduleView> Scheduler::UpdateSchedule(cron::ScheduleSpec spec,
                                               std::optional<bool> paused) {
  const std::string id = spec.id;
  const std::int64_t now = clock_.NowMs();
  CronEffects fx(*this);
  YM_RETURN_IF_ERROR(schedules_.Update(std::move(spec), now, fx));
  if (paused) YM_RETURN_IF_ERROR(schedules_.SetPaused(id, *paused, now, fx));
  WriteSchedule(id);
  return ViewOf(*schedules_.Find(id), 1);
}

Status Scheduler::DeleteSchedule(const std::string& id) {
  if (!schedules_.Delete(id)) return NotFound("schedule " + id + " not found");
  open_.mutations.emplace_back(::ym::DeleteSchedule{id});
  return Status::Ok();
}

Result<ScheduleView> Scheduler::PauseSchedule(const std::string& id, bool paused) {
  CronEffects fx(*this);
  YM_RETURN_IF_ERROR(schedules_.SetPaused(id, paused, clock_.NowMs(), fx));
  WriteSchedule(id);
  return ViewOf(*schedules_.Find(id), 1);
}

Result<EnqueueOutcome> Scheduler::TriggerSchedule(const std::string& id) {
  CronEffects fx(*this);
  auto job = schedules_.Trigger(id, clock_.NowMs(), fx);
  if (!job.ok()) return job.status();
  WriteSchedule(id);
  EnqueueOutcome out;
  out.id = *job;
  const LiveJob* j = index_.Find(*job);
  out.state = j != nullptr ? j->state : JobState::kReady;
  return out;
}

Result<std::vector<std::pair<std::int64_t, EnqueueSpec>>> Scheduler::BackfillSpecs(
    const std::string& id, std::int64_t from, std::int64_t to, BackfillOutcome* out) {
  std::uint64_t later = 0;
  auto windows = schedules_.BackfillWindows(id, from, to, &later);
  if (!windows.ok()) return windows.status();
  const cron::Schedule& s = *schedules_.Find(id);
  std::vector<std::pair<std::int64_t, EnqueueSpec>> specs;
  specs.reserve(windows->size());
  for (std::int64_t w : *windows) {
    EnqueueSpec spec = s.spec.job;
    spec.run_at_ms = w + cron::ScheduleBook::JitterOf(s.spec.id, w, s.spec.jitter_ms);
    spec.idempotency_key = ScheduleKey(s.spec.id, w);
    spec.idempotency_ttl_ms = kScheduleKeyTtlMs;
    specs.emplace_back(w, std::move(spec));
  }
  if (out != nullptr) {
    out->after_cursor = later;
    out->windows = windows->size() + later;
  }
  return specs;
}

void Scheduler::RecordBackfill(const std::string& id, std::int64_t window_ms, JobId job) {
  if (schedules_.Find(id) == nullptr) return;
  schedules_.RecordBackfill(id, window_ms, job, clock_.NowMs());
  WriteSchedule(id);
}

std::optional<ScheduleView> Scheduler::GetSchedule(const std::string& id,
                                                   std::size_t next_n) const {
  const cron::Schedule* s = schedules_.Find(id);
  if (s == nullptr) return std::nullopt;
  return ViewOf(*s, next_n);
}

std::vector<ScheduleView> Scheduler::SchedulesPage(const std::string& after, std::uint32_t limit,
                                                   bool* more) const {
  std::vector<ScheduleView> out;
  for (const cron::Schedule* s : schedules_.Page(after, limit, more)) {
    out.push_back(ViewOf(*s, 1));
  }
  return out;
}

void Scheduler::LoadSchedule(cron::ScheduleSpec spec, cron::ScheduleRow&& row) {
  schedules_.Load(std::move(spec), row.state, std::move(row.new_history));
}

}  // namespace ym
