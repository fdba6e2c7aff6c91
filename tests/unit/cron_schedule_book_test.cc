// ScheduleBook (src/core/cron/schedule_book.h): windows decided on time, each overlap policy,
// pause/resume with the missed-run policy, an update taking effect on the next window,
// deterministic jitter, history bounds and backfill windows, and the timer heap at 100,000
// schedules (no per-tick scan, stale entries bounded).

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/time_zone.h"
#include "core/cron/schedule_book.h"

namespace ym::cron {
namespace {

constexpr std::int64_t kT0 = 1'717'977'600'000;  // 2024-06-10T00:00:00Z
constexpr std::int64_t kSec = 1000;
constexpr std::int64_t kMin = 60 * kSec;

// Jobs as a map id -> (window, live); Emit refuses while `refuse` is set.
class FakeJobs : public ScheduleEffects {
 public:
  struct Job {
    std::optional<std::int64_t> window;
    std::int64_t run_at = 0;
    bool live = true;
    bool cancelled = false;
  };
  bool IsLive(JobId id) const override {
    auto it = jobs.find(id);
    return it != jobs.end() && it->second.live;
  }
  Result<JobId> Emit(const Schedule&, std::optional<std::int64_t> window,
                     std::int64_t run_at) override {
    if (refuse) return Status(Code::kNamespaceLimit, "refused");
    const JobId id = next++;
    jobs[id] = Job{window, run_at, true, false};
    order.push_back(id);
    return id;
  }
  void Cancel(JobId id) override {
    jobs[id].live = false;
    jobs[id].cancelled = true;
  }
  // Ends job `id` and tells the book.
  void End(ScheduleBook& book, JobId id) {
    jobs[id].live = false;
    book.OnJobEnded(id);
  }
  std::vector<std::int64_t> Windows() const {
    std::vector<std::int64_t> w;
    for (JobId id : order) {
      if (jobs.at(id).window) w.push_back(*jobs.at(id).window);
    }
    return w;
  }
  std::map<JobId, Job> jobs;
  std::vector<JobId> order;
  JobId next = 1;
  bool refuse = false;
};

ScheduleSpec Spec(const std::string& id, const char* cron, Overlap overlap = Overlap::kAllow,
                  MissedPolicy policy = MissedPolicy::kLatestOnly) {
  ScheduleSpec s;
  s.id = id;
  auto e = CronExpr::Parse(cron);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  s.expr = *e;
  s.zone = *FindTimeZone("UTC", "time_zone");
  s.overlap = overlap;
  s.missed.policy = policy;
  s.missed.grace_ms = 5 * kSec;
  s.job.queue = "q";
  s.job.kind = "k";
  s.json = "{}";
  return s;
}

// Fires the book at every second from `from` to `to` (inclusive).
void RunSeconds(ScheduleBook& book, FakeJobs& jobs, std::int64_t from, std::int64_t to) {
  for (std::int64_t t = from; t <= to; t += kSec) book.Fire(t, jobs);
}

std::vector<std::string> Reasons(const Schedule& s) {
  std::vector<std::string> r;
  for (const auto& e : s.history) r.push_back((e.emitted ? "+" : "-") + e.reason);
  return r;
}

TEST(CronScheduleBook, EmitsEachWindowOnceOnTimeAndArmsTheNext) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 10s"), false, kT0).ok());
  EXPECT_EQ(book.NextFireMs(), kT0 + 10 * kSec);
  EXPECT_TRUE(book.Fire(kT0 + 9'999, jobs).empty()) << "nothing before the window";
  RunSeconds(book, jobs, kT0 + 10 * kSec, kT0 + 60 * kSec);
  std::vector<std::int64_t> want;
  for (int k = 1; k <= 6; ++k) want.push_back(kT0 + k * 10 * kSec);
  EXPECT_EQ(jobs.Windows(), want);
  const Schedule* s = book.Find("a");
  EXPECT_EQ(s->state.cursor_ms, kT0 + 60 * kSec);
  EXPECT_EQ(s->history.back().reason, "on_time");
  EXPECT_EQ(s->history.back().lag_ms, 0);
  EXPECT_EQ(book.NextFireMs(), kT0 + 70 * kSec);
  // Firing again at the same instant decides nothing more.
  EXPECT_TRUE(book.Fire(kT0 + 60 * kSec, jobs).empty());
  EXPECT_EQ(jobs.order.size(), 6u);
  EXPECT_EQ(book.Create(Spec("a", "every 1s"), false, kT0).code(), Code::kAlreadyExists);
}

TEST(CronScheduleBook, OverlapSkipSkipsWhileThePreviousJobIsLive) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s", Overlap::kSkip), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  ASSERT_EQ(jobs.order.size(), 1u) << "windows 2 and 3 overlap job 1";
  jobs.End(book, 1);
  RunSeconds(book, jobs, kT0 + 4 * kSec, kT0 + 4 * kSec);
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + kSec, kT0 + 4 * kSec}));
  EXPECT_EQ(Reasons(*book.Find("a")),
            (std::vector<std::string>{"+on_time", "-overlap", "-overlap", "+on_time"}));
}

TEST(CronScheduleBook, OverlapAllowEmitsEveryWindow) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s", Overlap::kAllow), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  EXPECT_EQ(jobs.order.size(), 3u);
  for (const auto& [id, j] : jobs.jobs) EXPECT_TRUE(j.live);
}

TEST(CronScheduleBook, OverlapBufferOneHoldsOneWindowUntilTheLiveJobEnds) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s", Overlap::kBufferOne), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  ASSERT_EQ(jobs.order.size(), 1u);
  EXPECT_EQ(book.Find("a")->state.buffered_ms, kT0 + 2 * kSec) << "the first overlap is held";
  // The job ends between windows: the held window is due at once, not at the next window.
  jobs.End(book, 1);
  ASSERT_TRUE(book.NextFireMs().has_value());
  EXPECT_LT(*book.NextFireMs(), kT0 + 3'500);
  book.Fire(kT0 + 3'500, jobs);
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + kSec, kT0 + 2 * kSec}));
  EXPECT_FALSE(book.Find("a")->state.buffered_ms.has_value());
  EXPECT_EQ(Reasons(*book.Find("a")),
            (std::vector<std::string>{"+on_time", "-buffer_full", "+buffered"}));
  EXPECT_EQ(book.Find("a")->history.back().lag_ms, 1'500) << "lag counts from the window";
  EXPECT_EQ(book.NextFireMs(), kT0 + 4 * kSec);
}

TEST(CronScheduleBook, OverlapCancelPreviousCancelsTheLiveJobThenEmits) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s", Overlap::kCancelPrevious), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  ASSERT_EQ(jobs.order.size(), 3u);
  EXPECT_TRUE(jobs.jobs[1].cancelled);
  EXPECT_TRUE(jobs.jobs[2].cancelled);
  EXPECT_FALSE(jobs.jobs[3].cancelled);
  EXPECT_TRUE(jobs.jobs[3].live);
}

TEST(CronScheduleBook, PausedSchedulesEmitNothingAndResumeByTheMissedRunPolicy) {
  for (MissedPolicy p : {MissedPolicy::kSkip, MissedPolicy::kLatestOnly, MissedPolicy::kCatchUp}) {
    ScheduleBook book;
    FakeJobs jobs;
    ASSERT_TRUE(book.Create(Spec("a", "every 1m", Overlap::kAllow, p), false, kT0).ok());
    ASSERT_TRUE(book.SetPaused("a", true, kT0 + 30 * kSec, jobs).ok());
    EXPECT_FALSE(book.NextFireMs().has_value()) << "a paused schedule has no timer";
    for (std::int64_t t = kT0; t <= kT0 + 10 * kMin; t += kMin) book.Fire(t, jobs);
    EXPECT_TRUE(jobs.order.empty());
    ASSERT_TRUE(book.SetPaused("a", false, kT0 + 10 * kMin + 30 * kSec, jobs).ok());
    book.Fire(kT0 + 10 * kMin + 30 * kSec, jobs);
    const auto w = jobs.Windows();
    switch (p) {
      case MissedPolicy::kSkip:
        EXPECT_TRUE(w.empty()) << "skip: the ten windows missed while paused are skipped";
        EXPECT_EQ(Reasons(*book.Find("a")), (std::vector<std::string>{"-missed"}));
        break;
      case MissedPolicy::kLatestOnly:
        EXPECT_EQ(w, (std::vector<std::int64_t>{kT0 + 10 * kMin}));
        EXPECT_EQ(Reasons(*book.Find("a")), (std::vector<std::string>{"-superseded", "+latest"}));
        break;
      case MissedPolicy::kCatchUp:
        EXPECT_EQ(w.size(), 10u);
        EXPECT_EQ(w.front(), kT0 + kMin);
        EXPECT_EQ(book.Find("a")->history.back().reason, "catch_up");
        break;
    }
    EXPECT_EQ(book.Find("a")->state.cursor_ms, kT0 + 10 * kMin);
  }
}

TEST(CronScheduleBook, AnUpdateTakesEffectOnTheNextWindow) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 10s"), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 25 * kSec);
  ASSERT_EQ(jobs.order.size(), 2u);
  // At +25 s: every 3 s from now on. Windows of the new expression before the update (3 s, 6 s,
  // ... 24 s) are not emitted; the first new window is the first after the update.
  auto spec = Spec("a", "every 3s");
  ASSERT_TRUE(book.Update(spec, kT0 + 25 * kSec, jobs).ok());
  EXPECT_EQ(book.NextFireMs(), kT0 + 27 * kSec);
  RunSeconds(book, jobs, kT0 + 26 * kSec, kT0 + 33 * kSec);
  EXPECT_EQ(jobs.Windows(),
            (std::vector<std::int64_t>{kT0 + 10 * kSec, kT0 + 20 * kSec, kT0 + 27 * kSec,
                                       kT0 + 30 * kSec, kT0 + 33 * kSec}));
  // A template change too: the next window's job is made from the new spec.
  EXPECT_EQ(book.Update(Spec("zz", "every 3s"), kT0, jobs).code(), Code::kNotFound);
}

TEST(CronScheduleBook, AnUpdateFirstDecidesWhatCameDueUnderTheOldSpec) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 10s"), false, kT0).ok());
  // The timer of +10 s has not fired yet when the update comes at +10.5 s.
  ASSERT_TRUE(book.Update(Spec("a", "every 1m"), kT0 + 10'500, jobs).ok());
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + 10 * kSec}));
  EXPECT_EQ(book.NextFireMs(), kT0 + kMin);
}

TEST(CronScheduleBook, JitterIsDeterministicPerWindowAndBounded) {
  std::set<std::int64_t> seen;
  for (std::int64_t w = 0; w < 1000; ++w) {
    const std::int64_t j = ScheduleBook::JitterOf("nightly", kT0 + w * kMin, 30'000);
    EXPECT_GE(j, 0);
    EXPECT_LE(j, 30'000);
    EXPECT_EQ(j, ScheduleBook::JitterOf("nightly", kT0 + w * kMin, 30'000));
    seen.insert(j);
  }
  EXPECT_GT(seen.size(), 900u) << "spread, not a constant";
  EXPECT_EQ(ScheduleBook::JitterOf("x", kT0, 0), 0);
  ScheduleBook book;
  FakeJobs jobs;
  auto spec = Spec("a", "every 1m");
  spec.jitter_ms = 20'000;
  ASSERT_TRUE(book.Create(spec, false, kT0).ok());
  book.Fire(kT0 + kMin, jobs);
  ASSERT_EQ(jobs.order.size(), 1u);
  EXPECT_EQ(jobs.jobs[1].run_at, kT0 + kMin + ScheduleBook::JitterOf("a", kT0 + kMin, 20'000));
}

TEST(CronScheduleBook, ARefusedWindowIsRecordedAndNotRetried) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s"), false, kT0).ok());
  jobs.refuse = true;
  book.Fire(kT0 + kSec, jobs);
  jobs.refuse = false;
  book.Fire(kT0 + 2 * kSec, jobs);
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + 2 * kSec}));
  EXPECT_EQ(Reasons(*book.Find("a")),
            (std::vector<std::string>{"-refused: namespace_limit", "+on_time"}));
}

TEST(CronScheduleBook, BoundsEndTheSchedule) {
  ScheduleBook book;
  FakeJobs jobs;
  auto spec = Spec("a", "every 1s");
  spec.start_ms = kT0 + 5 * kSec;
  spec.end_ms = kT0 + 7 * kSec;
  ASSERT_TRUE(book.Create(spec, false, kT0).ok());
  RunSeconds(book, jobs, kT0, kT0 + 20 * kSec);
  // An interval counts from start_at: its first window is one interval after it.
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + 6 * kSec, kT0 + 7 * kSec}));
  EXPECT_TRUE(book.Find("a")->ended);
  EXPECT_FALSE(book.NextFireMs().has_value());
  spec.end_ms = kT0 - 1;
  EXPECT_EQ(book.Create(spec, false, kT0).code(), Code::kValidation) << "end before start";
}

TEST(CronScheduleBook, HistoryIsBoundedAndRowsCarryOnlyNewEntries) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1s"), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  ScheduleRow row = book.TakeRow("a");
  EXPECT_EQ(row.new_history.size(), 3u);
  EXPECT_EQ(row.state.cursor_ms, kT0 + 3 * kSec);
  EXPECT_TRUE(book.TakeRow("a").new_history.empty());
  RunSeconds(book, jobs, kT0 + 4 * kSec, kT0 + 200 * kSec);
  EXPECT_EQ(book.Find("a")->history.size(), ScheduleBook::kHistory);
  EXPECT_EQ(book.Find("a")->history.back().seq, 200u);
  EXPECT_EQ(book.TakeRow("a").new_history.size(), ScheduleBook::kHistory);
}

TEST(CronScheduleBook, LoadRestoresStateAndReconcilesAtTheFirstFire) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(
      book.Create(Spec("a", "every 1s", Overlap::kAllow, MissedPolicy::kCatchUp), false, kT0).ok());
  RunSeconds(book, jobs, kT0 + kSec, kT0 + 3 * kSec);
  ScheduleRow row = book.TakeRow("a");
  // "Restart" 10 s later with what was written.
  ScheduleBook again;
  again.Load(Spec("a", "every 1s", Overlap::kAllow, MissedPolicy::kCatchUp), row.state,
             row.new_history);
  EXPECT_EQ(again.NextFireMs(), kT0 + 4 * kSec) << "armed at the first undecided window";
  again.Fire(kT0 + 13 * kSec, jobs);
  const auto w = jobs.Windows();
  ASSERT_EQ(w.size(), 13u);
  for (std::size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(w[i], kT0 + static_cast<std::int64_t>(i + 1) * kSec) << "no window twice";
  }
  EXPECT_EQ(again.Find("a")->history.size(), 13u);
}

TEST(CronScheduleBook, BackfillWindowsAreThoseAtOrBeforeTheCursor) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "* * * * *"), false, kT0 + 10 * kMin).ok());
  std::uint64_t later = 0;
  auto w = book.BackfillWindows("a", kT0, kT0 + 12 * kMin, &later);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 11u) << "0..10 min inclusive";
  EXPECT_EQ(w->front(), kT0);
  EXPECT_EQ(later, 2u);
  EXPECT_EQ(book.BackfillWindows("a", kT0, kT0 - 1, nullptr).status().code(), Code::kValidation);
  EXPECT_EQ(book.BackfillWindows("a", kT0 - 30LL * 86'400'000, kT0, nullptr).status().code(),
            Code::kValidation)
      << "over 10,000 windows";
  EXPECT_EQ(book.BackfillWindows("b", kT0, kT0, nullptr).status().code(), Code::kNotFound);
}

TEST(CronScheduleBook, TriggerEmitsOutsideTheSequence) {
  ScheduleBook book;
  FakeJobs jobs;
  ASSERT_TRUE(book.Create(Spec("a", "every 1m", Overlap::kSkip), true, kT0).ok());
  auto id = book.Trigger("a", kT0 + 5 * kSec, jobs);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(jobs.jobs[*id].window.has_value());
  EXPECT_EQ(book.Find("a")->state.cursor_ms, kT0) << "the cursor does not move";
  ASSERT_TRUE(book.SetPaused("a", false, kT0 + 10 * kSec, jobs).ok());
  book.Fire(kT0 + kMin, jobs);
  EXPECT_EQ(jobs.Windows(), (std::vector<std::int64_t>{kT0 + kMin}))
      << "a triggered job is not the sequence's previous job: overlap ignores it";
}

TEST(CronScheduleBook, OneHundredThousandSchedulesFireWithoutAScan) {
  ScheduleBook book;
  FakeJobs jobs;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    // Spread over an hour of per-hour windows: one schedule per 36 ms.
    // An interval's first window is one interval after its start.
    auto spec = Spec("s" + std::to_string(i), "every 1h");
    spec.start_ms = kT0 - 3'600'000 + 1 + static_cast<std::int64_t>(i) * 36;
    ASSERT_TRUE(book.Create(std::move(spec), false, kT0).ok());
  }
  // One fire decides only the schedules due: 10 s of windows is ~278 schedules.
  const auto decided = book.Fire(kT0 + 10 * kSec, jobs, kN);
  EXPECT_EQ(decided.size(), 278u);
  // Updates leave stale entries; the heap stays within a constant of the schedules.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kN; i += 7) {
      auto spec = Spec("s" + std::to_string(i), round % 2 ? "every 1h" : "every 2h");
      ASSERT_TRUE(book.Update(std::move(spec), kT0 + 10 * kSec, jobs).ok());
    }
    book.Fire(kT0 + 10 * kSec, jobs, kN);
  }
  EXPECT_LE(book.timer_entries(), 2u * kN + 64);
  ASSERT_TRUE(book.Delete("s1"));
  EXPECT_EQ(book.size(), static_cast<std::size_t>(kN - 1));
}

}  // namespace
}  // namespace ym::cron
