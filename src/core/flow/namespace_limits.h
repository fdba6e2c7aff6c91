// NamespaceLimits: per-namespace (tenant) limits checked at enqueue, and namespace weights.
//
// A namespace is configured by name (PUT /v1/namespaces/{ns}) with any of:
//   * max_live_jobs: at most this many live jobs (scheduled, ready or active, pending included);
//     an enqueue that would go past it is refused;
//   * enqueue_rate: at most `count` enqueues per `period_ms` with a `burst`, by the exact GCRA
//     of core/flow/gcra.h (the bound holds over every window); an enqueue that does not conform
//     is refused with the exact time the limiter opens;
//   * weight: the namespace's share among the namespaces of a queue (core/flow/fair_lanes.h);
//   * max_active: at most this many active (leased) jobs of the namespace at once, across all
//     its queues. Unlike the others it is enforced at dispatch, by the scheduler, as a lane-level
//     gate (core/flow/namespace_active.h); a ready job held back by it is `namespace_limit`.
// A refused enqueue changes nothing (the rate is charged only for admitted jobs). A batch of n
// jobs into one namespace is admitted whole or not at all (AdmitEnqueue with n).
//
// The live counts are the scheduler's (it knows when a job stops being live); this type holds
// the configuration and the rate state. The rate runs on the monotonic clock (a rate is about
// durations); its state is in memory only: a restart starts every namespace at rest (at most one
// extra burst per restart, documented in docs/flow-control.md).
//
// Pure and single-threaded (core thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/flow/gcra.h"
#include "core/flow/namespace_retention.h"

namespace ym::flow {

struct NamespaceSpec {
  static constexpr std::int64_t kMaxLiveJobs = 1'000'000'000;
  static constexpr std::int64_t kMaxActive = 1'000'000;

  std::string name;                           // IsValidName
  std::optional<std::int64_t> max_live_jobs;  // 1..kMaxLiveJobs
  std::optional<GcraConfig> enqueue_rate;     // GcraConfig::Validate bounds
  std::optional<std::int64_t> weight;         // 1..1000; absent: 1
  std::optional<std::int64_t> max_active;     // 1..kMaxActive
  // Age windows of its finished jobs, in every queue; the stricter of the queue's and these
  // wins (core/flow/namespace_retention.h). Empty: the queues' windows alone.
  NamespaceRetentionSpec retention;

  // kValidation naming the field and its allowed values; at least one member must be set.
  Status Validate() const;
  // {"max_live_jobs":N,"enqueue_rate":{"count":C,"period_ms":P,"burst":B},"weight":W,
  // "max_active":A,"retention":{"succeeded_ms":S,"dead_ms":D,"cancelled_ms":C}} (members absent
  // when unset): what the store keeps (a JSON member, so no
  // store format change) and what the API shows.
  std::string ToJson() const;
  // Parses ToJson's form and the API's (enqueue_rate may give "per": "second" | "minute" |
  // "hour" instead of period_ms; burst defaults to count) strictly: unknown members, wrong
  // types and out-of-range values are kValidation naming the field; then Validate().
  static Result<NamespaceSpec> FromJson(std::string_view name, std::string_view json);

  bool operator==(const NamespaceSpec&) const = default;
};

// Why an enqueue was refused.
struct NamespaceRefusal {
  enum class Limit : std::uint8_t { kMaxLiveJobs, kEnqueueRate };
  Limit limit;
  // How long until a retry may succeed: exact for the rate (the limiter's next open time minus
  // now; int64 max when the batch is larger than the burst, i.e. never as one batch), a hint
  // for max_live_jobs (kLiveRetryHintMs: a slot opens when a job of the namespace ends, which
  // is not known in advance).
  std::int64_t retry_after_ms;
  std::string message;
};

// A namespace as the API shows it: its configuration and its live count.
struct NamespaceInfo {
  NamespaceSpec spec;
  bool created = false;           // PutNamespace: it did not exist before
  std::uint64_t live_jobs = 0;    // scheduled + ready + active, pending included
  std::uint64_t active_jobs = 0;  // leased now (what max_active bounds)
};

// A page of GET /v1/namespaces.
struct NamespacePage {
  std::vector<NamespaceInfo> items;
  std::string next_after;  // resume after this name; empty when the listing is complete
};

class NamespaceLimits {
 public:
  static constexpr std::int64_t kLiveRetryHintMs = 1000;

  bool empty() const { return by_name_.empty(); }
  std::size_t size() const { return by_name_.size(); }

  // Creates or replaces (kValidation: nothing changes). The rate state is kept when the rate is
  // unchanged, else it restarts at rest.
  Status Put(const NamespaceSpec& spec, bool* created);
  bool Delete(const std::string& name);
  const NamespaceSpec* Find(std::string_view name) const;
  // Namespaces whose name sorts after `after`, in name order, at most `limit`.
  std::vector<const NamespaceSpec*> Page(const std::string& after, std::size_t limit,
                                         bool* more) const;
  // The weight of `name` (1 when not configured or without a weight).
  std::int64_t Weight(std::string_view name) const;
  // The max_active of `name` (nullopt when not configured or without one), and how many
  // namespaces have one (0: dispatch pays one branch, no lookup).
  std::optional<std::int64_t> MaxActive(std::string_view name) const;
  std::size_t with_max_active() const { return with_max_active_; }

  // May `n` jobs be enqueued into `name`, which holds `live` live jobs, at `now_mono`? nullopt
  // when yes. Check changes nothing; AdmitEnqueue also has the enqueue rate count them (unless
  // `with_rate` is false: a batch that Charged its rate up front). O(log namespaces).
  std::optional<NamespaceRefusal> Check(std::string_view name, std::uint64_t live, std::int64_t n,
                                        std::int64_t now_mono, bool with_rate = true) const;
  std::optional<NamespaceRefusal> AdmitEnqueue(std::string_view name, std::uint64_t live,
                                               std::int64_t n, std::int64_t now_mono,
                                               bool with_rate = true);
  // Has the enqueue rate count `n` jobs (after a Check that passed at the same `now_mono`).
  void Charge(std::string_view name, std::int64_t n, std::int64_t now_mono);
  // The earliest monotonic ms at which one enqueue into `name` conforms to its rate (now when
  // it has none or it is open), for the API's view.
  std::int64_t RateOpensAt(std::string_view name, std::int64_t now_mono) const;

 private:
  struct Entry {
    NamespaceSpec spec;
    std::optional<Gcra> rate;
    GcraTime tat;
  };
  std::map<std::string, Entry, std::less<>> by_name_;
  std::size_t with_max_active_ = 0;
};

}  // namespace ym::flow
