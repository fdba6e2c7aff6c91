#!/usr/bin/env python3
"""What the search indexes cost on the write path (docs/benchmarks.md, "Search").

A/B with one binary: "with" is a fresh data directory as the server creates it; "without" is
the same after dropping the search indexes of finished jobs (format 6: outcomes_by_kind,
outcomes_by_ns, and the dead/cancelled-only outcomes_dead_by_queue and outcomes_dead_by_state)
and the job_tags trigger, so that for jobs without tags (the benchmark's) a finish writes only
the outcome row and its retention index entry. Each run starts a fresh server, runs `ym_bench
drain` (pre-fill then lease+ack in batches), and reads the server's CPU time from /proc. Run
with the server keeping succeeded jobs (the only case the indexes see a write: a kept job's
outcome enters them) and with delete-on-ack. Bounded by ym_bench's --jobs and --max-seconds.

    python3 bench/search_index_cost.py --build build/release [--jobs 200000] [--repeat 3]
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402

# The server prepares its job_tags insert at open, so the (empty) table stays; jobs without tags
# never write it, and without the trigger their deletes do not look at it either.
DROP = ("DROP TRIGGER job_tags_delete; DROP INDEX outcomes_by_kind; DROP INDEX outcomes_by_ns;"
        "DROP INDEX outcomes_dead_by_queue; DROP INDEX outcomes_dead_by_state;")


def one(build, jobs, keep, with_indexes):
    d = tempfile.mkdtemp(prefix="ym-idx-bench-")
    try:
        args = ["--retention-succeeded-ms", "3600000"] if keep else []
        s = run_all.Server(build, d, args)
        s.wait_ready()
        s.stop()
        if not with_indexes:
            db = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".db")][0]
            c = sqlite3.connect(db)
            c.executescript(DROP)
            c.close()
        s = run_all.Server(build, d, args)
        s.wait_ready()
        cpu0 = run_all.cpu_seconds(s.proc.pid)
        result, cmd = run_all.bench(build, s.url, "drain", "--jobs", str(jobs), "--connections",
                                    "4", "--consumers", "4", "--batch", "100", "--max-seconds",
                                    "300")
        cpu = run_all.cpu_seconds(s.proc.pid) - cpu0
        s.stop()
        return result, cpu * 1e6 / (2 * jobs), cmd
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--jobs", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"Machine: {run_all.machine()}\n")
    print("| succeeded jobs | search indexes | drain_jobs_per_s | end_to_end_jobs_per_s | "
          "server CPU per job (enqueue + lease/ack) |")
    print("| --- | --- | --- | --- | --- |")
    cmd = ""
    for keep in (True, False):
        # Interleaved, so that a change in the machine's load hits both sides alike.
        runs = {True: [], False: []}
        for _ in range(a.repeat):
            for with_indexes in (False, True):
                result, cpu, cmd = one(a.build, a.jobs, keep, with_indexes)
                runs[with_indexes].append((result["drain_jobs_per_s"],
                                           result["end_to_end_jobs_per_s"], cpu))
        for with_indexes in (False, True):
            r = runs[with_indexes]
            med = [statistics.median(x[i] for x in r) for i in range(3)]
            print(f"| {'kept 1 h' if keep else 'deleted with the ack'} | "
                  f"{'with' if with_indexes else 'without'} | {med[0]:,.0f} "
                  f"(runs: {', '.join(f'{x[0]:,.0f}' for x in r)}) | {med[1]:,.0f} | "
                  f"{med[2]:.1f} µs |")
        sys.stdout.flush()
    print(f"\ncommand: `{cmd}`")


if __name__ == "__main__":
    main()
