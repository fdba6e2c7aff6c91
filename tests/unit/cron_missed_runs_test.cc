// MissedRuns (src/core/cron/missed_runs.h): each policy after a downtime, on-time windows under
// every policy, bounds, a week-long per-second gap decided with bounded work, and a randomized
// comparison with a full enumeration of the due windows.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/time_zone.h"
#include "core/cron/missed_runs.h"

namespace ym::cron {
namespace {

constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kDay10 = 1'717'977'600'000;  // 2024-06-10T00:00:00Z

const date::time_zone& Utc() { return **FindTimeZone("UTC", "zone"); }

CronExpr Expr(const char* text) {
  auto e = CronExpr::Parse(text);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return *e;
}

MissedRunConfig Config(MissedPolicy p, std::uint32_t max_count = 100,
                       std::int64_t max_age_ms = 86'400'000, std::int64_t grace_ms = 60'000) {
  MissedRunConfig c;
  c.policy = p;
  c.max_count = max_count;
  c.max_age_ms = max_age_ms;
  c.grace_ms = grace_ms;
  EXPECT_TRUE(c.Validate("missed").ok());
  return c;
}

TEST(CronMissedRuns, PolicyNamesAndConfigValidation) {
  for (auto p : {MissedPolicy::kCatchUp, MissedPolicy::kLatestOnly, MissedPolicy::kSkip}) {
    EXPECT_EQ(*ParseMissedPolicy(MissedPolicyName(p), "f"), p);
  }
  auto bad = ParseMissedPolicy("backfill", "schedule.missed.policy");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("schedule.missed.policy"), std::string::npos);
  MissedRunConfig c;
  EXPECT_TRUE(c.Validate("m").ok()) << "the defaults are valid";
  c.max_count = 0;
  EXPECT_NE(c.Validate("m").message().find("m.max_count"), std::string::npos);
  c = MissedRunConfig{};
  c.max_age_ms = 999;
  EXPECT_NE(c.Validate("m").message().find("m.max_age_ms"), std::string::npos);
  c = MissedRunConfig{};
  c.grace_ms = c.max_age_ms + 1;
  EXPECT_NE(c.Validate("m").message().find("m.grace_ms"), std::string::npos);
}

TEST(CronMissedRuns, OnTimeWindowsAreEmittedByEveryPolicy) {
  const CronExpr e = Expr("0 * * * *");
  const ScheduleTiming t{&e, &Utc(), 0, std::nullopt, std::nullopt};
  for (auto p : {MissedPolicy::kCatchUp, MissedPolicy::kLatestOnly, MissedPolicy::kSkip}) {
    SCOPED_TRACE(std::string(MissedPolicyName(p)));
    // Nothing due yet: the cursor stays.
    DuePlan none = PlanDue(t, kDay10 + 10 * kHour, kDay10 + 10 * kHour + 59 * kMin, Config(p));
    EXPECT_TRUE(none.emit.empty());
    EXPECT_TRUE(none.skipped.empty());
    EXPECT_EQ(none.cursor_ms, kDay10 + 10 * kHour);
    // The 11:00 window, 30 ms late.
    DuePlan plan = PlanDue(t, kDay10 + 10 * kHour, kDay10 + 11 * kHour + 30, Config(p));
    EXPECT_EQ(plan.emit, (std::vector<std::int64_t>{kDay10 + 11 * kHour}));
    EXPECT_TRUE(plan.skipped.empty());
    EXPECT_EQ(plan.cursor_ms, kDay10 + 11 * kHour);
  }
}

TEST(CronMissedRuns, ADowntimeIsDecidedByThePolicy) {
  const CronExpr e = Expr("0 * * * *");
  const ScheduleTiming t{&e, &Utc(), 0, std::nullopt, std::nullopt};
  const std::int64_t cursor = kDay10 + 10 * kHour;           // 10:00 was emitted
  const std::int64_t now = kDay10 + 15 * kHour + 30 * kMin;  // back at 15:30: 11..15 are due
  const std::int64_t h15 = kDay10 + 15 * kHour;

  DuePlan skip = PlanDue(t, cursor, now, Config(MissedPolicy::kSkip));
  EXPECT_TRUE(skip.emit.empty()) << "15:00 is 30 minutes late: missed";
  ASSERT_EQ(skip.skipped.size(), 1u);
  EXPECT_EQ(skip.skipped[0].after_ms, cursor);
  EXPECT_EQ(skip.skipped[0].before_ms, h15 + 1);
  EXPECT_EQ(skip.skipped[0].reason, "missed");
  EXPECT_EQ(skip.cursor_ms, h15);

  DuePlan latest = PlanDue(t, cursor, now, Config(MissedPolicy::kLatestOnly));
  EXPECT_EQ(latest.emit, (std::vector<std::int64_t>{h15}));
  ASSERT_EQ(latest.skipped.size(), 1u);
  EXPECT_EQ(latest.skipped[0].before_ms, h15);
  EXPECT_EQ(latest.skipped[0].reason, "superseded");

  DuePlan too_old = PlanDue(t, cursor, now, Config(MissedPolicy::kLatestOnly, 100, 20 * kMin));
  EXPECT_TRUE(too_old.emit.empty());
  ASSERT_EQ(too_old.skipped.size(), 2u);
  EXPECT_EQ(too_old.skipped[0].reason, "superseded");
  EXPECT_EQ(too_old.skipped[1].reason, "too_old");
  EXPECT_EQ(too_old.cursor_ms, h15);

  DuePlan all = PlanDue(t, cursor, now, Config(MissedPolicy::kCatchUp));
  EXPECT_EQ(all.emit, (std::vector<std::int64_t>{kDay10 + 11 * kHour, kDay10 + 12 * kHour,
                                                 kDay10 + 13 * kHour, kDay10 + 14 * kHour, h15}));
  EXPECT_TRUE(all.skipped.empty());

  DuePlan three = PlanDue(t, cursor, now, Config(MissedPolicy::kCatchUp, 3));
  EXPECT_EQ(three.emit, (std::vector<std::int64_t>{kDay10 + 13 * kHour, kDay10 + 14 * kHour, h15}));
  ASSERT_EQ(three.skipped.size(), 1u);
  EXPECT_EQ(three.skipped[0].reason, "over_count");
  EXPECT_EQ(three.skipped[0].after_ms, cursor);
  EXPECT_EQ(three.skipped[0].before_ms, kDay10 + 13 * kHour);

  // At most 2.5 h old: 13:00 onwards; 11:00 and 12:00 too old.
  DuePlan young = PlanDue(t, cursor, now, Config(MissedPolicy::kCatchUp, 100, 150 * kMin));
  EXPECT_EQ(young.emit, (std::vector<std::int64_t>{kDay10 + 13 * kHour, kDay10 + 14 * kHour, h15}));
  ASSERT_EQ(young.skipped.size(), 1u);
  EXPECT_EQ(young.skipped[0].reason, "too_old");
  EXPECT_EQ(young.skipped[0].before_ms, kDay10 + 13 * kHour);
}

TEST(CronMissedRuns, BoundsAreRespected) {
  const CronExpr e = Expr("0 * * * *");
  const ScheduleTiming t{&e, &Utc(), 0, kDay10 + 12 * kHour, kDay10 + 14 * kHour};
  DuePlan all = PlanDue(t, kDay10, kDay10 + 20 * kHour, Config(MissedPolicy::kCatchUp));
  EXPECT_EQ(all.emit, (std::vector<std::int64_t>{kDay10 + 12 * kHour, kDay10 + 13 * kHour,
                                                 kDay10 + 14 * kHour}));
  EXPECT_FALSE(t.Next(kDay10 + 14 * kHour).has_value()) << "the schedule has ended";
}

TEST(CronMissedRuns, AWeekOfPerSecondWindowsIsDecidedWithBoundedWork) {
  const CronExpr e = Expr("* * * * * *");
  const ScheduleTiming t{&e, &Utc(), 0, std::nullopt, std::nullopt};
  const std::int64_t cursor = kDay10;
  const std::int64_t now = kDay10 + 7 * 24 * kHour + 500;
  DuePlan plan = PlanDue(t, cursor, now, Config(MissedPolicy::kCatchUp, 5, 366LL * 86'400'000));
  EXPECT_EQ(plan.emit,
            (std::vector<std::int64_t>{now - 4500, now - 3500, now - 2500, now - 1500, now - 500}));
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].reason, "over_count");
  DuePlan skip = PlanDue(t, cursor, now, Config(MissedPolicy::kSkip, 5, 86'400'000, 0));
  EXPECT_TRUE(skip.emit.empty());
  EXPECT_EQ(skip.cursor_ms, now - 500);
}

// Every due window is either emitted or inside exactly one skipped range, with the reason the
// policy gives it; emitted windows are in no range; the cursor is the latest due window.
TEST(CronMissedRunsModel, EveryDueWindowIsDecidedOnceAsThePolicySays) {
  const char* exprs[] = {"*/7 * * * *", "0 9-17 * * MON-FRI", "every 25m", "30 */3 * * *"};
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const CronExpr e = Expr(exprs[rng.Uniform(4)]);
    const std::int64_t anchor = kDay10 + static_cast<std::int64_t>(rng.Uniform(kHour));
    const ScheduleTiming t{&e, &**FindTimeZone("Europe/Paris", "z"), anchor, std::nullopt,
                           std::nullopt};
    const std::int64_t cursor = kDay10 + static_cast<std::int64_t>(rng.Uniform(3 * 24 * kHour));
    const std::int64_t now = cursor + static_cast<std::int64_t>(rng.Uniform(4 * 24 * kHour));
    const auto policy = static_cast<MissedPolicy>(rng.Uniform(3));
    const MissedRunConfig c = Config(policy, 1 + static_cast<std::uint32_t>(rng.Uniform(30)),
                                     kHour + static_cast<std::int64_t>(rng.Uniform(48 * kHour)),
                                     static_cast<std::int64_t>(rng.Uniform(2 * kHour)));
    std::vector<std::int64_t> due;
    for (auto w = t.Next(cursor); w && *w <= now; w = t.Next(*w)) due.push_back(*w);
    const DuePlan plan = PlanDue(t, cursor, now, c);
    // The expected decision of each window.
    std::vector<std::int64_t> expect_emit;
    std::vector<std::string> expect_reason(due.size());
    for (std::size_t i = 0; i < due.size(); ++i) {
      const bool last = i + 1 == due.size();
      const std::int64_t age = now - due[i];
      switch (policy) {
        case MissedPolicy::kSkip:
          if (last && age <= c.grace_ms) {
            expect_emit.push_back(due[i]);
          } else {
            expect_reason[i] = "missed";
          }
          break;
        case MissedPolicy::kLatestOnly:
          if (!last) {
            expect_reason[i] = "superseded";
          } else if (age <= c.max_age_ms) {
            expect_emit.push_back(due[i]);
          } else {
            expect_reason[i] = "too_old";
          }
          break;
        case MissedPolicy::kCatchUp: {
          if (age > c.max_age_ms) {
            expect_reason[i] = "too_old";
          } else if (due.size() - i > c.max_count) {
            expect_reason[i] = "over_count";
          } else {
            expect_emit.push_back(due[i]);
          }
          break;
        }
      }
    }
    ASSERT_EQ(plan.emit, expect_emit) << MissedPolicyName(policy);
    EXPECT_EQ(plan.cursor_ms, due.empty() ? cursor : due.back());
    for (std::size_t i = 0; i < due.size(); ++i) {
      int in = 0;
      std::string_view reason;
      for (const SkippedRange& r : plan.skipped) {
        if (r.after_ms < due[i] && due[i] < r.before_ms) {
          ++in;
          reason = r.reason;
        }
      }
      if (expect_reason[i].empty()) {
        ASSERT_EQ(in, 0) << "emitted window " << i << " inside a skipped range";
      } else {
        ASSERT_EQ(in, 1) << "window " << i << " of " << due.size();
        ASSERT_EQ(reason, expect_reason[i]) << "window " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ym::cron
