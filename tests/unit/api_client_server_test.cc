// The C++ client (client/api_client.h) and the SDK's public Client (yardmaster/client.h) against
// the real server in-process: a Broker on a MemoryStore behind the HttpServer on 127.0.0.1 port
// 0. client_test.cc checks the requests the client writes against a scripted server; these tests
// check that the client and the server agree on every field, in both directions.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/api_client.h"
#include "common/clock.h"
#include "net/http_server.h"
#include "server/broker.h"
#include "store/memory_store.h"
#include "yardmaster/client.h"
#include "yardmaster/worker.h"

namespace ym::client {
namespace {

class ApiClientServerTest : public testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions bopts;
    // Succeeded jobs stay an hour, so that their results can be read back.
    bopts.scheduler.default_retention.succeeded_ms = 3'600'000;
    broker_ = std::make_unique<Broker>(store_, clock_, bopts);
    ASSERT_TRUE(broker_->Start().ok());
    net::HttpServerOptions opts;
    opts.port = 0;
    opts.io_threads = 2;
    opts.shutdown_timeout = std::chrono::milliseconds(2000);
    opts.metrics_renderer = [] { return std::string("ym_up 1\n"); };
    server_ = std::make_unique<net::HttpServer>(*broker_, opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    url_ = "http://127.0.0.1:" + std::to_string(server_->local_port());
    Result<ApiClient> api = ApiClient::Create(url_);
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_.emplace(std::move(api).value());
  }

  void TearDown() override {
    api_.reset();
    if (server_) server_->Stop();
    if (broker_) broker_->Stop();
  }

  std::string Enqueue(const std::string& queue, std::optional<std::int32_t> max_attempts = {}) {
    EnqueueRequest req;
    req.queue = queue;
    req.kind = "k";
    req.max_attempts = max_attempts;
    Result<EnqueueResult> r = api_->Enqueue(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : "";
  }

  LeasedJob LeaseOne(const std::string& queue) {
    LeaseRequest req;
    req.queues = {queue};
    req.worker_id = "w1";
    req.lease_ms = 600'000;
    Result<std::vector<LeasedJob>> r = api_->Lease(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->size() != 1) {
      ADD_FAILURE() << "expected one leased job";
      return {};
    }
    return r->front();
  }

  MemoryStore store_;
  SystemClock clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<net::HttpServer> server_;
  std::string url_;
  std::optional<ApiClient> api_;
};

TEST_F(ApiClientServerTest, PutQueueSetsEveryFieldAndOnlyTheFieldsGiven) {
  QueueUpdate all;
  all.paused = true;
  all.max_attempts = 4;
  all.lease_ms = 45'000;
  all.backoff = Backoff{250, 60'000, 3.0};
  all.retention_succeeded_ms = 1'000;
  all.retention_dead_ms = 2'000;
  all.retention_cancelled_ms = 3'000;
  all.retention_max_succeeded = 10;
  all.retention_max_dead = 0;  // no cap
  all.retention_max_cancelled = 30;
  // A queue that does not exist yet is created only when asked.
  Result<Queue> missing = api_->PutQueue("cfg", all);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kQueueNotFound);
  Result<Queue> put = api_->PutQueue("cfg", all, /*create=*/true);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  Result<Queue> got = api_->GetQueue("cfg");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (const Queue& q : {*put, *got}) {
    EXPECT_EQ(q.name, "cfg");
    EXPECT_TRUE(q.paused);
    EXPECT_EQ(q.max_attempts, 4);
    EXPECT_EQ(q.lease_ms, 45'000);
    EXPECT_EQ(q.backoff.initial_ms, 250);
    EXPECT_EQ(q.backoff.max_ms, 60'000);
    EXPECT_DOUBLE_EQ(q.backoff.multiplier, 3.0);
    EXPECT_EQ(q.retention.succeeded_ms, 1'000);
    EXPECT_EQ(q.retention.dead_ms, 2'000);
    EXPECT_EQ(q.retention.cancelled_ms, 3'000);
    EXPECT_EQ(q.retention.max_succeeded, 10);
    EXPECT_EQ(q.retention.max_dead, 0);
    EXPECT_EQ(q.retention.max_cancelled, 30);
  }

  // A partial update changes only the fields given. Retention is one object on the wire,
  // replaced whole (docs/api.md): its members not given take the built-in defaults.
  QueueUpdate one;
  one.lease_ms = 50'000;
  one.retention_dead_ms = 9'000;
  Result<Queue> after = api_->PutQueue("cfg", one);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->lease_ms, 50'000);
  EXPECT_EQ(after->retention.dead_ms, 9'000);
  EXPECT_EQ(after->retention.succeeded_ms, 24LL * 3600 * 1000);
  EXPECT_EQ(after->retention.max_succeeded, 1'000'000);
  EXPECT_EQ(after->retention.max_dead, 100'000);
  EXPECT_EQ(after->retention.cancelled_ms, 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(after->max_attempts, 4);
  EXPECT_EQ(after->backoff.initial_ms, 250);
  EXPECT_TRUE(after->paused);

  Result<Queue> resumed = api_->ResumeQueue("cfg");
  ASSERT_TRUE(resumed.ok());
  EXPECT_FALSE(resumed->paused);
  Result<Queue> paused = api_->PauseQueue("cfg");
  ASSERT_TRUE(paused.ok());
  EXPECT_TRUE(paused->paused);

  // A value the server refuses is its validation_failed, and changes nothing.
  QueueUpdate bad;
  bad.max_attempts = 0;
  Result<Queue> refused = api_->PutQueue("cfg", bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kValidation);
  EXPECT_EQ(api_->last_http_status(), 422);
  EXPECT_EQ(api_->GetQueue("cfg")->max_attempts, 4);
}

TEST_F(ApiClientServerTest, EveryEnqueueOptionReachesTheJob) {
  EnqueueRequest req;
  req.queue = "opts";
  req.kind = "report";
  req.payload_json = R"({"big":12345678901234567890,"s":"x"})";
  req.ns = "acme";
  req.priority = -3;
  req.delay_ms = 600'000;
  req.max_attempts = 6;
  req.backoff = Backoff{100, 5'000, 1.5};
  req.lease_ms = 1'234;
  req.idempotency_key = "key-1";
  req.idempotency_ttl_ms = 60'000;
  req.concurrency_key = "tenant-9";
  req.tags = {"a", "b"};
  const std::int64_t before = clock_.NowMs();
  Result<EnqueueResult> r = api_->Enqueue(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "scheduled");  // delayed
  EXPECT_FALSE(r->duplicate);

  Result<Job> job = api_->GetJob(r->id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->ns, "acme");
  EXPECT_EQ(job->queue, "opts");
  EXPECT_EQ(job->kind, "report");
  EXPECT_EQ(job->state, "scheduled");
  EXPECT_EQ(job->priority, -3);
  EXPECT_EQ(job->max_attempts, 6);
  ASSERT_TRUE(job->backoff.has_value());
  EXPECT_EQ(job->backoff->initial_ms, 100);
  EXPECT_EQ(job->backoff->max_ms, 5'000);
  EXPECT_DOUBLE_EQ(job->backoff->multiplier, 1.5);
  EXPECT_EQ(job->lease_ms, 1'234);
  EXPECT_EQ(job->idempotency_key, std::optional<std::string>("key-1"));
  EXPECT_EQ(job->concurrency_key, std::optional<std::string>("tenant-9"));
  EXPECT_EQ(job->tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_GE(job->run_at_ms, before + 600'000);
  EXPECT_EQ(job->payload_json, req.payload_json);  // as sent, the big number included

  // The same key within its window returns the same job and creates nothing.
  Result<EnqueueResult> again = api_->Enqueue(req);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->id, r->id);
}

TEST_F(ApiClientServerTest, FailRetriesThenAckKeepsTheResult) {
  const std::string id = Enqueue("work", 3);
  LeasedJob first = LeaseOne("work");
  ASSERT_EQ(first.id, id);
  EXPECT_EQ(first.attempt, 1);
  Result<JobStateResult> failed =
      api_->Fail(id, first.token, FailureInfo{"Timeout", "upstream slow", true}, 0);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(failed->id, id);
  EXPECT_NE(failed->state, "dead");
  // The token of the attempt that failed is stale now.
  Result<JobStateResult> stale = api_->Ack(id, first.token);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Code::kStaleLease);

  LeasedJob second = LeaseOne("work");
  ASSERT_EQ(second.id, id);
  EXPECT_EQ(second.attempt, 2);
  // A result that is not JSON is refused by the client before anything is sent.
  Result<JobStateResult> bad = api_->Ack(id, second.token, std::string_view("{oops"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kValidation);
  EXPECT_EQ(api_->GetJob(id)->state, "active");

  Result<JobStateResult> acked = api_->Ack(id, second.token, std::string_view(R"({"rows":[1,2]})"));
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  EXPECT_EQ(acked->state, "succeeded");
  Result<Job> job = api_->GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "succeeded");
  EXPECT_EQ(job->attempts, 2);
  ASSERT_EQ(job->errors.size(), 1u);
  EXPECT_EQ(job->errors[0].attempt, 1);
  EXPECT_EQ(job->errors[0].type, "Timeout");
  EXPECT_EQ(job->errors[0].message, "upstream slow");
  EXPECT_TRUE(job->finished_at_ms.has_value());
  EXPECT_FALSE(job->lease.has_value());
  // The result is recorded with the ack's commit; GET answers from memory until then.
  for (int i = 0; i < 200 && !job->result_json; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    job = api_->GetJob(id);
    ASSERT_TRUE(job.ok());
  }
  ASSERT_TRUE(job->result_json.has_value());
  EXPECT_EQ(*job->result_json, R"({"rows":[1,2]})");
}

TEST_F(ApiClientServerTest, PermanentFailureGoesDeadAndBothReplaysBringItBack) {
  const std::string a = Enqueue("dlq", 5);
  const std::string b = Enqueue("dlq", 5);
  for (const std::string& id : {a, b}) {
    LeasedJob j = LeaseOne("dlq");
    ASSERT_EQ(j.id, id);
    Result<JobStateResult> r = api_->Fail(id, j.token, FailureInfo{"Bad", "no such user", false});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->state, "dead");
  }
  Result<Job> dead = api_->GetJob(a);
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->state, "dead");

  Result<Job> replayed = api_->ReplayJob(a);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->id, a);
  EXPECT_EQ(replayed->state, "ready");
  // Replaying it again is invalid: it is not dead or cancelled any more.
  Result<Job> twice = api_->ReplayJob(a);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), Code::kInvalidState);
  EXPECT_EQ(api_->last_http_status(), 409);

  // By ids: the ready one is skipped, the dead one replayed.
  DeadReplayRequest by_ids;
  by_ids.ids = {a, b};
  Result<std::int64_t> n = api_->ReplayDead(by_ids);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(api_->GetJob(b)->state, "ready");

  // By queue with a limit.
  for (int i = 0; i < 2; ++i) {
    LeasedJob j = LeaseOne("dlq");
    ASSERT_TRUE(api_->Fail(j.id, j.token, FailureInfo{"Bad", "again", false}).ok());
  }
  DeadReplayRequest limited;
  limited.queue = "dlq";
  limited.limit = 1;
  n = api_->ReplayDead(limited);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  Result<JobPage> left = api_->ListDead(ListDeadRequest{"dlq", {}, {}});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->items.size(), 1u);
}

TEST_F(ApiClientServerTest, InfoReadinessAndMetrics) {
  Enqueue("i");
  Enqueue("i");
  Result<ServerInfo> info = api_->Info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->version.empty());
  EXPECT_EQ(info->live_jobs, 2);
  EXPECT_GE(info->commits, 1);
  EXPECT_FALSE(info->draining);
  EXPECT_GT(info->started_at_ms, 0);
  EXPECT_TRUE(api_->Readyz().ok());
  Result<std::string> metrics = api_->Metrics();
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(*metrics, "ym_up 1\n");

  broker_->BeginDrain();
  Status ready = api_->Readyz();
  EXPECT_EQ(ready.code(), Code::kUnavailable);
  EXPECT_EQ(api_->last_http_status(), 503);
  info = api_->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->draining);
  EXPECT_TRUE(api_->Healthz().ok());  // alive while draining
}

// The SDK's public Client is the same calls behind a mutex, with public types.
TEST_F(ApiClientServerTest, SdkClientEnqueuesReadsCancelsAndReplays) {
  yardmaster::ClientOptions o;
  o.server_url = url_;
  yardmaster::Client sdk(o);
  EXPECT_EQ(sdk.server_url(), url_);
  yardmaster::EnqueueOptions job;
  job.queue = "sdk";
  job.kind = "k";
  job.payload_json = R"({"n":1})";
  job.backoff = yardmaster::RetryBackoff{10, 20, 2.0};
  job.max_attempts = 2;
  std::vector<yardmaster::EnqueueOptions> batch(2, job);
  batch[1].queue = "bad queue name";  // refused alone
  auto results = sdk.EnqueueBatch(batch);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 2u);
  ASSERT_TRUE((*results)[0].ok()) << (*results)[0].status().ToString();
  EXPECT_EQ((*results)[1].status().code(), "validation_failed");
  const std::string id = (*results)[0]->id;

  yardmaster::Result<yardmaster::JobInfo> got = sdk.Get(id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->queue, "sdk");
  EXPECT_EQ(got->state, "ready");
  EXPECT_EQ(got->max_attempts, 2);
  EXPECT_EQ(got->payload_json, R"({"n":1})");

  yardmaster::Result<yardmaster::JobInfo> cancelled = sdk.Cancel(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_EQ(cancelled->state, "cancelled");
  yardmaster::Result<yardmaster::JobInfo> replayed = sdk.Replay(id);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->state, "ready");

  yardmaster::Result<yardmaster::JobInfo> missing = sdk.Get("999999");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "not_found");
  EXPECT_EQ(missing.status().http_status(), 404);

  // A moved-from client's state lives on in the new one.
  yardmaster::Client moved(std::move(sdk));
  EXPECT_EQ(moved.server_url(), url_);
  EXPECT_TRUE(moved.Get(id).ok());
}

// Trace context through the C++ SDK (docs/cpp-sdk.md, "Trace context"): the producer passes it
// on enqueue, Get shows it, and the worker's JobContext carries it on every attempt; a job
// without one shows none. A malformed traceparent is the server's validation_failed.
TEST_F(ApiClientServerTest, SdkPassesTraceContextFromProducerToHandler) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  yardmaster::ClientOptions o;
  o.server_url = url_;
  yardmaster::Client sdk(o);
  yardmaster::EnqueueOptions job;
  job.queue = "traced";
  job.kind = "k";
  job.traceparent = tp;
  job.tracestate = "rojo=1";
  auto traced = sdk.Enqueue(job);
  ASSERT_TRUE(traced.ok()) << traced.status().ToString();
  job.traceparent.reset();
  job.tracestate.reset();
  auto plain = sdk.Enqueue(job);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  job.traceparent = "00-bad";
  auto bad = sdk.Enqueue(job);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "validation_failed");

  auto got = sdk.Get(traced->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->traceparent, tp);
  EXPECT_EQ(got->tracestate, "rojo=1");
  auto got_plain = sdk.Get(plain->id);
  ASSERT_TRUE(got_plain.ok());
  EXPECT_FALSE(got_plain->traceparent.has_value());

  yardmaster::WorkerOptions wo;
  wo.server_url = url_;
  wo.queues = {"traced"};
  wo.poll_wait = std::chrono::milliseconds(100);
  wo.log = [](std::string_view) {};
  yardmaster::Worker worker(wo);
  std::mutex mu;
  std::vector<std::string> seen;  // "id attempt traceparent|tracestate"
  worker.Handle("k", [&](yardmaster::JobContext& ctx) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(ctx.id() + " " + std::to_string(ctx.attempt()) + " " + ctx.traceparent() + "|" +
                   ctx.tracestate());
    if (ctx.id() == traced->id && ctx.attempt() == 1) {
      return yardmaster::Outcome::Retry("again", std::chrono::milliseconds(0));
    }
    return yardmaster::Outcome::Ok();
  });
  yardmaster::Status run_status;
  std::thread runner([&] { run_status = worker.Run(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (worker.Stats().succeeded < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  worker.Stop(std::chrono::milliseconds(0));
  runner.join();
  EXPECT_TRUE(run_status.ok()) << run_status.ToString();
  std::lock_guard<std::mutex> lock(mu);
  std::sort(seen.begin(), seen.end());
  std::vector<std::string> want = {traced->id + " 1 " + tp + "|rojo=1",
                                   traced->id + " 2 " + tp + "|rojo=1", plain->id + " 1 |"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);
}

// The bulk operations through the SDK and the internal client: every filter field reaches the
// server, pages are followed (or stopped and resumed), and the counts come back.
TEST_F(ApiClientServerTest, SdkBulkOperationsFollowPagesAndResume) {
  yardmaster::ClientOptions o;
  o.server_url = url_;
  yardmaster::Client sdk(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    EnqueueRequest req;
    req.queue = "sdkbulk";
    req.kind = i % 2 == 0 ? "even" : "odd";
    req.tags = {"t"};
    req.ns = "tenant";
    Result<EnqueueResult> r = api_->Enqueue(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.push_back(r->id);
  }
  yardmaster::JobFilter even;
  even.ns = "tenant";
  even.queue = "sdkbulk";
  even.kind = "even";
  even.tag = "t";
  even.states = {"ready"};
  even.created_after_ms = 0;
  yardmaster::BulkOptions dry;
  dry.dry_run = true;
  auto counted = sdk.CancelJobs(even, dry);
  ASSERT_TRUE(counted.ok()) << counted.status().ToString();
  EXPECT_EQ(counted->matched, 4);
  EXPECT_EQ(counted->applied, 0);

  yardmaster::BulkOptions one;
  one.limit = 1;
  one.max_pages = 1;
  auto first = sdk.CancelJobs(even, one);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->applied, 1);
  EXPECT_EQ(first->pages, 1);
  ASSERT_TRUE(first->next_cursor.has_value());
  one.max_pages = 0;
  one.cursor = *first->next_cursor;
  auto rest = sdk.CancelJobs(even, one);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->applied, 3);
  EXPECT_FALSE(rest->next_cursor.has_value());
  EXPECT_GE(rest->pages, 3);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Result<Job> j = api_->GetJob(ids[i]);
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(j->state, i % 2 == 0 ? "cancelled" : "ready") << i;
  }

  yardmaster::JobFilter cancelled;
  cancelled.queue = "sdkbulk";
  auto page = sdk.BulkPage(yardmaster::BulkAction::kReplay, cancelled, "");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->applied, 4);
  EXPECT_EQ(page->pages, 1);
  auto deleted = sdk.DeleteJobs(cancelled);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->matched, 0) << "every job is live: delete never touches one";

  auto empty = sdk.CancelJobs(yardmaster::JobFilter{});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), "validation_failed");
  yardmaster::BulkOptions all;
  all.all = true;
  auto everything = sdk.CancelJobs(yardmaster::JobFilter{}, all);
  ASSERT_TRUE(everything.ok()) << everything.status().ToString();
  EXPECT_EQ(everything->applied, 7);
  auto bad = sdk.BulkPage(yardmaster::BulkAction::kCancel, cancelled, "not-a-cursor");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "invalid_request");
}

// Every ListJobs filter reaches the server and means what the server means: live and finished
// jobs alike, followed across pages.
TEST_F(ApiClientServerTest, ListJobsFiltersLiveAndFinishedJobs) {
  std::vector<std::string> ids;
  for (int i = 0; i < 9; ++i) {
    EnqueueRequest req;
    req.queue = i < 6 ? "fa" : "fb";
    req.kind = i % 2 ? "odd" : "even";
    req.ns = i % 3 == 0 ? "t3" : "default";
    if (i % 4 == 0) req.tags = {"four", "x"};
    Result<EnqueueResult> r = api_->Enqueue(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.push_back(r->id);
  }
  // Finish job 0 (ack) and job 4 (cancel): both stay (an hour's retention here).
  LeasedJob first = LeaseOne("fa");
  ASSERT_EQ(first.id, ids[0]);
  ASSERT_TRUE(api_->Ack(first.id, first.token).ok());
  ASSERT_TRUE(api_->CancelJob(ids[4]).ok());

  auto all = [&](ListJobsRequest req) {
    req.limit = 2;
    std::vector<std::string> got;
    for (int page = 0; page < 50; ++page) {
      Result<JobPage> p = api_->ListJobs(req);
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      if (!p.ok()) break;
      for (const Job& j : p->items) got.push_back(j.id);
      if (!p->next_cursor) break;
      req.cursor = p->next_cursor;
    }
    return got;
  };
  auto pick = [&](std::initializer_list<int> which) {
    std::vector<std::string> out;
    for (int i : which) out.push_back(ids[static_cast<std::size_t>(i)]);
    return out;
  };
  ListJobsRequest q;
  q.filter.queue = "fa";
  EXPECT_EQ(all(q), pick({0, 1, 2, 3, 4, 5}));
  q = {};
  q.filter.kind = "odd";
  EXPECT_EQ(all(q), pick({1, 3, 5, 7}));
  q = {};
  q.filter.ns = "t3";
  EXPECT_EQ(all(q), pick({0, 3, 6}));
  q = {};
  q.filter.tag = "four";
  EXPECT_EQ(all(q), pick({0, 4, 8}));
  q.filter.states = {"succeeded", "cancelled"};
  EXPECT_EQ(all(q), pick({0, 4}));
  q = {};
  q.filter.states = {"cancelled"};
  EXPECT_EQ(all(q), pick({4}));
  q = {};
  q.filter.finished_after_ms = 0;
  EXPECT_EQ(all(q), pick({0, 4}));
  q = {};
  q.filter.finished_before_ms = 1;
  EXPECT_TRUE(all(q).empty());
  q = {};
  q.filter.created_after_ms = 0;
  q.filter.queue = "fb";
  EXPECT_EQ(all(q), pick({6, 7, 8}));
  q.filter.created_before_ms = 1;
  EXPECT_TRUE(all(q).empty());
  q = {};
  q.filter.kind = "bad kind";
  Result<JobPage> bad = api_->ListJobs(q);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidRequest);
  EXPECT_NE(bad.status().message().find("\"kind\""), std::string::npos);
}

// The public SDK's Search: the same filters, paged by cursor.
TEST_F(ApiClientServerTest, SdkClientSearchesByEveryFilterAcrossPages) {
  yardmaster::ClientOptions o;
  o.server_url = url_;
  yardmaster::Client sdk(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    yardmaster::EnqueueOptions job;
    job.queue = "sq";
    job.kind = i % 2 ? "odd" : "even";
    job.ns = i < 3 ? "early" : "late";
    if (i % 3 == 0) job.tags = {"three"};
    auto r = sdk.Enqueue(job);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.push_back(r->id);
  }
  ASSERT_TRUE(sdk.Cancel(ids[3]).ok());
  auto all = [&](yardmaster::JobSearch s) {
    s.page_size = 2;
    std::vector<std::string> got;
    for (int page = 0; page < 20; ++page) {
      auto r = sdk.Search(s);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      for (const auto& j : r->jobs) got.push_back(j.id);
      if (!r->next_cursor) break;
      s.cursor = r->next_cursor;
    }
    return got;
  };
  yardmaster::JobSearch s;
  s.queue = "sq";
  EXPECT_EQ(all(s), ids);
  s.kind = "odd";
  EXPECT_EQ(all(s), (std::vector<std::string>{ids[1], ids[3], ids[5]}));
  s = {};
  s.ns = "late";
  s.tag = "three";
  EXPECT_EQ(all(s), (std::vector<std::string>{ids[3], ids[6]}));
  s.states = {"cancelled", "dead"};
  EXPECT_EQ(all(s), (std::vector<std::string>{ids[3]}));
  s = {};
  s.finished_after_ms = 0;
  EXPECT_EQ(all(s), (std::vector<std::string>{ids[3]}));
  s = {};
  s.created_before_ms = 1;
  EXPECT_TRUE(all(s).empty());
  s = {};
  s.states = {"finished"};
  auto bad = sdk.Search(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().http_status(), 400);
}

// Key modes through the client and the real server (docs/flow-control.md, "Singleton and
// debounce"): the limit's members go out and come back, an enqueue reports the jobs a debounce
// replaced and the job a singleton skipped, and a refusal has its own code.
TEST_F(ApiClientServerTest, KeyModesRoundTrip) {
  Limit deb;
  deb.name = "deb";
  deb.match_kind = "d";
  deb.key = "concurrency_key";
  deb.debounce_delay_ms = 60'000;
  deb.debounce_max_wait_ms = 120'000;
  bool created = false;
  Result<Limit> put = api_->PutLimit(deb, &created);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(created);
  EXPECT_FALSE(put->concurrency.has_value());
  EXPECT_EQ(put->debounce_delay_ms, std::optional<std::int64_t>(60'000));
  EXPECT_EQ(put->debounce_max_wait_ms, std::optional<std::int64_t>(120'000));
  Limit one;
  one.name = "one";
  one.match_kind = "s";
  one.key = "concurrency_key";
  one.singleton = "skip";
  ASSERT_TRUE(api_->PutLimit(one).ok());
  Result<Limit> got = api_->GetLimit("one");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->singleton, "skip");
  EXPECT_FALSE(got->debounce_delay_ms.has_value());

  EnqueueRequest req;
  req.queue = "km";
  req.kind = "d";
  req.concurrency_key = "x";
  Result<EnqueueResult> a = api_->Enqueue(req);
  Result<EnqueueResult> b = api_->Enqueue(req);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->superseded.empty());
  EXPECT_EQ(b->superseded, std::vector<std::string>{a->id});
  EXPECT_EQ(b->state, "scheduled");
  req.kind = "s";
  Result<EnqueueResult> c = api_->Enqueue(req);
  Result<EnqueueResult> d = api_->Enqueue(req);
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_FALSE(c->skipped);
  EXPECT_TRUE(d->skipped);
  EXPECT_EQ(d->id, c->id);
  one.singleton = "refuse";
  ASSERT_TRUE(api_->PutLimit(one).ok());
  Result<EnqueueResult> e = api_->Enqueue(req);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::kSingletonConflict);
  EXPECT_NE(e.status().message().find("job " + c->id), std::string::npos);
  // A bad key mode is refused and changes nothing.
  one.singleton = "sometimes";
  Result<Limit> bad = api_->PutLimit(one);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kValidation);
  EXPECT_EQ(api_->GetLimit("one")->singleton, "refuse");
}

}  // namespace
}  // namespace ym::client
