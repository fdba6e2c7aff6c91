#include "core/job_stats.h"

#include <algorithm>
#include <functional>

namespace ym {

JobStats::JobStats(std::uint32_t max_label_sets)
    : max_(std::clamp<std::uint32_t>(max_label_sets, 1, kMaxMaxLabelSets)),
      slots_(std::make_unique<std::unique_ptr<LabelSet>[]>(max_)),
      overflow_(std::make_unique<LabelSet>(kOverflow, kOverflow)) {
  refs_.reserve(std::min<std::uint32_t>(max_, 1024));
}

JobStats::~JobStats() = default;

std::size_t JobStats::KeyHash::operator()(const KeyView& k) const {
  const std::size_t q = std::hash<std::string_view>{}(k.queue);
  const std::size_t c = std::hash<std::string_view>{}(k.kind);
  return q ^ (c + 0x9e3779b97f4a7c15ULL + (q << 6) + (q >> 2));
}

JobStats::Ref JobStats::Resolve(std::string_view queue, std::string_view kind) {
  if (auto it = refs_.find(KeyView{queue, kind}); it != refs_.end()) return it->second;
  const std::uint32_t n = published_.load(std::memory_order_relaxed);
  if (n >= max_) {
    // Not remembered: a pair past the cap costs a failed lookup per job it names, and the map
    // stays bounded by the cap.
    overflow_used_.store(true, std::memory_order_release);
    return overflow_ref();
  }
  slots_[n] = std::make_unique<LabelSet>(queue, kind);
  refs_.emplace(Key{std::string(queue), std::string(kind)}, n);
  // Publishes the complete set: a reader that sees n + 1 sees its names and zeroed cells.
  published_.store(n + 1, std::memory_order_release);
  return n;
}

void JobStats::Count(Ref ref, JobEvent event) {
  if (ref == overflow_ref()) Bump(overflow_counts_[0]);
  Bump(At(ref).events[static_cast<std::size_t>(event)]);
}

void JobStats::Observe(Ref ref, JobTime time, std::int64_t ms) {
  const auto t = static_cast<std::size_t>(time);
  if (ref == overflow_ref()) Bump(overflow_counts_[1 + t]);
  const std::uint64_t us = ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
  At(ref).times[t].ObserveSingleWriter(us);
}

}  // namespace ym
