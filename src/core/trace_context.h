// TraceContext: the W3C Trace Context (https://www.w3.org/TR/trace-context/) a producer sends
// with an enqueue, stored with the job and handed to the worker that runs it (docs/api.md,
// "Trace context"; docs/operations.md, "Trace context").
//
// The broker is a carrier, not a tracer: it never starts spans nor rewrites the parent id. It
// validates what it is given (so that a worker never receives a context its tracer would
// reject) and keeps it verbatim (a tracestate is normalized: optional whitespace around members
// and empty members are dropped, per the specification's list rules).
//
//   traceparent = "00-" trace-id(32 lowercase hex, not all 0) "-" parent-id(16 lowercase hex,
//                 not all 0) "-" trace-flags(2 lowercase hex)          -> exactly 55 bytes
//   tracestate  = list-member *( OWS "," OWS list-member ), at most 32 members, no duplicate
//                 key, at most kMaxTracestateBytes once normalized; only with a traceparent
//
// Only version 00 is accepted. The specification lets a receiver parse a higher version's first
// four fields and ignore the rest; the broker would then store fields it cannot validate and
// hand them to tracers that may not know them, so it refuses them with a clear error instead
// (a producer library emits version 00: no released version is higher).
//
// Pure value functions: no state, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ym {

struct TraceContext {
  std::string traceparent;  // empty: none
  std::string tracestate;   // empty: none (never set without a traceparent)

  bool empty() const { return traceparent.empty(); }
  bool operator==(const TraceContext&) const = default;
};

inline constexpr std::size_t kTraceparentBytes = 55;
// The specification asks carriers to propagate at least 512 characters of tracestate; the
// broker keeps exactly that much and refuses longer lists (rather than truncating members a
// vendor may need, silently).
inline constexpr std::size_t kMaxTracestateBytes = 512;
inline constexpr std::size_t kMaxTracestateMembers = 32;

// Ok when `text` is a valid version-00 traceparent; otherwise kInvalidRequest naming `where`
// (e.g. "header \"traceparent\"") and what is wrong.
Status CheckTraceparent(std::string_view text, std::string_view where);

// The normalized tracestate (members joined by ",", without optional whitespace or empty
// members; empty when the list has no member), or kInvalidRequest naming `where`.
Result<std::string> NormalizeTracestate(std::string_view text, std::string_view where);

// Validates a pair as received. `traceparent`/`tracestate` are nullopt when absent. A tracestate
// without a traceparent is refused (the specification has it ignored, but here the producer
// asked for it explicitly, and dropping it silently would hide the mistake). Errors carry
// `code` (kInvalidRequest for headers, kValidation for JSON fields) and name the source by
// `traceparent_name`/`tracestate_name`.
Result<TraceContext> ParseTraceContext(std::optional<std::string_view> traceparent,
                                       std::optional<std::string_view> tracestate, Code code,
                                       std::string_view traceparent_name,
                                       std::string_view tracestate_name);

// The trace id (32 hex) of a valid traceparent; empty for an empty one. For log lines.
std::string_view TraceIdOf(std::string_view traceparent);

}  // namespace ym
