// Broker: the threads around the scheduler — group commit, replies released only when durable,
// commit failures, store fallbacks for reads, drain. Uses the real threads with an in-memory
// store, and a gate in front of Commit() so a test can hold a batch "on its way to disk".

#include "server/broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/flow/key_groups.h"
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
  std::vector<PurgeOutcome> TakePurgeOutcomes() override { return inner_.TakePurgeOutcomes(); }
  Status Recover(std::int64_t now_ms, RecoveryVisitor& v) override {
    return inner_.Recover(now_ms, v);
  }
  // The next GetJob or ListJobs reads its answer, then waits until ReleaseHeldRead(): its
  // caller gets a record that was current when it was read, late.
  void HoldNextRead() {
    std::lock_guard lk(mu_);
    hold_next_ = true;
    release_ = false;
  }
  bool WaitForHeldRead(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return held_ > 0; });
  }
  void ReleaseHeldRead() {
    {
      std::lock_guard lk(mu_);
      release_ = true;
    }
    cv_.notify_all();
  }
  Result<std::optional<JobRecord>> GetJob(JobId id) override {
    auto r = inner_.GetJob(id);
    MaybeHold();
    return r;
  }
  Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                const std::string& key,
                                                                std::int64_t now_ms) override {
    key_reads.fetch_add(1);
    return inner_.GetIdempotencyKey(ns, key, now_ms);
  }
  Result<std::vector<IdempotencyKeyRecord>> NamespaceKeys(const std::string& ns,
                                                          const std::string& after_key,
                                                          JobId max_job_id,
                                                          std::uint32_t limit) override {
    return inner_.NamespaceKeys(ns, after_key, max_job_id, limit);
  }

  std::atomic<int> key_reads{0};
  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& q) override {
    auto r = inner_.ListJobs(q);
    MaybeHold();
    return r;
  }
  Result<FinishedPage> SearchFinished(const FinishedSearch& q) override {
    auto r = inner_.SearchFinished(q);
    MaybeHold();
    return r;
  }
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) override {
    return inner_.CountFinished(query);
  }
  Status Backup(const std::string& path) override { return inner_.Backup(path); }
  StoreStats Stats() override { return inner_.Stats(); }
  Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after_seq,
                                              std::uint32_t limit) override {
    return inner_.ReadAudit(after_seq, limit);
  }
  audit::Head AuditHead() override { return inner_.AuditHead(); }

 private:
  void MaybeHold() {
    std::unique_lock lk(mu_);
    if (!hold_next_) return;
    hold_next_ = false;
    ++held_;
    cv_.notify_all();
    cv_.wait(lk, [&] { return release_; });
    --held_;
  }

  Store& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int blocked_ = 0;
  bool hold_next_ = false;
  bool release_ = false;
  int held_ = 0;
};

template <typename T>
T Await(std::future<T>& f) {
  // Generous: the suite also runs under ASan on a loaded 2-core machine (docs/testing.md).
  EXPECT_EQ(f.wait_for(30s), std::future_status::ready) << "no answer within 30 s";
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
    // Lease replies wait for their commit (the default, spelled out: a test that arms a fault
    // after a lease relies on the lease being durable).
    o.lease_reply_after_commit = true;
    broker_ = std::make_unique<Broker>(gate_, clock_, o);
    ASSERT_TRUE(broker_->Start().ok());
  }
  void TearDown() override {
    gate_.Open();
    gate_.ReleaseHeldRead();
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

  // Waits (bounded) until the broker leaves read-only mode.
  bool WaitStoreAvailable(std::chrono::milliseconds timeout = 10s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!broker_->store_available()) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
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
  ASSERT_TRUE(gate_.WaitForBlockedCommit(30s));
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

TEST_F(BrokerTest, FailedCommitAnswersStoreUnavailableAndReloadsStateFromTheStore) {
  auto kept = Enqueue({Spec("f")});
  ASSERT_TRUE(kept[0].ok());
  faults_.FailNextCommits(1);
  auto lost = Enqueue({Spec("f")});
  ASSERT_FALSE(lost[0].ok());
  EXPECT_EQ(lost[0].status().code(), Code::kStoreUnavailable);
  // One failure, then the first probe succeeds: the broker resumes by itself.
  ASSERT_TRUE(WaitStoreAvailable());
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

// The job metrics (core/job_stats.h) belong to the broker, not to the scheduler a failed commit
// replaces: the counts go on from where they were. (The refused enqueue was counted when core
// took it, before its commit failed: docs/operations.md says so.)
TEST_F(BrokerTest, JobMetricsKeepCountingAcrossTheReloadAfterAFailedCommit) {
  auto enqueued = [&] {
    std::uint64_t n = 0;
    broker_->job_stats().ForEach([&](const JobStats::LabelSet& set) {
      if (set.queue == "jm" && set.kind == "k") {
        n = set.events[static_cast<std::size_t>(JobEvent::kEnqueued)].load();
      }
    });
    return n;
  };
  ASSERT_TRUE(Enqueue({Spec("jm")})[0].ok());
  EXPECT_EQ(enqueued(), 1u);
  faults_.FailNextCommits(1);
  ASSERT_FALSE(Enqueue({Spec("jm")})[0].ok());
  ASSERT_TRUE(WaitStoreAvailable());
  ASSERT_TRUE(Enqueue({Spec("jm")})[0].ok());
  EXPECT_EQ(enqueued(), 3u) << "not reset by the reload";
  EXPECT_EQ(broker_->job_stats().label_sets(), 1u) << "the reloaded job found its label set";
}

// A singleton refusal observed a job whose enqueue was not durable yet: when that commit fails,
// the refusal is answered with the commit's error too (the job it named never existed), and
// after the reload the key is free again.
TEST_F(BrokerTest, ASingletonRefusalOfAJobWhoseCommitFailedAnswersTheCommitError) {
  std::promise<Result<flow::LimitInfo>> p;
  auto f = p.get_future();
  broker_->PutLimit(*flow::LimitSpec::FromJson("one", R"({"singleton":"refuse"})"),
                    [&](Result<flow::LimitInfo> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(Await(f).ok());
  faults_.FailNextCommits(1);
  auto both = Enqueue({Spec("s"), Spec("s")});  // one core task: the second sees the first
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].status().code(), Code::kStoreUnavailable);
  EXPECT_EQ(both[1].status().code(), Code::kStoreUnavailable);
  ASSERT_TRUE(WaitStoreAvailable());
  auto again = Enqueue({Spec("s"), Spec("s")});
  ASSERT_TRUE(again[0].ok()) << again[0].status().ToString();
  EXPECT_EQ(again[1].status().code(), Code::kSingletonConflict);
  EXPECT_EQ(flow::SingletonHolder(again[1].status()), std::optional<JobId>(again[0]->id));
}

TEST_F(BrokerTest, AFailedCommitAlsoFailsAnAckAndTheLeaseIsKept) {
  auto e = Enqueue({Spec("a")});
  auto jobs = Lease("a");
  ASSERT_EQ(jobs.size(), 1u);
  faults_.FailNextCommits(1);
  auto done = Complete({AckItem{jobs[0].id, jobs[0].lease.token, ""}}, {});
  EXPECT_EQ(done.first[0].code(), Code::kStoreUnavailable);
  ASSERT_TRUE(WaitStoreAvailable());
  // The ack was not durable, so the job is not lost; its lease was, so the job is not handed to
  // another worker either: it is still active under the same token, and the retried ack works.
  auto v = Get(e[0]->id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->job.state, JobState::kActive);
  ASSERT_TRUE(v->lease.has_value());
  EXPECT_EQ(v->lease->token, jobs[0].lease.token);
  EXPECT_TRUE(Lease("a").empty()) << "a durably leased job must not be dispatched twice";
  auto retried = Complete({AckItem{jobs[0].id, jobs[0].lease.token, ""}}, {});
  EXPECT_TRUE(retried.first[0].ok()) << retried.first[0].ToString();
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
  q.filter.queue = "m";
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
  broker_->Lease(LeaseRequest{{"d"}, 1, 0, "w", std::nullopt, std::nullopt},
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
  broker.Heartbeat(id, token, 0, std::nullopt, [&](auto r) { hp.set_value(std::move(r)); });
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

// Guarantee 2 for every write, not only enqueue: with the commit held at the gate, no write is
// answered, and its effect is in the store once it is.
class BrokerWriteDurabilityTest : public BrokerTest {
 protected:
  // Starts `write` with the gate closed, checks that it is not answered while its batch waits at
  // the gate, then opens the gate and returns once it was answered.
  template <typename T>
  T HeldUntilDurable(const std::function<void(std::function<void(T)>)>& write) {
    gate_.Close();
    std::promise<T> p;
    auto f = p.get_future();
    write([&](T r) { p.set_value(std::move(r)); });
    EXPECT_TRUE(gate_.WaitForBlockedCommit(30s)) << "the write produced no commit";
    EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout)
        << "a write was answered before its batch was durable";
    gate_.Open();
    return Await(f);
  }
  JobRecord Stored(JobId id) {
    auto r = memory_.GetJob(id);
    EXPECT_TRUE(r.ok() && r->has_value()) << "job " << id << " is not in the store";
    return r.ok() && r->has_value() ? **r : JobRecord{};
  }
  JobId DeadJob(const std::string& queue) {
    auto e = Enqueue({Spec(queue)});
    auto jobs = Lease(queue);
    EXPECT_EQ(jobs.size(), 1u);
    auto done = Complete(
        {}, {FailItem{jobs[0].id, jobs[0].lease.token, FailSpec{"E", "x", false, std::nullopt}}});
    EXPECT_TRUE(done.second[0].ok());
    return e[0]->id;
  }
};

TEST_F(BrokerWriteDurabilityTest, AckAndFailAreAnsweredOnlyAfterTheirBatchIsDurable) {
  Enqueue({Spec("w"), Spec("w")});
  auto jobs = Lease("w", 2);
  ASSERT_EQ(jobs.size(), 2u);
  using Out = std::pair<std::vector<Status>, std::vector<Result<JobState>>>;
  auto out = HeldUntilDurable<Out>([&](std::function<void(Out)> done) {
    broker_->Complete(
        {AckItem{jobs[0].id, jobs[0].lease.token, "{\"ok\":1}"}},
        {FailItem{jobs[1].id, jobs[1].lease.token, FailSpec{"E", "no", false, std::nullopt}}},
        [done](auto a, auto b) {
          done(Out{std::move(a), std::move(b)});
        });
  });
  ASSERT_TRUE(out.first[0].ok());
  ASSERT_TRUE(out.second[0].ok());
  // The default retention keeps a succeeded job, with its result, as durable as the ack.
  const JobRecord acked = Stored(jobs[0].id);
  EXPECT_EQ(acked.state, JobState::kSucceeded);
  EXPECT_EQ(acked.result, "{\"ok\":1}");
  EXPECT_EQ(Stored(jobs[1].id).state, JobState::kDead);
}

TEST_F(BrokerWriteDurabilityTest, CancelIsAnsweredOnlyAfterItsBatchIsDurable) {
  auto ready = Enqueue({Spec("c")});
  auto v =
      HeldUntilDurable<Result<JobView>>([&](auto done) { broker_->Cancel(ready[0]->id, done); });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(Stored(ready[0]->id).state, JobState::kCancelled);
  // An active job: the flag is what is written.
  Enqueue({Spec("c")});
  auto jobs = Lease("c");
  ASSERT_EQ(jobs.size(), 1u);
  auto flagged =
      HeldUntilDurable<Result<JobView>>([&](auto done) { broker_->Cancel(jobs[0].id, done); });
  ASSERT_TRUE(flagged.ok()) << flagged.status().ToString();
  EXPECT_TRUE(Stored(jobs[0].id).cancel_requested);
}

TEST_F(BrokerWriteDurabilityTest, ACancelWatchHearsOfACancelOnlyOnceItIsDurable) {
  Enqueue({Spec("cw")});
  LeaseRequest req;
  req.queues = {"cw"};
  req.max = 1;
  req.worker_id = "w1";
  std::promise<Result<std::vector<LeasedJob>>> lp;
  auto lf = lp.get_future();
  broker_->Lease(req, [&](auto r) { lp.set_value(std::move(r)); });
  auto jobs = Await(lf);
  ASSERT_TRUE(jobs.ok() && jobs->size() == 1u);
  const JobId id = (*jobs)[0].id;
  // Commands reach core in order: the watch is registered before the cancel runs.
  std::promise<Result<std::vector<JobId>>> wp;
  auto wf = wp.get_future();
  broker_->WatchCancels("w1", {}, 30'000, [&](auto r) { wp.set_value(std::move(r)); });
  gate_.Close();
  std::promise<Result<JobView>> cp;
  auto cf = cp.get_future();
  broker_->Cancel(id, [&](auto r) { cp.set_value(std::move(r)); });
  ASSERT_TRUE(gate_.WaitForBlockedCommit(30s));
  EXPECT_EQ(wf.wait_for(100ms), std::future_status::timeout)
      << "the watch heard of a cancel that was not durable yet";
  gate_.Open();
  auto got = Await(wf);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::vector<JobId>{id});
  EXPECT_TRUE(Await(cf).ok());
  EXPECT_TRUE(Stored(id).cancel_requested);
  // With the cancel known, a watch with wait_ms 0 is answered at once with the same set.
  std::promise<Result<std::vector<JobId>>> again;
  auto af = again.get_future();
  broker_->WatchCancels("w1", {id}, 0, [&](auto r) { again.set_value(std::move(r)); });
  auto now = Await(af);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, std::vector<JobId>{id});
}

TEST_F(BrokerWriteDurabilityTest, ReplayIsAnsweredOnlyAfterItsBatchIsDurable) {
  const JobId id = DeadJob("r");
  auto v = HeldUntilDurable<Result<JobView>>([&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const JobRecord rec = Stored(id);
  EXPECT_FALSE(IsTerminal(rec.state));
  EXPECT_EQ(rec.runs, 2);
}

TEST_F(BrokerWriteDurabilityTest, BulkReplayIsAnsweredOnlyAfterItsBatchIsDurable) {
  const JobId a = DeadJob("b");
  const JobId b = DeadJob("b");
  auto n = HeldUntilDurable<Result<std::uint64_t>>(
      [&](auto done) { broker_->ReplayDead("b", {}, 100, done); });
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_FALSE(IsTerminal(Stored(a).state));
  EXPECT_FALSE(IsTerminal(Stored(b).state));
}

TEST_F(BrokerWriteDurabilityTest, QueueConfigAndPauseAreAnsweredOnlyAfterTheyAreDurable) {
  QueueConfigPatch patch;
  patch.name = "cfg";
  patch.max_attempts = 7;
  auto q = HeldUntilDurable<Result<QueueInfo>>(
      [&](auto done) { broker_->PutQueue(patch, /*create=*/true, done); });
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto paused = HeldUntilDurable<Result<QueueInfo>>(
      [&](auto done) { broker_->SetPaused("cfg", true, /*create=*/true, done); });
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  // What the store hands back at the next start is the acknowledged configuration.
  struct Configs final : RecoveryVisitor {
    void OnNextId(JobId) override {}
    void OnQueue(const QueueConfig& c) override { seen.push_back(c); }
    void OnIdempotencyKey(const IdempotencyKeyRecord&) override {}
    void OnLiveJob(JobRecord&&) override {}
    std::vector<QueueConfig> seen;
  } configs;
  ASSERT_TRUE(memory_.Recover(clock_.NowMs(), configs).ok());
  ASSERT_EQ(configs.seen.size(), 1u);
  EXPECT_EQ(configs.seen[0].name, "cfg");
  EXPECT_EQ(configs.seen[0].max_attempts, 7);
  EXPECT_TRUE(configs.seen[0].paused);
}

// --- Replay and cancel are decided against current state (issue 7, items 2 and 3) -------------
//
// The store gate holds a replay's (or cancel's) read after it read the row, so its record comes
// back to core late, after the job changed. Each of these failed on the code that trusted the
// record read on the reader thread.
class BrokerRaceTest : public BrokerWriteDurabilityTest {
 protected:
  // Configures `queue` to keep its finished jobs for an hour (every state).
  void KeepFinishedJobs(const std::string& queue) {
    QueueConfigPatch keep;
    keep.name = queue;
    keep.retention = Retention{3'600'000, 3'600'000, 3'600'000};
    std::promise<Result<QueueInfo>> qp;
    auto qf = qp.get_future();
    broker_->PutQueue(keep, /*create=*/true, [&](auto r) { qp.set_value(std::move(r)); });
    ASSERT_TRUE(Await(qf).ok());
  }

  template <typename T>
  using Callback = Broker::Callback<T>;

  Result<JobView> Call(const std::function<void(Callback<JobView>)>& start) {
    std::promise<Result<JobView>> p;
    auto f = p.get_future();
    start([&](Result<JobView> r) { p.set_value(std::move(r)); });
    return Await(f);
  }

  // Starts `start` with its store read held after reading; returns the future of its answer.
  template <typename T>
  std::future<Result<T>> StartHeld(std::promise<Result<T>>& p,
                                   const std::function<void(Callback<T>)>& start) {
    gate_.HoldNextRead();
    start([&p](Result<T> r) { p.set_value(std::move(r)); });
    EXPECT_TRUE(gate_.WaitForHeldRead(10s)) << "the read never reached the store";
    return p.get_future();
  }
  // Leases `id` from `queue` and acks it.
  void RunAndAck(const std::string& queue, JobId id) {
    auto jobs = Lease(queue);
    ASSERT_EQ(jobs.size(), 1u);
    ASSERT_EQ(jobs[0].id, id);
    auto done = Complete({AckItem{id, jobs[0].lease.token, ""}}, {});
    ASSERT_TRUE(done.first[0].ok()) << done.first[0].ToString();
  }
  bool InStore(JobId id) {
    auto r = memory_.GetJob(id);
    return r.ok() && r->has_value();
  }
};

TEST_F(BrokerRaceTest, ASecondReplayOfAJobAckedMeanwhileDoesNotRunItAgain) {
  // A queue that deletes succeeded jobs with their ack (the kept case is the next test).
  QueueConfigPatch drop;
  drop.name = "r2";
  drop.retention = Retention{};
  drop.retention->succeeded_ms = 0;
  std::promise<Result<QueueInfo>> qp;
  auto qf = qp.get_future();
  broker_->PutQueue(drop, /*create=*/true, [&](auto r) { qp.set_value(std::move(r)); });
  ASSERT_TRUE(Await(qf).ok());
  const JobId id = DeadJob("r2");
  std::promise<Result<JobView>> slow;
  auto late = StartHeld<JobView>(slow, [&](auto done) { broker_->Replay(id, done); });
  // Meanwhile the first replay wins, and the job runs and is acked (its row is deleted).
  auto first = Call([&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  RunAndAck("r2", id);
  ASSERT_FALSE(InStore(id));
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_FALSE(r.ok()) << "a job acked after the replay's read was replayed again";
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  EXPECT_TRUE(Lease("r2").empty()) << "an acked job ran again";
  EXPECT_FALSE(InStore(id));
}

TEST_F(BrokerRaceTest, AReplayThatCrossedASucceededRunNeverTurnsTheRowBackToReady) {
  ASSERT_NO_FATAL_FAILURE(KeepFinishedJobs("r3"));
  const JobId id = DeadJob("r3");
  std::promise<Result<JobView>> slow;
  auto late = StartHeld<JobView>(slow, [&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(Call([&](auto done) { broker_->Replay(id, done); }).ok());
  RunAndAck("r3", id);
  ASSERT_EQ(Stored(id).state, JobState::kSucceeded);
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidState) << r.status().ToString();
  EXPECT_NE(r.status().message().find("succeeded"), std::string::npos) << r.status().message();
  EXPECT_EQ(Stored(id).state, JobState::kSucceeded) << "terminal states never change";
  EXPECT_TRUE(Lease("r3").empty());
}

TEST_F(BrokerRaceTest, ABulkReplayRetriedByItsClientReplaysEachJobOnce) {
  const JobId id = DeadJob("r4");
  std::promise<Result<std::uint64_t>> slow;
  auto late =
      StartHeld<std::uint64_t>(slow, [&](auto done) { broker_->ReplayDead("", {id}, 1000, done); });
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  broker_->ReplayDead("", {id}, 1000, [&](auto r) { p.set_value(std::move(r)); });
  auto first = Await(f);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 1u);
  RunAndAck("r4", id);
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0u) << "the retried request replayed a job that had been acked";
  EXPECT_TRUE(Lease("r4").empty());
}

TEST_F(BrokerRaceTest, ACancelWhoseReadCrossedAReplayCancelsTheNewRun) {
  auto e = Enqueue({Spec("c2")});
  const JobId id = e[0]->id;
  ASSERT_TRUE(Call([&](auto done) { broker_->Cancel(id, done); }).ok());
  ASSERT_EQ(Stored(id).state, JobState::kCancelled);
  std::promise<Result<JobView>> slow;
  auto late = StartHeld<JobView>(slow, [&](auto done) { broker_->Cancel(id, done); });
  auto replayed = Call([&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->job.state, JobState::kCancelled);
  // The 2xx cancel must hold for what is there now: the new run.
  EXPECT_TRUE(Lease("c2").empty()) << "a job answered cancelled was dispatched";
  auto now = Get(id);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->job.state, JobState::kCancelled);
  EXPECT_EQ(Stored(id).state, JobState::kCancelled);
}

TEST_F(BrokerRaceTest, AReleasedLeaseWhoseCancelWasAcceptedEndsCancelled) {
  auto e = Enqueue({Spec("rel")});
  auto jobs = Lease("rel");
  ASSERT_EQ(jobs.size(), 1u);
  auto flagged = Call([&](auto done) { broker_->Cancel(e[0]->id, done); });
  ASSERT_TRUE(flagged.ok());
  EXPECT_TRUE(flagged->job.cancel_requested);
  // The lease reply never reached its worker (client gone): the lease is handed back.
  broker_->Release({{jobs[0].id, jobs[0].lease.token}});
  auto v = Get(e[0]->id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->job.state, JobState::kCancelled);
  EXPECT_TRUE(Lease("rel").empty()) << "a job whose cancel was answered 2xx ran again";
}

TEST_F(BrokerRaceTest, ReplayAnswersByWhatTheJobIsNow) {
  EXPECT_EQ(Call([&](auto done) { broker_->Replay(987654, done); }).status().code(),
            Code::kNotFound);
  auto e = Enqueue({Spec("s")});
  auto live = Call([&](auto done) { broker_->Replay(e[0]->id, done); });
  EXPECT_EQ(live.status().code(), Code::kInvalidState);
  EXPECT_NE(live.status().message().find("ready"), std::string::npos);
}

TEST_F(BrokerRaceTest, BulkReplayByQueueWorksInChunksAndHonoursItsLimit) {
  constexpr int kJobs = 230;  // more than two chunks
  std::vector<EnqueueSpec> specs(kJobs, Spec("bulk"));
  ASSERT_EQ(Enqueue(specs).size(), static_cast<std::size_t>(kJobs));
  auto jobs = Lease("bulk", 1000);
  ASSERT_EQ(jobs.size(), static_cast<std::size_t>(kJobs));
  std::vector<FailItem> fails;
  for (auto& j : jobs) fails.push_back({j.id, j.lease.token, FailSpec{"E", "x", false, {}}});
  Complete({}, fails);
  auto replay = [&](std::uint32_t limit) {
    std::promise<Result<std::uint64_t>> p;
    auto f = p.get_future();
    broker_->ReplayDead("bulk", {}, limit, [&](auto r) { p.set_value(std::move(r)); });
    return Await(f);
  };
  auto some = replay(120);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some, 120u);
  auto rest = replay(1000);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, static_cast<std::uint64_t>(kJobs - 120));
  auto none = replay(1000);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(Lease("bulk", 1000).size(), static_cast<std::size_t>(kJobs));
}

// A bulk delete listed a dead row; before it was decided, a single replay made the job live.
// The delete must skip it (a live job is never deleted), not remove the row under the new run.
TEST_F(BrokerRaceTest, ABulkDeleteThatCrossedAReplayNeverDeletesTheLiveJob) {
  ASSERT_NO_FATAL_FAILURE(KeepFinishedJobs("bd"));
  const JobId id = DeadJob("bd");
  BulkRequest req;
  req.action = BulkAction::kDelete;
  JobFilter f;
  f.queue = "bd";
  req.filter = *NarrowBulkFilter(BulkAction::kDelete, f);
  std::promise<Result<BulkOutcome>> slow;
  auto late = StartHeld<BulkOutcome>(slow, [&](auto done) { broker_->Bulk(req, done); });
  auto replayed = Call([&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->matched, 1u);
  EXPECT_EQ(r->applied, 0u);
  EXPECT_EQ(r->skipped, 1u);
  ASSERT_TRUE(InStore(id)) << "the live job's row was deleted";
  EXPECT_EQ(Stored(id).state, JobState::kReady);
  EXPECT_EQ(Lease("bd").size(), 1u) << "the new run is still dispatched";
}

// A drain that begins while a bulk replay is under way stops it between two steps: the answer
// is the counts so far and the cursor to resume from; a new one is refused.
TEST_F(BrokerRaceTest, ABulkReplayStoppedByADrainAnswersTheCountsSoFarAndItsCursor) {
  constexpr int kJobs = 130;  // more than one listing step of 100
  std::vector<EnqueueSpec> specs(kJobs, Spec("bdr"));
  ASSERT_EQ(Enqueue(specs).size(), static_cast<std::size_t>(kJobs));
  auto jobs = Lease("bdr", 1000);
  ASSERT_EQ(jobs.size(), static_cast<std::size_t>(kJobs));
  std::vector<FailItem> fails;
  for (auto& j : jobs) fails.push_back({j.id, j.lease.token, FailSpec{"E", "x", false, {}}});
  Complete({}, fails);
  BulkRequest req;
  req.action = BulkAction::kReplay;
  JobFilter f;
  f.queue = "bdr";
  req.filter = *NarrowBulkFilter(BulkAction::kReplay, f);
  std::promise<Result<BulkOutcome>> slow;
  auto late = StartHeld<BulkOutcome>(slow, [&](auto done) { broker_->Bulk(req, done); });
  broker_->BeginDrain();
  gate_.ReleaseHeldRead();
  auto r = Await(late);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->matched, 100u) << "the step under way finishes; the next one does not start";
  EXPECT_EQ(r->applied, 100u);
  ASSERT_TRUE(r->next_after_id.has_value());
  std::vector<JobId> ids;
  for (auto& j : jobs) ids.push_back(j.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(*r->next_after_id, ids[99]);
  std::promise<Result<BulkOutcome>> p;
  auto again = p.get_future();
  broker_->Bulk(req, [&](auto r2) { p.set_value(std::move(r2)); });
  EXPECT_EQ(Await(again).status().code(), Code::kUnavailable);
  EXPECT_EQ(Stored(ids[100]).state, JobState::kDead) << "nothing past the cursor was replayed";
}

TEST_F(BrokerRaceTest, ReplaysDuringDrainAreRefused) {
  const JobId id = DeadJob("dr");
  broker_->BeginDrain();
  auto one = Call([&](auto done) { broker_->Replay(id, done); });
  EXPECT_EQ(one.status().code(), Code::kUnavailable) << one.status().ToString();
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  broker_->ReplayDead("dr", {}, 100, [&](auto r) { p.set_value(std::move(r)); });
  EXPECT_EQ(Await(f).status().code(), Code::kUnavailable);
  EXPECT_EQ(Stored(id).state, JobState::kDead) << "a refused replay changed the job";
}

TEST_F(BrokerRaceTest, ReplaysAndCancelsAreRefusedWhileTheStoreIsReadOnly) {
  const JobId id = DeadJob("ro");
  // A replay whose read is under way when the store starts refusing writes.
  std::promise<Result<JobView>> slow;
  auto late = StartHeld<JobView>(slow, [&](auto done) { broker_->Replay(id, done); });
  faults_.FailAllCommits();
  ASSERT_EQ(Enqueue({Spec("ro")})[0].status().code(), Code::kStoreUnavailable);
  gate_.ReleaseHeldRead();
  EXPECT_EQ(Await(late).status().code(), Code::kStoreUnavailable);
  EXPECT_EQ(Call([&](auto done) { broker_->Replay(id, done); }).status().code(),
            Code::kStoreUnavailable);
  EXPECT_EQ(Call([&](auto done) { broker_->Cancel(id, done); }).status().code(),
            Code::kStoreUnavailable);
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  broker_->ReplayDead("ro", {}, 100, [&](auto r) { p.set_value(std::move(r)); });
  EXPECT_EQ(Await(f).status().code(), Code::kStoreUnavailable);
  for (BulkAction action : {BulkAction::kReplay, BulkAction::kDelete, BulkAction::kCancel}) {
    BulkRequest req;
    req.action = action;
    JobFilter filter;
    filter.queue = "ro";
    req.filter = *NarrowBulkFilter(action, filter);
    std::promise<Result<BulkOutcome>> bp;
    auto bf = bp.get_future();
    broker_->Bulk(req, [&](auto r) { bp.set_value(std::move(r)); });
    EXPECT_EQ(Await(bf).status().code(), Code::kStoreUnavailable) << BulkActionName(action);
  }
  faults_.Heal();
  ASSERT_TRUE(WaitStoreAvailable());
  EXPECT_EQ(Stored(id).state, JobState::kDead) << "a refused replay changed the job";
  auto v = Call([&](auto done) { broker_->Replay(id, done); });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->job.runs, 2);
}

// A replay whose read crossed a retention purge was answered 200 and never stored: the purge
// deleted the row and the replay's update of a missing row wrote nothing. Virtual time, so the
// sweep runs when the test says.
TEST(BrokerPurgeRaceTest, AReplayThatCrossedARetentionPurgeIsNotFound) {
  ManualClock clock;
  MemoryStore memory;
  GatedStore gate(memory);
  BrokerOptions o;
  o.seed = 9;
  Broker broker(gate, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  auto stored = [&](JobId id) {
    auto r = memory.GetJob(id);
    return r.ok() && r->has_value();
  };
  std::promise<Result<QueueInfo>> qp;
  auto qf = qp.get_future();
  QueueConfigPatch patch;
  patch.name = "p";
  patch.retention = Retention{0, 1000, 1000};
  broker.PutQueue(patch, /*create=*/true, [&](auto r) { qp.set_value(std::move(r)); });
  ASSERT_TRUE(Await(qf).ok());
  std::promise<std::vector<Result<EnqueueOutcome>>> ep;
  auto ef = ep.get_future();
  broker.Enqueue({Spec("p")}, [&](auto r) { ep.set_value(std::move(r)); });
  const JobId id = Await(ef)[0]->id;
  std::promise<Result<std::vector<LeasedJob>>> lp;
  auto lf = lp.get_future();
  broker.Lease(LeaseRequest{{"p"}, 1, 0, "w", std::nullopt, std::nullopt},
               [&](auto r) { lp.set_value(std::move(r)); });
  auto leased = Await(lf);
  ASSERT_TRUE(leased.ok() && leased->size() == 1u);
  std::promise<int> cp;
  auto cf = cp.get_future();
  broker.Complete({}, {FailItem{id, (*leased)[0].lease.token, FailSpec{"E", "x", false, {}}}},
                  [&](auto, auto) { cp.set_value(0); });
  Await(cf);
  ASSERT_TRUE(stored(id));

  gate.HoldNextRead();
  std::promise<Result<JobView>> rp;
  auto rf = rp.get_future();
  broker.Replay(id, [&](auto r) { rp.set_value(std::move(r)); });
  ASSERT_TRUE(gate.WaitForHeldRead(10s));  // it read the dead row
  clock.Advance(61'000);                   // past dead_ms, and a sweep is due
  for (int i = 0; i < 400 && stored(id); ++i) {
    // Any command wakes core, whose Tick() runs the due sweep. Queue info reads no job rows.
    std::promise<int> p;
    auto f = p.get_future();
    broker.GetQueue("p", [&](auto) { p.set_value(0); });
    Await(f);
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_FALSE(stored(id)) << "the sweep did not purge the dead job";
  gate.ReleaseHeldRead();
  auto r = Await(rf);
  ASSERT_FALSE(r.ok()) << "a replay of a purged job was answered 200";
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  std::promise<Result<JobView>> gp;
  auto gf = gp.get_future();
  broker.GetJob(id, [&](auto r) { gp.set_value(std::move(r)); });
  EXPECT_EQ(Await(gf).status().code(), Code::kNotFound) << "core holds a job the store lost";
  broker.Stop();
}

// Retention end to end (docs/operations.md, "Retention"): the sweep purges dead and cancelled
// jobs by their queue's dead_ms and cancelled_ms, measured from finished_at, and leaves the jobs
// of a queue with the default retention alone. Virtual time: the sweep runs every 60 s.
TEST(BrokerRetentionTest, DeadAndCancelledJobsArePurgedByTheirOwnRetention) {
  ManualClock clock;
  MemoryStore store;
  BrokerOptions o;
  o.seed = 7;
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  auto put_queue = [&](const std::string& name, Retention r) {
    std::promise<Result<QueueInfo>> p;
    auto f = p.get_future();
    QueueConfigPatch patch;
    patch.name = name;
    patch.retention = r;
    broker.PutQueue(patch, /*create=*/true, [&](auto res) { p.set_value(std::move(res)); });
    ASSERT_TRUE(Await(f).ok());
  };
  auto enqueue = [&](const std::string& queue) {
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker.Enqueue({Spec(queue)}, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    EXPECT_TRUE(r[0].ok());
    return r[0].ok() ? r[0]->id : JobId{0};
  };
  auto make_dead = [&](const std::string& queue) {
    const JobId id = enqueue(queue);
    std::promise<Result<std::vector<LeasedJob>>> lp;
    auto lf = lp.get_future();
    broker.Lease(LeaseRequest{{queue}, 1, 0, "w", std::nullopt, std::nullopt},
                 [&](auto r) { lp.set_value(std::move(r)); });
    auto leased = Await(lf);
    EXPECT_TRUE(leased.ok() && leased->size() == 1u);
    std::promise<int> cp;
    auto cf = cp.get_future();
    broker.Complete({}, {FailItem{id, (*leased)[0].lease.token, FailSpec{"E", "x", false, {}}}},
                    [&](auto, auto) { cp.set_value(0); });
    Await(cf);
    return id;
  };
  auto make_cancelled = [&](const std::string& queue) {
    const JobId id = enqueue(queue);
    std::promise<Result<JobView>> p;
    auto f = p.get_future();
    broker.Cancel(id, [&](auto r) { p.set_value(std::move(r)); });
    EXPECT_TRUE(Await(f).ok());
    return id;
  };
  auto stored = [&](JobId id) {
    auto r = store.GetJob(id);
    return r.ok() && r->has_value();
  };
  // Each GET wakes the core thread, whose Tick() then runs the sweep that is due. Bounded by
  // 30 s of real time (the purge is committed on the store's thread).
  auto purged_within = [&](JobId id) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (stored(id) && std::chrono::steady_clock::now() < until) {
      std::promise<int> p;
      auto f = p.get_future();
      broker.GetJob(id, [&](auto) { p.set_value(0); });
      Await(f);
      std::this_thread::sleep_for(5ms);
    }
    return !stored(id);
  };

  put_queue("short", Retention{0, 1000, 90'000});
  const JobId dead = make_dead("short");
  const JobId cancelled = make_cancelled("short");
  const JobId dead_default = make_dead("defaults");
  const JobId cancelled_default = make_cancelled("defaults");
  ASSERT_TRUE(stored(dead) && stored(cancelled) && stored(dead_default) &&
              stored(cancelled_default));

  clock.Advance(61'000);  // one sweep: past dead_ms (1 s), not past cancelled_ms (90 s)
  EXPECT_TRUE(purged_within(dead));
  EXPECT_TRUE(stored(cancelled)) << "cancelled_ms (90 s) has not passed";
  clock.Advance(61'000);  // the next sweep: 122 s after the cancel
  EXPECT_TRUE(purged_within(cancelled));
  // The default retention (7 days) keeps the other queue's jobs.
  EXPECT_TRUE(stored(dead_default));
  EXPECT_TRUE(stored(cancelled_default));
  clock.Advance(7LL * 24 * 3600 * 1000);
  EXPECT_TRUE(purged_within(dead_default));
  EXPECT_TRUE(purged_within(cancelled_default));
  broker.Stop();
}

// The default retention end to end: a succeeded job is readable with its result after its ack,
// for 24 h from its finish, then purged; a queue with a cap keeps only its newest. Virtual time.
TEST(BrokerRetentionTest, SucceededJobsAreKeptADayByDefaultAndCapped) {
  ManualClock clock;
  MemoryStore store;
  BrokerOptions o;
  o.seed = 9;
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  auto run = [&](const std::string& queue) {
    std::promise<std::vector<Result<EnqueueOutcome>>> ep;
    auto ef = ep.get_future();
    broker.Enqueue({Spec(queue)}, [&](auto r) { ep.set_value(std::move(r)); });
    const JobId id = Await(ef).at(0)->id;
    std::promise<Result<std::vector<LeasedJob>>> lp;
    auto lf = lp.get_future();
    broker.Lease(LeaseRequest{{queue}, 1, 0, "w", std::nullopt, std::nullopt},
                 [&](auto r) { lp.set_value(std::move(r)); });
    auto leased = Await(lf);
    EXPECT_TRUE(leased.ok() && leased->size() == 1u);
    std::promise<int> cp;
    auto cf = cp.get_future();
    broker.Complete({AckItem{id, (*leased)[0].lease.token, R"({"n":1})"}}, {}, [&](auto a, auto) {
      EXPECT_TRUE(a.at(0).ok());
      cp.set_value(0);
    });
    Await(cf);
    return id;
  };
  auto stored = [&](JobId id) {
    auto r = store.GetJob(id);
    return r.ok() && r->has_value() ? std::optional<JobRecord>(**r) : std::nullopt;
  };
  auto gone_within = [&](JobId id) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (stored(id) && std::chrono::steady_clock::now() < until) {
      std::promise<int> p;
      auto f = p.get_future();
      broker.GetJob(id, [&](auto) { p.set_value(0); });  // wakes core, whose Tick purges
      Await(f);
      std::this_thread::sleep_for(5ms);
    }
    return !stored(id);
  };

  const JobId kept = run("defaults");
  auto rec = stored(kept);
  ASSERT_TRUE(rec.has_value()) << "kept after its ack";
  EXPECT_EQ(rec->state, JobState::kSucceeded);
  EXPECT_EQ(rec->result, R"({"n":1})");
  clock.Advance(23LL * 3600 * 1000);  // sweeps run, the day has not passed
  std::promise<int> p;
  auto f = p.get_future();
  broker.GetJob(kept, [&](auto) { p.set_value(0); });
  Await(f);
  EXPECT_TRUE(stored(kept).has_value());
  clock.Advance(3600LL * 1000 + 61'000);  // past the day, and a sweep
  EXPECT_TRUE(gone_within(kept));

  QueueConfigPatch patch;
  patch.name = "capped";
  patch.retention = Retention{};
  patch.retention->max_succeeded = 2;
  std::promise<Result<QueueInfo>> qp;
  auto qf = qp.get_future();
  broker.PutQueue(patch, /*create=*/true, [&](auto r) { qp.set_value(std::move(r)); });
  ASSERT_TRUE(Await(qf).ok());
  std::vector<JobId> ids;
  for (int i = 0; i < 5; ++i) {
    clock.Advance(10);  // distinct finish times
    ids.push_back(run("capped"));
  }
  // No time passes: the cap alone trims, from the commits that follow.
  EXPECT_TRUE(gone_within(ids[0]));
  EXPECT_TRUE(gone_within(ids[1]));
  EXPECT_TRUE(gone_within(ids[2]));
  EXPECT_TRUE(stored(ids[3]).has_value());
  EXPECT_TRUE(stored(ids[4]).has_value());
  broker.Stop();
}

// Idempotency keys live in the store with a bounded cache in core. With a cache of one key, a
// duplicate of an evicted key is answered from the store (same job), and two enqueues with a
// key that missed the cache, in one batch or in two concurrent requests, create one job.
TEST(BrokerIdempotencyTest, KeysThatMissTheCacheAreResolvedFromTheStore) {
  SystemClock clock;
  MemoryStore memory;
  GatedStore store(memory);
  BrokerOptions o;
  o.seed = 3;
  o.scheduler.idempotency_cache_keys = 1;
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  auto enqueue = [&](std::vector<EnqueueSpec> specs) {
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker.Enqueue(std::move(specs), [&](auto r) { p.set_value(std::move(r)); });
    return Await(f);
  };
  auto keyed = [](const std::string& key) {
    EnqueueSpec s = Spec("q");
    s.idempotency_key = key;
    return s;
  };
  const JobId a = enqueue({keyed("a")}).at(0)->id;
  const JobId b = enqueue({keyed("b")}).at(0)->id;  // evicts "a" from the cache
  EXPECT_NE(a, b);
  EXPECT_EQ(store.key_reads.load(), 0);  // nothing was evicted when they were created

  auto dup = enqueue({keyed("a")}).at(0);
  ASSERT_TRUE(dup.ok()) << dup.status().ToString();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, a);
  EXPECT_EQ(dup->state, JobState::kReady);
  EXPECT_GE(store.key_reads.load(), 1);  // answered from the store

  auto same = enqueue({keyed("c"), keyed("c")});
  ASSERT_TRUE(same.at(0).ok() && same.at(1).ok());
  EXPECT_EQ(same[0]->id, same[1]->id);
  EXPECT_NE(same[0]->duplicate, same[1]->duplicate);
  std::promise<std::vector<Result<EnqueueOutcome>>> p1, p2;
  auto f1 = p1.get_future();
  auto f2 = p2.get_future();
  broker.Enqueue({keyed("d")}, [&](auto r) { p1.set_value(std::move(r)); });
  broker.Enqueue({keyed("d")}, [&](auto r) { p2.set_value(std::move(r)); });
  auto r1 = Await(f1).at(0);
  auto r2 = Await(f2).at(0);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->id, r2->id);
  EXPECT_NE(r1->duplicate, r2->duplicate);
  broker.Stop();
  // Four distinct keys made four jobs, and nothing else was created.
  std::set<JobId> ids;
  for (JobId id = 1; id < 10; ++id) {
    auto j = memory.GetJob(id);
    if (j.ok() && j->has_value()) ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 4u);
}

// Recovery loads only the newest idempotency keys that fit the cache and leaves the rest on
// disk. A duplicate of a key left there must still get its job: the recovered cache knows it is
// incomplete, so a miss is looked up in the store instead of creating a second job.
TEST(BrokerIdempotencyTest, KeysLeftOnDiskByRecoveryAreStillFound) {
  SystemClock clock;
  MemoryStore memory;
  auto keyed = [](const std::string& key) {
    EnqueueSpec s = Spec("q");
    s.idempotency_key = key;
    return s;
  };
  auto enqueue = [](Broker& broker, std::vector<EnqueueSpec> specs) {
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker.Enqueue(std::move(specs), [&](auto r) { p.set_value(std::move(r)); });
    return Await(f);
  };
  std::map<std::string, JobId> ids;
  {
    Broker first(memory, clock, BrokerOptions{});
    ASSERT_TRUE(first.Start().ok());
    for (const char* k : {"a", "b", "c"}) {
      auto r = enqueue(first, {keyed(k)}).at(0);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ids[k] = r->id;
    }
    first.Stop();
  }
  GatedStore store(memory);
  BrokerOptions o;
  o.seed = 5;
  o.scheduler.idempotency_cache_keys = 1;  // recovery loads one key of three
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  for (const char* k : {"a", "b", "c"}) {
    auto dup = enqueue(broker, {keyed(k)}).at(0);
    ASSERT_TRUE(dup.ok()) << dup.status().ToString();
    EXPECT_TRUE(dup->duplicate) << k;
    EXPECT_EQ(dup->id, ids[k]) << k;
  }
  EXPECT_GE(store.key_reads.load(), 1);  // the keys not loaded were read from the store
  broker.Stop();
  // Three keys, three jobs: no duplicate created a job.
  int jobs = 0;
  for (JobId id = 1; id < 10; ++id) {
    auto j = memory.GetJob(id);
    if (j.ok() && j->has_value()) ++jobs;
  }
  EXPECT_EQ(jobs, 3);
}

// Regression: a duplicate of a job that retention purged answered "succeeded" whatever the job
// became (after a restart the key's state was unknown and a missing row was taken for a
// success). The final state is kept with the key now.
TEST(BrokerIdempotencyTest, ADuplicateOfAPurgedJobAnswersItsFinalState) {
  SystemClock clock;
  MemoryStore memory;
  BrokerOptions o;
  o.seed = 5;
  JobId id = 0;
  EnqueueSpec spec = Spec("q");
  spec.idempotency_key = "order-9";
  {
    Broker broker(memory, clock, o);
    ASSERT_TRUE(broker.Start().ok());
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker.Enqueue({spec}, [&](auto r) { p.set_value(std::move(r)); });
    id = Await(f).at(0)->id;
    std::promise<Result<JobView>> c;
    auto cf = c.get_future();
    broker.Cancel(id, [&](auto r) { c.set_value(std::move(r)); });
    ASSERT_TRUE(Await(cf).ok());
    broker.Stop();
  }
  // Retention purges the cancelled job.
  Batch purge;
  purge.mutations.push_back(PurgeFinished{"q", JobState::kCancelled, clock.NowMs() + 1000});
  ASSERT_TRUE(memory.Commit(purge).ok());
  ASSERT_FALSE(memory.GetJob(id)->has_value());

  Broker broker(memory, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  std::promise<std::vector<Result<EnqueueOutcome>>> p;
  auto f = p.get_future();
  broker.Enqueue({spec}, [&](auto r) { p.set_value(std::move(r)); });
  auto dup = Await(f).at(0);
  ASSERT_TRUE(dup.ok()) << dup.status().ToString();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, id);
  EXPECT_EQ(dup->state, JobState::kCancelled);  // was kSucceeded
  broker.Stop();
}

// --- A failing store: read-only, not a reload loop (issue 7, item 4) ---------------------------

TEST_F(BrokerTest, APersistentStoreFailureMakesTheBrokerReadOnlyNotThrash) {
  auto e = Enqueue({Spec("d"), Spec("d")});
  ASSERT_TRUE(e[0].ok() && e[1].ok());
  auto held = Lease("d", 1);
  ASSERT_EQ(held.size(), 1u);
  const std::uint64_t commits_before = faults_.commits_attempted();
  faults_.FailAllCommits();
  auto lost = Enqueue({Spec("d")});
  ASSERT_EQ(lost[0].status().code(), Code::kStoreUnavailable);
  EXPECT_FALSE(broker_->store_available());
  EXPECT_NE(broker_->store_error().find("injected fault"), std::string::npos);
  EXPECT_EQ(broker_->counters().store_unavailable_episodes.load(), 1u);

  // Writes are refused at once with the error, and change nothing.
  auto refused = Enqueue({Spec("d")});
  EXPECT_EQ(refused[0].status().code(), Code::kStoreUnavailable);
  {
    LeaseRequest req;
    req.queues = {"d"};
    std::promise<Result<std::vector<LeasedJob>>> p;
    auto f = p.get_future();
    broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
    EXPECT_EQ(Await(f).status().code(), Code::kStoreUnavailable);
  }
  auto ack = Complete({AckItem{held[0].id, held[0].lease.token, ""}}, {});
  EXPECT_EQ(ack.first[0].code(), Code::kStoreUnavailable);
  // Reads and heartbeats are served; the running lease was kept by the reload.
  auto v = Get(held[0].id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->job.state, JobState::kActive);
  {
    std::promise<Result<HeartbeatOutcome>> p;
    auto f = p.get_future();
    broker_->Heartbeat(held[0].id, held[0].lease.token, 0, std::nullopt,
                       [&](auto r) { p.set_value(std::move(r)); });
    auto hb = Await(f);
    EXPECT_TRUE(hb.ok()) << hb.status().ToString();
  }
  // It probes with back-off instead of retrying per request: within a second a handful of
  // probes (250 ms, then 500 ms, ...), one episode, one reload.
  std::this_thread::sleep_for(1s);
  const std::uint64_t attempts = faults_.commits_attempted() - commits_before;
  EXPECT_GE(attempts, 2u) << "no probe ran";
  EXPECT_LE(attempts, 5u) << "the store is hammered";
  EXPECT_EQ(broker_->counters().store_unavailable_episodes.load(), 1u);

  // The disk comes back: the broker resumes by itself, and nothing acknowledged was lost.
  faults_.Heal();
  ASSERT_TRUE(WaitStoreAvailable());
  EXPECT_TRUE(broker_->store_error().empty());
  auto retried = Complete({AckItem{held[0].id, held[0].lease.token, ""}}, {});
  EXPECT_TRUE(retried.first[0].ok()) << retried.first[0].ToString();
  auto rest = Lease("d", 10);
  ASSERT_EQ(rest.size(), 1u) << "the other acknowledged job is still there, and only it";
  EXPECT_EQ(rest[0].id, held[0].id == e[0]->id ? e[1]->id : e[0]->id);
  auto after = Enqueue({Spec("d")});
  EXPECT_TRUE(after[0].ok());
}

TEST_F(BrokerTest, LeaseExpiriesWhileReadOnlyAreCommittedWhenTheStoreIsBack) {
  auto e = Enqueue({Spec("x")});
  ASSERT_TRUE(e[0].ok());
  LeaseRequest req;
  req.queues = {"x"};
  req.lease_ms = 1000;
  std::promise<Result<std::vector<LeasedJob>>> p;
  auto f = p.get_future();
  broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
  auto held = Await(f);
  ASSERT_TRUE(held.ok() && held->size() == 1u);
  faults_.FailAllCommits();
  EXPECT_EQ(Enqueue({Spec("x")})[0].status().code(), Code::kStoreUnavailable);
  // The lease expires while read-only: the attempt is counted in memory at once, and durably
  // once the store takes writes again.
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (Get(e[0]->id)->job.state == JobState::kActive && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(Get(e[0]->id)->job.state, JobState::kReady);
  faults_.Heal();
  ASSERT_TRUE(WaitStoreAvailable());
  // The store is writable again once the probe (the failed batch, retried) commits; the expiry
  // happened after that batch was cut, so it is in a later one: wait for it to be durable.
  auto stored = memory_.GetJob(e[0]->id);
  const auto durable_by = std::chrono::steady_clock::now() + 10s;
  while (stored.ok() && stored->has_value() && (*stored)->state != JobState::kReady &&
         std::chrono::steady_clock::now() < durable_by) {
    std::this_thread::sleep_for(5ms);
    stored = memory_.GetJob(e[0]->id);
  }
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kReady);
  EXPECT_EQ((*stored)->attempts, 1);
  EXPECT_EQ((*stored)->lease_token, 0u);
  ASSERT_EQ((*stored)->errors.size(), 1u);
  EXPECT_EQ((*stored)->errors[0].type, "lease_expired");
}

TEST_F(BrokerTest, WithLeaseReplyAfterCommitALeaseIsAnsweredOnlyOnceDurable) {
  auto e = Enqueue({Spec("lc")});
  gate_.Close();
  LeaseRequest req;
  req.queues = {"lc"};
  std::promise<Result<std::vector<LeasedJob>>> p;
  auto f = p.get_future();
  broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(gate_.WaitForBlockedCommit(10s));
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);
  gate_.Open();
  auto got = Await(f);
  ASSERT_TRUE(got.ok() && got->size() == 1u);
  auto stored = memory_.GetJob(e[0]->id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->lease_token, (*got)[0].lease.token);
}

// --lease-reply immediate: the reply goes at once, the lease is committed with the next batch.
TEST_F(BrokerTest, WithLeaseReplyImmediateALeaseIsAnsweredAtOnceAndCommittedWithTheNextBatch) {
  broker_->Stop();
  BrokerOptions o;
  o.seed = 7;
  o.lease_reply_after_commit = false;
  broker_ = std::make_unique<Broker>(gate_, clock_, o);
  ASSERT_TRUE(broker_->Start().ok());
  auto e = Enqueue({Spec("li")});
  gate_.Close();
  auto got = Lease("li");  // answered although the commit is held at the gate
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(gate_.WaitForBlockedCommit(10s));
  auto before = memory_.GetJob(e[0]->id);
  ASSERT_TRUE(before.ok() && before->has_value());
  EXPECT_EQ((*before)->lease_token, 0u) << "not durable yet";
  // A write issued after the lease is answered only once the lease is durable too.
  std::promise<std::vector<Result<EnqueueOutcome>>> p;
  auto f = p.get_future();
  broker_->Enqueue({Spec("other")}, [&](auto r) { p.set_value(std::move(r)); });
  gate_.Open();
  ASSERT_TRUE(Await(f)[0].ok());
  auto after = memory_.GetJob(e[0]->id);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->state, JobState::kActive);
  EXPECT_EQ((*after)->lease_token, got[0].lease.token);
}

// --lease-reply immediate, but the lease counted a start toward a quota: its count is in the
// lease's batch, so the reply waits for that batch (a crash before it would lose the count of a
// start the worker already made). A lease without a quota in the same mode goes at once.
TEST_F(BrokerTest, WithLeaseReplyImmediateAQuotaCountedLeaseWaitsForItsCommit) {
  broker_->Stop();
  BrokerOptions o;
  o.seed = 7;
  o.lease_reply_after_commit = false;
  broker_ = std::make_unique<Broker>(gate_, clock_, o);
  ASSERT_TRUE(broker_->Start().ok());
  std::promise<Result<flow::LimitInfo>> put;
  auto pf = put.get_future();
  broker_->PutLimit(
      *flow::LimitSpec::FromJson(
          "daily", R"({"match":{"queue":"metered"},"quota":{"count":5,"per":"day"}})"),
      [&](Result<flow::LimitInfo> r) { put.set_value(std::move(r)); });
  ASSERT_TRUE(Await(pf).ok());
  auto metered = Enqueue({Spec("metered")});
  auto free = Enqueue({Spec("free")});
  ASSERT_TRUE(metered[0].ok() && free[0].ok());
  gate_.Close();
  EXPECT_EQ(Lease("free").size(), 1u) << "no quota: answered although the commit is held";
  ASSERT_TRUE(gate_.WaitForBlockedCommit(10s));
  LeaseRequest req;
  req.queues = {"metered"};
  req.max = 10;
  std::promise<Result<std::vector<LeasedJob>>> p;
  auto f = p.get_future();
  broker_->Lease(req, [&](auto r) { p.set_value(std::move(r)); });
  EXPECT_EQ(f.wait_for(200ms), std::future_status::timeout)
      << "a quota-counted lease was answered before its count was durable";
  gate_.Open();
  auto got = Await(f);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_TRUE((*got)[0].quota_counted);
  // Answered only now that the lease and its count are on disk.
  auto stored = memory_.GetJob(metered[0]->id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->lease_token, (*got)[0].lease.token);
}

// A job that just ended is still in core until its batch commits. A GET in that window must not
// show a terminal state the disk might not keep, nor one without what the end wrote: it is
// answered once the batch is durable, from the stored record.
TEST_F(BrokerWriteDurabilityTest, AGetOfAJobThatJustEndedShowsTheDurableRecord) {
  const auto e = Enqueue({Spec("g")});
  auto jobs = Lease("g");
  ASSERT_EQ(jobs.size(), 1u);
  gate_.Close();
  std::promise<int> completed;
  auto cf = completed.get_future();
  broker_->Complete({},
                    {FailItem{jobs[0].id, jobs[0].lease.token,
                              FailSpec{"E", "gone for good", false, std::nullopt}}},
                    [&](auto, auto) { completed.set_value(0); });
  ASSERT_TRUE(gate_.WaitForBlockedCommit(10s));
  std::promise<Result<JobView>> got;
  auto gf = got.get_future();
  broker_->GetJob(e[0]->id, [&](auto r) { got.set_value(std::move(r)); });
  EXPECT_EQ(gf.wait_for(100ms), std::future_status::timeout)
      << "a terminal state was shown before it was durable";
  gate_.Open();
  Await(cf);
  auto v = Await(gf);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->job.state, JobState::kDead);
  EXPECT_EQ(v->job.dead_reason, std::string(kDeadNonRetryable));
  EXPECT_NE(v->job.finished_at_ms, 0);
  ASSERT_EQ(v->job.errors.size(), 1u);
  EXPECT_EQ(v->job.errors[0].message, "gone for good");
}

// /livez: the core thread's heartbeat (Broker::core_alive). A callback that runs on the core
// thread and blocks stands for a core stuck in one task; virtual time then passes the deadline.
TEST(BrokerLivenessTest, AStuckCoreThreadIsNotAliveUntilItRunsAgain) {
  ManualClock clock;
  MemoryStore memory;
  BrokerOptions o;
  o.seed = 3;
  o.liveness_deadline_ms = 10'000;
  Broker broker(memory, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  EXPECT_TRUE(broker.core_alive());
  clock.Advance(60'000);  // idle: the core still wakes every second and beats
  bool alive = false;
  for (int i = 0; i < 500 && !(alive = broker.core_alive()); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(alive) << "an idle core stopped beating: age " << broker.core_heartbeat_age_ms();

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  broker.GetQueue("q", [&, released](auto) {
    entered.set_value();
    released.wait();  // the core thread is held here
  });
  entered.get_future().wait();
  clock.Advance(10'001);
  EXPECT_FALSE(broker.core_alive());
  EXPECT_GE(broker.core_heartbeat_age_ms(), 10'001);
  release.set_value();
  for (int i = 0; i < 500 && !(alive = broker.core_alive()); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(alive) << "the core ran again but is still reported stuck";
  broker.Stop();
}

}  // namespace
}  // namespace ym

namespace ym {
namespace {

// A namespace's retention window is stricter than its queue's: its finished jobs are purged by
// it, in a queue it shares with another namespace whose jobs the queue's window keeps
// (core/flow/namespace_retention.h). Virtual time; each GET wakes the core thread.
TEST(BrokerRetentionTest, NamespaceWindowStricterThanTheQueuesPurgesOnlyThatNamespace) {
  ManualClock clock;
  MemoryStore store;
  BrokerOptions o;
  o.seed = 7;
  Broker broker(store, clock, o);
  ASSERT_TRUE(broker.Start().ok());
  {
    flow::NamespaceSpec ns;
    ns.name = "acme";
    ns.retention.cancelled_ms = 1000;
    std::promise<Result<flow::NamespaceInfo>> p;
    auto f = p.get_future();
    broker.PutNamespace(ns, [&](auto r) { p.set_value(std::move(r)); });
    ASSERT_TRUE(Await(f).ok());
  }
  auto make_cancelled = [&](const std::string& ns) {
    EnqueueSpec spec = Spec("shared");
    spec.ns = ns;
    std::promise<std::vector<Result<EnqueueOutcome>>> ep;
    auto ef = ep.get_future();
    broker.Enqueue({spec}, [&](auto r) { ep.set_value(std::move(r)); });
    auto r = Await(ef);
    EXPECT_TRUE(r[0].ok());
    const JobId id = r[0].ok() ? r[0]->id : JobId{0};
    std::promise<Result<JobView>> cp;
    auto cf = cp.get_future();
    broker.Cancel(id, [&](auto res) { cp.set_value(std::move(res)); });
    EXPECT_TRUE(Await(cf).ok());
    return id;
  };
  auto stored = [&](JobId id) {
    auto r = store.GetJob(id);
    return r.ok() && r->has_value();
  };
  std::vector<JobId> acme, other;
  for (int i = 0; i < 5; ++i) {
    acme.push_back(make_cancelled("acme"));
    other.push_back(make_cancelled("other"));
  }
  for (JobId id : acme) ASSERT_TRUE(stored(id));
  clock.Advance(61'000);  // one sweep: past acme's 1 s, far from the queue's 7 days
  const auto until = std::chrono::steady_clock::now() + 30s;
  auto any_acme = [&] {
    for (JobId id : acme) {
      if (stored(id)) return true;
    }
    return false;
  };
  while (any_acme() && std::chrono::steady_clock::now() < until) {
    std::promise<int> p;
    auto f = p.get_future();
    broker.GetJob(acme[0], [&](auto) { p.set_value(0); });
    Await(f);
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(any_acme()) << "acme's window (1 s) passed";
  for (JobId id : other) EXPECT_TRUE(stored(id)) << "the queue's window (7 days) keeps " << id;
  broker.Stop();
}

}  // namespace
}  // namespace ym
