// Leases survive a restart, and lease time runs on the monotonic clock (issue 7, items 5 and 6).
//
// The scheduler's batches are committed into a real MemoryStore (the same commit rules as
// SqliteStore, checked by store_test.cc), and a "restart" builds a fresh Scheduler from what
// that store recovers, exactly as Broker::Rebuild does. Time is a ManualClock whose wall and
// monotonic lines can be stepped apart.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "batch_mutations.h"
#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"
#include "server/scheduler_loader.h"
#include "store/batch.h"
#include "store/memory_store.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;
constexpr std::int64_t kHour = 3'600'000;

class LeaseDurabilityTest : public ::testing::Test {
 protected:
  LeaseDurabilityTest() : clock_(kStart), rng_(7) { Restart(); }

  // A process restart: whatever is not committed is lost, and a fresh scheduler is loaded from
  // the store.
  void Restart() {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, options_);
    SchedulerLoader loader(*sched_);
    ASSERT_TRUE(store_.Recover(clock_.NowMs(), loader).ok());
  }

  // Group commit into the store.
  Batch Commit() {
    Batch b = sched_->SealBatch();
    EXPECT_TRUE(store_.Commit(b).ok());
    sched_->OnPurged(store_.TakePurgeOutcomes());
    sched_->OnCommitted(b.seq);
    return b;
  }

  JobId EnqueueCommitted(std::int32_t max_attempts = 10, std::int64_t lease_ms = 30'000) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.max_attempts = max_attempts;
    s.lease_ms = lease_ms;
    auto r = sched_->Enqueue(std::move(s));
    EXPECT_TRUE(r.ok());
    Commit();
    return r.ok() ? r->id : 0;
  }

  std::vector<LeasedJob> Lease(const std::string& worker = "w1") {
    LeaseRequest req;
    req.queues = {"q"};
    req.max = 10;
    req.worker_id = worker;
    return sched_->Lease(req);
  }

  LeasedJob LeaseOneCommitted(const std::string& worker = "w1") {
    auto got = Lease(worker);
    EXPECT_EQ(got.size(), 1u);
    Commit();
    return got.empty() ? LeasedJob{} : got.front();
  }

  void AdvanceAndTick(std::int64_t ms) {
    clock_.Advance(ms);
    sched_->Tick();
  }

  JobState StateOf(JobId id) { return sched_->Get(id)->job.state; }

  ManualClock clock_;
  Rng rng_;
  SchedulerOptions options_;
  MemoryStore store_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(LeaseDurabilityTest, ALeaseIsWrittenToTheOpenBatchWithItsAttempt) {
  const JobId id = EnqueueCommitted();
  auto got = Lease("host/w9");
  ASSERT_EQ(got.size(), 1u);
  Batch b = Commit();
  auto leases = MutationsOf<UpdateLease>(b);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].id, id);
  EXPECT_EQ(leases[0].state, JobState::kActive);
  EXPECT_EQ(leases[0].attempts, 1);
  EXPECT_EQ(leases[0].token, got[0].lease.token);
  EXPECT_EQ(leases[0].expires_at_ms, kStart + 30'000);
  EXPECT_EQ(got[0].lease.expires_at_ms, kStart + 30'000);
  EXPECT_EQ(leases[0].worker_id, "host/w9");
  auto stored = store_.GetJob(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kActive);
  EXPECT_EQ((*stored)->attempts, 1);
  EXPECT_EQ((*stored)->lease_token, got[0].lease.token);
}

// Graceful restart (SIGTERM for an upgrade): every worker's token still works, nothing is
// dispatched twice.
TEST_F(LeaseDurabilityTest, AfterARestartTheSameTokenHeartbeatsAndAcksAndNothingIsLeasedTwice) {
  const JobId a = EnqueueCommitted();
  const JobId b = EnqueueCommitted();
  auto got = Lease();
  ASSERT_EQ(got.size(), 2u);
  Commit();
  clock_.Advance(1000);
  Restart();
  EXPECT_EQ(sched_->active_jobs(), 2u);
  EXPECT_TRUE(Lease("other").empty()) << "an active job was dispatched again after a restart";
  for (const LeasedJob& l : got) {
    auto v = sched_->Get(l.id);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->job.state, JobState::kActive);
    ASSERT_TRUE(v->lease.has_value());
    EXPECT_EQ(v->lease->token, l.lease.token);
    EXPECT_EQ(v->lease->worker_id, "w1");
    EXPECT_EQ(v->lease->expires_at_ms, l.lease.expires_at_ms);
    EXPECT_EQ(v->job.attempts, 1);
  }
  auto hb = sched_->Heartbeat(a, got[0].id == a ? got[0].lease.token : got[1].lease.token, 0);
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  for (const LeasedJob& l : got) {
    auto r = sched_->Ack(l.id, l.lease.token, "");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Commit();
  Restart();
  EXPECT_FALSE(sched_->Get(a).has_value());
  EXPECT_FALSE(sched_->Get(b).has_value());
}

// kill -9: a recorded lease is kept until its recorded expiry, then expires normally and the
// attempt counts.
TEST_F(LeaseDurabilityTest, ARecoveredLeaseIsKeptUntilItsExpiryThenTheAttemptCounts) {
  const JobId id = EnqueueCommitted(10, 30'000);
  LeasedJob l = LeaseOneCommitted();
  clock_.Advance(10'000);
  Restart();
  AdvanceAndTick(19'999);
  EXPECT_EQ(StateOf(id), JobState::kActive) << "expired before the recorded expiry";
  AdvanceAndTick(1);
  auto v = sched_->Get(id);
  EXPECT_EQ(v->job.state, JobState::kReady);
  EXPECT_EQ(v->job.attempts, 1);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0].type, "lease_expired");
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, 0).status().code(), Code::kStaleLease);
  auto next = Lease();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].attempt, 2) << "the attempt that died with the server was counted";
}

// Regression: a job leased again and again across server crashes used to come back ready with
// its attempt uncounted, and never reached max_attempts.
TEST_F(LeaseDurabilityTest, AJobThatCrashesTheServerEveryTimeReachesMaxAttempts) {
  const JobId id = EnqueueCommitted(/*max_attempts=*/3, 30'000);
  for (int i = 1; i <= 3; ++i) {
    LeasedJob l = LeaseOneCommitted();
    EXPECT_EQ(l.attempt, i);
    Restart();  // the server dies while the job runs
    AdvanceAndTick(30'000);
    Commit();
  }
  Restart();
  EXPECT_FALSE(sched_->Get(id).has_value()) << "the job is dead, not live";
  auto stored = store_.GetJob(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kDead);
  EXPECT_EQ((*stored)->dead_reason, kDeadMaxAttempts);
  EXPECT_EQ((*stored)->attempts, 3);
  EXPECT_EQ((*stored)->lease_token, 0u);
}

TEST_F(LeaseDurabilityTest, AHandedBackLeaseIsClearedInTheStore) {
  const JobId id = EnqueueCommitted();
  auto got = Lease();
  ASSERT_EQ(got.size(), 1u);
  sched_->Release(id, got[0].lease.token);
  Commit();
  auto stored = store_.GetJob(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kReady);
  EXPECT_EQ((*stored)->attempts, 0);
  EXPECT_EQ((*stored)->lease_token, 0u);
  Restart();
  EXPECT_EQ(StateOf(id), JobState::kReady);
  ASSERT_EQ(Lease().size(), 1u);
}

TEST_F(LeaseDurabilityTest, HeartbeatsArePersistedOnlyWhenTheDurableExpiryWouldLapseSoon) {
  const JobId id = EnqueueCommitted(10, 30'000);
  LeasedJob l = LeaseOneCommitted();
  // 10 s in: the durable expiry is 20 s away, more than half a lease: nothing to write.
  clock_.Advance(10'000);
  auto hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->persisted);
  EXPECT_EQ(hb->expires_at_ms, clock_.NowMs() + 30'000);
  EXPECT_EQ(sched_->open_mutations(), 0u);
  // 20 s in: the durable expiry is 10 s away, under half a lease: the extension is written.
  clock_.Advance(10'000);
  hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->persisted);
  Batch b = Commit();
  auto leases = MutationsOf<UpdateLease>(b);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].expires_at_ms, kStart + 50'000);
  // A crash now keeps the persisted expiry, 30 s after the last persisted beat.
  Restart();
  AdvanceAndTick(29'999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  ASSERT_TRUE(sched_->Heartbeat(id, l.lease.token, 0).ok()) << "the worker's token still works";
}

TEST_F(LeaseDurabilityTest, ACancelRequestOnALeasedJobSurvivesARestartAndIsDelivered) {
  const JobId id = EnqueueCommitted();
  LeasedJob l = LeaseOneCommitted();
  ASSERT_TRUE(sched_->Cancel(id).ok());
  Commit();
  Restart();
  EXPECT_EQ(StateOf(id), JobState::kActive) << "the worker may still run it: keep the lease";
  auto hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->cancel_requested);
  // The worker never answers: the cancel completes at expiry, not as a retry.
  AdvanceAndTick(30'001);
  EXPECT_EQ(StateOf(id), JobState::kCancelled);
}

// --- Monotonic time (item 6) -----------------------------------------------------------------

TEST_F(LeaseDurabilityTest, WallClockStepsNeitherExpireNorStretchLeases) {
  const JobId id = EnqueueCommitted(10, 30'000);
  LeasedJob l = LeaseOneCommitted();
  // Forward by two hours: no lease may expire because the calendar moved.
  clock_.StepWall(2 * kHour);
  sched_->Tick();
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(sched_->NextDeadlineInMs(), 30'000);
  auto hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  // The reply and GET show wall-clock time: the new wall clock plus the lease.
  EXPECT_EQ(hb->expires_at_ms, kStart + 2 * kHour + 30'000);
  EXPECT_EQ(sched_->Get(id)->lease->expires_at_ms, kStart + 2 * kHour + 30'000);
  // Back by five hours: the lease must not be stretched by three hours.
  clock_.StepWall(-5 * kHour);
  AdvanceAndTick(29'999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  AdvanceAndTick(1);
  EXPECT_EQ(StateOf(id), JobState::kReady) << "the lease expired 30 s after its last beat";
}

TEST_F(LeaseDurabilityTest, WallClockStepsDoNotMoveLongPollDeadlines) {
  int answered = 0;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 1;
  req.wait_ms = 5000;
  sched_->AddWaiter(req, clock_.MonoMs() + 5000, [&](std::vector<LeasedJob> jobs) {
    EXPECT_TRUE(jobs.empty());
    ++answered;
  });
  clock_.StepWall(3 * kHour);
  sched_->Tick();
  EXPECT_EQ(answered, 0) << "a step forward timed the long-poll out early";
  clock_.StepWall(-6 * kHour);
  AdvanceAndTick(4999);
  EXPECT_EQ(answered, 0);
  AdvanceAndTick(1);
  EXPECT_EQ(answered, 1) << "a step back stretched the long-poll";
}

TEST_F(LeaseDurabilityTest, RunAtStaysWallClock) {
  EnqueueSpec s;
  s.queue = "q";
  s.kind = "k";
  s.run_at_ms = kStart + kHour;
  auto r = sched_->Enqueue(std::move(s));
  ASSERT_TRUE(r.ok());
  Commit();
  EXPECT_EQ(StateOf(r->id), JobState::kScheduled);
  // run_at is a calendar time: when the wall clock reaches it, the job is due.
  clock_.StepWall(kHour);
  sched_->Tick();
  EXPECT_EQ(StateOf(r->id), JobState::kReady);
}

// The persisted expiry is wall-clock time; a new process has another monotonic origin.
TEST_F(LeaseDurabilityTest, ARecoveredExpiryIsConvertedToTheNewProcesssMonotonicClock) {
  const JobId id = EnqueueCommitted(10, 30'000);
  LeasedJob l = LeaseOneCommitted();
  ManualClock other(clock_.NowMs() + 5000);  // 5 s later, a monotonic clock with another origin
  other.Advance(123'456'789);
  other.StepWall(-123'456'789);
  ASSERT_EQ(other.NowMs(), kStart + 5000);
  Scheduler fresh(other, rng_, options_);
  SchedulerLoader loader(fresh);
  ASSERT_TRUE(store_.Recover(other.NowMs(), loader).ok());
  EXPECT_EQ(fresh.Get(id)->lease->expires_at_ms, l.lease.expires_at_ms);
  EXPECT_EQ(fresh.NextDeadlineInMs(), 25'000);
  other.Advance(24'999);
  fresh.Tick();
  EXPECT_EQ(fresh.Get(id)->job.state, JobState::kActive);
  other.Advance(1);
  fresh.Tick();
  EXPECT_EQ(fresh.Get(id)->job.state, JobState::kReady);
}

}  // namespace
}  // namespace ym
