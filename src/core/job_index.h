// JobIndex: id -> live job, for every live job in core.
//
// Ids are allocated in increasing order and most jobs finish roughly in the order they were
// created, so a two-level page table suits them: lookup is one search among the few live pages
// (O(log pages), with pages = live id range / 4096) plus an array index, 8 bytes per id slot, and
// ordered iteration for free (list endpoints page through live jobs by id). A page of 4096 slots is
// freed as soon as its last job leaves, so a long-lived job pins at most 32 KiB.
//
// Owner: the Scheduler, on the core thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>

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
  // or `budget` slots were examined. Returns the id to resume after, or 0 when the end was
  // reached.
  template <typename Fn>
  JobId Scan(JobId after, std::uint64_t budget, Fn&& fn) const;

 private:
  static constexpr int kPageBits = 12;
  static constexpr JobId kPageSize = JobId{1} << kPageBits;
  struct Page {
    std::array<std::unique_ptr<LiveJob>, kPageSize> slots;
    std::uint32_t count = 0;
  };
  std::map<JobId, std::unique_ptr<Page>> pages_;  // keyed by id >> kPageBits
  std::size_t size_ = 0;
};

template <typename Fn>
JobId JobIndex::Scan(JobId after, std::uint64_t budget, Fn&& fn) const {
  // Nothing comes after the largest id (and after + 1 would wrap to the start).
  if (after == ~JobId{0}) return 0;
  const JobId start = after + 1;
  for (auto it = pages_.lower_bound(start >> kPageBits); it != pages_.end(); ++it) {
    const JobId base = it->first << kPageBits;
    JobId first = start > base ? start - base : 0;
    for (JobId i = first; i < kPageSize; ++i) {
      if (budget == 0) return base + i - 1;
      --budget;
      const auto& slot = it->second->slots[i];
      if (slot && !fn(*slot)) return base + i;
    }
  }
  return 0;
}

}  // namespace ym
