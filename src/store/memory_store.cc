#include "store/memory_store.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <type_traits>
#include <variant>

namespace ym {
namespace {

// Originals of every entry a batch touched, so a failed batch can be undone exactly.
struct Undo {
  std::map<JobId, std::optional<JobRecord>> jobs;
  std::map<std::string, std::optional<QueueConfig>> queues;
  std::map<std::string, std::optional<std::string>> limits;
  std::map<std::string, std::optional<std::string>> namespaces;
  std::map<std::pair<std::string, std::string>, std::optional<IdempotencyKeyRecord>> keys;
};

template <typename Map, typename Saved>
void Remember(const Map& live, const typename Map::key_type& key, Saved* saved) {
  if (saved->count(key) != 0) return;
  auto it = live.find(key);
  if (it == live.end()) {
    saved->emplace(key, std::nullopt);
  } else {
    saved->emplace(key, it->second);
  }
}

template <typename Map, typename Saved>
void Restore(Map* live, Saved* saved) {
  for (auto& [key, value] : *saved) {
    if (value.has_value()) {
      (*live)[key] = std::move(*value);
    } else {
      live->erase(key);
    }
  }
}

// Like SqliteStore, a lease is kept only with state active and a token; any other record
// carries none.
void NormalizeLease(JobRecord& r) {
  if (r.state == JobState::kActive && r.lease_token != 0) return;
  r.lease_token = 0;
  r.lease_expires_at_ms = 0;
  r.worker_id.clear();
  r.lease_deadline_at_ms = 0;
}

// The same range SqliteStore accepts: SQLite integers are signed 64-bit.
bool IdInRange(JobId id) {
  return id <= static_cast<JobId>(std::numeric_limits<std::int64_t>::max());
}

}  // namespace

Status MemoryStore::Commit(const Batch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!IdInRange(batch.next_id)) return IoError("batch next_id out of range");
  Undo undo;
  // Quota counts change by ranges (a new window drops the older ones): a failed batch puts
  // back the copy taken before it. Only batches holding a quota or limit change pay for it.
  std::optional<decltype(state_.quota)> quota_before;
  for (const Mutation& m : batch.mutations) {
    if (std::holds_alternative<PutQuotaCount>(m) || std::holds_alternative<DropQuotaCounts>(m) ||
        std::holds_alternative<DeleteLimit>(m)) {
      quota_before = state_.quota;
      break;
    }
  }
  // Schedules likewise: a copy before a batch that changes any.
  std::optional<decltype(state_.schedules)> schedules_before;
  for (const Mutation& m : batch.mutations) {
    if (std::holds_alternative<PutSchedule>(m) || std::holds_alternative<DeleteSchedule>(m)) {
      schedules_before = state_.schedules;
      break;
    }
  }
  // API tokens likewise (rare configuration writes).
  std::optional<decltype(state_.api_tokens)> tokens_before;
  for (const Mutation& m : batch.mutations) {
    if (std::holds_alternative<PutApiToken>(m) || std::holds_alternative<RevokeApiToken>(m) ||
        std::holds_alternative<TouchApiTokens>(m)) {
      tokens_before = state_.api_tokens;
      break;
    }
  }
  auto drop_quota = [&](const std::string& limit, std::int64_t before_ms) {
    for (auto it = state_.quota.lower_bound({limit, ""});
         it != state_.quota.end() && it->first.first == limit;) {
      it = it->second.first < before_ms ? state_.quota.erase(it) : std::next(it);
    }
  };
  JobId next_id = std::max(state_.next_id, batch.next_id);
  Status st;
  outcomes_.clear();
  // Audit entries are sealed on the way (in batch order, after the committed head) and dropped
  // again if the batch fails.
  const std::size_t audit_before = state_.audit.size();
  const audit::Head head_before = state_.audit_head;
  for (const Mutation& m : batch.mutations) {
    if (const auto* a = std::get_if<AppendAudit>(&m)) {
      audit::Entry e = a->entry;
      state_.audit_head = audit::Seal(e, state_.audit_head);
      state_.audit.push_back(std::move(e));
      continue;
    }
    if (const auto* ins = std::get_if<InsertJob>(&m)) {
      const JobRecord& j = ins->job;
      if (j.id == 0 || !IdInRange(j.id)) {
        st = IoError("insert of job with invalid id " + std::to_string(j.id));
      } else if (static_cast<std::uint8_t>(j.state) > 5) {
        st = IoError("insert job " + std::to_string(j.id) + ": state out of range");
      } else if (state_.jobs.count(j.id) != 0) {
        st = IoError("insert job " + std::to_string(j.id) + ": id already exists");
      } else {
        Remember(state_.jobs, j.id, &undo.jobs);
        NormalizeLease(state_.jobs.emplace(j.id, j).first->second);
        if (j.id >= next_id && IdInRange(j.id + 1)) next_id = j.id + 1;
      }
    } else if (const auto* upd = std::get_if<UpdateJob>(&m)) {
      const JobRecord& j = upd->job;
      auto it = state_.jobs.find(j.id);
      // Like the SQL UPDATE: a missing row is a no-op and only a row that exists is checked.
      if (it != state_.jobs.end() && static_cast<std::uint8_t>(j.state) > 5) {
        st = IoError("update job " + std::to_string(j.id) + ": state out of range");
      } else if (it != state_.jobs.end()) {
        Remember(state_.jobs, j.id, &undo.jobs);
        JobRecord& r = it->second;
        r.state = j.state;
        r.priority = j.priority;
        r.run_at_ms = j.run_at_ms;
        r.updated_at_ms = j.updated_at_ms;
        r.finished_at_ms = j.finished_at_ms;
        r.attempts = j.attempts;
        r.max_attempts = j.max_attempts;
        r.runs = j.runs;
        r.backoff = j.backoff;
        r.lease_ms = j.lease_ms;
        r.errors = j.errors;
        r.dead_reason = j.dead_reason;
        r.result = j.result;
        r.cancel_requested = j.cancel_requested;
        r.lease_token = j.lease_token;
        r.lease_expires_at_ms = j.lease_expires_at_ms;
        r.worker_id = j.worker_id;
        r.lease_deadline_at_ms = j.lease_deadline_at_ms;
        NormalizeLease(r);
      }
    } else if (const auto* ls = std::get_if<UpdateLease>(&m)) {
      auto it = state_.jobs.find(ls->id);
      // Like SqliteStore, only a live row takes a lease change (a lease of a job the store
      // holds as finished is a no-op).
      if (it != state_.jobs.end() && IsTerminal(it->second.state)) it = state_.jobs.end();
      if (it != state_.jobs.end() && static_cast<std::uint8_t>(ls->state) > 5) {
        st = IoError("update lease of job " + std::to_string(ls->id) + ": state out of range");
      } else if (it != state_.jobs.end()) {
        Remember(state_.jobs, ls->id, &undo.jobs);
        JobRecord& r = it->second;
        r.state = ls->state;
        r.attempts = ls->attempts;
        r.updated_at_ms = ls->updated_at_ms;
        r.lease_token = ls->token;
        r.lease_expires_at_ms = ls->expires_at_ms;
        r.worker_id = ls->worker_id;
        r.lease_deadline_at_ms = ls->deadline_at_ms;
        NormalizeLease(r);
      }
    } else if (const auto* del = std::get_if<DeleteJob>(&m)) {
      if (state_.jobs.count(del->id) != 0) {
        Remember(state_.jobs, del->id, &undo.jobs);
        state_.jobs.erase(del->id);
      }
    } else if (const auto* q = std::get_if<PutQueue>(&m)) {
      Remember(state_.queues, q->config.name, &undo.queues);
      state_.queues[q->config.name] = q->config;
    } else if (const auto* pl = std::get_if<PutLimit>(&m)) {
      Remember(state_.limits, pl->name, &undo.limits);
      state_.limits[pl->name] = pl->spec_json;
    } else if (const auto* pn = std::get_if<PutNamespace>(&m)) {
      Remember(state_.namespaces, pn->name, &undo.namespaces);
      state_.namespaces[pn->name] = pn->spec_json;
    } else if (const auto* dn = std::get_if<DeleteNamespace>(&m)) {
      Remember(state_.namespaces, dn->name, &undo.namespaces);
      state_.namespaces.erase(dn->name);
    } else if (const auto* dl = std::get_if<DeleteLimit>(&m)) {
      Remember(state_.limits, dl->name, &undo.limits);
      state_.limits.erase(dl->name);
      drop_quota(dl->name, std::numeric_limits<std::int64_t>::max());
    } else if (const auto* pq = std::get_if<PutQuotaCount>(&m)) {
      drop_quota(pq->limit, pq->drop_before_ms);
      state_.quota[{pq->limit, pq->key}] = {pq->window_start_ms, pq->used};
    } else if (const auto* ps = std::get_if<PutSchedule>(&m)) {
      cron::ScheduleRow& row = state_.schedules[ps->row.id];
      std::vector<cron::HistoryEntry> history = std::move(row.new_history);
      row = ps->row;
      history.insert(history.end(), ps->row.new_history.begin(), ps->row.new_history.end());
      if (history.size() > PutSchedule::kScheduleHistory) {
        history.erase(history.begin(), history.end() - PutSchedule::kScheduleHistory);
      }
      row.new_history = std::move(history);
    } else if (const auto* ds = std::get_if<DeleteSchedule>(&m)) {
      state_.schedules.erase(ds->id);
    } else if (const auto* pt = std::get_if<PutApiToken>(&m)) {
      for (const auto& [id, row] : state_.api_tokens) {
        if (id != pt->row.id && (row.name == pt->row.name || row.hash == pt->row.hash)) {
          st = IoError("api token " + pt->row.id + ": name or hash not unique");
        }
      }
      state_.api_tokens[pt->row.id] = pt->row;
    } else if (const auto* rt = std::get_if<RevokeApiToken>(&m)) {
      auto it = state_.api_tokens.find(rt->id);
      if (it != state_.api_tokens.end() && !it->second.revoked_at_ms) {
        it->second.revoked_at_ms = rt->revoked_at_ms;
      }
    } else if (const auto* tt = std::get_if<TouchApiTokens>(&m)) {
      for (const auto& [id, ms] : tt->last_used) {
        auto it = state_.api_tokens.find(id);
        if (it == state_.api_tokens.end()) continue;
        auto& last = it->second.last_used_at_ms;
        if (!last || *last < ms) last = ms;
      }
    } else if (const auto* dq = std::get_if<DropQuotaCounts>(&m)) {
      drop_quota(dq->limit, std::numeric_limits<std::int64_t>::max());
    } else if (const auto* dq = std::get_if<DeleteQueue>(&m)) {
      Remember(state_.queues, dq->name, &undo.queues);
      state_.queues.erase(dq->name);
    } else if (const auto* k = std::get_if<PutIdempotencyKey>(&m)) {
      if (!IdInRange(k->job_id)) {
        st = IoError("idempotency key for invalid job id");
      } else {
        KeyId id{k->ns, k->key};
        Remember(state_.keys, id, &undo.keys);
        state_.keys[id] = IdempotencyKeyRecord{k->ns, k->key, k->job_id, k->expires_at_ms, {}};
      }
    } else if (const auto* f = std::get_if<FinishIdempotencyKey>(&m)) {
      auto it = state_.keys.find(KeyId{f->ns, f->key});
      if (it != state_.keys.end() && it->second.job_id == f->job_id) {
        Remember(state_.keys, it->first, &undo.keys);
        it->second.final_state = f->state;
      }
    } else if (const auto* d = std::get_if<DeleteIdempotencyKey>(&m)) {
      auto it = state_.keys.find(KeyId{d->ns, d->key});
      if (it != state_.keys.end() && it->second.job_id == d->job_id) {
        Remember(state_.keys, it->first, &undo.keys);
        state_.keys.erase(it);
      }
    } else if (const auto* e = std::get_if<ExpireIdempotencyKeys>(&m)) {
      // The ones that expired first, at most `limit` (0: all), as the expiry index would.
      std::vector<std::pair<std::int64_t, KeyId>> expired;
      for (const auto& [id, key] : state_.keys) {
        if (key.expires_at_ms <= e->before_ms) expired.emplace_back(key.expires_at_ms, id);
      }
      std::sort(expired.begin(), expired.end());
      if (e->limit != 0 && expired.size() > e->limit) expired.resize(e->limit);
      for (const auto& [at, id] : expired) {
        Remember(state_.keys, id, &undo.keys);
        state_.keys.erase(id);
      }
    } else if (const auto* p = std::get_if<PurgeFinished>(&m); p != nullptr && !p->ns.empty()) {
      if (IsTerminal(p->state)) {
        // A namespace pass chunk, as SQLite's (state, ns, id) index walk does it (batch.h).
        const std::uint64_t limit = std::max<std::uint64_t>(p->limit, 1);
        std::vector<JobId> due;
        std::uint64_t read = 0;
        JobId last = 0;
        bool stopped = false;
        for (auto it = state_.jobs.upper_bound(p->after_id); it != state_.jobs.end(); ++it) {
          const JobRecord& j = it->second;
          if (j.state != p->state || j.ns != p->ns) continue;
          if (read == limit) break;
          ++read;
          last = it->first;
          if (j.created_at_ms > p->before_ms) {
            stopped = true;
            break;
          }
          if (j.finished_at_ms <= p->before_ms) due.push_back(it->first);
        }
        for (JobId id : due) {
          Remember(state_.jobs, id, &undo.jobs);
          state_.jobs.erase(id);
        }
        PurgeOutcome o;
        o.state = p->state;
        o.ns = p->ns;
        o.deleted = due.size();
        o.resume_after = !stopped && read == limit ? last : 0;
        outcomes_.push_back(std::move(o));
      }
    } else if (const auto* p = std::get_if<PurgeFinished>(&m)) {
      if (IsTerminal(p->state)) {
        // The rows of (state, queue) in (finished_at_ms, id) order, as SQLite's index has them.
        std::vector<std::pair<std::int64_t, JobId>> rows;
        for (const auto& [id, j] : state_.jobs) {
          if (j.state == p->state && j.queue == p->queue) rows.emplace_back(j.finished_at_ms, id);
        }
        std::sort(rows.begin(), rows.end());
        const std::uint64_t limit = p->limit == 0 ? UINT64_MAX : p->limit;
        std::uint64_t n = 0;
        if (p->max_kept > 0 && rows.size() > p->max_kept) n = rows.size() - p->max_kept;
        n = std::min(n, limit);
        while (n < rows.size() && n < limit && rows[n].first <= p->before_ms) ++n;
        for (std::size_t i = 0; i < n; ++i) {
          Remember(state_.jobs, rows[i].second, &undo.jobs);
          state_.jobs.erase(rows[i].second);
        }
        outcomes_.push_back(PurgeOutcome{p->queue, p->state, n, rows.size() - n,
                                         n < rows.size() ? rows[n].first : INT64_MAX});
      }
    }
    if (!st.ok()) break;
  }
  if (!st.ok()) {
    Restore(&state_.jobs, &undo.jobs);
    Restore(&state_.queues, &undo.queues);
    Restore(&state_.limits, &undo.limits);
    Restore(&state_.namespaces, &undo.namespaces);
    Restore(&state_.keys, &undo.keys);
    if (quota_before) state_.quota = std::move(*quota_before);
    if (schedules_before) state_.schedules = std::move(*schedules_before);
    if (tokens_before) state_.api_tokens = std::move(*tokens_before);
    state_.audit.resize(audit_before);
    state_.audit_head = head_before;
    outcomes_.clear();
    return IoError("commit batch " + std::to_string(batch.seq) + ": " + st.message());
  }
  state_.next_id = next_id;
  ++commits_;
  return Status::Ok();
}

std::vector<PurgeOutcome> MemoryStore::TakePurgeOutcomes() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::move(outcomes_);
}

Status MemoryStore::Recover(std::int64_t now_ms, RecoveryVisitor& visitor) {
  std::lock_guard<std::mutex> lock(mu_);
  visitor.OnNextId(state_.next_id);
  if (!state_.jobs.empty()) visitor.OnLastCreatedAt(state_.jobs.rbegin()->second.created_at_ms);
  for (const auto& [name, config] : state_.queues) visitor.OnQueue(config);
  for (const auto& [name, spec] : state_.limits) visitor.OnLimit(name, spec);
  for (const auto& [name, spec] : state_.namespaces) visitor.OnNamespace(name, spec);
  for (const auto& [id, count] : state_.quota) {
    visitor.OnQuotaCount(id.first, id.second, count.first, count.second);
  }
  std::map<std::pair<std::string, JobState>, std::pair<std::uint64_t, std::int64_t>> finished;
  for (const auto& [id, job] : state_.jobs) {
    if (!IsTerminal(job.state)) continue;
    auto [it, added] = finished.try_emplace({job.queue, job.state}, 0, job.finished_at_ms);
    ++it->second.first;
    it->second.second = std::min(it->second.second, job.finished_at_ms);
  }
  for (const auto& [key, v] : finished)
    visitor.OnFinished(key.first, key.second, v.first, v.second);
  std::vector<const IdempotencyKeyRecord*> keys;
  for (const auto& [id, key] : state_.keys) {
    if (key.expires_at_ms > now_ms) keys.push_back(&key);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) {
    return a->expires_at_ms > b->expires_at_ms;
  });
  const std::uint64_t max_keys = visitor.MaxIdempotencyKeys();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i >= max_keys) {
      visitor.OnIdempotencyKeysOmitted(keys[i]->expires_at_ms);
      break;
    }
    visitor.OnIdempotencyKey(*keys[i]);
  }
  for (const auto& [id, job] : state_.jobs) {
    if (!IsTerminal(job.state)) {
      JobRecord copy = job;
      visitor.OnLiveJob(std::move(copy));
    }
  }
  for (const auto& [id, row] : state_.schedules) {
    cron::ScheduleRow copy = row;
    visitor.OnSchedule(std::move(copy));
  }
  for (const auto& [id, row] : state_.api_tokens) {
    ApiTokenRow copy = row;
    visitor.OnApiToken(std::move(copy));
  }
  return Status::Ok();
}

Result<std::optional<IdempotencyKeyRecord>> MemoryStore::GetIdempotencyKey(const std::string& ns,
                                                                           const std::string& key,
                                                                           std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.keys.find(KeyId{ns, key});
  if (it == state_.keys.end() || it->second.expires_at_ms <= now_ms) {
    return std::optional<IdempotencyKeyRecord>();
  }
  return std::optional<IdempotencyKeyRecord>(it->second);
}

Result<std::vector<IdempotencyKeyRecord>> MemoryStore::NamespaceKeys(const std::string& ns,
                                                                     const std::string& after_key,
                                                                     JobId max_job_id,
                                                                     std::uint32_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<IdempotencyKeyRecord> out;
  for (auto it = state_.keys.upper_bound(KeyId{ns, after_key});
       it != state_.keys.end() && it->first.first == ns && out.size() < limit; ++it) {
    if (it->second.job_id <= max_job_id) out.push_back(it->second);
  }
  return out;
}

Result<std::optional<JobRecord>> MemoryStore::GetJob(JobId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.jobs.find(id);
  if (it == state_.jobs.end()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(it->second);
}

Result<std::vector<JobRecord>> MemoryStore::ListJobs(const StoreListQuery& query) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobRecord> out;
  if (query.limit == 0) return out;
  for (auto it = state_.jobs.upper_bound(query.after_id); it != state_.jobs.end(); ++it) {
    const JobRecord& j = it->second;
    if (!query.queue.empty() && j.queue != query.queue) continue;
    if (!query.states.empty() &&
        std::find(query.states.begin(), query.states.end(), j.state) == query.states.end()) {
      continue;
    }
    out.push_back(j);
    if (out.size() >= query.limit) break;
  }
  return out;
}

Result<FinishedPage> MemoryStore::SearchFinished(const FinishedSearch& query) {
  std::lock_guard<std::mutex> lock(mu_);
  FinishedPage page;
  if (query.limit == 0 || !query.filter.MayMatchFinished()) return page;
  const std::uint32_t budget = std::max<std::uint32_t>(query.max_examined, 1);
  for (auto it = state_.jobs.upper_bound(query.after_id); it != state_.jobs.end(); ++it) {
    if (page.examined >= budget) {
      page.resume_after = std::prev(it)->first;
      return page;
    }
    ++page.examined;
    const JobRecord& j = it->second;
    if (!IsTerminal(j.state) || !query.filter.Matches(j)) continue;
    page.jobs.push_back(j);
    if (page.jobs.size() >= query.limit) {
      page.resume_after = j.id;
      return page;
    }
  }
  return page;
}

// A scan of every job: the memory store is for tests, and this simple version is the reference
// the SQLite store's maintained counts are checked against (store_test.cc).
Result<std::vector<FinishedCount>> MemoryStore::CountFinished(const FinishedCountQuery& query) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::pair<std::string, JobState>, std::uint64_t> counts;
  for (const auto& [id, j] : state_.jobs) {
    if (!IsTerminal(j.state)) continue;
    if (!query.queue.empty() ? j.queue != query.queue : j.queue <= query.after) continue;
    ++counts[{j.queue, j.state}];
  }
  std::vector<FinishedCount> out;
  std::uint32_t queues = 0;
  for (const auto& [key, n] : counts) {
    if (out.empty() || out.back().queue != key.first) {
      if (queues == query.max_queues) break;
      ++queues;
    }
    out.push_back(FinishedCount{key.first, key.second, n});
  }
  return out;
}

Status MemoryStore::Backup(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (backups_.count(path) != 0) return InvalidRequest("backup target " + path + " already exists");
  backups_.emplace(path, state_);
  return Status::Ok();
}

std::unique_ptr<MemoryStore> MemoryStore::RestoreBackup(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = backups_.find(path);
  if (it == backups_.end()) return nullptr;
  auto store = std::make_unique<MemoryStore>();
  store->state_ = it->second;
  return store;
}

Result<std::vector<audit::Entry>> MemoryStore::ReadAudit(std::uint64_t after_seq,
                                                         std::uint32_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<audit::Entry> out;
  for (std::size_t i = static_cast<std::size_t>(std::min<std::uint64_t>(after_seq, UINT32_MAX));
       i < state_.audit.size() && out.size() < limit; ++i) {
    out.push_back(state_.audit[i]);
  }
  return out;
}

audit::Head MemoryStore::AuditHead() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.audit_head;
}

StoreStats MemoryStore::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  StoreStats stats;
  stats.commits = commits_;
  return stats;
}

}  // namespace ym
