#include "scenarios.h"

#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "client/api_client.h"

namespace ym::bench {
namespace {

using client::ApiClient;
using Clock = std::chrono::steady_clock;

std::int64_t MicrosSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
}

double SecondsSince(Clock::time_point t0) { return MicrosSince(t0) / 1e6; }

// Nanoseconds on the steady clock. Producer and consumers run in this process, so the same
// clock stamps the send and the receipt: no cross-machine or wall-clock skew in latencies.
std::int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string UniqueQueue(const BenchOptions& o, const std::string& scenario) {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return o.queue_prefix + "-" + scenario + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(now);
}

// {"t_ns":..,"seq":..,"pad":"xxx"} padded to about `bytes` serialized bytes.
std::string MakePayload(std::int64_t t_ns, std::int64_t seq, int bytes) {
  std::string p =
      "{\"t_ns\":" + std::to_string(t_ns) + ",\"seq\":" + std::to_string(seq) + ",\"pad\":\"";
  const int pad = std::max(0, bytes - static_cast<int>(p.size()) - 2);
  p.append(static_cast<std::size_t>(pad), 'x');
  p += "\"}";
  return p;
}

client::EnqueueRequest MakeJob(const std::string& queue, std::int64_t seq, int payload_bytes) {
  client::EnqueueRequest j;
  j.queue = queue;
  j.kind = "bench";
  j.payload_json = MakePayload(SteadyNanos(), seq, payload_bytes);
  return j;
}

// Errors shared by a scenario's threads: a count and the first message, which is usually the
// one that explains the rest.
class ErrorLog {
 public:
  void Record(const Status& s) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    if (first_.empty()) first_ = s.ToString();
  }
  void CopyTo(Report* r) {
    r->errors += errors_.load();
    std::lock_guard<std::mutex> lock(mu_);
    if (r->first_error.empty()) r->first_error = first_;
  }

 private:
  // Counted without the lock: only the total matters, read after the threads joined.
  std::atomic<std::int64_t> errors_{0};
  std::mutex mu_;
  std::string first_;  // guarded by mu_
};

// What to do after a failed call: transport failures end the thread (the server is gone and
// every further call would fail the same way); backpressure waits as told and retries.
enum class Next { kRetry, kSkip, kStop };

Next OnError(const Status& s, const ApiClient& api, ErrorLog* log,
             std::atomic<std::int64_t>* throttled) {
  if (s.code() == Code::kResourceExhausted) {
    throttled->fetch_add(1, std::memory_order_relaxed);
    const std::int64_t wait_ms = api.last_retry_after_s().value_or(0) * 1000;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::clamp<std::int64_t>(wait_ms, 10, 1000)));
    return Next::kRetry;
  }
  log->Record(s);
  return api.last_http_status() == 0 ? Next::kStop : Next::kSkip;
}

Result<ApiClient> Connect(const BenchOptions& o) { return ApiClient::Create(o.server_url); }

struct FillResult {
  std::int64_t enqueued = 0;
  std::int64_t throttled = 0;
  double seconds = 0;
  bool completed = true;
  std::uint64_t connections = 0;
  LatencySamples request_us;
};

// Enqueues `total` jobs on `queue` from `threads` threads, `chunk` jobs per request (1: single
// POST /v1/jobs, more: POST /v1/jobs:batch). Threads claim chunks from a shared counter, so a
// slow connection does less of the work rather than holding up the end.
// `shape` (when given) adjusts job `seq` after MakeJob (its queue, kind, concurrency key).
using JobShape = std::function<void(client::EnqueueRequest&, std::int64_t seq)>;

FillResult Fill(const BenchOptions& o, const std::string& queue, std::int64_t total, int chunk,
                int threads, Clock::time_point deadline, ErrorLog* log,
                const JobShape& shape = nullptr) {
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> enqueued{0};
  std::atomic<std::int64_t> throttled{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<bool> cut_short{false};
  std::vector<LatencySamples> samples(static_cast<std::size_t>(threads));
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      Result<ApiClient> api = Connect(o);
      if (!api.ok()) {
        log->Record(api.status());
        return;
      }
      while (true) {
        if (Clock::now() >= deadline) {
          cut_short = true;
          break;
        }
        const std::int64_t first = next.fetch_add(chunk);
        if (first >= total) break;
        const std::int64_t n = std::min<std::int64_t>(chunk, total - first);
        bool stop = false;
        if (chunk == 1) {
          client::EnqueueRequest job = MakeJob(queue, first, o.payload_bytes);
          if (shape) shape(job, first);
          while (Clock::now() < deadline) {
            const Clock::time_point s = Clock::now();
            Result<client::EnqueueResult> r = api->Enqueue(job);
            if (r.ok()) {
              samples[t].Add(MicrosSince(s));
              enqueued.fetch_add(1);
              break;
            }
            const Next what = OnError(r.status(), *api, log, &throttled);
            if (what == Next::kRetry) continue;
            stop = what == Next::kStop;
            break;
          }
        } else {
          std::vector<client::EnqueueRequest> jobs;
          jobs.reserve(static_cast<std::size_t>(n));
          for (std::int64_t i = 0; i < n; ++i) {
            jobs.push_back(MakeJob(queue, first + i, o.payload_bytes));
            if (shape) shape(jobs.back(), first + i);
          }
          while (Clock::now() < deadline) {
            const Clock::time_point s = Clock::now();
            auto r = api->EnqueueBatch(jobs);
            if (r.ok()) {
              samples[t].Add(MicrosSince(s));
              for (const auto& item : *r) {
                if (item.ok()) {
                  enqueued.fetch_add(1);
                } else {
                  log->Record(item.status());
                }
              }
              break;
            }
            const Next what = OnError(r.status(), *api, log, &throttled);
            if (what == Next::kRetry) continue;
            stop = what == Next::kStop;
            break;
          }
        }
        if (stop) {
          cut_short = true;
          break;
        }
      }
      connections.fetch_add(api->http().connections_opened());
    });
  }
  for (std::thread& th : pool) th.join();
  FillResult out;
  out.seconds = SecondsSince(t0);
  out.enqueued = enqueued.load();
  out.throttled = throttled.load();
  out.connections = connections.load();
  out.completed = !cut_short.load() && out.enqueued == total;
  for (const LatencySamples& s : samples) out.request_us.Merge(s);
  return out;
}

void AddLatency(Report* r, const std::string& prefix, LatencySamples& s) {
  r->Add(prefix + "_p50_us", static_cast<double>(s.Percentile(50)));
  r->Add(prefix + "_p90_us", static_cast<double>(s.Percentile(90)));
  r->Add(prefix + "_p99_us", static_cast<double>(s.Percentile(99)));
  r->Add(prefix + "_max_us", static_cast<double>(s.Max()));
}

Clock::time_point DeadlineFor(const BenchOptions& o) {
  return Clock::now() + std::chrono::microseconds(static_cast<std::int64_t>(o.max_seconds * 1e6));
}

Report EnqueueScenario(const BenchOptions& o, const std::string& name, int chunk) {
  Report r;
  r.scenario = name;
  r.queue = UniqueQueue(o, name);
  ErrorLog log;
  FillResult f = Fill(o, r.queue, o.jobs, chunk, o.connections, DeadlineFor(o), &log);
  r.completed = f.completed;
  r.Add("connections", o.connections);
  if (chunk > 1) r.Add("batch", chunk);
  r.Add("jobs", static_cast<double>(f.enqueued));
  r.Add("seconds", f.seconds);
  r.Add("jobs_per_s", f.seconds > 0 ? f.enqueued / f.seconds : 0);
  r.Add("requests", static_cast<double>(f.request_us.count()));
  AddLatency(&r, "request", f.request_us);
  r.Add("throttled_429", static_cast<double>(f.throttled));
  r.Add("tcp_connections_opened", static_cast<double>(f.connections));
  log.CopyTo(&r);
  return r;
}

}  // namespace

Report RunEnqueue(const BenchOptions& o) { return EnqueueScenario(o, "enqueue", 1); }

Report RunEnqueueBatch(const BenchOptions& o) {
  return EnqueueScenario(o, "enqueue-batch", std::max(1, o.batch));
}

Report RunDrain(const BenchOptions& o) {
  Report r;
  r.scenario = "drain";
  r.queue = UniqueQueue(o, "drain");
  ErrorLog log;
  const Clock::time_point deadline = DeadlineFor(o);
  FillResult f = Fill(o, r.queue, o.jobs, std::max(1, o.batch), o.connections, deadline, &log);

  const std::int64_t target = f.enqueued;
  std::atomic<std::int64_t> acked{0};
  std::atomic<std::int64_t> throttled{0};
  std::vector<LatencySamples> lease_us(static_cast<std::size_t>(o.consumers));
  std::vector<LatencySamples> ack_us(static_cast<std::size_t>(o.consumers));
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < o.consumers; ++t) {
    pool.emplace_back([&, t] {
      Result<ApiClient> api = Connect(o);
      if (!api.ok()) {
        log.Record(api.status());
        return;
      }
      client::LeaseRequest lease;
      lease.queues = {r.queue};
      lease.max = static_cast<std::uint32_t>(std::max(1, o.batch));
      // Short long-polls: near the end most consumers find nothing and must notice quickly
      // that the others have finished the queue.
      lease.wait_ms = 100;
      lease.worker_id = "ym-bench-" + std::to_string(t);
      while (acked.load() < target && Clock::now() < deadline) {
        Clock::time_point s = Clock::now();
        auto leased = api->Lease(lease);
        if (!leased.ok()) {
          if (OnError(leased.status(), *api, &log, &throttled) == Next::kStop) return;
          continue;
        }
        lease_us[t].Add(MicrosSince(s));
        if (leased->empty()) continue;
        std::vector<client::AckItem> acks;
        acks.reserve(leased->size());
        for (const client::LeasedJob& j : *leased) acks.push_back({j.id, j.token, std::nullopt});
        while (Clock::now() < deadline) {
          s = Clock::now();
          auto done = api->AckBatch(acks, {});
          if (done.ok()) {
            ack_us[t].Add(MicrosSince(s));
            for (const Status& st : done->acks) {
              if (st.ok()) {
                acked.fetch_add(1);
              } else {
                log.Record(st);
              }
            }
            break;
          }
          const Next what = OnError(done.status(), *api, &log, &throttled);
          if (what == Next::kStop) return;
          if (what == Next::kSkip) break;
        }
      }
    });
  }
  for (std::thread& th : pool) th.join();
  const double drain_s = SecondsSince(t0);
  LatencySamples lease_all, ack_all;
  for (const LatencySamples& s : lease_us) lease_all.Merge(s);
  for (const LatencySamples& s : ack_us) ack_all.Merge(s);

  r.completed = f.completed && acked.load() == target;
  r.Add("connections", o.connections);
  r.Add("consumers", o.consumers);
  r.Add("batch", o.batch);
  r.Add("prefilled_jobs", static_cast<double>(f.enqueued));
  r.Add("prefill_seconds", f.seconds);
  r.Add("prefill_jobs_per_s", f.seconds > 0 ? f.enqueued / f.seconds : 0);
  r.Add("drained_jobs", static_cast<double>(acked.load()));
  r.Add("drain_seconds", drain_s);
  r.Add("drain_jobs_per_s", drain_s > 0 ? acked.load() / drain_s : 0);
  r.Add("end_to_end_jobs_per_s",
        f.seconds + drain_s > 0 ? acked.load() / (f.seconds + drain_s) : 0);
  AddLatency(&r, "lease", lease_all);
  AddLatency(&r, "ack_batch", ack_all);
  r.Add("throttled_429", static_cast<double>(f.throttled + throttled.load()));
  log.CopyTo(&r);
  return r;
}

Report RunSpread(const BenchOptions& o) {
  Report r;
  r.scenario = "spread";
  const std::string base = UniqueQueue(o, "spread");
  r.queue = o.queues == 1 ? base : base + "-{0.." + std::to_string(o.queues - 1) + "}";
  ErrorLog log;
  const Clock::time_point deadline = DeadlineFor(o);
  const auto queues = static_cast<std::size_t>(std::max(1, o.queues));
  const int keys = std::max(0, o.keys);
  std::vector<std::string> names(queues);
  for (std::size_t q = 0; q < queues; ++q) {
    names[q] = queues == 1 ? base : base + "-" + std::to_string(q);
  }
  std::vector<std::string> key_names(static_cast<std::size_t>(keys));
  for (int k = 0; k < keys; ++k) key_names[static_cast<std::size_t>(k)] = "k" + std::to_string(k);

  // One job at a time per key (a mutex), for this run's jobs only (matched by their kind).
  const std::string limit_name = base + "-mutex";
  bool limit_put = false;
  if (keys > 0) {
    Result<ApiClient> api = Connect(o);
    if (!api.ok()) {
      log.Record(api.status());
    } else {
      client::Limit limit;
      limit.name = limit_name;
      limit.match_kind = base;
      limit.key = "concurrency_key";
      limit.concurrency = 1;
      Result<client::Limit> put = api->PutLimit(limit);
      if (put.ok()) {
        limit_put = true;
      } else {
        log.Record(put.status());
      }
    }
  }
  const JobShape shape = [&](client::EnqueueRequest& job, std::int64_t seq) {
    const auto n = static_cast<std::size_t>(seq);
    job.queue = names[n % queues];
    job.kind = base;
    if (keys > 0) job.concurrency_key = key_names[n % static_cast<std::size_t>(keys)];
  };
  FillResult f;
  if (keys > 0 && !limit_put) {
    f.completed = false;  // without its limit the run would measure something else
  } else {
    f = Fill(o, base, o.jobs, std::max(1, o.batch), o.connections, deadline, &log, shape);
  }

  // The leases: fixed groups of --lease-queues consecutive queues (the last one shorter);
  // consumer t visits groups t, t + consumers, ... so the consumers spread over the groups.
  const auto per_lease = static_cast<std::size_t>(std::clamp(o.lease_queues, 1, 64));
  std::vector<std::vector<std::string>> groups;
  for (std::size_t first = 0; first < queues; first += per_lease) {
    groups.emplace_back(
        names.begin() + static_cast<std::ptrdiff_t>(first),
        names.begin() + static_cast<std::ptrdiff_t>(std::min(queues, first + per_lease)));
  }
  const std::int64_t target = f.enqueued;
  std::atomic<std::int64_t> acked{0};
  std::atomic<std::int64_t> throttled{0};
  std::atomic<std::int64_t> leases{0};
  std::atomic<std::int64_t> empty_leases{0};
  std::vector<LatencySamples> lease_us(static_cast<std::size_t>(o.consumers));
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < o.consumers; ++t) {
    pool.emplace_back([&, t] {
      Result<ApiClient> api = Connect(o);
      if (!api.ok()) {
        log.Record(api.status());
        return;
      }
      client::LeaseRequest lease;
      lease.max = static_cast<std::uint32_t>(std::max(1, o.batch));
      // One group: a short long-poll, as `drain`. Several: no wait, an empty group passes the
      // turn to the next one; a whole round of empty groups sleeps 2 ms (the rest is leased by
      // other consumers or held by a key's mutex).
      lease.wait_ms = groups.size() == 1 ? 100 : 0;
      lease.worker_id = "ym-bench-spread-" + std::to_string(t);
      std::size_t g = static_cast<std::size_t>(t) % groups.size();
      const std::size_t stride = static_cast<std::size_t>(o.consumers) % groups.size() == 0
                                     ? 1
                                     : static_cast<std::size_t>(o.consumers);
      std::size_t empty_run = 0;
      while (acked.load() < target && Clock::now() < deadline) {
        lease.queues = groups[g];
        g = (g + stride) % groups.size();
        const Clock::time_point s = Clock::now();
        auto leased = api->Lease(lease);
        if (!leased.ok()) {
          if (OnError(leased.status(), *api, &log, &throttled) == Next::kStop) return;
          continue;
        }
        lease_us[t].Add(MicrosSince(s));
        leases.fetch_add(1);
        if (leased->empty()) {
          empty_leases.fetch_add(1);
          if (groups.size() > 1 && ++empty_run >= groups.size()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            empty_run = 0;
          }
          continue;
        }
        empty_run = 0;
        std::vector<client::AckItem> acks;
        acks.reserve(leased->size());
        for (const client::LeasedJob& j : *leased) acks.push_back({j.id, j.token, std::nullopt});
        while (Clock::now() < deadline) {
          auto done = api->AckBatch(acks, {});
          if (done.ok()) {
            for (const Status& st : done->acks) {
              if (st.ok()) {
                acked.fetch_add(1);
              } else {
                log.Record(st);
              }
            }
            break;
          }
          const Next what = OnError(done.status(), *api, &log, &throttled);
          if (what == Next::kStop) return;
          if (what == Next::kSkip) break;
        }
      }
    });
  }
  for (std::thread& th : pool) th.join();
  const double drain_s = SecondsSince(t0);
  LatencySamples lease_all;
  for (const LatencySamples& s : lease_us) lease_all.Merge(s);
  if (limit_put) {
    // The limit goes with the run (its jobs are all acked, or the run was cut short).
    Result<ApiClient> api = Connect(o);
    if (api.ok()) (void)api->DeleteLimit(limit_name);
  }

  r.completed = f.completed && acked.load() == target;
  r.Add("queues", static_cast<double>(queues));
  r.Add("keys", keys);
  r.Add("lease_queues", static_cast<double>(std::min(per_lease, queues)));
  r.Add("connections", o.connections);
  r.Add("consumers", o.consumers);
  r.Add("batch", o.batch);
  r.Add("prefilled_jobs", static_cast<double>(f.enqueued));
  r.Add("prefill_seconds", f.seconds);
  r.Add("prefill_jobs_per_s", f.seconds > 0 ? f.enqueued / f.seconds : 0);
  r.Add("drained_jobs", static_cast<double>(acked.load()));
  r.Add("drain_seconds", drain_s);
  r.Add("drain_jobs_per_s", drain_s > 0 ? acked.load() / drain_s : 0);
  r.Add("end_to_end_jobs_per_s",
        f.seconds + drain_s > 0 ? acked.load() / (f.seconds + drain_s) : 0);
  r.Add("leases", static_cast<double>(leases.load()));
  r.Add("empty_leases", static_cast<double>(empty_leases.load()));
  r.Add("jobs_per_nonempty_lease",
        leases.load() > empty_leases.load()
            ? static_cast<double>(acked.load()) /
                  static_cast<double>(leases.load() - empty_leases.load())
            : 0);
  AddLatency(&r, "lease", lease_all);
  r.Add("throttled_429", static_cast<double>(f.throttled + throttled.load()));
  log.CopyTo(&r);
  return r;
}

Report RunLatency(const BenchOptions& o) {
  Report r;
  r.scenario = "latency";
  r.queue = UniqueQueue(o, "latency");
  ErrorLog log;
  const Clock::time_point deadline = DeadlineFor(o);
  std::atomic<std::int64_t> sent{0};
  std::atomic<std::int64_t> received{0};
  std::atomic<std::int64_t> throttled{0};
  std::atomic<bool> producer_done{false};
  LatencySamples enqueue_us;
  std::vector<LatencySamples> e2e_us(static_cast<std::size_t>(o.consumers));

  std::vector<std::thread> consumers;
  for (int t = 0; t < o.consumers; ++t) {
    consumers.emplace_back([&, t] {
      Result<ApiClient> api = Connect(o);
      if (!api.ok()) {
        log.Record(api.status());
        return;
      }
      client::LeaseRequest lease;
      lease.queues = {r.queue};
      lease.max = static_cast<std::uint32_t>(std::max(1, o.batch));
      // A real long-poll: the server answers as soon as a job is ready, which is the path whose
      // latency we want; 1 s bounds how long a consumer lingers after the last job.
      lease.wait_ms = 1000;
      lease.worker_id = "ym-bench-latency-" + std::to_string(t);
      while (Clock::now() < deadline && !(producer_done.load() && received.load() >= sent.load())) {
        auto leased = api->Lease(lease);
        const std::int64_t now_ns = SteadyNanos();
        if (!leased.ok()) {
          if (OnError(leased.status(), *api, &log, &throttled) == Next::kStop) return;
          continue;
        }
        if (leased->empty()) continue;
        std::vector<client::AckItem> acks;
        for (const client::LeasedJob& j : *leased) {
          rapidjson::Document doc;
          doc.Parse(j.payload_json.data(), j.payload_json.size());
          if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("t_ns") &&
              doc["t_ns"].IsInt64()) {
            e2e_us[t].Add((now_ns - doc["t_ns"].GetInt64()) / 1000);
          } else {
            log.Record(Internal("job " + j.id + " came back without its t_ns stamp"));
          }
          acks.push_back({j.id, j.token, std::nullopt});
        }
        received.fetch_add(static_cast<std::int64_t>(leased->size()));
        auto done = api->AckBatch(acks, {});
        if (!done.ok()) {
          if (OnError(done.status(), *api, &log, &throttled) == Next::kStop) return;
        }
      }
    });
  }

  // The producer offers jobs on a fixed schedule (job i at t0 + i/rate) instead of as fast as
  // possible, so the latencies describe a server under a known load, not a saturated one. The
  // stamp is taken just before the request, so a slow enqueue shows up as enqueue latency.
  std::thread producer([&] {
    Result<ApiClient> api = Connect(o);
    if (!api.ok()) {
      log.Record(api.status());
      producer_done = true;
      return;
    }
    const Clock::time_point t0 = Clock::now();
    const double interval_ns = 1e9 / std::max(0.001, o.rate);
    for (std::int64_t i = 0; i < o.jobs; ++i) {
      const Clock::time_point due =
          t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(interval_ns * i));
      if (due >= deadline) break;
      std::this_thread::sleep_until(due);
      client::EnqueueRequest job;
      job.queue = r.queue;
      job.kind = "bench";
      bool stop = false;
      while (Clock::now() < deadline) {
        job.payload_json = MakePayload(SteadyNanos(), i, o.payload_bytes);
        const Clock::time_point s = Clock::now();
        Result<client::EnqueueResult> res = api->Enqueue(job);
        if (res.ok()) {
          enqueue_us.Add(MicrosSince(s));
          sent.fetch_add(1);
          break;
        }
        const Next what = OnError(res.status(), *api, &log, &throttled);
        if (what == Next::kRetry) continue;
        stop = what == Next::kStop;
        break;
      }
      if (stop) break;
    }
    const double secs = SecondsSince(t0);
    r.Add("send_seconds", secs);
    r.Add("achieved_rate_per_s", secs > 0 ? sent.load() / secs : 0);
    producer_done = true;
  });
  producer.join();
  for (std::thread& th : consumers) th.join();

  LatencySamples e2e;
  for (const LatencySamples& s : e2e_us) e2e.Merge(s);
  r.completed = sent.load() == o.jobs && received.load() >= sent.load();
  r.metrics.insert(r.metrics.begin(), {{"offered_rate_per_s", o.rate},
                                       {"consumers", static_cast<double>(o.consumers)},
                                       {"jobs_sent", static_cast<double>(sent.load())},
                                       {"jobs_received", static_cast<double>(received.load())}});
  AddLatency(&r, "enqueue_to_lease", e2e);
  AddLatency(&r, "enqueue_request", enqueue_us);
  r.Add("throttled_429", static_cast<double>(throttled.load()));
  log.CopyTo(&r);
  return r;
}

std::optional<std::int64_t> ReadRssBytes(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream s(line.substr(6));
      std::int64_t kb = 0;
      if (s >> kb) return kb * 1024;
    }
  }
  return std::nullopt;
}

Report RunMemory(const BenchOptions& o) {
  Report r;
  r.scenario = "memory";
  r.queue = UniqueQueue(o, "memory");
  std::optional<std::int64_t> before = o.server_pid ? ReadRssBytes(*o.server_pid) : std::nullopt;
  if (!before) {
    r.completed = false;
    r.errors = 1;
    r.first_error =
        "memory needs --server-pid of a local server whose /proc/PID/status is readable";
    return r;
  }
  ErrorLog log;
  FillResult f =
      Fill(o, r.queue, o.jobs, std::max(1, o.batch), o.connections, DeadlineFor(o), &log);
  // A 2xx means the jobs are durable and in core; the pause lets allocator and store caches
  // settle so the reading is not taken in the middle of a group commit.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::optional<std::int64_t> after = ReadRssBytes(*o.server_pid);
  r.completed = f.completed && after.has_value();
  r.Add("jobs", static_cast<double>(f.enqueued));
  r.Add("payload_bytes", o.payload_bytes);
  r.Add("rss_before_bytes", static_cast<double>(*before));
  r.Add("rss_after_bytes", static_cast<double>(after.value_or(0)));
  if (after && f.enqueued > 0) {
    r.Add("bytes_per_job", static_cast<double>(*after - *before) / static_cast<double>(f.enqueued));
  }
  log.CopyTo(&r);
  return r;
}

}  // namespace ym::bench
