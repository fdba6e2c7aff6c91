// WeightedRotation: weighted fair choice among lanes, by virtual finish times.
//
// Lanes (a queue's namespaces, the queues of one lease request, ...) carry integer weights
// 1..1000. While lanes stay in the rotation, lane i receives w_i / W of the picks (W: the sum of
// the weights in the rotation), smoothly interleaved rather than in bursts. Lanes leave the
// rotation when they are blocked (empty, rate-limited, capped) and come back when unblocked.
//
// The model (self-clocked fair queueing with unit costs). Virtual time V advances as picks are
// made. Each lane in the rotation has a tag F: the virtual time at which its next pick
// "finishes". Pick() takes the lane with the smallest F (ties: the lane whose tag was set
// first), sets V = F and charges the lane one pick: F += 1 / w. Every tag in the rotation stays in
// [V, V + 1].
//
// Guarantees (unit costs, lanes continuously in the rotation from a common start):
//   * after n picks, lane i has at least n * w_i / W - 1 picks: never behind its fair share by
//     more than one pick (and each W consecutive picks from the start give exactly w_i each);
//     with two lanes, neither is ahead by more than one pick (3:1 gives A A B A, A A B A, ...);
//   * a lane that enters (new, or unblocked) gets F in (V, V + 1/w]: it is picked before any
//     lane h is picked more than floor(w_h / w) + 1 times, so a cold lane entering next to hot
//     ones waits at most sum over h of (floor(w_h / w) + 1) picks, however long they ran.
//
// Why an entering lane starts at the current virtual time. A lane that was out of the rotation
// (blocked by a limit, or empty) received nothing meanwhile; if it kept its old tag, it would
// now be far behind V and would take every pick until it "caught up", a burst that starves the
// lanes that were served all along and defeats the very limit that blocked it. Starting at V
// means the time out is neither credited nor charged. Leaving and re-entering must not be a way
// to jump the queue either, so a lane re-entering keeps its old tag if that is still ahead of V
// (F = max(F_old, V + 1/w), see below for the rounding).
//
// Exact integers. A tag is kept as m / w with the lane's own weight w (an integer m), so a pick
// adds exactly 1 to m and two tags compare by cross-multiplication, m_a * w_b vs m_b * w_a. An
// entering lane gets m = floor(V * w) + 1, the first multiple of 1/w above V (in (V, V + 1/w]:
// no more credit than a fraction of one of its own picks, and no accumulation). V is itself a
// tag, m / w of the lane just picked. Rebasing keeps the numbers small: when V passes
// `rebase_at` (2^40 by default, after at least 2^40 picks since V grows by at most 1 per pick),
// its whole part B is subtracted from every tag (m -= B * w), which changes no comparison. So
// every m stays below (2^40 + 2) * 1000 < 2^50 and every cross product below 2^60: nothing can
// overflow int64, however long it runs. A rebase is O(lanes known), at most once per 2^40 picks.
//
// Cost: a binary heap of the lanes in the rotation with each lane's position kept, so Pick,
// Add and Remove are O(log lanes); memory is one record per lane known (in the rotation or
// blocked) until Forget.
//
// Pure and single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace ym::flow {

class WeightedRotation {
 public:
  using LaneId = std::uint64_t;
  static constexpr std::int64_t kMinWeight = 1;
  static constexpr std::int64_t kMaxWeight = 1000;
  static constexpr std::int64_t kDefaultRebaseAt = std::int64_t{1} << 40;

  // kValidation unless 1 <= weight <= 1000.
  static Status ValidateWeight(std::int64_t weight);

  // `rebase_at` (1..2^40) exists for tests, which make rebases frequent.
  explicit WeightedRotation(std::int64_t rebase_at = kDefaultRebaseAt);

  // Puts a lane into the rotation: a new lane, or a known one coming back (unblocked), at the
  // current virtual time unless its old tag is still ahead of it. kValidation for a bad weight,
  // kInvalidState if it is already in the rotation. A known lane takes the new weight.
  Status Add(LaneId id, std::int64_t weight);
  // Takes a lane out of the rotation (blocked), keeping its tag. kNotFound for an unknown lane,
  // kInvalidState if it is not in the rotation.
  Status Remove(LaneId id);
  // Forgets a lane entirely (in the rotation or not); it would re-enter as new. No-op if unknown.
  void Forget(LaneId id);
  // Changes a known lane's weight; its tag is kept as a virtual time, rounded up to the new
  // weight's grid (no credit) but not past V + 1 (the new weight's pick length from V at most
  // one). kValidation / kNotFound.
  Status SetWeight(LaneId id, std::int64_t weight);

  // The lane the next Pick would return, without charging it; nullopt when the rotation is empty.
  std::optional<LaneId> Peek() const;
  // Charges the lane with the smallest tag one pick and returns it; nullopt when empty.
  std::optional<LaneId> Pick();

  bool Known(LaneId id) const { return ids_.count(id) != 0; }
  bool InRotation(LaneId id) const;
  std::size_t active() const { return heap_.size(); }  // lanes in the rotation
  std::size_t known() const { return ids_.size(); }    // lane records held
  // Tag comparisons made so far (tests bound the cost per pick with it) and rebases done.
  std::uint64_t comparisons() const { return comparisons_; }
  std::uint64_t rebases() const { return rebases_; }

 private:
  static constexpr std::uint32_t kOut = 0xffffffffu;  // heap position of a lane not in rotation

  struct Lane {
    LaneId id = 0;
    std::int64_t weight = 1;
    std::int64_t m = 0;        // tag = m / weight
    std::uint64_t seq = 0;     // when the tag was set: FIFO among equal tags
    std::uint32_t pos = kOut;  // index in heap_, or kOut
  };

  // The slot of a known lane, through a one-entry cache of the last lane looked up (a lane that
  // leaves and comes back, as a queue's single namespace does, costs no hash lookup).
  std::optional<std::uint32_t> FindSlot(LaneId id) const;
  // Tag of a before tag of b (then older seq first). Counts a comparison.
  bool Less(std::uint32_t a, std::uint32_t b) const;
  void SiftUp(std::uint32_t i);
  void SiftDown(std::uint32_t i);
  void Place(std::uint32_t i, std::uint32_t slot) {
    heap_[i] = slot;
    lanes_[slot].pos = i;
  }
  void HeapErase(std::uint32_t slot);
  // floor(V * w) + 1: the entry tag numerator for weight w.
  std::int64_t EntryM(std::int64_t w) const { return vm_ * w / vw_ + 1; }
  void Rebase();

  std::int64_t rebase_at_;
  std::int64_t vm_ = 0;  // V = vm_ / vw_
  std::int64_t vw_ = 1;
  std::uint64_t next_seq_ = 0;
  std::unordered_map<LaneId, std::uint32_t> ids_;  // lane id -> slot in lanes_
  std::vector<Lane> lanes_;
  std::vector<std::uint32_t> free_;  // reusable slots of lanes_
  std::vector<std::uint32_t> heap_;  // slots, min-heap by tag
  mutable std::uint64_t comparisons_ = 0;
  mutable bool cached_ = false;  // FindSlot's cache; cleared by Forget (slots are reused)
  mutable LaneId cached_id_ = 0;
  mutable std::uint32_t cached_slot_ = 0;
  std::uint64_t rebases_ = 0;
};

}  // namespace ym::flow
