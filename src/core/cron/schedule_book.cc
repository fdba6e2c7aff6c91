#include "core/cron/schedule_book.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace ym::cron {

namespace {

constexpr std::int64_t kAtOnce = std::numeric_limits<std::int64_t>::min();

std::uint64_t Mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string_view OverlapName(Overlap o) {
  switch (o) {
    case Overlap::kAllow:
      return "allow";
    case Overlap::kSkip:
      return "skip";
    case Overlap::kBufferOne:
      return "buffer_one";
    case Overlap::kCancelPrevious:
      return "cancel_previous";
  }
  return "skip";
}

Result<Overlap> ParseOverlap(std::string_view text, std::string_view field) {
  for (Overlap o :
       {Overlap::kAllow, Overlap::kSkip, Overlap::kBufferOne, Overlap::kCancelPrevious}) {
    if (text == OverlapName(o)) return o;
  }
  return Validation(std::string(field) + ": \"" + std::string(text.substr(0, 64)) +
                    "\" is not an overlap policy (allow, skip, buffer_one, cancel_previous)");
}

Status ScheduleSpec::Validate() const {
  if (!IsValidName(id)) {
    return Validation("field \"id\": must be 1..128 characters of [A-Za-z0-9_.:-]");
  }
  if (!expr) return Validation("field \"cron\": is required");
  if (zone == nullptr) return Validation("field \"time_zone\": unknown zone");
  if (start_ms && end_ms && *end_ms < *start_ms) {
    return Validation("field \"end_at\": must not be before start_at");
  }
  if (jitter_ms < 0 || jitter_ms > kMaxJitterMs) {
    return Validation("field \"jitter_ms\": must be 0.." + std::to_string(kMaxJitterMs));
  }
  return missed.Validate("missed_runs");
}

ScheduleTiming Schedule::Timing() const {
  ScheduleTiming t;
  t.expr = &*spec.expr;
  t.zone = spec.zone;
  t.anchor_ms = state.anchor_ms;
  t.start_ms = spec.start_ms;
  t.end_ms = spec.end_ms;
  return t;
}

std::vector<std::int64_t> Schedule::NextWindows(std::int64_t after_ms, std::size_t n) const {
  std::vector<std::int64_t> out;
  const ScheduleTiming t = Timing();
  std::int64_t from = after_ms;
  while (out.size() < n) {
    const auto w = t.Next(from);
    if (!w) break;
    out.push_back(*w);
    from = *w;
  }
  return out;
}

std::int64_t ScheduleBook::JitterOf(std::string_view id, std::int64_t window_ms,
                                    std::int64_t jitter_ms) {
  if (jitter_ms <= 0) return 0;
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the id
  for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ULL;
  h = Mix(h ^ Mix(static_cast<std::uint64_t>(window_ms)));
  return static_cast<std::int64_t>(h % static_cast<std::uint64_t>(jitter_ms + 1));
}

ScheduleBook::Slot* ScheduleBook::FindSlot(std::string_view id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

const Schedule* ScheduleBook::Find(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second.s;
}

Status ScheduleBook::Create(ScheduleSpec spec, bool paused, std::int64_t now) {
  YM_RETURN_IF_ERROR(spec.Validate());
  if (by_id_.count(spec.id) != 0) {
    return Status(Code::kAlreadyExists, "schedule " + spec.id + " already exists");
  }
  const std::string id = spec.id;
  Slot& slot = by_id_[id];
  slot.uid = next_uid_++;
  by_uid_[slot.uid] = &slot;
  Schedule& s = slot.s;
  s.spec = std::move(spec);
  s.state.cursor_ms = now;
  s.state.paused = paused;
  s.state.anchor_ms = s.spec.start_ms.value_or(now);
  s.state.created_at_ms = now;
  s.state.updated_at_ms = now;
  if (!paused) {
    const auto next = s.Timing().Next(s.state.cursor_ms);
    s.ended = !next;
    Arm(slot, next);
  }
  return Status::Ok();
}

Status ScheduleBook::Update(ScheduleSpec spec, std::int64_t now, ScheduleEffects& fx) {
  YM_RETURN_IF_ERROR(spec.Validate());
  Slot* slot = FindSlot(spec.id);
  if (slot == nullptr) return NotFound("schedule " + spec.id + " not found");
  Schedule& s = slot->s;
  // What came due under the old spec is decided by it; the new one starts after `now`.
  if (!s.state.paused) Advance(*slot, now, fx);
  s.spec = std::move(spec);
  s.state.cursor_ms = std::max(s.state.cursor_ms, now);
  s.state.anchor_ms = s.spec.start_ms.value_or(s.state.created_at_ms);
  s.state.updated_at_ms = now;
  s.ended = false;
  if (s.state.paused) {
    Arm(*slot, std::nullopt);
  } else {
    const auto next = s.Timing().Next(s.state.cursor_ms);
    s.ended = !next;
    Arm(*slot, next);
  }
  return Status::Ok();
}

bool ScheduleBook::Delete(std::string_view id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  Slot& slot = it->second;
  if (slot.s.next_fire_ms) --armed_;
  if (slot.s.state.last_job != 0) live_job_owner_.erase(slot.s.state.last_job);
  by_uid_.erase(slot.uid);
  by_id_.erase(it);
  MaybeCompact();
  return true;
}

Status ScheduleBook::SetPaused(std::string_view id, bool paused, std::int64_t now,
                               ScheduleEffects& fx) {
  Slot* slot = FindSlot(id);
  if (slot == nullptr) return NotFound("schedule " + std::string(id) + " not found");
  Schedule& s = slot->s;
  if (s.state.paused == paused) return Status::Ok();
  if (paused) {
    Advance(*slot, now, fx);  // what is due now is decided before the pause
    s.state.paused = true;
    Arm(*slot, std::nullopt);
  } else {
    s.state.paused = false;
    // Windows missed while paused are the missed-run policy's, at the next Fire.
    const auto next = s.Timing().Next(s.state.cursor_ms);
    s.ended = !next;
    Arm(*slot, s.state.buffered_ms ? std::optional<std::int64_t>(kAtOnce) : next);
  }
  s.state.updated_at_ms = now;
  return Status::Ok();
}

void ScheduleBook::Load(ScheduleSpec spec, const ScheduleState& state,
                        std::vector<HistoryEntry> history) {
  const std::string id = spec.id;
  if (Slot* old = FindSlot(id)) {
    (void)old;
    Delete(id);
  }
  Slot& slot = by_id_[id];
  slot.uid = next_uid_++;
  by_uid_[slot.uid] = &slot;
  Schedule& s = slot.s;
  s.spec = std::move(spec);
  s.state = state;
  const std::size_t skip = history.size() > kHistory ? history.size() - kHistory : 0;
  s.history.assign(std::make_move_iterator(history.begin() + static_cast<std::ptrdiff_t>(skip)),
                   std::make_move_iterator(history.end()));
  if (!s.history.empty()) {
    s.state.next_history_seq = std::max(s.state.next_history_seq, s.history.back().seq + 1);
  }
  if (s.state.last_job != 0) live_job_owner_[s.state.last_job] = slot.uid;
  if (!s.state.paused) {
    const auto next = s.Timing().Next(s.state.cursor_ms);
    s.ended = !next;
    Arm(slot, s.state.buffered_ms ? std::optional<std::int64_t>(kAtOnce) : next);
  }
}

std::vector<const Schedule*> ScheduleBook::Page(std::string_view after, std::uint32_t limit,
                                                bool* more) const {
  std::vector<const Schedule*> out;
  auto it = by_id_.upper_bound(after);
  for (; it != by_id_.end() && out.size() < limit; ++it) out.push_back(&it->second.s);
  if (more != nullptr) *more = it != by_id_.end();
  return out;
}

std::optional<std::int64_t> ScheduleBook::NextFireMs() {
  while (!timers_.empty()) {
    const Timer& t = timers_.top();
    auto it = by_uid_.find(t.uid);
    if (it != by_uid_.end() && it->second->gen == t.gen && it->second->s.next_fire_ms) {
      return t.due;
    }
    timers_.pop();
  }
  return std::nullopt;
}

std::vector<std::string> ScheduleBook::Fire(std::int64_t now, ScheduleEffects& fx,
                                            std::size_t max) {
  std::vector<std::string> decided;
  while (!timers_.empty() && decided.size() < max) {
    const Timer t = timers_.top();
    if (t.due > now) break;
    timers_.pop();
    auto it = by_uid_.find(t.uid);
    if (it == by_uid_.end() || it->second->gen != t.gen || !it->second->s.next_fire_ms) continue;
    Slot& slot = *it->second;
    Arm(slot, std::nullopt);
    Advance(slot, now, fx);
    decided.push_back(slot.s.spec.id);
  }
  MaybeCompact();
  return decided;
}

void ScheduleBook::OnJobEnded(JobId id) {
  auto it = live_job_owner_.find(id);
  if (it == live_job_owner_.end()) return;
  const std::uint64_t uid = it->second;
  live_job_owner_.erase(it);
  auto s = by_uid_.find(uid);
  if (s == by_uid_.end()) return;
  Slot& slot = *s->second;
  if (slot.s.state.buffered_ms && !slot.s.state.paused) Arm(slot, kAtOnce);
}

Result<JobId> ScheduleBook::Trigger(std::string_view id, std::int64_t now, ScheduleEffects& fx) {
  Slot* slot = FindSlot(id);
  if (slot == nullptr) return NotFound("schedule " + std::string(id) + " not found");
  auto job = fx.Emit(slot->s, std::nullopt, now);
  if (!job.ok()) return job.status();
  HistoryEntry e;
  e.window_ms = now;
  e.through_ms = now;
  e.emitted = true;
  e.reason = "trigger";
  e.job_id = *job;
  e.at_ms = now;
  e.lag_ms = 0;
  AddHistory(slot->s, std::move(e));
  return job;
}

Result<std::vector<std::int64_t>> ScheduleBook::BackfillWindows(std::string_view id,
                                                                std::int64_t from, std::int64_t to,
                                                                std::uint64_t* after_cursor) const {
  const Schedule* s = Find(id);
  if (s == nullptr) return NotFound("schedule " + std::string(id) + " not found");
  if (to < from) return Validation("field \"to\": must not be before \"from\"");
  std::vector<std::int64_t> out;
  std::uint64_t later = 0;
  std::size_t total = 0;
  const ScheduleTiming t = s->Timing();
  for (auto w = t.Next(from - 1); w && *w <= to; w = t.Next(*w)) {
    if (++total > kMaxBackfillWindows) {
      return Validation("fields \"from\", \"to\": the range holds more than " +
                        std::to_string(kMaxBackfillWindows) + " windows");
    }
    if (*w <= s->state.cursor_ms) {
      out.push_back(*w);
    } else {
      ++later;
    }
  }
  if (after_cursor != nullptr) *after_cursor = later;
  return out;
}

void ScheduleBook::RecordBackfill(std::string_view id, std::int64_t window_ms, JobId job,
                                  std::int64_t now) {
  Slot* slot = FindSlot(id);
  if (slot == nullptr) return;
  HistoryEntry e;
  e.window_ms = window_ms;
  e.through_ms = window_ms;
  e.emitted = true;
  e.reason = "backfill";
  e.job_id = job;
  e.at_ms = now;
  e.lag_ms = now - window_ms;
  AddHistory(slot->s, std::move(e));
}

ScheduleRow ScheduleBook::TakeRow(std::string_view id) {
  ScheduleRow row;
  Slot* slot = FindSlot(id);
  if (slot == nullptr) return row;
  Schedule& s = slot->s;
  row.id = s.spec.id;
  row.spec_json = s.spec.json;
  row.state = s.state;
  const std::size_t n = std::min<std::size_t>(s.unsaved_history, s.history.size());
  row.new_history.assign(s.history.end() - static_cast<std::ptrdiff_t>(n), s.history.end());
  s.unsaved_history = 0;
  return row;
}

void ScheduleBook::Advance(Slot& slot, std::int64_t now, ScheduleEffects& fx) {
  Schedule& s = slot.s;
  if (!s.state.paused && s.state.buffered_ms &&
      !(s.state.last_job != 0 && fx.IsLive(s.state.last_job))) {
    const std::int64_t w = *s.state.buffered_ms;
    s.state.buffered_ms.reset();
    EmitWindow(slot, w, now, "buffered", fx);
  }
  if (!s.state.paused && !s.ended) {
    const ScheduleTiming timing = s.Timing();
    const DuePlan plan = PlanDue(timing, s.state.cursor_ms, now, s.spec.missed);
    for (const SkippedRange& r : plan.skipped) {
      const auto first = timing.Next(r.after_ms);
      if (!first || *first >= r.before_ms) continue;
      HistoryEntry e;
      e.window_ms = *first;
      e.through_ms = r.before_ms - 1;
      e.reason = std::string(r.reason);
      e.at_ms = now;
      AddHistory(s, std::move(e));
    }
    for (std::int64_t w : plan.emit) {
      std::string reason = now - w <= s.spec.missed.grace_ms                ? "on_time"
                           : s.spec.missed.policy == MissedPolicy::kCatchUp ? "catch_up"
                                                                            : "latest";
      const bool live = s.state.last_job != 0 && fx.IsLive(s.state.last_job);
      std::string skip;
      if (live) {
        switch (s.spec.overlap) {
          case Overlap::kAllow:
            break;
          case Overlap::kSkip:
            skip = "overlap";
            break;
          case Overlap::kBufferOne:
            if (s.state.buffered_ms) {
              skip = "buffer_full";
            } else {
              s.state.buffered_ms = w;
              continue;
            }
            break;
          case Overlap::kCancelPrevious:
            fx.Cancel(s.state.last_job);
            break;
        }
      }
      if (!skip.empty()) {
        HistoryEntry e;
        e.window_ms = w;
        e.through_ms = w;
        e.reason = std::move(skip);
        e.at_ms = now;
        AddHistory(s, std::move(e));
        continue;
      }
      EmitWindow(slot, w, now, std::move(reason), fx);
    }
    s.state.cursor_ms = plan.cursor_ms;
  }
  if (s.state.paused) {
    Arm(slot, std::nullopt);
    return;
  }
  const auto next = s.Timing().Next(s.state.cursor_ms);
  s.ended = !next;
  Arm(slot, next);
}

void ScheduleBook::EmitWindow(Slot& slot, std::int64_t window, std::int64_t now, std::string reason,
                              ScheduleEffects& fx) {
  Schedule& s = slot.s;
  const std::int64_t run_at = window + JitterOf(s.spec.id, window, s.spec.jitter_ms);
  auto job = fx.Emit(s, window, run_at);
  HistoryEntry e;
  e.window_ms = window;
  e.through_ms = window;
  e.at_ms = now;
  if (job.ok()) {
    e.emitted = true;
    e.reason = std::move(reason);
    e.job_id = *job;
    e.lag_ms = now - window;
    TrackLive(slot, *job);
    s.state.last_window_ms = window;
    s.state.last_enqueued_at_ms = now;
  } else {
    e.reason = "refused: " + std::string(CodeName(job.status().code()));
  }
  AddHistory(s, std::move(e));
}

void ScheduleBook::AddHistory(Schedule& s, HistoryEntry e) {
  e.seq = s.state.next_history_seq++;
  s.history.push_back(std::move(e));
  if (s.history.size() > kHistory) s.history.pop_front();
  s.unsaved_history = std::min<std::uint64_t>(s.unsaved_history + 1, kHistory);
}

void ScheduleBook::Arm(Slot& slot, std::optional<std::int64_t> due) {
  if (slot.s.next_fire_ms) --armed_;
  ++slot.gen;
  slot.s.next_fire_ms = due;
  if (due) {
    ++armed_;
    timers_.push(Timer{*due, slot.uid, slot.gen});
  }
}

void ScheduleBook::TrackLive(Slot& slot, JobId job) {
  if (slot.s.state.last_job != 0) live_job_owner_.erase(slot.s.state.last_job);
  slot.s.state.last_job = job;
  live_job_owner_[job] = slot.uid;
}

void ScheduleBook::MaybeCompact() {
  if (timers_.size() <= 2 * armed_ + 64) return;
  std::vector<Timer> valid;
  valid.reserve(armed_);
  for (auto& [id, slot] : by_id_) {
    if (slot.s.next_fire_ms) valid.push_back(Timer{*slot.s.next_fire_ms, slot.uid, slot.gen});
  }
  timers_ = decltype(timers_)(std::greater<>(), std::move(valid));
}

}  // namespace ym::cron
