// yardmaster::Client (include/yardmaster/client.h) against a scripted server: the requests it
// sends and how it reads the answers.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "threaded_server.h"
#include "yardmaster/client.h"

namespace {

using std::chrono::milliseconds;
using ym::test_support::Reply;
using ym::test_support::ThreadedServer;

std::string JobJson(const std::string& state, const std::string& result = "null") {
  return R"({"id":"7","namespace":"default","queue":"q","kind":"k","state":")" + state +
         R"(","payload":null,"attempts":1,"max_attempts":3,"cancel_requested":false,)" +
         R"("dead_reason":null,"last_error":null,"errors":[],"result":)" + result + "}";
}

// Records each request's target; answers GET /v1/jobs/7?wait_ms=... with `states` in turn.
class WaitServer {
 public:
  explicit WaitServer(std::vector<std::string> states)
      : states_(std::move(states)), server_([this](const std::string& req, const std::string&) {
          std::lock_guard<std::mutex> lock(mu_);
          targets_.push_back(req);
          const std::size_t i = std::min(next_++, states_.size() - 1);
          return Reply{200, JobJson(states_[i], states_[i] == "succeeded" ? R"({"n":1})" : "null")};
        }) {}

  std::string url() const { return server_.url(); }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }

 private:
  std::vector<std::string> states_;
  std::mutex mu_;
  std::vector<std::string> targets_;
  std::size_t next_ = 0;
  ThreadedServer server_;
};

TEST(SdkClient, WaitRepeatsTheServersWaitUntilTheJobEnds) {
  WaitServer server({"ready", "active", "succeeded"});
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  auto job = client.Wait("7");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->state, "succeeded");
  ASSERT_TRUE(job->result_json.has_value());
  EXPECT_EQ(*job->result_json, R"({"n":1})");
  // Without a timeout every request asks the server for its longest wait.
  EXPECT_EQ(server.targets(), std::vector<std::string>(3, "GET /v1/jobs/7?wait_ms=30000"));
}

TEST(SdkClient, WaitWithATimeoutReturnsTheLiveJobWhenItRunsOut) {
  WaitServer server({"active"});
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  auto job = client.Wait("7", milliseconds(0));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_FALSE(job->ended());
  EXPECT_EQ(job->state, "active");
  EXPECT_EQ(server.targets(), std::vector<std::string>{"GET /v1/jobs/7?wait_ms=0"});
}

TEST(SdkClient, WaitReportsAnUnknownJob) {
  ThreadedServer server([](const std::string&, const std::string&) {
    return Reply{404, R"({"error":{"code":"not_found","message":"job 7 not found"}})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  auto job = client.Wait("7", milliseconds(1000));
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), "not_found");
  EXPECT_EQ(job.status().http_status(), 404);
}

// The limit calls send what docs/api.md describes and read the limit object back.
TEST(SdkClient, LimitsRoundTrip) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  ThreadedServer server([&](const std::string& req, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req, body);
    const std::string limit =
        R"({"name":"per-acct","match":{"queue":"q"},"key":"payload.acct","concurrency":2,)"
        R"("active_keys":1,"active":[{"key":"a1","count":2}]})";
    if (req.rfind("PUT ", 0) == 0) return Reply{201, limit};
    if (req.rfind("GET /v1/limits?", 0) == 0) {
      return Reply{200, R"({"items":[)" + limit + R"(],"next_cursor":null})"};
    }
    if (req.rfind("DELETE ", 0) == 0) return Reply{200, R"({"name":"per-acct","deleted":true})"};
    return Reply{404, R"({"error":{"code":"not_found","message":"limit x not found"}})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  yardmaster::LimitSpec spec;
  spec.name = "per-acct";
  spec.match_queue = "q";
  spec.key = "payload.acct";
  spec.concurrency = 2;
  auto set = client.SetLimit(spec);
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_TRUE(set->created);
  EXPECT_EQ(set->key, "payload.acct");
  EXPECT_EQ(*set->match_queue, "q");
  ASSERT_EQ(set->active.size(), 1u);
  EXPECT_EQ(set->active[0], (std::pair<std::string, std::int64_t>{"a1", 2}));
  auto all = client.ListLimits();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].concurrency, 2);
  EXPECT_TRUE(client.DeleteLimit("per-acct").ok());
  auto missing = client.GetLimit("x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "not_found");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(seen[0].first, "PUT /v1/limits/per-acct");
  EXPECT_EQ(seen[0].second, R"({"match":{"queue":"q"},"key":"payload.acct","concurrency":2})");
  EXPECT_EQ(seen[2].first, "DELETE /v1/limits/per-acct");
  EXPECT_EQ(seen[3].first, "GET /v1/limits/x");
}

// The namespace calls send what docs/api.md describes and read the namespace object back.
TEST(SdkClient, NamespacesRoundTrip) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  ThreadedServer server([&](const std::string& req, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req, body);
    const std::string ns =
        R"({"name":"acme","max_live_jobs":5,"enqueue_rate":{"count":10,"period_ms":60000,)"
        R"("burst":10},"weight":3,"max_active":7,"live_jobs":2,"active_jobs":1})";
    if (req.rfind("PUT ", 0) == 0) return Reply{201, ns};
    if (req.rfind("GET /v1/namespaces?", 0) == 0) {
      return Reply{200, R"({"items":[)" + ns + R"(],"next_cursor":null})"};
    }
    if (req.rfind("DELETE ", 0) == 0) return Reply{200, R"({"name":"acme","deleted":true})"};
    if (req.rfind("POST /v1/jobs", 0) == 0) {
      return Reply{429, R"({"error":{"code":"namespace_limit","message":"namespace acme holds 5)"
                        R"( live jobs","retry_after_ms":1000}})"};
    }
    return Reply{404, R"({"error":{"code":"not_found","message":"namespace x"}})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  yardmaster::NamespaceSpec spec;
  spec.name = "acme";
  spec.max_live_jobs = 5;
  spec.enqueue_rate = yardmaster::NamespaceRateSpec{10, 60'000, 0};
  spec.weight = 3;
  spec.max_active = 7;
  auto set = client.SetNamespace(spec);
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_TRUE(set->created);
  EXPECT_EQ(set->live_jobs, 2);
  EXPECT_EQ(set->enqueue_rate->burst, 10);
  EXPECT_EQ(set->weight, 3);
  EXPECT_EQ(set->max_active, 7);
  EXPECT_EQ(set->active_jobs, 1);
  auto all = client.ListNamespaces();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].max_live_jobs, 5);
  EXPECT_TRUE(client.DeleteNamespace("acme").ok());
  auto missing = client.GetNamespace("x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "not_found");
  yardmaster::EnqueueOptions job;
  job.queue = "q";
  job.kind = "k";
  job.ns = "acme";
  auto refused = client.Enqueue(job);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "namespace_limit");
  EXPECT_EQ(refused.status().http_status(), 429);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(seen[0].first, "PUT /v1/namespaces/acme");
  EXPECT_EQ(seen[0].second,
            R"({"max_live_jobs":5,"enqueue_rate":{"count":10,"period_ms":60000},"weight":3,)"
            R"("max_active":7})");
  EXPECT_EQ(seen[2].first, "DELETE /v1/namespaces/acme");
  EXPECT_EQ(seen[3].first, "GET /v1/namespaces/x");
}

// Key modes: SetLimit sends only what is set, and Enqueued reports skipped and superseded.
TEST(SdkClient, KeyModesAreSentAndReported) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  ThreadedServer server([&](const std::string& req, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req, body);
    if (req.rfind("PUT ", 0) == 0) {
      return Reply{201, R"({"name":"deb","match":{},"key":null,"concurrency":null,)"
                        R"("singleton":null,"debounce":{"delay_ms":500,"max_wait_ms":null},)"
                        R"("active_keys":0,"active":[]})"};
    }
    return Reply{201, R"({"id":"9","state":"scheduled","superseded":["7","8"]})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  yardmaster::LimitSpec spec;
  spec.name = "deb";
  spec.debounce_delay_ms = 500;
  auto set = client.SetLimit(spec);
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_FALSE(set->concurrency.has_value());
  EXPECT_EQ(set->debounce_delay_ms, std::optional<std::int64_t>(500));
  EXPECT_FALSE(set->debounce_max_wait_ms.has_value());
  yardmaster::EnqueueOptions job;
  job.queue = "q";
  job.kind = "k";
  auto e = client.Enqueue(job);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->superseded, (std::vector<std::string>{"7", "8"}));
  EXPECT_FALSE(e->skipped);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(seen.size(), 1u);
  EXPECT_EQ(seen[0].second, R"({"debounce":{"delay_ms":500}})");
}

TEST(SdkClient, BreakerSetAndReset) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  ThreadedServer server([&](const std::string& req, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req, body);
    const std::string limit =
        R"({"name":"cb","match":{},"key":"kind","concurrency":null,"rate":null,"quota":null,)"
        R"("breaker":{"consecutive_failures":3,"window":0,"min_samples":1,"failure_percent":50,)"
        R"("open_base_ms":1000,"open_max_ms":300000,"tripped_keys":1,"tracked_keys":1,)"
        R"("keys":[{"key":"send","state":"open","opened_at":1000,"next_open_at":2000,)"
        R"("open_interval_ms":1000,"trial_in_flight":false,"consecutive_failures":0,)"
        R"("consecutive_opens":1,"window_samples":0,"window_failures":0}]},)"
        R"("active_keys":0,"active":[])";
    if (req.rfind("PUT ", 0) == 0) return Reply{201, limit + "}"};
    if (req == "POST /v1/limits/cb:reset-breaker") {
      return Reply{200, limit + R"(,"reset":{"key":"send","tripped_keys":1}})"};
    }
    return Reply{422, R"({"error":{"code":"validation_failed","message":"limit plain has no )"
                      R"(breaker"}})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  yardmaster::LimitSpec spec;
  spec.name = "cb";
  spec.key = "kind";
  spec.breaker = yardmaster::LimitBreaker{};
  spec.breaker->consecutive_failures = 3;
  auto set = client.SetLimit(spec);
  ASSERT_TRUE(set.ok()) << set.status().message();
  ASSERT_TRUE(set->breaker.has_value());
  EXPECT_EQ(set->breaker->open_max_ms, 300000);
  EXPECT_EQ(set->breaker_tripped_keys, 1);
  ASSERT_EQ(set->breaker_keys.size(), 1u);
  EXPECT_EQ(set->breaker_keys[0].state, "open");
  EXPECT_EQ(set->breaker_keys[0].next_open_at_ms, 2000);
  auto reset = client.ResetBreaker("cb", std::string("send"));
  ASSERT_TRUE(reset.ok()) << reset.status().message();
  EXPECT_EQ(reset->reset_tripped_keys, 1);
  auto bad = client.ResetBreaker("plain");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "validation_failed");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].second, R"({"key":"kind","breaker":{"consecutive_failures":3}})");
  EXPECT_EQ(seen[1].second, R"({"key":"send"})");
  EXPECT_EQ(seen[2].first, "POST /v1/limits/plain:reset-breaker");
  EXPECT_EQ(seen[2].second, "{}");
}

// The schedule calls send what docs/api.md describes ("Schedules") and read the object back.
TEST(SdkClient, SchedulesRoundTrip) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  const std::string schedule =
      R"({"id":"nightly","cron":"0 3 * * *","time_zone":"Europe/Paris","start_at":null,)"
      R"("end_at":null,"jitter_ms":0,"missed_runs":{"policy":"catch_up","max_count":7,)"
      R"("max_age_ms":86400000,"grace_ms":60000},"overlap":"skip","paused":false,)"
      R"("job":{"queue":"reports","kind":"nightly"},"state":"active","created_at":1000,)"
      R"("updated_at":2000,"cursor":1000,"next_fire_at":7200000,)"
      R"("next_fire_times":[7200000,93600000],"live_job":"42","buffered_window":null,)"
      R"("last_run":{"window":3600000,"job_id":"42","enqueued_at":3600004,"lag_ms":4},)"
      R"("lag":{"last_ms":4,"max_recent_ms":9,"samples":2},"history":[)"
      R"({"window":3600000,"outcome":"emitted","reason":"on_time","job_id":"42","at":3600004,)"
      R"("lag_ms":4},{"window":100,"through":900,"outcome":"skipped","reason":"missed",)"
      R"("job_id":null,"at":1000,"lag_ms":null}]})";
  ThreadedServer server([&](const std::string& req, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req, body);
    if (req == "POST /v1/schedules") return Reply{201, schedule};
    if (req.rfind("POST /v1/schedules/nightly:trigger", 0) == 0) {
      return Reply{201, R"({"id":"43","state":"ready"})"};
    }
    if (req.rfind("POST /v1/schedules/nightly:backfill", 0) == 0) {
      return Reply{200, R"({"emitted":2,"duplicates":1,"after_cursor":0,"windows":3})"};
    }
    if (req.rfind("GET /v1/schedules?", 0) == 0) {
      return Reply{200, R"({"items":[)" + schedule + R"(],"next_cursor":null})"};
    }
    if (req.rfind("DELETE ", 0) == 0) return Reply{200, R"({"id":"nightly","deleted":true})"};
    if (req.find("/v1/schedules/nightly") != std::string::npos) return Reply{200, schedule};
    return Reply{404, R"({"error":{"code":"not_found","message":"schedule x not found"}})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  yardmaster::ScheduleSpec spec;
  spec.id = "nightly";
  spec.cron = "0 3 * * *";
  spec.time_zone = "Europe/Paris";
  spec.missed_policy = "catch_up";
  spec.missed_max_count = 7;
  yardmaster::EnqueueOptions job;
  job.queue = "reports";
  job.kind = "nightly";
  spec.job = job;
  auto created = client.CreateSchedule(spec);
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(created->id, "nightly");
  EXPECT_EQ(created->missed_policy, "catch_up");
  EXPECT_EQ(created->missed_max_count, 7);
  EXPECT_EQ(created->job_json, R"({"queue":"reports","kind":"nightly"})");
  EXPECT_EQ(created->next_fire_at_ms, 7'200'000);
  EXPECT_EQ(created->next_fire_times, (std::vector<std::int64_t>{7'200'000, 93'600'000}));
  EXPECT_EQ(created->live_job, "42");
  EXPECT_FALSE(created->buffered_window_ms.has_value());
  ASSERT_TRUE(created->last_run.has_value());
  EXPECT_EQ(created->last_run->job_id, "42");
  EXPECT_EQ(created->last_run->at_ms, 3'600'004);
  EXPECT_EQ(created->lag_max_recent_ms, 9);
  ASSERT_EQ(created->history.size(), 2u);
  EXPECT_EQ(created->history[0].reason, "on_time");
  EXPECT_EQ(created->history[0].through_ms, 3'600'000);  // one window: through = window
  EXPECT_EQ(created->history[1].through_ms, 900);
  EXPECT_EQ(created->history[1].job_id, "");
  EXPECT_FALSE(created->history[1].lag_ms.has_value());

  yardmaster::ScheduleSpec patch;
  patch.id = "nightly";
  patch.overlap = "buffer_one";
  ASSERT_TRUE(client.UpdateSchedule(patch).ok());
  ASSERT_TRUE(client.ReplaceSchedule(spec).ok());
  ASSERT_TRUE(client.GetSchedule("nightly", 3).ok());
  ASSERT_TRUE(client.PauseSchedule("nightly").ok());
  ASSERT_TRUE(client.ResumeSchedule("nightly").ok());
  auto triggered = client.TriggerSchedule("nightly");
  ASSERT_TRUE(triggered.ok());
  EXPECT_EQ(triggered->id, "43");
  auto backfill = client.BackfillSchedule("nightly", 100, 900);
  ASSERT_TRUE(backfill.ok());
  EXPECT_EQ(backfill->emitted, 2);
  EXPECT_EQ(backfill->duplicates, 1);
  EXPECT_EQ(backfill->windows, 3);
  auto all = client.ListSchedules();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_TRUE(client.DeleteSchedule("nightly").ok());
  auto missing = client.GetSchedule("x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "not_found");

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen[0].second, R"({"id":"nightly","cron":"0 3 * * *","time_zone":"Europe/Paris",)"
                            R"("missed_runs":{"policy":"catch_up","max_count":7},)"
                            R"("job":{"queue":"reports","kind":"nightly","payload":null}})");
  EXPECT_EQ(seen[1].first, "PATCH /v1/schedules/nightly");
  EXPECT_EQ(seen[1].second, R"({"overlap":"buffer_one"})");
  EXPECT_EQ(seen[2].first, "PUT /v1/schedules/nightly");
  EXPECT_EQ(seen[3].first, "GET /v1/schedules/nightly?next=3");
  EXPECT_EQ(seen[4].first, "POST /v1/schedules/nightly:pause");
  EXPECT_EQ(seen[5].first, "POST /v1/schedules/nightly:resume");
  EXPECT_EQ(seen[7].second, R"({"from":100,"to":900})");
  EXPECT_EQ(seen[9].first, "DELETE /v1/schedules/nightly");
  EXPECT_EQ(seen[10].first, "GET /v1/schedules/x");
}

// Every paged listing (limits, namespaces, schedules: client/wire.h ReadEveryPage) follows
// next_cursor to the end and stops with an error when a server repeats a cursor.
TEST(SdkClient, ListingsFollowTheCursorAndRefuseARepeatedOne) {
  std::mutex mu;
  std::vector<std::string> targets;
  ThreadedServer server([&](const std::string& req, const std::string&) {
    std::lock_guard<std::mutex> lock(mu);
    targets.push_back(req);
    const bool first = req.find("cursor=") == std::string::npos;
    if (req.rfind("GET /v1/schedules?", 0) == 0) {
      return Reply{200, std::string(R"({"items":[{"id":")") + (first ? "a" : "b") +
                            R"("}],"next_cursor":)" + (first ? R"("c1")" : "null") + "}"};
    }
    // Limits: always the same cursor.
    return Reply{200, R"({"items":[{"name":"x","concurrency":1}],"next_cursor":"same"})"};
  });
  yardmaster::Client client(yardmaster::ClientOptions{
      server.url(), milliseconds(5000), milliseconds(5000), {}, {}, {}, {}, {}});
  auto all = client.ListSchedules();
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].id, "b");
  auto looping = client.ListLimits();
  ASSERT_FALSE(looping.ok());
  EXPECT_NE(looping.status().message().find("repeated or empty cursor"), std::string::npos)
      << looping.status().message();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(targets.size(), 2u);
  EXPECT_EQ(targets[0], "GET /v1/schedules?limit=1000");
  EXPECT_EQ(targets[1], "GET /v1/schedules?limit=1000&cursor=c1");
}

}  // namespace
