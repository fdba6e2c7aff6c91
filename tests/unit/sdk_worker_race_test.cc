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

#include "threaded_server.h"
#include "yardmaster/worker.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using std::chrono::milliseconds;

using ym::test_support::Reply;
using ym::test_support::ThreadedServer;

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
