// Namespace limits: the spec's JSON form and every bad input, the batch form of GCRA (AdmitN and
// NextOpenN against n single admits, by brute force), and NamespaceLimits' decisions (a refusal
// changes nothing, the rate's retry time is exact, max_live_jobs gives its hint).

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "common/rng.h"
#include "core/flow/gcra.h"
#include "core/flow/namespace_limits.h"

namespace ym::flow {
namespace {

NamespaceSpec Parse(const std::string& json) {
  auto r = NamespaceSpec::FromJson("t", json);
  EXPECT_TRUE(r.ok()) << json << ": " << r.status().ToString();
  return r.ok() ? *r : NamespaceSpec{};
}

TEST(FlowNamespaceSpec, TheJsonFormsRoundTrip) {
  NamespaceSpec s = Parse(R"({"max_live_jobs":10,"enqueue_rate":{"count":5,"per":"minute"},
                              "weight":3})");
  EXPECT_EQ(s.max_live_jobs, 10);
  ASSERT_TRUE(s.enqueue_rate.has_value());
  EXPECT_EQ(s.enqueue_rate->period_ms, 60'000);
  EXPECT_EQ(s.enqueue_rate->burst, 5);  // default: one period's worth
  EXPECT_EQ(s.weight, 3);
  EXPECT_EQ(s.ToJson(),
            R"({"max_live_jobs":10,"enqueue_rate":{"count":5,"period_ms":60000,"burst":5},)"
            R"("weight":3})");
  EXPECT_EQ(Parse(s.ToJson()), s);
  EXPECT_EQ(Parse(R"({"enqueue_rate":{"count":7,"per":"second","burst":2}})").enqueue_rate,
            (GcraConfig{7, 1000, 2}));
  EXPECT_EQ(Parse(R"({"enqueue_rate":{"count":1,"per":"hour"}})").enqueue_rate->period_ms,
            3'600'000);
  EXPECT_EQ(Parse(R"({"enqueue_rate":{"count":3,"period_ms":250}})").enqueue_rate->period_ms, 250);
  EXPECT_EQ(Parse(R"({"weight":1000,"max_live_jobs":null,"name":"t"})").weight, 1000);
}

TEST(FlowNamespaceSpec, EveryBadInputIsAValidationErrorNamingTheField) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({})", "at least one"},
      {R"([])", "JSON object"},
      {R"({"weight":0})", "weight"},
      {R"({"weight":1001})", "weight"},
      {R"({"weight":"3"})", "weight"},
      {R"({"weight":1.5})", "weight"},
      {R"({"max_live_jobs":0})", "max_live_jobs"},
      {R"({"max_live_jobs":-4})", "max_live_jobs"},
      {R"({"max_live_jobs":1000000001})", "max_live_jobs"},
      {R"({"max_live_jobs":true})", "max_live_jobs"},
      {R"({"enqueue_rate":5})", "enqueue_rate"},
      {R"({"enqueue_rate":{"per":"second"}})", "enqueue_rate.count"},
      {R"({"enqueue_rate":{"count":5}})", "per"},
      {R"({"enqueue_rate":{"count":0,"per":"second"}})", "enqueue_rate.count"},
      {R"({"enqueue_rate":{"count":5,"per":"day"}})", "enqueue_rate.per"},
      {R"({"enqueue_rate":{"count":5,"per":"second","period_ms":1000}})", "not both"},
      {R"({"enqueue_rate":{"count":5,"period_ms":86400001}})", "enqueue_rate.period_ms"},
      {R"({"enqueue_rate":{"count":5,"period_ms":0}})", "enqueue_rate.period_ms"},
      {R"({"enqueue_rate":{"count":5,"per":"second","burst":0}})", "enqueue_rate.burst"},
      {R"({"enqueue_rate":{"count":5,"per":"second","rate":1}})", "enqueue_rate.rate"},
      {R"({"max_live":5})", "max_live"},
      {R"({"name":"other","weight":2})", "name"},
  };
  for (const auto& [json, field] : bad) {
    auto r = NamespaceSpec::FromJson("t", json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), Code::kValidation) << json;
    EXPECT_NE(r.status().message().find(field), std::string::npos)
        << json << " -> " << r.status().message();
  }
  EXPECT_EQ(NamespaceSpec::FromJson("t", "{").status().code(), Code::kInvalidJson);
  NamespaceSpec bad_name;
  bad_name.name = "has space";
  bad_name.weight = 2;
  EXPECT_EQ(bad_name.Validate().code(), Code::kValidation);
}

// AdmitN(n) is n single admits at one instant, all or none; NextOpenN is the first ms at which
// they would all pass. Checked by brute force over random configs and states.
TEST(FlowGcra, AdmitNIsNSingleAdmitsAllOrNoneAndNextOpenNIsExact) {
  Rng rng(99);
  for (int round = 0; round < 300; ++round) {
    const GcraConfig c{1 + static_cast<std::int64_t>(rng.Next() % 9),
                       1 + static_cast<std::int64_t>(rng.Next() % 2000),
                       1 + static_cast<std::int64_t>(rng.Next() % 6)};
    const Gcra g = *Gcra::Make(c);
    GcraTime tat;
    std::int64_t now = 1000;
    for (int step = 0; step < 40; ++step) {
      now += static_cast<std::int64_t>(rng.Next() % 400);
      const std::int64_t n = 1 + static_cast<std::int64_t>(rng.Next() % 7);
      // Reference: n single admits on a copy.
      GcraTime ref = tat;
      bool all = true;
      for (std::int64_t i = 0; i < n && all; ++i) all = g.Admit(ref, now);
      // Brute force: the first t >= now at which n single admits would all pass.
      std::int64_t open = std::numeric_limits<std::int64_t>::max();
      if (n <= c.burst) {
        for (std::int64_t t = now; t < now + 200'000; ++t) {
          GcraTime probe = tat;
          bool ok = true;
          for (std::int64_t i = 0; i < n && ok; ++i) ok = g.Admit(probe, t);
          if (ok) {
            open = t;
            break;
          }
        }
      }
      ASSERT_EQ(g.NextOpenN(tat, now, n), open) << "round " << round << " step " << step;
      GcraTime got = tat;
      ASSERT_EQ(g.AdmitN(got, now, n), all) << "round " << round << " step " << step;
      if (all) {
        ASSERT_EQ(got.ms, ref.ms);
        ASSERT_EQ(got.frac, ref.frac);
        tat = got;
      } else {
        ASSERT_EQ(got.ms, tat.ms);  // a refusal changes nothing
        ASSERT_EQ(got.frac, tat.frac);
      }
    }
  }
}

TEST(FlowNamespaceLimits, MaxLiveJobsRefusesPastTheCapWithAHint) {
  NamespaceLimits l;
  bool created = false;
  ASSERT_TRUE(l.Put(Parse(R"({"max_live_jobs":3})"), &created).ok());
  EXPECT_TRUE(created);
  EXPECT_FALSE(l.AdmitEnqueue("t", 2, 1, 0).has_value());
  auto r = l.AdmitEnqueue("t", 3, 1, 0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->limit, NamespaceRefusal::Limit::kMaxLiveJobs);
  EXPECT_EQ(r->retry_after_ms, NamespaceLimits::kLiveRetryHintMs);
  EXPECT_NE(r->message.find("max_live_jobs is 3"), std::string::npos);
  // A batch of 2 with 2 live would make 4: refused whole.
  EXPECT_TRUE(l.AdmitEnqueue("t", 2, 2, 0).has_value());
  EXPECT_FALSE(l.AdmitEnqueue("t", 1, 2, 0).has_value());
  // Unconfigured namespaces are never refused.
  EXPECT_FALSE(l.AdmitEnqueue("other", 1'000'000, 1, 0).has_value());
  EXPECT_EQ(l.Weight("t"), 1);
  EXPECT_EQ(l.Weight("other"), 1);
}

TEST(FlowNamespaceLimits, TheRateRefusesWithTheExactTimeItOpensAndARefusalCostsNothing) {
  NamespaceLimits l;
  bool created = false;
  // 2 per second, burst 2: two at once, then one every 500 ms.
  ASSERT_TRUE(
      l.Put(Parse(R"({"enqueue_rate":{"count":2,"per":"second","burst":2}})"), &created).ok());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 1, 10'000).has_value());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 1, 10'000).has_value());
  for (int i = 0; i < 5; ++i) {  // refused again and again: each refusal changes nothing
    auto r = l.AdmitEnqueue("t", 0, 1, 10'100);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->limit, NamespaceRefusal::Limit::kEnqueueRate);
    EXPECT_EQ(r->retry_after_ms, 400);  // opens at 10'500
  }
  EXPECT_EQ(l.RateOpensAt("t", 10'100), 10'500);
  EXPECT_TRUE(l.AdmitEnqueue("t", 0, 1, 10'499).has_value());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 1, 10'500).has_value());
  // A batch larger than the burst can never pass: said so (int64 max), not a retry time.
  auto big = l.AdmitEnqueue("t", 0, 3, 50'000);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->retry_after_ms, std::numeric_limits<std::int64_t>::max());
  EXPECT_NE(big->message.find("split"), std::string::npos);
  // The batch of 2 at rest passes whole, and a Check alone charges nothing.
  EXPECT_FALSE(l.Check("t", 0, 2, 50'000).has_value());
  EXPECT_FALSE(l.Check("t", 0, 2, 50'000).has_value());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 2, 50'000).has_value());
  EXPECT_TRUE(l.AdmitEnqueue("t", 0, 1, 50'000).has_value());
}

TEST(FlowNamespaceLimits, ReplacingKeepsTheRateStateUnlessTheRateChanged) {
  NamespaceLimits l;
  bool created = false;
  ASSERT_TRUE(
      l.Put(Parse(R"({"enqueue_rate":{"count":1,"per":"hour","burst":1}})"), &created).ok());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 1, 0).has_value());
  // Only the weight changes: still exhausted.
  ASSERT_TRUE(
      l.Put(Parse(R"({"enqueue_rate":{"count":1,"per":"hour","burst":1},"weight":5})"), &created)
          .ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(l.Weight("t"), 5);
  EXPECT_TRUE(l.AdmitEnqueue("t", 0, 1, 1).has_value());
  // A new rate starts at rest.
  ASSERT_TRUE(
      l.Put(Parse(R"({"enqueue_rate":{"count":2,"per":"hour","burst":1}})"), &created).ok());
  EXPECT_FALSE(l.AdmitEnqueue("t", 0, 1, 2).has_value());
  EXPECT_TRUE(l.Delete("t"));
  EXPECT_FALSE(l.Delete("t"));
  EXPECT_TRUE(l.empty());
}

TEST(FlowNamespaceLimits, PagesAreInNameOrder) {
  NamespaceLimits l;
  bool created = false;
  for (const char* n : {"c", "a", "b"}) {
    NamespaceSpec s;
    s.name = n;
    s.weight = 2;
    ASSERT_TRUE(l.Put(s, &created).ok());
  }
  bool more = false;
  auto page = l.Page("", 2, &more);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]->name, "a");
  EXPECT_EQ(page[1]->name, "b");
  EXPECT_TRUE(more);
  page = l.Page("b", 2, &more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0]->name, "c");
  EXPECT_FALSE(more);
}

}  // namespace
}  // namespace ym::flow
