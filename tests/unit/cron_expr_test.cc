// CronExpr (src/core/cron/cron_expr.h): parsing with clear errors, fire times in UTC and in zones
// with DST (a skipped local time fires once at the end of the gap, a repeated one once at its
// first occurrence), the day-of-month / day-of-week rule, intervals, and a randomized comparison
// with a brute-force scan of local times around the transitions of several zones.

#include "core/cron/cron_expr.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/time_zone.h"
#include "sanitizer_scale.h"

namespace ym::cron {
namespace {

const date::time_zone& Zone(const char* name) {
  auto tz = FindTimeZone(name, "zone");
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return **tz;
}

// Epoch ms of a UTC date and time.
std::int64_t Utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  const date::sys_days day{date::year{y} / date::month{mo} / date::day{d}};
  const auto t = day + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{s};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Fire times are whole seconds; shown without the ms ("2024-06-10T08:15:00Z").
std::string Iso(std::int64_t ms) {
  return date::format(
      "%FT%TZ", date::floor<std::chrono::seconds>(
                    date::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{ms}}));
}

std::vector<std::string> NextIso(const std::string& expr, const char* zone, std::int64_t after,
                                 std::size_t n) {
  auto e = CronExpr::Parse(expr);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  std::vector<std::string> out;
  if (!e.ok()) return out;
  for (std::int64_t t : e->NextN(Zone(zone), after, n)) out.push_back(Iso(t));
  return out;
}

void ExpectInvalid(std::string_view text, std::string_view needle) {
  auto e = CronExpr::Parse(text, "schedule.cron");
  ASSERT_FALSE(e.ok()) << text;
  EXPECT_EQ(e.status().code(), Code::kValidation);
  EXPECT_NE(e.status().message().find("schedule.cron"), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find(needle), std::string::npos)
      << text << " -> " << e.status().message();
}

TEST(CronExpr, ParseErrorsNameTheFieldAndWhatIsWrong) {
  ExpectInvalid("", "empty");
  ExpectInvalid("* * * *", "expected 5 fields");
  ExpectInvalid("* * * * * * *", "got 7");
  ExpectInvalid("60 * * * *", "field 1 (minute): 60 is out of range 0-59");
  ExpectInvalid("* 24 * * *", "field 2 (hour): 24");
  ExpectInvalid("* * 0 * *", "field 3 (day of month): 0 is out of range 1-31");
  ExpectInvalid("* * 32 * *", "32 is out of range 1-31");
  ExpectInvalid("* * * 13 *", "field 4 (month)");
  ExpectInvalid("* * * * 8", "field 5 (day of week): 8 is out of range 0-7");
  ExpectInvalid("* * * FOO *", "\"FOO\" is not a number or a name");
  ExpectInvalid("5-1 * * * *", "goes backwards");
  ExpectInvalid("*/0 * * * *", "step 0 is out of range 1-60");
  ExpectInvalid("*/x * * * *", "step \"x\" is not a number");
  ExpectInvalid("1,,2 * * * *", "an empty list item");
  ExpectInvalid("* * L * *", "not supported");
  ExpectInvalid("* * 15W * *", "not supported");
  ExpectInvalid("* * * * 5#3", "not supported");
  ExpectInvalid("? * * * *", "field 1 (minute)");
  ExpectInvalid("0 0 30 2 *", "never fires");
  ExpectInvalid("0 0 31 4,6,9,11 *", "never fires");
  ExpectInvalid("61 * * * * *", "field 1 (second): 61");
  ExpectInvalid("@reboot", "unknown macro");
  ExpectInvalid("every", "expected 5 fields");
  ExpectInvalid("every 0s", "1s..366d");
  ExpectInvalid("every 500", "not an interval");
  ExpectInvalid("every 5x", "not an interval");
  ExpectInvalid("every 367d", "1s..366d");
  ExpectInvalid("every 99999999999999d", "not an interval");
  // Valid forms.
  for (const char* ok : {"*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 jan,jul ?", "30 */2 * * * *",
                         "0 0 29 2 *", "0 9 * * 7", "@daily", "@HOURLY", "@every 90s",
                         "every 1h30m", "  0 0 * * *  ", "0 0 ? * SUN"}) {
    EXPECT_TRUE(CronExpr::Parse(ok).ok()) << ok << ": " << CronExpr::Parse(ok).status().ToString();
  }
  EXPECT_EQ(CronExpr::Parse("  @daily ")->text(), "@daily");
}

TEST(CronExpr, UtcBasics) {
  const std::int64_t t = Utc(2024, 6, 10, 8, 7, 30);  // a Monday
  EXPECT_EQ(NextIso("*/15 * * * *", "UTC", t, 3),
            (std::vector<std::string>{"2024-06-10T08:15:00Z", "2024-06-10T08:30:00Z",
                                      "2024-06-10T08:45:00Z"}));
  EXPECT_EQ(NextIso("0 9 * * MON-FRI", "UTC", t, 3),
            (std::vector<std::string>{"2024-06-10T09:00:00Z", "2024-06-11T09:00:00Z",
                                      "2024-06-12T09:00:00Z"}));
  EXPECT_EQ(NextIso("0 9 * * 6,7", "UTC", t, 2),
            (std::vector<std::string>{"2024-06-15T09:00:00Z", "2024-06-16T09:00:00Z"}));
  EXPECT_EQ(NextIso("@monthly", "UTC", t, 2),
            (std::vector<std::string>{"2024-07-01T00:00:00Z", "2024-08-01T00:00:00Z"}));
  EXPECT_EQ(NextIso("@yearly", "UTC", t, 1), (std::vector<std::string>{"2025-01-01T00:00:00Z"}));
  EXPECT_EQ(NextIso("@weekly", "UTC", t, 1), (std::vector<std::string>{"2024-06-16T00:00:00Z"}));
  EXPECT_EQ(NextIso("30 */20 * * * *", "UTC", t, 3),
            (std::vector<std::string>{"2024-06-10T08:20:30Z", "2024-06-10T08:40:30Z",
                                      "2024-06-10T09:00:30Z"}));
  // Strictly after: a fire time is not returned again.
  EXPECT_EQ(NextIso("*/15 * * * *", "UTC", Utc(2024, 6, 10, 8, 15), 1),
            (std::vector<std::string>{"2024-06-10T08:30:00Z"}));
  EXPECT_EQ(NextIso("*/15 * * * *", "UTC", Utc(2024, 6, 10, 8, 15) - 1, 1),
            (std::vector<std::string>{"2024-06-10T08:15:00Z"}));
  // Feb 29 comes every 4 years, and 2100 is not a leap year.
  EXPECT_EQ(NextIso("0 0 29 2 *", "UTC", Utc(2097, 1, 1), 2),
            (std::vector<std::string>{"2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"}));
  // Before 1970 and near the end of the range.
  EXPECT_EQ(NextIso("@yearly", "UTC", Utc(1960, 5, 5), 1),
            (std::vector<std::string>{"1961-01-01T00:00:00Z"}));
  EXPECT_TRUE(NextIso("@yearly", "UTC", Utc(9999, 6, 1), 1).empty());
}

TEST(CronExpr, DayOfMonthAndDayOfWeekCombineAsInVixieCron) {
  const std::int64_t t = Utc(2024, 6, 1);  // a Saturday
  // Both restricted: the 15th OR any Monday.
  EXPECT_EQ(NextIso("0 0 15 * MON", "UTC", t, 4),
            (std::vector<std::string>{"2024-06-03T00:00:00Z", "2024-06-10T00:00:00Z",
                                      "2024-06-15T00:00:00Z", "2024-06-17T00:00:00Z"}));
  // Only one restricted: it decides.
  EXPECT_EQ(NextIso("0 0 15 * *", "UTC", t, 1), (std::vector<std::string>{"2024-06-15T00:00:00Z"}));
  EXPECT_EQ(NextIso("0 0 ? * MON", "UTC", t, 1),
            (std::vector<std::string>{"2024-06-03T00:00:00Z"}));
}

TEST(CronExpr, ParisSpringForwardFiresOnceAtTheEndOfTheGap) {
  // 2024-03-31: 02:00 CET becomes 03:00 CEST (01:00Z). 02:00..02:59 do not exist locally.
  const std::int64_t t = Utc(2024, 3, 30, 23);  // 00:00 CET
  EXPECT_EQ(NextIso("30 2 * * *", "Europe/Paris", t, 2),
            (std::vector<std::string>{"2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"}));
  // Every 15 minutes: 01:45 CET, then 02:00/02:15/02:30/02:45 all fall in the gap and fire once
  // at 03:00 CEST, which is itself a match: one fire, then 03:15.
  EXPECT_EQ(NextIso("*/15 * * * *", "Europe/Paris", Utc(2024, 3, 31, 0, 40), 3),
            (std::vector<std::string>{"2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z",
                                      "2024-03-31T01:15:00Z"}));
  // Asked from inside the instant of the gap's end, it is not repeated.
  EXPECT_EQ(NextIso("30 2 * * *", "Europe/Paris", Utc(2024, 3, 31, 1), 1),
            (std::vector<std::string>{"2024-04-01T00:30:00Z"}));
}

TEST(CronExpr, ParisFallBackFiresOnceAtTheFirstOccurrence) {
  // 2024-10-27: 03:00 CEST becomes 02:00 CET (01:00Z). 02:00..02:59 happen twice.
  EXPECT_EQ(NextIso("30 2 * * *", "Europe/Paris", Utc(2024, 10, 26, 22), 2),
            (std::vector<std::string>{"2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"}));
  // Every 20 minutes across the fold: 02:00, 02:20, 02:40 CEST, then 03:00 CET (02:00Z); the
  // second pass of 02:xx (01:00Z to 02:00Z) fires nothing: each local time fires once.
  EXPECT_EQ(NextIso("*/20 * * * *", "Europe/Paris", Utc(2024, 10, 26, 23, 50), 5),
            (std::vector<std::string>{"2024-10-27T00:00:00Z", "2024-10-27T00:20:00Z",
                                      "2024-10-27T00:40:00Z", "2024-10-27T02:00:00Z",
                                      "2024-10-27T02:20:00Z"}));
  // Asked from inside the second pass: the next is after the fold.
  EXPECT_EQ(NextIso("*/20 * * * *", "Europe/Paris", Utc(2024, 10, 27, 1, 30), 1),
            (std::vector<std::string>{"2024-10-27T02:00:00Z"}));
}

TEST(CronExpr, NewYorkTransitionsAndHourlyJobs) {
  // 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z); 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z).
  EXPECT_EQ(NextIso("0 * * * *", "America/New_York", Utc(2024, 3, 10, 5, 30), 3),
            (std::vector<std::string>{"2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z",
                                      "2024-03-10T08:00:00Z"}));
  // Fall back: 01:00 EDT (05:00Z) fires, 01:00 EST (06:00Z) is its repetition: not fired.
  EXPECT_EQ(NextIso("0 * * * *", "America/New_York", Utc(2024, 11, 3, 4, 30), 3),
            (std::vector<std::string>{"2024-11-03T05:00:00Z", "2024-11-03T07:00:00Z",
                                      "2024-11-03T08:00:00Z"}));
  EXPECT_EQ(NextIso("0 9 * * *", "America/New_York", Utc(2024, 11, 2, 14), 2),
            (std::vector<std::string>{"2024-11-03T14:00:00Z", "2024-11-04T14:00:00Z"}));
}

TEST(CronExpr, IntervalsRunFromTheirAnchorWhateverTheZone) {
  auto e = CronExpr::Parse("every 1h30m");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->is_interval());
  EXPECT_EQ(e->interval_ms(), 5'400'000);
  const std::int64_t anchor = Utc(2024, 10, 27, 0, 10);
  const auto& paris = Zone("Europe/Paris");
  EXPECT_EQ(*e->Next(paris, anchor - 5000, anchor), anchor + 5'400'000);
  EXPECT_EQ(*e->Next(paris, anchor, anchor), anchor + 5'400'000);
  EXPECT_EQ(*e->Next(paris, anchor + 5'400'000, anchor), anchor + 10'800'000);
  EXPECT_EQ(*e->Next(paris, anchor + 5'399'999, anchor), anchor + 5'400'000);
  // A DST change does not bend an interval.
  EXPECT_EQ(e->NextN(Zone("UTC"), anchor, 4, anchor), e->NextN(paris, anchor, 4, anchor));
}

// --- Randomized comparison with a brute-force scan ---------------------------------------------

struct Sets {
  std::set<int> sec, min, hour, dom, month, dow;
  bool dom_any = true, dow_any = true;
};

// A random field: its text and its value set (computed here, independently of the parser).
std::string RandomField(Rng& rng, int lo, int hi, bool frequent, std::set<int>* out, bool* any) {
  *any = false;
  const auto span = static_cast<std::uint64_t>(hi - lo + 1);
  switch (rng.Uniform(frequent ? 3 : 5)) {
    case 0:
      for (int v = lo; v <= hi; ++v) out->insert(v);
      *any = true;
      return "*";
    case 1: {
      const int step = 1 + static_cast<int>(rng.Uniform(std::min<std::uint64_t>(span, 20)));
      for (int v = lo; v <= hi; v += step) out->insert(v);
      return "*/" + std::to_string(step);
    }
    case 2: {
      const int a = lo + static_cast<int>(rng.Uniform(span));
      const int b = a + static_cast<int>(rng.Uniform(static_cast<std::uint64_t>(hi - a + 1)));
      for (int v = a; v <= b; ++v) out->insert(v);
      return std::to_string(a) + "-" + std::to_string(b);
    }
    default: {
      std::string text;
      const int n = 1 + static_cast<int>(rng.Uniform(4));
      for (int i = 0; i < n; ++i) {
        const int v = lo + static_cast<int>(rng.Uniform(span));
        out->insert(v);
        text += (text.empty() ? "" : ",") + std::to_string(v);
      }
      return text;
    }
  }
}

bool Matches(const Sets& s, date::local_seconds t) {
  const auto day = date::floor<date::days>(t);
  const date::year_month_day ymd{day};
  const auto tod = (t - day).count();
  if (!s.month.count(static_cast<int>(static_cast<unsigned>(ymd.month())))) return false;
  const bool dom = s.dom.count(static_cast<int>(static_cast<unsigned>(ymd.day()))) > 0;
  const bool dow = s.dow.count(static_cast<int>(date::weekday{day}.c_encoding())) > 0;
  const bool day_ok = s.dom_any ? dow : s.dow_any ? dom : (dom || dow);
  return day_ok && s.hour.count(static_cast<int>(tod / 3600)) &&
         s.min.count(static_cast<int>(tod / 60 % 60)) && s.sec.count(static_cast<int>(tod % 60));
}

// The rule of the header, applied to every local second of a range: the smallest instant after
// `after_s` among matching local times.
std::optional<std::int64_t> BruteNext(const Sets& s, const date::time_zone& tz,
                                      std::int64_t after_s, std::int64_t horizon_s) {
  const auto start =
      tz.to_local(date::sys_seconds{std::chrono::seconds{after_s}}) - std::chrono::hours{4};
  std::optional<std::int64_t> best;
  date::local_seconds best_local{};
  for (auto t = start; t < start + std::chrono::seconds{horizon_s}; t += std::chrono::seconds{1}) {
    // A local time 4 h past the best one's maps to a later instant (offsets differ by less).
    if (best && t > best_local + std::chrono::hours{4}) break;
    if (!Matches(s, t)) continue;
    const auto info = tz.get_info(t);
    const std::int64_t at =
        info.result == date::local_info::nonexistent
            ? info.second.begin.time_since_epoch().count()
            : (t - info.first.offset).time_since_epoch().count();  // unique or first occurrence
    if (at > after_s && (!best || at < *best)) {
      best = at;
      best_local = t;
    }
  }
  return best;
}

TEST(CronExprModel, NextMatchesABruteForceScanAroundTransitions) {
  struct Case {
    const char* zone;
    std::int64_t around;  // a transition
  };
  const Case cases[] = {
      {"Europe/Paris", Utc(2024, 3, 31, 1)},
      {"Europe/Paris", Utc(2024, 10, 27, 1)},
      {"America/New_York", Utc(2024, 3, 10, 7)},
      {"America/New_York", Utc(2024, 11, 3, 6)},
      {"Australia/Lord_Howe", Utc(2024, 4, 6, 15)},  // a 30-minute fold
      {"America/Sao_Paulo", Utc(2018, 11, 4, 3)},    // a gap over midnight
      {"UTC", Utc(2024, 6, 1)},
  };
  int compared = 0;
  for (std::uint64_t seed = 1; seed <= test::ModelSeeds(100); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    Sets s;
    bool any = false;
    // Mostly frequent expressions so that the brute force finds the answer within its horizon.
    std::string text = RandomField(rng, 0, 59, true, &s.sec, &any) + " " +
                       RandomField(rng, 0, 59, true, &s.min, &any) + " " +
                       RandomField(rng, 0, 23, true, &s.hour, &any) + " * *";  // dom, month
    for (int d = 1; d <= 31; ++d) s.dom.insert(d);
    for (int m = 1; m <= 12; ++m) s.month.insert(m);
    text += " " + RandomField(rng, 0, 6, false, &s.dow, &s.dow_any);
    auto e = CronExpr::Parse(text);
    ASSERT_TRUE(e.ok()) << text << ": " << e.status().ToString();
    const Case& c = cases[rng.Uniform(std::size(cases))];
    const auto& tz = Zone(c.zone);
    for (int probe = 0; probe < 4; ++probe) {
      const std::int64_t after =
          c.around - 3 * 3'600'000 + static_cast<std::int64_t>(rng.Uniform(6 * 3'600'000));
      const auto brute = BruteNext(s, tz, after / 1000, 9 * 86'400);
      const auto next = e->Next(tz, after);
      if (!brute) continue;  // nothing within the horizon (a rare weekday set): not compared
      ASSERT_TRUE(next.has_value()) << text << " in " << c.zone << " after " << Iso(after);
      ASSERT_EQ(Iso(*next), Iso(*brute * 1000))
          << text << " in " << c.zone << " after " << Iso(after);
      ++compared;
    }
  }
  EXPECT_GT(compared, 3 * static_cast<int>(test::ModelSeeds(100)));  // most of 4 probes per seed
}

}  // namespace
}  // namespace ym::cron
