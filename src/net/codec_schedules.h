// The codec of schedules (/v1/schedules, docs/api.md "Schedules"): the spec's JSON to and from
// cron::ScheduleSpec, the schedule object, and the small bodies of :backfill. The same parser
// reads the spec a schedule's store row keeps (ParseStoredSchedule), so the API and recovery
// accept exactly the same specs. Errors as net/codec.h says: kValidation naming the member
// (`field "missed_runs.max_count": ...`, `field "job.queue": ...`), kInvalidJson.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "core/cron/schedule_book.h"
#include "core/scheduler.h"
#include "net/codec.h"

namespace ym::net {

inline constexpr std::size_t kMaxNextFireTimes = 100;
inline constexpr std::size_t kDefaultNextFireTimes = 5;

// A create or replace: the spec and, when the body gives it, `paused`.
using ScheduleRequest = ScheduleUpdate;

// POST /v1/schedules: `id` in the body (required).
Result<ScheduleRequest> ParseScheduleCreate(std::string_view body, const CodecLimits& limits);
// PUT /v1/schedules/{id}: every member (left out: its default); the body may repeat `id`.
Result<ScheduleRequest> ParseScheduleReplace(const std::string& id, std::string_view body,
                                             const CodecLimits& limits);
// PATCH /v1/schedules/{id}: the members given replace those of `current_json` (the schedule's
// spec JSON now); `missed_runs` members are merged one by one, `job` replaced whole.
Result<ScheduleRequest> ParseSchedulePatch(const std::string& id, std::string_view body,
                                           const std::string& current_json,
                                           const CodecLimits& limits);
// The shape of a PATCH body (a JSON object of known members), checked before any core work.
Status CheckSchedulePatch(std::string_view body);
// The spec a store row keeps (cron::ScheduleSpec::json).
Result<cron::ScheduleSpec> ParseStoredSchedule(const std::string& id, std::string_view json);

// GET /v1/schedules/{id}?next=N (0..100, default 5).
Result<std::size_t> ParseScheduleGetQuery(std::string_view query);
// GET /v1/schedules?limit=&cursor=.
Result<QueueListQuery> ParseListSchedulesQuery(std::string_view query);
// POST /v1/schedules/{id}:backfill {"from","to"}.
Result<std::pair<std::int64_t, std::int64_t>> ParseBackfill(std::string_view body);

// The schedule object; `full` adds `next_fire_times` and `history` (GET of one schedule).
std::string RenderSchedule(const ScheduleView& view, bool full);
// `{"items":[...],"next_cursor"}` in id order, capped by `max_bytes`; `more`: schedules follow.
std::string RenderSchedulePage(const std::vector<ScheduleView>& items, bool more,
                               std::size_t max_bytes);
std::string RenderScheduleDeleted(const std::string& id);
std::string RenderBackfill(const BackfillOutcome& outcome);

// `schedule:<id>:<window>` -> (id, window); `schedule:<id>:trigger:<ms>` -> (id, nullopt).
// nullopt when the key is not a schedule's. What the job object shows as `schedule`.
struct ScheduleKeyParts {
  std::string id;
  std::optional<std::int64_t> window;
};
std::optional<ScheduleKeyParts> ParseScheduleKey(std::string_view key);

}  // namespace ym::net
