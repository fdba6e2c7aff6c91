// Unit tests of the GCRA rate limiter (core/flow/gcra.h): the window bound (1) of the header
// checked exactly with integer arithmetic, an exact model of which calls must be admitted,
// steady callers, NextOpen, extreme configs, and the keyed variant's memory bound.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/rng.h"
#include "core/flow/gcra.h"

namespace ym::flow {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

Gcra MakeRate(const GcraConfig& c) {
  auto r = Gcra::Make(c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.value();
}

// Bound (1) over every closed window [a_i, a_j] of a sorted list of admit times:
// (j - i + 1) <= (a_j - a_i) * count / period + burst, cross-multiplied to stay in integers.
// Returns the first violating pair as "i..j", or "" when the bound holds everywhere.
std::string FirstViolation(const std::vector<std::int64_t>& a, const GcraConfig& c) {
  for (std::size_t j = 0; j < a.size(); ++j) {
    for (std::size_t i = 0; i <= j; ++i) {
      const std::int64_t n = static_cast<std::int64_t>(j - i + 1);
      if ((n - c.burst) * c.period_ms > (a[j] - a[i]) * c.count) {
        return std::to_string(i) + ".." + std::to_string(j);
      }
    }
  }
  return "";
}

// The model: a call at `now` must be admitted iff adding it keeps (1) true for every window
// ending at it (windows ending earlier already held). O(admitted) per call.
bool ModelAdmits(const std::vector<std::int64_t>& admitted, std::int64_t now, const GcraConfig& c) {
  const std::int64_t k = static_cast<std::int64_t>(admitted.size());
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t n = k - i + 1;  // admits in [admitted[i], now], the new one included
    if ((n - c.burst) * c.period_ms > (now - admitted[static_cast<std::size_t>(i)]) * c.count) {
      return false;
    }
  }
  return true;
}

TEST(FlowGcraConfig, ValidateNamesTheBadField) {
  EXPECT_TRUE(GcraConfig::PerSecond(7).Validate().ok());
  EXPECT_TRUE((GcraConfig{GcraConfig::kMaxCount, 1, GcraConfig::kMaxBurst}).Validate().ok());
  EXPECT_TRUE((GcraConfig{1, GcraConfig::kMaxPeriodMs, GcraConfig::kMaxBurst}).Validate().ok());
  struct Bad {
    GcraConfig c;
    const char* word;
  };
  for (const Bad& b :
       {Bad{{0, 1000, 1}, "count"}, Bad{{-5, 1000, 1}, "count"},
        Bad{{GcraConfig::kMaxCount + 1, 1000, 1}, "count"}, Bad{{1, 0, 1}, "period"},
        Bad{{1, -1000, 1}, "period"}, Bad{{1, GcraConfig::kMaxPeriodMs + 1, 1}, "period"},
        Bad{{1, 1000, 0}, "burst"}, Bad{{1, 1000, -1}, "burst"},
        Bad{{1, 1000, GcraConfig::kMaxBurst + 1}, "burst"}}) {
    Status s = b.c.Validate();
    EXPECT_EQ(s.code(), Code::kValidation);
    EXPECT_NE(s.message().find(b.word), std::string::npos) << s.message();
    EXPECT_FALSE(Gcra::Make(b.c).ok());
  }
}

TEST(FlowGcra, BurstAtOneInstantThenOneInterval) {
  GcraLimiter l(MakeRate(GcraConfig::PerSecond(10, 3)));  // T = 100 ms, tau = 200 ms
  EXPECT_EQ(l.NextOpen(kStart), kStart);
  EXPECT_TRUE(l.Admit(kStart));
  EXPECT_TRUE(l.Admit(kStart));
  EXPECT_TRUE(l.Admit(kStart));
  EXPECT_FALSE(l.Admit(kStart));  // a fresh key admits exactly `burst` at one instant
  EXPECT_EQ(l.NextOpen(kStart), kStart + 100);
  EXPECT_FALSE(l.Admit(kStart + 99));
  EXPECT_TRUE(l.Admit(kStart + 100));
  EXPECT_EQ(l.NextOpen(kStart + 100), kStart + 200);
  // Idle for a long time: the burst comes back, never more.
  const std::int64_t later = kStart + 3'600'000;
  EXPECT_TRUE(l.Admit(later));
  EXPECT_TRUE(l.Admit(later));
  EXPECT_TRUE(l.Admit(later));
  EXPECT_FALSE(l.Admit(later));
}

TEST(FlowGcra, FractionalIntervalIsExact) {
  // 7/s: T = 142.857... ms. Fresh with burst 1, the k-th admit may come at ceil(k * T).
  GcraLimiter l(MakeRate(GcraConfig::PerSecond(7)));
  EXPECT_TRUE(l.Admit(kStart));
  EXPECT_EQ(l.NextOpen(kStart), kStart + 143);
  EXPECT_FALSE(l.Admit(kStart + 142));
  EXPECT_TRUE(l.Admit(kStart + 143));
}

TEST(FlowGcra, SteadyCallerAtAWholeMsIntervalIsNeverRefused) {
  GcraLimiter l(MakeRate(GcraConfig::PerSecond(10)));  // T = 100 ms, burst 1
  for (std::int64_t k = 0; k < 10'000; ++k) {
    ASSERT_TRUE(l.Admit(kStart + 100 * k)) << k;
    ASSERT_FALSE(l.Admit(kStart + 100 * k)) << k;  // and never one more
  }
}

TEST(FlowGcra, SteadyCallerAtAFractionalRateIsNeverRefused) {
  // A caller at exactly 7/s on a ms clock calls at ceil(k * 1000 / 7), up to 1 ms late, so its
  // own sequence needs a tolerance of 1 ms, i.e. burst >= 2 (see the header and
  // docs/flow-control.md): with it, an hour of calls is admitted in full.
  const GcraConfig c = GcraConfig::PerSecond(7, 2);
  GcraLimiter l(MakeRate(c));
  for (std::int64_t k = 0; k <= 7 * 3600; ++k) {
    const std::int64_t t = kStart + (k * 1000 + 6) / 7;
    ASSERT_TRUE(l.Admit(t)) << k;
  }
}

TEST(FlowGcra, CallerDrivenByNextOpenGetsExactlyRateTimesWindowPlusBurst) {
  // The scheduler's pattern: try, and when refused, come back at NextOpen. Over an hour the
  // admits in [start, start + W] reach the bound (1) exactly: 7 * 3600 + burst.
  for (std::int64_t burst : {2, 5}) {
    const GcraConfig c = GcraConfig::PerSecond(7, burst);
    GcraLimiter l(MakeRate(c));
    std::int64_t t = kStart;
    std::int64_t admitted = 0;
    while (true) {
      t = l.NextOpen(t);
      if (t > kStart + 3'600'000) break;
      ASSERT_TRUE(l.Admit(t)) << "NextOpen promised " << t;
      ++admitted;
    }
    EXPECT_EQ(admitted, 7 * 3600 + burst);
  }
}

TEST(FlowGcra, BurstOneOnAMsClockSpacesAdmitsByWholeMs) {
  // With burst 1 the bound (1) itself forbids two admits closer than T, and admit times are
  // whole ms, so a rate whose interval is fractional is delivered at one per ceil(T): 400/s
  // (T = 2.5 ms) gives one per 3 ms. This is the exact bound, not a rounding of the limiter;
  // a burst of at least 2 delivers the full rate (previous test).
  const GcraConfig c = GcraConfig::PerSecond(400);
  GcraLimiter l(MakeRate(c));
  std::int64_t t = kStart;
  std::vector<std::int64_t> times;
  for (int i = 0; i < 1000; ++i) {
    t = l.NextOpen(t);
    ASSERT_TRUE(l.Admit(t));
    times.push_back(t);
  }
  EXPECT_EQ(times.back() - times.front(), 3 * 999);
  EXPECT_EQ(FirstViolation(times, c), "");
}

// The property test: random configs, random non-decreasing times (many calls at the same ms,
// bursts, long idles). Every decision must equal the model's (so the limiter neither admits a
// call that breaks (1) nor refuses one that keeps it), NextOpen must be the first ms the model
// admits, and the admitted times must satisfy (1) over every window.
TEST(FlowGcra, RandomCallsMatchTheExactWindowModel) {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const std::int64_t periods[] = {1, 7, 100, 1000, 60'000};
    GcraConfig c;
    c.count = 1 + static_cast<std::int64_t>(rng.Uniform(20));
    c.period_ms = periods[rng.Uniform(5)];
    c.burst = 1 + static_cast<std::int64_t>(rng.Uniform(6));
    const Gcra rate = MakeRate(c);
    const std::int64_t spacing = c.period_ms / c.count + 1;  // typical gap around the interval
    GcraTime tat;
    std::vector<std::int64_t> admitted;
    std::int64_t now = kStart;
    for (int call = 0; call < 300; ++call) {
      switch (rng.Uniform(4)) {
        case 0:
          break;  // same ms
        case 1:
          now += static_cast<std::int64_t>(rng.Uniform(static_cast<std::uint64_t>(spacing)));
          break;
        case 2:
          now += static_cast<std::int64_t>(rng.Uniform(static_cast<std::uint64_t>(3 * spacing)));
          break;
        default:
          if (rng.Uniform(10) == 0) now += 50 * spacing;  // an idle stretch
          break;
      }
      const bool model = ModelAdmits(admitted, now, c);
      const std::int64_t next = rate.NextOpen(tat, now);
      if (model) {
        ASSERT_EQ(next, now) << "call " << call;
      } else {
        ASSERT_GT(next, now) << "call " << call;
        ASSERT_TRUE(ModelAdmits(admitted, next, c)) << "call " << call;
        ASSERT_FALSE(ModelAdmits(admitted, next - 1, c)) << "call " << call;
      }
      ASSERT_EQ(rate.Admit(tat, now), model) << "call " << call << " at +" << now - kStart;
      if (model) admitted.push_back(now);
    }
    ASSERT_EQ(FirstViolation(admitted, c), "");
  }
}

TEST(FlowGcra, ExtremeConfigsAndTimesDoNotOverflow) {
  // The largest tolerance (one per day with a billion burst) and the tiniest interval
  // (a billion per ms), at times near both ends of int64: no UB (the asan-ubsan preset traps),
  // and the answers stay ordered.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  for (const GcraConfig& c : {GcraConfig{1, GcraConfig::kMaxPeriodMs, GcraConfig::kMaxBurst},
                              GcraConfig{GcraConfig::kMaxCount, 1, GcraConfig::kMaxBurst},
                              GcraConfig{GcraConfig::kMaxCount, GcraConfig::kMaxPeriodMs, 1}}) {
    const Gcra rate = MakeRate(c);
    for (std::int64_t now : {kMin + 1, std::int64_t{0}, kStart, kMax - 10, kMax}) {
      GcraTime tat;
      EXPECT_TRUE(rate.Admit(tat, now));
      for (int i = 0; i < 3; ++i) (void)rate.Admit(tat, now);
      EXPECT_GE(rate.NextOpen(tat, now), now);
      EXPECT_GE(Gcra::ExpiresAt(tat), now);
    }
  }
  // A billion per ms with burst 1: exactly one per ms (bound (1) with W = 0 allows one).
  GcraLimiter l(MakeRate({GcraConfig::kMaxCount, 1, 1}));
  EXPECT_TRUE(l.Admit(kStart));
  EXPECT_FALSE(l.Admit(kStart));
  EXPECT_EQ(l.NextOpen(kStart), kStart + 1);
}

// A clock stepping back cannot buy admits: with every admit stamped at the latest time the
// limiter has seen, bound (1) holds, for one state and per key of the keyed limiter (where a
// key stepping back into a time before its neighbours' calls, or after being dropped, must not
// count as fresh).
TEST(FlowGcra, TimeSteppingBackCannotBuyAdmits) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const GcraConfig c{1 + static_cast<std::int64_t>(rng.Uniform(10)), 1000,
                       1 + static_cast<std::int64_t>(rng.Uniform(4))};
    GcraLimiter single(MakeRate(c));
    KeyedGcra<int> keyed(MakeRate(c));
    std::vector<std::int64_t> stamps_single;
    std::map<int, std::vector<std::int64_t>> stamps_keyed;
    std::int64_t now = kStart;
    std::int64_t latest_single = std::numeric_limits<std::int64_t>::min();
    std::int64_t latest_keyed = std::numeric_limits<std::int64_t>::min();
    for (int call = 0; call < 600; ++call) {
      // Mostly forward, sometimes a step back of up to 10 s.
      now += static_cast<std::int64_t>(rng.Uniform(300)) - (rng.Uniform(8) == 0 ? 10'000 : 0);
      if (rng.Uniform(3) == 0) {
        latest_single = std::max(latest_single, now);
        if (single.Admit(now)) stamps_single.push_back(latest_single);
      }
      const int key = static_cast<int>(rng.Uniform(4));
      latest_keyed = std::max(latest_keyed, now);
      ASSERT_GE(keyed.NextOpen(key, now), latest_keyed);
      if (keyed.Admit(key, now)) stamps_keyed[key].push_back(latest_keyed);
    }
    ASSERT_EQ(FirstViolation(stamps_single, c), "");
    for (const auto& [key, stamps] : stamps_keyed) {
      ASSERT_EQ(FirstViolation(stamps, c), "") << "key " << key;
    }
  }
}

// KeyedGcra against a map of independent limiters that never forgets a key: dropping expired
// keys must change no decision and no NextOpen.
TEST(FlowGcraKeyed, DroppingExpiredKeysChangesNoDecision) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const GcraConfig c{1 + static_cast<std::int64_t>(rng.Uniform(5)), 1000,
                       1 + static_cast<std::int64_t>(rng.Uniform(3))};
    const Gcra rate = MakeRate(c);
    KeyedGcra<std::uint32_t> keyed(rate);
    std::map<std::uint32_t, GcraTime> reference;
    std::int64_t now = kStart;
    for (int call = 0; call < 3000; ++call) {
      now += static_cast<std::int64_t>(rng.Uniform(150));
      const auto key = static_cast<std::uint32_t>(rng.Uniform(40));
      ASSERT_EQ(keyed.NextOpen(key, now), rate.NextOpen(reference[key], now)) << call;
      ASSERT_EQ(keyed.Admit(key, now), rate.Admit(reference[key], now)) << call;
    }
  }
}

TEST(FlowGcraKeyed, MemoryStaysBoundedByKeysLiveAtOnce) {
  // 10/s per key: a key admitted at t holds state until t + 100. One new key per ms means at
  // most 100 keys are unexpired at once; the map must never hold more than that plus one,
  // though 100,000 distinct keys pass through.
  KeyedGcra<std::string> keyed(MakeRate(GcraConfig::PerSecond(10)));
  std::size_t peak = 0;
  for (std::int64_t i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(keyed.Admit("customer-" + std::to_string(i), kStart + i));
    peak = std::max(peak, keyed.size());
  }
  EXPECT_LE(peak, 101u);
  EXPECT_GE(peak, 100u);  // the keys really are held while they constrain
  // Once everything has expired, a sweep from the scheduler's tick empties it.
  keyed.Sweep(kStart + 200'000, 1'000);
  EXPECT_EQ(keyed.size(), 0u);
}

TEST(FlowGcraKeyed, AKeyReadmittedBeforeItsExpiryIsKept) {
  KeyedGcra<int> keyed(MakeRate(GcraConfig::PerSecond(10)));  // T = 100 ms
  EXPECT_TRUE(keyed.Admit(1, kStart));                        // expiry entry at +100
  EXPECT_TRUE(keyed.Admit(1, kStart + 100));                  // TAT +200
  EXPECT_EQ(keyed.Sweep(kStart + 150, 10), 0u);               // entry due, key not: re-pushed
  EXPECT_EQ(keyed.size(), 1u);
  EXPECT_FALSE(keyed.Admit(1, kStart + 150));
  EXPECT_EQ(keyed.NextOpen(1, kStart + 150), kStart + 200);
  EXPECT_EQ(keyed.Sweep(kStart + 200, 10), 1u);
  EXPECT_EQ(keyed.size(), 0u);
}

// A limiter restarted at r without its state (a server restart, a changed rate) starts from
// Saturated(r). Whatever the old one admitted up to the crash at c <= r, the union of both
// sequences must satisfy (1), and the restarted one gives up at most one burst: its first admit
// is at r + T (rounded up to a whole ms).
TEST(FlowGcraKeyed, AFloorAtSaturatedKeepsTheBoundAcrossARestart) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const std::int64_t periods[] = {1, 7, 100, 1000, 60'000};
    GcraConfig c;
    c.count = 1 + static_cast<std::int64_t>(rng.Uniform(20));
    c.period_ms = periods[rng.Uniform(5)];
    c.burst = 1 + static_cast<std::int64_t>(rng.Uniform(6));
    const Gcra rate = MakeRate(c);
    const std::int64_t spacing = c.period_ms / c.count + 1;
    std::vector<std::int64_t> admitted;
    KeyedGcra<int> before(rate);
    std::int64_t now = kStart;
    for (int call = 0; call < 100; ++call) {  // a greedy caller before the crash
      now += static_cast<std::int64_t>(rng.Uniform(static_cast<std::uint64_t>(spacing)));
      if (before.Admit(1, now)) admitted.push_back(now);
    }
    const std::int64_t restart =
        now + static_cast<std::int64_t>(rng.Uniform(static_cast<std::uint64_t>(2 * spacing)));
    KeyedGcra<int> after(rate);
    after.SetFloor(rate.Saturated(restart));
    // One interval after the restart, rounded up: ceil(restart + period / count).
    const std::int64_t first = restart + (c.period_ms + c.count - 1) / c.count;
    EXPECT_EQ(after.NextOpen(1, restart), first);
    EXPECT_EQ(after.NextOpen(2, restart), first) << "every key starts saturated";
    now = restart;
    for (int call = 0; call < 100; ++call) {
      now = after.NextOpen(1, now);  // as greedy as possible
      ASSERT_TRUE(after.Admit(1, now));
      admitted.push_back(now);
    }
    ASSERT_EQ(FirstViolation(admitted, c), "");
  }
}

}  // namespace
}  // namespace ym::flow
