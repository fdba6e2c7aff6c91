// CalendarQuota: at most `limit` starts per calendar window (a day, an ISO week from Monday
// 00:00, or a month) in an IANA time zone, counted per key (issue 10, "Calendar quotas": "at
// most 500 a day per account, the day as the account's users see it").
//
// Windows. A window is the interval of instants whose local time (in the quota's zone) lies in
// one calendar day, week or month, with two rules for the instants where local time is not a
// plain clock:
//   * a boundary that does not exist locally (a spring-forward gap over midnight, as
//     America/Sao_Paulo had until 2019, or the day Pacific/Apia skipped, 2011-12-30) is crossed
//     at the first instant after the gap: the window simply starts there;
//   * a boundary that local time crosses twice (clocks turned back over midnight, as
//     America/Goose_Bay did at 00:01 until 2010: 00:01 became 23:01 of the day before) is
//     crossed at its FIRST passage, and the window it opens keeps every later instant,
//     including the hour whose date reads "yesterday" again. An hour repeated BEFORE midnight
//     (America/Asuncion: 24:00 became 23:00) simply makes that day 25 hours long.
// So windows are contiguous and never overlap, and time never re-enters a window it has left:
// nothing counted in one window can be counted again in an earlier one.
// The arithmetic is date/tz's over the tz database (Debian's tzdata); nothing here parses rules.
//
// Counting. All keys of one quota share its current window; the counters belong to it, and
// when an admission arrives past its end every counter resets at once (the map is cleared), so
// memory is the number of distinct keys admitted within one window. If the wall clock steps
// back before the window's start, the window stays where it is (never moves back): the counts
// stay, so a clock step can delay admissions but never admit more than `limit` in a window.
//
// Durability is the caller's: Counters() are what must reach the store with the starts they
// count (issue 10: "counters persisted so a restart never resets or double-counts them"), and
// Restore() puts them back at recovery.
//
// Pure: no clock reads (time passed in) and no I/O; the zone is looked up and loaded beforehand
// (common/time_zone.h).
#pragma once

#include <date/tz.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace ym::flow {

enum class CalendarPeriod : std::uint8_t { kDay, kWeek, kMonth };

// "day", "week", "month".
std::string_view PeriodName(CalendarPeriod period);
// kValidation naming `field` for anything else.
Result<CalendarPeriod> ParsePeriod(std::string_view text, std::string_view field);

// [start_ms, end_ms): epoch milliseconds.
struct CalendarWindow {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  bool operator==(const CalendarWindow&) const = default;
};

// The window of `period` in zone `tz` that contains the instant `t_ms` (see the rules above):
// start_ms <= t_ms < end_ms, and consecutive windows share their boundary.
CalendarWindow WindowAt(CalendarPeriod period, const date::time_zone& tz, std::int64_t t_ms);

struct CalendarQuotaConfig {
  static constexpr std::uint32_t kMaxLimit = 1'000'000'000;

  std::uint32_t limit = 1;  // starts per window per key, 1..kMaxLimit
  CalendarPeriod period = CalendarPeriod::kDay;
  const date::time_zone* zone = nullptr;  // required; UTC is a zone like any other

  // kValidation naming `field` when the limit is out of range or the zone is missing.
  Status Validate(std::string_view field) const;
};

class CalendarQuota {
 public:
  // `config` must be valid (Validate()).
  explicit CalendarQuota(const CalendarQuotaConfig& config);

  // May one more job of `key` start at `now_ms`? When yes, it is counted.
  bool Admit(std::string_view key, std::int64_t now_ms);
  // The earliest instant at which Admit(key) could succeed: `now_ms` itself while the key is
  // under its limit, else the end of the current window.
  std::int64_t NextOpen(std::string_view key, std::int64_t now_ms);
  // Starts counted for `key` in the window containing `now_ms` (0 in a window not begun yet).
  std::uint32_t Used(std::string_view key, std::int64_t now_ms);
  // NextOpen without moving the window (for reads: what the state says at `now_ms`).
  std::int64_t Peek(std::string_view key, std::int64_t now_ms) const;
  // Starts counted for `key` in the current window (window()), whatever the time.
  std::uint32_t Count(std::string_view key) const;
  // Changes the limit, keeping the counts: lowering it below a key's count refuses that key
  // until the window ends; raising it lets the key start again at once.
  void SetLimit(std::uint32_t limit) { config_.limit = limit; }

  // The counters of the current window, for the store.
  struct Counter {
    std::string key;
    std::int64_t window_start_ms = 0;
    std::uint32_t used = 0;
    bool operator==(const Counter&) const = default;
  };
  std::vector<Counter> Counters() const;
  // Recovery: the stored counters, any order, given the current time. A counter of an earlier
  // window than now's is dropped (that window is over); a counter of a later window (the clock
  // stepped back across the restart) moves the quota to that window, as it would have stayed
  // there without the restart. Several counters of one key and window keep the largest count.
  void Restore(const std::vector<Counter>& counters, std::int64_t now_ms);

  const CalendarWindow& window() const { return window_; }
  std::size_t KeyCount() const { return used_.size(); }
  const CalendarQuotaConfig& config() const { return config_; }

 private:
  // Moves the current window forward to the one containing `now_ms` if it has passed.
  void Roll(std::int64_t now_ms);

  CalendarQuotaConfig config_;
  bool has_window_ = false;
  CalendarWindow window_;
  std::unordered_map<std::string, std::uint32_t> used_;  // counters of window_, all > 0
};

}  // namespace ym::flow
