// Codec helpers shared by the codec's source files (codec_common.cc, codec_jobs.cc,
// codec_queues.cc, codec_flow.cc): reading members of a request body with a clear error naming
// the field, and writing JSON with a RapidJSON Writer. Internal to src/net/codec*.cc: the public
// interface is net/codec.h.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "core/job.h"
#include "core/types.h"
#include "net/codec.h"
#include "net/cursor.h"

namespace ym::net {

using json::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// ---- parsing helpers ----

std::string FieldPath(std::string_view prefix, std::string_view name);

Status FieldError(std::string_view path, std::string_view what);

// Bodies are read with json::Document (common/json.h), not RapidJSON's DOM: it keeps numbers as
// their text, refuses lone surrogates and any byte after the value, and bounds the nesting.
Result<json::Document> ParseDocument(std::string_view body);

// Rejects unknown and repeated members of `obj`: a typo must not silently change behaviour.
Status CheckMembers(const Value& obj, std::string_view prefix,
                    std::initializer_list<std::string_view> allowed);

// The member `name` of `obj` including an explicit null, or nullopt when absent.
std::optional<Value> FindRaw(const Value& obj, std::string_view name);

// The member `name` of `obj`, or nullopt when absent or null.
std::optional<Value> Find(const Value& obj, std::string_view name);

Status Required(std::string_view path);

Status IntValue(const Value& v, std::string_view path, std::int64_t lo, std::int64_t hi,
                std::int64_t* out);

template <typename T>
Status OptInt(const Value& obj, std::string_view prefix, std::string_view name, std::int64_t lo,
              std::int64_t hi, std::optional<T>* out) {
  std::optional<Value> v = Find(obj, name);
  if (!v) return Status::Ok();
  std::int64_t n = 0;
  YM_RETURN_IF_ERROR(IntValue(*v, FieldPath(prefix, name), lo, hi, &n));
  *out = static_cast<T>(n);
  return Status::Ok();
}

// `timeout_ms` of a job spec or a queue: 0 (none) or 1..kMaxTimeoutMs.
Status OptTimeout(const Value& obj, std::optional<std::int64_t>* out);

Status NameValue(const Value& v, std::string_view path, std::string* out);

Status OptName(const Value& obj, std::string_view prefix, std::string_view name, std::string* out);

Status ReqName(const Value& obj, std::string_view prefix, std::string_view name, std::string* out);

Status BytesValue(const Value& v, std::string_view path, std::size_t min, std::size_t max,
                  std::string* out);

Status OptBool(const Value& obj, std::string_view prefix, std::string_view name,
               std::optional<bool>* out);

Status TokenValue(const Value& obj, std::string_view prefix, std::uint64_t* out);

Status JobIdValue(const Value& obj, std::string_view prefix, JobId* out);

// Payloads and ack results are kept as their validated JSON text, exactly as sent minus
// insignificant whitespace: numbers, escapes and Unicode are never re-encoded (docs/api.md).
Status PayloadValue(const Value& v, std::string_view path, const CodecLimits& limits,
                    std::string* out);

Status BackoffValue(const Value& v, std::string_view path, Backoff* out);

Status RetentionValue(const Value& v, std::string_view path, Retention* out);

// ---- rendering helpers ----

void WriteStr(JsonWriter& w, std::string_view s);

void WriteKey(JsonWriter& w, std::string_view s);

void WriteStrOrNull(JsonWriter& w, std::string_view s);

// A duration or time where 0 means "none" (timeout_ms, deadline_at): null then.
void WriteMsOrNull(JsonWriter& w, std::int64_t ms);

// Payloads and results are JSON text validated and compacted at enqueue/ack: embed them as is.
void WriteRawJson(JsonWriter& w, std::string_view json);

void WriteBackoff(JsonWriter& w, const Backoff& b);

void WriteTags(JsonWriter& w, const std::vector<std::string>& tags);

void WriteAttemptError(JsonWriter& w, const AttemptError& e);

void WriteErrorObject(JsonWriter& w, const Status& status);

std::string Take(const rapidjson::StringBuffer& buf);

Status QueryError(std::string_view name, std::string_view what);

Result<std::int64_t> ParseEpochMs(std::string_view name, std::string_view value);

// GET /v1/queues, /v1/limits, /v1/namespaces, ...: `limit` and `cursor`. `scope`: the cursor
// scope of the listing, empty for queues.
Result<QueueListQuery> ParseNamePageQuery(std::string_view query, std::string_view scope);

// Writes `"items":[...]` of a page capped by bytes: each item is rendered on its own first, so
// that one that would take the body over max_bytes is left for the next page (the Writer cannot
// take a value back); at least one item is always written. Returns how many were written.
template <typename Item, typename Render>
std::size_t WriteCappedItems(JsonWriter& w, const rapidjson::StringBuffer& buf,
                             const std::vector<Item>& items, std::size_t max_bytes, Render render) {
  WriteKey(w, "items");
  w.StartArray();
  rapidjson::StringBuffer item;
  std::size_t written = 0;
  for (; written < items.size(); ++written) {
    item.Clear();
    JsonWriter iw(item);
    render(iw, items[written]);
    if (written > 0 && buf.GetSize() + item.GetSize() + 1 > max_bytes) break;
    w.RawValue(item.GetString(), item.GetSize(), rapidjson::kObjectType);
  }
  w.EndArray();
  return written;
}

// A page of named objects (limits, namespaces) capped at `max_bytes`, with a cursor of `scope`
// after the last name written.
template <typename Page, typename Write>
std::string RenderNamedPage(const Page& page, std::size_t max_bytes, Write write,
                            std::string_view scope) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n = WriteCappedItems(w, buf, page.items, max_bytes, write);
  const std::string& next_after =
      n < page.items.size() ? page.items[n - 1].spec.name : page.next_after;
  WriteKey(w, "next_cursor");
  if (next_after.empty()) {
    w.Null();
  } else {
    WriteStr(w, EncodeCursor(scope, next_after));
  }
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
