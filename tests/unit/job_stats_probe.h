// Reading a JobStats in tests: one (queue, kind)'s event count, its duration histogram, and a
// histogram's cumulative count at a bound.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/job_stats.h"

namespace ym::test {

inline std::uint64_t EventCount(const JobStats& s, const std::string& queue,
                                const std::string& kind, JobEvent e) {
  std::uint64_t n = 0;
  s.ForEach([&](const JobStats::LabelSet& set) {
    if (set.queue == queue && set.kind == kind) {
      n += set.events[static_cast<std::size_t>(e)].load();
    }
  });
  return n;
}

inline std::optional<obs::Histogram::Snapshot> Times(const JobStats& s, const std::string& queue,
                                                     const std::string& kind, JobTime t) {
  std::optional<obs::Histogram::Snapshot> out;
  s.ForEach([&](const JobStats::LabelSet& set) {
    if (set.queue == queue && set.kind == kind) out = set.times[static_cast<std::size_t>(t)].Take();
  });
  return out;
}

// The cumulative count at upper bound `le_us` (one of LatencyBoundsUs).
inline std::uint64_t AtOrBelow(const obs::Histogram::Snapshot& h, std::uint64_t le_us) {
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    if (h.bounds[i] == le_us) return h.cumulative[i];
  }
  ADD_FAILURE() << le_us << " is not a bound";
  return 0;
}

}  // namespace ym::test
