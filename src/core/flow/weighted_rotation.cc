#include "core/flow/weighted_rotation.h"

#include <algorithm>
#include <string>

namespace ym::flow {

Status WeightedRotation::ValidateWeight(std::int64_t weight) {
  if (weight < kMinWeight || weight > kMaxWeight) {
    return Validation("weight must be " + std::to_string(kMinWeight) + ".." +
                      std::to_string(kMaxWeight) + ", got " + std::to_string(weight));
  }
  return Status::Ok();
}

WeightedRotation::WeightedRotation(std::int64_t rebase_at)
    : rebase_at_(std::clamp<std::int64_t>(rebase_at, 1, kDefaultRebaseAt)) {}

std::optional<std::uint32_t> WeightedRotation::FindSlot(LaneId id) const {
  if (cached_ && cached_id_ == id) return cached_slot_;
  auto it = ids_.find(id);
  if (it == ids_.end()) return std::nullopt;
  cached_ = true;
  cached_id_ = id;
  cached_slot_ = it->second;
  return it->second;
}

bool WeightedRotation::InRotation(LaneId id) const {
  const std::optional<std::uint32_t> slot = FindSlot(id);
  return slot && lanes_[*slot].pos != kOut;
}

Status WeightedRotation::Add(LaneId id, std::int64_t weight) {
  YM_RETURN_IF_ERROR(ValidateWeight(weight));
  const std::optional<std::uint32_t> known = FindSlot(id);
  std::uint32_t slot;
  if (!known) {
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(lanes_.size());
      lanes_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    ids_.emplace(id, slot);
    lanes_[slot] = Lane{id, weight, EntryM(weight), next_seq_++, kOut};
  } else {
    slot = *known;
    if (lanes_[slot].pos != kOut) return InvalidState("lane is already in the rotation");
    YM_RETURN_IF_ERROR(SetWeight(id, weight));
    Lane& lane = lanes_[slot];
    // Back from being blocked: at the current virtual time, unless the old tag is still ahead
    // of it (leaving and re-entering must not jump the queue). An old tag equal to the entry
    // tag is treated as an entry too (a fresh seq: behind the lanes already waiting there).
    const std::int64_t entry = EntryM(lane.weight);
    if (entry >= lane.m) {
      lane.m = entry;
      lane.seq = next_seq_++;
    }
  }
  const auto i = static_cast<std::uint32_t>(heap_.size());
  heap_.push_back(slot);
  Place(i, slot);
  SiftUp(i);
  return Status::Ok();
}

Status WeightedRotation::Remove(LaneId id) {
  const std::optional<std::uint32_t> slot = FindSlot(id);
  if (!slot) return NotFound("no such lane in the rotation");
  if (lanes_[*slot].pos == kOut) return InvalidState("lane is not in the rotation");
  HeapErase(*slot);
  return Status::Ok();
}

void WeightedRotation::Forget(LaneId id) {
  auto it = ids_.find(id);
  if (it == ids_.end()) return;
  const std::uint32_t slot = it->second;
  if (lanes_[slot].pos != kOut) HeapErase(slot);
  ids_.erase(it);
  cached_ = false;  // the slot may be reused by another lane
  free_.push_back(slot);
  // Give the memory back when every lane is gone (a rotation that once had many lanes).
  if (ids_.empty()) {
    std::vector<Lane>().swap(lanes_);
    std::vector<std::uint32_t>().swap(free_);
    std::vector<std::uint32_t>().swap(heap_);
  }
}

Status WeightedRotation::SetWeight(LaneId id, std::int64_t weight) {
  YM_RETURN_IF_ERROR(ValidateWeight(weight));
  const std::optional<std::uint32_t> slot = FindSlot(id);
  if (!slot) return NotFound("no such lane in the rotation");
  Lane& lane = lanes_[*slot];
  if (lane.weight == weight) return Status::Ok();
  // Same virtual time on the new grid, rounded up: ceil(m * weight / old weight), capped at
  // V + 1 (floor(V * weight) + weight) so that tags stay within [V, V + 1].
  const std::int64_t up = (lane.m * weight + lane.weight - 1) / lane.weight;
  lane.m = std::min(up, vm_ * weight / vw_ + weight);
  lane.weight = weight;
  if (lane.pos != kOut) {
    // The tag may have moved either way relative to the others by rounding: restore the heap.
    SiftUp(lane.pos);
    SiftDown(lane.pos);
  }
  return Status::Ok();
}

std::optional<WeightedRotation::LaneId> WeightedRotation::Peek() const {
  if (heap_.empty()) return std::nullopt;
  return lanes_[heap_[0]].id;
}

std::optional<WeightedRotation::LaneId> WeightedRotation::Pick() {
  if (heap_.empty()) return std::nullopt;
  Lane& lane = lanes_[heap_[0]];
  vm_ = lane.m;
  vw_ = lane.weight;
  ++lane.m;  // its next pick finishes 1/w later
  lane.seq = next_seq_++;
  const LaneId id = lane.id;
  SiftDown(0);
  if (vm_ / vw_ >= rebase_at_) Rebase();
  return id;
}

bool WeightedRotation::Less(std::uint32_t a, std::uint32_t b) const {
  ++comparisons_;
  const Lane& x = lanes_[a];
  const Lane& y = lanes_[b];
  // m_x / w_x < m_y / w_y; both products < 2^60 (see the header).
  const std::int64_t l = x.m * y.weight;
  const std::int64_t r = y.m * x.weight;
  return l != r ? l < r : x.seq < y.seq;
}

void WeightedRotation::SiftUp(std::uint32_t i) {
  const std::uint32_t slot = heap_[i];
  while (i > 0) {
    const std::uint32_t parent = (i - 1) / 2;
    if (!Less(slot, heap_[parent])) break;
    Place(i, heap_[parent]);
    i = parent;
  }
  Place(i, slot);
}

void WeightedRotation::SiftDown(std::uint32_t i) {
  const std::uint32_t slot = heap_[i];
  const auto n = static_cast<std::uint32_t>(heap_.size());
  while (true) {
    std::uint32_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Less(heap_[child + 1], heap_[child])) ++child;
    if (!Less(heap_[child], slot)) break;
    Place(i, heap_[child]);
    i = child;
  }
  Place(i, slot);
}

void WeightedRotation::HeapErase(std::uint32_t slot) {
  const std::uint32_t i = lanes_[slot].pos;
  const std::uint32_t last = heap_.back();
  heap_.pop_back();
  lanes_[slot].pos = kOut;
  if (last == slot) return;
  Place(i, last);
  SiftUp(i);
  SiftDown(lanes_[last].pos);
}

void WeightedRotation::Rebase() {
  // Subtract V's whole part B from every tag. Tags in the rotation are >= V >= B, so they stay
  // >= 0 and keep their order; a blocked lane's tag below B is as good as any tag below V (it
  // re-enters at V anyway), so it is clamped at 0.
  const std::int64_t b = vm_ / vw_;
  for (const auto& [id, slot] : ids_) {
    Lane& lane = lanes_[slot];
    lane.m = std::max<std::int64_t>(lane.m - b * lane.weight, 0);
  }
  vm_ -= b * vw_;
  ++rebases_;
}

}  // namespace ym::flow
