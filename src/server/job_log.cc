#include "server/job_log.h"

#include "core/trace_context.h"
#include "obs/logging.h"

namespace ym {
namespace {

spdlog::level::level_enum LevelOf(JobEvent e) {
  switch (e) {
    case JobEvent::kDead:
    case JobEvent::kLeaseExpired:
    case JobEvent::kTimedOut:
      return spdlog::level::info;
    default:
      return spdlog::level::debug;
  }
}

const char* MessageOf(JobEvent e) {
  switch (e) {
    case JobEvent::kDead:
      return "job dead";
    case JobEvent::kLeaseExpired:
      return "lease expired";
    case JobEvent::kTimedOut:
      return "attempt timed out";
    case JobEvent::kRetried:
      return "job retried";
    case JobEvent::kCancelled:
      return "job cancelled";
    default:
      return "job event";
  }
}

}  // namespace

bool JobLog::Wants(JobEvent event) const {
  return obs::LogEnabled(obs::Component::kJob, LevelOf(event));
}

void JobLog::Note(const JobEventNote& n) {
  // Built here rather than with YM_LOG: Wants() has checked the level, and the optional fields
  // are added only when the job has them.
  obs::LogLine line(obs::Component::kJob, LevelOf(n.event));
  line.Str("job_id", FormatJobId(n.id)).Str("queue", n.queue).Str("kind", n.kind);
  line.Int("attempt", n.attempt);
  if (!n.reason.empty()) line.Str("reason", n.reason);
  if (!n.request_id.empty()) line.Str("request_id", n.request_id);
  if (!n.traceparent.empty()) line.Str("trace_id", TraceIdOf(n.traceparent));
  line.Msg("{}", MessageOf(n.event));
}

}  // namespace ym
