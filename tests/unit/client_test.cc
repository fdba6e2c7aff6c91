// Unit tests of the client library (URL parsing, error mapping, keep-alive behaviour against a
// scripted in-process HTTP server) and of the CLI's argument parsing, which needs no server.

#include "yardmaster/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/format.h"
#include "client/api_client.h"
#include "client/http_client.h"
#include "yardmaster/version.h"

namespace ym::client {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// URL parsing

TEST(ParseBaseUrlTest, AcceptsHostAndPort) {
  Result<BaseUrl> u = ParseBaseUrl("http://127.0.0.1:7433");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 7433);
  EXPECT_EQ(u->Authority(), "127.0.0.1:7433");
}

TEST(ParseBaseUrlTest, AcceptsNamesTrailingSlashAndIpv6) {
  Result<BaseUrl> name = ParseBaseUrl("http://broker.internal:80/");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "broker.internal");
  EXPECT_EQ(name->port, 80);

  Result<BaseUrl> v6 = ParseBaseUrl("http://[::1]:9000");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Authority(), "[::1]:9000");
}

TEST(ParseBaseUrlTest, RejectsEverythingElse) {
  for (const char* bad : {"", "127.0.0.1:7433", "https://h", "ftp://h:1", "http://", "http://h",
                          "http://h:", "http://:7433", "http://h:0", "http://h:65536",
                          "http://h:12x", "http://h:1/v1", "http://h:1?x=1", "http://u@h:1",
                          "http://::1:7433", "http://[::1", "http://[::1]", "http://h h:1"}) {
    Result<BaseUrl> u = ParseBaseUrl(bad);
    EXPECT_FALSE(u.ok()) << "accepted '" << bad << "'";
    if (!u.ok()) {
      EXPECT_EQ(u.status().code(), Code::kInvalidRequest) << bad;
    }
  }
}

TEST(ParseBaseUrlTest, HttpsIsAcceptedAndMarked) {
  Result<BaseUrl> u = ParseBaseUrl("https://h:443");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->Authority(), "h:443");
  Result<BaseUrl> plain = ParseBaseUrl("http://h:80");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls);
  EXPECT_FALSE(ParseBaseUrl("https://h:1/v1").ok());
}

// ---------------------------------------------------------------------------------------------
// Error codes and error bodies

TEST(ParseCodeNameTest, IsTheInverseOfCodeName) {
  for (int i = 0; i <= static_cast<int>(Code::kCorruption); ++i) {
    const Code c = static_cast<Code>(i);
    std::optional<Code> parsed = ParseCodeName(CodeName(c));
    ASSERT_TRUE(parsed.has_value()) << CodeName(c);
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_FALSE(ParseCodeName("no_such_code").has_value());
  EXPECT_FALSE(ParseCodeName("").has_value());
  EXPECT_FALSE(ParseCodeName("STALE_LEASE").has_value());
}

TEST(StatusFromErrorReplyTest, UsesTheServersCodeAndMessage) {
  Status s = StatusFromErrorReply(
      409, R"({"error":{"code":"stale_lease","message":"token 00ff is not current"}})");
  EXPECT_EQ(s.code(), Code::kStaleLease);
  EXPECT_EQ(s.message(), "token 00ff is not current");

  // Two codes share 409 and 503; the body, not the status, decides.
  EXPECT_EQ(StatusFromErrorReply(409, R"({"error":{"code":"invalid_state","message":""}})").code(),
            Code::kInvalidState);
  EXPECT_EQ(StatusFromErrorReply(503, R"({"error":{"code":"io_error","message":"disk"}})").code(),
            Code::kIoError);
  EXPECT_EQ(
      StatusFromErrorReply(422, R"({"error":{"code":"validation_failed","message":"m"}})").code(),
      Code::kValidation);
}

TEST(StatusFromErrorReplyTest, FallsBackToTheHttpStatus) {
  // A code newer than this client keeps the HTTP class and shows what the server said.
  Status unknown = StatusFromErrorReply(429, R"({"error":{"code":"slow_down","message":"m"}})");
  EXPECT_EQ(unknown.code(), Code::kResourceExhausted);
  EXPECT_THAT(unknown.message(), HasSubstr("slow_down"));

  // Not JSON at all, e.g. from a proxy.
  Status html = StatusFromErrorReply(502, "<html>bad gateway</html>");
  EXPECT_EQ(html.code(), Code::kUnavailable);
  EXPECT_THAT(html.message(), HasSubstr("HTTP 502"));

  EXPECT_EQ(StatusFromErrorReply(404, "").code(), Code::kNotFound);
  EXPECT_EQ(StatusFromErrorReply(418, "{}").code(), Code::kInvalidRequest);
  EXPECT_EQ(StatusFromErrorReply(500, R"({"error":"flat"})").code(), Code::kInternal);
}

TEST(CodeForHttpStatusTest, MirrorsHttpStatus) {
  // Every code whose HTTP status is unique must map back to itself.
  for (Code c : {Code::kUnauthenticated, Code::kPermissionDenied, Code::kNotFound,
                 Code::kMethodNotAllowed, Code::kPayloadTooLarge, Code::kUnsupportedMediaType,
                 Code::kValidation, Code::kResourceExhausted}) {
    EXPECT_EQ(CodeForHttpStatus(HttpStatus(c)), c) << CodeName(c);
  }
}

// ---------------------------------------------------------------------------------------------
// Against a scripted HTTP server

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Exchange {
  std::string method;
  std::string target;
  std::string body;
  std::string content_type;
  std::string user_agent;
};

struct Reply {
  int status = 200;
  std::string body = "{}";
  // Close the connection after this reply without announcing it, as a server's idle timeout
  // does between two requests of a keep-alive client.
  bool drop_after = false;
  // Close the connection instead of replying: a server that died, or an idle close that raced
  // with our request.
  bool close_instead = false;
  std::chrono::milliseconds delay{0};
};

// A single-threaded HTTP/1.1 server on 127.0.0.1 that answers from a test-supplied function and
// records every request. One connection at a time, which is all one client uses.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<Reply(const Exchange&)> handler)
      : handler_(std::move(handler)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedServer() {
    stop_ = true;
    // Wake the blocking accept with a connection of our own.
    boost::system::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepts() const { return accepts_.load(); }
  // Connections the server has closed.
  int closes() const { return closes_.load(); }
  std::vector<Exchange> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket sock(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      ++accepts_;
      beast::flat_buffer buf;
      while (true) {
        http::request<http::string_body> req;
        http::read(sock, buf, req, ec);
        if (ec) break;
        Exchange ex{std::string(req.method_string()), std::string(req.target()), req.body(),
                    std::string(req[http::field::content_type]),
                    std::string(req[http::field::user_agent])};
        {
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(ex);
        }
        const Reply r = handler_(ex);
        if (r.close_instead) break;
        std::this_thread::sleep_for(r.delay);
        http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
        res.set(http::field::content_type, "application/json");
        if (r.status == 429) res.set(http::field::retry_after, "3");
        res.body() = r.body;
        res.keep_alive(true);
        res.prepare_payload();
        http::write(sock, res, ec);
        if (ec || r.drop_after) break;
      }
      sock.close(ec);
      ++closes_;
    }
  }

  std::function<Reply(const Exchange&)> handler_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::atomic<int> closes_{0};
  std::mutex mu_;
  std::vector<Exchange> requests_;  // guarded by mu_
};

TEST(HttpClientTest, KeepAliveReusesOneConnection) {
  ScriptedServer server([](const Exchange&) { return Reply{200, R"({"status":"ok"})"}; });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(api->Healthz().ok()) << i;
  EXPECT_EQ(api->http().connections_opened(), 1u);
  EXPECT_EQ(server.accepts(), 1);
}

TEST(HttpClientTest, ReconnectsWhenTheServerDroppedAnIdleConnection) {
  ScriptedServer server([](const Exchange&) {
    Reply r{200, R"({"status":"ok"})"};
    r.drop_after = true;
    return r;
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(api->Healthz().ok()) << i;
    // Until the server has closed the connection, as it would during a real idle period (on
    // loopback its FIN has then reached us). Bounded: 30 s.
    for (int n = 0; n < 6000 && server.closes() < i + 1; ++n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(server.closes(), i + 1);
  }
  EXPECT_EQ(api->http().connections_opened(), 3u);
  // Each request was sent exactly once: the dead connection was noticed before sending.
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientTest, ResendsOnceWhenAReusedConnectionDiesBeforeTheReply) {
  std::atomic<int> seen{0};
  ScriptedServer server([&](const Exchange&) {
    Reply r{200, R"({"status":"ok"})"};
    // The second request arrives on the reused connection and is never answered there.
    r.close_instead = ++seen == 2;
    return r;
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  ASSERT_TRUE(api->Healthz().ok());
  Status second = api->Healthz();
  EXPECT_TRUE(second.ok()) << second.ToString();
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(api->http().connections_opened(), 2u);
}

TEST(HttpClientTest, DoesNotResendOnAFreshConnection) {
  ScriptedServer server([](const Exchange&) {
    Reply r;
    r.close_instead = true;
    return r;
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  Status s = api->Healthz();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(api->last_http_status(), 0);
  // A new connection that fails says something about the server, not about idle timeouts.
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClientTest, UnreachableServerIsUnavailableWithNoHttpStatus) {
  std::uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed again: nothing listens on `port` now
  Result<ApiClient> api = ApiClient::Create("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(api.ok());
  Result<ServerInfo> info = api->Info();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kUnavailable);
  EXPECT_EQ(api->last_http_status(), 0);
}

TEST(HttpClientTest, RequestTimeoutIsEnforced) {
  ScriptedServer server([](const Exchange&) {
    Reply r;
    r.delay = std::chrono::milliseconds(1000);
    return r;
  });
  HttpClientOptions options;
  options.request_timeout = std::chrono::milliseconds(100);
  Result<HttpClient> http = HttpClient::Create(server.url(), options);
  ASSERT_TRUE(http.ok());
  const auto t0 = std::chrono::steady_clock::now();
  Result<HttpResponse> r = http->Send(HttpMethod::kGet, "/healthz");
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("timed out"));
  // Far below the server's 1 s delay, with room for a loaded machine.
  EXPECT_LT(elapsed, std::chrono::milliseconds(900));
}

TEST(HttpClientTest, InterruptEndsARequestInFlightAndEveryLaterOne) {
  // The server holds the request, like a long-poll with nothing to lease, until the test is
  // done: only Interrupt() can end the Send() (its own timeout is far away and says so).
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ScriptedServer server([released](const Exchange&) {
    released.wait();
    return Reply{200, R"({"jobs":[]})"};
  });
  // Lets the server thread go before ~ScriptedServer joins it, however the test ends.
  struct Releaser {
    std::promise<void>& p;
    ~Releaser() { p.set_value(); }
  } releaser{release};
  HttpClientOptions options;
  options.request_timeout = std::chrono::milliseconds(60'000);
  Result<HttpClient> http = HttpClient::Create(server.url(), options);
  ASSERT_TRUE(http.ok());
  std::thread interrupter([&] {
    for (int i = 0; i < 2000 && server.requests().empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    http->Interrupt();
  });
  Result<HttpResponse> r = http->Send(HttpMethod::kPost, "/v1/leases", R"({"wait_ms":30000})");
  interrupter.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("interrupted"));
  EXPECT_TRUE(http->interrupted());
  // Sticky: the next request fails at once, without reaching the server.
  Result<HttpResponse> again = http->Send(HttpMethod::kGet, "/healthz");
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr("interrupted"));
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(http->connections_opened(), 1u);
}

TEST(HttpClientTest, InterruptBeforeSendingOpensNoConnection) {
  ScriptedServer server([](const Exchange&) { return Reply{200, R"({"status":"ok"})"}; });
  Result<HttpClient> http = HttpClient::Create(server.url());
  ASSERT_TRUE(http.ok());
  http->Interrupt();
  Result<HttpResponse> r = http->Send(HttpMethod::kGet, "/healthz");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("interrupted"));
  EXPECT_EQ(http->connections_opened(), 0u);
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApiClientTest, ErrorRepliesBecomeStatusWithTheServersCode) {
  ScriptedServer server([](const Exchange&) {
    return Reply{409, R"({"error":{"code":"stale_lease","message":"not your lease"}})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  Result<JobStateResult> r = api->Ack("42", "00000000000000ff");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kStaleLease);
  EXPECT_EQ(r.status().message(), "not your lease");
  EXPECT_EQ(api->last_http_status(), 409);
}

// Regression (found by client_fuzz): a number outside the int64 range in an integer field was
// cast from double, which is undefined behaviour; it is clamped.
TEST(ApiClientTest, OutOfRangeNumbersInRepliesAreClamped) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"id":"1","state":"ready","run_at":1e300,"created_at":-1e300,)"
                      R"("lease_ms":12.5,"payload":null})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  Result<Job> job = api->GetJob("1");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->run_at_ms, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(job->created_at_ms, std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(job->lease_ms, 12);
}

TEST(ApiClientTest, RetryAfterIsReported) {
  ScriptedServer server([](const Exchange&) {
    return Reply{429, R"({"error":{"code":"resource_exhausted","message":"quota"}})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  EnqueueRequest job;
  job.queue = "q";
  job.kind = "k";
  Result<EnqueueResult> r = api->Enqueue(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(api->last_retry_after_s(), std::optional<std::int64_t>(3));
}

TEST(ApiClientTest, EnqueueSendsTheDocumentedFields) {
  ScriptedServer server([](const Exchange&) {
    return Reply{201, R"({"id":"7","state":"scheduled"})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  EnqueueRequest job;
  job.queue = "emails";
  job.kind = "send";
  job.payload_json = R"({"user":7,"big":12345678901234567890})";
  job.ns = "acme";
  job.priority = 5;
  job.run_at_ms = 1'700'000'000'000;
  job.idempotency_key = "k1";
  job.tags = {"a", "b"};
  Result<EnqueueResult> r = api->Enqueue(job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "7");
  EXPECT_EQ(r->state, "scheduled");
  EXPECT_FALSE(r->duplicate);

  std::vector<Exchange> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/v1/jobs");
  EXPECT_EQ(reqs[0].content_type, "application/json");
  rapidjson::Document d;
  d.Parse(reqs[0].body.c_str());
  ASSERT_FALSE(d.HasParseError()) << reqs[0].body;
  EXPECT_STREQ(d["queue"].GetString(), "emails");
  EXPECT_STREQ(d["kind"].GetString(), "send");
  EXPECT_STREQ(d["namespace"].GetString(), "acme");
  EXPECT_EQ(d["priority"].GetInt(), 5);
  EXPECT_EQ(d["run_at"].GetInt64(), 1'700'000'000'000);
  EXPECT_STREQ(d["idempotency_key"].GetString(), "k1");
  EXPECT_EQ(d["tags"].Size(), 2u);
  EXPECT_EQ(d["payload"]["user"].GetInt(), 7);
  // The payload is forwarded as written, not reparsed into doubles.
  EXPECT_THAT(reqs[0].body, HasSubstr("12345678901234567890"));
  // Unset options are not sent: the server rejects unknown fields and applies queue defaults.
  EXPECT_FALSE(d.HasMember("delay_ms"));
  EXPECT_FALSE(d.HasMember("max_attempts"));
  EXPECT_FALSE(d.HasMember("backoff"));
}

TEST(ApiClientTest, MalformedPayloadIsRejectedBeforeSending) {
  ScriptedServer server([](const Exchange&) { return Reply{}; });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  EnqueueRequest job;
  job.queue = "q";
  job.kind = "k";
  job.payload_json = "{not json";
  Result<EnqueueResult> r = api->Enqueue(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kValidation);
  EXPECT_TRUE(server.requests().empty());
}

// Regression (issue 7 item 1): replies were read into doubles, so a leased payload or a job's
// result came back re-encoded (1E2 as 100.0, big integers rounded) and numbers beyond the double
// range made the whole reply unreadable.
TEST(ApiClientTest, PayloadsAndResultsComeBackExactly) {
  const std::string payload =
      R"({"big":12345678901234567890123,"neg":-9223372036854775809,"e":1E2,)"
      R"("fuzz":799999999999999999999999999999999999999990,"huge":1e400,"s":"\u00e9\udbff\udfff"})";
  ScriptedServer server([&](const Exchange& ex) {
    if (ex.target == "/v1/leases") {
      return Reply{200,
                   R"({"jobs":[{"id":"1","queue":"q","kind":"k","payload":)" + payload +
                       R"(,"attempt":1,"lease":{"token":"00000000000000ff","expires_at":1}}]})"};
    }
    if (ex.target == "/v1/jobs/1") {
      return Reply{200, R"({"id":"1","state":"succeeded","payload":)" + payload +
                            R"(,"result":[1.0,2e-999]})"};
    }
    return Reply{200, R"({"id":"1","state":"ready"})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  EnqueueRequest job;
  job.queue = "q";
  job.kind = "k";
  job.payload_json = payload;
  ASSERT_TRUE(api->Enqueue(job).ok());
  EXPECT_THAT(server.requests()[0].body, HasSubstr(payload));
  LeaseRequest lease;
  lease.queues = {"q"};
  auto leased = api->Lease(lease);
  ASSERT_TRUE(leased.ok()) << leased.status().ToString();
  ASSERT_EQ(leased->size(), 1u);
  EXPECT_EQ((*leased)[0].payload_json, payload);
  auto got = api->GetJob("1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->payload_json, payload);
  EXPECT_EQ(got->result_json, std::optional<std::string>("[1.0,2e-999]"));
  // What the server would refuse is refused before sending.
  job.payload_json = R"("\udc00")";
  EXPECT_EQ(api->Enqueue(job).status().code(), Code::kValidation);
  job.payload_json = std::string("{}\0{}", 5);
  EXPECT_EQ(api->Enqueue(job).status().code(), Code::kValidation);
}

TEST(ApiClientTest, BatchResultsKeepPerItemErrors) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"results":[{"id":"1","state":"ready"},)"
                      R"({"error":{"code":"validation_failed","message":"bad kind"}},)"
                      R"({"id":"3","state":"ready","duplicate":true}]})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  std::vector<EnqueueRequest> jobs(3);
  for (auto& j : jobs) {
    j.queue = "q";
    j.kind = "k";
  }
  auto r = api->EnqueueBatch(jobs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0].ok());
  EXPECT_EQ((*r)[0]->id, "1");
  ASSERT_FALSE((*r)[1].ok());
  EXPECT_EQ((*r)[1].status().code(), Code::kValidation);
  EXPECT_TRUE((*r)[2]->duplicate);
  EXPECT_EQ(server.requests()[0].target, "/v1/jobs:batch");
}

TEST(ApiClientTest, ListJobsEncodesTheQueryAndReadsTheCursor) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"items":[{"id":"5","queue":"a b","state":"dead","attempts":3,)"
                      R"("max_attempts":3,"payload":{"x":1},"lease":null,"last_error":)"
                      R"({"type":"boom","message":"m"}}],"next_cursor":"c2"})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  ListJobsRequest req;
  req.filter.queue = "a b";
  req.filter.states = {"dead"};
  req.limit = 10;
  Result<JobPage> page = api->ListJobs(req);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(server.requests()[0].target, "/v1/jobs?queue=a%20b&state=dead&limit=10");
  ASSERT_EQ(page->items.size(), 1u);
  const Job& j = page->items[0];
  EXPECT_EQ(j.id, "5");
  EXPECT_EQ(j.attempts, 3);
  EXPECT_EQ(j.payload_json, R"({"x":1})");
  EXPECT_FALSE(j.lease.has_value());
  ASSERT_TRUE(j.last_error_json.has_value());
  EXPECT_THAT(*j.last_error_json, HasSubstr("boom"));
  EXPECT_EQ(page->next_cursor, std::optional<std::string>("c2"));
}

TEST(ApiClientTest, ListJobsEncodesEveryFilter) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"items":[],"next_cursor":null})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  ListJobsRequest req;
  req.filter.ns = "tenant-a";
  req.filter.queue = "q";
  req.filter.kind = "resize";
  req.filter.states = {"dead", "cancelled"};
  req.filter.tag = "customer 42";
  req.filter.created_after_ms = 1;
  req.filter.created_before_ms = 2;
  req.filter.finished_after_ms = 3;
  req.filter.finished_before_ms = 1700000000000;
  req.limit = 5;
  req.cursor = "c1";
  Result<JobPage> page = api->ListJobs(req);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(server.requests()[0].target,
            "/v1/jobs?namespace=tenant-a&queue=q&kind=resize&state=dead%2Ccancelled&"
            "tag=customer%2042&created_after=1&created_before=2&finished_after=3&"
            "finished_before=1700000000000&limit=5&cursor=c1");
  EXPECT_TRUE(page->items.empty());
  EXPECT_FALSE(page->next_cursor.has_value());
}

TEST(ApiClientTest, AckBatchMapsEachItem) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"acks":[{"ok":true},{"error":{"code":"stale_lease","message":"x"}}],)"
                      R"("fails":[{"ok":true}]})"};
  });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  auto r = api->AckBatch({{"1", "t1", std::nullopt}, {"2", "t2", R"({"n":1})"}},
                         {{"3", "t3", {"timeout", "slow", true}, 500}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->acks.size(), 2u);
  EXPECT_TRUE(r->acks[0].ok());
  EXPECT_EQ(r->acks[1].code(), Code::kStaleLease);
  ASSERT_EQ(r->fails.size(), 1u);
  EXPECT_TRUE(r->fails[0].ok());
  rapidjson::Document d;
  d.Parse(server.requests()[0].body.c_str());
  EXPECT_EQ(d["acks"][1]["result"]["n"].GetInt(), 1);
  EXPECT_STREQ(d["fails"][0]["error"]["type"].GetString(), "timeout");
  EXPECT_EQ(d["fails"][0]["retry_in_ms"].GetInt(), 500);
}

TEST(ApiClientTest, WrongReplyShapeIsInternal) {
  ScriptedServer server([](const Exchange&) { return Reply{200, R"({"nope":1})"}; });
  Result<ApiClient> api = ApiClient::Create(server.url());
  ASSERT_TRUE(api.ok());
  Result<std::vector<Queue>> r = api->ListQueues();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

TEST(UserAgentTest, NamesTheSdkOrTheCliAndTheVersion) {
  ScriptedServer server([](const Exchange&) {
    return Reply{200, R"({"id":"1","queue":"q","kind":"k","state":"ready","version":"x"})"};
  });
  {
    // Closed before the CLI runs: the scripted server serves one connection at a time.
    yardmaster::ClientOptions options;
    options.server_url = server.url();
    yardmaster::Client sdk(options);
    (void)sdk.Get("1");
  }
  const cli::ParseOutcome parsed = cli::ParseCommandLine({"info", "--server", server.url()}, {});
  ASSERT_TRUE(parsed.invocation.has_value()) << parsed.err;
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(cli::Execute(*parsed.invocation, in, out, err), cli::kExitOk) << err.str();
  const std::vector<Exchange> seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].user_agent, std::string("yardmaster-cpp/") + YARDMASTER_VERSION);
  EXPECT_EQ(seen[1].target, "/v1/info");
  EXPECT_EQ(seen[1].user_agent, std::string("yardmaster-cli/") + YARDMASTER_VERSION);
}

}  // namespace
}  // namespace ym::client

// -----------------------------------------------------------------------------------------------
// CLI argument parsing (no server involved)

namespace ym::cli {
namespace {

using ::testing::HasSubstr;

ParseOutcome Parse(std::vector<std::string> args,
                   std::optional<std::string> env_url = std::nullopt) {
  return ParseCommandLine(args, env_url);
}

TEST(CliParseTest, EnqueueWithEveryOption) {
  ParseOutcome o = Parse({"enqueue",
                          "--queue",
                          "emails",
                          "--kind",
                          "send",
                          "--payload",
                          R"({"user":7})",
                          "--priority",
                          "-5",
                          "--delay-ms",
                          "1500",
                          "--max-attempts",
                          "3",
                          "--idempotency-key",
                          "k",
                          "--namespace",
                          "acme",
                          "--tag",
                          "a",
                          "--tag",
                          "b",
                          "--json"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  const Invocation& inv = *o.invocation;
  EXPECT_EQ(inv.command, Command::kEnqueue);
  EXPECT_TRUE(inv.json);
  EXPECT_EQ(inv.server_url, std::string(kDefaultServerUrl));
  EXPECT_EQ(inv.enqueue.queue, "emails");
  EXPECT_EQ(inv.enqueue.kind, "send");
  EXPECT_EQ(inv.payload_arg, R"({"user":7})");
  EXPECT_EQ(inv.enqueue.priority, -5);
  EXPECT_EQ(inv.enqueue.delay_ms, 1500);
  EXPECT_FALSE(inv.enqueue.run_at_ms.has_value());
  EXPECT_EQ(inv.enqueue.max_attempts, 3);
  EXPECT_EQ(inv.enqueue.idempotency_key, "k");
  EXPECT_EQ(inv.enqueue.ns, "acme");
  EXPECT_EQ(inv.enqueue.tags, (std::vector<std::string>{"a", "b"}));
}

TEST(CliParseTest, UnsetEnqueueOptionsStayUnset) {
  ParseOutcome o = Parse({"enqueue", "-q", "q", "-k", "k"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->payload_arg, "null");
  EXPECT_FALSE(o.invocation->enqueue.priority.has_value());
  EXPECT_FALSE(o.invocation->enqueue.max_attempts.has_value());
  EXPECT_FALSE(o.invocation->enqueue.ns.has_value());
}

TEST(CliParseTest, UsageErrorsExitWithTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"bogus"},
      {"enqueue", "--kind", "k"},                               // --queue missing
      {"enqueue", "-q", "q", "-k", "k", "--payload", "{nope"},  // not JSON
      {"enqueue", "-q", "q", "-k", "k", "--payload", "hello"},  // unquoted string
      {"enqueue", "-q", "q", "-k", "k", "--delay-ms", "5", "--run-at", "1700000000000"},
      {"enqueue", "-q", "q", "-k", "k", "--delay-ms", "-1"},
      {"enqueue", "-q", "q", "-k", "k", "--priority", "2000000"},
      {"enqueue", "-q", "q", "-k", "k", "--max-attempts", "0"},
      {"enqueue", "-q", "q", "-k", "k", "--run-at", "tomorrow"},
      {"jobs"},
      {"jobs", "get"},
      {"jobs", "list", "--state", "sleeping"},
      {"jobs", "list", "--limit", "0"},
      {"jobs", "list", "--limit", "1001"},
      {"queues", "pause"},
      {"dead"},
      {"dead", "replay"},  // would replay everything: needs --all
      {"dead", "replay", "--all", "--queue", "q"},
      {"dead", "replay", "--id", "1", "--queue", "q"},  // ids or a filter, not both
      {"dead", "replay", "--id", "1", "--limit", "5"},
      {"dead", "replay", "--all", "--limit", "100001"},
      {"info", "--server", "127.0.0.1:7433"},
      {"info", "extra"},
      {"server", "--listen", "x"},  // main() dispatches server; here it is misplaced
  };
  for (const auto& args : bad) {
    ParseOutcome o = Parse(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_FALSE(o.invocation.has_value()) << joined;
    EXPECT_EQ(o.exit_code, kExitUsage) << joined;
    EXPECT_THAT(o.err, HasSubstr("error: ")) << joined;
  }
}

TEST(CliParseTest, HelpExitsWithZeroAndDescribesOptions) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"},
                                               {"enqueue", "--help"},
                                               {"jobs", "list", "--help"},
                                               {"dead", "replay", "--help"}}) {
    ParseOutcome o = Parse(args);
    EXPECT_FALSE(o.invocation.has_value());
    EXPECT_EQ(o.exit_code, kExitOk);
    EXPECT_THAT(o.out, HasSubstr("--server"));
  }
  EXPECT_THAT(Parse({"enqueue", "--help"}).out, HasSubstr("--idempotency-key"));
}

TEST(CliParseTest, ServerUrlComesFromFlagThenEnvThenDefault) {
  EXPECT_EQ(Parse({"info"}).invocation.value().server_url, "http://127.0.0.1:7433");
  EXPECT_EQ(Parse({"info"}, "http://env:1").invocation.value().server_url, "http://env:1");
  EXPECT_EQ(
      Parse({"info", "--server", "http://flag:2"}, "http://env:1").invocation.value().server_url,
      "http://flag:2");
  // Common options work before the command too.
  ParseOutcome o = Parse({"--server", "http://flag:3", "--json", "queues"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->server_url, "http://flag:3");
  EXPECT_TRUE(o.invocation->json);
  // A bad URL from the environment is a usage error as well.
  EXPECT_EQ(Parse({"info"}, "nonsense").exit_code, kExitUsage);
}

TEST(CliParseTest, JobsAndQueuesCommands) {
  ParseOutcome get = Parse({"jobs", "get", "42"});
  ASSERT_TRUE(get.invocation.has_value()) << get.err;
  EXPECT_EQ(get.invocation->command, Command::kJobsGet);
  EXPECT_EQ(get.invocation->job_id, "42");

  ParseOutcome list =
      Parse({"jobs", "list", "--queue", "q", "--state", "dead", "--limit", "5", "--all"});
  ASSERT_TRUE(list.invocation.has_value()) << list.err;
  EXPECT_EQ(list.invocation->command, Command::kJobsList);
  EXPECT_EQ(list.invocation->list_jobs.filter.queue, "q");
  EXPECT_EQ(list.invocation->list_jobs.filter.states, std::vector<std::string>{"dead"});
  EXPECT_EQ(list.invocation->list_jobs.limit, 5);
  EXPECT_TRUE(list.invocation->all_pages);
  // The state set, comma-separated or repeated, as the bulk operations take it.
  ParseOutcome states = Parse({"jobs", "list", "-s", "dead,cancelled", "--state", "active"});
  ASSERT_TRUE(states.invocation.has_value()) << states.err;
  EXPECT_EQ(states.invocation->list_jobs.filter.states,
            (std::vector<std::string>{"dead", "cancelled", "active"}));

  EXPECT_EQ(Parse({"jobs", "cancel", "1"}).invocation.value().command, Command::kJobsCancel);
  EXPECT_EQ(Parse({"jobs", "replay", "1"}).invocation.value().command, Command::kJobsReplay);
  EXPECT_EQ(Parse({"queues"}).invocation.value().command, Command::kQueuesList);
  ParseOutcome one = Parse({"queues", "emails"});
  ASSERT_TRUE(one.invocation.has_value()) << one.err;
  EXPECT_EQ(one.invocation->command, Command::kQueuesGet);
  EXPECT_EQ(one.invocation->queue_name, "emails");
  ParseOutcome pause = Parse({"queues", "pause", "emails"});
  ASSERT_TRUE(pause.invocation.has_value()) << pause.err;
  EXPECT_EQ(pause.invocation->command, Command::kQueuesPause);
  EXPECT_EQ(pause.invocation->queue_name, "emails");
  EXPECT_EQ(Parse({"queues", "resume", "emails"}).invocation.value().command,
            Command::kQueuesResume);
  EXPECT_EQ(Parse({"info"}).invocation.value().command, Command::kInfo);

  // Queue names that collide with command names stay queue names.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"queues", "--", "pause"}, {"queues", "info"}}) {
    ParseOutcome o = Parse(args);
    ASSERT_TRUE(o.invocation.has_value()) << o.err;
    EXPECT_EQ(o.invocation->command, Command::kQueuesGet);
    EXPECT_EQ(o.invocation->queue_name, args.back());
  }
}

TEST(CliParseTest, DeadCommands) {
  ParseOutcome list = Parse({"dead", "list", "--queue", "q"});
  ASSERT_TRUE(list.invocation.has_value()) << list.err;
  EXPECT_EQ(list.invocation->command, Command::kDeadList);
  EXPECT_EQ(list.invocation->list_dead.queue, "q");

  ParseOutcome replay = Parse({"dead", "replay", "--id", "1", "--id", "2"});
  ASSERT_TRUE(replay.invocation.has_value()) << replay.err;
  EXPECT_EQ(replay.invocation->command, Command::kDeadReplay);
  EXPECT_EQ(replay.invocation->dead_replay.ids, (std::vector<std::string>{"1", "2"}));
  EXPECT_FALSE(replay.invocation->dead_replay.limit.has_value());

  ParseOutcome by_queue = Parse({"dead", "replay", "--queue", "q", "--limit", "10"});
  ASSERT_TRUE(by_queue.invocation.has_value()) << by_queue.err;
  EXPECT_EQ(by_queue.invocation->dead_replay.queue, "q");
  EXPECT_EQ(by_queue.invocation->dead_replay.limit, 10);

  ParseOutcome all = Parse({"dead", "replay", "--all"});
  ASSERT_TRUE(all.invocation.has_value()) << all.err;
  EXPECT_FALSE(all.invocation->dead_replay.queue.has_value());
  EXPECT_TRUE(all.invocation->dead_replay.ids.empty());
}

TEST(CliParseTest, RunAtAcceptsEpochMillisAndRfc3339) {
  EXPECT_EQ(*ParseRunAt("1700000000000"), 1'700'000'000'000);
  EXPECT_EQ(*ParseRunAt("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRunAt("2023-11-14T22:13:20Z"), 1'700'000'000'000);
  EXPECT_EQ(*ParseRunAt("2023-11-14T22:13:20.25Z"), 1'700'000'000'250);
  EXPECT_EQ(*ParseRunAt("2023-11-15T00:13:20+02:00"), 1'700'000'000'000);
  EXPECT_EQ(*ParseRunAt("2023-11-14T17:13:20-05:00"), 1'700'000'000'000);
  EXPECT_EQ(*ParseRunAt("2024-02-29T00:00:00Z"), 1'709'164'800'000);
  for (const char* bad :
       {"", "-5", "2023-02-29T00:00:00Z", "2023-11-14T25:00:00Z", "2023-11-14T22:13:20",
        "2023-11-14 22:13Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+2:00"}) {
    EXPECT_FALSE(ParseRunAt(bad).ok()) << bad;
  }
  ParseOutcome o = Parse({"enqueue", "-q", "q", "-k", "k", "--run-at", "2023-11-14T22:13:20Z"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->enqueue.run_at_ms, 1'700'000'000'000);
}

TEST(CliParseTest, PayloadFromStdinAndFiles) {
  std::istringstream in(R"({"from":"stdin"})");
  Result<std::string> p = ResolvePayload("-", in);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, R"({"from":"stdin"})");

  std::istringstream garbage("{oops");
  EXPECT_FALSE(ResolvePayload("-", garbage).ok());

  std::istringstream unused;
  Result<std::string> missing = ResolvePayload("@/nonexistent/payload.json", unused);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot open"));

  EXPECT_EQ(*ResolvePayload("[1,2]", unused), "[1,2]");

  // `-` and `@file` are accepted by the parser; they are read when the command runs.
  ParseOutcome o = Parse({"enqueue", "-q", "q", "-k", "k", "--payload", "-"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->payload_arg, "-");
  EXPECT_TRUE(Parse({"enqueue", "-q", "q", "-k", "k", "-p", "@x.json"}).invocation.has_value());
}

TEST(CliExecuteTest, UnreachableServerExitsWithThree) {
  std::uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  ParseOutcome o = Parse({"info", "--server", "http://127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(Execute(*o.invocation, in, out, err), kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("cannot reach the server"));
  EXPECT_TRUE(out.str().empty());
}

TEST(CliFormatTest, TimesDurationsAndTables) {
  EXPECT_EQ(FormatTime(1'700'000'000'000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatTime(1'700'000'000'250), "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatDuration(950), "950ms");
  EXPECT_EQ(FormatDuration(12'345), "12.3s");
  EXPECT_EQ(FormatDuration(245'000), "4m05s");
  EXPECT_EQ(FormatDuration(7'380'000), "2h03m");
  EXPECT_EQ(Clip("a\nbcdefghij", 6), "a b...");

  Table t({"ID", "NAME"}, {true, false});
  t.AddRow({"7", "x"});
  t.AddRow({"1234", "longer"});
  std::ostringstream s;
  t.Print(s);
  EXPECT_EQ(s.str(), "  ID  NAME\n   7  x\n1234  longer\n");
}

}  // namespace
}  // namespace ym::cli
