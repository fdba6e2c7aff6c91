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
inline constexpr int kSqliteFormatVersion = 10;

// Retention's statements (SqliteStore::ApplyPurge), public so a test can check their plans. The
// ids come from the outcomes_by_finish index (queue, state, finished_at_ms) in finished order, a
// range of one (queue, state) prefix of which at most LIMIT entries are read (INDEXED BY pins
// it); each statement then deletes rows by id. A purge runs the *Jobs* statement first (the job
// rows of the chosen outcomes; their tag rows go with them by the job_tags_delete trigger), then
// the outcomes one, whose subquery then selects the same ids. So a purge costs the rows it
// deletes plus a logarithm, never a scan (SqliteStoreTest.RetentionStatementsUseTheFinishIndex).
//   ?1 state, ?2 queue, ?3 how many: the oldest-finished rows (over the cap)
inline constexpr char kPurgeOldestJobsSql[] =
    "DELETE FROM jobs WHERE id IN (SELECT id FROM outcomes INDEXED BY outcomes_by_finish "
    "WHERE queue = ?2 AND state = ?1 ORDER BY finished_at_ms LIMIT ?3)";
inline constexpr char kPurgeOldestSql[] =
    "DELETE FROM outcomes WHERE id IN (SELECT id FROM outcomes INDEXED BY outcomes_by_finish "
    "WHERE queue = ?2 AND state = ?1 ORDER BY finished_at_ms LIMIT ?3)";
//   ?1 state, ?2 queue, ?3 finished at or before, ?4 how many at most (past the window)
inline constexpr char kPurgeBeforeJobsSql[] =
    "DELETE FROM jobs WHERE id IN (SELECT id FROM outcomes INDEXED BY outcomes_by_finish "
    "WHERE queue = ?2 AND state = ?1 AND finished_at_ms <= ?3 ORDER BY finished_at_ms LIMIT ?4)";
inline constexpr char kPurgeBeforeSql[] =
    "DELETE FROM outcomes WHERE id IN (SELECT id FROM outcomes INDEXED BY outcomes_by_finish "
    "WHERE queue = ?2 AND state = ?1 AND finished_at_ms <= ?3 ORDER BY finished_at_ms LIMIT ?4)";
//   ?1 state, ?2 queue: when the oldest row left finished
inline constexpr char kOldestFinishSql[] =
    "SELECT finished_at_ms FROM outcomes INDEXED BY outcomes_by_finish "
    "WHERE queue = ?2 AND state = ?1 ORDER BY finished_at_ms LIMIT 1";

// A namespace retention pass chunk (PurgeFinished with ns, core/flow/namespace_retention.h):
// the finished rows of (state, ns) after a cursor in id order, by the outcomes_by_ns index
// (state, ns, id), at most ?4 of them; ApplyPurge deletes those finished by the cutoff and stops
// at the first created after it.
//   ?1 state, ?2 ns, ?3 after id, ?4 how many at most
inline constexpr char kNamespacePassSql[] =
    "SELECT id, created_at_ms, finished_at_ms FROM outcomes INDEXED BY outcomes_by_ns "
    "WHERE state = ?1 AND ns = ?2 AND id > ?3 ORDER BY id LIMIT ?4";

// PRAGMA application_id of every Yardmaster database ("YMST"), so `file` and tools can tell it
// apart from other SQLite files and we refuse to migrate someone else's database.
inline constexpr std::int32_t kSqliteApplicationId = 0x594D5354;

// Reads the whole audit log of the Yardmaster database at `path` through a read-only
// connection (`yardmaster audit verify --db`): no write, no migration, safe while a server has
// the file open (WAL readers never block its writer). kCorruption for a file that is not a
// Yardmaster database or predates the audit log (format < 10).
Result<std::vector<audit::Entry>> ReadAuditLogFile(const std::string& path);

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
  std::vector<PurgeOutcome> TakePurgeOutcomes() override { return std::move(outcomes_); }
  Status Recover(std::int64_t now_ms, RecoveryVisitor& visitor) override;
  Result<std::optional<JobRecord>> GetJob(JobId id) override;
  Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                const std::string& key,
                                                                std::int64_t now_ms) override;
  Result<std::vector<IdempotencyKeyRecord>> NamespaceKeys(const std::string& ns,
                                                          const std::string& after_key,
                                                          JobId max_job_id,
                                                          std::uint32_t limit) override;
  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& query) override;
  // By the jobs table's id order with the namespace in SQL: only the namespace's rows are
  // decoded (Store's default decodes every row it examines).
  Result<FinishedPage> NamespaceJobs(const std::string& ns, JobId after_id, std::uint32_t limit,
                                     std::uint32_t max_examined) override;
  Result<FinishedPage> SearchFinished(const FinishedSearch& query) override;
  // The plan SQLite chose for each statement SearchFinished(query) runs (the `detail` lines of
  // EXPLAIN QUERY PLAN, one string per statement, lines joined by '\n'): how tests prove every
  // filter is answered from an index.
  Result<std::vector<std::string>> ExplainSearch(const FinishedSearch& query);
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) override;
  Status Backup(const std::string& path) override;
  StoreStats Stats() override;
  Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after_seq,
                                              std::uint32_t limit) override;
  audit::Head AuditHead() override;

 private:
  // A read-only connection and the statements prepared on it.
  struct Reader {
    sqlite3* db = nullptr;
    sqlite3_stmt* get_job = nullptr;
    sqlite3_stmt* get_key = nullptr;
    sqlite3_stmt* namespace_keys = nullptr;
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
  // Loads the terminal-job counts per queue (one scan of the outcomes retention index, at open).
  Status LoadFinishedCounts();
  // Binds UpdateJob's values to update_job_, finish_job_ or update_outcome_ (same parameters).
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
  // Removes a job's outcome row, if any (the job is live again, or deleted), counted.
  Status DeleteOutcome(JobId id);
  // PutLease for each (leases of ids out of range are skipped), kLeaseChunk per statement.
  Status PutLeases(const std::vector<const UpdateLease*>& leases);
  static constexpr int kLeaseChunk = 16;
  // A run of adjacent UpdateJob mutations that finish jobs (an acks batch of jobs the default
  // retention keeps): kFinishChunk outcome rows per multi-row INSERT and lease DELETE instead of
  // two statements per job. Jobs the chunk did not finish (finished already, or missing) go
  // through ApplyUpdate one by one.
  Status ApplyFinishRun(const std::vector<const JobRecord*>& run);
  static constexpr int kFinishChunk = 16;
  Status ApplyDelete(JobId id);
  // Deletes the jobs first..last (and their leases), as many ApplyDelete calls would.
  Status ApplyDeleteRange(JobId first, JobId last);
  Status ApplyPutQueue(const QueueConfig& config);
  Status ApplyDeleteQueue(const std::string& name);
  Status ApplyPutLimit(const PutLimit& m);
  Status ApplyDeleteLimit(const std::string& name);
  Status ApplyPutNamespace(const PutNamespace& m);
  Status ApplyDeleteNamespace(const std::string& name);
  Status ApplyPutSchedule(const PutSchedule& m);
  Status ApplyDeleteSchedule(const std::string& id);
  Status ApplyPutApiToken(const ApiTokenRow& row);
  Status ApplyRevokeApiToken(const RevokeApiToken& m);
  Status ApplyTouchApiTokens(const TouchApiTokens& m);
  Status ApplyPutQuotaCount(const PutQuotaCount& m);
  Status ApplyDropQuotaCounts(const std::string& limit, std::int64_t before_ms);
  Status ApplyPutKey(const PutIdempotencyKey& key);
  Status ApplyExpireKeys(const ExpireIdempotencyKeys& expire);
  Status ApplyFinishKey(const FinishIdempotencyKey& finish);
  Status ApplyDeleteKey(const DeleteIdempotencyKey& d);
  // Turns SQLite's secure_delete on for the writer while it lives (a wipe's batch).
  class SecureDeleteScope {
   public:
    SecureDeleteScope(SqliteStore& store, bool on);
    ~SecureDeleteScope();
    SecureDeleteScope(const SecureDeleteScope&) = delete;
    SecureDeleteScope& operator=(const SecureDeleteScope&) = delete;

   private:
    SqliteStore& store_;
    bool on_;
  };
  // PRAGMA wal_checkpoint(TRUNCATE) on the writer after a commit (Batch::checkpoint).
  void CheckpointTruncate();
  Status ApplyPurge(const PurgeFinished& purge);
  Status ApplyNamespacePurge(const PurgeFinished& purge);
  Status ApplyNextId(JobId next_id);
  // Seals `entry` after `*head` (audit_chain.h) and inserts it; advances *head.
  Status ApplyAppendAudit(const audit::Entry& entry, audit::Head* head);
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
  sqlite3_stmt* insert_tag_ = nullptr;  // one job_tags row (format 5, search)
  sqlite3_stmt* update_job_ = nullptr;  // the job row of a job that is (again) live
  // Finished jobs (format 6): the outcomes row of each overrides its job row.
  sqlite3_stmt* finish_job_ = nullptr;         // insert a live job's outcome
  sqlite3_stmt* outcome_state_ = nullptr;      // queue and state of one outcome
  sqlite3_stmt* update_outcome_ = nullptr;     // rewrite an outcome (finished again)
  sqlite3_stmt* delete_outcome_ = nullptr;     // one outcome, returning queue and state
  sqlite3_stmt* outcomes_in_range_ = nullptr;  // whether ids first..last have any outcome
  sqlite3_stmt* put_lease_ = nullptr;
  sqlite3_stmt* put_leases_ = nullptr;
  sqlite3_stmt* delete_lease_ = nullptr;
  sqlite3_stmt* release_job_ = nullptr;
  sqlite3_stmt* delete_job_range_ = nullptr;
  sqlite3_stmt* delete_lease_range_ = nullptr;
  sqlite3_stmt* probe_ = nullptr;
  sqlite3_stmt* delete_job_ = nullptr;      // a live job (no outcome): the common case
  sqlite3_stmt* delete_any_job_ = nullptr;  // the job row, whatever it is
  sqlite3_stmt* put_queue_ = nullptr;
  sqlite3_stmt* delete_queue_ = nullptr;
  sqlite3_stmt* put_limit_ = nullptr;
  sqlite3_stmt* delete_limit_ = nullptr;
  sqlite3_stmt* put_namespace_ = nullptr;
  sqlite3_stmt* delete_namespace_ = nullptr;
  // Schedules (format 8): the row, one history row per entry, the trim to the newest entries.
  sqlite3_stmt* put_schedule_ = nullptr;
  sqlite3_stmt* put_schedule_history_ = nullptr;
  sqlite3_stmt* trim_schedule_history_ = nullptr;
  sqlite3_stmt* delete_schedule_ = nullptr;
  sqlite3_stmt* delete_schedule_history_ = nullptr;
  sqlite3_stmt* put_quota_count_ = nullptr;
  sqlite3_stmt* drop_quota_counts_ = nullptr;
  sqlite3_stmt* put_key_ = nullptr;
  sqlite3_stmt* expire_keys_ = nullptr;
  sqlite3_stmt* finish_key_ = nullptr;
  sqlite3_stmt* delete_key_ = nullptr;
  // Retention (ApplyPurge): each by the outcomes (queue, state, finished_at_ms) index; the
  // *_jobs_ statements delete the job rows of the outcomes the other then deletes.
  sqlite3_stmt* purge_oldest_ = nullptr;  // the N oldest-finished outcomes of a queue and state
  sqlite3_stmt* purge_oldest_jobs_ = nullptr;
  sqlite3_stmt* purge_before_ = nullptr;  // the same, only those finished by a time
  sqlite3_stmt* purge_before_jobs_ = nullptr;
  sqlite3_stmt* oldest_finish_ = nullptr;   // when the oldest row left finished
  sqlite3_stmt* namespace_pass_ = nullptr;  // kNamespacePassSql
  sqlite3_stmt* set_next_id_ = nullptr;
  sqlite3_stmt* insert_audit_ = nullptr;
  sqlite3_stmt* finish_jobs_ = nullptr;    // kFinishChunk live jobs' outcomes, RETURNING id
  sqlite3_stmt* delete_leases_ = nullptr;  // the leases of kFinishChunk ids
  std::vector<const JobRecord*> finish_run_;
  std::vector<JobId> finished_ids_;
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
  // What the PurgeFinished mutations of the commit in progress (then of the last successful
  // one) did, for TakePurgeOutcomes.
  std::vector<PurgeOutcome> outcomes_;
  // Reused JSON writer and buffers for the tags and errors columns, so that encoding a row does
  // not allocate once the buffers have grown. Defined in the .cc to keep RapidJSON out of here.
  struct JsonScratch;
  std::unique_ptr<JsonScratch> json_;

  std::vector<std::unique_ptr<Reader>> readers_;  // owned; fixed after Open()
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<Reader*> free_readers_;  // GUARDED_BY(pool_mu_)

  // The audit chain's head as last committed: read at open, replaced by the commit thread after
  // a COMMIT that appended entries (the in-progress head lives on Commit's stack, so a
  // rolled-back batch cannot move it); AuditHead() reads it from any thread.
  mutable std::mutex audit_mu_;
  audit::Head audit_head_;  // GUARDED_BY(audit_mu_)

  // Written by the commit thread, read by Stats() on any thread; a counter needs no ordering.
  std::atomic<std::uint64_t> commits_{0};
  // Read back from the writer connection at open; immutable afterwards (so Stats() may read them
  // from any thread without a lock).
  std::string journal_mode_;
  std::string synchronous_;
};

}  // namespace ym
