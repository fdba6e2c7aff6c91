// The scheduler's cached resolution of a lease's queue names (core/lease_names.h) and its pinned
// retention entries (core/retention_work.h, "Pinned entries"): a lease always sees the queues
// that exist now under their names, also after queues were created, freed and their slots
// reused; retention counts through a freed and re-created queue as through a fresh one.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;
constexpr std::int64_t kSweepMs = 1000;

class SchedulerLeaseNamesTest : public ::testing::Test {
 protected:
  SchedulerLeaseNamesTest() : clock_(kStart), rng_(7) {
    SchedulerOptions o;
    o.retention_sweep_interval_ms = kSweepMs;  // idle queues go at the second idle sweep
    sched_ = std::make_unique<Scheduler>(clock_, rng_, o);
  }
  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }
  JobId Enqueue(const std::string& queue) {
    EnqueueSpec spec;
    spec.queue = queue;
    spec.kind = "k";
    spec.payload = "{}";
    auto r = sched_->Enqueue(std::move(spec));
    EXPECT_TRUE(r.ok());
    Commit();
    return r.ok() ? r->id : 0;
  }
  std::vector<LeasedJob> Lease(const std::vector<std::string>& queues, std::uint32_t max = 10) {
    LeaseRequest req;
    req.queues = queues;
    req.max = max;
    req.worker_id = "w";
    std::vector<LeasedJob> got = sched_->Lease(req);
    Commit();
    return got;
  }
  void AckAll(const std::vector<LeasedJob>& jobs) {
    for (const LeasedJob& l : jobs) ASSERT_TRUE(sched_->Ack(l.id, l.lease.token, "null").ok());
    Commit();
  }
  // Two sweeps: every queue that holds nothing is freed.
  void FreeIdleQueues() {
    for (int i = 0; i < 3; ++i) {
      clock_.Advance(kSweepMs);
      sched_->Tick();
      Commit();
    }
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerLeaseNamesTest, AQueueCreatedAfterTheListWasResolvedIsLeasedFrom) {
  const JobId a = Enqueue("a");
  // "b" does not exist yet: the list resolves to "a" alone, and is cached so.
  auto got = Lease({"a", "b"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, a);
  AckAll(got);
  const JobId b = Enqueue("b");
  got = Lease({"a", "b"});
  ASSERT_EQ(got.size(), 1u) << "the cached list must learn that b exists now";
  EXPECT_EQ(got[0].id, b);
  EXPECT_EQ(got[0].queue, "b");
  AckAll(got);
}

TEST_F(SchedulerLeaseNamesTest, AFreedQueuesSlotReusedByAnotherNameIsNotLeasedUnderTheOldName) {
  AckAll(Lease({"old"}, 1));  // names nothing yet
  const JobId first = Enqueue("old");
  auto got = Lease({"old", "x"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, first);
  AckAll(got);
  FreeIdleQueues();
  ASSERT_FALSE(sched_->Queue("old").has_value()) << "the idle queue is freed";
  // A new queue takes the freed slot; the old list must not lease from it.
  const JobId other = Enqueue("new");
  EXPECT_TRUE(Lease({"old", "x"}).empty()) << "old no longer exists: nothing to lease";
  got = Lease({"new"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, other);
  AckAll(got);
  // And the old name, created again, is found again.
  const JobId again = Enqueue("old");
  got = Lease({"old", "x"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, again);
  EXPECT_EQ(got[0].queue, "old");
  AckAll(got);
}

TEST_F(SchedulerLeaseNamesTest, RetentionCountsThroughAQueueFreedAndCreatedAgain) {
  // Default retention keeps succeeded jobs: each ack is counted for its queue.
  AckAll(Lease({"r"}));
  Enqueue("r");
  Enqueue("r");
  AckAll(Lease({"r"}));
  EXPECT_EQ(sched_->retention().Count("r", JobState::kSucceeded), 2u);
  FreeIdleQueues();
  ASSERT_FALSE(sched_->Queue("r").has_value());
  // The queue's state is gone, its finished rows are not: retention still knows them.
  EXPECT_EQ(sched_->retention().Count("r", JobState::kSucceeded), 2u);
  Enqueue("r");
  AckAll(Lease({"r"}));
  EXPECT_EQ(sched_->retention().Count("r", JobState::kSucceeded), 3u);
  EXPECT_EQ(sched_->retention().queues(), 1u);
}

}  // namespace
}  // namespace ym
