// Wire helpers shared by the API client's source files (api_client.cc and
// api_client_schedules.cc): reading the server's JSON replies leniently (a missing or extra member
// never fails a read; the top shape is checked), and writing request bodies. Internal to
// src/client: the public interface is client/api_client.h.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "client/api_client.h"
#include "common/json.h"
#include "common/status.h"

namespace ym::client {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
using json::Value;

// A payload may nest 128 levels (the server's limit) and sits at most 3 levels down in a reply.
inline constexpr int kMaxReplyDepth = 256;

// Payloads and results must be one JSON value; checked with the same strict reader the server
// uses, so that what the server would refuse (a lone surrogate, trailing bytes) fails here first,
// and what it accepts (any number, of any size) passes.
bool IsWellFormedJson(std::string_view text);

// Percent-encodes a path segment or query value. ':' stays literal because the API's names
// allow it and the server splits the `:verb` suffix at the last colon.
std::string Escape(std::string_view s);

// Appends `key=value` (escaped) to `target` when `value` is set, after '?' for the first.
void AddQuery(std::string* target, bool* first, std::string_view key,
              const std::optional<std::string>& value);

// --- reading replies: lenient about extra or missing fields, strict about the top shape ---

// The member `key` of `obj`, nullopt when absent or null (or when `obj` is not an object).
std::optional<Value> Member(const Value& obj, std::string_view key);
// Integers: 0 (Int) or nullopt (OptInt) when absent; a double is clamped into int64.
std::int64_t Int(const Value& obj, std::string_view key);
std::optional<std::int64_t> OptInt(const Value& obj, std::string_view key);
double Double(const Value& obj, std::string_view key, double fallback);
bool Bool(const Value& obj, std::string_view key);
// Strings; ids are documented as decimal strings but a number is accepted too.
std::optional<std::string> OptString(const Value& obj, std::string_view key);
std::string String(const Value& obj, std::string_view key);
// The member's JSON text as the server sent it (minus whitespace).
std::optional<std::string> OptRaw(const Value& obj, std::string_view key);
std::vector<std::string> Strings(const Value& obj, std::string_view key);

// A reply body that must be one JSON object; `what` names the request in the error.
Result<json::Document> ParseReply(const std::string& body, std::string_view what);

// Every item of a paged listing (GET `path`?limit=&cursor=, docs/api.md): `get(target)` fetches
// one page's body, `parse(item)` reads one item of its `items`; follows `next_cursor` to the end.
// A server that hands back an empty cursor or one it already gave would loop forever: that is
// an error instead.
template <typename Item, typename Get, typename Parse>
Result<std::vector<Item>> ReadEveryPage(const std::string& path, std::uint32_t page_size, Get get,
                                        Parse parse) {
  const std::string what = "GET " + path;
  std::vector<Item> out;
  std::string cursor;
  std::set<std::string> seen;
  for (;;) {
    std::string target = path;
    bool first = true;
    AddQuery(&target, &first, "limit", std::to_string(page_size));
    if (!cursor.empty()) AddQuery(&target, &first, "cursor", cursor);
    Result<std::string> body = get(target);
    if (!body.ok()) return body.status();
    Result<json::Document> doc = ParseReply(*body, what);
    if (!doc.ok()) return doc.status();
    std::optional<Value> items = Member(doc->root(), "items");
    if (items == std::nullopt || !items->IsArray()) {
      return Internal("reply to " + what + " has no items array");
    }
    for (const auto& item : *items) out.push_back(parse(item.value));
    std::optional<Value> next = Member(doc->root(), "next_cursor");
    if (next == std::nullopt || !next->IsString()) return out;
    cursor = std::string(next->GetString());
    if (cursor.empty() || !seen.insert(cursor).second) {
      return Internal(what + " repeated or empty cursor");
    }
  }
}

// --- writing requests ---

void WriteBackoff(JsonWriter& w, const Backoff& b);
// Embeds a JSON object text as is.
void WriteRaw(JsonWriter& w, const std::string& json);
// An enqueue spec (POST /v1/jobs) with the members that are set; refuses a payload that is not
// well-formed JSON.
Status WriteSpec(JsonWriter& w, const EnqueueRequest& j);
std::string Str(const rapidjson::StringBuffer& sb);

}  // namespace ym::client
