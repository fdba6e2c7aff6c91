// API tokens: the secret format, the Authorization header, hashing, the token book (expiry,
// revocation, last use, concurrency), the failure throttle, the create codec and the store's
// api_tokens rows (docs/security.md, "Tokens").
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <thread>

#include "client/http_client.h"
#include "common/clock.h"
#include "net/auth_throttle.h"
#include "net/auth_token.h"
#include "net/authenticator.h"
#include "net/token_book.h"
#include "net/token_codec.h"
#include "store/memory_store.h"
#include "store/sqlite_store.h"
#include "temp_dir.h"

namespace ym::net {
namespace {

ApiTokenRow Row(const std::string& id, const std::string& name, const std::string& secret,
                const std::string& role = "admin", const std::string& ns = R"(["*"])") {
  ApiTokenRow r;
  r.id = id;
  r.name = name;
  r.hash = HashSecret(secret);
  r.role = role;
  r.namespaces_json = ns;
  r.created_at_ms = 1000;
  return r;
}

std::string Secret() {
  auto s = NewTokenSecret();
  EXPECT_TRUE(s.ok());
  return *s;
}

TEST(AuthToken, SecretsAreWellFormedDistinctAndCarry256Bits) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string s = Secret();
    EXPECT_EQ(s.size(), kSecretLength);
    EXPECT_TRUE(s.starts_with("ym_")) << s;
    EXPECT_TRUE(IsWellFormedSecret(s)) << s;
    EXPECT_TRUE(IsStrongSecret(s)) << s;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 200u);
  // 43 base64url characters: 258 bits, of which the last character's low 2 are zero.
  EXPECT_EQ(kSecretChars * 6, 258u);
  auto id = NewTokenId();
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(IsWellFormedTokenId(*id));
  EXPECT_FALSE(IsWellFormedTokenId("ABCDEF0123456789"));
  EXPECT_FALSE(IsWellFormedTokenId("0123"));
}

TEST(AuthToken, MalformedSecretsAreRefused) {
  const std::string good = Secret();
  EXPECT_FALSE(IsWellFormedSecret(""));
  EXPECT_FALSE(IsWellFormedSecret(good.substr(1)));
  EXPECT_FALSE(IsWellFormedSecret("YM_" + good.substr(3)));
  EXPECT_FALSE(IsWellFormedSecret(good + "A"));
  std::string bad_char = good;
  bad_char[10] = '+';
  EXPECT_FALSE(IsWellFormedSecret(bad_char));
  std::string stray_bits = good;
  stray_bits.back() = 'B';  // value 1: low bits set
  EXPECT_FALSE(IsWellFormedSecret(stray_bits));
  // Well-formed but hand-made: refused as a bootstrap secret.
  const std::string weak = "ym_" + std::string(42, 'A') + "A";
  EXPECT_TRUE(IsWellFormedSecret(weak));
  EXPECT_FALSE(IsStrongSecret(weak));
}

TEST(AuthToken, BearerHeaderParsing) {
  const std::string s = Secret();
  EXPECT_EQ(ParseBearer("Bearer " + s), std::optional<std::string_view>(s));
  EXPECT_TRUE(ParseBearer("bearer " + s));
  EXPECT_TRUE(ParseBearer("BEARER   " + s));
  EXPECT_FALSE(ParseBearer(s));
  EXPECT_FALSE(ParseBearer("Bearer"));
  EXPECT_FALSE(ParseBearer("Bearer "));
  EXPECT_FALSE(ParseBearer("Bearer\t" + s));
  EXPECT_FALSE(ParseBearer("Basic " + s));
  EXPECT_FALSE(ParseBearer("Bearer " + s + " "));
  EXPECT_FALSE(ParseBearer("Bearer " + s + ",x"));
  EXPECT_FALSE(ParseBearer("Bearerx " + s));
  EXPECT_FALSE(ParseBearer(std::string("Bearer ym_\0", 11)));
}

TEST(AuthToken, HashIsSha256AndComparedWhole) {
  // SHA-256("abc"), FIPS 180-2 test vector.
  const std::string h = HashSecret("abc");
  ASSERT_EQ(h.size(), 32u);
  static const unsigned char kAbc[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                       0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                       0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                       0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  EXPECT_EQ(h, std::string(reinterpret_cast<const char*>(kAbc), 32));
  EXPECT_TRUE(HashesEqual(h, HashSecret("abc")));
  EXPECT_FALSE(HashesEqual(h, HashSecret("abd")));
  EXPECT_FALSE(HashesEqual(h, h.substr(0, 31)));
  EXPECT_FALSE(HashesEqual("", ""));
}

TEST(AuthToken, NamespacesColumnRoundTrips) {
  bool all = false;
  std::vector<std::string> names;
  ASSERT_TRUE(NamespacesFromJson(NamespacesToJson(true, {}), &all, &names).ok());
  EXPECT_TRUE(all);
  EXPECT_TRUE(names.empty());
  ASSERT_TRUE(NamespacesFromJson(NamespacesToJson(false, {"b", "a"}), &all, &names).ok());
  EXPECT_FALSE(all);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  for (const char* bad : {"", "[]", "{}", "[1]", R"(["*","a"])", R"(["a b"])", "x"}) {
    EXPECT_FALSE(NamespacesFromJson(bad, &all, &names).ok()) << bad;
  }
}

TEST(TokenBook, AuthenticatesAndRefusesUnknownExpiredRevoked) {
  TokenBook book;
  const std::string a = Secret(), b = Secret(), c = Secret();
  ASSERT_TRUE(book.Load(Row("00000000000000aa", "alpha", a, "producer", R"(["x","y"])")).ok());
  ApiTokenRow expiring = Row("00000000000000bb", "beta", b);
  expiring.expires_at_ms = 5000;
  ASSERT_TRUE(book.Load(expiring).ok());

  auto ok = book.Authenticate(a, 2000);
  ASSERT_EQ(ok.failure, AuthFailure::kNone);
  EXPECT_TRUE(ok.principal.authenticated);
  EXPECT_EQ(ok.principal.token_name, "alpha");
  EXPECT_EQ(ok.principal.token_id, "00000000000000aa");
  EXPECT_EQ(ok.principal.role, Role::kProducer);
  EXPECT_FALSE(ok.principal.all_namespaces);
  EXPECT_TRUE(ok.principal.CanUseNamespace("x"));
  EXPECT_FALSE(ok.principal.CanUseNamespace("z"));

  EXPECT_EQ(book.Authenticate(c, 2000).failure, AuthFailure::kUnknown);
  EXPECT_EQ(book.Authenticate(b, 4999).failure, AuthFailure::kNone);
  EXPECT_EQ(book.Authenticate(b, 5000).failure, AuthFailure::kExpired);  // expiry is exclusive

  bool changed = false;
  auto revoked = book.Revoke("00000000000000aa", 3000, &changed);
  ASSERT_TRUE(revoked);
  EXPECT_TRUE(changed);
  EXPECT_EQ(revoked->revoked_at_ms, std::optional<std::int64_t>(3000));
  EXPECT_EQ(book.Authenticate(a, 3001).failure, AuthFailure::kRevoked);
  // A second revoke keeps the first time and says nothing changed.
  revoked = book.Revoke("00000000000000aa", 4000, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(revoked->revoked_at_ms, std::optional<std::int64_t>(3000));
  EXPECT_FALSE(book.Revoke("00000000000000cc", 4000, &changed));
  EXPECT_EQ(book.active(4000), 1u);
  EXPECT_EQ(book.size(), 2u);
}

TEST(TokenBook, BadRowsAreRefusedAndNamesAreUnique) {
  TokenBook book;
  EXPECT_FALSE(book.Load(Row("00000000000000aa", "a", Secret(), "root")).ok());
  ApiTokenRow short_hash = Row("00000000000000aa", "a", Secret());
  short_hash.hash.resize(16);
  EXPECT_FALSE(book.Load(short_hash).ok());
  EXPECT_FALSE(book.Load(Row("00000000000000aa", "a", Secret(), "admin", "[]")).ok());
  ASSERT_TRUE(book.Load(Row("00000000000000aa", "a", Secret())).ok());
  EXPECT_FALSE(book.Load(Row("00000000000000bb", "a", Secret())).ok());  // name taken
  EXPECT_EQ(book.Reserve("a").code(), Code::kAlreadyExists);
  ASSERT_TRUE(book.Reserve("b").ok());
  EXPECT_EQ(book.Reserve("b").code(), Code::kAlreadyExists);  // being created
  book.Unreserve("b");
  EXPECT_TRUE(book.Reserve("b").ok());
}

TEST(TokenBook, LastUseIsPersistedLazily) {
  TokenBook book;
  const std::string a = Secret(), b = Secret();
  ASSERT_TRUE(book.Load(Row("00000000000000aa", "a", a)).ok());
  ASSERT_TRUE(book.Load(Row("00000000000000bb", "b", b)).ok());
  EXPECT_TRUE(book.TakeLastUsedToPersist(100'000, 60'000).empty());  // nothing used
  ASSERT_EQ(book.Authenticate(a, 100'000).failure, AuthFailure::kNone);
  auto due = book.TakeLastUsedToPersist(100'000, 60'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], (std::pair<std::string, std::int64_t>("00000000000000aa", 100'000)));
  // Used again within the minute: not written again until the minute is over.
  ASSERT_EQ(book.Authenticate(a, 110'000).failure, AuthFailure::kNone);
  EXPECT_TRUE(book.TakeLastUsedToPersist(150'000, 60'000).empty());
  due = book.TakeLastUsedToPersist(160'000, 60'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].second, 110'000);
  // At shutdown (interval 0) whatever changed is written at once.
  ASSERT_EQ(book.Authenticate(b, 161'000).failure, AuthFailure::kNone);
  ASSERT_EQ(book.Authenticate(a, 161'500).failure, AuthFailure::kNone);
  due = book.TakeLastUsedToPersist(161'600, 0);
  EXPECT_EQ(due.size(), 2u);
  EXPECT_EQ(book.FindByName("a")->last_used_at_ms, std::optional<std::int64_t>(161'500));
  // A use with an older time (clock step back) never moves it backwards.
  ASSERT_EQ(book.Authenticate(a, 1'000).failure, AuthFailure::kNone);
  EXPECT_EQ(book.FindByName("a")->last_used_at_ms, std::optional<std::int64_t>(161'500));
}

// Lookups on many threads while tokens are revoked and created: no lookup ever sees a revoked
// token as valid after Revoke returned, and nothing tears (run under TSan in the sanitizer build).
TEST(TokenBook, ConcurrentLookupsAndRevocations) {
  TokenBook book;
  constexpr int kTokens = 32;
  std::vector<std::string> secrets;
  for (int i = 0; i < kTokens; ++i) {
    secrets.push_back(Secret());
    char id[17];
    std::snprintf(id, sizeof id, "%016x", i);
    ASSERT_TRUE(book.Load(Row(id, "t" + std::to_string(i), secrets.back())).ok());
  }
  std::atomic<int> revoked_upto{-1};
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int n = 0; !stop.load(); ++n) {
        const int upto = revoked_upto.load();
        const int i = (n * 7 + t) % kTokens;
        auto o = book.Authenticate(secrets[i], 2000);
        // Revoked before we looked: must be refused. Refused: its revoke happened, and the
        // writer revokes i only after publishing i - 1.
        if (i <= upto && o.failure == AuthFailure::kNone) violations.fetch_add(1);
        if (o.failure != AuthFailure::kNone && i > revoked_upto.load() + 1) violations.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < kTokens; ++i) {
    char id[17];
    std::snprintf(id, sizeof id, "%016x", i);
    bool changed = false;
    ASSERT_TRUE(book.Revoke(id, 1000, &changed));
    revoked_upto.store(i);
    (void)book.List();
    (void)book.TakeLastUsedToPersist(2000, 0);
  }
  stop.store(true);
  for (auto& r : readers) r.join();
  EXPECT_EQ(violations.load(), 0);
}

TEST(AuthThrottle, BlocksAfterMaxFailuresInAWindowAndCoolsDown) {
  ManualClock clock;
  AuthThrottle t({/*max_failures=*/3, /*window_ms=*/10'000, /*block_ms=*/30'000,
                  /*max_addresses=*/100});
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", clock.MonoMs()));
  clock.Advance(1000);
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", clock.MonoMs()));
  EXPECT_EQ(t.BlockedForMs("10.0.0.1", clock.MonoMs()), 0);
  EXPECT_TRUE(t.RecordFailure("10.0.0.1", clock.MonoMs()));
  EXPECT_EQ(t.BlockedForMs("10.0.0.1", clock.MonoMs()), 30'000);
  EXPECT_EQ(t.BlockedForMs("10.0.0.2", clock.MonoMs()), 0);  // others unaffected
  clock.Advance(29'999);
  EXPECT_EQ(t.BlockedForMs("10.0.0.1", clock.MonoMs()), 1);
  clock.Advance(1);
  EXPECT_EQ(t.BlockedForMs("10.0.0.1", clock.MonoMs()), 0);
  // After cooling down it starts afresh.
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", clock.MonoMs()));
}

TEST(AuthThrottle, FailuresOutsideTheWindowDoNotAddUp) {
  ManualClock clock;
  AuthThrottle t({3, 10'000, 30'000, 100});
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(t.RecordFailure("a", clock.MonoMs())) << i;
    EXPECT_FALSE(t.RecordFailure("a", clock.MonoMs())) << i;
    clock.Advance(10'000);  // the window ends before the third
  }
  EXPECT_EQ(t.BlockedForMs("a", clock.MonoMs()), 0);
}

TEST(AuthThrottle, MemoryIsBoundedByEvictingTheLeastRecentlyTouched) {
  AuthThrottle t({2, 10'000, 30'000, /*max_addresses=*/3});
  EXPECT_FALSE(t.RecordFailure("a", 0));
  EXPECT_TRUE(t.RecordFailure("a", 0));  // a blocked
  EXPECT_FALSE(t.RecordFailure("b", 0));
  EXPECT_FALSE(t.RecordFailure("c", 0));
  EXPECT_EQ(t.tracked(), 3u);
  // A blocked address that keeps trying stays the most recently touched.
  EXPECT_GT(t.BlockedForMs("a", 1), 0);
  EXPECT_FALSE(t.RecordFailure("d", 1));  // evicts b, the least recently touched
  EXPECT_EQ(t.tracked(), 3u);
  EXPECT_GT(t.BlockedForMs("a", 1), 0);
  EXPECT_FALSE(t.RecordFailure("b", 1));  // b starts afresh: its earlier failure was forgotten
  EXPECT_TRUE(t.RecordFailure("d", 1));   // d was kept: its second failure blocks it
  for (int i = 0; i < 1000; ++i) (void)t.RecordFailure("x" + std::to_string(i), 2);
  EXPECT_EQ(t.tracked(), 3u);
  AuthThrottle never({0, 10'000, 30'000, 3});
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(never.RecordFailure("a", 0));
  EXPECT_EQ(never.BlockedForMs("a", 0), 0);
}

TEST(Authenticator, OneAnswerForEveryFailureAndProbesExempt) {
  namespace http = boost::beast::http;
  ManualClock clock(10'000);
  TokenBook book;
  const std::string good = Secret(), revoked = Secret(), expired = Secret();
  ASSERT_TRUE(book.Load(Row("00000000000000aa", "good", good)).ok());
  ASSERT_TRUE(book.Load(Row("00000000000000bb", "revoked", revoked)).ok());
  ApiTokenRow e = Row("00000000000000cc", "expired", expired);
  e.expires_at_ms = 5'000;
  ASSERT_TRUE(book.Load(e).ok());
  bool changed = false;
  ASSERT_TRUE(book.Revoke("00000000000000bb", 9'000, &changed));
  HttpStats stats;
  Authenticator auth(book, clock, {100, 60'000, 60'000, 100}, &stats);

  auto ok = auth.Check(http::verb::get, "/v1/queues", "Bearer " + good, 1, "127.0.0.1");
  ASSERT_TRUE(ok.principal);
  EXPECT_EQ(ok.principal->token_name, "good");
  auto probe = auth.Check(http::verb::get, "/readyz?x=1", std::nullopt, 0, "127.0.0.1");
  ASSERT_TRUE(probe.principal);
  EXPECT_FALSE(probe.principal->authenticated);
  EXPECT_FALSE(auth.Check(http::verb::post, "/livez", std::nullopt, 0, "1").principal);
  EXPECT_FALSE(auth.Check(http::verb::get, "/metrics", std::nullopt, 0, "1").principal);

  const std::string missing_secret = Secret();
  struct Case {
    std::optional<std::string> header;
    std::size_t count;
    AuthFailure want;
  };
  const std::vector<Case> cases = {
      {std::nullopt, 0, AuthFailure::kMissing},
      {"Basic dXNlcjpwYXNz", 1, AuthFailure::kMalformed},
      {"Bearer " + good, 2, AuthFailure::kMalformed},  // two Authorization headers
      {"Bearer " + missing_secret, 1, AuthFailure::kUnknown},
      {"Bearer " + expired, 1, AuthFailure::kExpired},
      {"Bearer " + revoked, 1, AuthFailure::kRevoked},
  };
  for (const Case& c : cases) {
    std::optional<std::string_view> h;
    if (c.header) h = *c.header;
    auto d = auth.Check(http::verb::get, "/v1/jobs", h, c.count, "10.1.1.1");
    auth.OnRefused(d, "10.1.1.1", "r");
    EXPECT_FALSE(d.principal);
    EXPECT_EQ(d.failure, c.want);
    EXPECT_EQ(d.error.code(), Code::kUnauthenticated);
    EXPECT_EQ(d.error.message(), kUnauthenticatedMessage);  // the same text for every reason
    ASSERT_EQ(d.headers.size(), 1u);
    EXPECT_EQ(d.headers[0], (std::pair<std::string, std::string>("WWW-Authenticate", "Bearer")));
    EXPECT_EQ(stats.auth_failures[static_cast<std::size_t>(c.want)].load() > 0, true);
  }
}

TEST(Authenticator, AThrottledAddressIsRefusedEvenWithAGoodToken) {
  namespace http = boost::beast::http;
  ManualClock clock(10'000);
  TokenBook book;
  const std::string good = Secret();
  ASSERT_TRUE(book.Load(Row("00000000000000aa", "good", good)).ok());
  HttpStats stats;
  Authenticator auth(book, clock, {3, 60'000, 20'000, 100}, &stats);
  for (int i = 0; i < 3; ++i) {
    auto d = auth.Check(http::verb::get, "/v1/jobs", "Bearer nope", 1, "10.0.0.9");
    EXPECT_EQ(d.error.code(), Code::kUnauthenticated);
    if (i < 2) {
      // Not counted until the transport sends it: a refusal it never sends (a preflight
      // answered by the web guard) does not add up.
      EXPECT_EQ(auth.Check(http::verb::get, "/v1/jobs", "Bearer nope", 1, "10.0.0.9").error.code(),
                Code::kUnauthenticated);
    }
    auth.OnRefused(d, "10.0.0.9", "r");
  }
  auto blocked = auth.Check(http::verb::get, "/v1/jobs", "Bearer " + good, 1, "10.0.0.9");
  EXPECT_FALSE(blocked.principal);
  EXPECT_EQ(blocked.error.code(), Code::kResourceExhausted);
  EXPECT_EQ(blocked.error.retry_after_ms(), 20'000);
  EXPECT_EQ(stats.auth_throttled.load(), 1u);
  // Another address is not affected; probes stay open for the blocked one.
  EXPECT_TRUE(auth.Check(http::verb::get, "/v1/jobs", "Bearer " + good, 1, "10.0.0.8").principal);
  EXPECT_TRUE(auth.Check(http::verb::get, "/livez", std::nullopt, 0, "10.0.0.9").principal);
  clock.Advance(20'000);
  EXPECT_TRUE(auth.Check(http::verb::get, "/v1/jobs", "Bearer " + good, 1, "10.0.0.9").principal);
}

TEST(TokenCodec, CreateBodiesAreValidated) {
  auto ok = ParseTokenSpec(R"({"name":"ci-bot","role":"producer","namespaces":["b","a","b"],
                               "expires_in_ms":60000})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->name, "ci-bot");
  EXPECT_EQ(ok->role, Role::kProducer);
  EXPECT_FALSE(ok->all_namespaces);
  EXPECT_EQ(ok->namespaces, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ok->expires_in_ms, std::optional<std::int64_t>(60000));
  auto all = ParseTokenSpec(R"({"name":"x","role":"viewer"})");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->all_namespaces);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[]", "object"},
      {"{", ""},
      {R"({"role":"admin"})", "\"name\""},
      {R"({"name":"","role":"admin"})", "\"name\""},
      {R"({"name":"a b","role":"admin"})", "\"name\""},
      {R"({"name":")" + std::string(65, 'n') + R"(","role":"admin"})", "\"name\""},
      {R"({"name":"a"})", "\"role\""},
      {R"({"name":"a","role":"root"})", "\"role\""},
      {R"({"name":"a","role":"admin","namespaces":[]})", "\"namespaces\""},
      {R"({"name":"a","role":"admin","namespaces":["*","x"]})", "\"namespaces\""},
      {R"({"name":"a","role":"admin","namespaces":["bad ns"]})", "\"namespaces\""},
      {R"({"name":"a","role":"admin","namespaces":"x"})", "\"namespaces\""},
      {R"({"name":"a","role":"admin","expires_in_ms":0})", "\"expires_in_ms\""},
      {R"({"name":"a","role":"admin","expires_at":1,"expires_in_ms":5})", "\"expires_at\""},
      {R"({"name":"a","role":"admin","secret":"x"})", "secret"},
  };
  for (const auto& [body, needle] : bad) {
    auto r = ParseTokenSpec(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_NE(r.status().message().find(needle), std::string::npos)
        << body << " -> " << r.status().message();
  }
}

TEST(TokenCodec, RenderedTokensNeverCarryTheHash) {
  TokenInfo t;
  t.id = "00000000000000aa";
  t.name = "n";
  t.role = Role::kWorker;
  t.all_namespaces = false;
  t.namespaces = {"a"};
  t.created_at_ms = 5;
  t.expires_at_ms = 10;
  const std::string s = RenderToken(t, 10);
  EXPECT_EQ(s, R"({"id":"00000000000000aa","name":"n","role":"worker","namespaces":["a"],)"
               R"("created_at":5,"expires_at":10,"expired":true,"revoked_at":null,)"
               R"("last_used_at":null})");
  EXPECT_EQ(s.find("hash"), std::string::npos);
  EXPECT_EQ(s.find("secret"), std::string::npos);
}

struct TokenRows final : RecoveryVisitor {
  void OnNextId(JobId) override {}
  void OnQueue(const QueueConfig&) override {}
  void OnIdempotencyKey(const IdempotencyKeyRecord&) override {}
  void OnLiveJob(JobRecord&&) override {}
  void OnApiToken(ApiTokenRow&& row) override { rows.push_back(std::move(row)); }
  std::vector<ApiTokenRow> rows;
};

void StoreRoundTrip(Store& store, const std::function<Store&()>& reopen) {
  ApiTokenRow a = Row("00000000000000aa", "a", Secret(), "worker", R"(["x"])");
  a.expires_at_ms = 99'000;
  ApiTokenRow b = Row("00000000000000bb", "b", Secret());
  Batch batch;
  batch.mutations.push_back(PutApiToken{a});
  batch.mutations.push_back(PutApiToken{b});
  ASSERT_TRUE(store.Commit(batch).ok());
  Batch later;
  later.mutations.push_back(RevokeApiToken{"00000000000000aa", 7'000});
  later.mutations.push_back(RevokeApiToken{"00000000000000aa", 8'000});  // keeps the first
  later.mutations.push_back(RevokeApiToken{"00000000000000ff", 8'000});  // unknown: no-op
  later.mutations.push_back(TouchApiTokens{{{"00000000000000bb", 6'000}}});
  later.mutations.push_back(TouchApiTokens{{{"00000000000000bb", 5'000}}});  // older: ignored
  ASSERT_TRUE(store.Commit(later).ok());
  // A second token with a taken name fails the whole batch and changes nothing.
  Batch dup;
  dup.mutations.push_back(TouchApiTokens{{{"00000000000000aa", 9'000}}});
  dup.mutations.push_back(PutApiToken{Row("00000000000000cc", "a", Secret())});
  EXPECT_FALSE(store.Commit(dup).ok());

  TokenRows rows;
  ASSERT_TRUE(reopen().Recover(0, rows).ok());
  ASSERT_EQ(rows.rows.size(), 2u);
  const ApiTokenRow& ra = rows.rows[0];
  EXPECT_EQ(ra.id, a.id);
  EXPECT_EQ(ra.name, "a");
  EXPECT_EQ(ra.hash, a.hash);
  EXPECT_EQ(ra.role, "worker");
  EXPECT_EQ(ra.namespaces_json, R"(["x"])");
  EXPECT_EQ(ra.created_at_ms, 1000);
  EXPECT_EQ(ra.expires_at_ms, std::optional<std::int64_t>(99'000));
  EXPECT_EQ(ra.revoked_at_ms, std::optional<std::int64_t>(7'000));
  EXPECT_EQ(ra.last_used_at_ms, std::nullopt);
  const ApiTokenRow& rb = rows.rows[1];
  EXPECT_EQ(rb.expires_at_ms, std::nullopt);
  EXPECT_EQ(rb.revoked_at_ms, std::nullopt);
  EXPECT_EQ(rb.last_used_at_ms, std::optional<std::int64_t>(6'000));
}

TEST(ApiTokenStore, SqliteRowsRoundTripAcrossReopen) {
  TempDir dir;
  SqliteOptions o;
  o.path = dir.File("ym.db");
  auto s = OpenSqliteStore(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::unique_ptr<Store> store = std::move(*s);
  StoreRoundTrip(*store, [&]() -> Store& {
    store.reset();
    auto again = OpenSqliteStore(o);
    EXPECT_TRUE(again.ok());
    store = std::move(*again);
    return *store;
  });
}

TEST(ApiTokenStore, MemoryRowsRoundTrip) {
  MemoryStore store;
  StoreRoundTrip(store, [&]() -> Store& { return store; });
}

}  // namespace
}  // namespace ym::net

namespace ym::net {
namespace {

// The per-request cost of authentication (docs/benchmarks.md, "API tokens"): one Check() with a
// valid token among 1000: throttle lookup, SHA-256, hash-map lookup under a shared lock,
// constant-time compare, last-use update and the principal's copy. Run by hand:
//   ym_unit_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_CostPerRequest'
TEST(Authenticator, DISABLED_CostPerRequest) {
  namespace http = boost::beast::http;
  ManualClock clock(10'000);
  TokenBook book;
  std::vector<std::string> secrets;
  for (int i = 0; i < 1000; ++i) {
    secrets.push_back(Secret());
    char id[17];
    std::snprintf(id, sizeof id, "%016x", i);
    ApiTokenRow r = Row(id, "t" + std::to_string(i), secrets.back(), "worker", R"(["a","b"])");
    ASSERT_TRUE(book.Load(r).ok());
  }
  HttpStats stats;
  Authenticator auth(book, clock, {}, &stats);
  std::vector<std::string> headers;
  for (const auto& s : secrets) headers.push_back("Bearer " + s);
  constexpr int kRounds = 7, kPerRound = 200'000;
  std::vector<double> ns;
  for (int round = 0; round < kRounds; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t ok = 0;
    for (int i = 0; i < kPerRound; ++i) {
      auto d =
          auth.Check(http::verb::post, "/v1/leases", headers[i % headers.size()], 1, "127.0.0.1");
      ok += d.principal.has_value();
    }
    const auto t1 = std::chrono::steady_clock::now();
    ASSERT_EQ(ok, static_cast<std::size_t>(kPerRound));
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kPerRound);
  }
  std::sort(ns.begin(), ns.end());
  std::printf("auth Check(): median %.0f ns per request (min %.0f, max %.0f) over %d rounds\n",
              ns[kRounds / 2], ns.front(), ns.back(), kRounds);
}

}  // namespace
}  // namespace ym::net

namespace ym::client {
namespace {

// The clients' token sources (client/http_client.h): --token, --token-file, $YM_TOKEN,
// $YM_TOKEN_FILE, in that order; errors never repeat the token.
class ResolveTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("YM_TOKEN");
    unsetenv("YM_TOKEN_FILE");
  }
  void TearDown() override { SetUp(); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  }
  TempDir dir_;
};

TEST_F(ResolveTokenTest, PrecedenceFlagFileVariableVariableFile) {
  const std::string file = Write("t", "ym_fromfile\r\nsecond line\n");
  const std::string env_file = Write("e", "ym_fromenvfile\n");
  auto none = ResolveToken("", "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
  setenv("YM_TOKEN_FILE", env_file.c_str(), 1);
  EXPECT_EQ(*ResolveToken("", ""), "ym_fromenvfile");
  setenv("YM_TOKEN", "ym_fromenv", 1);
  EXPECT_EQ(*ResolveToken("", ""), "ym_fromenv");
  EXPECT_EQ(*ResolveToken("", file), "ym_fromfile");  // first line, without \r
  EXPECT_EQ(*ResolveToken("ym_flag", file), "ym_flag");
}

TEST_F(ResolveTokenTest, BadTokensAreErrorsThatDoNotRepeatThem) {
  auto missing = ResolveToken("", dir_.File("none"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read the token file"), std::string::npos);
  auto empty = ResolveToken("", Write("empty", "\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos);
  auto spaced = ResolveToken("ym_secret value", "");
  ASSERT_FALSE(spaced.ok());
  EXPECT_EQ(spaced.status().message().find("ym_secret"), std::string::npos);
  auto injected = ResolveToken("ym_a\r\nX-Evil: 1", "");
  ASSERT_FALSE(injected.ok());
  EXPECT_EQ(injected.status().message().find("ym_a"), std::string::npos);
}

}  // namespace
}  // namespace ym::client
