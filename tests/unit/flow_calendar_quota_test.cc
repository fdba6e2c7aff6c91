// CalendarQuota and its windows (src/core/flow/calendar_quota.h) over the real tz database:
// the windows in zones whose transitions fall on midnight, a skipped day, ISO weeks and months;
// the counting, the roll-over, a clock stepping back, and persistence of the counters.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <tuple>

#include "common/time_zone.h"
#include "core/flow/calendar_quota.h"

namespace ym::flow {
namespace {

const date::time_zone& Zone(const char* name) {
  Result<const date::time_zone*> tz = FindTimeZone(name, "zone");
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return **tz;
}

// Epoch ms of a UTC date and time.
std::int64_t Utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  const date::sys_days day{date::year{y} / date::month{m} / date::day{d}};
  const auto t = day + std::chrono::hours{hh} + std::chrono::minutes{mm};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

constexpr std::int64_t kHour = 3'600'000;

}  // namespace

// Readable failures: windows as UTC times.
void PrintTo(const CalendarWindow& w, std::ostream* os) {
  using Ms = std::chrono::milliseconds;
  *os << "[" << date::format("%FT%TZ", date::sys_time<Ms>{Ms{w.start_ms}}) << ", "
      << date::format("%FT%TZ", date::sys_time<Ms>{Ms{w.end_ms}}) << ")";
}

namespace {

TEST(FlowTimeZone, FindsIanaNamesAndRefusesOthers) {
  EXPECT_TRUE(FindTimeZone("UTC", "f").ok());
  EXPECT_TRUE(FindTimeZone("Europe/Paris", "f").ok());
  for (const char* bad : {"", "Mars/Olympus", "../../etc/passwd", "europe/paris"}) {
    Result<const date::time_zone*> tz = FindTimeZone(bad, "limits[0].time_zone");
    ASSERT_FALSE(tz.ok()) << bad;
    EXPECT_EQ(tz.status().code(), Code::kValidation);
    EXPECT_NE(tz.status().message().find("limits[0].time_zone"), std::string::npos);
  }
}

TEST(FlowCalendarWindow, UtcDayWeekMonth) {
  const date::time_zone& utc = Zone("UTC");
  const std::int64_t t = Utc(2024, 2, 29, 13, 5);  // a Thursday, in a leap February
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, utc, t),
            (CalendarWindow{Utc(2024, 2, 29), Utc(2024, 3, 1)}));
  EXPECT_EQ(WindowAt(CalendarPeriod::kWeek, utc, t),
            (CalendarWindow{Utc(2024, 2, 26), Utc(2024, 3, 4)}));  // Monday to Monday
  EXPECT_EQ(WindowAt(CalendarPeriod::kMonth, utc, t),
            (CalendarWindow{Utc(2024, 2, 1), Utc(2024, 3, 1)}));
  // A Monday 00:00 opens its week; a Sunday 23:59 is the week before.
  EXPECT_EQ(WindowAt(CalendarPeriod::kWeek, utc, Utc(2024, 3, 4)).start_ms, Utc(2024, 3, 4));
  EXPECT_EQ(WindowAt(CalendarPeriod::kWeek, utc, Utc(2024, 3, 3, 23, 59)).start_ms,
            Utc(2024, 2, 26));
  // December rolls into the next year.
  EXPECT_EQ(WindowAt(CalendarPeriod::kMonth, utc, Utc(2023, 12, 31, 23, 59)),
            (CalendarWindow{Utc(2023, 12, 1), Utc(2024, 1, 1)}));
}

TEST(FlowCalendarWindow, ParisDaysAre23And25HoursLongAtTheTransitions) {
  const date::time_zone& paris = Zone("Europe/Paris");
  // 2024-03-31: 02:00 CET -> 03:00 CEST. The day runs from 23:00Z (the 30th) to 22:00Z.
  const CalendarWindow spring = WindowAt(CalendarPeriod::kDay, paris, Utc(2024, 3, 31, 12));
  EXPECT_EQ(spring, (CalendarWindow{Utc(2024, 3, 30, 23), Utc(2024, 3, 31, 22)}));
  EXPECT_EQ(spring.end_ms - spring.start_ms, 23 * kHour);
  const CalendarWindow autumn = WindowAt(CalendarPeriod::kDay, paris, Utc(2024, 10, 27, 12));
  EXPECT_EQ(autumn, (CalendarWindow{Utc(2024, 10, 26, 22), Utc(2024, 10, 27, 23)}));
  EXPECT_EQ(autumn.end_ms - autumn.start_ms, 25 * kHour);
  // A month in local time: March 2024 from 1 March 00:00 CET to 1 April 00:00 CEST.
  EXPECT_EQ(WindowAt(CalendarPeriod::kMonth, paris, Utc(2024, 3, 15)),
            (CalendarWindow{Utc(2024, 2, 29, 23), Utc(2024, 3, 31, 22)}));
}

TEST(FlowCalendarWindow, AMidnightThatDoesNotExistOpensTheDayAtTheEndOfTheGap) {
  // America/Sao_Paulo, 2018-11-04 03:00Z: local 00:00 (-03) jumped to 01:00 (-02).
  const date::time_zone& sp = Zone("America/Sao_Paulo");
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, sp, Utc(2018, 11, 3, 12)),
            (CalendarWindow{Utc(2018, 11, 3, 3), Utc(2018, 11, 4, 3)}));
  const CalendarWindow short_day = WindowAt(CalendarPeriod::kDay, sp, Utc(2018, 11, 4, 3));
  EXPECT_EQ(short_day, (CalendarWindow{Utc(2018, 11, 4, 3), Utc(2018, 11, 5, 2)}));
  EXPECT_EQ(short_day.end_ms - short_day.start_ms, 23 * kHour);
}

TEST(FlowCalendarWindow, AnHourRepeatedBeforeMidnightBelongsToTheDayItReads) {
  // America/Asuncion, 2019-03-24 03:00Z: local 24:00 (-03) turned back to 23:00 (-04), so
  // 23:00-24:00 of the 23rd happened twice; midnight itself happened once, at 04:00Z. The 23rd
  // is 25 hours long and keeps its repeated hour.
  const date::time_zone& asu = Zone("America/Asuncion");
  const CalendarWindow long_day = WindowAt(CalendarPeriod::kDay, asu, Utc(2019, 3, 23, 12));
  EXPECT_EQ(long_day, (CalendarWindow{Utc(2019, 3, 23, 3), Utc(2019, 3, 24, 4)}));
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, asu, Utc(2019, 3, 24, 3, 30)), long_day)
      << "23:30 the second time is still the 23rd";
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, asu, Utc(2019, 3, 24, 12)),
            (CalendarWindow{Utc(2019, 3, 24, 4), Utc(2019, 3, 25, 4)}));
  EXPECT_EQ(WindowAt(CalendarPeriod::kMonth, asu, Utc(2019, 3, 24, 3, 30)),
            (CalendarWindow{Utc(2019, 3, 1, 3), Utc(2019, 4, 1, 4)}));
}

TEST(FlowCalendarWindow, ADateThatReadsYesterdayAgainAfterMidnightStaysInTheNewDay) {
  // America/Goose_Bay changed clocks at 00:01 until 2010. On 2006-10-29 at 03:01Z local time went
  // from 00:01 (-03) back to 23:01 (-04) of the 28th: the 29th had begun for a minute, then the
  // date read the 28th again for an hour. The 28th ends at the first midnight; the instants
  // whose date reads "the 28th" again belong to the 29th (a window is never re-entered).
  const date::time_zone& gb = Zone("America/Goose_Bay");
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, gb, Utc(2006, 10, 28, 12)),
            (CalendarWindow{Utc(2006, 10, 28, 3), Utc(2006, 10, 29, 3)}));
  const CalendarWindow the_29th{Utc(2006, 10, 29, 3), Utc(2006, 10, 30, 4)};
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, gb, Utc(2006, 10, 29, 3, 0)), the_29th);
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, gb, Utc(2006, 10, 29, 3, 30)), the_29th)
      << "23:30 on the 28th, the second time, is after the 28th's window";
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, gb, Utc(2006, 10, 29, 12)), the_29th);
}

TEST(FlowCalendarWindow, ASkippedDayHasNoWindow) {
  // Pacific/Apia skipped 2011-12-30: 29 Dec 24:00 (-10) became 31 Dec 00:00 (+14) at 10:00Z.
  const date::time_zone& apia = Zone("Pacific/Apia");
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, apia, Utc(2011, 12, 30, 9, 59)),
            (CalendarWindow{Utc(2011, 12, 29, 10), Utc(2011, 12, 30, 10)}));
  EXPECT_EQ(WindowAt(CalendarPeriod::kDay, apia, Utc(2011, 12, 30, 10)).start_ms,
            Utc(2011, 12, 30, 10));
  // Walking the day windows of local 2011 meets 364 of them.
  const std::int64_t year_start =
      WindowAt(CalendarPeriod::kDay, apia, Utc(2011, 1, 1, 12)).start_ms;
  // 2011-12-31 12:00Z is 2012-01-01 02:00 in Apia (+14).
  const std::int64_t year_end =
      WindowAt(CalendarPeriod::kDay, apia, Utc(2011, 12, 31, 12)).start_ms;
  EXPECT_EQ(year_end, Utc(2011, 12, 31, 10));
  int days = 0;
  for (std::int64_t t = year_start; t < year_end && days < 400; ++days) {
    t = WindowAt(CalendarPeriod::kDay, apia, t).end_ms;
  }
  EXPECT_EQ(days, 364);
}

// Over random instants of three decades in zones with every kind of transition: each instant is
// inside its window, a window is the window of its own first and last instant, and the next
// window starts where it ends (windows tile time, no gap, no overlap).
TEST(FlowCalendarWindow, WindowsTileTimeInEveryZone) {
  std::mt19937_64 rng(20261125);
  std::uniform_int_distribution<std::int64_t> when(Utc(2005, 1, 1), Utc(2035, 1, 1));
  for (const char* name :
       {"UTC", "Europe/Paris", "America/Sao_Paulo", "America/Asuncion", "Pacific/Apia",
        "Australia/Lord_Howe", "Asia/Kathmandu", "America/Havana", "America/Santiago",
        "America/Goose_Bay", "America/St_Johns"}) {
    const date::time_zone& tz = Zone(name);
    for (CalendarPeriod p : {CalendarPeriod::kDay, CalendarPeriod::kWeek, CalendarPeriod::kMonth}) {
      for (int i = 0; i < 2000; ++i) {
        const std::int64_t t = when(rng);
        const CalendarWindow w = WindowAt(p, tz, t);
        ASSERT_LE(w.start_ms, t) << name << " " << PeriodName(p) << " t=" << t;
        ASSERT_LT(t, w.end_ms) << name << " " << PeriodName(p) << " t=" << t;
        ASSERT_EQ(WindowAt(p, tz, w.start_ms), w) << name << " t=" << t;
        ASSERT_EQ(WindowAt(p, tz, w.end_ms - 1), w) << name << " t=" << t;
        ASSERT_EQ(WindowAt(p, tz, w.end_ms).start_ms, w.end_ms) << name << " t=" << t;
        const std::int64_t hours = (w.end_ms - w.start_ms) / kHour;
        const std::int64_t nominal = p == CalendarPeriod::kDay    ? 24
                                     : p == CalendarPeriod::kWeek ? 168
                                                                  : 24 * 31;
        ASSERT_LE(hours, nominal + 2) << name << " " << PeriodName(p) << " t=" << t;
      }
    }
  }
}

TEST(FlowCalendarQuota, PeriodNamesRoundTripAndBadOnesAreRefused) {
  for (CalendarPeriod p : {CalendarPeriod::kDay, CalendarPeriod::kWeek, CalendarPeriod::kMonth}) {
    Result<CalendarPeriod> back = ParsePeriod(PeriodName(p), "period");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  Result<CalendarPeriod> bad = ParsePeriod("fortnight", "limits[2].period");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kValidation);
  EXPECT_NE(bad.status().message().find("limits[2].period"), std::string::npos);
}

TEST(FlowCalendarQuota, ConfigValidation) {
  CalendarQuotaConfig c;
  c.zone = &Zone("UTC");
  EXPECT_TRUE(c.Validate("q").ok());
  c.limit = 0;
  EXPECT_EQ(c.Validate("q").code(), Code::kValidation);
  c.limit = CalendarQuotaConfig::kMaxLimit + 1;
  EXPECT_EQ(c.Validate("q").code(), Code::kValidation);
  c.limit = 5;
  c.zone = nullptr;
  EXPECT_NE(c.Validate("quota").message().find("quota.time_zone"), std::string::npos);
}

CalendarQuota MakeQuota(std::uint32_t limit, CalendarPeriod p, const char* zone) {
  CalendarQuotaConfig c;
  c.limit = limit;
  c.period = p;
  c.zone = &Zone(zone);
  EXPECT_TRUE(c.Validate("q").ok());
  return CalendarQuota(c);
}

TEST(FlowCalendarQuota, CountsPerKeyUntilTheWindowEnds) {
  CalendarQuota q = MakeQuota(3, CalendarPeriod::kDay, "Europe/Paris");
  const std::int64_t t = Utc(2024, 6, 10, 8);  // 10:00 in Paris
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.Admit("acct-1", t + i));
  EXPECT_FALSE(q.Admit("acct-1", t + 10));
  EXPECT_EQ(q.Used("acct-1", t + 10), 3u);
  EXPECT_TRUE(q.Admit("acct-2", t + 10)) << "keys are counted apart";
  EXPECT_TRUE(q.Admit("", t + 10)) << "the empty key is a key like any other";
  // Exhausted: it opens at the next local midnight (22:00Z in summer), not 24 h later.
  EXPECT_EQ(q.NextOpen("acct-1", t + 10), Utc(2024, 6, 10, 22));
  EXPECT_EQ(q.NextOpen("acct-2", t + 10), t + 10);
  EXPECT_FALSE(q.Admit("acct-1", Utc(2024, 6, 10, 22) - 1));
  EXPECT_TRUE(q.Admit("acct-1", Utc(2024, 6, 10, 22)));
  EXPECT_EQ(q.KeyCount(), 1u) << "the roll-over dropped the other keys' counters";
  EXPECT_EQ(q.Used("acct-2", Utc(2024, 6, 10, 22)), 0u);
}

// Peek answers what NextOpen would without moving the window (reads are const), and a changed
// limit keeps the counts.
TEST(FlowCalendarQuota, PeekAgreesWithNextOpenAndSetLimitKeepsTheCounts) {
  CalendarQuota q = MakeQuota(2, CalendarPeriod::kDay, "UTC");
  const std::int64_t t = Utc(2024, 3, 5, 9);
  EXPECT_EQ(q.Peek("k", t), t) << "no window yet: open";
  ASSERT_TRUE(q.Admit("k", t));
  ASSERT_TRUE(q.Admit("k", t));
  EXPECT_EQ(q.Count("k"), 2u);
  EXPECT_EQ(q.Peek("k", t + 1), Utc(2024, 3, 6));
  EXPECT_EQ(q.Peek("other", t + 1), t + 1);
  EXPECT_EQ(q.Peek("k", Utc(2024, 3, 6)), Utc(2024, 3, 6)) << "the next window is open";
  EXPECT_EQ(q.window().start_ms, Utc(2024, 3, 5)) << "Peek moved nothing";
  EXPECT_EQ(q.Count("k"), 2u);
  q.SetLimit(3);
  EXPECT_EQ(q.Peek("k", t + 2), t + 2);
  EXPECT_TRUE(q.Admit("k", t + 2));
  EXPECT_FALSE(q.Admit("k", t + 3));
  q.SetLimit(1);  // below the count: refused until the window ends, nothing revoked
  EXPECT_EQ(q.Count("k"), 3u);
  EXPECT_EQ(q.Peek("k", t + 4), Utc(2024, 3, 6));
  for (std::int64_t now : {t + 4, Utc(2024, 3, 6) - 1})
    EXPECT_EQ(q.NextOpen("k", now), q.Peek("k", now));
}

TEST(FlowCalendarQuota, AClockSteppingBackNeverReopensAWindow) {
  CalendarQuota q = MakeQuota(2, CalendarPeriod::kDay, "UTC");
  EXPECT_TRUE(q.Admit("k", Utc(2024, 1, 2, 0, 30)));
  EXPECT_TRUE(q.Admit("k", Utc(2024, 1, 2, 0, 31)));
  // The wall clock steps back into the previous day: that day's window is not re-entered (its
  // counts are gone), and the current one keeps counting.
  EXPECT_FALSE(q.Admit("k", Utc(2024, 1, 1, 23, 50)));
  EXPECT_EQ(q.window().start_ms, Utc(2024, 1, 2));
  EXPECT_EQ(q.NextOpen("k", Utc(2024, 1, 1, 23, 50)), Utc(2024, 1, 3));
  EXPECT_TRUE(q.Admit("k", Utc(2024, 1, 3)));
}

TEST(FlowCalendarQuota, CountersRestoreAfterARestart) {
  CalendarQuota before = MakeQuota(5, CalendarPeriod::kWeek, "America/Sao_Paulo");
  const std::int64_t t = Utc(2024, 5, 15, 12);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(before.Admit("a", t));
  ASSERT_TRUE(before.Admit("b", t));
  std::vector<CalendarQuota::Counter> saved = before.Counters();
  ASSERT_EQ(saved.size(), 2u);

  CalendarQuota after = MakeQuota(5, CalendarPeriod::kWeek, "America/Sao_Paulo");
  after.Restore(saved, t + kHour);
  EXPECT_EQ(after.Used("a", t + kHour), 4u);
  EXPECT_TRUE(after.Admit("a", t + kHour));
  EXPECT_FALSE(after.Admit("a", t + kHour)) << "the restart neither reset nor lost the count";
  EXPECT_EQ(after.Used("b", t + kHour), 1u);

  // Counters of a week that is over are dropped.
  CalendarQuota next_week = MakeQuota(5, CalendarPeriod::kWeek, "America/Sao_Paulo");
  next_week.Restore(saved, t + 8 * 24 * kHour);
  EXPECT_EQ(next_week.KeyCount(), 0u);
  EXPECT_EQ(next_week.Used("a", t + 8 * 24 * kHour), 0u);

  // The clock stepped back across the restart: the stored (later) window is kept.
  CalendarQuota stepped = MakeQuota(5, CalendarPeriod::kWeek, "America/Sao_Paulo");
  stepped.Restore(saved, t - 8 * 24 * kHour);
  EXPECT_EQ(stepped.window().start_ms, before.window().start_ms);
  EXPECT_EQ(stepped.Used("a", t - 8 * 24 * kHour), 4u);

  // A limit lowered since the counters were written: the key is exhausted, not over-counted.
  CalendarQuota lowered = MakeQuota(2, CalendarPeriod::kWeek, "America/Sao_Paulo");
  lowered.Restore(saved, t);
  EXPECT_EQ(lowered.Used("a", t), 2u);
  EXPECT_FALSE(lowered.Admit("a", t));
}

// A randomized model: many keys, times that mostly move forward (and sometimes step back), in a
// zone with midnight transitions. Every admission is counted against the window the quota was in;
// no (key, window) pair ever exceeds the limit, and while time only moves forward a key is never
// refused below its limit.
TEST(FlowCalendarQuota, RandomizedNeverExceedsTheLimitAndNeverRefusesBelowIt) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    std::mt19937_64 rng(seed);
    const std::uint32_t limit = 1 + rng() % 4;
    const CalendarPeriod period = static_cast<CalendarPeriod>(rng() % 3);
    CalendarQuota q = MakeQuota(limit, period, "America/Asuncion");
    std::map<std::tuple<std::string, std::int64_t>, std::uint32_t> admitted;
    std::int64_t now = Utc(2018, 9, 1) + static_cast<std::int64_t>(rng() % (400 * 24)) * kHour;
    std::int64_t latest = now;
    std::int64_t previous_window = 0;
    for (int step = 0; step < 20000; ++step) {
      const bool back = rng() % 50 == 0;
      now += back ? -static_cast<std::int64_t>(rng() % (6 * kHour))
                  : static_cast<std::int64_t>(rng() % (3 * kHour));
      const bool monotone = now >= latest;
      latest = std::max(latest, now);
      const std::string key = "k" + std::to_string(rng() % 5);
      const std::uint32_t used_before = q.Used(key, now);
      const bool ok = q.Admit(key, now);
      const std::int64_t window = q.window().start_ms;
      if (ok) {
        const std::uint32_t count = ++admitted[std::make_tuple(key, window)];
        ASSERT_LE(count, limit) << "seed " << seed << " step " << step;
      } else if (monotone) {
        ASSERT_EQ(used_before, limit) << "refused below the limit, seed " << seed;
      }
      ASSERT_GE(window, previous_window) << "the window moved back, seed " << seed;
      previous_window = window;
    }
  }
}

}  // namespace
}  // namespace ym::flow
