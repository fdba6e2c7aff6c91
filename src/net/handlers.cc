// The handlers behind the route table (net/router.cc): parse, call one Broker method, render.
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "common/json.h"
#include "net/api.h"
#include "net/authz.h"
#include "net/codec_audit.h"
#include "net/codec_schedules.h"
#include "net/export_stream.h"
#include "net/request_log.h"
#include "net/token_codec.h"

namespace ym::net {
namespace {

ApiResponse Json(unsigned status, std::string body, RouteId route) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  r.route = route;
  return r;
}

// Everything a handler needs; Responder and the request are moved into Broker callbacks.
struct Call {
  Broker& broker;
  const ApiOptions& options;
  RouteMatch match;
  ApiRequest request;
  Responder reply;

  void Error(const Status& s) { reply(ErrorResponse(s, match.id)); }
  // The audit entry of this privileged request (server/audit_note.h): who (the token's name,
  // or "anonymous" while authentication is off), from where, its request id. `detail` is a
  // JSON object and never holds a payload or a secret.
  AuditNote Audit(std::string action, std::string target, std::string detail = "{}") const {
    AuditNote n;
    n.enabled = true;
    n.actor = request.principal.token_name.empty() ? std::string(audit::kAnonymousActor)
                                                   : request.principal.token_name;
    n.remote = request.remote_address;
    n.request_id = request.request_id;
    n.action = std::move(action);
    n.target = std::move(target);
    n.detail = std::move(detail);
    return n;
  }
  void Ok(std::string body, unsigned status = 200) {
    reply(Json(status, std::move(body), match.id));
  }
};

// --- Namespace scoping (net/authz.h, docs/security.md "Namespace scoping").

// What a token without all namespaces is told about a job it may not see: exactly the answer for
// an id that was never issued, so that it cannot tell another namespace's job from no job.
Status HiddenJob(JobId id) { return NotFound("job " + FormatJobId(id) + " not found"); }

bool Scoped(const Call& c) { return !c.request.principal.all_namespaces; }

// Runs `task` on a transport thread (a Broker callback must not call the Broker).
void PostTask(const ApiOptions& options, std::function<void()> task) {
  if (options.post) {
    options.post(std::move(task));
  } else {
    task();
  }
}

// Which of `ids` are jobs of the principal's namespaces: one GetJob per distinct id, answered
// (on a transport thread) with visible[i] for ids[i]. An id that is not found is not visible.
// Any other error (the store unavailable) is answered as the error.
void LookupVisible(Broker& broker, const ApiOptions& options, const Principal& principal,
                   std::vector<JobId> ids, std::function<void(Result<std::vector<bool>>)> done) {
  struct State {
    std::mutex mu;
    std::vector<JobId> ids;
    std::vector<bool> visible;
    std::size_t left = 0;
    Status error;
    std::function<void(Result<std::vector<bool>>)> done;
  };
  auto st = std::make_shared<State>();
  st->ids = std::move(ids);
  st->visible.assign(st->ids.size(), false);
  st->done = std::move(done);
  std::vector<JobId> distinct = st->ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.empty()) return st->done(std::vector<bool>{});
  st->left = distinct.size();
  for (JobId id : distinct) {
    broker.GetJob(id, [st, id, principal, &options](Result<JobView> r) {
      bool last = false;
      {
        std::lock_guard<std::mutex> lock(st->mu);
        if (r.ok()) {
          if (principal.CanUseNamespace(r->job.ns)) {
            for (std::size_t i = 0; i < st->ids.size(); ++i) {
              if (st->ids[i] == id) st->visible[i] = true;
            }
          }
        } else if (r.status().code() != Code::kNotFound && st->error.ok()) {
          st->error = r.status();
        }
        last = --st->left == 0;
      }
      if (!last) return;
      PostTask(options, [st]() {
        if (!st->error.ok()) return st->done(st->error);
        st->done(std::move(st->visible));
      });
    });
  }
}

// For a kJob route: runs `handler` when the job of the path is the principal's (or the principal
// has all namespaces), else answers HiddenJob.
void WithVisibleJob(Call& c, void (*handler)(Call&)) {
  if (!Scoped(c)) return handler(c);
  auto call = std::make_shared<Call>(std::move(c));
  const JobId id = call->match.job_id;
  LookupVisible(call->broker, call->options, call->request.principal, {id},
                [call, id, handler](Result<std::vector<bool>> visible) {
                  if (!visible.ok()) return call->Error(visible.status());
                  if (!(*visible)[0]) return call->Error(HiddenJob(id));
                  handler(*call);
                });
}

// A request body (a bulk filter, a dead-letter replay) as an audit detail: {"request":<body>}.
// Only for bodies that hold no payload; bounded, so a large id list does not bloat the log.
std::string RequestDetail(const std::string& body) {
  constexpr std::size_t kMaxDetailBody = 2048;
  if (body.empty()) return "{}";
  if (body.size() > kMaxDetailBody)
    return "{\"request_bytes\":" + std::to_string(body.size()) + "}";
  auto doc = json::Document::Parse(body);  // minified; the handler has validated it already
  if (!doc.ok()) return "{}";
  return "{\"request\":" + std::string(doc->text()) + "}";
}

std::string JobTarget(JobId id) { return "job " + FormatJobId(id); }

// Returns a Broker callback that renders a JobView (cancel, replay, get).
Broker::Callback<JobView> RenderJobCallback(RouteId route, Responder reply) {
  return [route, reply = std::move(reply)](Result<JobView> r) {
    reply(r.ok() ? Json(200, RenderJob(*r), route) : ErrorResponse(r.status(), route));
  };
}

Broker::Callback<QueueInfo> RenderQueueCallback(RouteId route, Responder reply) {
  return [route, reply = std::move(reply)](Result<QueueInfo> r) {
    reply(r.ok() ? Json(200, RenderQueue(*r), route) : ErrorResponse(r.status(), route));
  };
}

Broker::Callback<JobPage> RenderPageCallback(RouteId route, std::string scope,
                                             std::size_t max_bytes, Responder reply) {
  return [route, scope = std::move(scope), max_bytes, reply = std::move(reply)](Result<JobPage> r) {
    reply(r.ok() ? Json(200, RenderJobPage(*r, scope, max_bytes), route)
                 : ErrorResponse(r.status(), route));
  };
}

// The request's trace context headers go to each job whose body gives no "traceparent" of its
// own: a job's own context (with its own tracestate, or none) wins as a whole, since a
// tracestate belongs to the traceparent it came with.
// The request id goes with every job for the log lines about it (server/job_log.h).
void ApplyRequestTrace(const TraceContext& headers, const std::string& request_id,
                       EnqueueSpec& spec) {
  if (spec.trace.empty()) spec.trace = headers;
  spec.request_id = request_id;
}

void Enqueue(Call& c) {
  // Headers first: a bad one fails the request before the body is looked at.
  auto headers = ParseTraceHeaders(c.request.traceparent, c.request.tracestate);
  if (!headers.ok()) return c.Error(headers.status());
  auto spec = ParseEnqueue(c.request.body, c.options.codec);
  if (!spec.ok()) return c.Error(spec.status());
  if (IsReservedQueue(spec->queue)) return c.Error(ReservedQueue(spec->queue, "enqueue into"));
  if (!c.request.principal.CanUseNamespace(spec->ns)) return c.Error(ForeignNamespace(spec->ns));
  ApplyRequestTrace(*headers, c.request.request_id, *spec);
  std::vector<EnqueueSpec> specs;
  specs.push_back(std::move(spec).value());
  EnqueueLines lines(c.request.request_id, specs);
  c.broker.Enqueue(
      std::move(specs), [route = c.match.id, reply = std::move(c.reply),
                         lines = std::move(lines)](std::vector<Result<EnqueueOutcome>> results) {
        lines.Log(results);
        if (results.size() != 1) {
          return reply(ErrorResponse(Internal("enqueue returned no result"), route));
        }
        const auto& r = results[0];
        if (!r.ok()) return reply(ErrorResponse(r.status(), route));
        // 201 only when this request created the job; a coalesced duplicate or a job a singleton
        // limit skipped created nothing.
        reply(Json(r->duplicate || r->skipped ? 200 : 201, RenderEnqueueOutcome(*r), route));
      });
}

void EnqueueBatch(Call& c) {
  auto headers = ParseTraceHeaders(c.request.traceparent, c.request.tracestate);
  if (!headers.ok()) return c.Error(headers.status());
  auto items = ParseEnqueueBatch(c.request.body, c.options.codec);
  if (!items.ok()) return c.Error(items.status());
  // A job into a reserved queue or another namespace refuses the whole request: nothing is
  // enqueued.
  for (const auto& item : *items) {
    if (!item.ok()) continue;
    if (IsReservedQueue(item->queue)) return c.Error(ReservedQueue(item->queue, "enqueue into"));
    if (!c.request.principal.CanUseNamespace(item->ns)) {
      return c.Error(ForeignNamespace(item->ns));
    }
  }
  // Valid specs go to the Broker; invalid ones keep their error in their slot.
  auto results = std::make_shared<std::vector<Result<EnqueueOutcome>>>();
  std::vector<std::size_t> slots;
  std::vector<EnqueueSpec> specs;
  for (std::size_t i = 0; i < items->size(); ++i) {
    auto& item = (*items)[i];
    if (item.ok()) {
      results->push_back(EnqueueOutcome{});
      slots.push_back(i);
      ApplyRequestTrace(*headers, c.request.request_id, *item);
      specs.push_back(std::move(item).value());
    } else {
      results->push_back(item.status());
    }
  }
  if (specs.empty()) return c.Ok(RenderEnqueueResults(*results));
  EnqueueLines lines(c.request.request_id, specs);
  c.broker.Enqueue(std::move(specs), [route = c.match.id, reply = std::move(c.reply), results,
                                      slots = std::move(slots), lines = std::move(lines)](
                                         std::vector<Result<EnqueueOutcome>> outcomes) {
    lines.Log(outcomes);
    // Refused whole by a namespace limit (all or nothing, Scheduler::AdmitBatch): one 429
    // with Retry-After for the request, nothing was enqueued.
    if (!outcomes.empty() &&
        std::all_of(outcomes.begin(), outcomes.end(), [](const Result<EnqueueOutcome>& r) {
          return !r.ok() && r.status().code() == Code::kNamespaceLimit;
        })) {
      return reply(ErrorResponse(outcomes[0].status(), route));
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      (*results)[slots[i]] = i < outcomes.size()
                                 ? std::move(outcomes[i])
                                 : Result<EnqueueOutcome>(Internal("enqueue returned no result"));
    }
    reply(Json(200, RenderEnqueueResults(*results), route));
  });
}

// A page is capped by bytes as well as by count: the Broker stops loading once the payloads it
// holds reach max_reply_bytes, and the renderer stops before the job that would take the body
// past it; the cursor carries on from there. So one list call holds at most about twice the cap
// in memory, whatever `limit` and the payload sizes are.
// The cursor scope is the filter as the client sent it; a token's implicit namespace is added
// to every page alike.
void ListPage(Call& c, Result<ListQuery> query, std::string scope) {
  if (!query.ok()) return c.Error(query.status());
  Status scoped = ScopeJobFilter(c.request.principal, query->filter);
  if (!scoped.ok()) return c.Error(scoped);
  query->max_bytes = c.options.max_reply_bytes;
  c.broker.ListJobs(std::move(query).value(),
                    RenderPageCallback(c.match.id, std::move(scope), c.options.max_reply_bytes,
                                       std::move(c.reply)));
}

void ListJobs(Call& c) {
  auto query = ParseListJobsQuery(c.match.query);
  std::string scope = query.ok() ? JobsCursorScope(*query) : std::string();
  ListPage(c, std::move(query), std::move(scope));
}

void ListDead(Call& c) {
  auto query = ParseListDeadQuery(c.match.query);
  std::string scope = query.ok() ? DeadCursorScope(*query) : std::string();
  ListPage(c, std::move(query), std::move(scope));
}

void GetJobNow(Call& c) {
  auto wait_ms = ParseGetJobQuery(c.match.query);
  if (!wait_ms.ok()) return c.Error(wait_ms.status());
  c.broker.GetJob(c.match.job_id, RenderJobCallback(c.match.id, std::move(c.reply)), *wait_ms);
}

// For a scoped token the job's namespace is looked up first (a job's namespace never changes,
// so the answer holds for the call that follows); the query is checked before that.
void GetJob(Call& c) {
  auto wait_ms = ParseGetJobQuery(c.match.query);
  if (!wait_ms.ok()) return c.Error(wait_ms.status());
  WithVisibleJob(c, GetJobNow);
}

void CancelNow(Call& c) {
  c.broker.Cancel(c.match.job_id, RenderJobCallback(c.match.id, std::move(c.reply)),
                  c.Audit("job.cancel", JobTarget(c.match.job_id)));
}

void CancelJob(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  WithVisibleJob(c, CancelNow);
}

void ReplayNow(Call& c) {
  c.broker.Replay(c.match.job_id, RenderJobCallback(c.match.id, std::move(c.reply)),
                  c.Audit("job.replay", JobTarget(c.match.job_id)));
}

void ReplayJob(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  WithVisibleJob(c, ReplayNow);
}

void Lease(Call& c) {
  auto req = ParseLease(c.request.body);
  if (!req.ok()) return c.Error(req.status());
  for (const std::string& q : req->queues) {
    if (IsReservedQueue(q)) return c.Error(ReservedQueue(q, "lease from"));
  }
  req->namespaces = LeaseNamespaces(c.request.principal);
  LeaseLines lines(c.request.request_id, req->worker_id);
  c.broker.Lease(std::move(req).value(), [route = c.match.id, reply = std::move(c.reply),
                                          post = c.options.post, lines = std::move(lines)](
                                             Result<std::vector<LeasedJob>> r) mutable {
    auto render = [route, reply = std::move(reply), r = std::move(r), lines = std::move(lines)]() {
      if (!r.ok()) return reply(ErrorResponse(r.status(), route));
      lines.Log(*r);
      ApiResponse resp = Json(200, RenderLeasedJobs(*r), route);
      resp.leases.reserve(r->size());
      for (const auto& j : *r) resp.leases.emplace_back(j.id, j.lease.token);
      reply(std::move(resp));
    };
    // This callback runs on the core thread; rendering a batch of leased jobs
    // (payload copies and JSON) is the largest piece of work on the lease path, so
    // it moves to an I/O thread.
    if (post) {
      post(std::move(render));
    } else {
      render();
    }
  });
}

void Heartbeat(Call& c) {
  auto req = ParseHeartbeat(c.request.body);
  if (!req.ok()) return c.Error(req.status());
  c.broker.Heartbeat(
      c.match.job_id, req->token, req->extend_ms, std::move(req->progress),
      [route = c.match.id, reply = std::move(c.reply)](Result<HeartbeatOutcome> r) {
        reply(r.ok() ? Json(200, RenderHeartbeat(*r), route) : ErrorResponse(r.status(), route));
      });
}

void WatchCancels(Call& c) {
  auto req = ParseCancelWatch(c.request.body);
  if (!req.ok()) return c.Error(req.status());
  if (!Scoped(c)) {
    return c.broker.WatchCancels(
        std::move(req->worker_id), std::move(req->known), req->wait_ms,
        [route = c.match.id, reply = std::move(c.reply)](Result<std::vector<JobId>> r) {
          reply(r.ok() ? Json(200, RenderCancelWatch(*r), route)
                       : ErrorResponse(r.status(), route));
        });
  }
  // A scoped token sees only the ids of its namespaces' jobs (worker ids are not secret: another
  // namespace's worker id must not reveal its jobs).
  auto call = std::make_shared<Call>(std::move(c));
  call->broker.WatchCancels(std::move(req->worker_id), std::move(req->known), req->wait_ms,
                            [call](Result<std::vector<JobId>> r) {
                              if (!r.ok()) return call->Error(r.status());
                              PostTask(call->options, [call, ids = std::move(r).value()]() {
                                LookupVisible(call->broker, call->options, call->request.principal,
                                              ids, [call, ids](Result<std::vector<bool>> visible) {
                                                if (!visible.ok())
                                                  return call->Error(visible.status());
                                                std::vector<JobId> shown;
                                                for (std::size_t i = 0; i < ids.size(); ++i) {
                                                  if ((*visible)[i]) shown.push_back(ids[i]);
                                                }
                                                call->Ok(RenderCancelWatch(shown));
                                              });
                              });
                            });
}

void Ack(Call& c) {
  auto item = ParseAck(c.match.job_id, c.request.body, c.options.codec);
  if (!item.ok()) return c.Error(item.status());
  std::vector<AckItem> acks;
  acks.push_back(std::move(item).value());
  CompleteLines lines(c.request.request_id, acks, {});
  c.broker.Complete(
      std::move(acks), {},
      [route = c.match.id, id = c.match.job_id, reply = std::move(c.reply),
       lines = std::move(lines)](std::vector<Status> acked, std::vector<Result<JobState>> failed) {
        lines.Log(acked, failed);
        if (acked.size() != 1) {
          return reply(ErrorResponse(Internal("ack returned no result"), route));
        }
        if (!acked[0].ok()) return reply(ErrorResponse(acked[0], route));
        JobState state = JobState::kSucceeded;
        reply(Json(200, RenderIdState(id, &state), route));
      });
}

void Fail(Call& c) {
  auto item = ParseFail(c.match.job_id, c.request.body);
  if (!item.ok()) return c.Error(item.status());
  std::vector<FailItem> fails;
  fails.push_back(std::move(item).value());
  CompleteLines lines(c.request.request_id, {}, fails);
  c.broker.Complete(
      {}, std::move(fails),
      [route = c.match.id, id = c.match.job_id, reply = std::move(c.reply),
       lines = std::move(lines)](std::vector<Status> acked, std::vector<Result<JobState>> failed) {
        lines.Log(acked, failed);
        if (failed.size() != 1) {
          return reply(ErrorResponse(Internal("fail returned no result"), route));
        }
        if (!failed[0].ok()) return reply(ErrorResponse(failed[0].status(), route));
        reply(Json(200, RenderIdState(id, &failed[0].value()), route));
      });
}

void CompleteParsed(Call& c, CompleteBatch batch_value) {
  auto* batch = &batch_value;
  auto ack_results = std::make_shared<std::vector<Status>>();
  auto fail_results = std::make_shared<std::vector<Status>>();
  std::vector<std::size_t> ack_slots, fail_slots;
  std::vector<AckItem> acks;
  std::vector<FailItem> fails;
  for (std::size_t i = 0; i < batch->acks.size(); ++i) {
    auto& item = batch->acks[i];
    ack_results->push_back(item.ok() ? Status::Ok() : item.status());
    if (item.ok()) {
      ack_slots.push_back(i);
      acks.push_back(std::move(item).value());
    }
  }
  for (std::size_t i = 0; i < batch->fails.size(); ++i) {
    auto& item = batch->fails[i];
    fail_results->push_back(item.ok() ? Status::Ok() : item.status());
    if (item.ok()) {
      fail_slots.push_back(i);
      fails.push_back(std::move(item).value());
    }
  }
  if (acks.empty() && fails.empty()) {
    return c.Ok(RenderCompleteResults(*ack_results, *fail_results));
  }
  CompleteLines lines(c.request.request_id, acks, fails);
  c.broker.Complete(std::move(acks), std::move(fails),
                    [route = c.match.id, reply = std::move(c.reply), ack_results, fail_results,
                     ack_slots = std::move(ack_slots), fail_slots = std::move(fail_slots),
                     lines = std::move(lines)](std::vector<Status> acked,
                                               std::vector<Result<JobState>> fail_states) {
                      lines.Log(acked, fail_states);
                      std::vector<Status> failed;
                      for (auto& r : fail_states) failed.push_back(r.status());
                      auto merge = [](const std::vector<std::size_t>& slots,
                                      std::vector<Status>& from, std::vector<Status>& into) {
                        for (std::size_t i = 0; i < slots.size(); ++i) {
                          into[slots[i]] = i < from.size()
                                               ? std::move(from[i])
                                               : Internal("complete returned no result");
                        }
                      };
                      merge(ack_slots, acked, *ack_results);
                      merge(fail_slots, failed, *fail_results);
                      reply(Json(200, RenderCompleteResults(*ack_results, *fail_results), route));
                    });
}

// For a scoped token, an item naming a job it may not see is answered HiddenJob in its slot and
// not sent to the Broker; the others go on as usual.
void CompleteAcks(Call& c) {
  auto batch = ParseCompleteBatch(c.request.body, c.options.codec);
  if (!batch.ok()) return c.Error(batch.status());
  if (!Scoped(c)) return CompleteParsed(c, std::move(batch).value());
  std::vector<JobId> ids;
  for (const auto& a : batch->acks) ids.push_back(a.ok() ? a->id : 0);
  for (const auto& f : batch->fails) ids.push_back(f.ok() ? f->id : 0);
  auto call = std::make_shared<Call>(std::move(c));
  auto parsed = std::make_shared<CompleteBatch>(std::move(batch).value());
  LookupVisible(call->broker, call->options, call->request.principal, ids,
                [call, parsed, ids](Result<std::vector<bool>> visible) {
                  if (!visible.ok()) return call->Error(visible.status());
                  std::size_t k = 0;
                  for (auto& a : parsed->acks) {
                    if (a.ok() && !(*visible)[k]) a = HiddenJob(ids[k]);
                    ++k;
                  }
                  for (auto& f : parsed->fails) {
                    if (f.ok() && !(*visible)[k]) f = HiddenJob(ids[k]);
                    ++k;
                  }
                  CompleteParsed(*call, std::move(*parsed));
                });
}

// Paginated by name like job pages: at most `limit` queues and about max_reply_bytes per page,
// so one call costs per page, not per queue in existence.
void ListQueues(Call& c) {
  auto query = ParseListQueuesQuery(c.match.query);
  if (!query.ok()) return c.Error(query.status());
  c.broker.ListQueues(std::move(query->after), query->limit,
                      [route = c.match.id, max_bytes = c.options.max_reply_bytes,
                       reply = std::move(c.reply)](Result<QueuePage> r) {
                        reply(r.ok() ? Json(200, RenderQueuePage(*r, max_bytes), route)
                                     : ErrorResponse(r.status(), route));
                      });
}

void GetQueue(Call& c) {
  c.broker.GetQueue(c.match.queue, RenderQueueCallback(c.match.id, std::move(c.reply)));
}

void PutQueue(Call& c) {
  auto create = ParseCreateQuery(c.match.query);
  if (!create.ok()) return c.Error(create.status());
  if (IsReservedQueue(c.match.queue)) return c.Error(ReservedQueue(c.match.queue, "configure"));
  auto patch = ParseQueuePatch(c.match.queue, c.request.body);
  if (!patch.ok()) return c.Error(patch.status());
  c.broker.PutQueue(std::move(patch).value(), *create,
                    RenderQueueCallback(c.match.id, std::move(c.reply)),
                    c.Audit("queue.put", "queue " + c.match.queue, RequestDetail(c.request.body)));
}

void SetPaused(Call& c, bool paused) {
  if (IsReservedQueue(c.match.queue)) {
    return c.Error(ReservedQueue(c.match.queue, paused ? "pause" : "resume"));
  }
  auto create = ParseCreateQuery(c.match.query);
  if (!create.ok()) return c.Error(create.status());
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.SetPaused(c.match.queue, paused, *create,
                     RenderQueueCallback(c.match.id, std::move(c.reply)),
                     c.Audit(paused ? "queue.pause" : "queue.resume", "queue " + c.match.queue));
}

void ResetQueue(Call& c) {
  if (IsReservedQueue(c.match.queue)) return c.Error(ReservedQueue(c.match.queue, "reset"));
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.ResetQueue(c.match.queue, RenderQueueCallback(c.match.id, std::move(c.reply)),
                      c.Audit("queue.reset", "queue " + c.match.queue));
}

void ListLimits(Call& c) {
  auto query = ParseListLimitsQuery(c.match.query);
  if (!query.ok()) return c.Error(query.status());
  c.broker.ListLimits(std::move(query->after), query->limit,
                      [route = c.match.id, max_bytes = c.options.max_reply_bytes,
                       reply = std::move(c.reply)](Result<flow::LimitPage> r) {
                        reply(r.ok() ? Json(200, RenderLimitPage(*r, max_bytes), route)
                                     : ErrorResponse(r.status(), route));
                      });
}

void GetLimit(Call& c) {
  c.broker.GetLimit(
      c.match.name, [route = c.match.id, reply = std::move(c.reply)](Result<flow::LimitInfo> r) {
        reply(r.ok() ? Json(200, RenderLimit(*r), route) : ErrorResponse(r.status(), route));
      });
}

// 201 when the limit was created, 200 when it replaced one; once durable.
void PutLimit(Call& c) {
  auto spec = ParseLimitSpec(c.match.name, c.request.body);
  if (!spec.ok()) return c.Error(spec.status());
  if (spec->match_queue && IsReservedQueue(*spec->match_queue)) {
    return c.Error(ReservedQueue(*spec->match_queue, "limit"));
  }
  c.broker.PutLimit(
      std::move(spec).value(),
      [route = c.match.id, reply = std::move(c.reply)](Result<flow::LimitInfo> r) {
        reply(r.ok() ? Json(r->created ? 201 : 200, RenderLimit(*r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("limit.put", "limit " + c.match.name, RequestDetail(c.request.body)));
}

void DeleteLimit(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.DeleteLimit(
      c.match.name,
      [route = c.match.id, reply = std::move(c.reply)](Result<std::string> r) {
        reply(r.ok() ? Json(200, RenderLimitDeleted(*r), route) : ErrorResponse(r.status(), route));
      },
      c.Audit("limit.delete", "limit " + c.match.name));
}

void ListNamespaces(Call& c) {
  auto query = ParseListNamespacesQuery(c.match.query);
  if (!query.ok()) return c.Error(query.status());
  c.broker.ListNamespaces(std::move(query->after), query->limit,
                          [route = c.match.id, max_bytes = c.options.max_reply_bytes,
                           reply = std::move(c.reply)](Result<flow::NamespacePage> r) {
                            reply(r.ok() ? Json(200, RenderNamespacePage(*r, max_bytes), route)
                                         : ErrorResponse(r.status(), route));
                          });
}

void GetNamespace(Call& c) {
  c.broker.GetNamespace(c.match.name, [route = c.match.id,
                                       reply = std::move(c.reply)](Result<flow::NamespaceInfo> r) {
    reply(r.ok() ? Json(200, RenderNamespace(*r), route) : ErrorResponse(r.status(), route));
  });
}

// 201 when the namespace's configuration was created, 200 when it replaced one; once durable.
void PutNamespace(Call& c) {
  auto spec = ParseNamespaceSpec(c.match.name, c.request.body);
  if (!spec.ok()) return c.Error(spec.status());
  c.broker.PutNamespace(
      std::move(spec).value(),
      [route = c.match.id, reply = std::move(c.reply)](Result<flow::NamespaceInfo> r) {
        reply(r.ok() ? Json(r->created ? 201 : 200, RenderNamespace(*r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("namespace.put", "namespace " + c.match.name, RequestDetail(c.request.body)));
}

void DeleteNamespace(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.DeleteNamespace(
      c.match.name,
      [route = c.match.id, reply = std::move(c.reply)](Result<std::string> r) {
        reply(r.ok() ? Json(200, RenderLimitDeleted(*r), route) : ErrorResponse(r.status(), route));
      },
      c.Audit("namespace.delete", "namespace " + c.match.name));
}

// The namespace's stored jobs as JSON lines, streamed (net/export_stream.h).
void ExportNamespace(Call& c) {
  if (!IsValidName(c.match.name)) {
    return c.Error(Validation("namespace name: invalid name (1..128 of [A-Za-z0-9_.:-])"));
  }
  // Audited before the first byte: an export whose entry could not be written is refused
  // (503), so no tenant's data leaves without a record (docs/security.md, "Audit log").
  c.broker.RecordAudit(c.Audit("namespace.export", "namespace " + c.match.name),
                       [&broker = c.broker, ns = c.match.name, route = c.match.id,
                        reply = std::move(c.reply)](Result<std::uint64_t> audited) mutable {
                         if (!audited.ok()) return reply(ErrorResponse(audited.status(), route));
                         ApiResponse r;
                         r.status = 200;
                         r.content_type = "application/x-ndjson";
                         r.route = route;
                         r.stream = MakeNamespaceExport(broker, std::move(ns));
                         reply(std::move(r));
                       });
}

// Erases the namespace's data, a bounded step per request (core/namespace_wipe.h); the audit
// entry commits with the first erasures.
void WipeNamespace(Call& c) {
  if (!IsValidName(c.match.name)) {
    return c.Error(Validation("namespace name: invalid name (1..128 of [A-Za-z0-9_.:-])"));
  }
  auto req = ParseWipe(c.match.name, c.request.body);
  if (!req.ok()) return c.Error(req.status());
  c.broker.WipeNamespace(
      std::move(req).value(),
      [ns = c.match.name, route = c.match.id, reply = std::move(c.reply)](Result<WipeOutcome> r) {
        reply(r.ok() ? Json(200, RenderWipeOutcome(ns, *r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("namespace.wipe", "namespace " + c.match.name, RequestDetail(c.request.body)));
}

// --- API tokens (docs/api.md "Tokens"). Admins of all namespaces only: the role matrix
// (net/authz.h) has refused everyone else before a handler runs. The anonymous principal of a
// server without auth is such an admin.

TokenAdmin* Tokens(Call& c) {
  if (c.options.tokens == nullptr) c.Error(Unavailable("API tokens are not available"));
  return c.options.tokens;
}

void ListTokens(Call& c) {
  TokenAdmin* t = Tokens(c);
  if (t == nullptr) return;
  c.Ok(RenderTokenList(t->List(), t->NowMs()));
}

void CreateToken(Call& c) {
  TokenAdmin* t = Tokens(c);
  if (t == nullptr) return;
  auto spec = ParseTokenSpec(c.request.body);
  if (!spec.ok()) return c.Error(spec.status());
  AuditNote note = c.Audit("token.create", "token " + spec->name);
  t->Create(
      std::move(spec).value(),
      [t, route = c.match.id, reply = std::move(c.reply)](Result<CreatedToken> r) {
        reply(r.ok() ? Json(201, RenderCreatedToken(*r, t->NowMs()), route)
                     : ErrorResponse(r.status(), route));
      },
      std::move(note));
}

// 200 with the token for a revoke, also when it was already revoked (`revoked_now` false).
void RevokeToken(Call& c) {
  TokenAdmin* t = Tokens(c);
  if (t == nullptr) return;
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  AuditNote note = c.Audit("token.revoke", "token " + c.match.name.substr(0, 64));
  t->Revoke(
      c.match.name,
      [t, route = c.match.id, reply = std::move(c.reply)](Result<RevokedToken> r) {
        reply(r.ok() ? Json(200, RenderRevokedToken(*r, t->NowMs()), route)
                     : ErrorResponse(r.status(), route));
      },
      std::move(note));
}

// --- Schedules (docs/api.md "Schedules"; net/codec_schedules.h). Writes answer once durable.
Broker::Callback<ScheduleView> RenderScheduleCallback(RouteId route, Responder reply,
                                                      unsigned status = 200) {
  return [route, status, reply = std::move(reply)](Result<ScheduleView> r) {
    reply(r.ok() ? Json(status, RenderSchedule(*r, /*full=*/true), route)
                 : ErrorResponse(r.status(), route));
  };
}

void ListSchedules(Call& c) {
  auto query = ParseListSchedulesQuery(c.match.query);
  if (!query.ok()) return c.Error(query.status());
  c.broker.ListSchedules(
      std::move(query->after), query->limit,
      [route = c.match.id, max_bytes = c.options.max_reply_bytes,
       reply = std::move(c.reply)](Result<SchedulePage> r) {
        reply(r.ok() ? Json(200, RenderSchedulePage(r->items, r->more, max_bytes), route)
                     : ErrorResponse(r.status(), route));
      });
}

void CreateSchedule(Call& c) {
  auto req = ParseScheduleCreate(c.request.body, c.options.codec);
  if (!req.ok()) return c.Error(req.status());
  if (IsReservedQueue(req->spec.job.queue)) {
    return c.Error(ReservedQueue(req->spec.job.queue, "schedule jobs into"));
  }
  // No body in the detail: a schedule's job template holds a payload.
  AuditNote note = c.Audit("schedule.create", "schedule " + req->spec.id);
  c.broker.CreateSchedule(std::move(req).value(),
                          RenderScheduleCallback(c.match.id, std::move(c.reply), 201),
                          std::move(note));
}

void GetSchedule(Call& c) {
  auto next = ParseScheduleGetQuery(c.match.query);
  if (!next.ok()) return c.Error(next.status());
  c.broker.GetSchedule(c.match.name, *next, RenderScheduleCallback(c.match.id, std::move(c.reply)));
}

void PutSchedule(Call& c) {
  auto req = ParseScheduleReplace(c.match.name, c.request.body, c.options.codec);
  if (!req.ok()) return c.Error(req.status());
  if (IsReservedQueue(req->spec.job.queue)) {
    return c.Error(ReservedQueue(req->spec.job.queue, "schedule jobs into"));
  }
  c.broker.ReplaceSchedule(std::move(req).value(),
                           RenderScheduleCallback(c.match.id, std::move(c.reply)),
                           c.Audit("schedule.put", "schedule " + c.match.name));
}

void PatchSchedule(Call& c) {
  // The body's shape is checked now (a bad body changes nothing and needs no core work); the
  // merge with the current spec runs on the core thread.
  Status shape = CheckSchedulePatch(c.request.body);
  if (!shape.ok()) return c.Error(shape);
  c.broker.PatchSchedule(
      c.match.name,
      [id = c.match.name, body = c.request.body,
       limits = c.options.codec](const std::string& current) -> Result<ScheduleUpdate> {
        auto update = ParseSchedulePatch(id, body, current, limits);
        if (update.ok() && IsReservedQueue(update->spec.job.queue)) {
          return ReservedQueue(update->spec.job.queue, "schedule jobs into");
        }
        return update;
      },
      RenderScheduleCallback(c.match.id, std::move(c.reply)),
      c.Audit("schedule.patch", "schedule " + c.match.name));
}

void DeleteSchedule(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.DeleteSchedule(
      c.match.name,
      [route = c.match.id, reply = std::move(c.reply)](Result<std::string> r) {
        reply(r.ok() ? Json(200, RenderScheduleDeleted(*r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("schedule.delete", "schedule " + c.match.name));
}

void PauseSchedule(Call& c, bool paused) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.PauseSchedule(
      c.match.name, paused, RenderScheduleCallback(c.match.id, std::move(c.reply)),
      c.Audit(paused ? "schedule.pause" : "schedule.resume", "schedule " + c.match.name));
}

void TriggerSchedule(Call& c) {
  Status s = ParseEmptyObject(c.request.body);
  if (!s.ok()) return c.Error(s);
  c.broker.TriggerSchedule(
      c.match.name,
      [route = c.match.id, reply = std::move(c.reply)](Result<EnqueueOutcome> r) {
        reply(r.ok() ? Json(201, RenderEnqueueOutcome(*r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("schedule.trigger", "schedule " + c.match.name));
}

void BackfillSchedule(Call& c) {
  auto range = ParseBackfill(c.request.body);
  if (!range.ok()) return c.Error(range.status());
  c.broker.BackfillSchedule(
      c.match.name, range->first, range->second,
      [route = c.match.id, reply = std::move(c.reply)](Result<BackfillOutcome> r) {
        reply(r.ok() ? Json(200, RenderBackfill(*r), route) : ErrorResponse(r.status(), route));
      },
      c.Audit("schedule.backfill", "schedule " + c.match.name, RequestDetail(c.request.body)));
}

// In memory only (breaker state is not stored): answered at once.
void ResetBreaker(Call& c) {
  auto key = ParseResetBreaker(c.request.body);
  if (!key.ok()) return c.Error(key.status());
  c.broker.ResetBreaker(
      c.match.name, *key,
      [route = c.match.id, key = *key, reply = std::move(c.reply)](Result<flow::LimitInfo> r) {
        reply(r.ok() ? Json(200, RenderBreakerReset(*r, key), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit("limit.reset_breaker", "limit " + c.match.name, RequestDetail(c.request.body)));
}

void ReplayDeadNow(Call& c, std::string queue, std::vector<JobId> ids, std::uint32_t limit) {
  AuditNote note = c.Audit("dead.replay", queue.empty() ? "dead" : "queue " + queue,
                           RequestDetail(c.request.body));
  c.broker.ReplayDead(
      std::move(queue), std::move(ids), limit,
      [route = c.match.id, reply = std::move(c.reply)](Result<std::uint64_t> r) {
        reply(r.ok() ? Json(200, RenderReplayed(*r), route) : ErrorResponse(r.status(), route));
      },
      std::move(note));
}

// A scoped token names ids (those of other namespaces are skipped like ids that are not dead);
// replaying a queue's dead jobs spans every namespace, so it is refused: POST /v1/jobs:replay
// with a namespace filter does that for one namespace.
void ReplayDead(Call& c) {
  auto req = ParseDeadReplay(c.request.body);
  if (!req.ok()) return c.Error(req.status());
  if (!Scoped(c)) return ReplayDeadNow(c, std::move(req->queue), std::move(req->ids), req->limit);
  if (req->ids.empty()) {
    return c.Error(Forbidden(
        "a token scoped to namespaces replays dead jobs by \"ids\", or with POST "
        "/v1/jobs:replay and a namespace filter (docs/security.md, \"Namespace scoping\")"));
  }
  auto call = std::make_shared<Call>(std::move(c));
  std::vector<JobId> ids = req->ids;
  LookupVisible(call->broker, call->options, call->request.principal, ids,
                [call, ids, queue = std::move(req->queue),
                 limit = req->limit](Result<std::vector<bool>> visible) mutable {
                  if (!visible.ok()) return call->Error(visible.status());
                  std::vector<JobId> mine;
                  for (std::size_t i = 0; i < ids.size(); ++i) {
                    if ((*visible)[i]) mine.push_back(ids[i]);
                  }
                  // No id left: nothing to replay (an empty list would mean a whole queue).
                  if (mine.empty()) return call->Ok(RenderReplayed(0));
                  ReplayDeadNow(*call, std::move(queue), std::move(mine), limit);
                });
}

void Bulk(Call& c, BulkAction action) {
  auto req = ParseBulk(action, c.request.body);
  if (!req.ok()) return c.Error(req.status());
  // The cursor is encoded from the filter as sent (`request`); the token's implicit namespace
  // narrows what the Broker runs, on every page alike.
  BulkRequest request = *req;
  Status scoped = ScopeJobFilter(c.request.principal, req->filter);
  if (!scoped.ok()) return c.Error(scoped);
  const char* action_name = action == BulkAction::kCancel   ? "jobs.bulk_cancel"
                            : action == BulkAction::kReplay ? "jobs.bulk_replay"
                                                            : "jobs.bulk_delete";
  c.broker.Bulk(
      std::move(req).value(),
      [route = c.match.id, request = std::move(request),
       reply = std::move(c.reply)](Result<BulkOutcome> r) {
        reply(r.ok() ? Json(200, RenderBulkOutcome(request, *r), route)
                     : ErrorResponse(r.status(), route));
      },
      c.Audit(action_name, "jobs", RequestDetail(c.request.body)));
}

// --- Audit log (docs/api.md "Audit log"): read-only.
void ListAudit(Call& c) {
  auto q = ParseAuditListQuery(c.match.query);
  if (!q.ok()) return c.Error(q.status());
  c.broker.ReadAudit(q->after, q->limit,
                     [route = c.match.id, limit = q->limit,
                      reply = std::move(c.reply)](Result<std::vector<audit::Entry>> r) {
                       reply(r.ok() ? Json(200, RenderAuditPage(*r, limit), route)
                                    : ErrorResponse(r.status(), route));
                     });
}

void AuditCheckpoint(Call& c) {
  if (c.options.audit_checkpoint_renderer) return c.Ok(c.options.audit_checkpoint_renderer());
  const audit::Head head = c.broker.AuditHead();
  audit::Checkpoint cp;
  cp.seq = head.seq;
  cp.hash = head.hash;
  c.Ok(audit::CheckpointToJson(cp));
}

void Info(Call& c) { c.Ok(RenderInfo(c.broker.Info())); }

// /livez and /healthz: the process answers and its core thread is not stuck (it goes round its
// loop at least once a second; BrokerOptions::liveness_deadline_ms).
std::vector<HealthCheck> LivenessChecks(const Broker& broker) {
  Status core;
  if (!broker.core_alive()) {
    core = Unavailable("the core thread has not run for " +
                       std::to_string(broker.core_heartbeat_age_ms()) + " ms (deadline " +
                       std::to_string(broker.liveness_deadline_ms()) + " ms): it is stuck");
  }
  return {{"core_alive", core}};
}

void Livez(Call& c) {
  const std::vector<HealthCheck> checks = LivenessChecks(c.broker);
  c.Ok(RenderHealth("ok", checks), HealthFailure(checks).ok() ? 200 : 503);
}

// /readyz: every check, so an operator sees at once which ones fail (503 names them all).
void Readyz(Call& c) {
  const bool stopping = c.options.server_stopping != nullptr &&
                        c.options.server_stopping->load(std::memory_order_relaxed);
  std::vector<HealthCheck> checks;
  checks.push_back({"recovered", c.broker.ready() || c.broker.draining() || stopping
                                     ? Status::Ok()
                                     : Unavailable("starting: the store is being recovered")});
  checks.push_back({"store_writable",
                    c.broker.store_available()
                        ? Status::Ok()
                        : StoreUnavailable("read-only: the store refuses writes (" +
                                           c.broker.store_error() + "); probing it to resume")});
  checks.push_back({"accepting", c.broker.draining() || stopping
                                     ? Unavailable("draining: new enqueues and leases are refused")
                                     : Status::Ok()});
  std::vector<HealthCheck> live = LivenessChecks(c.broker);
  checks.insert(checks.end(), live.begin(), live.end());
  c.Ok(RenderHealth("ready", checks), HealthFailure(checks).ok() ? 200 : 503);
}

void ListAlerts(Call& c) {
  c.Ok(c.options.alerts_renderer ? c.options.alerts_renderer() : R"({"alerts":[]})");
}

void Metrics(Call& c) {
  ApiResponse r;
  r.route = c.match.id;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (c.options.metrics_renderer) r.body = c.options.metrics_renderer();
  c.reply(std::move(r));
}

}  // namespace

ApiResponse ErrorResponse(const Status& status, RouteId route) {
  Status s = status.ok() ? Internal("error response for an OK status") : status;
  ApiResponse r = Json(static_cast<unsigned>(HttpStatus(s.code())), RenderError(s), route);
  // Backpressure: tell well-behaved clients when to come back instead of letting them spin.
  if (s.code() == Code::kResourceExhausted) r.headers.emplace_back("Retry-After", "1");
  // A namespace limit says when to come back: the exact time its enqueue rate opens (rounded up
  // to whole seconds here, exact in the body's retry_after_ms), or a hint for max_live_jobs.
  if (s.code() == Code::kNamespaceLimit) {
    const std::int64_t ms = std::max<std::int64_t>(s.retry_after_ms(), 0);
    r.headers.emplace_back("Retry-After",
                           std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000)));
  }
  // Read-only after a store failure: the broker probes the store about every second (up to
  // every 5 s while it keeps failing), so a client retrying after a few seconds finds it back.
  if (s.code() == Code::kStoreUnavailable) r.headers.emplace_back("Retry-After", "2");
  return r;
}

Api::Api(Broker& broker, ApiOptions options) : broker_(broker), options_(std::move(options)) {}

void Api::Handle(ApiRequest request, Responder reply) {
  RouteInput in;
  in.method = request.method;
  in.target = request.target;
  in.content_type = request.content_type;
  in.body_size = request.body.size();
  in.max_request_bytes = options_.max_request_bytes;
  RouteOutcome routed = RouteRequest(in);
  if (!routed.status.ok()) {
    ApiResponse r = ErrorResponse(routed.status, routed.match.id);
    if (!routed.allow.empty()) r.headers.emplace_back("Allow", routed.allow);
    return reply(std::move(r));
  }
  // Authorization before anything else of the request is read (net/authz.h).
  Status allowed = CheckRoute(request.principal, routed.match.id, routed.match.name);
  if (!allowed.ok()) return reply(ErrorResponse(allowed, routed.match.id));
  Call c{broker_, options_, std::move(routed.match), std::move(request), std::move(reply)};
  switch (c.match.id) {
    case RouteId::kEnqueue:
      return Enqueue(c);
    case RouteId::kEnqueueBatch:
      return EnqueueBatch(c);
    case RouteId::kListJobs:
      return ListJobs(c);
    case RouteId::kGetJob:
      return GetJob(c);
    case RouteId::kCancelJob:
      return CancelJob(c);
    case RouteId::kReplayJob:
      return ReplayJob(c);
    case RouteId::kLease:
      return Lease(c);
    case RouteId::kHeartbeat:
      return WithVisibleJob(c, Heartbeat);
    case RouteId::kWatchCancels:
      return WatchCancels(c);
    case RouteId::kAck:
      return WithVisibleJob(c, Ack);
    case RouteId::kFail:
      return WithVisibleJob(c, Fail);
    case RouteId::kCompleteBatch:
      return CompleteAcks(c);
    case RouteId::kListQueues:
      return ListQueues(c);
    case RouteId::kGetQueue:
      return GetQueue(c);
    case RouteId::kPutQueue:
      return PutQueue(c);
    case RouteId::kPauseQueue:
      return SetPaused(c, true);
    case RouteId::kResetQueue:
      return ResetQueue(c);
    case RouteId::kListLimits:
      return ListLimits(c);
    case RouteId::kGetLimit:
      return GetLimit(c);
    case RouteId::kPutLimit:
      return PutLimit(c);
    case RouteId::kDeleteLimit:
      return DeleteLimit(c);
    case RouteId::kResetBreaker:
      return ResetBreaker(c);
    case RouteId::kListNamespaces:
      return ListNamespaces(c);
    case RouteId::kGetNamespace:
      return GetNamespace(c);
    case RouteId::kPutNamespace:
      return PutNamespace(c);
    case RouteId::kDeleteNamespace:
      return DeleteNamespace(c);
    case RouteId::kExportNamespace:
      return ExportNamespace(c);
    case RouteId::kWipeNamespace:
      return WipeNamespace(c);
    case RouteId::kListSchedules:
      return ListSchedules(c);
    case RouteId::kCreateSchedule:
      return CreateSchedule(c);
    case RouteId::kGetSchedule:
      return GetSchedule(c);
    case RouteId::kPutSchedule:
      return PutSchedule(c);
    case RouteId::kPatchSchedule:
      return PatchSchedule(c);
    case RouteId::kDeleteSchedule:
      return DeleteSchedule(c);
    case RouteId::kPauseSchedule:
      return PauseSchedule(c, true);
    case RouteId::kResumeSchedule:
      return PauseSchedule(c, false);
    case RouteId::kTriggerSchedule:
      return TriggerSchedule(c);
    case RouteId::kBackfillSchedule:
      return BackfillSchedule(c);
    case RouteId::kResumeQueue:
      return SetPaused(c, false);
    case RouteId::kListDead:
      return ListDead(c);
    case RouteId::kReplayDead:
      return ReplayDead(c);
    case RouteId::kBulkCancel:
      return Bulk(c, BulkAction::kCancel);
    case RouteId::kBulkReplay:
      return Bulk(c, BulkAction::kReplay);
    case RouteId::kBulkDelete:
      return Bulk(c, BulkAction::kDelete);
    case RouteId::kListAlerts:
      return ListAlerts(c);
    case RouteId::kListTokens:
      return ListTokens(c);
    case RouteId::kCreateToken:
      return CreateToken(c);
    case RouteId::kRevokeToken:
      return RevokeToken(c);
    case RouteId::kListAudit:
      return ListAudit(c);
    case RouteId::kAuditCheckpoint:
      return AuditCheckpoint(c);
    case RouteId::kInfo:
      return Info(c);
    case RouteId::kHealthz:
    case RouteId::kLivez:
      return Livez(c);
    case RouteId::kReadyz:
      return Readyz(c);
    case RouteId::kMetrics:
      return Metrics(c);
    case RouteId::kUnmatched:
      break;
  }
  c.Error(Internal("routed to no handler"));
}

}  // namespace ym::net
