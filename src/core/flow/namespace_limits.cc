#include "core/flow/namespace_limits.h"

#include <limits>
#include <utility>

#include "common/json.h"
#include "core/flow/weighted_rotation.h"
#include "core/job.h"

namespace ym::flow {

namespace {

constexpr std::int64_t kNoRetry = std::numeric_limits<std::int64_t>::max();

Status FieldError(std::string_view field, const std::string& rule) {
  return Validation("field \"" + std::string(field) + "\": " + rule);
}

// An integer member in lo..hi, or kValidation naming it.
Status IntIn(const json::Value& v, std::string_view field, std::int64_t lo, std::int64_t hi,
             std::int64_t* out) {
  const auto n = v.IsNumber() ? v.AsInt64() : std::nullopt;
  if (!n || *n < lo || *n > hi) {
    return FieldError(field,
                      "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  *out = *n;
  return Status::Ok();
}

Status RateFromJson(const json::Value& v, GcraConfig* out) {
  if (!v.IsObject()) {
    return FieldError("enqueue_rate",
                      "must be an object {\"count\", \"per\" or \"period_ms\", \"burst\"}");
  }
  std::optional<std::int64_t> count, period, burst;
  for (const auto& m : v) {
    const std::string_view f = m.name.GetString();
    std::int64_t n = 0;
    if (f == "count") {
      YM_RETURN_IF_ERROR(IntIn(m.value, "enqueue_rate.count", 1, GcraConfig::kMaxCount, &n));
      count = n;
    } else if (f == "burst") {
      YM_RETURN_IF_ERROR(IntIn(m.value, "enqueue_rate.burst", 1, GcraConfig::kMaxBurst, &n));
      burst = n;
    } else if (f == "period_ms" || f == "per") {
      if (period) {
        return FieldError("enqueue_rate", "give one of \"per\" and \"period_ms\", not both");
      }
      if (f == "period_ms") {
        YM_RETURN_IF_ERROR(
            IntIn(m.value, "enqueue_rate.period_ms", 1, GcraConfig::kMaxPeriodMs, &n));
        period = n;
      } else {
        const std::string_view per = m.value.IsString() ? m.value.GetString() : "";
        period = per == "second" ? 1000 : per == "minute" ? 60'000 : per == "hour" ? 3'600'000 : 0;
        if (*period == 0) {
          return FieldError("enqueue_rate.per", "must be \"second\", \"minute\" or \"hour\"");
        }
      }
    } else {
      return FieldError("enqueue_rate." + std::string(f.substr(0, 64)),
                        "unknown member (count, per, period_ms, burst)");
    }
  }
  if (!count) return FieldError("enqueue_rate.count", "is required");
  if (!period) return FieldError("enqueue_rate", "needs \"per\" or \"period_ms\"");
  out->count = *count;
  out->period_ms = *period;
  // Default: one period's worth at once, so that a caller at the rate is never refused.
  out->burst = burst.value_or(std::min(*count, GcraConfig::kMaxBurst));
  return Status::Ok();
}

// {"succeeded_ms","dead_ms","cancelled_ms"}, each optional (null: absent), 0..kMaxWindowMs.
Status RetentionFromJson(const json::Value& v, NamespaceRetentionSpec* out) {
  if (!v.IsObject()) {
    return FieldError("retention",
                      "must be an object {\"succeeded_ms\", \"dead_ms\", \"cancelled_ms\"}");
  }
  for (const auto& m : v) {
    const std::string_view f = m.name.GetString();
    std::optional<std::int64_t>* slot = f == "succeeded_ms"   ? &out->succeeded_ms
                                        : f == "dead_ms"      ? &out->dead_ms
                                        : f == "cancelled_ms" ? &out->cancelled_ms
                                                              : nullptr;
    if (slot == nullptr) {
      return FieldError("retention." + std::string(f.substr(0, 64)),
                        "unknown member (succeeded_ms, dead_ms, cancelled_ms; a namespace has "
                        "no count caps)");
    }
    if (m.value.IsNull()) continue;
    std::int64_t n = 0;
    YM_RETURN_IF_ERROR(
        IntIn(m.value, "retention." + std::string(f), 0, NamespaceRetentionSpec::kMaxWindowMs, &n));
    *slot = n;
  }
  return Status::Ok();
}

}  // namespace

// --- NamespaceSpec ---------------------------------------------------------------------------

Status NamespaceSpec::Validate() const {
  if (!IsValidName(name)) {
    return Validation("namespace name: invalid name (1..128 of [A-Za-z0-9_.:-])");
  }
  if (max_live_jobs && (*max_live_jobs < 1 || *max_live_jobs > kMaxLiveJobs)) {
    return FieldError("max_live_jobs", "must be an integer 1.." + std::to_string(kMaxLiveJobs));
  }
  if (enqueue_rate) {
    if (Status s = enqueue_rate->Validate(); !s.ok()) {
      return FieldError("enqueue_rate", s.message());
    }
  }
  if (weight) {
    if (Status s = WeightedRotation::ValidateWeight(*weight); !s.ok()) {
      return FieldError("weight", s.message());
    }
  }
  if (max_active && (*max_active < 1 || *max_active > kMaxActive)) {
    return FieldError("max_active", "must be an integer 1.." + std::to_string(kMaxActive));
  }
  for (JobState st : {JobState::kSucceeded, JobState::kDead, JobState::kCancelled}) {
    const auto w = retention.WindowMs(st);
    if (w && (*w < 0 || *w > NamespaceRetentionSpec::kMaxWindowMs)) {
      return FieldError(
          "retention." + std::string(StateName(st)) + "_ms",
          "must be an integer 0.." + std::to_string(NamespaceRetentionSpec::kMaxWindowMs));
    }
  }
  if (!max_live_jobs && !enqueue_rate && !weight && !max_active && retention.empty()) {
    return Validation(
        "a namespace needs at least one of max_live_jobs, enqueue_rate, weight, max_active, "
        "retention");
  }
  return Status::Ok();
}

std::string NamespaceSpec::ToJson() const {
  std::string out = "{";
  if (max_live_jobs) out += "\"max_live_jobs\":" + std::to_string(*max_live_jobs) + ",";
  if (enqueue_rate) {
    out += "\"enqueue_rate\":{\"count\":" + std::to_string(enqueue_rate->count) +
           ",\"period_ms\":" + std::to_string(enqueue_rate->period_ms) +
           ",\"burst\":" + std::to_string(enqueue_rate->burst) + "},";
  }
  if (weight) out += "\"weight\":" + std::to_string(*weight) + ",";
  if (max_active) out += "\"max_active\":" + std::to_string(*max_active) + ",";
  if (!retention.empty()) {
    out += "\"retention\":{";
    for (JobState st : {JobState::kSucceeded, JobState::kDead, JobState::kCancelled}) {
      if (const auto w = retention.WindowMs(st)) {
        out += "\"" + std::string(StateName(st)) + "_ms\":" + std::to_string(*w) + ",";
      }
    }
    out.back() = '}';
    out += ",";
  }
  if (out.back() == ',') out.pop_back();
  out += "}";
  return out;
}

Result<NamespaceSpec> NamespaceSpec::FromJson(std::string_view name, std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return doc.status();
  const json::Value root = doc->root();
  if (!root.IsObject()) return Validation("the namespace must be a JSON object");
  NamespaceSpec spec;
  spec.name = std::string(name);
  for (const auto& m : root) {
    const std::string_view field = m.name.GetString();
    std::int64_t n = 0;
    if (field == "name") {
      if (!m.value.IsString() || m.value.GetString() != name) {
        return FieldError("name", "must equal the name in the path");
      }
    } else if (field == "max_live_jobs") {
      if (m.value.IsNull()) continue;
      YM_RETURN_IF_ERROR(IntIn(m.value, field, 1, kMaxLiveJobs, &n));
      spec.max_live_jobs = n;
    } else if (field == "max_active") {
      if (m.value.IsNull()) continue;
      YM_RETURN_IF_ERROR(IntIn(m.value, field, 1, kMaxActive, &n));
      spec.max_active = n;
    } else if (field == "weight") {
      if (m.value.IsNull()) continue;
      YM_RETURN_IF_ERROR(
          IntIn(m.value, field, WeightedRotation::kMinWeight, WeightedRotation::kMaxWeight, &n));
      spec.weight = n;
    } else if (field == "enqueue_rate") {
      if (m.value.IsNull()) continue;
      GcraConfig rate;
      YM_RETURN_IF_ERROR(RateFromJson(m.value, &rate));
      spec.enqueue_rate = rate;
    } else if (field == "retention") {
      if (m.value.IsNull()) continue;
      YM_RETURN_IF_ERROR(RetentionFromJson(m.value, &spec.retention));
    } else {
      return FieldError(field.substr(0, 64),
                        "unknown member (max_live_jobs, enqueue_rate, weight, max_active, "
                        "retention)");
    }
  }
  YM_RETURN_IF_ERROR(spec.Validate());
  return spec;
}

// --- NamespaceLimits -------------------------------------------------------------------------

Status NamespaceLimits::Put(const NamespaceSpec& spec, bool* created) {
  YM_RETURN_IF_ERROR(spec.Validate());
  auto [it, added] = by_name_.try_emplace(spec.name);
  *created = added;
  Entry& e = it->second;
  const bool same_rate = !added && e.spec.enqueue_rate == spec.enqueue_rate;
  if (!added && e.spec.max_active) --with_max_active_;
  if (spec.max_active) ++with_max_active_;
  e.spec = spec;
  if (!same_rate) {
    e.rate.reset();
    e.tat = GcraTime{};
    if (spec.enqueue_rate) e.rate = *Gcra::Make(*spec.enqueue_rate);  // validated above
  }
  return Status::Ok();
}

bool NamespaceLimits::Delete(const std::string& name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return false;
  if (it->second.spec.max_active) --with_max_active_;
  by_name_.erase(it);
  return true;
}

const NamespaceSpec* NamespaceLimits::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second.spec;
}

std::vector<const NamespaceSpec*> NamespaceLimits::Page(const std::string& after, std::size_t limit,
                                                        bool* more) const {
  std::vector<const NamespaceSpec*> out;
  auto it = by_name_.upper_bound(after);
  for (; it != by_name_.end() && out.size() < limit; ++it) out.push_back(&it->second.spec);
  *more = it != by_name_.end();
  return out;
}

std::optional<std::int64_t> NamespaceLimits::MaxActive(std::string_view name) const {
  const NamespaceSpec* spec = Find(name);
  return spec != nullptr ? spec->max_active : std::nullopt;
}

std::int64_t NamespaceLimits::Weight(std::string_view name) const {
  const NamespaceSpec* spec = Find(name);
  return spec != nullptr ? spec->weight.value_or(1) : 1;
}

std::optional<NamespaceRefusal> NamespaceLimits::AdmitEnqueue(std::string_view name,
                                                              std::uint64_t live, std::int64_t n,
                                                              std::int64_t now_mono,
                                                              bool with_rate) {
  std::optional<NamespaceRefusal> refused = Check(name, live, n, now_mono, with_rate);
  if (!refused && with_rate) Charge(name, n, now_mono);
  return refused;
}

void NamespaceLimits::Charge(std::string_view name, std::int64_t n, std::int64_t now_mono) {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || !it->second.rate) return;
  (void)it->second.rate->AdmitN(it->second.tat, now_mono, n);
}

std::optional<NamespaceRefusal> NamespaceLimits::Check(std::string_view name, std::uint64_t live,
                                                       std::int64_t n, std::int64_t now_mono,
                                                       bool with_rate) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  const Entry& e = it->second;
  const std::string ns(name);
  if (e.spec.max_live_jobs &&
      live + static_cast<std::uint64_t>(n) > static_cast<std::uint64_t>(*e.spec.max_live_jobs)) {
    return NamespaceRefusal{
        NamespaceRefusal::Limit::kMaxLiveJobs, kLiveRetryHintMs,
        "namespace " + ns + " holds " + std::to_string(live) + " live jobs, its max_live_jobs is " +
            std::to_string(*e.spec.max_live_jobs) +
            (n > 1 ? " (this batch adds " + std::to_string(n) + ")" : std::string())};
  }
  GcraTime tat = e.tat;  // a copy: Check changes nothing
  if (with_rate && e.rate && !e.rate->AdmitN(tat, now_mono, n)) {
    const std::int64_t open = e.rate->NextOpenN(e.tat, now_mono, n);
    const GcraConfig& r = *e.spec.enqueue_rate;
    std::string msg = "namespace " + ns + " is over its enqueue_rate of " +
                      std::to_string(r.count) + " per " + std::to_string(r.period_ms) +
                      " ms (burst " + std::to_string(r.burst) + ")";
    if (open == kNoRetry) {
      msg += ": a batch of " + std::to_string(n) + " is larger than the burst, split it";
      return NamespaceRefusal{NamespaceRefusal::Limit::kEnqueueRate, kNoRetry, std::move(msg)};
    }
    return NamespaceRefusal{NamespaceRefusal::Limit::kEnqueueRate, open - now_mono, std::move(msg)};
  }
  return std::nullopt;
}

std::int64_t NamespaceLimits::RateOpensAt(std::string_view name, std::int64_t now_mono) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || !it->second.rate) return now_mono;
  return it->second.rate->NextOpen(it->second.tat, now_mono);
}

}  // namespace ym::flow
