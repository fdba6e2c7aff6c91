// CronExpr: when a schedule fires (issue 11), as a pure function of an instant and a time zone.
//
// Two forms:
//   * a calendar expression, matched against LOCAL time in an IANA zone:
//       5 fields  "MIN HOUR DOM MONTH DOW"          (fires at second 0), or
//       6 fields  "SEC MIN HOUR DOM MONTH DOW"      (the optional seconds field comes first),
//     each field `*`, `?` (DOM and DOW only, same as `*`), a value, a range `a-b`, a step `*/n`,
//     `a-b/n` or `a/n` (from a to the field's maximum), or a comma list of those. MONTH takes
//     JAN..DEC and DOW SUN..SAT (any case); DOW 7 is Sunday too. The macros @yearly
//     (@annually), @monthly, @weekly, @daily (@midnight) and @hourly stand for their usual
//     expressions. DOM and DOW combine as in Vixie cron: when both are restricted (neither is
//     `*`/`?`), a day matches if EITHER matches ("0 9 1 * MON": the 1st and every Monday);
//     otherwise the restricted one decides. Quartz's L, W and # are refused, as is @reboot.
//   * a fixed interval, "every 90s" (also "@every 90s"; units s, m, h, d = 24 h, combinable as
//     "every 1h30m"), 1 s to 366 d: fires at anchor + k * interval, k >= 1, whatever the zone.
//
// Time zones (docs/cron.md, "DST"). A calendar expression names local times; a local time maps
// to at most one firing instant:
//   * a local time that exists once fires at that instant;
//   * a local time that does not exist (skipped by a spring-forward gap) fires once, at the
//     first instant after the gap (every such time of one gap fires at that one instant, once);
//   * a local time that exists twice (a fall-back fold) fires once, at its first occurrence.
// So fire instants are strictly increasing, none is missed and none repeats. The arithmetic is
// date/tz's over Debian's tzdata; nothing here parses zone rules.
//
// Next(after) is the first fire instant strictly after `after` (ms; fire instants are whole
// seconds). Cost: a calendar expression jumps field by field (month, day, hour, minute,
// second), so one call is a few dozen zone conversions in the worst case plus, right after a
// fold, one skip over the repeated range; an expression that can never match (Feb 30) is
// refused by Parse. Pure: no clock, no I/O, the zone is looked up beforehand.
#pragma once

#include <date/tz.h>

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ym::cron {

class CronExpr {
 public:
  static constexpr std::int64_t kMaxIntervalMs = 366LL * 86'400'000;

  // kValidation naming `field` (e.g. "schedule.cron") and what is wrong, with the position of
  // the bad field ("field 3 (day of month): 32 is out of range 1-31").
  static Result<CronExpr> Parse(std::string_view text, std::string_view field = "cron");

  // The first fire instant strictly after `after_ms`. For an interval, instants are
  // anchor_ms + k * interval (k >= 1; `after_ms` before the anchor gives the first); a calendar
  // expression ignores the anchor. nullopt only when the answer would pass the year 9999.
  std::optional<std::int64_t> Next(const date::time_zone& tz, std::int64_t after_ms,
                                   std::int64_t anchor_ms = 0) const;
  // The next `n` fire instants after `after_ms` (fewer near the year 9999).
  std::vector<std::int64_t> NextN(const date::time_zone& tz, std::int64_t after_ms, std::size_t n,
                                  std::int64_t anchor_ms = 0) const;

  bool is_interval() const { return interval_ms_ > 0; }
  std::int64_t interval_ms() const { return interval_ms_; }
  // The text as given, trimmed (what the API shows back).
  const std::string& text() const { return text_; }

 private:
  CronExpr() = default;
  // Calendar matching on a local civil time.
  bool DayMatches(const date::year_month_day& ymd, date::weekday wd) const;
  // The first local time >= `t` (whole seconds) whose fields all match; nullopt past year 9999.
  std::optional<date::local_seconds> NextLocal(date::local_seconds t) const;

  std::string text_;
  std::int64_t interval_ms_ = 0;  // > 0: a fixed interval; the fields below are unused
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> dom_;     // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> dow_;      // 0 = Sunday
  bool dom_any_ = true;     // DOM was * or ?
  bool dow_any_ = true;
};

}  // namespace ym::cron
