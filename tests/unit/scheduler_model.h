// Shared steps of the randomized scheduler model tests (scheduler_limits_test.cc,
// scheduler_rate_quota_test.cc): ending a random active lease in one of the ways an attempt can
// end, and dropping from the model the jobs and leases that ended.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
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

// Leases from a random non-empty subset of {q1, q2}, 1..3 jobs; when nothing came, one time in
// three registers a long-poll instead (tracked in `waiters` until answered). `record` gets every
// job handed out. A lease that comes back short while `admissible` finds a job in its queues is
// a test failure. Returns what it did.
inline std::string LeaseOrWait(
    Scheduler& sched, Rng& rng, const Clock& clock,
    const std::function<void(const std::vector<LeasedJob>&)>& record,
    const std::function<bool(const std::vector<std::string>&)>& admissible,
    std::map<std::uint64_t, std::vector<std::string>>& waiters, std::uint64_t& next_waiter) {
  std::vector<std::string> qs;
  if (rng.Uniform(2)) qs.push_back("q1");
  if (qs.empty() || rng.Uniform(2)) qs.push_back("q2");
  LeaseRequest req;
  req.queues = qs;
  req.max = 1 + static_cast<std::uint32_t>(rng.Uniform(3));
  req.worker_id = "w";
  auto got = sched.Lease(req);
  record(got);
  if (got.size() < req.max && admissible(qs)) ADD_FAILURE() << "a lease came back short";
  if (!got.empty() || rng.Uniform(3) != 0) return "lease";
  const std::uint64_t w = next_waiter++;
  waiters[w] = qs;
  sched.AddWaiter(req, clock.MonoMs() + 1 + static_cast<std::int64_t>(rng.Uniform(5000)),
                  [&waiters, record, w](std::vector<LeasedJob> jobs) {
                    waiters.erase(w);
                    record(jobs);
                  });
  return "add waiter";
}

}  // namespace ym::model
