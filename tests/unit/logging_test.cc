// obs/logging.h: the JSON-lines log format's escaping, structured fields in both formats, the
// level checks (per component, nothing evaluated when disabled), request scopes, threads, and the
// setup's refusal of bad values. (The server's JSON log output as a whole is checked against the
// real binary in tests/integration/test_server_process.py and test_logs.py.)
#include "obs/logging.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ym::obs {
namespace {

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndEveryControlCharacter) {
  EXPECT_EQ(JsonEscape("plain text"), "plain text");
  EXPECT_EQ(JsonEscape("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(JsonEscape("C:\\dir"), "C:\\\\dir");
  EXPECT_EQ(JsonEscape("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(JsonEscape(std::string("\x01\x1f\x00", 3)), "\\u0001\\u001f\\u0000");
  // Bytes from 0x20 up, UTF-8 included, pass unchanged.
  EXPECT_EQ(JsonEscape("caf\xc3\xa9 ~\x7f"), "caf\xc3\xa9 ~\x7f");
}

// Whatever a log message holds (a path, a client's value), the escaped text inside quotes is
// one valid JSON string that reads back as the message.
TEST(JsonEscapeTest, AnyAsciiMessageReadsBackExactly) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 0x7f);
  std::uniform_int_distribution<int> len(0, 40);
  for (int i = 0; i < 2000; ++i) {
    std::string msg;
    for (int n = len(rng); n > 0; --n) msg += static_cast<char>(byte(rng));
    const std::string literal = "\"" + JsonEscape(msg) + "\"";
    rapidjson::Document d;
    d.Parse(literal.data(), literal.size());
    ASSERT_FALSE(d.HasParseError()) << literal;
    ASSERT_TRUE(d.IsString());
    EXPECT_EQ(std::string(d.GetString(), d.GetStringLength()), msg);
  }
}

TEST(SetupLoggingTest, RefusesUnknownLevelsAndFormats) {
  Status s = SetupLogging("loud", "text");
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("log level"), std::string::npos) << s.message();
  s = SetupLogging("info", "xml");
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("log format"), std::string::npos) << s.message();
}

// Captures the default logger's output; restores text/info on stderr afterwards.
class LogCapture : public ::testing::Test {
 protected:
  void Use(LogOptions o) {
    out_.str("");
    ASSERT_TRUE(SetupLogging(o, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)).ok());
  }
  void UseJson(std::map<std::string, std::string> components = {}, std::string level = "info") {
    LogOptions o;
    o.format = "json";
    o.level = level;
    o.component_levels = std::move(components);
    Use(std::move(o));
  }
  void TearDown() override { ASSERT_TRUE(SetupLogging("info", "text").ok()); }

  std::vector<std::string> Lines() {
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  static rapidjson::Document Parse(const std::string& line) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    EXPECT_FALSE(d.HasParseError()) << line;
    EXPECT_TRUE(d.IsObject()) << line;
    return d;
  }

  std::ostringstream out_;
};

TEST_F(LogCapture, JsonLinesCarryFieldsAsTypedMembers) {
  UseJson();
  YM_LOG(info, kHttp)
      .Str("queue", "emails")
      .Str("job_id", "00000000000000000042")
      .Int("attempt", -3)
      .Uint("count", 18446744073709551615ULL)
      .Double("ratio", 0.25)
      .Bool("replayed", true)
      .DurationUs(12345)
      .Str("note", "say \"hi\"\n")
      .Msg("released {} lease(s)", 3);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  auto d = Parse(lines[0]);
  EXPECT_STREQ(d["level"].GetString(), "info");
  EXPECT_STREQ(d["msg"].GetString(), "released 3 lease(s)");
  EXPECT_STREQ(d["component"].GetString(), "http");
  EXPECT_STREQ(d["queue"].GetString(), "emails");
  EXPECT_STREQ(d["job_id"].GetString(), "00000000000000000042");
  EXPECT_EQ(d["attempt"].GetInt(), -3);
  EXPECT_EQ(d["count"].GetUint64(), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(d["ratio"].GetDouble(), 0.25);
  EXPECT_TRUE(d["replayed"].GetBool());
  EXPECT_DOUBLE_EQ(d["duration_ms"].GetDouble(), 12.345);
  EXPECT_STREQ(d["note"].GetString(), "say \"hi\"\n");
  // ts, level, msg first, then the component and the fields in the order given.
  EXPECT_EQ(lines[0].find("{\"ts\":"), 0u);
  EXPECT_LT(lines[0].find("\"msg\""), lines[0].find("\"component\""));
  EXPECT_LT(lines[0].find("\"queue\""), lines[0].find("\"job_id\""));
}

TEST_F(LogCapture, NonFiniteDoublesStayValidJson) {
  UseJson();
  YM_LOG(warn, kBroker).Double("x", std::numeric_limits<double>::infinity()).Msg("odd");
  auto d = Parse(Lines().at(0));
  EXPECT_STREQ(d["x"].GetString(), "inf");
}

TEST_F(LogCapture, TextLinesCarryFieldsAsLogfmtPairs) {
  LogOptions o;
  Use(o);
  YM_LOG(info, kStore)
      .Str("queue", "emails")
      .Str("spaced", "a b")
      .Str("empty", "")
      .Str("eq", "k=v")
      .Int("n", 7)
      .Msg("hello {}", "world");
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  const std::string tail =
      " info hello world component=store queue=emails spaced=\"a b\" "
      "empty=\"\" eq=\"k=v\" n=7";
  ASSERT_GE(l.size(), tail.size());
  EXPECT_EQ(l.substr(l.size() - tail.size()), tail) << l;
}

TEST(LogfmtTest, QuotesOnlyWhatNeedsIt) {
  auto f = [](std::string_view s) {
    fmt::memory_buffer b;
    AppendLogfmtValue(s, b);
    return std::string(b.data(), b.size());
  };
  EXPECT_EQ(f("plain-value_1.2:3/x"), "plain-value_1.2:3/x");
  EXPECT_EQ(f(""), "\"\"");
  EXPECT_EQ(f("a b"), "\"a b\"");
  EXPECT_EQ(f("q\"uote"), "\"q\\\"uote\"");
  EXPECT_EQ(f("line\nbreak"), "\"line\\nbreak\"");
  EXPECT_EQ(f("back\\slash"), "\"back\\\\slash\"");
}

// The point of the macro: a disabled line costs a level check and nothing else — its arguments,
// message arguments included, are never evaluated.
TEST_F(LogCapture, DisabledLinesEvaluateNothing) {
  UseJson();
  int evaluated = 0;
  auto costly = [&evaluated] {
    ++evaluated;
    return std::string("expensive");
  };
  YM_LOG(debug, kHttp).Str("x", costly()).Msg("{}", costly());
  YM_LOG(trace, kJob).Str("x", costly()).Msg("{}", costly());
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(out_.str().empty());
  YM_LOG(info, kHttp).Str("x", costly()).Msg("{}", costly());
  EXPECT_EQ(evaluated, 2);
  EXPECT_EQ(Lines().size(), 1u);
}

TEST_F(LogCapture, LevelsArePerComponent) {
  UseJson({{"http", "debug"}, {"store", "error"}}, "info");
  EXPECT_EQ(ComponentLevel(Component::kHttp), spdlog::level::debug);
  EXPECT_EQ(ComponentLevel(Component::kStore), spdlog::level::err);
  EXPECT_EQ(ComponentLevel(Component::kServer), spdlog::level::info);
  YM_LOG(debug, kHttp).Msg("http debug");      // on: http is at debug
  YM_LOG(debug, kServer).Msg("server debug");  // off: the global level is info
  YM_LOG(warn, kStore).Msg("store warn");      // off: store is at error
  YM_LOG(err, kStore).Msg("store error");      // on
  YM_LOG(info, kServer).Msg("server info");    // on
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_STREQ(Parse(lines[0])["msg"].GetString(), "http debug");
  EXPECT_STREQ(Parse(lines[1])["msg"].GetString(), "store error");
  EXPECT_STREQ(Parse(lines[2])["level"].GetString(), "info");
  // A level changed at run time takes effect, below the logger's own level too.
  SetComponentLevel(Component::kServer, spdlog::level::trace);
  YM_LOG(trace, kServer).Msg("server trace");
  EXPECT_EQ(Lines().size(), 4u);
}

TEST_F(LogCapture, ScopedFieldsJoinEveryLineOfTheirThread) {
  UseJson();
  {
    ScopedLogFields outer;
    outer.Str("request_id", "outer-id").Str("peer", "127.0.0.1");
    {
      ScopedLogFields inner;
      inner.Str("request_id", "inner-id");
      YM_LOG(info, kHttp).Str("queue", "q").Msg("in both");
      // A line's own field wins over a scope's.
      YM_LOG(info, kHttp).Str("request_id", "own").Msg("own id");
      spdlog::info("a bare spdlog line");
    }
    YM_LOG(info, kHttp).Msg("outer only");
  }
  YM_LOG(info, kHttp).Msg("no scope");
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  auto a = Parse(lines[0]);
  EXPECT_STREQ(a["request_id"].GetString(), "inner-id");
  EXPECT_STREQ(a["peer"].GetString(), "127.0.0.1");
  EXPECT_STREQ(a["queue"].GetString(), "q");
  // Each key once: the line still parses to one member per key, and the text has one copy.
  EXPECT_EQ(lines[0].find("request_id"), lines[0].rfind("request_id"));
  EXPECT_STREQ(Parse(lines[1])["request_id"].GetString(), "own");
  EXPECT_EQ(lines[1].find("request_id"), lines[1].rfind("request_id"));
  auto bare = Parse(lines[2]);
  EXPECT_STREQ(bare["request_id"].GetString(), "inner-id");
  EXPECT_FALSE(bare.HasMember("component"));
  EXPECT_STREQ(Parse(lines[3])["request_id"].GetString(), "outer-id");
  EXPECT_FALSE(Parse(lines[4]).HasMember("request_id"));
}

TEST_F(LogCapture, FieldsPastTheCapAreDroppedNotOverrun) {
  UseJson();
  static constexpr std::string_view kKeys[] = {
      "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09",
      "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19",
      "k20", "k21", "k22", "k23", "k24", "k25", "k26", "k27", "k28", "k29"};
  {
    LogLine line(Component::kServer, spdlog::level::info);
    for (auto k : kKeys) line.Str(k, std::string(100, 'v'));
    line.Msg("many");
  }
  auto d = Parse(Lines().at(0));
  EXPECT_TRUE(d.HasMember("k23"));
  EXPECT_FALSE(d.HasMember("k24"));
}

// Lines written at once from several threads never mix: each parses whole and carries only its
// own thread's line and scope fields.
TEST_F(LogCapture, ConcurrentLinesStayWholeAndOwnTheirFields) {
  UseJson();
  constexpr int kThreads = 4;
  constexpr int kLines = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string id = "req-" + std::to_string(t);
      ScopedLogFields scope;
      scope.Str("request_id", id);
      for (int i = 0; i < kLines; ++i) {
        YM_LOG(info, kHttp).Int("thread", t).Int("i", i).Msg("line {} of {}", i, id);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto lines = Lines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kLines));
  std::vector<int> next(kThreads, 0);
  for (const auto& l : lines) {
    auto d = Parse(l);
    const int t = d["thread"].GetInt();
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    const std::string id = "req-" + std::to_string(t);
    EXPECT_EQ(d["request_id"].GetString(), id);
    EXPECT_EQ(d["i"].GetInt(), next[t]) << "lines of one thread stay in order";
    EXPECT_EQ(d["msg"].GetString(), "line " + std::to_string(next[t]) + " of " + id);
    ++next[t];
  }
}

TEST_F(LogCapture, BadComponentOrLevelChangesNothing) {
  UseJson({{"http", "debug"}});
  LogOptions o;
  o.component_levels = {{"htttp", "debug"}};
  Status s = SetupLogging(o);
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("unknown log component \"htttp\""), std::string::npos);
  EXPECT_NE(s.message().find("access"), std::string::npos) << "lists the components";
  o.component_levels = {{"http", "loud"}};
  s = SetupLogging(o);
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("log level of http"), std::string::npos) << s.message();
  // The logger and levels set before are still in place.
  EXPECT_EQ(ComponentLevel(Component::kHttp), spdlog::level::debug);
  YM_LOG(debug, kHttp).Msg("still captured");
  EXPECT_EQ(Lines().size(), 1u);
}

TEST(ComponentLevelsTest, ParsesListsAndNamesEachBadItem) {
  auto ok = ParseComponentLevels(" http = debug, store=warn ,,access=off");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, (std::map<std::string, std::string>{
                     {"http", "debug"}, {"store", "warn"}, {"access", "off"}}));
  EXPECT_TRUE(ParseComponentLevels("")->empty());
  auto bad = ParseComponentLevels("http");
  EXPECT_NE(bad.status().message().find("\"http\" must be COMPONENT=LEVEL"), std::string::npos);
  bad = ParseComponentLevels("http=debug,nope=info");
  EXPECT_NE(bad.status().message().find("unknown log component \"nope\""), std::string::npos);
  bad = ParseComponentLevels("http=verbose");
  EXPECT_NE(bad.status().message().find("(got \"verbose\")"), std::string::npos);
  bad = ParseComponentLevels("http=debug,http=info");
  EXPECT_NE(bad.status().message().find("given twice"), std::string::npos);
}

TEST(ComponentNamesTest, RoundTrip) {
  for (std::size_t i = 0; i < kComponentCount; ++i) {
    const auto c = static_cast<Component>(i);
    EXPECT_EQ(ComponentFromName(ComponentName(c)), c);
  }
  EXPECT_FALSE(ComponentFromName("HTTP"));
}

}  // namespace
}  // namespace ym::obs
