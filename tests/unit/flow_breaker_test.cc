// Unit tests of the circuit breaker (core/flow/breaker.h): every transition at explicit times,
// the exact ratio window, the capped doubling, the single half-open trial, stale permits,
// abandoned trials, Reset, and the config checks.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "core/flow/breaker.h"

namespace ym::flow {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;

CircuitBreaker MakeBreaker(const BreakerConfig& c) {
  auto b = CircuitBreaker::Make(c);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

BreakerConfig Consecutive(std::int64_t n, std::int64_t base = 1000, std::int64_t max = 8000) {
  BreakerConfig c;
  c.consecutive_failures = n;
  c.open_base_ms = base;
  c.open_max_ms = max;
  return c;
}

BreakerConfig Ratio(std::int64_t window, std::int64_t min_samples, std::int64_t percent) {
  BreakerConfig c;
  c.consecutive_failures = 0;
  c.window = window;
  c.min_samples = min_samples;
  c.failure_percent = percent;
  return c;
}

// Admits one job at `now` and reports `failure` for it.
void RunOne(CircuitBreaker& b, std::int64_t now, bool failure) {
  std::optional<BreakerPermit> p = b.Admit(now);
  ASSERT_TRUE(p.has_value()) << "refused at +" << now - kT0;
  ASSERT_TRUE(failure ? b.OnFailure(*p, now) : b.OnSuccess(*p, now));
}

TEST(FlowBreakerConfig, ValidateNamesTheBadField) {
  EXPECT_TRUE(BreakerConfig{}.Validate().ok());
  EXPECT_TRUE(Ratio(10, 10, 100).Validate().ok());
  struct Bad {
    BreakerConfig c;
    const char* word;
  };
  BreakerConfig none = Ratio(0, 1, 50);
  BreakerConfig neg = Consecutive(-1);
  BreakerConfig big_window = Ratio(BreakerConfig::kMaxWindow + 1, 1, 50);
  BreakerConfig min0 = Ratio(10, 0, 50);
  BreakerConfig min_over = Ratio(10, 11, 50);
  BreakerConfig pct0 = Ratio(10, 5, 0);
  BreakerConfig pct101 = Ratio(10, 5, 101);
  BreakerConfig base0 = Consecutive(3, 0, 1000);
  BreakerConfig max_below = Consecutive(3, 1000, 999);
  BreakerConfig max_over = Consecutive(3, 1000, BreakerConfig::kMaxOpenMs + 1);
  for (const Bad& b :
       {Bad{none, "needs"}, Bad{neg, "consecutive_failures"}, Bad{big_window, "window"},
        Bad{min0, "min_samples"}, Bad{min_over, "min_samples"}, Bad{pct0, "failure_percent"},
        Bad{pct101, "failure_percent"}, Bad{base0, "open_base_ms"}, Bad{max_below, "open_max_ms"},
        Bad{max_over, "open_max_ms"}}) {
    Status s = b.c.Validate();
    EXPECT_EQ(s.code(), Code::kValidation);
    EXPECT_NE(s.message().find(b.word), std::string::npos) << s.message();
    EXPECT_FALSE(CircuitBreaker::Make(b.c).ok());
  }
}

TEST(FlowBreaker, OpensAfterNConsecutiveFailuresOnly) {
  CircuitBreaker b = MakeBreaker(Consecutive(3));
  RunOne(b, kT0, true);
  RunOne(b, kT0 + 1, true);
  RunOne(b, kT0 + 2, false);  // a success breaks the run
  RunOne(b, kT0 + 3, true);
  RunOne(b, kT0 + 4, true);
  EXPECT_EQ(b.State().phase, BreakerPhase::kClosed);
  EXPECT_EQ(b.State().consecutive_failures, 2);
  RunOne(b, kT0 + 10, true);
  BreakerState s = b.State();
  EXPECT_EQ(s.phase, BreakerPhase::kOpen);
  EXPECT_EQ(s.opened_at_ms, kT0 + 10);
  EXPECT_EQ(s.next_open_at_ms, kT0 + 1010);
  EXPECT_EQ(s.open_interval_ms, 1000);
  EXPECT_EQ(s.consecutive_opens, 1);
  EXPECT_FALSE(b.Admit(kT0 + 1009).has_value());
  EXPECT_EQ(b.NextOpen(kT0 + 500), kT0 + 1010);
  EXPECT_EQ(b.NextOpen(kT0 + 2000), kT0 + 2000);
}

TEST(FlowBreaker, HalfOpenLetsExactlyOneTrialAndItsSuccessCloses) {
  CircuitBreaker b = MakeBreaker(Consecutive(1));
  RunOne(b, kT0, true);
  ASSERT_EQ(b.State().phase, BreakerPhase::kOpen);
  std::optional<BreakerPermit> trial = b.Admit(kT0 + 1000);
  ASSERT_TRUE(trial.has_value());
  EXPECT_EQ(b.State().phase, BreakerPhase::kHalfOpen);
  EXPECT_TRUE(b.State().trial_in_flight);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(b.Admit(kT0 + 1000 + i).has_value());
  EXPECT_EQ(b.NextOpen(kT0 + 1500), kNever);  // only the trial's outcome opens it
  EXPECT_TRUE(b.OnSuccess(*trial, kT0 + 1500));
  BreakerState s = b.State();
  EXPECT_EQ(s.phase, BreakerPhase::kClosed);
  EXPECT_EQ(s.consecutive_opens, 0);
  EXPECT_EQ(s.opened_at_ms, 0);
  EXPECT_EQ(b.NextOpen(kT0 + 1500), kT0 + 1500);
  EXPECT_TRUE(b.Admit(kT0 + 1500).has_value());
  // The growth was reset: the next open is the base interval again.
  RunOne(b, kT0 + 2000, true);
  EXPECT_EQ(b.State().next_open_at_ms, kT0 + 3000);
}

TEST(FlowBreaker, FailedTrialsDoubleTheIntervalUpToTheCap) {
  CircuitBreaker b = MakeBreaker(Consecutive(1, 1000, 5000));
  std::int64_t now = kT0;
  RunOne(b, now, true);
  for (std::int64_t expect : {2000, 4000, 5000, 5000}) {
    now = b.State().next_open_at_ms;
    std::optional<BreakerPermit> trial = b.Admit(now);
    ASSERT_TRUE(trial.has_value());
    ASSERT_TRUE(b.OnFailure(*trial, now + 7));
    BreakerState s = b.State();
    EXPECT_EQ(s.phase, BreakerPhase::kOpen);
    EXPECT_EQ(s.open_interval_ms, expect);
    EXPECT_EQ(s.opened_at_ms, now + 7);
    EXPECT_EQ(s.next_open_at_ms, now + 7 + expect);
  }
  EXPECT_EQ(b.State().consecutive_opens, 5);
}

TEST(FlowBreaker, RatioOverTheLastMOutcomesWithAMinimumOfKSamples) {
  // Window of 4, judged from 4 samples, open at >= 75% failures.
  CircuitBreaker b = MakeBreaker(Ratio(4, 4, 75));
  RunOne(b, kT0 + 1, true);
  RunOne(b, kT0 + 2, true);
  RunOne(b, kT0 + 3, true);  // 3 of 3 failed, but fewer than min_samples
  EXPECT_EQ(b.State().phase, BreakerPhase::kClosed);
  RunOne(b, kT0 + 4, false);  // F F F S: 3/4 = 75%: opens, on a success
  EXPECT_EQ(b.State().phase, BreakerPhase::kOpen);
  EXPECT_EQ(b.State().opened_at_ms, kT0 + 4);
  // Close through a trial; the window starts empty.
  std::optional<BreakerPermit> trial = b.Admit(kT0 + 1004);
  ASSERT_TRUE(trial.has_value());
  ASSERT_TRUE(b.OnSuccess(*trial, kT0 + 1004));
  EXPECT_EQ(b.State().window_samples, 0);
  // The oldest outcome leaves the window: F S F S | F -> S F S F (50%) | F -> F S F F (75%).
  RunOne(b, kT0 + 2000, true);
  RunOne(b, kT0 + 2001, false);
  RunOne(b, kT0 + 2002, true);
  RunOne(b, kT0 + 2003, false);
  RunOne(b, kT0 + 2004, true);
  BreakerState s = b.State();
  EXPECT_EQ(s.phase, BreakerPhase::kClosed);
  EXPECT_EQ(s.window_samples, 4);
  EXPECT_EQ(s.window_failures, 2);
  RunOne(b, kT0 + 2005, true);
  EXPECT_EQ(b.State().phase, BreakerPhase::kOpen);
}

TEST(FlowBreaker, RatioThresholdIsExactAtTheBoundary) {
  // 1 of 3 is 33.3...%: percent 33 opens, percent 34 does not (integer cross-multiplication).
  for (std::int64_t percent : {33, 34}) {
    CircuitBreaker b = MakeBreaker(Ratio(3, 3, percent));
    RunOne(b, kT0, false);
    RunOne(b, kT0, false);
    RunOne(b, kT0, true);
    EXPECT_EQ(b.State().phase, percent == 33 ? BreakerPhase::kOpen : BreakerPhase::kClosed)
        << percent;
  }
}

TEST(FlowBreaker, OutcomesOfJobsAdmittedBeforeAStateChangeAreIgnored) {
  CircuitBreaker b = MakeBreaker(Consecutive(2));
  std::optional<BreakerPermit> early = b.Admit(kT0);  // a long job started while closed
  ASSERT_TRUE(early.has_value());
  RunOne(b, kT0 + 1, true);
  RunOne(b, kT0 + 2, true);
  ASSERT_EQ(b.State().phase, BreakerPhase::kOpen);
  // Its failure, reported while open, neither re-opens nor extends the interval.
  EXPECT_FALSE(b.OnFailure(*early, kT0 + 500));
  EXPECT_EQ(b.State().next_open_at_ms, kT0 + 1002);
  // Half-open: its success must not pass for the trial's.
  std::optional<BreakerPermit> trial = b.Admit(kT0 + 1002);
  ASSERT_TRUE(trial.has_value());
  EXPECT_FALSE(b.OnSuccess(*early, kT0 + 1003));
  EXPECT_EQ(b.State().phase, BreakerPhase::kHalfOpen);
  ASSERT_TRUE(b.OnSuccess(*trial, kT0 + 1004));
  // Closed again: a failure from the old closed period does not count in the new one.
  EXPECT_FALSE(b.OnFailure(*early, kT0 + 1005));
  EXPECT_EQ(b.State().consecutive_failures, 0);
  // Nor does the trial's permit report twice.
  EXPECT_FALSE(b.OnFailure(*trial, kT0 + 1006));
}

TEST(FlowBreaker, AnAbandonedTrialLetsTheNextOneThrough) {
  CircuitBreaker b = MakeBreaker(Consecutive(1));
  RunOne(b, kT0, true);
  std::optional<BreakerPermit> trial = b.Admit(kT0 + 1000);
  ASSERT_TRUE(trial.has_value());
  EXPECT_FALSE(b.Admit(kT0 + 1001).has_value());
  EXPECT_TRUE(b.OnAbandoned(*trial));  // e.g. the trial job was cancelled
  EXPECT_EQ(b.NextOpen(kT0 + 1001), kT0 + 1001);
  std::optional<BreakerPermit> second = b.Admit(kT0 + 1001);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(b.Admit(kT0 + 1002).has_value());
  // The abandoned trial cannot report afterwards and decide for the second one.
  EXPECT_FALSE(b.OnSuccess(*trial, kT0 + 1003));
  EXPECT_FALSE(b.OnAbandoned(*trial));
  EXPECT_EQ(b.State().phase, BreakerPhase::kHalfOpen);
  ASSERT_TRUE(b.OnFailure(*second, kT0 + 1004));
  EXPECT_EQ(b.State().open_interval_ms, 2000);
}

TEST(FlowBreaker, ResetClosesAndForgetsEverything) {
  CircuitBreaker b = MakeBreaker(Consecutive(1, 1000, 60'000));
  RunOne(b, kT0, true);
  std::optional<BreakerPermit> trial = b.Admit(kT0 + 1000);
  ASSERT_TRUE(trial.has_value());
  ASSERT_TRUE(b.OnFailure(*trial, kT0 + 1000));  // open for 2 s now
  b.Reset();
  BreakerState s = b.State();
  EXPECT_EQ(s.phase, BreakerPhase::kClosed);
  EXPECT_EQ(s.consecutive_opens, 0);
  EXPECT_EQ(s.next_open_at_ms, 0);
  std::optional<BreakerPermit> p = b.Admit(kT0 + 1001);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(b.OnSuccess(*trial, kT0 + 1001));  // permits from before the reset are ignored
  ASSERT_TRUE(b.OnFailure(*p, kT0 + 1002));
  EXPECT_EQ(b.State().open_interval_ms, 1000);  // growth starts over
  b.Reset();
  EXPECT_TRUE(b.Admit(kT0 + 1003).has_value());  // and from open, too
}

TEST(FlowBreaker, ExtremeTimesAndIntervalsDoNotOverflow) {
  BreakerConfig c = Consecutive(1, BreakerConfig::kMaxOpenMs, BreakerConfig::kMaxOpenMs);
  CircuitBreaker b = MakeBreaker(c);
  const std::int64_t late = std::numeric_limits<std::int64_t>::max() - 5;
  RunOne(b, late, true);
  EXPECT_EQ(b.State().next_open_at_ms, std::numeric_limits<std::int64_t>::max());
  EXPECT_FALSE(b.Admit(late).has_value());
  EXPECT_EQ(b.NextOpen(late), std::numeric_limits<std::int64_t>::max());
  // Sixty failed trials at the cap: the interval stays at the cap.
  CircuitBreaker d = MakeBreaker(Consecutive(1, 1, BreakerConfig::kMaxOpenMs));
  std::int64_t now = kT0;
  RunOne(d, now, true);
  for (int i = 0; i < 60; ++i) {
    now = d.State().next_open_at_ms;
    std::optional<BreakerPermit> trial = d.Admit(now);
    ASSERT_TRUE(trial.has_value());
    ASSERT_TRUE(d.OnFailure(*trial, now));
  }
  EXPECT_EQ(d.State().open_interval_ms, BreakerConfig::kMaxOpenMs);
}

TEST(FlowBreaker, PhaseNamesAreTheApiStrings) {
  EXPECT_EQ(BreakerPhaseName(BreakerPhase::kClosed), "closed");
  EXPECT_EQ(BreakerPhaseName(BreakerPhase::kOpen), "open");
  EXPECT_EQ(BreakerPhaseName(BreakerPhase::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace ym::flow
