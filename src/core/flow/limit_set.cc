#include "core/flow/limit_set.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/json.h"
#include "common/time_zone.h"
#include "core/job.h"

namespace ym::flow {

namespace {

// A payload path field: what IsValidName allows, minus '.', which separates fields.
bool IsValidField(std::string_view f) {
  return IsValidName(f) && f.find('.') == std::string_view::npos;
}

void AppendQuoted(std::string& out, std::string_view s) {
  // Every string written here passed IsValidName (no quote, backslash or control byte).
  out.push_back('"');
  out.append(s);
  out.push_back('"');
}

// Named rate periods, as the JSON's "per" shows them.
struct NamedPeriod {
  std::string_view name;
  std::int64_t ms;
};
constexpr NamedPeriod kRatePeriods[] = {
    {"second", 1000}, {"minute", 60'000}, {"hour", 3'600'000}, {"day", 86'400'000}};

// The least burst with which `count` per `period_ms` is reachable on a clock of whole ms.
std::int64_t LeastBurst(std::int64_t count, std::int64_t period_ms) {
  return std::max<std::int64_t>(1, count / period_ms + (count % period_ms != 0));
}

std::optional<std::int64_t> IntMember(const json::Value& v) {
  return v.IsNumber() ? v.AsInt64() : std::nullopt;
}

Result<GcraConfig> ParseRate(const json::Value& v) {
  if (!v.IsObject()) {
    return Validation(
        "field \"rate\": must be an object {\"count\":N,\"per\":\"second\",\"burst\":B}");
  }
  GcraConfig c;
  bool has_count = false, has_period = false, has_burst = false;
  for (const auto& m : v) {
    const std::string_view f = m.name.GetString();
    if (f == "count") {
      auto i = IntMember(m.value);
      if (!i) return Validation("field \"rate.count\": must be an integer");
      c.count = *i;
      has_count = true;
    } else if (f == "per") {
      if (has_period) return Validation("field \"rate\": give one of per and period_ms");
      if (!m.value.IsString()) return Validation("field \"rate.per\": must be a string");
      const std::string_view per = m.value.GetString();
      auto it = std::find_if(std::begin(kRatePeriods), std::end(kRatePeriods),
                             [&](const NamedPeriod& p) { return p.name == per; });
      if (it == std::end(kRatePeriods)) {
        return Validation("field \"rate.per\": \"" + std::string(per.substr(0, 64)) +
                          "\" is not second, minute, hour or day");
      }
      c.period_ms = it->ms;
      has_period = true;
    } else if (f == "period_ms") {
      if (has_period) return Validation("field \"rate\": give one of per and period_ms");
      auto i = IntMember(m.value);
      if (!i) return Validation("field \"rate.period_ms\": must be an integer");
      c.period_ms = *i;
      has_period = true;
    } else if (f == "burst") {
      auto i = IntMember(m.value);
      if (!i) return Validation("field \"rate.burst\": must be an integer");
      c.burst = *i;
      has_burst = true;
    } else {
      return Validation("field \"rate." + std::string(f.substr(0, 64)) +
                        "\": unknown member (count, per, period_ms, burst)");
    }
  }
  if (!has_count) return Validation("field \"rate.count\": required");
  if (!has_period) return Validation("field \"rate.per\": required (second, minute, hour, day)");
  if (!has_burst && c.count >= 1 && c.period_ms >= 1) c.burst = LeastBurst(c.count, c.period_ms);
  return c;
}

Result<LimitQuota> ParseQuota(const json::Value& v) {
  if (!v.IsObject()) {
    return Validation(
        "field \"quota\": must be an object "
        "{\"count\":N,\"per\":\"day\",\"time_zone\":\"Europe/Paris\"}");
  }
  LimitQuota q;
  bool has_count = false, has_period = false;
  for (const auto& m : v) {
    const std::string_view f = m.name.GetString();
    if (f == "count") {
      auto i = IntMember(m.value);
      if (!i) return Validation("field \"quota.count\": must be an integer");
      q.count = *i;
      has_count = true;
    } else if (f == "per") {
      if (!m.value.IsString()) return Validation("field \"quota.per\": must be a string");
      auto p = ParsePeriod(m.value.GetString(), "field \"quota.per\"");
      if (!p.ok()) return p.status();
      q.period = *p;
      has_period = true;
    } else if (f == "time_zone") {
      if (!m.value.IsString()) return Validation("field \"quota.time_zone\": must be a string");
      q.time_zone = std::string(m.value.GetString());
    } else {
      return Validation("field \"quota." + std::string(f.substr(0, 64)) +
                        "\": unknown member (count, per, time_zone)");
    }
  }
  if (!has_count) return Validation("field \"quota.count\": required");
  if (!has_period) return Validation("field \"quota.per\": required (day, week, month)");
  return q;
}

// The JSON members of a breaker, in BreakerConfig's order.
struct BreakerMember {
  std::string_view name;
  std::int64_t BreakerConfig::*field;
};
constexpr BreakerMember kBreakerMembers[] = {
    {"consecutive_failures", &BreakerConfig::consecutive_failures},
    {"window", &BreakerConfig::window},
    {"min_samples", &BreakerConfig::min_samples},
    {"failure_percent", &BreakerConfig::failure_percent},
    {"open_base_ms", &BreakerConfig::open_base_ms},
    {"open_max_ms", &BreakerConfig::open_max_ms},
};

Result<BreakerConfig> ParseBreaker(const json::Value& v) {
  if (!v.IsObject()) {
    return Validation(
        "field \"breaker\": must be an object {\"consecutive_failures\":N,\"window\":W,"
        "\"min_samples\":M,\"failure_percent\":P,\"open_base_ms\":B,\"open_max_ms\":X} "
        "(every member optional)");
  }
  BreakerConfig c;
  bool has_min_samples = false, has_open_max = false;
  for (const auto& m : v) {
    const std::string_view f = m.name.GetString();
    auto it = std::find_if(std::begin(kBreakerMembers), std::end(kBreakerMembers),
                           [&](const BreakerMember& b) { return b.name == f; });
    if (it == std::end(kBreakerMembers)) {
      return Validation("field \"breaker." + std::string(f.substr(0, 64)) +
                        "\": unknown member (consecutive_failures, window, min_samples, "
                        "failure_percent, open_base_ms, open_max_ms)");
    }
    auto i = IntMember(m.value);
    if (!i) return Validation("field \"breaker." + std::string(f) + "\": must be an integer");
    c.*(it->field) = *i;
    has_min_samples |= f == "min_samples";
    has_open_max |= f == "open_max_ms";
  }
  // A ratio is judged over a full window unless told otherwise; the cap never sits below the
  // first interval.
  if (!has_min_samples && c.window > 0) c.min_samples = c.window;
  if (!has_open_max) c.open_max_ms = std::max(c.open_max_ms, c.open_base_ms);
  return c;
}

// Keeps the `n` largest counts, largest first (ties by key).
void KeepTop(std::vector<std::pair<std::string, std::int64_t>>& v, std::size_t n) {
  auto by_count = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  if (v.size() > n) {
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(), by_count);
    v.resize(n);
  } else {
    std::sort(v.begin(), v.end(), by_count);
  }
}

}  // namespace

std::optional<std::string_view> RatePeriodName(std::int64_t period_ms) {
  for (const NamedPeriod& p : kRatePeriods) {
    if (p.ms == period_ms) return p.name;
  }
  return std::nullopt;
}

std::string_view BlockReason(Block why) {
  switch (why) {
    case Block::kConcurrency:
      return "concurrency_capped";
    case Block::kRate:
      return "rate_limited";
    case Block::kQuota:
      return "quota_exhausted";
    case Block::kCircuit:
      return "circuit_open";
  }
  return "concurrency_capped";
}

// --- LimitSpec -------------------------------------------------------------------------------

Status LimitSpec::Validate() const {
  if (!IsValidName(name)) {
    return Validation("field \"name\": must be 1..128 characters of A-Z a-z 0-9 _ . : -");
  }
  if (match_queue && !IsValidName(*match_queue)) {
    return Validation("field \"match.queue\": invalid queue name");
  }
  if (match_kind && !IsValidName(*match_kind)) {
    return Validation("field \"match.kind\": invalid kind name");
  }
  if (match_namespace && !IsValidName(*match_namespace)) {
    return Validation("field \"match.namespace\": invalid namespace name");
  }
  if (key == LimitKeyKind::kPayload) {
    if (payload_path.empty()) {
      return Validation("field \"key\": the payload path is empty (payload.<field>[.<field>...])");
    }
    if (payload_path.size() > kMaxPathDepth) {
      return Validation("field \"key\": a payload path has at most " +
                        std::to_string(kMaxPathDepth) + " fields");
    }
    for (const std::string& f : payload_path) {
      if (!IsValidField(f)) {
        return Validation(
            "field \"key\": payload path fields must be 1..128 characters of A-Z a-z 0-9 _ : -");
      }
    }
  } else if (!payload_path.empty()) {
    return Validation("field \"key\": a payload path needs the payload key");
  }
  // Key modes (core/flow/key_groups.h).
  if (singleton != SingletonMode::kOff && debounce) {
    return Validation(
        "fields \"singleton\" and \"debounce\": a limit has one key mode at most (a singleton "
        "refuses or skips the job a debounce would keep)");
  }
  if (debounce) YM_RETURN_IF_ERROR(debounce->Validate());
  const bool key_mode = singleton != SingletonMode::kOff || debounce.has_value();
  if (!concurrency && !rate && !quota && !breaker && !key_mode) {
    return Validation(
        "the limit needs at least one of \"concurrency\" (the most active jobs per key), "
        "\"rate\" (starts per second/minute/hour/day), \"quota\" (starts per "
        "day/week/month), \"breaker\" (a circuit breaker per key), \"singleton\" and "
        "\"debounce\"");
  }
  if (breaker) YM_RETURN_IF_ERROR(breaker->Validate());
  if (concurrency && (*concurrency < 1 || *concurrency > ConcurrencyConfig::kMaxCap)) {
    return Validation("field \"concurrency\": must be an integer 1.." +
                      std::to_string(ConcurrencyConfig::kMaxCap));
  }
  if (rate) {
    if (Status st = rate->Validate(); !st.ok()) {
      return Validation("field \"rate\": " + st.message());
    }
    const std::int64_t least = LeastBurst(rate->count, rate->period_ms);
    if (rate->burst < least) {
      return Validation(
          "field \"rate.burst\": must be at least " + std::to_string(least) + " for " +
          std::to_string(rate->count) + " per " + std::to_string(rate->period_ms) +
          " ms: the clock counts whole ms, so a smaller burst never reaches the rate");
    }
  }
  if (quota) {
    if (quota->count < 1 || quota->count > CalendarQuotaConfig::kMaxLimit) {
      return Validation("field \"quota.count\": must be an integer 1.." +
                        std::to_string(CalendarQuotaConfig::kMaxLimit));
    }
    auto zone = FindTimeZone(quota->time_zone, "field \"quota.time_zone\"");
    if (!zone.ok()) return Validation(zone.status().message());
  }
  return Status::Ok();
}

std::string LimitSpec::KeyText() const {
  switch (key) {
    case LimitKeyKind::kNone:
      return "";
    case LimitKeyKind::kConcurrencyKey:
      return "concurrency_key";
    case LimitKeyKind::kKind:
      return "kind";
    case LimitKeyKind::kNamespace:
      return "namespace";
    case LimitKeyKind::kQueue:
      return "queue";
    case LimitKeyKind::kPayload: {
      std::string s = "payload";
      for (const std::string& f : payload_path) s += "." + f;
      return s;
    }
  }
  return "";
}

Status LimitSpec::SetKey(std::string_view text) {
  payload_path.clear();
  if (text == "concurrency_key") {
    key = LimitKeyKind::kConcurrencyKey;
  } else if (text == "kind") {
    key = LimitKeyKind::kKind;
  } else if (text == "namespace") {
    key = LimitKeyKind::kNamespace;
  } else if (text == "queue") {
    key = LimitKeyKind::kQueue;
  } else if (text == "payload" || text.substr(0, 8) == "payload.") {
    key = LimitKeyKind::kPayload;
    if (text.size() <= 8) {
      return Validation("field \"key\": the payload path is empty (payload.<field>[.<field>...])");
    }
    std::string_view rest = text.substr(8);
    while (true) {
      const std::size_t dot = rest.find('.');
      const std::string_view f = rest.substr(0, dot);
      if (f.empty()) return Validation("field \"key\": the payload path has an empty field");
      payload_path.emplace_back(f);
      if (dot == std::string_view::npos) break;
      rest = rest.substr(dot + 1);
    }
  } else {
    return Validation("field \"key\": unknown key \"" + std::string(text.substr(0, 64)) +
                      "\"; one of concurrency_key, kind, namespace, queue, payload.<path>");
  }
  return Status::Ok();
}

std::string LimitSpec::ToJson() const {
  std::string out = "{";
  if (match_queue || match_kind || match_namespace) {
    out += "\"match\":{";
    bool first = true;
    auto member = [&](const char* n, const std::optional<std::string>& v) {
      if (!v) return;
      if (!first) out += ",";
      first = false;
      AppendQuoted(out, n);
      out += ":";
      AppendQuoted(out, *v);
    };
    member("queue", match_queue);
    member("kind", match_kind);
    member("namespace", match_namespace);
    out += "},";
  }
  if (key != LimitKeyKind::kNone) {
    out += "\"key\":";
    AppendQuoted(out, KeyText());
    out += ",";
  }
  if (concurrency) out += "\"concurrency\":" + std::to_string(*concurrency) + ",";
  if (rate) {
    out += "\"rate\":{\"count\":" + std::to_string(rate->count) + ",";
    if (auto per = RatePeriodName(rate->period_ms)) {
      out += "\"per\":";
      AppendQuoted(out, *per);
    } else {
      out += "\"period_ms\":" + std::to_string(rate->period_ms);
    }
    out += ",\"burst\":" + std::to_string(rate->burst) + "},";
  }
  if (quota) {
    out += "\"quota\":{\"count\":" + std::to_string(quota->count) + ",\"per\":";
    AppendQuoted(out, PeriodName(quota->period));
    out += ",\"time_zone\":";
    AppendQuoted(out, quota->time_zone);  // a tz database name: no quote, backslash or control
    out += "},";
  }
  if (breaker) {
    out += "\"breaker\":{";
    for (const BreakerMember& m : kBreakerMembers) {
      AppendQuoted(out, m.name);
      out += ":" + std::to_string((*breaker).*(m.field)) + ",";
    }
    out.back() = '}';
    out += ",";
  }
  // Key modes.
  if (singleton != SingletonMode::kOff) {
    out += "\"singleton\":";
    AppendQuoted(out, SingletonModeName(singleton));
    out += ",";
  }
  if (debounce) {
    out += "\"debounce\":{\"delay_ms\":" + std::to_string(debounce->delay_ms);
    if (debounce->max_wait_ms) out += ",\"max_wait_ms\":" + std::to_string(*debounce->max_wait_ms);
    out += "},";
  }
  if (out.back() == ',') out.pop_back();
  out += "}";
  return out;
}

Result<LimitSpec> LimitSpec::FromJson(std::string_view name, std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return doc.status();
  const json::Value root = doc->root();
  if (!root.IsObject()) return Validation("the limit must be a JSON object");
  LimitSpec spec;
  spec.name = std::string(name);
  for (const auto& m : root) {
    const std::string_view field = m.name.GetString();
    if (field == "name") {
      if (!m.value.IsString() || m.value.GetString() != name) {
        return Validation("field \"name\": must equal the name in the path");
      }
    } else if (field == "match") {
      if (!m.value.IsObject()) return Validation("field \"match\": must be an object");
      for (const auto& mm : m.value) {
        const std::string_view f = mm.name.GetString();
        std::optional<std::string>* slot = f == "queue"       ? &spec.match_queue
                                           : f == "kind"      ? &spec.match_kind
                                           : f == "namespace" ? &spec.match_namespace
                                                              : nullptr;
        if (slot == nullptr) {
          return Validation("field \"match." + std::string(f.substr(0, 64)) +
                            "\": unknown member (queue, kind, namespace)");
        }
        if (mm.value.IsNull()) continue;
        if (!mm.value.IsString()) {
          return Validation("field \"match." + std::string(f) + "\": must be a string");
        }
        *slot = std::string(mm.value.GetString());
      }
    } else if (field == "key") {
      if (m.value.IsNull()) continue;
      if (!m.value.IsString()) return Validation("field \"key\": must be a string");
      YM_RETURN_IF_ERROR(spec.SetKey(m.value.GetString()));
    } else if (field == "concurrency") {
      const auto v = m.value.IsNumber() ? m.value.AsInt64() : std::nullopt;
      if (!v) {
        return Validation("field \"concurrency\": must be an integer 1.." +
                          std::to_string(ConcurrencyConfig::kMaxCap));
      }
      spec.concurrency = *v;
    } else if (field == "rate") {
      if (m.value.IsNull()) continue;
      auto r = ParseRate(m.value);
      if (!r.ok()) return r.status();
      spec.rate = *r;
    } else if (field == "quota") {
      if (m.value.IsNull()) continue;
      auto q = ParseQuota(m.value);
      if (!q.ok()) return q.status();
      spec.quota = std::move(*q);
    } else if (field == "breaker") {
      if (m.value.IsNull()) continue;
      auto b = ParseBreaker(m.value);
      if (!b.ok()) return b.status();
      spec.breaker = *b;
    } else if (field == "singleton") {
      // Key modes (core/flow/key_groups.h).
      if (m.value.IsNull()) continue;
      if (!m.value.IsString()) {
        return Validation("field \"singleton\": must be \"refuse\" or \"skip\"");
      }
      auto mode = ParseSingletonMode(m.value.GetString());
      if (!mode.ok()) return mode.status();
      spec.singleton = *mode;
    } else if (field == "debounce") {
      if (m.value.IsNull()) continue;
      if (!m.value.IsObject()) {
        return Validation("field \"debounce\": must be an object {\"delay_ms\", \"max_wait_ms\"}");
      }
      DebounceConfig d;
      bool has_delay = false;
      for (const auto& dm : m.value) {
        const std::string_view f = dm.name.GetString();
        const bool delay = f == "delay_ms";
        if (!delay && f != "max_wait_ms") {
          return Validation("field \"debounce." + std::string(f.substr(0, 64)) +
                            "\": unknown member (delay_ms, max_wait_ms)");
        }
        if (!delay && dm.value.IsNull()) continue;
        const auto v = dm.value.IsNumber() ? dm.value.AsInt64() : std::nullopt;
        if (!v) {
          return Validation("field \"debounce." + std::string(f) + "\": must be an integer 0.." +
                            std::to_string(DebounceConfig::kMaxMs));
        }
        if (delay) {
          d.delay_ms = *v;
          has_delay = true;
        } else {
          d.max_wait_ms = *v;
        }
      }
      if (!has_delay) return Validation("field \"debounce.delay_ms\": required");
      spec.debounce = d;
    } else {
      return Validation("field \"" + std::string(field.substr(0, 64)) +
                        "\": unknown member (match, key, concurrency, rate, quota, breaker, "
                        "singleton, debounce)");
    }
  }
  YM_RETURN_IF_ERROR(spec.Validate());
  return spec;
}

// --- LimitSet --------------------------------------------------------------------------------

LimitSet::LimitSet() { sets_.emplace_back(); }  // the empty set, never freed

Result<LimitSet::Limit> LimitSet::Build(const LimitSpec& spec) {
  YM_RETURN_IF_ERROR(spec.Validate());
  Limit l;
  l.spec = spec;
  if (spec.concurrency) {
    auto gate = KeyedConcurrencyGate<std::string>::Make(ConcurrencyConfig{*spec.concurrency});
    if (!gate.ok()) return gate.status();
    l.gate.emplace(std::move(*gate));
  }
  if (spec.rate) {
    auto rate = Gcra::Make(*spec.rate);
    if (!rate.ok()) return rate.status();
    l.rate.emplace(std::move(*rate));
  }
  if (spec.quota) {
    auto zone = FindTimeZone(spec.quota->time_zone, "field \"quota.time_zone\"");
    if (!zone.ok()) return Validation(zone.status().message());
    CalendarQuotaConfig qc;
    qc.limit = static_cast<std::uint32_t>(spec.quota->count);
    qc.period = spec.quota->period;
    qc.zone = *zone;
    YM_RETURN_IF_ERROR(qc.Validate("field \"quota\""));
    l.quota.emplace(qc);
  }
  if (spec.breaker) {
    auto breaker = KeyedBreaker::Make(*spec.breaker);
    if (!breaker.ok()) return breaker.status();
    l.breaker.emplace(std::move(*breaker));
  }
  return l;
}

Status LimitSet::Put(const LimitSpec& spec, std::int64_t mono_now, bool* created,
                     RateStart rate_start) {
  auto built = Build(spec);
  if (!built.ok()) return built.status();
  Limit l = std::move(*built);
  auto it = by_name_.find(spec.name);
  *created = it == by_name_.end();
  Limit* old = *created ? nullptr : &*limits_[it->second];
  if (l.rate) {
    if (old && old->rate && old->spec.rate == spec.rate) {
      l.rate = std::move(old->rate);  // the same rate: its state stays
    } else if (old || rate_start == RateStart::kSaturated) {
      // What was admitted under another rate, or before a restart, is not known here: start
      // as if every key had just used its burst (one burst lost at most, the bound kept).
      l.rate->SetFloor(l.rate->rate().Saturated(mono_now));
    }
  }
  if (l.quota && old && old->quota && old->spec.quota->period == spec.quota->period &&
      old->spec.quota->time_zone == spec.quota->time_zone) {
    old->quota->SetLimit(static_cast<std::uint32_t>(spec.quota->count));
    l.quota = std::move(old->quota);
    l.quota_window_written = old->quota_window_written;
  }
  if (l.breaker) {
    if (old && old->breaker && old->spec.breaker == spec.breaker &&
        old->spec.KeyText() == spec.KeyText()) {
      // The same breaker over the same keys: its state stays, and so do the tickets out (same
      // serial). Lanes waiting for a trial are re-entered by the caller's rebind.
      l.breaker = std::move(old->breaker);
      l.breaker_serial = old->breaker_serial;
    } else {
      l.breaker_serial = next_breaker_serial_++;  // tickets of the old one count nowhere
    }
  }
  const auto keyed = [](const LimitSpec& s) {
    return s.singleton != SingletonMode::kOff || s.debounce.has_value();
  };
  keyed_modes_ += keyed(spec) ? 1 : 0;
  if (!*created) {
    keyed_modes_ -= keyed(limits_[it->second]->spec) ? 1 : 0;
    limits_[it->second] = std::move(l);
    return Status::Ok();
  }
  std::uint32_t slot;
  if (!free_limits_.empty()) {
    slot = free_limits_.back();
    free_limits_.pop_back();
    limits_[slot] = std::move(l);
  } else {
    slot = static_cast<std::uint32_t>(limits_.size());
    limits_.emplace_back(std::move(l));
  }
  by_name_.emplace(spec.name, slot);
  return Status::Ok();
}

bool LimitSet::Delete(const std::string& name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return false;
  const LimitSpec& spec = limits_[it->second]->spec;
  if (spec.singleton != SingletonMode::kOff || spec.debounce) --keyed_modes_;
  limits_[it->second].reset();
  free_limits_.push_back(it->second);
  by_name_.erase(it);
  return true;
}

const LimitSpec* LimitSet::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &limits_[it->second]->spec;
}

std::vector<const LimitSpec*> LimitSet::Page(const std::string& after, std::size_t limit,
                                             bool* more) const {
  std::vector<const LimitSpec*> out;
  auto it = by_name_.upper_bound(after);
  for (; it != by_name_.end() && out.size() < limit; ++it) {
    out.push_back(&limits_[it->second]->spec);
  }
  *more = it != by_name_.end();
  return out;
}

bool LimitSet::HasDispatchBound(const LimitSpec& spec) {
  return spec.concurrency || spec.rate || spec.quota || spec.breaker;
}

bool LimitSet::Matches(const LimitSpec& spec, const LimitSubject& s) {
  return (!spec.match_queue || *spec.match_queue == s.queue) &&
         (!spec.match_kind || *spec.match_kind == s.kind) &&
         (!spec.match_namespace || *spec.match_namespace == s.ns);
}

std::string LimitSet::KeyOf(const LimitSpec& spec, const LimitSubject& s) {
  switch (spec.key) {
    case LimitKeyKind::kNone:
      return "";
    case LimitKeyKind::kConcurrencyKey:
      return std::string(s.concurrency_key);
    case LimitKeyKind::kKind:
      return std::string(s.kind);
    case LimitKeyKind::kNamespace:
      return std::string(s.ns);
    case LimitKeyKind::kQueue:
      return std::string(s.queue);
    case LimitKeyKind::kPayload: {
      // A payload that is not an object, lacks a field of the path, or holds something other
      // than a string or an integer there is counted under the empty key.
      auto doc = json::Document::Parse(s.payload);
      if (!doc.ok()) return "";
      json::Value v = doc->root();
      for (const std::string& f : spec.payload_path) {
        if (!v.IsObject()) return "";
        bool found = false;
        for (const auto& m : v) {
          if (m.name.GetString() == f) {
            v = m.value;  // the last of duplicate members wins, as in most JSON readers
            found = true;
          }
        }
        if (!found) return "";
      }
      if (v.IsString()) return std::string(v.GetString());
      if (v.IsNumber()) {
        if (auto i = v.AsInt64()) return std::to_string(*i);
      }
      return "";
    }
  }
  return "";
}

LimitSet::SetId LimitSet::Acquire(const LimitSubject& subject) {
  if (by_name_.empty()) return kNoGates;
  // Built in scratch buffers that keep their capacity: an existing set (the common case, once
  // per enqueue) is found without allocating.
  std::vector<Gate>& gates = scratch_gates_;
  std::string& encoded = scratch_encoded_;
  gates.clear();
  encoded.clear();
  for (std::uint32_t slot = 0; slot < limits_.size(); ++slot) {
    if (!limits_[slot] || !HasDispatchBound(limits_[slot]->spec) ||
        !Matches(limits_[slot]->spec, subject)) {
      continue;
    }
    std::string key = KeyOf(limits_[slot]->spec, subject);
    // slot and key length, fixed width, then the key: distinct sets never encode alike.
    const std::uint32_t len = static_cast<std::uint32_t>(key.size());
    encoded.append(reinterpret_cast<const char*>(&slot), sizeof slot);
    encoded.append(reinterpret_cast<const char*>(&len), sizeof len);
    encoded.append(key);
    gates.push_back(Gate{slot, std::move(key)});
  }
  if (gates.empty()) return kNoGates;
  auto it = set_ids_.find(encoded);
  if (it != set_ids_.end()) {
    ++sets_[it->second].refs;
    return it->second;
  }
  SetId id;
  if (!free_sets_.empty()) {
    id = free_sets_.back();
    free_sets_.pop_back();
  } else {
    id = static_cast<SetId>(sets_.size());
    sets_.emplace_back();
  }
  SetRec& rec = sets_[id];
  rec.gates = gates;
  rec.refs = 1;
  rec.encoded = encoded;
  set_ids_.emplace(encoded, id);
  return id;
}

std::vector<KeyGate> LimitSet::KeyGates(const LimitSubject& subject) const {
  std::vector<KeyGate> out;
  if (keyed_modes_ == 0) return out;
  for (std::uint32_t slot = 0; slot < limits_.size(); ++slot) {
    if (!limits_[slot]) continue;
    const LimitSpec& spec = limits_[slot]->spec;
    if ((spec.singleton == SingletonMode::kOff && !spec.debounce) || !Matches(spec, subject)) {
      continue;
    }
    KeyGate g;
    g.limit = slot;
    g.key = KeyOf(spec, subject);
    g.singleton = spec.singleton;
    g.debounce = spec.debounce;
    out.push_back(std::move(g));
  }
  return out;
}

void LimitSet::Ref(SetId set) {
  if (set != kNoGates) ++sets_[set].refs;
}

void LimitSet::Unref(SetId set) {
  if (set == kNoGates) return;
  SetRec& rec = sets_[set];
  if (--rec.refs > 0) return;
  set_ids_.erase(rec.encoded);
  rec = SetRec{};
  free_sets_.push_back(set);
}

std::optional<Refusal> LimitSet::Check(SetId set, std::int64_t mono, std::int64_t wall) const {
  const std::vector<Gate>& gates = sets_[set].gates;
  for (std::size_t i = 0; i < gates.size(); ++i) {
    const Limit& l = *limits_[gates[i].limit];
    const std::string& key = gates[i].key;
    if (l.gate && l.gate->Count(key) >= l.gate->cap()) {
      return Refusal{i, Block::kConcurrency, 0};
    }
    if (l.rate) {
      const std::int64_t at = l.rate->NextOpen(key, mono);
      if (at > mono) return Refusal{i, Block::kRate, at};
    }
    if (l.quota) {
      const std::int64_t at = l.quota->Peek(key, wall);
      if (at > wall) return Refusal{i, Block::kQuota, at};
    }
    if (l.breaker) {
      const std::int64_t at = l.breaker->NextOpen(key, mono);
      if (at > mono) return Refusal{i, Block::kCircuit, at};
    }
  }
  return std::nullopt;
}

std::optional<Refusal> LimitSet::Admit(SetId set, std::int64_t mono, std::int64_t wall,
                                       std::vector<QuotaUse>* uses,
                                       std::vector<BreakerHold>* holds) {
  // Ask every gate first, count in all of them after: a refusal changes nothing.
  if (auto refused = Check(set, mono, wall)) return refused;
  for (const Gate& g : sets_[set].gates) {
    Limit& l = *limits_[g.limit];
    // Check said yes to each, at these times, and nothing ran in between.
    if (l.gate) (void)l.gate->Admit(g.key);
    if (l.rate) (void)l.rate->Admit(g.key, mono);
    if (l.quota) {
      (void)l.quota->Admit(g.key, wall);
      QuotaUse u;
      u.limit = l.spec.name;
      u.key = g.key;
      u.window_start_ms = l.quota->window().start_ms;
      u.used = l.quota->Count(g.key);
      u.new_window = u.window_start_ms != l.quota_window_written;
      l.quota_window_written = u.window_start_ms;
      uses->push_back(std::move(u));
    }
    if (l.breaker) {
      // Check saw NextOpen == mono, so this admits (closed, or the half-open trial).
      std::optional<BreakerTicket> t = l.breaker->Admit(g.key, mono);
      if (!t) continue;
      if (holds == nullptr) {
        (void)l.breaker->Report(g.key, *t, BreakerOutcome::kAbandoned, mono);
        continue;
      }
      holds->push_back(BreakerHold{g.limit, l.breaker_serial, g.key, *t});
    }
  }
  return std::nullopt;
}

void LimitSet::ReportBreakers(const std::vector<BreakerHold>& holds, BreakerOutcome outcome,
                              std::int64_t mono, std::vector<LaneRef>& woken) {
  for (const BreakerHold& h : holds) ReportBreaker(h, outcome, mono, woken);
}

void LimitSet::ReportBreaker(const BreakerHold& h, BreakerOutcome outcome, std::int64_t mono,
                             std::vector<LaneRef>& woken) {
  if (h.limit >= limits_.size() || !limits_[h.limit]) return;  // the limit was deleted
  Limit& l = *limits_[h.limit];
  if (!l.breaker || l.breaker_serial != h.serial) return;  // replaced since
  if (!l.breaker->Report(h.key, h.ticket, outcome, mono)) return;
  // The trial ended: whoever waited for it re-checks (a closed key runs, a reopened one waits
  // for its time, a freed slot lets one more trial through).
  auto w = l.trial_waiting.find(h.key);
  if (w == l.trial_waiting.end()) return;
  woken.insert(woken.end(), w->second.begin(), w->second.end());
  l.trial_waiting.erase(w);
}

Status LimitSet::ResetBreaker(const std::string& name, const std::string* key,
                              std::vector<LaneRef>& woken, std::size_t* tripped) {
  *tripped = 0;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return NotFound("limit " + name + " not found");
  Limit& l = *limits_[it->second];
  if (!l.breaker) return Validation("limit " + name + " has no breaker");
  *tripped = l.breaker->Reset(key);
  if (key == nullptr) {
    for (auto& [k, lanes] : l.trial_waiting) woken.insert(woken.end(), lanes.begin(), lanes.end());
    l.trial_waiting.clear();
  } else if (auto w = l.trial_waiting.find(*key); w != l.trial_waiting.end()) {
    woken.insert(woken.end(), w->second.begin(), w->second.end());
    l.trial_waiting.erase(w);
  }
  return Status::Ok();
}

void LimitSet::WaitForTrial(SetId set, std::size_t pos, const LaneRef& lane) {
  const Gate& g = sets_[set].gates[pos];
  limits_[g.limit]->trial_waiting[g.key].push_back(lane);
}

std::optional<Refusal> LimitSet::Blocked(SetId set, std::int64_t mono, std::int64_t wall) const {
  return Check(set, mono, wall);
}

void LimitSet::RestoreQuota(const std::string& name, const std::string& key,
                            std::int64_t window_start_ms, std::int64_t used,
                            std::int64_t wall_now) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return;
  Limit& l = *limits_[it->second];
  if (!l.quota || used <= 0) return;
  const auto clamped = static_cast<std::uint32_t>(
      std::min<std::int64_t>(used, std::numeric_limits<std::uint32_t>::max()));
  l.quota->Restore({CalendarQuota::Counter{key, window_start_ms, clamped}}, wall_now);
  l.quota_window_written = l.quota->window().start_ms;
}

void LimitSet::Hold(SetId set) {
  for (const Gate& g : sets_[set].gates) {
    auto& gate = limits_[g.limit]->gate;
    if (gate) gate->Hold(g.key);
  }
}

Status LimitSet::Release(SetId set, std::vector<LaneRef>& woken) {
  Status result = Status::Ok();
  for (const Gate& g : sets_[set].gates) {
    Limit& l = *limits_[g.limit];
    if (!l.gate) continue;
    Status s = l.gate->Release(g.key);
    if (!s.ok()) {
      result = s;
      continue;
    }
    if (l.waiting.empty() || l.gate->Count(g.key) >= l.gate->cap()) continue;
    auto w = l.waiting.find(g.key);
    if (w == l.waiting.end()) continue;
    woken.insert(woken.end(), w->second.begin(), w->second.end());
    l.waiting.erase(w);
  }
  return result;
}

void LimitSet::Wait(SetId set, std::size_t pos, const LaneRef& lane) {
  const Gate& g = sets_[set].gates[pos];
  limits_[g.limit]->waiting[g.key].push_back(lane);
}

void LimitSet::BeginRecount() {
  for (auto& l : limits_) {
    if (!l) continue;
    l->waiting.clear();
    l->trial_waiting.clear();
    if (l->spec.concurrency) {
      l->gate.emplace(std::move(
          *KeyedConcurrencyGate<std::string>::Make(ConcurrencyConfig{*l->spec.concurrency})));
    }
  }
}

std::int64_t LimitSet::Count(const std::string& name, const std::string& key) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return 0;
  const auto& gate = limits_[it->second]->gate;
  return gate ? gate->Count(key) : 0;
}

std::vector<std::pair<std::string, std::int64_t>> LimitSet::TopCounts(const std::string& name,
                                                                      std::size_t n,
                                                                      std::size_t* keys) const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  if (keys) *keys = 0;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return out;
  const auto& gate = limits_[it->second]->gate;
  if (!gate) return out;
  gate->ForEach([&](const std::string& k, std::int64_t c) { out.emplace_back(k, c); });
  if (keys) *keys = out.size();
  KeepTop(out, n);
  return out;
}

CalendarWindow LimitSet::QuotaTop(const std::string& name, std::size_t n,
                                  std::vector<std::pair<std::string, std::int64_t>>* top,
                                  std::size_t* keys) const {
  top->clear();
  *keys = 0;
  auto it = by_name_.find(name);
  if (it == by_name_.end() || !limits_[it->second]->quota) return {};
  const CalendarQuota& q = *limits_[it->second]->quota;
  for (const CalendarQuota::Counter& c : q.Counters()) top->emplace_back(c.key, c.used);
  *keys = top->size();
  KeepTop(*top, n);
  return q.window();
}

std::size_t LimitSet::rate_keys() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (l && l->rate) n += l->rate->size();
  }
  return n;
}

std::size_t LimitSet::quota_keys() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (l && l->quota) n += l->quota->KeyCount();
  }
  return n;
}

std::size_t LimitSet::waiting_lanes() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (!l) continue;
    for (const auto& [k, v] : l->waiting) n += v.size();
    for (const auto& [k, v] : l->trial_waiting) n += v.size();
  }
  return n;
}

std::vector<std::pair<std::string, BreakerState>> LimitSet::BreakerTop(const std::string& name,
                                                                       std::size_t n,
                                                                       std::size_t* keys,
                                                                       std::size_t* tripped) const {
  std::vector<std::pair<std::string, BreakerState>> out;
  *keys = 0;
  *tripped = 0;
  auto it = by_name_.find(name);
  if (it == by_name_.end() || !limits_[it->second]->breaker) return out;
  const KeyedBreaker& b = *limits_[it->second]->breaker;
  b.ForEach([&](const std::string& k, const BreakerState& st) {
    // A key held only because a job of it is running, with nothing recorded, is not shown.
    if (st.phase == BreakerPhase::kClosed && st.consecutive_failures == 0 &&
        st.window_failures == 0) {
      return;
    }
    out.emplace_back(k, st);
  });
  *keys = out.size();
  auto tripped_first = [](const auto& a, const auto& b) {
    const bool ta = a.second.phase != BreakerPhase::kClosed;
    const bool tb = b.second.phase != BreakerPhase::kClosed;
    return ta != tb ? ta : a.first < b.first;
  };
  std::sort(out.begin(), out.end(), tripped_first);
  for (const auto& [k, st] : out) *tripped += st.phase != BreakerPhase::kClosed;
  if (out.size() > n) out.resize(n);
  return out;
}

std::size_t LimitSet::breaker_keys() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (l && l->breaker) n += l->breaker->size();
  }
  return n;
}

std::size_t LimitSet::breaker_tickets_out() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (l && l->breaker) n += l->breaker->tickets_out();
  }
  return n;
}

}  // namespace ym::flow
