#include "server/alert_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <unordered_map>
#include <utility>

#include "client/http_client.h"
#include "common/build_info.h"
#include "obs/alerts/notification.h"
#include "obs/logging.h"

namespace ym {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void MsOrNull(Writer& w, std::int64_t ms) {
  if (ms == 0) {
    w.Null();
  } else {
    w.Int64(ms);
  }
}

// The first bytes of a webhook's answer, for the failure message (printable ASCII only).
std::string Snippet(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  }
  return out;
}

constexpr std::string_view kWorkerId = "_ym.alerts-delivery";

}  // namespace

std::vector<alerts::QueueSample> GaugeSampleSource::Sample() {
  // The outcome counts of each queue: its label sets' (one per kind) summed. Every queue with
  // counts is sampled, also once core freed it (idle): its counts never restart within the
  // process, and a queue missing from the samples for a while would be forgotten by the
  // evaluator and its whole past taken as new when it came back.
  struct Counts {
    std::uint64_t succeeded = 0, failed = 0, dead = 0;
  };
  std::unordered_map<std::string, Counts> counts;
  auto at = [](const JobStats::LabelSet& l, JobEvent e) {
    return l.events[static_cast<std::size_t>(e)].load(std::memory_order_relaxed);
  };
  broker_.job_stats().ForEach([&](const JobStats::LabelSet& l) {
    if (l.queue == JobStats::kOverflow) return;  // past the label cap: not per queue
    Counts& c = counts[l.queue];
    c.succeeded += at(l, JobEvent::kSucceeded);
    c.failed +=
        at(l, JobEvent::kFailed) + at(l, JobEvent::kLeaseExpired) + at(l, JobEvent::kTimedOut);
    c.dead += at(l, JobEvent::kDead);
  });
  std::vector<alerts::QueueSample> out;
  for (const QueueGauge& g : broker_.QueueGauges()) {
    alerts::QueueSample s;
    s.queue = g.queue;
    s.ready = g.ready;
    s.oldest_ready_age_ms = g.oldest_ready_age_ms;
    s.waiting_workers = g.waiting_workers;
    s.last_poll_ms = g.last_poll_ms;
    if (auto it = counts.find(g.queue); it != counts.end()) {
      s.succeeded = it->second.succeeded;
      s.failed = it->second.failed;
      s.dead = it->second.dead;
      counts.erase(it);
    }
    out.push_back(std::move(s));
  }
  for (auto& [queue, c] : counts) {  // counted, not held by core now: nothing ready
    alerts::QueueSample s;
    s.queue = queue;
    s.succeeded = c.succeeded;
    s.failed = c.failed;
    s.dead = c.dead;
    out.push_back(std::move(s));
  }
  return out;
}

// The delivery thread's HTTP clients, one per (rule, webhook): each keeps its connection alive
// and carries that webhook's headers. Delivery thread only, except `current` (Interrupt).
struct AlertService::Delivery {
  std::map<std::pair<std::string, std::string>, std::unique_ptr<client::HttpClient>> clients;
  std::mutex mu;
  client::HttpClient* current = nullptr;  // GUARDED_BY(mu): the client in a POST now
  bool interrupted = false;               // GUARDED_BY(mu)
};

AlertService::AlertService(Broker& broker, const Clock& clock, std::vector<alerts::AlertRule> rules,
                           QueueSampleSource& source, AlertServiceOptions options)
    : broker_(broker),
      clock_(clock),
      source_(source),
      options_(options),
      rules_(rules),
      evaluator_(std::move(rules), clock),
      delivery_(std::make_unique<Delivery>()) {}

AlertService::~AlertService() { Stop(); }

Status AlertService::Start() {
  if (started_ || rules_.empty()) return Status::Ok();
  YM_RETURN_IF_ERROR(Restore());
  started_ = true;
  evaluator_thread_ = std::thread([this] { EvaluateLoop(); });
  delivery_thread_ = std::thread([this] { DeliverLoop(); });
  return Status::Ok();
}

void AlertService::Stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard lk(delivery_->mu);
    delivery_->interrupted = true;
    if (delivery_->current != nullptr) delivery_->current->Interrupt();
  }
  if (evaluator_thread_.joinable()) evaluator_thread_.join();
  if (delivery_thread_.joinable()) delivery_thread_.join();
}

bool AlertService::SleepFor(std::int64_t ms) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

Status AlertService::Restore() {
  // Every delivery job the store still holds, in id order; each payload is an event. Bounded:
  // past kMaxRestoreJobs (far more than retention keeps for a sane alert volume) the rest is
  // not read, and those instances start inactive.
  constexpr std::size_t kMaxRestoreJobs = 200'000;
  ListQuery q;
  q.filter.queue = std::string(alerts::kAlertQueue);
  q.limit = 1000;
  std::size_t seen = 0, restored = 0;
  std::map<std::string, std::vector<JobId>> jobs;
  while (seen < kMaxRestoreJobs) {
    std::promise<Result<JobPage>> got;
    broker_.ListJobs(q, [&got](Result<JobPage> r) { got.set_value(std::move(r)); });
    Result<JobPage> page = got.get_future().get();
    if (!page.ok()) return page.status();
    std::lock_guard lk(mu_);
    for (const JobView& v : page->items) {
      ++seen;
      auto n = alerts::DecodeNotification(v.job.payload);
      if (!n.ok()) continue;  // not ours (the queue is reserved, not enforced)
      evaluator_.Restore(n->event);
      jobs[n->event.DedupeKey()].push_back(v.job.id);
      ++restored;
    }
    if (page->next_after_id == 0) break;
    q.after_id = page->next_after_id;
  }
  std::lock_guard lk(mu_);
  for (const alerts::AlertStatus& s : evaluator_.Statuses()) {
    if (!s.last_event) continue;
    const std::string key = s.last_event->DedupeKey();
    if (auto it = jobs.find(key); it != jobs.end()) jobs_of_event_[key] = it->second;
  }
  if (restored > 0) {
    YM_LOG(info, kAlerts)
        .Uint("rules", rules_.size())
        .Uint("restored_jobs", restored)
        .Msg("alerts: {} rules; state rebuilt from {} delivery jobs of {}", rules_.size(), restored,
             alerts::kAlertQueue);
  } else {
    YM_LOG(info, kAlerts).Uint("rules", rules_.size()).Msg("alerts: {} rules", rules_.size());
  }
  return Status::Ok();
}

void AlertService::EvaluateLoop() {
  while (SleepFor(options_.evaluate_interval_ms)) {
    std::vector<alerts::QueueSample> samples = source_.Sample();
    std::vector<alerts::AlertEvent> events;
    {
      std::lock_guard lk(mu_);
      events = evaluator_.Evaluate(samples);
      ++evaluations_;
      if (!events.empty()) {
        // Only the instances' last events are shown: keep the jobs of those alone.
        std::map<std::string, std::vector<JobId>> kept;
        for (const alerts::AlertStatus& s : evaluator_.Statuses()) {
          if (!s.last_event) continue;
          const std::string key = s.last_event->DedupeKey();
          auto it = jobs_of_event_.find(key);
          kept[key] = it == jobs_of_event_.end() ? std::vector<JobId>{} : std::move(it->second);
        }
        jobs_of_event_ = std::move(kept);
      }
    }
    for (const alerts::AlertEvent& e : events) {
      ++events_;
      YM_LOG(info, kAlerts)
          .Str("rule", e.rule)
          .Str("queue", e.queue)
          .Str("state", e.firing ? "firing" : "resolved")
          .Double("value", e.value)
          .Double("threshold", e.threshold)
          .Str("dedupe_key", e.DedupeKey())
          .Msg("alert {} on queue {}: {}", e.rule, e.queue, e.firing ? "firing" : "resolved");
      std::size_t ri = 0;
      while (ri < rules_.size() && rules_[ri].name != e.rule) ++ri;
      for (std::size_t wi = 0; ri < rules_.size() && wi < rules_[ri].webhooks.size(); ++wi) {
        if (unenqueued_.size() >= options_.max_unenqueued) {
          unenqueued_.erase(unenqueued_.begin());
          ++dropped_events_;
        }
        unenqueued_.push_back({e, ri, wi});
      }
    }
    EnqueuePending();
  }
}

void AlertService::EnqueuePending() {
  if (unenqueued_.empty()) return;
  std::vector<EnqueueSpec> specs;
  specs.reserve(unenqueued_.size());
  for (const Unenqueued& u : unenqueued_) {
    const alerts::AlertRule& rule = rules_[u.rule];
    EnqueueSpec s;
    s.queue = std::string(alerts::kAlertQueue);
    s.kind = std::string(alerts::kAlertJobKind);
    s.payload =
        alerts::EncodeNotification(u.event, rule.condition.text, rule.webhooks[u.webhook].url.url);
    s.max_attempts = options_.max_attempts;
    s.backoff = options_.backoff;
    s.lease_ms = options_.lease_ms;
    s.timeout_ms = 0;
    s.idempotency_key = alerts::DeliveryKey(u.event, u.webhook);
    specs.push_back(std::move(s));
  }
  std::promise<std::vector<Result<EnqueueOutcome>>> done;
  broker_.Enqueue(std::move(specs),
                  [&done](std::vector<Result<EnqueueOutcome>> r) { done.set_value(std::move(r)); });
  const std::vector<Result<EnqueueOutcome>> results = done.get_future().get();
  std::vector<Unenqueued> left;
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < results.size() && i < unenqueued_.size(); ++i) {
    const Unenqueued& u = unenqueued_[i];
    if (results[i].ok()) {
      auto it = jobs_of_event_.find(u.event.DedupeKey());
      if (it != jobs_of_event_.end() &&
          std::find(it->second.begin(), it->second.end(), results[i]->id) == it->second.end()) {
        it->second.push_back(results[i]->id);
      }
      continue;
    }
    const Status& s = results[i].status();
    if (s.code() == Code::kValidation || s.code() == Code::kInvalidRequest) {
      // Never accepted however often tried (e.g. a namespace limit's shape): say so, drop it.
      YM_LOG(err, kAlerts)
          .Str("rule", u.event.rule)
          .Str("queue", u.event.queue)
          .Msg("alert {} on queue {}: delivery job refused: {}", u.event.rule, u.event.queue,
               s.ToString());
      ++dropped_events_;
      continue;
    }
    ++enqueue_retries_;
    left.push_back(u);
  }
  unenqueued_ = std::move(left);
}

void AlertService::DeliverLoop() {
  while (true) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
    }
    LeaseRequest req;
    req.queues = {std::string(alerts::kAlertQueue)};
    req.max = 1;
    req.wait_ms = options_.poll_wait_ms;
    req.worker_id = std::string(kWorkerId);
    std::promise<Result<std::vector<LeasedJob>>> leased;
    broker_.Lease(std::move(req),
                  [&leased](Result<std::vector<LeasedJob>> r) { leased.set_value(std::move(r)); });
    Result<std::vector<LeasedJob>> jobs = leased.get_future().get();
    if (!jobs.ok()) {
      // Draining, read-only or busy: try again shortly.
      if (!SleepFor(500)) return;
      continue;
    }
    for (LeasedJob& job : *jobs) {
      auto n = alerts::DecodeNotification(job.payload);
      const alerts::Webhook* hook = nullptr;
      if (n.ok()) {
        for (const alerts::AlertRule& r : rules_) {
          if (r.name != n->event.rule) continue;
          for (const alerts::Webhook& w : r.webhooks) {
            if (w.url.url == n->webhook_url) hook = &w;
          }
        }
      }
      FailSpec failure;
      bool ok = false;
      bool interrupted = false;
      if (!n.ok()) {
        failure = {"alert_payload", "not an alert notification: " + n.status().message(), false,
                   std::nullopt};
      } else if (hook == nullptr) {
        // The rule or the webhook left the config file since the event: its headers are
        // unknown, so nothing is sent. Dead, replayable once the config has it again.
        failure = {"alert_rule_gone",
                   "rule " + n->event.rule + " has no webhook " + n->webhook_url +
                       " in the config file any more",
                   false, std::nullopt};
      } else {
        const auto key = std::make_pair(n->event.rule, hook->url.url);
        auto& client = delivery_->clients[key];
        if (!client) {
          client::HttpClientOptions o;
          o.connect_timeout = std::chrono::milliseconds(options_.webhook_timeout_ms);
          o.request_timeout = std::chrono::milliseconds(options_.webhook_timeout_ms);
          o.max_response_bytes = 1 << 20;
          o.user_agent = "yardmaster-alerts/" + std::string(kVersion);
          o.headers = hook->headers;
          client = std::make_unique<client::HttpClient>(
              client::BaseUrl{hook->url.host, hook->url.port}, std::move(o));
        }
        {
          std::lock_guard lk(delivery_->mu);
          if (delivery_->interrupted) client->Interrupt();
          delivery_->current = client.get();
        }
        auto res = client->Send(client::HttpMethod::kPost, hook->url.target, job.payload);
        {
          std::lock_guard lk(delivery_->mu);
          delivery_->current = nullptr;
          interrupted = delivery_->interrupted;
        }
        if (res.ok() && res->status >= 200 && res->status < 300) {
          ok = true;
        } else if (res.ok()) {
          failure = {"webhook_http_" + std::to_string(res->status),
                     "POST " + hook->url.url + " answered " + std::to_string(res->status) +
                         (res->body.empty() ? "" : ": " + Snippet(res->body)),
                     true, std::nullopt};
        } else {
          failure = {"webhook_unreachable", "POST " + hook->url.url + ": " + res.status().message(),
                     true, std::nullopt};
        }
      }
      if (interrupted && !ok) {
        // Stopping: hand the job back untouched (no attempt counted); the next start sends it.
        broker_.Release({{job.id, job.lease.token}});
        continue;
      }
      std::vector<AckItem> acks;
      std::vector<FailItem> fails;
      if (ok) {
        acks.push_back({job.id, job.lease.token, ""});
        ++delivered_;
      } else {
        YM_LOG(warn, kAlerts)
            .Str("job_id", FormatJobId(job.id))
            .Int("attempt", job.attempt)
            .Str("error_type", failure.type)
            .Msg("alert delivery job {} (attempt {} of {}): {}", job.id, job.attempt,
                 job.max_attempts, failure.message);
        fails.push_back({job.id, job.lease.token, failure});
        ++delivery_failures_;
      }
      std::promise<void> completed;
      broker_.Complete(std::move(acks), std::move(fails),
                       [&completed](std::vector<Status>, std::vector<Result<JobState>>) {
                         completed.set_value();
                       });
      completed.get_future().wait();
    }
  }
}

std::string AlertService::RenderJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  std::lock_guard lk(mu_);
  const std::vector<alerts::AlertStatus> statuses = evaluator_.Statuses();
  w.StartObject();
  w.Key("alerts");
  w.StartArray();
  for (const alerts::AlertRule& rule : rules_) {
    w.StartObject();
    w.Key("name");
    Str(w, rule.name);
    w.Key("queue");
    Str(w, rule.queue.empty() ? "*" : rule.queue);
    w.Key("condition");
    Str(w, rule.condition.text);
    w.Key("webhooks");
    w.StartArray();
    for (const alerts::Webhook& h : rule.webhooks) Str(w, h.url.url);
    w.EndArray();
    w.Key("instances");
    w.StartArray();
    for (const alerts::AlertStatus& s : statuses) {
      if (s.rule != rule.name) continue;
      w.StartObject();
      w.Key("queue");
      Str(w, s.queue);
      w.Key("state");
      Str(w, alerts::AlertStateName(s.state));
      w.Key("since");
      MsOrNull(w, s.since_ms);
      w.Key("value");
      if (s.value) {
        w.Double(*s.value);
      } else {
        w.Null();
      }
      w.Key("last_event");
      if (!s.last_event) {
        w.Null();
      } else {
        const alerts::AlertEvent& e = *s.last_event;
        w.StartObject();
        w.Key("state");
        Str(w, e.firing ? "firing" : "resolved");
        w.Key("at");
        w.Int64(e.at_ms);
        w.Key("started_at");
        w.Int64(e.started_at_ms);
        w.Key("ends_at");
        MsOrNull(w, e.firing ? 0 : e.ends_at_ms);
        w.Key("value");
        w.Double(e.value);
        w.Key("dedupe_key");
        Str(w, e.DedupeKey());
        w.Key("jobs");
        w.StartArray();
        if (auto it = jobs_of_event_.find(e.DedupeKey()); it != jobs_of_event_.end()) {
          for (JobId id : it->second) Str(w, FormatJobId(id));
        }
        w.EndArray();
        w.EndObject();
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("delivery_queue");
  Str(w, alerts::kAlertQueue);
  w.Key("evaluations_total");
  w.Uint64(evaluations_.load(std::memory_order_relaxed));
  w.Key("events_total");
  w.Uint64(events_.load(std::memory_order_relaxed));
  w.Key("delivered_total");
  w.Uint64(delivered_.load(std::memory_order_relaxed));
  w.Key("delivery_failures_total");
  w.Uint64(delivery_failures_.load(std::memory_order_relaxed));
  w.Key("enqueue_retries_total");
  w.Uint64(enqueue_retries_.load(std::memory_order_relaxed));
  w.Key("dropped_events_total");
  w.Uint64(dropped_events_.load(std::memory_order_relaxed) + evaluator_.dropped_instances());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace ym
