#!/usr/bin/env python3
"""Search benchmark (docs/benchmarks.md, "Search"): time per page of GET /v1/jobs for each
filter over N finished jobs, to show it does not grow with N.

For each size in --sizes: starts a release `yardmaster server` on a fresh temporary data
directory (so the server creates the schema), stops it, fills the file with N finished jobs
directly through SQLite (much faster than running N jobs through the API; the rows and job_tags
entries have the shape the store writes, see docs/storage-format.md), starts the server again
and times pages of every filter: the first page, and pages further on by following cursors.
Everything is bounded: --pages pages per filter, a 60 s HTTP timeout per request.

    python3 bench/search_bench.py --build build/release --sizes 10000,1000000 [--pages 20]

Distribution of the generated jobs (ids in creation order, created 10 ms apart):
  queues q0..q9, kinds k0..k19, namespaces n0..n3 (about uniform);
  states 90% succeeded, 7% dead, 3% cancelled; finished 0..60 s after creation;
  tags: 30% carry "common", 0.1% carry "rare".
"""

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ADDRESS_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
BASE_MS = 1_700_000_000_000
# Keep every generated job: retention would otherwise purge them (they finished "long ago").
KEEP = ["--retention-succeeded-ms", "315360000000", "--retention-dead-ms", "315360000000",
        "--retention-cancelled-ms", "315360000000"]


def start(build, data_dir):
    proc = subprocess.Popen(
        [os.path.join(build, "yardmaster"), "server", "--listen", "127.0.0.1:0",
         "--data-dir", data_dir, *KEEP], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = ADDRESS_RE.search(line)
        if m:
            url = f"http://127.0.0.1:{m.group(1)}"
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
                        if r.status == 200:
                            # Keep draining stderr so the server never blocks on a full pipe.
                            threading.Thread(target=lambda: [None for _ in proc.stderr],
                                             daemon=True).start()
                            return proc, url
                except OSError:
                    time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill(db_path, n):
    """N finished jobs, generated inside SQLite (a recursive CTE; a multiplicative hash of the id
    stands in for randomness, so every run builds the same file)."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    h = "((i * 2654435761) % 4294967296)"  # hash of the id, 0..2^32
    g = "((i * 40503 + 7) % 65536)"  # a second, independent one
    cols = ("id, ns, queue, kind, state, priority, payload, run_at_ms, created_at_ms, "
            "updated_at_ms, finished_at_ms, attempts, max_attempts, runs, backoff_initial_ms, "
            "backoff_max_ms, backoff_multiplier, lease_ms, idempotency_key, concurrency_key, "
            "tags, errors, dead_reason, result, cancel_requested")
    outcome_cols = ("id, ns, queue, kind, created_at_ms, state, priority, run_at_ms, "
                    "updated_at_ms, finished_at_ms, attempts, max_attempts, runs, "
                    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, lease_ms, errors, "
                    "dead_reason, result, cancel_requested")
    state = f"CASE WHEN {h} % 100 < 90 THEN 3 WHEN {h} % 100 < 97 THEN 4 ELSE 5 END"
    created = f"({BASE_MS} + i * 10)"
    finished = f"({created} + {g} % 60000)"
    tags = (f"CASE WHEN {g} % 10 < 3 AND {h} % 1000 = 7 THEN '[\"common\",\"rare\"]' "
            f"WHEN {g} % 10 < 3 THEN '[\"common\"]' WHEN {h} % 1000 = 7 THEN '[\"rare\"]' END")
    # The job rows as enqueued (ready, no attempt yet): a finish leaves them as they are.
    db.execute(f"""
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
        INSERT INTO jobs ({cols})
        SELECT i, 'n' || ({h} / 7 % 4), 'q' || ({h} / 11 % 10), 'k' || ({h} / 13 % 20), 1,
               0, '{{"i":' || i || '}}', {created}, {created}, {created}, 0, 0, 10, 0,
               1000, 3600000, 2.0, 30000, '', '', {tags}, NULL, '', '', 0
        FROM c""")
    # Each job's outcome (format 6, docs/storage-format.md "Format 6"), with the keys it copies
    # from its job row.
    db.execute(f"""
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
        INSERT INTO outcomes ({outcome_cols})
        SELECT i, 'n' || ({h} / 7 % 4), 'q' || ({h} / 11 % 10), 'k' || ({h} / 13 % 20),
               {created}, {state}, 0, {created}, {finished}, {finished}, 1, 10, 1, 1000, 3600000,
               2.0, 30000, NULL, CASE WHEN {state} = 4 THEN 'max_attempts_exceeded' ELSE '' END,
               '', 0
        FROM c""")
    # What the store writes beside each tagged job (docs/storage-format.md, job_tags).
    db.execute("INSERT INTO job_tags (id, tag) SELECT jobs.id, t.value "
               "FROM jobs, json_each(jobs.tags) AS t WHERE jobs.tags IS NOT NULL")
    db.execute("UPDATE meta SET value = ? WHERE key = 'next_id'", (n + 1,))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def get(url, path):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url + path, timeout=60) as r:
        body = json.loads(r.read())
    return time.perf_counter() - t0, body


FILTERS = [
    {},
    {"state": "dead"},
    {"queue": "q3"},
    {"queue": "q3", "state": "succeeded"},
    {"kind": "k7"},
    {"namespace": "n2"},
    {"tag": "common"},
    {"tag": "rare"},
    {"kind": "k7", "tag": "common"},
    {"queue": "q3", "kind": "k7", "state": "dead"},
    {"created_after": None},  # filled in: the creation time of the middle job
    {"finished_before": None},  # filled in: 10% into the finish times
]


def run_size(build, n, pages, limit):
    tmp = tempfile.mkdtemp(prefix="ym-search-bench-")
    try:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        proc, _ = start(build, data)
        stop(proc)
        db_path = [os.path.join(data, f) for f in os.listdir(data) if f.endswith(".db")][0]
        t0 = time.monotonic()
        fill(db_path, n)
        fill_s = time.monotonic() - t0
        proc, url = start(build, data)
        try:
            results = []
            for f in FILTERS:
                f = dict(f)
                if "created_after" in f:
                    f["created_after"] = BASE_MS + (n // 2) * 10
                if "finished_before" in f:
                    f["finished_before"] = BASE_MS + (n // 10) * 10
                times, items, cursor = [], 0, None
                for _ in range(pages):
                    q = dict(f, limit=limit)
                    if cursor:
                        q["cursor"] = cursor
                    dt, body = get(url, "/v1/jobs?" + urllib.parse.urlencode(q))
                    times.append(dt * 1000)
                    items += len(body["items"])
                    cursor = body["next_cursor"]
                    if not cursor:
                        break
                results.append({
                    "filter": "&".join(f"{k}={v}" for k, v in f.items()) or "(none)",
                    "pages": len(times), "items_per_page": items / len(times),
                    "first_ms": times[0], "median_ms": statistics.median(times),
                    "max_ms": max(times)})
            return {"jobs": n, "fill_s": fill_s, "filters": results}
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [run_size(args.build, int(s), args.pages, args.limit) for s in args.sizes.split(",")]
    if args.json:
        print(json.dumps(runs))
        return
    print("| filter | " + " | ".join(
        f"{r['jobs']:,} jobs: median ms/page (first, max; items/page)" for r in runs) + " |")
    print("| --- | " + " | ".join("---" for _ in runs) + " |")
    for i, f in enumerate(runs[0]["filters"]):
        cells = []
        for r in runs:
            x = r["filters"][i]
            cells.append(f"{x['median_ms']:.2f} ({x['first_ms']:.2f}, {x['max_ms']:.2f}; "
                         f"{x['items_per_page']:.0f})")
        print(f"| `{f['filter']}` | " + " | ".join(cells) + " |")
    for r in runs:
        print(f"\nfill of {r['jobs']:,} jobs: {r['fill_s']:.1f} s")


if __name__ == "__main__":
    main()
