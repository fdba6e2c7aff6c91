// yardmaster::Client over the internal ApiClient (src/client): conversions and a mutex.

#include "yardmaster/client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include "client/api_client.h"
#include "sdk/runtime_policy.h"

namespace yardmaster {

std::string ResolveServerUrl(std::string_view explicit_url) {
  if (!explicit_url.empty()) return std::string(explicit_url);
  // An empty YM_URL counts as unset, the way shells often "clear" variables (as in the CLI).
  if (const char* u = std::getenv("YM_URL"); u != nullptr && *u != '\0') return u;
  return std::string(kDefaultServerUrl);
}

namespace {

ym::client::EnqueueRequest ToRequest(const EnqueueOptions& o) {
  ym::client::EnqueueRequest r;
  r.queue = o.queue;
  r.kind = o.kind;
  r.payload_json = o.payload_json;
  r.ns = o.ns;
  r.priority = o.priority;
  r.delay_ms = o.delay_ms;
  r.run_at_ms = o.run_at_ms;
  r.max_attempts = o.max_attempts;
  if (o.backoff)
    r.backoff =
        ym::client::Backoff{o.backoff->initial_ms, o.backoff->max_ms, o.backoff->multiplier};
  r.lease_ms = o.lease_ms;
  r.timeout_ms = o.timeout_ms;
  r.idempotency_key = o.idempotency_key;
  r.idempotency_ttl_ms = o.idempotency_ttl_ms;
  r.concurrency_key = o.concurrency_key;
  r.tags = o.tags;
  r.traceparent = o.traceparent;
  r.tracestate = o.tracestate;
  return r;
}

JobInfo ToInfo(const ym::client::Job& j) {
  JobInfo i;
  i.id = j.id;
  i.ns = j.ns;
  i.queue = j.queue;
  i.kind = j.kind;
  i.state = j.state;
  i.payload_json = j.payload_json;
  i.attempts = j.attempts;
  i.max_attempts = j.max_attempts;
  i.cancel_requested = j.cancel_requested;
  i.dead_reason = j.dead_reason;
  i.last_error_json = j.last_error_json;
  i.result_json = j.result_json;
  i.traceparent = j.traceparent;
  i.tracestate = j.tracestate;
  i.request_id = j.request_id;
  i.json = j.json;
  return i;
}

Enqueued ToEnqueued(const ym::client::EnqueueResult& r) {
  return {r.id, r.state, r.duplicate, r.skipped, r.superseded};
}

// The public filter as the API client sends it (the same fields, under one type).
ym::client::JobFilterParams ToFilterParams(const JobFilter& f) {
  ym::client::JobFilterParams p;
  p.ns = f.ns;
  p.queue = f.queue;
  p.kind = f.kind;
  p.states = f.states;
  p.tag = f.tag;
  p.created_after_ms = f.created_after_ms;
  p.created_before_ms = f.created_before_ms;
  p.finished_after_ms = f.finished_after_ms;
  p.finished_before_ms = f.finished_before_ms;
  return p;
}

}  // namespace

class Client::Impl {
 public:
  explicit Impl(ClientOptions options) : url_(ResolveServerUrl(options.server_url)) {
    ym::client::HttpClientOptions http;
    http.connect_timeout = options.connect_timeout;
    http.request_timeout = options.request_timeout;
    http.ca_file = options.ca_file;
    http.client_cert_file = options.client_cert_file;
    http.client_key_file = options.client_key_file;
    http.token = options.token;
    http.token_file = options.token_file;
    ym::Result<ym::client::ApiClient> api = ym::client::ApiClient::Create(url_, http);
    if (api.ok()) {
      api_.emplace(std::move(api).value());
    } else {
      create_error_ = ym::sdk::ToPublic(api.status(), 0);
    }
  }

  // Runs `fn(api)` under the mutex, or returns the URL error for every call: a bad URL is
  // reported where the caller checks results rather than by a constructor that cannot return.
  template <typename T, typename Fn>
  Result<T> With(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!api_) return create_error_;
    return fn(*api_);
  }

  Status Error(const ym::Status& s) { return ym::sdk::ToPublic(s, api_->last_http_status()); }

  const std::string url_;
  std::mutex mu_;
  std::optional<ym::client::ApiClient> api_;  // GUARDED_BY(mu_)
  Status create_error_;
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::server_url() const { return impl_->url_; }

Result<Enqueued> Client::Enqueue(const EnqueueOptions& job) {
  return impl_->With<Enqueued>([&](ym::client::ApiClient& api) -> Result<Enqueued> {
    ym::Result<ym::client::EnqueueResult> r = api.Enqueue(ToRequest(job));
    if (!r.ok()) return impl_->Error(r.status());
    return ToEnqueued(*r);
  });
}

Result<std::vector<Result<Enqueued>>> Client::EnqueueBatch(
    const std::vector<EnqueueOptions>& jobs) {
  using Items = std::vector<Result<Enqueued>>;
  return impl_->With<Items>([&](ym::client::ApiClient& api) -> Result<Items> {
    std::vector<ym::client::EnqueueRequest> requests;
    requests.reserve(jobs.size());
    for (const EnqueueOptions& j : jobs) requests.push_back(ToRequest(j));
    auto r = api.EnqueueBatch(requests);
    if (!r.ok()) return impl_->Error(r.status());
    Items out;
    out.reserve(r->size());
    for (const auto& item : *r) {
      if (item.ok()) {
        out.emplace_back(ToEnqueued(*item));
      } else {
        // Per-item errors carry no HTTP status of their own; the envelope was a 200.
        out.emplace_back(ym::sdk::ToPublic(item.status(), 0));
      }
    }
    return out;
  });
}

Result<JobInfo> Client::Get(std::string_view id) {
  return impl_->With<JobInfo>([&](ym::client::ApiClient& api) -> Result<JobInfo> {
    ym::Result<ym::client::Job> r = api.GetJob(id);
    if (!r.ok()) return impl_->Error(r.status());
    return ToInfo(*r);
  });
}

Result<JobInfo> Client::Wait(std::string_view id,
                             std::optional<std::chrono::milliseconds> timeout) {
  constexpr std::int64_t kMaxWaitMs = 30'000;  // the server's limit per request
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
  return impl_->With<JobInfo>([&](ym::client::ApiClient& api) -> Result<JobInfo> {
    for (;;) {
      std::int64_t wait_ms = kMaxWaitMs;
      if (timeout) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        wait_ms = std::clamp<std::int64_t>(left, 0, kMaxWaitMs);
      }
      ym::Result<ym::client::Job> r = api.WaitJob(id, wait_ms);
      if (!r.ok()) return impl_->Error(r.status());
      JobInfo info = ToInfo(*r);
      if (info.ended() || (timeout && std::chrono::steady_clock::now() >= deadline)) return info;
    }
  });
}

Result<JobInfo> Client::Cancel(std::string_view id) {
  return impl_->With<JobInfo>([&](ym::client::ApiClient& api) -> Result<JobInfo> {
    ym::Result<ym::client::Job> r = api.CancelJob(id);
    if (!r.ok()) return impl_->Error(r.status());
    return ToInfo(*r);
  });
}

Result<JobSearchPage> Client::Search(const JobSearch& search) {
  return impl_->With<JobSearchPage>([&](ym::client::ApiClient& api) -> Result<JobSearchPage> {
    ym::client::ListJobsRequest req;
    req.filter = ToFilterParams(search);
    req.limit = search.page_size;
    req.cursor = search.cursor;
    ym::Result<ym::client::JobPage> r = api.ListJobs(req);
    if (!r.ok()) return impl_->Error(r.status());
    JobSearchPage page;
    page.jobs.reserve(r->items.size());
    for (const ym::client::Job& j : r->items) page.jobs.push_back(ToInfo(j));
    page.next_cursor = r->next_cursor;
    return page;
  });
}

Result<JobInfo> Client::Replay(std::string_view id) {
  return impl_->With<JobInfo>([&](ym::client::ApiClient& api) -> Result<JobInfo> {
    ym::Result<ym::client::Job> r = api.ReplayJob(id);
    if (!r.ok()) return impl_->Error(r.status());
    return ToInfo(*r);
  });
}

namespace {

ym::client::BulkRequest ToBulkRequest(BulkAction action, const JobFilter& f,
                                      std::string_view cursor, const BulkOptions& o) {
  ym::client::BulkRequest r;
  r.action = action == BulkAction::kCancel   ? "cancel"
             : action == BulkAction::kReplay ? "replay"
                                             : "delete";
  r.filter = ToFilterParams(f);
  r.all = o.all;
  r.limit = o.limit;
  r.dry_run = o.dry_run;
  if (!cursor.empty()) r.cursor = std::string(cursor);
  return r;
}

void AddPage(BulkResult& total, const ym::client::BulkPage& page) {
  total.matched += page.matched;
  total.applied += page.applied;
  total.cancel_requested += page.cancel_requested;
  total.skipped += page.skipped;
  total.pages += 1;
  total.next_cursor = page.next_cursor;
}

}  // namespace

namespace {

LimitInfo ToLimitInfo(const ym::client::Limit& l) {
  LimitInfo out;
  out.name = l.name;
  out.match_queue = l.match_queue;
  out.match_kind = l.match_kind;
  out.match_namespace = l.match_namespace;
  out.key = l.key;
  out.concurrency = l.concurrency;
  if (l.rate) out.rate = LimitRate{l.rate->count, l.rate->period_ms, l.rate->burst};
  if (l.quota) out.quota = LimitQuota{l.quota->count, l.quota->per, l.quota->time_zone};
  out.singleton = l.singleton;
  out.debounce_delay_ms = l.debounce_delay_ms;
  out.debounce_max_wait_ms = l.debounce_max_wait_ms;
  out.active_keys = l.active_keys;
  out.active = l.active;
  out.quota_window_start_ms = l.quota_window_start_ms;
  out.quota_window_end_ms = l.quota_window_end_ms;
  out.quota_used_keys = l.quota_used_keys;
  out.quota_used = l.quota_used;
  if (l.breaker) {
    out.breaker = LimitBreaker{l.breaker->consecutive_failures, l.breaker->window,
                               l.breaker->min_samples,          l.breaker->failure_percent,
                               l.breaker->open_base_ms,         l.breaker->open_max_ms};
  }
  out.breaker_tripped_keys = l.breaker_tripped_keys;
  for (const auto& k : l.breaker_keys) {
    out.breaker_keys.push_back(BreakerKey{k.key, k.state, k.opened_at_ms, k.next_open_at_ms,
                                          k.open_interval_ms, k.trial_in_flight,
                                          k.consecutive_failures});
  }
  out.reset_tripped_keys = l.reset_tripped_keys;
  return out;
}

}  // namespace

Result<LimitInfo> Client::SetLimit(const LimitSpec& limit) {
  return impl_->With<LimitInfo>([&](ym::client::ApiClient& api) -> Result<LimitInfo> {
    ym::client::Limit l;
    l.name = limit.name;
    l.match_queue = limit.match_queue;
    l.match_kind = limit.match_kind;
    l.match_namespace = limit.match_namespace;
    l.key = limit.key;
    l.concurrency = limit.concurrency;
    if (limit.rate) {
      l.rate = ym::client::LimitRate{limit.rate->count, limit.rate->period_ms, limit.rate->burst};
    }
    if (limit.quota) {
      l.quota =
          ym::client::LimitQuota{limit.quota->count, limit.quota->per, limit.quota->time_zone};
    }
    if (limit.breaker) {
      const LimitBreaker& b = *limit.breaker;
      l.breaker = ym::client::LimitBreaker{b.consecutive_failures, b.window,       b.min_samples,
                                           b.failure_percent,      b.open_base_ms, b.open_max_ms};
    }
    l.singleton = limit.singleton;
    l.debounce_delay_ms = limit.debounce_delay_ms;
    l.debounce_max_wait_ms = limit.debounce_max_wait_ms;
    bool created = false;
    auto r = api.PutLimit(l, &created);
    if (!r.ok()) return impl_->Error(r.status());
    LimitInfo info = ToLimitInfo(*r);
    info.created = created;
    return info;
  });
}

Result<LimitInfo> Client::GetLimit(std::string_view name) {
  return impl_->With<LimitInfo>([&](ym::client::ApiClient& api) -> Result<LimitInfo> {
    auto r = api.GetLimit(name);
    if (!r.ok()) return impl_->Error(r.status());
    return ToLimitInfo(*r);
  });
}

Result<std::vector<LimitInfo>> Client::ListLimits() {
  return impl_->With<std::vector<LimitInfo>>(
      [&](ym::client::ApiClient& api) -> Result<std::vector<LimitInfo>> {
        auto r = api.ListLimits();
        if (!r.ok()) return impl_->Error(r.status());
        std::vector<LimitInfo> out;
        for (const auto& l : *r) out.push_back(ToLimitInfo(l));
        return out;
      });
}

Status Client::DeleteLimit(std::string_view name) {
  auto r = impl_->With<bool>([&](ym::client::ApiClient& api) -> Result<bool> {
    ym::Status s = api.DeleteLimit(name);
    if (!s.ok()) return impl_->Error(s);
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

namespace {

NamespaceInfo ToNamespaceInfo(const ym::client::Namespace& n) {
  NamespaceInfo out;
  out.name = n.name;
  out.max_live_jobs = n.max_live_jobs;
  if (n.enqueue_rate) {
    out.enqueue_rate =
        NamespaceRateSpec{n.enqueue_rate->count, n.enqueue_rate->period_ms, n.enqueue_rate->burst};
  }
  out.weight = n.weight;
  out.max_active = n.max_active;
  out.live_jobs = n.live_jobs;
  out.active_jobs = n.active_jobs;
  return out;
}

}  // namespace

Result<NamespaceInfo> Client::SetNamespace(const NamespaceSpec& ns) {
  return impl_->With<NamespaceInfo>([&](ym::client::ApiClient& api) -> Result<NamespaceInfo> {
    ym::client::Namespace n;
    n.name = ns.name;
    n.max_live_jobs = ns.max_live_jobs;
    if (ns.enqueue_rate) {
      n.enqueue_rate = ym::client::NamespaceRate{ns.enqueue_rate->count, ns.enqueue_rate->period_ms,
                                                 ns.enqueue_rate->burst};
    }
    n.weight = ns.weight;
    n.max_active = ns.max_active;
    bool created = false;
    auto r = api.PutNamespace(n, &created);
    if (!r.ok()) return impl_->Error(r.status());
    NamespaceInfo info = ToNamespaceInfo(*r);
    info.created = created;
    return info;
  });
}

Result<NamespaceInfo> Client::GetNamespace(std::string_view name) {
  return impl_->With<NamespaceInfo>([&](ym::client::ApiClient& api) -> Result<NamespaceInfo> {
    auto r = api.GetNamespace(name);
    if (!r.ok()) return impl_->Error(r.status());
    return ToNamespaceInfo(*r);
  });
}

Result<std::vector<NamespaceInfo>> Client::ListNamespaces() {
  return impl_->With<std::vector<NamespaceInfo>>(
      [&](ym::client::ApiClient& api) -> Result<std::vector<NamespaceInfo>> {
        auto r = api.ListNamespaces();
        if (!r.ok()) return impl_->Error(r.status());
        std::vector<NamespaceInfo> out;
        for (const auto& n : *r) out.push_back(ToNamespaceInfo(n));
        return out;
      });
}

Status Client::DeleteNamespace(std::string_view name) {
  auto r = impl_->With<bool>([&](ym::client::ApiClient& api) -> Result<bool> {
    ym::Status s = api.DeleteNamespace(name);
    if (!s.ok()) return impl_->Error(s);
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Result<LimitInfo> Client::ResetBreaker(std::string_view name,
                                       const std::optional<std::string>& key) {
  return impl_->With<LimitInfo>([&](ym::client::ApiClient& api) -> Result<LimitInfo> {
    auto r = api.ResetBreaker(name, key);
    if (!r.ok()) return impl_->Error(r.status());
    return ToLimitInfo(*r);
  });
}

Result<BulkResult> Client::BulkPage(BulkAction action, const JobFilter& filter,
                                    std::string_view cursor, const BulkOptions& options) {
  return impl_->With<BulkResult>([&](ym::client::ApiClient& api) -> Result<BulkResult> {
    auto r = api.Bulk(ToBulkRequest(action, filter, cursor, options));
    if (!r.ok()) return impl_->Error(r.status());
    BulkResult out;
    AddPage(out, *r);
    return out;
  });
}

namespace {

Result<BulkResult> Loop(Client& client, BulkAction action, const JobFilter& filter,
                        const BulkOptions& options) {
  BulkResult total;
  std::string cursor = options.cursor;
  for (;;) {
    Result<BulkResult> page = client.BulkPage(action, filter, cursor, options);
    if (!page.ok()) return page.status();
    total.matched += page->matched;
    total.applied += page->applied;
    total.cancel_requested += page->cancel_requested;
    total.skipped += page->skipped;
    total.pages += 1;
    total.next_cursor = page->next_cursor;
    if (!total.next_cursor) return total;
    if (options.max_pages > 0 && total.pages >= options.max_pages) return total;
    cursor = *total.next_cursor;
  }
}

}  // namespace

Result<BulkResult> Client::CancelJobs(const JobFilter& filter, const BulkOptions& options) {
  return Loop(*this, BulkAction::kCancel, filter, options);
}

Result<BulkResult> Client::ReplayJobs(const JobFilter& filter, const BulkOptions& options) {
  return Loop(*this, BulkAction::kReplay, filter, options);
}

Result<BulkResult> Client::DeleteJobs(const JobFilter& filter, const BulkOptions& options) {
  return Loop(*this, BulkAction::kDelete, filter, options);
}

}  // namespace yardmaster

// --- schedules ---

namespace yardmaster {
namespace {

ym::client::ScheduleSpec ToScheduleSpec(const ScheduleSpec& s) {
  ym::client::ScheduleSpec out;
  out.id = s.id;
  out.cron = s.cron;
  out.time_zone = s.time_zone;
  out.start_at_ms = s.start_at_ms;
  out.end_at_ms = s.end_at_ms;
  out.jitter_ms = s.jitter_ms;
  out.missed_policy = s.missed_policy;
  out.missed_max_count = s.missed_max_count;
  out.missed_max_age_ms = s.missed_max_age_ms;
  out.missed_grace_ms = s.missed_grace_ms;
  out.overlap = s.overlap;
  out.paused = s.paused;
  if (s.job) out.job = ToRequest(*s.job);
  return out;
}

ScheduleDecision ToDecision(const ym::client::ScheduleDecision& d) {
  return ScheduleDecision{d.window_ms, d.through_ms, d.outcome, d.reason,
                          d.job_id,    d.at_ms,      d.lag_ms};
}

ScheduleInfo ToScheduleInfo(const ym::client::Schedule& s) {
  ScheduleInfo out;
  out.id = s.id;
  out.cron = s.cron;
  out.time_zone = s.time_zone;
  out.start_at_ms = s.start_at_ms;
  out.end_at_ms = s.end_at_ms;
  out.jitter_ms = s.jitter_ms;
  out.missed_policy = s.missed_policy;
  out.missed_max_count = s.missed_max_count;
  out.missed_max_age_ms = s.missed_max_age_ms;
  out.missed_grace_ms = s.missed_grace_ms;
  out.overlap = s.overlap;
  out.paused = s.paused;
  out.job_json = s.job_json;
  out.state = s.state;
  out.created_at_ms = s.created_at_ms;
  out.updated_at_ms = s.updated_at_ms;
  out.cursor_ms = s.cursor_ms;
  out.next_fire_at_ms = s.next_fire_at_ms;
  out.next_fire_times = s.next_fire_times;
  out.live_job = s.live_job;
  out.buffered_window_ms = s.buffered_window_ms;
  if (s.last_run) out.last_run = ToDecision(*s.last_run);
  out.lag_last_ms = s.lag_last_ms;
  out.lag_max_recent_ms = s.lag_max_recent_ms;
  out.lag_samples = s.lag_samples;
  for (const auto& d : s.history) out.history.push_back(ToDecision(d));
  return out;
}

}  // namespace

Result<ScheduleInfo> Client::CreateSchedule(const ScheduleSpec& spec) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.CreateSchedule(ToScheduleSpec(spec));
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<ScheduleInfo> Client::ReplaceSchedule(const ScheduleSpec& spec) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.UpdateSchedule(ToScheduleSpec(spec), /*patch=*/false);
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<ScheduleInfo> Client::UpdateSchedule(const ScheduleSpec& spec) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.UpdateSchedule(ToScheduleSpec(spec), /*patch=*/true);
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<ScheduleInfo> Client::GetSchedule(std::string_view id, std::optional<std::int64_t> next) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.GetSchedule(id, next);
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<std::vector<ScheduleInfo>> Client::ListSchedules() {
  return impl_->With<std::vector<ScheduleInfo>>(
      [&](ym::client::ApiClient& api) -> Result<std::vector<ScheduleInfo>> {
        auto r = api.ListSchedules();
        if (!r.ok()) return impl_->Error(r.status());
        std::vector<ScheduleInfo> out;
        for (const auto& s : *r) out.push_back(ToScheduleInfo(s));
        return out;
      });
}

Status Client::DeleteSchedule(std::string_view id) {
  auto r = impl_->With<bool>([&](ym::client::ApiClient& api) -> Result<bool> {
    ym::Status s = api.DeleteSchedule(id);
    if (!s.ok()) return impl_->Error(s);
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Result<ScheduleInfo> Client::PauseSchedule(std::string_view id) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.PauseSchedule(id, /*pause=*/true);
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<ScheduleInfo> Client::ResumeSchedule(std::string_view id) {
  return impl_->With<ScheduleInfo>([&](ym::client::ApiClient& api) -> Result<ScheduleInfo> {
    auto r = api.PauseSchedule(id, /*pause=*/false);
    if (!r.ok()) return impl_->Error(r.status());
    return ToScheduleInfo(*r);
  });
}

Result<Enqueued> Client::TriggerSchedule(std::string_view id) {
  return impl_->With<Enqueued>([&](ym::client::ApiClient& api) -> Result<Enqueued> {
    auto r = api.TriggerSchedule(id);
    if (!r.ok()) return impl_->Error(r.status());
    return ToEnqueued(*r);
  });
}

Result<BackfillResult> Client::BackfillSchedule(std::string_view id, std::int64_t from_ms,
                                                std::int64_t to_ms) {
  return impl_->With<BackfillResult>([&](ym::client::ApiClient& api) -> Result<BackfillResult> {
    auto r = api.BackfillSchedule(id, from_ms, to_ms);
    if (!r.ok()) return impl_->Error(r.status());
    return BackfillResult{r->emitted, r->duplicates, r->after_cursor, r->windows};
  });
}

}  // namespace yardmaster
