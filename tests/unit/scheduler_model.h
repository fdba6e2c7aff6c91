// Shared steps of the randomized scheduler model tests (scheduler_limits_test.cc,
// scheduler_rate_quota_test.cc): ending a random active lease in one of the ways an attempt can
// end, and dropping from the model the jobs and leases that ended.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>

#include "common/rng.h"
#include "core/scheduler.h"
#include "core/types.h"

namespace ym::model {

// Ends one of `tokens` (active job -> its lease token), picked at random: ack, fail (retried at
// once), release (a lost reply) or cancel (the job stays active, flagged). Returns what it did.
inline std::string EndRandomLease(Scheduler& sched, Rng& rng,
                                  std::map<JobId, std::uint64_t>& tokens) {
  auto it = tokens.begin();
  std::advance(it, static_cast<long>(rng.Uniform(tokens.size())));
  const JobId id = it->first;
  const std::uint64_t token = it->second;
  tokens.erase(it);
  switch (rng.Uniform(4)) {
    case 0:
      (void)sched.Ack(id, token, "null");
      return "ack";
    case 1: {
      FailSpec f;
      f.retry_in_ms = 0;
      (void)sched.Fail(id, token, f);
      return "fail";
    }
    case 2:
      sched.Release(id, token);
      return "release";
    default:
      (void)sched.Cancel(id);
      tokens[id] = token;  // still active, flagged
      return "cancel";
  }
}

inline std::optional<JobState> StateOf(const Scheduler& sched, JobId id) {
  auto v = sched.Get(id);
  if (!v) return std::nullopt;
  return v->job.state;
}

// Jobs core no longer holds leave `jobs`; jobs no longer active leave `tokens`.
template <typename Job>
void ForgetEnded(const Scheduler& sched, std::map<JobId, Job>& jobs,
                 std::map<JobId, std::uint64_t>& tokens) {
  for (auto it = jobs.begin(); it != jobs.end();) {
    const auto s = StateOf(sched, it->first);
    if (!s) {
      tokens.erase(it->first);
      it = jobs.erase(it);
      continue;
    }
    if (*s != JobState::kActive) tokens.erase(it->first);
    ++it;
  }
}

}  // namespace ym::model
