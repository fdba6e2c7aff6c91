// Broker: the threads around the scheduler — group commit, replies released only when durable,
// commit failures, store fallbacks for reads, drain. Uses the real threads with an in-memory
// store, and a gate in front of Commit() so a test can hold a batch "on its way to disk".

#include "server/broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "store/fault_store.h"
#include "store/memory_store.h"

namespace ym {
namespace {

using namespace std::chrono_literals;

// Forwards to another store, but Commit() waits while the gate is closed.
class GatedStore final : public Store {
 public:
  explicit GatedStore(Store& inner) : inner_(inner) {}
  void Close() {
    std::lock_guard lk(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until a commit is waiting at the closed gate.
  bool WaitForBlockedCommit(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return blocked_ > 0; });
  }
  Status Commit(const Batch& batch) override {
    {
      std::unique_lock lk(mu_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lk, [&] { return open_; });
      --blocked_;
    }
    return inner_.Commit(batch);
  }
  Status Recover(std::int64_t now_ms, RecoveryVisitor& v) override {
    return inner_.Recover(now_ms, v);
  }
  Result<std::optional<JobRecord>> GetJob(JobId id) override { return inner_.GetJob(id); }
  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& q) override {
    return inner_.ListJobs(q);
  }
  Result<std::vector<FinishedCount>> CountFinished() override { return inner_.CountFinished(); }
  Status Backup(const std::string& path) override { return inner_.Backup(path); }
  StoreStats Stats() override { return inner_.Stats(); }

 private:
  Store& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int blocked_ = 0;
};

template <typename T>
T Await(std::future<T>& f) {
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready) << "no answer within 10 s";
  return f.get();
}

EnqueueSpec Spec(const std::string& queue) {
  EnqueueSpec s;
  s.queue = queue;
  s.kind = "k";
  s.payload = R"({"n":1})";
  return s;
}

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.seed = 42;
    broker_ = std::make_unique<Broker>(gate_, clock_, o);
    ASSERT_TRUE(broker_->Start().ok());
  }
  void TearDown() override {
    gate_.Open();
    broker_->Stop();
  }

  std::vector<Result<EnqueueOutcome>> Enqueue(std::vector<EnqueueSpec> specs) {
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker_->Enqueue(std::move(specs), [&](auto r) { p.set_value(std::move(r)); });
    return Await(f);
  }
  std::vector<LeasedJob> Lease(const std::string& queue, std::uint32_t max = 10,
                               std::int64_t wait_ms = 0) {
    LeaseRequest req;
    req.queues = {queue};
    req.max = max;
    req.wait_ms = wait_ms;
    std::promise<Result<std::vector<LeasedJob>>> p;
    auto f = p.get_future();
    broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<LeasedJob>{};
  }
  std::pair<std::vector<Status>, std::vector<Result<JobState>>> Complete(
      std::vector<AckItem> acks, std::vector<FailItem> fails) {
    std::promise<std::pair<std::vector<Status>, std::vector<Result<JobState>>>> p;
    auto f = p.get_future();
    broker_->Complete(std::move(acks), std::move(fails), [&](auto a, auto b) {
      p.set_value({std::move(a), std::move(b)});
    });
    return Await(f);
  }
  Result<JobView> Get(JobId id) {
    std::promise<Result<JobView>> p;
    auto f = p.get_future();
    broker_->GetJob(id, [&](auto r) { p.set_value(std::move(r)); });
    return Await(f);
  }

  SystemClock clock_;
  MemoryStore memory_;
  FaultStore faults_{memory_};
  GatedStore gate_{faults_};
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerTest, EnqueueIsAnsweredOnlyAfterItsBatchIsDurable) {
  gate_.Close();
  std::promise<std::vector<Result<EnqueueOutcome>>> p;
  auto f = p.get_future();
  broker_->Enqueue({Spec("q")}, [&](auto r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(gate_.WaitForBlockedCommit(10s));
  // The commit is held at the gate: no reply yet, and the job is not dispatchable.
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);
  EXPECT_TRUE(Lease("q").empty());
  gate_.Open();
  auto r = Await(f);
  ASSERT_TRUE(r[0].ok());
  auto stored = memory_.GetJob(r[0]->id);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << "a 2xx must mean the job is in the store";
  EXPECT_EQ(Lease("q").size(), 1u);
}

TEST_F(BrokerTest, LongPollIsServedWhenTheEnqueueCommits) {
  std::promise<Result<std::vector<LeasedJob>>> p;
  auto f = p.get_future();
  LeaseRequest req;
  req.queues = {"lp"};
  req.max = 5;
  req.wait_ms = 10'000;
  broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);
  auto e = Enqueue({Spec("lp")});
  auto got = Await(f);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, e[0]->id);
}

TEST_F(BrokerTest, FailedCommitAnswersIoErrorAndReloadsStateFromTheStore) {
  auto kept = Enqueue({Spec("f")});
  ASSERT_TRUE(kept[0].ok());
  faults_.FailNextCommits(1);
  auto lost = Enqueue({Spec("f")});
  ASSERT_FALSE(lost[0].ok());
  EXPECT_EQ(lost[0].status().code(), Code::kIoError);
  // The refused job never existed; the durable one is still there and still works.
  EXPECT_FALSE(Get(kept[0]->id + 1).ok());
  auto jobs = Lease("f");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id, kept[0]->id);
  auto done = Complete({AckItem{jobs[0].id, jobs[0].lease.token, ""}}, {});
  EXPECT_TRUE(done.first[0].ok());
  auto after = Enqueue({Spec("f")});
  EXPECT_TRUE(after[0].ok()) << "the broker serves again after the reload";
}

TEST_F(BrokerTest, AFailedCommitAlsoFailsAnAckAndTheJobRunsAgain) {
  auto e = Enqueue({Spec("a")});
  auto jobs = Lease("a");
  ASSERT_EQ(jobs.size(), 1u);
  faults_.FailNextCommits(1);
  auto done = Complete({AckItem{jobs[0].id, jobs[0].lease.token, ""}}, {});
  EXPECT_EQ(done.first[0].code(), Code::kIoError);
  auto again = Lease("a");
  ASSERT_EQ(again.size(), 1u) << "an ack that was not durable must not lose the job";
  EXPECT_EQ(again[0].id, e[0]->id);
}

TEST_F(BrokerTest, TerminalJobsAreReadFromTheStore) {
  auto e = Enqueue({Spec("t")});
  auto jobs = Lease("t");
  FailItem fail{jobs[0].id, jobs[0].lease.token, FailSpec{"E", "boom", false, std::nullopt}};
  auto done = Complete({}, {fail});
  ASSERT_TRUE(done.second[0].ok());
  EXPECT_EQ(*done.second[0], JobState::kDead);
  auto v = Get(e[0]->id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->job.state, JobState::kDead);
  EXPECT_EQ(v->job.errors.size(), 1u);
}

TEST_F(BrokerTest, ListMergesLiveAndFinishedJobsInIdOrderAcrossPages) {
  std::vector<EnqueueSpec> specs(9, Spec("m"));
  auto ids = Enqueue(specs);
  auto jobs = Lease("m", 3);
  std::vector<FailItem> fails;
  for (auto& j : jobs) fails.push_back({j.id, j.lease.token, FailSpec{"E", "x", false, {}}});
  Complete({}, fails);  // three dead jobs, in the store only; six live ones in core
  std::vector<JobId> seen;
  ListQuery q;
  q.queue = "m";
  q.limit = 4;
  for (int page = 0; page < 10; ++page) {
    std::promise<Result<JobPage>> p;
    auto f = p.get_future();
    broker_->ListJobs(q, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    ASSERT_TRUE(r.ok());
    for (auto& v : r->items) seen.push_back(v.job.id);
    if (r->next_after_id == 0) break;
    q.after_id = r->next_after_id;
  }
  std::vector<JobId> want;
  for (auto& r : ids) want.push_back(r->id);
  EXPECT_EQ(seen, want);
}

TEST_F(BrokerTest, DrainRefusesNewWorkButAcceptsAcks) {
  Enqueue({Spec("d")});
  auto jobs = Lease("d");
  ASSERT_EQ(jobs.size(), 1u);
  broker_->BeginDrain();
  EXPECT_EQ(broker_->counters().active_jobs.load(), 1u) << "exact once BeginDrain returns";
  EXPECT_FALSE(broker_->ready());
  auto refused = Enqueue({Spec("d")});
  EXPECT_EQ(refused[0].status().code(), Code::kUnavailable);
  std::promise<Result<std::vector<LeasedJob>>> p;
  auto f = p.get_future();
  broker_->Lease(LeaseRequest{{"d"}, 1, 0, "w", std::nullopt},
                 [&](auto r) { p.set_value(std::move(r)); });
  EXPECT_EQ(Await(f).status().code(), Code::kUnavailable);
  auto done = Complete({AckItem{jobs[0].id, jobs[0].lease.token, ""}}, {});
  EXPECT_TRUE(done.first[0].ok());
}

TEST_F(BrokerTest, QueueCountsIncludeFinishedJobsFromTheStore) {
  Enqueue({Spec("c"), Spec("c")});
  auto jobs = Lease("c", 1);
  Complete({}, {FailItem{jobs[0].id, jobs[0].lease.token, FailSpec{"E", "x", false, {}}}});
  std::promise<Result<QueueInfo>> p;
  auto f = p.get_future();
  broker_->GetQueue("c", [&](auto r) { p.set_value(std::move(r)); });
  auto q = Await(f);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->counts.at("ready"), 1u);
  EXPECT_EQ(q->counts.at("dead"), 1u);
}

// Admission control: with the core thread held busy, new commands past max_queued_commands are
// refused at once with resource_exhausted (429 + Retry-After), acks and heartbeats still get in
// within the completion margin, and everything admitted is served once core is free again.
TEST(BrokerAdmissionTest, AFullCommandQueueRefusesNewWorkButAdmitsCompletions) {
  SystemClock clock;
  MemoryStore store;
  BrokerOptions o;
  o.seed = 7;
  o.max_queued_commands = 8;
  o.completion_margin = 2;
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());

  // One running job whose worker will heartbeat and ack while the queue is full.
  std::promise<std::vector<Result<EnqueueOutcome>>> ep;
  auto ef = ep.get_future();
  broker.Enqueue({Spec("q")}, [&](auto r) { ep.set_value(std::move(r)); });
  const JobId id = Await(ef).at(0)->id;
  std::promise<Result<std::vector<LeasedJob>>> lp;
  auto lf = lp.get_future();
  LeaseRequest req;
  req.queues = {"q"};
  broker.Lease(req, [&](auto r) { lp.set_value(std::move(r)); });
  auto leased = Await(lf);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 1u);
  const std::uint64_t token = leased->at(0).lease.token;

  // Hold the core thread: a GET of a live job answers on the core thread, and this callback
  // blocks there until released.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  broker.GetJob(id, [&, released](Result<JobView>) {
    holding.set_value();
    released.wait();
  });
  ASSERT_EQ(holding.get_future().wait_for(10s), std::future_status::ready);

  // Fill the queue to the cap with enqueues (weight 1 each).
  std::atomic<int> answered{0};
  for (int i = 0; i < 8; ++i) {
    broker.Enqueue({Spec("q")}, [&](auto r) {
      EXPECT_TRUE(r.at(0).ok()) << r.at(0).status().ToString();
      ++answered;
    });
  }
  // The next enqueue, a batch, a lease and a GET are refused at once, on this thread.
  bool refused = false;
  broker.Enqueue({Spec("q"), Spec("q")}, [&](auto r) {
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].status().code(), Code::kResourceExhausted);
    EXPECT_EQ(r[1].status().code(), Code::kResourceExhausted);
    refused = true;
  });
  EXPECT_TRUE(refused);
  refused = false;
  broker.Lease(req, [&](auto r) {
    EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
    refused = true;
  });
  EXPECT_TRUE(refused);
  refused = false;
  broker.GetJob(id, [&](auto r) {
    EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
    refused = true;
  });
  EXPECT_TRUE(refused);

  // A heartbeat and an ack of the running job still get in (the margin is 2).
  std::promise<Result<HeartbeatOutcome>> hp;
  auto hf = hp.get_future();
  broker.Heartbeat(id, token, 0, [&](auto r) { hp.set_value(std::move(r)); });
  std::promise<std::vector<Status>> ap;
  auto af = ap.get_future();
  broker.Complete(
      {AckItem{id, token, ""}}, {},
      [&](std::vector<Status> a, std::vector<Result<JobState>>) { ap.set_value(std::move(a)); });
  // Past the margin even completions are refused.
  refused = false;
  broker.Complete({AckItem{id, token, ""}, AckItem{id, token, ""}, AckItem{id, token, ""}}, {},
                  [&](std::vector<Status> a, std::vector<Result<JobState>>) {
                    ASSERT_EQ(a.size(), 3u);
                    for (const Status& s : a) EXPECT_EQ(s.code(), Code::kResourceExhausted);
                    refused = true;
                  });
  EXPECT_TRUE(refused);
  EXPECT_EQ(broker.counters().refused_busy.load(), 4u);  // one per refused command

  release.set_value();
  auto hb = Await(hf);
  EXPECT_TRUE(hb.ok()) << hb.status().ToString();
  auto acked = Await(af);
  ASSERT_EQ(acked.size(), 1u);
  EXPECT_TRUE(acked[0].ok()) << acked[0].ToString();
  for (int i = 0; i < 1000 && answered.load() < 8; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(answered.load(), 8);

  // Once core has caught up, new work is admitted again.
  std::promise<std::vector<Result<EnqueueOutcome>>> again;
  auto againf = again.get_future();
  broker.Enqueue({Spec("q")}, [&](auto r) { again.set_value(std::move(r)); });
  EXPECT_TRUE(Await(againf).at(0).ok());
  broker.Stop();
}

}  // namespace
}  // namespace ym
