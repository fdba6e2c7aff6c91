#!/usr/bin/env python3
"""End to end over HTTP: one queue against 10,000 queues x 1,000 concurrency keys (issue 10).

For each shape and repeat, starts a fresh `yardmaster server` with default options on
127.0.0.1 (a free port) and a temporary data directory, runs `ym_bench spread` against it
(pre-fill --jobs in batches, then --consumers workers lease and ack until every job is acked),
reads the server's CPU time from /proc, stops the server and removes the directory. Every run is
bounded by --jobs and --max-seconds. Prints a Markdown table of medians. Usage:

    python3 bench/spread_bench.py [--build build/release] [--repeat 3] [--jobs 200000]

--build names a directory holding `yardmaster` and `ym_bench` (a "before" build can be measured
with the current load generator by putting both binaries, or links to them, in one directory).
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402  (Server, cpu_seconds, machine)

SHAPES = [
    ("one queue, no limit", ["--queues", "1", "--keys", "0"]),
    ("10,000 queues x 1,000 keys (mutex per key), leases of 64", ["--queues", "10000", "--keys",
                                                                   "1000"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=200_000)
    ap.add_argument("--consumers", type=int, default=4)
    ap.add_argument("--max-seconds", type=int, default=300)
    a = ap.parse_args()
    common = ["--jobs", str(a.jobs), "--connections", "4", "--consumers", str(a.consumers),
              "--batch", "100", "--max-seconds", str(a.max_seconds)]
    print(f"Machine: {run_all.machine()}; build: {os.path.abspath(a.build)}\n")
    print("| shape | command | end_to_end_jobs_per_s | drain_jobs_per_s | prefill_jobs_per_s "
          "| server CPU per job | jobs per lease |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    medians = {}
    for label, args in SHAPES:
        runs = []
        cmd = ""
        for _ in range(a.repeat):
            result, cpu, cmd = run_all.measure(a.build, "spread", [*common, *args])
            if not result.get("completed") or result.get("errors"):
                print(f"run cut short or with errors: {result}", file=sys.stderr)
            jobs = result.get("drained_jobs") or 0
            runs.append((result.get("end_to_end_jobs_per_s", 0), result.get("drain_jobs_per_s", 0),
                         result.get("prefill_jobs_per_s", 0),
                         cpu * 1e6 / jobs if jobs else float("nan"),
                         result.get("jobs_per_nonempty_lease", 0)))
            sys.stdout.flush()
        cols = list(zip(*runs))
        med = [statistics.median(c) for c in cols]
        medians[label] = med
        print(f"| {label} | `{cmd}` | {med[0]:,.0f} (runs: "
              f"{', '.join(f'{v:,.0f}' for v in cols[0])}) | {med[1]:,.0f} | {med[2]:,.0f} | "
              f"{med[3]:.1f} µs (runs: {', '.join(f'{v:.1f}' for v in cols[3])}) | "
              f"{med[4]:.1f} |")
    one, many = (medians[label] for label, _ in SHAPES)
    if many[0] > 0 and one[3] > 0:
        print(f"\nratio one queue / 10,000 x 1,000 end to end: {one[0] / many[0]:.2f}x throughput, "
              f"{many[3] / one[3]:.2f}x server CPU per job")


if __name__ == "__main__":
    main()
