// ym_bench scenarios: load generators that measure a running Yardmaster server over loopback.
//
// Each scenario runs its own threads, one keep-alive ApiClient per thread, on a queue of its own
// (`<prefix>-<scenario>-<pid>-<time>`) so runs never see each other's jobs. Every loop stops at
// its job count or at the --max-seconds deadline, whichever comes first; a run cut short by the
// deadline reports `completed: false`. Jobs are left on the server: run against a throwaway
// data directory.
//
// Threads: Run*() are called from the main thread, one at a time; they join their workers
// before returning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stats.h"

namespace ym::bench {

struct BenchOptions {
  std::string server_url;
  std::int64_t jobs = 10'000;  // jobs per scenario (drain: jobs pre-filled)
  int connections = 4;         // producer threads, one connection each
  int consumers = 4;           // lease/ack threads (drain, latency)
  int batch = 100;             // jobs per enqueue batch and per lease
  double rate = 1000;          // latency: jobs offered per second
  int payload_bytes = 64;      // approximate serialized payload size
  double max_seconds = 60;     // hard limit per scenario
  std::string queue_prefix = "bench";
  std::optional<long> server_pid;  // memory: the server process to read VmRSS from
  int queues = 10'000;             // spread: jobs go round-robin over this many queues
  int keys = 1000;                 // spread: concurrency keys under a mutex (0: no limit)
  int lease_queues = 64;           // spread: queues named by each lease
};

Report RunEnqueue(const BenchOptions& o);
Report RunEnqueueBatch(const BenchOptions& o);
Report RunDrain(const BenchOptions& o);
Report RunLatency(const BenchOptions& o);
Report RunMemory(const BenchOptions& o);
// Pre-fills --jobs spread round-robin over --queues queues (job n in queue n % queues, with
// concurrency_key k<n % keys> under a mutex limit when --keys > 0), then --consumers threads
// lease naming --lease-queues queues at a time and ack in batches until every job is acked:
// the end-to-end cost of many queues and keys, against --queues 1 --keys 0.
Report RunSpread(const BenchOptions& o);
// In process, no server (bench/dispatch.cc): CPU ns per job of the scheduler's dispatch path in
// one queue and over 10,000 queues, without limits and with 1,000 concurrency keys.
Report RunDispatch(const BenchOptions& o);

// VmRSS of a process in bytes, from /proc/<pid>/status; nullopt when unreadable.
std::optional<std::int64_t> ReadRssBytes(long pid);

}  // namespace ym::bench
