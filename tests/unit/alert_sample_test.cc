// GaugeSampleSource (server/alert_service.h): what the alert evaluator sees of a real Broker —
// the per-queue gauges and the job event counters summed over kinds, including queues that core
// no longer holds (their counts must stay continuous, or their past would count as new).

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "server/alert_service.h"
#include "server/broker.h"
#include "store/memory_store.h"

namespace ym {
namespace {

using namespace std::chrono_literals;

class AlertSampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.seed = 7;
    o.scheduler.retention_sweep_interval_ms = 200;  // idle queues are freed within a second
    broker_ = std::make_unique<Broker>(store_, clock_, o);
    ASSERT_TRUE(broker_->Start().ok());
  }
  void TearDown() override { broker_->Stop(); }

  void Enqueue(const std::string& queue, const std::string& kind) {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = kind;
    s.max_attempts = 5;
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    broker_->Enqueue({s}, [&](auto r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r[0].ok()) << r[0].status().ToString();
  }
  std::vector<LeasedJob> Lease(const std::string& queue, std::uint32_t max) {
    LeaseRequest req;
    req.queues = {queue};
    req.max = max;
    req.worker_id = "w";
    std::promise<Result<std::vector<LeasedJob>>> p;
    broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<LeasedJob>{};
  }
  void Complete(std::vector<AckItem> acks, std::vector<FailItem> fails) {
    std::promise<void> p;
    broker_->Complete(std::move(acks), std::move(fails), [&](auto, auto) { p.set_value(); });
    p.get_future().get();
  }
  // Samples until `ok` holds for the sample of `queue` (the gauges refresh once a second).
  alerts::QueueSample SampleUntil(const std::string& queue,
                                  const std::function<bool(const alerts::QueueSample&)>& ok) {
    GaugeSampleSource source(*broker_);
    alerts::QueueSample last;
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < end) {
      for (const alerts::QueueSample& s : source.Sample()) {
        if (s.queue == queue) last = s;
      }
      if (last.queue == queue && ok(last)) return last;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "no sample of " << queue << " as expected";
    return last;
  }

  SystemClock clock_;
  MemoryStore store_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(AlertSampleTest, CountsAreSummedOverKindsAndFailedAttemptsIncludeEveryKind) {
  Enqueue("q", "a");
  Enqueue("q", "b");
  Enqueue("q", "b");
  auto jobs = Lease("q", 3);
  ASSERT_EQ(jobs.size(), 3u);
  FailSpec fatal;
  fatal.retryable = false;
  FailSpec retry;
  retry.retry_in_ms = 60'000;
  Complete({{jobs[0].id, jobs[0].lease.token, ""}},
           {{jobs[1].id, jobs[1].lease.token, fatal}, {jobs[2].id, jobs[2].lease.token, retry}});
  const alerts::QueueSample s = SampleUntil("q", [](const alerts::QueueSample& x) {
    // The gauges (the last poll) refresh once a second; the counts are read as they are.
    return x.succeeded == 1 && x.failed == 2 && x.dead == 1 && x.last_poll_ms > 0;
  });
  EXPECT_EQ(s.ready, 0u);
  EXPECT_LE(s.last_poll_ms, SystemClock().NowMs());
}

TEST_F(AlertSampleTest, ReadyJobsShowTheirAgeAndAFreedQueueKeepsItsCounts) {
  Enqueue("waiting", "k");
  const alerts::QueueSample w = SampleUntil("waiting", [](const alerts::QueueSample& x) {
    return x.ready == 1 && x.oldest_ready_age_ms > 0;
  });
  EXPECT_EQ(w.last_poll_ms, 0) << "never polled";
  // A queue whose jobs all ended is freed by core (idle at two sweeps) and leaves the gauges; it
  // is still sampled, with its counts, so the evaluator never takes them as new.
  Enqueue("done", "k");
  auto jobs = Lease("done", 1);
  ASSERT_EQ(jobs.size(), 1u);
  Complete({{jobs[0].id, jobs[0].lease.token, ""}}, {});
  const auto end = std::chrono::steady_clock::now() + 20s;
  auto in_gauges = [&] {
    for (const QueueGauge& g : broker_->QueueGauges()) {
      if (g.queue == "done") return true;
    }
    return false;
  };
  while (in_gauges() && std::chrono::steady_clock::now() < end) {
    // Any command wakes core, whose loop frees the queue at its sweeps.
    Enqueue("waiting", "k");
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(in_gauges()) << "core never freed the idle queue";
  const alerts::QueueSample d =
      SampleUntil("done", [](const alerts::QueueSample& x) { return x.succeeded == 1; });
  EXPECT_EQ(d.ready, 0u);
}

}  // namespace
}  // namespace ym
