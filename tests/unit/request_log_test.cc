// net/request_log.h: which X-Request-Id values are kept, the generated ids, and the access line.
#include "net/request_log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "obs/logging.h"

namespace ym::net {
namespace {

TEST(RequestIdTest, KeepsTokensOfBoundedLength) {
  EXPECT_TRUE(IsValidRequestId("abc-123"));
  EXPECT_TRUE(IsValidRequestId("0f8fad5b-d9cb-469f-a165-70867728950e"));
  EXPECT_TRUE(IsValidRequestId("a!#$%&'*+-.^_`|~Z9"));
  EXPECT_TRUE(IsValidRequestId(std::string(kMaxRequestIdBytes, 'x')));
  EXPECT_FALSE(IsValidRequestId(std::string(kMaxRequestIdBytes + 1, 'x')));
  EXPECT_FALSE(IsValidRequestId(""));
  for (std::string bad : {"a b", "a\"b", "a\\b", "a\tb", "a,b", "a;b", "a=b", "a/b", "a\x7f",
                          "caf\xc3\xa9", "a\nb", "{id}"}) {
    EXPECT_FALSE(IsValidRequestId(bad)) << bad;
  }
  EXPECT_EQ(RequestIdFor("client-id-1"), "client-id-1");
  const std::string replaced = RequestIdFor("evil\r\nSet-Cookie: x");
  EXPECT_TRUE(IsValidRequestId(replaced));
  EXPECT_EQ(replaced.find("evil"), std::string::npos);
}

TEST(RequestIdTest, GeneratedIdsAreValidAndUniqueAcrossThreads) {
  const std::string a = NewRequestId();
  EXPECT_TRUE(IsValidRequestId(a)) << a;
  ASSERT_EQ(a.size() > 17, true);
  EXPECT_EQ(a[16], '-') << a;
  const std::string prefix = a.substr(0, 17);
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&got, t] {
      for (int i = 0; i < kEach; ++i) got[t].push_back(NewRequestId());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : got) {
    for (const auto& id : v) {
      EXPECT_EQ(id.substr(0, 17), prefix) << "one random prefix per process";
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(AccessLogTest, OneJsonLineWithTheRouteNotThePath) {
  std::ostringstream out;
  obs::LogOptions o;
  o.format = "json";
  o.component_levels = {{"access", "info"}};
  ASSERT_TRUE(obs::SetupLogging(o, std::make_shared<spdlog::sinks::ostream_sink_mt>(out)).ok());
  AccessEntry e;
  e.method = boost::beast::http::verb::get;
  e.route = RouteId::kGetJob;
  e.status = 404;
  e.duration_us = 1500;
  e.request_bytes = 0;
  e.response_bytes = 77;
  e.request_id = "rid-1";
  e.peer = "127.0.0.1";
  LogAccess(e);
  // Off: nothing.
  obs::SetComponentLevel(obs::Component::kAccess, spdlog::level::off);
  LogAccess(e);
  const std::string text = out.str();
  ASSERT_TRUE(obs::SetupLogging("info", "text").ok());
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  rapidjson::Document d;
  d.Parse(text.c_str());
  ASSERT_FALSE(d.HasParseError()) << text;
  EXPECT_STREQ(d["component"].GetString(), "access");
  EXPECT_STREQ(d["method"].GetString(), "GET");
  EXPECT_STREQ(d["route"].GetString(), std::string(RouteLabel(RouteId::kGetJob)).c_str());
  EXPECT_EQ(d["status"].GetUint(), 404u);
  EXPECT_DOUBLE_EQ(d["duration_ms"].GetDouble(), 1.5);
  EXPECT_EQ(d["response_bytes"].GetUint(), 77u);
  EXPECT_STREQ(d["request_id"].GetString(), "rid-1");
  EXPECT_STREQ(d["peer"].GetString(), "127.0.0.1");
  EXPECT_TRUE(d["delivered"].GetBool());
}

// Figures for docs/benchmarks.md ("Access log"): the cost of one access line written to a file,
// in each format, and of a disabled one. Run by hand:
//   ym_unit_tests --gtest_filter='AccessLogTest.DISABLED_*' --gtest_also_run_disabled_tests
TEST(AccessLogTest, DISABLED_CostPerLine) {
  AccessEntry e;
  e.method = boost::beast::http::verb::post;
  e.route = RouteId::kCompleteBatch;
  e.status = 200;
  e.duration_us = 812;
  e.request_bytes = 4200;
  e.response_bytes = 3100;
  const std::string id = NewRequestId();
  e.request_id = id;
  e.peer = "127.0.0.1";
  constexpr int kLines = 200'000;
  auto run = [&](const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kLines; ++i) LogAccess(e);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-28s %8.1f ns per line\n", what, ns / kLines);
  };
  for (const char* format : {"json", "text"}) {
    obs::LogOptions o;
    o.format = format;
    o.component_levels = {{"access", "info"}};
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>("/tmp/ym-access-cost.log",
                                                                    /*truncate=*/true);
    ASSERT_TRUE(obs::SetupLogging(o, sink).ok());
    run(format);
    // The same without the flush (a write(2)) that every info line gets.
    spdlog::default_logger()->flush_on(spdlog::level::off);
    run(std::string(format).append(", no flush per line").c_str());
  }
  obs::SetComponentLevel(obs::Component::kAccess, spdlog::level::off);
  run("off");
  std::remove("/tmp/ym-access-cost.log");
  ASSERT_TRUE(obs::SetupLogging("info", "text").ok());
}

}  // namespace
}  // namespace ym::net
