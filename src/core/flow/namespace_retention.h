// NamespaceRetention: a namespace's (tenant's) age windows for its finished jobs, and the
// purge passes that enforce them in every queue.
//
// The rule. A finished job of queue q and namespace n, in terminal state s, is kept at most
//
//     EffectiveWindowMs(q's window for s, n's window for s) = min of the two (n: none -> q's)
//
// after it finished: the stricter of the two wins, so a tenant's "keep my data at most 7 days"
// holds in every queue it uses, and a queue's shorter window still applies to the tenant's jobs.
// A queue's count caps (max_succeeded, ...) apply as before; a namespace has windows only.
//
// How. The queue side is RetentionWork's (core/retention_work.h), unchanged. This type runs the
// namespace side: at every retention sweep it queues one *pass* per (namespace, state) with a
// window; a pass is a sequence of PurgeFinished mutations naming the namespace, each of which
// the store executes through its (state, ns, id) index of finished jobs: from the pass's cursor
// in id order, at most `examine` rows, deleting those that finished at or before the pass's
// cutoff (now - window, fixed when the pass starts), and stopping at the first row *created*
// after the cutoff: creation times never decrease in id order, and a job cannot finish before
// it was created, so no later row can be due. The store reports the id to resume after (0: the
// pass is complete). A pass therefore reads the rows it deletes, plus the rows created before
// the cutoff that finished after it (jobs that ran or waited long), plus one: a sweep that
// finds nothing due costs one index probe per (namespace, state) with a window, never a scan of
// the namespace's or the store's jobs.
//
// Pure and single-threaded (core thread): time is passed in.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "store/batch.h"

namespace ym::flow {

// A namespace's windows (ms after finishing; 0: purged at the next sweep); absent: the queue's.
struct NamespaceRetentionSpec {
  static constexpr std::int64_t kMaxWindowMs = 3650LL * 24 * 3600 * 1000;  // as a queue's

  std::optional<std::int64_t> succeeded_ms;
  std::optional<std::int64_t> dead_ms;
  std::optional<std::int64_t> cancelled_ms;

  std::optional<std::int64_t> WindowMs(JobState s) const {
    return s == JobState::kSucceeded ? succeeded_ms : s == JobState::kDead ? dead_ms : cancelled_ms;
  }
  bool empty() const { return !succeeded_ms && !dead_ms && !cancelled_ms; }
  bool operator==(const NamespaceRetentionSpec&) const = default;
};

// How long a finished job is kept: the stricter (shorter) of its queue's and its namespace's
// windows for its state.
std::int64_t EffectiveWindowMs(std::int64_t queue_window_ms,
                               std::optional<std::int64_t> namespace_window_ms);

class NamespaceRetention {
 public:
  // Sets (or, with an empty spec, clears) the windows of namespace `ns`. A pass in flight keeps
  // running with its cutoff; the next sweep uses the new windows.
  void Configure(const std::string& ns, const NamespaceRetentionSpec& spec);
  // Queues a pass for every (namespace, state) with a window that has no pass queued or in
  // flight, with cutoff now_ms - window. O(namespaces with windows).
  void Scan(std::int64_t now_ms);
  // Appends purges of queued passes, oldest queued first, at most `max_purges`, each examining
  // at most `examine` rows. A pass handed out is in flight until its outcome. Returns the count.
  std::size_t Plan(std::uint64_t examine, std::size_t max_purges, std::vector<Mutation>& out);
  // The store's report of a namespace purge (outcome.ns non-empty): a pass with more to read
  // is queued again from outcome.resume_after, else it is complete.
  void OnOutcome(const PurgeOutcome& outcome);

  bool has_due() const { return !queued_.empty(); }
  std::size_t configured() const { return windows_.size(); }
  // Rows the passes deleted so far (for tests and metrics).
  std::uint64_t deleted() const { return deleted_; }
  // Whether a pass of (ns, state) is queued or in flight.
  bool InPass(const std::string& ns, JobState s) const;

 private:
  struct Pass {
    bool active = false;  // queued or in flight
    bool in_flight = false;
    std::int64_t cutoff_ms = 0;
    JobId after = 0;
  };
  struct Entry {
    NamespaceRetentionSpec spec;
    std::array<Pass, 3> passes;
  };
  static std::size_t Slot(JobState s) { return static_cast<std::size_t>(s) - 3; }
  static JobState StateOf(std::size_t slot) { return static_cast<JobState>(slot + 3); }

  std::map<std::string, Entry, std::less<>> windows_;  // namespaces with a spec, or a pass
  std::deque<std::pair<std::string, JobState>> queued_;
  std::uint64_t deleted_ = 0;
};

}  // namespace ym::flow
