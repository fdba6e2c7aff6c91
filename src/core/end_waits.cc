#include "core/end_waits.h"

#include <algorithm>
#include <string>
#include <utility>

namespace ym {

Status EndWaits::Add(JobId job, std::int64_t deadline_mono_ms, Callback callback) {
  if (waits_.size() >= max_waits_) {
    return Status(Code::kResourceExhausted,
                  "too many clients are waiting for jobs to end (max_job_waits " +
                      std::to_string(max_waits_) + "); retry later");
  }
  const std::uint64_t id = next_id_++;
  waits_.emplace(id, Wait{job, std::move(callback)});
  by_job_[job].push_back(id);
  deadlines_.push(Deadline{deadline_mono_ms, id});
  return Status::Ok();
}

void EndWaits::Answer(std::uint64_t wait_id, std::optional<JobView> ended) {
  auto it = waits_.find(wait_id);
  if (it == waits_.end()) return;
  Callback cb = std::move(it->second.callback);
  waits_.erase(it);
  cb(std::move(ended));
}

void EndWaits::Ended(JobId job, const JobView& view) {
  if (waits_.empty()) return;
  auto it = by_job_.find(job);
  if (it == by_job_.end()) return;
  std::vector<std::uint64_t> ids = std::move(it->second);
  by_job_.erase(it);
  for (std::uint64_t id : ids) Answer(id, view);
  MaybeCompact();
}

void EndWaits::Expire(std::int64_t now_mono_ms) {
  while (!deadlines_.empty() && deadlines_.top().due_ms <= now_mono_ms) {
    const std::uint64_t id = deadlines_.top().wait;
    deadlines_.pop();
    auto it = waits_.find(id);
    if (it == waits_.end()) continue;  // answered by its job's end
    auto j = by_job_.find(it->second.job);
    if (j != by_job_.end()) {
      auto& ids = j->second;
      ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
      if (ids.empty()) by_job_.erase(j);
    }
    Answer(id, std::nullopt);
  }
}

void EndWaits::Shutdown() {
  std::vector<std::uint64_t> ids;
  ids.reserve(waits_.size());
  for (const auto& [id, w] : waits_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  by_job_.clear();
  for (std::uint64_t id : ids) Answer(id, std::nullopt);
  deadlines_ = Heap();
}

std::optional<std::int64_t> EndWaits::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.top().due_ms;
}

// Entries of waits answered by their job's end stay in the heap until they surface; once they
// outnumber the live waits (plus slack), the heap is rebuilt from the live ones. The rebuild is
// O(heap) and follows at least as many O(1) answers, so the cost per answer stays constant.
void EndWaits::MaybeCompact() {
  constexpr std::size_t kSlack = 64;
  if (deadlines_.size() <= 2 * waits_.size() + kSlack) return;
  std::vector<Deadline> live;
  live.reserve(waits_.size());
  while (!deadlines_.empty()) {
    if (waits_.count(deadlines_.top().wait) != 0) live.push_back(deadlines_.top());
    deadlines_.pop();
  }
  deadlines_ = Heap(std::greater<>(), std::move(live));
}

}  // namespace ym
