// FairLanes: the dispatch order of one queue's lanes, fair between namespaces by weight.
//
// A queue's ready jobs sit in lanes keyed by (namespace, gate set) (core/scheduler.h). The unit
// of fairness is the namespace, not the lane: a namespace whose jobs spread over 1000 keyed
// lanes must not get 1000 times the share of one with a single lane. So the order is two-level:
//   * between namespaces, weighted fair queueing by virtual finish times (WeightedRotation,
//     core/flow/weighted_rotation.h): namespace n gets w_n / W of the jobs taken while it stays
//     backlogged, and one that enters waits at most sum over h of (floor(w_h / w_n) + 1) picks;
//   * inside a namespace, its lanes round-robin (one job, then the lane goes to the back);
//   * inside a lane, the scheduler's ready heap (priority, then ready order).
//
// The caller looks at Front(), then either takes a job from that lane (Served, or ServedLast
// when the lane has no job left), or takes the lane out without charging the namespace (Drop:
// the lane was refused by a gate or held only stale entries). A namespace with no lane left
// leaves the namespace rotation (its record is forgotten: it re-enters at the current virtual
// time, WeightedRotation "Why a lane re-enters"; the last group to leave keeps its record, so
// that a queue whose one namespace runs dry and refills allocates nothing). A lane may be pushed
// again later (its gate
// opened, it has jobs again); the caller keeps each lane in here at most once.
//
// While only one namespace has lanes, its lanes are kept apart, outside the rotation (there is
// no one to be fair to, and one FIFO per queue is all a job touches); a second namespace puts
// both into the rotation.
//
// Lanes are named by an opaque 64-bit key (the scheduler's LaneKey), so nothing here needs
// renaming when the caller moves its lane records around.
//
// Cost: Front O(1); Push, Served, ServedLast, Drop, SetWeight O(log namespaces in the rotation)
// (plus amortised O(1) for a namespace's FIFO). Memory: one FIFO entry per lane in the rotation
// and one record per namespace with a lane in it, plus one idle record.
//
// Pure and single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "common/status.h"
#include "core/fifo.h"
#include "core/flow/weighted_rotation.h"

namespace ym::flow {

class FairLanes {
 public:
  using Group = std::uint32_t;  // a namespace
  using LaneKey = std::uint64_t;

  struct Entry {
    Group group;
    LaneKey lane;
  };

  // Puts `lane` of `group` at the back of its group's lanes; the group enters the rotation with
  // `weight` (1..1000, clamped) if it had no lane in it.
  void Push(Group group, LaneKey lane, std::int64_t weight);
  // The lane the next job should come from; nullopt when no lane is in the rotation.
  std::optional<Entry> Front() const;
  // A job was taken from Front()'s lane: its group is charged one pick and the lane goes to the
  // back of its group's lanes (ServedLast: the lane leaves, it has no job left).
  void Served();
  void ServedLast();
  // Front()'s lane leaves the rotation without a charge (refused by a gate, or stale).
  void Drop();
  // The group's weight from now on (no-op for a group not in the rotation).
  void SetWeight(Group group, std::int64_t weight);
  void Clear();

  bool empty() const { return lanes_ == 0; }
  std::size_t lanes() const { return lanes_; }  // lanes in the rotation
  std::size_t groups() const;                   // groups with a lane in the rotation
  // Lane FIFO entries allocated (memory accounting).
  std::size_t capacity() const;

 private:
  static std::int64_t Clamp(std::int64_t w);
  void PopFront(bool charge, bool requeue);
  // The group's FIFO (created if needed), through a one-entry cache of the last group used.
  Fifo<LaneKey>& FifoOf(Group group);

  // Two or more groups: the rotation between them and their lanes, allocated only then, so
  // that a queue with one namespace (the common case) costs a FIFO and a few words.
  struct Multi {
    WeightedRotation rotation;
    std::unordered_map<Group, Fifo<LaneKey>> by_group;  // groups in the rotation, and idle
    std::optional<Group> idle;       // the last group to run out of lanes, kept for reuse
    Fifo<LaneKey>* cache = nullptr;  // FifoOf's cache: by_group[cache_group]
    Group cache_group = 0;
  };
  Multi& M();
  bool RotationEmpty() const;

  std::unique_ptr<Multi> multi_;
  // While a single group has lanes they are kept here, outside the rotation and the map: no
  // fairness to keep, and one contiguous buffer to touch per job.
  std::optional<Group> solo_;
  std::int64_t solo_weight_ = 1;
  Fifo<LaneKey> solo_lanes_;
  std::size_t lanes_ = 0;
};

}  // namespace ym::flow
