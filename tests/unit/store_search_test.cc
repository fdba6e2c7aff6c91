// Store::SearchFinished (the finished half of GET /v1/jobs filters): the SQLite store's indexed,
// bounded search agrees with a brute-force filter of every record and with the MemoryStore
// reference; every filter is answered from an index (EXPLAIN QUERY PLAN); a call examines a
// bounded number of candidates; job_tags rows live exactly as long as their job row.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "raw_sqlite.h"
#include "store/memory_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace ym {
namespace {

std::unique_ptr<Store> OpenSqlite(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  o.durability = Durability::kRelaxed;
  o.reader_connections = 2;
  auto s = OpenSqliteStore(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

JobRecord Job(JobId id, JobState state, std::string queue, std::string kind, std::string ns,
              std::vector<std::string> tags, std::int64_t created, std::int64_t finished) {
  JobRecord j;
  j.id = id;
  j.state = state;
  j.queue = std::move(queue);
  j.kind = std::move(kind);
  j.ns = std::move(ns);
  j.tags = std::move(tags);
  j.payload = "{\"n\":" + std::to_string(id) + "}";
  j.created_at_ms = created;
  j.updated_at_ms = IsTerminal(state) ? finished : created;
  j.finished_at_ms = IsTerminal(state) ? finished : 0;
  j.run_at_ms = created;
  if (state == JobState::kDead) j.dead_reason = std::string(kDeadMaxAttempts);
  return j;
}

Status CommitJobs(Store& store, const std::vector<JobRecord>& jobs) {
  Batch b;
  for (const auto& j : jobs) b.mutations.push_back(InsertJob{j});
  return store.Commit(b);
}

// Every match of `f` after 0, by pages of `limit`, each call examining at most `budget`.
std::vector<JobId> SearchAll(Store& store, const JobFilter& f, std::uint32_t limit,
                             std::uint32_t budget, int* calls = nullptr) {
  std::vector<JobId> ids;
  FinishedSearch q;
  q.filter = f;
  q.limit = limit;
  q.max_examined = budget;
  for (int i = 0; i < 100'000; ++i) {
    auto page = store.SearchFinished(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    if (calls) ++*calls;
    EXPECT_LE(page->jobs.size(), limit);
    EXPECT_LE(page->examined, budget);
    for (const auto& j : page->jobs) {
      EXPECT_GT(j.id, q.after_id);
      if (page->resume_after != 0) {
        EXPECT_LE(j.id, page->resume_after);
      }
      EXPECT_TRUE(f.Matches(j)) << j.id;
      ids.push_back(j.id);
    }
    if (page->resume_after == 0) break;
    EXPECT_GT(page->resume_after, q.after_id);  // always progresses
    q.after_id = page->resume_after;
  }
  return ids;
}

// A filter built by `set` (designated initializers would need every field spelled out).
template <class F>
JobFilter Filter(F set) {
  JobFilter f;
  set(f);
  return f;
}

constexpr std::array<JobState, 6> kStates = {JobState::kScheduled, JobState::kReady,
                                             JobState::kActive,    JobState::kSucceeded,
                                             JobState::kDead,      JobState::kCancelled};

struct Corpus {
  std::vector<JobRecord> jobs;
};

Corpus MakeCorpus(std::mt19937_64& rng, int n) {
  Corpus c;
  const char* queues[] = {"qa", "qb", "qc"};
  const char* kinds[] = {"ka", "kb", "kc", "kd"};
  const char* nss[] = {"default", "n1"};
  const char* tags[] = {"t1", "t2", "t3"};
  for (int i = 1; i <= n; ++i) {
    JobState st = kStates[rng() % kStates.size()];
    if (rng() % 3 != 0) st = kStates[3 + rng() % 3];  // mostly finished
    std::vector<std::string> t;
    for (const char* tag : tags) {
      if (rng() % 4 == 0) t.push_back(tag);
    }
    if (!t.empty() && rng() % 5 == 0) t.push_back(t.front());  // a duplicate tag
    const std::int64_t created = 1000 + i * 10 + static_cast<std::int64_t>(rng() % 7);
    const std::int64_t finished = created + static_cast<std::int64_t>(rng() % 5000);
    c.jobs.push_back(Job(static_cast<JobId>(i), st, queues[rng() % 3], kinds[rng() % 4],
                         nss[rng() % 2], t, created, finished));
  }
  return c;
}

JobFilter RandomFilter(std::mt19937_64& rng) {
  JobFilter f;
  const char* queues[] = {"qa", "qb", "qc", "qz"};
  const char* kinds[] = {"ka", "kb", "kc", "kz"};
  const char* tags[] = {"t1", "t2", "t3", "tz"};
  if (rng() % 3 == 0) f.queue = queues[rng() % 4];
  if (rng() % 3 == 0) f.kind = kinds[rng() % 4];
  if (rng() % 4 == 0) f.ns = rng() % 2 ? "default" : "n1";
  if (rng() % 3 == 0) f.tag = tags[rng() % 4];
  for (JobState s : kStates) {
    if (rng() % 4 == 0) f.states.push_back(s);
  }
  if (rng() % 4 == 0) f.created_after_ms = 1000 + static_cast<std::int64_t>(rng() % 3000);
  if (rng() % 4 == 0) f.created_before_ms = 1000 + static_cast<std::int64_t>(rng() % 4000);
  if (rng() % 4 == 0) f.finished_after_ms = 1000 + static_cast<std::int64_t>(rng() % 6000);
  if (rng() % 4 == 0) f.finished_before_ms = 1000 + static_cast<std::int64_t>(rng() % 8000);
  f.Normalize();
  return f;
}

TEST(StoreSearch, RandomFiltersMatchABruteForceFilterInBothStores) {
  std::mt19937_64 rng(20261125);
  TempDir dir;
  auto sqlite = OpenSqlite(dir.File("ym.db"));
  ASSERT_TRUE(sqlite);
  MemoryStore memory;
  Corpus c = MakeCorpus(rng, 400);
  ASSERT_TRUE(CommitJobs(*sqlite, c.jobs).ok());
  ASSERT_TRUE(CommitJobs(memory, c.jobs).ok());
  int nonempty = 0;
  for (int round = 0; round < 300; ++round) {
    const JobFilter f = RandomFilter(rng);
    SCOPED_TRACE(f.Scope());
    std::vector<JobId> want;
    for (const auto& j : c.jobs) {
      if (IsTerminal(j.state) && f.Matches(j)) want.push_back(j.id);
    }
    if (!want.empty()) ++nonempty;
    const std::uint32_t limit = 1 + static_cast<std::uint32_t>(rng() % 20);
    const std::uint32_t budget = 1 + static_cast<std::uint32_t>(rng() % 50);
    EXPECT_EQ(SearchAll(*sqlite, f, limit, budget), want) << limit << " " << budget;
    EXPECT_EQ(SearchAll(memory, f, limit, budget), want);
    EXPECT_EQ(SearchAll(*sqlite, f, 1000, 100'000), want);
  }
  EXPECT_GT(nonempty, 100);  // the filters are not all trivially empty
}

// Every shape of filter (which fields are given, which states) is its own cached statement;
// cycling through far more shapes than the cache holds stays correct: the cache is emptied
// between searches, never under one that holds its statements (a search of several states holds
// one per state).
TEST(StoreSearch, ManyFilterShapesKeepTheStatementCacheBoundedAndCorrect) {
  std::mt19937_64 rng(7);
  TempDir dir;
  SqliteOptions o;
  o.path = dir.File("ym.db");
  o.durability = Durability::kRelaxed;
  o.reader_connections = 1;  // every search on the same cache
  auto opened = OpenSqliteStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  Corpus c = MakeCorpus(rng, 60);
  ASSERT_TRUE(CommitJobs(store, c.jobs).ok());
  int searches = 0;
  for (unsigned fields = 0; fields < 256; ++fields) {
    for (unsigned states = 0; states < 8; states += 3) {
      JobFilter f;
      if (fields & 1) f.kind = "ka";
      if (fields & 2) f.queue = "qa";
      if (fields & 4) f.ns = "default";
      if (fields & 8) f.tag = "t1";
      if (fields & 16) f.created_after_ms = 1200;
      if (fields & 32) f.created_before_ms = 1500;
      if (fields & 64) f.finished_after_ms = 1100;
      if (fields & 128) f.finished_before_ms = 9000;
      for (int b = 0; b < 3; ++b) {
        if (states & (1u << b)) f.states.push_back(static_cast<JobState>(3 + b));
      }
      std::vector<JobId> want;
      for (const auto& j : c.jobs) {
        if (IsTerminal(j.state) && f.Matches(j)) want.push_back(j.id);
      }
      ASSERT_EQ(SearchAll(store, f, 5, 1000), want) << f.Scope();
      ++searches;
    }
  }
  EXPECT_EQ(searches, 768);
}

// One call examines at most max_examined candidates, so a rare match among many finished jobs
// costs a bounded amount per call and is still reached by following the resume points.
TEST(StoreSearch, ACallIsBoundedByItsBudget) {
  TempDir dir;
  auto store = OpenSqlite(dir.File("ym.db"));
  ASSERT_TRUE(store);
  std::vector<JobRecord> jobs;
  for (JobId id = 1; id <= 5000; ++id) {
    jobs.push_back(Job(id, JobState::kSucceeded, "q", id == 4990 ? "rare" : "common", "default",
                       id == 4990 ? std::vector<std::string>{"x"} : std::vector<std::string>{}, id,
                       id + 1));
  }
  ASSERT_TRUE(CommitJobs(*store, jobs).ok());
  // Filters the driving index does not serve (a finished-at range): each call examines at most
  // 100 candidates.
  JobFilter f;
  f.queue = "q";
  f.finished_after_ms = 4991;
  f.finished_before_ms = 4992;
  int calls = 0;
  EXPECT_EQ(SearchAll(*store, f, 10, 100, &calls), std::vector<JobId>{4990});
  EXPECT_GE(calls, 49);  // 4990 candidates / 100 per call
  FinishedSearch q;
  q.filter = f;
  q.max_examined = 100;
  auto first = store->SearchFinished(q);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->jobs.empty());
  EXPECT_EQ(first->examined, 100u);
  EXPECT_EQ(first->resume_after, 100u);
  // An indexed filter finds it in one call.
  for (JobFilter g :
       {Filter([](JobFilter& f) { f.kind = "rare"; }), Filter([](JobFilter& f) { f.tag = "x"; })}) {
    calls = 0;
    EXPECT_EQ(SearchAll(*store, g, 10, 100, &calls), std::vector<JobId>{4990});
    EXPECT_EQ(calls, 1);
  }
}

// Creation times never decrease in id order (Scheduler::Enqueue), so created-at bounds are an id
// range, found by a binary search over the primary key: the candidates before and after it are
// never examined, whatever the budget, and the search ends at the upper bound.
TEST(StoreSearch, CreatedAtBoundsAreAnIdRange) {
  TempDir dir;
  auto store = OpenSqlite(dir.File("ym.db"));
  ASSERT_TRUE(store);
  std::vector<JobRecord> jobs;
  for (JobId id = 1; id <= 5000; ++id) {
    // Several jobs per millisecond, and a gap (ids 2001..2999 are not stored).
    if (id > 2000 && id < 3000) continue;
    const std::int64_t created = 100'000 + static_cast<std::int64_t>(id / 4);
    jobs.push_back(Job(id, id % 7 == 0 ? JobState::kDead : JobState::kSucceeded, "q", "k",
                       "default", {}, created, created + 5));
  }
  ASSERT_TRUE(CommitJobs(*store, jobs).ok());
  auto one_call = [&](const JobFilter& f) {
    FinishedSearch q;
    q.filter = f;
    q.limit = 100;
    q.max_examined = 10;
    auto page = store->SearchFinished(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<JobId> ids;
    for (const auto& j : page->jobs) ids.push_back(j.id);
    EXPECT_EQ(page->resume_after, 0u) << "the range ends the search";
    return ids;
  };
  // Created in [100'000 + 1247, 100'000 + 1249): ids 4988..4995, in one call of 10 candidates.
  EXPECT_EQ(one_call(Filter([](JobFilter& f) {
              f.created_after_ms = 100'000 + 1247;
              f.created_before_ms = 100'000 + 1249;
            })),
            (std::vector<JobId>{4988, 4989, 4990, 4991, 4992, 4993, 4994, 4995}));
  // With a state, through the per-state index: the dead ones of the same range.
  EXPECT_EQ(one_call(Filter([](JobFilter& f) {
              f.created_after_ms = 100'000 + 1247;
              f.created_before_ms = 100'000 + 1249;
              f.states = {JobState::kDead};
            })),
            (std::vector<JobId>{4991}));
  // A bound inside the gap starts at the first stored job after it.
  EXPECT_EQ(one_call(Filter([](JobFilter& f) {
              f.created_after_ms = 100'000 + 600;  // id 2400 would be the first: not stored
              f.created_before_ms = 100'000 + 751;
            })),
            (std::vector<JobId>{3000, 3001, 3002, 3003}));
  // Empty ranges end at once: after the last job, before the first, and inverted.
  EXPECT_TRUE(one_call(Filter([](JobFilter& f) { f.created_after_ms = 100'000 + 1251; })).empty());
  EXPECT_TRUE(one_call(Filter([](JobFilter& f) { f.created_before_ms = 100'000; })).empty());
  EXPECT_TRUE(one_call(Filter([](JobFilter& f) {
                f.created_after_ms = 100'000 + 900;
                f.created_before_ms = 100'000 + 800;
              })).empty());
  // Followed by cursor, a wide range returns exactly the jobs a brute-force filter finds.
  JobFilter wide;
  wide.created_after_ms = 100'000 + 300;
  wide.created_before_ms = 100'000 + 1100;
  std::vector<JobId> expected;
  for (const auto& j : jobs) {
    if (wide.Matches(j)) expected.push_back(j.id);
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SearchAll(*store, wide, 50, 60), expected);
}

// Every filter's candidates come from an index searched by its key, or from `outcomes` by its
// primary key, in id order (never a scan, never a sort); rows are then read by id.
TEST(StoreSearch, EveryFilterIsAnsweredFromAnIndex) {
  TempDir dir;
  auto opened = OpenSqlite(dir.File("ym.db"));
  ASSERT_TRUE(opened);
  auto& store = static_cast<SqliteStore&>(*opened);
  struct Case {
    JobFilter filter;
    std::string plan;  // the driving index and the terms it is searched by
    bool covering;     // the driving index alone answers (no other filter read from its rows)
  };
  // Format 6: a search by queue or by state alone that includes succeeded jobs walks
  // `outcomes` by its primary key (succeeded outcomes pay no entry in the queue and state
  // indexes); every other filter reads its index.
  const std::string walk = "INTEGER PRIMARY KEY (rowid>? AND rowid<?)";
  const std::vector<Case> cases = {
      {JobFilter{}, walk, false},
      {Filter([](JobFilter& f) { f.states = {JobState::kDead}; }),
       "COVERING INDEX outcomes_dead_by_state (state=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) {
         f.states = {JobState::kDead, JobState::kCancelled};
       }),
       "COVERING INDEX outcomes_dead_by_state (state=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) { f.queue = "q"; }), walk, false},
      {Filter([](JobFilter& f) {
         f.queue = "q";
         f.states = {JobState::kSucceeded};
       }),
       walk, false},
      {Filter([](JobFilter& f) {
         f.queue = "q";
         f.states = {JobState::kDead, JobState::kCancelled};
       }),
       "COVERING INDEX outcomes_dead_by_queue (state=? AND queue=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) { f.kind = "k"; }),
       "COVERING INDEX outcomes_by_kind (state=? AND kind=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) {
         f.kind = "k";
         f.states = {JobState::kDead, JobState::kCancelled};
       }),
       "COVERING INDEX outcomes_by_kind (state=? AND kind=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) { f.ns = "n"; }),
       "COVERING INDEX outcomes_by_ns (state=? AND ns=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) { f.tag = "t"; }),
       "COVERING INDEX job_tags_by_tag (tag=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) {
         f.ns = "n";
         f.queue = "q";
         f.kind = "k";
         f.states = {JobState::kDead, JobState::kCancelled};
         f.tag = "t";
         f.created_after_ms = 1;
         f.created_before_ms = 2;
         f.finished_after_ms = 3;
         f.finished_before_ms = 4;
       }),
       "COVERING INDEX job_tags_by_tag (tag=? AND id>? AND id<?)", true},
      {Filter([](JobFilter& f) {
         f.queue = "q";
         f.kind = "k";
         f.created_after_ms = 5;
       }),
       "INDEX outcomes_by_kind (state=? AND kind=? AND id>? AND id<?)", false},
      {Filter([](JobFilter& f) {
         f.ns = "n";
         f.tag = "";
         f.finished_before_ms = 5;
       }),
       "INDEX outcomes_by_ns (state=? AND ns=? AND id>? AND id<?)", false},
      {Filter([](JobFilter& f) { f.finished_after_ms = 5; }), walk, false},
      {Filter([](JobFilter& f) {
         f.finished_after_ms = 5;
         f.states = {JobState::kCancelled};
       }),
       "INDEX outcomes_dead_by_state (state=? AND id>? AND id<?)", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.filter.Scope());
    FinishedSearch q;
    q.filter = c.filter;
    auto plans = store.ExplainSearch(q);
    ASSERT_TRUE(plans.ok()) << plans.status().ToString();
    ASSERT_EQ(plans->size(), 2u);
    const std::string& candidates = (*plans)[0];
    const std::string& rows = (*plans)[1];
    SCOPED_TRACE(candidates + "\n---\n" + rows);
    EXPECT_NE(candidates.find("USING " + c.plan), std::string::npos);
    EXPECT_EQ(candidates.find("COVERING") != std::string::npos, c.covering);
    EXPECT_EQ(candidates.find("SCAN"), std::string::npos);
    EXPECT_EQ(candidates.find("TEMP B-TREE"), std::string::npos);
    // Anything else read per candidate is a point lookup by id.
    std::size_t lines = 0;
    for (std::size_t at = 0; at != std::string::npos; at = candidates.find('\n', at + 1)) ++lines;
    EXPECT_LE(lines, 3u);
    {
      for (std::size_t at = candidates.find('\n'); at != std::string::npos;
           at = candidates.find('\n', at + 1)) {
        const std::string line = candidates.substr(at + 1, candidates.find('\n', at + 1) - at - 1);
        EXPECT_TRUE(line.find("PRIMARY KEY") != std::string::npos ||
                    line.find("CORRELATED SCALAR SUBQUERY") != std::string::npos)
            << line;
      }
    }
    EXPECT_NE(rows.find("SEARCH j USING INTEGER PRIMARY KEY (rowid=?)"), std::string::npos);
    EXPECT_EQ(rows.find("SCAN"), std::string::npos);
  }
}

TEST(StoreSearch, TagRowsGoWithTheirJobOnEveryDeletePath) {
  TempDir dir;
  const std::string path = dir.File("ym.db");
  auto store = OpenSqlite(path);
  ASSERT_TRUE(store);
  std::vector<JobRecord> jobs;
  for (JobId id = 1; id <= 12; ++id) {
    const JobState st = id <= 4 ? JobState::kReady : JobState::kSucceeded;
    jobs.push_back(Job(id, st, id % 2 ? "odd" : "even", "k", "default", {"a", "b", "a"}, 100,
                       id <= 8 ? 200 : 900));
  }
  jobs.push_back(Job(13, JobState::kSucceeded, "odd", "k", "default", {}, 100, 200));
  ASSERT_TRUE(CommitJobs(*store, jobs).ok());
  auto tag_rows = [&] { return RawQueryInt(path, "SELECT count(*) FROM job_tags"); };
  EXPECT_EQ(tag_rows(), 24);  // two distinct tags per tagged job
  // Live jobs deleted (acked under delete-on-ack; consecutive ids go as one range delete) and
  // a finished one.
  Batch b;
  b.mutations.push_back(DeleteJob{1});
  b.mutations.push_back(DeleteJob{2});
  b.mutations.push_back(DeleteJob{3});
  b.mutations.push_back(DeleteJob{5});
  ASSERT_TRUE(store->Commit(b).ok());
  EXPECT_EQ(tag_rows(), 16);
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags WHERE id IN (1, 2, 3, 5)"), 0);
  // Retention purges, queue by queue.
  Batch purge;
  purge.mutations.push_back(PurgeFinished{"odd", JobState::kSucceeded, 500});
  ASSERT_TRUE(store->Commit(purge).ok());
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags WHERE id IN (7)"), 0);
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags WHERE id IN (9, 11)"), 4);
  Batch purge_all;
  purge_all.mutations.push_back(PurgeFinished{"odd", JobState::kSucceeded, 1000});
  purge_all.mutations.push_back(PurgeFinished{"even", JobState::kSucceeded, 1000});
  ASSERT_TRUE(store->Commit(purge_all).ok());
  EXPECT_EQ(tag_rows(), 2);  // only live job 4 is left
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags WHERE id = 4"), 2);
  // No tag row ever outlives its job.
  EXPECT_EQ(
      RawQueryInt(path, "SELECT count(*) FROM job_tags WHERE id NOT IN (SELECT id FROM jobs)"), 0);
  JobFilter f;
  f.tag = "a";
  EXPECT_TRUE(SearchAll(*store, f, 10, 100).empty());
}

// Format 4 -> 5: a file written before search existed keeps its jobs and gets their tag rows
// and the indexes.
TEST(StoreSearch, MigratesAFormat4FileAndIndexesItsTags) {
  TempDir dir;
  const std::string path = dir.File("ym.db");
  {
    auto store = OpenSqlite(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(
        CommitJobs(*store, {Job(1, JobState::kDead, "q", "k", "default", {"x", "y"}, 10, 20),
                            Job(2, JobState::kReady, "q", "k", "default", {"x"}, 10, 0),
                            Job(3, JobState::kSucceeded, "q", "k2", "n", {}, 10, 20)})
            .ok());
  }
  // Back to format 4: nothing of formats 6 and 5.
  RawExec(
      path,
      std::string(kUndoFormat6) +
          // Execution timeout (the other block of format 5).
          "ALTER TABLE jobs DROP COLUMN timeout_ms; ALTER TABLE queues DROP COLUMN timeout_ms;"
          "ALTER TABLE leases DROP COLUMN deadline_at_ms;"
          // Retention caps (another block).
          "ALTER TABLE queues DROP COLUMN retention_max_succeeded;"
          "ALTER TABLE queues DROP COLUMN retention_max_dead;"
          "ALTER TABLE queues DROP COLUMN retention_max_cancelled;"
          // Search.
          "DROP TRIGGER job_tags_delete; DROP TABLE job_tags; DROP INDEX jobs_finished_by_state;"
          "DROP INDEX jobs_finished_by_kind; DROP INDEX jobs_finished_by_ns;"
          "UPDATE meta SET value = 4 WHERE key = 'format_version';");
  auto store = OpenSqlite(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(RawQueryInt(path, "SELECT value FROM meta WHERE key = 'format_version'"),
            kSqliteFormatVersion);
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags"), 3);
  EXPECT_EQ(SearchAll(*store, Filter([](JobFilter& f) { f.tag = "x"; }), 10, 100),
            std::vector<JobId>{1});
  EXPECT_EQ(SearchAll(*store, Filter([](JobFilter& f) { f.kind = "k2"; }), 10, 100),
            std::vector<JobId>{3});
  EXPECT_EQ(SearchAll(*store, Filter([](JobFilter& f) { f.ns = "n"; }), 10, 100),
            std::vector<JobId>{3});
  auto got = store->GetJob(1);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->tags, (std::vector<std::string>{"x", "y"}));
  // The trigger works on the migrated file.
  Batch b;
  b.mutations.push_back(DeleteJob{1});
  ASSERT_TRUE(store->Commit(b).ok());
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM job_tags"), 1);
}

}  // namespace
}  // namespace ym
