#include "client/wire.h"

#include <limits>

namespace ym::client {

// Payloads and results must be one JSON value; checked with the same strict reader the server
// uses, so that what the server would refuse (a lone surrogate, trailing bytes) fails here first,
// and what it accepts (any number, of any size) passes.
bool IsWellFormedJson(std::string_view text) { return json::Document::Parse(text).ok(); }

// Percent-encodes a path segment or query value. ':' stays literal because the API's names
// allow it and the server splits the `:verb` suffix at the last colon.
std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~' || c == ':';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void AddQuery(std::string* target, bool* first, std::string_view key,
              const std::optional<std::string>& value) {
  if (!value) return;
  *target += *first ? '?' : '&';
  *first = false;
  *target += key;
  *target += '=';
  *target += Escape(*value);
}

// --- reading replies: lenient about extra or missing fields, strict about the top shape ---

// Replies are read with json::Document (common/json.h), which keeps every value's text: payloads
// and results come back exactly as the server stored them, whatever their numbers.
std::optional<Value> Member(const Value& obj, std::string_view key) {
  if (!obj.IsObject()) return std::nullopt;
  for (const auto& m : obj) {
    if (m.name.GetString() == key) {
      if (m.value.IsNull()) return std::nullopt;
      return m.value;
    }
  }
  return std::nullopt;
}

std::int64_t Int(const Value& obj, std::string_view key) {
  std::optional<Value> v = Member(obj, key);
  if (!v) return 0;
  if (auto i = v->AsInt64()) return *i;
  if (auto u = v->AsUint64()) return static_cast<std::int64_t>(*u);
  if (auto d = v->AsDouble()) {
    // Clamp: casting a double outside the int64 range is undefined (found by client_fuzz).
    if (*d >= 9.2233720368547758e18) return std::numeric_limits<std::int64_t>::max();
    if (*d <= -9.2233720368547758e18) return std::numeric_limits<std::int64_t>::min();
    if (*d != *d) return 0;
    return static_cast<std::int64_t>(*d);
  }
  return 0;
}

std::optional<std::int64_t> OptInt(const Value& obj, std::string_view key) {
  if (!Member(obj, key)) return std::nullopt;
  return Int(obj, key);
}

double Double(const Value& obj, std::string_view key, double fallback) {
  std::optional<Value> v = Member(obj, key);
  if (!v) return fallback;
  return v->AsDouble().value_or(fallback);
}

bool Bool(const Value& obj, std::string_view key) {
  std::optional<Value> v = Member(obj, key);
  return v && v->IsBool() && v->GetBool();
}

// Strings; ids are documented as decimal strings but a number is accepted too.
std::optional<std::string> OptString(const Value& obj, std::string_view key) {
  std::optional<Value> v = Member(obj, key);
  if (!v) return std::nullopt;
  if (v->IsString()) return std::string(v->GetString());
  if (v->AsUint64() || v->AsInt64()) return std::string(v->Raw());
  return std::nullopt;
}

std::string String(const Value& obj, std::string_view key) {
  return OptString(obj, key).value_or(std::string());
}

// The member's JSON text as the server sent it (minus whitespace).
std::optional<std::string> OptRaw(const Value& obj, std::string_view key) {
  std::optional<Value> v = Member(obj, key);
  if (!v) return std::nullopt;
  return std::string(v->Raw());
}

std::vector<std::string> Strings(const Value& obj, std::string_view key) {
  std::vector<std::string> out;
  std::optional<Value> v = Member(obj, key);
  if (!v || !v->IsArray()) return out;
  for (const auto& item : *v) {
    if (item.value.IsString()) out.emplace_back(item.value.GetString());
  }
  return out;
}

Result<json::Document> ParseReply(const std::string& body, std::string_view what) {
  json::ParseOptions options;
  options.max_depth = kMaxReplyDepth;
  Result<json::Document> doc = json::Document::Parse(body, options);
  if (!doc.ok()) {
    return Internal("reply to " + std::string(what) + " is not JSON: " + doc.status().message());
  }
  if (!doc->root().IsObject()) {
    return Internal("reply to " + std::string(what) + " is not an object");
  }
  return doc;
}

// --- writing requests ---

void WriteBackoff(JsonWriter& w, const Backoff& b) {
  w.StartObject();
  w.Key("initial_ms");
  w.Int64(b.initial_ms);
  w.Key("max_ms");
  w.Int64(b.max_ms);
  w.Key("multiplier");
  w.Double(b.multiplier);
  w.EndObject();
}

void WriteRaw(JsonWriter& w, const std::string& json) {
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

Status WriteSpec(JsonWriter& w, const EnqueueRequest& j) {
  if (!IsWellFormedJson(j.payload_json)) {
    return Validation("payload of job (queue '" + j.queue + "') is not well-formed JSON");
  }
  w.StartObject();
  w.Key("queue");
  w.String(j.queue);
  w.Key("kind");
  w.String(j.kind);
  w.Key("payload");
  WriteRaw(w, j.payload_json);
  if (j.ns) {
    w.Key("namespace");
    w.String(*j.ns);
  }
  if (j.priority) {
    w.Key("priority");
    w.Int(*j.priority);
  }
  if (j.delay_ms) {
    w.Key("delay_ms");
    w.Int64(*j.delay_ms);
  }
  if (j.run_at_ms) {
    w.Key("run_at");
    w.Int64(*j.run_at_ms);
  }
  if (j.max_attempts) {
    w.Key("max_attempts");
    w.Int(*j.max_attempts);
  }
  if (j.backoff) {
    w.Key("backoff");
    WriteBackoff(w, *j.backoff);
  }
  if (j.lease_ms) {
    w.Key("lease_ms");
    w.Int64(*j.lease_ms);
  }
  if (j.timeout_ms) {
    w.Key("timeout_ms");
    w.Int64(*j.timeout_ms);
  }
  if (j.idempotency_key) {
    w.Key("idempotency_key");
    w.String(*j.idempotency_key);
  }
  if (j.idempotency_ttl_ms) {
    w.Key("idempotency_ttl_ms");
    w.Int64(*j.idempotency_ttl_ms);
  }
  if (j.concurrency_key) {
    w.Key("concurrency_key");
    w.String(*j.concurrency_key);
  }
  if (!j.tags.empty()) {
    w.Key("tags");
    w.StartArray();
    for (const std::string& t : j.tags) w.String(t);
    w.EndArray();
  }
  if (j.traceparent) {
    w.Key("traceparent");
    w.String(*j.traceparent);
  }
  if (j.tracestate) {
    w.Key("tracestate");
    w.String(*j.tracestate);
  }
  w.EndObject();
  return Status::Ok();
}

std::string Str(const rapidjson::StringBuffer& sb) { return {sb.GetString(), sb.GetSize()}; }

}  // namespace ym::client
