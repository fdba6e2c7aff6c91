#include "core/job_index.h"

#include "core/live_job.h"

namespace ym {

JobIndex::JobIndex() = default;
JobIndex::~JobIndex() = default;

LiveJob* JobIndex::Find(JobId id) const {
  auto it = pages_.find(id >> kPageBits);
  if (it == pages_.end()) return nullptr;
  const auto offset = static_cast<std::uint32_t>(id & (kPageSize - 1));
  const Page& page = it->second;
  if (page.dense) return (*page.dense)[offset].get();
  auto e = LowerBound(page.sparse, offset);
  return e != page.sparse.end() && e->offset == offset ? e->job.get() : nullptr;
}

LiveJob* JobIndex::Insert(std::unique_ptr<LiveJob> job) {
  const JobId id = job->id;
  const auto offset = static_cast<std::uint32_t>(id & (kPageSize - 1));
  Page& page = pages_[id >> kPageBits];
  LiveJob* stored = job.get();
  if (page.dense) {
    auto& slot = (*page.dense)[offset];
    if (!slot) {
      ++page.count;
      ++size_;
    }
    slot = std::move(job);
    return stored;
  }
  // Ids arrive in increasing order, so this is nearly always an append.
  auto pos = page.sparse.begin() + (LowerBound(page.sparse, offset) - page.sparse.cbegin());
  if (pos != page.sparse.end() && pos->offset == offset) {
    pos->job = std::move(job);
    return stored;
  }
  page.sparse.insert(pos, Entry{offset, std::move(job)});
  ++page.count;
  ++size_;
  if (page.count > kSparseMax) ToDense(page);
  return stored;
}

void JobIndex::Erase(JobId id) {
  auto it = pages_.find(id >> kPageBits);
  if (it == pages_.end()) return;
  const auto offset = static_cast<std::uint32_t>(id & (kPageSize - 1));
  Page& page = it->second;
  if (page.dense) {
    auto& slot = (*page.dense)[offset];
    if (!slot) return;
    slot.reset();
  } else {
    auto pos = page.sparse.begin() + (LowerBound(page.sparse, offset) - page.sparse.cbegin());
    if (pos == page.sparse.end() || pos->offset != offset) return;
    page.sparse.erase(pos);
    // Give memory back as the page empties, so a page that once held many jobs costs what it
    // holds now.
    if (page.sparse.capacity() > 4 * page.sparse.size() + 8) page.sparse.shrink_to_fit();
  }
  --size_;
  if (--page.count == 0) {
    if (page.dense) --dense_pages_;
    pages_.erase(it);
    return;
  }
  if (page.dense && page.count < kDenseMin) ToSparse(page);
}

void JobIndex::ToDense(Page& page) {
  page.dense = std::make_unique<Dense>();
  for (Entry& e : page.sparse) (*page.dense)[e.offset] = std::move(e.job);
  std::vector<Entry>().swap(page.sparse);
  ++dense_pages_;
}

void JobIndex::ToSparse(Page& page) {
  page.sparse.reserve(page.count);
  for (std::uint32_t i = 0; i < kPageSize; ++i) {
    auto& slot = (*page.dense)[i];
    if (slot) page.sparse.push_back(Entry{i, std::move(slot)});
  }
  page.dense.reset();
  --dense_pages_;
}

std::size_t JobIndex::MemoryBytes() const {
  // A std::map node holds the key, the value and three pointers plus a colour word.
  constexpr std::size_t kNode = sizeof(JobId) + sizeof(Page) + 4 * sizeof(void*);
  std::size_t bytes = pages_.size() * kNode + dense_pages_ * sizeof(Dense);
  for (const auto& [key, page] : pages_) bytes += page.sparse.capacity() * sizeof(Entry);
  return bytes;
}

}  // namespace ym
