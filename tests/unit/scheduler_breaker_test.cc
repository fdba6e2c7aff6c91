// Circuit breakers wired into the Scheduler (docs/flow-control.md, "Circuit breakers"): a key
// whose jobs keep failing opens, its jobs wait with no attempt burnt (the breaker is asked
// before the lease), the lane waits in a timer until next_open_at, one trial goes through when
// it passes, a failed trial doubles the interval and a successful one closes the breaker; an
// operator's reset serves the waiting lanes at once; a stale outcome is ignored. Ends with a
// randomized model test that checks, after every step, that no job of an open key was leased,
// at most one trial is out per half-open key, and nothing waits that could run.
// ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/limit_set.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "scheduler_hot_path.h"
#include "scheduler_model.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'718'006'400'000;

flow::BreakerConfig Consecutive(std::int64_t n, std::int64_t base = 1000, std::int64_t max = 8000) {
  flow::BreakerConfig c;
  c.consecutive_failures = n;
  c.open_base_ms = base;
  c.open_max_ms = max;
  return c;
}

class SchedulerBreakerTest : public ::testing::Test {
 protected:
  SchedulerBreakerTest() : clock_(kStart), rng_(7) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
  }

  JobId Add(const std::string& ckey) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.concurrency_key = ckey;
    s.max_attempts = 100;
    auto r = sched_->Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  std::vector<LeasedJob> Lease(std::uint32_t max) {
    LeaseRequest req;
    req.queues = {"q"};
    req.max = max;
    req.worker_id = "w";
    auto got = sched_->Lease(req);
    Commit();
    return got;
  }

  void FailNow(const LeasedJob& l) {
    FailSpec f;
    f.retry_in_ms = 0;  // back to ready at once: the breaker alone holds it back
    ASSERT_TRUE(sched_->Fail(l.id, l.lease.token, f).ok());
    Commit();
  }

  void Ack(const LeasedJob& l) {
    ASSERT_TRUE(sched_->Ack(l.id, l.lease.token, "null").ok());
    Commit();
  }

  void PutBreaker(const flow::BreakerConfig& c) {
    flow::LimitSpec spec;
    spec.name = "cb";
    spec.key = flow::LimitKeyKind::kConcurrencyKey;
    spec.breaker = c;
    auto r = sched_->PutLimit(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Commit();
  }

  flow::BreakerState StateOf(const std::string& key) {
    const std::optional<LimitInfo> info = sched_->GetLimit("cb");
    for (const auto& [k, st] : info->breakers) {
      if (k == key) return st;
    }
    return flow::BreakerState{};
  }

  // Opens key "a" by failing `n` of its jobs (each back to ready at once).
  void Trip(int n) {
    for (int i = 0; i < n; ++i) {
      auto got = Lease(1);
      ASSERT_EQ(got.size(), 1u);
      FailNow(got[0]);
    }
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerBreakerTest, OpensAfterNFailuresAndTheLaneWaitsWithNoAttemptBurnt) {
  PutBreaker(Consecutive(3));
  const JobId a1 = Add("a");
  const JobId a2 = Add("a");
  const JobId b1 = Add("b");
  // Fail a's jobs three times in a row (b is leased in between and stays untouched).
  int a_failures = 0;
  while (a_failures < 3) {
    auto got = Lease(1);
    ASSERT_EQ(got.size(), 1u);
    if (got[0].id == b1) continue;  // keep b active: it does not count for a
    FailNow(got[0]);
    ++a_failures;
  }
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kOpen);
  const std::int32_t attempts1 = sched_->Get(a1)->job.attempts;
  const std::int32_t attempts2 = sched_->Get(a2)->job.attempts;
  EXPECT_EQ(attempts1 + attempts2, 3);
  // Open: nothing of a is leased, however often workers ask, and no attempt is counted.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Lease(10).empty());
  EXPECT_EQ(sched_->Get(a1)->job.attempts + sched_->Get(a2)->job.attempts, 3);
  // Why and until when, on the wall clock; the queue counts them under circuit_open.
  for (JobId id : {a1, a2}) {
    const auto v = sched_->Get(id);
    ASSERT_EQ(v->job.state, JobState::kReady);
    EXPECT_EQ(v->blocked_reason, "circuit_open");
    EXPECT_EQ(v->blocked_until_ms, kStart + 1000);
  }
  EXPECT_EQ(sched_->Queue("q")->blocked.at("circuit_open"), 2u);
  EXPECT_EQ(StateOf("a").next_open_at_ms, kStart + 1000);
  EXPECT_EQ(sched_->Footprint().timed_lanes, 1u);
  EXPECT_EQ(sched_->NextDeadlineInMs(), 1000) << "the core thread wakes when it half-opens";
  // A long-poll waits and is answered at next_open_at with exactly one job: the trial.
  std::vector<LeasedJob> served;
  bool answered = false;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 5;
  req.worker_id = "w2";
  sched_->AddWaiter(req, clock_.MonoMs() + 60'000, [&](std::vector<LeasedJob> jobs) {
    answered = true;
    served = std::move(jobs);
  });
  clock_.Advance(999);
  sched_->Tick();
  EXPECT_FALSE(answered);
  clock_.Advance(1);
  sched_->Tick();
  ASSERT_TRUE(answered);
  ASSERT_EQ(served.size(), 1u) << "half-open lets exactly one trial through";
  EXPECT_TRUE(served[0].id == a1 || served[0].id == a2);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kHalfOpen);
  EXPECT_TRUE(StateOf("a").trial_in_flight);
  EXPECT_TRUE(Lease(10).empty()) << "no second trial while the first is out";
  const JobId other = served[0].id == a1 ? a2 : a1;
  EXPECT_EQ(sched_->Get(other)->blocked_reason, "circuit_open");
  EXPECT_EQ(sched_->Get(other)->blocked_until_ms, 0) << "at the trial's outcome, not a time";
  EXPECT_EQ(sched_->Footprint().limit_waiting_lanes, 1u) << "waits for the trial, no timer";
  // The trial succeeds: closed, and the lane that waited for it runs at once.
  Ack(served[0]);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kClosed);
  auto rest = Lease(10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, other);
  EXPECT_EQ(sched_->Footprint().breaker_holds, 2u) << "b and the last a hold tickets";
}

TEST_F(SchedulerBreakerTest, AFailedTrialDoublesTheIntervalUpToTheCapAndASuccessResetsIt) {
  PutBreaker(Consecutive(1, 1000, 3000));
  Add("a");
  Trip(1);
  std::int64_t expected = 1000;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const flow::BreakerState st = StateOf("a");
    ASSERT_EQ(st.phase, flow::BreakerPhase::kOpen);
    EXPECT_EQ(st.open_interval_ms, expected);
    EXPECT_EQ(st.next_open_at_ms, clock_.NowMs() + expected);
    clock_.Advance(expected - 1);
    sched_->Tick();
    EXPECT_TRUE(Lease(1).empty());
    clock_.Advance(1);
    sched_->Tick();
    auto trial = Lease(1);
    ASSERT_EQ(trial.size(), 1u);
    FailNow(trial[0]);  // the trial fails: open again, for twice as long (capped at 3000)
    expected = std::min<std::int64_t>(expected * 2, 3000);
  }
  clock_.Advance(3000);
  sched_->Tick();
  auto trial = Lease(1);
  ASSERT_EQ(trial.size(), 1u);
  Ack(trial[0]);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kClosed);
  // The growth starts over: the next trip opens for the base interval.
  Add("a");
  Trip(1);
  EXPECT_EQ(StateOf("a").open_interval_ms, 1000);
}

TEST_F(SchedulerBreakerTest, EveryWayAJobEndsReportsToItsBreaker) {
  // A lease expiry and an attempt timeout are failures; a released lost reply and the end of a
  // cancelled job are neither (an abandoned trial lets the next one through).
  PutBreaker(Consecutive(2));
  Add("a");
  Add("a");
  auto got = Lease(2);
  ASSERT_EQ(got.size(), 2u);
  clock_.Advance(got.empty() ? 0 : 31'000);  // past the default lease
  sched_->Tick();
  Commit();
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kOpen) << "two lease expiries tripped it";
  clock_.Advance(1000);
  sched_->Tick();
  auto trial = Lease(5);
  ASSERT_EQ(trial.size(), 1u);
  sched_->Release(trial[0].id, trial[0].lease.token);  // the lease reply was lost
  Commit();
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kHalfOpen);
  EXPECT_FALSE(StateOf("a").trial_in_flight) << "abandoned: the slot is free again";
  trial = Lease(5);
  ASSERT_EQ(trial.size(), 1u) << "the next trial goes through at once";
  ASSERT_TRUE(sched_->Cancel(trial[0].id).ok());
  FailSpec f;
  f.message = "cancelled by the worker";
  auto ended = sched_->Fail(trial[0].id, trial[0].lease.token, f);
  Commit();
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(*ended, JobState::kCancelled);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kHalfOpen) << "a cancelled trial is no outcome";
  trial = Lease(5);
  ASSERT_EQ(trial.size(), 1u);
  Ack(trial[0]);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kClosed);
  EXPECT_EQ(sched_->Footprint().breaker_keys, 0u) << "closed, clean, nothing out: dropped";
  EXPECT_EQ(sched_->Footprint().breaker_holds, 0u);
}

TEST_F(SchedulerBreakerTest, AnAttemptTimeoutIsAFailure) {
  PutBreaker(Consecutive(1));
  EnqueueSpec s;
  s.queue = "q";
  s.kind = "k";
  s.concurrency_key = "a";
  s.timeout_ms = 5000;
  ASSERT_TRUE(sched_->Enqueue(s).ok());
  Commit();
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  clock_.Advance(5000);
  EXPECT_EQ(sched_->Ack(got[0].id, got[0].lease.token, "null").status().code(), Code::kStaleLease);
  Commit();
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kOpen);
}

TEST_F(SchedulerBreakerTest, AResetServesTheWaitingLanesAtOnce) {
  PutBreaker(Consecutive(1, 60'000, 60'000));
  Add("a");
  Add("a");
  Add("b");
  Add("b");
  // Open a and b.
  for (int i = 0; i < 2; ++i) {
    auto got = Lease(1);
    ASSERT_EQ(got.size(), 1u);
    FailNow(got[0]);
  }
  ASSERT_EQ(sched_->GetLimit("cb")->breaker_tripped, 2u);
  ASSERT_TRUE(Lease(10).empty());
  bool answered = false;
  std::vector<LeasedJob> served;
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 10;
  req.worker_id = "w2";
  sched_->AddWaiter(req, clock_.MonoMs() + 60'000, [&](std::vector<LeasedJob> jobs) {
    answered = true;
    served = std::move(jobs);
  });
  EXPECT_EQ(sched_->ResetBreaker("nope", nullptr).status().code(), Code::kNotFound);
  const std::string a = "a";
  auto r = sched_->ResetBreaker("cb", &a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->reset_tripped, 1u);
  EXPECT_EQ(r->breaker_tripped, 1u) << "b stays open";
  ASSERT_TRUE(answered) << "the long-poll is served by the reset, not 60 s later";
  ASSERT_EQ(served.size(), 2u) << "both of a's jobs (closed: no trial limit)";
  EXPECT_TRUE(Lease(10).empty()) << "b is still open";
  r = sched_->ResetBreaker("cb", nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reset_tripped, 1u);
  EXPECT_EQ(Lease(10).size(), 2u);
  EXPECT_EQ(sched_->Footprint().timed_lanes, 0u);
}

TEST_F(SchedulerBreakerTest, AResetAlsoWakesALaneWaitingForATrial) {
  PutBreaker(Consecutive(1));
  Add("a");
  Add("a");
  Trip(1);
  clock_.Advance(1000);
  sched_->Tick();
  auto trial = Lease(5);
  ASSERT_EQ(trial.size(), 1u);
  EXPECT_TRUE(Lease(5).empty());
  ASSERT_TRUE(sched_->ResetBreaker("cb", nullptr).ok());
  auto rest = Lease(5);
  ASSERT_EQ(rest.size(), 1u) << "closed by the reset: the other job runs";
  // The old trial's outcome (from before the reset) is ignored: one failure with
  // consecutive_failures 1 would open it again.
  FailNow(trial[0]);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kClosed);
}

TEST_F(SchedulerBreakerTest, AStaleOutcomeFromBeforeTheOpenIsIgnored) {
  PutBreaker(Consecutive(2));
  for (int i = 0; i < 3; ++i) Add("a");
  auto got = Lease(3);
  ASSERT_EQ(got.size(), 3u) << "closed: all three run at once";
  FailNow(got[0]);
  FailNow(got[1]);
  ASSERT_EQ(StateOf("a").phase, flow::BreakerPhase::kOpen);
  const std::int64_t next_open = StateOf("a").next_open_at_ms;
  // The third job was admitted while closed; its failure after the open must not extend the
  // interval nor count as a trial.
  clock_.Advance(500);
  FailNow(got[2]);
  EXPECT_EQ(StateOf("a").phase, flow::BreakerPhase::kOpen);
  EXPECT_EQ(StateOf("a").next_open_at_ms, next_open);
  EXPECT_EQ(StateOf("a").open_interval_ms, 1000);
}

TEST_F(SchedulerBreakerTest, DeletingTheLimitReleasesItsJobsAndItsTicketsCountNowhere) {
  PutBreaker(Consecutive(1, 3'600'000, 3'600'000));
  Add("a");
  Add("a");
  Add("a");
  auto first = Lease(2);
  ASSERT_EQ(first.size(), 2u);
  FailNow(first[0]);
  ASSERT_TRUE(Lease(5).empty());
  ASSERT_TRUE(sched_->DeleteLimit("cb").ok());
  Commit();
  EXPECT_EQ(Lease(5).size(), 2u) << "the open breaker went with its limit";
  PutBreaker(Consecutive(1, 3'600'000, 3'600'000));
  FailNow(first[1]);  // a ticket of the deleted limit's breaker
  EXPECT_EQ(sched_->GetLimit("cb")->breaker_tripped, 0u);
}

TEST_F(SchedulerBreakerTest, ABreakerPerKindLetsOtherKindsRun) {
  flow::LimitSpec spec;
  spec.name = "cb";
  spec.key = flow::LimitKeyKind::kKind;
  spec.breaker = Consecutive(1);
  ASSERT_TRUE(sched_->PutLimit(spec).ok());
  Commit();
  for (const char* kind : {"send", "send", "resize"}) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = kind;
    ASSERT_TRUE(sched_->Enqueue(s).ok());
    Commit();
  }
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].kind, "send");
  FailNow(got[0]);
  auto rest = Lease(10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].kind, "resize");
  EXPECT_EQ(sched_->Queue("q")->blocked.at("circuit_open"), 2u);
}

TEST_F(SchedulerBreakerTest, AJobNoBreakerMatchesHoldsNoTicket) {
  // Regression: the scratch tickets of a lease were not cleared after they were kept, so a job
  // of a lane without gates leased next in the same call got copies of them.
  flow::LimitSpec spec;
  spec.name = "cb";
  spec.key = flow::LimitKeyKind::kKind;
  spec.match_kind = "send";
  spec.breaker = Consecutive(1);
  ASSERT_TRUE(sched_->PutLimit(spec).ok());
  Commit();
  for (const char* kind : {"send", "other"}) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = kind;
    ASSERT_TRUE(sched_->Enqueue(s).ok());
    Commit();
  }
  auto got = Lease(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, "send");
  EXPECT_EQ(sched_->Footprint().breaker_holds, 1u) << "only the send job holds a ticket";
}

// --- Randomized model test --------------------------------------------------------------------

// One keyed breaker (random consecutive_failures and interval cap) and, on some seeds, a keyed
// cap of 1 in queue q1 with it; random enqueues, leases, long-polls, acks, fails, lease
// expiries, releases, cancels, resets and clock steps. A reference model of each key's breaker
// (the rules of breaker.h, fed the same outcomes) runs alongside. After every step: (1) no job
// of a key the model holds open was leased; (2) at most one trial is out per half-open key; (3)
// the scheduler's view of every key's phase and next_open_at matches the model; (4) a lease that
// comes back short, and a long-poll left waiting, has no admissible job in its queues.
struct ModelBreaker {
  flow::BreakerPhase phase = flow::BreakerPhase::kClosed;
  std::int64_t run = 0;
  std::int64_t interval = 0;
  std::int64_t opens = 0;
  std::int64_t next_open = 0;
  std::uint64_t epoch = 0;
  bool trial_out = false;
};

struct ModelJob {
  std::string queue, ckey;
};

struct Out {
  std::uint64_t token;
  std::uint64_t epoch;  // the model epoch it was admitted in
  bool trial;
};

TEST(SchedulerBreakerModel, NoOpenKeyIsLeasedAndOneTrialAtATime) {
  const char* queues[] = {"q1", "q2"};
  const char* ckeys[] = {"a", "b", "c"};
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ManualClock clock(kStart);
    Rng rng(seed);
    Rng sched_rng(seed + 1000);
    SchedulerOptions options;
    Scheduler sched(clock, sched_rng, options);
    const flow::BreakerConfig cfg =
        Consecutive(1 + static_cast<std::int64_t>(rng.Uniform(3)),
                    100 + static_cast<std::int64_t>(rng.Uniform(900)), 4000);
    const bool with_cap = rng.Uniform(2) == 0;
    {
      flow::LimitSpec b;
      b.name = "cb";
      b.key = flow::LimitKeyKind::kConcurrencyKey;
      b.breaker = cfg;
      ASSERT_TRUE(sched.PutLimit(b).ok());
      if (with_cap) {
        flow::LimitSpec c;
        c.name = "cap";
        c.key = flow::LimitKeyKind::kConcurrencyKey;
        c.concurrency = 1;
        c.match_queue = "q1";
        ASSERT_TRUE(sched.PutLimit(c).ok());
      }
    }
    std::map<JobId, ModelJob> jobs;
    std::map<JobId, Out> out;  // active jobs as the model sees them
    std::map<std::string, ModelBreaker> model;
    std::map<std::uint64_t, std::vector<std::string>> waiters;
    std::uint64_t next_waiter = 0;
    std::string violation;

    auto model_admit = [&](const std::string& key, std::int64_t mono, bool* trial) -> bool {
      ModelBreaker& m = model[key];
      *trial = false;
      switch (m.phase) {
        case flow::BreakerPhase::kClosed:
          return true;
        case flow::BreakerPhase::kOpen:
          if (mono < m.next_open) return false;
          m.phase = flow::BreakerPhase::kHalfOpen;
          ++m.epoch;
          m.trial_out = true;
          *trial = true;
          return true;
        case flow::BreakerPhase::kHalfOpen:
          if (m.trial_out) return false;
          m.trial_out = true;
          *trial = true;
          return true;
      }
      return false;
    };
    auto model_open = [&](ModelBreaker& m, std::int64_t mono) {
      m.interval = m.opens == 0 ? cfg.open_base_ms : std::min(m.interval * 2, cfg.open_max_ms);
      ++m.opens;
      m.phase = flow::BreakerPhase::kOpen;
      ++m.epoch;
      m.next_open = mono + m.interval;
      m.trial_out = false;
      m.run = 0;
    };
    auto model_close = [&](ModelBreaker& m) {
      m = ModelBreaker{flow::BreakerPhase::kClosed, 0, 0, 0, 0, m.epoch + 1, false};
    };
    // 0 success, 1 failure, 2 abandoned.
    // The end of the lease `o` of job `id` (erased from `out` unless re-leased since).
    auto model_end = [&](JobId id, const Out o, int outcome) {  // a copy: `out` may drop it
      auto it = out.find(id);
      if (it != out.end() && it->second.token == o.token) out.erase(it);
      ModelBreaker& m = model[jobs.at(id).ckey];
      if (o.epoch != m.epoch) return;  // stale
      const std::int64_t mono = clock.MonoMs();
      if (m.phase == flow::BreakerPhase::kClosed) {
        if (outcome == 2) return;
        m.run = outcome == 1 ? m.run + 1 : 0;
        if (m.run >= cfg.consecutive_failures) model_open(m, mono);
      } else if (m.phase == flow::BreakerPhase::kHalfOpen) {
        if (outcome == 0) {
          model_close(m);
        } else if (outcome == 1) {
          model_open(m, mono);
        } else {
          ++m.epoch;
          m.trial_out = false;
        }
      }
    };
    auto model_report = [&](JobId id, int outcome) {
      auto it = out.find(id);
      if (it != out.end()) model_end(id, it->second, outcome);
    };
    auto record = [&](const std::vector<LeasedJob>& got) {
      for (const LeasedJob& l : got) {
        const std::string& key = jobs.at(l.id).ckey;
        bool trial = false;
        if (!model_admit(key, clock.MonoMs(), &trial)) {
          violation = "job " + std::to_string(l.id) + " of key " + key +
                      " was leased while the model holds it open or its trial out";
        }
        out[l.id] = Out{l.lease.token, model[key].epoch, trial};
      }
    };
    auto commit = [&] {
      Batch b = sched.SealBatch();
      sched.OnCommitted(b.seq);
    };
    auto state_of = [&](JobId id) -> std::optional<JobState> {
      auto v = sched.Get(id);
      if (!v) return std::nullopt;
      return v->job.state;
    };
    auto admissible = [&](const std::vector<std::string>& qs) {
      std::map<std::string, int> active_q1;
      for (const auto& [id, j] : jobs) {
        if (j.queue == "q1" && out.count(id)) ++active_q1[j.ckey];
      }
      for (const auto& [id, j] : jobs) {
        if (std::find(qs.begin(), qs.end(), j.queue) == qs.end()) continue;
        if (state_of(id) != JobState::kReady) continue;
        if (with_cap && j.queue == "q1" && active_q1[j.ckey] >= 1) continue;
        const ModelBreaker& m = model[j.ckey];
        if (m.phase == flow::BreakerPhase::kOpen && clock.MonoMs() < m.next_open) continue;
        if (m.phase == flow::BreakerPhase::kHalfOpen && m.trial_out) continue;
        return true;
      }
      return false;
    };
    auto check = [&](const std::string& step) {
      ASSERT_TRUE(violation.empty()) << step << ": " << violation;
      std::map<std::string, int> trials;
      for (const auto& [id, o] : out) {
        if (o.trial && o.epoch == model[jobs.at(id).ckey].epoch) ++trials[jobs.at(id).ckey];
      }
      for (const auto& [k, n] : trials) ASSERT_LE(n, 1) << step << ": trials out for " << k;
      std::map<std::string, flow::BreakerState> shown;
      const std::optional<LimitInfo> info = sched.GetLimit("cb");
      for (const auto& [k, st] : info->breakers) shown[k] = st;
      for (const auto& [k, m] : model) {
        const flow::BreakerPhase phase =
            shown.count(k) ? shown[k].phase : flow::BreakerPhase::kClosed;
        ASSERT_EQ(phase, m.phase) << step << ": phase of " << k;
        if (m.phase == flow::BreakerPhase::kOpen) {
          // Shown on the wall clock; ManualClock keeps wall - mono fixed.
          ASSERT_EQ(shown[k].next_open_at_ms - clock.NowMs(), m.next_open - clock.MonoMs())
              << step << ": next_open_at of " << k;
        }
        if (m.phase == flow::BreakerPhase::kHalfOpen) {
          ASSERT_EQ(shown[k].trial_in_flight, m.trial_out) << step << ": trial of " << k;
        }
      }
      for (const auto& [w, qs] : waiters) {
        ASSERT_FALSE(admissible(qs)) << step << ": waiter " << w << " left waiting";
      }
    };
    for (int step = 0; step < 400; ++step) {
      const std::uint64_t op = rng.Uniform(100);
      std::string what;
      if (op < 25) {
        ModelJob j{queues[rng.Uniform(2)], ckeys[rng.Uniform(3)]};
        EnqueueSpec s;
        s.queue = j.queue;
        s.kind = "k";
        s.concurrency_key = j.ckey;
        s.max_attempts = 1000;
        auto r = sched.Enqueue(s);
        ASSERT_TRUE(r.ok());
        jobs[r->id] = j;
        what = "enqueue";
      } else if (op < 50) {
        what = model::LeaseOrWait(sched, rng, clock, record, admissible, waiters, next_waiter);
      } else if (op < 82 && !out.empty()) {
        auto it = out.begin();
        std::advance(it, static_cast<long>(rng.Uniform(out.size())));
        const JobId id = it->first;
        const std::uint64_t token = it->second.token;
        // The model hears the outcome first: the scheduler reports it before it serves the
        // long-polls that the job's end may wake (which record their jobs).
        switch (rng.Uniform(6)) {
          case 0:
          case 1:
            model_report(id, 0);
            ASSERT_TRUE(sched.Ack(id, token, "null").ok());
            what = "ack";
            break;
          case 2:
          case 3: {
            FailSpec f;
            f.retry_in_ms = 0;
            model_report(id, 1);
            ASSERT_TRUE(sched.Fail(id, token, f).ok());
            what = "fail";
            break;
          }
          case 4:
            model_report(id, 2);
            sched.Release(id, token);
            what = "release";
            break;
          default: {
            // A cancel, then the worker gives up: the job ends cancelled, no outcome.
            ASSERT_TRUE(sched.Cancel(id).ok());
            model_report(id, 2);
            FailSpec f;
            ASSERT_TRUE(sched.Fail(id, token, f).ok());
            what = "cancel";
          }
        }
      } else if (op < 85) {
        const bool all = rng.Uniform(2) == 0;
        const std::string key = ckeys[rng.Uniform(3)];
        // The model first: the reset serves long-polls, which record their jobs.
        for (auto& [k, m] : model) {
          if (all || k == key) model_close(m);
        }
        ASSERT_TRUE(sched.ResetBreaker("cb", all ? nullptr : &key).ok());
        what = "reset";
      } else {
        // Mostly below an interval, sometimes past a lease (30 s: expiries are failures).
        const std::int64_t step_ms = rng.Uniform(20) == 0
                                         ? 30'000 + static_cast<std::int64_t>(rng.Uniform(1000))
                                         : static_cast<std::int64_t>(rng.Uniform(1500));
        clock.Advance(step_ms);
        // Leases that expire in this Tick are failures, in due order. They are given to the
        // model after the Tick: a job leased within it (by a long-poll served when an expired
        // job came back) was admitted before the expiries that follow it, and a trial can only
        // start in a Tick in which no counted failure opened the key (the interval is > 0).
        // An expired job may come back ready and be leased again within the Tick: the lease
        // that ended is the one captured here.
        std::vector<std::tuple<std::int64_t, JobId, Out>> due;
        for (const auto& [id, o] : out) {
          auto v = sched.Get(id);
          if (v && v->lease && v->lease->expires_at_ms <= clock.NowMs()) {
            due.emplace_back(v->lease->expires_at_ms, id, o);
          }
        }
        std::sort(due.begin(), due.end(), [](const auto& x, const auto& y) {
          return std::get<0>(x) != std::get<0>(y) ? std::get<0>(x) < std::get<0>(y)
                                                  : std::get<1>(x) < std::get<1>(y);
        });
        sched.Tick();
        for (const auto& [at, id, o] : due) model_end(id, o, 1);
        what = "tick";
      }
      commit();
      check("step " + std::to_string(step) + " (" + what + ")");
      if (HasFatalFailure()) return;
    }
    sched.Shutdown();
  }
}

}  // namespace
}  // namespace ym

// The hot-path figure of docs/benchmarks.md ("Circuit breakers on the hot path"): a breaker per
// key over 1000 keys, every job acked (so every breaker stays closed): what admission and the
// report at the end cost. A disabled test:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPath*'
namespace ym {
namespace {

TEST(SchedulerBench, DISABLED_HotPathBreakerPer1000Keys) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  flow::LimitSpec spec;
  spec.name = "cb";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.breaker = flow::BreakerConfig{};
  ASSERT_TRUE(s.PutLimit(spec).ok());
  const double ns = bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000, [](std::uint64_t i) {
    return "customer-" + std::to_string(i % 1000);
  });
  std::printf("hot path, a breaker per key over 1000 keys: %.0f CPU ns per job\n", ns);
  EXPECT_GT(ns, 0);
  EXPECT_EQ(s.Footprint().breaker_holds, 0u) << "every ack reported its ticket";
}

}  // namespace
}  // namespace ym
