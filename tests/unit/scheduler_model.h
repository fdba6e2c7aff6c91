// Shared steps of the randomized scheduler model tests (scheduler_limits_test.cc,
// scheduler_rate_quota_test.cc, scheduler_all_limits_model_test.cc): ending a random active
// lease in one of the ways an attempt can end, dropping from the model the jobs and leases that
// ended, the exact rate rule, and a reference breaker.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/breaker.h"
#include "core/flow/gcra.h"
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

// The exact rate rule (docs/flow-control.md, "Rate limit: GCRA"): one more start at `now`, after
// `starts` (non-decreasing), keeps every window [starts[i], now] within count * W / period +
// burst.
inline bool RateAdmits(const std::vector<std::int64_t>& starts, std::int64_t now,
                       const flow::GcraConfig& c) {
  const auto k = static_cast<std::int64_t>(starts.size());
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t n = k - i + 1;
    if ((n - c.burst) * c.period_ms > (now - starts[static_cast<std::size_t>(i)]) * c.count) {
      return false;
    }
  }
  return true;
}

// Every window of `starts` (non-decreasing) within the rate's bound; the first broken window
// as text, empty when none.
inline std::string RateWindowBroken(const std::vector<std::int64_t>& starts,
                                    const flow::GcraConfig& c) {
  for (std::size_t b = 0; b < starts.size(); ++b) {
    for (std::size_t a = 0; a <= b; ++a) {
      const auto n = static_cast<std::int64_t>(b - a + 1);
      if ((n - c.burst) * c.period_ms > (starts[b] - starts[a]) * c.count) {
        return "starts " + std::to_string(a) + ".." + std::to_string(b);
      }
    }
  }
  return "";
}

// A reference model of keyed circuit breakers with a consecutive-failures trip (the rules of
// core/flow/breaker.h), fed the starts and outcomes the scheduler reports.
class BreakerRef {
 public:
  enum Outcome { kSuccess, kFailure, kAbandoned };
  struct Ticket {
    std::uint64_t epoch = 0;
    bool trial = false;
  };
  struct Key {
    flow::BreakerPhase phase = flow::BreakerPhase::kClosed;
    std::int64_t run = 0;
    std::int64_t interval = 0;
    std::int64_t opens = 0;
    std::int64_t next_open = 0;
    std::uint64_t epoch = 0;
    bool trial_out = false;
  };

  explicit BreakerRef(flow::BreakerConfig cfg) : cfg_(cfg) {}

  // Would the key's breaker let a start through at `mono`?
  bool Allows(const std::string& key, std::int64_t mono) const {
    auto it = keys_.find(key);
    if (it == keys_.end()) return true;
    const Key& m = it->second;
    if (m.phase == flow::BreakerPhase::kOpen) return mono >= m.next_open;
    if (m.phase == flow::BreakerPhase::kHalfOpen) return !m.trial_out;
    return true;
  }
  // A start the scheduler made; `*ok` is false when the model would have refused it.
  Ticket Admit(const std::string& key, std::int64_t mono, bool* ok) {
    *ok = Allows(key, mono);
    Key& m = keys_[key];
    if (m.phase == flow::BreakerPhase::kOpen && mono >= m.next_open) {
      m.phase = flow::BreakerPhase::kHalfOpen;
      ++m.epoch;
    }
    const bool trial = m.phase == flow::BreakerPhase::kHalfOpen;
    if (trial) m.trial_out = true;
    return Ticket{m.epoch, trial};
  }
  // The end of a start admitted with `t`.
  void End(const std::string& key, const Ticket& t, Outcome outcome, std::int64_t mono) {
    Key& m = keys_[key];
    if (t.epoch != m.epoch) return;  // stale
    if (m.phase == flow::BreakerPhase::kClosed) {
      if (outcome == kAbandoned) return;
      m.run = outcome == kFailure ? m.run + 1 : 0;
      if (m.run >= cfg_.consecutive_failures) Open(m, mono);
    } else if (m.phase == flow::BreakerPhase::kHalfOpen) {
      if (outcome == kSuccess) {
        m = Key{flow::BreakerPhase::kClosed, 0, 0, 0, 0, m.epoch + 1, false};
      } else if (outcome == kFailure) {
        Open(m, mono);
      } else {
        ++m.epoch;
        m.trial_out = false;
      }
    }
  }
  // Trials out for `key` in its current epoch among `tickets` must be at most one.
  const std::map<std::string, Key>& keys() const { return keys_; }

 private:
  void Open(Key& m, std::int64_t mono) {
    m.interval = m.opens == 0 ? cfg_.open_base_ms : std::min(m.interval * 2, cfg_.open_max_ms);
    ++m.opens;
    m.phase = flow::BreakerPhase::kOpen;
    ++m.epoch;
    m.next_open = mono + m.interval;
    m.trial_out = false;
    m.run = 0;
  }

  flow::BreakerConfig cfg_;
  std::map<std::string, Key> keys_;
};

}  // namespace ym::model
