// core/flow/key_groups.h: singleton and debounce decisions at explicit times, the deadline
// arithmetic against a brute-force model of the documented rule, rebuilds, and the key modes'
// validation and JSON form in a LimitSpec.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/flow/key_groups.h"
#include "core/flow/limit_set.h"

namespace ym::flow {
namespace {

using V = KeyDecision::Verdict;

KeyGate Single(std::uint32_t limit, std::string key, SingletonMode mode) {
  KeyGate g;
  g.limit = limit;
  g.key = std::move(key);
  g.singleton = mode;
  return g;
}

KeyGate Deb(std::uint32_t limit, std::string key, std::int64_t delay,
            std::optional<std::int64_t> max_wait) {
  KeyGate g;
  g.limit = limit;
  g.key = std::move(key);
  g.debounce = DebounceConfig{delay, max_wait};
  return g;
}

TEST(FlowKeyGroups, SingletonRefusesOrSkipsWhileALiveJobHoldsTheKey) {
  KeyGroups kg;
  const std::vector<KeyGate> refuse = {Single(0, "a", SingletonMode::kRefuse)};
  auto d = kg.Decide(refuse, 100, 100);
  ASSERT_EQ(d.verdict, V::kAdmit);
  EXPECT_EQ(d.run_at_ms, 100);
  kg.Join(refuse, 7, d);
  d = kg.Decide(refuse, 200, 200);
  EXPECT_EQ(d.verdict, V::kRefuse);
  EXPECT_EQ(d.holder, 7u);
  // Another key, and another limit on the same key, are free.
  EXPECT_EQ(kg.Decide({Single(0, "b", SingletonMode::kRefuse)}, 200, 200).verdict, V::kAdmit);
  EXPECT_EQ(kg.Decide({Single(1, "a", SingletonMode::kRefuse)}, 200, 200).verdict, V::kAdmit);
  // Starting does not free it (an active job is live); ending does.
  kg.Started(7);
  EXPECT_EQ(kg.Decide(refuse, 300, 300).verdict, V::kRefuse);
  kg.Ended(7);
  EXPECT_EQ(kg.Decide(refuse, 300, 300).verdict, V::kAdmit);
  EXPECT_TRUE(kg.empty());
  EXPECT_EQ(kg.groups(), 0u);
}

TEST(FlowKeyGroups, ARefusalBeatsASkipAndTheOldestHolderIsNamed) {
  KeyGroups kg;
  const std::vector<KeyGate> skip = {Single(0, "a", SingletonMode::kSkip)};
  const std::vector<KeyGate> refuse = {Single(1, "x", SingletonMode::kRefuse)};
  // A rebuild may leave several live jobs in a group (a limit added over them): the oldest.
  kg.Restore(skip, 9, true, 0);
  kg.Restore(skip, 4, true, 0);
  kg.Restore(refuse, 12, true, 0);
  auto d = kg.Decide(skip, 0, 0);
  EXPECT_EQ(d.verdict, V::kSkip);
  EXPECT_EQ(d.holder, 4u);
  d = kg.Decide({skip[0], refuse[0]}, 0, 0);
  EXPECT_EQ(d.verdict, V::kRefuse);
  EXPECT_EQ(d.holder, 12u);
  EXPECT_EQ(d.gate, 1u);
  EXPECT_EQ(kg.LiveIn(0, "a"), (std::vector<JobId>{4, 9}));
}

TEST(FlowKeyGroups, DebounceKeepsTheNewestAndCapsTheWaitAtTheFirstArrivalPlusMaxWait) {
  KeyGroups kg;
  const std::vector<KeyGate> g = {Deb(0, "k", 1000, 5000)};
  auto d = kg.Decide(g, 10'000, 10'000);
  ASSERT_EQ(d.verdict, V::kAdmit);
  EXPECT_TRUE(d.superseded.empty());
  EXPECT_EQ(d.run_at_ms, 11'000);
  kg.Join(g, 1, d);
  EXPECT_TRUE(kg.IsWaiting(1));
  EXPECT_EQ(kg.WaitingIn(0, "k"), std::make_pair(JobId{1}, std::int64_t{15'000}));
  // Each arrival within the delay replaces the waiting job and moves the time out...
  JobId prev = 1;
  std::int64_t t = 10'000;
  for (JobId id = 2; id <= 8; ++id) {
    t += 900;
    d = kg.Decide(g, t, t);
    ASSERT_EQ(d.superseded, std::vector<JobId>{prev});
    // Not before now: past the deadline an arrival is due at once.
    EXPECT_EQ(d.run_at_ms, std::max<std::int64_t>(t, std::min<std::int64_t>(t + 1000, 15'000)))
        << id;
    kg.Ended(prev);  // the caller cancels it
    kg.Join(g, id, d);
    EXPECT_FALSE(kg.IsWaiting(prev));
    prev = id;
  }
  // ...but never past the first arrival + max_wait: t is 16,300 now, so due at once.
  EXPECT_EQ(d.run_at_ms, 16'300);
  // Once it starts, the next arrival opens a new group.
  kg.Started(prev);
  EXPECT_FALSE(kg.IsWaiting(prev));
  d = kg.Decide(g, 17'000, 17'000);
  EXPECT_TRUE(d.superseded.empty());
  EXPECT_EQ(d.run_at_ms, 18'000);
  EXPECT_EQ(d.deadlines[0], 22'000);
}

TEST(FlowKeyGroups, WithoutMaxWaitASteadyStreamPostponesAndDelayZeroOnlyReplaces) {
  KeyGroups kg;
  const std::vector<KeyGate> g = {Deb(0, "k", 1000, std::nullopt)};
  auto d = kg.Decide(g, 0, 0);
  kg.Join(g, 1, d);
  for (JobId id = 2; id < 100; ++id) {
    d = kg.Decide(g, static_cast<std::int64_t>(id) * 900, static_cast<std::int64_t>(id) * 900);
    EXPECT_EQ(d.run_at_ms, static_cast<std::int64_t>(id) * 900 + 1000);
    kg.Ended(id - 1);
    kg.Join(g, id, d);
  }
  KeyGroups zero;
  const std::vector<KeyGate> z = {Deb(0, "k", 0, 0)};
  d = zero.Decide(z, 50, 50);
  EXPECT_EQ(d.run_at_ms, 50);
  zero.Join(z, 1, d);
  d = zero.Decide(z, 60, 60);
  EXPECT_EQ(d.superseded, std::vector<JobId>{1});
  EXPECT_EQ(d.run_at_ms, 60);  // the group was due at its first arrival: due now
}

TEST(FlowKeyGroups, AProducersLaterTimeIsANotBeforeAndMovesTheDeadline) {
  KeyGroups kg;
  const std::vector<KeyGate> g = {Deb(0, "k", 1000, 2000)};
  auto d = kg.Decide(g, 0, 0);
  kg.Join(g, 1, d);
  // Asked for 10,000: never earlier, even past the deadline of 2,000.
  d = kg.Decide(g, 100, 10'000);
  EXPECT_EQ(d.run_at_ms, 10'000);
  EXPECT_EQ(d.deadlines[0], 10'000);
  kg.Ended(1);
  kg.Join(g, 2, d);
  // A later arrival with no time of its own may run up to that moved deadline, not later.
  d = kg.Decide(g, 9'500, 9'500);
  EXPECT_EQ(d.run_at_ms, 10'000);
}

TEST(FlowKeyGroups, SeveralDebounceGatesReplaceEachWaitingJobAndTakeTheEarliestTime) {
  KeyGroups kg;
  const std::vector<KeyGate> a = {Deb(0, "x", 1000, 1000)};
  const std::vector<KeyGate> b = {Deb(1, "y", 5000, 50'000)};
  kg.Join(a, 1, kg.Decide(a, 0, 0));
  kg.Join(b, 2, kg.Decide(b, 0, 0));
  const std::vector<KeyGate> both = {a[0], b[0]};
  auto d = kg.Decide(both, 500, 500);
  EXPECT_EQ(d.superseded, (std::vector<JobId>{1, 2}));
  EXPECT_EQ(d.run_at_ms, 1000);  // min(min(1500, 1000), min(5500, 50000))
  kg.Ended(1);
  kg.Ended(2);
  kg.Join(both, 3, d);
  EXPECT_EQ(kg.WaitingIn(0, "x")->first, 3u);
  EXPECT_EQ(kg.WaitingIn(1, "y")->first, 3u);
  kg.Started(3);
  EXPECT_EQ(kg.groups(), 0u);
  EXPECT_TRUE(kg.empty());
}

TEST(FlowKeyGroups, RejoinAfterALostLeaseReplyYieldsToANewerWaitingJob) {
  KeyGroups kg;
  const std::vector<KeyGate> g = {Deb(0, "k", 1000, 5000)};
  kg.Join(g, 1, kg.Decide(g, 0, 0));
  kg.Started(1);
  // Nothing newer: it waits again, due now.
  EXPECT_EQ(kg.Rejoin(g, 1, 700), std::nullopt);
  EXPECT_EQ(kg.WaitingIn(0, "k"), std::make_pair(JobId{1}, std::int64_t{700}));
  kg.Started(1);
  kg.Join(g, 2, kg.Decide(g, 800, 800));
  EXPECT_EQ(kg.Rejoin(g, 1, 900), std::optional<JobId>(2));
  EXPECT_EQ(kg.WaitingIn(0, "k")->first, 2u);
}

TEST(FlowKeyGroups, ARebuildKeepsTheDeadlineOfTheSameWaitingJobElseTakesItsRunAt) {
  KeyGroups kg;
  const std::vector<KeyGate> g = {Deb(0, "k", 1000, 5000)};
  const std::vector<KeyGate> h = {Deb(0, "other", 1000, 5000)};
  auto d = kg.Decide(g, 0, 0);
  kg.Join(g, 1, d);
  kg.Join(h, 2, kg.Decide(h, 0, 0));
  kg.BeginRebuild();
  EXPECT_TRUE(kg.empty());
  kg.Restore(g, 1, true, 1000);
  kg.Restore(h, 3, true, 1000);  // another job now waits there: its run_at
  kg.EndRebuild();
  EXPECT_EQ(kg.WaitingIn(0, "k"), std::make_pair(JobId{1}, std::int64_t{5000}));
  EXPECT_EQ(kg.WaitingIn(0, "other"), std::make_pair(JobId{3}, std::int64_t{1000}));
  // The newest not-started job waits, whatever order they come in; a started one never.
  KeyGroups r;
  r.Restore(g, 9, true, 10);
  r.Restore(g, 4, true, 20);
  r.Restore(g, 11, false, 30);
  EXPECT_EQ(r.WaitingIn(0, "k")->first, 9u);
}

// The rule of the header against a brute-force model: a group opens at its first arrival f with
// deadline G = f + M; every arrival at t with own time P runs at max(P, min(t + D, G)) and sets
// G = max(G, P); a start closes the group. Also: the run_at is never later than the deadline.
TEST(FlowKeyGroups, RandomArrivalsFollowTheDocumentedRule) {
  std::mt19937_64 rng(20261126);
  for (int round = 0; round < 200; ++round) {
    const std::int64_t delay = static_cast<std::int64_t>(rng() % 2000);
    const std::optional<std::int64_t> max_wait =
        rng() % 4 == 0
            ? std::nullopt
            : std::optional<std::int64_t>(delay + static_cast<std::int64_t>(rng() % 5000));
    const std::vector<KeyGate> g = {Deb(0, "k", delay, max_wait)};
    KeyGroups kg;
    std::optional<std::int64_t> model_deadline;  // open group
    JobId waiting = 0;
    std::int64_t t = 1'000'000;
    for (JobId id = 1; id <= 200; ++id) {
      t += static_cast<std::int64_t>(rng() % 1500);
      if (waiting != 0 && rng() % 8 == 0) {
        kg.Started(waiting);
        waiting = 0;
        model_deadline.reset();
      }
      const std::int64_t own = rng() % 5 == 0 ? t + static_cast<std::int64_t>(rng() % 8000) : t;
      std::int64_t deadline =
          model_deadline.value_or(max_wait ? t + *max_wait : KeyGroups::kNoDeadline);
      deadline = std::max(deadline, own);
      const std::int64_t want = std::max(own, std::min(t + delay, deadline));
      auto d = kg.Decide(g, t, own);
      ASSERT_EQ(d.run_at_ms, want) << "round " << round << " id " << id;
      ASSERT_EQ(d.deadlines[0], deadline);
      ASSERT_LE(d.run_at_ms, deadline);
      ASSERT_GE(d.run_at_ms, own);
      ASSERT_EQ(d.superseded, waiting == 0 ? std::vector<JobId>{} : std::vector<JobId>{waiting});
      if (waiting != 0) kg.Ended(waiting);
      kg.Join(g, id, d);
      waiting = id;
      model_deadline = deadline;
    }
  }
}

TEST(FlowKeyGroups, HelpersAndTheErrorCode) {
  EXPECT_EQ(CodeName(Code::kSingletonConflict), "singleton_conflict");
  EXPECT_EQ(HttpStatus(Code::kSingletonConflict), 409);
  const Status s = SingletonConflict(42, "ready", "one", "acct-1");
  EXPECT_EQ(s.code(), Code::kSingletonConflict);
  EXPECT_NE(s.message().find("\"one\""), std::string::npos);
  EXPECT_EQ(SingletonHolder(s), std::optional<JobId>(42));
  EXPECT_EQ(SingletonHolder(InvalidState("job 42 is ready")), std::nullopt);
  EXPECT_EQ(SupersededBy(SupersededReason(77)), std::optional<JobId>(77));
  EXPECT_EQ(SupersededBy("non_retryable"), std::nullopt);
  EXPECT_EQ(SupersededBy("superseded_by:x"), std::nullopt);
  EXPECT_EQ(*ParseSingletonMode("skip"), SingletonMode::kSkip);
  EXPECT_EQ(ParseSingletonMode("Skip").status().code(), Code::kValidation);
  EXPECT_TRUE((DebounceConfig{0, 0}).Validate().ok());
  EXPECT_TRUE((DebounceConfig{DebounceConfig::kMaxMs, std::nullopt}).Validate().ok());
  EXPECT_EQ((DebounceConfig{-1, std::nullopt}).Validate().code(), Code::kValidation);
  EXPECT_EQ((DebounceConfig{DebounceConfig::kMaxMs + 1, std::nullopt}).Validate().code(),
            Code::kValidation);
  EXPECT_EQ((DebounceConfig{10, 9}).Validate().code(), Code::kValidation);
  EXPECT_EQ((DebounceConfig{10, DebounceConfig::kMaxMs + 1}).Validate().code(), Code::kValidation);
}

// --- The key modes in a LimitSpec ------------------------------------------------------------

TEST(FlowKeyModeSpec, JsonRoundTripsAndModesNeedNoBound) {
  auto s = LimitSpec::FromJson("one", R"({"key":"payload.acct","singleton":"refuse"})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->singleton, SingletonMode::kRefuse);
  EXPECT_FALSE(s->concurrency.has_value());
  EXPECT_EQ(s->ToJson(), R"({"key":"payload.acct","singleton":"refuse"})");
  auto d = LimitSpec::FromJson(
      "d", R"({"concurrency":2,"debounce":{"delay_ms":500,"max_wait_ms":9000}})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->debounce, (DebounceConfig{500, 9000}));
  EXPECT_EQ(d->ToJson(), R"({"concurrency":2,"debounce":{"delay_ms":500,"max_wait_ms":9000}})");
  auto back = LimitSpec::FromJson("d", d->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *d);
  auto nowait = LimitSpec::FromJson("n", R"({"debounce":{"delay_ms":0}})");
  ASSERT_TRUE(nowait.ok());
  EXPECT_EQ(nowait->debounce, (DebounceConfig{0, std::nullopt}));
  EXPECT_EQ(LimitSpec::FromJson("n", nowait->ToJson())->debounce, nowait->debounce);
}

TEST(FlowKeyModeSpec, BadKeyModesAreValidationErrorsNamingTheField) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"singleton":"maybe"})", "\"singleton\""},
      {R"({"singleton":1})", "\"singleton\""},
      {R"({"singleton":"refuse","debounce":{"delay_ms":1}})", "one key mode"},
      {R"({"debounce":5})", "\"debounce\""},
      {R"({"debounce":{}})", "\"debounce.delay_ms\": required"},
      {R"({"debounce":{"delay_ms":-1}})", "\"debounce.delay_ms\""},
      {R"({"debounce":{"delay_ms":"5"}})", "\"debounce.delay_ms\""},
      {R"({"debounce":{"delay_ms":1.5}})", "\"debounce.delay_ms\""},
      {R"({"debounce":{"delay_ms":2592000001}})", "\"debounce.delay_ms\""},
      {R"({"debounce":{"delay_ms":100,"max_wait_ms":99}})", "\"debounce.max_wait_ms\""},
      {R"({"debounce":{"delay_ms":100,"max_wait_ms":true}})", "\"debounce.max_wait_ms\""},
      {R"({"debounce":{"delay_ms":100,"wait":5}})", "\"debounce.wait\""},
      {R"({"key":"queue"})", "\"singleton\" and \"debounce\""},
  };
  for (const auto& [body, what] : cases) {
    auto r = LimitSpec::FromJson("x", body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), Code::kValidation) << body;
    EXPECT_NE(r.status().message().find(what), std::string::npos)
        << body << " -> " << r.status().message();
  }
}

TEST(FlowKeyModeSpec, OnlyDispatchBoundsAreGatesAndKeyGatesFollowTheMatch) {
  LimitSet set;
  bool created = false;
  LimitSpec deb;
  deb.name = "deb";
  deb.match_kind = "sync";
  ASSERT_TRUE(deb.SetKey("payload.acct").ok());
  deb.debounce = DebounceConfig{100, 1000};
  ASSERT_TRUE(set.Put(deb, 0, &created).ok());
  EXPECT_EQ(set.keyed_modes(), 1u);
  const LimitSubject sync{"q", "sync", "default", "", R"({"acct":"a1"})"};
  const LimitSubject other{"q", "mail", "default", "", R"({"acct":"a1"})"};
  // A key mode alone splits no lanes: no gate set.
  EXPECT_EQ(set.Acquire(sync), LimitSet::kNoGates);
  auto kg = set.KeyGates(sync);
  ASSERT_EQ(kg.size(), 1u);
  EXPECT_EQ(kg[0].key, "a1");
  EXPECT_EQ(kg[0].debounce, deb.debounce);
  EXPECT_TRUE(set.KeyGates(other).empty());
  // With a concurrency bound as well it is both a gate and a key gate.
  deb.concurrency = 1;
  ASSERT_TRUE(set.Put(deb, 0, &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(set.keyed_modes(), 1u);
  EXPECT_NE(set.Acquire(sync), LimitSet::kNoGates);
  deb.debounce.reset();
  ASSERT_TRUE(set.Put(deb, 0, &created).ok());
  EXPECT_EQ(set.keyed_modes(), 0u);
  EXPECT_TRUE(set.KeyGates(sync).empty());
  deb.singleton = SingletonMode::kSkip;
  ASSERT_TRUE(set.Put(deb, 0, &created).ok());
  EXPECT_EQ(set.keyed_modes(), 1u);
  ASSERT_TRUE(set.Delete("deb"));
  EXPECT_EQ(set.keyed_modes(), 0u);
}

}  // namespace
}  // namespace ym::flow
