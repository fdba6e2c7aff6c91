// Unit tests of the keyed breaker (core/flow/keyed_breaker.h) and of the `breaker` member of a
// limit (core/flow/limit_set.h): keys are independent, memory stays bounded by the keys that
// matter, a ticket counts only in the breaker instance that granted it, the JSON form validates
// each member by name, and admission stays all-or-nothing with a breaker in the set.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/flow/keyed_breaker.h"
#include "core/flow/limit_set.h"

namespace ym::flow {
namespace {

constexpr std::int64_t kT0 = 1'000'000;

BreakerConfig Consecutive(std::int64_t n, std::int64_t base = 1000, std::int64_t max = 8000) {
  BreakerConfig c;
  c.consecutive_failures = n;
  c.open_base_ms = base;
  c.open_max_ms = max;
  return c;
}

KeyedBreaker Make(const BreakerConfig& c) {
  auto b = KeyedBreaker::Make(c);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

TEST(FlowKeyedBreaker, KeysTripIndependentlyAndTicketsComeBackOnlyToTheirInstance) {
  KeyedBreaker b = Make(Consecutive(2));
  auto a1 = b.Admit("a", kT0);
  auto a2 = b.Admit("a", kT0);
  auto x1 = b.Admit("x", kT0);
  ASSERT_TRUE(a1 && a2 && x1);
  EXPECT_EQ(b.tickets_out(), 3u);
  EXPECT_FALSE(b.Report("a", *a1, BreakerOutcome::kFailure, kT0));
  EXPECT_FALSE(b.Report("a", *a2, BreakerOutcome::kFailure, kT0));
  EXPECT_EQ(b.NextOpen("a", kT0), kT0 + 1000) << "a opened after two failures in a row";
  EXPECT_EQ(b.NextOpen("x", kT0), kT0) << "x is not affected";
  EXPECT_FALSE(b.Admit("a", kT0 + 999));
  // x's ticket reported under another key does not count there.
  EXPECT_FALSE(b.Report("a", *x1, BreakerOutcome::kSuccess, kT0));
  EXPECT_EQ(b.NextOpen("a", kT0 + 500), kT0 + 1000);
  // The trial.
  auto trial = b.Admit("a", kT0 + 1000);
  ASSERT_TRUE(trial);
  EXPECT_EQ(b.NextOpen("a", kT0 + 1000), kNever) << "one trial at a time";
  EXPECT_FALSE(b.Admit("a", kT0 + 1000));
  EXPECT_TRUE(b.Report("a", *trial, BreakerOutcome::kSuccess, kT0 + 1200)) << "ended the trial";
  EXPECT_EQ(b.NextOpen("a", kT0 + 1200), kT0 + 1200);
  EXPECT_EQ(b.size(), 1u) << "a closed clean and dropped; x still has a job out";
  EXPECT_FALSE(b.Report("x", *x1, BreakerOutcome::kSuccess, kT0));
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.tickets_out(), 0u);
}

TEST(FlowKeyedBreaker, AKeyIsKeptWhileAJobOfItIsOutAndItsOutcomeCounts) {
  KeyedBreaker b = Make(Consecutive(2));
  auto t1 = b.Admit("k", kT0);
  auto t2 = b.Admit("k", kT0);
  ASSERT_TRUE(t1 && t2);
  EXPECT_FALSE(b.Report("k", *t1, BreakerOutcome::kSuccess, kT0));
  EXPECT_EQ(b.size(), 1u) << "closed and clean, but t2 is still out: kept";
  EXPECT_FALSE(b.Report("k", *t2, BreakerOutcome::kFailure, kT0));
  EXPECT_EQ(b.size(), 1u) << "one failure recorded: kept";
  auto t3 = b.Admit("k", kT0);
  EXPECT_FALSE(b.Report("k", *t3, BreakerOutcome::kFailure, kT0));
  EXPECT_EQ(b.NextOpen("k", kT0), kT0 + 1000) << "the failure before counted toward the run";
}

TEST(FlowKeyedBreaker, MemoryIsBoundedByTheKeysThatMatter) {
  KeyedBreaker b = Make(Consecutive(3));
  for (int i = 0; i < 100'000; ++i) {
    const std::string key = "k" + std::to_string(i);
    auto t = b.Admit(key, kT0 + i);
    ASSERT_TRUE(t);
    (void)b.Report(key, *t, i % 10 == 0 ? BreakerOutcome::kFailure : BreakerOutcome::kSuccess,
                   kT0 + i);
  }
  EXPECT_EQ(b.size(), 10'000u) << "only the keys whose last outcome failed are kept";
  // A later success clears such a key.
  for (int i = 0; i < 100'000; i += 10) {
    const std::string key = "k" + std::to_string(i);
    auto t = b.Admit(key, kT0);
    (void)b.Report(key, *t, BreakerOutcome::kSuccess, kT0);
  }
  EXPECT_EQ(b.size(), 0u);
}

TEST(FlowKeyedBreaker, ResetClosesAtOnceAndTicketsOutBeforeItCountNowhere) {
  KeyedBreaker b = Make(Consecutive(1));
  auto t1 = b.Admit("a", kT0);
  auto t2 = b.Admit("a", kT0);
  auto t3 = b.Admit("b", kT0);
  (void)b.Report("a", *t1, BreakerOutcome::kFailure, kT0);
  (void)b.Report("b", *t3, BreakerOutcome::kFailure, kT0);
  ASSERT_EQ(b.NextOpen("a", kT0), kT0 + 1000);
  const std::string a = "a";
  EXPECT_EQ(b.Reset(&a), 1u);
  EXPECT_EQ(b.NextOpen("a", kT0), kT0);
  EXPECT_EQ(b.NextOpen("b", kT0), kT0 + 1000) << "only the key named";
  // t2 was granted before the reset: its failure must not trip the fresh closed breaker.
  auto t4 = b.Admit("a", kT0);
  EXPECT_FALSE(b.Report("a", *t2, BreakerOutcome::kFailure, kT0));
  EXPECT_EQ(b.NextOpen("a", kT0), kT0);
  (void)b.Report("a", *t4, BreakerOutcome::kSuccess, kT0);
  EXPECT_EQ(b.Reset(nullptr), 1u) << "b was open";
  EXPECT_EQ(b.NextOpen("b", kT0), kT0);
  EXPECT_EQ(b.size(), 0u);
}

TEST(FlowKeyedBreaker, AnAbandonedTrialLetsTheNextOneThrough) {
  KeyedBreaker b = Make(Consecutive(1));
  auto t = b.Admit("a", kT0);
  (void)b.Report("a", *t, BreakerOutcome::kFailure, kT0);
  auto trial = b.Admit("a", kT0 + 1000);
  ASSERT_TRUE(trial);
  EXPECT_TRUE(b.Report("a", *trial, BreakerOutcome::kAbandoned, kT0 + 1000));
  auto trial2 = b.Admit("a", kT0 + 1000);
  ASSERT_TRUE(trial2);
  EXPECT_FALSE(b.Report("a", *trial, BreakerOutcome::kSuccess, kT0 + 1000))
      << "the abandoned trial cannot pass for the next one";
  EXPECT_TRUE(b.Report("a", *trial2, BreakerOutcome::kFailure, kT0 + 1100));
  EXPECT_EQ(b.NextOpen("a", kT0 + 1100), kT0 + 1100 + 2000) << "doubled";
}

// --- The `breaker` member of a limit ----------------------------------------------------------

void ExpectInvalid(std::string_view json, std::string_view field) {
  auto r = LimitSpec::FromJson("l", json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.status().code(), Code::kValidation) << json;
  EXPECT_NE(r.status().message().find(field), std::string::npos)
      << json << " -> " << r.status().message();
}

TEST(FlowLimitSpec, BreakerMemberRoundTripsWithDefaultsAndNamesEachBadField) {
  auto r = LimitSpec::FromJson("cb", R"({"key":"kind","breaker":{}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->breaker);
  EXPECT_EQ(*r->breaker, BreakerConfig{}) << "every member defaults";
  EXPECT_EQ(r->ToJson(),
            R"({"key":"kind","breaker":{"consecutive_failures":5,"window":0,"min_samples":1,)"
            R"("failure_percent":50,"open_base_ms":1000,"open_max_ms":300000}})");
  auto again = LimitSpec::FromJson("cb", r->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
  auto w = LimitSpec::FromJson("cb", R"({"breaker":{"window":20,"consecutive_failures":0}})");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->breaker->min_samples, 20) << "a ratio is judged over a full window by default";
  auto big = LimitSpec::FromJson("cb", R"({"breaker":{"open_base_ms":600000}})");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->breaker->open_max_ms, 600'000) << "the cap follows a large first interval";
  EXPECT_TRUE(LimitSpec::FromJson("cb", R"({"breaker":null,"concurrency":1})")->breaker ==
              std::nullopt);

  ExpectInvalid(R"({"breaker":5})", "field \"breaker\"");
  ExpectInvalid(R"({"breaker":{"nope":1}})", "field \"breaker.nope\": unknown member");
  ExpectInvalid(R"({"breaker":{"window":"20"}})", "field \"breaker.window\": must be an integer");
  ExpectInvalid(R"({"breaker":{"consecutive_failures":1.5}})",
                "field \"breaker.consecutive_failures\"");
  ExpectInvalid(R"({"breaker":{"consecutive_failures":-1}})",
                "field \"breaker.consecutive_failures\"");
  ExpectInvalid(R"({"breaker":{"consecutive_failures":0}})", "field \"breaker\": needs");
  ExpectInvalid(R"({"breaker":{"window":10001}})", "field \"breaker.window\"");
  ExpectInvalid(R"({"breaker":{"window":10,"min_samples":11}})", "field \"breaker.min_samples\"");
  ExpectInvalid(R"({"breaker":{"window":10,"failure_percent":0}})",
                "field \"breaker.failure_percent\"");
  ExpectInvalid(R"({"breaker":{"open_base_ms":0}})", "field \"breaker.open_base_ms\"");
  ExpectInvalid(R"({"breaker":{"open_base_ms":2000,"open_max_ms":1000}})",
                "field \"breaker.open_max_ms\"");
  ExpectInvalid(R"({"breaker":{"open_max_ms":2592000001}})", "field \"breaker.open_max_ms\"");
  ExpectInvalid(R"({"match":{}})", "\"breaker\"");  // the bounds message lists it
}

LimitSubject Subject(std::string_view ckey) {
  LimitSubject s;
  s.queue = "q";
  s.kind = "k";
  s.ns = "default";
  s.concurrency_key = ckey;
  s.payload = "{}";
  return s;
}

TEST(FlowLimitSet, ABreakerRefusesWhileOpenAndAdmissionStaysAllOrNothing) {
  LimitSet set;
  bool created = false;
  LimitSpec cb;
  cb.name = "cb";
  cb.key = LimitKeyKind::kConcurrencyKey;
  cb.breaker = Consecutive(1);
  LimitSpec rate;
  rate.name = "rate";
  rate.rate = GcraConfig{1, 2000, 1};
  ASSERT_TRUE(set.Put(cb, 0, &created).ok());
  ASSERT_TRUE(set.Put(rate, 0, &created).ok());
  const auto id = set.Acquire(Subject("a"));
  std::vector<QuotaUse> uses;
  std::vector<BreakerHold> holds;
  ASSERT_FALSE(set.Admit(id, kT0, 0, &uses, &holds));
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0].key, "a");
  std::vector<LaneRef> woken;
  set.ReportBreakers(holds, BreakerOutcome::kFailure, kT0, woken);
  EXPECT_TRUE(woken.empty());
  holds.clear();
  auto refused = set.Admit(id, kT0 + 500, 0, &uses, &holds);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kCircuit);
  EXPECT_EQ(refused->until, kT0 + 1000) << "the open interval, monotonic";
  EXPECT_EQ(BlockReason(refused->why), "circuit_open");
  // At +1000 the breaker would let its trial through but the rate refuses: the refused
  // admission must not have taken the trial.
  refused = set.Admit(id, kT0 + 1000, 0, &uses, &holds);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kRate);
  EXPECT_TRUE(holds.empty());
  // Trial at +2000 (the rate admits then too); another one is refused until it reports.
  ASSERT_FALSE(set.Admit(id, kT0 + 2000, 0, &uses, &holds));
  ASSERT_EQ(holds.size(), 1u);
  refused = set.Admit(id, kT0 + 5000, 0, &uses, nullptr);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kCircuit);
  EXPECT_EQ(refused->until, kNever) << "half-open with its trial out: an event, not a time";
  set.WaitForTrial(id, refused->pos, LaneRef{1, 2, id});
  EXPECT_EQ(set.waiting_lanes(), 1u);
  set.ReportBreakers(holds, BreakerOutcome::kSuccess, kT0 + 5000, woken);
  ASSERT_EQ(woken.size(), 1u) << "the trial's outcome wakes the lane that waited for it";
  EXPECT_EQ(set.waiting_lanes(), 0u);
  EXPECT_FALSE(set.Blocked(id, kT0 + 5000, 0)) << "closed";
  EXPECT_EQ(set.breaker_keys(), 0u);
}

TEST(FlowLimitSet, ResetBreakerAndReplacingTheLimit) {
  LimitSet set;
  bool created = false;
  LimitSpec cb;
  cb.name = "cb";
  cb.key = LimitKeyKind::kConcurrencyKey;
  cb.breaker = Consecutive(1);
  ASSERT_TRUE(set.Put(cb, 0, &created).ok());
  const auto id = set.Acquire(Subject("a"));
  std::vector<QuotaUse> uses;
  std::vector<BreakerHold> holds;
  ASSERT_FALSE(set.Admit(id, kT0, 0, &uses, &holds));
  std::vector<LaneRef> woken;
  set.ReportBreakers(holds, BreakerOutcome::kFailure, kT0, woken);
  std::size_t keys = 0, tripped = 0;
  auto top = set.BreakerTop("cb", 10, &keys, &tripped);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].first, "a");
  EXPECT_EQ(top[0].second.phase, BreakerPhase::kOpen);
  EXPECT_EQ(top[0].second.next_open_at_ms, kT0 + 1000);
  EXPECT_EQ(tripped, 1u);
  // Replacing with the same breaker keeps its state; another config starts closed.
  cb.concurrency = 5;
  ASSERT_TRUE(set.Put(cb, 0, &created).ok());
  EXPECT_TRUE(set.Blocked(id, kT0, 0));
  std::size_t n = 0;
  EXPECT_EQ(set.ResetBreaker("nope", nullptr, woken, &n).code(), Code::kNotFound);
  LimitSpec plain;
  plain.name = "plain";
  plain.concurrency = 1;
  ASSERT_TRUE(set.Put(plain, 0, &created).ok());
  EXPECT_EQ(set.ResetBreaker("plain", nullptr, woken, &n).code(), Code::kValidation);
  const std::string other = "b";
  ASSERT_TRUE(set.ResetBreaker("cb", &other, woken, &n).ok());
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(set.Blocked(id, kT0, 0)) << "another key was reset";
  const std::string a = "a";
  ASSERT_TRUE(set.ResetBreaker("cb", &a, woken, &n).ok());
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(set.Blocked(id, kT0, 0));
  // Trip again, then replace with another config: fresh and closed; old tickets count nowhere.
  holds.clear();
  ASSERT_FALSE(set.Admit(id, kT0, 0, &uses, &holds));
  std::vector<BreakerHold> old = holds;
  holds.clear();
  ASSERT_FALSE(set.Admit(id, kT0, 0, &uses, &holds));
  set.ReportBreakers(holds, BreakerOutcome::kFailure, kT0, woken);
  EXPECT_TRUE(set.Blocked(id, kT0, 0));
  cb.breaker = Consecutive(1, 2000, 8000);
  ASSERT_TRUE(set.Put(cb, 0, &created).ok());
  const auto id3 = set.Acquire(Subject("a"));
  EXPECT_FALSE(set.Blocked(id3, kT0, 0));
  set.ReportBreakers(old, BreakerOutcome::kFailure, kT0, woken);
  EXPECT_FALSE(set.Blocked(id3, kT0, 0)) << "a ticket of the replaced breaker counts nowhere";
}

}  // namespace
}  // namespace ym::flow
