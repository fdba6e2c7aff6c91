// Randomized test of the job contract across restarts, against the real SQLite store.
//
// The Scheduler is driven the way the Broker drives it: mutations go to the store by group
// commit, and a 2xx answer counts only once the batch it waited for is committed; replay, and
// the cancel of a job core no longer holds, read the store under a ReadGuard ticket and are
// decided back on "core" later, after other operations ran (as a slow reader thread would).
// Restarts are crashes (the open batch is lost) or graceful (everything committed first); each
// reopens the store and rebuilds a fresh Scheduler from it, as Broker::Start does.
//
// Invariants, checked as the run goes (the store after every commit, core after every step):
//   1. No acked job runs again: core never leases a job whose ack it accepted, and no core ever
//      leases one whose ack was acknowledged.
//   2. Terminal states never change except by an accepted replay: a stored terminal row keeps
//      its state and run number until retention removes it (then it never comes back), or a
//      replay core accepted starts the next run.
//   3. Every acknowledged write survives: an acknowledged enqueue, ack, cancel or replay is in
//      the store when acknowledged and after any restart; core rebuilt from the store holds
//      exactly the stored live jobs.
//   4. A cancel is never lost: a job whose cancel core accepted is not dispatched again in that
//      run, and never ends dead in it.
//
// The seed is printed; YM_DURABLE_SEED=<n> replays one, YM_DURABLE_STEPS=<n> sets the length.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/job.h"
#include "core/scheduler.h"
#include "server/scheduler_loader.h"
#include "store/store.h"
#include "temp_dir.h"

namespace ym {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kStart = 1'700'000'000'000;

// What the test knows about one job.
struct Known {
  std::string payload;
  bool acked_durable = false;    // an ack was acknowledged
  bool ack_accepted = false;     // some core accepted an ack (it may have been lost in a crash)
  int replays_accepted = 0;      // replays some core accepted
  int replays_at_row = 0;        // replays_accepted when the row below was seen
  std::optional<JobRecord> row;  // the stored row as last seen (without payload)
  bool vanished = false;         // its row was seen and then removed
  // A cancel of run `cancel_run` was accepted by this core / acknowledged (0: none).
  std::int32_t cancel_run_in_core = 0;
  std::int32_t cancel_run_acked = 0;
};

// A 2xx answer waiting for its batch.
struct Pending {
  enum Kind { kEnqueue, kAck, kCancelled, kCancelRequested, kReplay };
  std::uint64_t seq;
  Kind kind;
  JobId id;
  std::int32_t runs;
};

struct Held {
  JobId id;
  std::uint64_t token;
};

struct InflightRead {
  bool replay;  // else cancel
  bool dead_only;
  Scheduler::ReadTicket ticket;
  JobId id;
  std::optional<JobRecord> record;
  int reads;
};

class DurableRun {
 public:
  explicit DurableRun(std::uint64_t seed)
      : seed_(seed), clock_(kStart), sched_rng_(seed * 0x9e3779b97f4a7c15ULL + 7), op_rng_(seed) {
    Open();
    // q1 keeps finished jobs briefly, so retention purges race the replays; q0 keeps defaults
    // (succeeded rows deleted with their ack, dead and cancelled kept a week).
    QueueConfigPatch p;
    p.name = "q1";
    p.retention = Retention{1500, 2500, 2500};
    EXPECT_TRUE(sched_->PutQueue(p).ok());
    Commit();
  }

  void Run(int steps) {
    for (step_ = 0; step_ < steps && !::testing::Test::HasFailure(); ++step_) {
      Step();
      CheckCore();
    }
    if (!::testing::Test::HasFailure()) Restart(/*crash=*/false);
    if (::testing::Test::HasFailure()) PrintHistory();
  }

  std::size_t jobs() const { return known_.size(); }
  int restarts() const { return restarts_; }
  int stale_reads() const { return stale_reads_; }
  int replays() const { return replays_; }

 private:
  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.retention_sweep_interval_ms = 1000;
    return o;
  }

  std::uint64_t Pick(std::uint64_t n) { return op_rng_.Uniform(n); }
  bool Chance(int percent) { return Pick(100) < static_cast<std::uint64_t>(percent); }

  void Log(std::string s) {
    history_.push_back("step " + std::to_string(step_) + " t+" +
                       std::to_string(clock_.NowMs() - kStart) + " " + std::move(s));
    if (history_.size() > 60) history_.pop_front();
  }
  void PrintHistory() {
    std::string all;
    for (const auto& h : history_) all += "  " + h + "\n";
    ADD_FAILURE() << "seed " << seed_ << " failed; last operations:\n" << all;
  }

  // --- Server life cycle ---------------------------------------------------------------------

  void Open() {
    SqliteOptions o;
    o.path = dir_.File("ym.db");
    // Relaxed: the process never loses power here; what is tested is that what a commit made
    // durable is what recovery rebuilds, which does not depend on fsync.
    o.durability = Durability::kRelaxed;
    auto s = OpenSqliteStore(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    sched_ = std::make_unique<Scheduler>(clock_, sched_rng_, Options());
    SchedulerLoader loader(*sched_);
    ASSERT_TRUE(store_->Recover(clock_.NowMs(), loader).ok());
  }

  void Restart(bool crash) {
    if (!crash) Commit();
    Log(std::string(crash ? "crash" : "graceful restart") + " (open mutations " +
        std::to_string(sched_->open_mutations()) + ")");
    ++restarts_;
    // Answers still waiting for a batch were never sent; reads in flight are never answered.
    pending_.clear();
    reads_.clear();
    for (auto& [id, k] : known_) k.cancel_run_in_core = 0;
    acked_in_core_.clear();
    sched_.reset();
    store_.reset();
    Open();
    if (::testing::Test::HasFailure()) return;
    CheckStore();
    // Core rebuilt from the store holds exactly the stored live jobs. A recorded lease is kept
    // (same token, cancel request and all) until it expires; a job active without one cannot
    // be running, and comes back ready, or cancelled if its cancel was requested.
    for (const auto& [id, k] : known_) {
      const bool stored_live = k.row && !IsTerminal(k.row->state);
      auto v = sched_->Get(id);
      if (stored_live) {
        ASSERT_TRUE(v.has_value()) << "stored live job " << id << " not recovered";
        if (k.row->state == JobState::kActive && k.row->lease_token != 0) {
          EXPECT_EQ(v->job.state, JobState::kActive) << "job " << id;
          ASSERT_TRUE(v->lease.has_value()) << "job " << id;
          EXPECT_EQ(v->lease->token, k.row->lease_token) << "job " << id;
          EXPECT_EQ(v->job.cancel_requested, k.row->cancel_requested) << "job " << id;
        } else {
          EXPECT_NE(v->job.state, JobState::kActive) << "job " << id;
          if (k.row->cancel_requested) {
            EXPECT_EQ(v->job.state, JobState::kCancelled) << "job " << id;
          }
        }
      } else {
        EXPECT_FALSE(v.has_value()) << "job " << id << " recovered but not stored live";
      }
    }
  }

  // Seals and commits the open batch, then acknowledges what waited for it.
  void Commit() {
    if (!sched_->HasOpenMutations()) return;
    Batch b = sched_->SealBatch();
    Status s = store_->Commit(b);
    ASSERT_TRUE(s.ok()) << s.ToString();
    sched_->OnPurged(store_->TakePurgeOutcomes());
    sched_->OnCommitted(b.seq);
    Log("commit " + std::to_string(b.seq) + " (" + std::to_string(b.mutations.size()) +
        " mutations)");
    CheckStore();
    std::vector<Pending> now;
    std::vector<Pending> later;
    for (auto& p : pending_) (p.seq <= sched_->durable_seq() ? now : later).push_back(p);
    pending_ = std::move(later);
    for (const Pending& p : now) Acknowledged(p);
  }

  // Records an answer that goes out once everything it observed is durable.
  void Answer(Pending::Kind kind, JobId id, std::int32_t runs) {
    pending_.push_back(Pending{sched_->VisibleSeq(), kind, id, runs});
    if (pending_.back().seq <= sched_->durable_seq()) {
      Pending p = pending_.back();
      pending_.pop_back();
      Acknowledged(p);
    }
  }

  // Invariant 3 at the moment an answer is sent: what it reports is in the store.
  void Acknowledged(const Pending& p) {
    Known& k = known_[p.id];
    const auto& row = k.row;
    switch (p.kind) {
      case Pending::kEnqueue:
        // Stored, or already finished and removed (acked with no retention, or purged in the
        // same batch that finished it): core no longer holds a live job then.
        EXPECT_TRUE(row.has_value() || !LiveInCore(p.id))
            << "acknowledged enqueue of job " << p.id << " is not stored";
        break;
      case Pending::kAck:
        k.acked_durable = true;
        EXPECT_TRUE(!row || row->state == JobState::kSucceeded)
            << "acknowledged ack of job " << p.id << " is stored as " << StateName(row->state);
        break;
      case Pending::kCancelled:
        k.cancel_run_acked = p.runs;
        EXPECT_TRUE(!row || row->state == JobState::kCancelled || row->runs > p.runs)
            << "acknowledged cancel of job " << p.id << " is stored as " << StateName(row->state);
        break;
      case Pending::kCancelRequested:
        k.cancel_run_acked = p.runs;
        EXPECT_TRUE(!row || row->cancel_requested || row->state == JobState::kCancelled ||
                    row->state == JobState::kSucceeded || row->runs > p.runs)
            << "acknowledged cancel request of job " << p.id << " is not stored";
        break;
      case Pending::kReplay:
        ASSERT_TRUE(row.has_value())
            << "acknowledged replay of job " << p.id << " is not stored (run " << p.runs << ")";
        EXPECT_GE(row->runs, p.runs) << "acknowledged replay of job " << p.id;
        break;
    }
  }

  // --- Checks --------------------------------------------------------------------------------

  // Invariants 2 and 4 on the store, and the rows the other checks use.
  void CheckStore() {
    StoreListQuery q;
    q.limit = 1'000'000;
    auto rows = store_->ListJobs(q);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    std::set<JobId> seen;
    for (JobRecord& r : *rows) {
      seen.insert(r.id);
      Known& k = known_[r.id];
      EXPECT_FALSE(k.vanished) << "job " << r.id << " came back after its row was removed";
      if (k.row && IsTerminal(k.row->state)) {
        const JobRecord& was = *k.row;
        if (r.runs == was.runs) {
          EXPECT_EQ(r.state, was.state)
              << "terminal job " << r.id << " changed from " << StateName(was.state) << " to "
              << StateName(r.state) << " without a replay";
          EXPECT_EQ(r.finished_at_ms, was.finished_at_ms) << "job " << r.id;
        } else {
          EXPECT_GT(r.runs, was.runs) << "job " << r.id << " lost a run";
          EXPECT_GT(k.replays_accepted, k.replays_at_row)
              << "terminal job " << r.id << " started run " << r.runs << " with no replay";
        }
      }
      if (r.state == JobState::kDead &&
          (r.runs == k.cancel_run_acked || r.runs == k.cancel_run_in_core)) {
        ADD_FAILURE() << "job " << r.id << " ended dead after its cancel was accepted";
      }
      r.payload.clear();
      k.row = std::move(r);
      k.replays_at_row = k.replays_accepted;
    }
    for (auto& [id, k] : known_) {
      if (seen.count(id) || !k.row) continue;
      // Removed by retention or with its ack; it may have finished and been purged in the same
      // batch, so the last row seen may be live. What must not be: core still runs it.
      EXPECT_FALSE(LiveInCore(id)) << "live job " << id << " vanished from the store";
      k.row.reset();
      k.vanished = true;
    }
  }

  // Core holds the job and it is not finished.
  bool LiveInCore(JobId id) const {
    auto v = sched_->Get(id);
    return v.has_value() && !IsTerminal(v->job.state);
  }

  void CheckCore() {
    for (const auto& [id, k] : known_) {
      if (k.vanished || k.acked_durable) {
        EXPECT_FALSE(LiveInCore(id))
            << "job " << id << (k.vanished ? " was removed" : " was acked") << " but is live";
      }
    }
  }

  // Invariants 1 and 4 for a job the scheduler just leased.
  void OnLeased(const LeasedJob& l) {
    Known& k = known_[l.id];
    EXPECT_FALSE(acked_in_core_.count(l.id)) << "job " << l.id << " leased after its ack";
    EXPECT_FALSE(k.acked_durable) << "job " << l.id << " leased after an acknowledged ack";
    EXPECT_FALSE(k.vanished) << "job " << l.id << " leased after its row was removed";
    const std::int32_t run = sched_->Get(l.id)->job.runs;
    EXPECT_NE(run, k.cancel_run_in_core) << "job " << l.id << " leased after its cancel";
    EXPECT_NE(run, k.cancel_run_acked) << "job " << l.id << " leased after an acknowledged cancel";
    EXPECT_EQ(l.payload, k.payload) << "job " << l.id;
    held_.push_back(Held{l.id, l.lease.token});
  }

  // --- Operations ----------------------------------------------------------------------------

  void Step() {
    const std::uint64_t r = Pick(100);
    if (r < 15) {
      DoEnqueue();
    } else if (r < 27) {
      DoLease();
    } else if (r < 37) {
      DoAck();
    } else if (r < 45) {
      DoFail();
    } else if (r < 48) {
      DoHeartbeat();
    } else if (r < 56) {
      DoCancel();
    } else if (r < 65) {
      DoReplay();
    } else if (r < 72) {
      DoFinishRead();
    } else if (r < 76) {
      DoRelease();
    } else if (r < 86) {
      DoAdvance();
    } else if (r < 98) {
      Commit();
    } else {
      Restart(/*crash=*/Chance(50));
    }
  }

  JobId RandomKnown() {
    if (known_.empty()) return 0;
    auto it = known_.begin();
    std::advance(it, static_cast<long>(Pick(known_.size())));
    return it->first;
  }

  void DoEnqueue() {
    EnqueueSpec s;
    s.queue = Chance(50) ? "q0" : "q1";
    s.kind = "k";
    s.payload = "{\"n\":" + std::to_string(Pick(1'000'000)) + "}";
    s.max_attempts = static_cast<std::int32_t>(1 + Pick(3));
    s.lease_ms = 200 + static_cast<std::int64_t>(Pick(1500));
    if (Chance(20)) s.delay_ms = static_cast<std::int64_t>(Pick(2000));
    s.backoff = Backoff{10, 500, 2.0};
    auto out = sched_->Enqueue(s);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    Log("enqueue " + s.queue + " -> " + std::to_string(out->id));
    known_[out->id].payload = s.payload;
    Answer(Pending::kEnqueue, out->id, 1);
  }

  void DoLease() {
    LeaseRequest req;
    req.queues = {"q0", "q1"};
    req.max = static_cast<std::uint32_t>(1 + Pick(3));
    if (Chance(30)) req.lease_ms = 200 + static_cast<std::int64_t>(Pick(1500));
    auto got = sched_->Lease(req);
    for (const LeasedJob& l : got) {
      Log("leased " + std::to_string(l.id) + " attempt " + std::to_string(l.attempt));
      OnLeased(l);
    }
  }

  // A lease some worker holds (possibly stale by now), removed from the list.
  std::optional<Held> TakeHeld() {
    if (held_.empty()) return std::nullopt;
    const std::size_t i = Pick(held_.size());
    Held h = held_[i];
    held_.erase(held_.begin() + static_cast<long>(i));
    return h;
  }

  void DoAck() {
    auto h = TakeHeld();
    if (!h) return;
    auto r = sched_->Ack(h->id, h->token, "");
    Log("ack " + std::to_string(h->id) + " -> " + (r.ok() ? "ok" : r.status().ToString()));
    if (!r.ok()) return;
    acked_in_core_.insert(h->id);
    known_[h->id].ack_accepted = true;
    Answer(Pending::kAck, h->id, 0);
  }

  void DoFail() {
    auto h = TakeHeld();
    if (!h) return;
    FailSpec f;
    f.retryable = Chance(70);
    if (Chance(50)) f.retry_in_ms = Chance(50) ? 0 : static_cast<std::int64_t>(Pick(1000));
    auto r = sched_->Fail(h->id, h->token, f);
    Log("fail " + std::to_string(h->id) + (f.retryable ? " retryable" : " fatal") + " -> " +
        (r.ok() ? std::string(StateName(*r)) : r.status().ToString()));
    if (r.ok() && *r == JobState::kReady) {
      // A retry due at once may have gone straight to a waiting worker; none wait here.
    }
  }

  void DoHeartbeat() {
    if (held_.empty()) return;
    const Held& h = held_[Pick(held_.size())];
    auto r = sched_->Heartbeat(h.id, h.token, Chance(50) ? 0 : 200 + Pick(1500));
    Log("heartbeat " + std::to_string(h.id) + " -> " + (r.ok() ? "ok" : r.status().ToString()));
  }

  void DoRelease() {
    auto h = TakeHeld();
    if (!h) return;
    Log("release " + std::to_string(h->id));
    sched_->Release(h->id, h->token);
  }

  void DoAdvance() {
    const auto ms = static_cast<std::int64_t>(Pick(1200));
    clock_.Advance(ms);
    sched_->Tick();
    Log("advance " + std::to_string(ms));
  }

  void OnCancelAnswer(JobId id, const JobView& v) {
    if (v.job.state == JobState::kCancelled) {
      known_[id].cancel_run_in_core = v.job.runs;
      Answer(Pending::kCancelled, id, v.job.runs);
    } else {
      EXPECT_EQ(v.job.state, JobState::kActive) << "job " << id;
      EXPECT_TRUE(v.job.cancel_requested) << "job " << id;
      known_[id].cancel_run_in_core = v.job.runs;
      Answer(Pending::kCancelRequested, id, v.job.runs);
    }
  }

  void OnReplayAnswer(JobId id, const JobView& v) {
    Known& k = known_[id];
    ++k.replays_accepted;
    ++replays_;
    EXPECT_EQ(v.job.payload, k.payload) << "replay of job " << id << " lost its payload";
    EXPECT_EQ(v.job.attempts, 0);
    Answer(Pending::kReplay, id, v.job.runs);
  }

  void StartRead(bool replay, bool dead_only, JobId id, int reads) {
    InflightRead rd{replay, dead_only, sched_->OpenRead(), id, std::nullopt, reads};
    auto stored = store_->GetJob(id);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    rd.record = std::move(*stored);
    reads_.push_back(std::move(rd));
  }

  void DoCancel() {
    // Often a job a worker holds: a cancel request that then meets a release, an expiry, a
    // fail or an ack.
    JobId id = !held_.empty() && Chance(40) ? held_[Pick(held_.size())].id
               : Chance(30)                 ? RandomFinished()
                                            : RandomKnown();
    if (id == 0) return;
    if (Chance(5)) id += 1000;  // never issued
    auto r = sched_->Cancel(id);
    Log("cancel " + std::to_string(id) + " -> " +
        (r.ok() ? std::string(StateName(r->job.state)) : r.status().ToString()));
    if (r.ok()) return OnCancelAnswer(id, *r);
    if (r.status().code() == Code::kNotFound && sched_->Issued(id)) {
      StartRead(/*replay=*/false, false, id, 1);
    }
  }

  // Usually a job last seen stored dead or cancelled (what replays are for), else any.
  JobId RandomFinished() {
    std::vector<JobId> c;
    for (const auto& [id, k] : known_) {
      if (k.row && (k.row->state == JobState::kDead || k.row->state == JobState::kCancelled)) {
        c.push_back(id);
      }
    }
    if (c.empty() || Chance(25)) return RandomKnown();
    return c[Pick(c.size())];
  }

  void DoReplay() {
    JobId id = RandomFinished();
    if (id == 0) return;
    if (Chance(5)) id += 1000;
    const bool dead_only = Chance(30);  // as a bulk replay does
    auto now = sched_->ReplayInCore(id, dead_only);
    if (!now) {
      Log("replay " + std::to_string(id) + " -> read");
      return StartRead(/*replay=*/true, dead_only, id, 1);
    }
    Log("replay " + std::to_string(id) + " in core -> " +
        (now->ok() ? "ok" : now->status().ToString()));
    if (now->ok()) OnReplayAnswer(id, **now);
  }

  void DoFinishRead() {
    if (reads_.empty()) return;
    const std::size_t i = Pick(reads_.size());
    InflightRead rd = std::move(reads_[i]);
    reads_.erase(reads_.begin() + static_cast<long>(i));
    std::optional<Result<JobView>> d =
        rd.replay ? sched_->ReplayStored(rd.ticket, rd.id, std::move(rd.record), rd.dead_only)
                  : sched_->CancelStored(rd.ticket, rd.id, std::move(rd.record));
    sched_->CloseRead(rd.ticket);
    Log(std::string(rd.replay ? "replay " : "cancel ") + std::to_string(rd.id) + " decided -> " +
        (!d        ? "stale"
         : d->ok() ? "ok"
                   : d->status().ToString()));
    if (!d) {
      ++stale_reads_;
      if (rd.reads >= 5) return;  // the broker answers 503 here
      // The broker reads again once the purges the read may have missed are durable.
      if (sched_->durable_seq() < sched_->read_again_after()) Commit();
      return StartRead(rd.replay, rd.dead_only, rd.id, rd.reads + 1);
    }
    if (!d->ok()) {
      const Code c = d->status().code();
      EXPECT_TRUE(c == Code::kNotFound || c == Code::kInvalidState) << d->status().ToString();
      return;
    }
    if (rd.replay) {
      OnReplayAnswer(rd.id, **d);
    } else {
      OnCancelAnswer(rd.id, **d);
    }
  }

  const std::uint64_t seed_;
  // tmpfs when there is one: the store's fsyncs at close and checkpoint (dozens of restarts
  // per seed) would otherwise dominate the run time, and power loss is not what this tests.
  TempDir dir_{"ym_durable_model", /*in_memory=*/true};
  ManualClock clock_;
  Rng sched_rng_;
  Rng op_rng_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> sched_;
  int step_ = 0;
  int restarts_ = 0;
  int stale_reads_ = 0;
  int replays_ = 0;

  std::map<JobId, Known> known_;
  std::set<JobId> acked_in_core_;
  std::vector<Pending> pending_;
  std::vector<Held> held_;
  std::vector<InflightRead> reads_;
  std::deque<std::string> history_;
};

std::vector<std::uint64_t> Seeds() {
  if (const char* s = std::getenv("YM_DURABLE_SEED")) return {std::strtoull(s, nullptr, 10)};
  return {1, 2, 3};
}

int Steps() {
  if (const char* s = std::getenv("YM_DURABLE_STEPS")) return std::atoi(s);
  return 2500;
}

TEST(DurableModelTest, ContractHoldsAcrossReplaysCancelsPurgesAndRestarts) {
  for (std::uint64_t seed : Seeds()) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (rerun with YM_DURABLE_SEED=" + std::to_string(seed) + ")");
    DurableRun run(seed);
    run.Run(Steps());
    std::printf("[ seed %llu ] %zu jobs, %d restarts, %d replays, %d stale reads read again\n",
                static_cast<unsigned long long>(seed), run.jobs(), run.restarts(), run.replays(),
                run.stale_reads());
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace ym
