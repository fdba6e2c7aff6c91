// SchedulerLoader: feeds what Store::Recover streams into a fresh Scheduler.
//
// The Broker uses it at start and when it rebuilds its state after a failed commit; tests that
// restart a scheduler on a real store use the same one, so a restart in a test recovers exactly
// what a restart of the server does. Single-threaded: it lives for one Recover() call on the
// thread that owns the scheduler being built.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/scheduler.h"
#include "net/codec_schedules.h"
#include "store/store.h"

namespace ym {

class SchedulerLoader final : public RecoveryVisitor {
 public:
  // At most `max_keys` idempotency keys, the newest, are loaded into the scheduler's cache (the
  // rest stay in the store); the Broker passes SchedulerOptions::idempotency_cache_keys.
  explicit SchedulerLoader(Scheduler& s, std::uint64_t max_keys = ~std::uint64_t{0})
      : s_(s), max_keys_(max_keys) {}

  void OnNextId(JobId next_id) override { s_.LoadNextId(next_id); }
  void OnLastCreatedAt(std::int64_t created_at_ms) override { s_.LoadLastCreatedAt(created_at_ms); }
  void OnQueue(const QueueConfig& config) override { s_.LoadQueue(config); }
  // A stored limit that does not parse (a hand-edited file) is not enforced; it is counted and
  // the first error kept, for the caller to report.
  void OnLimit(const std::string& name, const std::string& spec_json) override {
    Status s = s_.LoadLimit(name, spec_json);
    if (!s.ok()) {
      if (bad_limits_ == 0) first_bad_limit_ = "limit " + name + ": " + s.message();
      ++bad_limits_;
    }
  }
  // The same for a stored namespace configuration (counted with the limits).
  void OnNamespace(const std::string& name, const std::string& spec_json) override {
    Status s = s_.LoadNamespace(name, spec_json);
    if (!s.ok()) {
      if (bad_limits_ == 0) first_bad_limit_ = "namespace " + name + ": " + s.message();
      ++bad_limits_;
    }
  }
  void OnQuotaCount(const std::string& limit, const std::string& key, std::int64_t window_start_ms,
                    std::int64_t used) override {
    s_.LoadQuotaCount(limit, key, window_start_ms, used);
  }
  void OnIdempotencyKey(const IdempotencyKeyRecord& key) override { s_.LoadIdempotencyKey(key); }
  std::uint64_t MaxIdempotencyKeys() const override { return max_keys_; }
  void OnIdempotencyKeysOmitted(std::int64_t max_expires_at_ms) override {
    s_.LoadIdempotencyKeysOmitted(max_expires_at_ms);
  }
  void OnFinished(const std::string& queue, JobState state, std::uint64_t count,
                  std::int64_t oldest_ms) override {
    s_.LoadFinished(queue, state, count, oldest_ms);
  }
  void OnLiveJob(JobRecord&& job) override {
    s_.LoadJob(std::move(job));
    ++jobs_;
  }
  // A stored schedule, its spec parsed as the API parses it (net/codec_schedules.h); one that
  // no longer parses (a hand-edited file, a zone gone from tzdata) is not loaded: counted with
  // the limits, and its row is kept untouched.
  void OnSchedule(cron::ScheduleRow&& row) override {
    auto spec = net::ParseStoredSchedule(row.id, row.spec_json);
    if (!spec.ok()) {
      if (bad_limits_ == 0)
        first_bad_limit_ = "schedule " + row.id + ": " + spec.status().message();
      ++bad_limits_;
      return;
    }
    s_.LoadSchedule(std::move(spec).value(), std::move(row));
    ++schedules_;
  }

  // API tokens are not the scheduler's: kept here for the Broker to hand to the token service.
  void OnApiToken(ApiTokenRow&& row) override { api_tokens_.push_back(std::move(row)); }
  std::vector<ApiTokenRow>& api_tokens() { return api_tokens_; }

  // Live jobs loaded so far.
  std::uint64_t jobs() const { return jobs_; }
  std::uint64_t schedules() const { return schedules_; }
  // Stored limits that could not be loaded, and the first one's error.
  std::uint64_t bad_limits() const { return bad_limits_; }
  const std::string& first_bad_limit() const { return first_bad_limit_; }

 private:
  Scheduler& s_;
  std::uint64_t max_keys_;
  std::uint64_t jobs_ = 0;
  std::uint64_t schedules_ = 0;
  std::uint64_t bad_limits_ = 0;
  std::string first_bad_limit_;
  std::vector<ApiTokenRow> api_tokens_;
};

}  // namespace ym
