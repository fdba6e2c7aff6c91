// SqliteStore: the embedded default Store, one SQLite database file in WAL mode.
//
// Ownership: OpenSqliteStore() (declared in store/store.h) returns it as a unique_ptr<Store>; the
// server owns it for its whole life. It is the only module that includes <sqlite3.h>.
//
// Connections and threads:
//   - one read-write connection, touched only by Commit() and Recover(). The Store contract says
//     those two are called by one thread at a time, so the writer needs no lock of its own.
//   - a pool of `reader_connections` read-only connections, handed out under `pool_mu_`, used by
//     GetJob(), ListJobs() and Backup(). In WAL mode a reader sees the last committed snapshot
//     and never blocks the writer, so these run concurrently with Commit() from any thread.
//   - Stats() reads file sizes and an atomic counter; any thread.
//
// The on-disk format (schema, state numbers, migrations, pragmas) is specified in
// docs/storage-format.md; keep the two in step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/finished_counts.h"
#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ym {

// The format this code writes. Opening a file with a newer version fails with kCorruption; an
// older one is migrated forward at open (docs/storage-format.md, "Migrations").
inline constexpr int kSqliteFormatVersion = 5;

// PRAGMA application_id of every Yardmaster database ("YMST"), so `file` and tools can tell it
// apart from other SQLite files and we refuse to migrate someone else's database.
inline constexpr std::int32_t kSqliteApplicationId = 0x594D5354;

class SqliteStore final : public Store {
 public:
  // Use OpenSqliteStore(); the constructor only records options.
  explicit SqliteStore(const SqliteOptions& options);
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Opens connections, applies pragmas, runs migrations and prepares statements.
  Status Open();

  Status Commit(const Batch& batch) override;
  Status Recover(std::int64_t now_ms, RecoveryVisitor& visitor) override;
  Result<std::optional<JobRecord>> GetJob(JobId id) override;
  Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                const std::string& key,
                                                                std::int64_t now_ms) override;
  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& query) override;
  Result<FinishedPage> SearchFinished(const FinishedSearch& query) override;
  // The plan SQLite chose for each statement SearchFinished(query) runs (the `detail` lines of
  // EXPLAIN QUERY PLAN, one string per statement, lines joined by '\n'): how tests prove every
  // filter is answered from an index.
  Result<std::vector<std::string>> ExplainSearch(const FinishedSearch& query);
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) override;
  Status Backup(const std::string& path) override;
  StoreStats Stats() override;

 private:
  // A read-only connection and the statements prepared on it.
  struct Reader {
    sqlite3* db = nullptr;
    sqlite3_stmt* get_job = nullptr;
    sqlite3_stmt* get_key = nullptr;
    // ListJobs and SearchFinished statements by SQL text; the shapes are few (which filters
    // are given, number of states), and the cache is cleared if it ever holds many.
    std::map<std::string, sqlite3_stmt*> list_stmts;
  };
  class ReaderLease;
  // The statement for `sql` on reader `r`, prepared once and cached in r->list_stmts. It stays
  // valid until TrimStatementCache(r, ...) empties the cache.
  Result<sqlite3_stmt*> CachedStatement(Reader& r, const std::string& sql);
  // Empties r's statement cache if `room` more statements would take it past its bound.
  void TrimStatementCache(Reader& r, std::size_t room);

  // SqliteOptions::vfs for sqlite3_open_v2: nullptr selects SQLite's default VFS.
  const char* Vfs() const { return options_.vfs.empty() ? nullptr : options_.vfs.c_str(); }
  Status OpenWriter();
  Status OpenReaders();
  Status PrepareWriterStatements();
  // Loads the terminal-job counts per queue (one scan of the terminal index, at open).
  Status LoadFinishedCounts();
  // Binds UpdateJob's values to update_job_ or update_job_any_ (same parameters).
  int BindUpdate(sqlite3_stmt* stmt, const JobRecord& job);
  // Applies one mutation inside the open transaction.
  Status ApplyInsert(const JobRecord& job);
  Status ApplyUpdate(const JobRecord& job);
  Status ApplyUpdateLease(const UpdateLease& lease);
  // Writes (or replaces) the lease row of an existing job; DeleteLease removes it, if any.
  Status PutLease(JobId id, std::uint64_t token, std::int64_t expires_at_ms,
                  std::string_view worker_id, std::int32_t attempts, std::int64_t updated_at_ms,
                  std::int64_t deadline_at_ms);
  Status DeleteLease(JobId id);
  // PutLease for each (leases of ids out of range are skipped), kLeaseChunk per statement.
  Status PutLeases(const std::vector<const UpdateLease*>& leases);
  static constexpr int kLeaseChunk = 16;
  Status ApplyDelete(JobId id);
  // Deletes the jobs first..last (and their leases), as many ApplyDelete calls would.
  Status ApplyDeleteRange(JobId first, JobId last);
  Status ApplyPutQueue(const QueueConfig& config);
  Status ApplyDeleteQueue(const std::string& name);
  Status ApplyPutKey(const PutIdempotencyKey& key);
  Status ApplyExpireKeys(const ExpireIdempotencyKeys& expire);
  Status ApplyFinishKey(const FinishIdempotencyKey& finish);
  Status ApplyPurge(const PurgeFinished& purge);
  Status ApplyNextId(JobId next_id);
  Status RecoverInTransaction(std::int64_t now_ms, RecoveryVisitor& visitor);
  // Encode into scratch buffers and bind with SQLITE_STATIC: the buffer outlives the step.
  int BindTags(sqlite3_stmt* stmt, int index, const std::vector<std::string>& tags);
  int BindErrors(sqlite3_stmt* stmt, int index, const std::vector<AttemptError>& errors);
  void RollbackQuietly();

  // Terminal-job counts per queue (finished_counts.h): loaded at open, then every statement of
  // Commit that can add or remove a terminal row reports its delta (see Commit).
  FinishedCounts finished_;

  Reader* AcquireReader();
  void ReleaseReader(Reader* reader);

  const SqliteOptions options_;

  // Writer state: only the Commit()/Recover() thread touches these.
  sqlite3* writer_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  sqlite3_stmt* insert_job_ = nullptr;
  sqlite3_stmt* insert_tag_ = nullptr;      // one job_tags row (format 5, search)
  sqlite3_stmt* update_job_ = nullptr;      // live rows only (the common case)
  sqlite3_stmt* update_job_any_ = nullptr;  // any row, after reading its state
  sqlite3_stmt* job_state_ = nullptr;       // queue and state of one row
  sqlite3_stmt* put_lease_ = nullptr;
  sqlite3_stmt* put_leases_ = nullptr;
  sqlite3_stmt* delete_lease_ = nullptr;
  sqlite3_stmt* release_job_ = nullptr;
  sqlite3_stmt* delete_job_range_ = nullptr;
  sqlite3_stmt* delete_lease_range_ = nullptr;
  sqlite3_stmt* probe_ = nullptr;
  sqlite3_stmt* delete_job_ = nullptr;           // live rows only (the common case)
  sqlite3_stmt* delete_finished_job_ = nullptr;  // terminal rows, returning queue and state
  sqlite3_stmt* put_queue_ = nullptr;
  sqlite3_stmt* delete_queue_ = nullptr;
  sqlite3_stmt* put_key_ = nullptr;
  sqlite3_stmt* expire_keys_ = nullptr;
  sqlite3_stmt* finish_key_ = nullptr;
  sqlite3_stmt* purge_ = nullptr;
  sqlite3_stmt* purge_unconfigured_ = nullptr;
  sqlite3_stmt* set_next_id_ = nullptr;
  // meta.next_id as last committed; the in-progress value lives on the stack of Commit() until
  // COMMIT succeeds, so a rolled-back batch cannot move it.
  JobId next_id_ = 1;
  // A run of adjacent leases in the batch being committed (reused, so a commit does not
  // allocate for it once it has grown).
  std::vector<const UpdateLease*> lease_run_;
  // Finding the leases a batch overwrites (Commit): the batch's lease ids, sorted; whether each
  // was rewritten later in the batch; which mutations are skipped.
  std::vector<JobId> lease_ids_;
  std::vector<char> rewritten_;
  std::vector<char> skip_;
  // Reused JSON writer and buffers for the tags and errors columns, so that encoding a row does
  // not allocate once the buffers have grown. Defined in the .cc to keep RapidJSON out of here.
  struct JsonScratch;
  std::unique_ptr<JsonScratch> json_;

  std::vector<std::unique_ptr<Reader>> readers_;  // owned; fixed after Open()
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<Reader*> free_readers_;  // GUARDED_BY(pool_mu_)

  // Written by the commit thread, read by Stats() on any thread; a counter needs no ordering.
  std::atomic<std::uint64_t> commits_{0};
  // Read back from the writer connection at open; immutable afterwards (so Stats() may read them
  // from any thread without a lock).
  std::string journal_mode_;
  std::string synchronous_;
};

}  // namespace ym
