// Unit tests of net/router.h: the route table, :verb parsing and the shared request checks.
#include "net/router.h"

#include <gtest/gtest.h>

#include <string>

#include "net/api.h"

namespace ym::net {
namespace {

namespace http = boost::beast::http;

RouteOutcome Route(http::verb method, std::string_view target, std::size_t body_size = 0,
                   std::string_view content_type = "application/json",
                   std::size_t max_request_bytes = 1024) {
  RouteInput in;
  in.method = method;
  in.target = target;
  in.body_size = body_size;
  in.content_type = content_type;
  in.max_request_bytes = max_request_bytes;
  return RouteRequest(in);
}

struct RouteCase {
  RouteCase(http::verb m, std::string t, RouteId i, JobId j = 0, std::string q = "")
      : method(m), target(std::move(t)), id(i), job_id(j), queue(std::move(q)) {}
  http::verb method;
  std::string target;
  RouteId id;
  JobId job_id;
  std::string queue;
};

void PrintTo(const RouteCase& c, std::ostream* os) { *os << c.target; }

class RouterMatch : public testing::TestWithParam<RouteCase> {};

TEST_P(RouterMatch, FindsTheRoute) {
  const RouteCase& c = GetParam();
  RouteOutcome out = Route(c.method, c.target);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.match.id, c.id) << RouteLabel(out.match.id);
  EXPECT_EQ(out.match.job_id, c.job_id);
  EXPECT_EQ(out.match.queue, c.queue);
}

INSTANTIATE_TEST_SUITE_P(
    EveryPath, RouterMatch,
    testing::Values(
        RouteCase{http::verb::post, "/v1/jobs", RouteId::kEnqueue},
        RouteCase{http::verb::post, "/v1/jobs:batch", RouteId::kEnqueueBatch},
        RouteCase{http::verb::get, "/v1/jobs", RouteId::kListJobs},
        RouteCase{http::verb::get, "/v1/jobs?queue=a&state=ready", RouteId::kListJobs},
        RouteCase{http::verb::get, "/v1/jobs/42", RouteId::kGetJob, 42},
        RouteCase{http::verb::post, "/v1/jobs/42:cancel", RouteId::kCancelJob, 42},
        RouteCase{http::verb::post, "/v1/jobs/42:replay", RouteId::kReplayJob, 42},
        RouteCase{http::verb::post, "/v1/leases", RouteId::kLease},
        RouteCase{http::verb::post, "/v1/jobs/7:heartbeat", RouteId::kHeartbeat, 7},
        RouteCase{http::verb::post, "/v1/cancels:watch", RouteId::kWatchCancels},
        RouteCase{http::verb::post, "/v1/jobs/42:ack", RouteId::kAck, 42},
        RouteCase{http::verb::post, "/v1/jobs/18446744073709551615:fail", RouteId::kFail,
                  18446744073709551615ULL},
        RouteCase{http::verb::post, "/v1/acks:batch", RouteId::kCompleteBatch},
        RouteCase{http::verb::get, "/v1/queues", RouteId::kListQueues},
        RouteCase{http::verb::get, "/v1/queues/emails", RouteId::kGetQueue, 0, "emails"},
        RouteCase{http::verb::put, "/v1/queues/emails", RouteId::kPutQueue, 0, "emails"},
        RouteCase{http::verb::delete_, "/v1/queues/emails", RouteId::kResetQueue, 0, "emails"},
        RouteCase{http::verb::post, "/v1/queues/emails:pause", RouteId::kPauseQueue, 0, "emails"},
        RouteCase{http::verb::post, "/v1/queues/emails:resume", RouteId::kResumeQueue, 0, "emails"},
        RouteCase{http::verb::post, "/v1/limits/cb:reset-breaker", RouteId::kResetBreaker},
        RouteCase{http::verb::get, "/v1/limits/a:b", RouteId::kGetLimit},
        RouteCase{http::verb::get, "/v1/dead", RouteId::kListDead},
        RouteCase{http::verb::get, "/v1/dead?queue=a&limit=5", RouteId::kListDead},
        RouteCase{http::verb::post, "/v1/dead:replay", RouteId::kReplayDead},
        RouteCase{http::verb::post, "/v1/jobs:cancel", RouteId::kBulkCancel},
        RouteCase{http::verb::post, "/v1/jobs:replay", RouteId::kBulkReplay},
        RouteCase{http::verb::post, "/v1/jobs:delete", RouteId::kBulkDelete},
        RouteCase{http::verb::get, "/v1/audit", RouteId::kListAudit},
        RouteCase{http::verb::get, "/v1/audit?after=3&limit=10", RouteId::kListAudit},
        RouteCase{http::verb::get, "/v1/audit/checkpoint", RouteId::kAuditCheckpoint},
        RouteCase{http::verb::get, "/v1/info", RouteId::kInfo},
        RouteCase{http::verb::get, "/healthz", RouteId::kHealthz},
        RouteCase{http::verb::get, "/readyz", RouteId::kReadyz},
        RouteCase{http::verb::get, "/metrics", RouteId::kMetrics},
        // Queue names may contain ':'; a known verb suffix still wins.
        RouteCase{http::verb::get, "/v1/queues/a:b", RouteId::kGetQueue, 0, "a:b"},
        RouteCase{http::verb::put, "/v1/queues/a:b", RouteId::kPutQueue, 0, "a:b"},
        RouteCase{http::verb::post, "/v1/queues/a:b:pause", RouteId::kPauseQueue, 0, "a:b"},
        RouteCase{http::verb::get, "/v1/queues/x%3Apause", RouteId::kGetQueue, 0, "x:pause"},
        RouteCase{http::verb::get, "/v1/jobs/%34%32", RouteId::kGetJob, 42}));

TEST(Router, UnknownPathsAre404) {
  for (std::string_view target :
       {"/", "", "/v1", "/v2/jobs", "/v1/jobs/", "//v1/jobs", "/v1/jobs/42/x", "/v1/jobs/42:bogus",
        "/v1/jobs:bogus", "/v1/jobs/:ack", "/V1/JOBS", "/healthz/", "v1/jobs", "/v1/queues/"}) {
    RouteOutcome out = Route(http::verb::get, target);
    EXPECT_EQ(out.status.code(), Code::kNotFound) << target;
    EXPECT_EQ(out.match.id, RouteId::kUnmatched) << target;
    EXPECT_EQ(HttpStatus(out.status.code()), 404);
  }
}

TEST(Router, WrongMethodIs405WithAllow) {
  struct Case {
    http::verb method;
    std::string_view target;
    std::string_view allow;
  };
  for (const Case& c :
       {Case{http::verb::delete_, "/v1/jobs", "POST, GET"},
        Case{http::verb::put, "/v1/jobs?queue=a", "POST, GET"},
        Case{http::verb::get, "/v1/jobs:batch", "POST"},
        Case{http::verb::get, "/v1/jobs/42:ack", "POST"},
        Case{http::verb::post, "/v1/jobs/42", "GET"},
        Case{http::verb::post, "/v1/queues/a", "GET, PUT, DELETE"},
        Case{http::verb::get, "/v1/queues/a:pause", "POST"},
        Case{http::verb::post, "/healthz", "GET"}, Case{http::verb::head, "/metrics", "GET"},
        Case{http::verb::delete_, "/v1/jobs/abc", "GET"}}) {
    RouteOutcome out = Route(c.method, c.target);
    EXPECT_EQ(out.status.code(), Code::kMethodNotAllowed) << c.target;
    EXPECT_EQ(out.allow, c.allow) << c.target;
    EXPECT_EQ(HttpStatus(out.status.code()), 405);
  }
}

TEST(Router, BadPathParametersAre400) {
  for (std::string_view target : {"/v1/jobs/abc", "/v1/jobs/0", "/v1/jobs/-1", "/v1/jobs/4x2",
                                  "/v1/jobs/18446744073709551616", "/v1/jobs/%zz"}) {
    RouteOutcome out = Route(http::verb::get, target);
    EXPECT_EQ(out.status.code(), Code::kInvalidRequest) << target;
    EXPECT_EQ(out.match.id, RouteId::kGetJob);
    EXPECT_EQ(HttpStatus(out.status.code()), 400);
  }
  RouteOutcome ack = Route(http::verb::post, "/v1/jobs/abc:ack");
  EXPECT_EQ(ack.status.code(), Code::kInvalidRequest);
  EXPECT_EQ(ack.status.message(),
            "path parameter \"id\": \"abc\" is not a job id (a positive decimal integer)");
  EXPECT_EQ(Route(http::verb::get, "/v1/queues/a%20b").status.code(), Code::kInvalidRequest);
  EXPECT_EQ(Route(http::verb::post, "/v1/queues/a%2Fb:pause").status.code(), Code::kInvalidRequest);
  EXPECT_EQ(Route(http::verb::get, "/v1/queues/%zz").status.code(), Code::kInvalidRequest);
  std::string long_name = "/v1/queues/" + std::string(129, 'q');
  EXPECT_EQ(Route(http::verb::get, long_name).status.code(), Code::kInvalidRequest);
}

TEST(Router, QueryOnlyWhereTheRouteTakesOne) {
  RouteOutcome out = Route(http::verb::post, "/v1/jobs?debug=1");
  EXPECT_EQ(out.status.code(), Code::kInvalidRequest);
  EXPECT_TRUE(Route(http::verb::post, "/v1/jobs?").status.ok());
  RouteOutcome list = Route(http::verb::get, "/v1/jobs?queue=a&limit=5");
  ASSERT_TRUE(list.status.ok());
  EXPECT_EQ(list.match.query, "queue=a&limit=5");
}

TEST(Router, BodyOverTheLimitIs413) {
  RouteOutcome out = Route(http::verb::post, "/v1/jobs", 1025, "application/json", 1024);
  EXPECT_EQ(out.status.code(), Code::kPayloadTooLarge);
  EXPECT_EQ(HttpStatus(out.status.code()), 413);
  EXPECT_TRUE(Route(http::verb::post, "/v1/jobs", 1024, "application/json", 1024).status.ok());
}

TEST(Router, NonJsonBodyIs415) {
  for (std::string_view ct :
       {"", "text/plain", "application/jsonx", "application/x-www-form-urlencoded", "json",
        "application/json-seq"}) {
    RouteOutcome out = Route(http::verb::post, "/v1/jobs", 10, ct);
    EXPECT_EQ(out.status.code(), Code::kUnsupportedMediaType) << ct;
    EXPECT_EQ(HttpStatus(out.status.code()), 415);
  }
  for (std::string_view ct : {"application/json", "application/json; charset=utf-8",
                              "Application/JSON;charset=UTF-8", " application/json "}) {
    EXPECT_TRUE(Route(http::verb::post, "/v1/jobs", 10, ct).status.ok()) << ct;
  }
  // An empty body needs no content type (cancel, replay, pause, resume take none).
  EXPECT_TRUE(Route(http::verb::post, "/v1/jobs/4:cancel", 0, "").status.ok());
}

TEST(Router, ChecksRunInOrder) {
  // 404 before 413/415; 405 before 400; 400 before 413.
  EXPECT_EQ(Route(http::verb::post, "/nope", 5000, "text/plain").status.code(), Code::kNotFound);
  EXPECT_EQ(Route(http::verb::put, "/v1/jobs/abc", 5000, "").status.code(),
            Code::kMethodNotAllowed);
  EXPECT_EQ(Route(http::verb::post, "/v1/jobs/abc:ack", 5000, "").status.code(),
            Code::kInvalidRequest);
  EXPECT_EQ(Route(http::verb::post, "/v1/jobs", 5000, "text/plain").status.code(),
            Code::kPayloadTooLarge);
}

TEST(Router, LabelsAreBounded) {
  EXPECT_EQ(RouteLabel(RouteId::kAck), "POST /v1/jobs/{id}:ack");
  EXPECT_EQ(RouteLabel(RouteId::kUnmatched), "unmatched");
  for (std::size_t i = 0; i < kRouteCount; ++i) {
    EXPECT_FALSE(RouteLabel(static_cast<RouteId>(i)).empty());
  }
}

TEST(Router, ErrorMessagesQuoteUserBytesSafely) {
  RouteOutcome out = Route(http::verb::get, "/v1/jobs/\xff\x01");
  EXPECT_EQ(out.status.code(), Code::kInvalidRequest);
  EXPECT_NE(out.status.message().find("%FF%01"), std::string::npos) << out.status.message();
}

TEST(ErrorResponse, MapsCodesToStatusAndBody) {
  ApiResponse r = ErrorResponse(NotFound("job 9"), RouteId::kGetJob);
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"job 9"}})");
  EXPECT_EQ(r.route, RouteId::kGetJob);
  ApiResponse busy = ErrorResponse(Status(Code::kResourceExhausted, "namespace quota"));
  EXPECT_EQ(busy.status, 429u);
  ASSERT_EQ(busy.headers.size(), 1u);
  EXPECT_EQ(busy.headers[0].first, "Retry-After");
  EXPECT_EQ(ErrorResponse(StaleLease("x")).status, 409u);
  EXPECT_EQ(ErrorResponse(Status(Code::kUnsupportedMediaType, "x")).status, 415u);
  EXPECT_EQ(ErrorResponse(Validation("x")).status, 422u);
  EXPECT_EQ(ErrorResponse(Unavailable("x")).status, 503u);
}

}  // namespace
}  // namespace ym::net
