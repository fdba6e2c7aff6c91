// Authorization (net/authz.h): the role matrix against docs/security.md's table, and every
// route called by every role with a token of one namespace, on a job (queue, schedule...) of
// that namespace and of another, through the real Api and Broker (on a MemoryStore).
//
// The matrix test reads the table between the authz-matrix markers of docs/security.md, so the
// document and the code cannot drift apart. The Api tests inject the Principal directly (the
// transport's token lookup is not needed to decide what a principal may do).
#include "net/authz.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "net/api.h"
#include "server/broker.h"
#include "server/token_service.h"
#include "store/memory_store.h"

namespace ym::net {
namespace {

namespace http = boost::beast::http;

constexpr Role kRoles[] = {Role::kAdmin, Role::kOperator, Role::kProducer, Role::kWorker,
                           Role::kViewer};

// --- The documented matrix.

struct MatrixRow {
  std::string label;  // "POST /v1/jobs"
  std::map<Role, bool> may;
  std::string scope;
};

std::string Trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::vector<MatrixRow> DocumentedMatrix() {
  std::ifstream in(std::string(YM_SOURCE_DIR) + "/docs/security.md");
  EXPECT_TRUE(in.good()) << "cannot read docs/security.md";
  std::vector<MatrixRow> rows;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.find("<!-- authz-matrix:begin -->") != std::string::npos) {
      inside = true;
      continue;
    }
    if (line.find("<!-- authz-matrix:end -->") != std::string::npos) break;
    if (!inside || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) cells.push_back(Trim(cell));
    if (!cells.empty() && cells.back().empty()) cells.pop_back();
    EXPECT_EQ(cells.size(), 7u) << line;
    if (cells.size() != 7) continue;
    MatrixRow row;
    row.label = cells[0].substr(1, cells[0].size() - 2);  // without the backquotes
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_TRUE(cells[i + 1] == "yes" || cells[i + 1] == "no") << line;
      row.may[kRoles[i]] = cells[i + 1] == "yes";
    }
    row.scope = cells[6];
    rows.push_back(row);
  }
  return rows;
}

std::optional<RouteId> RouteByLabel(std::string_view label) {
  for (std::size_t i = 0; i + 1 < kRouteCount; ++i) {
    const auto id = static_cast<RouteId>(i);
    if (RouteLabel(id) == label) return id;
  }
  return std::nullopt;
}

TEST(AuthzMatrix, TheDocumentedTableIsTheCodesMatrix) {
  const std::vector<MatrixRow> rows = DocumentedMatrix();
  ASSERT_EQ(rows.size(), kRouteCount - 1) << "one row per route of net/router.h";
  std::set<RouteId> seen;
  for (const MatrixRow& row : rows) {
    const std::optional<RouteId> id = RouteByLabel(row.label);
    ASSERT_TRUE(id.has_value()) << "no route " << row.label;
    EXPECT_TRUE(seen.insert(*id).second) << "twice: " << row.label;
    for (Role r : kRoles) {
      EXPECT_EQ(RoleMay(r, *id), row.may.at(r)) << row.label << " / " << RoleName(r);
    }
    EXPECT_EQ(NsRuleName(AccessFor(*id).ns), row.scope) << row.label;
  }
  EXPECT_EQ(AccessFor(RouteId::kUnmatched).roles, 0);
}

TEST(AuthzMatrix, AdminMayCallEveryRouteAndProbesAreOpen) {
  for (std::size_t i = 0; i + 1 < kRouteCount; ++i) {
    EXPECT_TRUE(RoleMay(Role::kAdmin, static_cast<RouteId>(i))) << i;
  }
  for (RouteId id : {RouteId::kLivez, RouteId::kReadyz, RouteId::kHealthz}) {
    for (Role r : kRoles) EXPECT_TRUE(RoleMay(r, id));
    EXPECT_EQ(AccessFor(id).ns, NsRule::kOpen);
  }
}

Principal Token(Role role, std::vector<std::string> namespaces) {
  Principal p;
  p.token_name = "t";
  p.token_id = "id";
  p.role = role;
  p.all_namespaces = namespaces.empty();
  std::sort(namespaces.begin(), namespaces.end());
  p.namespaces = std::move(namespaces);
  p.authenticated = true;
  return p;
}

TEST(AuthzMatrix, ADenialNamesTheRoleAndTheRouteOnly) {
  Status s = CheckRoute(Token(Role::kViewer, {}), RouteId::kEnqueue);
  EXPECT_EQ(s.code(), Code::kForbidden);
  EXPECT_EQ(s.message(), "role viewer may not call POST /v1/jobs (docs/security.md, \"Roles\")");
  s = CheckRoute(Token(Role::kViewer, {"a"}), RouteId::kListQueues);
  EXPECT_EQ(s.code(), Code::kForbidden);
  EXPECT_NE(s.message().find("GET /v1/queues"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckRoute(Token(Role::kViewer, {}), RouteId::kListQueues).ok());
  // A namespace's configuration: its own only; the name from the path is not echoed.
  EXPECT_TRUE(CheckRoute(Token(Role::kViewer, {"a"}), RouteId::kGetNamespace, "a").ok());
  s = CheckRoute(Token(Role::kViewer, {"a"}), RouteId::kGetNamespace, "b\x01");
  EXPECT_EQ(s.code(), Code::kForbidden);
  EXPECT_EQ(s.message().find('\x01'), std::string::npos);
  EXPECT_EQ(HttpStatus(Code::kForbidden), 403);
  EXPECT_EQ(CodeName(Code::kForbidden), "forbidden");
}

TEST(AuthzMatrix, AJobFilterIsNarrowedToTheTokensNamespaces) {
  JobFilter f;
  EXPECT_TRUE(ScopeJobFilter(Token(Role::kViewer, {}), f).ok());
  EXPECT_EQ(f.ns, "");  // all namespaces: untouched
  EXPECT_TRUE(ScopeJobFilter(Token(Role::kViewer, {"a"}), f).ok());
  EXPECT_EQ(f.ns, "a");  // the token's only namespace
  f.ns = "b";
  EXPECT_EQ(ScopeJobFilter(Token(Role::kViewer, {"a"}), f).code(), Code::kForbidden);
  EXPECT_EQ(f.ns, "b");
  f.ns = "";
  EXPECT_EQ(ScopeJobFilter(Token(Role::kViewer, {"a", "c"}), f).code(), Code::kForbidden);
  f.ns = "c";
  EXPECT_TRUE(ScopeJobFilter(Token(Role::kViewer, {"a", "c"}), f).ok());
  EXPECT_EQ(f.ns, "c");
}

TEST(AuthzMatrix, ReservedQueueNames) {
  EXPECT_TRUE(IsReservedQueue("_ym.alerts"));
  EXPECT_TRUE(IsReservedQueue("_ym."));
  EXPECT_FALSE(IsReservedQueue("_ym"));
  EXPECT_FALSE(IsReservedQueue("ym.alerts"));
  EXPECT_FALSE(IsReservedQueue("x_ym.alerts"));
  EXPECT_EQ(ReservedQueue("_ym.alerts", "enqueue into").code(), Code::kForbidden);
}

// --- Through the Api.

// Runs the Api's posted tasks on a thread of its own (as the transport's threads do).
class Executor {
 public:
  Executor() : thread_([this] { Run(); }) {}
  ~Executor() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

struct Reply {
  unsigned status = 0;
  std::string body;
  rapidjson::Document json;
  std::string Code() const {
    if (!json.IsObject() || !json.HasMember("error")) return "";
    return json["error"]["code"].GetString();
  }
};

class AuthzApiTest : public testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Broker>(store_, clock_, BrokerOptions{});
    ASSERT_TRUE(broker_->Start().ok());
    tokens_ = std::make_unique<TokenService>(*broker_, clock_);
    ApiOptions o;
    o.post = [this](std::function<void()> t) { executor_.Post(std::move(t)); };
    o.metrics_renderer = [] { return std::string("ym_up 1\n"); };
    o.tokens = tokens_.get();
    api_ = std::make_unique<Api>(*broker_, o);
  }
  void TearDown() override {
    tokens_->Stop();
    broker_->Stop();
  }

  Reply Send(const Principal& p, http::verb method, const std::string& target,
             const std::string& body = "") {
    ApiRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (method != http::verb::get) r.content_type = "application/json";
    r.principal = p;
    auto done = std::make_shared<std::promise<ApiResponse>>();
    auto f = done->get_future();
    api_->Handle(std::move(r), [done](ApiResponse resp) { done->set_value(std::move(resp)); });
    Reply out;
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer to " << target;
      return out;
    }
    ApiResponse resp = f.get();
    out.status = resp.status;
    out.body = resp.body;
    out.json.Parse(out.body.c_str());
    return out;
  }
  Reply Get(const Principal& p, const std::string& target) {
    return Send(p, http::verb::get, target);
  }
  Reply Post(const Principal& p, const std::string& target, const std::string& body = "") {
    return Send(p, http::verb::post, target, body);
  }

  // Admin-made fixtures, each under names of its own (`n`).
  std::string Unique(const std::string& prefix) { return prefix + std::to_string(++counter_); }

  std::string Enqueue(const std::string& ns, const std::string& queue,
                      const std::string& extra = "") {
    Reply r = Post(admin_, "/v1/jobs",
                   R"({"namespace":")" + ns + R"(","queue":")" + queue +
                       R"(","kind":"k","payload":{"n":1})" + extra + "}");
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.json.IsObject() && r.json.HasMember("id") ? r.json["id"].GetString() : "";
  }
  // Leases the one job of `queue` (waiting for it: an enqueue is answered once durable, and the
  // job becomes dispatchable on the core thread right after): its token.
  std::string LeaseOne(const std::string& queue, const std::string& worker = "w") {
    Reply r = Post(admin_, "/v1/leases",
                   R"({"queues":[")" + queue + R"("],"max":1,"wait_ms":10000,"worker_id":")" +
                       worker + R"("})");
    EXPECT_EQ(r.status, 200u) << r.body;
    if (!r.json.IsObject() || !r.json.HasMember("jobs") || r.json["jobs"].Size() != 1) {
      ADD_FAILURE() << r.body;
      return "";
    }
    return r.json["jobs"][0]["lease"]["token"].GetString();
  }
  std::string DeadJob(const std::string& ns, const std::string& queue) {
    const std::string id = Enqueue(ns, queue, R"(,"max_attempts":1)");
    const std::string token = LeaseOne(queue);
    Reply r = Post(admin_, "/v1/jobs/" + id + ":fail",
                   R"({"token":")" + token + R"(","error":{"message":"x"}})");
    EXPECT_EQ(r.status, 200u) << r.body;
    return id;
  }

  MemoryStore store_;
  SystemClock clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<TokenService> tokens_;
  Executor executor_;
  std::unique_ptr<Api> api_;
  Principal admin_;  // the anonymous principal: admin, all namespaces
  int counter_ = 0;
};

// One request per route, made for namespace `ns`: the job, queue, schedule... it names belongs
// to `ns` (made by the admin first). `id` is the job id the request names, if any.
struct Prepared {
  http::verb method = http::verb::get;
  std::string target;
  std::string body;
  std::string id;
};

class AuthzRbacTest : public AuthzApiTest {
 protected:
  Prepared Prepare(RouteId route, const std::string& ns) {
    const std::string q = Unique("q");
    const auto job = [&](const std::string& verb) {
      Prepared p;
      p.method = verb.empty() ? http::verb::get : http::verb::post;
      p.id = Enqueue(ns, q);
      p.target = "/v1/jobs/" + p.id + verb;
      return p;
    };
    const auto leased = [&](const std::string& verb, const std::string& extra) {
      Prepared p = job(verb);
      p.body = R"({"token":")" + LeaseOne(q) + "\"" + extra + "}";
      return p;
    };
    const auto post = [](std::string target, std::string body = "") {
      return Prepared{http::verb::post, std::move(target), std::move(body), ""};
    };
    const auto get = [](std::string target) {
      return Prepared{http::verb::get, std::move(target), "", ""};
    };
    const auto limit = [&](const std::string& extra) {
      const std::string name = Unique("l");
      Reply r = Send(admin_, http::verb::put, "/v1/limits/" + name,
                     R"({"match":{"queue":"unused"},"concurrency":5)" + extra + "}");
      EXPECT_LT(r.status, 300u) << r.body;
      return name;
    };
    const auto schedule = [&]() {
      const std::string id = Unique("s");
      Reply r = Post(admin_, "/v1/schedules", ScheduleBody(id, ns, q));
      EXPECT_EQ(r.status, 201u) << r.body;
      return id;
    };
    const std::string filter = R"({"namespace":")" + ns + R"(","queue":")" + q + R"("})";
    switch (route) {
      case RouteId::kEnqueue:
        return post("/v1/jobs",
                    R"({"namespace":")" + ns + R"(","queue":")" + q + R"(","kind":"k"})");
      case RouteId::kEnqueueBatch:
        return post("/v1/jobs:batch", R"({"jobs":[{"namespace":")" + ns + R"(","queue":")" + q +
                                          R"(","kind":"k"}]})");
      case RouteId::kBulkCancel:
        Enqueue(ns, q);
        return post("/v1/jobs:cancel", filter);
      case RouteId::kBulkReplay:
        DeadJob(ns, q);
        return post("/v1/jobs:replay", filter);
      case RouteId::kBulkDelete:
        DeadJob(ns, q);
        return post("/v1/jobs:delete", filter);
      case RouteId::kListJobs:
        Enqueue(ns, q);
        return get("/v1/jobs?namespace=" + ns);
      case RouteId::kGetJob:
        return job("");
      case RouteId::kCancelJob:
        return job(":cancel");
      case RouteId::kReplayJob: {
        Prepared p = job(":replay");
        EXPECT_EQ(Post(admin_, "/v1/jobs/" + p.id + ":cancel").status, 200u);
        return p;
      }
      case RouteId::kLease: {
        Prepared p = post("/v1/leases", R"({"queues":[")" + q + R"("],"max":5,"wait_ms":1000})");
        p.id = Enqueue(ns, q);
        return p;
      }
      case RouteId::kHeartbeat:
        return leased(":heartbeat", "");
      case RouteId::kWatchCancels: {
        const std::string worker = Unique("w");
        Prepared p = post("/v1/cancels:watch", R"({"worker_id":")" + worker + R"("})");
        p.id = Enqueue(ns, q);
        LeaseOne(q, worker);
        EXPECT_EQ(Post(admin_, "/v1/jobs/" + p.id + ":cancel").status, 200u);
        return p;
      }
      case RouteId::kAck:
        return leased(":ack", "");
      case RouteId::kFail:
        return leased(":fail", R"(,"error":{"message":"x"})");
      case RouteId::kCompleteBatch: {
        Prepared p = post("/v1/acks:batch");
        p.id = Enqueue(ns, q);
        p.body = R"({"acks":[{"id":")" + p.id + R"(","token":")" + LeaseOne(q) + R"("}]})";
        return p;
      }
      case RouteId::kListQueues:
        return get("/v1/queues");
      case RouteId::kGetQueue:
        Enqueue(ns, q);
        return get("/v1/queues/" + q);
      case RouteId::kPutQueue:
        return Prepared{http::verb::put, "/v1/queues/" + q + "?create=true", R"({"weight":2})", ""};
      case RouteId::kPauseQueue:
        return post("/v1/queues/" + q + ":pause?create=true");
      case RouteId::kResumeQueue:
        return post("/v1/queues/" + q + ":resume?create=true");
      case RouteId::kResetQueue:
        Enqueue(ns, q);
        return Prepared{http::verb::delete_, "/v1/queues/" + q, "", ""};
      case RouteId::kListLimits:
        return get("/v1/limits");
      case RouteId::kGetLimit:
        return get("/v1/limits/" + limit(""));
      case RouteId::kPutLimit:
        return Prepared{
            http::verb::put, "/v1/limits/" + Unique("l"),
            R"({"match":{"namespace":")" + ns + R"(","queue":"unused"},"concurrency":2})", ""};
      case RouteId::kDeleteLimit:
        return Prepared{http::verb::delete_, "/v1/limits/" + limit(""), "", ""};
      case RouteId::kResetBreaker:
        return post("/v1/limits/" + limit(R"(,"breaker":{})") + ":reset-breaker");
      case RouteId::kListNamespaces:
        return get("/v1/namespaces");
      case RouteId::kGetNamespace:
        EXPECT_LT(Send(admin_, http::verb::put, "/v1/namespaces/" + ns, R"({"weight":1})").status,
                  300u);
        return get("/v1/namespaces/" + ns);
      case RouteId::kPutNamespace:
        return Prepared{http::verb::put, "/v1/namespaces/" + ns, R"({"weight":2})", ""};
      case RouteId::kDeleteNamespace:
        EXPECT_LT(Send(admin_, http::verb::put, "/v1/namespaces/" + ns, R"({"weight":1})").status,
                  300u);
        return Prepared{http::verb::delete_, "/v1/namespaces/" + ns, "", ""};
      case RouteId::kListSchedules:
        return get("/v1/schedules");
      case RouteId::kCreateSchedule:
        return post("/v1/schedules", ScheduleBody(Unique("s"), ns, q));
      case RouteId::kGetSchedule:
        return get("/v1/schedules/" + schedule());
      case RouteId::kPutSchedule: {
        const std::string id = schedule();
        return Prepared{http::verb::put, "/v1/schedules/" + id, ScheduleBody(id, ns, q), ""};
      }
      case RouteId::kPatchSchedule:
        return Prepared{http::verb::patch, "/v1/schedules/" + schedule(), R"({"jitter_ms":5})", ""};
      case RouteId::kDeleteSchedule:
        return Prepared{http::verb::delete_, "/v1/schedules/" + schedule(), "", ""};
      case RouteId::kPauseSchedule:
        return post("/v1/schedules/" + schedule() + ":pause");
      case RouteId::kResumeSchedule:
        return post("/v1/schedules/" + schedule() + ":resume");
      case RouteId::kTriggerSchedule:
        return post("/v1/schedules/" + schedule() + ":trigger");
      case RouteId::kBackfillSchedule: {
        const std::int64_t now = clock_.NowMs();
        return post("/v1/schedules/" + schedule() + ":backfill",
                    R"({"from":)" + std::to_string(now - 3'600'000) + R"(,"to":)" +
                        std::to_string(now) + "}");
      }
      case RouteId::kListDead:
        DeadJob(ns, q);
        return get("/v1/dead?namespace=" + ns);
      case RouteId::kReplayDead: {
        Prepared p = post("/v1/dead:replay");
        p.id = DeadJob(ns, q);
        p.body = R"({"ids":[")" + p.id + R"("]})";
        return p;
      }
      case RouteId::kListAlerts:
        return get("/v1/alerts");
      case RouteId::kExportNamespace:
        return get("/v1/namespaces/" + ns + "/export");
      case RouteId::kWipeNamespace:
        return post("/v1/namespaces/" + ns + ":wipe", R"({"confirm":")" + ns + R"("})");
      case RouteId::kListTokens:
        return get("/v1/tokens");
      case RouteId::kCreateToken:
        return post("/v1/tokens", R"({"name":")" + Unique("t") + R"(","role":"viewer"})");
      case RouteId::kRevokeToken: {
        Reply r =
            Post(admin_, "/v1/tokens", R"({"name":")" + Unique("t") + R"(","role":"viewer"})");
        EXPECT_EQ(r.status, 201u) << r.body;
        const std::string id =
            r.json.IsObject() && r.json.HasMember("id") ? r.json["id"].GetString() : "";
        return Prepared{http::verb::delete_, "/v1/tokens/" + id, "", ""};
      }
      case RouteId::kListAudit:
        return get("/v1/audit");
      case RouteId::kAuditCheckpoint:
        return get("/v1/audit/checkpoint");
      case RouteId::kInfo:
        return get("/v1/info");
      case RouteId::kHealthz:
        return get("/healthz");
      case RouteId::kLivez:
        return get("/livez");
      case RouteId::kReadyz:
        return get("/readyz");
      case RouteId::kMetrics:
        return get("/metrics");
      case RouteId::kUnmatched:
        break;
    }
    ADD_FAILURE() << "no request for route " << RouteLabel(route);
    return {};
  }

  static std::string ScheduleBody(const std::string& id, const std::string& ns,
                                  const std::string& q) {
    return R"({"id":")" + id + R"(","cron":"0 * * * *","job":{"namespace":")" + ns +
           R"(","queue":")" + q + R"(","kind":"k"}})";
  }

  Reply Run(const Principal& p, const Prepared& r) { return Send(p, r.method, r.target, r.body); }

  // The answer for a job id that was never issued, with `id` written in its place.
  std::string MissingAnswer(const Prepared& r) {
    const std::string missing = "987654321";
    Prepared m = r;
    m.target.replace(m.target.find(r.id), r.id.size(), missing);
    Reply a = Run(admin_, m);
    EXPECT_EQ(a.status, 404u) << a.body;
    std::string body = a.body;
    body.replace(body.find(missing), missing.size(), r.id);
    return body;
  }
};

// Every route x every role x (own namespace, another namespace), against the documented
// matrix: a denied role is 403 `forbidden` naming role and route; an allowed one succeeds with
// a token of all namespaces and, with a token of namespace "a", does what the route's scope
// rule says on a's and on b's things.
TEST_F(AuthzRbacTest, EveryRouteEveryRoleOwnAndForeignNamespace) {
  const std::vector<MatrixRow> rows = DocumentedMatrix();
  ASSERT_EQ(rows.size(), kRouteCount - 1);
  for (const MatrixRow& row : rows) {
    const RouteId route = *RouteByLabel(row.label);
    for (Role role : kRoles) {
      SCOPED_TRACE(row.label + " as " + std::string(RoleName(role)));
      const Principal scoped = Token(role, {"a"});
      if (!row.may.at(role)) {
        for (const Principal& p : {scoped, Token(role, {})}) {
          Reply r = Run(p, Prepare(route, "a"));
          EXPECT_EQ(r.status, 403u) << r.body;
          EXPECT_EQ(r.Code(), "forbidden");
          EXPECT_NE(r.body.find("role " + std::string(RoleName(role))), std::string::npos);
          EXPECT_NE(r.body.find(row.label), std::string::npos) << r.body;
        }
        continue;
      }
      // Allowed: with all namespaces, it works.
      {
        Reply r = Run(Token(role, {}), Prepare(route, "a"));
        EXPECT_LT(r.status, 300u) << r.body;
      }
      const Prepared own = Prepare(route, "a");
      const Prepared foreign = Prepare(route, "b");
      const std::string hidden = row.scope == "job" ? MissingAnswer(foreign) : "";
      Reply mine = Run(scoped, own);
      Reply theirs = Run(scoped, foreign);
      if (row.scope == "open") {
        EXPECT_EQ(mine.status, 200u);
        EXPECT_EQ(theirs.status, 200u);
      } else if (row.scope == "global") {
        EXPECT_EQ(mine.status, 403u) << mine.body;
        EXPECT_EQ(mine.Code(), "forbidden");
        EXPECT_EQ(theirs.status, 403u) << theirs.body;
      } else if (row.scope == "body" || row.scope == "filter" || row.scope == "namespace") {
        EXPECT_LT(mine.status, 300u) << mine.body;
        EXPECT_EQ(theirs.status, 403u) << theirs.body;
        EXPECT_EQ(theirs.Code(), "forbidden");
      } else if (row.scope == "job") {
        EXPECT_LT(mine.status, 300u) << mine.body;
        EXPECT_EQ(theirs.status, 404u) << theirs.body;
        EXPECT_EQ(theirs.body, hidden) << "a foreign job must look like a missing one";
      } else if (row.scope == "jobs" && route == RouteId::kCompleteBatch) {
        ASSERT_EQ(mine.status, 200u) << mine.body;
        EXPECT_TRUE(mine.json["acks"][0]["ok"].GetBool()) << mine.body;
        ASSERT_EQ(theirs.status, 200u) << theirs.body;
        ASSERT_TRUE(theirs.json["acks"][0].HasMember("error")) << theirs.body;
        EXPECT_EQ(std::string(theirs.json["acks"][0]["error"]["code"].GetString()), "not_found");
      } else if (row.scope == "jobs" && route == RouteId::kReplayDead) {
        ASSERT_EQ(mine.status, 200u) << mine.body;
        EXPECT_EQ(mine.json["replayed"].GetInt(), 1) << mine.body;
        ASSERT_EQ(theirs.status, 200u) << theirs.body;
        EXPECT_EQ(theirs.json["replayed"].GetInt(), 0) << theirs.body;
      } else if (row.scope == "lease") {
        ASSERT_EQ(mine.status, 200u) << mine.body;
        ASSERT_EQ(mine.json["jobs"].Size(), 1u) << mine.body;
        EXPECT_EQ(std::string(mine.json["jobs"][0]["id"].GetString()), own.id);
        ASSERT_EQ(theirs.status, 200u) << theirs.body;
        EXPECT_EQ(theirs.json["jobs"].Size(), 0u) << theirs.body;
      } else if (row.scope == "worker") {
        ASSERT_EQ(mine.status, 200u) << mine.body;
        EXPECT_NE(mine.body.find("\"" + own.id + "\""), std::string::npos) << mine.body;
        ASSERT_EQ(theirs.status, 200u) << theirs.body;
        EXPECT_EQ(theirs.body.find("\"" + foreign.id + "\""), std::string::npos) << theirs.body;
      } else {
        ADD_FAILURE() << "scope " << row.scope << " has no check";
      }
    }
  }
}

// The namespaces of a page's items.
std::set<std::string> Namespaces(const Reply& r) {
  std::set<std::string> out;
  if (!r.json.IsObject() || !r.json.HasMember("items")) return out;
  for (const auto& item : r.json["items"].GetArray()) out.insert(item["namespace"].GetString());
  return out;
}

TEST_F(AuthzApiTest, IdempotencyKeysCanBeNeitherHijackedNorProbed) {
  const std::string theirs = Enqueue("a", "q", R"(,"idempotency_key":"order-1")");
  const Principal b = Token(Role::kProducer, {"b"});
  const auto enqueue = [&](const std::string& ns, const std::string& key) {
    return Post(b, "/v1/jobs",
                R"({"namespace":")" + ns + R"(","queue":"q","kind":"k","idempotency_key":")" + key +
                    R"("})");
  };
  // Into a's namespace: refused whether the key exists there or not, with the same answer.
  Reply hijack = enqueue("a", "order-1");
  Reply probe = enqueue("a", "no-such-key");
  EXPECT_EQ(hijack.status, 403u) << hijack.body;
  EXPECT_EQ(hijack.Code(), "forbidden");
  EXPECT_EQ(hijack.body, probe.body);
  EXPECT_EQ(hijack.body.find(theirs), std::string::npos);
  Reply batch = Post(b, "/v1/jobs:batch",
                     R"({"jobs":[{"namespace":"a","queue":"q","kind":"k",)"
                     R"("idempotency_key":"order-1"}]})");
  EXPECT_EQ(batch.status, 403u) << batch.body;
  EXPECT_EQ(batch.body.find(theirs), std::string::npos);
  // Without a namespace the job goes to "default", which b does not have either.
  Reply implicit = Post(b, "/v1/jobs", R"({"queue":"q","kind":"k","idempotency_key":"order-1"})");
  EXPECT_EQ(implicit.status, 403u) << implicit.body;
  // In its own namespace the same key is its own: a new job, not a's.
  Reply own = enqueue("b", "order-1");
  ASSERT_EQ(own.status, 201u) << own.body;
  EXPECT_NE(std::string(own.json["id"].GetString()), theirs);
  EXPECT_FALSE(own.json.HasMember("duplicate")) << own.body;  // a new job (docs/api.md)
  Reply again = enqueue("b", "order-1");
  EXPECT_EQ(again.status, 200u) << again.body;
  ASSERT_TRUE(again.json.HasMember("duplicate")) << again.body;
  EXPECT_TRUE(again.json["duplicate"].GetBool());
  EXPECT_EQ(std::string(again.json["id"].GetString()), own.json["id"].GetString());
}

TEST_F(AuthzApiTest, ListsAndDeadLettersShowOnlyTheTokensNamespaces) {
  for (const std::string ns : {"a", "b"}) {
    Enqueue(ns, "shared");
    Enqueue(ns, "shared");
    DeadJob(ns, "dlq-" + ns);
  }
  const Principal a = Token(Role::kViewer, {"a"});
  Reply all = Get(a, "/v1/jobs");
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(all.json["items"].Size(), 3u) << all.body;
  EXPECT_EQ(Namespaces(all), (std::set<std::string>{"a"}));
  Reply by_queue = Get(a, "/v1/jobs?queue=shared");
  EXPECT_EQ(by_queue.json["items"].Size(), 2u) << by_queue.body;
  EXPECT_EQ(Namespaces(by_queue), (std::set<std::string>{"a"}));
  EXPECT_EQ(Get(a, "/v1/jobs?namespace=b").status, 403u);
  EXPECT_EQ(Get(a, "/v1/jobs?namespace=nobody").status, 403u);
  Reply dead = Get(a, "/v1/dead");
  ASSERT_EQ(dead.status, 200u) << dead.body;
  EXPECT_EQ(dead.json["items"].Size(), 1u) << dead.body;
  EXPECT_EQ(Namespaces(dead), (std::set<std::string>{"a"}));
  EXPECT_EQ(Get(a, "/v1/dead?queue=dlq-b").json["items"].Size(), 0u);
  EXPECT_EQ(Get(a, "/v1/dead?namespace=b").status, 403u);
  // Pages: the cursor of a page follows on with the same implicit namespace.
  Reply page = Get(a, "/v1/jobs?limit=2");
  ASSERT_EQ(page.status, 200u) << page.body;
  ASSERT_TRUE(page.json["next_cursor"].IsString()) << page.body;
  Reply next =
      Get(a, std::string("/v1/jobs?limit=2&cursor=") + page.json["next_cursor"].GetString());
  ASSERT_EQ(next.status, 200u) << next.body;
  EXPECT_EQ(page.json["items"].Size() + next.json["items"].Size(), 3u);
  EXPECT_EQ(Namespaces(next), (std::set<std::string>{"a"}));
  // Several namespaces: name one.
  const Principal ac = Token(Role::kViewer, {"a", "c"});
  Reply unnamed = Get(ac, "/v1/jobs");
  EXPECT_EQ(unnamed.status, 403u) << unnamed.body;
  EXPECT_EQ(unnamed.Code(), "forbidden");
  EXPECT_EQ(Namespaces(Get(ac, "/v1/jobs?namespace=a")), (std::set<std::string>{"a"}));
}

TEST_F(AuthzApiTest, BulkOperationsTouchOnlyTheTokensNamespaces) {
  std::vector<std::string> a_ids, b_ids;
  for (int i = 0; i < 2; ++i) {
    a_ids.push_back(Enqueue("a", "shared"));
    b_ids.push_back(Enqueue("b", "shared"));
  }
  const Principal a = Token(Role::kOperator, {"a"});
  EXPECT_EQ(Post(a, "/v1/jobs:cancel", R"({"namespace":"b"})").status, 403u);
  Reply r = Post(a, "/v1/jobs:cancel", R"({"queue":"shared"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json["matched"].GetInt(), 2) << r.body;
  Reply all = Post(a, "/v1/jobs:delete", R"({"all":true})");
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(all.json["deleted"].GetInt(), 2) << all.body;  // a's two cancelled jobs
  for (const std::string& id : a_ids) EXPECT_EQ(Get(admin_, "/v1/jobs/" + id).status, 404u);
  for (const std::string& id : b_ids) {
    Reply b = Get(admin_, "/v1/jobs/" + id);
    ASSERT_EQ(b.status, 200u) << b.body;
    EXPECT_EQ(std::string(b.json["state"].GetString()), "ready");
  }
  // Replaying dead letters by queue spans every namespace: ids only.
  const std::string dead_b = DeadJob("b", "dlq");
  EXPECT_EQ(Post(a, "/v1/dead:replay", R"({"queue":"dlq"})").status, 403u);
  Reply ids = Post(a, "/v1/dead:replay", R"({"ids":[")" + dead_b + R"("]})");
  ASSERT_EQ(ids.status, 200u) << ids.body;
  EXPECT_EQ(ids.json["replayed"].GetInt(), 0);
  EXPECT_EQ(std::string(Get(admin_, "/v1/jobs/" + dead_b).json["state"].GetString()), "dead");
}

TEST_F(AuthzApiTest, AWaitOnAForeignJobIsTheMissingAnswerAtOnce) {
  const std::string id = Enqueue("b", "q");
  const Principal a = Token(Role::kViewer, {"a"});
  // Not answered after the wait with the job (as it would be without the rule): at once, 404.
  Reply r = Get(a, "/v1/jobs/" + id + "?wait_ms=30000");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"job )" + id + R"( not found"}})");
}

TEST_F(AuthzApiTest, ReservedQueuesAreRefusedForEveryone) {
  for (const Principal& p : {admin_, Token(Role::kAdmin, {}), Token(Role::kOperator, {})}) {
    const auto forbidden = [&](http::verb m, const std::string& target, const std::string& body) {
      Reply r = Send(p, m, target, body);
      EXPECT_EQ(r.status, 403u) << target << " " << r.body;
      EXPECT_EQ(r.Code(), "forbidden");
      EXPECT_NE(r.body.find("reserved"), std::string::npos) << r.body;
    };
    forbidden(http::verb::post, "/v1/jobs", R"({"queue":"_ym.alerts","kind":"k"})");
    forbidden(http::verb::post, "/v1/jobs:batch",
              R"({"jobs":[{"queue":"fine","kind":"k"},{"queue":"_ym.alerts","kind":"k"}]})");
    forbidden(http::verb::post, "/v1/leases", R"({"queues":["fine","_ym.alerts"]})");
    forbidden(http::verb::put, "/v1/queues/_ym.alerts?create=true", R"({"weight":2})");
    forbidden(http::verb::post, "/v1/queues/_ym.alerts:pause?create=true", "");
    forbidden(http::verb::post, "/v1/queues/_ym.alerts:resume?create=true", "");
    forbidden(http::verb::delete_, "/v1/queues/_ym.alerts", "");
    forbidden(http::verb::put, "/v1/limits/l1",
              R"({"match":{"queue":"_ym.alerts"},"concurrency":1})");
    forbidden(http::verb::post, "/v1/schedules",
              R"({"id":"s1","cron":"0 * * * *","job":{"queue":"_ym.alerts","kind":"k"}})");
  }
  // Nothing of the batch was enqueued.
  EXPECT_EQ(Get(admin_, "/v1/jobs?queue=fine").json["items"].Size(), 0u);
  // A schedule cannot be moved onto a reserved queue either (PUT, PATCH), and stays as it was.
  ASSERT_EQ(Post(admin_, "/v1/schedules",
                 R"({"id":"s2","cron":"0 * * * *","job":{"queue":"fine","kind":"k"}})")
                .status,
            201u);
  Reply put = Send(admin_, http::verb::put, "/v1/schedules/s2",
                   R"({"id":"s2","cron":"0 * * * *","job":{"queue":"_ym.alerts","kind":"k"}})");
  EXPECT_EQ(put.status, 403u) << put.body;
  Reply patch = Send(admin_, http::verb::patch, "/v1/schedules/s2",
                     R"({"job":{"queue":"_ym.alerts","kind":"k"}})");
  EXPECT_EQ(patch.status, 403u) << patch.body;
  EXPECT_EQ(patch.Code(), "forbidden");
  Reply s2 = Get(admin_, "/v1/schedules/s2");
  EXPECT_EQ(std::string(s2.json["job"]["queue"].GetString()), "fine") << s2.body;
  // Reads stay allowed.
  EXPECT_NE(Get(Token(Role::kOperator, {}), "/v1/queues/_ym.alerts").status, 403u);
  EXPECT_EQ(Get(Token(Role::kViewer, {}), "/v1/jobs?queue=_ym.alerts").status, 200u);
}

}  // namespace
}  // namespace ym::net
