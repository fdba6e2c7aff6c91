// Unit tests of LimitSpec and LimitSet (core/flow/limit_set.h): validation, the JSON form, the
// key of a job, interned gate sets, all-or-nothing admission and the wake-up of waiting lanes.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/flow/limit_set.h"

namespace ym::flow {
namespace {

LimitSpec Spec(std::string name, std::int64_t cap, std::string key = "") {
  LimitSpec s;
  s.name = std::move(name);
  s.concurrency = cap;
  if (!key.empty()) {
    EXPECT_TRUE(s.SetKey(key).ok());
  }
  return s;
}

LimitSubject Subject(std::string_view ckey, std::string_view payload = "{}",
                     std::string_view kind = "k", std::string_view queue = "q") {
  LimitSubject s;
  s.queue = queue;
  s.kind = kind;
  s.ns = "default";
  s.concurrency_key = ckey;
  s.payload = payload;
  return s;
}

void ExpectInvalid(std::string_view json, std::string_view field) {
  auto r = LimitSpec::FromJson("l", json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.status().code(), Code::kValidation) << json;
  EXPECT_NE(r.status().message().find(field), std::string::npos)
      << json << " -> " << r.status().message();
}

TEST(FlowLimitSpec, JsonRoundTripsAndValidates) {
  auto r = LimitSpec::FromJson(
      "per-acct",
      R"({"match":{"queue":"q","kind":"k","namespace":"n"},"key":"payload.a.b","concurrency":3})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r->match_queue, "q");
  EXPECT_EQ(r->key, LimitKeyKind::kPayload);
  EXPECT_EQ(r->payload_path, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->KeyText(), "payload.a.b");
  auto again = LimitSpec::FromJson("per-acct", r->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"concurrency":1})")->ToJson(), R"({"concurrency":1})");

  ExpectInvalid(R"({"concurrency":0})", "\"concurrency\"");
  ExpectInvalid(R"({"concurrency":1000001})", "\"concurrency\"");
  ExpectInvalid(R"({"concurrency":1.5})", "\"concurrency\"");
  ExpectInvalid(R"({})", "\"concurrency\"");
  ExpectInvalid(R"({"concurrency":1,"key":"tenant"})", "\"key\"");
  ExpectInvalid(R"({"concurrency":1,"key":"payload."})", "\"key\"");
  ExpectInvalid(R"({"concurrency":1,"key":"payload"})", "\"key\"");
  ExpectInvalid(R"({"concurrency":1,"key":"payload.a..b"})", "\"key\"");
  ExpectInvalid(R"({"concurrency":1,"rate":5})", "\"rate\"");
  ExpectInvalid(R"({"concurrency":1,"match":{"tag":"x"}})", "\"match.tag\"");
  ExpectInvalid(R"({"concurrency":1,"match":{"queue":"a b"}})", "\"match.queue\"");
  ExpectInvalid(R"([1])", "object");
  auto bad_name = LimitSpec::FromJson("a/b", R"({"concurrency":1})");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.status().message().find("\"name\""), std::string::npos);
}

TEST(FlowLimitSet, KeysFromEveryKindAndThePayload) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("acct", 1, "payload.account.id"), &created).ok());
  EXPECT_TRUE(created);
  auto key_of = [&](std::string_view payload) {
    const LimitSet::SetId id = set.Acquire(Subject("", payload));
    EXPECT_NE(id, LimitSet::kNoGates);
    std::string key = set.Gates(id).at(0).key;
    set.Unref(id);
    return key;
  };
  EXPECT_EQ(key_of(R"({"account":{"id":"a1"}})"), "a1");
  EXPECT_EQ(key_of(R"({"account":{"id":42}})"), "42");
  // Missing field, wrong type, not an object, not JSON: the empty key.
  EXPECT_EQ(key_of(R"({"account":{}})"), "");
  EXPECT_EQ(key_of(R"({"account":{"id":true}})"), "");
  EXPECT_EQ(key_of(R"({"account":{"id":1.5}})"), "");
  EXPECT_EQ(key_of(R"({"account":"x"})"), "");
  EXPECT_EQ(key_of(R"([1,2])"), "");
  EXPECT_EQ(key_of("null"), "");
  EXPECT_EQ(set.live_sets(), 0u);  // every set was released
}

TEST(FlowLimitSet, MatchSelectsJobsAndEqualSetsShareAnId) {
  LimitSet set;
  bool created = false;
  LimitSpec only_k2 = Spec("k2", 2);
  only_k2.match_kind = "k2";
  ASSERT_TRUE(set.Put(only_k2, &created).ok());
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), &created).ok());
  const auto a1 = set.Acquire(Subject("a"));
  const auto a2 = set.Acquire(Subject("a"));
  const auto b = set.Acquire(Subject("b"));
  const auto a_k2 = set.Acquire(Subject("a", "{}", "k2"));
  EXPECT_EQ(a1, a2);
  EXPECT_NE(a1, b);
  EXPECT_NE(a1, a_k2);
  EXPECT_EQ(set.Gates(a1).size(), 1u);
  EXPECT_EQ(set.Gates(a_k2).size(), 2u);
  EXPECT_EQ(set.live_sets(), 3u);
  set.Unref(a1);
  EXPECT_EQ(set.live_sets(), 3u);
  set.Unref(a2);
  EXPECT_EQ(set.live_sets(), 2u);
  LimitSet none;
  EXPECT_EQ(none.Acquire(Subject("a")), LimitSet::kNoGates);
}

TEST(FlowLimitSet, AdmissionIsAllOrNothingAndReleaseWakesWaiters) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("total", 2), &created).ok());
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), &created).ok());
  const auto a = set.Acquire(Subject("a"));
  const auto b = set.Acquire(Subject("b"));
  const auto c = set.Acquire(Subject("c"));
  EXPECT_FALSE(set.Admit(a).has_value());
  // a's mutex refuses; total must not have been taken by the refused call.
  auto refused = set.Admit(a);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(set.Gates(a)[*refused].key, "a");
  EXPECT_EQ(set.Count("total", ""), 1);
  set.Wait(a, *refused, LaneRef{1, 2, a});
  EXPECT_TRUE(set.Capped(a));
  EXPECT_FALSE(set.Admit(b).has_value());
  // total is full: c is refused by it.
  refused = set.Admit(c);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(set.Count("mutex", "c"), 0);
  set.Wait(c, *refused, LaneRef{1, 3, c});
  EXPECT_EQ(set.waiting_lanes(), 2u);
  std::vector<LaneRef> woken;
  ASSERT_TRUE(set.Release(b, woken).ok());  // total opens: c's lane; a's mutex still held
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].ns, 3u);
  woken.clear();
  ASSERT_TRUE(set.Release(a, woken).ok());
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].ns, 2u);
  EXPECT_EQ(set.waiting_lanes(), 0u);
  // A release of nothing held is an error value, never a credit.
  EXPECT_FALSE(set.Release(a, woken).ok());
  EXPECT_FALSE(set.Admit(a).has_value());
  EXPECT_TRUE(set.Admit(a).has_value());
}

TEST(FlowLimitSet, HoldCountsPastTheCapAndRecountForgets) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), &created).ok());
  const auto a = set.Acquire(Subject("a"));
  set.Hold(a);
  set.Hold(a);
  EXPECT_EQ(set.Count("mutex", "a"), 2);
  EXPECT_TRUE(set.Admit(a).has_value());
  std::vector<LaneRef> woken;
  set.Wait(a, 0, LaneRef{0, 0, a});
  ASSERT_TRUE(set.Release(a, woken).ok());
  EXPECT_TRUE(woken.empty());  // 1 of 1: still at the cap
  ASSERT_TRUE(set.Release(a, woken).ok());
  EXPECT_EQ(woken.size(), 1u);
  set.Hold(a);
  set.BeginRecount();
  EXPECT_EQ(set.Count("mutex", "a"), 0);
  size_t keys = 9;
  EXPECT_TRUE(set.TopCounts("mutex", 10, &keys).empty());
  EXPECT_EQ(keys, 0u);
}

TEST(FlowLimitSet, TopCountsAreBoundedAndOrdered) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("per", 100, "concurrency_key"), &created).ok());
  for (int k = 0; k < 10; ++k) {
    const auto id = set.Acquire(Subject("k" + std::to_string(k)));
    for (int i = 0; i <= k; ++i) set.Hold(id);
  }
  std::size_t keys = 0;
  auto top = set.TopCounts("per", 3, &keys);
  EXPECT_EQ(keys, 10u);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (std::pair<std::string, std::int64_t>{"k9", 10}));
  EXPECT_EQ(top[2], (std::pair<std::string, std::int64_t>{"k7", 8}));
}

}  // namespace
}  // namespace ym::flow
