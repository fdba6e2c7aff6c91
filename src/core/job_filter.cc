#include "core/job_filter.h"

#include <algorithm>

namespace ym {
namespace {

Status ParamError(std::string_view name, std::string_view what) {
  std::string msg = "query parameter \"";
  msg += name;
  msg += "\": ";
  msg += what;
  return InvalidRequest(std::move(msg));
}

bool InRange(std::int64_t v, const std::optional<std::int64_t>& after,
             const std::optional<std::int64_t>& before) {
  if (after && v < *after) return false;
  if (before && v >= *before) return false;
  return true;
}

void AppendTime(std::string* out, const std::optional<std::int64_t>& t) {
  if (t) *out += std::to_string(*t);
  *out += '\n';
}

}  // namespace

void JobFilter::Normalize() {
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
}

Status JobFilter::Validate() const {
  constexpr std::string_view kNameRule = "must be 1 to 128 characters from [A-Za-z0-9_.:-]";
  if (!ns.empty() && !IsValidName(ns)) return ParamError("namespace", kNameRule);
  if (!queue.empty() && !IsValidName(queue)) return ParamError("queue", kNameRule);
  if (!kind.empty() && !IsValidName(kind)) return ParamError("kind", kNameRule);
  for (JobState s : states) {
    if (static_cast<std::uint8_t>(s) > static_cast<std::uint8_t>(JobState::kCancelled)) {
      return ParamError("state", "unknown state");
    }
  }
  if (tag.size() > kMaxFilterTagBytes) {
    return ParamError("tag", "must be 1 to " + std::to_string(kMaxFilterTagBytes) + " bytes");
  }
  const std::pair<std::string_view, const std::optional<std::int64_t>*> times[] = {
      {"created_after", &created_after_ms},
      {"created_before", &created_before_ms},
      {"finished_after", &finished_after_ms},
      {"finished_before", &finished_before_ms},
  };
  for (const auto& [name, t] : times) {
    if (*t && **t < 0) return ParamError(name, "must be epoch milliseconds (>= 0)");
  }
  return Status::Ok();
}

bool JobFilter::empty() const { return *this == JobFilter{}; }

bool JobFilter::MatchesState(JobState s) const {
  return states.empty() || std::find(states.begin(), states.end(), s) != states.end();
}

bool JobFilter::MayMatchLive() const {
  if (finished_after_ms || finished_before_ms) return false;
  for (JobState s : {JobState::kScheduled, JobState::kReady, JobState::kActive}) {
    if (MatchesState(s)) return true;
  }
  return false;
}

std::vector<JobState> JobFilter::FinishedStates() const {
  std::vector<JobState> out;
  for (JobState s : {JobState::kSucceeded, JobState::kDead, JobState::kCancelled}) {
    if (MatchesState(s)) out.push_back(s);
  }
  return out;
}

bool JobFilter::MayMatchFinished() const { return !FinishedStates().empty(); }

bool JobFilter::MatchesFields(std::string_view job_ns, std::string_view job_queue,
                              std::string_view job_kind, JobState state, std::int64_t created_at_ms,
                              std::int64_t finished_at_ms,
                              const std::vector<std::string>& tags) const {
  if (!ns.empty() && job_ns != ns) return false;
  if (!queue.empty() && job_queue != queue) return false;
  if (!kind.empty() && job_kind != kind) return false;
  if (!MatchesState(state)) return false;
  if (!InRange(created_at_ms, created_after_ms, created_before_ms)) return false;
  if (finished_after_ms || finished_before_ms) {
    if (!IsTerminal(state)) return false;
    if (!InRange(finished_at_ms, finished_after_ms, finished_before_ms)) return false;
  }
  if (!tag.empty() && std::find(tags.begin(), tags.end(), tag) == tags.end()) return false;
  return true;
}

bool JobFilter::Matches(const JobRecord& job) const {
  return MatchesFields(job.ns, job.queue, job.kind, job.state, job.created_at_ms,
                       job.finished_at_ms, job.tags);
}

bool JobFilter::Matches(const LiveJob& job, const LiveNames& names) const {
  if (names.queue && job.queue != *names.queue) return false;
  if (names.ns && job.ns != *names.ns) return false;
  if (names.kind && job.kind != *names.kind) return false;
  if (!MatchesState(job.state)) return false;
  if (!InRange(job.created_at_ms, created_after_ms, created_before_ms)) return false;
  if (finished_after_ms || finished_before_ms) {
    if (!IsTerminal(job.state)) return false;
    if (!InRange(job.updated_at_ms, finished_after_ms, finished_before_ms)) return false;
  }
  if (!tag.empty()) {
    if (!job.extra) return false;
    const auto& tags = job.extra->tags;
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) return false;
  }
  return true;
}

std::string JobFilter::Scope() const {
  // One line per field, in a fixed order. Names cannot hold a newline (IsValidName); the tag
  // may hold any byte, so it is length-prefixed to keep the text unambiguous.
  std::vector<JobState> sorted = states;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  out += ns;
  out += '\n';
  out += queue;
  out += '\n';
  out += kind;
  out += '\n';
  for (JobState s : sorted) {
    out += StateName(s);
    out += ',';
  }
  out += '\n';
  out += std::to_string(tag.size());
  out += ':';
  out += tag;
  out += '\n';
  AppendTime(&out, created_after_ms);
  AppendTime(&out, created_before_ms);
  AppendTime(&out, finished_after_ms);
  AppendTime(&out, finished_before_ms);
  return out;
}

}  // namespace ym
