// Rates and calendar quotas wired into the Scheduler (docs/flow-control.md): a refused lane
// leaves the rotation and waits in a timer heap until its gate opens, the next deadline says
// when, a long-poll is served exactly then, blocked_reason and the queue's blocked counts say
// why and until when. Ends with a randomized model test of caps, rates and quotas together that
// checks every bound, and that nothing waits while it could run, after every step.
// ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
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

constexpr std::int64_t kStart = 1'718'006'400'000;  // 2024-06-10 08:00 UTC
constexpr std::int64_t kHour = 3'600'000;

class SchedulerRateQuotaTest : public ::testing::Test {
 protected:
  SchedulerRateQuotaTest() : clock_(kStart), rng_(7) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  void Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
    last_batch_ = std::move(b);
  }

  JobId Add(const std::string& ckey, const std::string& queue = "q") {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = "k";
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

  void Put(const flow::LimitSpec& spec) {
    auto r = sched_->PutLimit(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Commit();
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
  Batch last_batch_;
};

TEST_F(SchedulerRateQuotaTest, ARateLimitedKeyWaitsForItsTimeAndALongPollIsServedThen) {
  flow::LimitSpec spec;
  spec.name = "api";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.rate = flow::GcraConfig{1, 1000, 1};
  Put(spec);
  std::map<JobId, std::string> key_of;
  for (int i = 0; i < 3; ++i) key_of[Add("a")] = "a";
  key_of[Add("b")] = "b";
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 2u) << "one of each key: the rest of a's lane waits, b is not held up";
  EXPECT_NE(key_of[got[0].id], key_of[got[1].id]);
  EXPECT_TRUE(Lease(10).empty());
  // The waiting jobs say why and until when (wall clock).
  std::size_t rate_limited = 0;
  for (const auto& [id, key] : key_of) {
    const auto v = sched_->Get(id);
    if (v->job.state != JobState::kReady) continue;
    EXPECT_EQ(v->blocked_reason, "rate_limited");
    EXPECT_EQ(v->blocked_until_ms, kStart + 1000);
    ++rate_limited;
  }
  EXPECT_EQ(rate_limited, 2u);
  EXPECT_EQ(sched_->Queue("q")->blocked.at("rate_limited"), 2u);
  EXPECT_EQ(sched_->Footprint().timed_lanes, 1u);
  EXPECT_EQ(sched_->NextDeadlineInMs(), 1000) << "the core thread wakes when the rate opens";
  // A long-poll waits (no spin) and is answered when the rate opens, not before.
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
  ASSERT_EQ(served.size(), 1u) << "exactly one more start of key a at t+1000";
  EXPECT_EQ(key_of[served[0].id], "a");
  EXPECT_EQ(sched_->Footprint().timed_lanes, 1u) << "the last a waits again";
  EXPECT_EQ(sched_->Queue("q")->blocked.at("rate_limited"), 1u);
}

TEST_F(SchedulerRateQuotaTest,
       AQuotaOpensAtTheNextLocalMidnightAndItsCountsAreWrittenWithTheLease) {
  flow::LimitSpec spec;
  spec.name = "daily";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.quota = flow::LimitQuota{2, flow::CalendarPeriod::kDay, "Asia/Tokyo"};
  Put(spec);
  for (int i = 0; i < 3; ++i) Add("acct");
  const auto first = Lease(10);
  ASSERT_EQ(first.size(), 2u);
  // The lease's batch holds the count of each start, the first one dropping older windows.
  std::vector<PutQuotaCount> counts;
  for (const Mutation& m : last_batch_.mutations) {
    if (const auto* c = std::get_if<PutQuotaCount>(&m)) counts.push_back(*c);
  }
  ASSERT_EQ(counts.size(), 2u);
  const std::int64_t tokyo_midnight = kStart - 17 * kHour;  // 2024-06-10 00:00 JST (UTC+9)
  EXPECT_EQ(counts[0].window_start_ms, tokyo_midnight);
  EXPECT_EQ(counts[0].drop_before_ms, tokyo_midnight);
  EXPECT_EQ(counts[1].used, 2);
  EXPECT_EQ(counts[1].drop_before_ms, std::numeric_limits<std::int64_t>::min());
  EXPECT_TRUE(Lease(10).empty());
  const auto info = sched_->GetLimit("daily");
  EXPECT_EQ(info->quota_window.start_ms, tokyo_midnight);
  ASSERT_EQ(info->quota_used.size(), 1u);
  EXPECT_EQ(info->quota_used[0].second, 2);
  for (const LeasedJob& l : first) ASSERT_TRUE(sched_->Ack(l.id, l.lease.token, "null").ok());
  Commit();
  EXPECT_TRUE(Lease(10).empty()) << "ended starts still count";
  EXPECT_EQ(sched_->Get(first[0].id + 2)->blocked_reason, "quota_exhausted");
  const std::int64_t opens = tokyo_midnight + 24 * kHour;
  clock_.Set(opens - 10);
  sched_->Tick();
  EXPECT_EQ(sched_->NextDeadlineInMs(), 10) << "the core thread wakes when the window opens";
  clock_.Set(opens - 1);
  sched_->Tick();
  EXPECT_TRUE(Lease(10).empty());
  clock_.Set(opens);
  sched_->Tick();
  EXPECT_EQ(Lease(10).size(), 1u);
}

// Exactly the leases whose admission counted a quota start are marked, so that their reply
// waits for the batch holding the count in every --lease-reply mode (Broker::ReplyLeased); the
// others keep the immediate reply. One lease mixes lanes with a quota, with other gates and
// with none, so a mark can neither leak to the next lane nor be missed.
TEST_F(SchedulerRateQuotaTest, ExactlyTheLeasesThatCountedAQuotaAreMarked) {
  flow::LimitSpec quota;
  quota.name = "metered";
  quota.match_kind = "metered";
  quota.key = flow::LimitKeyKind::kConcurrencyKey;
  quota.quota = flow::LimitQuota{3, flow::CalendarPeriod::kDay, "UTC"};
  Put(quota);
  flow::LimitSpec cap;
  cap.name = "capped";
  cap.match_kind = "capped";
  cap.concurrency = 100;
  cap.rate = flow::GcraConfig{100, 1000, 100};
  Put(cap);
  std::map<JobId, std::string> kind_of;
  for (const char* kind : {"metered", "capped", "free"}) {
    for (int i = 0; i < 3; ++i) {
      EnqueueSpec s;
      s.queue = "q";
      s.kind = kind;
      s.concurrency_key = "k" + std::to_string(i % 2);
      auto r = sched_->Enqueue(s);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      kind_of[r->id] = kind;
    }
  }
  Commit();
  // The quota lets 3 per key start (k0 has 2 jobs, k1 one): all of them.
  auto got = Lease(100);
  ASSERT_EQ(got.size(), 9u);
  std::size_t marked = 0;
  for (const LeasedJob& l : got) {
    EXPECT_EQ(l.quota_counted, kind_of[l.id] == "metered") << kind_of[l.id] << " " << l.id;
    marked += l.quota_counted;
  }
  EXPECT_EQ(marked, 3u);
  std::size_t counts = 0;
  for (const Mutation& m : last_batch_.mutations)
    counts += std::holds_alternative<PutQuotaCount>(m);
  EXPECT_EQ(counts, 3u) << "one count per marked lease, in the lease's batch";
  // A job released and leased again counts (and is marked) again.
  for (const LeasedJob& l : got) {
    if (kind_of[l.id] == "metered" && l.attempt == 1) {
      sched_->Release(l.id, l.lease.token);
      Commit();
      break;
    }
  }
  auto again = Lease(100);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].quota_counted);
}

TEST_F(SchedulerRateQuotaTest, DeletingARateLimitReleasesItsWaitingLaneAtOnce) {
  flow::LimitSpec spec;
  spec.name = "slow";
  spec.rate = flow::GcraConfig{1, 3'600'000, 1};
  Put(spec);
  Add("");
  Add("");
  ASSERT_EQ(Lease(10).size(), 1u);
  EXPECT_TRUE(Lease(10).empty());
  ASSERT_TRUE(sched_->DeleteLimit("slow").ok());
  Commit();
  EXPECT_EQ(Lease(10).size(), 1u);
  EXPECT_EQ(sched_->Footprint().timed_lanes, 0u);
}

TEST_F(SchedulerRateQuotaTest, StaleTimerEntriesAreBoundedAcrossRebinds) {
  flow::LimitSpec spec;
  spec.name = "r";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.rate = flow::GcraConfig{1, 3'600'000, 1};
  Put(spec);
  for (int k = 0; k < 10; ++k) {
    Add("k" + std::to_string(k));
    Add("k" + std::to_string(k));
  }
  ASSERT_EQ(Lease(100).size(), 10u);
  // Every PutLimit rebinds (lanes rebuilt, timers stale); the lanes then wait again.
  for (int round = 0; round < 200; ++round) {
    spec.match_kind = round % 2 ? std::optional<std::string>("k") : std::nullopt;
    Put(spec);
    EXPECT_TRUE(Lease(100).empty());
    sched_->Tick();
  }
  const auto f = sched_->Footprint();
  EXPECT_EQ(f.timed_lanes, 10u);
  EXPECT_LE(f.lane_timer_entries, 2 * f.timed_lanes + 64);
}

// --- Randomized model test --------------------------------------------------------------------

// Fixed limits (a keyed rate, a per-queue daily quota, a keyed cap, each on its own or several
// on one job), random enqueues, leases, long-polls, acks, fails, releases, cancels and clock
// steps (ms to hours). Every start is recorded by the model as it is handed out. After every
// step: (1) the starts of each rate key satisfy the window bound count * W / period + burst;
// (2) no quota key has more starts than its count in any UTC day; (3) no cap key has more active
// jobs than its cap; (4) a lease that comes back short, and any long-poll still waiting, has no
// job in its queues that the model finds admissible now.
struct RateModel {
  flow::GcraConfig cfg;
};

using model::RateAdmits;

struct ModelJob {
  std::string queue, ckey;
};

TEST(SchedulerRateQuotaModel, EveryBoundHoldsAndNothingWaitsThatCouldRun) {
  const char* queues[] = {"q1", "q2"};
  const char* ckeys[] = {"a", "b", "c"};
  for (std::uint64_t seed = 1; seed <= test::ModelSeeds(40); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ManualClock clock(kStart);
    Rng rng(seed);
    Rng sched_rng(seed + 1000);
    Scheduler sched(clock, sched_rng, SchedulerOptions{});
    const flow::GcraConfig rate{1 + static_cast<std::int64_t>(rng.Uniform(4)),
                                rng.Uniform(2) ? 1000 : 7,
                                1 + static_cast<std::int64_t>(rng.Uniform(3))};
    const std::int64_t quota = 2 + static_cast<std::int64_t>(rng.Uniform(6));
    const std::int64_t cap = 1 + static_cast<std::int64_t>(rng.Uniform(2));
    {
      flow::LimitSpec r;
      r.name = "rate";
      r.key = flow::LimitKeyKind::kConcurrencyKey;
      r.rate = rate;
      ASSERT_TRUE(sched.PutLimit(r).ok());
      flow::LimitSpec q;
      q.name = "quota";
      q.key = flow::LimitKeyKind::kQueue;
      q.quota = flow::LimitQuota{quota, flow::CalendarPeriod::kDay, "UTC"};
      ASSERT_TRUE(sched.PutLimit(q).ok());
      flow::LimitSpec c;
      c.name = "cap";
      c.key = flow::LimitKeyKind::kConcurrencyKey;
      c.concurrency = cap;
      c.match_queue = "q1";
      ASSERT_TRUE(sched.PutLimit(c).ok());
    }
    std::map<JobId, ModelJob> jobs;
    std::map<JobId, std::uint64_t> tokens;
    std::map<std::string, std::vector<std::int64_t>> rate_starts;  // ckey -> mono times
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> quota_starts;  // (queue, day)
    std::map<std::uint64_t, std::vector<std::string>> waiters;
    std::uint64_t next_waiter = 0;
    auto day_of = [](std::int64_t wall) { return wall / (24 * kHour); };
    auto record = [&](const std::vector<LeasedJob>& got) {
      for (const LeasedJob& l : got) {
        tokens[l.id] = l.lease.token;
        const ModelJob& j = jobs.at(l.id);
        rate_starts[j.ckey].push_back(clock.MonoMs());
        ++quota_starts[{j.queue, day_of(clock.NowMs())}];
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
      std::map<std::string, std::int64_t> active_q1;  // ckey -> active jobs in q1
      for (const auto& [id, j] : jobs) {
        if (j.queue == "q1" && state_of(id) == JobState::kActive) ++active_q1[j.ckey];
      }
      for (const auto& [id, j] : jobs) {
        if (std::find(qs.begin(), qs.end(), j.queue) == qs.end()) continue;
        if (state_of(id) != JobState::kReady) continue;
        if (j.queue == "q1" && active_q1[j.ckey] >= cap) continue;
        if (!RateAdmits(rate_starts[j.ckey], clock.MonoMs(), rate)) continue;
        if (quota_starts[{j.queue, day_of(clock.NowMs())}] >= quota) continue;
        return true;
      }
      return false;
    };
    auto check = [&](const std::string& step) {
      for (const auto& [key, starts] : rate_starts) {
        for (std::size_t b = 0; b < starts.size(); ++b) {
          for (std::size_t a = 0; a <= b; ++a) {
            const auto n = static_cast<std::int64_t>(b - a + 1);
            ASSERT_LE((n - rate.burst) * rate.period_ms, (starts[b] - starts[a]) * rate.count)
                << step << ": rate of key " << key << " broken by starts " << a << ".." << b;
          }
        }
      }
      for (const auto& [qd, n] : quota_starts)
        ASSERT_LE(n, quota) << step << ": quota " << qd.first;
      std::map<std::string, std::int64_t> active_q1;
      for (const auto& [id, j] : jobs) {
        if (j.queue == "q1" && state_of(id) == JobState::kActive) ++active_q1[j.ckey];
      }
      for (const auto& [k, n] : active_q1) ASSERT_LE(n, cap) << step << ": cap of " << k;
      for (const auto& [w, qs] : waiters) {
        ASSERT_FALSE(admissible(qs)) << step << ": waiter " << w << " left waiting";
      }
    };
    for (int step = 0; step < 400; ++step) {
      const std::uint64_t op = rng.Uniform(100);
      std::string what;
      if (op < 30) {
        ModelJob j{queues[rng.Uniform(2)], ckeys[rng.Uniform(3)]};
        EnqueueSpec s;
        s.queue = j.queue;
        s.kind = "k";
        s.concurrency_key = j.ckey;
        auto r = sched.Enqueue(s);
        ASSERT_TRUE(r.ok());
        jobs[r->id] = j;
        what = "enqueue";
      } else if (op < 55) {
        what = model::LeaseOrWait(sched, rng, clock, record, admissible, waiters, next_waiter);
      } else if (op < 80 && !tokens.empty()) {
        what = model::EndRandomLease(sched, rng, tokens);
      } else {
        // Mostly ms to seconds (rates), sometimes hours (quota windows).
        const std::int64_t step_ms = rng.Uniform(10) == 0
                                         ? static_cast<std::int64_t>(rng.Uniform(30 * kHour))
                                         : static_cast<std::int64_t>(rng.Uniform(1500));
        clock.Advance(step_ms);
        sched.Tick();
        what = "tick";
      }
      commit();
      model::ForgetEnded(sched, jobs, tokens);
      check("step " + std::to_string(step) + " (" + what + ")");
      if (HasFatalFailure()) return;
    }
    sched.Shutdown();
  }
}

}  // namespace
}  // namespace ym

// The hot-path figures of docs/benchmarks.md ("Rates and quotas on the hot path") with a rate
// or a quota per key over 1000 keys, set high enough never to hold a job back: what admission
// costs when it has to ask them. Disabled tests:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPath*'
namespace ym {
namespace {

double HotPathWith(const flow::LimitSpec& spec) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  EXPECT_TRUE(s.PutLimit(spec).ok());
  return bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000, [](std::uint64_t i) {
    return "customer-" + std::to_string(i % 1000);
  });
}

TEST(SchedulerBench, DISABLED_HotPathRatePer1000Keys) {
  flow::LimitSpec spec;
  spec.name = "rate";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.rate = flow::GcraConfig{1'000'000, 1000, 1'000'000};
  const double ns = HotPathWith(spec);
  std::printf("hot path, a rate per key over 1000 keys: %.0f CPU ns per job\n", ns);
  EXPECT_GT(ns, 0);
}

TEST(SchedulerBench, DISABLED_HotPathQuotaPer1000Keys) {
  flow::LimitSpec spec;
  spec.name = "quota";
  spec.key = flow::LimitKeyKind::kConcurrencyKey;
  spec.quota = flow::LimitQuota{1'000'000'000, flow::CalendarPeriod::kDay, "Europe/Paris"};
  const double ns = HotPathWith(spec);
  std::printf("hot path, a daily quota per key over 1000 keys: %.0f CPU ns per job\n", ns);
  EXPECT_GT(ns, 0);
}

}  // namespace
}  // namespace ym
