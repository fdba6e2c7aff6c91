// Unit tests of the weighted fair rotation (core/flow/weighted_rotation.h): exact shares over a
// cycle and at every prefix, the cold-lane bound, no credit for time out of the rotation, the
// O(log lanes) cost per pick (counted in comparisons), and rebasing that changes no decision,
// checked against a naive O(lanes) reference of the same rules.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"
#include "core/flow/weighted_rotation.h"

namespace ym::flow {
namespace {

using LaneId = WeightedRotation::LaneId;

void AddOk(WeightedRotation& r, LaneId id, std::int64_t w) {
  Status s = r.Add(id, w);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

LaneId PickOk(WeightedRotation& r) {
  std::optional<LaneId> id = r.Pick();
  EXPECT_TRUE(id.has_value());
  return id.value_or(~LaneId{0});
}

TEST(FlowWeightedRotation, WeightsOutsideOneToAThousandAreRefused) {
  WeightedRotation r;
  for (std::int64_t bad : {0, -1, 1001}) {
    EXPECT_EQ(r.Add(1, bad).code(), Code::kValidation);
    EXPECT_NE(WeightedRotation::ValidateWeight(bad).message().find("weight"), std::string::npos);
  }
  EXPECT_EQ(r.known(), 0u);
  EXPECT_FALSE(r.Pick().has_value());
  EXPECT_FALSE(r.Peek().has_value());
  AddOk(r, 1, 1000);
  EXPECT_EQ(r.Add(1, 5).code(), Code::kInvalidState);  // already in the rotation
  EXPECT_EQ(r.SetWeight(1, 0).code(), Code::kValidation);
  EXPECT_EQ(r.SetWeight(2, 5).code(), Code::kNotFound);
  EXPECT_EQ(r.Remove(2).code(), Code::kNotFound);
  ASSERT_TRUE(r.Remove(1).ok());
  EXPECT_EQ(r.Remove(1).code(), Code::kInvalidState);
}

TEST(FlowWeightedRotation, ThreeToOneIsExactPerCycleAndWithinOnePickAtEveryPrefix) {
  WeightedRotation r;
  AddOk(r, 'A', 3);
  AddOk(r, 'B', 1);
  std::int64_t a = 0;
  std::string first_cycles;
  for (std::int64_t n = 1; n <= 4000; ++n) {
    const LaneId id = PickOk(r);
    if (n <= 8) first_cycles += static_cast<char>(id);
    a += id == 'A' ? 1 : 0;
    const std::int64_t b = n - a;
    // |a - 3n/4| < 1 and |b - n/4| < 1, in integers.
    ASSERT_LT(std::abs(4 * a - 3 * n), 4) << "after " << n;
    ASSERT_LT(std::abs(4 * b - n), 4) << "after " << n;
    if (n % 4 == 0) {
      ASSERT_EQ(a, 3 * n / 4) << "after " << n;
    }
  }
  EXPECT_EQ(first_cycles, "AABAAABA");
}

// Random weights, all lanes in the rotation from the start: at every prefix no lane is behind
// its share by a pick or more, and every W picks (a full cycle) give exactly w_i each.
TEST(FlowWeightedRotation, NoLaneFallsBehindItsShareByAPickAtAnyPrefix) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    WeightedRotation r;
    const int lanes = 2 + static_cast<int>(rng.Uniform(9));
    std::vector<std::int64_t> w(static_cast<std::size_t>(lanes));
    std::int64_t total = 0;
    for (int i = 0; i < lanes; ++i) {
      w[static_cast<std::size_t>(i)] = 1 + static_cast<std::int64_t>(rng.Uniform(50));
      total += w[static_cast<std::size_t>(i)];
      AddOk(r, static_cast<LaneId>(i), w[static_cast<std::size_t>(i)]);
    }
    std::vector<std::int64_t> got(static_cast<std::size_t>(lanes), 0);
    for (std::int64_t n = 1; n <= 3 * total; ++n) {
      ++got[static_cast<std::size_t>(PickOk(r))];
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_GE(got[i] * total, n * w[i] - total) << "lane " << i << " after " << n;
        if (n % total == 0) {
          ASSERT_EQ(got[i], n / total * w[i]) << "lane " << i;
        }
      }
    }
  }
}

// A cold lane of weight wc joins hot lanes that have been picked a million times: it is picked
// within sum over hot lanes h of (floor(w_h / wc) + 1) picks, and afterwards takes its share
// without a catch-up burst.
TEST(FlowWeightedRotation, AColdLaneIsPickedWithinTheWeightRatioBound) {
  struct Case {
    std::vector<std::int64_t> hot;
    std::int64_t cold;
  };
  for (const Case& c : {Case{{1}, 1}, Case{{1000}, 1}, Case{{1}, 1000}, Case{{7, 300}, 3},
                        Case{{1000, 1000, 1000}, 2}}) {
    WeightedRotation r;
    std::int64_t bound = 0;
    std::int64_t hot_total = 0;
    for (std::size_t i = 0; i < c.hot.size(); ++i) {
      AddOk(r, i, c.hot[i]);
      bound += c.hot[i] / c.cold + 1;
      hot_total += c.hot[i];
    }
    for (int i = 0; i < 1'000'003; ++i) PickOk(r);
    const LaneId cold = 999;
    AddOk(r, cold, c.cold);
    std::int64_t waited = 0;
    while (PickOk(r) != cold) {
      ++waited;
      ASSERT_LE(waited, bound) << "cold weight " << c.cold;
    }
    // No burst after it: over the next 10 cycles it gets its 10 * wc picks, give or take one.
    const std::int64_t cycle = hot_total + c.cold;
    std::int64_t cold_picks = 0;
    for (std::int64_t n = 0; n < 10 * cycle; ++n) cold_picks += PickOk(r) == cold ? 1 : 0;
    EXPECT_LE(std::abs(cold_picks - 10 * c.cold), 1) << "cold weight " << c.cold;
  }
}

TEST(FlowWeightedRotation, TimeOutOfTheRotationIsNeitherCreditedNorAWayToJumpAhead) {
  WeightedRotation r;
  AddOk(r, 'A', 1);
  AddOk(r, 'B', 1);
  for (int i = 0; i < 100; ++i) PickOk(r);
  // A blocked for 1000 picks: B alone.
  ASSERT_TRUE(r.Remove('A').ok());
  EXPECT_FALSE(r.InRotation('A'));
  EXPECT_TRUE(r.Known('A'));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(PickOk(r), LaneId{'B'});
  // Back: strict alternation again, no run of A to "catch up".
  AddOk(r, 'A', 1);
  std::int64_t a = 0;
  for (int n = 1; n <= 100; ++n) {
    a += PickOk(r) == 'A' ? 1 : 0;
    ASSERT_LE(std::abs(2 * a - n), 1) << "after " << n;
  }
  // Leaving right after a pick and coming straight back does not make A next again.
  while (PickOk(r) != 'A') {
  }
  ASSERT_TRUE(r.Remove('A').ok());
  AddOk(r, 'A', 1);
  EXPECT_EQ(r.Peek(), std::optional<LaneId>('B'));
  EXPECT_EQ(PickOk(r), LaneId{'B'});
  EXPECT_EQ(PickOk(r), LaneId{'A'});
}

TEST(FlowWeightedRotation, SetWeightChangesTheShareFromNowOn) {
  WeightedRotation r;
  AddOk(r, 1, 1);
  AddOk(r, 2, 1);
  for (int i = 0; i < 10; ++i) PickOk(r);
  ASSERT_TRUE(r.SetWeight(1, 4).ok());
  std::map<LaneId, int> got;
  for (int i = 0; i < 500; ++i) ++got[PickOk(r)];
  EXPECT_LE(std::abs(got[1] - 400), 1);
  EXPECT_LE(std::abs(got[2] - 100), 1);
}

TEST(FlowWeightedRotation, ForgettingLanesFreesTheirRecords) {
  WeightedRotation r;
  for (LaneId i = 0; i < 1000; ++i) AddOk(r, i, 1 + static_cast<std::int64_t>(i % 7));
  for (int i = 0; i < 5000; ++i) PickOk(r);
  for (LaneId i = 0; i < 1000; i += 2) ASSERT_TRUE(r.Remove(i).ok());
  EXPECT_EQ(r.active(), 500u);
  EXPECT_EQ(r.known(), 1000u);
  for (LaneId i = 0; i < 1000; ++i) r.Forget(i);
  EXPECT_EQ(r.active(), 0u);
  EXPECT_EQ(r.known(), 0u);
  EXPECT_FALSE(r.Pick().has_value());
  r.Forget(12345);  // unknown: no-op
}

TEST(FlowWeightedRotation, TenThousandLanesCostOLogLanesComparisonsPerPick) {
  // A binary heap compares at most twice per level on the way down: with 10,000 lanes (14
  // levels) a pick costs at most 28 comparisons, whatever the weights.
  WeightedRotation r;
  Rng rng(7);
  constexpr int kLanes = 10'000;
  std::vector<std::int64_t> w(kLanes);
  std::int64_t total = 0;
  for (int i = 0; i < kLanes; ++i) {
    w[static_cast<std::size_t>(i)] = 1 + static_cast<std::int64_t>(rng.Uniform(1000));
    total += w[static_cast<std::size_t>(i)];
    AddOk(r, static_cast<LaneId>(i), w[static_cast<std::size_t>(i)]);
  }
  const std::uint64_t before = r.comparisons();
  constexpr std::int64_t kPicks = 1'000'000;
  std::vector<std::int64_t> got(kLanes, 0);
  for (std::int64_t n = 0; n < kPicks; ++n) ++got[static_cast<std::size_t>(PickOk(r))];
  const int levels = static_cast<int>(std::ceil(std::log2(kLanes + 1)));
  EXPECT_LE(r.comparisons() - before, static_cast<std::uint64_t>(kPicks * 2 * levels));
  // And the shares are still right after a million picks: nobody behind by a pick.
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_GE(got[i] * total, kPicks * w[i] - total) << "lane " << i;
  }
}

// The naive reference: the same rules (tags m / w, entry at floor(V * w) + 1 or the old tag,
// ties by the order tags were set), the minimum found by scanning every lane, no rebasing, and
// exact 128-bit comparisons. The heap, with rebases every few picks or never, must pick exactly
// the same lane every time under random adds, removes, weight changes and forgets.
class NaiveRotation {
 public:
  void Add(LaneId id, std::int64_t w) {
    auto it = lanes_.find(id);
    if (it == lanes_.end()) {
      lanes_[id] = {w, Entry(w), seq_++, true};
      return;
    }
    SetWeight(id, w);
    Lane& l = it->second;
    l.in = true;
    if (Entry(l.w) >= l.m) {
      l.m = Entry(l.w);
      l.seq = seq_++;
    }
  }
  void Remove(LaneId id) { lanes_[id].in = false; }
  void Forget(LaneId id) { lanes_.erase(id); }
  void SetWeight(LaneId id, std::int64_t w) {
    Lane& l = lanes_[id];
    if (l.w == w) return;
    const __int128 up = (static_cast<__int128>(l.m) * w + l.w - 1) / l.w;
    const __int128 cap = static_cast<__int128>(vm_) * w / vw_ + w;
    l.m = static_cast<std::int64_t>(up < cap ? up : cap);
    l.w = w;
  }
  std::optional<LaneId> Pick() {
    const LaneId* best = nullptr;
    const Lane* bl = nullptr;
    for (const auto& [id, l] : lanes_) {
      if (!l.in) continue;
      if (bl == nullptr) {
        best = &id;
        bl = &l;
        continue;
      }
      const __int128 x = static_cast<__int128>(l.m) * bl->w;
      const __int128 y = static_cast<__int128>(bl->m) * l.w;
      if (x < y || (x == y && l.seq < bl->seq)) {
        best = &id;
        bl = &l;
      }
    }
    if (best == nullptr) return std::nullopt;
    Lane& l = lanes_[*best];
    vm_ = l.m;
    vw_ = l.w;
    ++l.m;
    l.seq = seq_++;
    return *best;
  }

 private:
  struct Lane {
    std::int64_t w;
    std::int64_t m;
    std::uint64_t seq;
    bool in;
  };
  std::int64_t Entry(std::int64_t w) const {
    return static_cast<std::int64_t>(static_cast<__int128>(vm_) * w / vw_ + 1);
  }
  std::map<LaneId, Lane> lanes_;
  std::int64_t vm_ = 0;
  std::int64_t vw_ = 1;
  std::uint64_t seq_ = 0;
};

TEST(FlowWeightedRotation, HeapAndRebasingPickExactlyAsTheNaiveReference) {
  std::uint64_t rebases = 0;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    WeightedRotation plain;
    WeightedRotation rebasing(/*rebase_at=*/1);
    NaiveRotation naive;
    std::map<LaneId, bool> in;  // known lanes -> in rotation
    for (int step = 0; step < 6000; ++step) {
      const LaneId id = rng.Uniform(12);
      // Mostly small weights so that virtual time moves fast enough for frequent rebases.
      const auto w = 1 + static_cast<std::int64_t>(rng.Uniform(rng.Uniform(16) ? 4 : 1000));
      const std::uint64_t op = rng.Uniform(10);
      const bool known = in.count(id) != 0;
      if (op < 2 && !(known && in[id])) {
        ASSERT_TRUE(plain.Add(id, w).ok());
        ASSERT_TRUE(rebasing.Add(id, w).ok());
        naive.Add(id, w);
        in[id] = true;
      } else if (op == 2 && known && in[id]) {
        ASSERT_TRUE(plain.Remove(id).ok());
        ASSERT_TRUE(rebasing.Remove(id).ok());
        naive.Remove(id);
        in[id] = false;
      } else if (op == 3 && known) {
        ASSERT_TRUE(plain.SetWeight(id, w).ok());
        ASSERT_TRUE(rebasing.SetWeight(id, w).ok());
        naive.SetWeight(id, w);
      } else if (op == 4 && rng.Uniform(4) == 0) {
        plain.Forget(id);
        rebasing.Forget(id);
        naive.Forget(id);
        in.erase(id);
      } else {
        const std::optional<LaneId> want = naive.Pick();
        ASSERT_EQ(plain.Pick(), want) << "step " << step;
        ASSERT_EQ(rebasing.Pick(), want) << "step " << step;
      }
    }
    EXPECT_EQ(plain.rebases(), 0u);
    rebases += rebasing.rebases();
  }
  EXPECT_GT(rebases, 100u);  // the equivalence above was tested across many rebases
}

}  // namespace
}  // namespace ym::flow
