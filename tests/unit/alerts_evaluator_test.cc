// Unit tests of the alert rules (obs/alerts/rule.h) and the evaluator (obs/alerts/evaluator.h):
// every condition, `for`, resolve, one firing per episode, windows and counter restarts,
// rules on every queue, restore after a restart; time from a ManualClock.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "obs/alerts/evaluator.h"
#include "obs/alerts/rule.h"

namespace ym::alerts {
namespace {

AlertRule Rule(std::string name, std::string queue, std::string condition) {
  AlertRule r;
  r.name = std::move(name);
  r.queue = std::move(queue);
  auto c = ParseCondition(condition);
  EXPECT_TRUE(c.ok()) << condition << ": " << c.status().ToString();
  if (c.ok()) r.condition = *c;
  r.webhooks.push_back(Webhook{*ParseWebhookUrl("http://127.0.0.1:9/hook"), {}});
  return r;
}

QueueSample Ready(std::string queue, std::uint64_t ready, std::int64_t age_ms) {
  QueueSample s;
  s.queue = std::move(queue);
  s.ready = ready;
  s.oldest_ready_age_ms = age_ms;
  return s;
}

QueueSample Counts(std::string queue, std::uint64_t succeeded, std::uint64_t failed,
                   std::uint64_t dead) {
  QueueSample s;
  s.queue = std::move(queue);
  s.succeeded = succeeded;
  s.failed = failed;
  s.dead = dead;
  return s;
}

AlertStatus StatusOf(const AlertEvaluator& ev, const std::string& rule, const std::string& queue) {
  for (const AlertStatus& s : ev.Statuses()) {
    if (s.rule == rule && s.queue == queue) return s;
  }
  ADD_FAILURE() << "no instance " << rule << "/" << queue;
  return {};
}

// --- Parsing ------------------------------------------------------------------------------

TEST(AlertRuleTest, ParsesEveryCondition) {
  auto lag = ParseCondition("lag_seconds > 30 for 1m");
  ASSERT_TRUE(lag.ok()) << lag.status().ToString();
  EXPECT_EQ(lag->kind, ConditionKind::kLagSeconds);
  EXPECT_EQ(lag->threshold, 30);
  EXPECT_EQ(lag->for_ms, 60'000);
  EXPECT_FALSE(lag->inclusive);

  auto age = ParseCondition("oldest_ready_age >= 1500ms");
  ASSERT_TRUE(age.ok()) << age.status().ToString();
  EXPECT_EQ(age->kind, ConditionKind::kOldestReadyAge);
  EXPECT_DOUBLE_EQ(age->threshold, 1.5);
  EXPECT_TRUE(age->inclusive);
  EXPECT_EQ(age->for_ms, 0);

  auto ratio = ParseCondition("failure_ratio > 0.25 over 5m min 20 for 30s");
  ASSERT_TRUE(ratio.ok()) << ratio.status().ToString();
  EXPECT_EQ(ratio->kind, ConditionKind::kFailureRatio);
  EXPECT_DOUBLE_EQ(ratio->threshold, 0.25);
  EXPECT_EQ(ratio->window_ms, 300'000);
  EXPECT_EQ(ratio->min_count, 20u);
  EXPECT_EQ(ratio->for_ms, 30'000);

  auto dead = ParseCondition("dead_growth >= 3 over 15m");
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  EXPECT_EQ(dead->kind, ConditionKind::kDeadGrowth);
  EXPECT_EQ(dead->threshold, 3);
  EXPECT_EQ(dead->window_ms, 900'000);

  auto polls = ParseCondition("no_pollers for 2m");
  ASSERT_TRUE(polls.ok()) << polls.status().ToString();
  EXPECT_EQ(polls->kind, ConditionKind::kNoPollers);
  EXPECT_EQ(polls->threshold, 120);
}

TEST(AlertRuleTest, RejectsBadConditionsWithTheReason) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"", "empty"},
      {"queue_depth > 3", "unknown measure \"queue_depth\""},
      {"lag_seconds < 3", "expected > or >="},
      {"lag_seconds >", "expected a threshold"},
      {"lag_seconds > -1", "must be seconds >= 0"},
      {"lag_seconds > 3 for", "expected a value after \"for\""},
      {"lag_seconds > 3 for soon", "bad duration \"soon\""},
      {"lag_seconds > 3 for 8d", "bad duration"},
      {"lag_seconds > 3 for 200h", "longer than 7 days"},
      {"lag_seconds > 3 over 5m", "unexpected \"over\""},
      {"lag_seconds > 3 for 1m for 2m", "unexpected \"for\""},
      {"failure_ratio > 1.5 over 5m", "ratio in 0..1"},
      {"failure_ratio > 1 over 5m", "can never hold"},
      {"failure_ratio > 0.5", "needs a window"},
      {"failure_ratio > 0.5 over 500ms", "at least 1s"},
      {"failure_ratio > 0.5 over 5m min 0", "whole count >= 1"},
      {"dead_growth >= 0 over 5m", "always holds"},
      {"dead_growth >= 1.5 over 5m", "whole count"},
      {"dead_growth >= 1 over 5m min 3", "unexpected \"min\""},
      {"no_pollers > 3", "no_pollers for 2m"},
      {"no_pollers for 100ms", "at least 1s"},
  };
  for (const Case& c : cases) {
    auto r = ParseCondition(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

TEST(AlertRuleTest, WebhookUrls) {
  auto u = ParseWebhookUrl("http://hooks.example:8080/a/b?x=1");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "hooks.example");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/a/b?x=1");
  auto bare = ParseWebhookUrl("http://[::1]");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->host, "::1");
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->target, "/");

  EXPECT_NE(ParseWebhookUrl("https://x/y").status().message().find("https is not supported"),
            std::string::npos);
  EXPECT_FALSE(ParseWebhookUrl("ftp://x/y").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://:80/").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://x:0/").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://x:99999/").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://user:pw@x/").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://x/a b").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://x/#frag").ok());
}

TEST(AlertRuleTest, Headers) {
  EXPECT_EQ(CheckHeader("Authorization", "Bearer abc"), "");
  EXPECT_NE(CheckHeader("Content-Type", "text/plain"), "");
  EXPECT_NE(CheckHeader("host", "x"), "");
  EXPECT_NE(CheckHeader("Bad Name", "x"), "");
  EXPECT_NE(CheckHeader("X-Ok", "line\nbreak"), "");
}

// --- Evaluation ---------------------------------------------------------------------------

TEST(AlertEvaluatorTest, LagFiresAtOnceWithoutForAndResolvesOnce) {
  ManualClock clock;
  AlertEvaluator ev({Rule("lag", "q", "lag_seconds > 1")}, clock);
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 500)}).empty());
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kInactive);

  clock.Advance(1000);
  const std::int64_t fired_at = clock.NowMs();
  auto events = ev.Evaluate({Ready("q", 1, 1500)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_EQ(events[0].rule, "lag");
  EXPECT_EQ(events[0].queue, "q");
  EXPECT_DOUBLE_EQ(events[0].value, 1.5);
  EXPECT_DOUBLE_EQ(events[0].threshold, 1);
  EXPECT_EQ(events[0].started_at_ms, fired_at);
  EXPECT_EQ(events[0].DedupeKey(), "lag/q/" + std::to_string(fired_at) + "/firing");
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kFiring);

  // Still holding: the same episode never fires twice.
  for (int i = 0; i < 5; ++i) {
    clock.Advance(1000);
    EXPECT_TRUE(ev.Evaluate({Ready("q", 3, 2500 + i * 1000)}).empty()) << i;
  }
  clock.Advance(1000);
  events = ev.Evaluate({});  // drained: the queue has no ready job (absent from the sample)
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].firing);
  EXPECT_EQ(events[0].started_at_ms, fired_at);
  EXPECT_EQ(events[0].ends_at_ms, clock.NowMs());
  EXPECT_DOUBLE_EQ(events[0].value, 0);
  EXPECT_EQ(events[0].DedupeKey(), "lag/q/" + std::to_string(fired_at) + "/resolved");
  const AlertStatus st = StatusOf(ev, "lag", "q");
  EXPECT_EQ(st.state, AlertState::kInactive);
  ASSERT_TRUE(st.last_event.has_value());
  EXPECT_FALSE(st.last_event->firing);

  clock.Advance(1000);
  EXPECT_TRUE(ev.Evaluate({}).empty());
  // A new episode is a new firing with a new key.
  clock.Advance(1000);
  events = ev.Evaluate({Ready("q", 1, 5000)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_EQ(events[0].started_at_ms, clock.NowMs());
}

TEST(AlertEvaluatorTest, ForKeepsItPendingAndABreakResetsIt) {
  ManualClock clock;
  AlertEvaluator ev({Rule("lag", "q", "lag_seconds > 10 for 30s")}, clock);
  const std::int64_t began = clock.NowMs();
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 11'000)}).empty());
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kPending);
  EXPECT_EQ(StatusOf(ev, "lag", "q").since_ms, began);
  clock.Advance(29'999);
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 40'999)}).empty());
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kPending);
  // Drops below before `for`: back to inactive, no event at all.
  clock.Advance(1);
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 5'000)}).empty());
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kInactive);
  EXPECT_FALSE(StatusOf(ev, "lag", "q").last_event.has_value());
  // Holds again: `for` counts from the new start.
  clock.Advance(1000);
  const std::int64_t second = clock.NowMs();
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 12'000)}).empty());
  clock.Advance(29'000);
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 41'000)}).empty());
  clock.Advance(1000);
  auto events = ev.Evaluate({Ready("q", 1, 42'000)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_EQ(events[0].started_at_ms, second);  // the episode began when it started to hold
  EXPECT_EQ(StatusOf(ev, "lag", "q").since_ms, clock.NowMs());
}

TEST(AlertEvaluatorTest, ForUsesTheMonotonicClock) {
  ManualClock clock;
  AlertEvaluator ev({Rule("lag", "q", "lag_seconds > 1 for 10s")}, clock);
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 2000)}).empty());
  clock.StepWall(3'600'000);  // an NTP step: no time has passed
  EXPECT_TRUE(ev.Evaluate({Ready("q", 1, 2000)}).empty());
  EXPECT_EQ(StatusOf(ev, "lag", "q").state, AlertState::kPending);
  clock.Advance(10'000);
  EXPECT_EQ(ev.Evaluate({Ready("q", 1, 12'000)}).size(), 1u);
}

TEST(AlertEvaluatorTest, OldestReadyAgeInclusiveAndStrict) {
  ManualClock clock;
  AlertEvaluator ev(
      {Rule("strict", "q", "oldest_ready_age > 2s"), Rule("incl", "q", "oldest_ready_age >= 2s")},
      clock);
  auto events = ev.Evaluate({Ready("q", 1, 2000)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rule, "incl");
  clock.Advance(1);
  events = ev.Evaluate({Ready("q", 1, 2001)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rule, "strict");
}

TEST(AlertEvaluatorTest, FailureRatioOverAWindowWithAMinimumCount) {
  ManualClock clock;
  AlertEvaluator ev({Rule("ratio", "q", "failure_ratio > 0.5 over 60s min 10")}, clock);
  EXPECT_TRUE(ev.Evaluate({Counts("q", 1, 2, 0)}).empty());
  // 4 failed of 5 in the window: a high ratio, but under the minimum count.
  clock.Advance(1000);
  EXPECT_TRUE(ev.Evaluate({Counts("q", 1, 4, 0)}).empty());
  EXPECT_DOUBLE_EQ(*StatusOf(ev, "ratio", "q").value, 0.8);
  // 8 failed of 10: judged now.
  clock.Advance(1000);
  auto events = ev.Evaluate({Counts("q", 2, 8, 0)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_DOUBLE_EQ(events[0].value, 0.8);
  // Successes dilute it within the window: 8 failed of 20 -> resolves.
  clock.Advance(1000);
  events = ev.Evaluate({Counts("q", 12, 8, 0)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].firing);
  EXPECT_DOUBLE_EQ(events[0].value, 0.4);
}

TEST(AlertEvaluatorTest, FailuresOlderThanTheWindowNoLongerCount) {
  ManualClock clock;
  AlertEvaluator ev({Rule("ratio", "q", "failure_ratio >= 0.5 over 10s min 2")}, clock);
  ev.Evaluate({Counts("q", 0, 0, 0)});
  clock.Advance(1000);
  ASSERT_EQ(ev.Evaluate({Counts("q", 0, 5, 0)}).size(), 1u);
  // Nothing more happens; once the failures are older than the window, it resolves.
  std::vector<AlertEvent> events;
  int seconds = 0;
  while (events.empty() && seconds < 30) {
    clock.Advance(1000);
    ++seconds;
    events = ev.Evaluate({Counts("q", 0, 5, 0)});
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].firing);
  // The failures happened between t=0 and t=1 s; the window is 10 s (thinned at 1 s steps).
  EXPECT_GE(seconds, 9);
  EXPECT_LE(seconds, 11);
}

TEST(AlertEvaluatorTest, DeadGrowthAndCounterRestarts) {
  ManualClock clock;
  AlertEvaluator ev({Rule("dead", "q", "dead_growth >= 3 over 1m")}, clock);
  ev.Evaluate({Counts("q", 0, 0, 1)});  // the counts start at 0 with the queue: 1 dead job
  EXPECT_EQ(StatusOf(ev, "dead", "q").state, AlertState::kInactive);
  clock.Advance(1000);
  ev.Evaluate({Counts("q", 0, 0, 2)});
  EXPECT_EQ(StatusOf(ev, "dead", "q").state, AlertState::kInactive);
  EXPECT_DOUBLE_EQ(*StatusOf(ev, "dead", "q").value, 2);
  // The counts restart (the server restarted or the queue was freed): 1 new dead job, not -1.
  clock.Advance(1000);
  auto events = ev.Evaluate({Counts("q", 0, 0, 1)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_DOUBLE_EQ(events[0].value, 3);
  // Once the window has passed them by, it resolves.
  for (int i = 0; i < 62 && StatusOf(ev, "dead", "q").state == AlertState::kFiring; ++i) {
    clock.Advance(1000);
    ev.Evaluate({Counts("q", 0, 0, 1)});
  }
  EXPECT_EQ(StatusOf(ev, "dead", "q").state, AlertState::kInactive);
  EXPECT_FALSE(StatusOf(ev, "dead", "q").last_event->firing);
}

TEST(AlertEvaluatorTest, NoPollersHoldsOnlyWithReadyJobs) {
  ManualClock clock;
  AlertEvaluator ev({Rule("idle", "q", "no_pollers for 10s")}, clock);
  QueueSample s = Ready("q", 0, 0);
  ev.Evaluate({s});  // first seen now: the baseline
  clock.Advance(20'000);
  EXPECT_TRUE(ev.Evaluate({s}).empty());  // nothing ready: nobody needs to poll
  s = Ready("q", 2, 1000);
  auto events = ev.Evaluate({s});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].firing);
  EXPECT_DOUBLE_EQ(events[0].value, 20);
  // A lease request names the queue: resolved.
  clock.Advance(1000);
  s.last_poll_ms = clock.NowMs();
  events = ev.Evaluate({s});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].firing);
  // A long-poll waiting on it counts as polling, however old the last request.
  clock.Advance(30'000);
  s.waiting_workers = 1;
  EXPECT_TRUE(ev.Evaluate({s}).empty());
  s.waiting_workers = 0;
  EXPECT_EQ(ev.Evaluate({s}).size(), 1u);
}

TEST(AlertEvaluatorTest, RuleOnEveryQueueKeepsOneInstancePerQueue) {
  ManualClock clock;
  AlertEvaluator ev({Rule("lag", "", "lag_seconds > 1")}, clock);
  EXPECT_TRUE(ev.Statuses().empty());
  auto events = ev.Evaluate(
      {Ready("a", 1, 2000), Ready("b", 1, 500), Ready("c", 1, 3000), Ready("_ym.alerts", 1, 9000)});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].queue, "a");
  EXPECT_EQ(events[1].queue, "c");
  ASSERT_EQ(ev.Statuses().size(), 2u);  // b never held: no instance
  clock.Advance(1000);
  events = ev.Evaluate({Ready("c", 1, 4000)});  // a drained
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].queue, "a");
  EXPECT_FALSE(events[0].firing);
  EXPECT_EQ(StatusOf(ev, "lag", "c").state, AlertState::kFiring);
}

TEST(AlertEvaluatorTest, InstancesAreCapped) {
  ManualClock clock;
  AlertEvaluator ev({Rule("lag", "", "lag_seconds > 1")}, clock, {.max_instances = 2});
  auto events = ev.Evaluate({Ready("a", 1, 2000), Ready("b", 1, 2000), Ready("c", 1, 2000)});
  EXPECT_EQ(events.size(), 2u);
  EXPECT_EQ(ev.Statuses().size(), 2u);
  EXPECT_EQ(ev.dropped_instances(), 1u);
}

TEST(AlertEvaluatorTest, RestoredFiringEpisodeDoesNotFireAgainAndResolvesUnderItsKey) {
  ManualClock clock;
  AlertEvaluator before({Rule("lag", "q", "lag_seconds > 1")}, clock);
  auto fired = before.Evaluate({Ready("q", 1, 5000)});
  ASSERT_EQ(fired.size(), 1u);

  clock.Advance(60'000);  // a restart
  AlertEvaluator after({Rule("lag", "q", "lag_seconds > 1"), Rule("other", "x", "lag_seconds > 1")},
                       clock);
  after.Restore(fired[0]);
  AlertEvent unknown = fired[0];
  unknown.rule = "gone";
  after.Restore(unknown);  // no such rule any more: ignored
  EXPECT_EQ(after.Statuses().size(), 2u);
  EXPECT_EQ(StatusOf(after, "lag", "q").state, AlertState::kFiring);
  EXPECT_TRUE(after.Evaluate({Ready("q", 1, 65'000)}).empty());
  clock.Advance(1000);
  auto resolved = after.Evaluate({});
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_FALSE(resolved[0].firing);
  EXPECT_EQ(resolved[0].started_at_ms, fired[0].started_at_ms);

  // A restored resolved event only shows; an older event never overrides a newer one.
  AlertEvaluator third({Rule("lag", "q", "lag_seconds > 1")}, clock);
  third.Restore(resolved[0]);
  third.Restore(fired[0]);
  EXPECT_EQ(StatusOf(third, "lag", "q").state, AlertState::kInactive);
  EXPECT_FALSE(StatusOf(third, "lag", "q").last_event->firing);
}

// Regression: a queue created and failing between two samples was first seen with its counts
// already up, and they were taken as the baseline, so its failures never counted.
TEST(AlertEvaluatorTest, AQueueCreatedBetweenSamplesCountsFromZero) {
  ManualClock clock;
  AlertEvaluator ev({Rule("ratio", "", "failure_ratio >= 0.5 over 1m min 2"),
                     Rule("dead", "", "dead_growth >= 2 over 1m")},
                    clock);
  EXPECT_TRUE(ev.Evaluate({}).empty());
  clock.Advance(1000);
  auto events = ev.Evaluate({Counts("new", 0, 2, 2)});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].rule, "ratio");
  EXPECT_DOUBLE_EQ(events[0].value, 1);
  EXPECT_EQ(events[1].rule, "dead");
  EXPECT_DOUBLE_EQ(events[1].value, 2);
}

TEST(AlertEvaluatorTest, QueuesNoRuleNamesAreNotTracked) {
  ManualClock clock;
  AlertEvaluator ev({Rule("dead", "q", "dead_growth > 0 over 1m")}, clock);
  ev.Evaluate({Counts("q", 0, 0, 0), Counts("other", 0, 0, 0)});
  clock.Advance(1000);
  auto events = ev.Evaluate({Counts("q", 0, 0, 0), Counts("other", 0, 0, 9)});
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(ev.Statuses().size(), 1u);
}

}  // namespace
}  // namespace ym::alerts
