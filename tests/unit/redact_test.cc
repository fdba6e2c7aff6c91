// obs/redact.h: which members are redacted (any depth, ASCII case ignored, escaped keys), that
// everything else is kept exactly, the fast path, and where the API applies it (job views yes,
// the lease reply no, a schedule's template only under "payload").
#include "obs/redact.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "net/codec.h"
#include "net/codec_schedules.h"

namespace ym::obs {
namespace {

TEST(RedactorTest, ReplacesListedMembersAtAnyDepthWhateverTheirType) {
  Redactor r({"password", "Token"});
  EXPECT_EQ(r.Apply(R"({"user":"ann","password":"hunter2"})"),
            R"({"user":"ann","password":"[redacted]"})");
  EXPECT_EQ(r.Apply(R"({"a":{"b":[{"token":{"x":[1,2,{"password":3}]}},"keep"]},"n":1.50})"),
            R"({"a":{"b":[{"token":"[redacted]"},"keep"]},"n":1.50})");
  EXPECT_EQ(r.Apply(R"({"password":null,"token":[1,[2]],"TOKEN":true})"),
            R"({"password":"[redacted]","token":"[redacted]","TOKEN":"[redacted]"})");
  // A value equal to a listed name is not a key: kept.
  EXPECT_EQ(r.Apply(R"({"note":"password"})"), R"({"note":"password"})");
  EXPECT_EQ(r.Apply(R"(["password",{"PassWord":"x"}])"),
            R"(["password",{"PassWord":"[redacted]"}])");
}

TEST(RedactorTest, EscapedKeysAreComparedUnescaped) {
  Redactor r({"password"});
  const std::string out = r.Apply(R"({"pass\u0077ord":"hunter2","x":"a\"b"})");
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  rapidjson::Document d;
  d.Parse(out.c_str());
  ASSERT_FALSE(d.HasParseError()) << out;
  EXPECT_STREQ(d["password"].GetString(), "[redacted]");
  EXPECT_STREQ(d["x"].GetString(), "a\"b");
}

TEST(RedactorTest, NumbersKeepTheirExactText) {
  Redactor r({"secret"});
  EXPECT_EQ(r.Apply(R"({"secret":1,"big":123456789012345678901234567890,"f":1e400,"g":-0.0})"),
            R"({"secret":"[redacted]","big":123456789012345678901234567890,"f":1e400,"g":-0.0})");
}

TEST(RedactorTest, UntouchedTextComesBackAsTheSameBytes) {
  Redactor r({"password"});
  std::string scratch;
  const std::string in = R"({"user":"ann","n":[1,2,3]})";
  std::string_view out = r.Apply(in, scratch);
  EXPECT_EQ(out.data(), in.data()) << "no copy when no listed name occurs";
  // A name that occurs only as a value still parses but comes back as the input.
  const std::string value_only = R"({"note":"my password"})";
  out = r.Apply(value_only, scratch);
  EXPECT_EQ(out.data(), value_only.data());
  // No fields listed: never parsed, even invalid text passes.
  Redactor none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.Apply("not json"), "not json");
}

TEST(RedactorTest, EverythingElseKeepsItsBytes) {
  Redactor r({"k"});
  // Escapes, Unicode, whitespace (a schedule template may hold some) and surrogate pairs stay.
  EXPECT_EQ(
      r.Apply(
          "{ \"a\\u00e9\" : \"\\ud83d\\ude00\\/\" ,\"k\":{\"x\":\"}\"} , \"z\":\"caf\xc3\xa9\"}"),
      "{ \"a\\u00e9\" : \"\\ud83d\\ude00\\/\" ,\"k\":\"[redacted]\" , \"z\":\"caf\xc3\xa9\"}");
  // A key spelled with a surrogate-pair escape is compared decoded.
  Redactor emoji({"\xf0\x9f\x98\x80"});
  EXPECT_EQ(emoji.Apply(R"({"\ud83d\ude00":1})"), R"({"\ud83d\ude00":"[redacted]"})");
}

TEST(RedactorTest, InvalidJsonIsHiddenWhole) {
  Redactor r({"password"});
  for (const char* bad : {R"({"password":)", R"({"password":1)", R"({"password" 1})",
                          R"({"password":1}x)", R"(["password")", R"({"password":"x)"}) {
    EXPECT_EQ(r.Apply(bad), "\"[redacted]\"") << bad;
  }
  // Too deep to scan: hidden too, without running out of stack.
  std::string deep =
      "{\"password\":1,\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_EQ(r.Apply(deep), "\"[redacted]\"");
}

TEST(RedactorTest, ApplyUnderOnlyRedactsInsideTheMember) {
  Redactor r({"queue", "token"});
  std::string scratch;
  const std::string tmpl =
      R"({"queue":"emails","kind":"send","payload":{"queue":"q","token":"t","a":{"token":1}},"token":"top"})";
  EXPECT_EQ(
      r.ApplyUnder(tmpl, "payload", scratch),
      R"({"queue":"emails","kind":"send","payload":{"queue":"[redacted]","token":"[redacted]","a":{"token":"[redacted]"}},"token":"top"})");
}

TEST(RedactorTest, KeyPathsThroughAListedMemberAreHidden) {
  Redactor r({"api_key"});
  EXPECT_TRUE(r.HidesKeyPath("payload.api_key"));
  EXPECT_TRUE(r.HidesKeyPath("payload.API_KEY.id"));
  EXPECT_TRUE(r.HidesKeyPath("payload.account.api_key"));
  EXPECT_FALSE(r.HidesKeyPath("payload.account.id"));
  EXPECT_FALSE(r.HidesKeyPath("api_key"));
  EXPECT_FALSE(r.HidesKeyPath("concurrency_key"));
  EXPECT_FALSE(Redactor().HidesKeyPath("payload.api_key"));
}

TEST(RedactorTest, NamesAreTrimmedOfEmptiesAndDeduplicated) {
  Redactor r({"", "Password", "password"});
  EXPECT_EQ(r.fields(), std::vector<std::string>{"password"});
}

// The API's views: a job (GET, lists, dead letters) and a schedule show the redacted text; the
// lease reply, the one view for the worker, carries the payload as stored.
class RedactedViewsTest : public ::testing::Test {
 protected:
  void SetUp() override { SetPayloadRedactor({"password"}); }
  void TearDown() override { SetPayloadRedactor({}); }
};

TEST_F(RedactedViewsTest, JobViewsRedactPayloadAndResultLeaseRepliesDoNot) {
  JobView v;
  v.job.id = 7;
  v.job.queue = "q";
  v.job.kind = "k";
  v.job.payload = R"({"user":"ann","password":"hunter2"})";
  v.job.result = R"({"echo":{"password":"hunter3"}})";
  const std::string shown = net::RenderJob(v);
  EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("hunter3"), std::string::npos) << shown;
  EXPECT_NE(shown.find(R"("payload":{"user":"ann","password":"[redacted]"})"), std::string::npos);
  // What is kept is untouched.
  EXPECT_EQ(v.job.payload, R"({"user":"ann","password":"hunter2"})");

  LeasedJob j;
  j.id = 7;
  j.queue = "q";
  j.kind = "k";
  j.payload = v.job.payload;
  const std::string leased = net::RenderLeasedJobs({j});
  EXPECT_NE(leased.find(R"("password":"hunter2")"), std::string::npos) << leased;
}

}  // namespace
}  // namespace ym::obs
