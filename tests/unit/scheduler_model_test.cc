// Randomized model-based test of the Scheduler (in the style of LevelDB's ModelDB): the same
// random operations run against the real Scheduler and against a tiny reference model (a map
// id -> state, attempts, lease token), and after every step the two must agree.
//
// Each seed is reported with SCOPED_TRACE; to replay one, run with YM_MODEL_SEED=<seed> (and
// optionally YM_MODEL_STEPS=<n>). On a failure the last operations are printed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/job.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "store/batch.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;
const std::vector<std::string> kQueues = {"q0", "q1", "q2"};
const std::vector<std::string> kNamespaces = {"n0", "n1"};

// What the model knows about one job.
struct ModelJob {
  JobId id = 0;
  std::string queue;
  std::string ns;
  std::int32_t priority = 0;
  std::int32_t max_attempts = 0;
  std::int64_t lease_ms = 0;
  std::int64_t timeout_ms = 0;  // execution timeout; 0: none
  Backoff backoff;

  bool pending = true;  // enqueued, its batch not yet durable
  JobState state = JobState::kReady;
  std::int64_t run_at_ms = 0;
  std::int32_t attempts = 0;
  std::uint64_t token = 0;  // current lease (kept after an ack, like the scheduler)
  std::uint64_t old_token = 0;
  std::int64_t lease_expires_ms = 0;
  std::int64_t deadline_ms = 0;  // the running attempt's execution deadline; 0: none
  bool cancel_requested = false;
  std::size_t errors = 0;
  bool in_memory = true;  // false once its terminal batch committed
  int terminal_transitions = 0;
};

struct ModelWaiter {
  std::vector<std::string> queues;
  std::uint32_t max = 1;
  std::optional<std::int64_t> lease_ms;
  std::int64_t deadline_ms = 0;
  int calls = 0;
};

struct SealedModelBatch {
  std::uint64_t seq;
  std::vector<JobId> promote;
  std::vector<JobId> evict;
};

class ModelRun {
 public:
  explicit ModelRun(std::uint64_t seed)
      : seed_(seed),
        clock_(kStart),
        sched_rng_(seed * 0x9e3779b97f4a7c15ULL + 1),
        op_rng_(seed),
        sched_(clock_, sched_rng_, Options()) {}

  static SchedulerOptions Options() {
    SchedulerOptions o;
    // Frequent sweeps, so that heap compaction runs in the middle of the traffic.
    o.retention_sweep_interval_ms = 2000;
    return o;
  }

  void Run(int steps) {
    for (int step = 0; step < steps; ++step) {
      Step();
      CheckInvariants(step % 50 == 0);
      if (::testing::Test::HasFailure()) {
        PrintHistory(step);
        return;
      }
    }
    Drain();
    if (::testing::Test::HasFailure()) PrintHistory(steps);
  }

 private:
  // --- Helpers -----------------------------------------------------------------------------

  std::uint64_t Pick(std::uint64_t n) { return op_rng_.Uniform(n); }
  bool Chance(int percent) { return Pick(100) < static_cast<std::uint64_t>(percent); }

  void Log(std::string s) {
    history_.push_back("t+" + std::to_string(clock_.NowMs() - kStart) + " " + std::move(s));
    if (history_.size() > 40) history_.pop_front();
  }

  void PrintHistory(int step) {
    std::string all;
    for (const auto& h : history_) all += "  " + h + "\n";
    ADD_FAILURE() << "seed " << seed_ << " failed at step " << step << "; last operations:\n"
                  << all;
  }

  ModelJob* Find(JobId id) {
    auto it = jobs_.find(id);
    if (it != jobs_.end()) return &it->second;
    it = gone_.find(id);
    return it == gone_.end() ? nullptr : &it->second;
  }

  bool Live(const ModelJob& j) const { return !j.pending && !IsTerminal(j.state); }

  // A random job in `state` (not pending), or nullptr.
  ModelJob* RandomIn(JobState state) {
    std::vector<ModelJob*> c;
    for (auto& [id, j] : jobs_) {
      if (j.in_memory && !j.pending && j.state == state) c.push_back(&j);
    }
    return c.empty() ? nullptr : c[Pick(c.size())];
  }

  // A random job, usually one still in memory, sometimes one already evicted.
  ModelJob* RandomAny() {
    auto& from = (Chance(80) || gone_.empty()) ? jobs_ : gone_;
    if (from.empty()) return nullptr;
    auto it = from.begin();
    std::advance(it, static_cast<long>(Pick(from.size())));
    return &it->second;
  }

  void BecomeTerminal(ModelJob& j, JobState s) {
    j.state = s;
    j.pending = false;
    ++j.terminal_transitions;
    open_evict_.push_back(j.id);
  }

  // Cap of the full-jitter delay after attempt n, exactly as documented in core/job.h.
  static std::int64_t BackoffCap(const Backoff& b, int n) {
    double cap = static_cast<double>(b.initial_ms) * std::pow(b.multiplier, std::max(n, 1) - 1);
    if (!(cap < static_cast<double>(b.max_ms))) cap = static_cast<double>(b.max_ms);
    return static_cast<std::int64_t>(cap);
  }

  // A job the scheduler handed out: it must have been ready in the model.
  void OnLeased(const LeasedJob& l, std::optional<std::int64_t> lease_ms_override,
                bool check_priority) {
    ModelJob* j = Find(l.id);
    ASSERT_NE(j, nullptr) << "leased unknown job " << l.id;
    EXPECT_TRUE(j->in_memory) << "job " << l.id;
    EXPECT_FALSE(IsTerminal(j->state))
        << "terminal job " << l.id << " (" << StateName(j->state) << ") leased again";
    EXPECT_FALSE(j->pending) << "job " << l.id << " leased before its enqueue was durable";
    EXPECT_EQ(j->state, JobState::kReady)
        << "job " << l.id << " leased while " << StateName(j->state);
    EXPECT_FALSE(paused_.count(j->queue)) << "job " << l.id << " leased from a paused queue";
    EXPECT_EQ(l.attempt, j->attempts + 1) << "job " << l.id;
    EXPECT_LE(l.attempt, j->max_attempts) << "job " << l.id << " over max_attempts";
    EXPECT_NE(l.lease.token, 0u);
    EXPECT_TRUE(tokens_.insert(l.lease.token).second) << "token reused";
    const std::int64_t lease_ms =
        lease_ms_override && *lease_ms_override > 0 ? *lease_ms_override : j->lease_ms;
    // With an execution timeout the lease ends at the attempt's deadline at the latest.
    j->deadline_ms = j->timeout_ms > 0 ? clock_.NowMs() + j->timeout_ms : 0;
    EXPECT_EQ(l.lease.deadline_at_ms, j->deadline_ms) << "job " << l.id;
    EXPECT_EQ(l.timeout_ms, j->timeout_ms) << "job " << l.id;
    EXPECT_EQ(l.lease.expires_at_ms, Capped(clock_.NowMs() + lease_ms, *j)) << "job " << l.id;
    EXPECT_EQ(l.queue, j->queue);
    EXPECT_EQ(l.ns, j->ns);
    j->state = JobState::kActive;
    j->attempts = l.attempt;
    j->old_token = j->token ? j->token : j->old_token;
    j->token = l.lease.token;
    j->lease_expires_ms = l.lease.expires_at_ms;
    if (check_priority) {
      // Within one (queue, namespace) lane, nothing still ready may outrank what was taken.
      for (const auto& [id, o] : jobs_) {
        if (o.in_memory && !o.pending && o.state == JobState::kReady && o.queue == j->queue &&
            o.ns == j->ns) {
          EXPECT_LE(o.priority, j->priority)
              << "job " << l.id << " leased before higher-priority job " << id;
        }
      }
    }
  }

  static std::int64_t Capped(std::int64_t expires, const ModelJob& j) {
    return j.deadline_ms != 0 ? std::min(expires, j.deadline_ms) : expires;
  }

  // Leases delivered to long-poll waiters during the last command: applied after the model
  // applied the command's own transitions (waiters are served at the end of a command).
  void ApplyWaiterLeases() {
    auto got = std::move(waiter_leases_);
    waiter_leases_.clear();
    for (const auto& [wid, jobs] : got) {
      const ModelWaiter& w = waiters_.at(wid);
      EXPECT_LE(jobs.size(), w.max);
      for (const LeasedJob& l : jobs) {
        EXPECT_NE(std::find(w.queues.begin(), w.queues.end(), l.queue), w.queues.end());
        OnLeased(l, w.lease_ms, /*check_priority=*/false);
      }
    }
  }

  void AccountBatch(const Batch& b) {
    for (const Mutation& m : b.mutations) {
      JobId id = 0;
      bool terminal = false;
      if (const auto* ins = std::get_if<InsertJob>(&m)) {
        id = ins->job.id;
        EXPECT_EQ(inserted_[id]++, 0) << "job " << id << " inserted twice";
      } else if (const auto* up = std::get_if<UpdateJob>(&m)) {
        id = up->job.id;
        terminal = IsTerminal(up->job.state);
        EXPECT_LE(up->job.attempts, up->job.max_attempts) << "job " << id;
      } else if (const auto* del = std::get_if<DeleteJob>(&m)) {
        id = del->id;
        terminal = true;
      } else {
        continue;
      }
      EXPECT_EQ(terminal_mutations_[id], 0)
          << "job " << id << " written again after its terminal state";
      if (terminal) ++terminal_mutations_[id];
    }
  }

  // --- Operations --------------------------------------------------------------------------

  void Step() {
    const std::uint64_t r = Pick(100);
    if (r < 18) {
      DoEnqueue();
    } else if (r < 22) {
      DoSeal();
    } else if (r < 28) {
      DoCommitSealed();
    } else if (r < 35) {
      DoSeal();
      DoCommitSealed();
    } else if (r < 48) {
      DoLease();
    } else if (r < 52) {
      DoLongPoll();
    } else if (r < 62) {
      DoAck();
    } else if (r < 71) {
      DoFail();
    } else if (r < 77) {
      DoHeartbeat();
    } else if (r < 81) {
      DoCancel();
    } else if (r < 83) {
      DoRelease();
    } else if (r < 94) {
      DoAdvance(static_cast<std::int64_t>(Pick(1500)));
    } else if (r < 96) {
      DoPause();
    } else {
      DoStaleToken();
    }
    ApplyWaiterLeases();
  }

  void DoEnqueue() {
    EnqueueSpec s;
    s.queue = kQueues[Pick(kQueues.size())];
    s.ns = kNamespaces[Pick(kNamespaces.size())];
    s.kind = "k";
    s.priority = static_cast<std::int32_t>(Pick(7)) - 3;
    const std::uint64_t d = Pick(10);
    if (d < 3) {
      s.delay_ms = static_cast<std::int64_t>(Pick(3000));
    } else if (d < 4) {
      s.run_at_ms = clock_.NowMs() + static_cast<std::int64_t>(Pick(4000)) - 1000;
    }
    s.max_attempts = static_cast<std::int32_t>(1 + Pick(4));
    s.lease_ms = 100 + static_cast<std::int64_t>(Pick(2000));
    if (Chance(30)) s.timeout_ms = Chance(10) ? 0 : 100 + static_cast<std::int64_t>(Pick(3000));
    if (Chance(70)) {
      s.backoff =
          Backoff{static_cast<std::int64_t>(1 + Pick(200)), 1000, static_cast<double>(1 + Pick(3))};
    }
    if (Chance(10)) s.idempotency_key = "key" + std::to_string(Pick(8));
    Log("enqueue " + s.queue + "/" + s.ns + " prio " + std::to_string(s.priority) +
        (s.idempotency_key.empty() ? "" : " key " + s.idempotency_key));

    const std::size_t live_before = sched_.live_jobs();
    const std::size_t open_before = sched_.open_mutations();
    auto out = sched_.Enqueue(s);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    if (!s.idempotency_key.empty()) {
      auto it = idem_.find(s.ns + "/" + s.idempotency_key);
      if (it != idem_.end()) {
        EXPECT_TRUE(out->duplicate);
        EXPECT_EQ(out->id, it->second);
        EXPECT_EQ(sched_.live_jobs(), live_before);
        EXPECT_EQ(sched_.open_mutations(), open_before) << "a duplicate wrote something";
        Log("  duplicate of " + std::to_string(out->id));
        return;
      }
    }
    EXPECT_FALSE(out->duplicate);
    EXPECT_EQ(Find(out->id), nullptr) << "id " << out->id << " reused";
    ModelJob j;
    j.id = out->id;
    j.queue = s.queue;
    j.ns = s.ns;
    j.priority = s.priority;
    j.max_attempts = *s.max_attempts;
    j.lease_ms = *s.lease_ms;
    j.timeout_ms = s.timeout_ms.value_or(0);
    j.backoff = s.backoff.value_or(SchedulerOptions{}.default_backoff);
    j.run_at_ms = s.run_at_ms ? *s.run_at_ms : clock_.NowMs() + s.delay_ms.value_or(0);
    j.state = j.run_at_ms > clock_.NowMs() ? JobState::kScheduled : JobState::kReady;
    EXPECT_EQ(out->state, j.state);
    jobs_.emplace(j.id, j);
    open_promote_.push_back(j.id);
    if (!s.idempotency_key.empty()) idem_[s.ns + "/" + s.idempotency_key] = j.id;
    Log("  -> job " + std::to_string(j.id));
  }

  void DoSeal() {
    Batch b = sched_.SealBatch();
    Log("seal " + std::to_string(b.seq) + " (" + std::to_string(b.mutations.size()) + " muts)");
    AccountBatch(b);
    sealed_.push_back(SealedModelBatch{b.seq, std::move(open_promote_), std::move(open_evict_)});
    open_promote_.clear();
    open_evict_.clear();
  }

  void DoCommitSealed() {
    if (sealed_.empty()) return;
    // Commit a prefix of the sealed batches (the writer commits in seq order).
    const std::size_t n = 1 + Pick(sealed_.size());
    const std::uint64_t seq = sealed_[n - 1].seq;
    Log("commit through " + std::to_string(seq));
    sched_.OnCommitted(seq);
    for (std::size_t i = 0; i < n; ++i) {
      SealedModelBatch s = std::move(sealed_.front());
      sealed_.pop_front();
      for (JobId id : s.promote) {
        ModelJob* j = Find(id);
        if (!j->pending) continue;  // cancelled before it became durable
        j->pending = false;
        j->state = j->run_at_ms > clock_.NowMs() ? JobState::kScheduled : JobState::kReady;
      }
      for (JobId id : s.evict) {
        // Evicted jobs move out of the hot map so per-step checks stay cheap.
        auto node = jobs_.extract(id);
        node.mapped().in_memory = false;
        gone_.insert(std::move(node));
      }
    }
  }

  std::vector<std::string> RandomQueues() {
    std::vector<std::string> qs;
    for (const auto& q : kQueues) {
      if (Chance(50)) qs.push_back(q);
    }
    if (qs.empty()) qs.push_back(kQueues[Pick(kQueues.size())]);
    if (Chance(5)) qs.push_back("nope");
    return qs;
  }

  std::uint64_t ReadyIn(const std::vector<std::string>& qs) {
    std::uint64_t n = 0;
    for (const auto& [id, j] : jobs_) {
      if (j.in_memory && !j.pending && j.state == JobState::kReady && !paused_.count(j.queue) &&
          std::find(qs.begin(), qs.end(), j.queue) != qs.end()) {
        ++n;
      }
    }
    return n;
  }

  LeaseRequest RandomRequest() {
    LeaseRequest req;
    req.queues = RandomQueues();
    req.max = static_cast<std::uint32_t>(1 + Pick(3));
    req.worker_id = "w" + std::to_string(Pick(3));
    if (Chance(30)) req.lease_ms = 100 + static_cast<std::int64_t>(Pick(3000));
    return req;
  }

  void DoLease() {
    LeaseRequest req = RandomRequest();
    const std::uint64_t ready = ReadyIn(req.queues);
    auto got = sched_.Lease(req);
    Log("lease max " + std::to_string(req.max) + " -> " + std::to_string(got.size()) +
        " (model ready " + std::to_string(ready) + ")");
    // Lease takes what is ready now, up to max.
    EXPECT_EQ(got.size(), std::min<std::uint64_t>(req.max, ready));
    for (const LeasedJob& l : got) {
      Log("  leased " + std::to_string(l.id) + " attempt " + std::to_string(l.attempt));
      OnLeased(l, req.lease_ms, /*check_priority=*/true);
    }
  }

  void DoLongPoll() {
    LeaseRequest req = RandomRequest();
    auto got = sched_.Lease(req);
    for (const LeasedJob& l : got) OnLeased(l, req.lease_ms, /*check_priority=*/true);
    if (!got.empty()) {
      Log("long-poll got " + std::to_string(got.size()) + " at once");
      return;
    }
    const std::uint64_t wid = next_waiter_++;
    ModelWaiter w;
    w.queues = req.queues;
    w.max = req.max;
    w.lease_ms = req.lease_ms;
    w.deadline_ms = clock_.NowMs() + static_cast<std::int64_t>(Pick(3000));
    waiters_.emplace(wid, w);
    Log("long-poll waiter " + std::to_string(wid) + " until t+" +
        std::to_string(w.deadline_ms - kStart));
    sched_.AddWaiter(req, clock_.MonoMs() + (w.deadline_ms - clock_.NowMs()),
                     [this, wid](std::vector<LeasedJob> jobs) {
                       ModelWaiter& mw = waiters_.at(wid);
                       ++mw.calls;
                       EXPECT_EQ(mw.calls, 1) << "waiter " << wid << " called more than once";
                       if (jobs.empty()) {
                         EXPECT_TRUE(shutting_down_ || clock_.NowMs() >= mw.deadline_ms)
                             << "waiter " << wid << " answered empty before its deadline";
                       }
                       waiter_leases_.emplace_back(wid, std::move(jobs));
                     });
  }

  // The answer the scheduler must give to ack/fail/heartbeat with `token` on job `j`.
  static bool HoldsLease(const ModelJob& j, std::uint64_t token) {
    return j.in_memory && !j.pending && j.state == JobState::kActive && token != 0 &&
           token == j.token;
  }

  void DoAck() {
    ModelJob* j = RandomIn(JobState::kActive);
    if (!j) return;
    Ack(*j, j->token);
  }

  void Ack(ModelJob& j, std::uint64_t token) {
    auto r = sched_.Ack(j.id, token, "");
    Log("ack " + std::to_string(j.id) + (token == j.token ? "" : " (stale token)") + " -> " +
        (r.ok() ? std::string(StateName(*r)) : r.status().ToString()));
    const bool repeat =
        j.in_memory && j.state == JobState::kSucceeded && token == j.token && token != 0;
    if (HoldsLease(j, token)) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(*r, JobState::kSucceeded);
      BecomeTerminal(j, JobState::kSucceeded);
    } else if (repeat) {
      ASSERT_TRUE(r.ok()) << "a repeated ack is answered again: " << r.status().ToString();
      EXPECT_EQ(*r, JobState::kSucceeded);
    } else {
      EXPECT_EQ(r.status().code(), Code::kStaleLease);
    }
  }

  void DoFail() {
    ModelJob* j = RandomIn(JobState::kActive);
    if (!j) return;
    Fail(*j, j->token);
  }

  void Fail(ModelJob& j, std::uint64_t token) {
    FailSpec f;
    f.type = "boom";
    f.retryable = Chance(80);
    if (Chance(40)) f.retry_in_ms = Chance(30) ? 0 : static_cast<std::int64_t>(Pick(2000));
    auto r = sched_.Fail(j.id, token, f);
    Log("fail " + std::to_string(j.id) + (f.retryable ? " retryable" : " fatal") +
        (f.retry_in_ms ? " in " + std::to_string(*f.retry_in_ms) : "") + " -> " +
        (r.ok() ? std::string(StateName(*r)) : r.status().ToString()));
    if (!HoldsLease(j, token)) {
      EXPECT_EQ(r.status().code(), Code::kStaleLease);
      return;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::int64_t now = clock_.NowMs();
    ++j.errors;
    j.old_token = j.token;
    j.token = 0;
    if (j.cancel_requested) {
      EXPECT_EQ(*r, JobState::kCancelled);
      BecomeTerminal(j, JobState::kCancelled);
    } else if (!f.retryable || j.attempts >= j.max_attempts) {
      EXPECT_EQ(*r, JobState::kDead);
      BecomeTerminal(j, JobState::kDead);
    } else if (f.retry_in_ms) {
      j.run_at_ms = now + *f.retry_in_ms;
      j.state = *f.retry_in_ms == 0 ? JobState::kReady : JobState::kScheduled;
      EXPECT_EQ(*r, j.state);
    } else {
      // Full jitter: the scheduler picked the delay; it must lie in [0, cap].
      EXPECT_TRUE(*r == JobState::kReady || *r == JobState::kScheduled);
      j.state = *r;
      if (*r == JobState::kReady) {
        j.run_at_ms = now;
      } else {
        auto v = sched_.Get(j.id);
        ASSERT_TRUE(v.has_value());
        j.run_at_ms = v->job.run_at_ms;
        EXPECT_GT(j.run_at_ms, now);
        EXPECT_LE(j.run_at_ms, now + BackoffCap(j.backoff, j.attempts))
            << "backoff over its cap after attempt " << j.attempts;
      }
    }
  }

  void DoHeartbeat() {
    ModelJob* j = RandomIn(JobState::kActive);
    if (!j) return;
    Heartbeat(*j, j->token);
  }

  void Heartbeat(ModelJob& j, std::uint64_t token) {
    std::int64_t extend = 0;
    if (Chance(50)) extend = 100 + static_cast<std::int64_t>(Pick(3000));
    if (Chance(3)) extend = 50;  // below min_lease_ms
    auto r = sched_.Heartbeat(j.id, token, extend);
    Log("heartbeat " + std::to_string(j.id) + " extend " + std::to_string(extend) + " -> " +
        (r.ok() ? "ok" : r.status().ToString()));
    if (!HoldsLease(j, token)) {
      EXPECT_EQ(r.status().code(), Code::kStaleLease);
      return;
    }
    if (extend == 50) {
      EXPECT_EQ(r.status().code(), Code::kValidation);
      return;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::int64_t expires = Capped(clock_.NowMs() + (extend > 0 ? extend : j.lease_ms), j);
    EXPECT_EQ(r->expires_at_ms, expires);
    EXPECT_EQ(r->cancel_requested, j.cancel_requested);
    j.lease_expires_ms = expires;
  }

  void DoCancel() {
    ModelJob* j = RandomAny();
    if (!j) return;
    auto r = sched_.Cancel(j->id);
    Log("cancel " + std::to_string(j->id) + " (" + std::string(StateName(j->state)) +
        (j->pending ? ", pending" : "") + (j->in_memory ? "" : ", evicted") + ") -> " +
        (r.ok() ? std::string(StateName(r->job.state)) : r.status().ToString()));
    if (!j->in_memory) {
      EXPECT_EQ(r.status().code(), Code::kNotFound);
    } else if (IsTerminal(j->state)) {
      if (j->state == JobState::kCancelled) {
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->job.state, JobState::kCancelled);
      } else {
        EXPECT_EQ(r.status().code(), Code::kInvalidState);
      }
    } else if (!j->pending && j->state == JobState::kActive) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->job.state, JobState::kActive);
      EXPECT_TRUE(r->job.cancel_requested);
      j->cancel_requested = true;
    } else {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->job.state, JobState::kCancelled);
      BecomeTerminal(*j, JobState::kCancelled);
    }
  }

  void DoRelease() {
    ModelJob* j = RandomIn(JobState::kActive);
    if (!j) return;
    Log("release " + std::to_string(j->id));
    sched_.Release(j->id, j->token);
    --j->attempts;
    j->old_token = j->token;
    j->token = 0;
    if (j->cancel_requested) {
      // The cancel was accepted and no worker has the job: it ends cancelled.
      BecomeTerminal(*j, JobState::kCancelled);
    } else {
      j->state = JobState::kReady;
    }
  }

  void DoStaleToken() {
    ModelJob* j = RandomAny();
    if (!j) return;
    // A token this job never held, an earlier lease's token, or its current one (which is
    // stale too unless the job is active, except for a repeated ack).
    const std::uint64_t choice = Pick(3);
    const std::uint64_t token =
        choice == 0 ? j->token + 0x5555 : (choice == 1 ? j->old_token : j->token);
    if (choice == 2 && HoldsLease(*j, token)) return;  // not a stale case
    const std::uint64_t what = Pick(3);
    if (what == 0) {
      Ack(*j, token);
    } else if (what == 1) {
      Fail(*j, token);
    } else {
      Heartbeat(*j, token);
    }
  }

  void DoAdvance(std::int64_t ms) {
    clock_.Advance(ms);
    Log("advance " + std::to_string(ms) + " + tick");
    sched_.Tick();
    const std::int64_t now = clock_.NowMs();
    for (auto& [id, j] : jobs_) {
      if (!j.in_memory || j.pending) continue;
      if (j.state == JobState::kScheduled && j.run_at_ms <= now) j.state = JobState::kReady;
    }
    for (auto& [id, j] : jobs_) {
      if (!j.in_memory || j.pending || j.state != JobState::kActive) continue;
      if (j.lease_expires_ms > now) continue;
      // Expired: a failed attempt ("lease_expired"), back to ready at once; or, when the lease
      // ran to the attempt's deadline, a "timeout", retried by the backoff.
      const bool timed_out = j.deadline_ms != 0 && now >= j.deadline_ms;
      ++j.errors;
      j.old_token = j.token;
      j.token = 0;
      j.deadline_ms = 0;
      {
        auto v = sched_.Get(j.id);
        ASSERT_TRUE(v.has_value());
        ASSERT_FALSE(v->job.errors.empty());
        EXPECT_EQ(v->job.errors.back().type, timed_out ? "timeout" : "lease_expired")
            << "job " << id;
      }
      if (j.cancel_requested) {
        BecomeTerminal(j, JobState::kCancelled);
      } else if (j.attempts >= j.max_attempts) {
        BecomeTerminal(j, JobState::kDead);
      } else if (!timed_out) {
        j.state = JobState::kReady;
        j.run_at_ms = now;
      } else {
        // The jitter is the scheduler's: read what it chose (a job made ready again may have
        // been leased by a waiter within the same tick; that lease is applied afterwards).
        auto v = sched_.Get(j.id);
        if (v->job.state == JobState::kScheduled) {
          j.state = JobState::kScheduled;
          j.run_at_ms = v->job.run_at_ms;
          EXPECT_GT(j.run_at_ms, now);
          EXPECT_LE(j.run_at_ms, now + BackoffCap(j.backoff, j.attempts)) << "job " << id;
        } else {
          j.state = JobState::kReady;
          j.run_at_ms = now;
        }
      }
    }
  }

  void DoPause() {
    const std::string q = kQueues[Pick(kQueues.size())];
    const bool pause = !paused_.count(q);
    QueueConfigPatch p;
    p.name = q;
    p.paused = pause;
    Log(std::string(pause ? "pause " : "resume ") + q);
    auto r = sched_.PutQueue(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (pause) {
      paused_.insert(q);
    } else {
      paused_.erase(q);
    }
  }

  // --- Checks ------------------------------------------------------------------------------

  void CheckInvariants(bool full) {
    std::map<std::string, std::map<std::string, std::uint64_t>> want;
    for (const auto& [id, j] : jobs_) {
      EXPECT_LE(j.attempts, j.max_attempts) << "job " << id;
      EXPECT_LE(j.terminal_transitions, 1) << "job " << id << " finished twice";
      if (j.in_memory && Live(j)) ++want[j.queue][std::string(StateName(j.state))];
    }
    EXPECT_EQ(sched_.live_jobs(), jobs_.size());
    for (const auto& q : kQueues) {
      auto info = sched_.Queue(q);
      for (const char* s : {"scheduled", "ready", "active"}) {
        const std::uint64_t got = info ? info->counts[s] : 0;
        EXPECT_EQ(got, want[q][s]) << "queue " << q << " count of " << s;
      }
    }
    // No lost wake-up: a waiting long-poll never coexists with a job it could take.
    for (const auto& [wid, w] : waiters_) {
      if (w.calls == 0) {
        EXPECT_EQ(ReadyIn(w.queues), 0u) << "waiter " << wid << " starves next to ready jobs";
      }
    }
    if (full) {
      for (const auto& [id, j] : gone_) {
        EXPECT_FALSE(sched_.IsLive(id)) << "job " << id << " still in memory";
      }
      for (const auto& [id, j] : jobs_) {
        auto v = sched_.Get(id);
        ASSERT_TRUE(v.has_value()) << "job " << id << " missing";
        EXPECT_EQ(v->job.state, j.state) << "job " << id;
        EXPECT_EQ(v->job.attempts, j.attempts) << "job " << id;
        EXPECT_EQ(v->job.cancel_requested, j.cancel_requested) << "job " << id;
        EXPECT_EQ(v->job.errors.size(), j.errors) << "job " << id;
        if (j.state == JobState::kActive && !IsTerminal(j.state)) {
          ASSERT_TRUE(v->lease.has_value()) << "job " << id;
          EXPECT_EQ(v->lease->token, j.token);
          EXPECT_EQ(v->lease->expires_at_ms, j.lease_expires_ms);
          EXPECT_EQ(v->lease->deadline_at_ms, j.deadline_ms);
        }
        if (j.state == JobState::kScheduled && !j.pending) {
          EXPECT_EQ(v->job.run_at_ms, j.run_at_ms) << "job " << id;
        }
      }
    }
  }

  // Ends the run: everything still live must reach a terminal state exactly once.
  void Drain() {
    Log("drain");
    shutting_down_ = true;
    sched_.Shutdown();
    for (const auto& [wid, w] : waiters_) {
      EXPECT_EQ(w.calls, 1) << "waiter " << wid << " never answered";
    }
    waiter_leases_.clear();  // Shutdown answers with no jobs
    for (const auto& q : kQueues) {
      if (paused_.count(q)) {
        QueueConfigPatch p;
        p.name = q;
        p.paused = false;
        ASSERT_TRUE(sched_.PutQueue(p).ok());
      }
    }
    paused_.clear();
    for (int round = 0; round < 100; ++round) {
      DoSeal();
      while (!sealed_.empty()) DoCommitSealed();
      if (jobs_.empty()) break;
      DoAdvance(24LL * 3600 * 1000);  // past every delay, backoff and lease
      LeaseRequest req;
      req.queues = kQueues;
      req.max = 1000;
      for (const LeasedJob& l : sched_.Lease(req)) {
        OnLeased(l, std::nullopt, /*check_priority=*/false);
        Ack(*Find(l.id), l.lease.token);
      }
      CheckInvariants(/*full=*/true);
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_EQ(sched_.live_jobs(), 0u);
    EXPECT_TRUE(jobs_.empty());
    EXPECT_EQ(inserted_.size(), gone_.size());
    for (const auto& [id, j] : gone_) {
      EXPECT_TRUE(IsTerminal(j.state)) << "job " << id << " never finished";
      EXPECT_EQ(j.terminal_transitions, 1) << "job " << id;
      EXPECT_EQ(terminal_mutations_[id], 1) << "job " << id << " terminal writes";
      EXPECT_EQ(inserted_[id], 1) << "job " << id << " inserts";
    }
    for (const auto& q : kQueues) {
      auto info = sched_.Queue(q);
      if (!info) continue;
      EXPECT_EQ(info->counts["scheduled"] + info->counts["ready"] + info->counts["active"], 0u);
    }
  }

  const std::uint64_t seed_;
  ManualClock clock_;
  Rng sched_rng_;
  Rng op_rng_;
  Scheduler sched_;

  std::map<JobId, ModelJob> jobs_;     // in the scheduler's memory (pending, live or evicting)
  std::map<JobId, ModelJob> gone_;     // terminal and evicted
  std::map<std::string, JobId> idem_;  // ns/key -> job (always within the 24 h window here)
  std::set<std::string> paused_;
  std::set<std::uint64_t> tokens_;
  std::map<std::uint64_t, ModelWaiter> waiters_;
  std::uint64_t next_waiter_ = 1;
  std::vector<std::pair<std::uint64_t, std::vector<LeasedJob>>> waiter_leases_;
  bool shutting_down_ = false;

  std::vector<JobId> open_promote_;
  std::vector<JobId> open_evict_;
  std::deque<SealedModelBatch> sealed_;
  std::map<JobId, int> inserted_;
  std::map<JobId, int> terminal_mutations_;
  std::deque<std::string> history_;
};

std::vector<std::uint64_t> Seeds() {
  if (const char* s = std::getenv("YM_MODEL_SEED")) return {std::strtoull(s, nullptr, 10)};
  return {1, 2, 3, 20240601};
}

int Steps() {
  if (const char* s = std::getenv("YM_MODEL_STEPS")) return std::atoi(s);
  return 3000;
}

TEST(SchedulerModelTest, RandomOperationsAgreeWithTheModel) {
  for (std::uint64_t seed : Seeds()) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (rerun with YM_MODEL_SEED=" + std::to_string(seed) + ")");
    ModelRun run(seed);
    run.Run(Steps());
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace ym
