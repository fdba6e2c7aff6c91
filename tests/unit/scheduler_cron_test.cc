// Schedules wired into the Scheduler (core/scheduler_cron.cc) over a real store: a window's job
// and its schedule's cursor in one batch, recovery reconciling by the missed-run policy, the
// core loop's deadline, an update taking effect on the next window, and a randomized run that
// interleaves schedule changes, ticks, worker activity and crashes (the open batch lost, a new
// Scheduler rebuilt from the store) checking that no window is ever committed twice and that a
// catch_up/allow schedule misses none.
//
// The seed is printed; YM_CRON_SEED=<n> replays one, YM_CRON_STEPS=<n> sets the length.

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"
#include "net/codec_schedules.h"
#include "server/scheduler_loader.h"
#include "store/memory_store.h"

namespace ym {
namespace {

constexpr std::int64_t kT0 = 1'717'977'600'000;  // 2024-06-10T00:00:00Z
constexpr std::int64_t kSec = 1000;

cron::ScheduleSpec Spec(const std::string& body) {
  auto r = net::ParseScheduleCreate(body, net::CodecLimits{});
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " in " << body;
  return r.ok() ? std::move(r->spec) : cron::ScheduleSpec{};
}

// A Scheduler over a MemoryStore (durable for the object's life), driven as the Broker drives
// it: Tick, then seal and commit. Crash() drops the open batch and rebuilds core from the store.
class CronHarness {
 public:
  explicit CronHarness(std::uint64_t seed = 1) : clock_(kT0), rng_(seed) { Open(); }

  Scheduler& s() { return *sched_; }
  ManualClock& clock() { return clock_; }

  void Open() {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
    SchedulerLoader loader(*sched_);
    ASSERT_TRUE(store_.Recover(clock_.NowMs(), loader).ok());
    ASSERT_EQ(loader.bad_limits(), 0u) << loader.first_bad_limit();
  }
  void Crash() {
    sched_.reset();
    Open();
  }
  // Seals and commits; records the windows each committed batch emitted.
  void Commit() {
    if (!sched_->HasOpenMutations()) return;
    Batch b = sched_->SealBatch();
    std::map<std::string, std::int64_t> cursor;  // schedule -> cursor written in this batch
    std::vector<std::pair<std::string, std::int64_t>> windows;
    for (const Mutation& m : b.mutations) {
      if (const auto* ins = std::get_if<InsertJob>(&m)) {
        auto k = net::ParseScheduleKey(ins->job.idempotency_key);
        if (k && k->window) {
          windows.emplace_back(k->id, *k->window);
          kinds_[{k->id, *k->window}] = ins->job.kind;
        }
      } else if (const auto* ps = std::get_if<PutSchedule>(&m)) {
        cursor[ps->row.id] = ps->row.state.cursor_ms;
      }
    }
    ASSERT_TRUE(store_.Commit(b).ok());
    sched_->OnCommitted(b.seq);
    for (const auto& [id, w] : windows) {
      EXPECT_TRUE(committed_.insert({id, w}).second)
          << "window " << w << " of " << id << " committed twice";
      // The cursor that covers the window is in the same batch (unless backfilled, not here).
      ASSERT_TRUE(cursor.count(id)) << "window " << w << " of " << id << " without its cursor";
      EXPECT_GE(cursor[id], w);
    }
  }
  void TickAndCommit() {
    sched_->Tick();
    Commit();
  }
  // Advances to `t` second by second, ticking and committing (a running broker's loop).
  void RunTo(std::int64_t t) {
    while (clock_.NowMs() < t) {
      clock_.Advance(std::min<std::int64_t>(kSec, t - clock_.NowMs()));
      TickAndCommit();
    }
  }
  std::vector<std::int64_t> Windows(const std::string& id) const {
    std::vector<std::int64_t> out;
    for (const auto& [sid, w] : committed_) {
      if (sid == id) out.push_back(w);
    }
    return out;
  }
  const std::map<std::pair<std::string, std::int64_t>, std::string>& kinds() const {
    return kinds_;
  }

 private:
  ManualClock clock_;
  Rng rng_;
  MemoryStore store_;
  std::unique_ptr<Scheduler> sched_;
  std::set<std::pair<std::string, std::int64_t>> committed_;
  std::map<std::pair<std::string, std::int64_t>, std::string> kinds_;
};

TEST(SchedulerCron, WindowsBecomeJobsWithTheirKeyAndTheCursorInTheSameBatch) {
  CronHarness h;
  auto v = h.s().CreateSchedule(Spec(R"({"id":"tick","cron":"every 1s","overlap":"allow",
                 "job":{"queue":"q","kind":"k","payload":{"a":1}}})"),
                                false);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  h.Commit();
  EXPECT_EQ(h.s().NextDeadlineInMs(), 1000) << "the core loop wakes for the first window";
  h.RunTo(kT0 + 3 * kSec);
  EXPECT_EQ(h.Windows("tick"),
            (std::vector<std::int64_t>{kT0 + kSec, kT0 + 2 * kSec, kT0 + 3 * kSec}));
  auto got = h.s().GetSchedule("tick", 3);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->schedule.state.cursor_ms, kT0 + 3 * kSec);
  ASSERT_NE(got->schedule.state.last_job, 0u);
  auto job = h.s().Get(got->schedule.state.last_job);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->job.idempotency_key, "schedule:tick:" + std::to_string(kT0 + 3 * kSec));
  EXPECT_EQ(job->job.payload, R"({"a":1})");
  EXPECT_EQ(got->next_fire_times,
            (std::vector<std::int64_t>{kT0 + 4 * kSec, kT0 + 5 * kSec, kT0 + 6 * kSec}));
  EXPECT_EQ(
      h.s()
          .CreateSchedule(Spec(R"({"id":"tick","cron":"every 1s","job":{"queue":"q","kind":"k"}})"),
                          false)
          .status()
          .code(),
      Code::kAlreadyExists);
}

TEST(SchedulerCron, AChangeTakesEffectOnTheNextWindow) {
  CronHarness h;
  ASSERT_TRUE(h.s()
                  .CreateSchedule(Spec(R"({"id":"s","cron":"every 10s","overlap":"allow",
                                           "job":{"queue":"q","kind":"old"}})"),
                                  false)
                  .ok());
  h.RunTo(kT0 + 25 * kSec);
  ASSERT_TRUE(h.s()
                  .UpdateSchedule(Spec(R"({"id":"s","cron":"every 4s","overlap":"allow",
                                           "job":{"queue":"q","kind":"new"}})"),
                                  std::nullopt)
                  .ok());
  h.Commit();
  h.RunTo(kT0 + 33 * kSec);
  // Old: 10 s, 20 s. New (every 4 s from the creation anchor), after the update at 25 s only.
  EXPECT_EQ(h.Windows("s"), (std::vector<std::int64_t>{kT0 + 10 * kSec, kT0 + 20 * kSec,
                                                       kT0 + 28 * kSec, kT0 + 32 * kSec}));
  EXPECT_EQ(h.kinds().at({"s", kT0 + 20 * kSec}), "old");
  EXPECT_EQ(h.kinds().at({"s", kT0 + 28 * kSec}), "new") << "the template changed too";
}

TEST(SchedulerCron, ACrashBeforeTheCommitLosesJobAndCursorTogetherAndRestartReconciles) {
  for (const char* policy : {"catch_up", "latest_only", "skip"}) {
    CronHarness h;
    const std::string body = std::string(R"({"id":"s","cron":"every 1s","overlap":"allow",
        "missed_runs":{"policy":")") +
                             policy + R"(","grace_ms":0},
        "job":{"queue":"q","kind":"k"}})";
    ASSERT_TRUE(h.s().CreateSchedule(Spec(body), false).ok());
    h.RunTo(kT0 + 2 * kSec);
    // Window 3 is decided, then the process dies before its batch commits; down until 6.5 s.
    h.clock().Advance(kSec);
    h.s().Tick();
    ASSERT_TRUE(h.s().HasOpenMutations());
    h.Crash();
    h.clock().Set(kT0 + 6'500);
    h.TickAndCommit();
    const auto w = h.Windows("s");
    std::vector<std::int64_t> want = {kT0 + kSec, kT0 + 2 * kSec};
    if (std::string(policy) == "catch_up") {
      for (int k = 3; k <= 6; ++k) want.push_back(kT0 + k * kSec);
    } else if (std::string(policy) == "latest_only") {
      want.push_back(kT0 + 6 * kSec);
    }
    EXPECT_EQ(w, want) << policy;
    auto v = h.s().GetSchedule("s", 0);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->schedule.state.cursor_ms, kT0 + 6 * kSec) << policy;
    ASSERT_FALSE(v->schedule.history.empty());
  }
}

TEST(SchedulerCron, BufferOneEmitsTheHeldWindowWhenTheJobEndsAcrossARestart) {
  CronHarness h;
  ASSERT_TRUE(h.s()
                  .CreateSchedule(Spec(R"({"id":"b","cron":"every 1s","overlap":"buffer_one",
                                           "job":{"queue":"q","kind":"k"}})"),
                                  false)
                  .ok());
  h.RunTo(kT0 + 3 * kSec);
  EXPECT_EQ(h.Windows("b"), (std::vector<std::int64_t>{kT0 + kSec}));
  h.Crash();  // graceful enough: everything was committed; the buffer is in the store
  auto v = h.s().GetSchedule("b", 0);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->schedule.state.buffered_ms, kT0 + 2 * kSec);
  LeaseRequest lr;
  lr.queues = {"q"};
  auto leased = h.s().Lease(lr);
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(h.s().Ack(leased[0].id, leased[0].lease.token, "").ok());
  h.Commit();
  EXPECT_EQ(h.s().NextDeadlineInMs(), 0) << "the held window is due at once";
  h.TickAndCommit();
  EXPECT_EQ(h.Windows("b"), (std::vector<std::int64_t>{kT0 + kSec, kT0 + 2 * kSec}));
}

// The randomized run. Two schedules: "all" (catch_up, allow, a large max_count) must end with
// every window in (creation, cursor] committed exactly once; "mixed" changes expression,
// overlap and pause state at random and must never commit a window twice.
TEST(SchedulerCron, RandomizedCrashesNeverEmitAWindowTwice) {
  std::uint64_t seed = std::random_device{}();
  if (const char* e = std::getenv("YM_CRON_SEED")) seed = std::strtoull(e, nullptr, 10);
  int steps = 1500;
  if (const char* e = std::getenv("YM_CRON_STEPS")) steps = std::atoi(e);
  SCOPED_TRACE("YM_CRON_SEED=" + std::to_string(seed));
  std::printf("cron model seed %llu\n", static_cast<unsigned long long>(seed));
  Rng op(seed);
  CronHarness h(seed);
  ASSERT_TRUE(h.s()
                  .CreateSchedule(Spec(R"({"id":"all","cron":"every 1s","overlap":"allow",
                      "missed_runs":{"policy":"catch_up","max_count":10000,"grace_ms":0},
                      "job":{"queue":"q","kind":"k"}})"),
                                  false)
                  .ok());
  ASSERT_TRUE(h.s()
                  .CreateSchedule(Spec(R"({"id":"mixed","cron":"*/2 * * * * *",
                      "job":{"queue":"m","kind":"k"}})"),
                                  false)
                  .ok());
  h.Commit();
  const char* exprs[] = {"every 1s", "every 3s", "*/2 * * * * *", "*/5 * * * * *"};
  const char* overlaps[] = {"allow", "skip", "buffer_one", "cancel_previous"};
  const char* policies[] = {"catch_up", "latest_only", "skip"};
  int crashes = 0;
  for (int step = 0; step < steps && !::testing::Test::HasFailure(); ++step) {
    const std::uint64_t r = op.Uniform(100);
    if (r < 40) {
      h.clock().Advance(static_cast<std::int64_t>(op.Uniform(2500)));
      h.s().Tick();
    } else if (r < 60) {
      h.Commit();
    } else if (r < 66) {
      h.Crash();  // the open batch is lost
      ++crashes;
    } else if (r < 76) {
      const std::string body = std::string(R"({"id":"mixed","cron":")") + exprs[op.Uniform(4)] +
                               R"(","overlap":")" + overlaps[op.Uniform(4)] +
                               R"(","missed_runs":{"policy":")" + policies[op.Uniform(3)] +
                               R"(","grace_ms":500},"job":{"queue":"m","kind":"k"}})";
      ASSERT_TRUE(h.s().UpdateSchedule(Spec(body), std::nullopt).ok());
    } else if (r < 82) {
      ASSERT_TRUE(h.s().PauseSchedule("mixed", op.Uniform(2) == 0).ok());
    } else {
      // A worker takes and finishes jobs of either queue.
      LeaseRequest lr;
      lr.queues = {"q", "m"};
      lr.max = static_cast<std::uint32_t>(1 + op.Uniform(3));
      for (const LeasedJob& j : h.s().Lease(lr)) {
        if (op.Uniform(2) == 0) (void)h.s().Ack(j.id, j.lease.token, "");
      }
    }
  }
  // Settle: a last tick and commit.
  h.TickAndCommit();
  const auto all = h.s().GetSchedule("all", 0);
  ASSERT_TRUE(all.has_value());
  std::vector<std::int64_t> want;
  for (std::int64_t w = kT0 + kSec; w <= all->schedule.state.cursor_ms; w += kSec) {
    want.push_back(w);
  }
  EXPECT_EQ(h.Windows("all"), want)
      << "catch_up + allow: every window once, none missed (" << crashes << " crashes)";
  EXPECT_GT(crashes, 0);
}

}  // namespace
}  // namespace ym
