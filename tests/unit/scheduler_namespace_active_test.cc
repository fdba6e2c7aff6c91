// A namespace's max_active wired into the Scheduler (docs/flow-control.md, "Namespace limits"):
// at most N of its jobs active at once across all its queues; a namespace at its max_active
// leaves the rotation as a lane (other namespaces flow), waits with blocked_reason
// namespace_limit, and is woken (a long-poll answered) when one of its leases ends, however it
// ends, or when the limit is raised or deleted. ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/limit_set.h"
#include "core/flow/namespace_limits.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "scheduler_hot_path.h"
#include "server/scheduler_loader.h"
#include "store/memory_store.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

class SchedulerNamespaceActiveTest : public ::testing::Test {
 protected:
  SchedulerNamespaceActiveTest() : clock_(kStart), rng_(5) { Restart(); }

  // A process restart: a fresh scheduler loaded from what the store holds.
  void Restart() {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
    SchedulerLoader loader(*sched_);
    ASSERT_TRUE(store_.Recover(clock_.NowMs(), loader).ok());
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    ASSERT_TRUE(store_.Commit(b).ok());
    sched_->OnPurged(store_.TakePurgeOutcomes());
    sched_->OnCommitted(b.seq);
  }

  void PutNs(const std::string& name, const std::string& json) {
    auto spec = flow::NamespaceSpec::FromJson(name, json);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    ASSERT_TRUE(sched_->PutNamespace(*spec).ok());
    Commit();
  }

  JobId Add(const std::string& queue, const std::string& ns, const std::string& ckey = "") {
    EnqueueSpec s;
    s.queue = queue;
    s.ns = ns;
    s.kind = "k";
    s.payload = "{}";
    s.concurrency_key = ckey;
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : 0;
  }

  std::vector<LeasedJob> Lease(std::vector<std::string> queues, std::uint32_t max) {
    LeaseRequest req;
    req.queues = std::move(queues);
    req.max = max;
    req.worker_id = "w";
    auto got = sched_->Lease(req);
    Commit();
    return got;
  }

  static std::map<std::string, int> ByNs(const std::vector<LeasedJob>& jobs) {
    std::map<std::string, int> n;
    for (const LeasedJob& j : jobs) ++n[j.ns];
    return n;
  }

  ManualClock clock_;
  Rng rng_;
  MemoryStore store_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerNamespaceActiveTest, MaxActiveHoldsAcrossQueuesWhileOtherNamespacesFlow) {
  PutNs("t", R"({"max_active":2})");
  std::vector<JobId> t_jobs;
  for (int i = 0; i < 4; ++i) t_jobs.push_back(Add("q1", "t"));
  for (int i = 0; i < 4; ++i) t_jobs.push_back(Add("q2", "t"));
  for (int i = 0; i < 5; ++i) Add("q1", "u");
  Commit();
  auto got = Lease({"q1", "q2"}, 100);
  EXPECT_EQ(ByNs(got)["t"], 2) << "two of t across both queues";
  EXPECT_EQ(ByNs(got)["u"], 5) << "u is not held up behind t";
  EXPECT_EQ(sched_->GetNamespace("t")->active_jobs, 2u);
  // The six waiting jobs of t say why; the queues count them.
  int held = 0;
  for (JobId id : t_jobs) {
    const auto v = sched_->Get(id);
    if (v->job.state != JobState::kReady) continue;
    EXPECT_EQ(v->blocked_reason, "namespace_limit");
    EXPECT_EQ(v->blocked_until_ms, 0);
    ++held;
  }
  EXPECT_EQ(held, 6);
  EXPECT_EQ(sched_->Queue("q1")->blocked.at("namespace_limit") +
                sched_->Queue("q2")->blocked.at("namespace_limit"),
            6u);
  EXPECT_TRUE(Lease({"q1", "q2"}, 100).empty());
  // An ack of one of t's jobs lets exactly one more of t start.
  const LeasedJob* first_t = nullptr;
  for (const LeasedJob& j : got) {
    if (j.ns == "t") first_t = &j;
  }
  ASSERT_NE(first_t, nullptr);
  ASSERT_TRUE(sched_->Ack(first_t->id, first_t->lease.token, "null").ok());
  Commit();
  auto more = Lease({"q2", "q1"}, 100);
  EXPECT_EQ(ByNs(more)["t"], 1);
  EXPECT_EQ(more.size(), 1u);
  EXPECT_EQ(sched_->GetNamespace("t")->active_jobs, 2u);
}

TEST_F(SchedulerNamespaceActiveTest, EveryEndOfALeaseWakesAWaitingLongPoll) {
  PutNs("t", R"({"max_active":1})");
  for (int i = 0; i < 6; ++i) Add(i % 2 ? "q1" : "q2", "t");
  Commit();
  auto got = Lease({"q1", "q2"}, 10);
  ASSERT_EQ(got.size(), 1u);
  LeasedJob current = got[0];
  std::vector<LeasedJob> served;
  bool answered = false;
  auto poll = [&] {
    answered = false;
    served.clear();
    LeaseRequest req;
    req.queues = {"q1", "q2"};
    req.max = 10;
    req.worker_id = "w2";
    sched_->AddWaiter(req, clock_.MonoMs() + 24 * 3'600'000, [&](std::vector<LeasedJob> jobs) {
      answered = true;
      served = std::move(jobs);
    });
    EXPECT_FALSE(answered) << "a namespace at its max_active answers nothing at once";
  };
  auto next = [&](const char* how) {
    Commit();
    ASSERT_TRUE(answered) << how << " did not wake the long-poll";
    ASSERT_EQ(served.size(), 1u) << how;
    current = served[0];
  };
  poll();
  ASSERT_TRUE(sched_->Ack(current.id, current.lease.token, "null").ok());
  next("an ack");
  poll();
  FailSpec f;
  f.type = "E";
  f.message = "x";
  f.retryable = true;
  ASSERT_TRUE(sched_->Fail(current.id, current.lease.token, f).ok());
  next("a fail");
  poll();
  sched_->Release(current.id, current.lease.token);
  next("a release");
  poll();
  clock_.Advance(10 * 60'000);  // past the lease (and the long-poll's own deadline is later)
  sched_->Tick();
  next("a lease expiry");
  EXPECT_EQ(sched_->GetNamespace("t")->active_jobs, 1u);
}

TEST_F(SchedulerNamespaceActiveTest, RaisingOrDeletingMaxActiveServesTheWaitingLanesAtOnce) {
  PutNs("t", R"({"max_active":1})");
  for (int i = 0; i < 5; ++i) Add("q", "t");
  Commit();
  ASSERT_EQ(Lease({"q"}, 10).size(), 1u);
  std::vector<LeasedJob> served;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 10;
  req.worker_id = "w2";
  sched_->AddWaiter(req, clock_.MonoMs() + 60'000,
                    [&](std::vector<LeasedJob> jobs) { served = std::move(jobs); });
  PutNs("t", R"({"max_active":3})");
  EXPECT_EQ(served.size(), 2u) << "raised to 3: two more at once";
  EXPECT_EQ(sched_->Queue("q")->blocked.at("namespace_limit"), 2u);
  // Lowering it below the running count revokes nothing and admits nothing.
  PutNs("t", R"({"max_active":1})");
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(sched_->GetNamespace("t")->active_jobs, 3u);
  ASSERT_TRUE(sched_->DeleteNamespace("t").ok());
  Commit();
  EXPECT_EQ(Lease({"q"}, 10).size(), 2u) << "no configuration: no max_active";
  EXPECT_EQ(sched_->Queue("q")->blocked.at("namespace_limit"), 0u);
}

TEST_F(SchedulerNamespaceActiveTest, AMaxActiveSetWhileJobsRunCountsThemAndSurvivesARestart) {
  for (int i = 0; i < 6; ++i) Add("q", "t");
  Commit();
  ASSERT_EQ(Lease({"q"}, 3).size(), 3u);
  PutNs("t", R"({"max_active":2})");
  EXPECT_TRUE(Lease({"q"}, 10).empty()) << "3 running already count";
  // A restart: the configuration is stored (JSON member, no format change) and the recovered
  // leases count toward it.
  Restart();
  EXPECT_EQ(sched_->GetNamespace("t")->spec.max_active, 2);
  EXPECT_EQ(sched_->GetNamespace("t")->active_jobs, 3u);
  EXPECT_TRUE(Lease({"q"}, 10).empty());
  EXPECT_EQ(sched_->Queue("q")->blocked.at("namespace_limit"), 3u);
}

// A namespace at its max_active with many lanes (one per key of a capped limit) costs one drop
// per lane, not a scan per dispatch: another namespace's jobs keep being leased one at a time.
TEST_F(SchedulerNamespaceActiveTest, ANamespaceAtItsMaxActiveWithManyLanesDoesNotHoldUpAnother) {
  flow::LimitSpec cap;
  cap.name = "per-key";
  cap.key = flow::LimitKeyKind::kConcurrencyKey;
  cap.concurrency = 1;
  ASSERT_TRUE(sched_->PutLimit(cap).ok());
  PutNs("t", R"({"max_active":1})");
  for (int i = 0; i < 1000; ++i) Add("q", "t", "k" + std::to_string(i));
  for (int i = 0; i < 100; ++i) Add("q", "u", "u" + std::to_string(i));
  Commit();
  int t = 0, u = 0;
  for (int i = 0; i < 101; ++i) {
    auto got = Lease({"q"}, 1);
    ASSERT_EQ(got.size(), 1u) << i;
    (got[0].ns == "t" ? t : u) += 1;
  }
  EXPECT_EQ(t, 1);
  EXPECT_EQ(u, 100);
  EXPECT_EQ(sched_->Queue("q")->blocked.at("namespace_limit"), 999u);
}

// The hot path of docs/benchmarks.md with the jobs' namespace under a max_active that never
// refuses (1000, leases of 100): the cost of the gate itself (a lookup per dispatched lane, a
// count per start and end). Run by hand:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPath*'
TEST(SchedulerBench, DISABLED_HotPathNamespaceMaxActive) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  flow::NamespaceSpec ns;
  ns.name = "default";
  ns.max_active = 1000;
  ASSERT_TRUE(s.PutNamespace(ns).ok());
  const double per_job = bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000,
                                                [](std::uint64_t) { return std::string(); });
  std::printf("hot path, namespace max_active: %.0f CPU ns per job\n", per_job);
  EXPECT_GT(per_job, 0);
}

}  // namespace
}  // namespace ym
