// LeaseScope: the namespaces a lease is limited to (a namespace-scoped worker token's lease,
// LeaseRequest::namespaces; docs/security.md "Namespace scoping"), and which of a queue's lanes
// such a lease takes its next job from.
//
// A queue's ready jobs sit in lanes keyed by (namespace, gate set), dispatched in the queue's
// fair rotation (core/flow/fair_lanes.h). An unlimited lease follows the rotation. A limited
// lease must not take another namespace's job, nor move another namespace's lane in the
// rotation, so it looks at the lanes of its namespaces only and takes, among those with a ready
// job, the one whose next job comes first in the queue's ready order (higher priority, then
// ready earlier): within its namespaces it behaves like one queue. The scheduler does the
// looking (it owns the lanes); this file holds the pure parts.
//
// Pure and single-threaded.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ym {

class LeaseScope {
 public:
  // Core's ids of `names`, through `find` (a name -> std::optional<std::uint32_t>; nullopt when
  // core holds nothing of that namespace, which then has no lane either).
  template <class Find>
  static LeaseScope Resolve(const std::vector<std::string>& names, Find&& find) {
    LeaseScope s;
    for (const std::string& n : names) {
      if (std::optional<std::uint32_t> id = find(n)) s.ids_.push_back(*id);
    }
    std::sort(s.ids_.begin(), s.ids_.end());
    s.ids_.erase(std::unique(s.ids_.begin(), s.ids_.end()), s.ids_.end());
    return s;
  }

  bool Allows(std::uint32_t ns) const { return std::binary_search(ids_.begin(), ids_.end(), ns); }
  // No namespace core knows: nothing can be leased.
  bool empty() const { return ids_.empty(); }

 private:
  std::vector<std::uint32_t> ids_;  // sorted, unique
};

// A lane a limited lease may take from, by its next ready job.
struct ScopedLaneCandidate {
  std::uint32_t lane = 0;
  std::int32_t priority = 0;
  std::uint64_t seq = 0;  // ready order: lower became ready earlier
};

// True when `a`'s next job runs before `b`'s: higher priority, then ready earlier (the order of
// a lane's own ready heap, so a single lane gives the same order as the rotation).
inline bool RunsBefore(const ScopedLaneCandidate& a, const ScopedLaneCandidate& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.seq < b.seq;
}

}  // namespace ym
