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

}  // namespace
}  // namespace ym
