// Execution timeout (issue 9 item 6): the pure rules (core/attempt_timeout.h) and how the
// Scheduler applies them: the lease is capped at the attempt's deadline, heartbeats cannot pass
// it, the attempt fails with type `timeout` when it comes (retried by backoff, dead after the
// last attempt, waits woken), a late ack is stale, and a restart keeps the deadline.
//
// Time is a ManualClock; batches are committed into a real MemoryStore so that a "restart"
// recovers what the server would (as lease_durability_test.cc does).

#include "core/attempt_timeout.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// --- The pure rules ----------------------------------------------------------------------------

TEST(AttemptTimeoutTest, CheckAcceptsNoneOrOneMsToADay) {
  EXPECT_TRUE(AttemptTimeout::Check(0, "timeout_ms").ok());
  EXPECT_TRUE(AttemptTimeout::Check(1, "timeout_ms").ok());
  EXPECT_TRUE(AttemptTimeout::Check(AttemptTimeout::kMaxMs, "timeout_ms").ok());
  for (std::int64_t bad : {std::int64_t{-1}, AttemptTimeout::kMaxMs + 1}) {
    Status st = AttemptTimeout::Check(bad, "timeout_ms");
    EXPECT_EQ(st.code(), Code::kValidation) << bad;
    EXPECT_NE(st.message().find("\"timeout_ms\""), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("0 (no timeout)"), std::string::npos) << st.message();
  }
}

TEST(AttemptTimeoutTest, TheJobsOwnValueWinsAndZeroOptsOut) {
  EXPECT_EQ(AttemptTimeout::Resolve(std::nullopt, 5000), 5000);
  EXPECT_EQ(AttemptTimeout::Resolve(2000, 5000), 2000);
  EXPECT_EQ(AttemptTimeout::Resolve(0, 5000), 0);
  EXPECT_EQ(AttemptTimeout::Resolve(std::nullopt, 0), 0);
}

TEST(AttemptTimeoutTest, DeadlineCapAndDue) {
  EXPECT_EQ(AttemptTimeout::Deadline(1000, 0), 0) << "no timeout, no deadline";
  EXPECT_EQ(AttemptTimeout::Deadline(1000, 250), 1250);
  EXPECT_EQ(AttemptTimeout::Cap(5000, 0), 5000) << "no deadline caps nothing";
  EXPECT_EQ(AttemptTimeout::Cap(5000, 1250), 1250);
  EXPECT_EQ(AttemptTimeout::Cap(1000, 1250), 1000) << "a shorter lease stays shorter";
  EXPECT_FALSE(AttemptTimeout::Due(0, 1'000'000));
  EXPECT_FALSE(AttemptTimeout::Due(1250, 1249));
  EXPECT_TRUE(AttemptTimeout::Due(1250, 1250));
}

TEST(AttemptTimeoutTest, FailureIsARetryableTimeoutNamingTheLimit) {
  FailSpec f = AttemptTimeout::Failure(1500);
  EXPECT_EQ(f.type, "timeout");
  EXPECT_NE(f.message.find("1500 ms"), std::string::npos) << f.message;
  EXPECT_TRUE(f.retryable);
  EXPECT_FALSE(f.retry_in_ms.has_value()) << "retried by the job's backoff";
}

// --- The Scheduler's use of them ---------------------------------------------------------------

class SchedulerTimeoutTest : public ::testing::Test {
 protected:
  SchedulerTimeoutTest() : clock_(kStart), rng_(11) { Restart(); }

  // A process restart: what is not committed is lost; a fresh scheduler loads the store.
  void Restart() {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, options_);
    SchedulerLoader loader(*sched_);
    ASSERT_TRUE(store_.Recover(clock_.NowMs(), loader).ok());
  }

  Batch Commit() {
    Batch b = sched_->SealBatch();
    EXPECT_TRUE(store_.Commit(b).ok());
    sched_->OnCommitted(b.seq);
    return b;
  }

  static EnqueueSpec Spec(std::optional<std::int64_t> timeout_ms) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.timeout_ms = timeout_ms;
    // A fixed, recognisable backoff: every retry waits at most 10 s.
    s.backoff = Backoff{10'000, 10'000, 1.0};
    return s;
  }

  JobId EnqueueCommitted(const EnqueueSpec& s) {
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  LeasedJob LeaseOne(std::optional<std::int64_t> lease_ms = std::nullopt) {
    LeaseRequest req;
    req.queues = {"q"};
    req.max = 1;
    req.worker_id = "w1";
    req.lease_ms = lease_ms;
    auto got = sched_->Lease(req);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? LeasedJob{} : got.front();
  }

  void AdvanceAndTick(std::int64_t ms) {
    clock_.Advance(ms);
    sched_->Tick();
  }

  JobView View(JobId id) {
    auto v = sched_->Get(id);
    EXPECT_TRUE(v.has_value()) << "job " << id << " is not in memory";
    return v ? *v : JobView{};
  }

  ManualClock clock_;
  Rng rng_;
  SchedulerOptions options_;
  MemoryStore store_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTimeoutTest, TheLeaseEndsAtTheDeadlineAndCarriesIt) {
  const JobId id = EnqueueCommitted(Spec(1500));  // the lease would be 30 s
  LeasedJob l = LeaseOne();
  EXPECT_EQ(l.timeout_ms, 1500);
  EXPECT_EQ(l.lease.deadline_at_ms, kStart + 1500);
  EXPECT_EQ(l.lease.expires_at_ms, kStart + 1500) << "capped at the deadline";
  JobView v = View(id);
  EXPECT_EQ(v.job.timeout_ms, 1500);
  ASSERT_TRUE(v.lease.has_value());
  EXPECT_EQ(v.lease->deadline_at_ms, kStart + 1500);
  // The deadline is written with the lease.
  auto leases = MutationsOf<UpdateLease>(Commit());
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].deadline_at_ms, kStart + 1500);
  EXPECT_EQ(leases[0].expires_at_ms, kStart + 1500);

  // A lease shorter than the timeout is left as it is (and a lease request's own length too).
  const JobId other = EnqueueCommitted(Spec(60'000));
  ASSERT_TRUE(sched_->Cancel(id).ok());
  LeasedJob s = LeaseOne(/*lease_ms=*/2000);
  EXPECT_EQ(s.id, other);
  EXPECT_EQ(s.lease.expires_at_ms, kStart + 2000);
  EXPECT_EQ(s.lease.deadline_at_ms, kStart + 60'000);
}

TEST_F(SchedulerTimeoutTest, HeartbeatsCannotExtendPastTheDeadline) {
  EnqueueSpec spec = Spec(2000);
  spec.lease_ms = 1000;
  const JobId id = EnqueueCommitted(spec);
  LeasedJob l = LeaseOne();
  EXPECT_EQ(l.lease.expires_at_ms, kStart + 1000);
  AdvanceAndTick(800);
  auto hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(hb->expires_at_ms, kStart + 1800) << "under the deadline, a normal extension";
  AdvanceAndTick(700);
  hb = sched_->Heartbeat(id, l.lease.token, /*extend_ms=*/3'600'000);
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(hb->expires_at_ms, kStart + 2000) << "an hour asked, the deadline given";
  EXPECT_EQ(View(id).lease->expires_at_ms, kStart + 2000);
  // Made durable capped too: a restart must not find a lease past the deadline.
  for (const UpdateLease& u : MutationsOf<UpdateLease>(Commit())) {
    EXPECT_LE(u.expires_at_ms, kStart + 2000);
    EXPECT_EQ(u.deadline_at_ms, kStart + 2000);
  }
  AdvanceAndTick(499);
  EXPECT_EQ(View(id).job.state, JobState::kActive);
  AdvanceAndTick(1);
  EXPECT_NE(View(id).job.state, JobState::kActive) << "the beats did not keep it past 2 s";
}

TEST_F(SchedulerTimeoutTest, TheTimeoutFailsTheAttemptAndRetriesByBackoff) {
  const JobId id = EnqueueCommitted(Spec(1500));
  LeasedJob l = LeaseOne();
  for (int i = 0; i < 2; ++i) {  // a worker beating steadily: beats do not prevent it
    AdvanceAndTick(700);
    ASSERT_TRUE(sched_->Heartbeat(id, l.lease.token, 0).ok());
  }
  AdvanceAndTick(99);
  EXPECT_EQ(View(id).job.state, JobState::kActive);
  AdvanceAndTick(1);
  JobView v = View(id);
  ASSERT_EQ(v.job.errors.size(), 1u);
  EXPECT_EQ(v.job.errors[0].type, "timeout");
  EXPECT_EQ(v.job.errors[0].attempt, 1);
  EXPECT_EQ(v.job.errors[0].at_ms, kStart + 1500);
  EXPECT_NE(v.job.errors[0].message.find("1500 ms"), std::string::npos);
  // Retried by the backoff rules (uniform in [0, 10 s] here), unlike a lapsed lease, which
  // returns to ready at once.
  if (v.job.state == JobState::kScheduled) {
    EXPECT_EQ(v.blocked_reason, "retry_backoff");
    EXPECT_LE(v.job.run_at_ms, kStart + 1500 + 10'000);
  } else {
    EXPECT_EQ(v.job.state, JobState::kReady) << "a zero jitter draw";
  }
  EXPECT_FALSE(v.lease.has_value());
  // The worker's late answer is stale; the attempt stays a timeout.
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, l.lease.token, FailSpec{}).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, 0).status().code(), Code::kStaleLease);
  EXPECT_EQ(View(id).job.errors.size(), 1u);
  auto updates = MutationsOf<UpdateJob>(Commit());
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].job.errors.back().type, "timeout");

  // The next attempt gets a deadline of its own, from its own start.
  AdvanceAndTick(10'000);
  LeasedJob second = LeaseOne();
  EXPECT_EQ(second.attempt, 2);
  EXPECT_EQ(second.lease.deadline_at_ms, clock_.NowMs() + 1500);
}

TEST_F(SchedulerTimeoutTest, AVanishedWorkerBeforeTheDeadlineIsALeaseExpiry) {
  EnqueueSpec spec = Spec(60'000);
  spec.lease_ms = 1000;
  const JobId id = EnqueueCommitted(spec);
  LeaseOne();
  AdvanceAndTick(1000);
  JobView v = View(id);
  ASSERT_EQ(v.job.errors.size(), 1u);
  EXPECT_EQ(v.job.errors[0].type, "lease_expired");
  EXPECT_EQ(v.job.state, JobState::kReady) << "a lapsed lease skips the backoff";
}

TEST_F(SchedulerTimeoutTest, AnAckAfterTheDeadlineIsStaleEvenBeforeTheTimerRuns) {
  const JobId id = EnqueueCommitted(Spec(1000));
  LeasedJob l = LeaseOne();
  clock_.Advance(1000);  // no Tick: the ack comes first
  auto ack = sched_->Ack(id, l.lease.token, R"({"late":true})");
  EXPECT_EQ(ack.status().code(), Code::kStaleLease);
  EXPECT_NE(ack.status().message().find("timeout of 1000 ms"), std::string::npos)
      << ack.status().message();
  JobView v = View(id);
  EXPECT_NE(v.job.state, JobState::kSucceeded);
  ASSERT_EQ(v.job.errors.size(), 1u);
  EXPECT_EQ(v.job.errors[0].type, "timeout");
  // One millisecond earlier the same ack succeeds.
  const JobId in_time = EnqueueCommitted(Spec(1000));
  AdvanceAndTick(20'000);  // the first job's backoff
  std::vector<LeasedJob> got;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 10;
  req.worker_id = "w1";
  for (const LeasedJob& j : sched_->Lease(req)) {
    if (j.id == in_time) got.push_back(j);
  }
  ASSERT_EQ(got.size(), 1u);
  clock_.Advance(999);
  EXPECT_TRUE(sched_->Ack(in_time, got[0].lease.token, "").ok());
}

TEST_F(SchedulerTimeoutTest, TimeoutsExhaustAttemptsIntoDeadAndWakeWaits) {
  EnqueueSpec spec = Spec(1000);
  spec.max_attempts = 2;
  const JobId id = EnqueueCommitted(spec);
  std::optional<JobView> ended;
  int calls = 0;
  ASSERT_TRUE(sched_
                  ->AddEndWait(id, clock_.MonoMs() + 60'000,
                               [&](std::optional<JobView> v) {
                                 ended = std::move(v);
                                 ++calls;
                               })
                  .ok());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    SCOPED_TRACE(attempt);
    AdvanceAndTick(10'000);  // past any backoff
    LeasedJob l = LeaseOne();
    EXPECT_EQ(l.attempt, attempt);
    AdvanceAndTick(1000);
  }
  EXPECT_EQ(calls, 1) << "the wait is answered when the last timeout ends the job";
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->job.state, JobState::kDead);
  EXPECT_EQ(ended->job.dead_reason, kDeadMaxAttempts);
  auto updates = MutationsOf<UpdateJob>(Commit());
  ASSERT_FALSE(updates.empty());
  const JobRecord& dead = updates.back().job;
  EXPECT_EQ(dead.state, JobState::kDead);
  EXPECT_EQ(dead.dead_reason, kDeadMaxAttempts);
  ASSERT_EQ(dead.errors.size(), 2u);
  EXPECT_EQ(dead.errors[0].type, "timeout");
  EXPECT_EQ(dead.errors[1].type, "timeout");
}

TEST_F(SchedulerTimeoutTest, ARestartKeepsTheDeadlineOfALeaseItKept) {
  EnqueueSpec spec = Spec(5000);
  spec.lease_ms = 2000;
  const JobId id = EnqueueCommitted(spec);
  LeasedJob l = LeaseOne();
  Commit();
  AdvanceAndTick(1500);
  Restart();
  JobView v = View(id);
  EXPECT_EQ(v.job.state, JobState::kActive) << "the lease is kept across the restart";
  ASSERT_TRUE(v.lease.has_value());
  EXPECT_EQ(v.lease->deadline_at_ms, kStart + 5000);
  // Beats after the restart (every 400 ms, under the 2 s lease) are capped by the recovered
  // deadline, not by a fresh one.
  for (int i = 0; i < 7; ++i) {
    AdvanceAndTick(400);
    auto hb = sched_->Heartbeat(id, l.lease.token, 0);
    ASSERT_TRUE(hb.ok()) << hb.status().ToString();
    EXPECT_EQ(hb->expires_at_ms, std::min(clock_.NowMs() + 2000, kStart + 5000));
    Commit();
  }
  // Restarted again close to the deadline (at 4.3 s): still enforced.
  Restart();
  EXPECT_EQ(View(id).job.state, JobState::kActive);
  AdvanceAndTick(5000 - 4300 - 1);
  EXPECT_EQ(View(id).job.state, JobState::kActive);
  AdvanceAndTick(1);
  v = View(id);
  EXPECT_NE(v.job.state, JobState::kActive);
  ASSERT_EQ(v.job.errors.size(), 1u);
  EXPECT_EQ(v.job.errors[0].type, "timeout");
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
}

TEST_F(SchedulerTimeoutTest, ADeadlineThatPassedWhileDownTimesOutAtOnce) {
  const JobId id = EnqueueCommitted(Spec(1000));
  LeaseOne();
  Commit();
  clock_.Advance(10'000);  // the server was down past the deadline
  Restart();
  sched_->Tick();
  JobView v = View(id);
  ASSERT_EQ(v.job.errors.size(), 1u);
  EXPECT_EQ(v.job.errors[0].type, "timeout");
}

TEST_F(SchedulerTimeoutTest, QueueAndServerDefaultsApplyAndTheJobsValueWins) {
  options_.default_timeout_ms = 7000;
  Restart();
  EXPECT_EQ(sched_->Queue("q").has_value(), false);
  const JobId server_default = EnqueueCommitted(Spec(std::nullopt));
  EXPECT_EQ(View(server_default).job.timeout_ms, 7000);
  QueueConfigPatch patch;
  patch.name = "q";
  patch.timeout_ms = 3000;
  auto q = sched_->PutQueue(patch);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->config.timeout_ms, 3000);
  const JobId queue_default = EnqueueCommitted(Spec(std::nullopt));
  const JobId own = EnqueueCommitted(Spec(1200));
  const JobId none = EnqueueCommitted(Spec(0));
  EXPECT_EQ(View(queue_default).job.timeout_ms, 3000);
  EXPECT_EQ(View(own).job.timeout_ms, 1200);
  EXPECT_EQ(View(none).job.timeout_ms, 0) << "0 opts out of the queue's timeout";
  // The queue's setting is durable; a reset returns to the server default.
  Restart();
  EXPECT_EQ(sched_->Queue("q")->config.timeout_ms, 3000);
  EXPECT_EQ(View(queue_default).job.timeout_ms, 3000) << "the job's timeout is stored with it";
  EXPECT_EQ(sched_->ResetQueue("q")->config.timeout_ms, 7000);
}

TEST_F(SchedulerTimeoutTest, OutOfRangeTimeoutsAreRefusedAndChangeNothing) {
  for (std::int64_t bad : {std::int64_t{-1}, AttemptTimeout::kMaxMs + 1}) {
    auto r = sched_->Enqueue(Spec(bad));
    EXPECT_EQ(r.status().code(), Code::kValidation);
    QueueConfigPatch patch;
    patch.name = "q";
    patch.timeout_ms = bad;
    EXPECT_EQ(sched_->PutQueue(patch).status().code(), Code::kValidation);
  }
  EXPECT_FALSE(sched_->HasOpenMutations());
  EXPECT_EQ(sched_->live_jobs(), 0u);
}

}  // namespace
}  // namespace ym
