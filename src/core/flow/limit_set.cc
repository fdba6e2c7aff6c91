#include "core/flow/limit_set.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/json.h"
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

}  // namespace

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
  if (!concurrency && !key_mode) {
    return Validation(
        "field \"concurrency\": required (the most active jobs per key) unless the limit has "
        "\"singleton\" or \"debounce\"");
  }
  if (concurrency && (*concurrency < 1 || *concurrency > ConcurrencyConfig::kMaxCap)) {
    return Validation("field \"concurrency\": must be an integer 1.." +
                      std::to_string(ConcurrencyConfig::kMaxCap));
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
                        "\": unknown member (match, key, concurrency, singleton, debounce)");
    }
  }
  YM_RETURN_IF_ERROR(spec.Validate());
  return spec;
}

// --- LimitSet --------------------------------------------------------------------------------

LimitSet::LimitSet() { sets_.emplace_back(); }  // the empty set, never freed

Status LimitSet::Put(const LimitSpec& spec, bool* created) {
  YM_RETURN_IF_ERROR(spec.Validate());
  Limit l;
  l.spec = spec;
  if (spec.concurrency) {
    auto gate = KeyedConcurrencyGate<std::string>::Make(ConcurrencyConfig{*spec.concurrency});
    if (!gate.ok()) return gate.status();
    l.gate.emplace(std::move(*gate));
  }
  auto it = by_name_.find(spec.name);
  *created = it == by_name_.end();
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

bool LimitSet::HasDispatchBound(const LimitSpec& spec) { return spec.concurrency.has_value(); }

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
  std::vector<Gate> gates;
  std::string encoded;
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
  rec.gates = std::move(gates);
  rec.refs = 1;
  rec.encoded = encoded;
  set_ids_.emplace(std::move(encoded), id);
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

std::optional<std::size_t> LimitSet::Admit(SetId set) {
  const std::vector<Gate>& gates = sets_[set].gates;
  for (std::size_t i = 0; i < gates.size(); ++i) {
    auto& gate = limits_[gates[i].limit]->gate;
    if (!gate || gate->Admit(gates[i].key)) continue;
    // Refused: give back what this call took, so a refusal changes nothing.
    for (std::size_t j = 0; j < i; ++j) {
      auto& g = limits_[gates[j].limit]->gate;
      if (g) (void)g->Release(gates[j].key);
    }
    return i;
  }
  return std::nullopt;
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

bool LimitSet::Capped(SetId set) const {
  for (const Gate& g : sets_[set].gates) {
    const auto& gate = limits_[g.limit]->gate;
    if (gate && gate->Count(g.key) >= gate->cap()) return true;
  }
  return false;
}

void LimitSet::BeginRecount() {
  for (auto& l : limits_) {
    if (!l) continue;
    l->waiting.clear();
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
  auto by_count = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  if (out.size() > n) {
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(),
                      by_count);
    out.resize(n);
  } else {
    std::sort(out.begin(), out.end(), by_count);
  }
  return out;
}

std::size_t LimitSet::waiting_lanes() const {
  std::size_t n = 0;
  for (const auto& l : limits_) {
    if (!l) continue;
    for (const auto& [k, v] : l->waiting) n += v.size();
  }
  return n;
}

}  // namespace ym::flow
