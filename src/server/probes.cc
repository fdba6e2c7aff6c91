#include "server/probes.h"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include "common/build_info.h"
#include "core/job_stats.h"
#include "net/tls.h"

namespace ym {
namespace {

using obs::MetricType;
using obs::SampleSink;

double Load(const std::atomic<std::uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

// Resident set size from /proc/self/statm (its second field, in pages); -1 when unreadable.
double ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

// Open file descriptors: the entries of /proc/self/fd (less the one reading it); -1 when
// unreadable.
double OpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  double n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

// The per-(queue, kind) job families (core/job_stats.h), read without a lock while the core
// thread counts. Histograms appear for a label set once it has an observation.
void RegisterJobMetrics(obs::Registry& r, const JobStats& stats) {
  r.Register("ym_job_events_total",
             "Job events per queue and kind: enqueued, leased, succeeded, failed (fail reports), "
             "retried, dead, cancelled, lease_expired, timed_out.",
             MetricType::kCounter, [&stats](SampleSink& s) {
               stats.ForEach([&s](const JobStats::LabelSet& set) {
                 for (std::size_t e = 0; e < kJobEventCount; ++e) {
                   s.Add(static_cast<double>(set.events[e].load(std::memory_order_relaxed)),
                         {{"queue", set.queue}, {"kind", set.kind}, {"event", kJobEventNames[e]}});
                 }
               });
             });
  static constexpr const char* kTimeHelp[kJobTimeCount] = {
      "Time from when an attempt could first run (created, its run_at or its retry's backoff "
      "end) to its lease, per queue and kind.",
      "Time from a lease to the attempt's end (ack, fail, lease expiry, timeout), per queue and "
      "kind.",
      "Time from a job's creation to its terminal state (succeeded, dead, cancelled), per queue "
      "and kind.",
  };
  for (std::size_t t = 0; t < kJobTimeCount; ++t) {
    r.Register(kJobFamilyNames[1 + t], kTimeHelp[t], MetricType::kHistogram,
               [&stats, t](SampleSink& s) {
                 stats.ForEach([&s, t](const JobStats::LabelSet& set) {
                   obs::Histogram::Snapshot h = set.times[t].Take();
                   if (h.count == 0) return;
                   s.AddHistogram(h, 1e-6, {{"queue", set.queue}, {"kind", set.kind}});
                 });
               });
  }
  r.Register("ym_metrics_label_sets",
             "Label sets (queue, kind pairs) each per-job family shows; at most "
             "metrics_max_label_sets plus the overflow set.",
             MetricType::kGauge, [&stats](SampleSink& s) {
               std::array<std::uint64_t, kJobFamilyCount> n{};
               stats.ForEach([&n](const JobStats::LabelSet& set) {
                 ++n[0];
                 for (std::size_t t = 0; t < kJobTimeCount; ++t) {
                   if (set.times[t].Take().count > 0) ++n[1 + t];
                 }
               });
               for (std::size_t f = 0; f < kJobFamilyCount; ++f) {
                 s.Add(static_cast<double>(n[f]), {{"family", kJobFamilyNames[f]}});
               }
             });
  r.Register("ym_metrics_label_overflow_total",
             "Events and observations of per-job families counted under queue and kind \"~other\" "
             "because metrics_max_label_sets was reached.",
             MetricType::kCounter, [&stats](SampleSink& s) {
               for (std::size_t f = 0; f < kJobFamilyCount; ++f) {
                 s.Add(static_cast<double>(stats.overflow(f)), {{"family", kJobFamilyNames[f]}});
               }
             });
}

}  // namespace

void RegisterServerMetrics(obs::Registry& r, const Broker& broker, Store& store,
                           const net::HttpStats* http) {
  // The Prometheus "info" idiom: a constant 1 whose labels say which build is running, so a
  // dashboard can show the version and a query can join it onto other series.
  r.Register(
      "ym_build_info", "Always 1; the labels name the version and git commit running.",
      MetricType::kGauge, [](SampleSink& s) {
        s.Add(1, {{"version", std::string(kVersion)}, {"commit", std::string(BuildCommit())}});
      });
  // The process, under the names Prometheus client libraries use, so stock dashboards work.
  r.Register("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge,
             [](SampleSink& s) {
               if (const double v = ResidentBytes(); v >= 0) s.Add(v);
             });
  r.Register("process_open_fds", "Number of open file descriptors.", MetricType::kGauge,
             [](SampleSink& s) {
               if (const double v = OpenFds(); v >= 0) s.Add(v);
             });
  r.Register("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge,
             [](SampleSink& s) { s.Add(static_cast<double>(::sysconf(_SC_OPEN_MAX))); });
  const double started_s = static_cast<double>(broker.Info().started_at_ms) / 1000.0;
  r.Register("process_start_time_seconds", "Start time of the broker since the Unix epoch.",
             MetricType::kGauge, [started_s](SampleSink& s) { s.Add(started_s); });
  const BrokerCounters& c = broker.counters();
  auto counter = [&](const char* name, const char* help, const std::atomic<std::uint64_t>& v) {
    r.Register(name, help, MetricType::kCounter, [&v](SampleSink& s) { s.Add(Load(v)); });
  };
  counter("ym_jobs_enqueued_total", "Jobs created by enqueue (duplicates excluded).", c.enqueued);
  counter("ym_jobs_duplicate_total", "Enqueues coalesced by an idempotency key.", c.duplicates);
  counter("ym_jobs_leased_total", "Jobs handed to workers.", c.leased);
  counter("ym_jobs_acked_total", "Successful acks.", c.acked);
  counter("ym_jobs_failed_total", "Fail reports accepted from workers.", c.failed);
  counter("ym_store_commits_total", "Group commits made durable.", c.commits);
  counter("ym_store_commit_failures_total",
          "Group commits that failed, store probes while read-only included.", c.commit_failures);
  counter("ym_store_unavailable_episodes_total",
          "Times the server went read-only because a commit failed.", c.store_unavailable_episodes);
  counter("ym_store_probes_total", "Commits tried while read-only to see if the store is back.",
          c.store_probes);
  r.Register("ym_store_available",
             "1 while the store takes writes; 0 while the server is read-only after a failed "
             "commit.",
             MetricType::kGauge,
             [&broker](SampleSink& s) { s.Add(broker.store_available() ? 1 : 0); });
  counter("ym_store_committed_mutations_total", "Mutations made durable.", c.committed_mutations);
  r.Register("ym_store_commit_seconds_total", "Time spent committing batches.",
             MetricType::kCounter, [&c](SampleSink& s) { s.Add(Load(c.commit_micros) / 1e6); });
  r.Register("ym_store_commit_duration_seconds",
             "Time of each group commit (a write transaction and its fsync), failed ones included.",
             MetricType::kHistogram,
             [&c](SampleSink& s) { s.AddHistogram(c.commit_duration_us.Take(), 1e-6); });
  r.Register("ym_store_commit_batch_mutations", "Mutations per group commit that succeeded.",
             MetricType::kHistogram,
             [&c](SampleSink& s) { s.AddHistogram(c.commit_batch_mutations.Take(), 1); });
  counter("ym_retention_purged_jobs_total",
          "Finished jobs deleted by retention (window or cap), not counting deletes at ack.",
          c.purged);
  counter("ym_commands_refused_total",
          "Client commands refused because the core's command queue was full (429).",
          c.refused_busy);
  r.Register("ym_core_queued_commands",
             "Weight of the commands the core thread took in its last wake-up (jobs they carry).",
             MetricType::kGauge, [&c](SampleSink& s) { s.Add(Load(c.queued_commands)); });
  r.Register("ym_schedules", "Schedules held by core (/v1/schedules).", MetricType::kGauge,
             [&c](SampleSink& s) { s.Add(Load(c.schedules)); });
  counter("ym_schedule_windows_emitted_total",
          "Schedule windows (and triggers, backfills) that became jobs, since start.",
          c.schedule_windows_emitted);
  counter("ym_schedule_windows_skipped_total",
          "Schedule decisions that skipped windows (a skipped range counts once), since start.",
          c.schedule_windows_skipped);
  r.Register("ym_schedule_fire_lag_seconds",
             "Delay between a schedule window and its job's enqueue (jitter excluded).",
             MetricType::kHistogram,
             [&c](SampleSink& s) { s.AddHistogram(c.schedule_fire_lag_ms.Take(), 1e-3); });
  r.Register("ym_live_jobs", "Live (non-terminal) jobs held by core.", MetricType::kGauge,
             [&c](SampleSink& s) { s.Add(Load(c.live_jobs)); });
  r.Register("ym_waiting_leases", "Long-poll lease requests waiting for jobs.", MetricType::kGauge,
             [&c](SampleSink& s) { s.Add(Load(c.waiting_leases)); });
  r.Register("ym_job_waits", "Requests waiting for a job to end (GET /v1/jobs/{id}?wait_ms).",
             MetricType::kGauge, [&c](SampleSink& s) { s.Add(Load(c.end_waits)); });
  r.Register("ym_cancel_watches", "Workers watching for cancels (POST /v1/cancels:watch).",
             MetricType::kGauge, [&c](SampleSink& s) { s.Add(Load(c.cancel_watches)); });
  r.Register("ym_ready", "Broker is ready to serve (1) or starting/draining (0).",
             MetricType::kGauge, [&broker](SampleSink& s) { s.Add(broker.ready() ? 1 : 0); });

  r.Register(
      "ym_queue_jobs", "Live jobs per queue and state.", MetricType::kGauge,
      [&broker](SampleSink& s) {
        for (const auto& q : broker.QueueGauges()) {
          s.Add(static_cast<double>(q.scheduled), {{"queue", q.queue}, {"state", "scheduled"}});
          s.Add(static_cast<double>(q.ready), {{"queue", q.queue}, {"state", "ready"}});
          s.Add(static_cast<double>(q.active), {{"queue", q.queue}, {"state", "active"}});
        }
      });
  r.Register("ym_queue_oldest_ready_age_seconds",
             "Age of the oldest ready job per queue (0 when none is ready).", MetricType::kGauge,
             [&broker](SampleSink& s) {
               for (const auto& q : broker.QueueGauges()) {
                 s.Add(static_cast<double>(q.oldest_ready_age_ms) / 1000.0, {{"queue", q.queue}});
               }
             });
  r.Register("ym_queue_paused", "1 when the queue is paused.", MetricType::kGauge,
             [&broker](SampleSink& s) {
               for (const auto& q : broker.QueueGauges()) {
                 s.Add(q.paused ? 1 : 0, {{"queue", q.queue}});
               }
             });
  r.Register("ym_queue_blocked_jobs",
             "Live jobs per queue not running, by reason (the blocked_reason of GET /v1/jobs).",
             MetricType::kGauge, [&broker](SampleSink& s) {
               for (const auto& q : broker.QueueGauges()) {
                 for (std::size_t i = 0; i < kBlockedReasonCount; ++i) {
                   s.Add(static_cast<double>(q.blocked[i]),
                         {{"queue", q.queue}, {"reason", kBlockedReasons[i]}});
                 }
               }
             });
  r.Register("ym_queue_last_poll_timestamp_seconds",
             "When a lease request last named the queue (seconds since the epoch); absent when "
             "none did since the server started.",
             MetricType::kGauge, [&broker](SampleSink& s) {
               for (const auto& q : broker.QueueGauges()) {
                 if (q.last_poll_ms != 0) {
                   s.Add(static_cast<double>(q.last_poll_ms) / 1000.0, {{"queue", q.queue}});
                 }
               }
             });
  RegisterJobMetrics(r, broker.job_stats());
  r.Register("ym_store_file_bytes", "Size of the store's files.", MetricType::kGauge,
             [&store](SampleSink& s) {
               const StoreStats st = store.Stats();
               s.Add(static_cast<double>(st.file_bytes), {{"file", "db"}});
               s.Add(static_cast<double>(st.wal_bytes), {{"file", "wal"}});
             });

  if (http == nullptr) return;
  r.Register("ym_http_requests_total", "HTTP requests by route and status class.",
             MetricType::kCounter, [http](SampleSink& s) {
               static const char* kClass[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
               for (std::size_t route = 0; route < net::kRouteCount; ++route) {
                 const auto id = static_cast<net::RouteId>(route);
                 for (std::size_t k = 0; k < net::HttpStats::kStatusClasses; ++k) {
                   const auto n = http->Requests(id, k);
                   if (n == 0) continue;
                   s.Add(static_cast<double>(n),
                         {{"route", std::string(net::RouteLabel(id))}, {"code", kClass[k]}});
                 }
               }
             });
  r.Register("ym_http_request_duration_seconds",
             "HTTP request time by route and status class: from the request's header read to "
             "its response written (a long-poll's wait included).",
             MetricType::kHistogram, [http](SampleSink& s) {
               static const char* kClass[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
               for (std::size_t route = 0; route < net::kRouteCount; ++route) {
                 const auto id = static_cast<net::RouteId>(route);
                 for (std::size_t k = 0; k < net::HttpStats::kStatusClasses; ++k) {
                   if (http->Requests(id, k) == 0) continue;
                   s.AddHistogram(
                       http->duration[route][k].Take(), 1e-6,
                       {{"route", std::string(net::RouteLabel(id))}, {"code", kClass[k]}});
                 }
               }
             });
  r.Register("ym_http_in_flight_requests", "Requests being handled.", MetricType::kGauge,
             [http](SampleSink& s) {
               s.Add(static_cast<double>(http->in_flight.load(std::memory_order_relaxed)));
             });
  r.Register("ym_http_open_connections", "Open client connections.", MetricType::kGauge,
             [http](SampleSink& s) {
               s.Add(static_cast<double>(http->open_connections.load(std::memory_order_relaxed)));
             });
  r.Register("ym_http_request_bytes_total", "Request body bytes received.", MetricType::kCounter,
             [http](SampleSink& s) { s.Add(Load(http->request_bytes)); });
  r.Register("ym_http_response_bytes_total", "Response body bytes sent.", MetricType::kCounter,
             [http](SampleSink& s) { s.Add(Load(http->response_bytes)); });
  r.Register("ym_http_released_leases_total",
             "Leased jobs returned because their response could not be delivered.",
             MetricType::kCounter, [http](SampleSink& s) { s.Add(Load(http->released_leases)); });
  r.Register("ym_http_accepted_connections_total", "Client connections accepted and served.",
             MetricType::kCounter,
             [http](SampleSink& s) { s.Add(Load(http->accepted_connections)); });
  r.Register("ym_http_rejected_connections_total",
             "Connections closed at accept: over max_connections (total), over "
             "max_connections_per_client (client), or out of file descriptors (fds).",
             MetricType::kCounter, [http](SampleSink& s) {
               s.Add(Load(http->rejected_total_cap), {{"reason", "total"}});
               s.Add(Load(http->rejected_client_cap), {{"reason", "client"}});
               s.Add(Load(http->rejected_no_fd), {{"reason", "fds"}});
             });
  r.Register("ym_http_queued_reply_bytes",
             "Reply bytes handed to connections and not yet written (slow readers).",
             MetricType::kGauge, [http](SampleSink& s) {
               s.Add(static_cast<double>(http->queued_reply_bytes.load(std::memory_order_relaxed)));
             });
  r.Register("ym_http_refused_replies_total",
             "Large replies refused with 503 because max_queued_reply_bytes was reached.",
             MetricType::kCounter, [http](SampleSink& s) { s.Add(Load(http->refused_replies)); });
  r.Register(
      "ym_http_reading_request_bytes",
      "Request body bytes reserved by requests being read (bodies over 64 KiB).",
      MetricType::kGauge, [http](SampleSink& s) {
        s.Add(static_cast<double>(http->reserved_request_bytes.load(std::memory_order_relaxed)));
      });
  r.Register("ym_http_refused_requests_total",
             "Requests with a body over 64 KiB refused with 503 because "
             "max_reading_request_bytes was reached.",
             MetricType::kCounter, [http](SampleSink& s) { s.Add(Load(http->refused_requests)); });
  r.Register("ym_http_bad_framing_total",
             "Requests refused for bad framing (Transfer-Encoding, Content-Length, Host).",
             MetricType::kCounter, [http](SampleSink& s) { s.Add(Load(http->bad_framing)); });
  r.Register(
      "ym_tls_handshakes_total",
      "TLS handshakes by result: ok, timeout, client_certificate (mTLS: none or not "
      "verified), client_alert (the client refused ours), protocol, closed.",
      MetricType::kCounter, [http](SampleSink& s) {
        for (std::size_t i = 0; i < net::kTlsHandshakeResults; ++i) {
          s.Add(Load(http->tls_handshakes[i]),
                {{"result", net::TlsHandshakeResultName(static_cast<net::TlsHandshakeResult>(i))}});
        }
      });
  r.Register("ym_tls_certificate_expiry_timestamp_seconds",
             "When the served TLS certificate expires (notAfter, Unix seconds); absent while TLS "
             "is off.",
             MetricType::kGauge, [http](SampleSink& s) {
               const auto t = http->tls_cert_not_after.load(std::memory_order_relaxed);
               if (t != 0) s.Add(static_cast<double>(t));
             });
  r.Register("ym_tls_reloads_total",
             "TLS reloads on SIGHUP: ok (the new certificate, key and client CAs are in use) or "
             "error (refused; the previous set is kept).",
             MetricType::kCounter, [http](SampleSink& s) {
               s.Add(Load(http->tls_reloads), {{"result", "ok"}});
               s.Add(Load(http->tls_reload_failures), {{"result", "error"}});
             });
}

}  // namespace ym
