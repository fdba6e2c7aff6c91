// Unit tests of LeaseNames (core/lease_names.h): a lease's list of queue names resolved once per
// list and queue epoch, always equal to a fresh resolution.

#include "core/lease_names.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ym {
namespace {

class LeaseNamesTest : public ::testing::Test {
 protected:
  const LeaseNames::Resolved& Resolve(const std::vector<std::string>& names) {
    return cache_.Resolve(names, epoch_,
                          [this](const std::string& n) -> std::optional<std::uint32_t> {
                            ++lookups_;
                            auto it = slots_.find(n);
                            if (it == slots_.end()) return std::nullopt;
                            return it->second;
                          });
  }
  static std::string KeyOf(const std::vector<std::uint32_t>& slots) {
    return std::string(reinterpret_cast<const char*>(slots.data()),
                       slots.size() * sizeof(slots[0]));
  }

  LeaseNames cache_;
  std::map<std::string, std::uint32_t> slots_{{"a", 4}, {"b", 7}, {"c", 9}};
  std::uint64_t epoch_ = 1;
  int lookups_ = 0;
};

TEST_F(LeaseNamesTest, ResolvesInRequestOrderSkippingUnknownNamesAndCachesPerList) {
  const auto& r = Resolve({"c", "x", "a", "c"});
  EXPECT_EQ(r.slots, (std::vector<std::uint32_t>{9, 4, 9}));
  EXPECT_EQ(r.slots_key, KeyOf({9, 4, 9}));
  EXPECT_EQ(lookups_, 4);
  // The same list again: no lookup at all.
  EXPECT_EQ(Resolve({"c", "x", "a", "c"}).slots, (std::vector<std::uint32_t>{9, 4, 9}));
  EXPECT_EQ(lookups_, 4);
  EXPECT_EQ(cache_.resolutions(), 1u);
  // Another list is another entry; names that concatenate alike are still different lists.
  EXPECT_EQ(Resolve({"ab"}).slots, std::vector<std::uint32_t>{});
  EXPECT_EQ(Resolve({"a", "b"}).slots, (std::vector<std::uint32_t>{4, 7}));
  EXPECT_EQ(cache_.size(), 3u);
  EXPECT_TRUE(Resolve({}).slots.empty());
}

TEST_F(LeaseNamesTest, ANewEpochResolvesAgain) {
  EXPECT_EQ(Resolve({"a", "d"}).slots, (std::vector<std::uint32_t>{4}));
  // Queue d is created and a is freed, its slot reused by e: the scheduler bumps the epoch.
  slots_["d"] = 11;
  slots_.erase("a");
  slots_["e"] = 4;
  EXPECT_EQ(Resolve({"a", "d"}).slots, (std::vector<std::uint32_t>{4}))
      << "same epoch: the cached answer (the scheduler bumps it on every such change)";
  ++epoch_;
  const auto& r = Resolve({"a", "d"});
  EXPECT_EQ(r.slots, (std::vector<std::uint32_t>{11}));
  EXPECT_EQ(r.slots_key, KeyOf({11}));
  EXPECT_EQ(cache_.resolutions(), 2u);
}

TEST_F(LeaseNamesTest, StaysBoundedByStartingOver) {
  for (std::size_t i = 0; i < LeaseNames::kMaxLists + 10; ++i) {
    EXPECT_EQ(Resolve({"a", std::to_string(i)}).slots, (std::vector<std::uint32_t>{4}));
    EXPECT_LE(cache_.size(), LeaseNames::kMaxLists);
  }
  EXPECT_EQ(Resolve({"b"}).slots, (std::vector<std::uint32_t>{7}));
}

}  // namespace
}  // namespace ym
