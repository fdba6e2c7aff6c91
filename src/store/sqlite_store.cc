#include "store/sqlite_store.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/writer.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/attempt_timeout.h"
#include "obs/logging.h"

namespace ym {
namespace {

// ---------------------------------------------------------------------------------------------
// Schema. Column order of kJobColumns is the order ReadJob() decodes and the order the INSERT
// binds; docs/storage-format.md documents every column.

constexpr char kJobColumns[] =
    "id, ns, queue, kind, state, priority, payload, run_at_ms, created_at_ms, updated_at_ms, "
    "finished_at_ms, attempts, max_attempts, runs, backoff_initial_ms, backoff_max_ms, "
    "backoff_multiplier, lease_ms, idempotency_key, concurrency_key, tags, errors, dead_reason, "
    "result, cancel_requested, timeout_ms, traceparent, tracestate, request_id";
constexpr int kJobColumnCount = 29;

// A running job's lease lives in a narrow table of its own (format 4): a lease writes a ~40-byte
// row here instead of rewriting the job's whole record (payload included), and the row goes when
// the attempt ends. While it exists it overrides the job row's state (active), attempts and
// updated_at_ms. Columns in the order ReadLease() decodes them, after a job's kJobColumns.
constexpr char kLeaseColumns[] =
    "token, expires_at_ms, worker_id, attempts, updated_at_ms, deadline_at_ms";

// A finished job's outcome lives in a narrow table of its own (format 6, MigrateTo6): finishing
// a job inserts it instead of rewriting the job row, and while it exists it overrides every
// mutable field of the job row (the job is terminal). The columns ReadOutcome() decodes, in
// the order of kUpdateJobSql's parameters ?1..?16.
constexpr char kOutcomeColumns[] =
    "state, priority, run_at_ms, updated_at_ms, finished_at_ms, attempts, max_attempts, runs, "
    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, lease_ms, errors, dead_reason, "
    "result, cancel_requested";
constexpr int kLeaseColumnCount = 6;

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
  id                 INTEGER PRIMARY KEY,
  ns                 TEXT    NOT NULL,
  queue              TEXT    NOT NULL,
  kind               TEXT    NOT NULL,
  state              INTEGER NOT NULL CHECK (state BETWEEN 0 AND 5),
  priority           INTEGER NOT NULL,
  payload            TEXT    NOT NULL,
  run_at_ms          INTEGER NOT NULL,
  created_at_ms      INTEGER NOT NULL,
  updated_at_ms      INTEGER NOT NULL,
  finished_at_ms     INTEGER NOT NULL,
  attempts           INTEGER NOT NULL,
  max_attempts       INTEGER NOT NULL,
  runs               INTEGER NOT NULL,
  backoff_initial_ms INTEGER NOT NULL,
  backoff_max_ms     INTEGER NOT NULL,
  backoff_multiplier REAL    NOT NULL,
  lease_ms           INTEGER NOT NULL,
  idempotency_key    TEXT    NOT NULL,
  concurrency_key    TEXT    NOT NULL,
  tags               TEXT,
  errors             TEXT,
  dead_reason        TEXT    NOT NULL,
  result             TEXT    NOT NULL,
  cancel_requested   INTEGER NOT NULL
);

CREATE INDEX jobs_terminal_by_id ON jobs (state, queue, id) WHERE state >= 3;
CREATE INDEX jobs_terminal_by_finish ON jobs (state, queue, finished_at_ms) WHERE state >= 3;

CREATE TABLE queues (
  name                   TEXT PRIMARY KEY,
  paused                 INTEGER NOT NULL,
  max_attempts           INTEGER NOT NULL,
  lease_ms               INTEGER NOT NULL,
  backoff_initial_ms     INTEGER NOT NULL,
  backoff_max_ms         INTEGER NOT NULL,
  backoff_multiplier     REAL    NOT NULL,
  retention_succeeded_ms INTEGER NOT NULL,
  retention_dead_ms      INTEGER NOT NULL,
  retention_cancelled_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
  ns            TEXT    NOT NULL,
  key           TEXT    NOT NULL,
  job_id        INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('next_id', 1);
)sql";

// ---------------------------------------------------------------------------------------------
// Small helpers around the C API.

Status SqlError(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (sqlite code ";
  msg += std::to_string(db != nullptr ? sqlite3_extended_errcode(db) : rc);
  msg += ")";
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Corruption(std::move(msg));
  return IoError(std::move(msg));
}

// Prepares `sql` into `*slot` the first time (a reader's statements live as long as the reader).
Status PrepareOnce(sqlite3* db, sqlite3_stmt** slot, std::string_view sql, std::string_view what) {
  if (*slot != nullptr) return Status::Ok();
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, slot, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : SqlError(db, rc, "prepare " + std::string(what));
}

Status Exec(sqlite3* db, const char* sql, std::string_view what) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(db, rc, what);
  return Status::Ok();
}

// Owns a statement prepared for one use (recovery, migrations, ad-hoc reads).
class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, std::string_view sql) {
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), 0, &s_, nullptr);
    if (rc != SQLITE_OK) return SqlError(db, rc, "prepare");
    return Status::Ok();
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Resets a cached statement on every path out of a scope, so it never pins a read snapshot or
// keeps a write statement open after an error.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* s) : s_(s) {}
  ~ResetOnExit() { sqlite3_reset(s_); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* s_;
};

// Steps a write statement to completion and resets it. The message is only built on failure:
// this runs once per row on the commit path, which must not allocate.
Status StepDone(sqlite3* db, sqlite3_stmt* s, const char* what, std::int64_t id = -1) {
  int rc = sqlite3_step(s);
  Status st;
  if (rc != SQLITE_DONE) {
    st = SqlError(db, rc, id < 0 ? std::string(what) : what + (" " + std::to_string(id)));
  }
  sqlite3_reset(s);
  return st;
}

// Text bound with SQLITE_STATIC: every caller steps the statement before the string can change.
int BindText(sqlite3_stmt* s, int i, std::string_view v) {
  return sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

// SQLite integers are signed 64-bit; ids above that range would sort wrongly, so they are refused.
bool IdInRange(std::uint64_t id) {
  return id <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
}

// Whether a record carries a lease the leases table keeps: only an active job has one (a token
// on any other state is not stored).
bool HasLease(JobState state, std::uint64_t token) {
  return state == JobState::kActive && token != 0;
}

// Reads an existing SQLite file's application id and format version; 0 means a fresh file.
Status ReadFormatVersion(sqlite3* db, std::int64_t* version) {
  Stmt app;
  YM_RETURN_IF_ERROR(app.Prepare(db, "PRAGMA application_id"));
  int rc = sqlite3_step(app.get());
  if (rc != SQLITE_ROW) return SqlError(db, rc, "read application_id");
  std::int32_t app_id = sqlite3_column_int(app.get(), 0);
  if (app_id != 0 && app_id != kSqliteApplicationId) {
    return Corruption("not a Yardmaster database: PRAGMA application_id is " +
                      std::to_string(app_id));
  }

  Stmt tables;
  YM_RETURN_IF_ERROR(tables.Prepare(db,
                                    "SELECT sum(name = 'meta'), count(*) FROM sqlite_schema "
                                    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"));
  rc = sqlite3_step(tables.get());
  if (rc != SQLITE_ROW) return SqlError(db, rc, "read schema");
  bool has_meta = sqlite3_column_int(tables.get(), 0) > 0;
  int table_count = sqlite3_column_int(tables.get(), 1);
  if (!has_meta) {
    if (table_count > 0) {
      return Corruption("not a Yardmaster database: it has tables but no meta table");
    }
    *version = 0;
    return Status::Ok();
  }

  Stmt q;
  YM_RETURN_IF_ERROR(q.Prepare(db, "SELECT value FROM meta WHERE key = 'format_version'"));
  rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return Corruption("meta table has no format_version row");
  if (rc != SQLITE_ROW) return SqlError(db, rc, "read format_version");
  if (sqlite3_column_type(q.get(), 0) != SQLITE_INTEGER) {
    return Corruption("meta.format_version is not an integer");
  }
  *version = sqlite3_column_int64(q.get(), 0);
  if (*version < 1) return Corruption("meta.format_version is " + std::to_string(*version));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Migrations. kMigrations[v] upgrades a database from format v to v + 1 inside the transaction
// Open() holds; the caller then records v + 1 in meta. To add format 2: write MigrateTo2 (ALTER
// TABLE / CREATE INDEX / data rewrite), append it here, bump kSqliteFormatVersion and document it
// in docs/storage-format.md. Never edit a migration that has shipped.

Status MigrateTo1(sqlite3* db) {
  YM_RETURN_IF_ERROR(Exec(db, kSchemaV1, "create schema v1"));
  return Exec(db, ("PRAGMA application_id = " + std::to_string(kSqliteApplicationId)).c_str(),
              "set application_id");
}

// Format 2: a running job's lease is persisted with it (token, wall-clock expiry, worker id), so
// that a restart keeps leases instead of putting every active job back to ready. Rows written by
// format 1 get no lease (token 0): recovery treats them as before (active -> ready).
Status MigrateTo2(sqlite3* db) {
  return Exec(db,
              "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;"
              "ALTER TABLE jobs ADD COLUMN lease_expires_at_ms INTEGER NOT NULL DEFAULT 0;"
              "ALTER TABLE jobs ADD COLUMN worker_id TEXT NOT NULL DEFAULT '';",
              "migrate to format 2 (lease columns)");
}

// Format 3: idempotency keys keep their job's final state (so a duplicate of a purged job
// answers what it became) and are indexed by expiry (so expiry deletes a bounded chunk by the
// index instead of scanning every key). Keys whose job still exists get its final state now;
// those whose job was already purged stay NULL (unknown).
Status MigrateTo3(sqlite3* db) {
  return Exec(db,
              "ALTER TABLE idempotency_keys ADD COLUMN final_state INTEGER "
              "CHECK (final_state IS NULL OR final_state BETWEEN 3 AND 5);"
              "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_ms);"
              "UPDATE idempotency_keys SET final_state = (SELECT state FROM jobs "
              "WHERE jobs.id = idempotency_keys.job_id AND jobs.state >= 3);",
              "migrate to format 3 (idempotency keys)");
}

// Format 4: leases move out of the job row into a narrow table of their own, so that a lease
// (written once per job run on the hot path) appends a small row instead of rewriting the job's
// whole record, payload included. The leases recorded by format 3 (active rows with a token) are
// copied over with the attempt count and updated_at they carry; then the three lease columns are
// dropped from `jobs` (which rewrites the table once: the job rows are then the format 1 shape).
Status MigrateTo4(sqlite3* db) {
  return Exec(db,
              "CREATE TABLE leases ("
              "  id            INTEGER PRIMARY KEY,"
              "  token         INTEGER NOT NULL,"
              "  expires_at_ms INTEGER NOT NULL,"
              "  worker_id     TEXT    NOT NULL,"
              "  attempts      INTEGER NOT NULL,"
              "  updated_at_ms INTEGER NOT NULL"
              ");"
              "INSERT INTO leases (id, token, expires_at_ms, worker_id, attempts, updated_at_ms) "
              "SELECT id, lease_token, lease_expires_at_ms, worker_id, attempts, updated_at_ms "
              "FROM jobs WHERE state = 2 AND lease_token != 0;"
              "ALTER TABLE jobs DROP COLUMN lease_token;"
              "ALTER TABLE jobs DROP COLUMN lease_expires_at_ms;"
              "ALTER TABLE jobs DROP COLUMN worker_id;",
              "migrate to format 4 (leases table)");
}

// Format 5: additive only (ADD COLUMN with a default, CREATE TABLE/INDEX), one block per
// feature; docs/storage-format.md "Format 5" lists them.
Status MigrateTo5(sqlite3* db) {
  // --- Execution timeout (issue 9 item 6): a job's timeout_ms (0: none), its queue's default,
  // and the running attempt's deadline beside its lease, so that a restart still enforces it.
  // Format-4 rows get 0 everywhere: no timeout, as before.
  YM_RETURN_IF_ERROR(
      Exec(db,
           "ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0;"
           "ALTER TABLE queues ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0;"
           "ALTER TABLE leases ADD COLUMN deadline_at_ms INTEGER NOT NULL DEFAULT 0;",
           "migrate to format 5 (execution timeout)"));
  // --- Retention caps (finished jobs kept by default, issue 9 item 1): the most finished jobs of
  // each state a queue keeps (0: no cap). Queues configured before format 5 get the built-in
  // defaults; their stored windows are kept as they were (docs/storage-format.md, "Format 5").
  YM_RETURN_IF_ERROR(
      Exec(db,
           "ALTER TABLE queues ADD COLUMN retention_max_succeeded INTEGER NOT NULL DEFAULT 1000000;"
           "ALTER TABLE queues ADD COLUMN retention_max_dead INTEGER NOT NULL DEFAULT 100000;"
           "ALTER TABLE queues ADD COLUMN retention_max_cancelled INTEGER NOT NULL DEFAULT 100000;",
           "migrate to format 5 (retention caps)"));

  // --- Search (GET /v1/jobs filters; docs/storage-format.md "Format 5", "Search") ---
  // Indexes over terminal rows only (partial, `state >= 3`), each ordered by id within its
  // state and key (state first, like jobs_terminal_by_id: SQLite then searches by both), so a
  // filtered page of finished jobs reads bounded runs of one index (one run per state, merged
  // by id). Live rows never enter them: enqueue, lease and delete-on-ack pay nothing; a job
  // that finishes and is kept pays one entry in each, and so does its purge.
  //
  // job_tags holds one row per (job, tag) of every job that has tags, live or finished, keyed
  // by job so the rows of one job go together, and indexed by (tag, id) for the search. The
  // store writes them with the job row (ApplyInsert; tags never change afterwards) and a
  // trigger deletes them with it in the same transaction, whichever statement deletes the job
  // row (ack, purge, retention, bulk delete): no delete path can forget them. Jobs without tags
  // (tags IS NULL, almost all) skip the trigger's body. The trigger calls no function, as
  // `trusted_schema = OFF` requires.
  YM_RETURN_IF_ERROR(
      Exec(db,
           "CREATE INDEX jobs_finished_by_state ON jobs (state, id) WHERE state >= 3;"
           "CREATE INDEX jobs_finished_by_kind ON jobs (state, kind, id) WHERE state >= 3;"
           "CREATE INDEX jobs_finished_by_ns ON jobs (state, ns, id) WHERE state >= 3;"
           "CREATE TABLE job_tags ("
           "  id  INTEGER NOT NULL,"
           "  tag TEXT    NOT NULL,"
           "  PRIMARY KEY (id, tag)"
           ") WITHOUT ROWID;"
           "CREATE INDEX job_tags_by_tag ON job_tags (tag, id);"
           "CREATE TRIGGER job_tags_delete AFTER DELETE ON jobs WHEN old.tags IS NOT NULL "
           "BEGIN DELETE FROM job_tags WHERE id = old.id; END;"
           "INSERT OR IGNORE INTO job_tags (id, tag) SELECT jobs.id, t.value "
           "FROM jobs, json_each(jobs.tags) AS t "
           "WHERE jobs.tags IS NOT NULL AND json_valid(jobs.tags) AND json_type(jobs.tags) = "
           "'array' AND t.type = 'text';",
           "migrate to format 5 (search indexes)"));
  // --- end Search ---
  return Status::Ok();
}

// Format 6: a finished job's outcome lives in a narrow table of its own, `outcomes`, keyed by the
// job id, the way format 4 moved leases out: finishing a job (ack, dead, cancel) inserts this
// row instead of rewriting the job's whole record, and only this narrow row enters the indexes
// of finished jobs. While an outcome row exists it overrides every mutable field of the job row
// (the overlay rule, docs/storage-format.md "Format 6"): the job is terminal, whatever its job
// row still says. It holds the UpdateJob fields, plus copies of the keys the indexes and the
// search filters need (ns, queue, kind, created_at_ms), so a search never reads the job row of
// a candidate.
//
// Indexes: the retention index over every outcome; the kind and ns search indexes over every
// outcome; the queue and state-only search indexes over dead and cancelled outcomes only
// (`state >= 4`): a succeeded job pays no entry in them, and a search of succeeded jobs by queue
// or state alone walks `outcomes` in id order under the search's candidate budget
// (docs/benchmarks.md "Keeping finished jobs" has the measurements behind this choice).
//
// The migration copies every terminal job row (state >= 3) into `outcomes` (the job rows stay
// as they are: the overlay makes their own state irrelevant) and replaces the five partial
// indexes of `jobs` (which no statement uses any more) with those of `outcomes`.
constexpr char kOutcomeTableSql[] =
    "CREATE TABLE outcomes ("
    "  id                 INTEGER PRIMARY KEY,"
    "  ns                 TEXT    NOT NULL,"
    "  queue              TEXT    NOT NULL,"
    "  kind               TEXT    NOT NULL,"
    "  created_at_ms      INTEGER NOT NULL,"
    "  state              INTEGER NOT NULL CHECK (state BETWEEN 3 AND 5),"
    "  priority           INTEGER NOT NULL,"
    "  run_at_ms          INTEGER NOT NULL,"
    "  updated_at_ms      INTEGER NOT NULL,"
    "  finished_at_ms     INTEGER NOT NULL,"
    "  attempts           INTEGER NOT NULL,"
    "  max_attempts       INTEGER NOT NULL,"
    "  runs               INTEGER NOT NULL,"
    "  backoff_initial_ms INTEGER NOT NULL,"
    "  backoff_max_ms     INTEGER NOT NULL,"
    "  backoff_multiplier REAL    NOT NULL,"
    "  lease_ms           INTEGER NOT NULL,"
    "  errors             TEXT,"
    "  dead_reason        TEXT    NOT NULL,"
    "  result             TEXT    NOT NULL,"
    "  cancel_requested   INTEGER NOT NULL"
    ");";

Status MigrateTo6(sqlite3* db) {
  YM_RETURN_IF_ERROR(Exec(db, kOutcomeTableSql, "migrate to format 6 (outcomes table)"));
  YM_RETURN_IF_ERROR(Exec(
      db,
      "INSERT INTO outcomes (id, ns, queue, kind, created_at_ms, state, priority, run_at_ms, "
      "updated_at_ms, finished_at_ms, attempts, max_attempts, runs, backoff_initial_ms, "
      "backoff_max_ms, backoff_multiplier, lease_ms, errors, dead_reason, result, "
      "cancel_requested) SELECT id, ns, queue, kind, created_at_ms, state, priority, run_at_ms, "
      "updated_at_ms, finished_at_ms, attempts, max_attempts, runs, backoff_initial_ms, "
      "backoff_max_ms, backoff_multiplier, lease_ms, errors, dead_reason, result, "
      "cancel_requested FROM jobs WHERE state >= 3;"
      // A terminal job has no lease (format 4 already kept none beside a terminal row).
      "DELETE FROM leases WHERE id IN (SELECT id FROM outcomes);"
      "DROP INDEX jobs_terminal_by_id;"
      "DROP INDEX jobs_terminal_by_finish;"
      "DROP INDEX jobs_finished_by_state;"
      "DROP INDEX jobs_finished_by_kind;"
      "DROP INDEX jobs_finished_by_ns;"
      "CREATE INDEX outcomes_by_finish ON outcomes (queue, state, finished_at_ms);"
      "CREATE INDEX outcomes_by_kind ON outcomes (state, kind, id);"
      "CREATE INDEX outcomes_by_ns ON outcomes (state, ns, id);"
      "CREATE INDEX outcomes_dead_by_queue ON outcomes (state, queue, id) WHERE state >= 4;"
      "CREATE INDEX outcomes_dead_by_state ON outcomes (state, id) WHERE state >= 4;",
      "migrate to format 6 (outcomes)"));
  // Concurrency limits (issue 10, docs/flow-control.md): one row per named limit, its
  // configuration as the JSON text of LimitSpec::ToJson, so that the rate and quota members
  // still to come need no further migration.
  return Exec(db,
              "CREATE TABLE limits ("
              "  name TEXT PRIMARY KEY,"
              "  spec TEXT NOT NULL"
              ") WITHOUT ROWID;",
              "migrate to format 6 (limits)");
}

// Format 7 (issue 10, flow control). Additive, one block per feature.
Status MigrateTo7(sqlite3* db) {
  // --- Namespaces and weights (issue 10 items 1 and 2, docs/flow-control.md). A queue's weight
  // in a lease naming several queues (1..1000), and one row per configured namespace, its
  // configuration as the JSON text of NamespaceSpec::ToJson (core/flow/namespace_limits.h).
  YM_RETURN_IF_ERROR(Exec(db,
                          "ALTER TABLE queues ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;"
                          "CREATE TABLE namespaces ("
                          "  name TEXT PRIMARY KEY,"
                          "  spec TEXT NOT NULL"
                          ") WITHOUT ROWID;",
                          "migrate to format 7 (namespaces)"));
  // --- Calendar quota counts (docs/flow-control.md, "Calendar quotas"): per limit and key, the
  // starts counted in the window starting at window_start_ms. Written with the lease that made
  // the start; the first count of a new window drops the limit's older rows.
  return Exec(db,
              "CREATE TABLE quota_counts ("
              "  limit_name      TEXT    NOT NULL,"
              "  key             TEXT    NOT NULL,"
              "  window_start_ms INTEGER NOT NULL,"
              "  used            INTEGER NOT NULL,"
              "  PRIMARY KEY (limit_name, key)"
              ") WITHOUT ROWID;",
              "migrate to format 7 (quota counts)");
}

// Format 8 (issue 11, durable cron; docs/storage-format.md, "Schedules"). Additive. One row per
// schedule: its spec as canonical JSON (core/cron/schedule_book.h, parsed by the codec at
// load), its cursor (every window at or before it is decided) and paused flag, and the overlap
// and lag state; written in the same transaction as the jobs its windows emitted. Its history
// in a table of its own, one row per decision, trimmed to the newest 64 by seq as rows are
// added, so a fire writes one small row instead of rewriting the whole history.
Status MigrateTo8(sqlite3* db) {
  return Exec(db,
              "CREATE TABLE schedules ("
              "  id                  TEXT    PRIMARY KEY,"
              "  spec                TEXT    NOT NULL,"
              "  cursor_ms           INTEGER NOT NULL,"
              "  paused              INTEGER NOT NULL,"
              "  anchor_ms           INTEGER NOT NULL,"
              "  created_at_ms       INTEGER NOT NULL,"
              "  updated_at_ms       INTEGER NOT NULL,"
              "  last_job            INTEGER NOT NULL,"
              "  last_window_ms      INTEGER NOT NULL,"
              "  last_enqueued_at_ms INTEGER NOT NULL,"
              "  buffered_ms         INTEGER,"
              "  next_history_seq    INTEGER NOT NULL"
              ") WITHOUT ROWID;"
              "CREATE TABLE schedule_history ("
              "  schedule   TEXT    NOT NULL,"
              "  seq        INTEGER NOT NULL,"
              "  window_ms  INTEGER NOT NULL,"
              "  through_ms INTEGER NOT NULL,"
              "  emitted    INTEGER NOT NULL,"
              "  reason     TEXT    NOT NULL,"
              "  job_id     INTEGER NOT NULL,"
              "  at_ms      INTEGER NOT NULL,"
              "  lag_ms     INTEGER NOT NULL,"
              "  PRIMARY KEY (schedule, seq)"
              ") WITHOUT ROWID;",
              "migrate to format 8 (schedules)");
}

// Format 9 (issue 12, trace context; docs/storage-format.md, "Format 9: trace context").
// Additive: three nullable columns of `jobs`, written once by the job's insert and never
// updated (UpdateJob does not name them). Rows written by format 8 read NULL: no trace context
// and no request id, which is what they had. ADD COLUMN without a default rewrites nothing.
Status MigrateTo9(sqlite3* db) {
  return Exec(db,
              "ALTER TABLE jobs ADD COLUMN traceparent TEXT;"
              "ALTER TABLE jobs ADD COLUMN tracestate TEXT;"
              "ALTER TABLE jobs ADD COLUMN request_id TEXT;",
              "migrate to format 9 (trace context)");
}

// Format 10 (issue 13, security; docs/storage-format.md, "Format 10"). Additive, one block per
// feature: tables of their own, nothing in the existing tables changes.
Status MigrateTo10(sqlite3* db) {
  // --- API tokens (docs/security.md, "Tokens"). One row per token ever created; a revoked token
  // keeps its row (revoked_at_ms set) so that its name stays taken and listings show it. The
  // secret itself is never stored: `hash` is the SHA-256 of it. `namespaces` is a JSON array of
  // names, or ["*"] for all. Times are Unix milliseconds; NULL: never (expiry, revocation, use).
  YM_RETURN_IF_ERROR(Exec(db,
                          "CREATE TABLE api_tokens ("
                          "  id              TEXT    PRIMARY KEY,"
                          "  name            TEXT    NOT NULL UNIQUE,"
                          "  hash            BLOB    NOT NULL UNIQUE,"
                          "  role            TEXT    NOT NULL,"
                          "  namespaces      TEXT    NOT NULL,"
                          "  created_at_ms   INTEGER NOT NULL,"
                          "  expires_at_ms   INTEGER,"
                          "  revoked_at_ms   INTEGER,"
                          "  last_used_at_ms INTEGER"
                          ") WITHOUT ROWID;",
                          "migrate to format 10 (api tokens)"));
  // --- Audit log (docs/security.md, "Audit log"). Append-only, seq 1, 2, 3... without gaps;
  // each row's `hash` is the SHA-256 of the previous row's hash and this row's fields, so a row
  // changed, deleted or moved breaks the chain from there on. Never a payload.
  return Exec(db,
              "CREATE TABLE audit_log ("
              "  seq        INTEGER PRIMARY KEY,"
              "  at_ms      INTEGER NOT NULL,"
              "  actor      TEXT    NOT NULL,"
              "  action     TEXT    NOT NULL,"
              "  target     TEXT    NOT NULL,"
              "  remote     TEXT    NOT NULL,"
              "  request_id TEXT    NOT NULL,"
              "  detail     TEXT    NOT NULL,"
              "  prev_hash  BLOB    NOT NULL,"
              "  hash       BLOB    NOT NULL"
              ");",
              "migrate to format 10 (audit log)");
}

using Migration = Status (*)(sqlite3*);
constexpr Migration kMigrations[] = {&MigrateTo1, &MigrateTo2, &MigrateTo3, &MigrateTo4,
                                     &MigrateTo5, &MigrateTo6, &MigrateTo7, &MigrateTo8,
                                     &MigrateTo9, &MigrateTo10};
static_assert(std::size(kMigrations) == kSqliteFormatVersion, "one migration per format version");

Status Migrate(sqlite3* db) {
  for (;;) {
    // IMMEDIATE takes the write lock before the version is read, so two processes opening a
    // fresh file cannot both run the same migration.
    YM_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin migration"));
    std::int64_t version = 0;
    Status st = ReadFormatVersion(db, &version);
    if (st.ok() && version > kSqliteFormatVersion) {
      st =
          Corruption("database format version " + std::to_string(version) +
                     " is newer than this build supports (" + std::to_string(kSqliteFormatVersion) +
                     "); run a newer yardmaster or restore a backup");
    }
    if (st.ok() && version == kSqliteFormatVersion) {
      return Exec(db, "COMMIT", "commit migration check");
    }
    if (st.ok()) st = kMigrations[version](db);
    if (st.ok()) {
      std::string sql = "INSERT INTO meta (key, value) VALUES ('format_version', " +
                        std::to_string(version + 1) +
                        ") ON CONFLICT (key) DO UPDATE SET value = excluded.value";
      st = Exec(db, sql.c_str(), "record format version");
    }
    if (st.ok()) st = Exec(db, "COMMIT", "commit migration");
    if (!st.ok()) {
      if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return st;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pragmas, chosen for this workload (append-mostly jobs table, insert + delete per job, group
// commits of ~100 jobs, a writer and a few readers in one process). docs/storage-format.md
// repeats the reasoning for operators.

Status ApplyCommonPragmas(sqlite3* db, int cache_kib) {
  // Live rows cluster at the tail of the rowid b-tree, so the hot set is small; a bounded cache
  // keeps memory predictable. Negative = KiB.
  std::string cache = "PRAGMA cache_size = -" + std::to_string(cache_kib);
  YM_RETURN_IF_ERROR(Exec(db, cache.c_str(), "set cache_size"));
  // ListJobs may sort; keep those temporary b-trees in memory rather than in temp files.
  YM_RETURN_IF_ERROR(Exec(db, "PRAGMA temp_store = MEMORY", "set temp_store"));
  // No mmap: the page cache already holds the hot set, and with mmap an I/O error or a file
  // truncated underneath us becomes SIGBUS instead of an error code we can turn into a Status.
  YM_RETURN_IF_ERROR(Exec(db, "PRAGMA mmap_size = 0", "set mmap_size"));
  // The schema has no views or triggers that need functions; refuse any a foreign file brings.
  YM_RETURN_IF_ERROR(Exec(db, "PRAGMA trusted_schema = OFF", "set trusted_schema"));
  // Readers and the writer never wait on each other in WAL mode; this only rides out a brief
  // lock held by an operator's sqlite3 shell or a checkpoint in another process.
  sqlite3_busy_timeout(db, 2000);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Row decoding. Bad data from the disk is an error value, never an assertion.

Status BadColumn(std::int64_t id, const char* column, const char* why) {
  return Corruption("job " + std::to_string(id) + ": column " + column + " " + why);
}

Status ReadText(sqlite3_stmt* s, int col, std::int64_t id, const char* name, std::string* out) {
  int type = sqlite3_column_type(s, col);
  if (type != SQLITE_TEXT && type != SQLITE_BLOB) return BadColumn(id, name, "is not text");
  const void* p = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_column_text(s, col))
                                      : sqlite3_column_blob(s, col);
  int n = sqlite3_column_bytes(s, col);
  if (n > 0 && p == nullptr) return Corruption("out of memory reading job column");
  out->assign(static_cast<const char*>(p), static_cast<std::size_t>(n));
  return Status::Ok();
}

template <typename Int>
Status ReadInt(sqlite3_stmt* s, int col, std::int64_t id, const char* name, Int* out) {
  if (sqlite3_column_type(s, col) != SQLITE_INTEGER) return BadColumn(id, name, "is not integer");
  std::int64_t v = sqlite3_column_int64(s, col);
  if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max()) {
    return BadColumn(id, name, "is out of range");
  }
  *out = static_cast<Int>(v);
  return Status::Ok();
}

Status ReadReal(sqlite3_stmt* s, int col, std::int64_t id, const char* name, double* out) {
  int type = sqlite3_column_type(s, col);
  if (type != SQLITE_FLOAT && type != SQLITE_INTEGER) return BadColumn(id, name, "is not real");
  *out = sqlite3_column_double(s, col);
  return Status::Ok();
}

// A nullable text column (format 9): NULL reads as empty.
Status ReadOptText(sqlite3_stmt* s, int col, std::int64_t id, const char* name, std::string* out) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) {
    out->clear();
    return Status::Ok();
  }
  return ReadText(s, col, id, name, out);
}

// Binds empty as NULL (none), anything else as text.
int BindOptText(sqlite3_stmt* s, int i, std::string_view v) {
  return v.empty() ? sqlite3_bind_null(s, i) : BindText(s, i, v);
}

// Columns: ns, key, job_id, expires_at_ms, final_state (NULL until the job finished).
Status ReadKey(sqlite3_stmt* s, IdempotencyKeyRecord* k) {
  std::int64_t job_id = 0;
  YM_RETURN_IF_ERROR(ReadText(s, 0, -1, "idempotency_keys.ns", &k->ns));
  YM_RETURN_IF_ERROR(ReadText(s, 1, -1, "idempotency_keys.key", &k->key));
  YM_RETURN_IF_ERROR(ReadInt(s, 2, -1, "idempotency_keys.job_id", &job_id));
  YM_RETURN_IF_ERROR(ReadInt(s, 3, -1, "idempotency_keys.expires_at_ms", &k->expires_at_ms));
  if (job_id < 0) return Corruption("idempotency key with a negative job id");
  k->job_id = static_cast<JobId>(job_id);
  k->final_state.reset();
  if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
    int state = 0;
    YM_RETURN_IF_ERROR(ReadInt(s, 4, -1, "idempotency_keys.final_state", &state));
    if (state < 3 || state > 5) return Corruption("idempotency key with a non-final state");
    k->final_state = static_cast<JobState>(state);
  }
  return Status::Ok();
}

// Returns the JSON column's text, or an empty view for NULL (an empty list).
Status JsonColumn(sqlite3_stmt* s, int col, std::int64_t id, const char* name,
                  rapidjson::Document* doc, bool* present) {
  int type = sqlite3_column_type(s, col);
  *present = false;
  if (type == SQLITE_NULL) return Status::Ok();
  if (type != SQLITE_TEXT) return BadColumn(id, name, "is not text");
  const char* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
  std::size_t n = static_cast<std::size_t>(sqlite3_column_bytes(s, col));
  if (n == 0) return Status::Ok();
  doc->Parse(p, n);
  if (doc->HasParseError()) return BadColumn(id, name, "is not valid JSON");
  if (!doc->IsArray()) return BadColumn(id, name, "is not a JSON array");
  *present = true;
  return Status::Ok();
}

Status DecodeTags(sqlite3_stmt* s, int col, std::int64_t id, std::vector<std::string>* tags) {
  rapidjson::Document doc;
  bool present = false;
  YM_RETURN_IF_ERROR(JsonColumn(s, col, id, "tags", &doc, &present));
  tags->clear();
  if (!present) return Status::Ok();
  tags->reserve(doc.Size());
  for (const auto& v : doc.GetArray()) {
    if (!v.IsString()) return BadColumn(id, "tags", "holds a non-string");
    tags->emplace_back(v.GetString(), v.GetStringLength());
  }
  return Status::Ok();
}

Status DecodeErrors(sqlite3_stmt* s, int col, std::int64_t id, std::vector<AttemptError>* errors) {
  rapidjson::Document doc;
  bool present = false;
  YM_RETURN_IF_ERROR(JsonColumn(s, col, id, "errors", &doc, &present));
  errors->clear();
  if (!present) return Status::Ok();
  errors->reserve(doc.Size());
  for (const auto& v : doc.GetArray()) {
    if (!v.IsObject()) return BadColumn(id, "errors", "holds a non-object");
    auto attempt = v.FindMember("attempt");
    auto type = v.FindMember("type");
    auto message = v.FindMember("message");
    auto at = v.FindMember("at_ms");
    if (attempt == v.MemberEnd() || !attempt->value.IsInt() || type == v.MemberEnd() ||
        !type->value.IsString() || message == v.MemberEnd() || !message->value.IsString() ||
        at == v.MemberEnd() || !at->value.IsInt64()) {
      return BadColumn(id, "errors", "holds a malformed entry");
    }
    AttemptError& e = errors->emplace_back();
    e.attempt = attempt->value.GetInt();
    e.type.assign(type->value.GetString(), type->value.GetStringLength());
    e.message.assign(message->value.GetString(), message->value.GetStringLength());
    e.at_ms = at->value.GetInt64();
  }
  return Status::Ok();
}

// Decodes the current row of a statement selecting kJobColumns.
Status ReadJob(sqlite3_stmt* s, JobRecord* job) {
  if (sqlite3_column_type(s, 0) != SQLITE_INTEGER)
    return Corruption("job row with a non-integer id");
  std::int64_t id = sqlite3_column_int64(s, 0);
  if (id <= 0) return Corruption("job row with id " + std::to_string(id));
  job->id = static_cast<JobId>(id);
  std::uint8_t state = 0;
  int cancel = 0;
  YM_RETURN_IF_ERROR(ReadText(s, 1, id, "ns", &job->ns));
  YM_RETURN_IF_ERROR(ReadText(s, 2, id, "queue", &job->queue));
  YM_RETURN_IF_ERROR(ReadText(s, 3, id, "kind", &job->kind));
  YM_RETURN_IF_ERROR(ReadInt(s, 4, id, "state", &state));
  if (state > 5) return BadColumn(id, "state", "is not a known state");
  job->state = static_cast<JobState>(state);
  YM_RETURN_IF_ERROR(ReadInt(s, 5, id, "priority", &job->priority));
  YM_RETURN_IF_ERROR(ReadText(s, 6, id, "payload", &job->payload));
  YM_RETURN_IF_ERROR(ReadInt(s, 7, id, "run_at_ms", &job->run_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, 8, id, "created_at_ms", &job->created_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, 9, id, "updated_at_ms", &job->updated_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, 10, id, "finished_at_ms", &job->finished_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, 11, id, "attempts", &job->attempts));
  YM_RETURN_IF_ERROR(ReadInt(s, 12, id, "max_attempts", &job->max_attempts));
  YM_RETURN_IF_ERROR(ReadInt(s, 13, id, "runs", &job->runs));
  YM_RETURN_IF_ERROR(ReadInt(s, 14, id, "backoff_initial_ms", &job->backoff.initial_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, 15, id, "backoff_max_ms", &job->backoff.max_ms));
  YM_RETURN_IF_ERROR(ReadReal(s, 16, id, "backoff_multiplier", &job->backoff.multiplier));
  YM_RETURN_IF_ERROR(ReadInt(s, 17, id, "lease_ms", &job->lease_ms));
  YM_RETURN_IF_ERROR(ReadText(s, 18, id, "idempotency_key", &job->idempotency_key));
  YM_RETURN_IF_ERROR(ReadText(s, 19, id, "concurrency_key", &job->concurrency_key));
  YM_RETURN_IF_ERROR(DecodeTags(s, 20, id, &job->tags));
  YM_RETURN_IF_ERROR(DecodeErrors(s, 21, id, &job->errors));
  YM_RETURN_IF_ERROR(ReadText(s, 22, id, "dead_reason", &job->dead_reason));
  YM_RETURN_IF_ERROR(ReadText(s, 23, id, "result", &job->result));
  YM_RETURN_IF_ERROR(ReadInt(s, 24, id, "cancel_requested", &cancel));
  if (cancel != 0 && cancel != 1) return BadColumn(id, "cancel_requested", "is not 0 or 1");
  job->cancel_requested = cancel == 1;
  YM_RETURN_IF_ERROR(ReadInt(s, 25, id, "timeout_ms", &job->timeout_ms));
  if (job->timeout_ms < 0 || job->timeout_ms > AttemptTimeout::kMaxMs) {
    return BadColumn(id, "timeout_ms", "is out of range");
  }
  // Trace context (format 9): what the enqueue validated, so anything else is damage.
  YM_RETURN_IF_ERROR(ReadOptText(s, 26, id, "traceparent", &job->trace.traceparent));
  YM_RETURN_IF_ERROR(ReadOptText(s, 27, id, "tracestate", &job->trace.tracestate));
  YM_RETURN_IF_ERROR(ReadOptText(s, 28, id, "request_id", &job->request_id));
  if (!job->trace.traceparent.empty() && !CheckTraceparent(job->trace.traceparent, "").ok()) {
    return BadColumn(id, "traceparent", "is not a valid traceparent");
  }
  if (job->trace.traceparent.empty() && !job->trace.tracestate.empty()) {
    return BadColumn(id, "tracestate", "is set without a traceparent");
  }
  if (job->trace.tracestate.size() > kMaxTracestateBytes) {
    return BadColumn(id, "tracestate", "is too long");
  }
  job->lease_token = 0;
  job->lease_expires_at_ms = 0;
  job->worker_id.clear();
  job->lease_deadline_at_ms = 0;
  return Status::Ok();
}

// Decodes a leases row (kLeaseColumns from column `col` on) into `job`, whose job row was read:
// the job is active under that lease. A NULL token (a LEFT JOIN that found no lease) leaves the
// job as its row says.
Status ReadLease(sqlite3_stmt* s, int col, JobRecord* job) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return Status::Ok();
  const auto id = static_cast<std::int64_t>(job->id);
  std::int64_t token = 0;
  YM_RETURN_IF_ERROR(ReadInt(s, col, id, "leases.token", &token));
  if (token == 0) return BadColumn(id, "leases.token", "is 0");
  job->lease_token = static_cast<std::uint64_t>(token);  // stored as the same 64 bits, signed
  YM_RETURN_IF_ERROR(ReadInt(s, col + 1, id, "leases.expires_at_ms", &job->lease_expires_at_ms));
  YM_RETURN_IF_ERROR(ReadText(s, col + 2, id, "leases.worker_id", &job->worker_id));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 3, id, "leases.attempts", &job->attempts));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 4, id, "leases.updated_at_ms", &job->updated_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 5, id, "leases.deadline_at_ms", &job->lease_deadline_at_ms));
  job->state = JobState::kActive;
  return Status::Ok();
}

// Decodes an outcomes row (kOutcomeColumns from column `col` on) into `job`, whose job row was
// read: the job is terminal with these fields. A NULL state (a LEFT JOIN that found no outcome)
// leaves the job as its row (and lease) say.
Status ReadOutcome(sqlite3_stmt* s, int col, JobRecord* job) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return Status::Ok();
  const auto id = static_cast<std::int64_t>(job->id);
  std::uint8_t state = 0;
  int cancel = 0;
  YM_RETURN_IF_ERROR(ReadInt(s, col, id, "outcomes.state", &state));
  if (state < 3 || state > 5) return BadColumn(id, "outcomes.state", "is not a final state");
  job->state = static_cast<JobState>(state);
  YM_RETURN_IF_ERROR(ReadInt(s, col + 1, id, "outcomes.priority", &job->priority));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 2, id, "outcomes.run_at_ms", &job->run_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 3, id, "outcomes.updated_at_ms", &job->updated_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 4, id, "outcomes.finished_at_ms", &job->finished_at_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 5, id, "outcomes.attempts", &job->attempts));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 6, id, "outcomes.max_attempts", &job->max_attempts));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 7, id, "outcomes.runs", &job->runs));
  YM_RETURN_IF_ERROR(
      ReadInt(s, col + 8, id, "outcomes.backoff_initial_ms", &job->backoff.initial_ms));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 9, id, "outcomes.backoff_max_ms", &job->backoff.max_ms));
  YM_RETURN_IF_ERROR(
      ReadReal(s, col + 10, id, "outcomes.backoff_multiplier", &job->backoff.multiplier));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 11, id, "outcomes.lease_ms", &job->lease_ms));
  YM_RETURN_IF_ERROR(DecodeErrors(s, col + 12, id, &job->errors));
  YM_RETURN_IF_ERROR(ReadText(s, col + 13, id, "outcomes.dead_reason", &job->dead_reason));
  YM_RETURN_IF_ERROR(ReadText(s, col + 14, id, "outcomes.result", &job->result));
  YM_RETURN_IF_ERROR(ReadInt(s, col + 15, id, "outcomes.cancel_requested", &cancel));
  if (cancel != 0 && cancel != 1)
    return BadColumn(id, "outcomes.cancel_requested", "is not 0 or 1");
  job->cancel_requested = cancel == 1;
  // A finished job holds no lease.
  job->lease_token = 0;
  job->lease_expires_at_ms = 0;
  job->worker_id.clear();
  job->lease_deadline_at_ms = 0;
  return Status::Ok();
}

// `columns` with each name prefixed by `alias` and a dot.
std::string Prefixed(std::string_view columns, std::string_view alias) {
  std::string out(alias);
  out += '.';
  for (char c : columns) {
    out += c;
    if (c == ' ') {
      out += alias;
      out += '.';
    }
  }
  return out;
}

// kJobColumns of `jobs AS j`, kLeaseColumns of `leases AS l` (NULL without a lease), then
// kOutcomeColumns of `outcomes AS o` (NULL without an outcome): what GetJob, ListJobs and
// SearchFinished select, decoded by ReadStoredJob.
std::string JoinedColumns() {
  return "SELECT " + Prefixed(kJobColumns, "j") + ", " + Prefixed(kLeaseColumns, "l") + ", " +
         Prefixed(kOutcomeColumns, "o");
}

constexpr char kJoins[] =
    " LEFT JOIN leases AS l ON l.id = j.id LEFT JOIN outcomes AS o ON o.id = j.id";

std::string JoinedSelect() { return JoinedColumns() + " FROM jobs AS j" + kJoins; }

// Decodes a row of JoinedColumns(): the job row, overlaid by its lease, then by its outcome.
Status ReadStoredJob(sqlite3_stmt* s, JobRecord* job) {
  YM_RETURN_IF_ERROR(ReadJob(s, job));
  YM_RETURN_IF_ERROR(ReadLease(s, kJobColumnCount, job));
  return ReadOutcome(s, kJobColumnCount + kLeaseColumnCount, job);
}

Status SyncDirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory " + dir.string() + " to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync directory " + dir.string());
  return Status::Ok();
}

constexpr int kWriterCacheKib = 32 * 1024;
constexpr int kReaderCacheKib = 8 * 1024;

}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON encoding for the tags and errors columns.

namespace {
// A RapidJSON output stream appending to whichever std::string it currently points at.
struct StringSink {
  using Ch = char;
  std::string* out = nullptr;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};
}  // namespace

struct SqliteStore::JsonScratch {
  StringSink sink;
  rapidjson::Writer<StringSink> writer{sink};
  std::string tags;
  std::string errors;

  // Starts a new document in `buf`; Reset keeps the writer's level stack allocation.
  void Begin(std::string* buf) {
    buf->clear();
    sink.out = buf;
    writer.Reset(sink);
  }
};

int SqliteStore::BindTags(sqlite3_stmt* stmt, int index, const std::vector<std::string>& tags) {
  // NULL costs nothing in the record, and almost every job has no tags.
  if (tags.empty()) return sqlite3_bind_null(stmt, index);
  json_->Begin(&json_->tags);
  auto& w = json_->writer;
  w.StartArray();
  for (const std::string& t : tags) w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
  w.EndArray();
  return BindText(stmt, index, json_->tags);
}

int SqliteStore::BindErrors(sqlite3_stmt* stmt, int index,
                            const std::vector<AttemptError>& errors) {
  if (errors.empty()) return sqlite3_bind_null(stmt, index);
  json_->Begin(&json_->errors);
  auto& w = json_->writer;
  w.StartArray();
  for (const AttemptError& e : errors) {
    w.StartObject();
    w.Key("attempt");
    w.Int(e.attempt);
    w.Key("type");
    w.String(e.type.data(), static_cast<rapidjson::SizeType>(e.type.size()));
    w.Key("message");
    w.String(e.message.data(), static_cast<rapidjson::SizeType>(e.message.size()));
    w.Key("at_ms");
    w.Int64(e.at_ms);
    w.EndObject();
  }
  w.EndArray();
  return BindText(stmt, index, json_->errors);
}

// ---------------------------------------------------------------------------------------------
// Open / close.

SqliteStore::SqliteStore(const SqliteOptions& options)
    : options_(options), json_(std::make_unique<JsonScratch>()) {}

SqliteStore::~SqliteStore() {
  // Readers first: the writer's close is the last one and checkpoints and removes the WAL.
  for (auto& r : readers_) {
    sqlite3_finalize(r->get_job);
    sqlite3_finalize(r->get_key);
    sqlite3_finalize(r->namespace_keys);
    for (auto& [sql, stmt] : r->list_stmts) sqlite3_finalize(stmt);
    sqlite3_close(r->db);
  }
  for (sqlite3_stmt* s : {begin_,
                          insert_audit_,
                          commit_,
                          rollback_,
                          insert_job_,
                          insert_tag_,
                          update_job_,
                          finish_job_,
                          outcome_state_,
                          update_outcome_,
                          delete_outcome_,
                          outcomes_in_range_,
                          put_lease_,
                          put_leases_,
                          delete_lease_,
                          delete_job_range_,
                          delete_lease_range_,
                          release_job_,
                          probe_,
                          delete_job_,
                          delete_any_job_,
                          put_queue_,
                          delete_queue_,
                          put_limit_,
                          delete_limit_,
                          put_namespace_,
                          delete_namespace_,
                          put_schedule_,
                          put_schedule_history_,
                          trim_schedule_history_,
                          delete_schedule_,
                          delete_schedule_history_,
                          put_quota_count_,
                          drop_quota_counts_,
                          put_key_,
                          expire_keys_,
                          finish_key_,
                          delete_key_,
                          purge_oldest_,
                          purge_oldest_jobs_,
                          purge_before_,
                          purge_before_jobs_,
                          oldest_finish_,
                          namespace_pass_,
                          set_next_id_,
                          finish_jobs_,
                          delete_leases_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(writer_);
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  auto store = std::make_unique<SqliteStore>(options);
  Status st = store->Open();
  if (!st.ok()) return st;
  return std::unique_ptr<Store>(std::move(store));
}

Status SqliteStore::Open() {
  YM_RETURN_IF_ERROR(OpenWriter());
  YM_RETURN_IF_ERROR(Migrate(writer_));
  YM_RETURN_IF_ERROR(PrepareWriterStatements());
  YM_RETURN_IF_ERROR(LoadFinishedCounts());

  Stmt q;
  YM_RETURN_IF_ERROR(q.Prepare(writer_, "SELECT value FROM meta WHERE key = 'next_id'"));
  int rc = sqlite3_step(q.get());
  if (rc == SQLITE_ROW) {
    if (sqlite3_column_type(q.get(), 0) != SQLITE_INTEGER || sqlite3_column_int64(q.get(), 0) < 1) {
      return Corruption("meta.next_id is not a positive integer");
    }
    next_id_ = static_cast<JobId>(sqlite3_column_int64(q.get(), 0));
  } else if (rc == SQLITE_DONE) {
    return Corruption("meta table has no next_id row");
  } else {
    return SqlError(writer_, rc, "read next_id");
  }
  // The audit chain continues from its last row, whatever it holds (verifying is `yardmaster
  // audit verify`'s job; a server refusing to start would not undo a tampering).
  Stmt h;
  YM_RETURN_IF_ERROR(
      h.Prepare(writer_, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
  rc = sqlite3_step(h.get());
  if (rc == SQLITE_ROW) {
    audit::Head head;
    head.seq =
        static_cast<std::uint64_t>(std::max<std::int64_t>(sqlite3_column_int64(h.get(), 0), 0));
    const void* blob = sqlite3_column_blob(h.get(), 1);
    const int n = sqlite3_column_bytes(h.get(), 1);
    if (blob != nullptr) {
      std::memcpy(head.hash.data(), blob,
                  std::min<std::size_t>(static_cast<std::size_t>(n), audit::kHashBytes));
    }
    std::lock_guard lk(audit_mu_);
    audit_head_ = head;
  } else if (rc != SQLITE_DONE) {
    return SqlError(writer_, rc, "read the audit log's head");
  }
  return OpenReaders();
}

Status SqliteStore::OpenWriter() {
  // NOMUTEX: we serialise access ourselves (one writer thread, readers behind pool_mu_).
  int rc = sqlite3_open_v2(options_.path.c_str(), &writer_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, Vfs());
  if (rc != SQLITE_OK) return SqlError(writer_, rc, "open " + options_.path);
  sqlite3_extended_result_codes(writer_, 1);
  // SQLite silently falls back to read-only for a file it cannot write; say so at open rather
  // than at the first commit.
  if (sqlite3_db_readonly(writer_, "main") == 1) {
    return IoError(options_.path + " is not writable");
  }

  // WAL: readers never block the writer, and a commit appends to one file (one fsync).
  Stmt wal;
  YM_RETURN_IF_ERROR(wal.Prepare(writer_, "PRAGMA journal_mode = WAL"));
  rc = sqlite3_step(wal.get());
  if (rc != SQLITE_ROW) return SqlError(writer_, rc, "set journal_mode on " + options_.path);
  std::string mode(reinterpret_cast<const char*>(sqlite3_column_text(wal.get(), 0)));
  if (mode != "wal") return IoError("could not put " + options_.path + " in WAL mode: " + mode);

  // kFull: FULL fsyncs the WAL at every commit, which is what makes a 2xx reply durable.
  // kRelaxed: NORMAL, not OFF. In WAL mode NORMAL skips the per-commit fsync (so a power loss
  // may drop the last commits, as kRelaxed promises) but still fsyncs around checkpoints, so the
  // database file itself can never be corrupted; OFF gives up that too for little extra speed.
  // Both survive a process crash: a committed WAL frame is in the OS page cache.
  YM_RETURN_IF_ERROR(Exec(writer_,
                          options_.durability == Durability::kFull ? "PRAGMA synchronous = FULL"
                                                                   : "PRAGMA synchronous = NORMAL",
                          "set synchronous"));
  YM_RETURN_IF_ERROR(ApplyCommonPragmas(writer_, kWriterCacheKib));
  // Read the setting back: what the engine applies is what Stats() (and /v1/info) report.
  Stmt sync;
  YM_RETURN_IF_ERROR(sync.Prepare(writer_, "PRAGMA synchronous"));
  rc = sqlite3_step(sync.get());
  if (rc != SQLITE_ROW) return SqlError(writer_, rc, "read synchronous");
  static constexpr const char* kSyncNames[] = {"off", "normal", "full", "extra"};
  const int level = sqlite3_column_int(sync.get(), 0);
  synchronous_ = level >= 0 && level <= 3 ? kSyncNames[level] : std::to_string(level);
  journal_mode_ = mode;
  // Checkpoint every 1000 pages (~4 MiB of WAL), SQLite's default, set explicitly because it was
  // measured: insert-then-delete keeps rewriting the same few tail pages, so a small WAL stays
  // hot in cache and each checkpoint (run inside Commit) is short. 4096 pages was no faster and
  // 16384 was slower and far noisier (docs/storage-format.md, "Pragmas").
  YM_RETURN_IF_ERROR(Exec(writer_, "PRAGMA wal_autocheckpoint = 1000", "set wal_autocheckpoint"));
  // After a checkpoint resets the WAL, truncate it back so a burst does not leave a huge file.
  YM_RETURN_IF_ERROR(
      Exec(writer_, "PRAGMA journal_size_limit = 67108864", "set journal_size_limit"));
  return Status::Ok();
}

Status SqliteStore::LoadFinishedCounts() {
  int rc;
  // Counted from the retention index (queue, state, ...) alone.
  Stmt q;
  YM_RETURN_IF_ERROR(
      q.Prepare(writer_, "SELECT queue, state, count(*) FROM outcomes GROUP BY queue, state"));
  std::vector<FinishedCount> counts;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    // A row with a state out of range is not counted: reads of it report the corruption, and
    // the store must still open so that the other rows can be served.
    const int state = sqlite3_column_int(q.get(), 1);
    if (state < 3 || state > 5) continue;
    const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0));
    counts.push_back(FinishedCount{name ? name : "", static_cast<JobState>(state),
                                   static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 2))});
  }
  if (rc != SQLITE_DONE) return SqlError(writer_, rc, "count finished jobs");
  finished_.Load(counts);
  return Status::Ok();
}

namespace {
constexpr char kUpdateJobSql[] =
    "UPDATE jobs SET state = ?1, priority = ?2, run_at_ms = ?3, updated_at_ms = ?4, "
    "finished_at_ms = ?5, attempts = ?6, max_attempts = ?7, runs = ?8, backoff_initial_ms = ?9, "
    "backoff_max_ms = ?10, backoff_multiplier = ?11, lease_ms = ?12, errors = ?13, "
    "dead_reason = ?14, result = ?15, cancel_requested = ?16 WHERE id = ?17";
}  // namespace

Status SqliteStore::PrepareWriterStatements() {
  std::string insert_sql = std::string("INSERT INTO jobs (") + kJobColumns +
                           ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  // PutLease for kLeaseChunk rows at once, each only if its job exists and is live.
  std::string put_leases_sql =
      "INSERT OR REPLACE INTO leases (id, token, expires_at_ms, worker_id, attempts, "
      "updated_at_ms, deadline_at_ms) SELECT column1, column2, column3, column4, column5, "
      "column6, column7 FROM (VALUES ";
  for (int r = 0; r < kLeaseChunk; ++r)
    put_leases_sql += r == 0 ? "(?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?)";
  put_leases_sql +=
      ") WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = column1 AND jobs.state < 3) AND NOT "
      "EXISTS (SELECT 1 FROM outcomes WHERE outcomes.id = column1)";
  // A job's finish (UpdateJob to a final state) inserts its outcome row, copying the keys the
  // indexes need from the job row, which it leaves as it is. OR IGNORE: a job that has an
  // outcome already (finished before) is not changed here, nor is a missing one (no job row to
  // join): the caller tells by what was inserted.
  const std::string insert_outcome =
      std::string("INSERT OR IGNORE INTO outcomes (id, ns, queue, kind, created_at_ms, ") +
      kOutcomeColumns + ") ";
  // kFinishChunk rows at once (ApplyFinishRun): the VALUES rows are (id, then the 16 values of
  // kUpdateJobSql in its order).
  std::string finish_sql = insert_outcome +
                           "SELECT j.id, j.ns, j.queue, j.kind, j.created_at_ms, v.column2, "
                           "v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, "
                           "v.column9, v.column10, v.column11, v.column12, v.column13, "
                           "v.column14, v.column15, v.column16, v.column17 FROM (VALUES ";
  std::string delete_leases_sql = "DELETE FROM leases WHERE id IN (";
  for (int r = 0; r < kFinishChunk; ++r) {
    finish_sql += r == 0 ? "(" : ",(";
    for (int c = 0; c < 17; ++c) finish_sql += c == 0 ? "?" : ",?";
    finish_sql += ")";
    delete_leases_sql += r == 0 ? "?" : ",?";
  }
  finish_sql += ") AS v CROSS JOIN jobs AS j ON j.id = v.column1 WHERE true RETURNING id";
  delete_leases_sql += ")";
  const std::pair<sqlite3_stmt**, std::string> stmts[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&finish_jobs_, finish_sql},
      {&delete_leases_, delete_leases_sql},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&insert_job_, insert_sql},
      // The job's tags for the search (job_tags, format 5); a duplicate tag is one row.
      {&insert_tag_, "INSERT OR IGNORE INTO job_tags (id, tag) VALUES (?1, ?2)"},
      // Finished counts (finished_counts.h): the common finish and delete touch a live job, so
      // they are written to do nothing for a finished one (OR IGNORE, NOT EXISTS), and tell by
      // sqlite3_changes() whether a finished job needs the slower, counted path.
      // A job that stays (or becomes again) live: its job row. Its outcome, if it had one (a
      // replay), goes by delete_outcome_.
      {&update_job_, kUpdateJobSql},
      // One job's finish (the parameters of kUpdateJobSql).
      {&finish_job_, insert_outcome +
                         "SELECT j.id, j.ns, j.queue, j.kind, j.created_at_ms, ?1, ?2, ?3, ?4, "
                         "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 FROM jobs AS j "
                         "WHERE j.id = ?17"},
      {&outcome_state_, "SELECT queue, state FROM outcomes WHERE id = ?1"},
      // A finished job finished again (the parameters of kUpdateJobSql).
      {&update_outcome_,
       "UPDATE outcomes SET state = ?1, priority = ?2, run_at_ms = ?3, updated_at_ms = ?4, "
       "finished_at_ms = ?5, attempts = ?6, max_attempts = ?7, runs = ?8, backoff_initial_ms = "
       "?9, backoff_max_ms = ?10, backoff_multiplier = ?11, lease_ms = ?12, errors = ?13, "
       "dead_reason = ?14, result = ?15, cancel_requested = ?16 WHERE id = ?17"},
      {&delete_outcome_, "DELETE FROM outcomes WHERE id = ?1 RETURNING queue, state"},
      {&outcomes_in_range_, "SELECT EXISTS (SELECT 1 FROM outcomes WHERE id BETWEEN ?1 AND ?2)"},
      // The hot path of a lease: one small row in the leases table; the job row is not touched.
      // Only for a live job (UpdateLease of a missing or terminal one is a no-op), so no lease
      // row can outlive its job or sit beside a terminal row.
      {&put_lease_,
       "INSERT OR REPLACE INTO leases (id, token, expires_at_ms, worker_id, attempts, "
       "updated_at_ms, deadline_at_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS "
       "(SELECT 1 FROM jobs WHERE id = ?1 AND state < 3) AND NOT EXISTS "
       "(SELECT 1 FROM outcomes WHERE id = ?1)"},
      {&put_leases_, put_leases_sql},
      {&delete_lease_, "DELETE FROM leases WHERE id = ?1"},
      // Live jobs only: the caller checked that none of the range has an outcome.
      {&delete_job_range_, "DELETE FROM jobs WHERE id BETWEEN ?1 AND ?2"},
      {&delete_lease_range_, "DELETE FROM leases WHERE id BETWEEN ?1 AND ?2"},
      // A lease handed back: the job row takes the state and attempt count again.
      {&release_job_,
       "UPDATE jobs SET state = ?1, attempts = ?2, updated_at_ms = ?3 WHERE id = ?4 AND state < 3 "
       "AND NOT EXISTS (SELECT 1 FROM outcomes WHERE id = ?4)"},
      // The store probe of a degraded broker: rewrites a row with its own value so that the
      // transaction really appends to the WAL and fsyncs, as a real commit would.
      {&probe_, "UPDATE meta SET value = value WHERE key = 'next_id'"},
      // A live job (delete-on-ack): no outcome to remove or count.
      {&delete_job_,
       "DELETE FROM jobs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM outcomes WHERE id = ?1)"},
      {&delete_any_job_, "DELETE FROM jobs WHERE id = ?1"},
      {&put_queue_,
       "INSERT OR REPLACE INTO queues (name, paused, max_attempts, lease_ms, backoff_initial_ms, "
       "backoff_max_ms, backoff_multiplier, retention_succeeded_ms, retention_dead_ms, "
       "retention_cancelled_ms, timeout_ms, retention_max_succeeded, retention_max_dead, "
       "retention_max_cancelled, weight) "
       "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"},
      {&delete_queue_, "DELETE FROM queues WHERE name = ?1"},
      {&put_limit_, "INSERT OR REPLACE INTO limits (name, spec) VALUES (?1, ?2)"},
      {&delete_limit_, "DELETE FROM limits WHERE name = ?1"},
      {&put_namespace_, "INSERT OR REPLACE INTO namespaces (name, spec) VALUES (?1, ?2)"},
      {&delete_namespace_, "DELETE FROM namespaces WHERE name = ?1"},
      {&put_schedule_,
       "INSERT OR REPLACE INTO schedules (id, spec, cursor_ms, paused, anchor_ms, created_at_ms, "
       "updated_at_ms, last_job, last_window_ms, last_enqueued_at_ms, buffered_ms, "
       "next_history_seq) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"},
      {&put_schedule_history_,
       "INSERT OR REPLACE INTO schedule_history (schedule, seq, window_ms, through_ms, emitted, "
       "reason, job_id, at_ms, lag_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"},
      {&trim_schedule_history_, "DELETE FROM schedule_history WHERE schedule = ?1 AND seq < ?2"},
      {&delete_schedule_, "DELETE FROM schedules WHERE id = ?1"},
      {&delete_schedule_history_, "DELETE FROM schedule_history WHERE schedule = ?1"},
      {&put_quota_count_,
       "INSERT OR REPLACE INTO quota_counts (limit_name, key, window_start_ms, used) "
       "VALUES (?1,?2,?3,?4)"},
      {&drop_quota_counts_,
       "DELETE FROM quota_counts WHERE limit_name = ?1 AND window_start_ms < ?2"},
      {&put_key_,
       "INSERT OR REPLACE INTO idempotency_keys (ns, key, job_id, expires_at_ms) "
       "VALUES (?1,?2,?3,?4)"},
      // By the expiry index, the first-expired first, at most ?2 rows (-1: no limit).
      {&expire_keys_,
       "DELETE FROM idempotency_keys WHERE (ns, key) IN (SELECT ns, key FROM idempotency_keys "
       "WHERE expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2)"},
      {&finish_key_,
       "UPDATE idempotency_keys SET final_state = ?4 WHERE ns = ?1 AND key = ?2 AND job_id = ?3"},
      {&delete_key_, "DELETE FROM idempotency_keys WHERE ns = ?1 AND key = ?2 AND job_id = ?3"},
      // Retention, by the finish index (sqlite_store.h explains the plans).
      {&purge_oldest_jobs_, kPurgeOldestJobsSql},
      {&purge_oldest_, kPurgeOldestSql},
      {&purge_before_jobs_, kPurgeBeforeJobsSql},
      {&purge_before_, kPurgeBeforeSql},
      {&oldest_finish_, kOldestFinishSql},
      {&namespace_pass_, kNamespacePassSql},
      {&set_next_id_, "UPDATE meta SET value = ?1 WHERE key = 'next_id'"},
      {&insert_audit_,
       "INSERT INTO audit_log (seq, at_ms, actor, action, target, remote, request_id, detail, "
       "prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"},
  };
  for (const auto& [slot, sql] : stmts) {
    int rc = sqlite3_prepare_v3(writer_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, slot, nullptr);
    if (rc != SQLITE_OK) return SqlError(writer_, rc, "prepare \"" + sql + "\"");
  }
  return Status::Ok();
}

Status SqliteStore::OpenReaders() {
  int n = std::max(1, options_.reader_connections);
  std::string get_sql = JoinedSelect() + " WHERE j.id = ?1";
  for (int i = 0; i < n; ++i) {
    auto r = std::make_unique<Reader>();
    int rc = sqlite3_open_v2(options_.path.c_str(), &r->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, Vfs());
    if (rc != SQLITE_OK) {
      Status st = SqlError(r->db, rc, "open reader on " + options_.path);
      sqlite3_close(r->db);
      return st;
    }
    sqlite3_extended_result_codes(r->db, 1);
    Status st = ApplyCommonPragmas(r->db, kReaderCacheKib);
    if (st.ok()) {
      rc = sqlite3_prepare_v3(r->db, get_sql.c_str(), static_cast<int>(get_sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &r->get_job, nullptr);
      if (rc != SQLITE_OK) st = SqlError(r->db, rc, "prepare GetJob");
    }
    readers_.push_back(std::move(r));  // owned now, so the destructor closes it on error too
    if (!st.ok()) return st;
  }
  std::lock_guard<std::mutex> lock(pool_mu_);
  for (auto& r : readers_) free_readers_.push_back(r.get());
  return Status::Ok();
}

SqliteStore::Reader* SqliteStore::AcquireReader() {
  std::unique_lock<std::mutex> lock(pool_mu_);
  pool_cv_.wait(lock, [this] { return !free_readers_.empty(); });
  Reader* r = free_readers_.back();
  free_readers_.pop_back();
  return r;
}

void SqliteStore::ReleaseReader(Reader* reader) {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    free_readers_.push_back(reader);
  }
  pool_cv_.notify_one();
}

class SqliteStore::ReaderLease {
 public:
  explicit ReaderLease(SqliteStore* store) : store_(store), reader_(store->AcquireReader()) {}
  ~ReaderLease() { store_->ReleaseReader(reader_); }
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  Reader* operator->() const { return reader_; }
  Reader& operator*() const { return *reader_; }

 private:
  SqliteStore* store_;
  Reader* reader_;
};

// ---------------------------------------------------------------------------------------------
// Commit.

Status SqliteStore::ApplyInsert(const JobRecord& j) {
  if (j.id == 0 || !IdInRange(j.id))
    return IoError("insert of job with invalid id " + std::to_string(j.id));
  sqlite3_stmt* s = insert_job_;
  int rc = sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(j.id));
  rc |= BindText(s, 2, j.ns);
  rc |= BindText(s, 3, j.queue);
  rc |= BindText(s, 4, j.kind);
  rc |= sqlite3_bind_int(s, 5, static_cast<int>(j.state));
  rc |= sqlite3_bind_int(s, 6, j.priority);
  rc |= BindText(s, 7, j.payload);
  rc |= sqlite3_bind_int64(s, 8, j.run_at_ms);
  rc |= sqlite3_bind_int64(s, 9, j.created_at_ms);
  rc |= sqlite3_bind_int64(s, 10, j.updated_at_ms);
  rc |= sqlite3_bind_int64(s, 11, j.finished_at_ms);
  rc |= sqlite3_bind_int(s, 12, j.attempts);
  rc |= sqlite3_bind_int(s, 13, j.max_attempts);
  rc |= sqlite3_bind_int(s, 14, j.runs);
  rc |= sqlite3_bind_int64(s, 15, j.backoff.initial_ms);
  rc |= sqlite3_bind_int64(s, 16, j.backoff.max_ms);
  rc |= sqlite3_bind_double(s, 17, j.backoff.multiplier);
  rc |= sqlite3_bind_int64(s, 18, j.lease_ms);
  rc |= BindText(s, 19, j.idempotency_key);
  rc |= BindText(s, 20, j.concurrency_key);
  rc |= BindTags(s, 21, j.tags);
  rc |= BindErrors(s, 22, j.errors);
  rc |= BindText(s, 23, j.dead_reason);
  rc |= BindText(s, 24, j.result);
  rc |= sqlite3_bind_int(s, 25, j.cancel_requested ? 1 : 0);
  rc |= sqlite3_bind_int64(s, 26, j.timeout_ms);
  rc |= BindOptText(s, 27, j.trace.traceparent);
  rc |= BindOptText(s, 28, j.trace.tracestate);
  rc |= BindOptText(s, 29, j.request_id);
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError("bind insert of job " + std::to_string(j.id) + ": " + sqlite3_errmsg(writer_));
  }
  YM_RETURN_IF_ERROR(StepDone(writer_, s, "insert job", static_cast<std::int64_t>(j.id)));
  for (const std::string& tag : j.tags) {
    rc = sqlite3_bind_int64(insert_tag_, 1, static_cast<std::int64_t>(j.id));
    rc |= BindText(insert_tag_, 2, tag);
    if (rc != SQLITE_OK) {
      sqlite3_reset(insert_tag_);
      return IoError("bind tag of job " + std::to_string(j.id) + ": " + sqlite3_errmsg(writer_));
    }
    YM_RETURN_IF_ERROR(
        StepDone(writer_, insert_tag_, "insert job tag", static_cast<std::int64_t>(j.id)));
  }
  if (IsTerminal(j.state)) {
    // Inserted finished (tests, imports): its outcome row says so, as a finish would.
    if (BindUpdate(finish_job_, j) != SQLITE_OK) {
      sqlite3_reset(finish_job_);
      return IoError("bind outcome of job " + std::to_string(j.id) + ": " +
                     sqlite3_errmsg(writer_));
    }
    return StepDone(writer_, finish_job_, "insert outcome", static_cast<std::int64_t>(j.id));
  }
  if (HasLease(j.state, j.lease_token)) {
    return PutLease(j.id, j.lease_token, j.lease_expires_at_ms, j.worker_id, j.attempts,
                    j.updated_at_ms, j.lease_deadline_at_ms);
  }
  return Status::Ok();
}

Status SqliteStore::PutLease(JobId id, std::uint64_t token, std::int64_t expires_at_ms,
                             std::string_view worker_id, std::int32_t attempts,
                             std::int64_t updated_at_ms, std::int64_t deadline_at_ms) {
  sqlite3_stmt* s = put_lease_;
  int rc = sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(id));
  rc |= sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(token));
  rc |= sqlite3_bind_int64(s, 3, expires_at_ms);
  rc |= BindText(s, 4, worker_id);
  rc |= sqlite3_bind_int(s, 5, attempts);
  rc |= sqlite3_bind_int64(s, 6, updated_at_ms);
  rc |= sqlite3_bind_int64(s, 7, deadline_at_ms);
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError("bind lease of job " + std::to_string(id) + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, s, "put lease", static_cast<std::int64_t>(id));
}

Status SqliteStore::PutLeases(const std::vector<const UpdateLease*>& leases) {
  std::size_t i = 0;
  for (; i + kLeaseChunk <= leases.size(); i += kLeaseChunk) {
    sqlite3_stmt* s = put_leases_;
    int rc = SQLITE_OK;
    for (int r = 0; r < kLeaseChunk; ++r) {
      const UpdateLease& l = *leases[i + static_cast<std::size_t>(r)];
      const int b = r * 7;
      // An id out of SQLite's range binds as a negative id, which no job has: a no-op.
      rc |= sqlite3_bind_int64(s, b + 1, static_cast<std::int64_t>(l.id));
      rc |= sqlite3_bind_int64(s, b + 2, static_cast<std::int64_t>(l.token));
      rc |= sqlite3_bind_int64(s, b + 3, l.expires_at_ms);
      rc |= BindText(s, b + 4, l.worker_id);
      rc |= sqlite3_bind_int(s, b + 5, l.attempts);
      rc |= sqlite3_bind_int64(s, b + 6, l.updated_at_ms);
      rc |= sqlite3_bind_int64(s, b + 7, l.deadline_at_ms);
    }
    if (rc != SQLITE_OK) {
      sqlite3_reset(s);
      return IoError(std::string("bind leases: ") + sqlite3_errmsg(writer_));
    }
    YM_RETURN_IF_ERROR(StepDone(writer_, s, "put leases"));
  }
  for (; i < leases.size(); ++i) {
    const UpdateLease& l = *leases[i];
    if (!IdInRange(l.id)) continue;  // no such job can exist
    YM_RETURN_IF_ERROR(PutLease(l.id, l.token, l.expires_at_ms, l.worker_id, l.attempts,
                                l.updated_at_ms, l.deadline_at_ms));
  }
  return Status::Ok();
}

Status SqliteStore::DeleteLease(JobId id) {
  sqlite3_bind_int64(delete_lease_, 1, static_cast<std::int64_t>(id));
  return StepDone(writer_, delete_lease_, "delete lease", static_cast<std::int64_t>(id));
}

int SqliteStore::BindUpdate(sqlite3_stmt* s, const JobRecord& j) {
  int rc = sqlite3_bind_int(s, 1, static_cast<int>(j.state));
  rc |= sqlite3_bind_int(s, 2, j.priority);
  rc |= sqlite3_bind_int64(s, 3, j.run_at_ms);
  rc |= sqlite3_bind_int64(s, 4, j.updated_at_ms);
  rc |= sqlite3_bind_int64(s, 5, j.finished_at_ms);
  rc |= sqlite3_bind_int(s, 6, j.attempts);
  rc |= sqlite3_bind_int(s, 7, j.max_attempts);
  rc |= sqlite3_bind_int(s, 8, j.runs);
  rc |= sqlite3_bind_int64(s, 9, j.backoff.initial_ms);
  rc |= sqlite3_bind_int64(s, 10, j.backoff.max_ms);
  rc |= sqlite3_bind_double(s, 11, j.backoff.multiplier);
  rc |= sqlite3_bind_int64(s, 12, j.lease_ms);
  rc |= BindErrors(s, 13, j.errors);
  rc |= BindText(s, 14, j.dead_reason);
  rc |= BindText(s, 15, j.result);
  rc |= sqlite3_bind_int(s, 16, j.cancel_requested ? 1 : 0);
  rc |= sqlite3_bind_int64(s, 17, static_cast<std::int64_t>(j.id));
  return rc;
}

Status SqliteStore::ApplyUpdate(const JobRecord& j) {
  if (!IdInRange(j.id)) return IoError("update of job with invalid id " + std::to_string(j.id));
  const auto id = static_cast<std::int64_t>(j.id);
  auto bind_error = [&](sqlite3_stmt* s) {
    sqlite3_reset(s);
    return IoError("bind update of job " + std::to_string(j.id) + ": " + sqlite3_errmsg(writer_));
  };
  if (IsTerminal(j.state)) {
    // The common case: a live job finishes. Its outcome row is inserted; the job row is left
    // as it is (the outcome overrides it).
    if (BindUpdate(finish_job_, j) != SQLITE_OK) return bind_error(finish_job_);
    YM_RETURN_IF_ERROR(StepDone(writer_, finish_job_, "finish job", id));
    if (sqlite3_changes(writer_) == 1) {
      // UpdateJob carries the job's queue (store/batch.h).
      finished_.AddPending(j.queue, j.state, 1);
      return DeleteLease(j.id);
    }
    // Finished already (its outcome is rewritten, counted), or missing (a no-op).
    if (sqlite3_bind_int64(outcome_state_, 1, id) != SQLITE_OK) return bind_error(outcome_state_);
    int rc = sqlite3_step(outcome_state_);
    if (rc == SQLITE_DONE) {
      sqlite3_reset(outcome_state_);
      return Status::Ok();  // no such job: a no-op
    }
    if (rc != SQLITE_ROW) {
      Status st = SqlError(writer_, rc, "read outcome of job " + std::to_string(j.id));
      sqlite3_reset(outcome_state_);
      return st;
    }
    const auto* q = reinterpret_cast<const char*>(sqlite3_column_text(outcome_state_, 0));
    const std::string queue = q != nullptr ? q : "";
    const int old_state = sqlite3_column_int(outcome_state_, 1);
    sqlite3_reset(outcome_state_);
    if (BindUpdate(update_outcome_, j) != SQLITE_OK) return bind_error(update_outcome_);
    YM_RETURN_IF_ERROR(StepDone(writer_, update_outcome_, "update outcome", id));
    if (old_state >= 3 && old_state <= 5) {
      finished_.AddPending(queue, static_cast<JobState>(old_state), -1);
    }
    finished_.AddPending(queue, j.state, 1);
    return DeleteLease(j.id);
  }
  // Live: the job row takes every field; an outcome it had (a replay of a finished job) goes.
  if (BindUpdate(update_job_, j) != SQLITE_OK) return bind_error(update_job_);
  YM_RETURN_IF_ERROR(StepDone(writer_, update_job_, "update job", id));
  if (sqlite3_changes(writer_) == 0) return Status::Ok();  // no such job: a no-op
  YM_RETURN_IF_ERROR(DeleteOutcome(j.id));
  // The record carries the job's lease, if any: it replaces the stored one, or its absence
  // ends it (a failed or expired attempt).
  if (HasLease(j.state, j.lease_token)) {
    return PutLease(j.id, j.lease_token, j.lease_expires_at_ms, j.worker_id, j.attempts,
                    j.updated_at_ms, j.lease_deadline_at_ms);
  }
  return DeleteLease(j.id);
}

Status SqliteStore::DeleteOutcome(JobId id) {
  sqlite3_bind_int64(delete_outcome_, 1, static_cast<std::int64_t>(id));
  int rc;
  while ((rc = sqlite3_step(delete_outcome_)) == SQLITE_ROW) {
    const auto* q = reinterpret_cast<const char*>(sqlite3_column_text(delete_outcome_, 0));
    const int state = sqlite3_column_int(delete_outcome_, 1);
    if (state >= 3 && state <= 5) {
      finished_.AddPending(q != nullptr ? q : "", static_cast<JobState>(state), -1);
    }
  }
  Status st;
  if (rc != SQLITE_DONE) st = SqlError(writer_, rc, "delete outcome of job " + std::to_string(id));
  sqlite3_reset(delete_outcome_);
  return st;
}

Status SqliteStore::ApplyUpdateLease(const UpdateLease& l) {
  if (!IdInRange(l.id)) return Status::Ok();  // no such row can exist
  if (HasLease(l.state, l.token)) {
    // Leased or extended: the job row keeps what it said before (ready), the lease row says
    // active and carries the attempt count.
    return PutLease(l.id, l.token, l.expires_at_ms, l.worker_id, l.attempts, l.updated_at_ms,
                    l.deadline_at_ms);
  }
  // Handed back (rare: a long-poll whose client went away): the job row takes the state and
  // the attempt count again, and the lease row goes.
  sqlite3_stmt* s = release_job_;
  int rc = sqlite3_bind_int(s, 1, static_cast<int>(l.state));
  rc |= sqlite3_bind_int(s, 2, l.attempts);
  rc |= sqlite3_bind_int64(s, 3, l.updated_at_ms);
  rc |= sqlite3_bind_int64(s, 4, static_cast<std::int64_t>(l.id));
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError("bind lease of job " + std::to_string(l.id) + ": " + sqlite3_errmsg(writer_));
  }
  YM_RETURN_IF_ERROR(StepDone(writer_, s, "release lease", static_cast<std::int64_t>(l.id)));
  return DeleteLease(l.id);
}

Status SqliteStore::ApplyFinishRun(const std::vector<const JobRecord*>& run) {
  std::size_t i = 0;
  for (; i + kFinishChunk <= run.size(); i += kFinishChunk) {
    // One statement applies its rows as a set, so they must be distinct jobs (they are: a job
    // finishes once until something else, e.g. a replay, changes it); else one by one, in order.
    bool distinct = true;
    for (int a = 0; a < kFinishChunk && distinct; ++a) {
      for (int b = a + 1; b < kFinishChunk; ++b) {
        if (run[i + static_cast<std::size_t>(a)]->id == run[i + static_cast<std::size_t>(b)]->id) {
          distinct = false;
          break;
        }
      }
    }
    if (!distinct) {
      for (int r = 0; r < kFinishChunk; ++r) {
        YM_RETURN_IF_ERROR(ApplyUpdate(*run[i + static_cast<std::size_t>(r)]));
      }
      continue;
    }
    sqlite3_stmt* s = finish_jobs_;
    int rc = SQLITE_OK;
    for (int r = 0; r < kFinishChunk; ++r) {
      const JobRecord& j = *run[i + static_cast<std::size_t>(r)];
      const int b = r * 17;
      rc |= sqlite3_bind_int64(s, b + 1, static_cast<std::int64_t>(j.id));
      rc |= sqlite3_bind_int(s, b + 2, static_cast<int>(j.state));
      rc |= sqlite3_bind_int(s, b + 3, j.priority);
      rc |= sqlite3_bind_int64(s, b + 4, j.run_at_ms);
      rc |= sqlite3_bind_int64(s, b + 5, j.updated_at_ms);
      rc |= sqlite3_bind_int64(s, b + 6, j.finished_at_ms);
      rc |= sqlite3_bind_int(s, b + 7, j.attempts);
      rc |= sqlite3_bind_int(s, b + 8, j.max_attempts);
      rc |= sqlite3_bind_int(s, b + 9, j.runs);
      rc |= sqlite3_bind_int64(s, b + 10, j.backoff.initial_ms);
      rc |= sqlite3_bind_int64(s, b + 11, j.backoff.max_ms);
      rc |= sqlite3_bind_double(s, b + 12, j.backoff.multiplier);
      rc |= sqlite3_bind_int64(s, b + 13, j.lease_ms);
      if (j.errors.empty()) {
        rc |= sqlite3_bind_null(s, b + 14);
      } else {
        // BindErrors encodes into one scratch buffer, which the next row reuses: copy it.
        rc |= BindErrors(s, b + 14, j.errors);
        rc |= sqlite3_bind_text(s, b + 14, json_->errors.data(),
                                static_cast<int>(json_->errors.size()), SQLITE_TRANSIENT);
      }
      rc |= BindText(s, b + 15, j.dead_reason);
      rc |= BindText(s, b + 16, j.result);
      rc |= sqlite3_bind_int(s, b + 17, j.cancel_requested ? 1 : 0);
      rc |= sqlite3_bind_int64(delete_leases_, r + 1, static_cast<std::int64_t>(j.id));
    }
    if (rc != SQLITE_OK) {
      sqlite3_reset(s);
      sqlite3_reset(delete_leases_);
      return IoError(std::string("bind finished jobs: ") + sqlite3_errmsg(writer_));
    }
    finished_ids_.clear();
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      finished_ids_.push_back(static_cast<JobId>(sqlite3_column_int64(s, 0)));
    }
    Status st;
    if (rc != SQLITE_DONE) st = SqlError(writer_, rc, "finish jobs");
    sqlite3_reset(s);
    if (!st.ok()) {
      sqlite3_reset(delete_leases_);
      return st;
    }
    YM_RETURN_IF_ERROR(StepDone(writer_, delete_leases_, "delete leases"));
    std::sort(finished_ids_.begin(), finished_ids_.end());
    for (int r = 0; r < kFinishChunk; ++r) {
      const JobRecord& j = *run[i + static_cast<std::size_t>(r)];
      if (std::binary_search(finished_ids_.begin(), finished_ids_.end(), j.id)) {
        finished_.AddPending(j.queue, j.state, 1);  // a live job got its outcome
      } else {
        // Terminal already, or missing: the counted one-by-one path (its lease row, if any,
        // is gone already, as ApplyUpdate would have removed it).
        YM_RETURN_IF_ERROR(ApplyUpdate(j));
      }
    }
  }
  for (; i < run.size(); ++i) YM_RETURN_IF_ERROR(ApplyUpdate(*run[i]));
  return Status::Ok();
}

Status SqliteStore::ApplyDelete(JobId id) {
  if (!IdInRange(id)) return Status::Ok();  // no such row can exist
  const auto sid = static_cast<std::int64_t>(id);
  sqlite3_bind_int64(delete_job_, 1, sid);
  YM_RETURN_IF_ERROR(StepDone(writer_, delete_job_, "delete job", sid));
  if (sqlite3_changes(writer_) == 0) {
    // A finished job (or none): its outcome goes, counted, then its job row.
    YM_RETURN_IF_ERROR(DeleteOutcome(id));
    sqlite3_bind_int64(delete_any_job_, 1, sid);
    YM_RETURN_IF_ERROR(StepDone(writer_, delete_any_job_, "delete job", sid));
  }
  // An acked job's lease row goes with it, in the same transaction.
  return DeleteLease(id);
}

Status SqliteStore::ApplyDeleteRange(JobId first, JobId last) {
  if (!IdInRange(first) || !IdInRange(last)) {
    // Outside what SQLite stores: delete one by one (each is a no-op past the range).
    for (JobId id = first; id <= last && id >= first; ++id) YM_RETURN_IF_ERROR(ApplyDelete(id));
    return Status::Ok();
  }
  // The range delete takes live jobs only; a range holding a finished one (one probe of the
  // outcomes table tells) goes one by one, counted (finished_counts.h).
  sqlite3_bind_int64(outcomes_in_range_, 1, static_cast<std::int64_t>(first));
  sqlite3_bind_int64(outcomes_in_range_, 2, static_cast<std::int64_t>(last));
  int rc = sqlite3_step(outcomes_in_range_);
  const bool any_finished = rc == SQLITE_ROW && sqlite3_column_int(outcomes_in_range_, 0) != 0;
  Status st;
  if (rc != SQLITE_ROW) st = SqlError(writer_, rc, "read outcomes of a range");
  sqlite3_reset(outcomes_in_range_);
  YM_RETURN_IF_ERROR(st);
  if (any_finished) {
    for (JobId id = first; id <= last; ++id) YM_RETURN_IF_ERROR(ApplyDelete(id));
    return Status::Ok();
  }
  for (sqlite3_stmt* s : {delete_job_range_, delete_lease_range_}) {
    sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(first));
    sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(last));
    YM_RETURN_IF_ERROR(StepDone(writer_, s, "delete jobs from", static_cast<std::int64_t>(first)));
  }
  return Status::Ok();
}

Status SqliteStore::ApplyPutQueue(const QueueConfig& c) {
  sqlite3_stmt* s = put_queue_;
  int rc = BindText(s, 1, c.name);
  rc |= sqlite3_bind_int(s, 2, c.paused ? 1 : 0);
  rc |= sqlite3_bind_int(s, 3, c.max_attempts);
  rc |= sqlite3_bind_int64(s, 4, c.lease_ms);
  rc |= sqlite3_bind_int64(s, 5, c.backoff.initial_ms);
  rc |= sqlite3_bind_int64(s, 6, c.backoff.max_ms);
  rc |= sqlite3_bind_double(s, 7, c.backoff.multiplier);
  rc |= sqlite3_bind_int64(s, 8, c.retention.succeeded_ms);
  rc |= sqlite3_bind_int64(s, 9, c.retention.dead_ms);
  rc |= sqlite3_bind_int64(s, 10, c.retention.cancelled_ms);
  rc |= sqlite3_bind_int64(s, 11, c.timeout_ms);
  rc |= sqlite3_bind_int64(s, 12, c.retention.max_succeeded);
  rc |= sqlite3_bind_int64(s, 13, c.retention.max_dead);
  rc |= sqlite3_bind_int64(s, 14, c.retention.max_cancelled);
  rc |= sqlite3_bind_int64(s, 15, c.weight);
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError("bind queue " + c.name + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, s, "put queue");
}

Status SqliteStore::ApplyDeleteQueue(const std::string& name) {
  if (BindText(delete_queue_, 1, name) != SQLITE_OK) {
    sqlite3_reset(delete_queue_);
    return IoError("bind queue " + name + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, delete_queue_, "delete queue");
}

Status SqliteStore::ApplyPutSchedule(const PutSchedule& m) {
  const cron::ScheduleRow& r = m.row;
  const cron::ScheduleState& st = r.state;
  sqlite3_stmt* s = put_schedule_;
  int rc = BindText(s, 1, r.id);
  rc |= BindText(s, 2, r.spec_json);
  rc |= sqlite3_bind_int64(s, 3, st.cursor_ms);
  rc |= sqlite3_bind_int(s, 4, st.paused ? 1 : 0);
  rc |= sqlite3_bind_int64(s, 5, st.anchor_ms);
  rc |= sqlite3_bind_int64(s, 6, st.created_at_ms);
  rc |= sqlite3_bind_int64(s, 7, st.updated_at_ms);
  rc |= sqlite3_bind_int64(s, 8, static_cast<std::int64_t>(st.last_job));
  rc |= sqlite3_bind_int64(s, 9, st.last_window_ms);
  rc |= sqlite3_bind_int64(s, 10, st.last_enqueued_at_ms);
  rc |= st.buffered_ms ? sqlite3_bind_int64(s, 11, *st.buffered_ms) : sqlite3_bind_null(s, 11);
  rc |= sqlite3_bind_int64(s, 12, static_cast<std::int64_t>(st.next_history_seq));
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError("bind schedule " + r.id + ": " + sqlite3_errmsg(writer_));
  }
  YM_RETURN_IF_ERROR(StepDone(writer_, s, "put schedule"));
  if (r.new_history.empty()) return Status::Ok();
  for (const cron::HistoryEntry& e : r.new_history) {
    sqlite3_stmt* h = put_schedule_history_;
    rc = BindText(h, 1, r.id);
    rc |= sqlite3_bind_int64(h, 2, static_cast<std::int64_t>(e.seq));
    rc |= sqlite3_bind_int64(h, 3, e.window_ms);
    rc |= sqlite3_bind_int64(h, 4, e.through_ms);
    rc |= sqlite3_bind_int(h, 5, e.emitted ? 1 : 0);
    rc |= BindText(h, 6, e.reason);
    rc |= sqlite3_bind_int64(h, 7, static_cast<std::int64_t>(e.job_id));
    rc |= sqlite3_bind_int64(h, 8, e.at_ms);
    rc |= sqlite3_bind_int64(h, 9, e.lag_ms);
    if (rc != SQLITE_OK) {
      sqlite3_reset(h);
      return IoError("bind schedule history " + r.id + ": " + sqlite3_errmsg(writer_));
    }
    YM_RETURN_IF_ERROR(StepDone(writer_, h, "put schedule history"));
  }
  // Keep the newest kScheduleHistory: seqs below next - kScheduleHistory go (by primary key).
  const std::int64_t keep_from = static_cast<std::int64_t>(st.next_history_seq) -
                                 static_cast<std::int64_t>(PutSchedule::kScheduleHistory);
  if (keep_from <= 1) return Status::Ok();
  rc = BindText(trim_schedule_history_, 1, r.id);
  rc |= sqlite3_bind_int64(trim_schedule_history_, 2, keep_from);
  if (rc != SQLITE_OK) {
    sqlite3_reset(trim_schedule_history_);
    return IoError("bind schedule history trim " + r.id + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, trim_schedule_history_, "trim schedule history");
}

Status SqliteStore::ApplyDeleteSchedule(const std::string& id) {
  for (sqlite3_stmt* s : {delete_schedule_, delete_schedule_history_}) {
    if (BindText(s, 1, id) != SQLITE_OK) {
      sqlite3_reset(s);
      return IoError("bind schedule " + id + ": " + sqlite3_errmsg(writer_));
    }
    YM_RETURN_IF_ERROR(StepDone(writer_, s, "delete schedule"));
  }
  return Status::Ok();
}

Status SqliteStore::ApplyPutLimit(const PutLimit& m) {
  int rc = BindText(put_limit_, 1, m.name);
  rc |= BindText(put_limit_, 2, m.spec_json);
  if (rc != SQLITE_OK) {
    sqlite3_reset(put_limit_);
    return IoError("bind limit " + m.name + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, put_limit_, "put limit");
}

Status SqliteStore::ApplyPutNamespace(const PutNamespace& m) {
  int rc = BindText(put_namespace_, 1, m.name);
  rc |= BindText(put_namespace_, 2, m.spec_json);
  if (rc != SQLITE_OK) {
    sqlite3_reset(put_namespace_);
    return IoError("bind namespace " + m.name + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, put_namespace_, "put namespace");
}

Status SqliteStore::ApplyDeleteNamespace(const std::string& name) {
  if (BindText(delete_namespace_, 1, name) != SQLITE_OK) {
    sqlite3_reset(delete_namespace_);
    return IoError("bind namespace " + name + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, delete_namespace_, "delete namespace");
}

Status SqliteStore::ApplyDeleteLimit(const std::string& name) {
  if (BindText(delete_limit_, 1, name) != SQLITE_OK) {
    sqlite3_reset(delete_limit_);
    return IoError("bind limit " + name + ": " + sqlite3_errmsg(writer_));
  }
  YM_RETURN_IF_ERROR(StepDone(writer_, delete_limit_, "delete limit"));
  return ApplyDropQuotaCounts(name, std::numeric_limits<std::int64_t>::max());
}

Status SqliteStore::ApplyDropQuotaCounts(const std::string& limit, std::int64_t before_ms) {
  int rc = BindText(drop_quota_counts_, 1, limit);
  rc |= sqlite3_bind_int64(drop_quota_counts_, 2, before_ms);
  if (rc != SQLITE_OK) {
    sqlite3_reset(drop_quota_counts_);
    return IoError("bind quota counts of " + limit + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, drop_quota_counts_, "drop quota counts");
}

Status SqliteStore::ApplyPutQuotaCount(const PutQuotaCount& m) {
  if (m.drop_before_ms != std::numeric_limits<std::int64_t>::min()) {
    YM_RETURN_IF_ERROR(ApplyDropQuotaCounts(m.limit, m.drop_before_ms));
  }
  int rc = BindText(put_quota_count_, 1, m.limit);
  rc |= BindText(put_quota_count_, 2, m.key);
  rc |= sqlite3_bind_int64(put_quota_count_, 3, m.window_start_ms);
  rc |= sqlite3_bind_int64(put_quota_count_, 4, m.used);
  if (rc != SQLITE_OK) {
    sqlite3_reset(put_quota_count_);
    return IoError("bind quota count of " + m.limit + ": " + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, put_quota_count_, "put quota count");
}

Status SqliteStore::ApplyPutKey(const PutIdempotencyKey& k) {
  if (!IdInRange(k.job_id)) return IoError("idempotency key for invalid job id");
  sqlite3_stmt* s = put_key_;
  int rc = BindText(s, 1, k.ns);
  rc |= BindText(s, 2, k.key);
  rc |= sqlite3_bind_int64(s, 3, static_cast<std::int64_t>(k.job_id));
  rc |= sqlite3_bind_int64(s, 4, k.expires_at_ms);
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError(std::string("bind idempotency key: ") + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, s, "put idempotency key");
}

Status SqliteStore::ApplyExpireKeys(const ExpireIdempotencyKeys& e) {
  sqlite3_bind_int64(expire_keys_, 1, e.before_ms);
  sqlite3_bind_int64(expire_keys_, 2, e.limit == 0 ? -1 : static_cast<std::int64_t>(e.limit));
  return StepDone(writer_, expire_keys_, "expire idempotency keys");
}

Status SqliteStore::ApplyFinishKey(const FinishIdempotencyKey& f) {
  if (!IdInRange(f.job_id)) return IoError("idempotency key for invalid job id");
  sqlite3_stmt* s = finish_key_;
  int rc = BindText(s, 1, f.ns);
  rc |= BindText(s, 2, f.key);
  rc |= sqlite3_bind_int64(s, 3, static_cast<std::int64_t>(f.job_id));
  rc |= sqlite3_bind_int(s, 4, static_cast<int>(f.state));
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError(std::string("bind idempotency key: ") + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, s, "finish idempotency key");
}

Status SqliteStore::ApplyDeleteKey(const DeleteIdempotencyKey& d) {
  if (!IdInRange(d.job_id)) return IoError("idempotency key delete for invalid job id");
  sqlite3_stmt* s = delete_key_;
  int rc = BindText(s, 1, d.ns);
  rc |= BindText(s, 2, d.key);
  rc |= sqlite3_bind_int64(s, 3, static_cast<std::int64_t>(d.job_id));
  if (rc != SQLITE_OK) {
    sqlite3_reset(s);
    return IoError(std::string("bind idempotency key: ") + sqlite3_errmsg(writer_));
  }
  return StepDone(writer_, s, "delete idempotency key");
}

Status SqliteStore::ApplyNamespacePurge(const PurgeFinished& p) {
  if (!IdInRange(p.after_id)) return IoError("namespace purge cursor out of range");
  int rc = sqlite3_bind_int(namespace_pass_, 1, static_cast<int>(p.state));
  rc |= BindText(namespace_pass_, 2, p.ns);
  rc |= sqlite3_bind_int64(namespace_pass_, 3, static_cast<std::int64_t>(p.after_id));
  const std::uint64_t limit = std::clamp<std::uint64_t>(p.limit, 1, 1'000'000);
  rc |= sqlite3_bind_int64(namespace_pass_, 4, static_cast<std::int64_t>(limit));
  if (rc != SQLITE_OK) {
    sqlite3_reset(namespace_pass_);
    return IoError(std::string("bind namespace purge: ") + sqlite3_errmsg(writer_));
  }
  // Read the chunk first, then delete: a statement never deletes under its own cursor.
  std::vector<JobId> due;
  std::uint64_t read = 0;
  JobId last = 0;
  bool stopped = false;  // met a row created after the cutoff: nothing later can be due
  while ((rc = sqlite3_step(namespace_pass_)) == SQLITE_ROW) {
    ++read;
    last = static_cast<JobId>(sqlite3_column_int64(namespace_pass_, 0));
    if (sqlite3_column_int64(namespace_pass_, 1) > p.before_ms) {
      stopped = true;
      break;
    }
    if (sqlite3_column_int64(namespace_pass_, 2) <= p.before_ms) due.push_back(last);
  }
  Status st;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = SqlError(writer_, rc, "namespace purge");
  sqlite3_reset(namespace_pass_);
  YM_RETURN_IF_ERROR(st);
  for (JobId id : due) YM_RETURN_IF_ERROR(ApplyDelete(id));
  PurgeOutcome o;
  o.state = p.state;
  o.ns = p.ns;
  o.deleted = due.size();
  o.resume_after = !stopped && read == limit ? last : 0;
  outcomes_.push_back(std::move(o));
  return Status::Ok();
}

Status SqliteStore::ApplyPurge(const PurgeFinished& p) {
  if (!IsTerminal(p.state)) return Status::Ok();
  if (!p.ns.empty()) return ApplyNamespacePurge(p);
  auto bind_error = [&](sqlite3_stmt* s) {
    sqlite3_reset(s);
    return IoError(std::string("bind purge: ") + sqlite3_errmsg(writer_));
  };
  // SQLite's LIMIT is signed: "no limit" is -1, and a limit past INT64_MAX is none either.
  const auto sql_limit = [](std::uint64_t n) {
    return n == 0 || n > static_cast<std::uint64_t>(INT64_MAX) ? std::int64_t{-1}
                                                               : static_cast<std::int64_t>(n);
  };
  std::uint64_t count = finished_.Current(p.queue, p.state);
  std::uint64_t budget = p.limit == 0 ? UINT64_MAX : p.limit;
  std::uint64_t deleted = 0;
  // 1. Over the cap: the oldest-finished rows above it, by the exact count the store keeps.
  if (p.max_kept > 0 && count > p.max_kept && budget > 0) {
    const std::uint64_t excess = std::min(count - p.max_kept, budget);
    // The job rows first, then their outcomes (sqlite_store.h).
    for (sqlite3_stmt* s : {purge_oldest_jobs_, purge_oldest_}) {
      int rc = sqlite3_bind_int(s, 1, static_cast<int>(p.state));
      rc |= BindText(s, 2, p.queue);
      rc |= sqlite3_bind_int64(s, 3, sql_limit(excess));
      if (rc != SQLITE_OK) return bind_error(s);
      YM_RETURN_IF_ERROR(StepDone(writer_, s, "purge finished jobs over the cap"));
    }
    const auto n = static_cast<std::uint64_t>(sqlite3_changes(writer_));
    deleted += n;
    budget -= std::min(budget, n);
  }
  // 2. Past the window, with what is left of the budget.
  if (budget > 0) {
    for (sqlite3_stmt* s : {purge_before_jobs_, purge_before_}) {
      int rc = sqlite3_bind_int(s, 1, static_cast<int>(p.state));
      rc |= BindText(s, 2, p.queue);
      rc |= sqlite3_bind_int64(s, 3, p.before_ms);
      rc |= sqlite3_bind_int64(s, 4, sql_limit(budget));
      if (rc != SQLITE_OK) return bind_error(s);
      YM_RETURN_IF_ERROR(StepDone(writer_, s, "purge finished jobs"));
    }
    deleted += static_cast<std::uint64_t>(sqlite3_changes(writer_));
  }
  finished_.AddPending(p.queue, p.state, -static_cast<std::int64_t>(deleted));
  count -= std::min(count, deleted);
  // 3. What is left, for core to decide whether to come back (one index probe).
  std::int64_t oldest = INT64_MAX;
  if (count > 0) {
    int rc = sqlite3_bind_int(oldest_finish_, 1, static_cast<int>(p.state));
    rc |= BindText(oldest_finish_, 2, p.queue);
    if (rc != SQLITE_OK) return bind_error(oldest_finish_);
    rc = sqlite3_step(oldest_finish_);
    if (rc == SQLITE_ROW) oldest = sqlite3_column_int64(oldest_finish_, 0);
    Status st;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = SqlError(writer_, rc, "read oldest finish");
    sqlite3_reset(oldest_finish_);
    YM_RETURN_IF_ERROR(st);
  }
  outcomes_.push_back(PurgeOutcome{p.queue, p.state, deleted, count, oldest});
  return Status::Ok();
}

Status SqliteStore::ApplyNextId(JobId next_id) {
  sqlite3_bind_int64(set_next_id_, 1, static_cast<std::int64_t>(next_id));
  return StepDone(writer_, set_next_id_, "update next_id");
}

Status SqliteStore::ApplyAppendAudit(const audit::Entry& entry, audit::Head* head) {
  audit::Entry e = entry;
  const audit::Head next = audit::Seal(e, *head);
  sqlite3_stmt* s = insert_audit_;
  ResetOnExit reset(s);
  int rc = sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(e.seq));
  rc |= sqlite3_bind_int64(s, 2, e.at_ms);
  rc |= BindText(s, 3, e.actor);
  rc |= BindText(s, 4, e.action);
  rc |= BindText(s, 5, e.target);
  rc |= BindText(s, 6, e.remote);
  rc |= BindText(s, 7, e.request_id);
  rc |= BindText(s, 8, e.detail);
  rc |= sqlite3_bind_blob(s, 9, e.prev_hash.data(), static_cast<int>(e.prev_hash.size()),
                          SQLITE_TRANSIENT);
  rc |= sqlite3_bind_blob(s, 10, e.hash.data(), static_cast<int>(e.hash.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return SqlError(writer_, rc, "bind audit entry");
  YM_RETURN_IF_ERROR(StepDone(writer_, s, "append audit entry"));
  *head = next;
  return Status::Ok();
}

void SqliteStore::RollbackQuietly() {
  // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled the transaction back; ROLLBACK
  // then would only fail with "no transaction is active".
  if (sqlite3_get_autocommit(writer_) != 0) return;
  if (sqlite3_step(rollback_) != SQLITE_DONE) {
    sqlite3_reset(rollback_);
    // A failed ROLLBACK leaves the connection in a transaction; closing the statement state and
    // retrying through exec is the last resort before the next Commit's BEGIN reports it.
    sqlite3_exec(writer_, "ROLLBACK", nullptr, nullptr, nullptr);
    return;
  }
  sqlite3_reset(rollback_);
}

namespace {
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;
}  // namespace

Status SqliteStore::Commit(const Batch& batch) {
  if (batch.empty()) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  if (!IdInRange(batch.next_id)) return IoError("batch next_id out of range");

  // A wipe's deletes overwrite the deleted content (cells and freed pages) with zeros; only for
  // its batches, since it costs a write of every page freed.
  SecureDeleteScope secure(*this, batch.erase);
  Status st = StepDone(writer_, begin_, "begin");
  if (!st.ok()) {
    // A transaction left open by a failed ROLLBACK would make every later BEGIN fail; clear it.
    RollbackQuietly();
    return IoError("commit batch " + std::to_string(batch.seq) + ": " + st.message());
  }

  // Deltas left by a transaction that never reached Commit's end are not ours to publish.
  finished_.Discard();
  outcomes_.clear();
  JobId next_id = std::max(next_id_, batch.next_id);
  audit::Head audit_head;
  bool audited = false;
  auto apply = Overloaded{
      [&](const AppendAudit& m) {
        if (!audited) {
          std::lock_guard lk(audit_mu_);
          audit_head = audit_head_;
          audited = true;
        }
        return ApplyAppendAudit(m.entry, &audit_head);
      },
      [&](const InsertJob& m) {
        if (m.job.id >= next_id && IdInRange(m.job.id + 1)) next_id = m.job.id + 1;
        Status inserted = ApplyInsert(m.job);
        // A failed insert fails the batch, whose pending deltas are then dropped.
        if (inserted.ok()) finished_.AddPending(m.job.queue, m.job.state, 1);
        return inserted;
      },
      [&](const UpdateJob& m) { return ApplyUpdate(m.job); },
      [&](const UpdateLease& m) { return ApplyUpdateLease(m); },
      [&](const DeleteJob& m) { return ApplyDelete(m.id); },
      [&](const PutQueue& m) { return ApplyPutQueue(m.config); },
      [&](const DeleteQueue& m) { return ApplyDeleteQueue(m.name); },
      [&](const PutLimit& m) { return ApplyPutLimit(m); },
      [&](const DeleteLimit& m) { return ApplyDeleteLimit(m.name); },
      [&](const PutNamespace& m) { return ApplyPutNamespace(m); },
      [&](const DeleteNamespace& m) { return ApplyDeleteNamespace(m.name); },
      [&](const PutQuotaCount& m) { return ApplyPutQuotaCount(m); },
      [&](const PutSchedule& m) { return ApplyPutSchedule(m); },
      [&](const DeleteSchedule& m) { return ApplyDeleteSchedule(m.id); },
      [&](const PutApiToken& m) { return ApplyPutApiToken(m.row); },
      [&](const RevokeApiToken& m) { return ApplyRevokeApiToken(m); },
      [&](const TouchApiTokens& m) { return ApplyTouchApiTokens(m); },
      [&](const DropQuotaCounts& m) {
        return ApplyDropQuotaCounts(m.limit, std::numeric_limits<std::int64_t>::max());
      },
      [&](const PutIdempotencyKey& m) { return ApplyPutKey(m); },
      [&](const ExpireIdempotencyKeys& m) { return ApplyExpireKeys(m); },
      [&](const FinishIdempotencyKey& m) { return ApplyFinishKey(m); },
      [&](const DeleteIdempotencyKey& m) { return ApplyDeleteKey(m); },
      [&](const PurgeFinished& m) { return ApplyPurge(m); },
  };
  // A lease whose job is rewritten or deleted later in the same batch (leased, then acked before
  // the commit), or whose lease is written again (extended), would be overwritten anyway:
  // skipping it leaves the same result and saves a write on the hot path. Every later
  // mutation of the three kinds rewrites (or removes) the lease row, and a job row that a
  // skipped hand-back would have rewritten is either rewritten too or masked by the later lease
  // row until a mutation that rewrites it ends that lease. Found without allocating: the ids of
  // the batch's leases, sorted, and one backward pass that marks a lease skipped when its id
  // was rewritten after it (`rewritten_` per lease id, `skip_` per mutation).
  const std::size_t n = batch.mutations.size();
  lease_ids_.clear();
  for (const Mutation& m : batch.mutations) {
    if (const auto* l = std::get_if<UpdateLease>(&m)) lease_ids_.push_back(l->id);
  }
  skip_.assign(lease_ids_.empty() ? 0 : n, 0);
  if (!lease_ids_.empty()) {
    std::sort(lease_ids_.begin(), lease_ids_.end());
    lease_ids_.erase(std::unique(lease_ids_.begin(), lease_ids_.end()), lease_ids_.end());
    rewritten_.assign(lease_ids_.size(), 0);
    for (std::size_t i = n; i-- > 0;) {
      const Mutation& m = batch.mutations[i];
      JobId id = 0;
      if (const auto* l = std::get_if<UpdateLease>(&m)) {
        id = l->id;
      } else if (const auto* d = std::get_if<DeleteJob>(&m)) {
        id = d->id;
      } else if (const auto* u = std::get_if<UpdateJob>(&m)) {
        id = u->job.id;
      } else {
        continue;
      }
      auto it = std::lower_bound(lease_ids_.begin(), lease_ids_.end(), id);
      if (it == lease_ids_.end() || *it != id) continue;
      char& later = rewritten_[static_cast<std::size_t>(it - lease_ids_.begin())];
      if (later != 0 && std::holds_alternative<UpdateLease>(m)) skip_[i] = 1;
      later = 1;
    }
  }
  auto overwritten = [&](std::size_t i) { return !skip_.empty() && skip_[i] != 0; };
  for (std::size_t i = 0; i < batch.mutations.size(); ++i) {
    const Mutation& m = batch.mutations[i];
    if (const auto* l = std::get_if<UpdateLease>(&m)) {
      if (overwritten(i)) continue;
      if (HasLease(l->state, l->token)) {
        // The leases a lease request granted are adjacent in the batch: write them with one
        // multi-row statement per kLeaseChunk instead of one statement each.
        lease_run_.clear();
        std::size_t end = i;
        for (; end < batch.mutations.size(); ++end) {
          const auto* next = std::get_if<UpdateLease>(&batch.mutations[end]);
          if (next == nullptr) break;
          if (overwritten(end)) continue;
          if (!HasLease(next->state, next->token)) break;
          lease_run_.push_back(next);
        }
        st = PutLeases(lease_run_);
        if (!st.ok()) break;
        i = end - 1;
        continue;
      }
    }
    if (const auto* u = std::get_if<UpdateJob>(&m);
        u != nullptr && IsTerminal(u->job.state) && IdInRange(u->job.id)) {
      // Adjacent finishes (an acks batch whose jobs are kept): chunked statements.
      finish_run_.clear();
      std::size_t end = i;
      for (; end < batch.mutations.size(); ++end) {
        const auto* next = std::get_if<UpdateJob>(&batch.mutations[end]);
        if (next == nullptr || !IsTerminal(next->job.state) || !IdInRange(next->job.id)) break;
        finish_run_.push_back(&next->job);
      }
      if (finish_run_.size() >= static_cast<std::size_t>(kFinishChunk)) {
        st = ApplyFinishRun(finish_run_);
        if (!st.ok()) break;
        i = end - 1;
        continue;
      }
    }
    if (const auto* d = std::get_if<DeleteJob>(&m)) {
      // Adjacent deletes of consecutive ids (an acks:batch of jobs that were leased together,
      // which came off the queue in id order) are one range delete of exactly those ids: one
      // statement and one b-tree descent per table instead of one per job.
      std::size_t end = i + 1;
      while (end < batch.mutations.size()) {
        const auto* next = std::get_if<DeleteJob>(&batch.mutations[end]);
        if (next == nullptr || next->id != d->id + (end - i)) break;
        ++end;
      }
      if (end - i > 1) {
        st = ApplyDeleteRange(d->id, d->id + (end - i - 1));
        if (!st.ok()) break;
        i = end - 1;
        continue;
      }
    }
    st = std::visit(apply, m);
    if (!st.ok()) break;
  }
  if (st.ok() && next_id != next_id_) st = ApplyNextId(next_id);
  if (st.ok() && batch.probe) st = StepDone(writer_, probe_, "probe write");
  if (st.ok()) st = StepDone(writer_, commit_, "commit");
  if (!st.ok()) {
    RollbackQuietly();
    finished_.Discard();
    outcomes_.clear();
    return IoError("commit batch " + std::to_string(batch.seq) + ": " + st.message());
  }
  finished_.Publish();
  next_id_ = next_id;
  if (audited) {
    std::lock_guard lk(audit_mu_);
    audit_head_ = audit_head;
  }
  commits_.fetch_add(1, std::memory_order_relaxed);
  if (batch.checkpoint) CheckpointTruncate();
  return Status::Ok();
}

SqliteStore::SecureDeleteScope::SecureDeleteScope(SqliteStore& store, bool on)
    : store_(store), on_(on) {
  if (on_) (void)Exec(store_.writer_, "PRAGMA secure_delete = ON", "secure delete on");
}

SqliteStore::SecureDeleteScope::~SecureDeleteScope() {
  if (on_) (void)Exec(store_.writer_, "PRAGMA secure_delete = OFF", "secure delete off");
}

void SqliteStore::CheckpointTruncate() {
  int wal_frames = 0, copied = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &wal_frames, &copied);
  if (rc != SQLITE_OK) {
    YM_LOG(info, kStore)
        .Int("wal_frames", wal_frames)
        .Int("copied", copied)
        .Str("error", sqlite3_errmsg(writer_))
        .Msg(
            "checkpoint after a wipe left the WAL in place ({}): a reader held an older "
            "snapshot; a later checkpoint copies it",
            sqlite3_errmsg(writer_));
  }
}

// ---------------------------------------------------------------------------------------------
// Recovery and reads.

Status SqliteStore::Recover(std::int64_t now_ms, RecoveryVisitor& visitor) {
  // One read transaction: the four scans see the same snapshot.
  YM_RETURN_IF_ERROR(Exec(writer_, "BEGIN", "begin recovery"));
  Status st = RecoverInTransaction(now_ms, visitor);
  Status end = Exec(writer_, "COMMIT", "end recovery");
  if (!st.ok()) return st;
  return end;
}

Status SqliteStore::RecoverInTransaction(std::int64_t now_ms, RecoveryVisitor& visitor) {
  {
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(
        writer_,
        "SELECT (SELECT value FROM meta WHERE key = 'next_id'), (SELECT max(id) FROM jobs), "
        "(SELECT created_at_ms FROM jobs ORDER BY id DESC LIMIT 1)"));
    int rc = sqlite3_step(q.get());
    if (rc != SQLITE_ROW) return SqlError(writer_, rc, "read next_id");
    if (sqlite3_column_type(q.get(), 0) != SQLITE_INTEGER || sqlite3_column_int64(q.get(), 0) < 1) {
      return Corruption("meta.next_id is missing or not a positive integer");
    }
    auto next = static_cast<JobId>(sqlite3_column_int64(q.get(), 0));
    if (sqlite3_column_type(q.get(), 1) == SQLITE_INTEGER) {
      std::int64_t max_id = sqlite3_column_int64(q.get(), 1);
      // An id past next_id can only come from a hand-edited file; never hand it out again.
      if (max_id >= 0 && static_cast<JobId>(max_id) >= next) next = static_cast<JobId>(max_id) + 1;
    }
    next_id_ = std::max(next_id_, next);
    visitor.OnNextId(next);
    if (sqlite3_column_type(q.get(), 2) == SQLITE_INTEGER) {
      visitor.OnLastCreatedAt(sqlite3_column_int64(q.get(), 2));
    }
  }
  {
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(
        writer_,
        "SELECT name, paused, max_attempts, lease_ms, backoff_initial_ms, backoff_max_ms, "
        "backoff_multiplier, retention_succeeded_ms, retention_dead_ms, retention_cancelled_ms, "
        "timeout_ms, retention_max_succeeded, retention_max_dead, retention_max_cancelled, "
        "weight FROM queues ORDER BY name"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      sqlite3_stmt* s = q.get();
      QueueConfig c;
      int paused = 0;
      // Queue rows have no id; -1 in messages marks "not a job".
      YM_RETURN_IF_ERROR(ReadText(s, 0, -1, "queues.name", &c.name));
      YM_RETURN_IF_ERROR(ReadInt(s, 1, -1, "queues.paused", &paused));
      YM_RETURN_IF_ERROR(ReadInt(s, 2, -1, "queues.max_attempts", &c.max_attempts));
      YM_RETURN_IF_ERROR(ReadInt(s, 3, -1, "queues.lease_ms", &c.lease_ms));
      YM_RETURN_IF_ERROR(ReadInt(s, 4, -1, "queues.backoff_initial_ms", &c.backoff.initial_ms));
      YM_RETURN_IF_ERROR(ReadInt(s, 5, -1, "queues.backoff_max_ms", &c.backoff.max_ms));
      YM_RETURN_IF_ERROR(ReadReal(s, 6, -1, "queues.backoff_multiplier", &c.backoff.multiplier));
      YM_RETURN_IF_ERROR(
          ReadInt(s, 7, -1, "queues.retention_succeeded_ms", &c.retention.succeeded_ms));
      YM_RETURN_IF_ERROR(ReadInt(s, 8, -1, "queues.retention_dead_ms", &c.retention.dead_ms));
      YM_RETURN_IF_ERROR(
          ReadInt(s, 9, -1, "queues.retention_cancelled_ms", &c.retention.cancelled_ms));
      YM_RETURN_IF_ERROR(ReadInt(s, 10, -1, "queues.timeout_ms", &c.timeout_ms));
      YM_RETURN_IF_ERROR(
          ReadInt(s, 11, -1, "queues.retention_max_succeeded", &c.retention.max_succeeded));
      YM_RETURN_IF_ERROR(ReadInt(s, 12, -1, "queues.retention_max_dead", &c.retention.max_dead));
      YM_RETURN_IF_ERROR(
          ReadInt(s, 13, -1, "queues.retention_max_cancelled", &c.retention.max_cancelled));
      YM_RETURN_IF_ERROR(ReadInt(s, 14, -1, "queues.weight", &c.weight));
      if (c.weight < 1 || c.weight > 1000) return BadColumn(-1, "queues.weight", "is out of range");
      c.paused = paused != 0;
      visitor.OnQueue(c);
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan queues");
  }
  {
    // Limits before the jobs: a recovered lease then counts toward its caps.
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(writer_, "SELECT name, spec FROM limits ORDER BY name"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      std::string name, spec;
      YM_RETURN_IF_ERROR(ReadText(q.get(), 0, -1, "limits.name", &name));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 1, -1, "limits.spec", &spec));
      visitor.OnLimit(name, spec);
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan limits");
  }
  {
    // Namespaces before the jobs (their weights order the lanes the jobs enter).
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(writer_, "SELECT name, spec FROM namespaces ORDER BY name"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      std::string name, spec;
      YM_RETURN_IF_ERROR(ReadText(q.get(), 0, -1, "namespaces.name", &name));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 1, -1, "namespaces.spec", &spec));
      visitor.OnNamespace(name, spec);
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan namespaces");
  }
  {
    // Quota counts after the limits they belong to, before the jobs.
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(
        writer_, "SELECT limit_name, key, window_start_ms, used FROM quota_counts ORDER BY 1, 2"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      std::string limit, key;
      std::int64_t window_start = 0, used = 0;
      YM_RETURN_IF_ERROR(ReadText(q.get(), 0, -1, "quota_counts.limit_name", &limit));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 1, -1, "quota_counts.key", &key));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 2, -1, "quota_counts.window_start_ms", &window_start));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 3, -1, "quota_counts.used", &used));
      visitor.OnQuotaCount(limit, key, window_start, used);
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan quota counts");
  }
  // What retention has to purge: the counts kept in memory, and one index probe per queue and
  // state for its oldest finish (O(queues with finished jobs × log rows), not a scan).
  for (const FinishedCount& c : finished_.Query(FinishedCountQuery{})) {
    int rc = sqlite3_bind_int(oldest_finish_, 1, static_cast<int>(c.state));
    rc |= BindText(oldest_finish_, 2, c.queue);
    if (rc != SQLITE_OK) {
      sqlite3_reset(oldest_finish_);
      return IoError(std::string("bind oldest finish: ") + sqlite3_errmsg(writer_));
    }
    rc = sqlite3_step(oldest_finish_);
    const std::int64_t oldest =
        rc == SQLITE_ROW ? sqlite3_column_int64(oldest_finish_, 0) : INT64_MAX;
    Status st;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = SqlError(writer_, rc, "read oldest finish");
    sqlite3_reset(oldest_finish_);
    YM_RETURN_IF_ERROR(st);
    if (oldest != INT64_MAX) visitor.OnFinished(c.queue, c.state, c.count, oldest);
  }
  {
    Stmt q;
    // The newest keys only (by the expiry index): the rest stay on disk and are read when a
    // duplicate asks for them, so a restart costs the cache's size, not the key count.
    YM_RETURN_IF_ERROR(q.Prepare(writer_,
                                 "SELECT ns, key, job_id, expires_at_ms, final_state "
                                 "FROM idempotency_keys WHERE expires_at_ms > ?1 "
                                 "ORDER BY expires_at_ms DESC"));
    sqlite3_bind_int64(q.get(), 1, now_ms);
    const std::uint64_t max_keys = visitor.MaxIdempotencyKeys();
    std::uint64_t loaded = 0;
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      IdempotencyKeyRecord k;
      YM_RETURN_IF_ERROR(ReadKey(q.get(), &k));
      if (loaded == max_keys) {
        visitor.OnIdempotencyKeysOmitted(k.expires_at_ms);
        rc = SQLITE_DONE;
        break;
      }
      visitor.OnIdempotencyKey(k);
      ++loaded;
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan idempotency keys");
  }
  // The leases first, into memory: there is one per running job, far fewer than live jobs, and
  // a map costs less than a lookup into the leases table for every live job of the scan below.
  struct StoredLease {
    std::uint64_t token = 0;
    std::int64_t expires_at_ms = 0;
    std::string worker_id;
    std::int32_t attempts = 0;
    std::int64_t updated_at_ms = 0;
    std::int64_t deadline_at_ms = 0;
  };
  std::unordered_map<JobId, StoredLease> leases;
  {
    Stmt q;
    YM_RETURN_IF_ERROR(
        q.Prepare(writer_, std::string("SELECT id, ") + kLeaseColumns + " FROM leases"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      JobRecord probe;
      std::int64_t id = 0;
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 0, -1, "leases.id", &id));
      if (id <= 0) return Corruption("lease row with id " + std::to_string(id));
      probe.id = static_cast<JobId>(id);
      YM_RETURN_IF_ERROR(ReadLease(q.get(), 1, &probe));
      if (probe.lease_token == 0) return BadColumn(id, "leases.token", "is NULL");
      leases.emplace(probe.id, StoredLease{probe.lease_token, probe.lease_expires_at_ms,
                                           std::move(probe.worker_id), probe.attempts,
                                           probe.updated_at_ms, probe.lease_deadline_at_ms});
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan leases");
  }
  {
    // A rowid-order scan of the whole table: an index on state would cost a write per job
    // transition to save little here (docs/storage-format.md has the measurement). A finished
    // job is one with an outcome row (its job row may still say ready): the LEFT JOIN probes
    // `outcomes` by primary key through one cursor that moves forward in id order, which
    // SQLite does in about a third of the time of a NOT EXISTS subquery per row (measured:
    // docs/storage-format.md, "Format 6").
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(writer_, "SELECT " + Prefixed(kJobColumns, "j") +
                                              " FROM jobs AS j LEFT JOIN outcomes AS o ON o.id = "
                                              "j.id WHERE j.state < 3 AND o.id IS NULL "
                                              "ORDER BY j.id"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      JobRecord job;
      YM_RETURN_IF_ERROR(ReadJob(q.get(), &job));
      if (!leases.empty()) {
        auto it = leases.find(job.id);
        if (it != leases.end()) {
          StoredLease& l = it->second;
          job.state = JobState::kActive;
          job.attempts = l.attempts;
          job.updated_at_ms = l.updated_at_ms;
          job.lease_token = l.token;
          job.lease_expires_at_ms = l.expires_at_ms;
          job.worker_id = std::move(l.worker_id);
          job.lease_deadline_at_ms = l.deadline_at_ms;
          leases.erase(it);
        }
      }
      visitor.OnLiveJob(std::move(job));
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan live jobs");
  }
  {
    // Schedules after the jobs (core reconciles them at its first tick, against the live jobs),
    // each with its history: one scan of each table in id order, merged.
    Stmt q, h;
    YM_RETURN_IF_ERROR(q.Prepare(
        writer_,
        "SELECT id, spec, cursor_ms, paused, anchor_ms, created_at_ms, updated_at_ms, last_job, "
        "last_window_ms, last_enqueued_at_ms, buffered_ms, next_history_seq FROM schedules "
        "ORDER BY id"));
    YM_RETURN_IF_ERROR(h.Prepare(writer_,
                                 "SELECT schedule, seq, window_ms, through_ms, emitted, reason, "
                                 "job_id, at_ms, lag_ms FROM schedule_history ORDER BY 1, 2"));
    int hrc = sqlite3_step(h.get());
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      cron::ScheduleRow row;
      cron::ScheduleState& st = row.state;
      std::int64_t paused = 0, last_job = 0, next_seq = 0;
      YM_RETURN_IF_ERROR(ReadText(q.get(), 0, -1, "schedules.id", &row.id));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 1, -1, "schedules.spec", &row.spec_json));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 2, -1, "schedules.cursor_ms", &st.cursor_ms));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 3, -1, "schedules.paused", &paused));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 4, -1, "schedules.anchor_ms", &st.anchor_ms));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 5, -1, "schedules.created_at_ms", &st.created_at_ms));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 6, -1, "schedules.updated_at_ms", &st.updated_at_ms));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 7, -1, "schedules.last_job", &last_job));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 8, -1, "schedules.last_window_ms", &st.last_window_ms));
      YM_RETURN_IF_ERROR(
          ReadInt(q.get(), 9, -1, "schedules.last_enqueued_at_ms", &st.last_enqueued_at_ms));
      if (sqlite3_column_type(q.get(), 10) != SQLITE_NULL) {
        std::int64_t b = 0;
        YM_RETURN_IF_ERROR(ReadInt(q.get(), 10, -1, "schedules.buffered_ms", &b));
        st.buffered_ms = b;
      }
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 11, -1, "schedules.next_history_seq", &next_seq));
      if (last_job < 0 || next_seq < 1) return Corruption("schedule " + row.id + ": bad state");
      st.paused = paused != 0;
      st.last_job = static_cast<JobId>(last_job);
      st.next_history_seq = static_cast<std::uint64_t>(next_seq);
      // History rows of schedules that sort before this one have no schedule: skipped.
      while (hrc == SQLITE_ROW) {
        std::string owner;
        YM_RETURN_IF_ERROR(ReadText(h.get(), 0, -1, "schedule_history.schedule", &owner));
        if (owner > row.id) break;
        if (owner == row.id) {
          cron::HistoryEntry e;
          std::int64_t seq = 0, emitted = 0, job = 0;
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 1, -1, "schedule_history.seq", &seq));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 2, -1, "schedule_history.window_ms", &e.window_ms));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 3, -1, "schedule_history.through_ms", &e.through_ms));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 4, -1, "schedule_history.emitted", &emitted));
          YM_RETURN_IF_ERROR(ReadText(h.get(), 5, -1, "schedule_history.reason", &e.reason));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 6, -1, "schedule_history.job_id", &job));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 7, -1, "schedule_history.at_ms", &e.at_ms));
          YM_RETURN_IF_ERROR(ReadInt(h.get(), 8, -1, "schedule_history.lag_ms", &e.lag_ms));
          if (seq < 1 || job < 0) return Corruption("schedule " + row.id + ": bad history row");
          e.seq = static_cast<std::uint64_t>(seq);
          e.emitted = emitted != 0;
          e.job_id = static_cast<JobId>(job);
          row.new_history.push_back(std::move(e));
        }
        hrc = sqlite3_step(h.get());
      }
      if (hrc != SQLITE_ROW && hrc != SQLITE_DONE) {
        return SqlError(writer_, hrc, "scan schedule history");
      }
      visitor.OnSchedule(std::move(row));
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan schedules");
  }
  {
    // API tokens (format 10), revoked ones included.
    Stmt q;
    YM_RETURN_IF_ERROR(q.Prepare(writer_,
                                 "SELECT id, name, hash, role, namespaces, created_at_ms, "
                                 "expires_at_ms, revoked_at_ms, last_used_at_ms FROM api_tokens "
                                 "ORDER BY id"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      ApiTokenRow row;
      YM_RETURN_IF_ERROR(ReadText(q.get(), 0, -1, "api_tokens.id", &row.id));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 1, -1, "api_tokens.name", &row.name));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 2, -1, "api_tokens.hash", &row.hash));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 3, -1, "api_tokens.role", &row.role));
      YM_RETURN_IF_ERROR(ReadText(q.get(), 4, -1, "api_tokens.namespaces", &row.namespaces_json));
      YM_RETURN_IF_ERROR(ReadInt(q.get(), 5, -1, "api_tokens.created_at_ms", &row.created_at_ms));
      const std::pair<int, std::optional<std::int64_t>*> optional_times[] = {
          {6, &row.expires_at_ms}, {7, &row.revoked_at_ms}, {8, &row.last_used_at_ms}};
      for (auto [col, out] : optional_times) {
        if (sqlite3_column_type(q.get(), col) == SQLITE_NULL) continue;
        std::int64_t v = 0;
        YM_RETURN_IF_ERROR(ReadInt(q.get(), col, -1, "api_tokens time", &v));
        *out = v;
      }
      visitor.OnApiToken(std::move(row));
    }
    if (rc != SQLITE_DONE) return SqlError(writer_, rc, "scan api tokens");
  }
  return Status::Ok();
}

// API tokens: rare configuration writes, each statement prepared for its one use.
Status SqliteStore::ApplyPutApiToken(const ApiTokenRow& row) {
  Stmt s;
  YM_RETURN_IF_ERROR(s.Prepare(writer_,
                               "INSERT INTO api_tokens (id, name, hash, role, namespaces, "
                               "created_at_ms, expires_at_ms, revoked_at_ms, last_used_at_ms) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  auto bind_opt = [&](int i, const std::optional<std::int64_t>& v) {
    return v ? sqlite3_bind_int64(s.get(), i, *v) : sqlite3_bind_null(s.get(), i);
  };
  int rc = BindText(s.get(), 1, row.id);
  rc |= BindText(s.get(), 2, row.name);
  rc |= sqlite3_bind_blob(s.get(), 3, row.hash.data(), static_cast<int>(row.hash.size()),
                          SQLITE_STATIC);
  rc |= BindText(s.get(), 4, row.role);
  rc |= BindText(s.get(), 5, row.namespaces_json);
  rc |= sqlite3_bind_int64(s.get(), 6, row.created_at_ms);
  rc |= bind_opt(7, row.expires_at_ms);
  rc |= bind_opt(8, row.revoked_at_ms);
  rc |= bind_opt(9, row.last_used_at_ms);
  if (rc != SQLITE_OK) return IoError("bind api token " + row.id + ": " + sqlite3_errmsg(writer_));
  return StepDone(writer_, s.get(), "put api token");
}

Status SqliteStore::ApplyRevokeApiToken(const RevokeApiToken& m) {
  Stmt s;
  YM_RETURN_IF_ERROR(s.Prepare(
      writer_, "UPDATE api_tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL"));
  int rc = BindText(s.get(), 1, m.id);
  rc |= sqlite3_bind_int64(s.get(), 2, m.revoked_at_ms);
  if (rc != SQLITE_OK) return IoError("bind api token " + m.id + ": " + sqlite3_errmsg(writer_));
  return StepDone(writer_, s.get(), "revoke api token");
}

Status SqliteStore::ApplyTouchApiTokens(const TouchApiTokens& m) {
  Stmt s;
  YM_RETURN_IF_ERROR(s.Prepare(writer_,
                               "UPDATE api_tokens SET last_used_at_ms = ?2 WHERE id = ?1 AND "
                               "(last_used_at_ms IS NULL OR last_used_at_ms < ?2)"));
  for (const auto& [id, ms] : m.last_used) {
    int rc = BindText(s.get(), 1, id);
    rc |= sqlite3_bind_int64(s.get(), 2, ms);
    if (rc != SQLITE_OK) return IoError("bind api token " + id + ": " + sqlite3_errmsg(writer_));
    YM_RETURN_IF_ERROR(StepDone(writer_, s.get(), "touch api token"));
  }
  return Status::Ok();
}

Result<std::optional<IdempotencyKeyRecord>> SqliteStore::GetIdempotencyKey(const std::string& ns,
                                                                           const std::string& key,
                                                                           std::int64_t now_ms) {
  ReaderLease r(this);
  YM_RETURN_IF_ERROR(
      PrepareOnce(r->db, &r->get_key,
                  "SELECT ns, key, job_id, expires_at_ms, final_state FROM "
                  "idempotency_keys WHERE ns = ?1 AND key = ?2 AND expires_at_ms > ?3",
                  "idempotency key read"));
  sqlite3_stmt* s = r->get_key;
  ResetOnExit reset(s);
  BindText(s, 1, ns);
  BindText(s, 2, key);
  sqlite3_bind_int64(s, 3, now_ms);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<IdempotencyKeyRecord>();
  if (rc != SQLITE_ROW) return SqlError(r->db, rc, "read idempotency key");
  IdempotencyKeyRecord k;
  Status st = ReadKey(s, &k);
  if (!st.ok()) return st;
  return std::optional<IdempotencyKeyRecord>(std::move(k));
}

Result<std::vector<IdempotencyKeyRecord>> SqliteStore::NamespaceKeys(const std::string& ns,
                                                                     const std::string& after_key,
                                                                     JobId max_job_id,
                                                                     std::uint32_t limit) {
  ReaderLease r(this);
  // A range of the table's (ns, key) primary key.
  YM_RETURN_IF_ERROR(PrepareOnce(r->db, &r->namespace_keys,
                                 "SELECT ns, key, job_id, expires_at_ms, final_state FROM "
                                 "idempotency_keys WHERE ns = ?1 AND key > ?2 AND job_id <= ?3 "
                                 "ORDER BY key LIMIT ?4",
                                 "namespace keys read"));
  sqlite3_stmt* s = r->namespace_keys;
  ResetOnExit reset(s);
  BindText(s, 1, ns);
  BindText(s, 2, after_key);
  sqlite3_bind_int64(s, 3, static_cast<std::int64_t>(std::min<JobId>(max_job_id, INT64_MAX)));
  sqlite3_bind_int64(s, 4, limit);
  std::vector<IdempotencyKeyRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    IdempotencyKeyRecord k;
    YM_RETURN_IF_ERROR(ReadKey(s, &k));
    out.push_back(std::move(k));
  }
  if (rc != SQLITE_DONE) return SqlError(r->db, rc, "read namespace keys");
  return out;
}

namespace {

constexpr char kReadAuditSql[] =
    "SELECT seq, at_ms, actor, action, target, remote, request_id, detail, prev_hash, hash "
    "FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2";

// A row as stored. A field of the wrong type or size (a hand-edited row) is read as best it
// can be (text of a number, a hash cut or zero-padded to 32 bytes): the chain's verifier then
// reports the row, which is the point of reading it.
void ReadAuditRow(sqlite3_stmt* s, audit::Entry* e) {
  e->seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
  e->at_ms = sqlite3_column_int64(s, 1);
  auto text = [&](int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    return p == nullptr ? std::string()
                        : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
  };
  e->actor = text(2);
  e->action = text(3);
  e->target = text(4);
  e->remote = text(5);
  e->request_id = text(6);
  e->detail = text(7);
  auto hash = [&](int col, audit::Hash* out) {
    *out = audit::Hash{};
    const void* p = sqlite3_column_blob(s, col);
    const int n = sqlite3_column_bytes(s, col);
    if (p != nullptr && n > 0) {
      std::memcpy(out->data(), p, std::min<std::size_t>(static_cast<std::size_t>(n), out->size()));
    }
  };
  hash(8, &e->prev_hash);
  hash(9, &e->hash);
}

Status ReadAuditPage(sqlite3* db, sqlite3_stmt* s, std::uint64_t after_seq, std::uint32_t limit,
                     std::vector<audit::Entry>* out) {
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1,
                     static_cast<std::int64_t>(std::min<std::uint64_t>(after_seq, INT64_MAX)));
  sqlite3_bind_int64(s, 2, limit);
  for (;;) {
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return Status::Ok();
    if (rc != SQLITE_ROW) return SqlError(db, rc, "read the audit log");
    audit::Entry e;
    ReadAuditRow(s, &e);
    out->push_back(std::move(e));
  }
}

}  // namespace

Result<std::vector<audit::Entry>> SqliteStore::ReadAudit(std::uint64_t after_seq,
                                                         std::uint32_t limit) {
  std::vector<audit::Entry> out;
  if (limit == 0) return out;
  ReaderLease r(this);
  auto s = CachedStatement(*r, kReadAuditSql);
  if (!s.ok()) return s.status();
  YM_RETURN_IF_ERROR(ReadAuditPage(r->db, *s, after_seq, limit, &out));
  return out;
}

audit::Head SqliteStore::AuditHead() {
  std::lock_guard lk(audit_mu_);
  return audit_head_;
}

Result<std::vector<audit::Entry>> ReadAuditLogFile(const std::string& path) {
  sqlite3* db = nullptr;
  // READONLY: never creates, migrates or writes the file; a WAL reader beside a running server.
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  struct Closer {
    sqlite3* db;
    ~Closer() { sqlite3_close(db); }
  } closer{db};
  if (rc != SQLITE_OK) return SqlError(db, rc, "open " + path + " read-only");
  sqlite3_busy_timeout(db, 5000);
  Stmt app;
  YM_RETURN_IF_ERROR(app.Prepare(db, "PRAGMA application_id"));
  rc = sqlite3_step(app.get());
  if (rc != SQLITE_ROW) return SqlError(db, rc, "read application_id of " + path);
  if (sqlite3_column_int(app.get(), 0) != kSqliteApplicationId) {
    return Corruption(path + " is not a Yardmaster database");
  }
  std::int64_t version = 0;
  YM_RETURN_IF_ERROR(Exec(db, "BEGIN", "begin read"));  // one snapshot for the whole log
  Status st = ReadFormatVersion(db, &version);
  if (st.ok() && version < 10) {
    st = Corruption(path + " has format " + std::to_string(version) +
                    ", which has no audit log (format 10)");
  }
  std::vector<audit::Entry> out;
  if (st.ok()) {
    Stmt q;
    st = q.Prepare(db, kReadAuditSql);
    if (st.ok()) st = ReadAuditPage(db, q.get(), 0, INT32_MAX, &out);
  }
  (void)Exec(db, "COMMIT", "end read");
  if (!st.ok()) return st;
  return out;
}

Result<std::optional<JobRecord>> SqliteStore::GetJob(JobId id) {
  if (id == 0 || !IdInRange(id)) return std::optional<JobRecord>();
  ReaderLease r(this);
  sqlite3_stmt* s = r->get_job;
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(id));
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<JobRecord>();
  if (rc != SQLITE_ROW) return SqlError(r->db, rc, "get job " + std::to_string(id));
  JobRecord job;
  Status st = ReadStoredJob(s, &job);
  if (!st.ok()) return st;
  return std::optional<JobRecord>(std::move(job));
}

Result<std::vector<JobRecord>> SqliteStore::ListJobs(const StoreListQuery& query) {
  std::vector<JobRecord> out;
  if (query.limit == 0 || !IdInRange(query.after_id)) return out;
  const bool all_terminal =
      !query.states.empty() && std::all_of(query.states.begin(), query.states.end(), IsTerminal);
  std::string sql;
  if (all_terminal) {
    // Terminal-only lists (the server's: dead letters of a queue) read `outcomes` by the
    // dead/cancelled queue index when they ask for those states only, then each job row by
    // id. A list that includes succeeded jobs walks `outcomes` in id order (NOT INDEXED: the
    // retention index would find a queue's rows but sort all of them by id) and stops at
    // `limit` matches; the bounded search is SearchFinished.
    const bool dead_only = std::none_of(query.states.begin(), query.states.end(),
                                        [](JobState st) { return st == JobState::kSucceeded; });
    sql = JoinedColumns() + " FROM outcomes AS o" + (dead_only ? "" : " NOT INDEXED") +
          " CROSS JOIN jobs AS j ON j.id = o.id LEFT JOIN leases AS l ON l.id = j.id WHERE "
          "o.id > ?";
    if (!query.queue.empty()) sql += " AND o.queue = ?";
    sql += " AND o.state IN (?";
    for (std::size_t i = 1; i < query.states.size(); ++i) sql += ",?";
    sql += ")";
    // Spelled out so the planner can pick the partial index.
    if (dead_only) sql += " AND o.state >= 4";
    sql += " ORDER BY o.id LIMIT ?";
  } else {
    sql = JoinedSelect() + " WHERE j.id > ?";
    if (!query.queue.empty()) sql += " AND j.queue = ?";
    if (!query.states.empty()) {
      // The state as read: an outcome's, else active with a lease row, else the job row's.
      sql += " AND coalesce(o.state, iif(l.id IS NULL, j.state, 2)) IN (?";
      for (std::size_t i = 1; i < query.states.size(); ++i) sql += ",?";
      sql += ")";
    }
    sql += " ORDER BY j.id LIMIT ?";
  }

  ReaderLease r(this);
  sqlite3_stmt*& s = r->list_stmts[sql];
  if (s == nullptr) {
    int rc = sqlite3_prepare_v3(r->db, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) {
      Status st = SqlError(r->db, rc, "prepare list");
      r->list_stmts.erase(sql);
      return st;
    }
  }
  ResetOnExit reset(s);
  int i = 1;
  sqlite3_bind_int64(s, i++, static_cast<std::int64_t>(query.after_id));
  if (!query.queue.empty()) BindText(s, i++, query.queue);
  for (JobState st : query.states) sqlite3_bind_int(s, i++, static_cast<int>(st));
  sqlite3_bind_int64(s, i++, query.limit);

  out.reserve(std::min<std::uint32_t>(query.limit, 1024));
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    JobRecord& job = out.emplace_back();
    Status st = ReadStoredJob(s, &job);
    if (!st.ok()) return st;
  }
  if (rc != SQLITE_DONE) return SqlError(r->db, rc, "list jobs");
  return out;
}

void SqliteStore::TrimStatementCache(Reader& r, std::size_t room) {
  // Shapes are few in practice; a client cycling through every combination must not grow the
  // cache without bound. Called before a search takes its statements, never while it holds one.
  constexpr std::size_t kMaxCached = 256;
  if (r.list_stmts.size() + room <= kMaxCached) return;
  for (auto& [text, stmt] : r.list_stmts) sqlite3_finalize(stmt);
  r.list_stmts.clear();
}

Result<FinishedPage> SqliteStore::NamespaceJobs(const std::string& ns, JobId after_id,
                                                std::uint32_t limit, std::uint32_t max_examined) {
  FinishedPage page;
  if (!IdInRange(after_id)) return page;
  limit = std::max<std::uint32_t>(limit, 1);
  max_examined = std::max<std::uint32_t>(max_examined, 1);
  ReaderLease r(this);
  TrimStatementCache(*r, 2);
  // 1. The id of the max_examined-th stored job after the cursor: the page's upper bound, a
  // rowid range of the jobs table (none: the page reaches the end).
  auto bound_stmt =
      CachedStatement(*r, "SELECT id FROM jobs WHERE id > ?1 ORDER BY id LIMIT 1 OFFSET ?2");
  if (!bound_stmt.ok()) return bound_stmt.status();
  std::int64_t bound = INT64_MAX;
  bool bounded = false;
  {
    sqlite3_stmt* s = *bound_stmt;
    ResetOnExit reset(s);
    sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(after_id));
    sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(max_examined) - 1);
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      bound = sqlite3_column_int64(s, 0);
      bounded = true;
    } else if (rc != SQLITE_DONE) {
      return SqlError(r->db, rc, "bound a namespace page");
    }
  }
  // 2. The namespace's jobs in (after, bound], at most `limit`, each as GetJob reads it.
  auto rows_stmt = CachedStatement(
      *r, JoinedSelect() + " WHERE j.id > ?1 AND j.id <= ?2 AND j.ns = ?3 ORDER BY j.id LIMIT ?4");
  if (!rows_stmt.ok()) return rows_stmt.status();
  sqlite3_stmt* s = *rows_stmt;
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, static_cast<std::int64_t>(after_id));
  sqlite3_bind_int64(s, 2, bound);
  BindText(s, 3, ns);
  sqlite3_bind_int64(s, 4, limit);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    JobRecord& job = page.jobs.emplace_back();
    YM_RETURN_IF_ERROR(ReadStoredJob(s, &job));
  }
  if (rc != SQLITE_DONE) return SqlError(r->db, rc, "read a namespace page");
  page.examined = max_examined;
  if (page.jobs.size() >= limit) {
    page.resume_after = page.jobs.back().id;
  } else {
    page.resume_after = bounded ? static_cast<JobId>(bound) : 0;
  }
  return page;
}

Result<sqlite3_stmt*> SqliteStore::CachedStatement(Reader& r, const std::string& sql) {
  auto it = r.list_stmts.find(sql);
  if (it != r.list_stmts.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(r.db, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(r.db, rc, "prepare \"" + sql + "\"");
  r.list_stmts.emplace(sql, s);
  return s;
}

namespace {

// The index a search reads candidates from, most selective first (docs/storage-format.md,
// "Search"). Each yields ids in ascending order for one key, so a search steps through a run of
// index entries and stops after `limit` matches or `max_examined` candidates, whichever first.
enum class SearchDriver {
  kTag,    // job_tags_by_tag (tag, id)
  kKind,   // outcomes_by_kind (state, kind, id), one run per state
  kQueue,  // outcomes_dead_by_queue (state, queue, id), dead and cancelled: one run per state
  kNs,     // outcomes_by_ns (state, ns, id), one run per state
  kState,  // outcomes_dead_by_state (state, id), dead and cancelled: one run per state
  // `outcomes` itself in id order (its primary key), every state in one run: a search by queue
  // or by state alone that includes succeeded jobs, which those two indexes leave out (format 6:
  // succeeded jobs, the common outcome, pay no entry in them). Each outcome is a candidate.
  kWalk,
};

SearchDriver ChooseDriver(const JobFilter& f, const std::vector<JobState>& states) {
  if (!f.tag.empty()) return SearchDriver::kTag;
  if (!f.kind.empty()) return SearchDriver::kKind;
  const bool succeeded =
      std::find(states.begin(), states.end(), JobState::kSucceeded) != states.end();
  if (!f.queue.empty()) return succeeded ? SearchDriver::kWalk : SearchDriver::kQueue;
  if (!f.ns.empty()) return SearchDriver::kNs;
  return succeeded ? SearchDriver::kWalk : SearchDriver::kState;
}

bool PerState(SearchDriver d) { return d != SearchDriver::kTag && d != SearchDriver::kWalk; }

// The candidates of one run: (id, matches) in ascending id after :a, at most :n. The WHERE
// holds only what the driving index answers, so every row the statement visits is one row it
// returns (and counts); the rest of the filter is the `matches` column, evaluated on the
// outcome row (which carries every filtered column but the tags). `run` only makes the text
// distinct, so that each run of a merge gets its own statement.
std::string CandidatesSql(SearchDriver d, const JobFilter& f, std::size_t n_states,
                          std::size_t run) {
  std::string m = "1";
  auto add = [&](const std::string& term) { m += " AND " + term; };
  std::string sql;
  switch (d) {
    case SearchDriver::kTag:
      // job_tags stays the outer loop (a LEFT JOIN is not reordered). Live jobs carry tags
      // too: they are candidates (no outcome) that do not match, so a tag on many live jobs
      // still costs a bounded call.
      sql =
          " FROM job_tags AS t INDEXED BY job_tags_by_tag LEFT JOIN outcomes AS o ON o.id = t.id"
          " WHERE t.tag = :tag AND t.id > :a AND t.id < :b ORDER BY t.id";
      add("o.id IS NOT NULL");
      break;
    case SearchDriver::kKind:
      sql =
          " FROM outcomes AS o INDEXED BY outcomes_by_kind"
          " WHERE o.state = :state AND o.kind = :kind AND o.id > :a AND o.id < :b ORDER BY o.id";
      break;
    case SearchDriver::kNs:
      sql =
          " FROM outcomes AS o INDEXED BY outcomes_by_ns"
          " WHERE o.state = :state AND o.ns = :ns AND o.id > :a AND o.id < :b ORDER BY o.id";
      break;
    case SearchDriver::kQueue:
      // The literal `state >= 4` lets the planner use the partial index.
      sql =
          " FROM outcomes AS o INDEXED BY outcomes_dead_by_queue"
          " WHERE o.state = :state AND o.state >= 4 AND o.queue = :queue AND o.id > :a AND o.id < "
          ":b"
          " ORDER BY o.id";
      break;
    case SearchDriver::kState:
      sql =
          " FROM outcomes AS o INDEXED BY outcomes_dead_by_state"
          " WHERE o.state = :state AND o.state >= 4 AND o.id > :a AND o.id < :b ORDER BY o.id";
      break;
    case SearchDriver::kWalk:
      sql = " FROM outcomes AS o WHERE o.id > :a AND o.id < :b ORDER BY o.id";
      break;
  }
  if (!PerState(d) && n_states < 3) {
    std::string in = "o.state IN (";
    for (std::size_t i = 0; i < n_states; ++i) in += i == 0 ? ":s0" : ",:s" + std::to_string(i);
    add(in + ")");
  }
  if (d != SearchDriver::kKind && !f.kind.empty()) add("o.kind = :kind");
  if (d != SearchDriver::kQueue && !f.queue.empty()) add("o.queue = :queue");
  if (d != SearchDriver::kNs && !f.ns.empty()) add("o.ns = :ns");
  if (f.created_after_ms) add("o.created_at_ms >= :ca");
  if (f.created_before_ms) add("o.created_at_ms < :cb");
  if (f.finished_after_ms) add("o.finished_at_ms >= :fa");
  if (f.finished_before_ms) add("o.finished_at_ms < :fb");
  if (d != SearchDriver::kTag && !f.tag.empty()) {
    add("EXISTS (SELECT 1 FROM job_tags AS x WHERE x.id = o.id AND x.tag = :tag)");
  }
  const std::string id = d == SearchDriver::kTag ? "t.id" : "o.id";
  return "SELECT " + id + ", " + m + sql + " LIMIT :n /* run " + std::to_string(run) + " */";
}

int BindNamed(sqlite3_stmt* s, const char* name, std::int64_t v) {
  int i = sqlite3_bind_parameter_index(s, name);
  return i == 0 ? SQLITE_OK : sqlite3_bind_int64(s, i, v);
}

int BindNamed(sqlite3_stmt* s, const char* name, std::string_view v) {
  int i = sqlite3_bind_parameter_index(s, name);
  return i == 0 ? SQLITE_OK : BindText(s, i, v);
}

int BindFilter(sqlite3_stmt* s, const JobFilter& f, const std::vector<JobState>& states) {
  int rc = SQLITE_OK;
  for (std::size_t i = 0; i < states.size(); ++i) {
    rc |= BindNamed(s, (":s" + std::to_string(i)).c_str(), static_cast<std::int64_t>(states[i]));
  }
  rc |= BindNamed(s, ":tag", f.tag);
  rc |= BindNamed(s, ":kind", f.kind);
  rc |= BindNamed(s, ":queue", f.queue);
  rc |= BindNamed(s, ":ns", f.ns);
  if (f.created_after_ms) rc |= BindNamed(s, ":ca", *f.created_after_ms);
  if (f.created_before_ms) rc |= BindNamed(s, ":cb", *f.created_before_ms);
  if (f.finished_after_ms) rc |= BindNamed(s, ":fa", *f.finished_after_ms);
  if (f.finished_before_ms) rc |= BindNamed(s, ":fb", *f.finished_before_ms);
  return rc;
}

}  // namespace

Result<std::vector<std::string>> SqliteStore::ExplainSearch(const FinishedSearch& query) {
  const std::vector<JobState> states = query.filter.FinishedStates();
  const SearchDriver driver = ChooseDriver(query.filter, states);
  std::vector<std::string> out;
  ReaderLease r(this);
  for (const std::string& sql : {CandidatesSql(driver, query.filter, states.size(), 0),
                                 JoinedSelect() + " WHERE j.id = ?1"}) {
    Stmt s;
    YM_RETURN_IF_ERROR(s.Prepare(r->db, "EXPLAIN QUERY PLAN " + sql));
    std::string plan;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      const auto* detail = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 3));
      if (!plan.empty()) plan += '\n';
      plan += detail != nullptr ? detail : "";
    }
    if (rc != SQLITE_DONE) return SqlError(r->db, rc, "explain search");
    out.push_back(std::move(plan));
  }
  return out;
}

namespace {

// The smallest id x such that every stored job with id >= x was created at or after `t_ms`,
// and every one below it before: creation times never decrease in id order
// (Scheduler::Enqueue), so a created-at bound is an id bound, found by a binary search over the
// jobs' primary key (at most ~64 probes, each one b-tree seek) instead of a test of every
// candidate. max_id + 1 when no job was created at or after `t_ms`.
Result<JobId> FirstIdCreatedAtOrAfter(sqlite3* db, sqlite3_stmt* first_at_or_after, JobId max_id,
                                      std::int64_t t_ms) {
  JobId lo = 1;
  JobId hi = max_id + 1;  // invariant: jobs below lo were created before t_ms; the first job at
                          // or after hi (if any) was created at or after it
  while (lo < hi) {
    const JobId mid = lo + (hi - lo) / 2;
    ResetOnExit reset(first_at_or_after);
    sqlite3_bind_int64(first_at_or_after, 1, static_cast<std::int64_t>(mid));
    const int rc = sqlite3_step(first_at_or_after);
    if (rc == SQLITE_DONE) {  // no job at or after mid (max_id was read in the same snapshot)
      hi = mid;
      continue;
    }
    if (rc != SQLITE_ROW) return SqlError(db, rc, "find created_at bound");
    const auto id = static_cast<JobId>(sqlite3_column_int64(first_at_or_after, 0));
    if (sqlite3_column_int64(first_at_or_after, 1) >= t_ms) {
      hi = mid;
    } else {
      lo = id + 1;  // [mid, id] holds one job, created before t_ms
    }
  }
  return lo;
}

}  // namespace

Result<FinishedPage> SqliteStore::SearchFinished(const FinishedSearch& query) {
  FinishedPage page;
  const JobFilter& f = query.filter;
  const std::vector<JobState> states = f.FinishedStates();
  if (query.limit == 0 || states.empty() || !IdInRange(query.after_id)) return page;
  const SearchDriver driver = ChooseDriver(f, states);
  const std::uint32_t budget = std::max<std::uint32_t>(query.max_examined, 1);

  ReaderLease r(this);
  // One read transaction: the candidates and the rows fetched for them are one snapshot.
  YM_RETURN_IF_ERROR(Exec(r->db, "BEGIN", "begin search"));
  struct EndRead {
    sqlite3* db;
    ~EndRead() {
      // A reader left inside a transaction would keep an old snapshot for good.
      if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      }
    }
  } end_read{r->db};

  // Created-at bounds are an id range (FirstIdCreatedAtOrAfter): candidates outside it are
  // never read, so `created_after` the middle of a million jobs starts there at once.
  const std::size_t n_runs = PerState(driver) ? states.size() : 1;
  TrimStatementCache(*r, n_runs + 2);
  JobId after = query.after_id;
  JobId before = static_cast<JobId>(std::numeric_limits<std::int64_t>::max());
  if (f.created_after_ms || f.created_before_ms) {
    auto max_stmt = CachedStatement(*r, "SELECT max(id) FROM jobs");
    if (!max_stmt.ok()) return max_stmt.status();
    auto probe = CachedStatement(
        *r, "SELECT id, created_at_ms FROM jobs WHERE id >= ?1 ORDER BY id LIMIT 1");
    if (!probe.ok()) return probe.status();
    JobId max_id = 0;
    {
      ResetOnExit reset(*max_stmt);
      const int rc = sqlite3_step(*max_stmt);
      if (rc != SQLITE_ROW) return SqlError(r->db, rc, "read max id");
      max_id = static_cast<JobId>(std::max<std::int64_t>(sqlite3_column_int64(*max_stmt, 0), 0));
    }
    if (f.created_after_ms) {
      auto lo = FirstIdCreatedAtOrAfter(r->db, *probe, max_id, *f.created_after_ms);
      if (!lo.ok()) return lo.status();
      after = std::max(after, *lo - 1);
    }
    if (f.created_before_ms) {
      auto hi = FirstIdCreatedAtOrAfter(r->db, *probe, max_id, *f.created_before_ms);
      if (!hi.ok()) return hi.status();
      before = *hi;
    }
    if (after + 1 >= before) return page;  // the range is empty: the search is complete
  }

  // One run of candidates per state for the per-state indexes, merged by id; one run else.
  struct Run {
    sqlite3_stmt* s = nullptr;
    bool live = false;  // positioned on a row
  };
  std::vector<Run> runs(n_runs);
  struct ResetRuns {
    std::vector<Run>* runs;
    ~ResetRuns() {
      for (Run& run : *runs) {
        if (run.s != nullptr) sqlite3_reset(run.s);
      }
    }
  } reset_runs{&runs};
  for (std::size_t i = 0; i < n_runs; ++i) {
    auto stmt = CachedStatement(*r, CandidatesSql(driver, f, states.size(), i));
    if (!stmt.ok()) return stmt.status();
    sqlite3_stmt* s = *stmt;
    runs[i].s = s;
    int rc = BindFilter(s, f, states);
    if (PerState(driver)) rc |= BindNamed(s, ":state", static_cast<std::int64_t>(states[i]));
    rc |= BindNamed(s, ":a", static_cast<std::int64_t>(after));
    rc |= BindNamed(s, ":b", static_cast<std::int64_t>(before));
    rc |= BindNamed(s, ":n", static_cast<std::int64_t>(budget));
    if (rc != SQLITE_OK) return SqlError(r->db, rc, "bind search");
  }
  auto step = [&](Run& run) -> Status {
    int rc = sqlite3_step(run.s);
    run.live = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(r->db, rc, "search jobs");
    return Status::Ok();
  };
  for (Run& run : runs) YM_RETURN_IF_ERROR(step(run));

  // Every candidate with id <= the last one examined has been examined (the runs are merged by
  // id), so that id is where the next call resumes when this one stops early.
  std::vector<JobId> matched;
  for (;;) {
    Run* next = nullptr;
    for (Run& run : runs) {
      if (run.live &&
          (next == nullptr || sqlite3_column_int64(run.s, 0) < sqlite3_column_int64(next->s, 0))) {
        next = &run;
      }
    }
    if (next == nullptr) break;  // every run is exhausted: the search reached the end
    const JobId id = static_cast<JobId>(sqlite3_column_int64(next->s, 0));
    ++page.examined;
    if (sqlite3_column_int(next->s, 1) != 0) matched.push_back(id);
    if (matched.size() >= query.limit || page.examined >= budget) {
      page.resume_after = id;
      break;
    }
    YM_RETURN_IF_ERROR(step(*next));
  }

  // The matching rows, whole.
  sqlite3_stmt* get = r->get_job;
  page.jobs.reserve(matched.size());
  for (JobId id : matched) {
    ResetOnExit reset(get);
    sqlite3_bind_int64(get, 1, static_cast<std::int64_t>(id));
    int rc = sqlite3_step(get);
    if (rc == SQLITE_DONE) continue;
    if (rc != SQLITE_ROW) return SqlError(r->db, rc, "get job " + std::to_string(id));
    JobRecord job;
    Status st = ReadStoredJob(get, &job);
    if (!st.ok()) return st;
    // A job that finished is in `outcomes`; the snapshot is the candidates', so it still is.
    page.jobs.push_back(std::move(job));
  }
  return page;
}

Result<std::vector<FinishedCount>> SqliteStore::CountFinished(const FinishedCountQuery& query) {
  return finished_.Query(query);
}

Status SqliteStore::Backup(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) || ec) {
    return InvalidRequest("backup target " + path + " already exists");
  }
  // Copy into a side file and rename it into place, so `path` only ever names a complete backup.
  std::string partial = path + ".partial";
  std::filesystem::remove(partial, ec);

  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(partial.c_str(), &dest,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, Vfs());
  Status st;
  if (rc != SQLITE_OK) {
    st = SqlError(dest, rc, "open backup target " + partial);
  } else {
    ReaderLease r(this);
    // One step of -1 pages copies everything inside one read transaction of the source: a
    // consistent snapshot, while the writer goes on committing to the WAL.
    sqlite3_backup* b = sqlite3_backup_init(dest, "main", r->db, "main");
    if (b == nullptr) {
      st = SqlError(dest, sqlite3_errcode(dest), "start backup");
    } else {
      rc = sqlite3_backup_step(b, -1);
      int finish = sqlite3_backup_finish(b);
      if (rc != SQLITE_DONE) {
        st = SqlError(dest, rc, "backup step");
      } else if (finish != SQLITE_OK) {
        st = SqlError(dest, finish, "finish backup");
      }
    }
  }
  if (dest != nullptr && sqlite3_close(dest) != SQLITE_OK && st.ok()) {
    st = IoError("close backup target " + partial);
  }
  if (st.ok()) {
    std::filesystem::rename(partial, path, ec);
    if (ec) st = IoError("rename " + partial + " to " + path + ": " + ec.message());
  }
  if (st.ok()) st = SyncDirectoryOf(path);
  if (!st.ok()) std::filesystem::remove(partial, ec);
  return st;
}

StoreStats SqliteStore::Stats() {
  StoreStats stats;
  std::error_code ec;
  auto size = std::filesystem::file_size(options_.path, ec);
  if (!ec) stats.file_bytes = size;
  size = std::filesystem::file_size(options_.path + "-wal", ec);
  if (!ec) stats.wal_bytes = size;
  stats.commits = commits_.load(std::memory_order_relaxed);
  stats.journal_mode = journal_mode_;
  stats.synchronous = synchronous_;
  return stats;
}

}  // namespace ym
