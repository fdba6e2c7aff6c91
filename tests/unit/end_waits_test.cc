#include "core/end_waits.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace ym {
namespace {

JobView ViewOf(JobId id, JobState state) {
  JobView v;
  v.job.id = id;
  v.job.state = state;
  return v;
}

// What each wait was answered with, in order: the job id and whether it ended.
struct Answers {
  std::vector<std::pair<int, std::optional<JobState>>> got;
  EndWaits::Callback For(int tag) {
    return [this, tag](std::optional<JobView> v) {
      got.emplace_back(tag, v ? std::optional<JobState>(v->job.state) : std::nullopt);
    };
  }
};

TEST(EndWaitsTest, AnEndAnswersEveryWaitOnThatJobOnceOldestFirst) {
  EndWaits w(10);
  Answers a;
  ASSERT_TRUE(w.Add(7, 1000, a.For(1)).ok());
  ASSERT_TRUE(w.Add(8, 1000, a.For(2)).ok());
  ASSERT_TRUE(w.Add(7, 2000, a.For(3)).ok());
  w.Ended(7, ViewOf(7, JobState::kSucceeded));
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[0], std::make_pair(1, std::optional(JobState::kSucceeded)));
  EXPECT_EQ(a.got[1], std::make_pair(3, std::optional(JobState::kSucceeded)));
  EXPECT_EQ(w.size(), 1u);
  // Neither an end of the same job again nor the deadlines answer them a second time.
  w.Ended(7, ViewOf(7, JobState::kDead));
  w.Expire(5000);
  ASSERT_EQ(a.got.size(), 3u);
  EXPECT_EQ(a.got[2], std::make_pair(2, std::optional<JobState>()));
  EXPECT_TRUE(w.empty());
}

TEST(EndWaitsTest, DeadlinesAnswerWithNothingExactlyWhenDue) {
  EndWaits w(10);
  Answers a;
  ASSERT_TRUE(w.Add(1, 500, a.For(1)).ok());
  ASSERT_TRUE(w.Add(2, 300, a.For(2)).ok());
  EXPECT_EQ(w.NextDeadline(), 300);
  w.Expire(299);
  EXPECT_TRUE(a.got.empty());
  w.Expire(300);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].first, 2);
  EXPECT_FALSE(a.got[0].second.has_value());
  // The expired wait no longer listens for its job.
  w.Ended(2, ViewOf(2, JobState::kSucceeded));
  EXPECT_EQ(a.got.size(), 1u);
  w.Expire(10'000);
  EXPECT_EQ(a.got.size(), 2u);
  EXPECT_FALSE(w.NextDeadline().has_value());
}

TEST(EndWaitsTest, TheCapRefusesMoreWaitsAndFreesWithAnswers) {
  EndWaits w(2);
  Answers a;
  ASSERT_TRUE(w.Add(1, 100, a.For(1)).ok());
  ASSERT_TRUE(w.Add(2, 100, a.For(2)).ok());
  Status s = w.Add(3, 100, a.For(3));
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_NE(s.message().find("max_job_waits 2"), std::string::npos) << s.message();
  w.Ended(1, ViewOf(1, JobState::kCancelled));
  EXPECT_TRUE(w.Add(3, 100, a.For(3)).ok());
}

TEST(EndWaitsTest, ShutdownAnswersEveryWaitWithNothing) {
  EndWaits w(10);
  Answers a;
  ASSERT_TRUE(w.Add(1, 100, a.For(1)).ok());
  ASSERT_TRUE(w.Add(1, 100, a.For(2)).ok());
  w.Shutdown();
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_FALSE(a.got[0].second.has_value());
  EXPECT_FALSE(a.got[1].second.has_value());
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.deadline_entries(), 0u);
}

TEST(EndWaitsTest, DeadlineEntriesOfAnsweredWaitsStayBounded) {
  // Waits answered by their job's end leave their deadline entry behind; a long run of them
  // (far-off deadlines, ended jobs) must not grow the heap without bound.
  EndWaits w(100);
  Answers a;
  ASSERT_TRUE(w.Add(999'999, 1'000'000, a.For(0)).ok());  // one wait that stays
  for (JobId id = 1; id <= 100'000; ++id) {
    ASSERT_TRUE(w.Add(id, 1'000'000, a.For(1)).ok());
    w.Ended(id, ViewOf(id, JobState::kSucceeded));
    ASSERT_LE(w.deadline_entries(), 2 * w.size() + 64 + 1);
  }
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(a.got.size(), 100'000u);
}

}  // namespace
}  // namespace ym
