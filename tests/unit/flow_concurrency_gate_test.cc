// Unit tests of the concurrency gate (core/flow/concurrency_gate.h): the cap holds after every
// step of a random sequence checked against a trivial model, a release without an admit is an
// error and not an underflow, and a key costs memory only while it has holders.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "common/rng.h"
#include "core/flow/concurrency_gate.h"

namespace ym::flow {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;

KeyedConcurrencyGate<std::string> MakeKeyed(std::int64_t cap) {
  auto g = KeyedConcurrencyGate<std::string>::Make({cap});
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return std::move(g).value();
}

TEST(FlowConcurrencyConfig, ValidateRefusesCapsOutsideOneToMax) {
  EXPECT_TRUE(ConcurrencyConfig{1}.Validate().ok());
  EXPECT_TRUE(ConcurrencyConfig{ConcurrencyConfig::kMaxCap}.Validate().ok());
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-1}, ConcurrencyConfig::kMaxCap + 1}) {
    Status s = ConcurrencyConfig{bad}.Validate();
    EXPECT_EQ(s.code(), Code::kValidation);
    EXPECT_NE(s.message().find("concurrency cap"), std::string::npos) << s.message();
    EXPECT_FALSE(KeyedConcurrencyGate<int>::Make({bad}).ok());
    EXPECT_FALSE(ConcurrencyGate::Make({bad}).ok());
  }
}

TEST(FlowConcurrencyGate, CapOneIsAMutexPerKey) {
  auto g = MakeKeyed(1);
  EXPECT_TRUE(g.Admit("acme"));
  EXPECT_FALSE(g.Admit("acme"));
  EXPECT_EQ(g.NextOpen("acme", kNow), kNever);  // opens only by a Release
  EXPECT_TRUE(g.Admit("globex"));               // other keys are independent
  EXPECT_TRUE(g.Release("acme").ok());
  EXPECT_EQ(g.NextOpen("acme", kNow), kNow);
  EXPECT_TRUE(g.Admit("acme"));
  EXPECT_EQ(g.Count("acme"), 1);
}

TEST(FlowConcurrencyGate, ReleaseWithoutAdmitIsAnErrorNotAnUnderflow) {
  auto g = MakeKeyed(2);
  Status s = g.Release("ghost");
  EXPECT_EQ(s.code(), Code::kInvalidState);
  EXPECT_EQ(g.size(), 0u);
  EXPECT_TRUE(g.Admit("k"));
  EXPECT_TRUE(g.Release("k").ok());
  EXPECT_EQ(g.Release("k").code(), Code::kInvalidState);  // a double release
  // Had either bad release gone through as a decrement, the key would now admit three.
  EXPECT_TRUE(g.Admit("k"));
  EXPECT_TRUE(g.Admit("k"));
  EXPECT_FALSE(g.Admit("k"));

  auto single = ConcurrencyGate::Make({1});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->Release().code(), Code::kInvalidState);
  EXPECT_TRUE(single->Admit());
  EXPECT_FALSE(single->Admit());
  EXPECT_EQ(single->NextOpen(kNow), kNever);
  EXPECT_TRUE(single->Release().ok());
  EXPECT_EQ(single->NextOpen(kNow), kNow);
  EXPECT_EQ(single->count(), 0);
}

TEST(FlowConcurrencyGate, AKeyIsForgottenWhenItsCountReturnsToZero) {
  auto g = MakeKeyed(3);
  for (int i = 0; i < 10'000; ++i) {
    const std::string key = "customer-" + std::to_string(i);
    ASSERT_TRUE(g.Admit(key));
    ASSERT_TRUE(g.Admit(key));
    ASSERT_TRUE(g.Release(key).ok());
    ASSERT_TRUE(g.Release(key).ok());
  }
  EXPECT_EQ(g.size(), 0u);
}

TEST(FlowConcurrencyGate, LoweringTheCapRevokesNothingAndRefusesUntilBelow) {
  auto g = MakeKeyed(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(g.Admit("k"));
  ASSERT_TRUE(g.SetCap({1}).ok());
  EXPECT_EQ(g.SetCap({0}).code(), Code::kValidation);
  EXPECT_EQ(g.cap(), 1);
  EXPECT_EQ(g.Count("k"), 3);
  EXPECT_FALSE(g.Admit("k"));
  ASSERT_TRUE(g.Release("k").ok());
  EXPECT_FALSE(g.Admit("k"));  // 2 held, cap 1
  ASSERT_TRUE(g.Release("k").ok());
  EXPECT_FALSE(g.Admit("k"));  // 1 held, cap 1
  ASSERT_TRUE(g.Release("k").ok());
  EXPECT_TRUE(g.Admit("k"));
}

// Random admits and releases (some of them bogus) over a few keys against a map of counts: every
// decision and error equals the model's, and after every step every key's count is <= cap and
// the gate holds exactly the keys whose model count is > 0.
TEST(FlowConcurrencyGate, RandomStepsMatchATrivialModel) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const std::int64_t cap = 1 + static_cast<std::int64_t>(rng.Uniform(4));
    auto g = KeyedConcurrencyGate<int>::Make({cap});
    ASSERT_TRUE(g.ok());
    std::map<int, std::int64_t> model;
    for (int step = 0; step < 2000; ++step) {
      const int key = static_cast<int>(rng.Uniform(8));
      if (rng.Uniform(2) == 0) {
        const bool expect = model[key] < cap;
        ASSERT_EQ(g->Admit(key), expect) << "step " << step;
        if (expect) ++model[key];
      } else {
        const bool expect = model[key] > 0;
        ASSERT_EQ(g->Release(key).ok(), expect) << "step " << step;
        if (expect) --model[key];
      }
      std::size_t held = 0;
      for (const auto& [k, n] : model) {
        ASSERT_EQ(g->Count(k), n);
        ASSERT_LE(g->Count(k), cap);
        ASSERT_EQ(g->NextOpen(k, kNow), n < cap ? kNow : kNever);
        held += n > 0 ? 1 : 0;
      }
      ASSERT_EQ(g->size(), held) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace ym::flow
