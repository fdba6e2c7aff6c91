// FaultStore: a Store decorator for fault tests. It forwards everything to the store it wraps
// and, on request, makes Commit() fail with kIoError without forwarding the batch, which is
// exactly the contract of a failed commit (nothing applied, store still usable).
//
// Ownership: it borrows `inner`, which must outlive it; the test owns both.
// Threads: the same as the wrapped store. The fault controls and counters are atomics, so a test
// thread may arm a fault while the commit writer runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace ym {

class FaultStore final : public Store {
 public:
  explicit FaultStore(Store& inner) : inner_(inner) {}

  // The next `n` Commit() calls fail (added to any failures still pending).
  void FailNextCommits(std::uint64_t n) { fail_next_.fetch_add(n, std::memory_order_relaxed); }
  // Every Commit() from now on fails, until Heal().
  void FailAllCommits() { fail_all_.store(true, std::memory_order_relaxed); }
  // Clears both kinds of armed failure.
  void Heal() {
    fail_all_.store(false, std::memory_order_relaxed);
    fail_next_.store(0, std::memory_order_relaxed);
  }

  std::uint64_t commits_attempted() const { return attempted_.load(std::memory_order_relaxed); }
  std::uint64_t commits_failed() const { return failed_.load(std::memory_order_relaxed); }
  std::uint64_t commits_succeeded() const { return succeeded_.load(std::memory_order_relaxed); }

  Status Commit(const Batch& batch) override;
  std::vector<PurgeOutcome> TakePurgeOutcomes() override { return inner_.TakePurgeOutcomes(); }
  Status Recover(std::int64_t now_ms, RecoveryVisitor& visitor) override {
    return inner_.Recover(now_ms, visitor);
  }
  Result<std::optional<JobRecord>> GetJob(JobId id) override { return inner_.GetJob(id); }
  Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                const std::string& key,
                                                                std::int64_t now_ms) override {
    return inner_.GetIdempotencyKey(ns, key, now_ms);
  }
  Result<std::vector<IdempotencyKeyRecord>> NamespaceKeys(const std::string& ns,
                                                          const std::string& after_key,
                                                          JobId max_job_id,
                                                          std::uint32_t limit) override {
    return inner_.NamespaceKeys(ns, after_key, max_job_id, limit);
  }

  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& query) override {
    return inner_.ListJobs(query);
  }
  Result<FinishedPage> SearchFinished(const FinishedSearch& query) override {
    return inner_.SearchFinished(query);
  }
  Status Backup(const std::string& path) override { return inner_.Backup(path); }
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& query) override {
    return inner_.CountFinished(query);
  }
  StoreStats Stats() override { return inner_.Stats(); }
  Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after_seq,
                                              std::uint32_t limit) override {
    return inner_.ReadAudit(after_seq, limit);
  }
  audit::Head AuditHead() override { return inner_.AuditHead(); }

 private:
  // Consumes one pending "fail next" if any; true if this commit must fail.
  bool TakeFault();

  Store& inner_;
  // Relaxed atomics: each is an independent flag or counter; no other memory is published
  // through them.
  std::atomic<std::uint64_t> fail_next_{0};
  std::atomic<bool> fail_all_{false};
  std::atomic<std::uint64_t> attempted_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> succeeded_{0};
};

}  // namespace ym
