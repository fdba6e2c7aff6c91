#include "store/finished_counts.h"

#include <algorithm>

namespace ym {
namespace {

// kSucceeded, kDead, kCancelled are 3, 4, 5 (core/job.h): the slot is state - 3.
constexpr int kFirstTerminal = static_cast<int>(JobState::kSucceeded);

int Slot(JobState s) { return static_cast<int>(s) - kFirstTerminal; }

}  // namespace

void FinishedCounts::Load(const std::vector<FinishedCount>& counts) {
  std::map<std::string, Counts, std::less<>> loaded;
  for (const FinishedCount& c : counts) {
    if (!IsTerminal(c.state) || c.count == 0) continue;
    loaded[c.queue][Slot(c.state)] += c.count;
  }
  std::lock_guard lock(mu_);
  counts_.swap(loaded);
}

void FinishedCounts::AddPending(std::string_view queue, JobState state, std::int64_t delta) {
  if (!IsTerminal(state)) return;
  auto it = pending_.find(std::string(queue));
  if (it == pending_.end()) it = pending_.emplace(std::string(queue), Deltas{}).first;
  it->second[Slot(state)] += delta;
}

void FinishedCounts::Publish() {
  if (pending_.empty()) return;
  std::lock_guard lock(mu_);
  for (const auto& [queue, d] : pending_) {
    auto it = counts_.find(queue);
    if (it == counts_.end()) it = counts_.emplace(queue, Counts{}).first;
    bool any = false;
    for (int i = 0; i < 3; ++i) {
      // A count cannot go below zero in a consistent store; clamp rather than wrap if a row
      // counted at load was changed by something that bypassed the writer (it cannot today).
      const std::int64_t v = static_cast<std::int64_t>(it->second[i]) + d[i];
      it->second[i] = static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
      any = any || it->second[i] != 0;
    }
    if (!any) counts_.erase(it);
  }
  pending_.clear();
}

void FinishedCounts::Discard() { pending_.clear(); }

std::uint64_t FinishedCounts::Current(const std::string& queue, JobState state) const {
  if (!IsTerminal(state)) return 0;
  std::int64_t v = 0;
  {
    std::lock_guard lock(mu_);
    auto it = counts_.find(queue);
    if (it != counts_.end()) v = static_cast<std::int64_t>(it->second[Slot(state)]);
  }
  auto p = pending_.find(queue);
  if (p != pending_.end()) v += p->second[Slot(state)];
  return static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
}

void FinishedCounts::Append(const std::string& queue, const Counts& c,
                            std::vector<FinishedCount>& out) {
  for (int i = 0; i < 3; ++i) {
    if (c[i] != 0)
      out.push_back(FinishedCount{queue, static_cast<JobState>(i + kFirstTerminal), c[i]});
  }
}

std::vector<FinishedCount> FinishedCounts::Query(const FinishedCountQuery& query) const {
  std::vector<FinishedCount> out;
  std::lock_guard lock(mu_);
  if (!query.queue.empty()) {
    auto it = counts_.find(query.queue);
    if (it != counts_.end()) Append(it->first, it->second, out);
    return out;
  }
  std::uint32_t taken = 0;
  for (auto it = counts_.upper_bound(query.after); it != counts_.end() && taken < query.max_queues;
       ++it, ++taken) {
    Append(it->first, it->second, out);
  }
  return out;
}

std::size_t FinishedCounts::queues() const {
  std::lock_guard lock(mu_);
  return counts_.size();
}

}  // namespace ym
