// MemoryStore: a Store that keeps everything in process memory, for unit tests of higher layers.
//
// Same observable semantics as SqliteStore (docs/storage-format.md): atomic batches applied in
// order, an UpdateJob rewrites only the mutable fields and is a no-op for a missing id, an
// InsertJob of an existing id fails the whole batch, next_id is the maximum of every committed
// Batch::next_id and (largest id ever inserted) + 1, purges touch terminal jobs only, recovery
// returns unexpired keys and live jobs in ascending id order. "Durable" means for the life of
// the object: tests that reopen a store keep the same MemoryStore.
//
// Ownership: whoever creates it (a test fixture). Threads: every method may be called from any
// thread; one mutex serialises them all, which is fine for tests and keeps reads consistent.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace ym {

class MemoryStore final : public Store {
 public:
  MemoryStore() = default;

  Status Commit(const Batch& batch) override;
  std::vector<PurgeOutcome> TakePurgeOutcomes() override;
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
  // A scan in id order, each job one candidate: the reference the SQLite store's indexed
  // search is checked against (store_test.cc).
  Result<FinishedPage> SearchFinished(const FinishedSearch& query) override;
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) override;
  // Writes nothing to disk: records a snapshot under `path` for RestoreBackup(); fails with
  // kInvalidRequest if a snapshot under `path` exists, like SqliteStore for an existing file.
  Status Backup(const std::string& path) override;
  StoreStats Stats() override;
  Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after_seq,
                                              std::uint32_t limit) override;
  audit::Head AuditHead() override;

  // A new store holding the state captured by Backup(path), or nullptr if there was none.
  std::unique_ptr<MemoryStore> RestoreBackup(const std::string& path);

 private:
  using KeyId = std::pair<std::string, std::string>;  // (ns, key)

  struct State {
    std::map<JobId, JobRecord> jobs;
    std::map<std::string, QueueConfig> queues;
    std::map<std::string, std::string> limits;      // name -> spec JSON
    std::map<std::string, std::string> namespaces;  // name -> spec JSON
    // id -> row, its whole kept history (oldest first, at most kScheduleHistory) in new_history.
    std::map<std::string, cron::ScheduleRow> schedules;
    // (limit, key) -> (window start, used), as PutQuotaCount keeps them.
    std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::int64_t>> quota;
    std::map<KeyId, IdempotencyKeyRecord> keys;
    std::map<std::string, ApiTokenRow> api_tokens;  // id -> row
    JobId next_id = 1;
    std::vector<audit::Entry> audit;  // audit[i].seq == i + 1
    audit::Head audit_head;
  };

  std::mutex mu_;
  State state_;                           // GUARDED_BY(mu_)
  std::map<std::string, State> backups_;  // GUARDED_BY(mu_)
  std::uint64_t commits_ = 0;             // GUARDED_BY(mu_)
  std::vector<PurgeOutcome> outcomes_;    // GUARDED_BY(mu_): of the last successful Commit
};

}  // namespace ym
