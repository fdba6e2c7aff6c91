#include "stats.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ym::bench {

void LatencySamples::Merge(const LatencySamples& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  sorted_ = false;
}

std::int64_t LatencySamples::Percentile(double p) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  const double rank = std::ceil(p / 100.0 * static_cast<double>(samples_.size()));
  const std::size_t idx = static_cast<std::size_t>(std::clamp(rank, 1.0, 1.0 * samples_.size()));
  return samples_[idx - 1];
}

std::int64_t LatencySamples::Max() { return Percentile(100); }

std::string ToJsonLine(const Report& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("scenario");
  w.String(r.scenario);
  w.Key("queue");
  w.String(r.queue);
  w.Key("completed");
  w.Bool(r.completed);
  w.Key("errors");
  w.Int64(r.errors);
  if (!r.first_error.empty()) {
    w.Key("first_error");
    w.String(r.first_error);
  }
  for (const Metric& m : r.metrics) {
    w.Key(m.name.c_str(), static_cast<rapidjson::SizeType>(m.name.size()));
    if (m.value == std::floor(m.value) && std::fabs(m.value) < 9e15) {
      w.Int64(static_cast<std::int64_t>(m.value));
    } else {
      w.Double(m.value);
    }
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

std::string ToTable(const Report& r) {
  std::string out = "== " + r.scenario + " (queue " + r.queue + ")" +
                    (r.completed ? "" : "  [INCOMPLETE: time limit or errors]") + "\n";
  std::size_t width = std::string("errors").size();
  for (const Metric& m : r.metrics) width = std::max(width, m.name.size());
  char buf[64];
  for (const Metric& m : r.metrics) {
    if (m.value == std::floor(m.value) && std::fabs(m.value) < 9e15) {
      std::snprintf(buf, sizeof buf, "%14lld", static_cast<long long>(m.value));
    } else {
      std::snprintf(buf, sizeof buf, "%14.1f", m.value);
    }
    out += "  " + m.name + std::string(width - m.name.size(), ' ') + buf + "\n";
  }
  std::snprintf(buf, sizeof buf, "%14lld", static_cast<long long>(r.errors));
  out += "  errors" + std::string(width - 6, ' ') + buf + "\n";
  if (!r.first_error.empty()) out += "  first error: " + r.first_error + "\n";
  return out;
}

}  // namespace ym::bench
