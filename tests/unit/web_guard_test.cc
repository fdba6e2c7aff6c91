// WebGuard (net/web_guard.h): the Host, Origin and content-type rules, and the listen-address
// predicate of the safe default (server/listen_check.h).

#include "net/web_guard.h"

#include <gtest/gtest.h>

#include <string>

#include "server/listen_check.h"

namespace ym::net {
namespace {

namespace http = boost::beast::http;

WebRequest Get(std::string_view host, std::string_view target = "/v1/info") {
  WebRequest r;
  r.method = http::verb::get;
  r.target = target;
  r.host = host;
  return r;
}

WebRequest Post(std::string_view host, std::string_view content_type,
                std::string_view target = "/v1/jobs/1:cancel") {
  WebRequest r = Get(host, target);
  r.method = http::verb::post;
  r.content_type = content_type;
  return r;
}

using Kind = WebVerdict::Kind;

TEST(WebGuardTest, NobodyIsAuthenticatedYet) {
  EXPECT_FALSE(RequestIsAuthenticated(Get("localhost")));
}

TEST(WebGuardTest, LoopbackNames) {
  for (const char* h : {"localhost", "LocalHost", "localhost.", "127.0.0.1", "127.1.2.3", "::1",
                        "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackName(h)) << h;
  }
  for (const char* h : {"", "0.0.0.0", "::", "10.0.0.1", "evil.example", "localhost.evil.example",
                        "127.0.0.1.evil.example", "::2", "128.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackName(h)) << h;
  }
}

TEST(WebGuardTest, HostOfAuthority) {
  EXPECT_EQ(HostOfAuthority("LOCALHOST:7433"), "localhost");
  EXPECT_EQ(HostOfAuthority("[::1]:7433"), "::1");
  EXPECT_EQ(HostOfAuthority("[::1]"), "::1");
  EXPECT_EQ(HostOfAuthority("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(HostOfAuthority("jobs.internal.:80"), "jobs.internal");
  for (const char* bad :
       {"", ":80", "a:b", "a:99999", "[::1", "[evil]:1", "a b", "a@b", "::1", "[127.0.0.1]"}) {
    EXPECT_EQ(HostOfAuthority(bad), std::nullopt) << bad;
  }
}

TEST(WebGuardTest, OnlyLoopbackHostsByDefault) {
  const WebGuard guard({});
  for (const char* h : {"localhost", "localhost:7433", "127.0.0.1:1", "[::1]:7433", "LOCALHOST"}) {
    EXPECT_EQ(guard.Check(Get(h)).kind, Kind::kPass) << h;
  }
  for (const char* h : {"evil.example", "evil.example:7433", "10.0.0.5:7433", "", "a:b:c"}) {
    const WebVerdict v = guard.Check(Get(h));
    EXPECT_EQ(v.kind, Kind::kRefuse) << h;
    EXPECT_EQ(v.error.code(), Code::kPermissionDenied) << h;
    // The error names no host: it says nothing about what the server would accept.
    EXPECT_EQ(v.error.message().find("evil"), std::string::npos);
  }
  // HTTP/1.1 without Host cannot get here (a framing 400); HTTP/1.0 without Host passes, since
  // browsers always send Host.
  WebRequest old = Get("x");
  old.host.reset();
  old.version = 10;
  EXPECT_EQ(guard.Check(old).kind, Kind::kPass);
  old.version = 11;
  EXPECT_EQ(guard.Check(old).kind, Kind::kRefuse);
}

TEST(WebGuardTest, AllowedHostsAndInsecureAddresses) {
  WebGuardOptions o;
  o.allowed_hosts = {"jobs.internal"};
  const WebGuard guard(o);
  EXPECT_EQ(guard.Check(Get("Jobs.Internal:7433")).kind, Kind::kPass);
  EXPECT_EQ(guard.Check(Get("jobs.internal.evil.example")).kind, Kind::kRefuse);
  EXPECT_EQ(guard.Check(Get("10.0.0.5:7433")).kind, Kind::kRefuse);
  o.accept_ip_literal_hosts = true;  // --insecure on a non-loopback address
  const WebGuard insecure(o);
  EXPECT_EQ(insecure.Check(Get("10.0.0.5:7433")).kind, Kind::kPass);
  EXPECT_EQ(insecure.Check(Get("[fd00::5]:7433")).kind, Kind::kPass);
  EXPECT_EQ(insecure.Check(Get("evil.example")).kind, Kind::kRefuse);
  o.allowed_hosts = {"*"};
  EXPECT_EQ(WebGuard(o).Check(Get("evil.example")).kind, Kind::kPass);
}

TEST(WebGuardTest, WritesNeedJsonContentType) {
  const WebGuard guard({});
  for (const char* ct : {"application/json", "Application/JSON; charset=utf-8"}) {
    EXPECT_EQ(guard.Check(Post("localhost", ct)).kind, Kind::kPass) << ct;
  }
  for (const char* ct : {"", "text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/jsonx"}) {
    for (auto m : {http::verb::post, http::verb::put, http::verb::patch, http::verb::delete_}) {
      WebRequest r = Post("localhost", ct);
      r.method = m;
      const WebVerdict v = guard.Check(r);
      EXPECT_EQ(v.kind, Kind::kRefuse) << ct;
      EXPECT_EQ(v.error.code(), Code::kUnsupportedMediaType);
    }
  }
  // Reads need none.
  EXPECT_EQ(guard.Check(Get("localhost")).kind, Kind::kPass);
}

TEST(WebGuardTest, ForeignOriginsAreRefusedExceptHealthAndMetricsReads) {
  WebGuardOptions o;
  o.cors_allowed_origins = {"https://dash.example"};
  const WebGuard guard(o);
  WebRequest r = Post("localhost", "application/json");
  r.origin = "https://evil.example";
  WebVerdict v = guard.Check(r);
  EXPECT_EQ(v.kind, Kind::kRefuse);
  EXPECT_EQ(v.error.code(), Code::kPermissionDenied);
  EXPECT_TRUE(v.headers.empty()) << "no CORS headers for a foreign origin";
  r = Get("localhost", "/v1/jobs?queue=a");
  r.origin = "null";
  EXPECT_EQ(guard.Check(r).kind, Kind::kRefuse);
  for (const char* path : {"/livez", "/readyz", "/healthz", "/metrics"}) {
    r = Get("localhost", path);
    r.origin = "https://evil.example";
    v = guard.Check(r);
    EXPECT_EQ(v.kind, Kind::kPass) << path;
    EXPECT_TRUE(v.headers.empty());
    r.method = http::verb::post;
    r.content_type = "application/json";
    EXPECT_EQ(guard.Check(r).kind, Kind::kRefuse) << path;
  }
}

TEST(WebGuardTest, AllowedOriginGetsCorsHeadersAndPreflight) {
  WebGuardOptions o;
  o.cors_allowed_origins = {"https://dash.example"};
  const WebGuard guard(o);
  WebRequest r = Post("localhost", "application/json");
  r.origin = "https://DASH.example";
  WebVerdict v = guard.Check(r);
  EXPECT_EQ(v.kind, Kind::kPass);
  auto header = [&v](std::string_view name) -> std::string {
    for (const auto& [k, val] : v.headers) {
      if (k == name) return val;
    }
    return "(absent)";
  };
  EXPECT_EQ(header("Access-Control-Allow-Origin"), "https://DASH.example");
  EXPECT_EQ(header("Vary"), "Origin");
  r.method = http::verb::options;
  r.content_type = "";
  r.preflight_method = "POST";
  v = guard.Check(r);
  EXPECT_EQ(v.kind, Kind::kPreflight);
  EXPECT_NE(header("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_NE(header("Access-Control-Allow-Headers").find("Content-Type"), std::string::npos);
  // An allowed origin still needs the JSON type on writes; the refusal carries the CORS headers
  // so that the page can read the error.
  r = Post("localhost", "text/plain");
  r.origin = "https://dash.example";
  v = guard.Check(r);
  EXPECT_EQ(v.kind, Kind::kRefuse);
  EXPECT_EQ(v.error.code(), Code::kUnsupportedMediaType);
  EXPECT_EQ(header("Access-Control-Allow-Origin"), "https://dash.example");
  // The Host rule comes first, whatever the origin.
  r = Post("evil.example", "application/json");
  r.origin = "https://dash.example";
  EXPECT_EQ(guard.Check(r).error.code(), Code::kPermissionDenied);
}

TEST(WebGuardTest, NormalizeConfigEntries) {
  EXPECT_EQ(*NormalizeAllowedHost("Jobs.Internal."), "jobs.internal");
  EXPECT_EQ(*NormalizeAllowedHost("[FD00::1]"), "fd00::1");
  EXPECT_EQ(*NormalizeAllowedHost("*"), "*");
  EXPECT_FALSE(NormalizeAllowedHost("a:1").ok());
  EXPECT_FALSE(NormalizeAllowedHost("").ok());
  EXPECT_EQ(*NormalizeOrigin("HTTPS://Dash.Example:443"), "https://dash.example");
  EXPECT_EQ(*NormalizeOrigin("http://localhost:3000"), "http://localhost:3000");
  EXPECT_EQ(*NormalizeOrigin("http://[::1]:80"), "http://[::1]");
  EXPECT_FALSE(NormalizeOrigin("https://").ok());
  EXPECT_FALSE(NormalizeOrigin("https://u@dash.example").ok());
}

TEST(ListenCheckTest, OnlyLoopbackAddressesAreSafe) {
  for (const char* h : {"127.0.0.1", "::1", "127.0.0.2", "localhost"}) {
    EXPECT_TRUE(ListenIsLoopbackOnly(h)) << h;
  }
  for (const char* h :
       {"0.0.0.0", "::", "10.1.2.3", "192.168.1.1", "fd00::1", "no-such-host.invalid"}) {
    EXPECT_FALSE(ListenIsLoopbackOnly(h)) << h;
  }
  const std::string msg = NonLoopbackRefusal("::");
  EXPECT_NE(msg.find("[::]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--insecure"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ym::net
