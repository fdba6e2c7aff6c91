// The codec of queues: GET/PUT /v1/queues.

#include <fmt/format.h>

#include "core/flow/weighted_rotation.h"
#include "net/codec.h"
#include "net/codec_util.h"

namespace ym::net {
namespace {

void WriteQueue(JsonWriter& w, const QueueInfo& info) {
  const QueueConfig& c = info.config;
  w.StartObject();
  WriteKey(w, "name");
  WriteStr(w, c.name);
  WriteKey(w, "paused");
  w.Bool(c.paused);
  WriteKey(w, "max_attempts");
  w.Int(c.max_attempts);
  WriteKey(w, "lease_ms");
  w.Int64(c.lease_ms);
  WriteKey(w, "timeout_ms");
  WriteMsOrNull(w, c.timeout_ms);
  WriteKey(w, "weight");
  w.Int64(c.weight);
  WriteKey(w, "backoff");
  WriteBackoff(w, c.backoff);
  WriteKey(w, "retention");
  w.StartObject();
  WriteKey(w, "succeeded_ms");
  w.Int64(c.retention.succeeded_ms);
  WriteKey(w, "dead_ms");
  w.Int64(c.retention.dead_ms);
  WriteKey(w, "cancelled_ms");
  w.Int64(c.retention.cancelled_ms);
  WriteKey(w, "max_succeeded");
  w.Int64(c.retention.max_succeeded);
  WriteKey(w, "max_dead");
  w.Int64(c.retention.max_dead);
  WriteKey(w, "max_cancelled");
  w.Int64(c.retention.max_cancelled);
  w.EndObject();
  WriteKey(w, "counts");
  w.StartObject();
  // Every state is always present so that clients need no defaulting.
  for (int s = 0; s <= 5; ++s) {
    std::string_view name = StateName(static_cast<JobState>(s));
    auto it = info.counts.find(std::string(name));
    WriteKey(w, name);
    w.Uint64(it == info.counts.end() ? 0 : it->second);
  }
  w.EndObject();
  WriteKey(w, "blocked");
  w.StartObject();
  // Every reason is always present (0 included), as the counts are.
  for (const char* reason : kBlockedReasons) {
    auto it = info.blocked.find(reason);
    WriteKey(w, reason);
    w.Uint64(it == info.blocked.end() ? 0 : it->second);
  }
  w.EndObject();
  WriteKey(w, "oldest_ready_age_ms");
  w.Int64(info.oldest_ready_age_ms);
  WriteKey(w, "waiting_workers");
  w.Uint(info.waiting_workers);
  w.EndObject();
}

}  // namespace

Result<QueueConfigPatch> ParseQueuePatch(std::string name, std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(
      doc, "",
      {"paused", "max_attempts", "lease_ms", "timeout_ms", "backoff", "retention", "weight"}));
  QueueConfigPatch patch;
  patch.name = std::move(name);
  YM_RETURN_IF_ERROR(OptBool(doc, "", "paused", &patch.paused));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "max_attempts", 1, kMaxMaxAttempts, &patch.max_attempts));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "lease_ms", kMinLeaseMs, kMaxLeaseMs, &patch.lease_ms));
  YM_RETURN_IF_ERROR(OptTimeout(doc, &patch.timeout_ms));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "weight", flow::WeightedRotation::kMinWeight,
                            flow::WeightedRotation::kMaxWeight, &patch.weight));
  if (auto b = Find(doc, "backoff")) {
    Backoff backoff;
    YM_RETURN_IF_ERROR(BackoffValue(*b, "backoff", &backoff));
    patch.backoff = backoff;
  }
  if (auto r = Find(doc, "retention")) {
    Retention retention;
    YM_RETURN_IF_ERROR(RetentionValue(*r, "retention", &retention));
    patch.retention = retention;
  }
  return patch;
}

Result<QueueListQuery> ParseListQueuesQuery(std::string_view query) {
  return ParseNamePageQuery(query, /*scope=*/"");
}

std::string RenderQueue(const QueueInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteQueue(w, info);
  return Take(buf);
}

std::string RenderQueuePage(const QueuePage& page, std::size_t max_bytes) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n = WriteCappedItems(w, buf, page.items, max_bytes, WriteQueue);
  const std::string& next_after =
      n < page.items.size() ? page.items[n - 1].config.name : page.next_after;
  WriteKey(w, "next_cursor");
  if (next_after.empty()) {
    w.Null();
  } else {
    WriteStr(w, EncodeQueueCursor(next_after));
  }
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
