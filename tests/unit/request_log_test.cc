// net/request_log.h: which X-Request-Id values are kept, the generated ids, and the access line.
#include "net/request_log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>

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

}  // namespace
}  // namespace ym::net
