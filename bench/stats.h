// Small statistics helpers for ym_bench: latency samples and the report each scenario returns.
//
// Plain values; a LatencySamples is filled by one thread and merged after the threads join.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ym::bench {

// Latency samples in microseconds. Every sample is kept (a run is bounded by --jobs), so the
// percentiles are exact rather than bucketed.
class LatencySamples {
 public:
  void Add(std::int64_t us) { samples_.push_back(us); }
  void Merge(const LatencySamples& other);
  std::size_t count() const { return samples_.size(); }
  // Nearest-rank percentile, p in (0, 100]; 0 when there are no samples. Sorts lazily.
  std::int64_t Percentile(double p);
  std::int64_t Max();

 private:
  std::vector<std::int64_t> samples_;
  bool sorted_ = false;
};

struct Metric {
  std::string name;  // snake_case with the unit as suffix: jobs_per_s, p99_us
  double value = 0;
};

// What one scenario measured. `completed` is false when --max-seconds cut the run short or
// errors stopped it; the numbers then describe the part that ran.
struct Report {
  std::string scenario;
  std::string queue;
  bool completed = true;
  std::int64_t errors = 0;
  std::string first_error;
  std::vector<Metric> metrics;

  void Add(std::string name, double value) { metrics.push_back({std::move(name), value}); }
};

// One JSON object on one line.
std::string ToJsonLine(const Report& r);
// A readable block: a title line, then one aligned "metric  value" row per metric.
std::string ToTable(const Report& r);

}  // namespace ym::bench
