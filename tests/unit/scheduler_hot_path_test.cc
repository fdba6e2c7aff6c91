// The hot-path figure of docs/benchmarks.md with no limit configured (a disabled test; run by
// hand, release build):
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_HotPath*'
// Only the API that existed before limits is used, so the same file measures older builds.

#include "scheduler_hot_path.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace ym {
namespace {

TEST(SchedulerBench, DISABLED_HotPathNoLimits) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  const double ns = bench::HotPathNsPerJob(s, clock, 200'000, 1'000'000,
                                           [](std::uint64_t) { return std::string(); });
  std::printf("hot path, no limits: %.0f CPU ns per job\n", ns);
  EXPECT_GT(ns, 0);
}

}  // namespace
}  // namespace ym
