// ScheduleBook: the schedules core holds (issue 11, durable cron), their cursors, their next-fire
// timers, their overlap state and a bounded history of what each decided. Pure and
// single-threaded (the core thread): time comes in as arguments, and what a decision does to jobs
// (enqueue a window's job, ask whether a job is live, cancel one) goes through ScheduleEffects,
// which the Scheduler implements and tests fake.
//
// A schedule's life:
//
//   Create ──> active ──(pause)──> paused ──(resume)──> active ──(no window left)──> ended
//                 │  ^                                     │
//                 └──┘ timer due: Advance                   └─ Update keeps cursor and history
//
// Windows and the cursor. A window is a fire instant of the schedule's expression within its
// bounds (ScheduleTiming). The cursor says every window at or before it is decided (emitted or
// skipped, recorded in the history). Advance(now) decides every window in (cursor, now] by the
// missed-run policy (PlanDue, core/cron/missed_runs.h) and then by the overlap policy, and
// moves the cursor; the owner writes the schedule's row (TakeRow) in the same store batch as the
// jobs emitted, so a crash either keeps both or loses both: a window is emitted at most once,
// and a lost decision is taken again at restart by the missed-run policy.
//
// Overlap, when the job of the schedule's previous emitted window is still live:
//   allow            emit anyway;
//   skip             skip the window (reason "overlap");
//   buffer_one       hold the window (at most one; a further one is skipped, "buffer_full"); when
//                    the live job ends (OnJobEnded) the schedule is due at once and the held
//                    window is emitted (reason "buffered");
//   cancel_previous  cancel the live job, then emit.
//
// Jitter: a window's job runs at window + JitterOf(id, window, jitter_ms), a hash of the
// schedule id and the window, so a decision taken again after a crash picks the same delay.
//
// Timers: a min-heap of (due, schedule, generation) with lazy deletion: every change of a
// schedule's next fire bumps its generation and pushes one entry, stale entries are dropped when
// they reach the top or by a rebuild once they outnumber the valid ones; so a change is
// O(log n) and nothing scans the schedules per tick. Memory: the spec, ~64 history entries and
// one or two heap entries per schedule.
#pragma once

#include <date/tz.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/cron/cron_expr.h"
#include "core/cron/missed_runs.h"
#include "core/cron/schedule_record.h"
#include "core/job.h"
#include "core/types.h"

namespace ym::cron {

enum class Overlap : std::uint8_t { kAllow, kSkip, kBufferOne, kCancelPrevious };

std::string_view OverlapName(Overlap o);  // "allow", "skip", "buffer_one", "cancel_previous"
Result<Overlap> ParseOverlap(std::string_view text, std::string_view field);

// A schedule's spec, parsed and validated (the codec builds it from the API's JSON or the
// stored row). `json` is its canonical JSON text, what the store keeps and GET shows.
struct ScheduleSpec {
  static constexpr std::int64_t kMaxJitterMs = 3'600'000;

  std::string id;
  std::optional<CronExpr> expr;
  std::string time_zone = "UTC";
  const date::time_zone* zone = nullptr;
  std::optional<std::int64_t> start_ms;
  std::optional<std::int64_t> end_ms;
  std::int64_t jitter_ms = 0;
  MissedRunConfig missed;
  Overlap overlap = Overlap::kSkip;
  EnqueueSpec job;       // the template: no run_at, delay or idempotency key
  std::string job_json;  // the template as given (minified)
  std::string json;      // the whole spec, canonical

  // kValidation naming the member: an id that is not a name, no expression or zone, bounds out
  // of order, jitter out of range, a bad missed-run config.
  Status Validate() const;
};

struct Schedule {
  ScheduleSpec spec;
  ScheduleState state;
  std::deque<HistoryEntry> history;   // newest last, at most ScheduleBook::kHistory
  std::uint64_t unsaved_history = 0;  // entries at the back not yet taken by TakeRow
  bool ended = false;                 // no window remains after the cursor
  std::optional<std::int64_t> next_fire_ms;

  ScheduleTiming Timing() const;
  // The next `n` windows after the cursor (after max(cursor, now) for display).
  std::vector<std::int64_t> NextWindows(std::int64_t after_ms, std::size_t n) const;
};

// What a decision asks of the owner of the jobs.
class ScheduleEffects {
 public:
  virtual ~ScheduleEffects() = default;
  virtual bool IsLive(JobId id) const = 0;
  // Enqueues the job of `window_ms` (nullopt: a trigger), to run at `run_at_ms`. The job id, or
  // the refusal (recorded in the history as "refused: <code>").
  virtual Result<JobId> Emit(const Schedule& s, std::optional<std::int64_t> window_ms,
                             std::int64_t run_at_ms) = 0;
  virtual void Cancel(JobId id) = 0;
};

class ScheduleBook {
 public:
  static constexpr std::size_t kHistory = 64;
  static constexpr std::size_t kMaxBackfillWindows = 10'000;

  // The job run-at delay of a window: in [0, jitter_ms], a hash of (id, window).
  static std::int64_t JitterOf(std::string_view id, std::int64_t window_ms, std::int64_t jitter_ms);

  // kAlreadyExists-like: kInvalidState when the id is taken. The cursor starts at `now` (no
  // window before the schedule existed fires); intervals count from start_at, else from now.
  Status Create(ScheduleSpec spec, bool paused, std::int64_t now);
  // Replaces the spec, keeping cursor, history and overlap state. Windows due under the old spec
  // are decided first (Advance), then the cursor moves to `now`: the new spec applies from the
  // next window after the update. kNotFound.
  Status Update(ScheduleSpec spec, std::int64_t now, ScheduleEffects& fx);
  bool Delete(std::string_view id);
  // Pausing decides what is due first; resuming leaves the windows missed meanwhile to the
  // missed-run policy at the next Fire. kNotFound.
  Status SetPaused(std::string_view id, bool paused, std::int64_t now, ScheduleEffects& fx);
  // Recovery: a stored schedule with its history (oldest first). Its timer is armed at its next
  // window after the cursor, which may be past: the first Fire reconciles it.
  void Load(ScheduleSpec spec, const ScheduleState& state, std::vector<HistoryEntry> history);

  const Schedule* Find(std::string_view id) const;
  std::size_t size() const { return by_id_.size(); }
  bool empty() const { return by_id_.empty(); }
  // Schedules whose id sorts after `after`, in id order, at most `limit`.
  std::vector<const Schedule*> Page(std::string_view after, std::uint32_t limit, bool* more) const;

  // The earliest timer (wall ms), nullopt when none is armed.
  std::optional<std::int64_t> NextFireMs();
  // The same without dropping stale entries: possibly earlier than the next real fire (a wake-up
  // that finds nothing to do, after which Fire has dropped it), never later.
  std::optional<std::int64_t> EarliestTimer() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.top().due;
  }
  // Decides every schedule whose timer is due at `now`, at most `max` of them (the rest stay
  // due). Returns the ids decided (their rows to write).
  std::vector<std::string> Fire(std::int64_t now, ScheduleEffects& fx, std::size_t max = 1024);
  // A job ended: if it is the live job of a schedule holding a buffered window, that schedule is
  // due at once. O(1).
  void OnJobEnded(JobId id);
  // Emits a job now, outside the window sequence (the cursor does not move).
  Result<JobId> Trigger(std::string_view id, std::int64_t now, ScheduleEffects& fx);
  // The windows w with from <= w <= to, at or before the cursor (the later ones are left to the
  // sequence: *after_cursor counts them), oldest first. kValidation past kMaxBackfillWindows or
  // to < from; kNotFound.
  Result<std::vector<std::int64_t>> BackfillWindows(std::string_view id, std::int64_t from,
                                                    std::int64_t to,
                                                    std::uint64_t* after_cursor) const;
  // Records a backfill's outcome in the history (one entry per emitted window, newest kept).
  void RecordBackfill(std::string_view id, std::int64_t window_ms, JobId job, std::int64_t now);

  // The row to write for schedule `id` (its new history entries, which are then taken).
  ScheduleRow TakeRow(std::string_view id);

  // Heap entries, stale ones included (footprint).
  std::size_t timer_entries() const { return timers_.size(); }

 private:
  struct Timer {
    std::int64_t due;
    std::uint64_t uid;
    std::uint64_t gen;
    bool operator>(const Timer& o) const { return due > o.due; }
  };
  struct Slot {
    Schedule s;
    std::uint64_t uid = 0;
    std::uint64_t gen = 0;
  };

  Slot* FindSlot(std::string_view id);
  // Decides what is due at `now` (see the header comment) and re-arms the timer.
  void Advance(Slot& slot, std::int64_t now, ScheduleEffects& fx);
  // Emits one window (after the overlap policy allowed it).
  void EmitWindow(Slot& slot, std::int64_t window, std::int64_t now, std::string reason,
                  ScheduleEffects& fx);
  void AddHistory(Schedule& s, HistoryEntry e);
  void Arm(Slot& slot, std::optional<std::int64_t> due);
  void TrackLive(Slot& slot, JobId job);
  void MaybeCompact();

  std::map<std::string, Slot, std::less<>> by_id_;
  std::unordered_map<std::uint64_t, Slot*> by_uid_;
  std::unordered_map<JobId, std::uint64_t> live_job_owner_;  // last_job -> uid
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::size_t armed_ = 0;  // slots with a valid timer
  std::uint64_t next_uid_ = 1;
};

}  // namespace ym::cron
