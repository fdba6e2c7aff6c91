// Running CLI commands: one ApiClient call (or a cursor loop) per command, then output.

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <ostream>
#include <set>

#include "cli/alerts.h"
#include "cli/audit.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "cli/schedules.h"
#include "net/auth_token.h"

namespace ym::cli {
namespace {

using client::ApiClient;
using client::Job;
using client::Queue;

// Maps a failed call to stderr text and an exit code. `last_http_status() == 0` means no reply
// came back at all, which scripts need to tell apart from a server that said no.
int Fail(const Status& s, const ApiClient& api, const std::string& url, std::ostream& err) {
  if (api.last_http_status() == 0 && s.code() == Code::kUnavailable) {
    err << "error: cannot reach the server at " << url << ": " << s.message() << '\n';
    return kExitUnreachable;
  }
  err << "error: " << s.ToString() << '\n';
  return kExitServerError;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

std::string Or(const std::optional<std::string>& v, std::string_view fallback = "-") {
  return v ? *v : std::string(fallback);
}

// A job's last_error as "type: message". The server reports an attempt-error object; anything
// else it might send is shown as the JSON it is.
std::string DescribeError(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) return json;
  if (d.IsString()) return d.GetString();
  if (d.IsObject() && d.HasMember("message") && d["message"].IsString()) {
    std::string out;
    if (d.HasMember("type") && d["type"].IsString())
      out = std::string(d["type"].GetString()) + ": ";
    return out + d["message"].GetString();
  }
  return json;
}

void PrintJob(const Job& j, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> f = {
      {"id", j.id},
      {"namespace", j.ns},
      {"queue", j.queue},
      {"kind", j.kind},
      {"state", j.state},
      {"priority", std::to_string(j.priority)},
      {"attempts", std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts)},
      {"runs", std::to_string(j.runs)},
      {"run_at", FormatTime(j.run_at_ms)},
      {"created_at", FormatTime(j.created_at_ms)},
      {"updated_at", FormatTime(j.updated_at_ms)},
      {"finished_at", j.finished_at_ms ? FormatTime(*j.finished_at_ms) : "-"},
      {"tags", j.tags.empty() ? "-" : Joined(j.tags)},
      {"idempotency_key", Or(j.idempotency_key)},
      {"concurrency_key", Or(j.concurrency_key)},
      {"blocked_reason", Or(j.blocked_reason)},
  };
  if (j.blocked_until_ms) f.emplace_back("blocked_until", FormatTime(*j.blocked_until_ms));
  if (j.cancel_requested) f.emplace_back("cancel_requested", "yes");
  // Only jobs that have one: the output of the others stays as it was.
  if (j.timeout_ms) f.emplace_back("timeout", FormatDuration(*j.timeout_ms));
  if (j.lease) {
    f.emplace_back(
        "lease",
        "worker " + j.lease->worker_id + ", expires " + FormatTime(j.lease->expires_at_ms) +
            (j.lease->deadline_at_ms ? ", timeout at " + FormatTime(*j.lease->deadline_at_ms)
                                     : ""));
  }
  if (j.progress_json) f.emplace_back("progress", Clip(*j.progress_json, 200));
  if (j.dead_reason) f.emplace_back("dead_reason", *j.dead_reason);
  if (j.last_error_json) f.emplace_back("last_error", Clip(DescribeError(*j.last_error_json), 200));
  f.emplace_back("payload", j.payload_json);
  if (j.result_json) f.emplace_back("result", *j.result_json);
  PrintFields(out, f);
  if (!j.errors.empty()) {
    out << "errors:\n";
    Table t({"ATTEMPT", "AT", "TYPE", "MESSAGE"}, {true});
    for (const auto& e : j.errors) {
      t.AddRow({std::to_string(e.attempt), FormatTime(e.at_ms), e.type, Clip(e.message, 100)});
    }
    t.Print(out);
  }
}

void PrintJobTable(const std::vector<Job>& jobs, std::ostream& out) {
  Table t(
      {"ID", "QUEUE", "KIND", "STATE", "ATTEMPTS", "PRIORITY", "RUN_AT", "CREATED_AT", "BLOCKED"},
      {true, false, false, false, true, true});
  for (const Job& j : jobs) {
    t.AddRow({j.id, j.queue, j.kind, j.state,
              std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts),
              std::to_string(j.priority), FormatTime(j.run_at_ms), FormatTime(j.created_at_ms),
              Or(j.blocked_reason)});
  }
  t.Print(out);
}

void PrintDeadTable(const std::vector<Job>& jobs, std::ostream& out) {
  Table t({"ID", "QUEUE", "KIND", "ATTEMPTS", "FINISHED_AT", "REASON", "LAST_ERROR"},
          {true, false, false, true});
  for (const Job& j : jobs) {
    t.AddRow({j.id, j.queue, j.kind, std::to_string(j.attempts),
              j.finished_at_ms ? FormatTime(*j.finished_at_ms) : "-", Or(j.dead_reason),
              j.last_error_json ? Clip(DescribeError(*j.last_error_json), 80) : "-"});
  }
  t.Print(out);
}

// A retention cap as the queue detail shows it.
std::string Cap(std::int64_t n) { return n == 0 ? "no cap" : std::to_string(n); }

// "100/s (burst 100)", "-" when none.
std::string NamespaceRateText(const client::Namespace& n) {
  if (!n.enqueue_rate) return "-";
  const client::NamespaceRate& r = *n.enqueue_rate;
  const std::string per = r.period_ms == 1000       ? "s"
                          : r.period_ms == 60'000   ? "min"
                          : r.period_ms == 3600'000 ? "h"
                                                    : std::to_string(r.period_ms) + "ms";
  return std::to_string(r.count) + "/" + per + " (burst " + std::to_string(r.burst) + ")";
}

void PrintQueue(const Queue& q, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> f = {
      {"name", q.name},
      {"paused", q.paused ? "yes" : "no"},
      {"scheduled", std::to_string(q.counts.scheduled)},
      {"ready", std::to_string(q.counts.ready)},
      {"active", std::to_string(q.counts.active)},
      {"succeeded", std::to_string(q.counts.succeeded)},
      {"dead", std::to_string(q.counts.dead)},
      {"cancelled", std::to_string(q.counts.cancelled)},
      {"oldest_ready_age", FormatDuration(q.oldest_ready_age_ms)},
      {"waiting_workers", std::to_string(q.waiting_workers)},
      {"max_attempts", std::to_string(q.max_attempts)},
      {"lease", FormatDuration(q.lease_ms)},
      {"backoff", FormatDuration(q.backoff.initial_ms) + " .. " + FormatDuration(q.backoff.max_ms) +
                      ", x" + std::to_string(q.backoff.multiplier).substr(0, 4)},
      {"retention", "succeeded " + FormatDuration(q.retention.succeeded_ms) + ", dead " +
                        FormatDuration(q.retention.dead_ms) + ", cancelled " +
                        FormatDuration(q.retention.cancelled_ms)},
      {"retention_caps", "succeeded " + Cap(q.retention.max_succeeded) + ", dead " +
                             Cap(q.retention.max_dead) + ", cancelled " +
                             Cap(q.retention.max_cancelled)},
  };
  // Only queues that have one: the output of the others stays as it was.
  if (q.timeout_ms) f.emplace_back("timeout", FormatDuration(*q.timeout_ms));
  if (q.weight != 1) f.emplace_back("weight", std::to_string(q.weight));
  // Why jobs are not running, the reasons that hold any.
  std::string blocked;
  for (const auto& [reason, n] : q.blocked) {
    if (n == 0) continue;
    if (!blocked.empty()) blocked += ", ";
    blocked += reason + " " + std::to_string(n);
  }
  f.emplace_back("blocked", blocked.empty() ? "-" : blocked);
  PrintFields(out, f);
}

// Runs a paged list: one page, or every page with --all. The cursor loop stops if the server
// ever hands back a cursor it already gave, so a server bug cannot spin the CLI forever.
template <typename Request, typename Fetch>
int ListPages(Request request, bool all, bool json, ApiClient& api, const std::string& url,
              std::ostream& out, std::ostream& err, Fetch fetch,
              void (*print)(const std::vector<Job>&, std::ostream&), std::string_view noun) {
  std::vector<Job> jobs;
  std::set<std::string> seen_cursors;
  std::optional<std::string> next;
  while (true) {
    Result<client::JobPage> page = fetch(api, request);
    if (!page.ok()) return Fail(page.status(), api, url, err);
    if (!all) {
      if (json) {
        out << api.last_body() << '\n';
      } else if (page->items.empty()) {
        out << "no " << noun << '\n';
      } else {
        print(page->items, out);
        if (page->next_cursor) {
          out << "more: --cursor " << *page->next_cursor << "  (or --all)\n";
        }
      }
      return kExitOk;
    }
    for (Job& j : page->items) jobs.push_back(std::move(j));
    next = page->next_cursor;
    if (!next) break;
    if (!seen_cursors.insert(*next).second) {
      err << "error: the server repeated cursor " << *next << "; stopping\n";
      return kExitServerError;
    }
    request.cursor = next;
  }
  if (json) {
    PrintMergedPages(jobs, out);
  } else if (jobs.empty()) {
    out << "no " << noun << '\n';
  } else {
    print(jobs, out);
  }
  return kExitOk;
}

// "queue=q,kind=k" or "all jobs".
// A limit's key mode for the table: "singleton:refuse", "debounce:500ms/5000ms", or "-".
std::string KeyModeText(const client::Limit& l) {
  if (!l.singleton.empty()) return "singleton:" + l.singleton;
  if (l.debounce_delay_ms) {
    return "debounce:" + std::to_string(*l.debounce_delay_ms) + "ms" +
           (l.debounce_max_wait_ms ? "/" + std::to_string(*l.debounce_max_wait_ms) + "ms" : "");
  }
  return "-";
}

std::string RateText(const client::Limit& l) {
  if (!l.rate) return "-";
  const std::pair<std::int64_t, const char*> names[] = {
      {1000, "second"}, {60'000, "minute"}, {3'600'000, "hour"}, {86'400'000, "day"}};
  std::string per = std::to_string(l.rate->period_ms) + "ms";
  for (const auto& [ms, name] : names) {
    if (ms == l.rate->period_ms) per = name;
  }
  return std::to_string(l.rate->count) + "/" + per + " burst " + std::to_string(l.rate->burst);
}

std::string QuotaText(const client::Limit& l) {
  if (!l.quota) return "-";
  return std::to_string(l.quota->count) + "/" + l.quota->per + " " + l.quota->time_zone;
}

std::string BreakerText(const client::Limit& l) {
  if (!l.breaker) return "-";
  const client::LimitBreaker& b = *l.breaker;
  std::string s;
  if (b.consecutive_failures.value_or(0) > 0) {
    s = std::to_string(*b.consecutive_failures) + " failures in a row";
  }
  if (b.window.value_or(0) > 0) {
    if (!s.empty()) s += " or ";
    s += std::to_string(b.failure_percent.value_or(0)) + "% of " + std::to_string(*b.window) +
         " (min " + std::to_string(b.min_samples.value_or(0)) + ")";
  }
  return s + ", open " + std::to_string(b.open_base_ms.value_or(0)) + ".." +
         std::to_string(b.open_max_ms.value_or(0)) + " ms, " +
         std::to_string(l.breaker_tripped_keys) + " keys tripped";
}

// The breaker keys with state, one line each.
void PrintBreakerKeys(const client::Limit& l, std::ostream& out) {
  for (const client::BreakerKey& k : l.breaker_keys) {
    out << "  " << (k.key.empty() ? "\"\"" : k.key) << ": " << k.state;
    if (k.state == "open") out << " until " << FormatTime(k.next_open_at_ms);
    if (k.state == "half_open") out << (k.trial_in_flight ? ", trial running" : ", trial allowed");
    if (k.state == "closed") out << ", " << k.consecutive_failures << " failures in a row";
    if (k.open_interval_ms > 0) out << " (interval " << k.open_interval_ms << " ms)";
    out << '\n';
  }
}

std::string LimitMatchText(const client::Limit& l) {
  std::string m;
  auto add = [&](const char* what, const std::optional<std::string>& v) {
    if (!v) return;
    if (!m.empty()) m += ",";
    m += std::string(what) + "=" + *v;
  };
  add("queue", l.match_queue);
  add("kind", l.match_kind);
  add("namespace", l.match_namespace);
  return m.empty() ? "all jobs" : m;
}

}  // namespace

int Execute(const Invocation& inv, std::istream& in, std::ostream& out, std::ostream& err) {
  if (inv.command == Command::kTokensNewSecret) {
    auto secret = net::NewTokenSecret();
    if (!secret.ok()) {
      err << "error: " << secret.status().message() << '\n';
      return kExitServerError;
    }
    out << *secret << '\n';
    return kExitOk;
  }
  client::HttpClientOptions http;
  http.user_agent = "yardmaster-cli/" + std::string(kVersion);
  http.ca_file = inv.ca_file;
  http.client_cert_file = inv.client_cert_file;
  http.client_key_file = inv.client_key_file;
  http.token = inv.token;
  http.token_file = inv.token_file;
  Result<ApiClient> created = ApiClient::Create(inv.server_url, http);
  if (!created.ok()) {
    err << "error: " << created.status().message() << '\n';
    return kExitUsage;
  }
  ApiClient& api = *created;
  const std::string& url = inv.server_url;

  switch (inv.command) {
    case Command::kSchedulesList:
    case Command::kSchedulesGet:
    case Command::kSchedulesCreate:
    case Command::kSchedulesUpdate:
    case Command::kSchedulesDelete:
    case Command::kSchedulesPause:
    case Command::kSchedulesResume:
    case Command::kSchedulesTrigger:
    case Command::kSchedulesBackfill:
      return RunSchedules(
          inv, api, in, out, err,
          [&url, &err](const Status& s, const ApiClient& a) { return Fail(s, a, url, err); });
    case Command::kEnqueue: {
      Result<std::string> payload = ResolvePayload(inv.payload_arg, in);
      if (!payload.ok()) {
        err << "error: " << payload.status().message() << '\n';
        return kExitUsage;
      }
      client::EnqueueRequest req = inv.enqueue;
      req.payload_json = std::move(*payload);
      Result<client::EnqueueResult> r = api.Enqueue(req);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else if (r->duplicate) {
        out << "job " << r->id << " already exists with this idempotency key (" << r->state
            << "); nothing enqueued\n";
      } else if (r->skipped) {
        out << "job " << r->id << " holds this singleton key (" << r->state
            << "); nothing enqueued\n";
      } else {
        out << "enqueued job " << r->id << " (" << r->state << ")";
        for (const std::string& id : r->superseded) out << ", replacing job " << id;
        out << '\n';
      }
      return kExitOk;
    }
    case Command::kJobsGet:
    case Command::kJobsCancel:
    case Command::kJobsReplay: {
      Result<Job> r = inv.command == Command::kJobsGet      ? api.GetJob(inv.job_id)
                      : inv.command == Command::kJobsCancel ? api.CancelJob(inv.job_id)
                                                            : api.ReplayJob(inv.job_id);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else if (inv.command == Command::kJobsGet) {
        PrintJob(*r, out);
      } else if (inv.command == Command::kJobsCancel && r->state == "active") {
        out << "job " << r->id
            << ": cancel requested; its worker is told (cancel watch or next heartbeat)\n";
      } else {
        out << "job " << r->id << ": " << r->state << '\n';
      }
      return kExitOk;
    }
    case Command::kJobsWait: {
      constexpr std::int64_t kMaxWaitMs = 30'000;  // the server's limit per request
      const auto start = std::chrono::steady_clock::now();
      std::optional<std::chrono::steady_clock::time_point> deadline;
      if (inv.wait_timeout_s) {
        deadline = start + std::chrono::milliseconds(
                               static_cast<std::int64_t>(*inv.wait_timeout_s * 1000.0));
      }
      for (;;) {
        std::int64_t wait_ms = kMaxWaitMs;
        if (deadline) {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                *deadline - std::chrono::steady_clock::now())
                                .count();
          wait_ms = std::clamp<std::int64_t>(left, 0, kMaxWaitMs);
        }
        Result<Job> r = api.WaitJob(inv.job_id, wait_ms);
        if (!r.ok()) return Fail(r.status(), api, url, err);
        const bool ended = r->state == "succeeded" || r->state == "dead" || r->state == "cancelled";
        if (!ended && !(deadline && std::chrono::steady_clock::now() >= *deadline)) continue;
        if (inv.json) {
          out << api.last_body() << '\n';
        } else {
          PrintJob(*r, out);
        }
        if (!ended) {
          err << "error: job " << r->id << " is still " << r->state << " after "
              << *inv.wait_timeout_s << " s\n";
          return kExitWaitTimeout;
        }
        return r->state == "succeeded" ? kExitOk : kExitJobFailed;
      }
    }
    case Command::kJobsList:
      return ListPages(
          inv.list_jobs, inv.all_pages, inv.json, api, url, out, err,
          [](ApiClient& a, const client::ListJobsRequest& r) { return a.ListJobs(r); },
          &PrintJobTable, "jobs");
    case Command::kDeadList:
      return ListPages(
          inv.list_dead, inv.all_pages, inv.json, api, url, out, err,
          [](ApiClient& a, const client::ListDeadRequest& r) { return a.ListDead(r); },
          &PrintDeadTable, "dead jobs");
    case Command::kQueuesList: {
      Result<std::vector<Queue>> r = api.ListQueues();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        // Every page merged, as `jobs list --all --json` prints them.
        PrintMergedPages(*r, out);
        return kExitOk;
      }
      if (r->empty()) {
        out << "no queues\n";
        return kExitOk;
      }
      Table t({"QUEUE", "PAUSED", "SCHEDULED", "READY", "ACTIVE", "SUCCEEDED", "DEAD", "CANCELLED",
               "OLDEST_READY", "WORKERS"},
              {false, false, true, true, true, true, true, true, true, true});
      for (const Queue& q : *r) {
        t.AddRow({q.name, q.paused ? "yes" : "no", std::to_string(q.counts.scheduled),
                  std::to_string(q.counts.ready), std::to_string(q.counts.active),
                  std::to_string(q.counts.succeeded), std::to_string(q.counts.dead),
                  std::to_string(q.counts.cancelled),
                  q.counts.ready > 0 ? FormatDuration(q.oldest_ready_age_ms) : "-",
                  std::to_string(q.waiting_workers)});
      }
      t.Print(out);
      return kExitOk;
    }
    case Command::kQueuesSet: {
      Result<Queue> r = api.PutQueue(inv.queue_name, inv.queue_update, inv.create_queue);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "queue " << r->name << ": weight " << r->weight << '\n';
      }
      return kExitOk;
    }
    case Command::kNamespacesList: {
      Result<std::vector<client::Namespace>> r = api.ListNamespaces();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        PrintMergedPages(*r, out);
        return kExitOk;
      }
      if (r->empty()) {
        out << "no namespaces configured\n";
        return kExitOk;
      }
      Table t({"NAMESPACE", "MAX_LIVE_JOBS", "ENQUEUE_RATE", "WEIGHT", "MAX_ACTIVE", "LIVE_JOBS",
               "ACTIVE_JOBS"},
              {false, true, false, true, true, true, true});
      for (const client::Namespace& n : *r) {
        t.AddRow({n.name, n.max_live_jobs ? std::to_string(*n.max_live_jobs) : "-",
                  NamespaceRateText(n), std::to_string(n.weight.value_or(1)),
                  n.max_active ? std::to_string(*n.max_active) : "-", std::to_string(n.live_jobs),
                  std::to_string(n.active_jobs)});
      }
      t.Print(out);
      return kExitOk;
    }
    case Command::kNamespacesGet:
    case Command::kNamespacesSet: {
      bool created = false;
      Result<client::Namespace> r = inv.command == Command::kNamespacesGet
                                        ? api.GetNamespace(inv.ns.name)
                                        : api.PutNamespace(inv.ns, &created);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
        return kExitOk;
      }
      if (inv.command == Command::kNamespacesSet) {
        out << "namespace " << r->name << (created ? " created" : " replaced") << '\n';
      }
      out << "namespace:      " << r->name << '\n'
          << "max live jobs:  " << (r->max_live_jobs ? std::to_string(*r->max_live_jobs) : "-")
          << '\n'
          << "enqueue rate:   " << NamespaceRateText(*r) << '\n'
          << "weight:         " << r->weight.value_or(1) << '\n'
          << "max active:     " << (r->max_active ? std::to_string(*r->max_active) : "-") << '\n'
          << "live jobs:      " << r->live_jobs << '\n'
          << "active jobs:    " << r->active_jobs << '\n';
      return kExitOk;
    }
    case Command::kNamespacesExport: {
      std::ofstream file;
      if (!inv.output_file.empty()) {
        file.open(inv.output_file, std::ios::binary | std::ios::trunc);
        if (!file) {
          err << "error: cannot open " << inv.output_file << " for writing\n";
          return kExitUsage;
        }
      }
      std::ostream& sink_stream = inv.output_file.empty() ? out : file;
      Result<std::uint64_t> n = api.ExportNamespace(inv.ns.name, [&](std::string_view piece) {
        sink_stream.write(piece.data(), static_cast<std::streamsize>(piece.size()));
        return static_cast<bool>(sink_stream);
      });
      if (!n.ok()) return Fail(n.status(), api, url, err);
      sink_stream.flush();
      if (!sink_stream) {
        err << "error: writing the export failed\n";
        return kExitUsage;
      }
      if (!inv.output_file.empty()) {
        out << "exported " << *n << " job(s) of namespace " << inv.ns.name << " to "
            << inv.output_file << '\n';
      }
      return kExitOk;
    }
    case Command::kNamespacesWipe: {
      client::WipePage total;
      std::optional<std::string> cursor;
      std::uint64_t requests = 0;
      for (;;) {
        Result<client::WipePage> page = api.WipeNamespace(inv.ns.name, inv.wipe_limit, cursor);
        if (!page.ok()) return Fail(page.status(), api, url, err);
        ++requests;
        total.live_jobs += page->live_jobs;
        total.finished_jobs += page->finished_jobs;
        total.idempotency_keys += page->idempotency_keys;
        total.schedules += page->schedules;
        total.skipped += page->skipped;
        if (page->done || !page->next_cursor) break;
        if (!inv.json) {
          out << "erased so far: " << total.live_jobs + total.finished_jobs << " job(s), "
              << total.idempotency_keys << " key(s), " << total.schedules << " schedule(s)\n";
        }
        cursor = page->next_cursor;
      }
      if (inv.json) {
        out << "{\"namespace\":\"" << inv.ns.name
            << "\",\"erased\":{\"live_jobs\":" << total.live_jobs
            << ",\"finished_jobs\":" << total.finished_jobs
            << ",\"idempotency_keys\":" << total.idempotency_keys
            << ",\"schedules\":" << total.schedules << "},\"skipped\":" << total.skipped
            << ",\"requests\":" << requests << "}\n";
        return kExitOk;
      }
      out << "namespace " << inv.ns.name << " wiped: " << total.live_jobs << " live job(s), "
          << total.finished_jobs << " finished job(s), " << total.idempotency_keys
          << " idempotency key(s), " << total.schedules << " schedule(s)";
      if (total.skipped > 0) out << "; " << total.skipped << " job(s) changed meanwhile and stay";
      out << '\n';
      return kExitOk;
    }
    case Command::kNamespacesDelete: {
      Status s = api.DeleteNamespace(inv.ns.name);
      if (!s.ok()) return Fail(s, api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "namespace " << inv.ns.name << " deleted\n";
      }
      return kExitOk;
    }
    case Command::kQueuesGet:
    case Command::kQueuesPause:
    case Command::kQueuesResume:
    case Command::kQueuesReset: {
      Result<Queue> r = inv.command == Command::kQueuesGet ? api.GetQueue(inv.queue_name)
                        : inv.command == Command::kQueuesPause
                            ? api.PauseQueue(inv.queue_name, inv.create_queue)
                        : inv.command == Command::kQueuesReset
                            ? api.ResetQueue(inv.queue_name)
                            : api.ResumeQueue(inv.queue_name, inv.create_queue);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else if (inv.command == Command::kQueuesGet) {
        PrintQueue(*r, out);
      } else {
        out << "queue " << r->name << ": " << (r->paused ? "paused" : "running")
            << (inv.command == Command::kQueuesReset ? " (configuration removed)" : "") << '\n';
      }
      return kExitOk;
    }
    case Command::kLimitsList: {
      Result<std::vector<client::Limit>> r = api.ListLimits();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        PrintMergedPages(*r, out);
        return kExitOk;
      }
      if (r->empty()) {
        out << "no limits\n";
        return kExitOk;
      }
      Table t({"LIMIT", "MATCH", "KEY", "CONCURRENCY", "RATE", "QUOTA", "MODE", "ACTIVE_KEYS",
               "BUSIEST"},
              {false, false, false, true, false, false, false, true, false});
      for (const client::Limit& l : *r) {
        t.AddRow({l.name, LimitMatchText(l), l.key.empty() ? "-" : l.key,
                  l.concurrency ? std::to_string(*l.concurrency) : "-", RateText(l), QuotaText(l),
                  KeyModeText(l), std::to_string(l.active_keys),
                  l.active.empty() ? "-"
                                   : (l.active[0].first.empty() ? "\"\"" : l.active[0].first) +
                                         "=" + std::to_string(l.active[0].second)});
      }
      t.Print(out);
      return kExitOk;
    }
    case Command::kLimitsGet:
    case Command::kLimitsSet: {
      bool created = false;
      Result<client::Limit> r = inv.command == Command::kLimitsGet
                                    ? api.GetLimit(inv.limit.name)
                                    : api.PutLimit(inv.limit, &created);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
        return kExitOk;
      }
      if (inv.command == Command::kLimitsSet) {
        out << "limit " << r->name << (created ? " created" : " replaced") << '\n';
      }
      out << "limit:        " << r->name << '\n'
          << "match:        " << LimitMatchText(*r) << '\n'
          << "key:          " << (r->key.empty() ? "-" : r->key) << '\n'
          << "concurrency:  " << (r->concurrency ? std::to_string(*r->concurrency) : "-") << '\n'
          << "rate:         " << RateText(*r) << '\n'
          << "quota:        " << QuotaText(*r) << '\n';
      // Key modes.
      if (!r->singleton.empty()) out << "singleton:    " << r->singleton << '\n';
      if (r->debounce_delay_ms) {
        out << "debounce:     " << *r->debounce_delay_ms << " ms, max wait "
            << (r->debounce_max_wait_ms ? std::to_string(*r->debounce_max_wait_ms) + " ms"
                                        : std::string("none"))
            << '\n';
      }
      out << "breaker:      " << BreakerText(*r) << '\n';
      PrintBreakerKeys(*r, out);
      out << "active keys:  " << r->active_keys << '\n';
      for (const auto& [key, count] : r->active) {
        out << "  " << (key.empty() ? "\"\"" : key) << ": " << count << '\n';
      }
      if (r->quota && r->quota_window_end_ms != 0) {
        out << "quota window: " << FormatTime(r->quota_window_start_ms) << " .. "
            << FormatTime(r->quota_window_end_ms) << '\n'
            << "quota used:   " << r->quota_used_keys << " keys\n";
        for (const auto& [key, count] : r->quota_used) {
          out << "  " << (key.empty() ? "\"\"" : key) << ": " << count << '\n';
        }
      }
      return kExitOk;
    }
    case Command::kLimitsResetBreaker: {
      Result<client::Limit> r = api.ResetBreaker(inv.limit.name, inv.breaker_key);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
        return kExitOk;
      }
      out << "limit " << r->name << ": breaker reset for "
          << (inv.breaker_key ? "key \"" + *inv.breaker_key + "\"" : std::string("every key"))
          << " (" << r->reset_tripped_keys << " were open or half-open)\n"
          << "breaker:      " << BreakerText(*r) << '\n';
      PrintBreakerKeys(*r, out);
      return kExitOk;
    }
    case Command::kLimitsDelete: {
      Status s = api.DeleteLimit(inv.limit.name);
      if (!s.ok()) return Fail(s, api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "limit " << inv.limit.name << " deleted\n";
      }
      return kExitOk;
    }
    case Command::kDeadReplay: {
      Result<std::int64_t> r = api.ReplayDead(inv.dead_replay);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "replayed " << *r << (*r == 1 ? " dead job\n" : " dead jobs\n");
      }
      return kExitOk;
    }
    case Command::kJobsBulk: {
      // One request per page, following next_cursor; each page's counts on stderr with the
      // cursor that resumes after it, the totals on stdout (docs/cli.md, "Bulk operations").
      client::BulkRequest request = inv.bulk;
      const std::string& action = request.action;
      const std::string done = action == "cancel"   ? "cancelled"
                               : action == "replay" ? "replayed"
                                                    : "deleted";
      std::int64_t matched = 0, applied = 0, requested = 0, skipped = 0, pages = 0;
      std::optional<std::string> next;
      auto totals = [&](std::ostream& os) {
        if (inv.json) {
          os << "{\"matched\":" << matched << ",\"" << done << "\":" << applied;
          if (action == "cancel") os << ",\"cancel_requested\":" << requested;
          os << ",\"skipped\":" << skipped << ",\"pages\":" << pages
             << (request.dry_run ? ",\"dry_run\":true" : "") << ",\"next_cursor\":";
          if (next) {
            os << '"' << *next << '"';
          } else {
            os << "null";
          }
          os << "}\n";
          return;
        }
        if (request.dry_run) {
          os << matched << (matched == 1 ? " job matches" : " jobs match") << " (dry run: "
             << "nothing was " << done << "; add --yes to " << action << " them)\n";
          return;
        }
        os << done << ' ' << applied << " (matched " << matched << ", skipped " << skipped;
        if (action == "cancel") os << ", cancel requested " << requested;
        os << ")\n";
      };
      for (;;) {
        Result<client::BulkPage> page = api.Bulk(request);
        if (!page.ok()) {
          // What earlier pages did stands; the failed request may be retried as it was.
          if (pages > 0) {
            totals(out);
            err << "stopped: resume with --cursor " << request.cursor.value_or("") << '\n';
          }
          return Fail(page.status(), api, url, err);
        }
        ++pages;
        matched += page->matched;
        applied += page->applied;
        requested += page->cancel_requested;
        skipped += page->skipped;
        next = page->next_cursor;
        err << "request " << pages << ": matched " << page->matched << ", " << done << ' '
            << page->applied << ", skipped " << page->skipped;
        if (next) err << "; resume with --cursor " << *next;
        err << '\n';
        if (!next) break;
        if (inv.bulk_max_pages && pages >= *inv.bulk_max_pages) {
          err << "stopped after " << pages << (pages == 1 ? " request" : " requests")
              << " (--max-pages): resume with --cursor " << *next << '\n';
          break;
        }
        request.cursor = next;
      }
      totals(out);
      return kExitOk;
    }
    case Command::kTokensCreate: {
      Result<client::ApiToken> r = api.CreateToken(inv.token_create);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        // The secret alone on stdout (so `> file` keeps just it); the rest on stderr.
        out << r->secret << '\n';
        err << "created token " << r->name << " (id " << r->id << ", role " << r->role
            << "); its secret, printed above, is shown only this once: store it in a file "
               "only you can read (chmod 600) and pass it with --token-file FILE or "
               "YM_TOKEN_FILE=FILE\n";
      }
      return kExitOk;
    }
    case Command::kTokensList: {
      Result<std::vector<client::ApiToken>> r = api.ListTokens();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
        return kExitOk;
      }
      if (r->empty()) {
        out << "no tokens\n";
        return kExitOk;
      }
      Table t({"ID", "NAME", "ROLE", "NAMESPACES", "CREATED", "EXPIRES", "LAST_USED", "STATE"},
              {false, false, false, false, false, false, false, false});
      for (const client::ApiToken& tk : *r) {
        auto time_or_dash = [](const std::optional<std::int64_t>& ms) {
          return ms ? FormatTime(*ms) : std::string("-");
        };
        const std::string state = tk.revoked_at ? "revoked" : tk.expired ? "expired" : "active";
        t.AddRow({tk.id, tk.name, tk.role, Joined(tk.namespaces), FormatTime(tk.created_at),
                  time_or_dash(tk.expires_at), time_or_dash(tk.last_used_at), state});
      }
      t.Print(out);
      return kExitOk;
    }
    case Command::kTokensRevoke: {
      Result<client::ApiToken> r = api.RevokeToken(inv.token_id);
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "token " << r->name << " (id " << r->id << ") revoked\n";
      }
      return kExitOk;
    }
    case Command::kTokensNewSecret:
      break;
    case Command::kAuditList:
    case Command::kAuditCheckpoint:
    case Command::kAuditVerify:
      return RunAudit(inv, api, out, err, [&url, &err](const Status& s, const ApiClient& a) {
        return Fail(s, a, url, err);
      });
    case Command::kAlertsList: {
      Result<std::string> r = api.Alerts();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << *r << '\n';
        return kExitOk;
      }
      return PrintAlerts(*r, out, err);
    }
    case Command::kInfo: {
      Result<client::ServerInfo> r = api.Info();
      if (!r.ok()) return Fail(r.status(), api, url, err);
      if (inv.json) {
        out << api.last_body() << '\n';
        return kExitOk;
      }
      PrintFields(out, {
                           {"server", url},
                           {"version", r->version},
                           {"commit", r->commit.empty() ? "-" : r->commit},
                           {"started_at", FormatTime(r->started_at_ms)},
                           {"live_jobs", std::to_string(r->live_jobs)},
                           {"commits", std::to_string(r->commits)},
                           {"draining", r->draining ? "yes" : "no"},
                       });
      return kExitOk;
    }
  }
  err << "error: internal: unhandled command\n";
  return kExitServerError;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::string> env_url;
  // An empty YM_URL counts as unset, the way shells often "clear" variables.
  if (const char* u = std::getenv("YM_URL"); u != nullptr && *u != '\0') env_url = u;
  ParseOutcome parsed = ParseCommandLine(args, env_url);
  std::cout << parsed.out;
  std::cerr << parsed.err;
  if (!parsed.invocation) return parsed.exit_code;
  const int code = Execute(*parsed.invocation, std::cin, std::cout, std::cerr);
  std::cout.flush();
  return code;
}

}  // namespace ym::cli
