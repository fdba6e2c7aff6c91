// Test helpers: SQL run on a store's file through a separate raw connection, as an operator's
// sqlite3 shell would (to inspect what the store wrote, or to build an older format's file).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace ym {

// Runs `sql` (any number of statements); a failure fails the test with SQLite's message.
inline void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

// The first column of the first row of a read-only query; -1 when there is none.
inline std::int64_t RawQueryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

// The same as text; empty when there is none.
inline std::string RawQueryText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::string v;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
    v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

// Turns a current file back into format 9: the token and audit tables (format 10) go.
#define YM_UNDO_FORMAT10 "DROP TABLE audit_log;DROP TABLE api_tokens;"
inline constexpr char kUndoFormat10[] = YM_UNDO_FORMAT10;

// Turns a current file back into format 8 (format 10 first): the trace columns of `jobs`
// (format 9) go.
#define YM_UNDO_FORMAT9                                                              \
  YM_UNDO_FORMAT10                                                                   \
  "ALTER TABLE jobs DROP COLUMN request_id;ALTER TABLE jobs DROP COLUMN tracestate;" \
  "ALTER TABLE jobs DROP COLUMN traceparent;"
inline constexpr char kUndoFormat9[] = YM_UNDO_FORMAT9;

// Turns a current file back into format 7 (format 9 first): the schedule tables (format 8) go.
#define YM_UNDO_FORMAT8 YM_UNDO_FORMAT9 "DROP TABLE schedule_history;DROP TABLE schedules;"
inline constexpr char kUndoFormat8[] = YM_UNDO_FORMAT8;

// Turns a current file back into format 6 (format 8 first): format 7's tables and the queues'
// weight column go.
#define YM_UNDO_FORMAT7 \
  YM_UNDO_FORMAT8       \
  "DROP TABLE quota_counts;DROP TABLE namespaces;ALTER TABLE queues DROP COLUMN weight;"
inline constexpr char kUndoFormat7[] = YM_UNDO_FORMAT7;

// Turns a current file back into format 5 (format 7 first, then 6): each finished job's outcome
// is written back into its job row as format 5 kept it, the outcomes table and its indexes go
// (and the limits table), and the five partial indexes of `jobs` come back. The older-format
// tests then undo format 5 on top of it.
inline constexpr char kUndoFormat6[] = YM_UNDO_FORMAT7
    "UPDATE jobs SET state = o.state, priority = o.priority, run_at_ms = o.run_at_ms, "
    "updated_at_ms = o.updated_at_ms, finished_at_ms = o.finished_at_ms, attempts = o.attempts, "
    "max_attempts = o.max_attempts, runs = o.runs, backoff_initial_ms = o.backoff_initial_ms, "
    "backoff_max_ms = o.backoff_max_ms, backoff_multiplier = o.backoff_multiplier, "
    "lease_ms = o.lease_ms, errors = o.errors, dead_reason = o.dead_reason, result = o.result, "
    "cancel_requested = o.cancel_requested FROM outcomes AS o WHERE o.id = jobs.id;"
    "DROP TABLE outcomes;"
    "DROP TABLE limits;"
    "CREATE INDEX jobs_terminal_by_id ON jobs (state, queue, id) WHERE state >= 3;"
    "CREATE INDEX jobs_terminal_by_finish ON jobs (state, queue, finished_at_ms) WHERE state >= 3;"
    "CREATE INDEX jobs_finished_by_state ON jobs (state, id) WHERE state >= 3;"
    "CREATE INDEX jobs_finished_by_kind ON jobs (state, kind, id) WHERE state >= 3;"
    "CREATE INDEX jobs_finished_by_ns ON jobs (state, ns, id) WHERE state >= 3;";

}  // namespace ym
