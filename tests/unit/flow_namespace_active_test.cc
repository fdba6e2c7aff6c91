// NamespaceActive (core/flow/namespace_active.h): the active count per namespace against a map,
// and the lanes waiting on a namespace at its max_active handed back exactly when it has room.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "common/rng.h"
#include "core/flow/namespace_active.h"

namespace ym::flow {
namespace {

TEST(FlowNamespaceActive, CountsAndRoomAndAnUnmatchedEndChangesNothing) {
  NamespaceActive a;
  std::vector<LaneRef> woken;
  EXPECT_TRUE(a.HasRoom(3, 1));
  EXPECT_TRUE(a.HasRoom(3, std::nullopt));
  a.Started(3);
  EXPECT_EQ(a.Active(3), 1u);
  EXPECT_FALSE(a.HasRoom(3, 1));
  EXPECT_TRUE(a.HasRoom(3, 2));
  EXPECT_TRUE(a.HasRoom(3, std::nullopt)) << "no cap: always room";
  EXPECT_TRUE(a.HasRoom(4, 1)) << "namespaces are independent";
  EXPECT_TRUE(a.Ended(3, 1, woken).ok());
  EXPECT_EQ(a.Active(3), 0u);
  const Status bogus = a.Ended(3, 1, woken);
  EXPECT_EQ(bogus.code(), Code::kInvalidState);
  EXPECT_EQ(a.Active(3), 0u) << "no underflow into a credit";
  EXPECT_EQ(a.Ended(9, 1, woken).code(), Code::kInvalidState);
  EXPECT_TRUE(woken.empty());
}

TEST(FlowNamespaceActive, WaitingLanesAreHandedBackWhenAnEndMakesRoomOrTheCapChanges) {
  NamespaceActive a;
  std::vector<LaneRef> woken;
  a.Started(1);
  a.Started(1);
  a.Wait(1, LaneRef{0, 1, 5});
  a.Wait(1, LaneRef{7, 1, 0});
  a.Wait(2, LaneRef{0, 2, 0});
  EXPECT_EQ(a.waiting_lanes(), 3u);
  a.Started(1);  // 3 active, cap 2: still no room after one end
  ASSERT_TRUE(a.Ended(1, 2, woken).ok());
  EXPECT_TRUE(woken.empty());
  ASSERT_TRUE(a.Ended(1, 2, woken).ok());  // 1 < 2: room
  ASSERT_EQ(woken.size(), 2u);
  EXPECT_EQ(woken[0].queue, 0u);
  EXPECT_EQ(woken[0].set, 5u);
  EXPECT_EQ(woken[1].queue, 7u);
  EXPECT_EQ(a.waiting_lanes(), 1u) << "namespace 2's lane stays";
  woken.clear();
  ASSERT_TRUE(a.Ended(1, 2, woken).ok());
  EXPECT_TRUE(woken.empty()) << "handed back once";
  a.Reopen(2, woken);  // its cap changed
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].ns, 2u);
  EXPECT_EQ(a.waiting_lanes(), 0u);
  a.Wait(2, LaneRef{0, 2, 0});
  a.ClearWaits();
  EXPECT_EQ(a.waiting_lanes(), 0u);
}

// Random starts (only when there is room, as the scheduler does), ends (some bogus), waits,
// cap changes: counts match a map after every step, and a waiting lane is handed back exactly
// at the first end that leaves its namespace below its cap (or at a cap change).
TEST(FlowNamespaceActive, RandomSequencesMatchAModel) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    Rng rng(seed);
    NamespaceActive a;
    std::map<std::uint32_t, std::uint64_t> count;
    std::map<std::uint32_t, std::optional<std::int64_t>> cap;
    std::map<std::uint32_t, std::size_t> waiting;
    for (int step = 0; step < 500; ++step) {
      const std::uint32_t ns = static_cast<std::uint32_t>(rng.Uniform(5));
      std::vector<LaneRef> woken;
      switch (rng.Uniform(5)) {
        case 0:
        case 1:
          if (a.HasRoom(ns, cap[ns])) {
            ASSERT_TRUE(!cap[ns] || count[ns] < static_cast<std::uint64_t>(*cap[ns]));
            a.Started(ns);
            ++count[ns];
          } else {
            ASSERT_TRUE(cap[ns] && count[ns] >= static_cast<std::uint64_t>(*cap[ns]));
            a.Wait(ns, LaneRef{static_cast<std::uint32_t>(step), ns, 0});
            ++waiting[ns];
          }
          break;
        case 2:
        case 3: {
          const Status s = a.Ended(ns, cap[ns], woken);
          if (count[ns] == 0) {
            ASSERT_EQ(s.code(), Code::kInvalidState);
            ASSERT_TRUE(woken.empty());
            break;
          }
          ASSERT_TRUE(s.ok());
          --count[ns];
          const bool room = !cap[ns] || count[ns] < static_cast<std::uint64_t>(*cap[ns]);
          ASSERT_EQ(woken.size(), room ? waiting[ns] : 0u) << "seed " << seed << " step " << step;
          for (const LaneRef& r : woken) ASSERT_EQ(r.ns, ns);
          if (room) waiting[ns] = 0;
          break;
        }
        default: {
          cap[ns] =
              rng.Uniform(4) == 0 ? std::nullopt : std::optional<std::int64_t>(1 + rng.Uniform(3));
          a.Reopen(ns, woken);
          ASSERT_EQ(woken.size(), waiting[ns]);
          waiting[ns] = 0;
          break;
        }
      }
      std::size_t total = 0;
      for (const auto& [n, c] : count) ASSERT_EQ(a.Active(n), c);
      for (const auto& [n, w] : waiting) total += w;
      ASSERT_EQ(a.waiting_lanes(), total);
    }
  }
}

}  // namespace
}  // namespace ym::flow
