#include "core/flow/fair_lanes.h"

#include <algorithm>

namespace ym::flow {

std::int64_t FairLanes::Clamp(std::int64_t w) {
  return std::clamp(w, WeightedRotation::kMinWeight, WeightedRotation::kMaxWeight);
}

FairLanes::Multi& FairLanes::M() {
  if (!multi_) multi_ = std::make_unique<Multi>();
  return *multi_;
}

Fifo<FairLanes::LaneKey>& FairLanes::FifoOf(Group group) {
  Multi& m = M();
  if (m.cache == nullptr || m.cache_group != group) {
    m.cache = &m.by_group[group];  // node-based: the address is stable until erased
    m.cache_group = group;
  }
  return *m.cache;
}

bool FairLanes::RotationEmpty() const { return !multi_ || multi_->rotation.active() == 0; }

void FairLanes::Push(Group group, LaneKey lane, std::int64_t weight) {
  if (RotationEmpty() && (!solo_ || *solo_ == group)) {
    // One group alone: no rotation to keep (there is nobody to be fair to).
    solo_ = group;
    solo_weight_ = weight;
    solo_lanes_.push_back(lane);
    ++lanes_;
    return;
  }
  Multi& m = M();
  if (solo_) {
    // A second group arrives: the one alone enters the rotation first (both at the current
    // virtual time).
    const Group g = *solo_;
    solo_.reset();
    Fifo<LaneKey>& moved = FifoOf(g);
    if (m.idle && *m.idle == g) m.idle.reset();
    for (LaneKey l : solo_lanes_) moved.push_back(l);
    solo_lanes_.clear();
    (void)m.rotation.Add(g, Clamp(solo_weight_));
  }
  Fifo<LaneKey>& lanes = FifoOf(group);
  if (lanes.empty()) {
    // New, or the idle group kept (below): it (re-)enters at the current virtual time. Cannot
    // fail: not in the rotation, valid weight.
    if (m.idle && *m.idle == group) m.idle.reset();
    (void)m.rotation.Add(group, Clamp(weight));
  }
  lanes.push_back(lane);
  ++lanes_;
}

std::optional<FairLanes::Entry> FairLanes::Front() const {
  if (solo_) return Entry{*solo_, solo_lanes_.front()};
  if (!multi_) return std::nullopt;
  const Multi& m = *multi_;
  const std::optional<WeightedRotation::LaneId> g = m.rotation.Peek();
  if (!g) return std::nullopt;
  const auto group = static_cast<Group>(*g);
  if (m.cache != nullptr && m.cache_group == group) return Entry{group, m.cache->front()};
  return Entry{group, m.by_group.find(group)->second.front()};
}

void FairLanes::PopFront(bool charge, bool requeue) {
  if (solo_) {
    const LaneKey lane = solo_lanes_.front();
    solo_lanes_.pop_front();
    if (requeue) {
      solo_lanes_.push_back(lane);
    } else {
      --lanes_;
    }
    if (solo_lanes_.empty()) solo_.reset();
    return;
  }
  Multi& m = *multi_;
  const auto group = static_cast<Group>(*m.rotation.Peek());
  Fifo<LaneKey>& lanes = FifoOf(group);
  const LaneKey lane = lanes.front();
  lanes.pop_front();
  if (requeue) {
    lanes.push_back(lane);
  } else {
    --lanes_;
  }
  if (charge) (void)m.rotation.Pick();
  if (lanes.empty()) {
    // No lane of the group left: it leaves the rotation (it re-enters at the current virtual
    // time, neither credited nor charged for the time out, unless its old tag is still ahead).
    // The last group to go idle keeps its record, so that groups that keep running dry and
    // refilling allocate nothing; an older idle record is forgotten, so at most one is held.
    (void)m.rotation.Remove(group);
    if (m.idle && *m.idle != group) {
      m.rotation.Forget(*m.idle);
      m.by_group.erase(*m.idle);
      if (m.cache_group == *m.idle) m.cache = nullptr;
    }
    m.idle = group;
  }
}

void FairLanes::Served() { PopFront(/*charge=*/true, /*requeue=*/true); }
void FairLanes::ServedLast() { PopFront(/*charge=*/true, /*requeue=*/false); }
void FairLanes::Drop() { PopFront(/*charge=*/false, /*requeue=*/false); }

void FairLanes::SetWeight(Group group, std::int64_t weight) {
  if (solo_ && *solo_ == group) solo_weight_ = weight;
  if (multi_ && multi_->by_group.count(group) != 0) {
    (void)multi_->rotation.SetWeight(group, Clamp(weight));
  }
}

std::size_t FairLanes::groups() const { return solo_ ? 1 : multi_ ? multi_->rotation.active() : 0; }

void FairLanes::Clear() {
  multi_.reset();
  solo_.reset();
  solo_lanes_.clear();
  lanes_ = 0;
}

std::size_t FairLanes::capacity() const {
  std::size_t n = solo_lanes_.capacity();
  if (multi_) {
    for (const auto& [group, lanes] : multi_->by_group) n += lanes.capacity();
  }
  return n;
}

}  // namespace ym::flow
