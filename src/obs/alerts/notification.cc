#include "obs/alerts/notification.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "common/json.h"

namespace ym::alerts {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Number(Writer& w, double v) {
  // Whole values as integers (a count, whole seconds), the rest as the shortest double.
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) {
    w.Int64(static_cast<std::int64_t>(v));
  } else if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}

std::optional<json::Value> Member(const json::Value& obj, std::string_view name) {
  for (const auto& m : obj) {
    if (m.name.GetString() == name) return m.value;
  }
  return std::nullopt;
}

}  // namespace

std::string EncodeNotification(const AlertEvent& e, std::string_view condition,
                               std::string_view webhook_url) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(1);
  w.Key("rule");
  Str(w, e.rule);
  w.Key("queue");
  Str(w, e.queue);
  w.Key("state");
  Str(w, e.firing ? "firing" : "resolved");
  w.Key("condition");
  Str(w, condition);
  w.Key("value");
  Number(w, e.value);
  w.Key("threshold");
  Number(w, e.threshold);
  w.Key("started_at");
  w.Int64(e.started_at_ms);
  w.Key("ends_at");
  if (e.firing) {
    w.Null();
  } else {
    w.Int64(e.ends_at_ms);
  }
  w.Key("at");
  w.Int64(e.at_ms);
  w.Key("dedupe_key");
  Str(w, e.DedupeKey());
  w.Key("webhook");
  Str(w, webhook_url);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<DecodedNotification> DecodeNotification(std::string_view payload) {
  auto doc = json::Document::Parse(payload);
  if (!doc.ok()) return InvalidRequest("not JSON: " + doc.status().message());
  const json::Value root = doc->root();
  if (!root.IsObject()) return InvalidRequest("not an object");
  auto version = Member(root, "version");
  if (!version || version->AsInt64() != 1) return InvalidRequest("version: must be 1");
  DecodedNotification out;
  auto str = [&](std::string_view name, std::string* into) -> Status {
    auto v = Member(root, name);
    if (!v || !v->IsString()) return InvalidRequest(std::string(name) + ": must be a string");
    *into = std::string(v->GetString());
    return Status::Ok();
  };
  auto ms = [&](std::string_view name, std::int64_t* into, bool nullable) -> Status {
    auto v = Member(root, name);
    if (v && nullable && v->IsNull()) return Status::Ok();
    if (!v || !v->AsInt64()) return InvalidRequest(std::string(name) + ": must be an integer");
    *into = *v->AsInt64();
    return Status::Ok();
  };
  auto num = [&](std::string_view name, double* into) -> Status {
    auto v = Member(root, name);
    if (v && v->IsNull()) return Status::Ok();
    if (!v || !v->AsDouble()) return InvalidRequest(std::string(name) + ": must be a number");
    *into = *v->AsDouble();
    return Status::Ok();
  };
  std::string state;
  YM_RETURN_IF_ERROR(str("rule", &out.event.rule));
  YM_RETURN_IF_ERROR(str("queue", &out.event.queue));
  YM_RETURN_IF_ERROR(str("state", &state));
  if (state != "firing" && state != "resolved") {
    return InvalidRequest("state: must be firing or resolved");
  }
  out.event.firing = state == "firing";
  YM_RETURN_IF_ERROR(num("value", &out.event.value));
  YM_RETURN_IF_ERROR(num("threshold", &out.event.threshold));
  YM_RETURN_IF_ERROR(ms("started_at", &out.event.started_at_ms, false));
  YM_RETURN_IF_ERROR(ms("ends_at", &out.event.ends_at_ms, true));
  YM_RETURN_IF_ERROR(ms("at", &out.event.at_ms, false));
  YM_RETURN_IF_ERROR(str("webhook", &out.webhook_url));
  return out;
}

std::string DeliveryKey(const AlertEvent& event, std::size_t webhook_index) {
  return std::string(kAlertQueue) + "/" + event.DedupeKey() + "/" + std::to_string(webhook_index);
}

}  // namespace ym::alerts
