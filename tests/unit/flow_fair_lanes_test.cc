// Unit tests of FairLanes (core/flow/fair_lanes.h): namespaces share a queue by weight however
// many lanes each has, lanes of one namespace take turns, a dropped lane costs its namespace
// nothing and a namespace without lanes leaves the rotation.

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <set>

#include "common/rng.h"
#include "core/flow/fair_lanes.h"

namespace ym::flow {
namespace {

TEST(FlowFairLanes, EmptyHasNoFront) {
  FairLanes f;
  EXPECT_TRUE(f.empty());
  EXPECT_FALSE(f.Front().has_value());
}

TEST(FlowFairLanes, TheUnitIsTheNamespaceNotTheLane) {
  // Namespace 1 spreads over 1000 lanes, namespace 2 has one: equal weights give equal shares.
  FairLanes f;
  for (std::uint64_t l = 0; l < 1000; ++l) f.Push(1, 1000 + l, 1);
  f.Push(2, 7, 1);
  std::map<std::uint32_t, int> taken;
  std::set<std::uint64_t> lanes_of_1;
  for (int i = 0; i < 2000; ++i) {
    const auto e = f.Front();
    ASSERT_TRUE(e.has_value());
    ++taken[e->group];
    if (e->group == 1) lanes_of_1.insert(e->lane);
    f.Served();
    // Never ahead of the other by more than one job.
    EXPECT_LE(std::abs(taken[1] - taken[2]), 1) << "after " << i + 1;
  }
  EXPECT_EQ(taken[1], 1000);
  EXPECT_EQ(taken[2], 1000);
  // Round-robin inside namespace 1: each of its lanes gave exactly one job.
  EXPECT_EQ(lanes_of_1.size(), 1000u);
}

TEST(FlowFairLanes, WeightsThreeToOneGiveExactlyThreeToOnePerCycle) {
  FairLanes f;
  f.Push(1, 11, 3);
  f.Push(1, 12, 3);
  f.Push(2, 21, 1);
  std::map<std::uint32_t, int> taken;
  for (int i = 1; i <= 4000; ++i) {
    ++taken[f.Front()->group];
    f.Served();
    if (i % 4 == 0) {
      EXPECT_EQ(taken[1], 3 * i / 4);
      EXPECT_EQ(taken[2], i / 4);
    }
  }
}

TEST(FlowFairLanes, DroppedLaneCostsNothingAndAnEmptyNamespaceLeaves) {
  FairLanes f;
  f.Push(1, 11, 1);
  f.Push(1, 12, 1);
  f.Push(2, 21, 1);
  EXPECT_EQ(f.lanes(), 3u);
  EXPECT_EQ(f.groups(), 2u);
  // Namespace 1 first (entered first); its lane 11 is refused: dropped without a charge, so the
  // namespace is still at the front, now with lane 12.
  auto e = f.Front();
  ASSERT_EQ(e->group, 1u);
  ASSERT_EQ(e->lane, 11u);
  f.Drop();
  e = f.Front();
  EXPECT_EQ(e->group, 1u);
  EXPECT_EQ(e->lane, 12u);
  f.Drop();
  // Namespace 1 has no lane left: it left the rotation, namespace 2 alone remains.
  EXPECT_EQ(f.groups(), 1u);
  EXPECT_EQ(f.Front()->group, 2u);
  f.Served();
  f.Served();
  EXPECT_EQ(f.Front()->lane, 21u);
  f.ServedLast();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.groups(), 0u);
}

TEST(FlowFairLanes, AComebackIsNotCreditedForTheTimeOut) {
  // Namespace 2 leaves for 1000 jobs of namespace 1, then comes back: it alternates with 1
  // instead of taking a burst of 1000.
  FairLanes f;
  f.Push(1, 11, 1);
  f.Push(2, 21, 1);
  EXPECT_EQ(f.Front()->group, 1u);
  f.Served();
  EXPECT_EQ(f.Front()->group, 2u);
  f.Drop();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(f.Front()->group, 1u);
    f.Served();
  }
  f.Push(2, 21, 1);
  std::map<std::uint32_t, int> taken;
  for (int i = 0; i < 100; ++i) {
    ++taken[f.Front()->group];
    f.Served();
  }
  EXPECT_EQ(taken[1], 50);
  EXPECT_EQ(taken[2], 50);
}

TEST(FlowFairLanes, ColdNamespaceIsServedWithinTheBoundNextToAHeavyOne) {
  // Weight 1000 against weight 1: the cold one waits at most floor(1000 / 1) + 1 jobs.
  FairLanes f;
  f.Push(1, 11, 1000);
  for (int i = 0; i < 100000; ++i) f.Served();
  f.Push(2, 21, 1);
  int waited = 0;
  while (f.Front()->group != 2u) {
    f.Served();
    ++waited;
    ASSERT_LE(waited, 1001);
  }
  EXPECT_LE(waited, 1001);
}

TEST(FlowFairLanes, SetWeightChangesTheShare) {
  FairLanes f;
  f.Push(1, 11, 1);
  f.Push(2, 21, 1);
  f.SetWeight(1, 4);
  f.SetWeight(3, 9);  // not in the rotation: nothing happens
  EXPECT_EQ(f.groups(), 2u);
  std::map<std::uint32_t, int> taken;
  for (int i = 0; i < 5000; ++i) {
    ++taken[f.Front()->group];
    f.Served();
  }
  EXPECT_NEAR(taken[1], 4000, 2);
  EXPECT_NEAR(taken[2], 1000, 2);
  f.Clear();
  EXPECT_TRUE(f.empty());
  EXPECT_FALSE(f.Front().has_value());
}

TEST(FlowFairLanes, ALoneGroupJoinedByASecondSharesByTheWeightItWasGiven) {
  // Group 1 alone (kept outside the rotation), its weight changed meanwhile; group 2 arrives:
  // 1 enters the rotation with weight 3 and the two share 3:1 from there.
  FairLanes f;
  f.Push(1, 11, 1);
  f.Push(1, 12, 1);
  EXPECT_EQ(f.groups(), 1u);
  f.SetWeight(1, 3);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(f.Front()->group, 1u);
    f.Served();
  }
  f.Push(2, 21, 1);
  EXPECT_EQ(f.groups(), 2u);
  EXPECT_EQ(f.lanes(), 3u);
  std::map<std::uint32_t, int> taken;
  for (int i = 0; i < 400; ++i) {
    ++taken[f.Front()->group];
    f.Served();
  }
  EXPECT_NEAR(taken[1], 300, 1);
  EXPECT_NEAR(taken[2], 100, 1);
  // Back to one group, then to none, then a new lone group.
  f.Drop();
  while (f.lanes() > 0) f.Drop();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.groups(), 0u);
  f.Push(7, 71, 1);
  EXPECT_EQ(f.Front()->group, 7u);
  EXPECT_EQ(f.Front()->lane, 71u);
}

// Random pushes, takes and drops across the one-group and many-group forms: the lanes held are
// always exactly those pushed and not yet taken out, Front names one of them, a group's lanes
// take turns, and groups() counts the groups holding lanes.
TEST(FlowFairLanes, RandomOperationsKeepTheLanesExact) {
  Rng rng(2024);
  FairLanes f;
  std::map<std::uint32_t, std::deque<std::uint64_t>> ref;  // group -> lanes in turn order
  std::set<std::uint64_t> in;
  std::uint64_t next_lane = 1;
  for (int step = 0; step < 200'000; ++step) {
    const std::uint64_t op = rng.Next() % 10;
    if (op < 4 || in.empty()) {
      const auto g = static_cast<std::uint32_t>(rng.Next() % 4);
      const std::uint64_t lane = next_lane++;
      f.Push(g, lane, 1 + static_cast<std::int64_t>(rng.Next() % 5));
      ref[g].push_back(lane);
      in.insert(lane);
    } else {
      const auto e = f.Front();
      ASSERT_TRUE(e.has_value()) << step;
      auto& lanes = ref[e->group];
      ASSERT_FALSE(lanes.empty()) << step;
      // Inside a group, lanes take turns in the order they came.
      ASSERT_EQ(lanes.front(), e->lane) << step;
      lanes.pop_front();
      if (op < 7) {
        f.Served();
        lanes.push_back(e->lane);
      } else {
        if (op < 9) {
          f.ServedLast();
        } else {
          f.Drop();
        }
        in.erase(e->lane);
      }
      if (lanes.empty()) ref.erase(e->group);
    }
    ASSERT_EQ(f.lanes(), in.size()) << step;
    ASSERT_EQ(f.groups(), ref.size()) << step;
    ASSERT_EQ(f.empty(), in.empty()) << step;
  }
}

}  // namespace
}  // namespace ym::flow
