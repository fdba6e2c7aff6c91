// In-process tests of net/http_server.h: a real Broker on a MemoryStore behind the HttpServer
// on 127.0.0.1 port 0, driven by a minimal synchronous Beast client over real sockets.
#include "net/http_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "net/auth_token.h"
#include "net/token_book.h"
#include "server/broker.h"
#include "store/memory_store.h"

namespace ym::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string RawPost(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Reply {
  unsigned status = 0;
  std::string body;
  http::response<http::string_body> raw;
  rapidjson::Document json;
};

// One keep-alive connection; requests are sent and answered one at a time.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  Reply Send(http::verb method, const std::string& target, const std::string& body = "",
             const std::string& content_type = "application/json") {
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    // Writes carry the JSON type even without a body (net/web_guard.h).
    if (!body.empty() || method != http::verb::get) {
      req.set(http::field::content_type, content_type);
    }
    req.body() = body;
    req.prepare_payload();
    http::write(socket_, req);
    return Read();
  }

  Reply Read() {
    Reply r;
    http::read(socket_, buffer_, r.raw);
    r.status = r.raw.result_int();
    r.body = r.raw.body();
    if (!r.body.empty() && r.raw[http::field::content_type].starts_with("application/json")) {
      r.json.Parse(r.body.c_str());
    }
    return r;
  }

  void WriteRaw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Sent by Send as `Authorization: Bearer <token>` when set.
  void SetToken(std::string token) { token_ = std::move(token); }

  // Reads raw bytes up to and including `delim` (used for interim responses).
  std::string ReadUntil(const std::string& delim) {
    std::string got;
    asio::read_until(socket_, asio::dynamic_buffer(got), delim);
    return got;
  }

  // True when the server has closed the connection (EOF on the next read).
  bool ServerClosed() {
    beast::error_code ec;
    char c;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string token_;
};

class HttpServerTest : public testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Broker>(store_, clock_, BrokerOptions{});
    ASSERT_TRUE(broker_->Start().ok());
    HttpServerOptions opts;
    opts.port = 0;
    opts.io_threads = 2;
    opts.max_request_bytes = 64 << 10;
    opts.shutdown_timeout = std::chrono::milliseconds(2000);
    opts.metrics_renderer = [] { return std::string("ym_up 1\n"); };
    server_ = std::make_unique<HttpServer>(*broker_, opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(server_->local_port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (broker_) broker_->Stop();
  }

  // Waits (up to 30 s) until `queue` has `n` long polls registered, as GET /v1/queues shows
  // them: a condition instead of a fixed sleep, so that a loaded machine only makes it slower.
  // The queue exists (and is found) only once a wait has registered it.
  bool WaitForWaiters(const std::string& queue, int n) {
    Client probe(server_->local_port());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      Reply r = probe.Send(http::verb::get, "/v1/queues/" + queue);
      if (r.status == 200 && r.json.IsObject() && r.json.HasMember("waiting_workers") &&
          r.json["waiting_workers"].GetInt() == n) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::string Enqueue(Client& c, const std::string& queue) {
    Reply r = c.Send(http::verb::post, "/v1/jobs",
                     R"({"queue":")" + queue + R"(","kind":"k","payload":{"n":1}})");
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.json.IsObject() && r.json.HasMember("id") ? r.json["id"].GetString() : "";
  }

  MemoryStore store_;
  SystemClock clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, EnqueueLeaseAckOnOneKeepAliveConnection) {
  Client c(server_->local_port());
  std::string id = Enqueue(c, "emails");
  ASSERT_FALSE(id.empty());

  Reply job = c.Send(http::verb::get, "/v1/jobs/" + id);
  ASSERT_EQ(job.status, 200u) << job.body;
  EXPECT_STREQ(job.json["state"].GetString(), "ready");
  EXPECT_EQ(job.json["payload"]["n"].GetInt(), 1);

  Reply lease =
      c.Send(http::verb::post, "/v1/leases", R"({"queues":["emails"],"max":5,"worker_id":"w1"})");
  ASSERT_EQ(lease.status, 200u) << lease.body;
  ASSERT_EQ(lease.json["jobs"].Size(), 1u);
  const auto& leased = lease.json["jobs"][0];
  EXPECT_EQ(std::string(leased["id"].GetString()), id);
  EXPECT_EQ(leased["attempt"].GetInt(), 1);
  std::string token = leased["lease"]["token"].GetString();
  EXPECT_EQ(token.size(), 16u);

  Reply active = c.Send(http::verb::get, "/v1/jobs/" + id);
  EXPECT_STREQ(active.json["state"].GetString(), "active");

  Reply hb =
      c.Send(http::verb::post, "/v1/jobs/" + id + ":heartbeat", R"({"token":")" + token + R"("})");
  EXPECT_EQ(hb.status, 200u) << hb.body;
  EXPECT_FALSE(hb.json["cancel_requested"].GetBool());

  Reply stale =
      c.Send(http::verb::post, "/v1/jobs/" + id + ":ack", R"({"token":"0000000000000000"})");
  EXPECT_EQ(stale.status, 409u) << stale.body;
  EXPECT_STREQ(stale.json["error"]["code"].GetString(), "stale_lease");

  Reply ack = c.Send(http::verb::post, "/v1/jobs/" + id + ":ack",
                     R"({"token":")" + token + R"(","result":{"sent":true}})");
  ASSERT_EQ(ack.status, 200u) << ack.body;
  EXPECT_EQ(ack.body, R"({"id":")" + id + R"(","state":"succeeded"})");

  // Every request above went over the one connection.
  EXPECT_EQ(server_->stats().accepted_connections.load(), 1u);
  EXPECT_GE(server_->stats().Requests(RouteId::kEnqueue, 1), 1u);
  EXPECT_EQ(server_->stats().Requests(RouteId::kAck, 3), 1u);  // the 409
}

TEST_F(HttpServerTest, DuplicateIdempotencyKeyIs200) {
  Client c(server_->local_port());
  std::string body = R"({"queue":"q","kind":"k","idempotency_key":"order-1"})";
  Reply first = c.Send(http::verb::post, "/v1/jobs", body);
  ASSERT_EQ(first.status, 201u) << first.body;
  Reply second = c.Send(http::verb::post, "/v1/jobs", body);
  ASSERT_EQ(second.status, 200u) << second.body;
  EXPECT_TRUE(second.json["duplicate"].GetBool());
  EXPECT_STREQ(second.json["id"].GetString(), first.json["id"].GetString());
}

TEST_F(HttpServerTest, BatchEnqueueAndListing) {
  Client c(server_->local_port());
  Reply batch =
      c.Send(http::verb::post, "/v1/jobs:batch",
             R"({"jobs":[{"queue":"b","kind":"k"},{"queue":"b"},{"queue":"b","kind":"k"}]})");
  ASSERT_EQ(batch.status, 200u) << batch.body;
  const auto& results = batch.json["results"];
  ASSERT_EQ(results.Size(), 3u);
  EXPECT_TRUE(results[0].HasMember("id"));
  EXPECT_STREQ(results[1]["error"]["code"].GetString(), "validation_failed");
  EXPECT_TRUE(results[2].HasMember("id"));

  Reply page = c.Send(http::verb::get, "/v1/jobs?queue=b&state=ready&limit=1");
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.json["items"].Size(), 1u);
  ASSERT_TRUE(page.json["next_cursor"].IsString());
  Reply next = c.Send(http::verb::get, std::string("/v1/jobs?queue=b&state=ready&limit=1&cursor=") +
                                           page.json["next_cursor"].GetString());
  // A cursor belongs to the listing and filters it came from (AIP-158 style).
  Reply foreign = c.Send(http::verb::get, std::string("/v1/jobs?queue=b&limit=1&cursor=") +
                                              page.json["next_cursor"].GetString());
  EXPECT_EQ(foreign.status, 400u) << foreign.body;
  ASSERT_EQ(next.status, 200u) << next.body;
  ASSERT_EQ(next.json["items"].Size(), 1u);
  EXPECT_STRNE(next.json["items"][0]["id"].GetString(), page.json["items"][0]["id"].GetString());

  Reply queue = c.Send(http::verb::get, "/v1/queues/b");
  ASSERT_EQ(queue.status, 200u) << queue.body;
  EXPECT_EQ(queue.json["counts"]["ready"].GetUint64(), 2u);
  Reply paused = c.Send(http::verb::post, "/v1/queues/b:pause");
  ASSERT_EQ(paused.status, 200u) << paused.body;
  EXPECT_TRUE(paused.json["paused"].GetBool());
}

TEST_F(HttpServerTest, ErrorsAreJsonWithTheRightStatus) {
  Client c(server_->local_port());
  Reply nf = c.Send(http::verb::get, "/v1/nope");
  EXPECT_EQ(nf.status, 404u);
  EXPECT_STREQ(nf.json["error"]["code"].GetString(), "not_found");

  Reply na = c.Send(http::verb::delete_, "/v1/jobs");
  EXPECT_EQ(na.status, 405u);
  EXPECT_EQ(na.raw[http::field::allow], "POST, GET");
  EXPECT_STREQ(na.json["error"]["code"].GetString(), "method_not_allowed");

  Reply bad_id = c.Send(http::verb::get, "/v1/jobs/abc");
  EXPECT_EQ(bad_id.status, 400u);
  EXPECT_STREQ(bad_id.json["error"]["code"].GetString(), "invalid_request");

  Reply media =
      c.Send(http::verb::post, "/v1/jobs", "queue=q", "application/x-www-form-urlencoded");
  EXPECT_EQ(media.status, 415u);
  EXPECT_STREQ(media.json["error"]["code"].GetString(), "unsupported_media_type");

  Reply json = c.Send(http::verb::post, "/v1/jobs", "{nope");
  EXPECT_EQ(json.status, 400u);
  EXPECT_STREQ(json.json["error"]["code"].GetString(), "invalid_json");

  Reply invalid =
      c.Send(http::verb::post, "/v1/jobs", R"({"queue":"q","kind":"k","priority":2000000})");
  EXPECT_EQ(invalid.status, 422u);
  EXPECT_STREQ(invalid.json["error"]["message"].GetString(),
               "field \"priority\": must be an integer between -1000000 and 1000000");

  Reply missing = c.Send(http::verb::get, "/v1/jobs/999999");
  EXPECT_EQ(missing.status, 404u) << missing.body;

  // The connection survived every error above.
  EXPECT_EQ(server_->stats().accepted_connections.load(), 1u);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndCloses) {
  Client c(server_->local_port());
  // Only the headers: the server refuses on Content-Length without reading the body.
  c.WriteRaw(
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000000\r\n\r\n");
  Reply r = c.Read();
  EXPECT_EQ(r.status, 413u);
  EXPECT_STREQ(r.json["error"]["code"].GetString(), "payload_too_large");
  EXPECT_FALSE(r.raw.keep_alive());
  EXPECT_TRUE(c.ServerClosed());
}

TEST_F(HttpServerTest, MalformedRequestIs400AndCloses) {
  Client c(server_->local_port());
  c.WriteRaw("GARBAGE\r\n\r\n");
  Reply r = c.Read();
  EXPECT_EQ(r.status, 400u);
  EXPECT_STREQ(r.json["error"]["code"].GetString(), "invalid_request");
  EXPECT_TRUE(c.ServerClosed());
}

// docs/api.md: request line and headers are limited to 16 KiB (400 and close).
TEST_F(HttpServerTest, HeaderBlockOverTheLimitIs400AndCloses) {
  Client ok(server_->local_port());
  // Just under the limit is served.
  ok.WriteRaw("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + std::string(15 << 10, 'a') +
              "\r\n\r\n");
  EXPECT_EQ(ok.Read().status, 200u);
  Client c(server_->local_port());
  c.WriteRaw("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + std::string(17 << 10, 'a') +
             "\r\n\r\n");
  Reply r = c.Read();
  EXPECT_EQ(r.status, 400u);
  EXPECT_STREQ(r.json["error"]["code"].GetString(), "invalid_request");
  EXPECT_FALSE(r.raw.keep_alive());
  EXPECT_TRUE(c.ServerClosed());
}

// docs/api.md: `Expect: 100-continue` is honoured: the interim 100 comes before the body is
// sent, then the real answer.
TEST_F(HttpServerTest, ExpectContinueGetsAnInterim100ThenTheAnswer) {
  Client c(server_->local_port());
  const std::string body = R"({"queue":"ec","kind":"k","payload":{"n":1}})";
  c.WriteRaw(
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  // Read only the interim response's status line and blank line, without sending the body.
  std::string interim = c.ReadUntil("\r\n\r\n");
  EXPECT_TRUE(interim.starts_with("HTTP/1.1 100")) << interim;
  c.WriteRaw(body);
  Reply r = c.Read();
  EXPECT_EQ(r.status, 201u) << r.body;
}

// docs/api.md: a connection idle for the idle timeout is closed (60 s by default; shortened here).
TEST_F(HttpServerTest, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  HttpServerOptions opts;
  opts.port = 0;
  opts.io_threads = 1;
  opts.idle_timeout = std::chrono::milliseconds(300);
  HttpServer short_idle(*broker_, opts);
  ASSERT_TRUE(short_idle.Start().ok());
  Client c(short_idle.local_port());
  // Measured from before the request, so that a test thread descheduled after the reply cannot
  // shorten what it sees: the idle timer starts only after the request arrived.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.Send(http::verb::get, "/healthz").status, 200u);
  EXPECT_TRUE(c.ServerClosed()) << "the server must close the idle connection";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(250))
      << "closed before the idle timeout";
  // A half-sent request counts as idle too (slowloris): the server does not wait forever.
  Client slow(short_idle.local_port());
  slow.WriteRaw("GET /healthz HTTP/1.1\r\nHo");
  EXPECT_TRUE(slow.ServerClosed());
  short_idle.Stop();
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Client c(server_->local_port());
  std::string body = R"({"queue":"p","kind":"k"})";
  std::string enqueue = RawPost("/v1/jobs", body);
  c.WriteRaw(enqueue + "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" + enqueue +
             "GET /v1/nope HTTP/1.1\r\nHost: localhost\r\n\r\n");
  Reply a = c.Read();
  Reply b = c.Read();
  Reply d = c.Read();
  Reply e = c.Read();
  EXPECT_EQ(a.status, 201u);
  EXPECT_EQ(b.body, R"({"status":"ok","checks":{"core_alive":"ok"}})");
  EXPECT_EQ(d.status, 201u);
  EXPECT_EQ(e.status, 404u);
  EXPECT_LT(std::stoull(a.json["id"].GetString()), std::stoull(d.json["id"].GetString()));
}

TEST_F(HttpServerTest, LongPollIsWokenByAnEnqueue) {
  Client waiter(server_->local_port());
  std::thread producer([port = server_->local_port(), this] {
    // Once the long poll waits: the enqueue must wake it, not find it later.
    EXPECT_TRUE(WaitForWaiters("lp", 1));
    Client c(port);
    Enqueue(c, "lp");
  });
  auto start = std::chrono::steady_clock::now();
  Reply r = waiter.Send(http::verb::post, "/v1/leases", R"({"queues":["lp"],"wait_ms":10000})");
  auto waited = std::chrono::steady_clock::now() - start;
  producer.join();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json["jobs"].Size(), 1u);
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(HttpServerTest, LeasesOfAVanishedLongPollAreReleased) {
  {
    Client gone(server_->local_port());
    gone.WriteRaw(RawPost("/v1/leases", R"({"queues":["vanish"],"wait_ms":20000})"));
    ASSERT_TRUE(WaitForWaiters("vanish", 1));
    gone.Close();
  }
  Client c(server_->local_port());
  std::string id = Enqueue(c, "vanish");
  // The enqueue may have been handed to the vanished waiter; either way it must be leasable now,
  // long before any lease would expire.
  Reply r;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    r = c.Send(http::verb::post, "/v1/leases", R"({"queues":["vanish"],"wait_ms":100})");
    if (r.status == 200 && r.json["jobs"].Size() == 1) break;
  }
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(r.json["jobs"].Size(), 1u) << r.body;
  EXPECT_EQ(std::string(r.json["jobs"][0]["id"].GetString()), id);
}

TEST_F(HttpServerTest, HealthReadinessInfoMetrics) {
  Client c(server_->local_port());
  EXPECT_EQ(c.Send(http::verb::get, "/healthz").body,
            R"({"status":"ok","checks":{"core_alive":"ok"}})");
  EXPECT_EQ(c.Send(http::verb::get, "/livez").body,
            R"({"status":"ok","checks":{"core_alive":"ok"}})");
  Reply ready = c.Send(http::verb::get, "/readyz");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.body, R"({"status":"ready","checks":{"recovered":"ok","store_writable":"ok",)"
                        R"("accepting":"ok","core_alive":"ok"}})");
  Reply info = c.Send(http::verb::get, "/v1/info");
  EXPECT_EQ(info.status, 200u);
  EXPECT_TRUE(info.json.HasMember("version"));
  EXPECT_FALSE(info.json["draining"].GetBool());
  Reply metrics = c.Send(http::verb::get, "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.body, "ym_up 1\n");
  EXPECT_TRUE(metrics.raw[http::field::content_type].starts_with("text/plain"));

  broker_->BeginDrain();
  Reply draining = c.Send(http::verb::get, "/readyz");
  EXPECT_EQ(draining.status, 503u);
  EXPECT_STREQ(draining.json["error"]["code"].GetString(), "unavailable");
  EXPECT_STREQ(draining.json["checks"]["accepting"].GetString(),
               "draining: new enqueues and leases are refused");
  EXPECT_EQ(c.Send(http::verb::get, "/livez").status, 200u) << "a draining server is alive";
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndRefusesNewOnes) {
  Client idle(server_->local_port());
  EXPECT_EQ(idle.Send(http::verb::get, "/healthz").status, 200u);
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(idle.ServerClosed());
  EXPECT_EQ(server_->stats().open_connections.load(), 0);
  EXPECT_THROW(Client(server_->local_port()), boost::system::system_error);
}

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinish) {
  Client waiter(server_->local_port());
  waiter.WriteRaw(RawPost("/v1/leases", R"({"queues":["drain"],"wait_ms":1000})"));
  // Stop() only once the request is in flight (a request not yet read would be refused).
  ASSERT_TRUE(WaitForWaiters("drain", 1));
  std::thread stopper([this] { server_->Stop(); });
  Reply r = waiter.Read();
  stopper.join();
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(r.raw.keep_alive());
}

// ---- framing (RFC 9112): nothing a proxy could frame differently is ever run ----

// Regression (issue 7 item 8): `Transfer-Encoding: gzip` was ignored, so a second request hidden
// in the body was run (request smuggling behind a proxy that honours the header).
TEST_F(HttpServerTest, UnsupportedTransferEncodingIs400AndTheSmuggledRequestNeverRuns) {
  const std::string smuggled = RawPost("/v1/jobs", R"({"queue":"smuggled","kind":"k"})");
  Client c(server_->local_port());
  c.WriteRaw(
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: gzip\r\n\r\n" +
      smuggled);
  Reply r = c.Read();
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_NE(r.body.find("Transfer-Encoding"), std::string::npos) << r.body;
  EXPECT_TRUE(c.ServerClosed());
  Client check(server_->local_port());
  EXPECT_EQ(check.Send(http::verb::get, "/v1/queues/smuggled").status, 404u);
}

TEST_F(HttpServerTest, BadFramingIs400AndCloses) {
  const std::string body = R"({"queue":"framing","kind":"k"})";
  const std::string cl = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  const std::string chunked = "5\r\n{\"a\":\r\n0\r\n\r\n";
  struct Case {
    std::string name, head, body;
  };
  const std::vector<Case> cases = {
      {"te gzip, chunked", "Host: localhost\r\nTransfer-Encoding: gzip, chunked\r\n", chunked},
      {"te chunked, gzip", "Host: localhost\r\nTransfer-Encoding: chunked, gzip\r\n", chunked},
      {"te twice",
       "Host: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked},
      {"te identity", "Host: localhost\r\nTransfer-Encoding: identity\r\n" + cl, body},
      {"te and cl", "Host: localhost\r\nTransfer-Encoding: chunked\r\n" + cl, chunked},
      {"cl twice", "Host: localhost\r\n" + cl + cl, body},
      {"no host", cl, body},
      {"host twice", "Host: localhost\r\nHost: y\r\n" + cl, body},
  };
  for (const auto& k : cases) {
    Client c(server_->local_port());
    c.WriteRaw("POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\n" + k.head + "\r\n" +
               k.body);
    Reply r = c.Read();
    EXPECT_EQ(r.status, 400u) << k.name << ": " << r.body;
    EXPECT_TRUE(c.ServerClosed()) << k.name;
  }
  Client check(server_->local_port());
  EXPECT_EQ(check.Send(http::verb::get, "/v1/queues/framing").status, 404u);
}

TEST_F(HttpServerTest, ChunkedAndHttp10WithoutHostAreServed) {
  const std::string body = R"({"queue":"chunky","kind":"k"})";
  Client c(server_->local_port());
  c.WriteRaw(
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: Chunked\r\n\r\n" +
      fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body));
  EXPECT_EQ(c.Read().status, 201u);
  Client old(server_->local_port());
  old.WriteRaw("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.Read().status, 200u);
}

// ---- connection caps and the reply budget ----

class HttpServerLimitsTest : public testing::Test {
 protected:
  void Start(HttpServerOptions opts) {
    broker_ = std::make_unique<Broker>(store_, clock_, BrokerOptions{});
    ASSERT_TRUE(broker_->Start().ok());
    opts.port = 0;
    opts.shutdown_timeout = std::chrono::milliseconds(2000);
    server_ = std::make_unique<HttpServer>(*broker_, opts);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (broker_) broker_->Stop();
  }
  MemoryStore store_;
  SystemClock clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpServer> server_;
};

// Waits (bounded) until `pred` holds; the server updates its counters on its own threads.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST_F(HttpServerLimitsTest, ConnectionsPastThePerClientCapGet503AndAreClosed) {
  HttpServerOptions opts;
  opts.max_connections_per_client = 2;
  Start(opts);
  const auto port = server_->local_port();
  Client a(port), b(port);
  EXPECT_EQ(a.Send(http::verb::get, "/healthz").status, 200u);
  EXPECT_EQ(b.Send(http::verb::get, "/healthz").status, 200u);
  Client c(port);
  Reply r = c.Read();  // the server speaks first: 503 and close
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.raw[http::field::retry_after], "1");
  EXPECT_TRUE(c.ServerClosed());
  EXPECT_EQ(server_->stats().rejected_client_cap.load(), 1u);
  // A freed slot is usable again, and the connections already open were never disturbed.
  a.Close();
  ASSERT_TRUE(Eventually([&] { return server_->stats().open_connections.load() == 1; }));
  Client d(port);
  EXPECT_EQ(d.Send(http::verb::get, "/healthz").status, 200u);
  EXPECT_EQ(b.Send(http::verb::get, "/healthz").status, 200u);
}

TEST_F(HttpServerLimitsTest, ConnectionsPastTheTotalCapGet503) {
  HttpServerOptions opts;
  opts.max_connections = 3;
  Start(opts);
  const auto port = server_->local_port();
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<Client>(port));
    EXPECT_EQ(open.back()->Send(http::verb::get, "/healthz").status, 200u);
  }
  Client extra(port);
  EXPECT_EQ(extra.Read().status, 503u);
  EXPECT_EQ(server_->stats().rejected_total_cap.load(), 1u);
}

// A client that never reads keeps its reply queued; the bytes so held are capped server-wide,
// and past the cap a large reply is refused with 503 while small ones are still answered.
TEST_F(HttpServerLimitsTest, QueuedReplyBytesAreCappedServerWide) {
  HttpServerOptions opts;
  opts.max_request_bytes = 32 << 20;
  opts.max_payload_bytes = 2 << 20;
  opts.max_reply_bytes = 64 << 20;
  opts.max_queued_reply_bytes = 20 << 20;
  opts.write_timeout = std::chrono::milliseconds(60'000);
  Start(opts);
  const auto port = server_->local_port();
  {
    Client w(port);
    std::string jobs = R"({"jobs":[)";
    for (int i = 0; i < 12; ++i) {
      if (i > 0) jobs += ",";
      jobs += R"({"queue":"big","kind":"k","payload":")" + std::string(1 << 20, 'x') + R"("})";
    }
    jobs += "]}";
    ASSERT_EQ(w.Send(http::verb::post, "/v1/jobs:batch", jobs).status, 200u);
  }
  // A slow reader: a tiny receive window, and it never reads the ~12 MB page.
  asio::io_context ioc;
  tcp::socket slow(ioc);
  slow.open(tcp::v4());
  slow.set_option(asio::socket_base::receive_buffer_size(4096));
  slow.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  const std::string get = "GET /v1/jobs?queue=big&limit=100 HTTP/1.1\r\nHost: localhost\r\n\r\n";
  asio::write(slow, asio::buffer(get));
  ASSERT_TRUE(Eventually([&] { return server_->stats().queued_reply_bytes.load() > (10 << 20); }));

  // The budget is spent: another large page is refused, small replies are still served.
  Client other(port);
  Reply refused = other.Send(http::verb::get, "/v1/jobs?queue=big&limit=100");
  EXPECT_EQ(refused.status, 503u) << refused.body.substr(0, 200);
  EXPECT_EQ(refused.raw[http::field::retry_after], "1");
  EXPECT_EQ(other.Send(http::verb::get, "/healthz").status, 200u);
  EXPECT_EQ(server_->stats().refused_replies.load(), 1u);

  // When the slow reader goes away its bytes are released and large replies flow again.
  slow.close();
  ASSERT_TRUE(Eventually([&] { return server_->stats().queued_reply_bytes.load() == 0; }));
  Reply page = other.Send(http::verb::get, "/v1/jobs?queue=big&limit=100");
  EXPECT_EQ(page.status, 200u);
  EXPECT_EQ(page.json["items"].Size(), 12u);
}

// Bodies are read whole, so the ones being read are capped server-wide: clients that announce
// large bodies and trickle them cannot make the server hold max_request_bytes each.
TEST_F(HttpServerLimitsTest, RequestBodiesBeingReadAreCappedServerWide) {
  HttpServerOptions opts;
  opts.max_request_bytes = 1 << 20;
  opts.max_reading_request_bytes = 2 << 20;
  Start(opts);
  const auto port = server_->local_port();
  const std::string body =
      R"({"queue":"slow","kind":"k","payload":")" + std::string((1 << 20) - 100, 'x') + R"("})";
  const std::string head =
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  Client a(port), b(port), c(port);
  a.WriteRaw(head + body.substr(0, 10));
  b.WriteRaw(head + body.substr(0, 10));
  ASSERT_TRUE(Eventually([&] {
    return server_->stats().reserved_request_bytes.load() == 2 * std::int64_t(body.size());
  }));
  c.WriteRaw(head);
  Reply refused = c.Read();
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(refused.raw[http::field::retry_after], "1");
  EXPECT_EQ(server_->stats().refused_requests.load(), 1u);
  // Small requests are not affected.
  Client small(port);
  EXPECT_EQ(small.Send(http::verb::get, "/healthz").status, 200u);
  // A body read to its end releases its share.
  a.WriteRaw(body.substr(10));
  EXPECT_EQ(a.Read().status, 201u);
  ASSERT_TRUE(Eventually(
      [&] { return server_->stats().reserved_request_bytes.load() == std::int64_t(body.size()); }));
  Client d(port);
  d.WriteRaw(head + body);
  EXPECT_EQ(d.Read().status, 201u);
}

// Stop() lets requests in flight finish until the shutdown deadline; one still being read then
// is cut off: its connection is closed, Stop() returns, and the partial request runs nothing.
TEST_F(HttpServerLimitsTest, ARequestStillArrivingAtTheShutdownDeadlineIsCutOff) {
  HttpServerOptions opts;
  opts.max_request_bytes = 1 << 20;
  Start(opts);  // shutdown_timeout 2 s
  const std::string body =
      R"({"queue":"cut","kind":"k","payload":")" + std::string(100'000, 'x') + R"("})";
  Client slow(server_->local_port());
  slow.WriteRaw(
      "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 10));
  // The header was read (a body over 64 KiB reserves its size): the request is in flight.
  ASSERT_TRUE(Eventually(
      [&] { return server_->stats().reserved_request_bytes.load() == std::int64_t(body.size()); }));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(server_->stats().open_connections.load(), 0);
  EXPECT_EQ(broker_->counters().enqueued.load(), 0u);
  // The server closed the connection (bounded: a connection left open would block the read).
  auto closed = std::async(std::launch::async, [&] { return slow.ServerClosed(); });
  if (closed.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the connection was still open 30 s after Stop()";
    server_.reset();  // closes it, so that the read ends
  }
  EXPECT_TRUE(closed.get());
}

// A page stops at max_reply_bytes and the cursor carries on to the end.
TEST_F(HttpServerLimitsTest, PagesStopAtMaxReplyBytes) {
  HttpServerOptions opts;
  opts.max_request_bytes = 32 << 20;
  opts.max_reply_bytes = 3 << 20;
  Start(opts);
  Client c(server_->local_port());
  std::string jobs = R"({"jobs":[)";
  for (int i = 0; i < 10; ++i) {
    if (i > 0) jobs += ",";
    jobs += R"({"queue":"big","kind":"k","payload":")" + std::string(1000 << 10, 'x') + R"("})";
  }
  jobs += "]}";
  ASSERT_EQ(c.Send(http::verb::post, "/v1/jobs:batch", jobs).status, 200u);
  std::size_t seen = 0;
  std::string cursor;
  for (int pages = 0; pages < 20; ++pages) {
    Reply r = c.Send(http::verb::get,
                     "/v1/jobs?queue=big&limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200u);
    EXPECT_LE(r.body.size(), std::size_t{3} << 20);
    EXPECT_GE(r.json["items"].Size(), 1u);
    seen += r.json["items"].Size();
    if (r.json["next_cursor"].IsNull()) break;
    cursor = r.json["next_cursor"].GetString();
  }
  EXPECT_EQ(seen, 10u);
}

TEST(HttpServerStart, PortInUseIsAnError) {
  MemoryStore store;
  SystemClock clock;
  Broker broker(store, clock, BrokerOptions{});
  ASSERT_TRUE(broker.Start().ok());
  HttpServerOptions opts;
  opts.port = 0;
  HttpServer first(broker, opts);
  ASSERT_TRUE(first.Start().ok());
  opts.port = first.local_port();
  HttpServer second(broker, opts);
  Status s = second.Start();
  EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
  first.Stop();
  broker.Stop();
}

}  // namespace
}  // namespace ym::net

namespace ym::net {
namespace {

// A streamed reply (ApiResponse::stream): the namespace export, chunked, page by page, on the
// same keep-alive connection as the requests before and after it.
TEST_F(HttpServerTest, StreamedReplyIsChunkedCompleteAndKeepsTheConnection) {
  Client c(server_->local_port());
  std::vector<std::string> a_ids;
  for (int batch = 0; batch < 3; ++batch) {
    std::string jobs;
    for (int i = 0; i < 400; ++i) {
      if (!jobs.empty()) jobs += ",";
      jobs += i % 4 == 3 ? R"({"queue":"x","kind":"k","namespace":"b"})"
                         : R"({"queue":"x","kind":"k","namespace":"a","payload":{"i":1}})";
    }
    Reply r = c.Send(http::verb::post, "/v1/jobs:batch", R"({"jobs":[)" + jobs + "]}");
    ASSERT_EQ(r.status, 200u) << r.body;
    for (int i = 0; i < 400; ++i) {
      if (i % 4 != 3) a_ids.push_back(r.json["results"][i]["id"].GetString());
    }
  }
  Reply e = c.Send(http::verb::get, "/v1/namespaces/a/export");
  ASSERT_EQ(e.status, 200u) << e.body;
  EXPECT_TRUE(e.raw.chunked());
  EXPECT_EQ(e.raw[http::field::content_type], "application/x-ndjson");
  std::vector<std::string> got;
  std::size_t start = 0;
  while (start < e.body.size()) {
    const std::size_t nl = e.body.find('\n', start);
    ASSERT_NE(nl, std::string::npos) << "every line ends with a newline";
    rapidjson::Document d;
    d.Parse(e.body.data() + start, nl - start);
    ASSERT_FALSE(d.HasParseError()) << e.body.substr(start, nl - start);
    EXPECT_STREQ(d["namespace"].GetString(), "a");
    got.push_back(d["id"].GetString());
    start = nl + 1;
  }
  EXPECT_EQ(got, a_ids);  // 900 jobs over two pages of 500, once each, in id order
  // The connection is still usable afterwards.
  Reply after = c.Send(http::verb::get, "/v1/namespaces/b/export");
  ASSERT_EQ(after.status, 200u);
  EXPECT_EQ(std::count(after.body.begin(), after.body.end(), '\n'), 300);
  Reply bad = c.Send(http::verb::get, "/v1/namespaces/bad%20name/export");
  EXPECT_EQ(bad.status, 422u) << bad.body;
  EXPECT_FALSE(bad.raw.chunked());
}

// A client that goes away mid-export: the server stops producing, stays healthy, and a new
// export of the same namespace completes.
TEST_F(HttpServerTest, StreamedReplyToAVanishedClientStopsAndTheServerStaysHealthy) {
  Client c(server_->local_port());
  const std::string pad(1000, 'x');
  for (int batch = 0; batch < 100; ++batch) {  // the fixture's requests are at most 64 KiB
    std::string jobs;
    for (int i = 0; i < 50; ++i) {
      if (!jobs.empty()) jobs += ",";
      jobs += R"({"queue":"x","kind":"k","namespace":"big","payload":{"p":")" + pad + R"("}})";
    }
    ASSERT_EQ(c.Send(http::verb::post, "/v1/jobs:batch", R"({"jobs":[)" + jobs + "]}").status,
              200u);
  }
  for (int round = 0; round < 3; ++round) {
    Client gone(server_->local_port());
    gone.WriteRaw("GET /v1/namespaces/big/export HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const std::string head = gone.ReadUntil("\r\n\r\n");
    ASSERT_NE(head.find("200 OK"), std::string::npos) << head;
    gone.Close();  // most of ~5.5 MB unread
  }
  Reply health = c.Send(http::verb::get, "/healthz");
  EXPECT_EQ(health.status, 200u);
  Reply full = c.Send(http::verb::get, "/v1/namespaces/big/export");
  ASSERT_EQ(full.status, 200u);
  EXPECT_EQ(std::count(full.body.begin(), full.body.end(), '\n'), 5000);
}

// docs/security.md ("Order of the checks"): with API tokens on, the token is checked from the
// request's header, before its body is read. The idle timeout is shortened so that a server that
// waits for the body instead (the old behaviour) fails these tests by closing without an answer
// after 5 s rather than hanging them.
class HttpServerAuthTest : public testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Broker>(store_, clock_, BrokerOptions{});
    ASSERT_TRUE(broker_->Start().ok());
    auto secret = NewTokenSecret();
    ASSERT_TRUE(secret.ok());
    secret_ = *secret;
    ApiTokenRow row;
    row.id = "00000000000000aa";
    row.name = "admin";
    row.hash = HashSecret(secret_);
    row.role = "admin";
    row.namespaces_json = R"(["*"])";
    row.created_at_ms = 1000;
    ASSERT_TRUE(book_.Load(row).ok());
    HttpServerOptions opts;
    opts.port = 0;
    opts.io_threads = 2;
    opts.max_request_bytes = 64 << 10;
    opts.idle_timeout = std::chrono::milliseconds(5000);
    opts.shutdown_timeout = std::chrono::milliseconds(2000);
    opts.tokens = &book_;
    server_ = std::make_unique<HttpServer>(*broker_, opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (broker_) broker_->Stop();
  }

  static std::string Head(const std::string& token, std::size_t length,
                          const std::string& extra = "") {
    std::string head =
        "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";
    if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
    return head + extra + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
  }

  static void ExpectRefusedAndClosed(Client& c) {
    Reply r = c.Read();
    EXPECT_EQ(r.status, 401u) << r.body;
    EXPECT_TRUE(r.raw[http::field::www_authenticate].starts_with("Bearer"));
    ASSERT_TRUE(r.json.IsObject()) << r.body;
    EXPECT_STREQ(r.json["error"]["code"].GetString(), "unauthenticated");
    EXPECT_FALSE(r.raw.keep_alive());
    EXPECT_TRUE(c.ServerClosed());
  }

  MemoryStore store_;
  SystemClock clock_;
  TokenBook book_;
  std::string secret_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerAuthTest, NoTokenIsRefusedFromTheHeaderWithoutReadingTheBody) {
  // Only the header, announcing a body just under the limit: the 401 must come without it.
  for (const std::string& token : {std::string(), std::string("ym_not-a-token")}) {
    Client c(server_->local_port());
    c.WriteRaw(Head(token, 60'000));
    ExpectRefusedAndClosed(c);
  }
  // Asked for `100 Continue`: the final 401 comes instead, and the body is never invited.
  Client c(server_->local_port());
  c.WriteRaw(Head("", 60'000, "Expect: 100-continue\r\n"));
  ExpectRefusedAndClosed(c);
  const HttpStats& stats = server_->stats();
  EXPECT_EQ(stats.reserved_request_bytes.load(), 0);
  EXPECT_EQ(stats.request_bytes.load(), 0u);
}

TEST_F(HttpServerAuthTest, AnAuthenticatedClientStillPipelinesBodiesOnOneConnection) {
  Client c(server_->local_port());
  c.SetToken(secret_);
  std::string bytes;
  for (int n = 0; n < 2; ++n) {
    const std::string body =
        R"({"queue":"p","kind":"k","payload":{"n":)" + std::to_string(n) + "}}";
    bytes += Head(secret_, body.size()) + body;
  }
  c.WriteRaw(bytes);
  std::vector<std::string> ids;
  for (int n = 0; n < 2; ++n) {
    Reply r = c.Read();
    ASSERT_EQ(r.status, 201u) << r.body;
    EXPECT_TRUE(r.raw.keep_alive());
    ids.emplace_back(r.json["id"].GetString());
  }
  for (int n = 0; n < 2; ++n) {
    Reply job = c.Send(http::verb::get, "/v1/jobs/" + ids[static_cast<std::size_t>(n)]);
    ASSERT_EQ(job.status, 200u) << job.body;
    EXPECT_EQ(job.json["payload"]["n"].GetInt(), n);
  }
  EXPECT_EQ(server_->stats().accepted_connections.load(), 1u);
}

}  // namespace
}  // namespace ym::net
