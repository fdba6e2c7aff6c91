// NamespaceRetention (core/flow/namespace_retention.h): the stricter-window rule, and the purge
// passes that enforce a namespace's windows. Pure: times are plain numbers.
#include <gtest/gtest.h>

#include <variant>
#include <vector>

#include "core/flow/namespace_retention.h"

namespace ym::flow {
namespace {

constexpr std::int64_t kDay = 86'400'000;

std::vector<PurgeFinished> Purges(const std::vector<Mutation>& ms) {
  std::vector<PurgeFinished> out;
  for (const Mutation& m : ms) out.push_back(std::get<PurgeFinished>(m));
  return out;
}

TEST(NamespaceRetentionRule, StricterWindowWins) {
  EXPECT_EQ(EffectiveWindowMs(30 * kDay, 7 * kDay), 7 * kDay);       // the tenant's is shorter
  EXPECT_EQ(EffectiveWindowMs(1 * kDay, 7 * kDay), 1 * kDay);        // the queue's is shorter
  EXPECT_EQ(EffectiveWindowMs(30 * kDay, std::nullopt), 30 * kDay);  // no namespace window
  EXPECT_EQ(EffectiveWindowMs(30 * kDay, 0), 0);                     // 0: purged at the next sweep
}

TEST(NamespaceRetention, ScanQueuesOnePassPerStateWithAWindow) {
  NamespaceRetention r;
  NamespaceRetentionSpec spec;
  spec.succeeded_ms = 7 * kDay;
  spec.dead_ms = 30 * kDay;
  r.Configure("acme", spec);
  r.Scan(100 * kDay);
  std::vector<Mutation> out;
  ASSERT_EQ(r.Plan(500, 64, out), 2u);
  auto p = Purges(out);
  EXPECT_EQ(p[0].ns, "acme");
  EXPECT_EQ(p[0].state, JobState::kSucceeded);
  EXPECT_EQ(p[0].before_ms, 93 * kDay);
  EXPECT_EQ(p[0].after_id, 0u);
  EXPECT_EQ(p[0].limit, 500u);
  EXPECT_EQ(p[1].state, JobState::kDead);
  EXPECT_EQ(p[1].before_ms, 70 * kDay);
  EXPECT_FALSE(r.has_due());
  // A second scan while both are in flight queues nothing: at most one pass per state.
  r.Scan(101 * kDay);
  EXPECT_FALSE(r.has_due());
}

TEST(NamespaceRetention, PassResumesFromCursorWithItsCutoffThenCompletes) {
  NamespaceRetention r;
  NamespaceRetentionSpec spec;
  spec.cancelled_ms = kDay;
  r.Configure("t1", spec);
  r.Scan(10 * kDay);
  std::vector<Mutation> out;
  ASSERT_EQ(r.Plan(100, 64, out), 1u);
  PurgeOutcome o;
  o.ns = "t1";
  o.state = JobState::kCancelled;
  o.deleted = 100;
  o.resume_after = 4242;
  r.OnOutcome(o);
  EXPECT_TRUE(r.InPass("t1", JobState::kCancelled));
  out.clear();
  ASSERT_EQ(r.Plan(100, 64, out), 1u);
  auto p = Purges(out);
  EXPECT_EQ(p[0].after_id, 4242u);
  EXPECT_EQ(p[0].before_ms, 9 * kDay);  // the cutoff of the pass, not of a later now
  o.deleted = 3;
  o.resume_after = 0;
  r.OnOutcome(o);
  EXPECT_FALSE(r.InPass("t1", JobState::kCancelled));
  EXPECT_EQ(r.deleted(), 103u);
  // The next sweep starts a new pass from the start, with the new cutoff.
  r.Scan(20 * kDay);
  out.clear();
  ASSERT_EQ(r.Plan(100, 64, out), 1u);
  p = Purges(out);
  EXPECT_EQ(p[0].after_id, 0u);
  EXPECT_EQ(p[0].before_ms, 19 * kDay);
}

TEST(NamespaceRetention, PlanIsBoundedAndOutcomesOfOthersAreIgnored) {
  NamespaceRetention r;
  NamespaceRetentionSpec spec;
  spec.succeeded_ms = 0;
  for (int i = 0; i < 10; ++i) r.Configure("ns" + std::to_string(i), spec);
  r.Scan(kDay);
  std::vector<Mutation> out;
  EXPECT_EQ(r.Plan(10, 4, out), 4u);
  EXPECT_TRUE(r.has_due());
  EXPECT_EQ(r.Plan(10, 100, out), 6u);
  EXPECT_FALSE(r.has_due());
  // A queue purge's outcome (no ns), or one of an unknown namespace, changes nothing.
  PurgeOutcome q;
  q.queue = "emails";
  q.state = JobState::kSucceeded;
  q.deleted = 7;
  r.OnOutcome(q);
  q.ns = "unknown";
  r.OnOutcome(q);
  EXPECT_EQ(r.deleted(), 0u);
  EXPECT_FALSE(r.has_due());
}

TEST(NamespaceRetention, ClearingWindowsForgetsTheNamespaceOncePassesEnd) {
  NamespaceRetention r;
  NamespaceRetentionSpec spec;
  spec.dead_ms = kDay;
  r.Configure("acme", spec);
  EXPECT_EQ(r.configured(), 1u);
  r.Scan(5 * kDay);
  std::vector<Mutation> out;
  ASSERT_EQ(r.Plan(10, 4, out), 1u);
  r.Configure("acme", NamespaceRetentionSpec{});
  EXPECT_EQ(r.configured(), 1u);  // its pass is in flight
  PurgeOutcome o;
  o.ns = "acme";
  o.state = JobState::kDead;
  r.OnOutcome(o);
  EXPECT_EQ(r.configured(), 0u);
  r.Scan(6 * kDay);
  EXPECT_FALSE(r.has_due());
}

TEST(NamespaceRetention, HugeWindowSaturates) {
  NamespaceRetention r;
  NamespaceRetentionSpec spec;
  spec.succeeded_ms = NamespaceRetentionSpec::kMaxWindowMs;
  r.Configure("a", spec);
  r.Scan(1000);
  std::vector<Mutation> out;
  ASSERT_EQ(r.Plan(10, 4, out), 1u);
  EXPECT_LT(Purges(out)[0].before_ms, 0);
}

}  // namespace
}  // namespace ym::flow
