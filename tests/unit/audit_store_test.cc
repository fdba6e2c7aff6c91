// The audit log in the stores (store/batch.h AppendAudit, Store::ReadAudit/AuditHead): entries
// are sealed in commit order, commit and roll back with their batch, the head survives a reopen,
// and the offline reader (ReadAuditLogFile) sees what the store committed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/audit_chain.h"
#include "store/memory_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace ym {
namespace {

AppendAudit Entry(const std::string& action, std::int64_t at) {
  AppendAudit a;
  a.entry.at_ms = at;
  a.entry.actor = "anonymous";
  a.entry.action = action;
  a.entry.target = "queue q";
  a.entry.remote = "127.0.0.1";
  a.entry.request_id = "r-" + action;
  a.entry.detail = "{}";
  a.entry.seq = 999;  // ignored: the store assigns seq and hashes
  return a;
}

JobRecord Job(JobId id) {
  JobRecord j;
  j.id = id;
  j.queue = "q";
  j.kind = "k";
  j.state = JobState::kReady;
  j.payload = "null";
  j.max_attempts = 1;
  return j;
}

SqliteOptions Options(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  o.reader_connections = 1;
  return o;
}

std::vector<audit::Entry> All(Store& s) {
  auto r = s.ReadAudit(0, 1000);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<audit::Entry>{};
}

// Shared by both stores.
void CommitsAndRollsBack(Store& store) {
  Batch b;
  b.mutations.push_back(InsertJob{Job(1)});
  b.mutations.push_back(Entry("queue.pause", 10));
  b.mutations.push_back(Entry("queue.resume", 11));
  b.audit_entries = 2;
  ASSERT_TRUE(store.Commit(b).ok());
  auto got = All(store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 1u);
  EXPECT_EQ(got[1].seq, 2u);
  EXPECT_EQ(got[1].action, "queue.resume");
  EXPECT_EQ(got[1].request_id, "r-queue.resume");
  EXPECT_TRUE(audit::Verify(got).ok());
  EXPECT_EQ(store.AuditHead().seq, 2u);
  EXPECT_EQ(store.AuditHead().hash, got[1].hash);

  // A batch that fails (the job exists already) keeps none of its entries, nor moves the head.
  Batch bad;
  bad.mutations.push_back(Entry("limit.put", 12));
  bad.mutations.push_back(InsertJob{Job(1)});
  EXPECT_FALSE(store.Commit(bad).ok());
  EXPECT_EQ(All(store).size(), 2u);
  EXPECT_EQ(store.AuditHead().seq, 2u);

  Batch next;
  next.mutations.push_back(Entry("limit.delete", 13));
  ASSERT_TRUE(store.Commit(next).ok());
  got = All(store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].seq, 3u);
  EXPECT_EQ(got[2].prev_hash, got[1].hash);
  EXPECT_TRUE(audit::Verify(got).ok());
  // Paging.
  auto page = store.ReadAudit(1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 2u);
}

TEST(AuditStoreTest, MemoryStoreSealsInCommitOrderAndRollsBack) {
  MemoryStore store;
  CommitsAndRollsBack(store);
}

TEST(AuditStoreTest, SqliteStoreSealsInCommitOrderAndRollsBack) {
  TempDir dir;
  auto store = OpenSqliteStore(Options(dir.File("ym.db")));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  CommitsAndRollsBack(**store);
}

TEST(AuditStoreTest, HeadSurvivesAReopenAndTheOfflineReaderAgrees) {
  TempDir dir;
  const std::string path = dir.File("ym.db");
  audit::Head head;
  {
    auto store = OpenSqliteStore(Options(path));
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->AuditHead().seq, 0u);
    Batch b;
    b.mutations.push_back(Entry("job.cancel", 1));
    b.mutations.push_back(Entry("job.replay", 2));
    ASSERT_TRUE((*store)->Commit(b).ok());
    head = (*store)->AuditHead();
    // Read-only, beside the open store (a WAL reader).
    auto offline = ReadAuditLogFile(path);
    ASSERT_TRUE(offline.ok()) << offline.status().ToString();
    ASSERT_EQ(offline->size(), 2u);
    EXPECT_EQ(offline->back().hash, head.hash);
  }
  auto store = OpenSqliteStore(Options(path));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->AuditHead().seq, 2u);
  EXPECT_EQ((*store)->AuditHead().hash, head.hash);
  Batch b;
  b.mutations.push_back(Entry("queue.reset", 3));
  ASSERT_TRUE((*store)->Commit(b).ok());
  auto got = All(**store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].prev_hash, head.hash);
  EXPECT_TRUE(audit::Verify(got).ok());
}

TEST(AuditStoreTest, OfflineReaderRefusesOtherFiles) {
  TempDir dir;
  EXPECT_FALSE(ReadAuditLogFile(dir.File("missing.db")).ok());
  // An empty SQLite file is not a Yardmaster database.
  {
    auto store = OpenSqliteStore(Options(dir.File("ym.db")));
    ASSERT_TRUE(store.ok());
  }
  auto r = ReadAuditLogFile(dir.File("ym.db"));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

}  // namespace
}  // namespace ym
