#include "core/cancel_watches.h"

#include <algorithm>
#include <utility>

namespace ym {

void CancelWatches::Requested(const std::string& worker, JobId job) {
  if (!pending_[worker].insert(job).second) return;
  ++pending_jobs_;
  auto it = by_worker_.find(worker);
  if (it == by_worker_.end()) return;
  std::vector<std::uint64_t> wake;
  std::vector<std::uint64_t> keep;
  for (std::uint64_t id : it->second) {
    const Watch& w = watches_.at(id);
    (std::binary_search(w.known.begin(), w.known.end(), job) ? keep : wake).push_back(id);
  }
  if (wake.empty()) return;
  if (keep.empty()) {
    by_worker_.erase(it);
  } else {
    it->second = std::move(keep);
  }
  for (std::uint64_t id : wake) Answer(id);
  MaybeCompact();
}

void CancelWatches::Withdrawn(const std::string& worker, JobId job) {
  auto it = pending_.find(worker);
  if (it == pending_.end() || it->second.erase(job) == 0) return;
  --pending_jobs_;
  if (it->second.empty()) pending_.erase(it);
}

Status CancelWatches::Add(const std::string& worker, std::vector<JobId> known,
                          std::int64_t deadline_mono_ms, Callback callback) {
  if (watches_.size() >= max_watches_) {
    return Status(Code::kResourceExhausted, "too many cancel watches are open (at most " +
                                                std::to_string(max_watches_) + "); retry later");
  }
  std::sort(known.begin(), known.end());
  known.erase(std::unique(known.begin(), known.end()), known.end());
  if (auto p = pending_.find(worker); p != pending_.end()) {
    const bool news = std::any_of(p->second.begin(), p->second.end(), [&](JobId id) {
      return !std::binary_search(known.begin(), known.end(), id);
    });
    if (news) {
      callback(std::vector<JobId>(p->second.begin(), p->second.end()));
      return Status::Ok();
    }
  }
  const std::uint64_t id = next_id_++;
  watches_.emplace(id, Watch{worker, std::move(known), std::move(callback)});
  by_worker_[worker].push_back(id);
  deadlines_.push(Deadline{deadline_mono_ms, id});
  return Status::Ok();
}

void CancelWatches::Answer(std::uint64_t watch_id) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return;
  Callback cb = std::move(it->second.callback);
  std::vector<JobId> set = Pending(it->second.worker);
  watches_.erase(it);
  cb(std::move(set));
}

void CancelWatches::Unlink(const std::string& worker, std::uint64_t watch_id) {
  auto it = by_worker_.find(worker);
  if (it == by_worker_.end()) return;
  auto& ids = it->second;
  ids.erase(std::remove(ids.begin(), ids.end(), watch_id), ids.end());
  if (ids.empty()) by_worker_.erase(it);
}

void CancelWatches::Expire(std::int64_t now_mono_ms) {
  while (!deadlines_.empty() && deadlines_.top().due_ms <= now_mono_ms) {
    const std::uint64_t id = deadlines_.top().watch;
    deadlines_.pop();
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;  // answered by a cancel
    Unlink(it->second.worker, id);
    Answer(id);
  }
}

void CancelWatches::Shutdown() {
  std::vector<std::uint64_t> ids;
  ids.reserve(watches_.size());
  for (const auto& [id, w] : watches_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  by_worker_.clear();
  for (std::uint64_t id : ids) Answer(id);
  deadlines_ = Heap();
}

std::vector<JobId> CancelWatches::Pending(const std::string& worker) const {
  auto it = pending_.find(worker);
  if (it == pending_.end()) return {};
  return std::vector<JobId>(it->second.begin(), it->second.end());
}

std::optional<std::int64_t> CancelWatches::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.top().due_ms;
}

// As EndWaits::MaybeCompact: the O(heap) rebuild follows at least as many O(1) answers.
void CancelWatches::MaybeCompact() {
  constexpr std::size_t kSlack = 64;
  if (deadlines_.size() <= 2 * watches_.size() + kSlack) return;
  std::vector<Deadline> live;
  live.reserve(watches_.size());
  while (!deadlines_.empty()) {
    if (watches_.count(deadlines_.top().watch) != 0) live.push_back(deadlines_.top());
    deadlines_.pop();
  }
  deadlines_ = Heap(std::greater<>(), std::move(live));
}

}  // namespace ym
