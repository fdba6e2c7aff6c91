// Singleton and debounce wired into the Scheduler (core/flow/key_groups.h): decided at enqueue
// on the core thread against every live job (pending ones too), after idempotency; replaced
// jobs are cancelled naming their successor; blocked_reason says debounced; replays, released
// leases, limit changes and restarts keep the groups. Ends with a randomized model test that
// checks the key modes after every step. ManualClock and seeded Rng: deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/key_groups.h"
#include "core/flow/limit_set.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "scheduler_hot_path.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

class SchedulerKeyModesTest : public ::testing::Test {
 protected:
  SchedulerKeyModesTest() : clock_(kStart), rng_(11) { Fresh(); }

  void Fresh() { sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{}); }

  // Seals and commits the open batch; records every job's last stored state and reason.
  void Commit() {
    Batch b = sched_->SealBatch();
    for (const Mutation& m : b.mutations) {
      if (const auto* u = std::get_if<UpdateJob>(&m)) {
        stored_[u->job.id] = u->job;
      } else if (const auto* i = std::get_if<InsertJob>(&m)) {
        stored_[i->job.id] = i->job;
      }
    }
    sched_->OnCommitted(b.seq);
  }

  static EnqueueSpec Spec(const std::string& key, const std::string& kind = "k") {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = kind;
    s.concurrency_key = key;
    return s;
  }

  Result<EnqueueOutcome> Enqueue(const EnqueueSpec& s, bool commit = true) {
    auto r = sched_->Enqueue(s);
    if (commit) Commit();
    return r;
  }

  void Put(const std::string& name, const std::string& json) {
    auto spec = flow::LimitSpec::FromJson(name, json);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    auto r = sched_->PutLimit(*spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Commit();
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

  // A restart: a fresh scheduler loads the limits and every live job as the store returns them.
  void Restart(const std::vector<std::pair<std::string, std::string>>& limits) {
    std::vector<JobRecord> live;
    JobId next = 1;
    for (const auto& [id, rec] : stored_) next = std::max(next, id + 1);
    ListQuery q;
    q.limit = 100000;
    for (const JobView& v : sched_->ListLive(q).items) live.push_back(v.job);
    Fresh();
    for (const auto& [name, json] : limits) ASSERT_TRUE(sched_->LoadLimit(name, json).ok());
    sched_->LoadNextId(next);
    for (JobRecord& r : live) sched_->LoadJob(std::move(r));
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
  std::map<JobId, JobRecord> stored_;
};

TEST_F(SchedulerKeyModesTest, SingletonRefusesWhileAnyLiveJobHoldsTheKeyPendingIncluded) {
  Put("one", R"({"key":"concurrency_key","singleton":"refuse"})");
  // Two producers in the same batch: the first is still pending when the second arrives.
  auto a = Enqueue(Spec("acct-1"), /*commit=*/false);
  ASSERT_TRUE(a.ok());
  auto b = Enqueue(Spec("acct-1"), /*commit=*/false);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kSingletonConflict);
  EXPECT_EQ(flow::SingletonHolder(b.status()), std::optional<JobId>(a->id));
  EXPECT_NE(b.status().message().find("\"one\""), std::string::npos);
  EXPECT_TRUE(Enqueue(Spec("acct-2")).ok());  // another key is free
  const std::size_t live = sched_->live_jobs();
  // Scheduled, ready and active all hold it; the refusal creates nothing.
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Enqueue(Spec("acct-1")).status().code(), Code::kSingletonConflict);
  EXPECT_EQ(sched_->live_jobs(), live);
  // A retry in backoff still holds it; only the end frees it.
  FailSpec f;
  f.retry_in_ms = 60'000;
  const JobId first = got[0].id;
  const LeasedJob* mine = nullptr;
  for (const auto& j : got) {
    if (j.id == a->id) mine = &j;
  }
  if (mine == nullptr) {  // it leased acct-2 first: take acct-1 too
    got = Lease(1);
    ASSERT_EQ(got.size(), 1u);
    mine = &got[0];
  }
  ASSERT_EQ(mine->id, a->id) << first;
  ASSERT_TRUE(sched_->Fail(mine->id, mine->lease.token, f).ok());
  Commit();
  EXPECT_EQ(Enqueue(Spec("acct-1")).status().code(), Code::kSingletonConflict);
  ASSERT_TRUE(sched_->Cancel(a->id).ok());
  Commit();
  EXPECT_TRUE(Enqueue(Spec("acct-1")).ok());
}

TEST_F(SchedulerKeyModesTest, SingletonSkipAnswersTheHolderAndCreatesNothing) {
  Put("one", R"({"key":"concurrency_key","singleton":"skip"})");
  auto a = Enqueue(Spec("k1"));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->skipped);
  const std::size_t live = sched_->live_jobs();
  auto b = Enqueue(Spec("k1"));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->skipped);
  EXPECT_FALSE(b->duplicate);
  EXPECT_EQ(b->id, a->id);
  EXPECT_EQ(b->state, JobState::kReady);
  EXPECT_EQ(sched_->live_jobs(), live);
}

TEST_F(SchedulerKeyModesTest, AnIdempotentDuplicateIsAnsweredBeforeAnyKeyMode) {
  Put("one", R"({"key":"concurrency_key","singleton":"refuse"})");
  EnqueueSpec s = Spec("k1");
  s.idempotency_key = "order-7";
  auto a = Enqueue(s);
  ASSERT_TRUE(a.ok());
  auto again = Enqueue(s);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->id, a->id);
  // Another idempotency key is a new job: refused.
  s.idempotency_key = "order-8";
  EXPECT_EQ(Enqueue(s).status().code(), Code::kSingletonConflict);
}

TEST_F(SchedulerKeyModesTest, DebounceReplacesTheWaitingJobAndRunsByTheMaxWait) {
  Put("deb",
      R"({"match":{"kind":"k"},"key":"concurrency_key","debounce":{"delay_ms":1000,"max_wait_ms":3000}})");
  auto a = Enqueue(Spec("k"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->state, JobState::kScheduled);
  auto va = sched_->Get(a->id);
  EXPECT_EQ(va->blocked_reason, "debounced");
  EXPECT_EQ(va->job.run_at_ms, kStart + 1000);
  EXPECT_EQ(va->blocked_until_ms, kStart + 1000);
  // The queue counts it as debounced, not scheduled; a plain delayed job stays scheduled.
  EnqueueSpec later = Spec("k", "other");
  later.delay_ms = 60'000;
  ASSERT_TRUE(Enqueue(later).ok());
  EXPECT_EQ(sched_->Queue("q")->blocked.at("debounced"), 1u);
  EXPECT_EQ(sched_->Queue("q")->blocked.at("scheduled"), 1u);
  JobId prev = a->id;
  for (int i = 1; i <= 5; ++i) {
    clock_.Advance(800);
    auto n = Enqueue(Spec("k"));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->superseded, std::vector<JobId>{prev});
    // The replaced job ended cancelled, naming its successor.
    ASSERT_TRUE(stored_.count(prev));
    EXPECT_EQ(stored_[prev].state, JobState::kCancelled);
    EXPECT_EQ(stored_[prev].dead_reason, flow::SupersededReason(n->id));
    EXPECT_FALSE(sched_->IsLive(prev));
    const std::int64_t want = std::min(clock_.NowMs() + 1000, kStart + 3000);
    EXPECT_EQ(sched_->Get(n->id)->job.run_at_ms, std::max(want, clock_.NowMs()));
    prev = n->id;
  }
  // Nothing ran yet; at the max wait the survivor is ready, exactly once.
  clock_.Set(kStart + 4000);
  sched_->Tick();
  EXPECT_EQ(sched_->Queue("q")->blocked.at("debounced"), 0u);
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, prev);
  // It started: a new arrival opens a new group and replaces nothing.
  auto c = Enqueue(Spec("k"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->superseded.empty());
  EXPECT_EQ(sched_->Get(c->id)->job.run_at_ms, clock_.NowMs() + 1000);
}

TEST_F(SchedulerKeyModesTest, AReadyJobNotYetLeasedIsStillReplaced) {
  Put("deb", R"({"key":"concurrency_key","debounce":{"delay_ms":0}})");
  auto a = Enqueue(Spec("k"));
  EXPECT_EQ(a->state, JobState::kReady);
  auto b = Enqueue(Spec("k"));
  EXPECT_EQ(b->superseded, std::vector<JobId>{a->id});
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, b->id);
}

TEST_F(SchedulerKeyModesTest, ALimitChangeKeepsTheGroupDeadline) {
  Put("deb", R"({"key":"concurrency_key","debounce":{"delay_ms":1000,"max_wait_ms":2500}})");
  ASSERT_TRUE(Enqueue(Spec("k")).ok());
  clock_.Advance(700);
  auto b = Enqueue(Spec("k"));
  Put("other", R"({"concurrency":3,"key":"kind"})");  // rebinds every job
  clock_.Advance(700);
  auto c = Enqueue(Spec("k"));
  EXPECT_EQ(c->superseded, std::vector<JobId>{b->id});
  clock_.Advance(700);
  auto d = Enqueue(Spec("k"));
  EXPECT_EQ(sched_->Get(d->id)->job.run_at_ms, kStart + 2500);  // first arrival + max wait
}

TEST_F(SchedulerKeyModesTest, ARestartKeepsTheMaxWaitAndNeverPostponesPastTheWaitingJobsTime) {
  const std::string deb =
      R"({"key":"concurrency_key","debounce":{"delay_ms":1000,"max_wait_ms":10000}})";
  Put("deb", deb);
  ASSERT_TRUE(Enqueue(Spec("k")).ok());
  clock_.Advance(900);
  auto b = Enqueue(Spec("k"));
  ASSERT_EQ(sched_->Get(b->id)->job.run_at_ms, kStart + 1900);
  Restart({{"deb", deb}});
  EXPECT_EQ(sched_->Get(b->id)->blocked_reason, "debounced");
  clock_.Advance(500);
  auto c = Enqueue(Spec("k"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->superseded, std::vector<JobId>{b->id});
  // Replaced, but due when the job it replaced was due (its group's deadline after a restart).
  EXPECT_EQ(sched_->Get(c->id)->job.run_at_ms, kStart + 1900);
  // Where the max wait set the time, a restart keeps it exactly.
  clock_.Set(kStart + 100'000);
  sched_->Tick();
  ASSERT_EQ(Lease(10).size(), 1u);
  ASSERT_TRUE(Enqueue(Spec("k")).ok());
  for (int i = 0; i < 11; ++i) {
    clock_.Advance(900);
    ASSERT_TRUE(Enqueue(Spec("k")).ok());
  }
  ListQuery q;
  JobId waiting = 0;
  for (const JobView& v : sched_->ListLive(q).items) {
    if (v.blocked_reason == "debounced") waiting = v.job.id;
  }
  ASSERT_NE(waiting, 0u);
  EXPECT_EQ(sched_->Get(waiting)->job.run_at_ms, kStart + 110'000);
  Restart({{"deb", deb}});
  clock_.Advance(50);
  auto e = Enqueue(Spec("k"));
  EXPECT_EQ(e->superseded, std::vector<JobId>{waiting});
  EXPECT_EQ(sched_->Get(e->id)->job.run_at_ms, kStart + 110'000);
}

TEST_F(SchedulerKeyModesTest, AReplayIsAnArrival) {
  Put("one", R"({"key":"concurrency_key","singleton":"skip","match":{"kind":"s"}})");
  Put("deb", R"({"key":"concurrency_key","debounce":{"delay_ms":1000},"match":{"kind":"d"}})");
  // Singleton: a replay is refused while another job holds the key (even in mode skip).
  auto a = Enqueue(Spec("k", "s"));
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  FailSpec dead;
  dead.retryable = false;
  ASSERT_TRUE(sched_->Fail(a->id, got[0].lease.token, dead).ok());
  auto b = Enqueue(Spec("k", "s"), /*commit=*/false);  // pending: holds the key
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->skipped);
  auto r = sched_->ReplayInCore(a->id, true);  // a is still in memory (not yet durable)
  ASSERT_TRUE(r.has_value());
  ASSERT_FALSE(r->ok());
  EXPECT_EQ(r->status().code(), Code::kSingletonConflict);
  EXPECT_EQ(flow::SingletonHolder(r->status()), std::optional<JobId>(b->id));
  Commit();
  // Debounce: the replayed run replaces the waiting job and waits its delay.
  clock_.Advance(5000);
  sched_->Tick();
  auto d = Enqueue(Spec("x", "d"));
  clock_.Advance(1000);
  sched_->Tick();
  got = Lease(10);
  JobId token_of_d = 0;
  std::uint64_t token = 0;
  for (const auto& j : got) {
    if (j.id == d->id) {
      token_of_d = j.id;
      token = j.lease.token;
    }
  }
  ASSERT_EQ(token_of_d, d->id);
  ASSERT_TRUE(sched_->Fail(d->id, token, dead).ok());
  Commit();
  auto w = Enqueue(Spec("x", "d"));
  ASSERT_TRUE(w.ok());
  JobRecord rec = stored_.at(d->id);
  ASSERT_EQ(rec.state, JobState::kDead);
  rec.payload = "null";
  auto replayed = sched_->ReplayStored(sched_->OpenRead(), d->id, std::move(rec), true);
  ASSERT_TRUE(replayed.has_value() && replayed->ok());
  Commit();
  EXPECT_EQ(stored_.at(w->id).dead_reason, flow::SupersededReason(d->id));
  auto v = sched_->Get(d->id);
  EXPECT_EQ(v->blocked_reason, "debounced");
  EXPECT_EQ(v->job.run_at_ms, clock_.NowMs() + 1000);
}

TEST_F(SchedulerKeyModesTest, ALostLeaseReplyYieldsToANewerWaitingJob) {
  Put("deb", R"({"key":"concurrency_key","debounce":{"delay_ms":0}})");
  auto a = Enqueue(Spec("k"));
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  auto b = Enqueue(Spec("k"));  // a started: b opens a new group
  EXPECT_TRUE(b->superseded.empty());
  sched_->Release(a->id, got[0].lease.token);  // a never reached its worker
  Commit();
  EXPECT_EQ(stored_.at(a->id).state, JobState::kCancelled);
  EXPECT_EQ(stored_.at(a->id).dead_reason, flow::SupersededReason(b->id));
  got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, b->id);
}

// Randomized model test: random enqueues (some in bursts within one batch, some with their own
// delay), leases, acks, fails, cancels, lost lease replies, clock steps, limit changes and
// restarts, with a singleton limit (kind "s") and a debounce limit (kind "d"), both keyed by
// concurrency_key, and a concurrency cap coming and going over everything. After every step:
// at most one live job per singleton key, at most one not-started job per debounce key, every
// decision is the one the model predicts (refused or skipped naming the oldest live job; the
// waiting job replaced), the debounce time never passes the group's first arrival + max wait
// (or a producer's own later time), and no job is lost: each one is live, or ended by the test,
// or cancelled naming the job that replaced it.
TEST(SchedulerKeyModesModel, KeyModesHoldAndNoJobIsLost) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rnd(seed);
    ManualClock clock(kStart);
    Rng rng(seed);
    auto sched = std::make_unique<Scheduler>(clock, rng, SchedulerOptions{});
    std::map<JobId, JobRecord> stored;
    auto commit = [&] {
      Batch b = sched->SealBatch();
      for (const Mutation& m : b.mutations) {
        if (const auto* u = std::get_if<UpdateJob>(&m)) stored[u->job.id] = u->job;
        if (const auto* i = std::get_if<InsertJob>(&m)) stored[i->job.id] = i->job;
      }
      sched->OnCommitted(b.seq);
    };
    std::map<std::string, std::string> limits;
    auto put = [&](const std::string& name, const std::string& json) {
      auto spec = flow::LimitSpec::FromJson(name, json);
      ASSERT_TRUE(spec.ok()) << json;
      ASSERT_TRUE(sched->PutLimit(*spec).ok());
      limits[name] = json;
      commit();
    };
    std::string mode = "refuse";
    std::int64_t delay = 500, max_wait = 2000;
    auto single_json = [&] {
      return R"({"match":{"kind":"s"},"key":"concurrency_key","singleton":")" + mode + "\"}";
    };
    auto deb_json = [&] {
      return R"({"match":{"kind":"d"},"key":"concurrency_key","debounce":{"delay_ms":)" +
             std::to_string(delay) + R"(,"max_wait_ms":)" + std::to_string(max_wait) + "}}";
    };
    put("single", single_json());
    put("deb", deb_json());

    struct ModelJob {
      std::string kind, key;
      bool ended = false;
      bool ended_by_test = false;        // ack, dead fail, cancel
      std::optional<JobId> replaced_by;  // superseded
    };
    std::map<JobId, ModelJob> jobs;
    // Debounce groups of the model: the first arrival's deadline and the latest own time.
    struct Group {
      std::int64_t deadline = 0;
    };
    std::map<std::string, Group> groups;    // key -> open group (a waiting job exists)
    std::map<JobId, std::uint64_t> tokens;  // leased now

    auto view = [&](JobId id) { return sched->Get(id); };
    auto live_of = [&](const std::string& kind, const std::string& key) {
      std::vector<JobId> out;
      for (const auto& [id, j] : jobs) {
        if (j.kind == kind && j.key == key && !j.ended) out.push_back(id);
      }
      return out;
    };
    auto not_started = [&](JobId id) {
      auto v = view(id);
      return v && !IsTerminal(v->job.state) && v->job.state != JobState::kActive &&
             v->job.attempts == 0;
    };
    auto waiting_of = [&](const std::string& key) {
      std::vector<JobId> out;
      for (JobId id : live_of("d", key)) {
        if (not_started(id)) out.push_back(id);
      }
      return out;
    };
    auto end_job = [&](JobId id) {
      jobs[id].ended = true;
      jobs[id].ended_by_test = true;
      tokens.erase(id);
    };

    for (int step = 0; step < 400; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const int op = static_cast<int>(rnd() % 100);
      if (op < 35) {
        // A burst of 1..3 enqueues in one batch (the earlier ones pending for the later).
        const int n = 1 + static_cast<int>(rnd() % 3);
        for (int i = 0; i < n; ++i) {
          EnqueueSpec s;
          s.queue = "q";
          s.kind = rnd() % 2 ? "s" : "d";
          s.concurrency_key = "k" + std::to_string(rnd() % 3);
          if (rnd() % 6 == 0) s.delay_ms = static_cast<std::int64_t>(rnd() % 4000);
          const std::int64_t now = clock.NowMs();
          const std::int64_t own = now + s.delay_ms.value_or(0);
          std::vector<JobId> live = live_of(s.kind, s.concurrency_key);
          std::vector<JobId> waiting =
              s.kind == "d" ? waiting_of(s.concurrency_key) : std::vector<JobId>{};
          auto r = sched->Enqueue(s);
          if (s.kind == "s" && !live.empty()) {
            if (mode == "refuse") {
              ASSERT_FALSE(r.ok());
              EXPECT_EQ(flow::SingletonHolder(r.status()), std::optional<JobId>(live.front()));
            } else {
              ASSERT_TRUE(r.ok());
              EXPECT_TRUE(r->skipped);
              EXPECT_EQ(r->id, live.front());
            }
            continue;
          }
          ASSERT_TRUE(r.ok()) << r.status().ToString();
          ASSERT_FALSE(r->skipped);
          jobs[r->id] = ModelJob{s.kind, s.concurrency_key, false, false, std::nullopt};
          if (s.kind != "d") continue;
          ASSERT_EQ(r->superseded, waiting);
          for (JobId w : waiting) {
            jobs[w].ended = true;
            jobs[w].replaced_by = r->id;
          }
          auto it = groups.find(s.concurrency_key);
          if (it == groups.end() || waiting.empty()) {
            groups[s.concurrency_key] = Group{now + max_wait};
          }
          Group& g = groups[s.concurrency_key];
          g.deadline = std::max(g.deadline, own);
          const std::int64_t run_at = view(r->id)->job.run_at_ms;
          EXPECT_LE(run_at, g.deadline);
          EXPECT_GE(run_at, own);
        }
        commit();
      } else if (op < 55) {
        LeaseRequest req;
        req.queues = {"q"};
        req.max = 1 + static_cast<std::uint32_t>(rnd() % 3);
        req.worker_id = "w";
        req.lease_ms = 3'600'000;  // no expiry during the run: the test holds the tokens
        for (const LeasedJob& j : sched->Lease(req)) {
          tokens[j.id] = j.lease.token;
          // Its first attempt: it was the waiting job, and its group closes.
          if (jobs[j.id].kind == "d" && j.attempt == 1) groups.erase(jobs[j.id].key);
        }
        commit();
      } else if (op < 75 && !tokens.empty()) {
        auto it = tokens.begin();
        std::advance(it, static_cast<long>(rnd() % tokens.size()));
        const JobId id = it->first;
        const std::uint64_t token = it->second;
        const int what = static_cast<int>(rnd() % 4);
        if (what == 0) {
          ASSERT_TRUE(sched->Ack(id, token, "null").ok());
          end_job(id);
        } else if (what == 1) {
          FailSpec f;
          f.retryable = false;
          ASSERT_TRUE(sched->Fail(id, token, f).ok());
          end_job(id);
        } else if (what == 2) {
          FailSpec f;
          f.retry_in_ms = static_cast<std::int64_t>(rnd() % 2) * 1000;
          auto s = sched->Fail(id, token, f);
          ASSERT_TRUE(s.ok());
          tokens.erase(id);
          if (IsTerminal(*s)) end_job(id);
        } else if (view(id)->job.cancel_requested) {
          sched->Release(id, token);  // no worker has it: the cancel completes
          end_job(id);
        } else {
          const bool first_attempt = view(id)->job.attempts == 1;
          const std::string key = jobs[id].key;
          std::vector<JobId> waiting =
              jobs[id].kind == "d" ? waiting_of(key) : std::vector<JobId>{};
          sched->Release(id, token);
          tokens.erase(id);
          if (jobs[id].kind == "d" && first_attempt) {
            if (!waiting.empty()) {
              jobs[id].ended = true;
              jobs[id].replaced_by = waiting.back();
            } else {
              groups[key] = Group{clock.NowMs()};
            }
          }
        }
        commit();
      } else if (op < 82) {
        // Cancel a random live job (an active one is only flagged).
        std::vector<JobId> live;
        for (const auto& [id, j] : jobs) {
          if (!j.ended) live.push_back(id);
        }
        if (live.empty()) continue;
        const JobId id = live[rnd() % live.size()];
        const bool active = view(id)->job.state == JobState::kActive;
        const bool was_waiting = jobs[id].kind == "d" && not_started(id);
        ASSERT_TRUE(sched->Cancel(id).ok());
        if (!active) {
          end_job(id);
          if (was_waiting) groups.erase(jobs[id].key);
        }
        commit();
      } else if (op < 90) {
        clock.Advance(static_cast<std::int64_t>(rnd() % 1500));
        sched->Tick();
        commit();
      } else if (op < 96) {
        // Limit changes: the delays (groups keep their deadline), the singleton mode, and a
        // concurrency cap over everything that comes and goes.
        const int what = static_cast<int>(rnd() % 3);
        if (what == 0) {
          delay = static_cast<std::int64_t>(rnd() % 1000);
          max_wait = delay + static_cast<std::int64_t>(rnd() % 3000);
          put("deb", deb_json());
        } else if (what == 1) {
          mode = mode == "refuse" ? "skip" : "refuse";
          put("single", single_json());
        } else if (limits.count("cap")) {
          ASSERT_TRUE(sched->DeleteLimit("cap").ok());
          limits.erase("cap");
          commit();
        } else {
          put("cap", R"({"concurrency":2})");
        }
      } else {
        // Restart: live jobs as stored, leases kept.
        std::vector<JobRecord> live;
        ListQuery q;
        q.limit = 100000;
        for (const JobView& v : sched->ListLive(q).items) live.push_back(v.job);
        JobId next = 1;
        for (const auto& [id, rec] : stored) next = std::max(next, id + 1);
        sched = std::make_unique<Scheduler>(clock, rng, SchedulerOptions{});
        for (const auto& [name, json] : limits) ASSERT_TRUE(sched->LoadLimit(name, json).ok());
        sched->LoadNextId(next);
        for (JobRecord& r : live) sched->LoadJob(std::move(r));
        // After a restart a group's deadline is its waiting job's run_at (never later).
        for (auto& [key, g] : groups) {
          auto w = waiting_of(key);
          if (!w.empty()) g.deadline = std::min(g.deadline, view(w.back())->job.run_at_ms);
        }
      }
      // Invariants.
      for (int k = 0; k < 3; ++k) {
        const std::string key = "k" + std::to_string(k);
        ASSERT_LE(live_of("s", key).size(), 1u) << key;
        ASSERT_LE(waiting_of(key).size(), 1u) << key;
      }
      for (const auto& [id, j] : jobs) {
        auto v = view(id);
        if (!j.ended) {
          // Live in the model: live in core (an active job with a cancel requested included).
          ASSERT_TRUE(v.has_value()) << "job " << id << " lost";
          ASSERT_FALSE(IsTerminal(v->job.state)) << "job " << id;
          continue;
        }
        if (j.replaced_by) {
          ASSERT_TRUE(stored.count(id));
          EXPECT_EQ(stored[id].state, JobState::kCancelled) << id;
          EXPECT_EQ(stored[id].dead_reason, flow::SupersededReason(*j.replaced_by)) << id;
        } else {
          ASSERT_TRUE(j.ended_by_test);
          ASSERT_TRUE(!v.has_value() || IsTerminal(v->job.state)) << id;
        }
      }
      // Every cancelled job was cancelled by the test or replaced.
      for (const auto& [id, rec] : stored) {
        if (rec.state != JobState::kCancelled) continue;
        ASSERT_TRUE(jobs[id].ended) << id;
      }
    }
  }
}

}  // namespace

// The hot path of docs/benchmarks.md with a singleton or a debounce (delay 0) limit over 1000
// keys (a disabled test; run by hand, release build):
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPathKeyModes*'
TEST(SchedulerBench, DISABLED_HotPathKeyModes) {
  for (const char* json : {R"({"key":"concurrency_key","singleton":"refuse"})",
                           R"({"key":"concurrency_key","debounce":{"delay_ms":0}})"}) {
    ManualClock clock;
    Rng rng(1);
    Scheduler s(clock, rng, SchedulerOptions{});
    ASSERT_TRUE(s.PutLimit(*flow::LimitSpec::FromJson("km", json)).ok());
    const double ns = bench::HotPathNsPerJob(
        s, clock, 0, 1'000'000, [](std::uint64_t i) { return "k" + std::to_string(i % 1000); });
    std::printf("hot path, %s over 1000 keys: %.0f CPU ns per job\n", json, ns);
    EXPECT_GT(ns, 0);
  }
}

}  // namespace ym
