// JobEventSink: where core reports the job events that happen inside it (a job going dead, a
// lease expiring, an attempt timing out, a retry, a cancel), so that the server can write a log
// line about the job with its request id and trace id (docs/operations.md, "Trace context").
//
// Core stays pure: it only calls this interface, the Broker's implementation writes the lines
// (server/job_log.h). Events a request causes and answers (enqueue, lease, ack, fail) are logged
// by the HTTP layer with the request (net/request_log.h); these are the ones no request sees.
//
// Threads: called on the core thread only. Wants() is asked before a note is built, so a sink
// whose lines are off costs one virtual call and a level check per event.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/job.h"
#include "core/job_stats.h"

namespace ym {

// One event of one job. The views are valid during the call only.
struct JobEventNote {
  JobEvent event = JobEvent::kDead;
  JobId id = 0;
  std::string_view queue;
  std::string_view kind;
  std::int32_t attempt = 0;      // the attempt the event ends (0: none started)
  std::string_view request_id;   // the enqueue request's id; empty: none
  std::string_view traceparent;  // the job's W3C traceparent; empty: none
  std::string_view reason;       // dead_reason, or the failure type of a retry
};

class JobEventSink {
 public:
  virtual ~JobEventSink() = default;
  virtual bool Wants(JobEvent event) const = 0;
  virtual void Note(const JobEventNote& note) = 0;
};

}  // namespace ym
