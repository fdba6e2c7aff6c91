// Unit tests of InternTable (core/intern_table.h) and Fifo (core/fifo.h), the small containers
// that keep core's memory proportional to live work.

#include "core/intern_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/fifo.h"

namespace ym {
namespace {

TEST(InternTableTest, NamesLiveAsLongAsTheirReferences) {
  InternTable t;
  EXPECT_EQ(t.Acquire(""), 0u);  // the empty name is id 0 and never counted
  const std::uint32_t a = t.Acquire("alpha");
  EXPECT_EQ(t.Acquire("alpha"), a);
  EXPECT_EQ(t.Refs(a), 2u);
  EXPECT_EQ(t.Name(a), "alpha");
  t.Ref(a);
  t.Release(a);
  t.Release(a);
  EXPECT_EQ(t.size(), 1u);
  t.Release(a);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.Find("alpha").has_value());
  // The freed slot is reused: slots stay bounded by the names alive at once.
  const std::uint32_t b = t.Acquire("beta");
  EXPECT_EQ(b, a);
  EXPECT_EQ(t.Name(b), "beta");
  EXPECT_EQ(t.slots(), 2u);
}

TEST(InternTableTest, ManyNamesSeenOnceLeaveNothingBehind) {
  InternTable t;
  for (int i = 0; i < 10'000; ++i) {
    const std::uint32_t id = t.Acquire("worker-" + std::to_string(i));
    t.Release(id);
  }
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.slots(), 2u);  // id 0 and one reused slot
}

TEST(FifoTest, KeepsOrderAndGivesMemoryBack) {
  Fifo<int> f;
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.capacity(), 0u);  // an idle FIFO allocates nothing
  for (int i = 0; i < 1000; ++i) f.push_back(i);
  for (int i = 0; i < 900; ++i) {
    ASSERT_EQ(f.front(), i);
    f.pop_front();
  }
  EXPECT_EQ(f.size(), 100u);
  EXPECT_LE(f.capacity(), 1024u);
  std::vector<int> rest(f.begin(), f.end());
  ASSERT_EQ(rest.size(), 100u);
  EXPECT_EQ(rest.front(), 900);
  f.Filter([](int v) { return v % 2 == 0; });
  EXPECT_EQ(f.size(), 50u);
  EXPECT_EQ(f.front(), 900);
  while (!f.empty()) f.pop_front();
  EXPECT_EQ(f.capacity(), 0u);
}

}  // namespace
}  // namespace ym
