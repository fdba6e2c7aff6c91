// Api: the handlers of docs/api.md, transport-free. One request in, one response out.
//
// Each handler is thin: route (net/router.h), parse and validate (net/codec.h), call one Broker
// method, render. Api knows nothing of sockets; HttpServer feeds it, and tests may too.
//
// Ownership: the Broker and the options' hooks must outlive the Api. Threads: Handle() may be
// called from any thread concurrently (Api has no mutable state of its own). The `reply`
// callback runs exactly once, either inside Handle() (errors found before calling the Broker,
// health checks) or later on a Broker thread; it must not block.
#pragma once

#include <atomic>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/job.h"
#include "net/codec.h"
#include "net/principal.h"
#include "net/router.h"
#include "server/broker.h"

namespace ym::net {

struct ApiOptions {
  CodecLimits codec;
  std::size_t max_request_bytes = 16 << 20;
  // A list page stops before the job that would take its body past this (at least one job is
  // always sent); the cursor carries on.
  std::size_t max_reply_bytes = 8 << 20;
  // Renders the Prometheus text body of /metrics; when empty, /metrics serves an empty body.
  std::function<std::string()> metrics_renderer;
  // Renders the JSON body of GET /v1/alerts (server/alert_service.h); when empty, the server
  // runs no alert rules and answers {"alerts":[]}.
  std::function<std::string()> alerts_renderer;
  // Renders the JSON body of GET /v1/audit/checkpoint: a fresh checkpoint of the audit chain,
  // signed when a key is configured (server/audit_checkpoints.h). When empty, the route answers
  // an unsigned checkpoint of the broker's head.
  std::function<std::string()> audit_checkpoint_renderer;
  // Runs a task on the transport's own threads. Used when a Broker callback needs a second
  // Broker call (Broker callbacks must not call the Broker). When empty, the task runs inline,
  // which is only right for tests that drive the Api from one thread.
  std::function<void(std::function<void()>)> post;
  // Set while the HTTP server is shutting down: /readyz then answers 503. May be null.
  const std::atomic<bool>* server_stopping = nullptr;
};

struct ApiRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;        // path and query as sent
  std::string content_type;  // the Content-Type header, empty if absent
  // The W3C trace context headers, every value as received (empty: absent); only the enqueue
  // routes read them (net/codec.h, ParseTraceHeaders).
  std::vector<std::string> traceparent;
  std::vector<std::string> tracestate;
  std::string body;
  // The request's id (net/request_log.h): the client's X-Request-Id when valid, else generated
  // by the transport. Handlers put it in the request's log lines.
  std::string request_id;
  // Who sent it (net/principal.h): the anonymous full-access principal unless the transport
  // authenticated a token. The peer's address as text ("127.0.0.1", "::1"; empty when unknown).
  Principal principal;
  std::string remote_address;
};

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Allow, Retry-After
  RouteId route = RouteId::kUnmatched;
  // Leases this response hands out: if it cannot be delivered, the transport returns them with
  // Broker::Release so the jobs are ready again at once instead of after their lease expires.
  std::vector<std::pair<JobId, std::uint64_t>> leases;
};

using Responder = std::function<void(ApiResponse)>;

// The response for an error: the JSON error body, HttpStatus(code), Retry-After for 429.
ApiResponse ErrorResponse(const Status& status, RouteId route = RouteId::kUnmatched);

class Api {
 public:
  Api(Broker& broker, ApiOptions options);
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  void Handle(ApiRequest request, Responder reply);

  const ApiOptions& options() const { return options_; }

 private:
  Broker& broker_;
  const ApiOptions options_;
};

}  // namespace ym::net
