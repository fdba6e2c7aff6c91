// How the scheduler wires trace context (core/trace_context.h) and job events
// (core/job_events.h): the context and request id given at enqueue reach every lease of the
// job, its view and its stored record, survive a recovery, and are on the notes core reports
// for the events no request sees. Uses the injected ManualClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/job_events.h"
#include "core/scheduler.h"
#include "store/batch.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;
constexpr char kTp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct Recorded {
  JobEvent event;
  JobId id;
  std::string queue, kind, request_id, traceparent, reason;
  std::int32_t attempt;
};

class RecordingSink : public JobEventSink {
 public:
  bool Wants(JobEvent) const override { return on; }
  void Note(const JobEventNote& n) override {
    notes.push_back({n.event, n.id, std::string(n.queue), std::string(n.kind),
                     std::string(n.request_id), std::string(n.traceparent), std::string(n.reason),
                     n.attempt});
  }
  bool on = true;
  std::vector<Recorded> notes;
};

class SchedulerTraceTest : public ::testing::Test {
 protected:
  SchedulerTraceTest() : clock_(kStart), rng_(7) {
    SchedulerOptions o;
    o.job_events = &sink_;
    sched_ = std::make_unique<Scheduler>(clock_, rng_, o);
  }

  JobId Enqueue(bool traced, std::int32_t max_attempts = 2) {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.lease_ms = 1000;
    s.max_attempts = max_attempts;
    if (traced) {
      s.trace = {kTp, "rojo=1"};
      s.request_id = "req-1";
    }
    auto r = sched_->Enqueue(std::move(s));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Commit();
    return r.ok() ? r->id : 0;
  }

  Batch Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
    return b;
  }

  std::vector<LeasedJob> Lease() {
    LeaseRequest req;
    req.queues = {"q"};
    req.max = 10;
    req.worker_id = "w";
    return sched_->Lease(req);
  }

  ManualClock clock_;
  Rng rng_;
  RecordingSink sink_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTraceTest, ContextReachesTheRecordEveryLeaseAndTheView) {
  Batch b;
  {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.lease_ms = 1000;
    s.trace = {kTp, "rojo=1"};
    s.request_id = "req-1";
    ASSERT_TRUE(sched_->Enqueue(std::move(s)).ok());
    b = Commit();
  }
  // The stored record carries them (the store writes them once, with the insert).
  ASSERT_FALSE(b.mutations.empty());
  const auto* ins = std::get_if<InsertJob>(&b.mutations.front());
  ASSERT_NE(ins, nullptr);
  EXPECT_EQ(ins->job.trace.traceparent, kTp);
  EXPECT_EQ(ins->job.trace.tracestate, "rojo=1");
  EXPECT_EQ(ins->job.request_id, "req-1");
  const JobId plain = Enqueue(false);

  auto leased = Lease();
  ASSERT_EQ(leased.size(), 2u);
  EXPECT_EQ(leased[0].trace.traceparent, kTp);
  EXPECT_EQ(leased[0].request_id, "req-1");
  EXPECT_TRUE(leased[1].trace.empty());
  EXPECT_TRUE(leased[1].request_id.empty());
  auto view = sched_->Get(leased[0].id);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->job.trace.tracestate, "rojo=1");
  EXPECT_EQ(view->job.request_id, "req-1");
  EXPECT_TRUE(sched_->Get(plain)->job.trace.empty());

  // The lease expires: the retry keeps the context.
  clock_.Advance(1000);
  sched_->Tick();
  Commit();
  auto again = Lease();
  ASSERT_EQ(again.size(), 2u);
  for (const LeasedJob& l : again) {
    EXPECT_EQ(l.attempt, 2);
    EXPECT_EQ(l.trace.traceparent, l.id == leased[0].id ? kTp : "");
  }
}

TEST_F(SchedulerTraceTest, RecoveredJobsKeepTheirContext) {
  JobRecord r;
  r.id = 5;
  r.queue = "q";
  r.kind = "k";
  r.state = JobState::kReady;
  r.trace = {kTp, ""};
  r.request_id = "req-5";
  sched_->LoadJob(std::move(r));
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].trace.traceparent, kTp);
  EXPECT_EQ(leased[0].request_id, "req-5");
}

TEST_F(SchedulerTraceTest, EventsNoRequestSeesAreNotedWithRequestAndTrace) {
  const JobId traced = Enqueue(true, /*max_attempts=*/2);
  const JobId plain = Enqueue(false, /*max_attempts=*/1);
  ASSERT_EQ(Lease().size(), 2u);
  clock_.Advance(1000);
  sched_->Tick();  // both leases expire: the traced job is retried, the plain one is dead
  std::vector<std::string> seen;
  for (const Recorded& n : sink_.notes) {
    if (n.id == traced) {
      EXPECT_EQ(n.request_id, "req-1");
      EXPECT_EQ(n.traceparent, kTp);
    } else {
      EXPECT_EQ(n.id, plain);
      EXPECT_TRUE(n.request_id.empty() && n.traceparent.empty());
    }
    EXPECT_EQ(n.queue, "q");
    EXPECT_EQ(n.kind, "k");
    EXPECT_EQ(n.attempt, 1);
    seen.push_back(std::to_string(n.id) + ":" + std::to_string(static_cast<int>(n.event)) + ":" +
                   n.reason);
  }
  const auto ev = [](JobId id, JobEvent e, const char* reason) {
    return std::to_string(id) + ":" + std::to_string(static_cast<int>(e)) + ":" + reason;
  };
  std::sort(seen.begin(), seen.end());
  std::vector<std::string> want = {ev(traced, JobEvent::kLeaseExpired, "lease_expired"),
                                   ev(traced, JobEvent::kRetried, "lease_expired"),
                                   ev(plain, JobEvent::kLeaseExpired, "lease_expired"),
                                   ev(plain, JobEvent::kDead, "max_attempts_exceeded")};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);

  // A sink that wants nothing gets no note.
  sink_.notes.clear();
  sink_.on = false;
  Commit();
  ASSERT_EQ(Lease().size(), 1u);
  clock_.Advance(1000);
  sched_->Tick();
  EXPECT_TRUE(sink_.notes.empty());
}

}  // namespace
}  // namespace ym
