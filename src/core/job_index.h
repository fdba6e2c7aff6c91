// JobIndex: id -> live job, for every live job in core.
//
// Ids are allocated in increasing order and most jobs finish roughly in the order they were
// created, so ids of live jobs cluster in a few dense ranges plus a thin scatter of long-lived
// jobs (30-day delays, parked retries). The index is a two-level page table over pages of 4096
// ids whose representation follows its fill:
//   * a sparse page is a sorted vector of (offset, job) pairs: 16 bytes per live job, binary
//     search on lookup, append on insert (ids arrive in increasing order);
//   * a dense page is an array of 4096 slots (32 KiB): one array index on lookup.
// A page turns dense when it holds more than kSparseMax jobs (dense then costs at most 64 bytes
// per live job) and back to sparse below kDenseMin (128 jobs: at most 256 bytes per live job
// for the array; the gap is the hysteresis that keeps a page from flapping). So memory is per
// live job, never per id range: one job per 4096 ids costs one map node and one 16-byte entry
// (about 130 bytes), where a dense page per job cost 32 KiB. Lookup stays one map search among
// the live pages plus an array index or a search among at most kSparseMax entries. Ordered
// iteration (list endpoints page through live jobs by id) comes from the ordered map.
//
// Owner: the Scheduler, on the core thread only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "core/job.h"
#include "core/live_job.h"

namespace ym {

class JobIndex {
 public:
  JobIndex();
  ~JobIndex();
  JobIndex(const JobIndex&) = delete;
  JobIndex& operator=(const JobIndex&) = delete;

  // The live job with this id, or nullptr.
  LiveJob* Find(JobId id) const;
  // Takes ownership; the id must not be present. Returns the stored pointer, stable until Erase.
  LiveJob* Insert(std::unique_ptr<LiveJob> job);
  // Destroys the job with this id if present.
  void Erase(JobId id);
  std::size_t size() const { return size_; }

  // Calls fn(LiveJob&) for live jobs with id > after in ascending order until fn returns false
  // or `budget` slots (dense pages) or entries (sparse pages) were examined. Returns the id to
  // resume after, or 0 when the end was reached.
  template <typename Fn>
  JobId Scan(JobId after, std::uint64_t budget, Fn&& fn) const;

  // For memory accounting (Scheduler::Footprint): pages, dense pages, and the bytes the index
  // itself holds (page arrays, sparse vectors, map nodes; not the LiveJob objects).
  std::size_t pages() const { return pages_.size(); }
  std::size_t dense_pages() const { return dense_pages_; }
  std::size_t MemoryBytes() const;

  static constexpr int kPageBits = 12;
  static constexpr JobId kPageSize = JobId{1} << kPageBits;
  static constexpr std::uint32_t kSparseMax = 512;
  static constexpr std::uint32_t kDenseMin = 128;

 private:
  struct Entry {
    std::uint32_t offset;
    std::unique_ptr<LiveJob> job;
  };
  using Dense = std::array<std::unique_ptr<LiveJob>, kPageSize>;
  struct Page {
    std::uint32_t count = 0;
    std::vector<Entry> sparse;     // sorted by offset; used while `dense` is null
    std::unique_ptr<Dense> dense;  // set while the page is dense
  };
  static std::vector<Entry>::const_iterator LowerBound(const std::vector<Entry>& v,
                                                       std::uint32_t offset) {
    return std::lower_bound(v.begin(), v.end(), offset,
                            [](const Entry& e, std::uint32_t o) { return e.offset < o; });
  }
  void ToDense(Page& page);
  void ToSparse(Page& page);

  std::map<JobId, Page> pages_;  // keyed by id >> kPageBits
  std::size_t size_ = 0;
  std::size_t dense_pages_ = 0;
};

template <typename Fn>
JobId JobIndex::Scan(JobId after, std::uint64_t budget, Fn&& fn) const {
  // Nothing comes after the largest id (and after + 1 would wrap to the start).
  if (after == ~JobId{0}) return 0;
  const JobId start = after + 1;
  JobId last = after;  // the last id examined
  for (auto it = pages_.lower_bound(start >> kPageBits); it != pages_.end(); ++it) {
    const JobId base = it->first << kPageBits;
    const auto first = static_cast<std::uint32_t>(start > base ? start - base : 0);
    const Page& page = it->second;
    if (page.dense) {
      for (std::uint32_t i = first; i < kPageSize; ++i) {
        if (budget == 0) return last;
        --budget;
        last = base + i;
        const auto& slot = (*page.dense)[i];
        if (slot && !fn(*slot)) return last;
      }
    } else {
      for (auto e = LowerBound(page.sparse, first); e != page.sparse.end(); ++e) {
        if (budget == 0) return last;
        --budget;
        last = base + e->offset;
        if (!fn(*e->job)) return last;
      }
    }
  }
  return 0;
}

}  // namespace ym
