// Per-(queue, kind) job metrics (issue 12, item 1): the scheduler's hooks that feed JobStats
// (core/job_stats.h) where jobs change state, with a ManualClock so every duration is exact;
// the per-queue blocked reasons and last-poll time the gauge refresh takes; the config key
// `metrics_max_label_sets`.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/job_stats.h"
#include "core/scheduler.h"
#include "job_stats_probe.h"
#include "scheduler_hot_path.h"
#include "server/config.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

using test::AtOrBelow;
using test::EventCount;
using test::Times;

// --- The scheduler's hooks, on a ManualClock ---------------------------------------------------

class JobStatsSchedulerTest : public ::testing::Test {
 protected:
  JobStatsSchedulerTest() : clock_(kStart), rng_(7) {
    SchedulerOptions o;
    o.job_stats = &stats_;
    o.default_backoff.initial_ms = 1000;
    o.default_backoff.max_ms = 1000;
    sched_ = std::make_unique<Scheduler>(clock_, rng_, o);
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }
  JobId Enqueue(const std::string& queue, const std::string& kind,
                std::optional<std::int64_t> delay_ms = std::nullopt, std::int32_t attempts = 3,
                std::int64_t timeout_ms = 0) {
    EnqueueSpec spec;
    spec.queue = queue;
    spec.kind = kind;
    spec.delay_ms = delay_ms;
    spec.max_attempts = attempts;
    if (timeout_ms > 0) spec.timeout_ms = timeout_ms;
    auto r = sched_->Enqueue(std::move(spec));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }
  LeasedJob LeaseOne(const std::string& queue, std::optional<std::int64_t> lease_ms = {}) {
    LeaseRequest req;
    req.queues = {queue};
    req.worker_id = "w";
    req.lease_ms = lease_ms;
    std::vector<LeasedJob> got = sched_->Lease(req);
    EXPECT_EQ(got.size(), 1u);
    Commit();
    return got.empty() ? LeasedJob{} : got[0];
  }
  std::uint64_t Events(const std::string& q, const std::string& k, JobEvent e) const {
    return EventCount(stats_, q, k, e);
  }
  obs::Histogram::Snapshot T(const std::string& q, const std::string& k, JobTime t) const {
    auto h = Times(stats_, q, k, t);
    EXPECT_TRUE(h.has_value()) << q << "/" << k;
    return h.value_or(obs::Histogram::Snapshot{});
  }

  ManualClock clock_;
  Rng rng_;
  JobStats stats_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(JobStatsSchedulerTest, WaitRunAndEndToEndOfAnAckedJobLandInTheirBuckets) {
  Enqueue("mail", "send");
  EXPECT_EQ(Events("mail", "send", JobEvent::kEnqueued), 1u);
  clock_.Advance(300);  // waits 300 ms for a worker
  const LeasedJob l = LeaseOne("mail");
  EXPECT_EQ(Events("mail", "send", JobEvent::kLeased), 1u);
  clock_.Advance(2000);  // runs 2 s
  ASSERT_TRUE(sched_->Ack(l.id, l.lease.token, "null").ok());
  Commit();
  EXPECT_EQ(Events("mail", "send", JobEvent::kSucceeded), 1u);

  const auto wait = T("mail", "send", JobTime::kWait);
  EXPECT_EQ(wait.count, 1u);
  EXPECT_EQ(wait.sum, 300'000u);
  EXPECT_EQ(AtOrBelow(wait, 250'000), 0u);
  EXPECT_EQ(AtOrBelow(wait, 500'000), 1u);
  const auto run = T("mail", "send", JobTime::kRun);
  EXPECT_EQ(run.sum, 2'000'000u);
  EXPECT_EQ(AtOrBelow(run, 1'000'000), 0u);
  EXPECT_EQ(AtOrBelow(run, 2'500'000), 1u);
  const auto e2e = T("mail", "send", JobTime::kEndToEnd);
  EXPECT_EQ(e2e.sum, 2'300'000u);
  EXPECT_EQ(AtOrBelow(e2e, 2'500'000), 1u);
  for (JobEvent e : {JobEvent::kFailed, JobEvent::kRetried, JobEvent::kDead, JobEvent::kCancelled,
                     JobEvent::kLeaseExpired, JobEvent::kTimedOut}) {
    EXPECT_EQ(Events("mail", "send", e), 0u) << kJobEventNames[static_cast<int>(e)];
  }
}

TEST_F(JobStatsSchedulerTest, ADelayedJobWaitsFromItsRunAtNotItsCreation) {
  Enqueue("q", "k", /*delay_ms=*/10'000);
  clock_.Advance(10'000);
  sched_->Tick();      // ready now
  clock_.Advance(40);  // a worker comes 40 ms later
  const LeasedJob l = LeaseOne("q");
  EXPECT_EQ(T("q", "k", JobTime::kWait).sum, 40'000u);
  clock_.Advance(10);
  ASSERT_TRUE(sched_->Ack(l.id, l.lease.token, "null").ok());
  EXPECT_EQ(T("q", "k", JobTime::kEndToEnd).sum, 10'050'000u) << "the delay is in end to end";
}

TEST_F(JobStatsSchedulerTest, FailsRetriesAndDeadAreCountedAndEachAttemptsRunObserved) {
  Enqueue("q", "k", std::nullopt, /*attempts=*/2);
  LeasedJob l = LeaseOne("q");
  clock_.Advance(100);
  FailSpec f;
  f.retry_in_ms = 500;
  ASSERT_EQ(*sched_->Fail(l.id, l.lease.token, f), JobState::kScheduled);
  Commit();
  EXPECT_EQ(Events("q", "k", JobEvent::kFailed), 1u);
  EXPECT_EQ(Events("q", "k", JobEvent::kRetried), 1u);
  clock_.Advance(500);
  sched_->Tick();
  clock_.Advance(7);
  l = LeaseOne("q");
  // The retry waited from its backoff's end, 7 ms; the first attempt from its creation, 0 ms.
  EXPECT_EQ(T("q", "k", JobTime::kWait).sum, 7'000u);
  clock_.Advance(200);
  ASSERT_EQ(*sched_->Fail(l.id, l.lease.token, f), JobState::kDead);
  Commit();
  EXPECT_EQ(Events("q", "k", JobEvent::kFailed), 2u);
  EXPECT_EQ(Events("q", "k", JobEvent::kRetried), 1u) << "the last attempt is not retried";
  EXPECT_EQ(Events("q", "k", JobEvent::kDead), 1u);
  EXPECT_EQ(Events("q", "k", JobEvent::kLeased), 2u);
  const auto run = T("q", "k", JobTime::kRun);
  EXPECT_EQ(run.count, 2u);
  EXPECT_EQ(run.sum, 300'000u);
  const auto e2e = T("q", "k", JobTime::kEndToEnd);
  EXPECT_EQ(e2e.count, 1u);
  EXPECT_EQ(e2e.sum, 807'000u);
}

TEST_F(JobStatsSchedulerTest, LeaseExpiryAndTimeoutAreCountedApartFromFailReports) {
  Enqueue("q", "expire");
  LeasedJob l = LeaseOne("q", /*lease_ms=*/1000);
  clock_.Advance(1000);
  sched_->Tick();
  EXPECT_EQ(Events("q", "expire", JobEvent::kLeaseExpired), 1u);
  EXPECT_EQ(Events("q", "expire", JobEvent::kRetried), 1u);
  EXPECT_EQ(Events("q", "expire", JobEvent::kFailed), 0u) << "no worker reported a failure";
  EXPECT_EQ(T("q", "expire", JobTime::kRun).sum, 1'000'000u);

  Enqueue("t", "slow", std::nullopt, 3, /*timeout_ms=*/2000);
  l = LeaseOne("t");
  clock_.Advance(2000);
  sched_->Tick();
  EXPECT_EQ(Events("t", "slow", JobEvent::kTimedOut), 1u);
  EXPECT_EQ(Events("t", "slow", JobEvent::kRetried), 1u);
  EXPECT_EQ(Events("t", "slow", JobEvent::kLeaseExpired), 0u);
  EXPECT_EQ(T("t", "slow", JobTime::kRun).sum, 2'000'000u);
}

TEST_F(JobStatsSchedulerTest, CancelsAndReplaysAreCountedUnderTheirPair) {
  const JobId id = Enqueue("q", "k");
  clock_.Advance(50);
  ASSERT_TRUE(sched_->Cancel(id).ok());
  EXPECT_EQ(Events("q", "k", JobEvent::kCancelled), 1u);
  EXPECT_EQ(T("q", "k", JobTime::kEndToEnd).sum, 50'000u);
  EXPECT_EQ(T("q", "k", JobTime::kRun).count, 0u) << "it never ran";
  // Still in memory (its batch not committed): a replay is a new run at once, counted as
  // enqueued, so that enqueued = succeeded + dead + cancelled + live.
  auto replay = sched_->ReplayInCore(id, /*dead_only=*/false);
  ASSERT_TRUE(replay.has_value());
  ASSERT_TRUE(replay->ok()) << replay->status().ToString();
  EXPECT_EQ(Events("q", "k", JobEvent::kEnqueued), 2u);
  Commit();
  // Another kind in the same queue has its own label set.
  Enqueue("q", "other");
  EXPECT_EQ(Events("q", "other", JobEvent::kEnqueued), 1u);
  EXPECT_EQ(Events("q", "k", JobEvent::kCancelled), 1u);
}

TEST_F(JobStatsSchedulerTest, WithoutJobStatsNothingIsCounted) {
  SchedulerOptions o;  // job_stats null: the hooks are a branch each
  Scheduler s(clock_, rng_, o);
  EnqueueSpec spec;
  spec.queue = "q";
  spec.kind = "k";
  ASSERT_TRUE(s.Enqueue(std::move(spec)).ok());
  EXPECT_EQ(stats_.label_sets(), 0u);
}

// --- Blocked reasons and the last poll, as the gauge refresh takes them -------------------------

std::optional<Scheduler::QueueGaugeValues> GaugeOf(Scheduler& s, const std::string& queue) {
  std::optional<Scheduler::QueueGaugeValues> out;
  for (auto& v : s.TakeGaugeChanges().changed) {
    if (v.name == queue) out = v;
  }
  return out;
}

std::uint64_t Blocked(const Scheduler::QueueGaugeValues& v, const std::string& reason) {
  for (std::size_t i = 0; i < kBlockedReasonCount; ++i) {
    if (reason == kBlockedReasons[i]) return v.blocked[i];
  }
  ADD_FAILURE() << reason;
  return 0;
}

TEST_F(JobStatsSchedulerTest, GaugesCarryBlockedReasonsAndTheLastPoll) {
  Enqueue("q", "k");
  Enqueue("q", "k", /*delay_ms=*/60'000);
  auto g = GaugeOf(*sched_, "q");
  ASSERT_TRUE(g);
  EXPECT_EQ(Blocked(*g, "no_workers"), 1u) << "ready, and nobody polls";
  EXPECT_EQ(Blocked(*g, "scheduled"), 1u);
  EXPECT_EQ(g->last_poll_ms, 0) << "never polled";

  clock_.Advance(1234);
  QueueConfigPatch pause;
  pause.name = "q";
  pause.paused = true;
  ASSERT_TRUE(sched_->PutQueue(pause).ok());
  LeaseRequest req;
  req.queues = {"q"};
  req.worker_id = "w";
  EXPECT_TRUE(sched_->Lease(req).empty());  // paused: nothing handed out, but it was polled
  g = GaugeOf(*sched_, "q");
  ASSERT_TRUE(g);
  EXPECT_EQ(Blocked(*g, "paused"), 1u);
  EXPECT_EQ(Blocked(*g, "no_workers"), 0u);
  EXPECT_EQ(g->last_poll_ms, kStart + 1234);
  // Nothing changed: the next take does not list it again (O(changes), not O(queues)).
  EXPECT_FALSE(GaugeOf(*sched_, "q"));
}

// A gate that fills from another queue changes this queue's blocked reason with no change to
// this queue: the bounded re-check of the take picks it up.
TEST_F(JobStatsSchedulerTest, AGateFilledFromAnotherQueueShowsInTheNextTake) {
  flow::LimitSpec cap;
  cap.name = "one";
  cap.concurrency = 1;
  ASSERT_TRUE(sched_->PutLimit(cap).ok()) << "a limit over every job";
  Enqueue("a", "k");
  Enqueue("b", "k");
  (void)sched_->TakeGaugeChanges();
  LeaseOne("a");  // takes the only slot; queue b is untouched
  auto g = GaugeOf(*sched_, "b");
  ASSERT_TRUE(g) << "re-checked though nothing of b changed";
  EXPECT_EQ(Blocked(*g, "concurrency_capped"), 1u);
}

// --- The config key ----------------------------------------------------------------------------

Result<ConfigOutcome> LoadWith(std::vector<const char*> args) {
  args.insert(args.begin(), "server");
  return LoadServerConfig(static_cast<int>(args.size()), args.data(),
                          [](const std::string&) { return std::nullopt; });
}

TEST(JobStatsConfigTest, MaxLabelSetsDefaultsTo1000AndBadValuesAreClearErrors) {
  auto c = LoadWith({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->config.metrics_max_label_sets, 1000u);
  c = LoadWith({"--metrics-max-label-sets", "25"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.metrics_max_label_sets, 25u);
  for (const char* bad : {"0", "-1", "100001", "many", "1.5"}) {
    c = LoadWith({"--metrics-max-label-sets", bad});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().message(),
              std::string("--metrics-max-label-sets: must be an integer between 1 and 100000 "
                          "(got \"") +
                  bad + "\")");
  }
}

// --- Cost on the scheduler's hot path (docs/benchmarks.md, "Job metrics") ---------------------
// A disabled test, run by hand on a release build:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPathJobStats*'
// The hot-path loop of scheduler_hot_path.h without and with a JobStats, alternated.
TEST(SchedulerBench, DISABLED_HotPathJobStatsOffAndOn) {
  for (int round = 0; round < 3; ++round) {
    for (bool on : {false, true}) {
      ManualClock clock;
      Rng rng(1);
      JobStats stats;
      SchedulerOptions o;
      if (on) o.job_stats = &stats;
      Scheduler s(clock, rng, o);
      const double ns = bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000,
                                               [](std::uint64_t) { return std::string(); });
      std::printf("hot path, job stats %s: %.0f CPU ns per job\n", on ? "on " : "off", ns);
      EXPECT_GT(ns, 0);
    }
  }
}

}  // namespace
}  // namespace ym
