// Unit tests of QueueNames (core/queue_names.h): the scheduler's queue name -> slot map, ordered
// for pages and hashed for lookups; the two views must always agree.

#include "core/queue_names.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/rng.h"

namespace ym {
namespace {

TEST(QueueNamesTest, FindEmplaceEraseAndPageInNameOrder) {
  QueueNames n;
  EXPECT_TRUE(n.empty());
  EXPECT_EQ(n.find("a"), n.end());
  auto [a, added] = n.emplace("b", 7);
  EXPECT_TRUE(added);
  EXPECT_EQ(a->first, "b");
  EXPECT_EQ(a->second, 7u);
  // A second emplace of the same name changes nothing, as std::map's.
  auto [again, added_again] = n.emplace("b", 9);
  EXPECT_FALSE(added_again);
  EXPECT_EQ(again->second, 7u);
  n.emplace("a", 1);
  n.emplace("c", 3);
  ASSERT_NE(n.find("a"), n.end());
  EXPECT_EQ(n.find("a")->second, 1u);
  EXPECT_EQ(n.find("c")->second, 3u);
  EXPECT_EQ(n.find(std::string("b"))->second, 7u);
  EXPECT_EQ(n.find("bb"), n.end());
  EXPECT_EQ(n.size(), 3u);
  // Pages: upper_bound and iteration in byte order.
  std::vector<std::string> order;
  for (auto it = n.upper_bound("a"); it != n.end(); ++it) order.push_back(it->first);
  EXPECT_EQ(order, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(n.upper_bound("c"), n.end());
  EXPECT_EQ(n.erase("b"), 1u);
  EXPECT_EQ(n.erase("b"), 0u);
  EXPECT_EQ(n.find("b"), n.end());
  EXPECT_EQ(n.size(), 2u);
  // A name erased and added again is found under its new slot.
  n.emplace("b", 11);
  EXPECT_EQ(n.find("b")->second, 11u);
  const QueueNames& cn = n;
  EXPECT_EQ(cn.find("b")->second, 11u);
  EXPECT_EQ(cn.find("zz"), cn.end());
}

// Random adds and removals against std::map: every lookup and the full order agree, also after
// the hash index rehashed many times (its views must keep pointing at live keys).
TEST(QueueNamesTest, AgreesWithAnOrderedMapUnderChurn) {
  QueueNames n;
  std::map<std::string, std::uint32_t> model;
  Rng rng(42);
  for (std::uint32_t step = 0; step < 20'000; ++step) {
    const std::string name = "q" + std::to_string(rng.Next() % 3000);
    if (rng.Next() % 3 == 0) {
      EXPECT_EQ(n.erase(name), model.erase(name));
    } else {
      const bool added = n.emplace(name, step).second;
      EXPECT_EQ(added, model.emplace(name, step).second);
    }
    const std::string probe = "q" + std::to_string(rng.Next() % 3000);
    auto m = model.find(probe);
    auto f = n.find(probe);
    if (m == model.end()) {
      EXPECT_EQ(f, n.end());
    } else {
      ASSERT_NE(f, n.end());
      EXPECT_EQ(f->second, m->second);
    }
  }
  ASSERT_EQ(n.size(), model.size());
  auto m = model.begin();
  for (const auto& [name, slot] : n) {
    EXPECT_EQ(name, m->first);
    EXPECT_EQ(slot, m->second);
    EXPECT_EQ(n.find(name)->second, slot);
    ++m;
  }
}

}  // namespace
}  // namespace ym
