// JobLog: the log lines about the job events that happen inside core (core/job_events.h), with
// the job's request id and trace id, so that an operator can follow one job from the request
// that created it (its `request_id`, the same one the enqueue's lines and access line carry)
// and the producer's trace (`trace_id`, the 32 hex digits of its traceparent) to how it ended.
//
// Component `job`; levels (docs/operations.md, "Trace context"): a job going dead, a lease
// expiring and an attempt timing out at info (each points at a worker or a job that needs a
// look), a retry and a cancel at debug. `request_id` and `trace_id` are left out when the job
// has none.
//
// Threads: Note runs on the core thread (the Broker's); the lines go through the synchronous
// logger like every other.
#pragma once

#include "core/job_events.h"

namespace ym {

class JobLog : public JobEventSink {
 public:
  bool Wants(JobEvent event) const override;
  void Note(const JobEventNote& note) override;
};

}  // namespace ym
