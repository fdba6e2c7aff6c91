// The JSON notification of an alert event: the payload of its delivery job (queue
// kAlertQueue) and, unchanged, the body POSTed to the webhook (docs/operations.md, "Alerts").
//
//   {"version":1,"rule":"billing-lag","queue":"billing","state":"firing",
//    "condition":"lag_seconds > 30 for 1m","value":42.5,"threshold":30,
//    "started_at":1700000000000,"ends_at":null,"at":1700000060000,
//    "dedupe_key":"billing-lag/billing/1700000000000/firing",
//    "webhook":"http://127.0.0.1:9000/hook"}
//
// Times are Unix epoch milliseconds; `ends_at` is null while firing. The webhook's headers are
// never in it (they may hold secrets and the payload is stored and shown by GET /v1/jobs).
// Pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "obs/alerts/evaluator.h"

namespace ym::alerts {

// The internal queue delivery jobs go to. Names starting with "_ym." are reserved for the
// broker's own queues (docs/operations.md): the API does not refuse them, but a worker leasing
// from this queue takes deliveries away from the built-in delivery worker.
inline constexpr std::string_view kAlertQueue = "_ym.alerts";
inline constexpr std::string_view kAlertJobKind = "alert.webhook";

std::string EncodeNotification(const AlertEvent& event, std::string_view condition,
                               std::string_view webhook_url);

struct DecodedNotification {
  AlertEvent event;
  std::string webhook_url;
};
// kInvalidRequest when the payload is not a notification this version wrote.
Result<DecodedNotification> DecodeNotification(std::string_view payload);

// The idempotency key of the delivery job of `event` to webhook number `webhook_index` of its
// rule: the same for every attempt to enqueue that event (a retry after a refused enqueue, a
// re-evaluation after a restart), so the event is enqueued once per webhook.
std::string DeliveryKey(const AlertEvent& event, std::size_t webhook_index);

}  // namespace ym::alerts
