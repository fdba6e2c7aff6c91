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

// Admit at time 0 on both clocks (caps only): the position of the refusing gate, if any.
std::optional<std::size_t> AdmitNow(LimitSet& set, LimitSet::SetId id) {
  std::vector<QuotaUse> uses;
  auto refused = set.Admit(id, 0, 0, &uses);
  if (!refused) return std::nullopt;
  EXPECT_EQ(refused->why, Block::kConcurrency);
  return refused->pos;
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
  ExpectInvalid(R"({})", "at least one of");
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
  ASSERT_TRUE(set.Put(Spec("acct", 1, "payload.account.id"), 0, &created).ok());
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
  ASSERT_TRUE(set.Put(only_k2, 0, &created).ok());
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), 0, &created).ok());
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
  ASSERT_TRUE(set.Put(Spec("total", 2), 0, &created).ok());
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), 0, &created).ok());
  const auto a = set.Acquire(Subject("a"));
  const auto b = set.Acquire(Subject("b"));
  const auto c = set.Acquire(Subject("c"));
  EXPECT_FALSE(AdmitNow(set, a).has_value());
  // a's mutex refuses; total must not have been taken by the refused call.
  auto refused = AdmitNow(set, a);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(set.Gates(a)[*refused].key, "a");
  EXPECT_EQ(set.Count("total", ""), 1);
  set.Wait(a, *refused, LaneRef{1, 2, a});
  EXPECT_TRUE(set.Blocked(a, 0, 0).has_value());
  EXPECT_FALSE(AdmitNow(set, b).has_value());
  // total is full: c is refused by it.
  refused = AdmitNow(set, c);
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
  EXPECT_FALSE(AdmitNow(set, a).has_value());
  EXPECT_TRUE(AdmitNow(set, a).has_value());
}

TEST(FlowLimitSet, HoldCountsPastTheCapAndRecountForgets) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("mutex", 1, "concurrency_key"), 0, &created).ok());
  const auto a = set.Acquire(Subject("a"));
  set.Hold(a);
  set.Hold(a);
  EXPECT_EQ(set.Count("mutex", "a"), 2);
  EXPECT_TRUE(AdmitNow(set, a).has_value());
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

TEST(FlowLimitSpec, RateAndQuotaMembersRoundTripAndValidate) {
  auto r = LimitSpec::FromJson(
      "api", R"({"key":"concurrency_key","rate":{"count":10,"per":"minute","burst":3},)"
             R"("quota":{"count":500,"per":"day","time_zone":"Europe/Paris"}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->concurrency.has_value()) << "a rate or a quota alone is a limit";
  EXPECT_EQ(r->rate, (GcraConfig{10, 60'000, 3}));
  EXPECT_EQ(r->quota->count, 500);
  EXPECT_EQ(r->quota->period, CalendarPeriod::kDay);
  EXPECT_EQ(r->quota->time_zone, "Europe/Paris");
  EXPECT_EQ(r->ToJson(), R"({"key":"concurrency_key","rate":{"count":10,"per":"minute","burst":3},)"
                         R"("quota":{"count":500,"per":"day","time_zone":"Europe/Paris"}})");
  auto again = LimitSpec::FromJson("api", r->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
  // Defaults: the least burst that reaches the rate on a ms clock; UTC.
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"rate":{"count":5,"per":"second"}})")->rate->burst, 1);
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"rate":{"count":5000,"per":"second"}})")->rate->burst, 5);
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"rate":{"count":3,"period_ms":2}})")->rate->burst, 2);
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"quota":{"count":1,"per":"week"}})")->quota->time_zone,
            "UTC");
  // A period without a name stays in ms.
  EXPECT_EQ(LimitSpec::FromJson("x", R"({"rate":{"count":1,"period_ms":1500}})")->ToJson(),
            R"({"rate":{"count":1,"period_ms":1500,"burst":1}})");

  ExpectInvalid(R"({"rate":{"per":"second"}})", "\"rate.count\"");
  ExpectInvalid(R"({"rate":{"count":1}})", "\"rate.per\"");
  ExpectInvalid(R"({"rate":{"count":1,"per":"fortnight"}})", "\"rate.per\"");
  ExpectInvalid(R"({"rate":{"count":1,"per":"second","period_ms":1000}})", "one of per");
  ExpectInvalid(R"({"rate":{"count":0,"per":"second"}})", "\"rate\"");
  ExpectInvalid(R"({"rate":{"count":1,"period_ms":0}})", "\"rate\"");
  ExpectInvalid(R"({"rate":{"count":1,"period_ms":86400001}})", "\"rate\"");
  ExpectInvalid(R"({"rate":{"count":1,"per":"second","burst":0}})", "\"rate\"");
  ExpectInvalid(R"({"rate":{"count":5000,"per":"second","burst":4}})", "\"rate.burst\"");
  ExpectInvalid(R"({"rate":{"count":1.5,"per":"second"}})", "\"rate.count\"");
  ExpectInvalid(R"({"rate":{"count":1,"per":"second","x":1}})", "\"rate.x\"");
  ExpectInvalid(R"({"quota":{"per":"day"}})", "\"quota.count\"");
  ExpectInvalid(R"({"quota":{"count":1}})", "\"quota.per\"");
  ExpectInvalid(R"({"quota":{"count":0,"per":"day"}})", "\"quota.count\"");
  ExpectInvalid(R"({"quota":{"count":1000000001,"per":"day"}})", "\"quota.count\"");
  ExpectInvalid(R"({"quota":{"count":1,"per":"year"}})", "\"quota.per\"");
  ExpectInvalid(R"({"quota":{"count":1,"per":"day","time_zone":"Mars/Olympus"}})",
                "\"quota.time_zone\"");
  ExpectInvalid(R"({"quota":{"count":1,"per":"day","time_zone":7}})", "\"quota.time_zone\"");
  ExpectInvalid(R"({"quota":[1]})", "\"quota\"");
}

// Epoch ms of 2024-06-10 08:00 UTC, a Monday.
constexpr std::int64_t kWall = 1'718'006'400'000;

TEST(FlowLimitSet, ARateRefusesWithItsOpeningTimeAndChangesNothingElse) {
  LimitSet set;
  bool created = false;
  LimitSpec spec = Spec("api", 5, "concurrency_key");
  spec.rate = GcraConfig{2, 1000, 2};  // 2/s, burst 2: T = 500 ms
  ASSERT_TRUE(set.Put(spec, 0, &created).ok());
  const auto a = set.Acquire(Subject("a"));
  std::vector<QuotaUse> uses;
  EXPECT_FALSE(set.Admit(a, 1000, kWall, &uses));
  EXPECT_FALSE(set.Admit(a, 1000, kWall, &uses));
  auto refused = set.Admit(a, 1000, kWall, &uses);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kRate);
  EXPECT_EQ(refused->until, 1500);
  EXPECT_EQ(BlockReason(refused->why), "rate_limited");
  EXPECT_EQ(set.Count("api", "a"), 2) << "the refusal took no concurrency slot";
  EXPECT_TRUE(uses.empty()) << "no quota, nothing to store";
  EXPECT_EQ(set.Blocked(a, 1499, kWall)->until, 1500);
  EXPECT_FALSE(set.Blocked(a, 1500, kWall));
  EXPECT_FALSE(set.Admit(set.Acquire(Subject("b")), 1000, kWall, &uses)) << "keyed";
  EXPECT_FALSE(set.Admit(a, 1500, kWall, &uses));
}

TEST(FlowLimitSet, AllOrNothingAcrossCapRateAndQuota) {
  LimitSet set;
  bool created = false;
  LimitSpec cap = Spec("cap", 1);
  LimitSpec rate;
  rate.name = "rate";
  rate.rate = GcraConfig{1, 1000, 1};
  LimitSpec quota;
  quota.name = "quota";
  quota.quota = LimitQuota{2, CalendarPeriod::kDay, "UTC"};
  ASSERT_TRUE(set.Put(rate, 0, &created).ok());
  ASSERT_TRUE(set.Put(quota, 0, &created).ok());
  ASSERT_TRUE(set.Put(cap, 0, &created).ok());
  const auto id = set.Acquire(Subject("x"));
  std::vector<QuotaUse> uses;
  ASSERT_FALSE(set.Admit(id, 0, kWall, &uses));
  ASSERT_EQ(uses.size(), 1u);
  EXPECT_EQ(uses[0].limit, "quota");
  EXPECT_EQ(uses[0].used, 1);
  EXPECT_EQ(uses[0].window_start_ms, kWall - 8 * 3'600'000);
  EXPECT_TRUE(uses[0].new_window);
  // The cap refuses: neither the rate nor the quota may have counted this call.
  uses.clear();
  auto refused = set.Admit(id, 5000, kWall + 1, &uses);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kConcurrency);
  EXPECT_TRUE(uses.empty());
  std::vector<LaneRef> woken;
  ASSERT_TRUE(set.Release(id, woken).ok());
  ASSERT_FALSE(set.Admit(id, 5000, kWall + 2, &uses)) << "the rate had not counted the refusal";
  ASSERT_EQ(uses.size(), 1u);
  EXPECT_EQ(uses[0].used, 2) << "nor had the quota";
  EXPECT_FALSE(uses[0].new_window);
  ASSERT_TRUE(set.Release(id, woken).ok());
  refused = set.Admit(id, 10'000, kWall + 3, &uses);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kQuota);
  EXPECT_EQ(refused->until, kWall + 16 * 3'600'000) << "the next UTC midnight";
  EXPECT_EQ(BlockReason(refused->why), "quota_exhausted");
  std::vector<std::pair<std::string, std::int64_t>> top;
  std::size_t keys = 0;
  const CalendarWindow w = set.QuotaTop("quota", 10, &top, &keys);
  EXPECT_EQ(w.start_ms, kWall - 8 * 3'600'000);
  ASSERT_EQ(keys, 1u);
  EXPECT_EQ(top[0], (std::pair<std::string, std::int64_t>{"", 2}));
}

TEST(FlowLimitSet, ReplacingKeepsAnUnchangedRateAndTheQuotaCounts) {
  LimitSet set;
  bool created = false;
  LimitSpec spec;
  spec.name = "l";
  spec.rate = GcraConfig{1, 1000, 1};
  spec.quota = LimitQuota{3, CalendarPeriod::kDay, "UTC"};
  ASSERT_TRUE(set.Put(spec, 0, &created).ok());
  EXPECT_TRUE(created);
  const auto id = set.Acquire(Subject("x"));
  std::vector<QuotaUse> uses;
  ASSERT_FALSE(set.Admit(id, 0, kWall, &uses));
  // The same rate, a larger quota: the rate still refuses until 1000, the count stays at 1.
  spec.quota->count = 4;
  ASSERT_TRUE(set.Put(spec, 10, &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(set.Blocked(id, 10, kWall)->until, 1000);
  ASSERT_FALSE(set.Admit(id, 1000, kWall, &uses));
  EXPECT_EQ(uses.back().used, 2);
  // A changed rate starts saturated at the time of the change (one burst lost at most).
  spec.rate = GcraConfig{2, 1000, 1};
  ASSERT_TRUE(set.Put(spec, 5000, &created).ok());
  EXPECT_EQ(set.Blocked(id, 5000, kWall)->until, 5500);
  // Another time zone: the counts start afresh.
  spec.quota->time_zone = "Asia/Tokyo";
  ASSERT_TRUE(set.Put(spec, 6000, &created).ok());
  ASSERT_FALSE(set.Admit(id, 6000, kWall, &uses));
  EXPECT_EQ(uses.back().used, 1);
  EXPECT_TRUE(uses.back().new_window);
}

TEST(FlowLimitSet, RecoveryRestoresQuotaCountsAndStartsRatesSaturated) {
  LimitSet set;
  bool created = false;
  LimitSpec spec;
  spec.name = "l";
  spec.key = LimitKeyKind::kConcurrencyKey;
  spec.rate = GcraConfig{10, 1000, 5};  // T = 100 ms
  spec.quota = LimitQuota{2, CalendarPeriod::kDay, "UTC"};
  ASSERT_TRUE(set.Put(spec, 7000, &created, LimitSet::RateStart::kSaturated).ok());
  const std::int64_t day = kWall - 8 * 3'600'000;
  set.RestoreQuota("l", "a", day, 2, kWall);
  set.RestoreQuota("l", "b", day - 86'400'000, 2, kWall);  // yesterday's: over
  set.RestoreQuota("nope", "a", day, 2, kWall);            // no such limit: ignored
  const auto a = set.Acquire(Subject("a"));
  const auto b = set.Acquire(Subject("b"));
  auto refused = set.Blocked(a, 7000, kWall);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kRate) << "every key starts saturated: the first gate to ask";
  EXPECT_EQ(refused->until, 7100);
  refused = set.Blocked(a, 7100, kWall);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, Block::kQuota);
  std::vector<QuotaUse> uses;
  EXPECT_FALSE(set.Admit(b, 7100, kWall, &uses));
  EXPECT_EQ(uses.back().used, 1);
  EXPECT_EQ(set.quota_keys(), 2u);
}

TEST(FlowLimitSet, TopCountsAreBoundedAndOrdered) {
  LimitSet set;
  bool created = false;
  ASSERT_TRUE(set.Put(Spec("per", 100, "concurrency_key"), 0, &created).ok());
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
