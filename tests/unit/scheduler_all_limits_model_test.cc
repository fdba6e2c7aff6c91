// One randomized model test of the dispatcher with every limit configured at once (issue 10,
// "a randomized model test of the dispatcher with all limits at once checks every limit after
// every step"). Per seed (ManualClock, seeded Rng; bounded: 30 seeds x 400 steps plus a drain):
//   * "cap":   concurrency C per concurrency_key, in queue q1;
//   * "rate":  a keyed rate per concurrency_key (all jobs);
//   * "quota": a daily quota Q per queue (all jobs);
//   * "cb":    a circuit breaker per kind (all jobs), N consecutive failures;
//   * "one":   singleton (refuse or skip) per concurrency_key for kind "s";
//   * "deb":   debounce per concurrency_key for kind "d";
//   * namespace n1: max_active M (at dispatch), max_live_jobs L and an enqueue_rate (at enqueue);
//     namespace n2: weight 2 (kinds "s" and "d" go to n2, so that a key-mode refusal after the
//     namespace admitted the job cannot blur the enqueue-rate model).
// Random enqueues, leases (1..3, from q1, q2 or both), long-polls, acks, fails (retried), lease
// releases, cancels of running and waiting jobs, and clock steps from ms to a day (lease
// expiries are failures). Every start is recorded as it is handed out, by a lease or by a
// long-poll being answered. After every step:
//   (1) active jobs of each (q1, key) <= C, and of n1 <= M;
//   (2) the starts of each rate key satisfy count * W / period + burst over every window;
//   (3) no queue has more than Q starts in one UTC day;
//   (4) no job was started while the model's breaker of its kind was open, apart from the one
//       trial of a half-open breaker, and at most one trial is out per kind;
//   (5) at most one live "s" job per key; a singleton refusal or skip names a live one;
//   (6) at most one not-yet-started "d" job per key;
//   (7) n1 holds at most L live jobs; an accepted enqueue into n1 kept the enqueue rate's bound,
//       and a refusal was due (L reached, or the exact rate rule refuses);
//   (8) a lease that comes back short, and a long-poll left waiting, has no job in its queues
//       that every limit admits now (nothing waits that could run).
// Then a drain (only acks, the clock stepped as far as a day) must start every job left: none is
// lost while the limits allow it.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
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
#include "core/flow/namespace_limits.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "sanitizer_scale.h"
#include "scheduler_model.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'718'006'400'000;  // 2024-06-10 08:00 UTC
constexpr std::int64_t kHour = 3'600'000;

struct Job {
  std::string queue, ns, kind, ckey;
};

struct Lease {
  std::uint64_t token = 0;
  model::BreakerRef::Ticket ticket;
};

bool Live(std::optional<JobState> s) {
  return s && *s != JobState::kSucceeded && *s != JobState::kDead && *s != JobState::kCancelled;
}

TEST(SchedulerAllLimitsModel, EveryLimitHoldsAfterEveryStepAndNothingIsLost) {
  const char* queues[] = {"q1", "q2"};
  const char* ckeys[] = {"a", "b", "c"};
  const char* kinds[] = {"k1", "k2", "s", "d"};
  for (std::uint64_t seed = 1; seed <= test::ModelSeeds(30); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ManualClock clock(kStart);
    Rng rng(seed);
    Rng sched_rng(seed + 1000);
    Scheduler sched(clock, sched_rng, SchedulerOptions{});
    const std::int64_t cap = 1 + static_cast<std::int64_t>(rng.Uniform(2));
    const flow::GcraConfig rate{1 + static_cast<std::int64_t>(rng.Uniform(4)),
                                rng.Uniform(2) ? 1000 : 7,
                                1 + static_cast<std::int64_t>(rng.Uniform(3))};
    const std::int64_t quota = 15 + static_cast<std::int64_t>(rng.Uniform(20));
    flow::BreakerConfig breaker;
    breaker.consecutive_failures = 1 + static_cast<std::int64_t>(rng.Uniform(3));
    breaker.open_base_ms = 100 + static_cast<std::int64_t>(rng.Uniform(900));
    breaker.open_max_ms = 4000;
    const bool skip = rng.Uniform(2) == 0;
    const std::int64_t debounce_ms = static_cast<std::int64_t>(rng.Uniform(3)) * 150;
    const std::int64_t max_active = 1 + static_cast<std::int64_t>(rng.Uniform(3));
    const std::int64_t max_live = 8 + static_cast<std::int64_t>(rng.Uniform(12));
    const flow::GcraConfig ns_rate{2 + static_cast<std::int64_t>(rng.Uniform(4)), 1000,
                                   2 + static_cast<std::int64_t>(rng.Uniform(3))};
    {
      flow::LimitSpec c;
      c.name = "cap";
      c.match_queue = "q1";
      c.key = flow::LimitKeyKind::kConcurrencyKey;
      c.concurrency = cap;
      ASSERT_TRUE(sched.PutLimit(c).ok());
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
      flow::LimitSpec b;
      b.name = "cb";
      b.key = flow::LimitKeyKind::kKind;
      b.breaker = breaker;
      ASSERT_TRUE(sched.PutLimit(b).ok());
      flow::LimitSpec one;
      one.name = "one";
      one.match_kind = "s";
      one.key = flow::LimitKeyKind::kConcurrencyKey;
      one.singleton = skip ? flow::SingletonMode::kSkip : flow::SingletonMode::kRefuse;
      ASSERT_TRUE(sched.PutLimit(one).ok());
      flow::LimitSpec deb;
      deb.name = "deb";
      deb.match_kind = "d";
      deb.key = flow::LimitKeyKind::kConcurrencyKey;
      deb.debounce = flow::DebounceConfig{debounce_ms, debounce_ms + 400};
      ASSERT_TRUE(sched.PutLimit(deb).ok());
      flow::NamespaceSpec n1;
      n1.name = "n1";
      n1.max_active = max_active;
      n1.max_live_jobs = max_live;
      n1.enqueue_rate = ns_rate;
      ASSERT_TRUE(sched.PutNamespace(n1).ok());
      flow::NamespaceSpec n2;
      n2.name = "n2";
      n2.weight = 2;
      ASSERT_TRUE(sched.PutNamespace(n2).ok());
    }

    std::map<JobId, Job> jobs;
    std::map<JobId, Lease> out;  // active leases as the model sees them
    std::set<JobId> started;     // ever leased
    model::BreakerRef cb(breaker);
    std::map<std::string, std::vector<std::int64_t>> rate_starts;  // ckey -> mono times
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> quota_starts;  // (queue, day)
    std::vector<std::int64_t> n1_enqueues;  // mono times of accepted enqueues into n1
    std::map<std::uint64_t, std::vector<std::string>> waiters;
    std::uint64_t next_waiter = 0;
    std::string violation;
    auto day_of = [](std::int64_t wall) { return wall / (24 * kHour); };
    auto state_of = [&](JobId id) { return model::StateOf(sched, id); };

    auto record = [&](const std::vector<LeasedJob>& got) {
      for (const LeasedJob& l : got) {
        const Job& j = jobs.at(l.id);
        bool ok = true;
        const model::BreakerRef::Ticket t = cb.Admit(j.kind, clock.MonoMs(), &ok);
        if (!ok && violation.empty()) {
          violation = "job " + std::to_string(l.id) + " of kind " + j.kind +
                      " started while the model holds its breaker open or its trial out";
        }
        out[l.id] = Lease{l.lease.token, t};
        started.insert(l.id);
        rate_starts[j.ckey].push_back(clock.MonoMs());
        ++quota_starts[{j.queue, day_of(clock.NowMs())}];
      }
    };
    // The end of the lease `o` of job `id`, as the breaker hears it.
    auto model_end = [&](JobId id, const Lease o, model::BreakerRef::Outcome outcome) {
      auto it = out.find(id);
      if (it != out.end() && it->second.token == o.token) out.erase(it);
      cb.End(jobs.at(id).kind, o.ticket, outcome, clock.MonoMs());
    };
    auto active_counts = [&](std::map<std::string, std::int64_t>* q1_keys,
                             std::int64_t* n1_active) {
      *n1_active = 0;
      for (const auto& [id, j] : jobs) {
        if (state_of(id) != JobState::kActive) continue;
        if (j.queue == "q1") ++(*q1_keys)[j.ckey];
        if (j.ns == "n1") ++*n1_active;
      }
    };
    auto admissible = [&](const std::vector<std::string>& qs) {
      std::map<std::string, std::int64_t> q1_keys;
      std::int64_t n1_active = 0;
      active_counts(&q1_keys, &n1_active);
      for (const auto& [id, j] : jobs) {
        if (std::find(qs.begin(), qs.end(), j.queue) == qs.end()) continue;
        if (state_of(id) != JobState::kReady) continue;
        if (j.ns == "n1" && n1_active >= max_active) continue;
        if (j.queue == "q1" && q1_keys[j.ckey] >= cap) continue;
        if (!model::RateAdmits(rate_starts[j.ckey], clock.MonoMs(), rate)) continue;
        if (quota_starts[{j.queue, day_of(clock.NowMs())}] >= quota) continue;
        if (!cb.Allows(j.kind, clock.MonoMs())) continue;
        return true;
      }
      return false;
    };
    auto check = [&](const std::string& step) {
      ASSERT_TRUE(violation.empty()) << step << ": " << violation;
      std::map<std::string, std::int64_t> q1_keys;
      std::int64_t n1_active = 0;
      active_counts(&q1_keys, &n1_active);
      for (const auto& [k, n] : q1_keys) ASSERT_LE(n, cap) << step << ": cap of " << k;
      ASSERT_LE(n1_active, max_active) << step << ": max_active of n1";
      for (const auto& [k, starts] : rate_starts) {
        const std::string broken = model::RateWindowBroken(starts, rate);
        ASSERT_TRUE(broken.empty()) << step << ": rate of " << k << " broken by " << broken;
      }
      for (const auto& [qd, n] : quota_starts) {
        ASSERT_LE(n, quota) << step << ": quota of " << qd.first;
      }
      std::map<std::string, int> trials;
      for (const auto& [id, o] : out) {
        const std::string& kind = jobs.at(id).kind;
        auto k = cb.keys().find(kind);
        if (o.ticket.trial && k != cb.keys().end() && o.ticket.epoch == k->second.epoch) {
          ++trials[kind];
        }
      }
      for (const auto& [k, n] : trials) ASSERT_LE(n, 1) << step << ": trials out for " << k;
      std::map<std::string, int> live_s, waiting_d;
      std::int64_t n1_live = 0;
      for (const auto& [id, j] : jobs) {
        const auto s = state_of(id);
        if (!Live(s)) continue;
        if (j.ns == "n1") ++n1_live;
        if (j.kind == "s") ++live_s[j.ckey];
        if (j.kind == "d" && !started.count(id) && *s != JobState::kActive) ++waiting_d[j.ckey];
      }
      for (const auto& [k, n] : live_s) ASSERT_LE(n, 1) << step << ": singleton " << k;
      for (const auto& [k, n] : waiting_d) ASSERT_LE(n, 1) << step << ": debounce " << k;
      ASSERT_LE(n1_live, max_live) << step << ": max_live_jobs of n1";
      ASSERT_TRUE(model::RateWindowBroken(n1_enqueues, ns_rate).empty())
          << step << ": enqueue rate of n1";
      for (const auto& [w, qs] : waiters) {
        ASSERT_FALSE(admissible(qs)) << step << ": waiter " << w << " left waiting";
      }
    };
    auto live_of = [&](const std::string& ns, const std::string& kind, const std::string& ckey) {
      std::vector<JobId> ids;
      for (const auto& [id, j] : jobs) {
        if ((ns.empty() || j.ns == ns) && (kind.empty() || (j.kind == kind && j.ckey == ckey)) &&
            Live(state_of(id))) {
          ids.push_back(id);
        }
      }
      return ids;
    };
    auto enqueue = [&]() -> std::string {
      Job j;
      j.kind = kinds[rng.Uniform(4)];
      j.queue = queues[rng.Uniform(2)];
      j.ckey = ckeys[rng.Uniform(3)];
      j.ns = (j.kind == "s" || j.kind == "d") ? "n2" : (rng.Uniform(2) ? "n1" : "n2");
      const std::size_t n1_live_before = live_of("n1", "", "").size();
      const bool rate_open = model::RateAdmits(n1_enqueues, clock.MonoMs(), ns_rate);
      const std::vector<JobId> holders =
          j.kind == "s" ? live_of("", "s", j.ckey) : std::vector<JobId>{};
      EnqueueSpec s;
      s.queue = j.queue;
      s.ns = j.ns;
      s.kind = j.kind;
      s.concurrency_key = j.ckey;
      s.max_attempts = 1000;
      auto r = sched.Enqueue(s);
      if (!r.ok()) {
        const Status& st = r.status();
        if (st.code() == Code::kNamespaceLimit) {
          EXPECT_EQ(j.ns, "n1");
          if (st.message().find("max_live_jobs") != std::string::npos) {
            EXPECT_GE(n1_live_before, static_cast<std::size_t>(max_live)) << st.ToString();
          } else {
            EXPECT_FALSE(rate_open) << "refused by a rate that admits it: " << st.ToString();
          }
          return "enqueue refused (namespace)";
        }
        EXPECT_EQ(st.code(), Code::kSingletonConflict) << st.ToString();
        EXPECT_EQ(holders.size(), 1u) << "a singleton refusal with no live job of its key";
        return "enqueue refused (singleton)";
      }
      if (r->skipped) {
        EXPECT_EQ(holders, std::vector<JobId>{r->id}) << "a skip names the live job";
        return "enqueue skipped";
      }
      EXPECT_TRUE(holders.empty()) << "a second singleton of key " << j.ckey << " was created";
      if (j.ns == "n1") {
        EXPECT_LT(n1_live_before, static_cast<std::size_t>(max_live));
        EXPECT_TRUE(rate_open) << "admitted while the exact rate rule refuses";
        n1_enqueues.push_back(clock.MonoMs());
      }
      jobs[r->id] = j;
      return "enqueue";
    };
    // A clock step; leases that expire in the Tick are failures, in due order (see the breaker
    // model: given to the model after the Tick, which may serve long-polls first).
    auto step_clock = [&](std::int64_t ms) {
      clock.Advance(ms);
      std::vector<std::tuple<std::int64_t, JobId, Lease>> due;
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
      for (const auto& [at, id, o] : due) model_end(id, o, model::BreakerRef::kFailure);
    };
    auto commit = [&] {
      Batch b = sched.SealBatch();
      sched.OnCommitted(b.seq);
    };
    auto forget = [&] {
      for (auto it = jobs.begin(); it != jobs.end();) {
        if (!state_of(it->first)) {
          out.erase(it->first);
          it = jobs.erase(it);
        } else {
          ++it;
        }
      }
    };

    for (int step = 0; step < 400; ++step) {
      const std::uint64_t op = rng.Uniform(100);
      std::string what;
      if (op < 28) {
        what = enqueue();
      } else if (op < 52) {
        what = model::LeaseOrWait(sched, rng, clock, record, admissible, waiters, next_waiter);
      } else if (op < 80 && !out.empty()) {
        auto it = out.begin();
        std::advance(it, static_cast<long>(rng.Uniform(out.size())));
        const JobId id = it->first;
        const Lease o = it->second;
        // The model hears the outcome first: the end may serve long-polls that record jobs.
        switch (rng.Uniform(6)) {
          case 0:
          case 1:
            model_end(id, o, model::BreakerRef::kSuccess);
            ASSERT_TRUE(sched.Ack(id, o.token, "null").ok());
            what = "ack";
            break;
          case 2:
          case 3: {
            FailSpec f;
            f.retry_in_ms = 0;
            model_end(id, o, model::BreakerRef::kFailure);
            ASSERT_TRUE(sched.Fail(id, o.token, f).ok());
            what = "fail";
            break;
          }
          case 4:
            model_end(id, o, model::BreakerRef::kAbandoned);
            sched.Release(id, o.token);
            what = "release";
            break;
          default: {
            ASSERT_TRUE(sched.Cancel(id).ok());
            model_end(id, o, model::BreakerRef::kAbandoned);
            FailSpec f;
            ASSERT_TRUE(sched.Fail(id, o.token, f).ok());
            what = "cancel running";
          }
        }
      } else if (op < 85 && !jobs.empty()) {
        // Cancel a waiting job (frees its singleton key, its namespace slot).
        auto it = jobs.begin();
        std::advance(it, static_cast<long>(rng.Uniform(jobs.size())));
        const auto s = state_of(it->first);
        if (s == JobState::kReady || s == JobState::kScheduled) {
          ASSERT_TRUE(sched.Cancel(it->first).ok());
        }
        what = "cancel waiting";
      } else {
        // Mostly ms to seconds (rates, breakers, debounce), sometimes past a lease (30 s) or
        // hours (quota days).
        const std::uint64_t kind = rng.Uniform(20);
        step_clock(kind == 0   ? static_cast<std::int64_t>(rng.Uniform(30 * kHour))
                   : kind == 1 ? 30'000 + static_cast<std::int64_t>(rng.Uniform(1000))
                               : static_cast<std::int64_t>(rng.Uniform(1500)));
        what = "tick";
      }
      commit();
      forget();
      check("step " + std::to_string(step) + " (" + what + ")");
      if (HasFatalFailure()) return;
    }

    // Drain: only acks from now on, the clock stepped up to a day at a time. Every job left must
    // start: nothing is lost while the limits allow it.
    for (int round = 0; round < 200 && !jobs.empty(); ++round) {
      while (!out.empty()) {
        const JobId id = out.begin()->first;
        const Lease o = out.begin()->second;
        model_end(id, o, model::BreakerRef::kSuccess);
        ASSERT_TRUE(sched.Ack(id, o.token, "null").ok());
      }
      LeaseRequest req;
      req.queues = {"q1", "q2"};
      req.max = 100;
      req.worker_id = "w";
      auto got = sched.Lease(req);
      record(got);
      if (got.size() < req.max && admissible(req.queues)) ADD_FAILURE() << "drain: short lease";
      commit();
      forget();
      check("drain " + std::to_string(round));
      if (HasFatalFailure()) return;
      if (got.empty()) {
        step_clock(round % 4 == 3 ? 24 * kHour
                                  : 1000 + static_cast<std::int64_t>(rng.Uniform(4000)));
        commit();
        forget();
      }
    }
    while (!out.empty()) {
      const JobId id = out.begin()->first;
      const Lease o = out.begin()->second;
      model_end(id, o, model::BreakerRef::kSuccess);
      ASSERT_TRUE(sched.Ack(id, o.token, "null").ok());
    }
    commit();
    forget();
    ASSERT_TRUE(jobs.empty()) << jobs.size() << " jobs never started, e.g. job "
                              << jobs.begin()->first;
    sched.Shutdown();
  }
}

}  // namespace
}  // namespace ym
