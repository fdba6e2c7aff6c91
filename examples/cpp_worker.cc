// An example worker built on the C++ SDK (include/yardmaster/worker.h); the worker tests
// (tests/worker/) drive it as a black box.
//
//   ym_example_worker --queue Q [--server URL] [--concurrency N] [--prefetch N|auto]
//                     [--worker-id ID] [--lease-ms MS] [--grace-ms MS] [--sleep-ms MS] --out FILE
//
// It appends one line per event to FILE, each with a single write() on an O_APPEND descriptor so
// that lines from concurrent handlers never interleave:
//   "start ID ATTEMPT"   a handler began
//   "done ID"            a `record` or `finish_despite_cancel` job finished (it returns Ok)
//   "cancelled ID"       an `until_cancelled` job saw its cancellation
//   "stopped ID"         a handler saw the shutdown grace run out
//   "timeout ID"         a handler saw its attempt reach the job's execution timeout
// Kinds: `record` sleeps --sleep-ms then succeeds; `until_cancelled` waits (up to 120 s) for a
// cancel and reports Cancelled; `finish_despite_cancel` waits the same way but reports Ok;
// `throw` throws std::runtime_error; `bad_result` returns a result that is not JSON; `fail` fails
// permanently; `retry` asks for a retry in 60 s; `progress` reports {"percent":30,"step":"load"}
// (after checking that bad reports are refused), records "progress ID", then waits like
// `until_cancelled`.
// SIGTERM/SIGINT shut it down gracefully (Worker::RunUntilSignal()); the exit code is 0 then,
// 1 when the server refused the lease requests for good, 2 for bad options.

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include "yardmaster/worker.h"

namespace {

int out_fd = -1;

void Record(const std::string& line) {
  const std::string l = line + "\n";
  if (write(out_fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) {
    std::cerr << "cannot write the output file\n";
  }
}

int Usage(const std::string& why) {
  std::cerr
      << "error: " << why
      << "\nusage: ym_example_worker --queue Q --out FILE [--server URL] [--concurrency N]"
         " [--prefetch N|auto] [--worker-id ID] [--lease-ms MS] [--grace-ms MS] [--sleep-ms MS]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  yardmaster::WorkerOptions options;
  std::string out;
  long sleep_ms = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--queue") {
      options.queues.push_back(v);
    } else if (a == "--server") {
      options.server_url = v;
    } else if (a == "--concurrency") {
      options.concurrency = std::atoi(v.c_str());
    } else if (a == "--prefetch") {
      // "auto" (the default) lets the runtime size it; a number fixes it.
      if (v != "auto") options.prefetch = std::atoi(v.c_str());
    } else if (a == "--worker-id") {
      options.worker_id = v;
    } else if (a == "--lease-ms") {
      options.lease = std::chrono::milliseconds(std::atol(v.c_str()));
    } else if (a == "--grace-ms") {
      options.shutdown_grace = std::chrono::milliseconds(std::atol(v.c_str()));
    } else if (a == "--sleep-ms") {
      sleep_ms = std::atol(v.c_str());
    } else if (a == "--out") {
      out = v;
    } else {
      return Usage("unknown option " + a);
    }
  }
  if (out.empty()) return Usage("--out is required");
  out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) return Usage("cannot open " + out);

  yardmaster::Worker worker(options);
  worker.Handle("record", [sleep_ms](yardmaster::JobContext& job) {
    Record("start " + job.id() + " " + std::to_string(job.attempt()));
    if (!job.SleepFor(std::chrono::milliseconds(sleep_ms))) {
      Record("stopped " + job.id());
      return yardmaster::Outcome::Retry("interrupted");
    }
    Record("done " + job.id());
    return yardmaster::Outcome::Ok(R"({"recorded":true})");
  });
  worker.Handle("progress", [](yardmaster::JobContext& job) {
    Record("start " + job.id() + " " + std::to_string(job.attempt()));
    if (job.Progress(101).ok() || job.Progress("[1]").ok() ||
        job.Progress(R"({"percent":"half"})").ok()) {
      return yardmaster::Outcome::Permanent("a bad progress report was accepted");
    }
    if (!job.Progress(R"({"percent": 30, "step": "load"})").ok()) {
      return yardmaster::Outcome::Permanent("a good progress report was refused");
    }
    Record("progress " + job.id());
    job.SleepFor(std::chrono::seconds(120));
    return job.stop_reason() == yardmaster::StopReason::kCancelled
               ? yardmaster::Outcome::Cancelled("stopped at the operator's request")
               : yardmaster::Outcome::Retry("interrupted");
  });
  worker.Handle("until_cancelled", [](yardmaster::JobContext& job) {
    Record("start " + job.id() + " " + std::to_string(job.attempt()));
    job.SleepFor(std::chrono::seconds(120));
    if (job.stop_reason() == yardmaster::StopReason::kCancelled) {
      Record("cancelled " + job.id());
      return yardmaster::Outcome::Cancelled("stopped at the operator's request");
    }
    if (job.stop_reason() == yardmaster::StopReason::kTimeout) {
      // The broker has failed the attempt already; this outcome is not reported.
      Record("timeout " + job.id());
      return yardmaster::Outcome::Retry("stopped at the timeout").WithType("timeout");
    }
    Record("stopped " + job.id());
    return yardmaster::Outcome::Retry("interrupted");
  });
  // Notices the cancel but completes anyway: the outcome is what the handler reports.
  worker.Handle("finish_despite_cancel", [](yardmaster::JobContext& job) {
    Record("start " + job.id() + " " + std::to_string(job.attempt()));
    job.SleepFor(std::chrono::seconds(120));
    Record("done " + job.id());
    return yardmaster::Outcome::Ok(R"({"finished":"despite the cancel"})");
  });
  // A result that is not JSON: the server refuses it and the runtime fails the job for good.
  worker.Handle("bad_result", [](yardmaster::JobContext&) {
    return yardmaster::Outcome::Ok("this is not JSON");
  });
  worker.Handle("throw", [](yardmaster::JobContext&) -> yardmaster::Outcome {
    throw std::runtime_error("the handler threw");
  });
  worker.Handle("fail", [](yardmaster::JobContext& job) {
    return yardmaster::Outcome::Permanent("this job always fails").WithType("example");
  });
  worker.Handle("retry", [](yardmaster::JobContext& job) {
    return yardmaster::Outcome::Retry("try again later", std::chrono::seconds(60));
  });
  yardmaster::Status s = worker.RunUntilSignal();
  if (!s.ok()) {
    std::cerr << "error: " << s.ToString() << '\n';
    return s.http_status() == 0 ? 2 : 1;  // our options, or the server's final refusal
  }
  const yardmaster::WorkerStats st = worker.Stats();
  std::cerr << "stats: leased=" << st.leased << " succeeded=" << st.succeeded
            << " failed=" << st.failed << " handed_back=" << st.handed_back
            << " leases_lost=" << st.leases_lost << " cancelled=" << st.cancelled
            << " timeouts=" << st.timeouts << " heartbeats=" << st.heartbeats
            << " reconnects=" << st.reconnects << '\n';
  return 0;
}
