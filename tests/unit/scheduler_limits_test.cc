// Concurrency limits wired into the Scheduler: a capped key leaves the rotation as one lane,
// other keys keep flowing, every path that ends an active job releases its gates and wakes the
// lanes and long-polls that waited, limit changes rebind live jobs, and blocked_reason says
// concurrency_capped. Ends with a randomized model test that checks the caps and the absence of
// lost wake-ups after every step. ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/limit_set.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "sanitizer_scale.h"
#include "scheduler_hot_path.h"
#include "scheduler_model.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

class SchedulerLimitsTest : public ::testing::Test {
 protected:
  SchedulerLimitsTest() : clock_(kStart), rng_(7) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }

  JobId Add(const std::string& ckey, const std::string& queue = "q", const std::string& kind = "k",
            const std::string& payload = "{}") {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = kind;
    s.payload = payload;
    s.concurrency_key = ckey;
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  std::vector<LeasedJob> Lease(std::uint32_t max, const std::string& queue = "q") {
    LeaseRequest req;
    req.queues = {queue};
    req.max = max;
    req.worker_id = "w";
    auto got = sched_->Lease(req);
    Commit();
    return got;
  }

  void PutLimit(const std::string& name, std::int64_t cap, const std::string& key,
                std::optional<std::string> match_kind = std::nullopt) {
    flow::LimitSpec spec;
    spec.name = name;
    spec.concurrency = cap;
    if (!key.empty()) {
      ASSERT_TRUE(spec.SetKey(key).ok());
    }
    spec.match_kind = std::move(match_kind);
    auto r = sched_->PutLimit(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Commit();
  }

  static std::multiset<std::string> Keys(const std::vector<LeasedJob>& jobs,
                                         const std::map<JobId, std::string>& key_of) {
    std::multiset<std::string> out;
    for (const auto& j : jobs) out.insert(key_of.at(j.id));
    return out;
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerLimitsTest, CappedKeyLeavesTheRotationAndOthersFlow) {
  PutLimit("mutex", 1, "concurrency_key");
  std::map<JobId, std::string> key_of;
  // Five jobs of key "a" ahead of one each of "b" and "c": the head of the queue is capped.
  for (int i = 0; i < 5; ++i) key_of[Add("a")] = "a";
  key_of[Add("b")] = "b";
  key_of[Add("c")] = "c";
  auto got = Lease(10);
  EXPECT_EQ(Keys(got, key_of), (std::multiset<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(Lease(10).empty());
  EXPECT_EQ(sched_->GetLimit("mutex")->active_keys, 3u);
  // The four waiting "a" jobs say why.
  for (const auto& [id, key] : key_of) {
    auto v = sched_->Get(id);
    if (v->job.state == JobState::kReady) {
      EXPECT_EQ(v->blocked_reason, "concurrency_capped");
    }
  }
  // Acking the "a" job frees the key: exactly one more "a" runs.
  const LeasedJob a = *std::find_if(got.begin(), got.end(),
                                    [&](const LeasedJob& j) { return key_of[j.id] == "a"; });
  ASSERT_TRUE(sched_->Ack(a.id, a.lease.token, "null").ok());
  Commit();
  auto next = Lease(10);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(key_of[next[0].id], "a");
  EXPECT_EQ(sched_->Footprint().limit_waiting_lanes, 1u);
}

TEST_F(SchedulerLimitsTest, EveryEndOfAnActiveJobReleasesItsGate) {
  PutLimit("mutex", 1, "concurrency_key");
  for (int i = 0; i < 6; ++i) Add("a");
  // fail (retried at once)
  auto j = Lease(5);
  ASSERT_EQ(j.size(), 1u);
  FailSpec f;
  f.retry_in_ms = 0;
  ASSERT_TRUE(sched_->Fail(j[0].id, j[0].lease.token, f).ok());
  Commit();
  // release (a lost lease reply)
  j = Lease(5);
  ASSERT_EQ(j.size(), 1u);
  sched_->Release(j[0].id, j[0].lease.token);
  Commit();
  // lease expiry
  j = Lease(5);
  ASSERT_EQ(j.size(), 1u);
  clock_.Advance(31'000);
  sched_->Tick();
  Commit();
  // cancel of the running job: completes at its fail
  j = Lease(5);
  ASSERT_EQ(j.size(), 1u);
  ASSERT_TRUE(sched_->Cancel(j[0].id).ok());
  Commit();
  EXPECT_TRUE(Lease(5).empty());
  ASSERT_TRUE(sched_->Fail(j[0].id, j[0].lease.token, f).ok());
  Commit();
  // ack
  j = Lease(5);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(sched_->limits().Count("mutex", "a"), 1);
  ASSERT_TRUE(sched_->Ack(j[0].id, j[0].lease.token, "null").ok());
  Commit();
  EXPECT_EQ(sched_->limits().Count("mutex", "a"), 0);
  // an attempt that reaches its execution timeout (the timer fires before the lease expiry)
  EnqueueSpec timed;
  timed.queue = "t";
  timed.kind = "k";
  timed.concurrency_key = "a";
  timed.timeout_ms = 1000;
  timed.max_attempts = 1;
  ASSERT_TRUE(sched_->Enqueue(timed).ok());
  Commit();
  j = Lease(5, "t");
  ASSERT_EQ(j.size(), 1u);
  EXPECT_TRUE(Lease(5).empty());  // "a" is held by the timed job
  clock_.Advance(1'001);
  sched_->Tick();
  Commit();
  EXPECT_EQ(sched_->limits().Count("mutex", "a"), 0);
  EXPECT_EQ(Lease(5).size(), 1u);
}

TEST_F(SchedulerLimitsTest, ReleaseServesALongPollThatWaited) {
  PutLimit("mutex", 1, "concurrency_key");
  Add("a");
  Add("a");
  auto first = Lease(1);
  ASSERT_EQ(first.size(), 1u);
  std::vector<LeasedJob> served;
  bool called = false;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 5;
  req.worker_id = "w2";
  ASSERT_TRUE(sched_->Lease(req).empty());
  sched_->AddWaiter(req, clock_.MonoMs() + 60'000, [&](std::vector<LeasedJob> jobs) {
    called = true;
    served = std::move(jobs);
  });
  EXPECT_FALSE(called);
  ASSERT_TRUE(sched_->Ack(first[0].id, first[0].lease.token, "null").ok());
  EXPECT_TRUE(called);
  EXPECT_EQ(served.size(), 1u);
}

TEST_F(SchedulerLimitsTest, PerKindCapAndPerQueueCap) {
  PutLimit("slow-kind", 2, "", "slow");
  PutLimit("per-queue", 3, "queue");
  for (int i = 0; i < 5; ++i) Add("", "q", "slow");
  for (int i = 0; i < 5; ++i) Add("", "q", "fast");
  for (int i = 0; i < 5; ++i) Add("", "other", "fast");
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 3u);  // the per-queue cap
  int slow = 0;
  for (const auto& j : got) slow += j.kind == "slow";
  EXPECT_LE(slow, 2);
  EXPECT_EQ(Lease(10, "other").size(), 3u);
  EXPECT_EQ(sched_->GetLimit("per-queue")->active,
            (std::vector<std::pair<std::string, std::int64_t>>{{"other", 3}, {"q", 3}}));
}

TEST_F(SchedulerLimitsTest, LimitChangesRebindLiveJobs) {
  for (int i = 0; i < 4; ++i) Add("a");
  ASSERT_EQ(Lease(2).size(), 2u);
  // A limit below the running count revokes nothing and admits nothing more.
  PutLimit("mutex", 1, "concurrency_key");
  EXPECT_EQ(sched_->limits().Count("mutex", "a"), 2);
  EXPECT_TRUE(Lease(5).empty());
  EXPECT_EQ(sched_->Get(3)->blocked_reason, "concurrency_capped");
  // Raising it lets one more through.
  PutLimit("mutex", 3, "concurrency_key");
  EXPECT_EQ(Lease(5).size(), 1u);
  // Deleting it releases the waiting job and serves a long-poll at once.
  bool called = false;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 5;
  sched_->AddWaiter(req, clock_.MonoMs() + 60'000,
                    [&](std::vector<LeasedJob> jobs) { called = jobs.size() == 1; });
  ASSERT_TRUE(sched_->DeleteLimit("mutex").ok());
  EXPECT_TRUE(called);
  EXPECT_EQ(sched_->DeleteLimit("mutex").code(), Code::kNotFound);
  EXPECT_EQ(sched_->Footprint().limit_gate_sets, 0u);
}

TEST_F(SchedulerLimitsTest, BadLimitChangesNothing) {
  flow::LimitSpec spec;
  spec.name = "x";
  spec.concurrency = 0;
  EXPECT_EQ(sched_->PutLimit(spec).status().code(), Code::kValidation);
  EXPECT_FALSE(sched_->GetLimit("x").has_value());
}

TEST_F(SchedulerLimitsTest, RecoveredLeasesCountTowardTheCap) {
  flow::LimitSpec spec;
  spec.name = "mutex";
  spec.concurrency = 1;
  ASSERT_TRUE(spec.SetKey("concurrency_key").ok());
  ASSERT_TRUE(sched_->LoadLimit(spec).ok());
  JobRecord active;
  active.id = 1;
  active.queue = "q";
  active.kind = "k";
  active.ns = "default";
  active.state = JobState::kActive;
  active.concurrency_key = "a";
  active.lease_token = 99;
  active.worker_id = "w";
  active.created_at_ms = active.updated_at_ms = active.run_at_ms = kStart;
  active.lease_expires_at_ms = kStart + 30'000;
  active.lease_ms = 30'000;
  active.max_attempts = 5;
  active.attempts = 1;
  JobRecord ready = active;
  ready.id = 2;
  ready.state = JobState::kReady;
  ready.lease_token = 0;
  ready.attempts = 0;
  sched_->LoadJob(std::move(active));
  sched_->LoadJob(std::move(ready));
  EXPECT_TRUE(Lease(5).empty());
  ASSERT_TRUE(sched_->Ack(1, 99, "null").ok());
  EXPECT_EQ(Lease(5).size(), 1u);
}

TEST_F(SchedulerLimitsTest, NoLimitsMeansOneLanePerNamespace) {
  for (int i = 0; i < 3; ++i) Add("a");
  for (int i = 0; i < 3; ++i) Add("b");
  EXPECT_EQ(sched_->Footprint().lanes, 1u);
  PutLimit("mutex", 5, "concurrency_key");
  EXPECT_EQ(sched_->Footprint().lanes, 2u);
  ASSERT_TRUE(sched_->DeleteLimit("mutex").ok());
  EXPECT_EQ(sched_->Footprint().lanes, 1u);
}

// --- Randomized model test --------------------------------------------------------------------

// The model: which limits exist, and each live job's fields, recomputed independently of
// LimitSet. After every step: (1) no gate's active count exceeds what it may hold (its cap, or
// the count it had when a change lowered the cap below it, decreasing as jobs end); (2) when a
// lease comes back with fewer jobs than asked, no ready job in its queues is admissible (every
// ready job has a gate at or over its cap); (3) no registered long-poll is left waiting while an
// admissible job is ready in one of its queues.
struct ModelLimit {
  std::int64_t cap;
  std::string key;  // "" | concurrency_key | kind | queue | payload.acct
  std::optional<std::string> kind;
};

struct ModelJob {
  std::string queue, kind, ckey, acct;
};

TEST(SchedulerLimitsModel, CapsHoldAndNoWakeUpIsLost) {
  const char* queues[] = {"q1", "q2"};
  const char* kinds[] = {"k1", "k2"};
  const char* ckeys[] = {"", "a", "b", "c"};
  const char* accts[] = {"", "x", "y"};
  const char* key_kinds[] = {"", "concurrency_key", "kind", "queue", "payload.acct"};
  for (std::uint64_t seed = 1; seed <= test::ModelSeeds(40); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ManualClock clock(kStart);
    Rng rng(seed);
    Rng sched_rng(seed + 1000);
    Scheduler sched(clock, sched_rng, SchedulerOptions{});
    std::map<std::string, ModelLimit> limits;
    std::map<JobId, ModelJob> jobs;
    std::map<JobId, std::uint64_t> tokens;  // active jobs as leased
    // allowance per (limit, key): what it may hold now
    std::map<std::pair<std::string, std::string>, std::int64_t> allowed;
    std::map<std::uint64_t, std::vector<std::string>> waiters;  // open long-polls -> queues
    std::uint64_t next_waiter = 0;

    auto commit = [&] {
      Batch b = sched.SealBatch();
      sched.OnCommitted(b.seq);
    };
    auto gates_of = [&](const ModelJob& j) {
      std::vector<std::pair<std::string, std::string>> g;
      for (const auto& [name, l] : limits) {
        if (l.kind && *l.kind != j.kind) continue;
        std::string key = l.key == "concurrency_key" ? j.ckey
                          : l.key == "kind"          ? j.kind
                          : l.key == "queue"         ? j.queue
                          : l.key == "payload.acct"  ? j.acct
                                                     : "";
        g.emplace_back(name, key);
      }
      return g;
    };
    auto state_of = [&](JobId id) -> std::optional<JobState> {
      auto v = sched.Get(id);
      if (!v) return std::nullopt;
      return v->job.state;
    };
    auto counts = [&] {
      std::map<std::pair<std::string, std::string>, std::int64_t> c;
      for (const auto& [id, j] : jobs) {
        if (state_of(id) == JobState::kActive) {
          for (const auto& g : gates_of(j)) ++c[g];
        }
      }
      return c;
    };
    auto admissible = [&](const std::vector<std::string>& qs) {
      const auto c = counts();
      for (const auto& [id, j] : jobs) {
        if (std::find(qs.begin(), qs.end(), j.queue) == qs.end()) continue;
        if (state_of(id) != JobState::kReady) continue;
        bool ok = true;
        for (const auto& g : gates_of(j)) {
          auto it = c.find(g);
          if (it != c.end() && it->second >= limits.at(g.first).cap) ok = false;
        }
        if (ok) return true;
      }
      return false;
    };
    auto reset_allowance = [&] {
      allowed.clear();
      for (const auto& [g, n] : counts()) allowed[g] = std::max(n, limits.at(g.first).cap);
    };
    auto check = [&](const std::string& step) {
      const auto c = counts();
      for (const auto& [g, n] : c) {
        const std::int64_t cap = limits.at(g.first).cap;
        auto it = allowed.find(g);
        const std::int64_t may = it == allowed.end() ? cap : it->second;
        ASSERT_LE(n, may) << step << ": limit " << g.first << " key '" << g.second << "'";
      }
      // Allowances fall back towards the cap as jobs end.
      for (auto& [g, may] : allowed) {
        auto it = c.find(g);
        may = std::max(limits.at(g.first).cap, it == c.end() ? 0 : it->second);
      }
      for (const auto& [w, qs] : waiters) {
        ASSERT_FALSE(admissible(qs)) << step << ": waiter " << w << " left waiting";
      }
      auto v = sched.Footprint();
      ASSERT_LE(v.limit_waiting_lanes, v.lanes + 64) << step;
    };

    for (int step = 0; step < 400; ++step) {
      const std::uint64_t op = rng.Uniform(100);
      std::string what;
      if (op < 30) {
        ModelJob j{queues[rng.Uniform(2)], kinds[rng.Uniform(2)], ckeys[rng.Uniform(4)],
                   accts[rng.Uniform(3)]};
        EnqueueSpec s;
        s.queue = j.queue;
        s.kind = j.kind;
        s.concurrency_key = j.ckey;
        s.payload = j.acct.empty() ? "{}" : R"({"acct":")" + j.acct + "\"}";
        auto r = sched.Enqueue(s);
        ASSERT_TRUE(r.ok());
        jobs[r->id] = j;
        what = "enqueue";
      } else if (op < 55) {
        std::vector<std::string> qs;
        if (rng.Uniform(2)) qs.push_back("q1");
        if (qs.empty() || rng.Uniform(2)) qs.push_back("q2");
        LeaseRequest req;
        req.queues = qs;
        req.max = 1 + static_cast<std::uint32_t>(rng.Uniform(3));
        req.worker_id = "w";
        if (rng.Uniform(4) == 0) {
          // As the broker does: a long-poll leases first and waits only when it got nothing.
          auto got = sched.Lease(req);
          for (const auto& l : got) tokens[l.id] = l.lease.token;
          if (!got.empty()) {
            commit();
            continue;
          }
          const std::uint64_t w = next_waiter++;
          waiters[w] = qs;
          sched.AddWaiter(req, clock.MonoMs() + 1 + static_cast<std::int64_t>(rng.Uniform(5000)),
                          [&, w](std::vector<LeasedJob> got) {
                            waiters.erase(w);
                            for (const auto& l : got) tokens[l.id] = l.lease.token;
                          });
          what = "add waiter";
        } else {
          auto got = sched.Lease(req);
          for (const auto& l : got) tokens[l.id] = l.lease.token;
          if (got.size() < req.max) {
            ASSERT_FALSE(admissible(qs)) << "step " << step << ": a lease came back short";
          }
          what = "lease";
        }
      } else if (op < 85 && !tokens.empty()) {
        what = model::EndRandomLease(sched, rng, tokens);
      } else if (op < 92) {
        clock.Advance(static_cast<std::int64_t>(rng.Uniform(40'000)));
        sched.Tick();
        what = "tick";
      } else {
        const std::string name = "L" + std::to_string(rng.Uniform(3));
        if (rng.Uniform(3) == 0) {
          (void)sched.DeleteLimit(name);
          limits.erase(name);
          what = "delete limit";
        } else {
          ModelLimit l{1 + static_cast<std::int64_t>(rng.Uniform(3)), key_kinds[rng.Uniform(5)],
                       std::nullopt};
          if (rng.Uniform(3) == 0) l.kind = kinds[rng.Uniform(2)];
          flow::LimitSpec spec;
          spec.name = name;
          spec.concurrency = l.cap;
          ASSERT_TRUE(spec.SetKey(l.key).ok() || l.key.empty());
          if (l.key.empty()) spec.key = flow::LimitKeyKind::kNone;
          spec.match_kind = l.kind;
          ASSERT_TRUE(sched.PutLimit(spec).ok());
          limits[name] = l;
          what = "put limit";
        }
        reset_allowance();
      }
      commit();
      // Jobs that ended leave the model; leases that ended leave the token map.
      model::ForgetEnded(sched, jobs, tokens);
      check("step " + std::to_string(step) + " (" + what + ")");
      if (HasFatalFailure()) return;
    }
    sched.Shutdown();
  }
}

}  // namespace
}  // namespace ym

// The hot-path figure of docs/benchmarks.md with a mutex per key over 1000 keys (every lease of
// 100 takes 100 distinct keys; the other lanes wait on their gates). A disabled test:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPath*'
namespace ym {
namespace {

TEST(SchedulerBench, DISABLED_HotPathMutexPer1000Keys) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  flow::LimitSpec spec;
  spec.name = "mutex";
  spec.concurrency = 1;
  ASSERT_TRUE(spec.SetKey("concurrency_key").ok());
  ASSERT_TRUE(s.PutLimit(spec).ok());
  const double ns = bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000, [](std::uint64_t i) {
    return "customer-" + std::to_string(i % 1000);
  });
  std::printf("hot path, mutex per key over 1000 keys: %.0f CPU ns per job\n", ns);
  EXPECT_GT(ns, 0);
}

}  // namespace
}  // namespace ym
