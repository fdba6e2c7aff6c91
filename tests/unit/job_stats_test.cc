// Per-(queue, kind) job metrics (issue 12, item 1): the pure component (core/job_stats.h):
// label sets, events, durations in their buckets, the cap and its overflow set, and a reader
// running beside the writer. The scheduler's hooks: job_stats_scheduler_test.cc.

#include "core/job_stats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "job_stats_probe.h"

namespace ym {
namespace {

using test::AtOrBelow;
using test::EventCount;
using test::Times;

// --- The pure component ------------------------------------------------------------------------

TEST(JobStatsTest, APairResolvesToOneLabelSetAndEventsLandThere) {
  JobStats s;
  const JobStats::Ref a = s.Resolve("emails", "send");
  const JobStats::Ref b = s.Resolve("emails", "bounce");
  const JobStats::Ref c = s.Resolve("emailsse", "nd");  // not confused by where names split
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(s.Resolve("emails", "send"), a);
  s.Count(a, JobEvent::kEnqueued);
  s.Count(a, JobEvent::kEnqueued);
  s.Count(b, JobEvent::kDead);
  EXPECT_EQ(EventCount(s, "emails", "send", JobEvent::kEnqueued), 2u);
  EXPECT_EQ(EventCount(s, "emails", "send", JobEvent::kDead), 0u);
  EXPECT_EQ(EventCount(s, "emails", "bounce", JobEvent::kDead), 1u);
  EXPECT_EQ(EventCount(s, "emailsse", "nd", JobEvent::kEnqueued), 0u);
  EXPECT_EQ(s.label_sets(), 3u);
  for (std::size_t f = 0; f < kJobFamilyCount; ++f) EXPECT_EQ(s.overflow(f), 0u);
}

TEST(JobStatsTest, DurationsAreMillisecondsObservedAsMicrosecondsInTheirBucket) {
  JobStats s;
  const JobStats::Ref r = s.Resolve("q", "k");
  s.Observe(r, JobTime::kWait, 300);     // 300 ms: the 0.5 s bucket
  s.Observe(r, JobTime::kWait, 0);       // the first bucket
  s.Observe(r, JobTime::kWait, -5000);   // a wall-clock step back: counted as 0
  s.Observe(r, JobTime::kRun, 120'000);  // past the last bound (60 s): +Inf only
  const auto wait = Times(s, "q", "k", JobTime::kWait);
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count, 3u);
  EXPECT_EQ(wait->sum, 300'000u);
  EXPECT_EQ(AtOrBelow(*wait, 100), 2u);
  EXPECT_EQ(AtOrBelow(*wait, 250'000), 2u);
  EXPECT_EQ(AtOrBelow(*wait, 500'000), 3u);
  const auto run = Times(s, "q", "k", JobTime::kRun);
  EXPECT_EQ(AtOrBelow(*run, 60'000'000), 0u);
  EXPECT_EQ(run->cumulative.back(), 1u);
  EXPECT_EQ(Times(s, "q", "k", JobTime::kEndToEnd)->count, 0u);
}

TEST(JobStatsTest, TheCapFoldsThe1001stPairIntoOtherAndCountsTheOverflow) {
  JobStats s;  // the default cap, 1000
  ASSERT_EQ(s.max_label_sets(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    const JobStats::Ref r = s.Resolve("q" + std::to_string(i), "k");
    EXPECT_EQ(r, static_cast<JobStats::Ref>(i));
    s.Count(r, JobEvent::kEnqueued);
  }
  EXPECT_EQ(s.label_sets(), 1000u);
  const JobStats::Ref over = s.Resolve("q1000", "k");
  const JobStats::Ref over2 = s.Resolve("q0", "another-kind");
  EXPECT_EQ(over, over2);
  EXPECT_EQ(s.label_sets(), 1001u);  // 1000 and the overflow set
  s.Count(over, JobEvent::kEnqueued);
  s.Count(over2, JobEvent::kLeased);
  s.Observe(over, JobTime::kRun, 5);
  EXPECT_EQ(s.overflow(0), 2u) << "two events";
  EXPECT_EQ(s.overflow(1), 0u) << "no wait observed";
  EXPECT_EQ(s.overflow(2), 1u) << "one run observed";
  EXPECT_EQ(s.overflow(3), 0u);
  EXPECT_EQ(EventCount(s, "~other", "~other", JobEvent::kEnqueued), 1u);
  EXPECT_EQ(EventCount(s, "~other", "~other", JobEvent::kLeased), 1u);
  EXPECT_EQ(EventCount(s, "q1000", "k", JobEvent::kEnqueued), 0u) << "no label set of its own";
  // Pairs under the cap keep theirs.
  EXPECT_EQ(s.Resolve("q999", "k"), 999u);
  s.Count(999, JobEvent::kEnqueued);
  EXPECT_EQ(EventCount(s, "q999", "k", JobEvent::kEnqueued), 2u);
  EXPECT_EQ(s.overflow(0), 2u);
  // The overflow set is visited last.
  std::string last;
  s.ForEach([&](const JobStats::LabelSet& set) { last = set.queue; });
  EXPECT_EQ(last, "~other");
}

TEST(JobStatsTest, ACapOfOneKeepsOnePair) {
  JobStats s(1);
  EXPECT_EQ(s.Resolve("a", "b"), 0u);
  const JobStats::Ref o = s.Resolve("a", "c");
  EXPECT_NE(o, 0u);
  s.Count(o, JobEvent::kCancelled);
  EXPECT_EQ(s.overflow(0), 1u);
  EXPECT_EQ(JobStats(0).max_label_sets(), 1u) << "clamped";
}

// The scrape reads while the core thread creates label sets and counts: every set a reader
// sees is complete, and counts only grow (run under TSan by the sanitizer builds).
TEST(JobStatsTest, AReaderDuringWritesSeesWholeSetsAndGrowingCounts) {
  JobStats s(500);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::map<std::string, std::uint64_t> seen;
    while (!done.load()) {
      s.ForEach([&](const JobStats::LabelSet& set) {
        if (set.queue == JobStats::kOverflow) {
          ASSERT_EQ(set.kind, JobStats::kOverflow);  // once the cap is reached
          return;
        }
        ASSERT_EQ(set.kind, "k");
        ASSERT_EQ(set.queue.substr(0, 5), "queue");
        const std::uint64_t n = set.events[0].load(std::memory_order_relaxed);
        std::uint64_t& before = seen[set.queue];
        ASSERT_GE(n, before);
        before = n;
      });
    }
  });
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 600; ++i) {
      s.Count(s.Resolve("queue" + std::to_string(i), "k"), JobEvent::kEnqueued);
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(s.label_sets(), 501u);
  EXPECT_EQ(EventCount(s, "queue0", "k", JobEvent::kEnqueued), 20u);
  EXPECT_EQ(s.overflow(0), 20u * 100);
}

}  // namespace
}  // namespace ym
