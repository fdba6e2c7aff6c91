#include "core/cancel_watches.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ym {
namespace {

// What each watch was answered with, in order: its tag and the ids.
struct Answers {
  std::vector<std::pair<int, std::vector<JobId>>> got;
  CancelWatches::Callback For(int tag) {
    return [this, tag](std::vector<JobId> ids) { got.emplace_back(tag, std::move(ids)); };
  }
};

using Ids = std::vector<JobId>;

TEST(CancelWatchesTest, ACancelWakesEveryWatchOfThatWorkerOnlyOldestFirst) {
  CancelWatches w(10);
  Answers a;
  ASSERT_TRUE(w.Add("w1", {}, 1000, a.For(1)).ok());
  ASSERT_TRUE(w.Add("w2", {}, 1000, a.For(2)).ok());
  ASSERT_TRUE(w.Add("w1", {}, 2000, a.For(3)).ok());
  EXPECT_TRUE(a.got.empty());
  w.Requested("w1", 7);
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[0], std::make_pair(1, Ids{7}));
  EXPECT_EQ(a.got[1], std::make_pair(3, Ids{7}));
  EXPECT_EQ(w.size(), 1u);
  // A second request of the same cancel wakes nobody; the deadline answers w2 with its (empty)
  // set, and nothing is answered twice.
  w.Requested("w1", 7);
  w.Expire(5000);
  ASSERT_EQ(a.got.size(), 3u);
  EXPECT_EQ(a.got[2], std::make_pair(2, Ids{}));
  EXPECT_TRUE(w.empty());
}

TEST(CancelWatchesTest, AWatchIsAnsweredAtOnceWhenTheSetHoldsAnIdItDoesNotKnow) {
  CancelWatches w(10);
  Answers a;
  w.Requested("w", 9);
  w.Requested("w", 4);
  ASSERT_TRUE(w.Add("w", {}, 1000, a.For(1)).ok());
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0], std::make_pair(1, Ids{4, 9}));  // the whole set, ascending
  EXPECT_TRUE(w.empty());
  // Knowing both, the next watch waits, and is woken by the third cancel with all three.
  ASSERT_TRUE(w.Add("w", {9, 4}, 1000, a.For(2)).ok());
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(w.size(), 1u);
  w.Requested("w", 5);
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[1], std::make_pair(2, Ids{4, 5, 9}));
}

TEST(CancelWatchesTest, AWatchThatAlreadyKnowsTheNewIdKeepsWaiting) {
  // Two processes sharing a worker_id: one already learnt id 3 from an earlier answer.
  CancelWatches w(10);
  Answers a;
  ASSERT_TRUE(w.Add("w", {3}, 1000, a.For(1)).ok());
  ASSERT_TRUE(w.Add("w", {}, 1000, a.For(2)).ok());
  w.Requested("w", 3);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0], std::make_pair(2, Ids{3}));
  w.Expire(1000);
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[1], std::make_pair(1, Ids{3}));
}

TEST(CancelWatchesTest, WithdrawnJobsAreNotReportedAndDoNotWake) {
  CancelWatches w(10);
  Answers a;
  w.Requested("w", 1);
  w.Requested("w", 2);
  EXPECT_EQ(w.pending_jobs(), 2u);
  w.Withdrawn("w", 1);
  w.Withdrawn("w", 1);      // twice: no effect
  w.Withdrawn("other", 2);  // another worker's: no effect
  EXPECT_EQ(w.Pending("w"), Ids{2});
  EXPECT_EQ(w.pending_jobs(), 1u);
  // Known {2}: nothing new, the watch waits until its deadline.
  ASSERT_TRUE(w.Add("w", {2}, 100, a.For(1)).ok());
  EXPECT_TRUE(a.got.empty());
  w.Withdrawn("w", 2);
  EXPECT_EQ(w.pending_jobs(), 0u);
  w.Expire(100);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0], std::make_pair(1, Ids{}));
}

TEST(CancelWatchesTest, DeadlinesAnswerExactlyWhenDue) {
  CancelWatches w(10);
  Answers a;
  ASSERT_TRUE(w.Add("a", {}, 500, a.For(1)).ok());
  ASSERT_TRUE(w.Add("b", {}, 300, a.For(2)).ok());
  EXPECT_EQ(w.NextDeadline(), 300);
  w.Expire(299);
  EXPECT_TRUE(a.got.empty());
  w.Expire(300);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].first, 2);
  // The expired watch no longer listens to its worker's cancels.
  w.Requested("b", 8);
  EXPECT_EQ(a.got.size(), 1u);
  w.Requested("a", 9);
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[1], std::make_pair(1, Ids{9}));
}

TEST(CancelWatchesTest, TheCapRefusesMoreWatchesWithoutCallingThem) {
  CancelWatches w(2);
  Answers a;
  ASSERT_TRUE(w.Add("a", {}, 100, a.For(1)).ok());
  ASSERT_TRUE(w.Add("a", {}, 100, a.For(2)).ok());
  Status s = w.Add("a", {}, 100, a.For(3));
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_TRUE(a.got.empty());
  EXPECT_EQ(w.size(), 2u);
}

TEST(CancelWatchesTest, ShutdownAnswersEveryWatchWithItsSet) {
  CancelWatches w(10);
  Answers a;
  w.Requested("b", 5);
  ASSERT_TRUE(w.Add("a", {}, 100, a.For(1)).ok());
  ASSERT_TRUE(w.Add("b", {5}, 100, a.For(2)).ok());
  w.Shutdown();
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[0], std::make_pair(1, Ids{}));
  EXPECT_EQ(a.got[1], std::make_pair(2, Ids{5}));
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.deadline_entries(), 0u);
}

TEST(CancelWatchesTest, StaleDeadlineEntriesStayBoundedByLiveWatches) {
  CancelWatches w(100'000);
  Answers a;
  // Watches answered by cancels leave their heap entries behind; the rebuild keeps them within
  // a constant times the live watches.
  for (JobId i = 1; i <= 10'000; ++i) {
    ASSERT_TRUE(w.Add("w", {}, 1'000'000, a.For(0)).ok());
    w.Requested("w", i);
    w.Withdrawn("w", i);
  }
  EXPECT_EQ(a.got.size(), 10'000u);
  EXPECT_TRUE(w.empty());
  EXPECT_LE(w.deadline_entries(), 64u + 1u);
  EXPECT_EQ(w.pending_jobs(), 0u);
}

}  // namespace
}  // namespace ym
