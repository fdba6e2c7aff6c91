// libFuzzer target for the request path of the HTTP layer: routing, query strings and every body
// parser of net/codec.h, i.e. everything that reads bytes a client controls before the Broker
// sees a request.
//
// Input layout: byte 0 selects the body parser; then a request target up to the first '\n'; the
// rest is the body. Each parser must return a value or a Status; any crash, sanitizer report or
// contract violation (checked below) is a finding.
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/flow/limit_set.h"
#include "core/trace_context.h"
#include "net/codec.h"
#include "net/codec_schedules.h"
#include "net/cursor.h"
#include "net/router.h"

namespace {

namespace http = boost::beast::http;
using ym::Code;

void Check(bool ok) {
  if (!ok) std::abort();
}

// A parse failure must carry one of the codes the codec documents.
void CheckStatus(const ym::Status& s) {
  if (s.ok()) return;
  Code c = s.code();
  Check(c == Code::kInvalidJson || c == Code::kValidation || c == Code::kPayloadTooLarge ||
        c == Code::kInvalidRequest);
  Check(!s.message().empty());
}

template <typename T>
void CheckResult(const ym::Result<T>& r) {
  CheckStatus(r.status());
}

// A trace context the codec accepted: a valid traceparent (or none) and a tracestate in its
// normalized form, within bounds, only with a traceparent.
void CheckTrace(const ym::TraceContext& t) {
  if (t.traceparent.empty()) {
    Check(t.tracestate.empty());
    return;
  }
  Check(ym::CheckTraceparent(t.traceparent, "t").ok());
  Check(t.tracestate.size() <= ym::kMaxTracestateBytes);
  auto again = ym::NormalizeTracestate(t.tracestate, "t");
  Check(again.ok() && *again == t.tracestate);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t nl = rest.find('\n');
  std::string_view target = rest.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);

  ym::net::CodecLimits limits;
  limits.max_payload_bytes = 4096;

  // Routing and query strings.
  static constexpr http::verb kVerbs[] = {http::verb::get, http::verb::post, http::verb::put,
                                          http::verb::delete_};
  ym::net::RouteInput in;
  in.method = kVerbs[selector % 4];
  in.target = target;
  in.content_type = (selector & 0x10) ? "application/json; charset=utf-8" : "text/plain";
  in.body_size = body.size();
  in.max_request_bytes = 1 << 16;
  ym::net::RouteOutcome routed = ym::net::RouteRequest(in);
  if (routed.status.ok()) {
    Check(routed.match.id != ym::net::RouteId::kUnmatched);
  } else if (routed.status.code() == Code::kMethodNotAllowed) {
    Check(!routed.allow.empty());
  }
  std::size_t q = target.find('?');
  std::string_view query = q == std::string_view::npos ? target : target.substr(q + 1);
  CheckResult(ym::net::ParseQueryString(query));
  CheckResult(ym::net::ParseListJobsQuery(query));
  CheckResult(ym::net::ParseListDeadQuery(query));
  CheckResult(ym::net::DecodeJobCursor("", query));
  {
    auto queues = ym::net::ParseListQueuesQuery(query);
    CheckResult(queues);
    if (queues.ok()) {
      Check(queues->limit >= 1 && queues->limit <= ym::net::kMaxListLimit);
      Check(queues->after.empty() || ym::IsValidName(queues->after));
      // A decoded position encodes back to a cursor that decodes to it again.
      if (!queues->after.empty()) {
        auto again = ym::net::DecodeQueueCursor(ym::net::EncodeQueueCursor(queues->after));
        Check(again.ok() && *again == queues->after);
      }
    }
    CheckResult(ym::net::ParseCreateQuery(query));
  }

  // Trace context headers (the target line as traceparent, the body as tracestate): a context
  // accepted is valid and stored normalized, so normalizing it again changes nothing.
  {
    auto trace = ym::net::ParseTraceHeaders({std::string(target)}, {std::string(body)});
    CheckResult(trace);
    if (trace.ok()) CheckTrace(*trace);
  }

  // Bodies.
  switch ((selector >> 5) & 7) {
    case 0: {
      auto spec = ym::net::ParseEnqueue(body, limits);
      CheckResult(spec);
      if (spec.ok()) {
        Check(ym::IsValidName(spec->queue) && ym::IsValidName(spec->kind));
        Check(spec->payload.size() <= limits.max_payload_bytes);
        CheckTrace(spec->trace);
        // A stored payload is compact JSON that parses back to itself.
        auto again = ym::net::ParseEnqueue(
            "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":" + spec->payload + "}", limits);
        Check(again.ok() && again->payload == spec->payload);
      }
      break;
    }
    case 1: {
      auto batch = ym::net::ParseEnqueueBatch(body, limits);
      CheckResult(batch);
      if (batch.ok()) {
        for (const auto& item : *batch) CheckResult(item);
      }
      break;
    }
    case 2: {
      auto lease = ym::net::ParseLease(body);
      CheckResult(lease);
      if (lease.ok()) Check(lease->max >= 1 && lease->max <= 1000 && !lease->queues.empty());
      break;
    }
    case 3: {
      CheckResult(ym::net::ParseHeartbeat(body));
      CheckResult(ym::net::ParseAck(1, body, limits));
      auto watch = ym::net::ParseCancelWatch(body);
      CheckResult(watch);
      if (watch.ok()) {
        Check(!watch->worker_id.empty() && watch->worker_id.size() <= 128);
        Check(watch->known.size() <= 1000 && watch->wait_ms >= 0 && watch->wait_ms <= 30000);
      }
      break;
    }
    case 4:
      CheckResult(ym::net::ParseFail(1, body));
      break;
    case 5: {
      auto batch = ym::net::ParseCompleteBatch(body, limits);
      CheckResult(batch);
      if (batch.ok()) {
        for (const auto& a : batch->acks) CheckResult(a);
        for (const auto& f : batch->fails) CheckResult(f);
      }
      break;
    }
    case 6: {
      CheckResult(ym::net::ParseQueuePatch("q", body));
      // A limit that parses is valid, and its stored form parses back to the same limit.
      auto spec = ym::net::ParseLimitSpec("l", body);
      CheckResult(spec);
      if (spec.ok()) {
        Check(spec->Validate().ok());
        auto again = ym::flow::LimitSpec::FromJson("l", spec->ToJson());
        Check(again.ok() && *again == *spec);
      }
      // A schedule that parses is valid, and its stored form parses back to the same spec.
      auto sched = ym::net::ParseScheduleCreate(body, limits);
      CheckResult(sched);
      if (sched.ok()) {
        Check(sched->spec.Validate().ok());
        auto stored = ym::net::ParseStoredSchedule(sched->spec.id, sched->spec.json);
        Check(stored.ok() && stored->json == sched->spec.json);
        CheckResult(ym::net::ParseSchedulePatch(sched->spec.id, body, sched->spec.json, limits));
      }
      CheckStatus(ym::net::CheckSchedulePatch(body));
      CheckResult(ym::net::ParseBackfill(body));
      CheckResult(ym::net::ParseScheduleGetQuery(query));
      break;
    }
    case 7: {
      CheckResult(ym::net::ParseDeadReplay(body));
      CheckStatus(ym::net::ParseEmptyObject(body));
      for (auto action :
           {ym::BulkAction::kCancel, ym::BulkAction::kReplay, ym::BulkAction::kDelete}) {
        auto bulk = ym::net::ParseBulk(action, body);
        CheckResult(bulk);
        if (!bulk.ok()) continue;
        // Bounded, and never a state the operation does not apply to.
        Check(bulk->limit >= 1 && bulk->limit <= ym::kMaxBulkLimit);
        Check(!bulk->filter.states.empty());
        for (auto s : bulk->filter.states) Check(ym::BulkAppliesTo(action, s));
        ym::BulkOutcome out;
        out.next_after_id = bulk->after_id;
        Check(!ym::net::RenderBulkOutcome(*bulk, out).empty());
      }
      // A namespace wipe: bounded, its cursor's position never past its mark, and the cursor a
      // reply hands out decodes to the same position.
      auto wipe = ym::net::ParseWipe("acme", body);
      CheckResult(wipe);
      if (wipe.ok()) {
        Check(wipe->limit >= 1 && wipe->limit <= ym::kMaxWipeLimit);
        Check(wipe->after_id <= wipe->up_to_id);
        ym::WipeOutcome out;
        out.up_to_id = wipe->up_to_id == 0 ? 1 : wipe->up_to_id;
        out.after_id = wipe->after_id;
        const std::string reply = ym::net::RenderWipeOutcome("acme", out);
        const std::string mark = "\"next_cursor\":\"";
        const std::size_t at = reply.find(mark);
        Check(at != std::string::npos);
        const std::size_t end = reply.find('"', at + mark.size());
        const std::string again = R"({"confirm":"acme","cursor":")" +
                                  reply.substr(at + mark.size(), end - at - mark.size()) + "\"}";
        auto back = ym::net::ParseWipe("acme", again);
        Check(back.ok() && back->up_to_id == out.up_to_id && back->after_id == out.after_id);
      }
      break;
    }
  }
  // Error bodies render whatever the message holds.
  if (!routed.status.ok()) Check(!ym::net::RenderError(routed.status).empty());
  return 0;
}
