// The Broker's queue operations with the in-memory store and an injected clock: the listing
// merges core's queues with those only the store knows, page by page; writes to a queue that
// does not exist are kQueueNotFound unless asked to create it; and the per-queue gauges follow
// changes incrementally, with the oldest-ready age growing while nothing changes.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "server/broker.h"
#include "store/memory_store.h"

namespace ym {
namespace {

using namespace std::chrono_literals;

template <typename T>
T Await(std::future<T>& f) {
  EXPECT_EQ(f.wait_for(30s), std::future_status::ready);
  return f.get();
}

template <typename T, typename Call>
T Sync(Call call) {
  std::promise<T> p;
  auto f = p.get_future();
  call([&](T r) { p.set_value(std::move(r)); });
  return Await(f);
}

class BrokerQueuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.seed = 5;
    broker_ = std::make_unique<Broker>(memory_, clock_, o);
    ASSERT_TRUE(broker_->Start().ok());
  }
  void TearDown() override { broker_->Stop(); }

  void Enqueue(const std::string& queue) {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = "k";
    auto r =
        Sync<std::vector<Result<EnqueueOutcome>>>([&](auto done) { broker_->Enqueue({s}, done); });
    ASSERT_EQ(r.size(), 1u);
    ASSERT_TRUE(r[0].ok()) << r[0].status().ToString();
  }
  Result<QueueInfo> Pause(const std::string& queue, bool create) {
    return Sync<Result<QueueInfo>>(
        [&](auto done) { broker_->SetPaused(queue, true, create, done); });
  }
  Result<QueuePage> List(const std::string& after, std::uint32_t limit) {
    return Sync<Result<QueuePage>>([&](auto done) { broker_->ListQueues(after, limit, done); });
  }
  // Waits (bounded) until the gauges satisfy `ok`; each try wakes core with a read.
  bool GaugesReach(const std::function<bool(const std::vector<QueueGauge>&)>& ok) {
    for (int i = 0; i < 2000; ++i) {
      if (ok(broker_->QueueGauges())) return true;
      (void)Sync<Result<QueueInfo>>([&](auto done) { broker_->GetQueue("anything", done); });
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
  static const QueueGauge* Find(const std::vector<QueueGauge>& g, const std::string& name) {
    for (const auto& x : g) {
      if (x.queue == name) return &x;
    }
    return nullptr;
  }

  ManualClock clock_;
  MemoryStore memory_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerQueuesTest, WritesToAQueueThatDoesNotExistAreRefusedUnlessCreated) {
  auto r = Pause("typo", /*create=*/false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kQueueNotFound);
  QueueConfigPatch patch;
  patch.name = "typo";
  patch.max_attempts = 3;
  r = Sync<Result<QueueInfo>>([&](auto done) { broker_->PutQueue(patch, false, done); });
  EXPECT_EQ(r.status().code(), Code::kQueueNotFound);
  auto page = List("", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  r = Pause("typo", /*create=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->config.paused);
  Enqueue("live");
  EXPECT_TRUE(Pause("live", false).ok());
}

TEST_F(BrokerQueuesTest, AQueueOnlyTheStoreKnowsIsListedAndCanBeConfigured) {
  // Finished jobs of queues core does not hold (as after a restart): straight into the store.
  Batch b;
  for (const char* q : {"b-done", "d-done"}) {
    JobRecord j;
    j.id = q[0] == 'b' ? 1000 : 1001;
    j.queue = q;
    j.kind = "k";
    j.state = JobState::kDead;
    j.finished_at_ms = clock_.NowMs();
    b.mutations.push_back(InsertJob{j});
  }
  ASSERT_TRUE(memory_.Commit(b).ok());
  Enqueue("a-live");
  Enqueue("c-live");
  std::vector<std::string> names;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = List(after, 1);
    ASSERT_TRUE(page.ok());
    ASSERT_LE(page->items.size(), 1u);
    for (const auto& q : page->items) names.push_back(q.config.name);
    if (page->next_after.empty()) break;
    after = page->next_after;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a-live", "b-done", "c-live", "d-done"}));
  auto all = List("", 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 4u);
  EXPECT_TRUE(all->next_after.empty());
  EXPECT_EQ(all->items[1].counts.at("dead"), 1u);
  EXPECT_EQ(all->items[0].counts.at("ready"), 1u);
  auto paused = Pause("d-done", /*create=*/false);
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  EXPECT_EQ(paused->counts.at("dead"), 1u);  // the reply carries the store's counts too
}

TEST_F(BrokerQueuesTest, GaugesFollowChangesAndTheOldestReadyAgeGrowsAlone) {
  Enqueue("g");
  clock_.Advance(1001);  // the refresh runs about once a second (of the injected clock)
  ASSERT_TRUE(GaugesReach([](const auto& g) {
    const QueueGauge* x = Find(g, "g");
    return x != nullptr && x->ready == 1;
  }));
  // Nothing changes for 5 s: the age still grows (the refresh took nothing for "g").
  clock_.Advance(5000);
  ASSERT_TRUE(GaugesReach([](const auto& g) {
    const QueueGauge* x = Find(g, "g");
    return x != nullptr && x->oldest_ready_age_ms >= 6001;
  }));
  ASSERT_TRUE(Pause("p", /*create=*/true).ok());
  clock_.Advance(1001);
  ASSERT_TRUE(GaugesReach([](const auto& g) {
    const QueueGauge* x = Find(g, "p");
    return x != nullptr && x->paused;
  }));
  LeaseRequest req;
  req.queues = {"g"};
  req.worker_id = "w";
  auto leased = Sync<Result<std::vector<LeasedJob>>>([&](auto done) { broker_->Lease(req, done); });
  ASSERT_TRUE(leased.ok() && leased->size() == 1u);
  clock_.Advance(1001);
  ASSERT_TRUE(GaugesReach([](const auto& g) {
    const QueueGauge* x = Find(g, "g");
    return x != nullptr && x->ready == 0 && x->active == 1 && x->oldest_ready_age_ms == 0;
  }));
}

}  // namespace
}  // namespace ym
