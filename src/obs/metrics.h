// Metrics: a small Prometheus registry of probes that are read at scrape time.
//
// Components keep their own counters (relaxed atomics, mostly) and register a *probe* here: a
// function that, when /metrics is scraped, appends the current samples of one metric family.
// Nothing is copied on the hot path; a scrape costs a few microseconds per family.
// Label values must come from bounded sets (queue names, states, route ids), never job ids.
// docs/operations.md lists every metric.
//
// Threads: register everything before serving; Render() may then be called from any thread
// concurrently (probes must be thread-safe themselves).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "obs/histogram.h"

namespace ym::obs {

enum class MetricType { kCounter, kGauge, kHistogram };

using Labels = std::vector<std::pair<std::string, std::string>>;

// Receives the samples of one family during a scrape.
class SampleSink {
 public:
  void Add(double value, const Labels& labels = {});
  // A histogram family's series: `<name>_bucket{...,le="B"}` per bound and +Inf, `<name>_sum`
  // and `<name>_count`, bounds and sum multiplied by `scale` (1e-6: microseconds to seconds).
  void AddHistogram(const Histogram::Snapshot& h, double scale, const Labels& labels = {});

 private:
  friend class Registry;
  explicit SampleSink(std::string* out, const std::string* name) : out_(out), name_(name) {}
  void Line(std::string_view suffix, double value, const Labels& labels, const char* le);
  std::string* out_;
  const std::string* name_;
};

class Registry {
 public:
  // `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in _total.
  void Register(std::string name, std::string help, MetricType type,
                std::function<void(SampleSink&)> probe);
  // The Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  struct Family {
    std::string name;
    std::string help;
    MetricType type;
    std::function<void(SampleSink&)> probe;
  };
  std::vector<Family> families_;
};

// Escapes a label value for the text format (backslash, quote, newline).
std::string EscapeLabelValue(const std::string& v);

}  // namespace ym::obs
