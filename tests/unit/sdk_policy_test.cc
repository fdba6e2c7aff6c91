// The worker runtime's pure policies (src/sdk/runtime_policy.h) and the public value types.

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sdk/runtime_policy.h"
#include "yardmaster/client.h"
#include "yardmaster/worker.h"

namespace ym::sdk {
namespace {

using std::chrono::milliseconds;

TEST(SdkBackoff, GrowsWithEqualJitterUpToTheMaximum) {
  ReconnectBackoff b(milliseconds(100), milliseconds(1000), 42);
  const std::int64_t ceilings[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (std::int64_t ceiling : ceilings) {
    const std::int64_t d = b.Next().count();
    EXPECT_GE(d, ceiling / 2);
    EXPECT_LE(d, ceiling);
  }
  b.Reset();
  EXPECT_LE(b.Next().count(), 100);
}

TEST(SdkBackoff, ManyFailuresDoNotOverflow) {
  ReconnectBackoff b(milliseconds(100), milliseconds(5000), 1);
  for (int i = 0; i < 200; ++i) {
    const std::int64_t d = b.Next().count();
    ASSERT_GE(d, 1);
    ASSERT_LE(d, 5000);
  }
}

TEST(SdkHeartbeat, DelayIsAFractionOfTheLease) {
  EXPECT_EQ(HeartbeatDelay(milliseconds(30000), 1.0 / 3.0), milliseconds(10000));
  EXPECT_EQ(HeartbeatDelay(milliseconds(1000), 0.5), milliseconds(500));
  // Clamped fraction and a 50 ms floor, so a tiny lease cannot make the heartbeater spin.
  EXPECT_EQ(HeartbeatDelay(milliseconds(1000), 5.0), milliseconds(900));
  EXPECT_EQ(HeartbeatDelay(milliseconds(100), 0.1), milliseconds(50));
}

TEST(SdkHeartbeat, RetryComesSoonerButNotInstantly) {
  // Half an interval: a 30 s lease heartbeated every 10 s tries again after 5 s.
  EXPECT_EQ(HeartbeatRetryDelay(milliseconds(30000), 1.0 / 3.0), milliseconds(5000));
  EXPECT_EQ(HeartbeatRetryDelay(milliseconds(600), 1.0 / 3.0), milliseconds(100));
  EXPECT_EQ(HeartbeatRetryDelay(milliseconds(100), 0.05), milliseconds(50));
}

TEST(SdkHeartbeat, EffectiveLeasePrefersTheRequestedLength) {
  EXPECT_EQ(EffectiveLease(milliseconds(5000), 0, 1'000'000), milliseconds(5000));
  EXPECT_EQ(EffectiveLease(std::nullopt, 1'030'000, 1'000'000), milliseconds(30000));
  // A skewed clock that says the lease is over still plans for the API's minimum lease.
  EXPECT_EQ(EffectiveLease(std::nullopt, 999'000, 1'000'000), milliseconds(100));
}

TEST(SdkPrefetch, NothingIsPrefetchedBeforeEightHandlersFinished) {
  AutoPrefetch p;
  for (int i = 0; i < AutoPrefetch::kMinSamples - 1; ++i) {
    p.RecordHandler(std::chrono::microseconds(1));
    EXPECT_EQ(p.Target(8), 0) << i;
  }
  p.RecordHandler(std::chrono::microseconds(1));
  // A no-op handler against the initial 1 ms round trip: the cap, 32 per slot.
  EXPECT_EQ(p.Target(8), 256);
  // ... and never past 1000 jobs leased in all.
  EXPECT_EQ(p.Target(40), 960);
  EXPECT_EQ(p.Target(1000), 0);
}

TEST(SdkPrefetch, QueuedJobsLastAboutTwoRoundTrips) {
  AutoPrefetch p;
  for (int i = 0; i < AutoPrefetch::kMinSamples; ++i) p.RecordHandler(milliseconds(1));
  // d = 1 ms, r = 1 ms (initial), 4 slots: 4 * 2 * 1 / 1 = 8 queued jobs.
  EXPECT_EQ(p.Target(4), 8);
  // Round trips move the estimate with weight 0.2: 1 ms -> 1 + 0.2 * (6 - 1) = 2 ms.
  p.RecordRoundTrip(milliseconds(6));
  EXPECT_NEAR(p.round_trip_s(), 0.002, 1e-9);
  EXPECT_EQ(p.Target(4), 16);
  // Rounded to the nearest: 3 slots * 2 * 2 ms / 5 ms = 2.4 -> 2; 4 slots: 3.2 -> 3;
  // 5 slots: 4.0; 1 slot: 0.8 -> 1.
  AutoPrefetch q;
  for (int i = 0; i < AutoPrefetch::kMinSamples; ++i) q.RecordHandler(milliseconds(5));
  q.RecordRoundTrip(milliseconds(6));
  EXPECT_EQ(q.Target(3), 2);
  EXPECT_EQ(q.Target(4), 3);
  EXPECT_EQ(q.Target(5), 4);
  EXPECT_EQ(q.Target(1), 1);
}

TEST(SdkPrefetch, LongJobsAreNotPrefetchedOnceTheAverageCatchesUp) {
  AutoPrefetch p;
  for (int i = 0; i < AutoPrefetch::kMinSamples; ++i)
    p.RecordHandler(std::chrono::microseconds(10));
  EXPECT_EQ(p.Target(2), 64);
  // Handlers turn slow (30 s): the weight-0.1 average moves a tenth of the way each time.
  p.RecordHandler(std::chrono::seconds(30));
  EXPECT_NEAR(p.handler_s(), 0.00001 + 0.1 * (30 - 0.00001), 1e-9);
  // round(2 * 2 * 0.001 / 3.00001) = 0: no job waits behind handlers this long.
  EXPECT_EQ(p.Target(2), 0);
  for (int i = 0; i < 50; ++i) p.RecordHandler(std::chrono::seconds(30));
  EXPECT_EQ(p.Target(2), 0);
  EXPECT_GT(p.handler_s(), 29.0);
}

TEST(SdkLeaseWant, AnIdleSlotAsksAtOnceOtherwiseHalfTheCapacity) {
  // concurrency 8, capacity 8 (no prefetch): 7 running, nothing queued, one slot idle.
  EXPECT_EQ(LeaseWant(8, 8, 7, 0), 1);
  EXPECT_EQ(LeaseWant(8, 8, 8, 0), 0);
  // capacity 264 (8 slots + 256 prefetch): every slot busy, 200 queued: 56 free < 132, wait.
  EXPECT_EQ(LeaseWant(8, 264, 8, 200), 0);
  EXPECT_EQ(LeaseWant(8, 264, 8, 124), 132);
  // A slot idle with nothing queued asks for everything that is free.
  EXPECT_EQ(LeaseWant(8, 264, 3, 0), 261);
  // A target that shrank below what is held asks for nothing.
  EXPECT_EQ(LeaseWant(8, 8, 8, 40), 0);
  EXPECT_EQ(LeaseWant(1, 1, 0, 0), 1);
}

TEST(SdkLeaseWant, OnlyRefusalsThatCannotHealAreFinal) {
  for (int status : {400, 401, 403, 404, 413, 415, 422}) EXPECT_TRUE(LeaseRefusalIsFinal(status));
  for (int status : {0, 200, 408, 429, 500, 503}) EXPECT_FALSE(LeaseRefusalIsFinal(status));
}

TEST(SdkAcks, FlushOnAFullBatchOrAfterTheInterval) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ShouldFlushAcks(0, 10, t0, t0 + milliseconds(100), milliseconds(20)));
  EXPECT_FALSE(ShouldFlushAcks(3, 10, t0, t0 + milliseconds(5), milliseconds(20)));
  EXPECT_TRUE(ShouldFlushAcks(3, 10, t0, t0 + milliseconds(20), milliseconds(20)));
  EXPECT_TRUE(ShouldFlushAcks(10, 10, t0, t0, milliseconds(20)));
}

TEST(SdkAcks, ItemRepliesAreClassified) {
  EXPECT_EQ(ClassifyItem(Status::Ok()), ItemVerdict::kDone);
  EXPECT_EQ(ClassifyItem(StaleLease("x")), ItemVerdict::kLeaseLost);
  EXPECT_EQ(ClassifyItem(NotFound("x")), ItemVerdict::kLeaseLost);
  EXPECT_EQ(ClassifyItem(InvalidState("x")), ItemVerdict::kLeaseLost);
  EXPECT_EQ(ClassifyItem(Unavailable("x")), ItemVerdict::kRetry);
  EXPECT_EQ(ClassifyItem(IoError("x")), ItemVerdict::kRetry);
  EXPECT_EQ(ClassifyItem(Validation("x")), ItemVerdict::kRejected);
  EXPECT_EQ(ClassifyItem(Status(Code::kPayloadTooLarge, "x")), ItemVerdict::kRejected);
}

TEST(SdkStatus, InternalStatusKeepsItsCodeName) {
  yardmaster::Status s = ToPublic(StaleLease("lease of job 7 expired"), 409);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), "stale_lease");
  EXPECT_EQ(s.http_status(), 409);
  EXPECT_EQ(s.ToString(), "stale_lease: lease of job 7 expired");
  EXPECT_FALSE(s.transient());
  EXPECT_TRUE(ToPublic(Unavailable("down"), 0).transient());
  EXPECT_TRUE(ToPublic(Status::Ok(), 200).ok());
}

TEST(SdkOutcome, FactoriesSetKindTypeAndDelay) {
  using yardmaster::Outcome;
  Outcome ok = Outcome::Ok(R"({"a":1})");
  EXPECT_EQ(ok.kind(), Outcome::Kind::kOk);
  EXPECT_EQ(ok.result_json(), R"({"a":1})");
  Outcome retry = Outcome::Retry("later", milliseconds(250));
  EXPECT_EQ(retry.kind(), Outcome::Kind::kRetry);
  EXPECT_EQ(retry.type(), "retry");
  EXPECT_EQ(retry.retry_after(), milliseconds(250));
  EXPECT_FALSE(Outcome::Retry("backoff").retry_after().has_value());
  Outcome perm = Outcome::Permanent("bad").WithType("validation");
  EXPECT_EQ(perm.kind(), Outcome::Kind::kPermanent);
  EXPECT_EQ(perm.message(), "bad");
  EXPECT_EQ(perm.type(), "validation");
  EXPECT_EQ(Outcome::Permanent("bad").type(), "permanent");
  Outcome cancelled = Outcome::Cancelled();
  EXPECT_EQ(cancelled.kind(), Outcome::Kind::kCancelled);
  EXPECT_EQ(cancelled.type(), "cancelled");
}

TEST(SdkJobContext, FirstStopReasonWinsAndSleepWakesEarly) {
  yardmaster::JobContext job("7", "default", "q", "k", "{}", 1, 3, {});
  EXPECT_FALSE(job.cancelled());
  EXPECT_TRUE(job.SleepFor(milliseconds(1)));
  job.MarkStopped(yardmaster::StopReason::kCancelled);
  job.MarkStopped(yardmaster::StopReason::kShutdown);
  EXPECT_TRUE(job.cancelled());
  EXPECT_EQ(job.stop_reason(), yardmaster::StopReason::kCancelled);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(job.SleepFor(std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST(SdkWorker, RunRejectsBadOptionsWithoutContactingTheServer) {
  yardmaster::WorkerOptions o;
  o.server_url = "http://127.0.0.1:1";
  EXPECT_EQ(yardmaster::Worker(o).Run().code(), "invalid_request");  // no queue
  o.queues = {"bad name"};
  EXPECT_EQ(yardmaster::Worker(o).Run().code(), "invalid_request");
  o.queues = {"q"};
  o.concurrency = 0;
  EXPECT_EQ(yardmaster::Worker(o).Run().code(), "invalid_request");
  o.concurrency = 1;
  o.server_url = "https://example.com";
  EXPECT_EQ(yardmaster::Worker(o).Run().code(), "invalid_request");
}

// Each option out of its documented range is refused by Run() with a message naming it (the
// server at this URL does not exist: a check that let a bad value through would try to lease).
TEST(SdkWorker, RunRefusesEachOutOfRangeOptionByName) {
  using Mutate = std::function<void(yardmaster::WorkerOptions&)>;
  const std::vector<std::pair<Mutate, std::string>> cases = {
      {[](auto& o) { o.queues = std::vector<std::string>(65, "q"); }, "1 to 64 queues"},
      {[](auto& o) { o.concurrency = 1001; }, "concurrency"},
      {[](auto& o) { o.prefetch = -1; }, "prefetch"},
      {[](auto& o) {
         o.concurrency = 900;
         o.prefetch = 101;
       },
       "prefetch"},
      {[](auto& o) { o.lease = milliseconds(99); }, "lease"},
      {[](auto& o) { o.lease = milliseconds(86'400'001); }, "lease"},
      {[](auto& o) { o.poll_wait = milliseconds(30'001); }, "poll_wait"},
      {[](auto& o) { o.poll_wait = milliseconds(-1); }, "poll_wait"},
      {[](auto& o) { o.heartbeat_fraction = 0.01; }, "heartbeat_fraction"},
      {[](auto& o) { o.heartbeat_fraction = 0.95; }, "heartbeat_fraction"},
      {[](auto& o) { o.ack_batch_size = 0; }, "ack_batch_size"},
      {[](auto& o) { o.ack_batch_size = 1001; }, "ack_batch_size"},
      {[](auto& o) { o.ack_flush_interval = milliseconds(-1); }, "ack_flush_interval"},
      {[](auto& o) { o.shutdown_grace = milliseconds(-1); }, "shutdown_grace"},
      {[](auto& o) { o.report_grace = milliseconds(-1); }, "report_grace"},
  };
  for (const auto& [mutate, name] : cases) {
    yardmaster::WorkerOptions o;
    o.server_url = "http://127.0.0.1:1";
    o.queues = {"q"};
    o.log = [](std::string_view) {};
    mutate(o);
    yardmaster::Status s = yardmaster::Worker(o).Run();
    EXPECT_EQ(s.code(), "invalid_request") << name;
    EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
  }
}

TEST(SdkWorker, StopBeforeRunReturnsPromptlyEvenWhenTheServerIsDown) {
  yardmaster::WorkerOptions o;
  o.server_url = "http://127.0.0.1:1";
  o.queues = {"q"};
  o.shutdown_grace = milliseconds(0);
  o.log = [](std::string_view) {};
  yardmaster::Worker w(o);
  w.Stop();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(w.Run().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(SdkClient, ServerUrlPrefersTheExplicitOne) {
  EXPECT_EQ(yardmaster::ResolveServerUrl("http://10.0.0.1:1"), "http://10.0.0.1:1");
  yardmaster::Client c(yardmaster::ClientOptions{"not a url", {}, {}, {}, {}, {}, {}, {}});
  yardmaster::Result<yardmaster::JobInfo> r = c.Get("1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "invalid_request");
}

TEST(SdkClient, UnreachableServerIsUnavailableWithNoHttpStatus) {
  yardmaster::ClientOptions o;
  o.server_url = "http://127.0.0.1:1";
  o.connect_timeout = milliseconds(1000);
  yardmaster::Client c(o);
  yardmaster::EnqueueOptions job;
  job.queue = "q";
  job.kind = "k";
  yardmaster::Result<yardmaster::Enqueued> r = c.Enqueue(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "unavailable");
  EXPECT_EQ(r.status().http_status(), 0);
  EXPECT_TRUE(r.status().transient());
}

}  // namespace
}  // namespace ym::sdk
