// The `dispatch` scenario: the scheduler's dispatch path alone, in process (no server), in CPU
// time per job, to compare shapes of load (docs/benchmarks.md, "Dispatch with 10,000 queues").
//
// One loop, as in "Core hot path" of docs/benchmarks.md: enqueue 100 jobs (16-byte payload),
// seal and commit, lease up to 100, ack each, seal and commit, Tick() every 10,000 jobs, with a
// backlog of 200,000 ready jobs behind. Four shapes:
//   one_queue_no_limits      every job in one queue, no limit configured;
//   one_queue_1000_keys      the same with a mutex per concurrency key (1,000 keys in play);
//   10000_queues_no_limits   jobs spread over 10,000 queues; each lease names 64 of them (the
//                            most a lease may name), the next 64 for the next lease;
//   10000_queues_1000_keys   the same with the 1,000-key mutex.
// Only the API that predates weights and namespaces is used, so the same file measures older
// builds. --jobs sets the jobs measured per shape (at least 100,000 is meaningful).
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/flow/limit_set.h"
#include "core/scheduler.h"
#include "scenarios.h"

namespace ym::bench {

namespace {

double CpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct Shape {
  std::uint32_t queues = 1;
  std::uint32_t keys = 0;  // 0: no limit
};

double Measure(const Shape& shape, std::int64_t jobs) {
  ManualClock clock;
  Rng rng(1);
  Scheduler s(clock, rng, SchedulerOptions{});
  auto commit = [&] {
    Batch b = s.SealBatch();
    s.OnCommitted(b.seq);
  };
  if (shape.keys > 0) {
    flow::LimitSpec spec;
    spec.name = "mutex";
    spec.concurrency = 1;
    (void)spec.SetKey("concurrency_key");
    (void)s.PutLimit(spec);
    commit();
  }
  std::vector<std::string> queue_names(shape.queues);
  for (std::uint32_t q = 0; q < shape.queues; ++q) queue_names[q] = "q" + std::to_string(q);
  std::vector<std::string> key_names(std::max<std::uint32_t>(shape.keys, 1));
  for (std::size_t k = 0; k < key_names.size(); ++k) key_names[k] = "k" + std::to_string(k);
  std::uint64_t n = 0;
  // Jobs go round-robin over the queues (and keys): a queue's jobs are spread in time as a
  // flood of many small producers would spread them.
  auto enqueue = [&] {
    EnqueueSpec spec;
    spec.queue = queue_names[n % shape.queues];
    spec.kind = "k";
    spec.payload = R"({"n":"0123456"})";
    if (shape.keys > 0) spec.concurrency_key = key_names[n % shape.keys];
    ++n;
    (void)s.Enqueue(std::move(spec));
  };
  for (int i = 0; i < 200'000; ++i) {
    enqueue();
    if (i % 1000 == 999) commit();
  }
  commit();
  // The leases: 64 queues each (or the one queue), the next group for the next lease.
  const std::uint32_t per_lease = std::min<std::uint32_t>(shape.queues, 64);
  std::uint32_t group = 0;
  LeaseRequest req;
  req.max = 100;
  req.worker_id = "w";
  const double start = CpuNs();
  std::int64_t done = 0, next_tick = 10'000;
  std::int64_t idle = 0;
  while (done < jobs && idle < 1000) {
    for (int i = 0; i < 100; ++i) enqueue();
    commit();
    req.queues.clear();
    for (std::uint32_t i = 0; i < per_lease; ++i) {
      req.queues.push_back(queue_names[(group + i) % shape.queues]);
    }
    group = (group + per_lease) % shape.queues;
    const std::vector<LeasedJob> got = s.Lease(req);
    idle = got.empty() ? idle + 1 : 0;
    for (const LeasedJob& l : got) {
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
  return done > 0 ? (CpuNs() - start) / static_cast<double>(done) : 0;
}

}  // namespace

Report RunDispatch(const BenchOptions& o) {
  Report r;
  r.scenario = "dispatch";
  r.queue = "(in process)";
  const std::int64_t jobs = std::max<std::int64_t>(o.jobs, 1000);
  const double one = Measure({1, 0}, jobs);
  const double one_keys = Measure({1, 1000}, jobs);
  const double many = Measure({10'000, 0}, jobs);
  const double many_keys = Measure({10'000, 1000}, jobs);
  r.Add("jobs_per_shape", static_cast<double>(jobs));
  r.Add("one_queue_no_limits_cpu_ns_per_job", one);
  r.Add("one_queue_1000_keys_cpu_ns_per_job", one_keys);
  r.Add("10000_queues_no_limits_cpu_ns_per_job", many);
  r.Add("10000_queues_1000_keys_cpu_ns_per_job", many_keys);
  r.Add("ratio_10000_queues_1000_keys_to_one_queue", one > 0 ? many_keys / one : 0);
  r.Add("ratio_10000_queues_1000_keys_to_one_queue_1000_keys",
        one_keys > 0 ? many_keys / one_keys : 0);
  return r;
}

}  // namespace ym::bench
