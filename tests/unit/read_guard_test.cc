// ReadGuard (core/read_guard.h): when is a record read from the store still current once it is
// back on the core thread, and what the guard keeps meanwhile.

#include "core/read_guard.h"

#include <gtest/gtest.h>

namespace ym {
namespace {

TEST(ReadGuardTest, AReadNothingCrossedIsCurrent) {
  ReadGuard g;
  auto t = g.Open(/*durable_seq=*/5);
  EXPECT_FALSE(g.MaybeStale(t, 1));
  g.Close(t);
  EXPECT_EQ(g.open_reads(), 0u);
}

TEST(ReadGuardTest, AJobEvictedWhileTheReadIsOpenMakesItsRecordStale) {
  ReadGuard g;
  g.OnEvicted(7);  // before the read: the read sees its final row
  auto t = g.Open(5);
  EXPECT_FALSE(g.MaybeStale(t, 7));
  g.OnEvicted(8);
  EXPECT_TRUE(g.MaybeStale(t, 8));
  EXPECT_FALSE(g.MaybeStale(t, 9)) << "other jobs are not affected";
  // A read opened after the eviction sees the final row.
  auto later = g.Open(6);
  EXPECT_FALSE(g.MaybeStale(later, 8));
  g.Close(t);
  g.Close(later);
}

TEST(ReadGuardTest, APurgeInABatchTheReadMayNotHaveSeenMakesEveryRecordStale) {
  ReadGuard g;
  g.OnPurge(4);
  auto t = g.Open(4);  // batch 4 was durable before the read began
  EXPECT_FALSE(g.MaybeStale(t, 1));
  g.OnPurge(6);  // appended to the open batch 6
  EXPECT_TRUE(g.MaybeStale(t, 1));
  EXPECT_EQ(g.last_purge_seq(), 6u);
  g.Close(t);
  auto again = g.Open(6);
  EXPECT_FALSE(g.MaybeStale(again, 1)) << "a read after the purge is durable is current";
  g.Close(again);
}

TEST(ReadGuardTest, RemembersEvictionsOnlyWhileAnOlderReadIsOpen) {
  ReadGuard g;
  for (JobId id = 1; id <= 1000; ++id) g.OnEvicted(id);
  EXPECT_EQ(g.remembered(), 0u) << "no read open: nothing to remember";
  auto a = g.Open(1);
  g.OnEvicted(1);
  auto b = g.Open(1);
  g.OnEvicted(2);
  EXPECT_EQ(g.remembered(), 2u);
  g.Close(a);  // b began after job 1 left: its entry goes
  EXPECT_EQ(g.remembered(), 1u);
  EXPECT_TRUE(g.MaybeStale(b, 2));
  EXPECT_FALSE(g.MaybeStale(b, 1));
  g.Close(b);
  EXPECT_EQ(g.remembered(), 0u);
  g.Close(b);  // twice: harmless
  EXPECT_EQ(g.open_reads(), 0u);
}

TEST(ReadGuardTest, PastItsCapItForgetsTheOldestAndTreatsOlderReadsAsStale) {
  ReadGuard g(/*max_remembered=*/4);
  auto old = g.Open(1);
  for (JobId id = 100; id < 110; ++id) g.OnEvicted(id);
  EXPECT_EQ(g.remembered(), 4u) << "bounded";
  // The read cannot tell whether job 1 was among the forgotten: it must read again.
  EXPECT_TRUE(g.MaybeStale(old, 1));
  auto fresh = g.Open(1);
  EXPECT_FALSE(g.MaybeStale(fresh, 1));
  g.OnEvicted(1);
  EXPECT_TRUE(g.MaybeStale(fresh, 1));
  g.Close(old);
  g.Close(fresh);
  EXPECT_EQ(g.remembered(), 0u);
}

TEST(ReadGuardTest, AJobEvictedTwiceIsStaleForEveryReadOpenBeforeItsLastEviction) {
  ReadGuard g;
  auto a = g.Open(1);
  g.OnEvicted(5);
  auto b = g.Open(1);
  g.OnEvicted(5);
  g.Close(a);  // trims the first entry; the second must still count for b
  EXPECT_TRUE(g.MaybeStale(b, 5));
  g.Close(b);
}

TEST(ReadGuardTest, ADeleteMakesOnlyThatJobsOlderRecordsStale) {
  ReadGuard g;
  auto before = g.Open(/*durable_seq=*/4);
  g.OnDeleted(7, /*batch_seq=*/5);  // appended to the open batch 5
  EXPECT_TRUE(g.MaybeStale(before, 7)) << "the read may have seen the row before the delete";
  EXPECT_FALSE(g.MaybeStale(before, 8)) << "a delete is not a purge: other jobs stay current";
  // A read opened after the decision but before batch 5 is durable may still see the row.
  auto after = g.Open(4);
  EXPECT_TRUE(g.MaybeStale(after, 7));
  g.OnDurable(5);
  auto durable = g.Open(5);
  EXPECT_FALSE(g.MaybeStale(durable, 7)) << "a read made once the delete is durable sees it";
  EXPECT_TRUE(g.MaybeStale(before, 7)) << "still remembered for the older reads";
  EXPECT_EQ(g.remembered_deletes(), 1u);
  g.Close(before);
  g.Close(after);
  EXPECT_EQ(g.remembered_deletes(), 0u) << "no read can miss it any more";
  g.Close(durable);
  EXPECT_EQ(g.last_purge_seq(), 0u);
}

TEST(ReadGuardTest, DeletesAreForgottenOnceDurableWhenNoReadIsOpen) {
  ReadGuard g;
  for (JobId id = 1; id <= 100; ++id) g.OnDeleted(id, 3);
  EXPECT_EQ(g.remembered_deletes(), 100u) << "batch 3 is not durable yet";
  g.OnDurable(2);
  EXPECT_EQ(g.remembered_deletes(), 100u);
  g.OnDurable(3);
  EXPECT_EQ(g.remembered_deletes(), 0u);
}

TEST(ReadGuardTest, PastItsCapTheOldestDeleteCountsAsAPurgeOfItsBatch) {
  ReadGuard g(/*max_remembered=*/4);
  auto old = g.Open(1);
  for (JobId id = 100; id < 106; ++id) g.OnDeleted(id, 2 + (id - 100) / 3);  // batches 2 and 3
  EXPECT_EQ(g.remembered_deletes(), 4u) << "bounded";
  EXPECT_EQ(g.last_purge_seq(), 2u) << "the forgotten deletes were in batch 2";
  EXPECT_TRUE(g.MaybeStale(old, 1)) << "a read older than batch 2 cannot tell: read again";
  auto fresh = g.Open(2);
  EXPECT_FALSE(g.MaybeStale(fresh, 1));
  EXPECT_TRUE(g.MaybeStale(fresh, 104)) << "remembered: deleted in batch 3";
  g.Close(old);
  g.Close(fresh);
}

}  // namespace
}  // namespace ym
