#include "core/job_index.h"

#include "core/live_job.h"

namespace ym {

JobIndex::JobIndex() = default;
JobIndex::~JobIndex() = default;

LiveJob* JobIndex::Find(JobId id) const {
  auto it = pages_.find(id >> kPageBits);
  if (it == pages_.end()) return nullptr;
  return it->second->slots[id & (kPageSize - 1)].get();
}

LiveJob* JobIndex::Insert(std::unique_ptr<LiveJob> job) {
  const JobId id = job->id;
  auto& page = pages_[id >> kPageBits];
  if (!page) page = std::make_unique<Page>();
  auto& slot = page->slots[id & (kPageSize - 1)];
  if (!slot) {
    ++page->count;
    ++size_;
  }
  slot = std::move(job);
  return slot.get();
}

void JobIndex::Erase(JobId id) {
  auto it = pages_.find(id >> kPageBits);
  if (it == pages_.end()) return;
  auto& slot = it->second->slots[id & (kPageSize - 1)];
  if (!slot) return;
  slot.reset();
  --size_;
  if (--it->second->count == 0) pages_.erase(it);
}

}  // namespace ym
