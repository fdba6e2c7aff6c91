#include "net/request_log.h"

#include <atomic>
#include <random>

#include "core/job.h"
#include "obs/logging.h"
#include "obs/redact.h"

namespace ym::net {
namespace {

bool IsTchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

void AppendHex(std::uint64_t v, int min_digits, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  int n = 0;
  do {
    buf[n++] = kHex[v & 0xf];
    v >>= 4;
  } while (v != 0 || n < min_digits);
  while (n > 0) out.push_back(buf[--n]);
}

std::uint64_t ProcessPrefix() {
  static const std::uint64_t prefix = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return prefix;
}

// Relaxed: ids only need to be distinct, not ordered across threads.
std::atomic<std::uint64_t> next_request{1};

std::string Redacted(std::string_view json) {
  std::string scratch;
  return std::string(obs::PayloadRedactor().Apply(json, scratch));
}

}  // namespace

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (unsigned char c : id) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

std::string NewRequestId() {
  std::string id;
  id.reserve(34);
  AppendHex(ProcessPrefix(), 16, id);
  id.push_back('-');
  AppendHex(next_request.fetch_add(1, std::memory_order_relaxed), 1, id);
  return id;
}

std::string RequestIdFor(std::string_view header) {
  return IsValidRequestId(header) ? std::string(header) : NewRequestId();
}

void LogAccess(const AccessEntry& e) {
  if (!obs::LogEnabled(obs::Component::kAccess, spdlog::level::info)) return;
  const std::string_view route = RouteLabel(e.route);
  const std::string_view method = boost::beast::http::to_string(e.method);
  YM_LOG(info, kAccess)
      .Str("method", std::string_view(method.data(), method.size()))
      .Str("route", route)
      .Uint("status", e.status)
      .DurationUs(e.duration_us)
      .Uint("request_bytes", e.request_bytes)
      .Uint("response_bytes", e.response_bytes)
      .Str("request_id", e.request_id)
      .Str("peer", e.peer)
      .Bool("delivered", e.delivered)
      .Msg("{} {}", route, e.status);
}

EnqueueLines::EnqueueLines(std::string_view request_id, const std::vector<EnqueueSpec>& specs) {
  if (!obs::LogEnabled(obs::Component::kJob, spdlog::level::debug)) return;
  request_id_ = request_id;
  items_.reserve(specs.size());
  for (const auto& s : specs) {
    items_.push_back(
        {s.queue, s.kind, Redacted(s.payload), std::string(TraceIdOf(s.trace.traceparent))});
  }
}

void EnqueueLines::Log(const std::vector<Result<EnqueueOutcome>>& outcomes) const {
  for (std::size_t i = 0; i < items_.size() && i < outcomes.size(); ++i) {
    const Item& item = items_[i];
    const auto& r = outcomes[i];
    if (!r.ok()) {
      YM_LOG(debug, kJob)
          .Str("request_id", request_id_)
          .Str("queue", item.queue)
          .Str("kind", item.kind)
          .Str("error", r.status().ToString())
          .Msg("enqueue refused");
      continue;
    }
    const char* what = r->duplicate ? "enqueue coalesced with an existing job"
                       : r->skipped ? "enqueue skipped by a singleton limit"
                                    : "job enqueued";
    YM_LOG(debug, kJob)
        .Str("request_id", request_id_)
        .Str("job_id", FormatJobId(r->id))
        .Str("queue", item.queue)
        .Str("kind", item.kind)
        .Str("state", StateName(r->state))
        .Str("payload", item.payload)
        .Str("trace_id", item.trace_id)
        .Msg("{}", what);
  }
}

CompleteLines::CompleteLines(std::string_view request_id, const std::vector<AckItem>& acks,
                             const std::vector<FailItem>& fails) {
  if (!obs::LogEnabled(obs::Component::kJob, spdlog::level::debug)) return;
  request_id_ = request_id;
  for (const auto& a : acks) acks_.emplace_back(a.id, Redacted(a.result));
  fails_ = fails;
}

void CompleteLines::Log(const std::vector<Status>& acked,
                        const std::vector<Result<JobState>>& failed) const {
  for (std::size_t i = 0; i < acks_.size() && i < acked.size(); ++i) {
    YM_LOG(debug, kJob)
        .Str("request_id", request_id_)
        .Str("job_id", FormatJobId(acks_[i].first))
        .Str("result", acks_[i].second)
        .Str("outcome", acked[i].ok() ? std::string("succeeded") : acked[i].ToString())
        .Msg("ack");
  }
  for (std::size_t i = 0; i < fails_.size() && i < failed.size(); ++i) {
    const FailItem& f = fails_[i];
    YM_LOG(debug, kJob)
        .Str("request_id", request_id_)
        .Str("job_id", FormatJobId(f.id))
        .Str("error_type", f.error.type)
        .Str("error", f.error.message)
        .Bool("retryable", f.error.retryable)
        .Str("outcome",
             failed[i].ok() ? std::string(StateName(*failed[i])) : failed[i].status().ToString())
        .Msg("fail");
  }
}

LeaseLines::LeaseLines(std::string_view request_id, std::string_view worker_id) {
  if (!obs::LogEnabled(obs::Component::kJob, spdlog::level::debug)) return;
  on_ = true;
  request_id_ = request_id;
  worker_id_ = worker_id;
}

void LeaseLines::Log(const std::vector<LeasedJob>& jobs) const {
  if (!on_) return;
  for (const auto& j : jobs) {
    YM_LOG(debug, kJob)
        .Str("request_id", request_id_)
        .Str("job_id", FormatJobId(j.id))
        .Str("queue", j.queue)
        .Str("kind", j.kind)
        .Str("worker_id", worker_id_)
        .Int("attempt", j.attempt)
        .Str("trace_id", TraceIdOf(j.trace.traceparent))
        .Msg("job leased");
  }
}

}  // namespace ym::net
