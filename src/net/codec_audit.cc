#include "net/codec_audit.h"

#include <charconv>

#include "common/json.h"
#include "net/codec_util.h"

namespace ym::net {

namespace {

void WriteEntry(JsonWriter& w, const audit::Entry& e) {
  w.StartObject();
  WriteKey(w, "seq");
  w.Uint64(e.seq);
  WriteKey(w, "at_ms");
  w.Int64(e.at_ms);
  WriteKey(w, "actor");
  WriteStr(w, e.actor);
  WriteKey(w, "action");
  WriteStr(w, e.action);
  WriteKey(w, "target");
  WriteStr(w, e.target);
  WriteKey(w, "remote");
  WriteStr(w, e.remote);
  WriteKey(w, "request_id");
  WriteStr(w, e.request_id);
  WriteKey(w, "detail");
  WriteStr(w, e.detail);
  WriteKey(w, "prev_hash");
  WriteStr(w, audit::ToHex(e.prev_hash));
  WriteKey(w, "hash");
  WriteStr(w, audit::ToHex(e.hash));
  w.EndObject();
}

Status BadPage(std::string_view what) {
  return Status(Code::kValidation, "audit page: " + std::string(what));
}

Status ReadEntry(const json::Value& v, audit::Entry* e) {
  if (!v.IsObject()) return BadPage("an entry is not an object");
  int seen = 0;
  for (const auto& m : v) {
    const std::string_view name = m.name.GetString();
    const json::Value& f = m.value;
    auto text = [&](std::string* out) -> Status {
      if (!f.IsString()) return BadPage(std::string(name) + " must be a string");
      *out = std::string(f.GetString());
      ++seen;
      return Status::Ok();
    };
    auto hash = [&](audit::Hash* out) -> Status {
      auto h = f.IsString() ? audit::HashFromHex(f.GetString()) : std::nullopt;
      if (!h) return BadPage(std::string(name) + " must be 64 hex digits");
      *out = *h;
      ++seen;
      return Status::Ok();
    };
    if (name == "seq") {
      auto s = f.AsUint64();
      if (!s) return BadPage("seq must be a non-negative integer");
      e->seq = *s;
      ++seen;
    } else if (name == "at_ms") {
      auto a = f.AsInt64();
      if (!a) return BadPage("at_ms must be an integer");
      e->at_ms = *a;
      ++seen;
    } else if (name == "actor") {
      YM_RETURN_IF_ERROR(text(&e->actor));
    } else if (name == "action") {
      YM_RETURN_IF_ERROR(text(&e->action));
    } else if (name == "target") {
      YM_RETURN_IF_ERROR(text(&e->target));
    } else if (name == "remote") {
      YM_RETURN_IF_ERROR(text(&e->remote));
    } else if (name == "request_id") {
      YM_RETURN_IF_ERROR(text(&e->request_id));
    } else if (name == "detail") {
      YM_RETURN_IF_ERROR(text(&e->detail));
    } else if (name == "prev_hash") {
      YM_RETURN_IF_ERROR(hash(&e->prev_hash));
    } else if (name == "hash") {
      YM_RETURN_IF_ERROR(hash(&e->hash));
    }
  }
  if (seen != 10) return BadPage("an entry lacks some of its ten fields");
  return Status::Ok();
}

}  // namespace

Result<AuditListQuery> ParseAuditListQuery(std::string_view query) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  AuditListQuery q;
  q.limit = kDefaultListLimit;
  for (const auto& [name, value] : *params) {
    if (value.empty()) continue;
    if (name == "limit") {
      std::uint32_t limit = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || p != value.data() + value.size() || limit < 1 ||
          limit > kMaxListLimit) {
        return QueryError(name,
                          "must be an integer between 1 and " + std::to_string(kMaxListLimit));
      }
      q.limit = limit;
    } else if (name == "after") {
      std::uint64_t after = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), after);
      if (ec != std::errc() || p != value.data() + value.size() ||
          after > static_cast<std::uint64_t>(INT64_MAX)) {
        return QueryError(name, "must be an entry's seq (a non-negative integer)");
      }
      q.after = after;
    } else {
      return QueryError(name, "unknown parameter");
    }
  }
  return q;
}

std::string RenderAuditPage(const std::vector<audit::Entry>& entries, std::uint32_t limit) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "entries");
  w.StartArray();
  for (const auto& e : entries) WriteEntry(w, e);
  w.EndArray();
  WriteKey(w, "next_after");
  if (!entries.empty() && entries.size() >= limit) {
    w.Uint64(entries.back().seq);
  } else {
    w.Null();
  }
  w.EndObject();
  return Take(buf);
}

std::string RenderAuditEntry(const audit::Entry& e) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteEntry(w, e);
  return Take(buf);
}

Result<AuditPage> ParseAuditPage(std::string_view body) {
  auto doc = json::Document::Parse(body);
  if (!doc.ok()) return doc.status();
  const json::Value root = doc->root();
  if (!root.IsObject()) return BadPage("not an object");
  AuditPage page;
  bool have_entries = false;
  for (const auto& m : root) {
    const std::string_view name = m.name.GetString();
    if (name == "entries") {
      if (!m.value.IsArray()) return BadPage("entries must be an array");
      for (const auto& item : m.value) {
        audit::Entry e;
        YM_RETURN_IF_ERROR(ReadEntry(item.value, &e));
        page.entries.push_back(std::move(e));
      }
      have_entries = true;
    } else if (name == "next_after") {
      if (m.value.IsNull()) continue;
      auto n = m.value.AsUint64();
      if (!n) return BadPage("next_after must be a seq or null");
      page.next_after = *n;
    }
  }
  if (!have_entries) return BadPage("no entries member");
  return page;
}

}  // namespace ym::net
