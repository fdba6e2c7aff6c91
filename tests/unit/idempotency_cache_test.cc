// Unit tests of IdempotencyCache (core/idempotency_cache.h): LRU bound, expiry, final states,
// pinned entries and the completeness that lets a miss skip the store.

#include "core/idempotency_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace ym {
namespace {

IdempotencyCache::Entry E(JobId job, std::int64_t expires, std::uint64_t seq = 0) {
  IdempotencyCache::Entry e;
  e.job = job;
  e.expires_at_ms = expires;
  e.written_seq = seq;
  return e;
}

TEST(IdempotencyCacheTest, BoundedLruThatKnowsWhenAMissIsProof) {
  IdempotencyCache c(2);
  EXPECT_TRUE(c.Complete(0));
  c.Put("a", E(1, 1000), 0);
  c.Put("b", E(2, 1000), 0);
  ASSERT_NE(c.Find("a", 0), nullptr);  // "a" is now the most recent
  c.Put("c", E(3, 500), 0);            // evicts "b"
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.Find("b", 0), nullptr);
  EXPECT_NE(c.Find("a", 0), nullptr);
  // "b" was evicted unexpired: until it expires a miss does not prove absence.
  EXPECT_FALSE(c.Complete(999));
  EXPECT_TRUE(c.Complete(1000));
  // Expired entries are misses and are dropped.
  EXPECT_EQ(c.Find("c", 500), nullptr);
  EXPECT_EQ(c.size(), 1u);
}

TEST(IdempotencyCacheTest, FinalStateOnlyForTheKeysOwnJob) {
  IdempotencyCache c(4);
  c.Put("k", E(7, 1000), 0);
  c.SetFinal("k", 8, JobState::kDead);  // another job: ignored
  EXPECT_FALSE(c.Find("k", 0)->finished);
  c.SetFinal("k", 7, JobState::kCancelled);
  EXPECT_TRUE(c.Find("k", 0)->finished);
  EXPECT_EQ(c.Find("k", 0)->state, JobState::kCancelled);
}

// A key written in a batch that is not yet durable (or that a lookup in flight may have missed)
// is never evicted; the cache stays over capacity until it may go.
TEST(IdempotencyCacheTest, PinnedEntriesOutliveTheCapacity) {
  IdempotencyCache c(1);
  c.SetEvictableUpTo(4, 0);
  c.Put("old", E(1, 1000, 3), 0);
  c.Put("new", E(2, 1000, 5), 0);  // "old" (seq 3 <= 4) goes
  EXPECT_EQ(c.Find("old", 0), nullptr);
  c.Put("newer", E(3, 1000, 6), 0);  // "new" is pinned (seq 5 > 4): both stay
  EXPECT_EQ(c.size(), 2u);
  EXPECT_NE(c.Find("new", 0), nullptr);
  c.SetEvictableUpTo(6, 0);  // both durable: back to capacity, least recent first
  EXPECT_EQ(c.size(), 1u);
  EXPECT_NE(c.Find("new", 0), nullptr);
}

}  // namespace
}  // namespace ym
