// Races between the worker runtime's own requests (src/sdk/worker.cc), replayed
// deterministically against a scripted HTTP server on 127.0.0.1 that serves each connection on
// its own thread (the runtime's leaser, heartbeater and acker each hold one) and can hold a
// reply until another request has been answered.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "yardmaster/worker.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using std::chrono::milliseconds;

struct Reply {
  int status = 200;
  std::string body = "{}";
};

// Answers every request with handler(method target, body); one thread per connection. The
// handler runs on that connection's thread and may block.
class ThreadedServer {
 public:
  explicit ThreadedServer(std::function<Reply(const std::string&, const std::string&)> handler)
      : handler_(std::move(handler)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { Accept(); });
  }

  ~ThreadedServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (std::thread& t : connection_threads_) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Accept() {
    while (!stop_) {
      auto sock = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stop_) return;
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(sock);
      connection_threads_.emplace_back([this, sock] { Serve(*sock); });
    }
  }

  void Serve(tcp::socket& sock) {
    beast::flat_buffer buf;
    while (!stop_) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(sock, buf, req, ec);
      if (ec) return;
      const Reply r =
          handler_(std::string(req.method_string()) + " " + std::string(req.target()), req.body());
      http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
      res.set(http::field::content_type, "application/json");
      res.body() = r.body;
      res.keep_alive(true);
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec) return;
    }
  }

  std::function<Reply(const std::string&, const std::string&)> handler_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // guarded by mu_
  std::vector<std::thread> connection_threads_;        // guarded by mu_
};

// Waits up to `d` for `done()`; polling keeps the test free of the worker's internals.
template <typename Pred>
bool WaitFor(Pred done, milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// The server applied the ack just before a heartbeat of the same job arrived, so the heartbeat
// gets "409 job 1 is succeeded" while the ack's reply is still on its way. That is not a lost
// lease: the job succeeded, and the counters must say so.
TEST(SdkWorkerRace, AHeartbeatThatCrossesTheAckIsNotALostLease) {
  std::mutex mu;
  std::condition_variable cv;
  bool leased = false;             // guarded by mu
  bool heartbeat_refused = false;  // guarded by mu
  int acks = 0;                    // guarded by mu
  ThreadedServer server([&](const std::string& request, const std::string&) -> Reply {
    if (request == "POST /v1/leases") {
      std::unique_lock<std::mutex> lock(mu);
      if (leased) {
        lock.unlock();
        std::this_thread::sleep_for(milliseconds(50));  // an empty long-poll
        return {200, R"({"jobs":[]})"};
      }
      leased = true;
      const auto expires = std::chrono::duration_cast<milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count() +
                           300;
      return {200, R"({"jobs":[{"id":"1","namespace":"default","queue":"q","kind":"k",)"
                   R"("payload":null,"attempt":1,"max_attempts":3,"priority":0,"tags":[],)"
                   R"("lease":{"token":"t1","worker_id":"w","expires_at":)" +
                       std::to_string(expires) + "}}]}"};
    }
    if (request == "POST /v1/jobs/1:heartbeat") {
      std::lock_guard<std::mutex> lock(mu);
      heartbeat_refused = true;
      cv.notify_all();
      return {409, R"({"error":{"code":"stale_lease","message":"job 1 is succeeded"}})"};
    }
    if (request == "POST /v1/acks:batch") {
      std::unique_lock<std::mutex> lock(mu);
      // Hold the ack's reply until the heartbeat has been refused (bounded: the test fails on
      // its counters if the heartbeat never comes).
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return heartbeat_refused; });
      ++acks;
      return {200, R"({"acks":[{"ok":true}],"fails":[]})"};
    }
    return {404, R"({"error":{"code":"not_found","message":"unexpected request"}})"};
  });

  yardmaster::WorkerOptions options;
  options.server_url = server.url();
  options.queues = {"q"};
  options.prefetch = 0;
  options.lease = milliseconds(300);  // a heartbeat every 100 ms
  options.poll_wait = milliseconds(100);
  options.log = [](std::string_view) {};
  yardmaster::Worker worker(options);
  worker.Handle("k", [](yardmaster::JobContext&) { return yardmaster::Outcome::Ok(); });
  yardmaster::Status run_status;
  std::thread runner([&] { run_status = worker.Run(); });
  const bool settled = WaitFor([&] { return worker.Stats().succeeded >= 1; }, milliseconds(20000));
  worker.Stop(milliseconds(0));
  runner.join();
  ASSERT_TRUE(settled);
  EXPECT_TRUE(run_status.ok()) << run_status.ToString();
  const yardmaster::WorkerStats stats = worker.Stats();
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(heartbeat_refused);
    EXPECT_EQ(acks, 1);
  }
  EXPECT_EQ(stats.succeeded, 1u);
  EXPECT_EQ(stats.leases_lost, 0u);
}

}  // namespace
