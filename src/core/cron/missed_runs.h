// MissedRuns: which windows of a schedule to emit when they come due, after a pause, a downtime
// or a restart (issue 11, "Missed-run policy"). Pure: given the expression, the schedule's
// cursor (every window at or before it is decided) and now, it decides every window in
// (cursor, now] and returns the new cursor; the scheduler writes that cursor in the same store
// batch as the emitted windows' jobs, so no window is decided twice.
//
// A window is ON TIME when now - window <= grace_ms: the normal case of a running broker that
// fires each window from its timer (a few ms late). Every policy emits an on-time window. The
// others are MISSED, and the policy decides:
//   * skip:        emit none of them (recorded as `missed`);
//   * latest_only: emit only the most recent due window, if it is no older than max_age_ms
//                  (older ones `superseded`; the latest, if too old, `too_old`);
//   * catch_up:    emit each missed window no older than max_age_ms (older ones `too_old`),
//                  oldest first, at most max_count of them: the most recent max_count (earlier
//                  ones `over_count`).
// Skipped windows are reported as ranges with a reason (the history shows them), not one by one:
// the work is bounded by max_count and a few dozen expression evaluations, never by how many
// windows a long downtime spans (a per-second schedule down for a week has 604,800).
#pragma once

#include <date/tz.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/cron/cron_expr.h"

namespace ym::cron {

enum class MissedPolicy : std::uint8_t { kCatchUp, kLatestOnly, kSkip };

std::string_view MissedPolicyName(MissedPolicy p);  // "catch_up", "latest_only", "skip"
Result<MissedPolicy> ParseMissedPolicy(std::string_view text, std::string_view field);

struct MissedRunConfig {
  static constexpr std::uint32_t kMaxCount = 10'000;
  static constexpr std::int64_t kMaxAgeMs = 366LL * 86'400'000;

  MissedPolicy policy = MissedPolicy::kLatestOnly;
  std::uint32_t max_count = 100;         // catch_up: 1..kMaxCount
  std::int64_t max_age_ms = 86'400'000;  // catch_up, latest_only: 1000..kMaxAgeMs
  std::int64_t grace_ms = 60'000;        // 0..max_age_ms: how late a window is still on time

  // kValidation naming `field`.member and its range.
  Status Validate(std::string_view field) const;
};

// When a schedule may fire: its expression in its zone, the anchor of an interval, and optional
// bounds (windows before `start_ms` or after `end_ms` never fire).
struct ScheduleTiming {
  const CronExpr* expr = nullptr;
  const date::time_zone* zone = nullptr;
  std::int64_t anchor_ms = 0;
  std::optional<std::int64_t> start_ms;
  std::optional<std::int64_t> end_ms;

  // The first window strictly after `after_ms` within the bounds; nullopt when none remains.
  std::optional<std::int64_t> Next(std::int64_t after_ms) const;
};

struct SkippedRange {
  std::int64_t after_ms;    // exclusive
  std::int64_t before_ms;   // exclusive: every window strictly between the two was skipped
  std::string_view reason;  // "missed", "superseded", "too_old", "over_count"
};

struct DuePlan {
  std::vector<std::int64_t> emit;     // windows to emit, oldest first
  std::vector<SkippedRange> skipped;  // in time order
  std::int64_t cursor_ms = 0;         // every window at or before it is decided
};

// Decides every window in (cursor_ms, now_ms]. The new cursor is the latest window decided
// (cursor_ms unchanged when none was due).
DuePlan PlanDue(const ScheduleTiming& timing, std::int64_t cursor_ms, std::int64_t now_ms,
                const MissedRunConfig& config);

}  // namespace ym::cron
