// NamespaceActive: how many jobs of each namespace are active (leased), and the lanes waiting
// for a namespace at its `max_active` (NamespaceSpec::max_active) to drop below it.
//
// The scheduler enforces max_active at dispatch as a lane-level gate, like a concurrency cap
// (docs/flow-control.md, "Namespace limits"): before a lane's gates are asked, its namespace
// must have room (HasRoom); if it has none, the whole lane leaves the rotation and registers
// here (Wait), so a namespace at its max_active costs nothing per blocked job and is never
// scanned. When one of the namespace's active jobs ends (Ended) and the count drops below the
// cap, every lane waiting on it is handed back (they re-check: those refused again register
// again). A changed or removed cap hands them back too (Reopen).
//
// Counts are kept for every namespace, capped or not (one increment per start and one
// decrement per end), so a max_active configured later applies at once to the jobs already
// running. The cap itself is the caller's (looked up by namespace name in NamespaceLimits):
// namespace ids are interned and this type never outlives a name's meaning.
//
// Pure and single-threaded (core thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/flow/limit_set.h"

namespace ym::flow {

class NamespaceActive {
 public:
  // An active job of `ns` started. O(1) amortised.
  void Started(std::uint32_t ns);
  // An active job of `ns` ended. When the count is now below `cap`, the lanes waiting on `ns`
  // are appended to `woken`. kInvalidState, changing nothing, without a matching Started.
  Status Ended(std::uint32_t ns, std::optional<std::int64_t> cap, std::vector<LaneRef>& woken);
  std::uint64_t Active(std::uint32_t ns) const { return ns < active_.size() ? active_[ns] : 0; }
  // May one more job of `ns` start under `cap` (nullopt: no cap)?
  bool HasRoom(std::uint32_t ns, std::optional<std::int64_t> cap) const {
    return !cap || Active(ns) < static_cast<std::uint64_t>(*cap);
  }
  // A lane of `ns` that HasRoom refused: it waits until Ended or Reopen hands it back.
  void Wait(std::uint32_t ns, const LaneRef& lane);
  // The cap of `ns` changed or went: its waiting lanes are appended to `woken`.
  void Reopen(std::uint32_t ns, std::vector<LaneRef>& woken);
  // Forgets every registration (the scheduler put every lane back into the rotation).
  void ClearWaits() { waits_.clear(); }
  // Lanes registered, across namespaces (footprint, tests).
  std::size_t waiting_lanes() const;

 private:
  std::vector<std::uint64_t> active_;  // by namespace id
  std::unordered_map<std::uint32_t, std::vector<LaneRef>> waits_;
};

}  // namespace ym::flow
