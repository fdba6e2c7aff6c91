// Power-loss durability tests: the real SqliteStore over PowerLossVfs (power_loss_vfs.h), which
// can cut the power at any write, truncate, sync or delete and then drop or tear, sector by
// sector, everything that was not synced. A process crash (kill -9) keeps the page cache, so
// only this tells full durability from none.
//
// Each iteration drives a randomized workload of batches (inserts, updates, deletes, queue
// configs, idempotency keys, expiries, purges, next-id bumps, plus checkpoints from a second
// connection) through a fresh store, with MemoryStore as the model of what was acknowledged.
// The power is cut at a random operation of a random commit (or between commits); the files are
// rewritten as a disk could have left them; the store is reopened and must hold exactly the
// state after the last acknowledged commit, or after the one commit that was in flight at the
// cut (batches are atomic: nothing else, nothing half-applied), pass PRAGMA integrity_check, and
// recover. Several cuts per iteration, each continuing from the recovered state.
//
// The same checker must fail with Durability::kRelaxed (synchronous=NORMAL): that test expects
// it to report lost acknowledged commits, which proves the checker can fail.
//
// YM_POWERLOSS_SEED=<n> replays a run; YM_POWERLOSS_ITERATIONS=<n> sets how many iterations
// (CI: the defaults below, a few seconds). docs/testing.md records a longer run.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "power_loss_vfs.h"
#include "server/broker.h"
#include "store/memory_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace ym {
namespace {

namespace fs = std::filesystem;
using ym::testing::PowerLossVfs;

std::uint64_t SeedFromEnv() {
  if (const char* s = std::getenv("YM_POWERLOSS_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
         static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

int IterationsFromEnv(int fallback) {
  if (const char* s = std::getenv("YM_POWERLOSS_ITERATIONS"); s != nullptr && *s != '\0') {
    return std::max(1, std::atoi(s));
  }
  return fallback;
}

// Everything a store holds, in a canonical order, so two stores can be compared.
struct Snapshot {
  JobId next_id = 0;
  std::vector<QueueConfig> queues;
  std::vector<std::tuple<std::string, std::string, JobId, std::int64_t>> keys;
  std::vector<JobRecord> jobs;

  bool operator==(const Snapshot&) const = default;
};

struct Collect : RecoveryVisitor {
  Snapshot* s;
  explicit Collect(Snapshot* snap) : s(snap) {}
  void OnNextId(JobId id) override { s->next_id = id; }
  void OnQueue(const QueueConfig& c) override { s->queues.push_back(c); }
  void OnIdempotencyKey(const IdempotencyKeyRecord& k) override {
    s->keys.emplace_back(k.ns, k.key, k.job_id, k.expires_at_ms);
  }
  void OnLiveJob(JobRecord&&) override {}  // every job comes from ListJobs below
};

Result<Snapshot> Dump(Store& store) {
  Snapshot s;
  Collect c(&s);
  // Keys are written with expiries >= 1, so now = 0 returns every stored one.
  Status st = store.Recover(0, c);
  if (!st.ok()) return st;
  StoreListQuery all;
  all.limit = 1u << 30;
  auto jobs = store.ListJobs(all);
  if (!jobs.ok()) return jobs.status();
  s.jobs = std::move(*jobs);
  std::sort(s.queues.begin(), s.queues.end(),
            [](const QueueConfig& a, const QueueConfig& b) { return a.name < b.name; });
  std::sort(s.keys.begin(), s.keys.end());
  return s;
}

std::string Describe(const Snapshot& s) {
  std::ostringstream o;
  o << "next_id=" << s.next_id << " queues=" << s.queues.size() << " keys=" << s.keys.size()
    << " jobs=" << s.jobs.size();
  if (!s.jobs.empty()) o << " (ids " << s.jobs.front().id << ".." << s.jobs.back().id << ")";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// Workload: random batches that are valid against the acknowledged state.

class Workload {
 public:
  explicit Workload(std::mt19937_64* rng) : rng_(*rng) {}

  Batch Next(const Snapshot& state, std::uint64_t seq) {
    Batch b;
    b.seq = seq;
    JobId next = state.next_id;
    for (const auto& j : state.jobs) next = std::max(next, j.id + 1);
    std::vector<JobRecord> known = state.jobs;
    int n = Uniform(1, 8);
    for (int i = 0; i < n; ++i) {
      int kind = Uniform(0, 99);
      if (kind < 40 || known.empty()) {
        JobRecord j = NewJob(next++);
        known.push_back(j);
        b.mutations.push_back(InsertJob{std::move(j)});
      } else if (kind < 50) {
        JobRecord j = known[Index(known.size())];
        Mutate(&j);
        b.mutations.push_back(UpdateJob{std::move(j)});
      } else if (kind < 60) {
        // A lease request: leases of consecutive ids (the store writes runs of them as
        // multi-row statements into its leases table), now and then a hand-back.
        const JobId first = known[Index(known.size())].id;
        const int run = Uniform(0, 3) == 0 ? Uniform(16, 40) : Uniform(1, 5);
        for (int r = 0; r < run; ++r) {
          UpdateLease l;
          l.id = first + static_cast<JobId>(r);
          l.attempts = Uniform(1, 5);
          l.updated_at_ms = Uniform(0, 2000);
          if (Uniform(0, 9) == 0) {
            l.state = JobState::kReady;
          } else {
            l.state = JobState::kActive;
            l.token = rng_() | 1;
            l.expires_at_ms = l.updated_at_ms + Uniform(1000, 60000);
            l.worker_id = "w" + std::to_string(Uniform(0, 3));
          }
          b.mutations.push_back(std::move(l));
        }
      } else if (kind < 70) {
        // Acks: one job, or a run of consecutive ids (one range delete per table).
        const JobId first = known[Index(known.size())].id;
        const int run = Uniform(0, 2) == 0 ? Uniform(2, 30) : 1;
        for (int r = 0; r < run; ++r) {
          b.mutations.push_back(DeleteJob{first + static_cast<JobId>(r)});
        }
      } else if (kind < 80) {
        b.mutations.push_back(PutQueue{RandomQueue()});
      } else if (kind < 90) {
        PutIdempotencyKey k;
        k.ns = "ns" + std::to_string(Uniform(0, 2));
        k.key = "key-" + std::to_string(Uniform(0, 30));
        k.job_id = known[Index(known.size())].id;
        k.expires_at_ms = Uniform(1, 1000);
        b.mutations.push_back(std::move(k));
      } else if (kind < 95) {
        b.mutations.push_back(ExpireIdempotencyKeys{Uniform(0, 300)});
      } else {
        PurgeFinished p;
        static const char* kQueues[] = {"", "a", "b", "c"};
        p.queue = kQueues[Uniform(0, 3)];
        p.state = static_cast<JobState>(Uniform(3, 5));
        p.before_ms = Uniform(0, 2000);
        b.mutations.push_back(std::move(p));
      }
    }
    if (Uniform(0, 9) == 0) b.next_id = next + static_cast<JobId>(Uniform(0, 50));
    return b;
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::size_t Index(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }

  // Payloads from a few bytes to several pages, so rows spill into overflow pages and commits
  // span many WAL frames.
  std::string Payload() {
    int len = Uniform(0, 3) == 0 ? Uniform(2000, 12000) : Uniform(0, 200);
    std::string s = "{\"n\":" + std::to_string(Uniform(0, 1 << 30)) + ",\"s\":\"";
    for (int i = 0; i < len; ++i) s.push_back(static_cast<char>('a' + Uniform(0, 25)));
    return s + "\"}";
  }

  JobRecord NewJob(JobId id) {
    JobRecord j;
    j.id = id;
    j.ns = "ns" + std::to_string(Uniform(0, 2));
    static const char* kQueues[] = {"a", "b", "c"};
    j.queue = kQueues[Uniform(0, 2)];
    j.kind = "kind" + std::to_string(Uniform(0, 4));
    j.priority = Uniform(-5, 5);
    j.payload = Payload();
    j.created_at_ms = Uniform(0, 1000);
    j.run_at_ms = j.created_at_ms + Uniform(0, 1000);
    j.idempotency_key = Uniform(0, 3) == 0 ? "idem-" + std::to_string(id) : "";
    j.concurrency_key = Uniform(0, 3) == 0 ? "ck" + std::to_string(Uniform(0, 3)) : "";
    for (int t = Uniform(0, 2); t > 0; --t) j.tags.push_back("tag" + std::to_string(Uniform(0, 9)));
    Mutate(&j);
    return j;
  }

  // Rewrites the mutable fields, as a state change does.
  void Mutate(JobRecord* j) {
    j->state = static_cast<JobState>(Uniform(0, 5));
    j->updated_at_ms = Uniform(0, 2000);
    j->finished_at_ms = IsTerminal(j->state) ? Uniform(1, 2000) : 0;
    j->attempts = Uniform(0, 5);
    j->max_attempts = Uniform(1, 10);
    j->runs = Uniform(1, 3);
    j->backoff = {Uniform(1, 1000), Uniform(1000, 100000), Uniform(0, 1) == 0 ? 1.5 : 2.0};
    j->lease_ms = Uniform(1000, 60000);
    if (Uniform(0, 2) == 0) {
      j->errors.push_back({j->attempts, "boom", "attempt failed: " + std::to_string(Uniform(0, 99)),
                           static_cast<std::int64_t>(Uniform(0, 2000))});
    }
    j->dead_reason = j->state == JobState::kDead ? "max_attempts" : "";
    j->result =
        j->state == JobState::kSucceeded ? "{\"ok\":" + std::to_string(Uniform(0, 9)) + "}" : "";
    j->cancel_requested = Uniform(0, 4) == 0;
    // An active job usually carries its lease (the store keeps it in its leases table).
    j->lease_token = 0;
    j->lease_expires_at_ms = 0;
    j->worker_id.clear();
    if (j->state == JobState::kActive && Uniform(0, 3) != 0) {
      j->lease_token = rng_() | 1;
      j->lease_expires_at_ms = j->updated_at_ms + Uniform(1000, 60000);
      j->worker_id = "w" + std::to_string(Uniform(0, 3));
    }
  }

  QueueConfig RandomQueue() {
    QueueConfig c;
    static const char* kQueues[] = {"a", "b", "c", "d"};
    c.name = kQueues[Uniform(0, 3)];
    c.paused = Uniform(0, 1) == 1;
    c.max_attempts = Uniform(1, 20);
    c.lease_ms = Uniform(1000, 100000);
    c.backoff = {Uniform(1, 1000), Uniform(1000, 100000), 2.0};
    c.retention.succeeded_ms = Uniform(0, 1000);
    c.retention.dead_ms = Uniform(0, 1000);
    c.retention.cancelled_ms = Uniform(0, 1000);
    return c;
  }

  std::mt19937_64& rng_;
};

// ---------------------------------------------------------------------------------------------
// Raw SQLite through the VFS: a checkpoint from a second connection, and integrity_check.

void CheckpointFromSideConnection(const std::string& path, int mode) {
  static const char* kModes[] = {"PASSIVE", "FULL", "RESTART", "TRUNCATE"};
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, PowerLossVfs::kName) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    std::string sql = std::string("PRAGMA wal_checkpoint(") + kModes[mode % 4] + ")";
    // It may fail once the power is cut; that is the point.
    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_close_v2(db);
}

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, PowerLossVfs::kName) != SQLITE_OK) {
    out = std::string("open failed: ") + sqlite3_errmsg(db);
  } else {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr);
    while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += "; ";
      out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    if (out.empty()) out = std::string("integrity_check failed: ") + sqlite3_errmsg(db);
    sqlite3_finalize(s);
  }
  sqlite3_close_v2(db);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The checker.

struct RunConfig {
  Durability durability = Durability::kFull;
  int iterations = 10;
  int cuts_per_iteration = 3;
  std::vector<double> keep_probabilities = {0.0, 0.5, 1.0, -1.0};  // -1: uniform in [0,1]
};

struct RunResult {
  int cuts = 0;
  int acked_commits = 0;
  int inflight_applied = 0;  // cuts after which the commit in flight turned out applied
  std::int64_t sectors_dropped = 0;
  std::int64_t sectors_kept = 0;
  // Cuts after which the store did not hold the acknowledged state (or the state plus the one
  // commit in flight), with what it held instead.
  std::vector<std::string> violations;
  // Of those, how many were "only acknowledged commits lost at the end" (a prefix of history).
  int prefix_losses = 0;
};

// Index of the longest prefix of `history` whose state equals `got`, or -1.
int MatchingPrefix(const std::vector<Batch>& history, const Snapshot& got) {
  MemoryStore replay;
  int match = -1;
  auto s0 = Dump(replay);
  if (s0.ok() && *s0 == got) match = 0;
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (!replay.Commit(history[i]).ok()) break;
    auto s = Dump(replay);
    if (s.ok() && *s == got) match = static_cast<int>(i + 1);
  }
  return match;
}

RunResult RunPowerLoss(const RunConfig& cfg, std::uint64_t seed) {
  RunResult result;
  std::mt19937_64 rng(seed);
  PowerLossVfs& vfs = PowerLossVfs::Instance();
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  for (int it = 0; it < cfg.iterations; ++it) {
    TempDir dir;
    vfs.Reset();
    SqliteOptions options;
    options.path = dir.File("ym.db");
    options.durability = cfg.durability;
    options.reader_connections = 1;
    options.vfs = PowerLossVfs::kName;

    auto model = std::make_unique<MemoryStore>();
    std::vector<Batch> history;  // every acknowledged batch, in order
    std::optional<Batch> inflight;
    Workload workload(&rng);
    std::uint64_t seq = 0;

    for (int cut = 0; cut <= cfg.cuts_per_iteration; ++cut) {
      std::string where = "iteration " + std::to_string(it) + " cut " + std::to_string(cut);
      auto opened = OpenSqliteStore(options);
      if (!opened.ok()) {
        result.violations.push_back(where + ": reopen failed: " + opened.status().ToString());
        break;
      }
      std::unique_ptr<Store> store = std::move(*opened);
      auto got = Dump(*store);
      if (!got.ok()) {
        result.violations.push_back(where + ": recovery failed: " + got.status().ToString());
        break;
      }
      auto acked = Dump(*model);
      if (!acked.ok()) std::abort();
      bool ok = *got == *acked;
      if (!ok && inflight.has_value()) {
        // The commit in flight at the cut may have reached the disk whole (never in part).
        if (model->Commit(*inflight).ok()) {
          auto with = Dump(*model);
          if (with.ok() && *with == *got) {
            ok = true;
            history.push_back(*inflight);
            ++result.inflight_applied;
          } else {
            // Undo: rebuild the model from the acknowledged history.
            model = std::make_unique<MemoryStore>();
            for (const Batch& b : history) (void)model->Commit(b);
          }
        }
      }
      inflight.reset();
      if (!ok) {
        int prefix = MatchingPrefix(history, *got);
        std::string what = where + ": after " + std::to_string(history.size()) +
                           " acknowledged commits the store holds " + Describe(*got) +
                           ", acknowledged state is " + Describe(*acked);
        if (prefix >= 0) {
          ++result.prefix_losses;
          what += "; it equals the state after commit " + std::to_string(prefix) + " (" +
                  std::to_string(history.size() - static_cast<std::size_t>(prefix)) +
                  " acknowledged commits lost)";
        } else {
          what += "; it matches no prefix of the history (half-applied or corrupt)";
        }
        result.violations.push_back(what);
        break;
      }
      std::string integrity = IntegrityCheck(options.path);
      if (integrity != "ok") {
        result.violations.push_back(where + ": integrity_check: " + integrity);
        break;
      }
      if (cut == cfg.cuts_per_iteration) break;  // the last reopen only checks

      // Run until the cut: it falls at a random operation of a random commit, or between two.
      int steps = uniform(1, 40);
      int cut_step = uniform(0, steps - 1);
      for (int step = 0; step < steps; ++step) {
        if (step == cut_step) vfs.ArmCrashAfter(uniform(0, 14));
        if (uniform(0, 9) == 0) CheckpointFromSideConnection(options.path, uniform(0, 3));
        auto state = Dump(*model);
        if (!state.ok()) std::abort();
        Batch b = workload.Next(*state, ++seq);
        Status st = store->Commit(b);
        if (st.ok()) {
          if (!model->Commit(b).ok()) std::abort();  // the workload only builds valid batches
          history.push_back(std::move(b));
          ++result.acked_commits;
        } else {
          inflight = std::move(b);
          break;  // the process is as good as dead: nothing more is acknowledged
        }
      }
      if (!vfs.crashed()) vfs.ArmCrashAfter(0);
      store.reset();  // closing cannot write anything any more
      double keep = cfg.keep_probabilities[static_cast<std::size_t>(
          uniform(0, static_cast<int>(cfg.keep_probabilities.size()) - 1))];
      if (keep < 0) keep = std::uniform_real_distribution<double>(0, 1)(rng);
      auto loss = vfs.PowerLoss(rng, keep);
      result.sectors_dropped += loss.sectors_dropped;
      result.sectors_kept += loss.sectors_kept;
      ++result.cuts;
    }
  }
  vfs.Reset();
  return result;
}

std::string Summary(const RunResult& r) {
  std::ostringstream o;
  o << r.cuts << " power cuts, " << r.acked_commits << " acknowledged commits, "
    << r.inflight_applied << " in-flight commits found applied, " << r.sectors_dropped
    << " unsynced sectors dropped, " << r.sectors_kept << " kept, " << r.violations.size()
    << " violations (" << r.prefix_losses << " lost acknowledged commits)";
  return o.str();
}

TEST(PowerLossTest, EveryAcknowledgedCommitSurvivesRandomPowerCuts) {
  std::uint64_t seed = SeedFromEnv();
  RunConfig cfg;
  cfg.iterations = IterationsFromEnv(25);
  std::printf("power-loss seed: YM_POWERLOSS_SEED=%llu (iterations %d)\n",
              static_cast<unsigned long long>(seed), cfg.iterations);
  RunResult r = RunPowerLoss(cfg, seed);
  std::printf("power-loss full durability: %s\n", Summary(r).c_str());
  EXPECT_GT(r.cuts, 0);
  EXPECT_GT(r.sectors_dropped, 0) << "no cut ever dropped an unsynced write: the test is vacuous";
  for (const auto& v : r.violations) ADD_FAILURE() << v << " (YM_POWERLOSS_SEED=" << seed << ")";
}

// The proof that the checker can fail: with synchronous=NORMAL the WAL is not fsynced at each
// commit, so a power cut loses acknowledged commits, and the checker must say so. The store must
// still hold a consistent prefix of its history (relaxed promises no corruption).
TEST(PowerLossTest, RelaxedDurabilityLosesAcknowledgedCommitsAndTheCheckerSeesIt) {
  std::uint64_t seed = SeedFromEnv();
  RunConfig cfg;
  cfg.durability = Durability::kRelaxed;
  cfg.iterations = IterationsFromEnv(6);
  cfg.keep_probabilities = {0.0, 0.5};
  std::printf("power-loss seed: YM_POWERLOSS_SEED=%llu (iterations %d)\n",
              static_cast<unsigned long long>(seed), cfg.iterations);
  RunResult r = RunPowerLoss(cfg, seed);
  std::printf("power-loss relaxed durability: %s\n", Summary(r).c_str());
  EXPECT_GT(r.prefix_losses, 0) << "relaxed durability lost nothing: the checker cannot fail"
                                << " (YM_POWERLOSS_SEED=" << seed << ")";
  EXPECT_EQ(static_cast<std::size_t>(r.prefix_losses), r.violations.size())
      << "relaxed durability may lose the last commits, never corrupt or half-apply: "
      << (r.violations.empty() ? "" : r.violations.front()) << " (YM_POWERLOSS_SEED=" << seed
      << ")";
}

// synchronous is a per-connection setting that no other connection can read back; what it does
// can be observed: FULL fsyncs the WAL at every commit, NORMAL (kRelaxed) never between
// checkpoints.
TEST(PowerLossTest, FullDurabilitySyncsTheWalAtEveryCommitRelaxedDoesNot) {
  for (Durability d : {Durability::kFull, Durability::kRelaxed}) {
    TempDir dir;
    PowerLossVfs& vfs = PowerLossVfs::Instance();
    vfs.Reset();
    SqliteOptions options;
    options.path = dir.File("ym.db");
    options.durability = d;
    options.vfs = PowerLossVfs::kName;
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    StoreStats stats = (*store)->Stats();
    EXPECT_EQ(stats.journal_mode, "wal");
    EXPECT_EQ(stats.synchronous, d == Durability::kFull ? "full" : "normal");
    std::int64_t before = vfs.SyncCount("-wal");
    for (JobId id = 1; id <= 20; ++id) {
      JobRecord j;
      j.id = id;
      j.queue = "q";
      j.kind = "k";
      Batch b;
      b.mutations.push_back(InsertJob{j});
      ASSERT_TRUE((*store)->Commit(b).ok());
      std::int64_t syncs = vfs.SyncCount("-wal") - before;
      if (d == Durability::kFull) {
        EXPECT_GE(syncs, static_cast<std::int64_t>(id)) << "commit " << id << " was not fsynced";
      } else {
        EXPECT_EQ(syncs, 0) << "relaxed durability fsynced the WAL at commit " << id;
      }
    }
    store->reset();
    vfs.Reset();
  }
}

// ---------------------------------------------------------------------------------------------
// The same cut under a running Broker: every write it acknowledged (enqueue, ack, fail, cancel,
// queue config) must be in the store after the power comes back.

struct BrokerFacts {
  std::map<JobId, bool> enqueued;     // id -> an ack of it was acknowledged
  std::map<JobId, std::string> dead;  // id -> message of its acknowledged final fail
  std::vector<JobId> cancelled;       // acknowledged cancels that answered kCancelled
  std::map<std::string, std::int32_t> max_attempts;  // queue -> last acknowledged value
  // queue -> values of configurations answered with an error after that: a write whose commit
  // failed may still be on disk (its commit record was synced, a later step of the commit
  // failed), so the store may hold any of them instead. Never a value nobody sent.
  std::map<std::string, std::set<std::int32_t>> max_attempts_in_doubt;
  std::set<JobId> acks_in_doubt;  // acks answered with an error (they may be on disk)
};

template <typename T>
std::optional<T> AwaitFor(std::future<T>& f) {
  if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) return std::nullopt;
  return f.get();
}

// Runs random writes until one fails (the cut) or `ops` are done. Returns false if the broker
// stopped answering.
bool DriveBroker(Broker& broker, std::mt19937_64& rng, int ops, int cut_at, std::int64_t cut_ops,
                 BrokerFacts* facts, int* acked) {
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  static const char* kQueues[] = {"a", "b"};
  for (int op = 0; op < ops; ++op) {
    if (op == cut_at) PowerLossVfs::Instance().ArmCrashAfter(cut_ops);
    int kind = uniform(0, 9);
    std::string queue = kQueues[uniform(0, 1)];
    if (kind < 4) {
      std::vector<EnqueueSpec> specs(static_cast<std::size_t>(uniform(1, 4)));
      for (auto& s : specs) {
        s.queue = queue;
        s.kind = "k";
        s.payload = "{\"n\":" + std::to_string(uniform(0, 1 << 30)) + "}";
      }
      std::promise<std::vector<Result<EnqueueOutcome>>> p;
      auto f = p.get_future();
      broker.Enqueue(std::move(specs), [&](auto r) { p.set_value(std::move(r)); });
      auto r = AwaitFor(f);
      if (!r) return false;
      for (const auto& one : *r) {
        if (!one.ok()) return true;
        facts->enqueued.emplace(one->id, false);
        ++*acked;
      }
    } else if (kind < 8) {
      LeaseRequest req;
      req.queues = {queue};
      req.max = 1;
      req.worker_id = "w";
      std::promise<Result<std::vector<LeasedJob>>> lp;
      auto lf = lp.get_future();
      broker.Lease(req, [&](auto r) { lp.set_value(std::move(r)); });
      auto leased = AwaitFor(lf);
      if (!leased) return false;
      if (!leased->ok() || (*leased)->empty()) continue;
      const LeasedJob& j = (*leased)->front();
      std::vector<AckItem> acks;
      std::vector<FailItem> fails;
      std::string message = "final failure " + std::to_string(j.id);
      if (kind < 6) {
        acks.push_back(AckItem{j.id, j.lease.token, ""});
      } else {
        FailSpec e;
        e.type = "boom";
        e.message = message;
        e.retryable = false;
        fails.push_back(FailItem{j.id, j.lease.token, e});
      }
      std::promise<std::pair<std::vector<Status>, std::vector<Result<JobState>>>> p;
      auto f = p.get_future();
      broker.Complete(std::move(acks), std::move(fails), [&](auto a, auto b) {
        p.set_value({std::move(a), std::move(b)});
      });
      auto r = AwaitFor(f);
      if (!r) return false;
      if (!r->first.empty()) {
        if (!r->first[0].ok()) {
          // In doubt, like a configuration answered with an error: the ack may be on disk, and
          // then the row is gone (no retention of succeeded jobs).
          facts->acks_in_doubt.insert(j.id);
          return true;
        }
        facts->enqueued[j.id] = true;
      } else {
        if (!r->second[0].ok()) return true;
        if (*r->second[0] == JobState::kDead) facts->dead[j.id] = message;
      }
      ++*acked;
    } else if (kind == 8) {
      if (facts->enqueued.empty()) continue;
      auto it = facts->enqueued.begin();
      std::advance(it, uniform(0, static_cast<int>(facts->enqueued.size()) - 1));
      if (it->second || facts->dead.count(it->first) != 0) continue;
      std::promise<Result<JobView>> p;
      auto f = p.get_future();
      broker.Cancel(it->first, [&](auto r) { p.set_value(std::move(r)); });
      auto r = AwaitFor(f);
      if (!r) return false;
      if (!r->ok()) {
        if ((*r).status().code() == Code::kIoError || (*r).status().code() == Code::kUnavailable) {
          return true;
        }
        continue;  // e.g. a job that finished meanwhile
      }
      if ((*r)->job.state == JobState::kCancelled) facts->cancelled.push_back(it->first);
      ++*acked;
    } else {
      QueueConfigPatch patch;
      patch.name = queue;
      patch.max_attempts = uniform(1, 1000);
      std::promise<Result<QueueInfo>> p;
      auto f = p.get_future();
      broker.PutQueue(patch, /*create=*/true, [&](auto r) { p.set_value(std::move(r)); });
      auto r = AwaitFor(f);
      if (!r) return false;
      if (!r->ok()) {
        facts->max_attempts_in_doubt[queue].insert(*patch.max_attempts);
        return true;
      }
      facts->max_attempts[queue] = *patch.max_attempts;
      facts->max_attempts_in_doubt[queue].clear();
      ++*acked;
    }
  }
  return true;
}

// Every acknowledged fact that the reopened store does not hold.
std::vector<std::string> MissingFacts(Store& store, const BrokerFacts& facts) {
  std::vector<std::string> missing;
  for (const auto& [id, acked] : facts.enqueued) {
    auto r = store.GetJob(id);
    if (!r.ok()) {
      missing.push_back("job " + std::to_string(id) + ": " + r.status().ToString());
      continue;
    }
    if (acked) {
      if (r->has_value() && (*r)->state != JobState::kSucceeded) {
        missing.push_back("acknowledged ack of job " + std::to_string(id) + " lost");
      }
    } else if (!r->has_value() && facts.acks_in_doubt.count(id) == 0) {
      missing.push_back("acknowledged enqueue of job " + std::to_string(id) + " lost");
    }
  }
  for (const auto& [id, message] : facts.dead) {
    auto r = store.GetJob(id);
    if (!r.ok() || !r->has_value() || (*r)->state != JobState::kDead ||
        std::none_of((*r)->errors.begin(), (*r)->errors.end(),
                     [&](const AttemptError& e) { return e.message == message; })) {
      missing.push_back("acknowledged final fail of job " + std::to_string(id) + " lost");
    }
  }
  for (JobId id : facts.cancelled) {
    auto r = store.GetJob(id);
    if (!r.ok() || !r->has_value() || (*r)->state != JobState::kCancelled) {
      missing.push_back("acknowledged cancel of job " + std::to_string(id) + " lost");
    }
  }
  Snapshot snap;
  Collect c(&snap);
  Status st = store.Recover(0, c);
  if (!st.ok()) missing.push_back("recovery failed: " + st.ToString());
  for (const auto& [queue, max] : facts.max_attempts) {
    auto it = std::find_if(snap.queues.begin(), snap.queues.end(),
                           [&](const QueueConfig& q) { return q.name == queue; });
    if (it == snap.queues.end()) {
      missing.push_back("acknowledged config of queue " + queue + " lost");
      continue;
    }
    auto doubt = facts.max_attempts_in_doubt.find(queue);
    const bool in_doubt =
        doubt != facts.max_attempts_in_doubt.end() && doubt->second.count(it->max_attempts) != 0;
    if (it->max_attempts != max && !in_doubt) {
      missing.push_back("acknowledged config of queue " + queue + " lost: max_attempts " +
                        std::to_string(it->max_attempts) + ", acknowledged " + std::to_string(max));
    }
  }
  return missing;
}

struct BrokerRun {
  int cuts = 0;
  int acked = 0;
  std::vector<std::string> violations;
};

BrokerRun RunBrokerPowerLoss(Durability durability, int iterations, std::uint64_t seed) {
  BrokerRun run;
  std::mt19937_64 rng(seed);
  PowerLossVfs& vfs = PowerLossVfs::Instance();
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  SystemClock clock;
  for (int it = 0; it < iterations; ++it) {
    TempDir dir;
    vfs.Reset();
    SqliteOptions options;
    options.path = dir.File("ym.db");
    options.durability = durability;
    options.reader_connections = 1;
    options.vfs = PowerLossVfs::kName;
    BrokerFacts facts;
    for (int cut = 0; cut < 2; ++cut) {
      std::string where = "iteration " + std::to_string(it) + " cut " + std::to_string(cut);
      auto store = OpenSqliteStore(options);
      if (!store.ok()) {
        run.violations.push_back(where + ": reopen failed: " + store.status().ToString());
        break;
      }
      for (const auto& m : MissingFacts(**store, facts)) run.violations.push_back(where + ": " + m);
      if (IntegrityCheck(options.path) != "ok") {
        run.violations.push_back(where + ": integrity_check failed");
      }
      BrokerOptions bo;
      bo.seed = rng();
      auto broker = std::make_unique<Broker>(**store, clock, bo);
      Status started = broker->Start();
      if (!started.ok()) {
        run.violations.push_back(where + ": broker start failed: " + started.ToString());
        break;
      }
      int ops = uniform(5, 40);
      if (!DriveBroker(*broker, rng, ops, uniform(0, ops - 1), uniform(0, 10), &facts,
                       &run.acked)) {
        run.violations.push_back(where + ": the broker stopped answering");
      }
      if (!vfs.crashed()) vfs.ArmCrashAfter(0);
      broker->Stop();
      broker.reset();
      store->reset();
      vfs.PowerLoss(rng, uniform(0, 1) == 0 ? 0.0 : 0.5);
      ++run.cuts;
    }
    auto store = OpenSqliteStore(options);
    if (!store.ok()) {
      run.violations.push_back("iteration " + std::to_string(it) + ": final reopen failed");
      continue;
    }
    for (const auto& m : MissingFacts(**store, facts)) {
      run.violations.push_back("iteration " + std::to_string(it) + " final: " + m);
    }
  }
  vfs.Reset();
  return run;
}

TEST(PowerLossTest, EveryWriteTheBrokerAcknowledgedSurvivesPowerCuts) {
  std::uint64_t seed = SeedFromEnv();
  int iterations = IterationsFromEnv(8);
  std::printf("power-loss seed: YM_POWERLOSS_SEED=%llu (iterations %d)\n",
              static_cast<unsigned long long>(seed), iterations);
  BrokerRun r = RunBrokerPowerLoss(Durability::kFull, iterations, seed);
  std::printf("power-loss broker, full durability: %d cuts, %d acknowledged writes, %zu lost\n",
              r.cuts, r.acked, r.violations.size());
  EXPECT_GT(r.acked, 0);
  for (const auto& v : r.violations) ADD_FAILURE() << v << " (YM_POWERLOSS_SEED=" << seed << ")";
}

TEST(PowerLossTest, BrokerWithRelaxedDurabilityLosesAcknowledgedWritesAndTheCheckerSeesIt) {
  std::uint64_t seed = SeedFromEnv();
  int iterations = IterationsFromEnv(8);
  std::printf("power-loss seed: YM_POWERLOSS_SEED=%llu (iterations %d)\n",
              static_cast<unsigned long long>(seed), iterations);
  BrokerRun r = RunBrokerPowerLoss(Durability::kRelaxed, iterations, seed);
  std::printf("power-loss broker, relaxed durability: %d cuts, %d acknowledged writes, %zu lost\n",
              r.cuts, r.acked, r.violations.size());
  EXPECT_GT(r.violations.size(), 0u)
      << "relaxed durability lost nothing: the checker cannot fail (YM_POWERLOSS_SEED=" << seed
      << ")";
}

}  // namespace
}  // namespace ym
