// RetentionWork (core/retention_work.h): which queues are due for purging, in what chunks, and
// how the store's outcomes resume or end the work. Pure: times are plain numbers.
#include "core/retention_work.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace ym {
namespace {

constexpr std::int64_t kHour = 3'600'000;

class RetentionWorkTest : public ::testing::Test {
 protected:
  RetentionWorkTest() {
    policy_ = [this](const std::string& q) -> const Retention& {
      auto it = configured_.find(q);
      return it == configured_.end() ? defaults_ : it->second;
    };
  }

  std::vector<PurgeFinished> Plan(std::int64_t now, std::uint64_t rows = 1000,
                                  std::size_t purges = 64) {
    std::vector<Mutation> out;
    const std::size_t n = work_.Plan(now, policy_, rows, purges, out);
    std::vector<PurgeFinished> p;
    for (const Mutation& m : out) p.push_back(std::get<PurgeFinished>(m));
    EXPECT_EQ(n, p.size());
    return p;
  }

  void Keep(const std::string& q, JobState s, std::int64_t at, int n = 1) {
    for (int i = 0; i < n; ++i) work_.OnKept(q, s, at, policy_(q));
  }

  Retention defaults_;
  std::map<std::string, Retention> configured_;
  RetentionWork::Policy policy_;
  RetentionWork work_;
};

TEST_F(RetentionWorkTest, DefaultsKeepSucceededADayAndDeadAndCancelledAWeek) {
  EXPECT_EQ(defaults_.succeeded_ms, 24 * kHour);
  EXPECT_EQ(defaults_.dead_ms, 7 * 24 * kHour);
  EXPECT_EQ(defaults_.cancelled_ms, 7 * 24 * kHour);
  EXPECT_EQ(defaults_.max_succeeded, 1'000'000);
  EXPECT_EQ(defaults_.max_dead, 100'000);
  EXPECT_EQ(defaults_.max_cancelled, 100'000);

  Keep("q", JobState::kSucceeded, 0);
  Keep("q", JobState::kDead, 0);
  work_.Scan(24 * kHour - 1, policy_);
  EXPECT_FALSE(work_.has_due()) << "nothing is a day old yet";
  work_.Scan(24 * kHour, policy_);
  auto p = Plan(24 * kHour);
  ASSERT_EQ(p.size(), 1u) << "the succeeded job is a day old, the dead one is kept a week";
  EXPECT_EQ(p[0].queue, "q");
  EXPECT_EQ(p[0].state, JobState::kSucceeded);
  EXPECT_EQ(p[0].before_ms, 0);
  EXPECT_EQ(p[0].max_kept, 1'000'000u);
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 1, 0, INT64_MAX}, 24 * kHour, policy_);
  work_.Scan(7 * 24 * kHour, policy_);
  p = Plan(7 * 24 * kHour);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].state, JobState::kDead);
}

TEST_F(RetentionWorkTest, AQueueOverItsCapIsDueAtOnceAndOnlyForThatState) {
  configured_["q"].max_succeeded = 3;
  configured_["q"].max_dead = 3;
  Keep("q", JobState::kDead, 5, 2);
  Keep("q", JobState::kSucceeded, 10, 3);
  EXPECT_FALSE(work_.has_due()) << "at the cap, not over it";
  Keep("q", JobState::kSucceeded, 11);
  ASSERT_TRUE(work_.has_due()) << "over the cap: no sweep needed";
  auto p = Plan(12);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].state, JobState::kSucceeded) << "a succeeded flood never touches dead letters";
  EXPECT_EQ(p[0].max_kept, 3u);
  EXPECT_EQ(p[0].before_ms, 12 - configured_["q"].succeeded_ms);
}

TEST_F(RetentionWorkTest, CapZeroMeansNoCap) {
  configured_["q"].max_succeeded = 0;
  Keep("q", JobState::kSucceeded, 10, 5000);
  work_.Scan(20, policy_);
  EXPECT_FALSE(work_.has_due());
  EXPECT_EQ(work_.Count("q", JobState::kSucceeded), 5000u);
}

TEST_F(RetentionWorkTest, PlanIsBoundedInRowsAndPurgesAndAnEntryIsNeverInFlightTwice) {
  for (int i = 0; i < 5; ++i) {
    const std::string q = "q" + std::to_string(i);
    configured_[q].succeeded_ms = 100;
    Keep(q, JobState::kSucceeded, 0, 400);
  }
  work_.Scan(1000, policy_);
  // Each queue may take 400 rows: a 1000-row budget covers three (400 + 400 + the last 200).
  auto p = Plan(1000, 1000);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].limit, 1000u);
  EXPECT_EQ(p[1].limit, 600u);
  EXPECT_EQ(p[2].limit, 200u);
  std::set<std::string> planned;
  for (const auto& x : p) planned.insert(x.queue);
  // The statement bound.
  p = Plan(1000, 100000, 1);
  ASSERT_EQ(p.size(), 1u);
  planned.insert(p[0].queue);
  p = Plan(1000, 100000);
  ASSERT_EQ(p.size(), 1u);
  planned.insert(p[0].queue);
  EXPECT_EQ(planned.size(), 5u) << "each queue once";
  EXPECT_FALSE(work_.has_due());
  work_.Scan(2000, policy_);
  EXPECT_TRUE(Plan(2000).empty()) << "in flight until the store reports";
}

TEST_F(RetentionWorkTest, APartialPurgeResumesUntilTheStoreReportsNothingDue) {
  configured_["q"].succeeded_ms = 100;
  Keep("q", JobState::kSucceeded, 0, 5000);
  work_.Scan(1000, policy_);
  for (int round = 0; round < 4; ++round) {
    auto p = Plan(1000 + round, 1000);
    ASSERT_EQ(p.size(), 1u) << round;
    EXPECT_EQ(p[0].limit, 1000u);
    // The store deleted a chunk; older rows remain past the window.
    work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 1000,
                                 static_cast<std::uint64_t>(4000 - 1000 * round), 0},
                    1000 + round, policy_);
    EXPECT_TRUE(work_.has_due()) << round;
  }
  auto p = Plan(1010, 1000);
  ASSERT_EQ(p.size(), 1u);
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 1000, 0, INT64_MAX}, 1010, policy_);
  EXPECT_FALSE(work_.has_due());
  EXPECT_EQ(work_.queues(), 0u) << "a queue with nothing left is forgotten";
}

TEST_F(RetentionWorkTest, JobsKeptWhileAPurgeIsInFlightAreCountedOnTopOfTheOutcome) {
  configured_["q"].max_succeeded = 10;
  Keep("q", JobState::kSucceeded, 100, 15);
  auto p = Plan(100);
  ASSERT_EQ(p.size(), 1u);
  Keep("q", JobState::kSucceeded, 200, 4);  // appended after the purge: not in its count
  // The store trimmed to the cap: 10 rows, the oldest finished at 100.
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 5, 10, 100}, 200, policy_);
  EXPECT_EQ(work_.Count("q", JobState::kSucceeded), 14u);
  EXPECT_TRUE(work_.has_due()) << "14 > 10: the next chunk trims the 4 kept meanwhile";
  p = Plan(201);
  ASSERT_EQ(p.size(), 1u);
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 4, 10, 100}, 201, policy_);
  EXPECT_EQ(work_.Count("q", JobState::kSucceeded), 10u);
  EXPECT_FALSE(work_.has_due());
}

TEST_F(RetentionWorkTest, ATooHighCountIsCorrectedByTheStoresOutcome) {
  configured_["q"].max_succeeded = 2;
  work_.Load("q", JobState::kSucceeded, 3, 50);  // one of them was replayed since: really 2
  work_.Scan(60, policy_);
  auto p = Plan(60);
  ASSERT_EQ(p.size(), 1u);
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 0, 2, 50}, 60, policy_);
  EXPECT_FALSE(work_.has_due()) << "the exact count ends the work, no loop of empty purges";
  EXPECT_EQ(work_.Count("q", JobState::kSucceeded), 2u);
}

TEST_F(RetentionWorkTest, AConfigurationChangeIsHonouredAtPlanAndByRecheck) {
  configured_["q"].max_succeeded = 1;
  Keep("q", JobState::kSucceeded, 0, 2);
  ASSERT_TRUE(work_.has_due());
  configured_["q"].max_succeeded = 0;  // the operator lifted the cap before the chunk went out
  EXPECT_TRUE(Plan(1).empty());
  EXPECT_FALSE(work_.has_due());
  configured_["q"].max_succeeded = 1;
  work_.Recheck("q", 2, policy_);
  EXPECT_EQ(Plan(2).size(), 1u);
}

TEST_F(RetentionWorkTest, StaleOrForeignOutcomesChangeNothing) {
  work_.OnOutcome(PurgeOutcome{"nosuch", JobState::kDead, 1, 0, INT64_MAX}, 0, policy_);
  Keep("q", JobState::kDead, 0, 3);
  work_.OnOutcome(PurgeOutcome{"q", JobState::kDead, 3, 0, INT64_MAX}, 0, policy_);
  EXPECT_EQ(work_.Count("q", JobState::kDead), 3u) << "no purge of it was in flight";
}

// A pinned entry (the scheduler's per-queue handle) counts and purges exactly as one found by
// name, stays while pinned even with nothing left, and is forgotten at its last unpin.
TEST_F(RetentionWorkTest, APinnedEntryCountsLikeOneByNameAndLeavesAtItsLastUnpin) {
  configured_["q"].max_succeeded = 3;
  RetentionWork::Handle h = work_.Pin("q");
  EXPECT_EQ(work_.Pin("q"), h) << "pins of one queue share its entry";
  work_.OnKept(h, JobState::kSucceeded, 10, policy_("q"));
  work_.OnKept(h, JobState::kSucceeded, 20, policy_("q"));
  Keep("q", JobState::kSucceeded, 30, 1);  // by name: the same entry
  EXPECT_EQ(work_.Count("q", JobState::kSucceeded), 3u);
  EXPECT_FALSE(work_.has_due());
  work_.OnKept(h, JobState::kSucceeded, 40, policy_("q"));
  ASSERT_TRUE(work_.has_due()) << "over its cap through the handle, queued at once";
  auto p = Plan(40);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].queue, "q");
  EXPECT_EQ(p[0].max_kept, 3u);
  // The store purged everything (say a replay removed rows): nothing left, but still pinned.
  work_.OnOutcome(PurgeOutcome{"q", JobState::kSucceeded, 4, 0, INT64_MAX}, 41, policy_);
  EXPECT_EQ(work_.queues(), 1u) << "pinned: kept for its handle";
  work_.Unpin(h);
  EXPECT_EQ(work_.queues(), 1u) << "one pin left";
  work_.OnKept(h, JobState::kDead, 50, policy_("q"));
  EXPECT_EQ(work_.Count("q", JobState::kDead), 1u);
  work_.Unpin(h);
  EXPECT_EQ(work_.queues(), 1u) << "unpinned but it holds a dead row";
  RetentionWork::Handle other = work_.Pin("empty");
  EXPECT_EQ(work_.queues(), 2u);
  work_.Unpin(other);
  EXPECT_EQ(work_.queues(), 1u) << "an entry with nothing is forgotten at its last unpin";
}

}  // namespace
}  // namespace ym
