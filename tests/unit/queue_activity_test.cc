// The per-queue activity the scheduler hands out with the gauges (core/queue_activity.h), which
// the alert evaluator samples: acks, failed attempts (fail reports, lease expiries, timeouts,
// but not the fail of a cancelled job), dead jobs, and when a lease request last named the queue.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

class QueueActivityTest : public ::testing::Test {
 protected:
  QueueActivityTest() : clock_(kStart), rng_(3) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }

  JobId Enqueue(const std::string& queue, std::int32_t max_attempts = 3) {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = "k";
    s.max_attempts = max_attempts;
    auto r = sched_->Enqueue(std::move(s));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  LeasedJob LeaseOne(const std::string& queue, std::int64_t lease_ms = 0) {
    LeaseRequest req;
    req.queues = {queue};
    req.max = 1;
    req.worker_id = "w";
    if (lease_ms > 0) req.lease_ms = lease_ms;
    auto jobs = sched_->Lease(req);
    EXPECT_EQ(jobs.size(), 1u);
    return jobs.empty() ? LeasedJob{} : jobs[0];
  }

  // The activity of every queue in the gauge changes taken now (all queues on the first take).
  std::map<std::string, QueueActivity> Taken() {
    std::map<std::string, QueueActivity> out;
    for (const auto& g : sched_->TakeGaugeChanges().changed) out[g.name] = g.activity;
    return out;
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(QueueActivityTest, CountsOutcomesPerQueue) {
  Taken();
  // Succeeded.
  Enqueue("a");
  LeasedJob j = LeaseOne("a");
  ASSERT_TRUE(sched_->Ack(j.id, j.lease.token, "").ok());
  // A retried fail, then a non-retryable one: 2 failed, 1 dead.
  Enqueue("b");
  j = LeaseOne("b");
  FailSpec retry;
  retry.retry_in_ms = 0;
  ASSERT_TRUE(sched_->Fail(j.id, j.lease.token, retry).ok());
  j = LeaseOne("b");
  FailSpec fatal;
  fatal.retryable = false;
  ASSERT_EQ(*sched_->Fail(j.id, j.lease.token, fatal), JobState::kDead);
  Commit();
  auto got = Taken();
  EXPECT_EQ(got["a"].succeeded, 1u);
  EXPECT_EQ(got["a"].failed, 0u);
  EXPECT_EQ(got["b"].succeeded, 0u);
  EXPECT_EQ(got["b"].failed, 2u);
  EXPECT_EQ(got["b"].dead, 1u);
}

TEST_F(QueueActivityTest, LeaseExpiryCountsAsAFailedAttemptAndCancelDoesNot) {
  Enqueue("x", /*max_attempts=*/1);
  LeaseOne("x", /*lease_ms=*/1000);
  clock_.Advance(1001);
  sched_->Tick();  // expires: the only attempt, so dead
  Enqueue("y");
  LeasedJob j = LeaseOne("y");
  ASSERT_TRUE(sched_->Cancel(j.id).ok());
  ASSERT_EQ(*sched_->Fail(j.id, j.lease.token, FailSpec{}), JobState::kCancelled);
  Commit();
  auto got = Taken();
  EXPECT_EQ(got["x"].failed, 1u);
  EXPECT_EQ(got["x"].dead, 1u);
  EXPECT_EQ(got["y"].failed, 0u);
  EXPECT_EQ(got["y"].dead, 0u);
}

TEST_F(QueueActivityTest, ALeaseRequestMarksTheQueuesItNamesAsPolled) {
  Enqueue("p");
  Enqueue("idle");
  Taken();
  clock_.Advance(5000);
  LeaseRequest req;
  req.queues = {"p", "unknown"};
  req.max = 1;
  req.worker_id = "w";
  EXPECT_TRUE(sched_->Lease(req).size() == 1u);
  clock_.Advance(10);
  // An empty answer is a poll too: nothing ready in "p" now.
  EXPECT_TRUE(sched_->Lease(req).empty());
  auto got = Taken();
  ASSERT_EQ(got.count("p"), 1u);
  EXPECT_EQ(got["p"].last_poll_ms, clock_.NowMs());
  EXPECT_EQ(got.count("idle"), 0u) << "not named: not marked";
  EXPECT_EQ(got.count("unknown"), 0u);
}

}  // namespace
}  // namespace ym
