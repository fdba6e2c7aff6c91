// Store: the narrow persistence interface core semantics are built on.
//
// All scheduling semantics live in core; a store only persists and reloads records, so a second
// implementation (PostgreSQL for cluster mode) has little to get wrong. Implementations:
//   SqliteStore  (store/sqlite_store.h)  the embedded default, WAL + synchronous=FULL
//   MemoryStore  (store/memory_store.h)  for tests; durable for the life of the object
//   FaultStore   (store/fault_store.h)   wraps another store and injects failures in tests
//
// Threading: Commit() and Recover() are called from one thread at a time (the commit writer, or
// the starting server before any writer exists). GetJob(), ListJobs() and Stats() may be called
// concurrently from any thread, including while a Commit() is running; they see committed data
// only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/job.h"
#include "core/job_filter.h"
#include "core/queue_config.h"
#include "store/api_token_row.h"
#include "store/batch.h"

namespace ym {

enum class Durability {
  kFull,     // every commit is fsynced before Commit() returns (the default)
  kRelaxed,  // commits reach the OS but are not fsynced: a power loss may lose the last ones
};

// What recovery hands back to the caller, one call per record.
class RecoveryVisitor {
 public:
  virtual ~RecoveryVisitor() = default;
  virtual void OnNextId(JobId next_id) = 0;
  // The creation time of the stored job with the highest id, if any job is stored: creation
  // times never decrease in id order (Scheduler::Enqueue), across restarts too.
  virtual void OnLastCreatedAt(std::int64_t created_at_ms) {}
  virtual void OnQueue(const QueueConfig& config) = 0;
  // Each stored limit (name order), before any live job, so that recovered leases count toward
  // its caps. `spec_json` is what PutLimit stored.
  virtual void OnLimit(const std::string& name, const std::string& spec_json) {}
  // A stored namespace configuration (PutNamespace's spec_json); before the jobs.
  virtual void OnNamespace(const std::string& name, const std::string& spec_json) {}
  // Each stored quota count (PutQuotaCount), after the limits and before any live job.
  virtual void OnQuotaCount(const std::string& limit, const std::string& key,
                            std::int64_t window_start_ms, std::int64_t used) {}
  // Unexpired idempotency keys, latest expiry first, at most MaxIdempotencyKeys() of them (the
  // rest stay on disk); if there were more, OnIdempotencyKeysOmitted(the latest expiry among
  // those not visited).
  virtual void OnIdempotencyKey(const IdempotencyKeyRecord& key) = 0;
  virtual std::uint64_t MaxIdempotencyKeys() const { return ~std::uint64_t{0}; }
  virtual void OnIdempotencyKeysOmitted(std::int64_t max_expires_at_ms) {}
  // How many finished jobs of `state` `queue` holds and when the oldest of them finished, for
  // every queue and terminal state with any (what retention has to purge). Before the jobs.
  virtual void OnFinished(const std::string& queue, JobState state, std::uint64_t count,
                          std::int64_t oldest_ms) {}
  // Called for every job whose stored state is not terminal, in ascending id order.
  virtual void OnLiveJob(JobRecord&& job) = 0;
  // Each stored schedule (id order), after the live jobs, with its stored history (oldest
  // first) in `row.new_history`.
  virtual void OnSchedule(cron::ScheduleRow&& row) {}
  // Each stored API token (id order), revoked ones included; after the schedules.
  virtual void OnApiToken(ApiTokenRow&& row) {}
};

// A page query over stored jobs (used for terminal jobs; live jobs are answered by core).
struct StoreListQuery {
  std::string queue;             // empty: any queue
  std::vector<JobState> states;  // empty: any state
  JobId after_id = 0;            // exclusive lower bound on id (the cursor)
  std::uint32_t limit = 100;     // at most this many results
};

// A bounded search of stored terminal jobs by a JobFilter (GET /v1/jobs, bulk operations).
// Only the filter's terminal states are searched (live jobs are answered by core); a filter
// that admits none finds nothing.
struct FinishedSearch {
  JobFilter filter;
  JobId after_id = 0;         // exclusive lower bound on id (the cursor)
  std::uint32_t limit = 100;  // at most this many results
  // Examine at most this many candidates (index entries of the most selective indexed filter)
  // before answering: the cost of one call is bounded whatever the filter selects, and a call
  // may return fewer than `limit` jobs (even none) with a resume point.
  std::uint32_t max_examined = 4096;
};

struct FinishedPage {
  std::vector<JobRecord> jobs;  // matching jobs in ascending id order, at most `limit`
  // Every matching job with after_id < id <= resume_after is in `jobs`; search on after it.
  // 0 when the search reached the end (nothing matches after the last job returned).
  JobId resume_after = 0;
  std::uint32_t examined = 0;  // candidates examined (<= max_examined)
};

// How many terminal jobs of one state a queue holds.
struct FinishedCount {
  std::string queue;
  JobState state = JobState::kSucceeded;
  std::uint64_t count = 0;
};

// Which finished counts to read: one queue, or a page of queues in name order.
struct FinishedCountQuery {
  std::string queue;  // non-empty: only this queue (`after` and `max_queues` are ignored)
  std::string after;  // only queues whose name sorts after this one (byte order)
  std::uint32_t max_queues = UINT32_MAX;  // at most this many distinct queues
};

struct StoreStats {
  std::uint64_t file_bytes = 0;  // main database file
  std::uint64_t wal_bytes = 0;   // write-ahead log, if any
  std::uint64_t commits = 0;     // successful Commit() calls since open
  // The durability settings in effect, as the engine reports them (for SQLite, read back with
  // PRAGMA after they were set, so a setting that did not take is visible): e.g. "wal", "full".
  // Empty for stores without such settings.
  std::string journal_mode;
  std::string synchronous;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies every mutation of `batch` atomically and, with Durability::kFull, durably.
  // Returns kIoError when nothing was applied (disk full, fsync failure, ...); the store stays
  // usable and consistent with its last successful commit.
  virtual Status Commit(const Batch& batch) = 0;

  // What each PurgeFinished of the last successful Commit did, in batch order, and forgets it.
  // Called by the committing thread right after Commit.
  virtual std::vector<PurgeOutcome> TakePurgeOutcomes() = 0;

  // Streams the durable state to `visitor`: next id, queue configs, the newest unexpired
  // idempotency keys (expires_at_ms > now_ms, see RecoveryVisitor), then every live job in
  // ascending id order.
  virtual Status Recover(std::int64_t now_ms, RecoveryVisitor& visitor) = 0;

  // The stored record of a job, or nullopt when none exists.
  virtual Result<std::optional<JobRecord>> GetJob(JobId id) = 0;

  // Jobs matching `query` in ascending id order.
  virtual Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& query) = 0;

  // Terminal jobs matching `query.filter`, bounded by query.max_examined (FinishedSearch). Same
  // threading as GetJob. The SQLite store answers from an index chosen by the filter
  // (docs/storage-format.md, "Search"), so a call's cost does not grow with the number of jobs.
  virtual Result<FinishedPage> SearchFinished(const FinishedSearch& query) = 0;

  // The idempotency key (ns, key) if it is stored and unexpired (expires_at_ms > now_ms).
  // Same threading as GetJob.
  virtual Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                        const std::string& key,
                                                                        std::int64_t now_ms) = 0;

  // The idempotency keys of namespace `ns` whose key sorts after `after_key` and whose job id is
  // at most `max_job_id`, in key order, at most `limit` of them, expired or not (a namespace
  // wipe, core/namespace_wipe.h). Same threading as GetJob. The SQLite store reads them through
  // the table's (ns, key) key.
  virtual Result<std::vector<IdempotencyKeyRecord>> NamespaceKeys(const std::string& ns,
                                                                  const std::string& after_key,
                                                                  JobId max_job_id,
                                                                  std::uint32_t limit) = 0;

  // Counts of stored terminal jobs per queue and state, for the queues `query` selects, in
  // queue name order (zero counts omitted). Same threading as GetJob. The SQLite store keeps
  // the counts in memory (store/finished_counts.h): O(queues returned + log queues), never a
  // scan of the finished rows.
  virtual Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) = 0;

  // A page of the jobs of namespace `ns`, live and finished, as stored (namespace export,
  // docs/api.md): ascending id after `after_id`, at most `limit` of them, examining at most
  // `max_examined` stored jobs (in id order), so a page's cost is bounded whatever the other
  // namespaces hold; resume_after as FinishedPage's (0: no stored job after the page). Same
  // threading as GetJob. This default pages through ListJobs; a store may do it cheaper.
  virtual Result<FinishedPage> NamespaceJobs(const std::string& ns, JobId after_id,
                                             std::uint32_t limit, std::uint32_t max_examined) {
    StoreListQuery q;
    q.after_id = after_id;
    q.limit = std::max<std::uint32_t>(max_examined, 1);
    auto rows = ListJobs(q);
    if (!rows.ok()) return rows.status();
    FinishedPage page;
    for (JobRecord& j : *rows) {
      ++page.examined;
      if (j.ns == ns) {
        page.jobs.push_back(std::move(j));
        if (page.jobs.size() >= limit) {
          page.resume_after = page.jobs.back().id;
          return page;
        }
      }
    }
    // A full read may have more after it; a short one reached the end.
    page.resume_after = rows->size() == q.limit ? rows->back().id : 0;
    return page;
  }

  // Writes a consistent copy of the store to `path` (which must not exist) while it stays online.
  virtual Status Backup(const std::string& path) = 0;

  virtual StoreStats Stats() = 0;

  // The audit log (store/audit_chain.h): the entries with seq > after_seq in ascending seq
  // order, at most `limit`, as stored (a tampered row is returned as it is; verifying is the
  // reader's job). Same threading as GetJob.
  virtual Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after_seq,
                                                      std::uint32_t limit) = 0;
  // The audit chain's head as last committed (seq 0 and the genesis hash when empty): read at
  // open, advanced by each Commit holding AppendAudit. Any thread.
  virtual audit::Head AuditHead() = 0;
};

struct SqliteOptions {
  std::string path;  // database file; its directory must exist
  Durability durability = Durability::kFull;
  int reader_connections = 4;
  // The SQLite VFS (OS interface) every connection opens the file through; empty: SQLite's
  // default. Only tests set it, to run the store over a fault-injecting VFS that can simulate a
  // power loss (tests/unit/power_loss_vfs.h).
  std::string vfs;
};

// Opens (creating if needed) and migrates the SQLite store. Defined in store/sqlite_store.cc.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace ym
