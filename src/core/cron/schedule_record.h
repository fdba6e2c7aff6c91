// The stored form of a schedule's state and history (core/cron/schedule_book.h), kept apart so
// that store/batch.h carries it without the time-zone library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"

namespace ym::cron {

// One decision of a schedule, as the history shows it. A skipped range covers the windows from
// `window_ms` through `through_ms` (both inclusive); an emitted window has through == window.
struct HistoryEntry {
  std::uint64_t seq = 0;  // per schedule, increasing
  std::int64_t window_ms = 0;
  std::int64_t through_ms = 0;
  bool emitted = false;
  std::string reason;  // emitted: on_time, catch_up, latest, buffered, trigger, backfill
  JobId job_id = 0;    // emitted: the job
  std::int64_t at_ms = 0;
  std::int64_t lag_ms = -1;  // emitted windows: at - window (jitter excluded); -1 otherwise

  bool operator==(const HistoryEntry&) const = default;
};

// What the store keeps of a schedule besides its spec.
struct ScheduleState {
  std::int64_t cursor_ms = 0;
  bool paused = false;
  std::int64_t anchor_ms = 0;  // intervals count from it
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  JobId last_job = 0;  // the job of the latest emitted window (0: none)
  std::int64_t last_window_ms = 0;
  std::int64_t last_enqueued_at_ms = 0;
  std::optional<std::int64_t> buffered_ms;  // buffer_one's held window
  std::uint64_t next_history_seq = 1;

  bool operator==(const ScheduleState&) const = default;
};

// A schedule's row as written to the store: spec, state, and the history entries added since
// the last row was taken (the store keeps the newest kHistory of them).
struct ScheduleRow {
  std::string id;
  std::string spec_json;
  ScheduleState state;
  std::vector<HistoryEntry> new_history;
};

}  // namespace ym::cron
