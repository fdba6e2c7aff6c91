// Memory test of the scheduling core: one hour of simulated time (ManualClock, fixed seed) with
// keyed enqueues, short and 30-day delays, cancels, retries, leases that expire, heartbeats, long
// polls that time out on queues named once, and thousands of distinct queue, namespace, kind and
// worker names. Every simulated minute the structures core keeps (Scheduler::Footprint) must be
// bounded by a constant times the live work, never by what happened before; at the end, with
// no live work left, everything must be (nearly) empty again.
//
// What failed before the bounds existed: lease-heap entries of acked jobs, timer entries of
// cancelled delayed jobs and waiter ids of timed-out long polls stayed until their due time or
// forever; every queue, namespace, kind and worker name ever seen stayed interned; one 30-day job
// per 4096 ids pinned a 32 KiB index page.

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/live_job.h"
#include "core/scheduler.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;
constexpr std::int64_t kStepMs = 100;
constexpr int kSteps = 36'000;  // one hour
constexpr std::int64_t kThirtyDays = 30LL * 24 * 3600 * 1000;
constexpr std::size_t kCacheKeys = 500;

class CoreMemoryTest : public ::testing::Test {
 protected:
  CoreMemoryTest() : clock_(kStart), rng_(20261125), pick_(99) {
    SchedulerOptions o;
    o.idempotency_window_ms = 24LL * 3600 * 1000;
    o.idempotency_cache_keys = kCacheKeys;
    // Idle queues are freed at the second sweep that finds them idle.
    o.retention_sweep_interval_ms = 1000;
    sched_ = std::make_unique<Scheduler>(clock_, rng_, o);
  }

  // Group commit, with the idempotency keys applied to a model of the store (the test keeps
  // every key; core keeps at most kCacheKeys of them).
  void Commit() {
    Batch b = sched_->SealBatch();
    for (const Mutation& m : b.mutations) {
      if (const auto* k = std::get_if<PutIdempotencyKey>(&m)) {
        stored_keys_[k->ns + '/' + k->key] =
            IdempotencyKeyRecord{k->ns, k->key, k->job_id, k->expires_at_ms, {}};
      } else if (const auto* f = std::get_if<FinishIdempotencyKey>(&m)) {
        auto it = stored_keys_.find(f->ns + '/' + f->key);
        if (it != stored_keys_.end() && it->second.job_id == f->job_id) {
          it->second.final_state = f->state;
        }
      }
    }
    sched_->OnCommitted(b.seq);
  }

  // What the Broker does: a key that misses core's cache is read from the store first.
  Result<EnqueueOutcome> Enqueue(EnqueueSpec spec) {
    if (!sched_->NeedsIdempotencyLookup(spec)) return sched_->Enqueue(std::move(spec));
    ++store_lookups_;
    IdempotencyLookup lookup;
    lookup.ticket = sched_->BeginIdempotencyLookup();
    auto it = stored_keys_.find(spec.ns + '/' + spec.idempotency_key);
    if (it != stored_keys_.end() && it->second.expires_at_ms > clock_.NowMs()) {
      lookup.job_id = it->second.job_id;
      lookup.expires_at_ms = it->second.expires_at_ms;
      lookup.final_state = it->second.final_state;
    }
    return sched_->Enqueue(std::move(spec), &lookup);
  }
  bool Chance(int percent) { return pick_.Uniform(100) < static_cast<std::uint64_t>(percent); }

  // Live work the footprint may grow with.
  struct Live {
    std::size_t jobs, waiters, queues_named;
  };

  // The bound every structure must respect, with the constants the scheduler documents
  // (stale factor 2, slack 64 per heap or FIFO).
  void CheckBounded(const SchedulerFootprint& f, const char* when) {
    SCOPED_TRACE(when);
    const std::size_t live = f.live_jobs;
    EXPECT_LE(f.index_bytes, 200 * live + 4096);
    EXPECT_LE(f.index_pages, live + 1);
    EXPECT_LE(f.timer_entries, 2 * f.scheduled_jobs + 64);
    EXPECT_LE(f.lease_entries, 2 * f.active_jobs + 64);
    EXPECT_LE(f.waiter_deadline_entries, 2 * f.waiters + 64);
    EXPECT_LE(f.ready_entries, 2 * f.ready_jobs + 64 * f.lanes);
    EXPECT_LE(f.ready_fifo_entries, 2 * f.ready_jobs + 64 * f.queues);
    // Each waiter names at most two queues here.
    EXPECT_LE(f.queue_waiter_entries, 2 * 2 * f.waiters + 64 * f.queues);
    // A queue, a lane or a name exists only for a live job or a waiter.
    // (+64: queues idle for less than two sweeps, here two seconds, are still there.)
    EXPECT_LE(f.queues, live + 2 * f.waiters + 64);
    EXPECT_LE(f.lanes, live + f.queues);
    EXPECT_LE(f.namespaces, live + f.lanes);
    EXPECT_LE(f.kinds, live);
    EXPECT_LE(f.workers, f.active_jobs);
    EXPECT_LE(f.queue_slots, peak_queues_ + 16);  // + queues named within one step
    EXPECT_LE(f.idempotency_keys, kCacheKeys);
    // Cancels reported to watches are those of active jobs only.
    EXPECT_LE(f.cancels_pending, f.active_jobs);
    EXPECT_LE(f.cancel_watch_deadline_entries, 2 * f.cancel_watches + 64);
  }

  ManualClock clock_;
  Rng rng_;
  Rng pick_;
  std::unique_ptr<Scheduler> sched_;
  std::size_t peak_queues_ = 0;
  std::map<std::string, IdempotencyKeyRecord> stored_keys_;
  std::size_t store_lookups_ = 0;
};

TEST_F(CoreMemoryTest, OneHourOfChurnKeepsEveryStructureProportionalToLiveWork) {
  struct Held {
    JobId id;
    std::uint64_t token;
    std::int64_t finish_at_ms;
    int outcome;  // 0 ack, 1 fail, 2 abandon (lease expires), 3 heartbeat then ack
  };
  std::deque<Held> held;
  std::deque<JobId> long_delayed;  // 30-day jobs, at most ~40 at a time
  std::deque<JobId> short_delayed;
  std::vector<std::string> recent_keys;
  std::size_t keys_created = 0, keyed_jobs = 0, duplicates = 0, waiters_timed_out = 0,
              waiters_served = 0, watches_woken = 0;
  std::map<int, SchedulerFootprint> per_minute;

  for (int step = 0; step < kSteps; ++step) {
    const std::int64_t now = clock_.NowMs();
    // Names churn: a queue lives about a second, a namespace ten, a kind a minute, a worker two
    // seconds. Over the hour that is 3,600 queues, 360 namespaces, 60 kinds, 1,800 workers.
    const std::string queue = "q-" + std::to_string(step / 10);
    const std::string prev_queue = "q-" + std::to_string(step / 10 - 1);
    const std::string ns = "ns-" + std::to_string(step / 100);
    const std::string kind = "kind-" + std::to_string(step / 600);
    const std::string worker = "w-" + std::to_string(step / 20);

    for (int n = 0; n < 3; ++n) {
      EnqueueSpec s;
      s.ns = ns;
      s.queue = queue;
      s.kind = kind;
      s.payload = R"({"n":1})";
      if (Chance(30)) {
        if (!recent_keys.empty() && Chance(20)) {
          s.idempotency_key = recent_keys[pick_.Uniform(recent_keys.size())];
        } else {
          s.idempotency_key = "key-" + std::to_string(keys_created++);
          recent_keys.push_back(s.idempotency_key);
          if (recent_keys.size() > 50) recent_keys.erase(recent_keys.begin());
        }
      }
      const bool keyed = !s.idempotency_key.empty();
      const bool long_delay = Chance(1) && Chance(50);
      const bool short_delay = !long_delay && Chance(20);
      if (long_delay) s.delay_ms = kThirtyDays;
      if (short_delay) s.delay_ms = 1 + static_cast<std::int64_t>(pick_.Uniform(5000));
      auto r = Enqueue(std::move(s));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (r->duplicate) {
        ++duplicates;
        continue;
      }
      if (keyed) ++keyed_jobs;
      if (long_delay) long_delayed.push_back(r->id);
      if (short_delay) short_delayed.push_back(r->id);
    }
    // Cancels: the oldest 30-day job once there are 40, and some short delays before they fire
    // (each leaves a stale timer entry behind).
    if (long_delayed.size() > 40) {
      (void)sched_->Cancel(long_delayed.front());
      long_delayed.pop_front();
    }
    while (short_delayed.size() > 200) short_delayed.pop_front();
    if (!short_delayed.empty() && Chance(30)) {
      (void)sched_->Cancel(short_delayed.back());
      short_delayed.pop_back();
    }
    Commit();

    // Long polls: one per step on a queue named once (a typo) that times out, and sometimes one
    // on the live queue that gets served.
    {
      LeaseRequest typo;
      typo.queues = {"typo-" + std::to_string(step)};
      typo.worker_id = "poller-" + std::to_string(step);
      typo.max = 1;
      typo.wait_ms = 1000;
      ASSERT_TRUE(sched_->Lease(typo).empty());
      // Waiter deadlines are on the monotonic clock.
      sched_->AddWaiter(typo,
                        clock_.MonoMs() + 500 + static_cast<std::int64_t>(pick_.Uniform(2500)),
                        [&](std::vector<LeasedJob> jobs) {
                          if (jobs.empty()) ++waiters_timed_out;
                        });
    }

    // Workers lease from this queue and the previous one.
    LeaseRequest req;
    req.queues = {queue, prev_queue};
    req.worker_id = worker;
    req.max = 3;
    req.lease_ms = 1000;
    // The worker keeps a cancel watch open (one per step: most run out, some are woken).
    ASSERT_TRUE(
        sched_
            ->AddCancelWatch(worker, {},
                             clock_.MonoMs() + 500 + static_cast<std::int64_t>(pick_.Uniform(2500)),
                             [&](std::vector<JobId> ids) {
                               if (!ids.empty()) ++watches_woken;
                             })
            .ok());
    for (auto& j : sched_->Lease(req)) {
      // Some running jobs get a cancel request (reported to the worker's watches until the
      // job leaves `active`).
      if (Chance(10)) (void)sched_->Cancel(j.id);
      const int roll = static_cast<int>(pick_.Uniform(100));
      const int outcome = roll < 75 ? 0 : roll < 85 ? 1 : roll < 93 ? 2 : 3;
      held.push_back(
          Held{j.id, j.lease.token, now + static_cast<std::int64_t>(pick_.Uniform(800)), outcome});
    }
    if (Chance(5)) {
      LeaseRequest served;
      served.queues = {queue};
      served.worker_id = worker;
      served.max = 1;
      sched_->AddWaiter(served, clock_.MonoMs() + 2000, [&, now](std::vector<LeasedJob> jobs) {
        if (!jobs.empty()) {
          ++waiters_served;
          for (auto& j : jobs) held.push_back(Held{j.id, j.lease.token, now + 100, 0});
        }
      });
    }

    // Finish what is due.
    while (!held.empty() && held.front().finish_at_ms <= now) {
      const Held h = held.front();
      held.pop_front();
      switch (h.outcome) {
        case 0:
          (void)sched_->Ack(h.id, h.token, "");
          break;
        case 1: {
          FailSpec f;
          f.message = "boom";
          f.retry_in_ms = static_cast<std::int64_t>(pick_.Uniform(2000));
          (void)sched_->Fail(h.id, h.token, f);
          break;
        }
        case 2:
          break;  // abandoned: the lease expires and the job goes back to ready
        case 3:
          // A heartbeat that shortens the lease (pushes a second heap entry), then the ack.
          (void)sched_->Heartbeat(h.id, h.token, 200);
          (void)sched_->Ack(h.id, h.token, "");
          break;
      }
    }
    Commit();
    clock_.Advance(kStepMs);
    sched_->Tick();
    Commit();
    sched_->Tick();

    const SchedulerFootprint f = sched_->Footprint();
    peak_queues_ = std::max(peak_queues_, f.queues);
    if (step % 600 == 599) {
      per_minute[step / 600] = f;
      CheckBounded(f, ("minute " + std::to_string(step / 600)).c_str());
      if (HasFailure()) return;
    }
  }

  // The workload really did churn through many names and events.
  EXPECT_GT(waiters_timed_out, 30'000u);
  EXPECT_GT(waiters_served, 10u);
  EXPECT_GT(watches_woken, 1000u);
  EXPECT_GT(duplicates, 1000u);
  // Far more keys than the cache holds were created in their window; misses went to the store.
  EXPECT_GT(keyed_jobs, 20 * kCacheKeys);
  EXPECT_GT(store_lookups_, 1000u);

  // Flat: the second half of the hour holds no more than the first half did, give or take the
  // noise of the live work itself.
  const SchedulerFootprint& early = per_minute.at(29);
  const SchedulerFootprint& late = per_minute.at(59);
  EXPECT_LE(late.live_jobs, 2 * early.live_jobs + 100);
  EXPECT_LE(late.queues, 2 * early.queues + 20);
  EXPECT_LE(late.timer_entries + late.lease_entries + late.waiter_deadline_entries,
            2 * (early.timer_entries + early.lease_entries + early.waiter_deadline_entries) + 200);

  // Drain all live work: cancel everything still waiting, let the leases expire or finish.
  for (JobId id : long_delayed) (void)sched_->Cancel(id);
  for (JobId id : short_delayed) (void)sched_->Cancel(id);
  for (const Held& h : held) (void)sched_->Ack(h.id, h.token, "");
  Commit();
  for (int round = 0; round < 200 && sched_->live_jobs() > 0; ++round) {
    ListQuery all;
    all.limit = 1000;
    for (const JobView& v : sched_->ListLive(all).items) {
      if (v.job.state == JobState::kActive) {
        (void)sched_->Ack(v.job.id, v.lease->token, "");
      } else {
        (void)sched_->Cancel(v.job.id);
      }
    }
    Commit();
    clock_.Advance(1000);
    sched_->Tick();
    Commit();
  }
  clock_.Advance(10'000);                    // every waiter deadline has passed
  for (int sweep = 0; sweep < 3; ++sweep) {  // idle queues go at their second idle sweep
    sched_->Tick();
    Commit();
    clock_.Advance(1000);
  }

  const SchedulerFootprint f = sched_->Footprint();
  EXPECT_EQ(f.live_jobs, 0u);
  EXPECT_EQ(f.index_pages, 0u);
  EXPECT_EQ(f.waiters, 0u);
  EXPECT_EQ(f.cancel_watches, 0u);
  EXPECT_EQ(f.cancels_pending, 0u);
  EXPECT_LE(f.cancel_watch_deadline_entries, 64u);
  EXPECT_EQ(f.queues, 0u);
  EXPECT_EQ(f.lanes, 0u);
  EXPECT_EQ(f.namespaces, 0u);
  EXPECT_EQ(f.kinds, 0u);
  EXPECT_EQ(f.workers, 0u);
  EXPECT_LE(f.timer_entries, 64u);
  EXPECT_LE(f.lease_entries, 64u);
  EXPECT_LE(f.waiter_deadline_entries, 64u);
  // Slots are reused, so they never exceed the peak of names alive at once.
  EXPECT_LE(f.queue_slots, peak_queues_ + 16);  // + queues named within one step
  EXPECT_LT(f.intern_slots, 1000u);             // 3,600 + 360 + 60 + 1,800 names were seen
}

// docs/architecture.md ("Memory per job") states these sizes field by field; a field added to
// either struct must update that table, and this test says so. Only on the platform the table
// describes (x86-64, libstdc++).
TEST(LiveJobLayout, SizesAreTheDocumentedOnes) {
#if defined(__x86_64__) && defined(__GLIBCXX__)
  EXPECT_EQ(sizeof(LiveJob), 192u) << "update docs/architecture.md, \"Memory per job\"";
  EXPECT_EQ(sizeof(JobExtra), 176u) << "update docs/architecture.md, \"Memory per job\"";
#else
  GTEST_SKIP() << "the documented sizes are those of x86-64 with libstdc++";
#endif
}

}  // namespace
}  // namespace ym
