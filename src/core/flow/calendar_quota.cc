#include "core/flow/calendar_quota.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace ym::flow {

namespace {

using Ms = std::chrono::milliseconds;

// The first instant at which local time in `tz` reaches local midnight `day`: the midnight
// itself when it exists once; its first occurrence when local time turned back over it; the end
// of the gap (the transition) when local time jumped over it.
std::int64_t FirstInstantOf(const date::time_zone& tz, date::local_days day) {
  const date::local_seconds ls{day.time_since_epoch()};
  const date::local_info info = tz.get_info(ls);
  date::sys_seconds at;
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:  // `first` is the earlier of the two offsets in force
      at = date::sys_seconds{ls.time_since_epoch() - info.first.offset};
      break;
    case date::local_info::nonexistent:  // `second` begins where the gap ends
      at = info.second.begin;
      break;
  }
  return std::chrono::duration_cast<Ms>(at.time_since_epoch()).count();
}

// The local midnight that opens the window of `period` holding local day `d`, and the next.
void LocalBounds(CalendarPeriod period, date::local_days d, date::local_days* start,
                 date::local_days* end) {
  switch (period) {
    case CalendarPeriod::kDay:
      *start = d;
      *end = d + date::days{1};
      return;
    case CalendarPeriod::kWeek:  // ISO 8601: weeks start on Monday
      *start = d - (date::weekday{d} - date::Monday);
      *end = *start + date::days{7};
      return;
    case CalendarPeriod::kMonth: {
      const date::year_month_day ymd{d};
      const date::year_month first = ymd.year() / ymd.month();
      *start = date::local_days{first / 1};
      *end = date::local_days{(first + date::months{1}) / 1};
      return;
    }
  }
}

}  // namespace

std::string_view PeriodName(CalendarPeriod period) {
  switch (period) {
    case CalendarPeriod::kDay:
      return "day";
    case CalendarPeriod::kWeek:
      return "week";
    case CalendarPeriod::kMonth:
      return "month";
  }
  return "day";
}

Result<CalendarPeriod> ParsePeriod(std::string_view text, std::string_view field) {
  for (CalendarPeriod p : {CalendarPeriod::kDay, CalendarPeriod::kWeek, CalendarPeriod::kMonth}) {
    if (text == PeriodName(p)) return p;
  }
  return Validation(std::string(field) + ": \"" + std::string(text) +
                    "\" is not a period (day, week or month)");
}

CalendarWindow WindowAt(CalendarPeriod period, const date::time_zone& tz, std::int64_t t_ms) {
  const date::sys_time<Ms> t{Ms{t_ms}};
  const date::local_days today = date::floor<date::days>(tz.to_local(t));
  date::local_days start, end;
  LocalBounds(period, today, &start, &end);
  CalendarWindow w{FirstInstantOf(tz, start), FirstInstantOf(tz, end)};
  // Local time that turned back over the end boundary reads "before it" again, yet the window
  // was left at the boundary's first occurrence: such an instant belongs to the next window.
  // (Transitions move clocks by hours, so one step forward is always enough.)
  if (t_ms >= w.end_ms) {
    LocalBounds(period, end, &start, &end);
    w = CalendarWindow{FirstInstantOf(tz, start), FirstInstantOf(tz, end)};
  }
  return w;
}

Status CalendarQuotaConfig::Validate(std::string_view field) const {
  const std::string f(field);
  if (limit < 1 || limit > kMaxLimit) {
    return Validation(f + ".limit must be 1.." + std::to_string(kMaxLimit));
  }
  if (zone == nullptr) return Validation(f + ".time_zone is required");
  return Status::Ok();
}

CalendarQuota::CalendarQuota(const CalendarQuotaConfig& config) : config_(config) {}

void CalendarQuota::Roll(std::int64_t now_ms) {
  if (has_window_ && now_ms < window_.end_ms) return;  // before the start too: never move back
  window_ = WindowAt(config_.period, *config_.zone, now_ms);
  has_window_ = true;
  used_.clear();
}

bool CalendarQuota::Admit(std::string_view key, std::int64_t now_ms) {
  Roll(now_ms);
  auto it = used_.find(std::string(key));
  if (it == used_.end()) {
    used_.emplace(std::string(key), 1);  // limit >= 1
    return true;
  }
  if (it->second >= config_.limit) return false;
  ++it->second;
  return true;
}

std::int64_t CalendarQuota::NextOpen(std::string_view key, std::int64_t now_ms) {
  return Used(key, now_ms) < config_.limit ? now_ms : window_.end_ms;
}

std::uint32_t CalendarQuota::Used(std::string_view key, std::int64_t now_ms) {
  Roll(now_ms);
  auto it = used_.find(std::string(key));
  return it == used_.end() ? 0 : it->second;
}

std::int64_t CalendarQuota::Peek(std::string_view key, std::int64_t now_ms) const {
  if (!has_window_ || now_ms >= window_.end_ms) return now_ms;  // Roll would start afresh
  return Count(key) < config_.limit ? now_ms : window_.end_ms;
}

std::uint32_t CalendarQuota::Count(std::string_view key) const {
  auto it = used_.find(std::string(key));
  return it == used_.end() ? 0 : it->second;
}

std::vector<CalendarQuota::Counter> CalendarQuota::Counters() const {
  std::vector<Counter> out;
  out.reserve(used_.size());
  for (const auto& [key, used] : used_) out.push_back(Counter{key, window_.start_ms, used});
  return out;
}

void CalendarQuota::Restore(const std::vector<Counter>& counters, std::int64_t now_ms) {
  Roll(now_ms);
  // The latest window any counter names, if later than now's (a clock stepped back).
  for (const Counter& c : counters) {
    if (c.window_start_ms > window_.start_ms) {
      window_ = WindowAt(config_.period, *config_.zone, c.window_start_ms);
      used_.clear();
    }
  }
  for (const Counter& c : counters) {
    if (c.window_start_ms != window_.start_ms || c.used == 0) continue;
    std::uint32_t& used = used_[c.key];
    used = std::max(used, std::min(c.used, config_.limit));
  }
}

}  // namespace ym::flow
