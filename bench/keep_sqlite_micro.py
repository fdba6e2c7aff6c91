#!/usr/bin/env python3
"""What an ack costs in SQLite alone, for each way of keeping a finished job (docs/benchmarks.md,
"Keeping finished jobs").

Builds a table shaped like the store's `jobs` (format 5 columns), fills it with --jobs rows
(~100-byte payloads), then "acks" them all in transactions of --batch rows with one variant's
statements, and prints the CPU time per ack. No server, no fsync (synchronous=OFF): it isolates
the cost of the row and index writes that the ack's commit performs. Variants:

    delete      delete-on-ack: DELETE the job row
    update0     format 5 without indexes: UPDATE the wide row (state, finish time, result)
    update5     format 5: the same UPDATE with its five partial `state >= 3` indexes
    move0       a second wide table: INSERT ... SELECT the row there, then DELETE it
    outcome0    format 6 without indexes: INSERT a narrow outcome row keyed by job id
    outcome1    ... with the retention index (queue, state, finished_at_ms)
    outcome3    format 6 for a succeeded job: retention, kind and namespace indexes (the queue
                and state-only indexes are partial on dead/cancelled, so a succeeded row skips them)

    python3 bench/keep_sqlite_micro.py [--jobs 100000] [--batch 100] [variant ...]
"""

import argparse
import os
import sqlite3
import tempfile
import time

JOBS = """CREATE TABLE jobs (id INTEGER PRIMARY KEY, ns TEXT NOT NULL, queue TEXT NOT NULL,
 kind TEXT NOT NULL, state INTEGER NOT NULL, priority INTEGER NOT NULL, payload TEXT NOT NULL,
 run_at_ms INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
 finished_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL,
 runs INTEGER NOT NULL, backoff_initial_ms INTEGER NOT NULL, backoff_max_ms INTEGER NOT NULL,
 backoff_multiplier REAL NOT NULL, lease_ms INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
 concurrency_key TEXT NOT NULL, tags TEXT, errors TEXT, dead_reason TEXT NOT NULL,
 result TEXT NOT NULL, cancel_requested INTEGER NOT NULL, timeout_ms INTEGER NOT NULL)"""

FORMAT5_INDEXES = """
CREATE INDEX a ON jobs (state, queue, id) WHERE state >= 3;
CREATE INDEX b ON jobs (state, queue, finished_at_ms) WHERE state >= 3;
CREATE INDEX c ON jobs (state, id) WHERE state >= 3;
CREATE INDEX d ON jobs (state, kind, id) WHERE state >= 3;
CREATE INDEX e ON jobs (state, ns, id) WHERE state >= 3;"""

OUTCOMES = """CREATE TABLE outcomes (id INTEGER PRIMARY KEY, state INTEGER NOT NULL,
 queue TEXT NOT NULL, kind TEXT NOT NULL, ns TEXT NOT NULL, finished_at_ms INTEGER NOT NULL,
 updated_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, result TEXT NOT NULL, errors TEXT,
 dead_reason TEXT NOT NULL);"""
RETENTION = "CREATE INDEX r ON outcomes (queue, state, finished_at_ms);"
SEARCH = ("CREATE INDEX k ON outcomes (state, kind, id); CREATE INDEX n ON outcomes (state, ns, id);"
          "CREATE INDEX q ON outcomes (state, queue, id) WHERE state >= 4;"
          "CREATE INDEX s ON outcomes (state, id) WHERE state >= 4;")

RESULT = '{"ok":true}'


def delete(db, ids, t):
    db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])


def update(db, ids, t):
    db.executemany("UPDATE jobs SET state = 3, finished_at_ms = ?, updated_at_ms = ?, "
                   "attempts = 1, result = ? WHERE id = ?", [(t, t, RESULT, i) for i in ids])


def move(db, ids, t):
    cols = [c.split()[0] for c in JOBS[JOBS.index("(") + 1:JOBS.rindex(")")].split(",")]
    picked = ", ".join("3" if c == "state" else "?" if c in ("updated_at_ms", "finished_at_ms")
                       else "'" + RESULT + "'" if c == "result" else c for c in cols)
    db.executemany(f"INSERT INTO finished SELECT {picked} FROM jobs WHERE id = ?",
                   [(t, t, i) for i in ids])
    delete(db, ids, t)


def outcome(db, ids, t):
    db.executemany("INSERT INTO outcomes VALUES (?, 3, 'bench', 'work', 'default', ?, ?, 1, ?, "
                   "NULL, '')", [(i, t, t, RESULT) for i in ids])


VARIANTS = {
    "delete": ("", delete),
    "update0": ("", update),
    "update5": (FORMAT5_INDEXES, update),
    "move0": (JOBS.replace("CREATE TABLE jobs", "CREATE TABLE finished") + ";", move),
    "outcome0": (OUTCOMES, outcome),
    "outcome1": (OUTCOMES + RETENTION, outcome),
    "outcome3": (OUTCOMES + RETENTION + SEARCH, outcome),
}


def run(name, jobs, batch, path):
    extra, ack = VARIANTS[name]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.executescript(JOBS + ";" + extra)
    t0 = 1_700_000_000_000
    payload = '{"n":%d,"pad":"' + "x" * 80 + '"}'
    db.execute("BEGIN")
    db.executemany("INSERT INTO jobs VALUES (?, 'default', 'bench', 'work', 0, 0, ?, ?, ?, ?, 0, 0,"
                   " 3, 0, 1000, 60000, 2.0, 30000, '', '', NULL, NULL, '', '', 0, 0)",
                   [(i, payload % i, t0, t0, t0) for i in range(1, jobs + 1)])
    db.execute("COMMIT")
    ids = list(range(1, jobs + 1))
    start = time.process_time()
    for k in range(0, jobs, batch):
        db.execute("BEGIN")
        ack(db, ids[k:k + batch], t0 + 100_000 + k)
        db.execute("COMMIT")
    cpu = time.process_time() - start
    db.close()
    return cpu * 1e6 / jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("variants", nargs="*", metavar="VARIANT",
                    help="any of " + ", ".join(VARIANTS) + " (default: all)")
    a = ap.parse_args()
    if a.jobs < 1 or a.batch < 1:
        ap.error("--jobs and --batch must be >= 1")
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown:
        ap.error("unknown variant " + ", ".join(unknown) + "; choose from " + ", ".join(VARIANTS))
    with tempfile.TemporaryDirectory(prefix="ym-keep-micro-") as d:
        for name in a.variants or list(VARIANTS):
            print(f"{name:9s} {run(name, a.jobs, a.batch, os.path.join(d, 'db.sqlite')):6.2f} "
                  "us/ack", flush=True)


if __name__ == "__main__":
    main()
