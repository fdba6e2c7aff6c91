// The scheduler's hot path measured alone, in process (docs/benchmarks.md, "Core hot path"):
// a Scheduler with a ManualClock, `backlog` ready jobs queued behind, then `jobs` jobs through
// "enqueue 100 (16-byte payload), seal and commit, lease 100, ack each, seal and commit", with
// Tick() every 10 000 jobs. Returns the process CPU time per job in ns (wall time on the shared
// machine is too noisy). `key_of(i)` gives job i's concurrency_key. Used by disabled tests only.
#pragma once

#include <time.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/clock.h"
#include "common/rng.h"
#include "core/scheduler.h"

namespace ym::bench {

inline double CpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

inline double HotPathNsPerJob(Scheduler& s, ManualClock& clock, std::uint64_t backlog,
                              std::uint64_t jobs,
                              const std::function<std::string(std::uint64_t)>& key_of) {
  std::uint64_t n = 0;
  auto enqueue = [&] {
    EnqueueSpec spec;
    spec.queue = "q";
    spec.kind = "k";
    spec.payload = R"({"n":"0123456"})";
    spec.concurrency_key = key_of(n++);
    (void)s.Enqueue(std::move(spec));
  };
  auto commit = [&] {
    Batch b = s.SealBatch();
    s.OnCommitted(b.seq);
  };
  for (std::uint64_t i = 0; i < backlog; ++i) {
    enqueue();
    if (i % 1000 == 999) commit();
  }
  commit();
  LeaseRequest req;
  req.queues = {"q"};
  req.max = 100;
  req.worker_id = "w";
  const double start = CpuNs();
  std::uint64_t done = 0, next_tick = 10'000;
  while (done < jobs) {
    for (int i = 0; i < 100; ++i) enqueue();
    commit();
    for (const LeasedJob& l : s.Lease(req)) {
      (void)s.Ack(l.id, l.lease.token, "null");
      ++done;
    }
    commit();
    if (done >= next_tick) {
      clock.Advance(1);
      s.Tick();
      next_tick += 10'000;
    }
  }
  return (CpuNs() - start) / static_cast<double>(done);
}

}  // namespace ym::bench
