// Leases limited to namespaces (LeaseRequest::namespaces, core/lease_scope.h): a
// namespace-scoped worker token leases only its namespaces' jobs, takes them in ready order,
// leaves other namespaces' lanes and the queue's rotation as they were, and as a long poll does
// not hold up the queue's other waiters. ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/lease_scope.h"
#include "core/scheduler.h"
#include "core/types.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

TEST(LeaseScope, ResolvesKnownNamesOnly) {
  const std::map<std::string, std::uint32_t> ids = {{"a", 7}, {"b", 3}};
  const auto find = [&](const std::string& n) -> std::optional<std::uint32_t> {
    auto it = ids.find(n);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
  LeaseScope s = LeaseScope::Resolve({"a", "zzz", "b", "a"}, find);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(s.Allows(7));
  EXPECT_TRUE(s.Allows(3));
  EXPECT_FALSE(s.Allows(0));
  EXPECT_TRUE(LeaseScope::Resolve({"zzz"}, find).empty());
}

TEST(LeaseScope, RunsBeforeIsTheReadyOrder) {
  EXPECT_TRUE(RunsBefore({0, 5, 9}, {1, 0, 1}));  // higher priority first
  EXPECT_TRUE(RunsBefore({0, 0, 1}, {1, 0, 2}));  // then ready earlier
  EXPECT_FALSE(RunsBefore({0, 0, 2}, {1, 0, 1}));
  EXPECT_FALSE(RunsBefore({0, 0, 1}, {1, 0, 1}));  // strict
}

class SchedulerLeaseScopeTest : public ::testing::Test {
 protected:
  SchedulerLeaseScopeTest() : clock_(kStart), rng_(5) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }

  JobId Enqueue(const std::string& ns, std::int32_t priority = 0, const std::string& queue = "q") {
    EnqueueSpec s;
    s.queue = queue;
    s.ns = ns;
    s.kind = "k";
    s.payload = "{}";
    s.priority = priority;
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  static LeaseRequest Request(std::uint32_t max, std::optional<std::vector<std::string>> namespaces,
                              std::vector<std::string> queues = {"q"}) {
    LeaseRequest req;
    req.queues = std::move(queues);
    req.max = max;
    req.worker_id = "w";
    req.namespaces = std::move(namespaces);
    return req;
  }

  std::vector<LeasedJob> Lease(std::uint32_t max, std::optional<std::vector<std::string>> ns,
                               std::vector<std::string> queues = {"q"}) {
    auto got = sched_->Lease(Request(max, std::move(ns), std::move(queues)));
    Commit();
    return got;
  }

  static std::vector<JobId> Ids(const std::vector<LeasedJob>& jobs) {
    std::vector<JobId> out;
    for (const auto& j : jobs) out.push_back(j.id);
    return out;
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerLeaseScopeTest, TakesOnlyItsNamespacesJobsAndLeavesTheOthers) {
  const JobId b1 = Enqueue("b");
  const JobId b2 = Enqueue("b");
  const JobId a1 = Enqueue("a");
  const JobId c1 = Enqueue("c");
  const JobId a2 = Enqueue("a");
  EXPECT_EQ(Ids(Lease(10, std::vector<std::string>{"a"})), (std::vector<JobId>{a1, a2}));
  EXPECT_TRUE(Lease(10, std::vector<std::string>{"a"}).empty());
  EXPECT_TRUE(Lease(10, std::vector<std::string>{"nobody"}).empty());
  // Everything else is still there for an unlimited lease, in the rotation's order.
  std::vector<JobId> rest = Ids(Lease(10, std::nullopt));
  std::sort(rest.begin(), rest.end());
  EXPECT_EQ(rest, (std::vector<JobId>{b1, b2, c1}));
}

TEST_F(SchedulerLeaseScopeTest, AcrossItsNamespacesJobsGoInReadyOrder) {
  const JobId a1 = Enqueue("a");
  const JobId b1 = Enqueue("b");
  const JobId c1 = Enqueue("c", /*priority=*/5);
  const JobId a2 = Enqueue("a");
  const JobId c2 = Enqueue("c");
  // {a, c}: c1 first (priority), then a1, a2, c2 in the order they became ready.
  EXPECT_EQ(Ids(Lease(1, std::vector<std::string>{"a", "c"})), (std::vector<JobId>{c1}));
  EXPECT_EQ(Ids(Lease(10, std::vector<std::string>{"a", "c"})), (std::vector<JobId>{a1, a2, c2}));
  EXPECT_EQ(Ids(Lease(10, std::nullopt)), (std::vector<JobId>{b1}));
}

TEST_F(SchedulerLeaseScopeTest, ALaneEmptiedOutOfTurnIsReusedAndDropped) {
  // b's lane is the rotation's front; a's lane is emptied by limited leases while still in the
  // rotation, then refilled and emptied again by unlimited ones.
  Enqueue("b");
  Enqueue("b");
  Enqueue("a");
  ASSERT_EQ(Lease(10, std::vector<std::string>{"a"}).size(), 1u);
  const JobId a2 = Enqueue("a");
  std::vector<LeasedJob> all = Lease(10, std::nullopt);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(std::count_if(all.begin(), all.end(), [&](const auto& j) { return j.id == a2; }), 1);
  EXPECT_TRUE(Lease(10, std::nullopt).empty());
  const JobId a3 = Enqueue("a");
  EXPECT_EQ(Ids(Lease(10, std::vector<std::string>{"a"})), (std::vector<JobId>{a3}));
  EXPECT_EQ(sched_->Queue("q")->counts.at("ready"), 0u);
}

TEST_F(SchedulerLeaseScopeTest, SeveralQueuesAreScopedToo) {
  const JobId x_b = Enqueue("b", 0, "x");
  const JobId y_a = Enqueue("a", 0, "y");
  EXPECT_EQ(Ids(Lease(10, std::vector<std::string>{"a"}, {"x", "y"})), (std::vector<JobId>{y_a}));
  EXPECT_EQ(Ids(Lease(10, std::nullopt, {"x", "y"})), (std::vector<JobId>{x_b}));
}

TEST_F(SchedulerLeaseScopeTest, ALimitedWaiterDoesNotHoldUpTheOthers) {
  std::vector<JobId> scoped_got, open_got;
  int scoped_calls = 0;
  // The limited waiter registers first: a job of another namespace must still reach the
  // unlimited waiter behind it.
  sched_->AddWaiter(Request(1, std::vector<std::string>{"a"}), clock_.MonoMs() + 10'000,
                    [&](std::vector<LeasedJob> jobs) {
                      ++scoped_calls;
                      for (auto& j : jobs) scoped_got.push_back(j.id);
                    });
  sched_->AddWaiter(Request(1, std::nullopt), clock_.MonoMs() + 10'000,
                    [&](std::vector<LeasedJob> jobs) {
                      for (auto& j : jobs) open_got.push_back(j.id);
                    });
  const JobId b1 = Enqueue("b");
  EXPECT_EQ(open_got, (std::vector<JobId>{b1}));
  EXPECT_EQ(scoped_calls, 0);
  const JobId a1 = Enqueue("a");
  EXPECT_EQ(scoped_got, (std::vector<JobId>{a1}));
  EXPECT_EQ(scoped_calls, 1);
}

TEST_F(SchedulerLeaseScopeTest, ALaneRefusedByALimitIsLeftForTheRotation) {
  flow::LimitSpec spec;
  spec.name = "one_a";
  spec.concurrency = 1;
  spec.match_namespace = "a";
  ASSERT_TRUE(sched_->PutLimit(spec).ok());
  Commit();
  Enqueue("b");  // b's lane is the front: a's lane is taken out of turn
  const JobId a1 = Enqueue("a");
  const JobId a2 = Enqueue("a");
  std::vector<LeasedJob> got = Lease(10, std::vector<std::string>{"a"});
  ASSERT_EQ(Ids(got), (std::vector<JobId>{a1}));  // a2 is refused by the cap
  EXPECT_TRUE(Lease(10, std::vector<std::string>{"a"}).empty());
  ASSERT_TRUE(sched_->Ack(a1, got[0].lease.token, "null").ok());
  Commit();
  EXPECT_EQ(Ids(Lease(10, std::vector<std::string>{"a"})), (std::vector<JobId>{a2}));
  EXPECT_EQ(Lease(10, std::nullopt).size(), 1u);  // b's job
}

}  // namespace
}  // namespace ym
