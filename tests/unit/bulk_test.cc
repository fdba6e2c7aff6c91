// Bulk operations in core: the pure policy (core/bulk.h) and the scheduler's per-job decisions
// (Scheduler::CancelMatching, BulkReplayStored, BulkDeleteStored), with a ManualClock and a
// seeded Rng. Group commit is simulated by Commit() (SealBatch + OnCommitted).

#include "core/bulk.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "batch_mutations.h"
#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"
#include "store/batch.h"

namespace ym {
namespace {

JobFilter States(std::vector<JobState> states) {
  JobFilter f;
  f.states = std::move(states);
  return f;
}

constexpr std::int64_t kStart = 1'700'000'000'000;

TEST(BulkPolicyTest, AFilterWithoutStatesTakesEveryStateTheActionAppliesTo) {
  JobFilter f;
  f.queue = "q";
  auto cancel = NarrowBulkFilter(BulkAction::kCancel, f);
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->states,
            (std::vector<JobState>{JobState::kScheduled, JobState::kReady, JobState::kActive}));
  auto replay = NarrowBulkFilter(BulkAction::kReplay, f);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->states, (std::vector<JobState>{JobState::kDead, JobState::kCancelled}));
  auto del = NarrowBulkFilter(BulkAction::kDelete, f);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->states,
            (std::vector<JobState>{JobState::kSucceeded, JobState::kDead, JobState::kCancelled}));
  EXPECT_EQ(del->queue, "q");
}

TEST(BulkPolicyTest, AStateTheActionDoesNotApplyToIsRefusedNamingIt) {
  JobFilter f;
  f.states = {JobState::kDead, JobState::kReady};
  auto del = NarrowBulkFilter(BulkAction::kDelete, f);
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.status().code(), Code::kValidation);
  EXPECT_NE(del.status().message().find("field \"state\""), std::string::npos);
  EXPECT_NE(del.status().message().find("not ready"), std::string::npos)
      << "delete never touches a live job: " << del.status().message();
  auto cancel = NarrowBulkFilter(BulkAction::kCancel, States({JobState::kDead}));
  EXPECT_EQ(cancel.status().code(), Code::kValidation);
  auto replay = NarrowBulkFilter(BulkAction::kReplay, States({JobState::kSucceeded}));
  EXPECT_EQ(replay.status().code(), Code::kValidation);
  // A subset of the applicable states stays as given.
  auto dead = NarrowBulkFilter(BulkAction::kReplay, States({JobState::kDead}));
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->states, std::vector<JobState>{JobState::kDead});
}

TEST(BulkPolicyTest, AFinishedAtBoundOnACancelIsRefused) {
  JobFilter f;
  f.finished_before_ms = 5;
  auto cancel = NarrowBulkFilter(BulkAction::kCancel, f);
  ASSERT_FALSE(cancel.ok());
  EXPECT_NE(cancel.status().message().find("finished_before"), std::string::npos);
  EXPECT_TRUE(NarrowBulkFilter(BulkAction::kDelete, f).ok());
  EXPECT_TRUE(NarrowBulkFilter(BulkAction::kReplay, f).ok());
}

TEST(BulkPolicyTest, Names) {
  EXPECT_EQ(BulkActionName(BulkAction::kReplay), "replay");
  EXPECT_EQ(BulkDoneName(BulkAction::kCancel), "cancelled");
  EXPECT_EQ(BulkDoneName(BulkAction::kDelete), "deleted");
  EXPECT_TRUE(BulkAppliesTo(BulkAction::kDelete, JobState::kSucceeded));
  EXPECT_FALSE(BulkAppliesTo(BulkAction::kDelete, JobState::kActive));
}

class SchedulerBulkTest : public ::testing::Test {
 protected:
  SchedulerBulkTest() : clock_(kStart), rng_(7), sched_(clock_, rng_, SchedulerOptions{}) {}

  Batch Commit() {
    Batch b = sched_.SealBatch();
    sched_.OnCommitted(b.seq);
    return b;
  }

  JobId Enqueue(const std::string& queue, const std::string& kind,
                std::vector<std::string> tags = {}) {
    EnqueueSpec s;
    s.queue = queue;
    s.kind = kind;
    s.tags = std::move(tags);
    auto r = sched_.Enqueue(s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : 0;
  }

  LeasedJob LeaseOne(const std::string& queue) {
    LeaseRequest req;
    req.queues = {queue};
    req.worker_id = "w1";
    auto got = sched_.Lease(req);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? LeasedJob{} : got.front();
  }

  // A job that is dead, committed and evicted; returns its stored record (as a store holds it).
  JobRecord DeadStored(const std::string& queue, const std::string& kind = "k") {
    const JobId id = Enqueue(queue, kind);
    Batch inserted = Commit();
    FailSpec f;
    f.retryable = false;
    EXPECT_TRUE(sched_.Fail(id, LeaseOne(queue).lease.token, f).ok());
    Batch died = Commit();
    JobRecord stored = MutationsOf<UpdateJob>(died).at(0).job;
    stored.payload = MutationsOf<InsertJob>(inserted).at(0).job.payload;
    EXPECT_EQ(stored.state, JobState::kDead);
    EXPECT_FALSE(sched_.IsLive(id));
    return stored;
  }

  static JobFilter Narrow(BulkAction action, JobFilter f) {
    auto r = NarrowBulkFilter(action, std::move(f));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : JobFilter{};
  }

  JobState StateOf(JobId id) {
    auto v = sched_.Get(id);
    return v ? v->job.state : JobState::kSucceeded;
  }

  ManualClock clock_;
  Rng rng_;
  Scheduler sched_;
};

TEST_F(SchedulerBulkTest, CancelMatchingCancelsWhatTheFilterSelectsAsCancelDoes) {
  const JobId a1 = Enqueue("q", "a", {"t"});
  const JobId b1 = Enqueue("q", "b", {"t"});
  const JobId a2 = Enqueue("q", "a");
  const JobId other = Enqueue("r", "a", {"t"});
  Commit();
  const LeasedJob running = LeaseOne("q");  // a1, the oldest
  ASSERT_EQ(running.id, a1);

  JobFilter f;
  f.queue = "q";
  f.kind = "a";
  const JobFilter cancel = Narrow(BulkAction::kCancel, f);
  BulkOutcome out;
  std::uint64_t examined = 0;
  EXPECT_EQ(sched_.CancelMatching(cancel, 0, 100, 1000, false, out, &examined), 0u);
  EXPECT_EQ(out.matched, 2u);
  EXPECT_EQ(out.applied, 2u);
  EXPECT_EQ(out.cancel_requested, 1u) << "the active one is flagged, as :cancel does";
  EXPECT_EQ(out.skipped, 0u);
  EXPECT_EQ(examined, 4u);
  EXPECT_EQ(StateOf(a1), JobState::kActive);
  EXPECT_TRUE(sched_.Get(a1)->job.cancel_requested);
  EXPECT_EQ(StateOf(a2), JobState::kCancelled);
  EXPECT_EQ(StateOf(b1), JobState::kReady) << "another kind";
  EXPECT_EQ(StateOf(other), JobState::kReady) << "another queue";
  Commit();

  // The same request again (a retry after a lost reply): the cancelled job is gone from the
  // live jobs, the active one already has its cancel requested. Nothing is counted twice.
  BulkOutcome again;
  sched_.CancelMatching(cancel, 0, 100, 1000, false, again, &examined);
  EXPECT_EQ(again.matched, 1u);
  EXPECT_EQ(again.applied, 0u);
  EXPECT_EQ(again.skipped, 1u);
  EXPECT_EQ(sched_.open_mutations(), 0u) << "a retry that finds everything done writes nothing";

  // By tag, across queues.
  JobFilter by_tag;
  by_tag.tag = "t";
  BulkOutcome tagged;
  sched_.CancelMatching(Narrow(BulkAction::kCancel, by_tag), 0, 100, 1000, false, tagged,
                        &examined);
  EXPECT_EQ(tagged.applied, 2u);  // b1 and other; a1 is still skipped
  EXPECT_EQ(tagged.skipped, 1u);
  EXPECT_EQ(StateOf(b1), JobState::kCancelled);
  EXPECT_EQ(StateOf(other), JobState::kCancelled);
}

TEST_F(SchedulerBulkTest, CancelMatchingStopsAtItsLimitOrBudgetAndSaysWhereToResume) {
  std::vector<JobId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(Enqueue("q", "k"));
  Commit();
  JobFilter f;
  f.queue = "q";
  const JobFilter cancel = Narrow(BulkAction::kCancel, f);
  BulkOutcome out;
  std::uint64_t examined = 0;
  JobId resume = sched_.CancelMatching(cancel, 0, 3, 1000, false, out, &examined);
  EXPECT_EQ(resume, ids[2]) << "resumes after the last job it matched";
  EXPECT_EQ(out.applied, 3u);
  EXPECT_EQ(examined, 3u);
  resume = sched_.CancelMatching(cancel, resume, 100, 2, false, out, &examined);
  EXPECT_NE(resume, 0u) << "the budget ran out before the end";
  EXPECT_LE(out.applied, 5u);
  while (resume != 0) resume = sched_.CancelMatching(cancel, resume, 100, 2, false, out, &examined);
  EXPECT_EQ(out.applied, 10u);
  EXPECT_EQ(out.matched, 10u);
  for (JobId id : ids) EXPECT_EQ(StateOf(id), JobState::kCancelled);
}

TEST_F(SchedulerBulkTest, ADryRunCountsAndChangesNothing) {
  for (int i = 0; i < 4; ++i) Enqueue("q", "k");
  Commit();
  JobFilter f;
  f.queue = "q";
  BulkOutcome out;
  std::uint64_t examined = 0;
  sched_.CancelMatching(Narrow(BulkAction::kCancel, f), 0, 100, 1000, true, out, &examined);
  EXPECT_EQ(out.matched, 4u);
  EXPECT_EQ(out.applied, 0u);
  EXPECT_EQ(sched_.open_mutations(), 0u);
  EXPECT_EQ(sched_.Queue("q")->counts["ready"], 4u);
}

TEST_F(SchedulerBulkTest, AnUnknownQueueOrKindMatchesNoLiveJob) {
  Enqueue("q", "k");
  Commit();
  JobFilter f;
  f.kind = "nosuchkind";
  BulkOutcome out;
  std::uint64_t examined = 0;
  EXPECT_EQ(
      sched_.CancelMatching(Narrow(BulkAction::kCancel, f), 0, 100, 1000, false, out, &examined),
      0u);
  EXPECT_EQ(out.matched, 0u);
  EXPECT_EQ(examined, 0u) << "resolved before any scan";
}

TEST_F(SchedulerBulkTest, ReplayStoredStartsANewRunOnceAndSkipsItOnARetry) {
  const JobRecord dead = DeadStored("q");
  JobFilter f;
  f.queue = "q";
  const JobFilter replay = Narrow(BulkAction::kReplay, f);
  auto t = sched_.OpenRead();
  EXPECT_EQ(sched_.BulkReplayStored(t, dead.id, JobRecord(dead), replay),
            Scheduler::BulkVerdict::kApplied);
  sched_.CloseRead(t);
  EXPECT_EQ(StateOf(dead.id), JobState::kReady);
  EXPECT_EQ(sched_.Get(dead.id)->job.runs, 2);
  Commit();
  // A retry that listed the same dead row before the replay was durable: the job is live now.
  auto retry = sched_.OpenRead();
  EXPECT_EQ(sched_.BulkReplayStored(retry, dead.id, JobRecord(dead), replay),
            Scheduler::BulkVerdict::kSkipped);
  sched_.CloseRead(retry);
  EXPECT_EQ(sched_.Get(dead.id)->job.runs, 2) << "no second new run";
  EXPECT_EQ(sched_.open_mutations(), 0u);
}

TEST_F(SchedulerBulkTest, ReplayStoredChecksTheFilterOnTheRecordItDecidesOn) {
  JobRecord dead = DeadStored("q", "k");
  JobFilter f;
  f.kind = "other";
  auto t = sched_.OpenRead();
  EXPECT_EQ(sched_.BulkReplayStored(t, dead.id, JobRecord(dead), Narrow(BulkAction::kReplay, f)),
            Scheduler::BulkVerdict::kSkipped);
  JobFilter only_cancelled;
  only_cancelled.states = {JobState::kCancelled};
  EXPECT_EQ(sched_.BulkReplayStored(t, dead.id, JobRecord(dead),
                                    Narrow(BulkAction::kReplay, only_cancelled)),
            Scheduler::BulkVerdict::kSkipped);
  EXPECT_EQ(sched_.BulkReplayStored(t, dead.id, std::nullopt, Narrow(BulkAction::kReplay, {})),
            Scheduler::BulkVerdict::kSkipped)
      << "a row that is gone";
  sched_.CloseRead(t);
  EXPECT_FALSE(sched_.IsLive(dead.id));
}

TEST_F(SchedulerBulkTest, AJobEndingInCoreIsReadAgainOnceItsEndIsDurable) {
  const JobId id = Enqueue("q", "k");
  Commit();
  auto t = sched_.OpenRead();
  ASSERT_TRUE(sched_.Cancel(id).ok());  // cancelled in memory; its batch is not durable
  JobRecord stale;
  stale.id = id;
  stale.queue = "q";
  stale.kind = "k";
  stale.ns = "default";
  stale.state = JobState::kCancelled;
  EXPECT_EQ(sched_.BulkReplayStored(t, id, JobRecord(stale), Narrow(BulkAction::kReplay, {})),
            Scheduler::BulkVerdict::kReadAgain);
  EXPECT_EQ(sched_.BulkDeleteStored(t, id, stale, Narrow(BulkAction::kDelete, {})),
            Scheduler::BulkVerdict::kReadAgain);
  sched_.CloseRead(t);
}

TEST_F(SchedulerBulkTest, DeleteStoredDeletesAFinishedRowAndNeverALiveJob) {
  const JobRecord dead = DeadStored("q");
  const JobId live = Enqueue("q", "k");
  Commit();
  JobRecord live_row = dead;  // what a stale listing could hold for a job that is live now
  live_row.id = live;
  const JobFilter del = Narrow(BulkAction::kDelete, {});
  auto t = sched_.OpenRead();
  EXPECT_EQ(sched_.BulkDeleteStored(t, live, live_row, del), Scheduler::BulkVerdict::kSkipped);
  EXPECT_EQ(sched_.open_mutations(), 0u) << "a live job is never deleted";
  EXPECT_EQ(sched_.BulkDeleteStored(t, dead.id, dead, del), Scheduler::BulkVerdict::kApplied);
  sched_.CloseRead(t);
  Batch b = Commit();
  const auto deletes = MutationsOf<DeleteJob>(b);
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].id, dead.id);
  EXPECT_EQ(StateOf(live), JobState::kReady);
  // A retry: the row is gone now.
  auto retry = sched_.OpenRead();
  EXPECT_EQ(sched_.BulkDeleteStored(retry, dead.id, std::nullopt, del),
            Scheduler::BulkVerdict::kSkipped);
  sched_.CloseRead(retry);
}

// A replay (or a cancel) whose read of a row raced a bulk delete of it would revive a job with no
// row: its UpdateJob is a no-op on a missing row, and core would hold a job the store does not.
TEST_F(SchedulerBulkTest, AReplayReadThatCrossedADeleteIsReadAgainAndOtherReadsAreNot) {
  const JobRecord doomed = DeadStored("q");
  const JobRecord other = DeadStored("q");
  auto replay_read = sched_.OpenRead();  // a single :replay of `doomed`, reading its row
  auto del = sched_.OpenRead();
  ASSERT_EQ(sched_.BulkDeleteStored(del, doomed.id, doomed, Narrow(BulkAction::kDelete, {})),
            Scheduler::BulkVerdict::kApplied);
  sched_.CloseRead(del);
  EXPECT_FALSE(sched_.ReplayStored(replay_read, doomed.id, JobRecord(doomed), false).has_value())
      << "the row it read is being deleted";
  // A read of another job is not disturbed (a delete is not a purge).
  auto r = sched_.ReplayStored(replay_read, other.id, JobRecord(other), false);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok());
  sched_.CloseRead(replay_read);
  // A read that began after the decision but before the delete is durable: still stale.
  auto between = sched_.OpenRead();
  EXPECT_FALSE(sched_.CancelStored(between, doomed.id, JobRecord(doomed)).has_value());
  sched_.CloseRead(between);
  Commit();
  auto after = sched_.OpenRead();
  auto gone = sched_.ReplayStored(after, doomed.id, std::nullopt, false);
  sched_.CloseRead(after);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->status().code(), Code::kNotFound);
  EXPECT_EQ(sched_.read_guard().remembered_deletes(), 0u);
}

}  // namespace
}  // namespace ym
