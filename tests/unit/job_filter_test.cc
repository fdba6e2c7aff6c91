#include "core/job_filter.h"

#include <gtest/gtest.h>

namespace ym {
namespace {

JobRecord Rec(JobState state = JobState::kSucceeded) {
  JobRecord r;
  r.id = 7;
  r.ns = "tenant-a";
  r.queue = "emails";
  r.kind = "send";
  r.state = state;
  r.created_at_ms = 1000;
  r.finished_at_ms = IsTerminal(state) ? 5000 : 0;
  r.tags = {"vip", "batch:42"};
  return r;
}

TEST(JobFilter, EmptyMatchesEverything) {
  JobFilter f;
  EXPECT_TRUE(f.empty());
  for (int s = 0; s <= 5; ++s) EXPECT_TRUE(f.Matches(Rec(static_cast<JobState>(s))));
  EXPECT_TRUE(f.MayMatchLive());
  EXPECT_TRUE(f.MayMatchFinished());
  EXPECT_TRUE(f.Validate().ok());
}

TEST(JobFilter, EachNameFieldFilters) {
  JobFilter f;
  f.ns = "tenant-a";
  EXPECT_TRUE(f.Matches(Rec()));
  f.ns = "tenant-b";
  EXPECT_FALSE(f.Matches(Rec()));
  f = {};
  f.queue = "emails";
  EXPECT_TRUE(f.Matches(Rec()));
  f.queue = "other";
  EXPECT_FALSE(f.Matches(Rec()));
  f = {};
  f.kind = "send";
  EXPECT_TRUE(f.Matches(Rec()));
  f.kind = "sen";
  EXPECT_FALSE(f.Matches(Rec()));
  f = {};
  f.tag = "vip";
  EXPECT_TRUE(f.Matches(Rec()));
  f.tag = "batch:42";
  EXPECT_TRUE(f.Matches(Rec()));
  f.tag = "batch";
  EXPECT_FALSE(f.Matches(Rec()));
}

TEST(JobFilter, StateSet) {
  JobFilter f;
  f.states = {JobState::kDead, JobState::kReady, JobState::kDead};
  f.Normalize();
  ASSERT_EQ(f.states, (std::vector<JobState>{JobState::kReady, JobState::kDead}));
  EXPECT_TRUE(f.Matches(Rec(JobState::kDead)));
  EXPECT_TRUE(f.Matches(Rec(JobState::kReady)));
  EXPECT_FALSE(f.Matches(Rec(JobState::kSucceeded)));
  EXPECT_FALSE(f.Matches(Rec(JobState::kActive)));
  EXPECT_TRUE(f.MayMatchLive());
  EXPECT_EQ(f.FinishedStates(), std::vector<JobState>{JobState::kDead});

  f.states = {JobState::kScheduled, JobState::kActive};
  EXPECT_TRUE(f.MayMatchLive());
  EXPECT_FALSE(f.MayMatchFinished());
  f.states = {JobState::kCancelled};
  EXPECT_FALSE(f.MayMatchLive());
  EXPECT_TRUE(f.MayMatchFinished());
}

TEST(JobFilter, CreatedRangeIsHalfOpen) {
  JobFilter f;
  f.created_after_ms = 1000;  // inclusive
  EXPECT_TRUE(f.Matches(Rec()));
  f.created_after_ms = 1001;
  EXPECT_FALSE(f.Matches(Rec()));
  f = {};
  f.created_before_ms = 1000;  // exclusive
  EXPECT_FALSE(f.Matches(Rec()));
  f.created_before_ms = 1001;
  EXPECT_TRUE(f.Matches(Rec()));
  // Created-at applies to live jobs too.
  EXPECT_TRUE(f.Matches(Rec(JobState::kReady)));
  EXPECT_TRUE(f.MayMatchLive());
}

TEST(JobFilter, FinishedRangeIsHalfOpenAndExcludesLiveJobs) {
  JobFilter f;
  f.finished_after_ms = 5000;
  EXPECT_TRUE(f.Matches(Rec()));
  f.finished_after_ms = 5001;
  EXPECT_FALSE(f.Matches(Rec()));
  f = {};
  f.finished_before_ms = 5000;
  EXPECT_FALSE(f.Matches(Rec()));
  f.finished_before_ms = 5001;
  EXPECT_TRUE(f.Matches(Rec()));
  // A live job has not finished: no finished-at bound matches it, even one that 0 satisfies.
  f = {};
  f.finished_before_ms = 10'000;
  EXPECT_FALSE(f.Matches(Rec(JobState::kReady)));
  EXPECT_FALSE(f.MayMatchLive());
  EXPECT_TRUE(f.MayMatchFinished());
}

TEST(JobFilter, FieldsCombineWithAnd) {
  JobFilter f;
  f.queue = "emails";
  f.kind = "send";
  f.tag = "vip";
  f.states = {JobState::kSucceeded};
  f.created_after_ms = 0;
  f.finished_before_ms = 6000;
  EXPECT_TRUE(f.Matches(Rec()));
  for (auto change : std::vector<void (*)(JobRecord&)>{
           [](JobRecord& r) { r.queue = "x"; },
           [](JobRecord& r) { r.kind = "x"; },
           [](JobRecord& r) { r.tags.clear(); },
           [](JobRecord& r) { r.state = JobState::kDead; },
           [](JobRecord& r) { r.finished_at_ms = 6000; },
       }) {
    JobRecord r = Rec();
    change(r);
    EXPECT_FALSE(f.Matches(r));
  }
}

TEST(JobFilter, LiveJobMatchUsesInternedIds) {
  LiveJob j;
  j.id = 3;
  j.queue = 2;
  j.ns = 5;
  j.kind = 9;
  j.state = JobState::kReady;
  j.created_at_ms = 100;
  j.updated_at_ms = 200;
  JobFilter f;
  JobFilter::LiveNames names;
  EXPECT_TRUE(f.Matches(j, names));
  f.queue = "q";
  names.queue = 2;
  EXPECT_TRUE(f.Matches(j, names));
  names.queue = 1;
  EXPECT_FALSE(f.Matches(j, names));
  names = {};
  f = {};
  f.kind = "k";
  names.kind = 9;
  f.ns = "n";
  names.ns = 5;
  EXPECT_TRUE(f.Matches(j, names));
  names.ns = 4;
  EXPECT_FALSE(f.Matches(j, names));
  names = {};
  f = {};
  f.tag = "t";
  EXPECT_FALSE(f.Matches(j, names));  // no extra: no tags
  j.Extra().tags = {"a", "t"};
  EXPECT_TRUE(f.Matches(j, names));
  f = {};
  f.created_before_ms = 100;
  EXPECT_FALSE(f.Matches(j, names));
  f = {};
  f.finished_after_ms = 0;
  EXPECT_FALSE(f.Matches(j, names));  // live
  j.state = JobState::kSucceeded;     // ending in core: finished at updated_at
  EXPECT_TRUE(f.Matches(j, names));
  f.finished_after_ms = 201;
  EXPECT_FALSE(f.Matches(j, names));
}

TEST(JobFilter, ValidateNamesTheParameter) {
  auto message = [](const JobFilter& f) { return f.Validate().message(); };
  JobFilter f;
  f.ns = "bad name";
  EXPECT_EQ(f.Validate().code(), Code::kInvalidRequest);
  EXPECT_NE(message(f).find("\"namespace\""), std::string::npos);
  f = {};
  f.queue = "a/b";
  EXPECT_NE(message(f).find("\"queue\""), std::string::npos);
  f = {};
  f.kind = std::string(129, 'k');
  EXPECT_NE(message(f).find("\"kind\""), std::string::npos);
  f = {};
  f.tag = std::string(kMaxFilterTagBytes + 1, 't');
  EXPECT_NE(message(f).find("\"tag\""), std::string::npos);
  f.tag = std::string(kMaxFilterTagBytes, 't');
  EXPECT_TRUE(f.Validate().ok());
  f = {};
  f.created_after_ms = -1;
  EXPECT_NE(message(f).find("\"created_after\""), std::string::npos);
  f = {};
  f.finished_before_ms = -5;
  EXPECT_NE(message(f).find("\"finished_before\""), std::string::npos);
  f = {};
  f.states = {static_cast<JobState>(9)};
  EXPECT_NE(message(f).find("\"state\""), std::string::npos);
}

TEST(JobFilter, ScopeDiffersForEveryField) {
  std::vector<JobFilter> filters(1);
  auto add = [&](void (*change)(JobFilter&)) {
    JobFilter f;
    change(f);
    filters.push_back(f);
  };
  add([](JobFilter& f) { f.ns = "a"; });
  add([](JobFilter& f) { f.queue = "a"; });
  add([](JobFilter& f) { f.kind = "a"; });
  add([](JobFilter& f) { f.tag = "a"; });
  add([](JobFilter& f) { f.states = {JobState::kDead}; });
  add([](JobFilter& f) { f.states = {JobState::kDead, JobState::kCancelled}; });
  add([](JobFilter& f) { f.created_after_ms = 1; });
  add([](JobFilter& f) { f.created_before_ms = 1; });
  add([](JobFilter& f) { f.finished_after_ms = 1; });
  add([](JobFilter& f) { f.finished_before_ms = 1; });
  add([](JobFilter& f) { f.created_after_ms = 0; });
  add([](JobFilter& f) { f.tag = "a\n\n\n"; });
  for (std::size_t i = 0; i < filters.size(); ++i) {
    for (std::size_t j = i + 1; j < filters.size(); ++j) {
      EXPECT_NE(filters[i].Scope(), filters[j].Scope()) << i << " vs " << j;
    }
  }
  // The order states are given in does not matter.
  JobFilter a, b;
  a.states = {JobState::kDead, JobState::kReady};
  b.states = {JobState::kReady, JobState::kDead};
  EXPECT_EQ(a.Scope(), b.Scope());
}

}  // namespace
}  // namespace ym
