// core/trace_context.h: the W3C traceparent/tracestate validation the enqueue API applies.
#include "core/trace_context.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace ym {
namespace {

constexpr char kGood[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Result<TraceContext> Parse(std::optional<std::string_view> tp, std::optional<std::string_view> ts) {
  return ParseTraceContext(tp, ts, Code::kInvalidRequest, "header \"traceparent\"",
                           "header \"tracestate\"");
}

TEST(TraceparentTest, AcceptsTheSpecificationExample) {
  EXPECT_TRUE(CheckTraceparent(kGood, "traceparent").ok());
  EXPECT_TRUE(
      CheckTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "t").ok());
  EXPECT_TRUE(
      CheckTraceparent("00-00000000000000000000000000000001-0000000000000001-ff", "t").ok());
}

TEST(TraceparentTest, RefusesEveryMalformedShapeWithTheSourceNamed) {
  const char* bad[] = {
      "",                                                          // empty
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // no flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // trailing
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    // short flags
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // non-hex
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // wrong separator
      "00-4bf92f3577b34da6a3ce929d0e0e4736700f067aa0ba902b7-01",   // missing dash
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // other version
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // forbidden version
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // leading space
  };
  for (const char* t : bad) {
    SCOPED_TRACE(t);
    Status s = CheckTraceparent(t, "header \"traceparent\"");
    EXPECT_EQ(s.code(), Code::kInvalidRequest);
    EXPECT_NE(s.message().find("header \"traceparent\""), std::string::npos) << s.message();
  }
  EXPECT_NE(CheckTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "x")
                .message()
                .find("trace id is all zeros"),
            std::string::npos);
  EXPECT_NE(CheckTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x")
                .message()
                .find("only version 00"),
            std::string::npos);
}

TEST(TracestateTest, NormalizesWhitespaceAndEmptyMembers) {
  auto r = NormalizeTracestate(" congo=t61rcWkgMzE ,\t, rojo=00f067aa0ba902b7 ,", "ts");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  auto empty = NormalizeTracestate(" , ", "ts");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(TracestateTest, AcceptsMultiTenantKeysAndValuesWithInnerSpaces) {
  auto r = NormalizeTracestate("fw529a3039@dt=x y,1tenant@sys_1=-,a/b*c_d-e=v", "ts");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "fw529a3039@dt=x y,1tenant@sys_1=-,a/b*c_d-e=v");
}

TEST(TracestateTest, RefusesBadMembers) {
  const char* bad[] = {
      "novalue",              // no '='
      "Upper=1",              // key must be lowercase
      "1abc=1",               // simple key starts with a letter
      "k=",                   // empty value
      "k=a,b=c=d",            // '=' in a value
      "t@=1",                 // empty system id
      "@s=1",                 // empty tenant id
      "t@1s=1",               // system id starts with a digit
      "t@abcdefghijklmno=1",  // system id over 14
      "a=1,a=2",              // duplicate key
      "k=\x01",               // control character
      "k=caf\xc3\xa9",        // non-ASCII
  };
  int refused = 0;
  for (const char* t : bad) {
    SCOPED_TRACE(t);
    auto r = NormalizeTracestate(t, "header \"tracestate\"");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidRequest);
    EXPECT_NE(r.status().message().find("header \"tracestate\""), std::string::npos);
    ++refused;
  }
  EXPECT_EQ(refused, 12);
  // Whitespace after a member is optional whitespace, not part of its value.
  auto trailing = NormalizeTracestate("k=trailing ", "ts");
  ASSERT_TRUE(trailing.ok());
  EXPECT_EQ(*trailing, "k=trailing");
}

TEST(TracestateTest, BoundsMembersAndLength) {
  std::string members;
  for (int i = 0; i < 32; ++i) members += (i ? ",k" : "k") + std::to_string(i) + "=v";
  EXPECT_TRUE(NormalizeTracestate(members, "ts").ok());
  auto over = NormalizeTracestate(members + ",k32=v", "ts");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("more than 32 members"), std::string::npos);

  // 512 bytes exactly is kept; 513 is refused.
  std::string exact = "k=" + std::string(256, 'v') + ",l=" + std::string(251, 'w');
  ASSERT_EQ(exact.size(), kMaxTracestateBytes);
  EXPECT_TRUE(NormalizeTracestate(exact, "ts").ok());
  auto longer = NormalizeTracestate(exact + "w", "ts");
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("longer than 512"), std::string::npos);
  // A value over 256 bytes is refused on its own.
  EXPECT_FALSE(NormalizeTracestate("k=" + std::string(257, 'v'), "ts").ok());
  // Huge inputs are refused before being split.
  EXPECT_FALSE(NormalizeTracestate(std::string(1 << 20, ','), "ts").ok());
}

TEST(TraceContextTest, PairRules) {
  auto none = Parse(std::nullopt, std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto both = Parse(kGood, " rojo=1 ");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->traceparent, kGood);
  EXPECT_EQ(both->tracestate, "rojo=1");

  auto alone = Parse(std::nullopt, "rojo=1");
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.status().code(), Code::kInvalidRequest);
  EXPECT_NE(alone.status().message().find("without header \"traceparent\""), std::string::npos);

  // A body field error carries the validation code.
  auto field = ParseTraceContext("00-xyz", std::nullopt, Code::kValidation, "field \"traceparent\"",
                                 "field \"tracestate\"");
  ASSERT_FALSE(field.ok());
  EXPECT_EQ(field.status().code(), Code::kValidation);
  // A bad tracestate fails the pair even with a good traceparent.
  EXPECT_FALSE(Parse(kGood, "Bad=1").ok());
}

TEST(TraceContextTest, TraceIdOf) {
  EXPECT_EQ(TraceIdOf(kGood), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(TraceIdOf(""), "");
}

}  // namespace
}  // namespace ym
