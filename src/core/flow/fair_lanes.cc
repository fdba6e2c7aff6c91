#include "core/flow/fair_lanes.h"

#include <algorithm>

namespace ym::flow {

std::int64_t FairLanes::Clamp(std::int64_t w) {
  return std::clamp(w, WeightedRotation::kMinWeight, WeightedRotation::kMaxWeight);
}

void FairLanes::Push(Group group, LaneKey lane, std::int64_t weight) {
  Fifo<LaneKey>& lanes = by_group_[group];
  if (lanes.empty()) (void)rotation_.Add(group, Clamp(weight));  // cannot fail: new, valid
  lanes.push_back(lane);
  ++lanes_;
}

std::optional<FairLanes::Entry> FairLanes::Front() const {
  const std::optional<WeightedRotation::LaneId> g = rotation_.Peek();
  if (!g) return std::nullopt;
  const auto group = static_cast<Group>(*g);
  return Entry{group, by_group_.find(group)->second.front()};
}

void FairLanes::PopFront(bool charge, bool requeue) {
  const auto group = static_cast<Group>(*rotation_.Peek());
  auto it = by_group_.find(group);
  Fifo<LaneKey>& lanes = it->second;
  const LaneKey lane = lanes.front();
  lanes.pop_front();
  if (requeue) {
    lanes.push_back(lane);
  } else {
    --lanes_;
  }
  if (charge) (void)rotation_.Pick();
  if (lanes.empty()) {
    // No lane of the group left: it leaves the rotation and is forgotten (it re-enters at the
    // current virtual time, neither credited nor charged for the time out).
    rotation_.Forget(group);
    by_group_.erase(it);
  }
}

void FairLanes::Served() { PopFront(/*charge=*/true, /*requeue=*/true); }
void FairLanes::ServedLast() { PopFront(/*charge=*/true, /*requeue=*/false); }
void FairLanes::Drop() { PopFront(/*charge=*/false, /*requeue=*/false); }

void FairLanes::SetWeight(Group group, std::int64_t weight) {
  if (by_group_.count(group) != 0) (void)rotation_.SetWeight(group, Clamp(weight));
}

void FairLanes::Clear() {
  for (const auto& [group, lanes] : by_group_) rotation_.Forget(group);
  by_group_.clear();
  lanes_ = 0;
}

std::size_t FairLanes::capacity() const {
  std::size_t n = 0;
  for (const auto& [group, lanes] : by_group_) n += lanes.capacity();
  return n;
}

}  // namespace ym::flow
