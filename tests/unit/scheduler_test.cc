// Unit tests of the single-threaded Scheduler (core/scheduler.h).
//
// Time is a ManualClock and randomness a seeded Rng, so every test is deterministic. Group commit
// is simulated by the fixture's Commit(): SealBatch() + OnCommitted(seq), returning the sealed
// batch so tests can assert on the store mutations a command produced.

#include "core/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "batch_mutations.h"
#include "common/clock.h"
#include "common/rng.h"
#include "core/job.h"
#include "core/types.h"
#include "store/batch.h"

namespace ym {

// Readable state names in assertion failures (found by ADL; internal linkage so other test files
// may define their own).
[[maybe_unused]] static void PrintTo(JobState s, std::ostream* os) { *os << StateName(s); }

namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

#define ASSERT_RESULT_OK(expr)                            \
  do {                                                    \
    const auto& ym_r_ = (expr);                           \
    ASSERT_TRUE(ym_r_.ok()) << ym_r_.status().ToString(); \
  } while (0)

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : clock_(kStart), rng_(42) { Reset(SchedulerOptions{}); }

  void Reset(SchedulerOptions options) {
    options_ = options;
    sched_ = std::make_unique<Scheduler>(clock_, rng_, options);
  }

  // The monotonic time at which the wall clock will read `wall_ms` (waiter deadlines are
  // monotonic).
  std::int64_t Mono(std::int64_t wall_ms) const {
    return clock_.MonoMs() + (wall_ms - clock_.NowMs());
  }

  // Group commit: seal the open batch, declare it durable, hand it back for inspection.
  Batch Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
    return b;
  }

  static EnqueueSpec Spec(std::string queue = "q", std::int32_t priority = 0) {
    EnqueueSpec s;
    s.queue = std::move(queue);
    s.kind = "email";
    s.payload = R"({"to":"x"})";
    s.priority = priority;
    return s;
  }

  JobId Enqueue(const EnqueueSpec& spec) {
    auto r = sched_->Enqueue(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : 0;
  }

  // Enqueues and commits; returns the id.
  JobId EnqueueCommitted(const EnqueueSpec& spec) {
    const JobId id = Enqueue(spec);
    Commit();
    return id;
  }

  std::vector<LeasedJob> Lease(std::vector<std::string> queues, std::uint32_t max = 1,
                               std::optional<std::int64_t> lease_ms = std::nullopt) {
    LeaseRequest req;
    req.queues = std::move(queues);
    req.max = max;
    req.worker_id = "w1";
    req.lease_ms = lease_ms;
    return sched_->Lease(req);
  }

  // Leases exactly one job from `queue`; fails the test otherwise.
  LeasedJob LeaseOne(const std::string& queue = "q") {
    auto got = Lease({queue}, 1);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? LeasedJob{} : got.front();
  }

  void AdvanceAndTick(std::int64_t ms) {
    clock_.Advance(ms);
    sched_->Tick();
  }

  // A replay decided from `stored` as the store's current record (a read nothing raced).
  Result<JobView> ReplayFromStore(JobRecord stored, bool dead_only = false) {
    const auto ticket = sched_->OpenRead();
    const JobId id = stored.id;
    auto r = sched_->ReplayStored(ticket, id, std::move(stored), dead_only);
    sched_->CloseRead(ticket);
    EXPECT_TRUE(r.has_value()) << "a read nothing raced was judged stale";
    return r ? *r : Result<JobView>(Internal("stale"));
  }

  JobState StateOf(JobId id) {
    auto v = sched_->Get(id);
    EXPECT_TRUE(v.has_value()) << "job " << id << " not in memory";
    return v ? v->job.state : JobState::kCancelled;
  }

  std::uint64_t Count(const std::string& queue, const std::string& state) {
    auto q = sched_->Queue(queue);
    if (!q) return 0;
    auto it = q->counts.find(state);
    return it == q->counts.end() ? 0 : it->second;
  }

  ManualClock clock_;
  Rng rng_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> sched_;
};

// --- Enqueue and the durability handshake ----------------------------------------------------

TEST_F(SchedulerTest, EnqueuedJobIsNotLeasableUntilItsBatchCommits) {
  EnqueueSpec spec = Spec();
  spec.ns = "tenant1";
  spec.priority = 7;
  spec.max_attempts = 4;
  spec.lease_ms = 5000;
  spec.tags = {"a", "b"};
  spec.concurrency_key = "user:1";
  spec.idempotency_key = "k";
  auto out = sched_->Enqueue(spec);
  ASSERT_RESULT_OK(out);
  EXPECT_EQ(out->id, 1u);
  EXPECT_EQ(out->state, JobState::kReady);
  EXPECT_FALSE(out->duplicate);

  // Pending: visible to reads, never dispatched, not counted as ready.
  EXPECT_TRUE(sched_->IsLive(out->id));
  ASSERT_TRUE(sched_->Get(out->id).has_value());
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(Count("q", "ready"), 0u);
  EXPECT_EQ(sched_->VisibleSeq(), 1u);
  EXPECT_EQ(sched_->durable_seq(), 0u);

  Batch b = sched_->SealBatch();
  EXPECT_EQ(b.seq, 1u);
  EXPECT_EQ(b.next_id, 2u);
  // Sealed but not yet durable: still not leasable.
  EXPECT_TRUE(Lease({"q"}, 10).empty());

  auto inserts = MutationsOf<InsertJob>(b);
  ASSERT_EQ(inserts.size(), 1u);
  const JobRecord& r = inserts[0].job;
  EXPECT_EQ(r.id, out->id);
  EXPECT_EQ(r.ns, "tenant1");
  EXPECT_EQ(r.queue, "q");
  EXPECT_EQ(r.kind, "email");
  EXPECT_EQ(r.payload, R"({"to":"x"})");
  EXPECT_EQ(r.state, JobState::kReady);
  EXPECT_EQ(r.priority, 7);
  EXPECT_EQ(r.created_at_ms, kStart);
  EXPECT_EQ(r.run_at_ms, kStart);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(r.max_attempts, 4);
  EXPECT_EQ(r.runs, 1);
  EXPECT_EQ(r.lease_ms, 5000);
  EXPECT_EQ(r.backoff, Backoff{});
  EXPECT_EQ(r.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.concurrency_key, "user:1");
  EXPECT_EQ(r.idempotency_key, "k");
  // The idempotency key is persisted with the job.
  auto keys = MutationsOf<PutIdempotencyKey>(b);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].job_id, out->id);
  EXPECT_EQ(keys[0].ns, "tenant1");
  EXPECT_EQ(keys[0].expires_at_ms, kStart + options_.idempotency_window_ms);

  sched_->OnCommitted(b.seq);
  EXPECT_EQ(sched_->durable_seq(), 1u);
  EXPECT_EQ(Count("q", "ready"), 1u);
  auto leased = Lease({"q"}, 10);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, out->id);
  EXPECT_EQ(leased[0].payload, R"({"to":"x"})");
  EXPECT_EQ(leased[0].ns, "tenant1");
  EXPECT_EQ(leased[0].tags, (std::vector<std::string>{"a", "b"}));
}

TEST_F(SchedulerTest, CommittingALaterBatchCoversEarlierOnes) {
  const JobId a = Enqueue(Spec());
  Batch b1 = sched_->SealBatch();
  const JobId b = Enqueue(Spec());
  Batch b2 = sched_->SealBatch();
  EXPECT_EQ(b2.seq, b1.seq + 1);
  EXPECT_EQ(MutationsOf<InsertJob>(b2).size(), 1u);
  EXPECT_EQ(b2.next_id, b + 1);
  sched_->OnCommitted(b2.seq);
  auto got = Lease({"q"}, 10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, a);
  EXPECT_EQ(got[1].id, b);
}

TEST_F(SchedulerTest, OnlyCommittedBatchesAreDispatched) {
  const JobId a = Enqueue(Spec());
  Batch b1 = sched_->SealBatch();
  Enqueue(Spec());
  Batch b2 = sched_->SealBatch();
  sched_->OnCommitted(b1.seq);
  auto got = Lease({"q"}, 10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, a);
  sched_->OnCommitted(b2.seq);
  EXPECT_EQ(Lease({"q"}, 10).size(), 1u);
}

// --- Ordering and timers ---------------------------------------------------------------------

TEST_F(SchedulerTest, HigherPriorityFirstThenFifo) {
  const JobId p0a = Enqueue(Spec("q", 0));
  const JobId p5a = Enqueue(Spec("q", 5));
  const JobId pm1 = Enqueue(Spec("q", -1));
  const JobId p5b = Enqueue(Spec("q", 5));
  const JobId p10 = Enqueue(Spec("q", 10));
  const JobId p0b = Enqueue(Spec("q", 0));
  Commit();
  std::vector<JobId> order;
  for (int i = 0; i < 6; ++i) order.push_back(LeaseOne().id);
  EXPECT_EQ(order, (std::vector<JobId>{p10, p5a, p5b, p0a, p0b, pm1}));
  EXPECT_TRUE(Lease({"q"}).empty());
}

TEST_F(SchedulerTest, FifoAmongEqualPriorityAcrossCommits) {
  std::vector<JobId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(Enqueue(Spec()));
    if (i % 2 == 0) Commit();
  }
  Commit();
  auto got = Lease({"q"}, 5);
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i].id, ids[i]);
}

TEST_F(SchedulerTest, DelayedJobBecomesReadyWhenTheClockReachesRunAt) {
  EnqueueSpec s = Spec();
  s.delay_ms = 5000;
  auto out = sched_->Enqueue(s);
  ASSERT_RESULT_OK(out);
  EXPECT_EQ(out->state, JobState::kScheduled);
  Batch b = Commit();
  ASSERT_EQ(MutationsOf<InsertJob>(b).size(), 1u);
  EXPECT_EQ(MutationsOf<InsertJob>(b)[0].job.run_at_ms, kStart + 5000);
  EXPECT_EQ(MutationsOf<InsertJob>(b)[0].job.state, JobState::kScheduled);
  EXPECT_EQ(Count("q", "scheduled"), 1u);
  EXPECT_EQ(sched_->Get(out->id)->blocked_reason, "scheduled");
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 5000);

  AdvanceAndTick(4999);
  EXPECT_TRUE(Lease({"q"}).empty());
  EXPECT_EQ(StateOf(out->id), JobState::kScheduled);
  // Time alone does nothing: Tick() fires the timer.
  clock_.Advance(1);
  EXPECT_TRUE(Lease({"q"}).empty());
  sched_->Tick();
  EXPECT_EQ(Count("q", "scheduled"), 0u);
  EXPECT_EQ(Count("q", "ready"), 1u);
  EXPECT_EQ(LeaseOne().id, out->id);
}

TEST_F(SchedulerTest, RunAtSchedulesAtAnAbsoluteTime) {
  EnqueueSpec late = Spec();
  late.run_at_ms = kStart + 7000;
  EnqueueSpec early = Spec();
  early.run_at_ms = kStart + 3000;
  EnqueueSpec past = Spec();
  past.run_at_ms = kStart - 1000;
  const JobId l = Enqueue(late);
  const JobId e = Enqueue(early);
  const JobId p = Enqueue(past);
  Commit();
  EXPECT_EQ(StateOf(p), JobState::kReady);
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 3000);
  EXPECT_EQ(LeaseOne().id, p);

  AdvanceAndTick(3000);
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 7000);
  EXPECT_EQ(LeaseOne().id, e);
  EXPECT_TRUE(Lease({"q"}).empty());
  AdvanceAndTick(4000);
  EXPECT_EQ(LeaseOne().id, l);
}

TEST_F(SchedulerTest, NextDeadlineCoversLeasesAndSweeps) {
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()),
            kStart + options_.retention_sweep_interval_ms);
  EnqueueSpec s = Spec();
  s.lease_ms = 1500;
  EnqueueCommitted(s);
  LeaseOne();
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 1500);
}

TEST_F(SchedulerTest, DelayPassedBeforeCommitIsReadyAtCommit) {
  EnqueueSpec s = Spec();
  s.delay_ms = 100;
  const JobId id = Enqueue(s);
  clock_.Advance(200);
  Commit();
  EXPECT_EQ(StateOf(id), JobState::kReady);
  EXPECT_EQ(LeaseOne().id, id);
}

// --- Lease -----------------------------------------------------------------------------------

TEST_F(SchedulerTest, LeaseCountsAttemptsAndHandsOutFreshTokens) {
  EnqueueSpec s = Spec();
  s.lease_ms = 5000;
  const JobId id = EnqueueCommitted(s);
  LeasedJob first = LeaseOne();
  EXPECT_EQ(first.id, id);
  EXPECT_EQ(first.attempt, 1);
  EXPECT_NE(first.lease.token, 0u);
  EXPECT_EQ(first.lease.expires_at_ms, kStart + 5000);
  EXPECT_EQ(first.lease.worker_id, "w1");
  EXPECT_EQ(first.max_attempts, 10);
  auto v = sched_->Get(id);
  ASSERT_TRUE(v && v->lease);
  EXPECT_EQ(v->job.state, JobState::kActive);
  EXPECT_EQ(v->job.attempts, 1);
  EXPECT_EQ(v->lease->token, first.lease.token);
  EXPECT_EQ(Count("q", "active"), 1u);
  EXPECT_TRUE(Lease({"q"}).empty());

  // A retry: the next lease is attempt 2 with a different token, and the request's lease_ms
  // overrides the job's.
  FailSpec f;
  f.retry_in_ms = 0;
  ASSERT_RESULT_OK(sched_->Fail(id, first.lease.token, f));
  clock_.Advance(10);
  auto second = Lease({"q"}, 1, 2000);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_NE(second[0].lease.token, 0u);
  EXPECT_NE(second[0].lease.token, first.lease.token);
  EXPECT_EQ(second[0].lease.expires_at_ms, kStart + 10 + 2000);
}

TEST_F(SchedulerTest, LeaseRespectsMax) {
  for (int i = 0; i < 5; ++i) Enqueue(Spec());
  Commit();
  EXPECT_TRUE(Lease({"q"}, 0).empty());
  EXPECT_EQ(Lease({"q"}, 3).size(), 3u);
  EXPECT_EQ(Lease({"q"}, 3).size(), 2u);
  EXPECT_TRUE(Lease({"q"}, 3).empty());
  EXPECT_TRUE(Lease({"unknown"}, 3).empty());
}

TEST_F(SchedulerTest, SeveralQueuesAreServedRoundRobin) {
  for (int i = 0; i < 4; ++i) Enqueue(Spec("a"));
  for (int i = 0; i < 4; ++i) Enqueue(Spec("b"));
  Commit();
  // One lease over both queues takes from each in turn instead of draining the first.
  auto got = Lease({"a", "b"}, 4);
  ASSERT_EQ(got.size(), 4u);
  int from_a = 0;
  for (const auto& j : got) from_a += j.queue == "a";
  EXPECT_EQ(from_a, 2);
  // Single-job leases alternate between the queues.
  auto x = Lease({"a", "b"}, 1);
  auto y = Lease({"a", "b"}, 1);
  ASSERT_EQ(x.size(), 1u);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_NE(x[0].queue, y[0].queue);
  // When one queue is empty the other still serves the whole request.
  auto rest = Lease({"a", "b"}, 10);
  EXPECT_EQ(rest.size(), 2u);
}

TEST_F(SchedulerTest, NamespacesWithinAQueueAreServedRoundRobin) {
  // A big tenant enqueues first and with higher priority; the small one still gets every other
  // job instead of waiting behind the backlog.
  std::vector<JobId> big, small;
  for (int i = 0; i < 6; ++i) {
    EnqueueSpec s = Spec("q", 10);
    s.ns = "big";
    big.push_back(Enqueue(s));
  }
  for (int i = 0; i < 2; ++i) {
    EnqueueSpec s = Spec("q", 0);
    s.ns = "small";
    small.push_back(Enqueue(s));
  }
  Commit();
  std::vector<std::string> order;
  for (int i = 0; i < 8; ++i) order.push_back(LeaseOne().ns);
  EXPECT_EQ(order,
            (std::vector<std::string>{"big", "small", "big", "small", "big", "big", "big", "big"}));
}

TEST_F(SchedulerTest, NamespaceFairnessInsideOneLeaseCall) {
  for (int i = 0; i < 4; ++i) {
    EnqueueSpec s = Spec();
    s.ns = "a";
    Enqueue(s);
  }
  for (int i = 0; i < 4; ++i) {
    EnqueueSpec s = Spec();
    s.ns = "b";
    Enqueue(s);
  }
  Commit();
  auto got = Lease({"q"}, 4);
  ASSERT_EQ(got.size(), 4u);
  int a = 0;
  for (const auto& j : got) a += j.ns == "a";
  EXPECT_EQ(a, 2);
}

TEST_F(SchedulerTest, PausedQueueGivesNothingAndResumeServesAWaiter) {
  const JobId id = EnqueueCommitted(Spec());
  QueueConfigPatch pause;
  pause.name = "q";
  pause.paused = true;
  auto info = sched_->PutQueue(pause);
  ASSERT_RESULT_OK(info);
  EXPECT_TRUE(info->config.paused);
  Batch b = Commit();
  ASSERT_EQ(MutationsOf<PutQueue>(b).size(), 1u);
  EXPECT_TRUE(MutationsOf<PutQueue>(b)[0].config.paused);

  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(sched_->Get(id)->blocked_reason, "paused");

  int calls = 0;
  std::vector<LeasedJob> got;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 5;
  sched_->AddWaiter(req, Mono(kStart + 10'000), [&](std::vector<LeasedJob> jobs) {
    ++calls;
    got = std::move(jobs);
  });
  EXPECT_EQ(sched_->Queue("q")->waiting_workers, 1u);
  sched_->Tick();
  EXPECT_EQ(calls, 0);

  QueueConfigPatch resume;
  resume.name = "q";
  resume.paused = false;
  ASSERT_RESULT_OK(sched_->PutQueue(resume));
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(sched_->waiters(), 0u);
}

// --- Lease expiry and heartbeats -------------------------------------------------------------

TEST_F(SchedulerTest, ExpiredLeaseRequeuesJobAndCountsTheAttempt) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  s.max_attempts = 3;
  const JobId id = EnqueueCommitted(s);
  LeasedJob l = LeaseOne();

  AdvanceAndTick(999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  AdvanceAndTick(1);
  auto v = sched_->Get(id);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->job.state, JobState::kReady);
  EXPECT_EQ(v->job.attempts, 1);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0].type, "lease_expired");
  EXPECT_EQ(v->job.errors[0].attempt, 1);
  EXPECT_EQ(v->job.errors[0].at_ms, kStart + 1000);
  EXPECT_EQ(Count("q", "active"), 0u);
  EXPECT_EQ(Count("q", "ready"), 1u);
  // The counted attempt is persisted.
  Batch b = Commit();
  auto updates = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].job.id, id);
  EXPECT_EQ(updates[0].job.attempts, 1);
  EXPECT_EQ(updates[0].job.state, JobState::kReady);
  ASSERT_EQ(updates[0].job.errors.size(), 1u);
  // The zombie worker can no longer complete it.
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
}

// Regression: an expired lease used to go through the retry backoff (state `scheduled`, reason
// `retry_backoff`), delaying the job by up to the queue's backoff. The contract (docs/guarantees.md
// §4, and the life-cycle diagram in job.h) returns it to `ready` at once.
TEST_F(SchedulerTest, ExpiredLeaseReturnsToReadyWithoutBackoff) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  s.backoff = Backoff{3'600'000, 3'600'000, 2.0};  // an hour: unmistakable if applied
  const JobId id = EnqueueCommitted(s);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(attempt);
    LeasedJob l = LeaseOne();
    EXPECT_EQ(l.attempt, attempt);
    AdvanceAndTick(1000);
    EXPECT_EQ(StateOf(id), JobState::kReady);
    EXPECT_EQ(sched_->Get(id)->job.run_at_ms, clock_.NowMs());
  }
}

TEST_F(SchedulerTest, LeaseExpiriesExhaustAttemptsIntoDead) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  s.max_attempts = 3;
  const JobId id = EnqueueCommitted(s);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(attempt);
    // Whatever state the expiry left it in, it is leasable again once its time has come.
    AdvanceAndTick(options_.default_backoff.max_ms);
    auto got = Lease({"q"});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].attempt, attempt);
    AdvanceAndTick(1000);
  }
  auto v = sched_->Get(id);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->job.state, JobState::kDead);
  EXPECT_EQ(v->job.attempts, 3);
  ASSERT_EQ(v->job.errors.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(v->job.errors[i].attempt, i + 1);
    EXPECT_EQ(v->job.errors[i].type, "lease_expired");
  }
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(Count("q", "ready") + Count("q", "scheduled") + Count("q", "active"), 0u);

  Batch b = Commit();
  auto updates = MutationsOf<UpdateJob>(b);
  ASSERT_FALSE(updates.empty());
  const JobRecord& dead = updates.back().job;
  EXPECT_EQ(dead.state, JobState::kDead);
  EXPECT_EQ(dead.dead_reason, kDeadMaxAttempts);
  EXPECT_EQ(dead.finished_at_ms, clock_.NowMs());
  EXPECT_EQ(dead.errors.size(), 3u);
  // Terminal jobs leave memory once durable.
  EXPECT_FALSE(sched_->Get(id).has_value());
  EXPECT_FALSE(sched_->IsLive(id));
}

TEST_F(SchedulerTest, HeartbeatsKeepALeaseAlivePastLeaseMs) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  const JobId id = EnqueueCommitted(s);
  LeasedJob l = LeaseOne();
  for (int i = 0; i < 20; ++i) {
    AdvanceAndTick(800);
    auto hb = sched_->Heartbeat(id, l.lease.token, 0);
    ASSERT_RESULT_OK(hb);
    EXPECT_EQ(hb->expires_at_ms, clock_.NowMs() + 1000);
    EXPECT_FALSE(hb->cancel_requested);
  }
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(sched_->Get(id)->job.attempts, 1);
  EXPECT_TRUE(sched_->Get(id)->job.errors.empty());

  // An explicit extension.
  auto hb = sched_->Heartbeat(id, l.lease.token, 5000);
  ASSERT_RESULT_OK(hb);
  EXPECT_EQ(hb->expires_at_ms, clock_.NowMs() + 5000);
  EXPECT_EQ(sched_->Get(id)->lease->expires_at_ms, clock_.NowMs() + 5000);
  AdvanceAndTick(4999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  AdvanceAndTick(1);
  EXPECT_NE(StateOf(id), JobState::kActive);
  EXPECT_EQ(sched_->Get(id)->job.errors.size(), 1u);
}

TEST_F(SchedulerTest, HeartbeatCanShortenALease) {
  EnqueueSpec s = Spec();
  s.lease_ms = 10'000;
  const JobId id = EnqueueCommitted(s);
  LeasedJob l = LeaseOne();
  auto hb = sched_->Heartbeat(id, l.lease.token, 200);
  ASSERT_RESULT_OK(hb);
  EXPECT_EQ(hb->expires_at_ms, kStart + 200);
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 200);
  AdvanceAndTick(200);
  EXPECT_NE(StateOf(id), JobState::kActive);
}

TEST_F(SchedulerTest, HeartbeatValidatesExtend) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, 50).status().code(), Code::kValidation);
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, -5).status().code(), Code::kValidation);
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, options_.max_lease_ms + 1).status().code(),
            Code::kValidation);
  EXPECT_EQ(sched_->Get(id)->lease->expires_at_ms, l.lease.expires_at_ms);
}

TEST_F(SchedulerTest, HeartbeatReportsCancelRequested) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  ASSERT_RESULT_OK(sched_->Cancel(id));
  auto hb = sched_->Heartbeat(id, l.lease.token, 0);
  ASSERT_RESULT_OK(hb);
  EXPECT_TRUE(hb->cancel_requested);
}

// --- Stale tokens and ack --------------------------------------------------------------------

TEST_F(SchedulerTest, WrongTokenIsStale) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  Commit();  // the lease itself is a write; what follows must add none
  const std::uint64_t wrong = l.lease.token + 1;
  EXPECT_EQ(sched_->Ack(id, wrong, "").status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, wrong, FailSpec{}).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Heartbeat(id, wrong, 0).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->open_mutations(), 0u);
  auto v = sched_->Get(id);
  EXPECT_EQ(v->job.state, JobState::kActive);
  EXPECT_EQ(v->job.attempts, 1);
  EXPECT_TRUE(v->job.errors.empty());
  // The right token still works.
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, ""));
}

TEST_F(SchedulerTest, TokenOfAnEarlierLeaseIsStaleAfterReLease) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  const JobId id = EnqueueCommitted(s);
  LeasedJob old = LeaseOne();
  AdvanceAndTick(1000);  // expires
  AdvanceAndTick(options_.default_backoff.max_ms);
  LeasedJob cur = LeaseOne();
  ASSERT_EQ(cur.id, id);
  EXPECT_EQ(sched_->Heartbeat(id, old.lease.token, 0).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, old.lease.token, FailSpec{}).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Ack(id, old.lease.token, "").status().code(), Code::kStaleLease);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  ASSERT_RESULT_OK(sched_->Heartbeat(id, cur.lease.token, 0));
  auto ack = sched_->Ack(id, cur.lease.token, "");
  ASSERT_RESULT_OK(ack);
  EXPECT_EQ(*ack, JobState::kSucceeded);
}

TEST_F(SchedulerTest, TokenIsStaleOnceTheJobIsNoLongerActive) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  FailSpec f;
  f.retry_in_ms = 0;
  ASSERT_RESULT_OK(sched_->Fail(id, l.lease.token, f));
  EXPECT_EQ(StateOf(id), JobState::kReady);
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, 0).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, l.lease.token, f).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Get(id)->job.errors.size(), 1u);
}

TEST_F(SchedulerTest, AckIsIdempotentOnlyWhileTheJobIsInMemory) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  auto first = sched_->Ack(id, l.lease.token, "");
  ASSERT_RESULT_OK(first);
  EXPECT_EQ(*first, JobState::kSucceeded);
  const std::size_t after_first = sched_->open_mutations();
  EXPECT_EQ(Count("q", "active"), 0u);

  auto again = sched_->Ack(id, l.lease.token, "");
  ASSERT_RESULT_OK(again);
  EXPECT_EQ(*again, JobState::kSucceeded);
  EXPECT_EQ(sched_->open_mutations(), after_first);  // nothing new
  EXPECT_EQ(sched_->Ack(id, l.lease.token + 1, "").status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, l.lease.token, FailSpec{}).status().code(), Code::kStaleLease);

  Batch b = Commit();
  // Kept by the default retention: the ack rewrites the row as succeeded.
  EXPECT_EQ(MutationsOf<UpdateJob>(b).size(), 1u);
  EXPECT_FALSE(sched_->IsLive(id));
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
}

// --- Fail and backoff ------------------------------------------------------------------------

TEST_F(SchedulerTest, RetryableFailSchedulesARetryAndRecordsTheError) {
  EnqueueSpec s = Spec();
  s.backoff = Backoff{1000, 60'000, 2.0};
  const JobId id = EnqueueCommitted(s);
  LeasedJob l = LeaseOne();
  FailSpec f;
  f.type = "timeout";
  f.message = "upstream took too long";
  clock_.Advance(5);
  auto st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  auto v = sched_->Get(id);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*st, v->job.state);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0], (AttemptError{1, "timeout", "upstream took too long", kStart + 5}));
  EXPECT_GE(v->job.run_at_ms, clock_.NowMs());
  EXPECT_LE(v->job.run_at_ms, clock_.NowMs() + 1000);
  if (v->job.state == JobState::kScheduled) {
    EXPECT_EQ(v->blocked_reason, "retry_backoff");
  }
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.attempts, 1);
  EXPECT_EQ(up[0].job.run_at_ms, v->job.run_at_ms);
  EXPECT_EQ(up[0].job.errors.size(), 1u);
}

// Full jitter: the delay before retry n is uniform in [0, min(max, initial * mult^(n-1))].
TEST_F(SchedulerTest, BackoffIsFullJitterUnderAnExponentialCap) {
  const Backoff backoff{1000, 5000, 2.0};
  constexpr int kSeeds = 150;
  constexpr int kRetries = 5;
  std::vector<std::vector<std::int64_t>> delays(kRetries + 1);
  for (int seed = 1; seed <= kSeeds; ++seed) {
    ManualClock clock(kStart);
    Rng rng(seed);
    Scheduler s(clock, rng, SchedulerOptions{});
    EnqueueSpec spec = Spec();
    spec.backoff = backoff;
    auto id = s.Enqueue(spec);
    ASSERT_RESULT_OK(id);
    Batch b = s.SealBatch();
    s.OnCommitted(b.seq);
    for (int n = 1; n <= kRetries; ++n) {
      LeaseRequest req;
      req.queues = {"q"};
      auto got = s.Lease(req);
      ASSERT_EQ(got.size(), 1u) << "seed " << seed << " retry " << n;
      ASSERT_EQ(got[0].attempt, n);
      ASSERT_RESULT_OK(s.Fail(got[0].id, got[0].lease.token, FailSpec{}));
      const auto v = s.Get(got[0].id);
      delays[n].push_back(v->job.run_at_ms - clock.NowMs());
      clock.Set(v->job.run_at_ms);
      s.Tick();
    }
  }
  for (int n = 1; n <= kRetries; ++n) {
    SCOPED_TRACE("retry " + std::to_string(n));
    const auto cap = std::min<std::int64_t>(5000, 1000LL << (n - 1));
    const auto [lo, hi] = std::minmax_element(delays[n].begin(), delays[n].end());
    EXPECT_GE(*lo, 0);
    EXPECT_LE(*hi, cap);
    std::set<std::int64_t> distinct(delays[n].begin(), delays[n].end());
    EXPECT_GT(distinct.size(), 50u) << "delays look constant";
    // Spread over the whole range, not clustered at one end.
    EXPECT_LT(*lo, cap / 10);
    EXPECT_GT(*hi, cap * 9 / 10);
    double mean = 0;
    for (auto d : delays[n]) mean += static_cast<double>(d);
    mean /= static_cast<double>(delays[n].size());
    EXPECT_NEAR(mean, cap / 2.0, cap * 0.12);
  }
}

TEST_F(SchedulerTest, QueueBackoffAppliesWhenTheJobHasNone) {
  QueueConfigPatch p;
  p.name = "q";
  p.backoff = Backoff{10, 10, 1.0};
  ASSERT_RESULT_OK(sched_->PutQueue(p));
  const JobId id = EnqueueCommitted(Spec());
  for (int i = 0; i < 9; ++i) {  // max_attempts is 10
    LeasedJob l = LeaseOne();
    ASSERT_RESULT_OK(sched_->Fail(id, l.lease.token, FailSpec{}));
    EXPECT_LE(sched_->Get(id)->job.run_at_ms, clock_.NowMs() + 10);
    AdvanceAndTick(10);
  }
}

TEST_F(SchedulerTest, RetryInMsOverridesTheBackoff) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  FailSpec f;
  f.retry_in_ms = 7000;
  auto st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kScheduled);
  EXPECT_EQ(sched_->Get(id)->job.run_at_ms, kStart + 7000);
  AdvanceAndTick(6999);
  EXPECT_TRUE(Lease({"q"}).empty());
  AdvanceAndTick(1);
  l = LeaseOne();
  f.retry_in_ms = 0;
  st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kReady);
  EXPECT_EQ(LeaseOne().attempt, 3);
}

TEST_F(SchedulerTest, RetryInMsIsValidated) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  Commit();  // the lease itself is a write; what follows must add none
  for (std::int64_t bad : {std::int64_t{-1}, std::int64_t{10LL * 365 * 24 * 3600 * 1000 + 1}}) {
    FailSpec f;
    f.retry_in_ms = bad;
    EXPECT_EQ(sched_->Fail(id, l.lease.token, f).status().code(), Code::kValidation) << bad;
  }
  EXPECT_EQ(sched_->open_mutations(), 0u);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_TRUE(sched_->Get(id)->job.errors.empty());
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, ""));
}

TEST_F(SchedulerTest, NonRetryableFailIsDead) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  FailSpec f;
  f.type = "bad_input";
  f.retryable = false;
  auto st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kDead);
  EXPECT_TRUE(Lease({"q"}).empty());
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.state, JobState::kDead);
  EXPECT_EQ(up[0].job.dead_reason, kDeadNonRetryable);
  ASSERT_EQ(up[0].job.errors.size(), 1u);
  EXPECT_EQ(up[0].job.errors[0].type, "bad_input");
  EXPECT_FALSE(sched_->IsLive(id));
}

TEST_F(SchedulerTest, RetryableFailOnTheLastAttemptIsDead) {
  EnqueueSpec s = Spec();
  s.max_attempts = 2;
  const JobId id = EnqueueCommitted(s);
  FailSpec f;
  f.retry_in_ms = 0;
  LeasedJob l = LeaseOne();
  ASSERT_EQ(*sched_->Fail(id, l.lease.token, f), JobState::kReady);
  l = LeaseOne();
  auto st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kDead);
  auto v = sched_->Get(id);
  EXPECT_EQ(v->job.attempts, 2);
  Batch b = Commit();
  EXPECT_EQ(MutationsOf<UpdateJob>(b).back().job.dead_reason, kDeadMaxAttempts);
  EXPECT_EQ(MutationsOf<UpdateJob>(b).back().job.errors.size(), 2u);
}

// --- Idempotency -----------------------------------------------------------------------------

TEST_F(SchedulerTest, IdempotencyKeyCoalescesWithinTheWindow) {
  SchedulerOptions o;
  o.idempotency_window_ms = 10'000;
  o.retention_sweep_interval_ms = 60'000;
  Reset(o);
  EnqueueSpec s = Spec();
  s.ns = "a";
  s.idempotency_key = "order-1";
  auto first = sched_->Enqueue(s);
  ASSERT_RESULT_OK(first);
  // A duplicate while the original is still pending.
  const std::size_t open = sched_->open_mutations();
  auto dup = sched_->Enqueue(s);
  ASSERT_RESULT_OK(dup);
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, first->id);
  EXPECT_EQ(sched_->open_mutations(), open);
  EXPECT_EQ(sched_->live_jobs(), 1u);
  Commit();

  AdvanceAndTick(9'999);
  const std::size_t open2 = sched_->open_mutations();
  dup = sched_->Enqueue(s);
  ASSERT_RESULT_OK(dup);
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, first->id);
  EXPECT_EQ(dup->state, JobState::kReady);
  EXPECT_TRUE(dup->state_known);
  EXPECT_EQ(sched_->open_mutations(), open2);
  EXPECT_EQ(sched_->live_jobs(), 1u);

  // Another namespace does not coalesce.
  EnqueueSpec other = s;
  other.ns = "b";
  auto b = sched_->Enqueue(other);
  ASSERT_RESULT_OK(b);
  EXPECT_FALSE(b->duplicate);
  EXPECT_NE(b->id, first->id);
  Commit();

  // Past the window and after a sweep, the key is forgotten (in core and in the store).
  AdvanceAndTick(60'001);
  Batch swept = Commit();
  auto expire = MutationsOf<ExpireIdempotencyKeys>(swept);
  ASSERT_EQ(expire.size(), 1u);
  EXPECT_EQ(expire[0].before_ms, clock_.NowMs());
  auto fresh = sched_->Enqueue(s);
  ASSERT_RESULT_OK(fresh);
  EXPECT_FALSE(fresh->duplicate);
  EXPECT_NE(fresh->id, first->id);
  EXPECT_NE(fresh->id, b->id);
  Batch created = Commit();
  EXPECT_EQ(MutationsOf<InsertJob>(created).size(), 1u);
  EXPECT_EQ(MutationsOf<PutIdempotencyKey>(created).size(), 1u);
}

TEST_F(SchedulerTest, IdempotencyTtlPerJob) {
  EnqueueSpec s = Spec();
  s.idempotency_key = "k";
  s.idempotency_ttl_ms = 1000;
  auto first = sched_->Enqueue(s);
  ASSERT_RESULT_OK(first);
  Batch b = Commit();
  ASSERT_EQ(MutationsOf<PutIdempotencyKey>(b).size(), 1u);
  EXPECT_EQ(MutationsOf<PutIdempotencyKey>(b)[0].expires_at_ms, kStart + 1000);
  clock_.Advance(999);
  EXPECT_TRUE(sched_->Enqueue(s)->duplicate);
  clock_.Advance(1);
  auto again = sched_->Enqueue(s);
  ASSERT_RESULT_OK(again);
  EXPECT_FALSE(again->duplicate);
}

TEST_F(SchedulerTest, DuplicateOfAFinishedJobReportsItsTerminalState) {
  EnqueueSpec s = Spec();
  s.idempotency_key = "k";
  const JobId id = EnqueueCommitted(s);
  LeasedJob l = LeaseOne();
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, ""));
  Commit();
  ASSERT_FALSE(sched_->IsLive(id));
  auto dup = sched_->Enqueue(s);
  ASSERT_RESULT_OK(dup);
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, id);
  EXPECT_EQ(dup->state, JobState::kSucceeded);
  EXPECT_TRUE(dup->state_known);
  EXPECT_EQ(sched_->open_mutations(), 0u);
}

TEST_F(SchedulerTest, IdempotencyKeysSurviveARestart) {
  EnqueueSpec s = Spec();
  s.ns = "a";
  s.idempotency_key = "order-1";
  EnqueueSpec s2 = s;
  s2.idempotency_key = "order-2";
  const JobId done = Enqueue(s);
  const JobId live = Enqueue(s2);
  Batch b1 = Commit();
  LeasedJob l = LeaseOne();
  ASSERT_EQ(l.id, done);
  ASSERT_RESULT_OK(sched_->Ack(done, l.lease.token, ""));
  Batch b2 = Commit();

  // "Restart": a new scheduler rebuilt from what the store kept (the keys, the live job).
  clock_.Advance(1000);
  Rng rng2(7);
  Scheduler again(clock_, rng2, SchedulerOptions{});
  again.LoadNextId(b1.next_id);
  // The store's rows: each key with its job's final state once that job finished.
  std::vector<FinishIdempotencyKey> finished;
  for (const Batch* b : {&b1, &b2}) {
    for (const auto& f : MutationsOf<FinishIdempotencyKey>(*b)) finished.push_back(f);
  }
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].job_id, done);
  EXPECT_EQ(finished[0].state, JobState::kSucceeded);
  for (const auto& k : MutationsOf<PutIdempotencyKey>(b1)) {
    IdempotencyKeyRecord rec{k.ns, k.key, k.job_id, k.expires_at_ms, {}};
    if (k.job_id == finished[0].job_id) rec.final_state = finished[0].state;
    again.LoadIdempotencyKey(rec);
  }
  for (const auto& ins : MutationsOf<InsertJob>(b1)) {
    if (ins.job.id == live) again.LoadJob(JobRecord(ins.job));
  }
  auto d1 = again.Enqueue(s);
  ASSERT_RESULT_OK(d1);
  EXPECT_TRUE(d1->duplicate);
  EXPECT_EQ(d1->id, done);
  EXPECT_TRUE(d1->state_known);  // gone from core, its final state kept with the key
  EXPECT_EQ(d1->state, JobState::kSucceeded);
  auto d2 = again.Enqueue(s2);
  ASSERT_RESULT_OK(d2);
  EXPECT_TRUE(d2->duplicate);
  EXPECT_EQ(d2->id, live);
  EXPECT_TRUE(d2->state_known);
  EXPECT_EQ(d2->state, JobState::kReady);
  EXPECT_EQ(again.open_mutations(), 0u);
  EXPECT_EQ(again.live_jobs(), 1u);
}

// --- Cancel ----------------------------------------------------------------------------------

TEST_F(SchedulerTest, CancelReadyJobIsImmediateAndTerminal) {
  const JobId id = EnqueueCommitted(Spec());
  auto v = sched_->Cancel(id);
  ASSERT_RESULT_OK(v);
  EXPECT_EQ(v->job.state, JobState::kCancelled);
  EXPECT_EQ(Count("q", "ready"), 0u);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  // Cancelling again while in memory answers the same view.
  auto again = sched_->Cancel(id);
  ASSERT_RESULT_OK(again);
  EXPECT_EQ(again->job.state, JobState::kCancelled);
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.state, JobState::kCancelled);
  EXPECT_EQ(up[0].job.finished_at_ms, kStart);
  EXPECT_FALSE(sched_->Get(id).has_value());
  EXPECT_EQ(sched_->Cancel(id).status().code(), Code::kNotFound);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
}

TEST_F(SchedulerTest, CancelScheduledJobIsImmediate) {
  EnqueueSpec s = Spec();
  s.delay_ms = 1000;
  const JobId id = EnqueueCommitted(s);
  auto v = sched_->Cancel(id);
  ASSERT_RESULT_OK(v);
  EXPECT_EQ(v->job.state, JobState::kCancelled);
  EXPECT_EQ(Count("q", "scheduled"), 0u);
  AdvanceAndTick(2000);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(Count("q", "ready"), 0u);
}

TEST_F(SchedulerTest, CancelPendingJobNeverDispatches) {
  const JobId id = Enqueue(Spec());
  ASSERT_RESULT_OK(sched_->Cancel(id));
  Batch b = Commit();
  // Order is preserved: the insert, then the cancellation of the same id.
  std::vector<const Mutation*> jobs;
  for (const Mutation& m : b.mutations) {
    if (std::holds_alternative<InsertJob>(m) || std::holds_alternative<UpdateJob>(m)) {
      jobs.push_back(&m);
    }
  }
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<InsertJob>(*jobs[0]));
  ASSERT_TRUE(std::holds_alternative<UpdateJob>(*jobs[1]));
  EXPECT_EQ(std::get<UpdateJob>(*jobs[1]).job.id, id);
  EXPECT_EQ(std::get<UpdateJob>(*jobs[1]).job.state, JobState::kCancelled);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_FALSE(sched_->IsLive(id));
  EXPECT_EQ(Count("q", "ready"), 0u);
}

TEST_F(SchedulerTest, CancelActiveJobIsFlaggedAndALaterFailCancelsIt) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  auto v = sched_->Cancel(id);
  ASSERT_RESULT_OK(v);
  EXPECT_EQ(v->job.state, JobState::kActive);
  EXPECT_TRUE(v->job.cancel_requested);
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_TRUE(up[0].job.cancel_requested);
  EXPECT_TRUE(sched_->Heartbeat(id, l.lease.token, 0)->cancel_requested);

  FailSpec f;
  f.type = "cancelled_by_worker";
  auto st = sched_->Fail(id, l.lease.token, f);
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kCancelled);
  EXPECT_EQ(Count("q", "active"), 0u);
  Batch b2 = Commit();
  ASSERT_EQ(MutationsOf<UpdateJob>(b2).size(), 1u);
  EXPECT_EQ(MutationsOf<UpdateJob>(b2)[0].job.state, JobState::kCancelled);
  EXPECT_FALSE(sched_->IsLive(id));
}

TEST_F(SchedulerTest, CancelRequestedJobWhoseLeaseExpiresIsCancelled) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  const JobId id = EnqueueCommitted(s);
  LeaseOne();
  ASSERT_RESULT_OK(sched_->Cancel(id));
  AdvanceAndTick(1000);
  EXPECT_EQ(StateOf(id), JobState::kCancelled);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
}

TEST_F(SchedulerTest, CancellingSucceededOrDeadJobIsInvalid) {
  const JobId ok = Enqueue(Spec());
  const JobId bad = Enqueue(Spec());
  Commit();
  auto got = Lease({"q"}, 2);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_RESULT_OK(sched_->Ack(ok, got[0].lease.token, ""));
  FailSpec f;
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(bad, got[1].lease.token, f));
  const std::size_t open = sched_->open_mutations();
  EXPECT_EQ(sched_->Cancel(ok).status().code(), Code::kInvalidState);
  EXPECT_EQ(sched_->Cancel(bad).status().code(), Code::kInvalidState);
  EXPECT_EQ(sched_->open_mutations(), open);
  EXPECT_EQ(StateOf(ok), JobState::kSucceeded);
  EXPECT_EQ(StateOf(bad), JobState::kDead);
  Commit();
  // Evicted once durable: core no longer knows them (the caller checks the store).
  EXPECT_FALSE(sched_->Get(ok).has_value());
  EXPECT_FALSE(sched_->Get(bad).has_value());
  EXPECT_EQ(sched_->Cancel(ok).status().code(), Code::kNotFound);
  EXPECT_EQ(sched_->live_jobs(), 0u);
}

TEST_F(SchedulerTest, AckWinsOverARequestedCancel) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  ASSERT_RESULT_OK(sched_->Cancel(id));
  auto st = sched_->Ack(id, l.lease.token, "");
  ASSERT_RESULT_OK(st);
  EXPECT_EQ(*st, JobState::kSucceeded);
}

// --- Retention -------------------------------------------------------------------------------

TEST_F(SchedulerTest, SucceededJobIsDeletedWhenRetentionIsZero) {
  SchedulerOptions o;
  o.default_retention.succeeded_ms = 0;  // delete-on-ack, server-wide
  Reset(o);
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, R"({"ok":1})"));
  Batch b = Commit();
  auto del = MutationsOf<DeleteJob>(b);
  ASSERT_EQ(del.size(), 1u);
  EXPECT_EQ(del[0].id, id);
  EXPECT_TRUE(MutationsOf<UpdateJob>(b).empty());
  EXPECT_EQ(sched_->retention().queues(), 0u) << "nothing kept, nothing to purge";
}

TEST_F(SchedulerTest, SucceededJobIsKeptWithResultByDefault) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  clock_.Advance(250);
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, R"({"ok":1})"));
  Batch b = Commit();
  EXPECT_TRUE(MutationsOf<DeleteJob>(b).empty());
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.state, JobState::kSucceeded);
  EXPECT_EQ(up[0].job.finished_at_ms, kStart + 250);
  EXPECT_EQ(up[0].job.result, R"({"ok":1})");
  EXPECT_EQ(up[0].job.attempts, 1);
  EXPECT_EQ(sched_->retention().Count("q", JobState::kSucceeded), 1u);
}

TEST_F(SchedulerTest, AQueueCanStillDeleteSucceededJobsWithTheirAck) {
  QueueConfigPatch p;
  p.name = "q";
  p.retention = Retention{};
  p.retention->succeeded_ms = 0;
  ASSERT_RESULT_OK(sched_->PutQueue(p));
  const JobId id = EnqueueCommitted(Spec());
  ASSERT_RESULT_OK(sched_->Ack(id, LeaseOne().lease.token, ""));
  Batch b = Commit();
  EXPECT_EQ(MutationsOf<DeleteJob>(b).size(), 1u);
  EXPECT_TRUE(MutationsOf<UpdateJob>(b).empty());
}

TEST_F(SchedulerTest, TheSweepPurgesOnlyQueuesHoldingFinishedJobsPastTheirWindow) {
  QueueConfigPatch p;
  p.name = "q";
  p.retention = Retention{1000, 2000, 3000};
  ASSERT_RESULT_OK(sched_->PutQueue(p));
  p.name = "idle";  // configured, but holds no finished job: costs no purge
  ASSERT_RESULT_OK(sched_->PutQueue(p));
  Commit();
  const JobId ok = EnqueueCommitted(Spec());
  ASSERT_RESULT_OK(sched_->Ack(ok, LeaseOne().lease.token, ""));
  const JobId dead = EnqueueCommitted(Spec());
  FailSpec f;
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(dead, LeaseOne().lease.token, f));
  Commit();
  const std::int64_t finished = clock_.NowMs();
  AdvanceAndTick(options_.retention_sweep_interval_ms);
  Batch b = Commit();
  auto purges = MutationsOf<PurgeFinished>(b);
  ASSERT_EQ(purges.size(), 2u) << "succeeded and dead of q; nothing of idle, nothing cancelled";
  const std::int64_t now = clock_.NowMs();
  for (const auto& pf : purges) {
    EXPECT_EQ(pf.queue, "q");
    EXPECT_EQ(pf.before_ms, now - (pf.state == JobState::kSucceeded ? 1000 : 2000));
    EXPECT_EQ(pf.limit, options_.retention_purge_chunk - (pf.state == JobState::kSucceeded ? 0 : 1))
        << "one chunk for the batch";
    EXPECT_LT(pf.before_ms, now);
    EXPECT_GE(now - finished, 2000);
  }
  // Until the store reports, nothing is planned again.
  AdvanceAndTick(options_.retention_sweep_interval_ms);
  EXPECT_TRUE(MutationsOf<PurgeFinished>(Commit()).empty());
}

TEST_F(SchedulerTest, APurgeBacklogDrainsInBoundedChunksUntilTheStoreReportsItDone) {
  SchedulerOptions o;
  o.retention_purge_chunk = 100;
  o.default_retention.succeeded_ms = 1000;
  Reset(o);
  sched_->LoadFinished("q", JobState::kSucceeded, 250, kStart - 5000);  // a backlog at startup
  AdvanceAndTick(o.retention_sweep_interval_ms);
  std::uint64_t left = 250;
  int chunks = 0;
  for (; chunks < 10 && left > 0; ++chunks) {
    Batch b = Commit();
    auto purges = MutationsOf<PurgeFinished>(b);
    ASSERT_EQ(purges.size(), 1u) << chunks;
    EXPECT_EQ(purges[0].limit, 100u) << "bounded per commit";
    const std::uint64_t n = std::min<std::uint64_t>(left, purges[0].limit);
    left -= n;
    sched_->OnPurged(
        {PurgeOutcome{"q", JobState::kSucceeded, n, left, left > 0 ? kStart - 5000 : INT64_MAX}});
    if (left == 0) break;
    // The next chunk waits for the short purge interval, not for the next sweep.
    EXPECT_LE(sched_->NextDeadlineInMs(), o.retention_purge_interval_ms);
    AdvanceAndTick(o.retention_purge_interval_ms);
  }
  EXPECT_EQ(chunks, 2) << "250 rows in chunks of 100, 100, 50";
  EXPECT_FALSE(sched_->retention().has_due());
  EXPECT_EQ(sched_->NextDeadlineInMs(),
            o.retention_sweep_interval_ms - o.retention_purge_interval_ms * 2)
      << "no work: back to the sweep interval, no cost";
}

TEST_F(SchedulerTest, AQueueOverItsCapIsTrimmedFromTheNextBatchOn) {
  QueueConfigPatch p;
  p.name = "q";
  p.retention = Retention{};
  p.retention->max_succeeded = 2;
  ASSERT_RESULT_OK(sched_->PutQueue(p));
  Commit();
  for (int i = 0; i < 3; ++i) {
    const JobId id = EnqueueCommitted(Spec());
    ASSERT_RESULT_OK(sched_->Ack(id, LeaseOne().lease.token, ""));
  }
  // The batch of the third ack keeps pace: it carries the trim, no sweep needed.
  Batch b = Commit();
  auto purges = MutationsOf<PurgeFinished>(b);
  ASSERT_EQ(purges.size(), 1u);
  EXPECT_EQ(purges[0].queue, "q");
  EXPECT_EQ(purges[0].state, JobState::kSucceeded);
  EXPECT_EQ(purges[0].max_kept, 2u);
  EXPECT_EQ(purges[0].limit, 2u * 1 + 16) << "twice the jobs the batch keeps, plus slack";
}

// --- Replay ----------------------------------------------------------------------------------

TEST_F(SchedulerTest, ReplayOfADeadJobStartsANewRun) {
  EnqueueSpec s = Spec();
  const JobId id = Enqueue(s);
  Batch inserted = Commit();
  LeasedJob l = LeaseOne();
  FailSpec f;
  f.type = "boom";
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(id, l.lease.token, f));
  Batch died = Commit();
  ASSERT_FALSE(sched_->IsLive(id));

  // What the store holds now: the insert with the dead update applied.
  JobRecord stored = MutationsOf<UpdateJob>(died).at(0).job;
  stored.payload = MutationsOf<InsertJob>(inserted).at(0).job.payload;
  ASSERT_EQ(stored.state, JobState::kDead);
  clock_.Advance(100);
  auto v = ReplayFromStore(stored);
  ASSERT_RESULT_OK(v);
  EXPECT_EQ(v->job.state, JobState::kReady);
  EXPECT_EQ(v->job.attempts, 0);
  EXPECT_EQ(v->job.runs, 2);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0].type, "boom");
  // Pending until durable.
  EXPECT_TRUE(Lease({"q"}).empty());
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.state, JobState::kReady);
  EXPECT_EQ(up[0].job.runs, 2);
  EXPECT_EQ(up[0].job.attempts, 0);
  EXPECT_TRUE(up[0].job.dead_reason.empty());
  EXPECT_EQ(up[0].job.finished_at_ms, 0);

  LeasedJob again = LeaseOne();
  EXPECT_EQ(again.id, id);
  EXPECT_EQ(again.attempt, 1);
  EXPECT_EQ(again.payload, s.payload);

  // Replaying it while it is live is refused, whether core or a (stale) stored record is asked.
  auto live = sched_->ReplayInCore(id, false);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->status().code(), Code::kInvalidState);
  EXPECT_EQ(ReplayFromStore(stored).status().code(), Code::kInvalidState);
}

TEST_F(SchedulerTest, ReplayOfANonTerminalOrSucceededRecordIsInvalid) {
  JobRecord r;
  r.id = 99;
  r.queue = "q";
  r.kind = "k";
  r.state = JobState::kSucceeded;
  EXPECT_EQ(ReplayFromStore(r).status().code(), Code::kInvalidState);
  r.state = JobState::kCancelled;
  EXPECT_EQ(ReplayFromStore(r, /*dead_only=*/true).status().code(), Code::kInvalidState)
      << "bulk replay takes dead jobs only";
  // A stored live row that core does not hold cannot happen (recovery loads them all): it is
  // an internal error, never a replay.
  for (JobState st : {JobState::kReady, JobState::kActive}) {
    r.state = st;
    EXPECT_EQ(ReplayFromStore(r).status().code(), Code::kInternal);
  }
  EXPECT_EQ(sched_->open_mutations(), 0u);
  EXPECT_FALSE(sched_->IsLive(99));
}

TEST_F(SchedulerTest, ReplayOfACancelledJob) {
  JobRecord r;
  r.id = 5;
  r.queue = "q";
  r.kind = "k";
  r.state = JobState::kCancelled;
  r.attempts = 1;
  r.finished_at_ms = kStart - 10;
  auto v = ReplayFromStore(std::move(r));
  ASSERT_RESULT_OK(v);
  Commit();
  LeasedJob l = LeaseOne();
  EXPECT_EQ(l.id, 5u);
  EXPECT_EQ(l.attempt, 1);
}

// A job that died and whose dead row is committed: returns the record the store now holds.
static JobRecord StoredAfter(const Batch& inserted, const Batch& finished) {
  JobRecord stored = MutationsOf<UpdateJob>(finished).at(0).job;
  stored.payload = MutationsOf<InsertJob>(inserted).at(0).job.payload;
  return stored;
}

// Regression (issue 7, item 2): a replay read the dead row on a reader thread, and core trusted
// that record when it came back. A second replay that read the same row while the first one ran
// (two clients, or a client retrying a slow POST /v1/dead:replay) re-ran a job that had been
// acked in between. Core now sees that the job left it after the read began, and reads again.
TEST_F(SchedulerTest, ReplayReadThatCrossedARunOfTheJobIsReadAgain) {
  const JobId id = Enqueue(Spec());
  Batch inserted = Commit();
  FailSpec f;
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(id, LeaseOne().lease.token, f));
  const JobRecord dead = StoredAfter(inserted, Commit());
  ASSERT_EQ(dead.state, JobState::kDead);

  // Two replays read the dead row; the first one wins, the job runs and is acked.
  auto slow = sched_->OpenRead();
  ASSERT_RESULT_OK(ReplayFromStore(dead));
  Commit();
  ASSERT_RESULT_OK(sched_->Ack(id, LeaseOne().lease.token, ""));
  Commit();  // succeeded, deleted (no retention), evicted
  ASSERT_FALSE(sched_->IsLive(id));

  // The slow one comes back with the dead record it read before all that.
  auto late = sched_->ReplayStored(slow, id, JobRecord(dead), false);
  EXPECT_FALSE(late.has_value()) << "a record read before the job ran again must be read again";
  EXPECT_FALSE(sched_->IsLive(id));
  EXPECT_EQ(sched_->open_mutations(), 0u) << "nothing may be written on a stale record";
  sched_->CloseRead(slow);
  // Read again, the row is gone (the ack deleted it): 404.
  auto again = sched_->OpenRead();
  auto gone = sched_->ReplayStored(again, id, std::nullopt, false);
  sched_->CloseRead(again);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->status().code(), Code::kNotFound);
  EXPECT_EQ(sched_->read_guard().remembered(), 0u) << "nothing is kept once no read is open";
}

// Regression (issue 7, item 2): a replay whose read raced a retention purge was answered 200,
// and its UpdateJob (a no-op on a missing row) was never stored.
TEST_F(SchedulerTest, ReplayReadThatCrossedARetentionPurgeIsReadAgainOnceThePurgeIsDurable) {
  SchedulerOptions o;
  o.default_retention.dead_ms = 1000;  // so the sweep below purges the dead job
  Reset(o);
  const JobId id = Enqueue(Spec());
  Batch inserted = Commit();
  FailSpec f;
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(id, LeaseOne().lease.token, f));
  const JobRecord dead = StoredAfter(inserted, Commit());

  auto read = sched_->OpenRead();
  AdvanceAndTick(options_.retention_sweep_interval_ms);  // a sweep appends purges
  ASSERT_GT(sched_->open_mutations(), 0u);
  const std::uint64_t purge_batch = sched_->VisibleSeq();
  EXPECT_EQ(sched_->read_again_after(), purge_batch);
  auto r = sched_->ReplayStored(read, id, JobRecord(dead), false);
  EXPECT_FALSE(r.has_value()) << "the purge may have removed the row the read saw";
  EXPECT_FALSE(sched_->IsLive(id));
  sched_->CloseRead(read);
  Commit();
  ASSERT_GE(sched_->durable_seq(), purge_batch);
  // A read that starts after the purge is durable is current: whatever it finds is decided.
  auto after = sched_->OpenRead();
  auto purged = sched_->ReplayStored(after, id, std::nullopt, false);
  ASSERT_TRUE(purged.has_value());
  EXPECT_EQ(purged->status().code(), Code::kNotFound);
  auto kept = sched_->ReplayStored(after, id, JobRecord(dead), false);
  sched_->CloseRead(after);
  ASSERT_TRUE(kept.has_value());
  ASSERT_RESULT_OK(*kept);
  EXPECT_EQ((*kept)->job.runs, 2);
}

TEST_F(SchedulerTest, ReplayOfAJobStillEvictingStartsFromMemoryAfterItsTerminalWrite) {
  EnqueueSpec s = Spec();
  const JobId id = EnqueueCommitted(s);
  FailSpec f;
  f.type = "boom";
  f.retryable = false;
  ASSERT_RESULT_OK(sched_->Fail(id, LeaseOne().lease.token, f));
  ASSERT_EQ(StateOf(id), JobState::kDead);  // evicting: its batch is not durable yet
  clock_.Advance(10);
  auto v = sched_->ReplayInCore(id, /*dead_only=*/true);
  ASSERT_TRUE(v.has_value()) << "core holds the job: no store read";
  ASSERT_RESULT_OK(*v);
  EXPECT_EQ((*v)->job.state, JobState::kReady);
  EXPECT_EQ((*v)->job.runs, 2);
  EXPECT_EQ((*v)->job.attempts, 0);
  EXPECT_TRUE(Lease({"q"}).empty()) << "pending until its batch commits";
  // A second replay finds it live.
  auto twice = sched_->ReplayInCore(id, false);
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(twice->status().code(), Code::kInvalidState);
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 2u);
  EXPECT_EQ(up[0].job.state, JobState::kDead) << "the terminal write goes first";
  EXPECT_EQ(up[1].job.state, JobState::kReady);
  EXPECT_EQ(up[1].job.runs, 2);
  EXPECT_TRUE(sched_->IsLive(id)) << "the commit of its terminal write must not evict it";
  LeasedJob again = LeaseOne();
  EXPECT_EQ(again.id, id);
  EXPECT_EQ(again.attempt, 1);
  EXPECT_EQ(again.payload, s.payload);
  EXPECT_EQ(Count("q", "active"), 1u);
}

TEST_F(SchedulerTest, ReplayAnswersWithoutAReadWhatCoreKnows) {
  auto never = sched_->ReplayInCore(777, false);
  ASSERT_TRUE(never.has_value()) << "an id never issued needs no read";
  EXPECT_EQ(never->status().code(), Code::kNotFound);
  const JobId id = EnqueueCommitted(Spec());
  auto live = sched_->ReplayInCore(id, false);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->status().code(), Code::kInvalidState);
  EXPECT_NE(live->status().message().find("ready"), std::string::npos) << live->status().message();
  ASSERT_RESULT_OK(sched_->Ack(id, LeaseOne().lease.token, ""));
  auto succeeded = sched_->ReplayInCore(id, false);  // still evicting
  ASSERT_TRUE(succeeded.has_value());
  EXPECT_EQ(succeeded->status().code(), Code::kInvalidState);
  Commit();
  EXPECT_FALSE(sched_->ReplayInCore(id, false).has_value()) << "gone from core: read the store";
  EXPECT_EQ(sched_->open_mutations(), 0u);
}

// The cancel of a job core no longer holds reads the store too; a record read before the job
// was replayed must not answer "cancelled" while the replayed job runs.
TEST_F(SchedulerTest, CancelDecidedFromAStoredRecordCancelsAJobReplayedMeanwhile) {
  const JobId id = EnqueueCommitted(Spec());
  ASSERT_RESULT_OK(sched_->Cancel(id));
  Batch cancelled = Commit();
  JobRecord stored = MutationsOf<UpdateJob>(cancelled).at(0).job;
  ASSERT_EQ(stored.state, JobState::kCancelled);
  EXPECT_EQ(sched_->Cancel(id).status().code(), Code::kNotFound);
  EXPECT_TRUE(sched_->Issued(id));
  EXPECT_FALSE(sched_->Issued(id + 1));

  auto read = sched_->OpenRead();
  ASSERT_RESULT_OK(ReplayFromStore(stored));  // replayed while the cancel's read is out
  Commit();
  auto r = sched_->CancelStored(read, id, JobRecord(stored));
  sched_->CloseRead(read);
  ASSERT_TRUE(r.has_value());
  ASSERT_RESULT_OK(*r);
  EXPECT_EQ((*r)->job.state, JobState::kCancelled);
  EXPECT_EQ(StateOf(id), JobState::kCancelled) << "the live run is what got cancelled";
  EXPECT_TRUE(Lease({"q"}).empty());
  Commit();

  // Decided from a current record: cancelled again is answered as is; dead is 409; gone is 404.
  auto now = sched_->OpenRead();
  auto same = sched_->CancelStored(now, id, JobRecord(stored));
  ASSERT_TRUE(same.has_value());
  ASSERT_RESULT_OK(*same);
  EXPECT_EQ((*same)->job.state, JobState::kCancelled);
  stored.state = JobState::kDead;
  auto dead = sched_->CancelStored(now, id, JobRecord(stored));
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->status().code(), Code::kInvalidState);
  auto gone = sched_->CancelStored(now, id, std::nullopt);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->status().code(), Code::kNotFound);
  sched_->CloseRead(now);
  EXPECT_EQ(sched_->open_mutations(), 0u);
}

// --- Waiters and release ---------------------------------------------------------------------

TEST_F(SchedulerTest, WaiterGetsJobsWhenAnEnqueueCommits) {
  int calls = 0;
  std::vector<LeasedJob> got;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 5;
  req.worker_id = "w9";
  sched_->AddWaiter(req, Mono(kStart + 30'000), [&](std::vector<LeasedJob> jobs) {
    ++calls;
    got = std::move(jobs);
  });
  EXPECT_EQ(sched_->waiters(), 1u);
  const JobId a = Enqueue(Spec());
  const JobId b = Enqueue(Spec());
  EXPECT_EQ(calls, 0);  // not durable yet
  Commit();
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, a);
  EXPECT_EQ(got[1].id, b);
  EXPECT_EQ(got[0].lease.worker_id, "w9");
  EXPECT_EQ(StateOf(a), JobState::kActive);
  EXPECT_EQ(sched_->waiters(), 0u);
  // Called exactly once: its deadline passing does nothing more.
  AdvanceAndTick(30'000);
  EXPECT_EQ(calls, 1);
}

TEST_F(SchedulerTest, WaiterGetsAScheduledJobWhenItsTimerFires) {
  EnqueueSpec s = Spec();
  s.delay_ms = 500;
  const JobId id = EnqueueCommitted(s);
  std::vector<LeasedJob> got;
  int calls = 0;
  LeaseRequest req;
  req.queues = {"q"};
  sched_->AddWaiter(req, Mono(kStart + 10'000), [&](std::vector<LeasedJob> jobs) {
    ++calls;
    got = std::move(jobs);
  });
  AdvanceAndTick(500);
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
}

TEST_F(SchedulerTest, WaiterGetsAJobThatFailedWithAnImmediateRetry) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  std::vector<LeasedJob> got;
  LeaseRequest req;
  req.queues = {"q"};
  sched_->AddWaiter(req, Mono(kStart + 10'000),
                    [&](std::vector<LeasedJob> jobs) { got = std::move(jobs); });
  FailSpec f;
  f.retry_in_ms = 0;
  ASSERT_RESULT_OK(sched_->Fail(id, l.lease.token, f));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].attempt, 2);
}

TEST_F(SchedulerTest, WaiterGetsAJobWhoseLeaseExpired) {
  EnqueueSpec s = Spec();
  s.lease_ms = 1000;
  const JobId id = EnqueueCommitted(s);
  LeaseOne();
  std::vector<LeasedJob> got;
  LeaseRequest req;
  req.queues = {"q"};
  sched_->AddWaiter(req, Mono(kStart + 10'000),
                    [&](std::vector<LeasedJob> jobs) { got = std::move(jobs); });
  AdvanceAndTick(1000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].attempt, 2);
}

TEST_F(SchedulerTest, WaiterTimesOutEmptyAtItsDeadline) {
  int calls = 0;
  std::size_t jobs_seen = 99;
  LeaseRequest req;
  req.queues = {"q"};
  sched_->AddWaiter(req, Mono(kStart + 5000), [&](std::vector<LeasedJob> jobs) {
    ++calls;
    jobs_seen = jobs.size();
  });
  EXPECT_LE((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 5000);
  AdvanceAndTick(4999);
  EXPECT_EQ(calls, 0);
  AdvanceAndTick(1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(jobs_seen, 0u);
  EXPECT_EQ(sched_->waiters(), 0u);
  // A job arriving later is not handed to the expired waiter.
  EnqueueCommitted(Spec());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Count("q", "ready"), 1u);
}

TEST_F(SchedulerTest, ShutdownAnswersEveryWaiter) {
  int calls = 0;
  std::size_t jobs_seen = 0;
  for (const char* q : {"a", "b", "c"}) {
    LeaseRequest req;
    req.queues = {q};
    sched_->AddWaiter(req, Mono(kStart + 5000), [&](std::vector<LeasedJob> jobs) {
      ++calls;
      jobs_seen += jobs.size();
    });
  }
  sched_->Shutdown();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(jobs_seen, 0u);
  EXPECT_EQ(sched_->waiters(), 0u);
  AdvanceAndTick(5000);
  EXPECT_EQ(calls, 3);
}

TEST_F(SchedulerTest, WaitersAreServedInArrivalOrder) {
  std::vector<int> order;
  for (int i = 0; i < 2; ++i) {
    LeaseRequest req;
    req.queues = {"q"};
    sched_->AddWaiter(req, Mono(kStart + 5000), [&order, i](std::vector<LeasedJob> jobs) {
      if (!jobs.empty()) order.push_back(i);
    });
  }
  EnqueueCommitted(Spec());
  EXPECT_EQ(order, std::vector<int>{0});
  EnqueueCommitted(Spec());
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
}

TEST_F(SchedulerTest, ReleaseReturnsTheJobWithoutCountingTheAttempt) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  sched_->Release(id, l.lease.token + 1);  // wrong token: ignored
  EXPECT_EQ(StateOf(id), JobState::kActive);
  sched_->Release(id, l.lease.token);
  auto v = sched_->Get(id);
  EXPECT_EQ(v->job.state, JobState::kReady);
  EXPECT_EQ(v->job.attempts, 0);
  EXPECT_TRUE(v->job.errors.empty());
  EXPECT_EQ(Count("q", "ready"), 1u);
  EXPECT_EQ(Count("q", "active"), 0u);
  EXPECT_EQ(sched_->Ack(id, l.lease.token, "").status().code(), Code::kStaleLease);
  clock_.Advance(100);
  LeasedJob again = LeaseOne();
  EXPECT_EQ(again.attempt, 1);
  EXPECT_NE(again.lease.token, l.lease.token);
  // The released lease's timer must not fire on the new lease.
  AdvanceAndTick(l.lease.expires_at_ms - clock_.NowMs());
  EXPECT_EQ(StateOf(id), JobState::kActive);
}

// Regression (issue 7, item 3): a lease handed back (its long-poll's client went away) after a
// cancel was accepted put the job back to ready, where it could run and succeed although the
// cancel had been answered 2xx.
TEST_F(SchedulerTest, ReleaseOfALeaseWhoseCancelWasRequestedCancelsTheJob) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  auto flagged = sched_->Cancel(id);
  ASSERT_RESULT_OK(flagged);
  EXPECT_EQ(flagged->job.state, JobState::kActive);
  Commit();
  sched_->Release(id, l.lease.token);
  EXPECT_EQ(StateOf(id), JobState::kCancelled);
  EXPECT_EQ(Count("q", "ready"), 0u);
  EXPECT_EQ(Count("q", "active"), 0u);
  EXPECT_TRUE(Lease({"q"}, 10).empty()) << "a cancelled job must never be dispatched again";
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.state, JobState::kCancelled);
  EXPECT_EQ(up[0].job.attempts, 0) << "the released attempt never reached a worker";
  EXPECT_FALSE(sched_->IsLive(id));
}

TEST_F(SchedulerTest, AckFailHeartbeatOfAnIdNeverIssuedAreNotFound) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  const JobId never = id + 1000;
  EXPECT_EQ(sched_->Ack(never, l.lease.token, "").status().code(), Code::kNotFound);
  EXPECT_EQ(sched_->Fail(never, l.lease.token, FailSpec{}).status().code(), Code::kNotFound);
  EXPECT_EQ(sched_->Heartbeat(never, l.lease.token, 0).status().code(), Code::kNotFound);
  // A job that existed and left core: the worker's lease is stale, not the id unknown.
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, ""));
  Commit();
  ASSERT_FALSE(sched_->IsLive(id));
  EXPECT_EQ(sched_->Heartbeat(id, l.lease.token, 0).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Fail(id, l.lease.token, FailSpec{}).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Ack(id, l.lease.token + 1, "").status().code(), Code::kStaleLease);
}

// Regression (issue 7, item 9): the lease_expired error quoted the job's lease_ms, not the
// length of the lease that expired.
TEST_F(SchedulerTest, LeaseExpiryErrorQuotesTheLeasesOwnLength) {
  EnqueueSpec s = Spec();
  s.lease_ms = 30'000;
  const JobId id = EnqueueCommitted(s);
  auto got = Lease({"q"}, 1, 500);  // the lease request asks for 500 ms
  ASSERT_EQ(got.size(), 1u);
  AdvanceAndTick(500);
  auto v = sched_->Get(id);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0].message, "lease of 500 ms expired without ack, fail or heartbeat");
  // Extended by a heartbeat: the extension is the lease's length.
  LeasedJob l = LeaseOne();
  ASSERT_RESULT_OK(sched_->Heartbeat(id, l.lease.token, 1'200));
  AdvanceAndTick(1'200);
  v = sched_->Get(id);
  ASSERT_EQ(v->job.errors.size(), 2u);
  EXPECT_EQ(v->job.errors[1].message, "lease of 1200 ms expired without ack, fail or heartbeat");
}

TEST_F(SchedulerTest, ReleaseServesAWaiter) {
  const JobId id = EnqueueCommitted(Spec());
  LeasedJob l = LeaseOne();
  int calls = 0;
  LeaseRequest req;
  req.queues = {"q"};
  sched_->AddWaiter(req, Mono(kStart + 5000),
                    [&](std::vector<LeasedJob> jobs) { calls += static_cast<int>(jobs.size()); });
  sched_->Release(id, l.lease.token);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
}

TEST_F(SchedulerTest, ProgressIsShownWhileTheAttemptRunsAndDroppedWhenItEnds) {
  EnqueueSpec spec = Spec();
  spec.max_attempts = 3;
  const JobId id = EnqueueCommitted(spec);
  const LeasedJob first = LeaseOne();
  EXPECT_EQ(sched_->Get(id)->progress, "");
  ASSERT_RESULT_OK(sched_->Heartbeat(id, first.lease.token, 0, std::string(R"({"percent":40})")));
  EXPECT_EQ(sched_->Get(id)->progress, R"({"percent":40})");
  // A beat without progress keeps the last one.
  ASSERT_RESULT_OK(sched_->Heartbeat(id, first.lease.token, 0));
  EXPECT_EQ(sched_->Get(id)->progress, R"({"percent":40})");
  // A stale token changes nothing.
  EXPECT_EQ(sched_->Heartbeat(id, first.lease.token + 1, 0, std::string(R"({"percent":99})"))
                .status()
                .code(),
            Code::kStaleLease);
  EXPECT_EQ(sched_->Get(id)->progress, R"({"percent":40})");
  // The attempt fails: its progress goes with it, and the retry starts with none.
  FailSpec f;
  f.retry_in_ms = 0;
  ASSERT_RESULT_OK(sched_->Fail(id, first.lease.token, f));
  EXPECT_EQ(sched_->Get(id)->progress, "");
  Commit();
  AdvanceAndTick(1);
  const LeasedJob second = LeaseOne();
  EXPECT_EQ(sched_->Get(id)->progress, "");
  ASSERT_RESULT_OK(sched_->Heartbeat(id, second.lease.token, 0, std::string(R"({"step":"b"})")));
  EXPECT_EQ(sched_->Get(id)->progress, R"({"step":"b"})");
  ASSERT_RESULT_OK(sched_->Ack(id, second.lease.token, ""));
  EXPECT_EQ(sched_->Get(id)->progress, "");
}

// --- Waiting for a job to end ----------------------------------------------------------------

TEST_F(SchedulerTest, EndWaitIsAnsweredByTheAckWithTheResult) {
  const JobId id = EnqueueCommitted(Spec());
  std::optional<JobView> got;
  int calls = 0;
  ASSERT_TRUE(sched_
                  ->AddEndWait(id, clock_.MonoMs() + 10'000,
                               [&](std::optional<JobView> v) {
                                 ++calls;
                                 got = std::move(v);
                               })
                  .ok());
  const LeasedJob l = LeaseOne();
  EXPECT_EQ(calls, 0) << "a lease is not an end";
  ASSERT_RESULT_OK(sched_->Ack(id, l.lease.token, R"({"sent":true})"));
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->job.state, JobState::kSucceeded);
  EXPECT_EQ(got->job.result, R"({"sent":true})");
  EXPECT_EQ(got->job.finished_at_ms, clock_.NowMs());
  AdvanceAndTick(20'000);
  EXPECT_EQ(calls, 1) << "answered once";
  EXPECT_EQ(sched_->end_waits(), 0u);
}

TEST_F(SchedulerTest, EndWaitSeesDeadCancelledAndNotARetry) {
  EnqueueSpec spec = Spec();
  spec.max_attempts = 2;
  const JobId dead = EnqueueCommitted(spec);
  const JobId cancelled = EnqueueCommitted(Spec("other"));
  std::vector<std::pair<JobId, JobState>> ends;
  auto record = [&](JobId id) {
    return [&ends, id](std::optional<JobView> v) {
      ASSERT_TRUE(v.has_value());
      ends.emplace_back(id, v->job.state);
    };
  };
  ASSERT_TRUE(sched_->AddEndWait(dead, clock_.MonoMs() + 3'600'000, record(dead)).ok());
  ASSERT_TRUE(sched_->AddEndWait(cancelled, clock_.MonoMs() + 3'600'000, record(cancelled)).ok());
  FailSpec f;
  f.type = "boom";
  f.retry_in_ms = 0;
  ASSERT_RESULT_OK(sched_->Fail(dead, LeaseOne().lease.token, f));
  Commit();
  AdvanceAndTick(1);
  EXPECT_TRUE(ends.empty()) << "a failed attempt that will be retried is not an end";
  ASSERT_RESULT_OK(sched_->Fail(dead, LeaseOne().lease.token, f));
  ASSERT_RESULT_OK(sched_->Cancel(cancelled));
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0], std::make_pair(dead, JobState::kDead));
  EXPECT_EQ(ends[1], std::make_pair(cancelled, JobState::kCancelled));
}

TEST_F(SchedulerTest, EndWaitRunsOutAtItsDeadlineOnTheMonotonicClock) {
  const JobId id = EnqueueCommitted(Spec());
  int calls = 0;
  bool ended = true;
  ASSERT_TRUE(sched_
                  ->AddEndWait(id, clock_.MonoMs() + 1'000,
                               [&](std::optional<JobView> v) {
                                 ++calls;
                                 ended = v.has_value();
                               })
                  .ok());
  EXPECT_LE(sched_->NextDeadlineInMs(), 1'000);
  clock_.StepWall(3'600'000);  // a wall-clock step neither ends nor stretches the wait
  sched_->Tick();
  EXPECT_EQ(calls, 0);
  AdvanceAndTick(999);
  EXPECT_EQ(calls, 0);
  AdvanceAndTick(1);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(ended);
  EXPECT_EQ(StateOf(id), JobState::kReady);
}

TEST_F(SchedulerTest, EndWaitOnAJobNotLiveIsNotFound) {
  EXPECT_EQ(sched_->AddEndWait(12345, clock_.MonoMs() + 1000, [](std::optional<JobView>) {}).code(),
            Code::kNotFound);
  const JobId id = EnqueueCommitted(Spec());
  ASSERT_RESULT_OK(sched_->Ack(id, LeaseOne().lease.token, ""));
  // Ended, its batch not yet durable: nothing to wait for (the caller reads the end instead).
  EXPECT_EQ(sched_->AddEndWait(id, clock_.MonoMs() + 1000, [](std::optional<JobView>) {}).code(),
            Code::kNotFound);
}

TEST_F(SchedulerTest, ShutdownAnswersEndWaits) {
  const JobId id = EnqueueCommitted(Spec());
  int calls = 0;
  ASSERT_TRUE(sched_
                  ->AddEndWait(id, clock_.MonoMs() + 10'000,
                               [&](std::optional<JobView> v) {
                                 ++calls;
                                 EXPECT_FALSE(v.has_value());
                               })
                  .ok());
  sched_->Shutdown();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sched_->end_waits(), 0u);
}

// --- Cancel watches ----------------------------------------------------------------------------

TEST_F(SchedulerTest, CancelOfAnActiveJobWakesItsWorkersWatchAtOnce) {
  const JobId id = EnqueueCommitted(Spec());
  const JobId other = EnqueueCommitted(Spec());
  const LeasedJob l = LeaseOne();  // leased to "w1"
  ASSERT_EQ(l.id, id);
  std::vector<std::vector<JobId>> w1, w2;
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w1", {}, clock_.MonoMs() + 30'000,
                                   [&](std::vector<JobId> ids) { w1.push_back(std::move(ids)); })
                  .ok());
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w2", {}, clock_.MonoMs() + 30'000,
                                   [&](std::vector<JobId> ids) { w2.push_back(std::move(ids)); })
                  .ok());
  EXPECT_EQ(sched_->cancel_watches(), 2u);
  // Cancelling a ready job ends it at once: no worker holds it, nobody is told.
  ASSERT_RESULT_OK(sched_->Cancel(other));
  EXPECT_TRUE(w1.empty());
  // The active job's cancel reaches w1's watch at once (no clock advance, no heartbeat), not w2.
  ASSERT_RESULT_OK(sched_->Cancel(id));
  ASSERT_EQ(w1.size(), 1u);
  EXPECT_EQ(w1[0], std::vector<JobId>{id});
  EXPECT_TRUE(w2.empty());
  // A new watch that knows it waits; one that does not is answered at once.
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w1", {id}, clock_.MonoMs() + 1'000,
                                   [&](std::vector<JobId> ids) { w1.push_back(std::move(ids)); })
                  .ok());
  EXPECT_EQ(w1.size(), 1u);
  EXPECT_LE(sched_->NextDeadlineInMs(), 1'000);
  AdvanceAndTick(1'000);
  ASSERT_EQ(w1.size(), 2u);
  EXPECT_EQ(w1[1], std::vector<JobId>{id});
  // Once the worker reports the cancelled attempt, the job is no longer reported.
  FailSpec f;
  f.type = "cancelled";
  ASSERT_RESULT_OK(sched_->Fail(id, l.lease.token, f));
  EXPECT_EQ(StateOf(id), JobState::kCancelled);
  EXPECT_EQ(sched_->Footprint().cancels_pending, 0u);
  sched_->Shutdown();
  ASSERT_EQ(w2.size(), 1u);
  EXPECT_TRUE(w2[0].empty());
  EXPECT_EQ(sched_->cancel_watches(), 0u);
}

TEST_F(SchedulerTest, ExpiredOrReleasedLeasesAreNoLongerReportedAsCancelled) {
  const JobId a = EnqueueCommitted(Spec());
  const LeasedJob la = LeaseOne();
  ASSERT_RESULT_OK(sched_->Cancel(a));
  const JobId b = EnqueueCommitted(Spec());
  const LeasedJob lb = LeaseOne();
  ASSERT_RESULT_OK(sched_->Cancel(b));
  EXPECT_EQ(sched_->Footprint().cancels_pending, 2u);
  sched_->Release(b, lb.lease.token);  // the lease reply was lost: cancelled at once
  EXPECT_EQ(StateOf(b), JobState::kCancelled);
  EXPECT_EQ(sched_->Footprint().cancels_pending, 1u);
  AdvanceAndTick(options_.default_lease_ms + 1);  // a's lease expires: cancelled
  EXPECT_EQ(StateOf(a), JobState::kCancelled);
  EXPECT_EQ(sched_->Footprint().cancels_pending, 0u);
  std::vector<JobId> got{99};
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w1", {}, clock_.MonoMs() + 10,
                                   [&](std::vector<JobId> ids) { got = std::move(ids); })
                  .ok());
  AdvanceAndTick(10);
  EXPECT_TRUE(got.empty());
  (void)la;
}

TEST_F(SchedulerTest, CancelWatchesAreCapped) {
  SchedulerOptions o;
  o.max_cancel_watches = 1;
  Reset(o);
  ASSERT_TRUE(
      sched_->AddCancelWatch("a", {}, clock_.MonoMs() + 100, [](std::vector<JobId>) {}).ok());
  EXPECT_EQ(
      sched_->AddCancelWatch("b", {}, clock_.MonoMs() + 100, [](std::vector<JobId>) {}).code(),
      Code::kResourceExhausted);
}

// --- Recovery --------------------------------------------------------------------------------

JobRecord StoredJob(JobId id, JobState state) {
  JobRecord r;
  r.id = id;
  r.queue = "q";
  r.kind = "k";
  r.state = state;
  r.created_at_ms = kStart - 60'000;
  r.updated_at_ms = kStart - 1000;
  r.run_at_ms = kStart - 60'000;
  return r;
}

TEST_F(SchedulerTest, RecoveredActiveJobComesBackReady) {
  JobRecord r = StoredJob(7, JobState::kActive);
  r.attempts = 2;
  r.errors = {AttemptError{1, "x", "", kStart - 5000}};
  sched_->LoadJob(std::move(r));
  EXPECT_EQ(StateOf(7), JobState::kReady);
  EXPECT_EQ(Count("q", "ready"), 1u);
  EXPECT_EQ(sched_->open_mutations(), 0u);
  LeasedJob l = LeaseOne();
  EXPECT_EQ(l.id, 7u);
  EXPECT_EQ(l.attempt, 3);
  EXPECT_EQ(sched_->Get(7)->job.errors.size(), 1u);
}

// Regression: recovery made every ready job ready anew, so a restart reset the oldest-ready age
// (the lag gauge) to 0, and a lag alert firing before the restart resolved and fired again as a
// new episode.
TEST_F(SchedulerTest, RecoveredReadyJobKeepsItsOldestReadyAge) {
  sched_->LoadJob(StoredJob(5, JobState::kReady));  // ready since kStart - 1000
  ASSERT_EQ(StateOf(5), JobState::kReady);
  EXPECT_EQ(sched_->Queue("q")->oldest_ready_age_ms, 1000);
  EXPECT_EQ(sched_->Get(5)->job.updated_at_ms, kStart - 1000);
  clock_.Advance(500);
  EXPECT_EQ(sched_->Queue("q")->oldest_ready_age_ms, 1500);
  // A job that was active comes back ready now: that is a new wait.
  sched_->LoadJob(StoredJob(6, JobState::kActive));
  EXPECT_EQ(sched_->Get(6)->job.updated_at_ms, clock_.NowMs());
}

TEST_F(SchedulerTest, RecoveredScheduledJobKeepsItsTimer) {
  JobRecord r = StoredJob(3, JobState::kScheduled);
  r.run_at_ms = kStart + 2000;
  r.attempts = 1;
  sched_->LoadJob(std::move(r));
  EXPECT_EQ(StateOf(3), JobState::kScheduled);
  EXPECT_EQ(sched_->Get(3)->blocked_reason, "retry_backoff");
  EXPECT_EQ((clock_.NowMs() + sched_->NextDeadlineInMs()), kStart + 2000);
  AdvanceAndTick(2000);
  EXPECT_EQ(LeaseOne().id, 3u);
}

TEST_F(SchedulerTest, RecoveredCancelRequestedJobIsCancelled) {
  JobRecord r = StoredJob(4, JobState::kActive);
  r.cancel_requested = true;
  r.attempts = 1;
  sched_->LoadJob(std::move(r));
  EXPECT_EQ(StateOf(4), JobState::kCancelled);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(Count("q", "ready"), 0u);
  Batch b = Commit();
  auto up = MutationsOf<UpdateJob>(b);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].job.id, 4u);
  EXPECT_EQ(up[0].job.state, JobState::kCancelled);
  EXPECT_FALSE(sched_->IsLive(4));
}

TEST_F(SchedulerTest, RecoveredLeaseWithACancelRequestedIsReportedToItsWorker) {
  JobRecord r = StoredJob(9, JobState::kActive);
  r.cancel_requested = true;
  r.attempts = 1;
  r.lease_token = 77;
  r.worker_id = "w9";
  r.lease_expires_at_ms = kStart + 30'000;
  sched_->LoadJob(std::move(r));
  ASSERT_EQ(StateOf(9), JobState::kActive);
  std::vector<std::vector<JobId>> got;
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w9", {}, clock_.MonoMs() + 30'000,
                                   [&](std::vector<JobId> ids) { got.push_back(std::move(ids)); })
                  .ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::vector<JobId>{9});
}

TEST_F(SchedulerTest, LoadNextIdPreventsIdReuse) {
  sched_->LoadNextId(500);
  sched_->LoadJob(StoredJob(100, JobState::kReady));
  const JobId a = Enqueue(Spec());
  EXPECT_EQ(a, 500u);
  Batch b = Commit();
  EXPECT_EQ(b.next_id, 501u);

  Rng rng2(3);
  Scheduler s2(clock_, rng2, SchedulerOptions{});
  s2.LoadNextId(10);
  s2.LoadJob(StoredJob(800, JobState::kReady));  // a live job above the stored high-water mark
  auto out = s2.Enqueue(Spec());
  ASSERT_RESULT_OK(out);
  EXPECT_EQ(out->id, 801u);
}

TEST_F(SchedulerTest, LoadQueueRestoresConfigWithoutRewritingIt) {
  QueueConfig c;
  c.name = "q";
  c.paused = true;
  c.max_attempts = 3;
  c.lease_ms = 4000;
  sched_->LoadQueue(c);
  EXPECT_EQ(sched_->open_mutations(), 0u);
  auto out = sched_->Enqueue(Spec());
  ASSERT_RESULT_OK(out);
  Batch b = Commit();
  EXPECT_TRUE(MutationsOf<PutQueue>(b).empty());  // already persisted
  EXPECT_EQ(MutationsOf<InsertJob>(b).at(0).job.max_attempts, 3);
  EXPECT_EQ(MutationsOf<InsertJob>(b).at(0).job.lease_ms, 4000);
  EXPECT_TRUE(Lease({"q"}).empty());  // paused
}

TEST_F(SchedulerTest, ListLivePagesReturnEveryLiveJobOnceUnderATinyScanBudget) {
  SchedulerOptions o;
  o.list_scan_budget = 3;
  Reset(o);
  // Ids straddle a JobIndex page boundary (4096) and leave holes.
  sched_->LoadNextId(4085);
  std::set<JobId> live;
  for (int i = 0; i < 30; ++i) {
    const JobId id = Enqueue(Spec(i % 2 ? "a" : "b"));
    live.insert(id);
  }
  Commit();
  for (JobId id : std::set<JobId>(live)) {
    if (id % 3 == 0) {
      ASSERT_RESULT_OK(sched_->Cancel(id));
      live.erase(id);
    }
  }
  Commit();
  ASSERT_EQ(sched_->live_jobs(), live.size());

  for (std::uint32_t limit : {1u, 4u, 100u}) {
    SCOPED_TRACE(limit);
    std::vector<JobId> seen;
    bool partial_page = false;
    ListQuery q;
    q.limit = limit;
    // Empty id slots count against the budget too, so walking up to id 4085 takes many pages.
    for (int pages = 0; pages < 100'000; ++pages) {
      JobPage p = sched_->ListLive(q);
      EXPECT_LE(p.items.size(), limit);
      EXPECT_LE(p.items.size(), 3u);  // the budget bounds every page
      for (const auto& v : p.items) seen.push_back(v.job.id);
      if (p.next_after_id == 0) break;
      if (p.items.size() < limit) partial_page = true;
      EXPECT_GT(p.next_after_id, q.after_id);  // always progresses
      q.after_id = p.next_after_id;
    }
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_EQ(std::vector<JobId>(live.begin(), live.end()), seen);
    if (limit > 3) {
      EXPECT_TRUE(partial_page);
    }
  }

  // Filters: queue and state.
  ListQuery q;
  q.filter.queue = "a";
  q.filter.states = {JobState::kReady};
  q.limit = 2;
  std::vector<JobId> seen;
  for (int pages = 0; pages < 100'000; ++pages) {
    JobPage p = sched_->ListLive(q);
    for (const auto& v : p.items) {
      EXPECT_EQ(v.job.queue, "a");
      EXPECT_EQ(v.job.state, JobState::kReady);
      seen.push_back(v.job.id);
    }
    if (p.next_after_id == 0) break;
    q.after_id = p.next_after_id;
  }
  std::vector<JobId> want;
  for (JobId id : live) {
    if (sched_->Get(id)->job.queue == "a") want.push_back(id);
  }
  EXPECT_EQ(seen, want);
  ListQuery none;
  none.filter.queue = "nope";
  EXPECT_TRUE(sched_->ListLive(none).items.empty());
}

// Every JobFilter field is applied during the live scan: pages under a tiny budget return
// exactly the live jobs a brute-force filter of Get() picks, each once.
TEST_F(SchedulerTest, ListLiveAppliesEveryFilterUnderATinyScanBudget) {
  SchedulerOptions o;
  o.list_scan_budget = 4;
  Reset(o);
  std::vector<JobId> ids;
  for (int i = 0; i < 24; ++i) {
    EnqueueSpec spec = Spec(i % 2 ? "a" : "b");
    spec.kind = i % 3 ? "k1" : "k0";
    spec.ns = i % 4 ? "default" : "other";
    if (i % 5 == 0) spec.tags = {"t", "u"};
    if (i % 6 == 0) spec.delay_ms = 60'000;  // scheduled
    ids.push_back(Enqueue(std::move(spec)));
    clock_.Advance(10);
  }
  Commit();
  const std::int64_t created_mid = sched_->Get(ids[12])->job.created_at_ms;
  std::vector<JobFilter> filters(10);
  filters[1].kind = "k0";
  filters[2].ns = "other";
  filters[3].tag = "t";
  filters[4].states = {JobState::kScheduled};
  filters[5].created_after_ms = created_mid;
  filters[6].created_before_ms = created_mid;
  filters[7].queue = "a";
  filters[7].kind = "k1";
  filters[7].tag = "u";
  filters[8].finished_after_ms = 0;  // no live job has finished
  filters[9].kind = "unknown-kind";
  for (const JobFilter& f : filters) {
    SCOPED_TRACE(f.Scope());
    std::vector<JobId> want;
    for (JobId id : ids) {
      if (f.Matches(sched_->Get(id)->job)) want.push_back(id);
    }
    ListQuery q;
    q.filter = f;
    q.limit = 2;
    std::vector<JobId> seen;
    for (int pages = 0; pages < 1000; ++pages) {
      JobPage p = sched_->ListLive(q);
      for (const auto& v : p.items) seen.push_back(v.job.id);
      if (p.next_after_id == 0) break;
      q.after_id = p.next_after_id;
    }
    EXPECT_EQ(seen, want);
  }
}

// --- Validation ------------------------------------------------------------------------------

TEST_F(SchedulerTest, EnqueueValidationErrorsChangeNothing) {
  struct Case {
    const char* what;
    void (*mutate)(EnqueueSpec&);
  };
  const Case cases[] = {
      {"empty queue", [](EnqueueSpec& s) { s.queue = ""; }},
      {"bad queue", [](EnqueueSpec& s) { s.queue = "a b"; }},
      {"long queue", [](EnqueueSpec& s) { s.queue = std::string(129, 'q'); }},
      {"empty kind", [](EnqueueSpec& s) { s.kind = ""; }},
      {"bad kind", [](EnqueueSpec& s) { s.kind = "k/1"; }},
      {"bad namespace", [](EnqueueSpec& s) { s.ns = "tenant 1"; }},
      {"empty namespace", [](EnqueueSpec& s) { s.ns = ""; }},
      {"priority high", [](EnqueueSpec& s) { s.priority = 1'000'001; }},
      {"priority low", [](EnqueueSpec& s) { s.priority = -1'000'001; }},
      {"delay and run_at",
       [](EnqueueSpec& s) {
         s.delay_ms = 10;
         s.run_at_ms = kStart + 10;
       }},
      {"negative delay", [](EnqueueSpec& s) { s.delay_ms = -1; }},
      {"huge delay", [](EnqueueSpec& s) { s.delay_ms = 10LL * 365 * 24 * 3600 * 1000 + 1; }},
      {"max_attempts 0", [](EnqueueSpec& s) { s.max_attempts = 0; }},
      {"max_attempts high", [](EnqueueSpec& s) { s.max_attempts = 1001; }},
      {"lease short", [](EnqueueSpec& s) { s.lease_ms = 99; }},
      {"lease long", [](EnqueueSpec& s) { s.lease_ms = 24LL * 3600 * 1000 + 1; }},
      {"backoff initial 0",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{0, 1000, 2.0};
       }},
      {"backoff max < initial",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{1000, 999, 2.0};
       }},
      {"backoff max > 30d",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{1000, 30LL * 24 * 3600 * 1000 + 1, 2.0};
       }},
      {"backoff multiplier < 1",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{1000, 2000, 0.5};
       }},
      {"backoff multiplier > 100",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{1000, 2000, 101};
       }},
      {"backoff multiplier NaN",
       [](EnqueueSpec& s) {
         s.backoff = Backoff{1000, 2000, std::numeric_limits<double>::quiet_NaN()};
       }},
      {"idempotency ttl 0",
       [](EnqueueSpec& s) {
         s.idempotency_key = "k";
         s.idempotency_ttl_ms = 0;
       }},
      {"bad concurrency key", [](EnqueueSpec& s) { s.concurrency_key = "a b"; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EnqueueSpec s = Spec();
    c.mutate(s);
    auto r = sched_->Enqueue(s);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kValidation);
    EXPECT_FALSE(r.status().message().empty());
    EXPECT_FALSE(sched_->HasOpenMutations());
    EXPECT_EQ(sched_->live_jobs(), 0u);
    bool more = false;
    EXPECT_TRUE(sched_->QueuesPage("", 10, &more).empty());
  }
  Batch b = Commit();
  EXPECT_TRUE(b.empty());
  // The ids were not consumed either.
  auto ok = sched_->Enqueue(Spec());
  ASSERT_RESULT_OK(ok);
  EXPECT_EQ(ok->id, 1u);
}

TEST_F(SchedulerTest, EnqueueAcceptsBoundaryValues) {
  const auto edit = [](auto f) {
    EnqueueSpec s = Spec();
    f(s);
    return s;
  };
  const EnqueueSpec ok[] = {
      edit([](EnqueueSpec& s) { s.priority = 1'000'000; }),
      edit([](EnqueueSpec& s) { s.priority = -1'000'000; }),
      edit([](EnqueueSpec& s) { s.max_attempts = 1; }),
      edit([](EnqueueSpec& s) { s.max_attempts = 1000; }),
      edit([](EnqueueSpec& s) { s.lease_ms = 100; }),
      edit([](EnqueueSpec& s) { s.lease_ms = 24LL * 3600 * 1000; }),
      edit([](EnqueueSpec& s) { s.delay_ms = 0; }),
      edit([](EnqueueSpec& s) {
        s.backoff = Backoff{1, 1, 1.0};
      }),
      edit([](EnqueueSpec& s) { s.queue = std::string(128, 'q'); }),
      edit([](EnqueueSpec& s) { s.ns = "A-z_0.9:x"; }),
  };
  for (const EnqueueSpec& s : ok) {
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(sched_->live_jobs(), std::size(ok));
}

TEST_F(SchedulerTest, PutQueueValidationChangesNothing) {
  QueueConfigPatch bad;
  bad.name = "q";
  bad.max_attempts = 0;
  EXPECT_EQ(sched_->PutQueue(bad).status().code(), Code::kValidation);
  bad.max_attempts.reset();
  bad.retention = Retention{-1, 0, 0};
  EXPECT_EQ(sched_->PutQueue(bad).status().code(), Code::kValidation);
  bad.retention.reset();
  bad.lease_ms = 1;
  EXPECT_EQ(sched_->PutQueue(bad).status().code(), Code::kValidation);
  bad.name = "bad name";
  bad.lease_ms.reset();
  EXPECT_EQ(sched_->PutQueue(bad).status().code(), Code::kValidation);
  EXPECT_FALSE(sched_->HasOpenMutations());
  EXPECT_FALSE(sched_->Queue("q").has_value());
}

}  // namespace
}  // namespace ym

namespace ym {
namespace {

// Creation times never decrease in id order, even when the wall clock steps back (a created-at
// bound of a search is then an id range, Store::SearchFinished), and a recovered scheduler goes
// on from the last stored creation time.
TEST_F(SchedulerTest, CreationTimesNeverDecreaseInIdOrder) {
  const JobId a = EnqueueCommitted(Spec());
  const std::int64_t first = sched_->Get(a)->job.created_at_ms;
  EXPECT_EQ(first, clock_.NowMs());
  clock_.StepWall(-60'000);  // NTP steps the clock back a minute
  const JobId b = EnqueueCommitted(Spec());
  EXPECT_EQ(sched_->Get(b)->job.created_at_ms, first) << "not before the previous job's";
  clock_.Advance(1);
  const JobId c = EnqueueCommitted(Spec());
  EXPECT_EQ(sched_->Get(c)->job.created_at_ms, first);
  clock_.StepWall(120'000);
  const JobId d = EnqueueCommitted(Spec());
  EXPECT_EQ(sched_->Get(d)->job.created_at_ms, clock_.NowMs()) << "the clock is ahead again";

  // A restart whose clock reads before the last stored creation time.
  Reset(SchedulerOptions{});
  sched_->LoadNextId(d + 1);
  sched_->LoadLastCreatedAt(first + 61'000);
  clock_.StepWall(-300'000);
  const JobId e = EnqueueCommitted(Spec());
  EXPECT_GT(e, d);
  EXPECT_EQ(sched_->Get(e)->job.created_at_ms, first + 61'000);
}

}  // namespace
}  // namespace ym
