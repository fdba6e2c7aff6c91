// AlertRule: one `[[alerts]]` table of the config file, validated (docs/operations.md, "Alerts").
//
// A rule names a queue (or every queue), a condition over that queue's samples and the webhooks
// its notifications go to. The condition is written as a short expression:
//
//   lag_seconds > 30 for 1m                 the oldest ready job has waited more than 30 s,
//                                           continuously for a minute
//   oldest_ready_age > 10m                  the same measure, written as a duration
//   failure_ratio > 0.2 over 5m min 20      failed / (succeeded + failed) attempts in the last 5
//                                           minutes, once at least 20 attempts ended in them
//   dead_growth >= 1 over 15m               jobs that went dead in the last 15 minutes
//   no_pollers for 2m                       the queue has ready jobs and no lease request named
//                                           it (and no long-poll waited on it) for 2 minutes
//
// Every comparison may be `>` or `>=`; every condition but no_pollers takes an optional
// `for DURATION` (how long it must hold before the alert fires; default 0: at once). A duration
// is a number with a unit (ms, s, m, h) or a plain number of seconds.
//
// Pure values; no I/O. Parsing errors are kInvalidRequest naming the field and what was wrong;
// the config loader prefixes the file, the table and the rule name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ym::alerts {

enum class ConditionKind {
  kLagSeconds,      // oldest ready age, threshold in seconds
  kOldestReadyAge,  // the same measure, threshold a duration
  kFailureRatio,    // failed / (succeeded + failed) over a window, with a minimum count
  kDeadGrowth,      // jobs that went dead over a window
  kNoPollers,       // ready jobs and no lease request naming the queue for a time
};

// "lag_seconds", "oldest_ready_age", ...
std::string_view ConditionName(ConditionKind kind);

struct Condition {
  ConditionKind kind = ConditionKind::kLagSeconds;
  bool inclusive = false;  // `>=` rather than `>`
  // In the unit of the value (AlertEvaluator): seconds for lag, age and no_pollers, a ratio in
  // [0, 1] for failure_ratio, a count for dead_growth.
  double threshold = 0;
  std::int64_t for_ms = 0;      // how long it must hold before firing (0: at once)
  std::int64_t window_ms = 0;   // failure_ratio and dead_growth: the window counted over
  std::uint64_t min_count = 1;  // failure_ratio: fewest ended attempts in the window to judge
  std::string text;             // as written in the config, for display

  // Whether `value` passes the threshold.
  bool Exceeds(double value) const { return inclusive ? value >= threshold : value > threshold; }
};

// Parses a condition expression (grammar above). The longest window or `for` accepted is 7
// days; a window is at least 1 s.
Result<Condition> ParseCondition(std::string_view text);

// Parses a duration: "250ms", "30s", "5m", "2h", or a plain number of seconds ("1.5").
// Negative values, and anything past 7 days, are errors.
Result<std::int64_t> ParseDurationMs(std::string_view text);

// A webhook target. Only plain http:// is supported: the project's HTTP client has no TLS
// (client/http_client.h); put a TLS-terminating proxy in front of an https receiver.
struct WebhookUrl {
  std::string url;   // as configured
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 80;
  std::string target;  // path and query, "/" when the URL has none
};
Result<WebhookUrl> ParseWebhookUrl(std::string_view url);

struct Webhook {
  WebhookUrl url;
  // Sent with every POST to this webhook (e.g. Authorization). Kept in memory only: never in
  // the delivery job's payload, so a secret does not reach the store or GET /v1/jobs.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct AlertRule {
  std::string name;   // IsValidName, at most kMaxRuleNameBytes
  std::string queue;  // empty: every queue
  Condition condition;
  std::vector<Webhook> webhooks;  // at least one
};

inline constexpr std::size_t kMaxRuleNameBytes = 64;
// Queues whose name starts with this are the broker's own (the alert delivery queue): a rule on
// every queue skips them, so a failing webhook cannot raise alerts about its own deliveries. A
// rule may still name one explicitly.
inline constexpr std::string_view kReservedQueuePrefix = "_ym.";
inline constexpr std::size_t kMaxWebhooksPerRule = 8;

// Checks a header name (an HTTP token) and value (no control characters); "" when fine.
std::string CheckHeader(std::string_view name, std::string_view value);

}  // namespace ym::alerts
