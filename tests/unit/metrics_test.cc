// The metrics registry's text exposition (src/obs/metrics.h) and histograms
// (src/obs/histogram.h): the lines Prometheus parses.

#include "obs/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "obs/histogram.h"

namespace ym::obs {
namespace {

TEST(Histogram, ObservationsFallInTheFirstBucketWhoseBoundIsAtLeastThem) {
  Histogram h({10, 100, 1000});
  for (std::uint64_t v : {0, 10, 11, 100, 999, 1000, 1001, 5000}) h.Observe(v);
  const Histogram::Snapshot s = h.Take();
  EXPECT_EQ(s.bounds, (std::vector<std::uint64_t>{10, 100, 1000}));
  // le=10: 0, 10; le=100: + 11, 100; le=1000: + 999, 1000; +Inf: + 1001, 5000.
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_EQ(s.sum, 0u + 10 + 11 + 100 + 999 + 1000 + 1001 + 5000);
}

TEST(Histogram, ConcurrentObservationsAreAllCounted) {
  Histogram h;  // latency bounds
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10'000; ++i) h.Observe(static_cast<std::uint64_t>(t * 1000 + i));
    });
  }
  for (auto& t : threads) t.join();
  const Histogram::Snapshot s = h.Take();
  EXPECT_EQ(s.count, 40'000u);
  EXPECT_EQ(s.cumulative.back(), 40'000u);
  for (std::size_t i = 1; i < s.cumulative.size(); ++i) {
    EXPECT_LE(s.cumulative[i - 1], s.cumulative[i]);
  }
}

TEST(MetricsRegistry, HistogramFamiliesFollowTheTextFormat) {
  Registry r;
  Histogram h({1000, 250'000});
  h.Observe(500);
  h.Observe(200'000);
  h.Observe(3'000'000);
  r.Register("ym_x_seconds", "A test histogram.", MetricType::kHistogram, [&h](SampleSink& s) {
    s.AddHistogram(h.Take(), 1e-6, {{"route", "GET /a\"b"}});
  });
  r.Register("ym_y_total", "A counter.", MetricType::kCounter, [](SampleSink& s) { s.Add(3); });
  EXPECT_EQ(r.Render(),
            "# HELP ym_x_seconds A test histogram.\n"
            "# TYPE ym_x_seconds histogram\n"
            "ym_x_seconds_bucket{route=\"GET /a\\\"b\",le=\"0.001\"} 1\n"
            "ym_x_seconds_bucket{route=\"GET /a\\\"b\",le=\"0.25\"} 2\n"
            "ym_x_seconds_bucket{route=\"GET /a\\\"b\",le=\"+Inf\"} 3\n"
            "ym_x_seconds_sum{route=\"GET /a\\\"b\"} 3.2005\n"
            "ym_x_seconds_count{route=\"GET /a\\\"b\"} 3\n"
            "# HELP ym_y_total A counter.\n"
            "# TYPE ym_y_total counter\n"
            "ym_y_total 3\n");
}

// Bounds print as the decimal they stand for (le="0.025", not "0.024999999999999998"), so that
// a query naming a bucket's le matches it.
TEST(MetricsRegistry, MicrosecondBoundsPrintAsTheirDecimalInSeconds) {
  Registry r;
  Histogram h;  // LatencyBoundsUs
  h.Observe(25'000);
  r.Register("ym_x_seconds", "Latencies.", MetricType::kHistogram,
             [&h](SampleSink& s) { s.AddHistogram(h.Take(), 1e-6); });
  const std::string text = r.Render();
  for (const char* le : {"0.0001", "0.025", "0.05", "0.1", "0.25", "1", "2.5", "60"}) {
    EXPECT_NE(text.find(std::string("ym_x_seconds_bucket{le=\"") + le + "\"}"), std::string::npos)
        << le << "\n"
        << text;
  }
  EXPECT_EQ(text.find("99999"), std::string::npos) << text;
  EXPECT_NE(text.find("ym_x_seconds_sum 0.025\n"), std::string::npos) << text;
}

// Samples keep a double's precision: epoch seconds with milliseconds were printed with 9
// significant digits (10 s resolution) by "%.9g".
TEST(MetricsRegistry, SamplesKeepTheirPrecision) {
  Registry r;
  r.Register("t", "Values.", MetricType::kGauge, [](SampleSink& s) {
    s.Add(1795674108.854);
    s.Add(3);
    s.Add(0.1);
    s.Add(-2.5e-7);
    s.Add(1e20);
  });
  EXPECT_EQ(
      r.Render(),
      "# HELP t Values.\n# TYPE t gauge\nt 1795674108.854\nt 3\nt 0.1\nt -2.5e-07\nt 1e+20\n");
}

}  // namespace
}  // namespace ym::obs
