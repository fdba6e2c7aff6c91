// FinishedCounts: how many terminal jobs (succeeded, dead, cancelled) each queue holds in a
// store, kept in memory and maintained by the commits, so that `GET /v1/queues` reads a page of
// counts in O(page + log queues) instead of counting every finished row per call.
//
// The SQLite store loads the counts once at open (one scan of the partial terminal index) and
// then applies the row changes its commits make: each statement of Commit that adds or removes a
// terminal row reports it as a delta (AddPending; docs/storage-format.md, "Finished counts"),
// and the deltas of a transaction
// become visible only when it commits (Publish) or are dropped when it rolls back (Discard). So
// readers always see the counts of the last committed state, like the store's other reads.
//
// Threading: AddPending/Publish/Discard/Load run on the store's writer thread (one at a time);
// Query may run on any thread concurrently with them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/job.h"
#include "store/store.h"

namespace ym {

class FinishedCounts {
 public:
  // Replaces the published counts (recovery). `counts` need not be sorted; zero counts are
  // ignored.
  void Load(const std::vector<FinishedCount>& counts);
  // A terminal row of `state` in `queue` appeared (+1) or went away (-1) in the open
  // transaction. Non-terminal states are ignored.
  void AddPending(std::string_view queue, JobState state, std::int64_t delta);
  void Publish();
  void Discard();
  // The count of one queue and state as the open transaction leaves it (published plus
  // pending). Writer thread only.
  std::uint64_t Current(const std::string& queue, JobState state) const;
  // The counts of `query` in queue name order (zero counts omitted).
  std::vector<FinishedCount> Query(const FinishedCountQuery& query) const;
  // Queues with at least one terminal job (tests, metrics).
  std::size_t queues() const;

 private:
  using Counts = std::array<std::uint64_t, 3>;  // succeeded, dead, cancelled
  using Deltas = std::array<std::int64_t, 3>;
  static void Append(const std::string& queue, const Counts& c, std::vector<FinishedCount>& out);

  mutable std::mutex mu_;
  std::map<std::string, Counts, std::less<>> counts_;  // GUARDED_BY(mu_); no all-zero entry
  std::unordered_map<std::string, Deltas> pending_;    // writer thread only
};

}  // namespace ym
