#!/usr/bin/env python3
"""What keeping finished jobs costs: an interleaved A/B of kept vs delete-on-ack.

docs/benchmarks.md, "Keeping finished jobs". Each run starts a fresh release server on
127.0.0.1 with a fresh temporary data directory, runs `ym_bench drain` (pre-fill, then lease +
ack in batches over 4 connections) and reads the server's CPU time from /proc. "kept" is the
default (succeeded jobs kept 24 h); "delete" is `--retention-succeeded-ms 0` (delete-on-ack).
The two alternate within a round and the order flips each round, so that the machine's drift
(other load on a shared machine) falls on both alike: compare the ratios of one round, the
absolute figures are noisy. Bounded by ym_bench's --jobs and --max-seconds.

    python3 bench/keep_cost.py --build build/release [--jobs 200000] [--rounds 3]

--restart-kept N instead times a restart with N kept finished jobs: drain N jobs (all kept),
SIGKILL the server, and time a new server until /readyz (the recovery reads every job row),
--restarts times in a row (the first one also replays the WAL the drain left);
--builds A B ... compares several builds (e.g. before and after a format change) that way.
"""

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402


def drain(build, jobs, keep):
    d = tempfile.mkdtemp(prefix="ym-keep-bench-")
    try:
        s = run_all.Server(build, d, [] if keep else ["--retention-succeeded-ms", "0"])
        s.wait_ready()
        c0 = run_all.cpu_seconds(s.proc.pid)
        res, _ = run_all.bench(build, s.url, "drain", "--jobs", str(jobs), "--connections", "4",
                               "--consumers", "4", "--batch", "100", "--max-seconds", "600")
        cpu = run_all.cpu_seconds(s.proc.pid) - c0
        s.stop()
        # Two operations per job (enqueue and lease+ack): CPU per operation.
        return {"drain": res.get("drain_jobs_per_s", 0),
                "e2e": res.get("end_to_end_jobs_per_s", 0),
                "cpu_us": cpu * 1e6 / (2 * jobs)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def restart(build, jobs, restarts):
    d = tempfile.mkdtemp(prefix="ym-keep-restart-")
    try:
        s = run_all.Server(build, d)
        s.wait_ready()
        run_all.bench(build, s.url, "drain", "--jobs", str(jobs), "--connections", "4",
                      "--consumers", "4", "--batch", "100", "--max-seconds", "900")
        times = []
        for _ in range(restarts):
            s.stop(signal.SIGKILL)
            start = time.monotonic()
            s = run_all.Server(build, d)
            s.wait_ready(timeout=600)
            times.append(time.monotonic() - start)
        s.stop()
        return times
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build/release")
    p.add_argument("--jobs", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--restart-kept", type=int, default=0, metavar="N")
    p.add_argument("--builds", nargs="+", help="with --restart-kept: builds to compare")
    p.add_argument("--restarts", type=int, default=3,
                   help="with --restart-kept: kill -9 and restart this many times in a row")
    a = p.parse_args()

    if a.restart_kept:
        builds = a.builds or [a.build]
        print(f"| build | restart with {a.restart_kept:,} kept jobs, {a.restarts} in a row |")
        print("|---|---|")
        for r in range(a.rounds):
            for b in (builds if r % 2 == 0 else list(reversed(builds))):
                times = restart(b, a.restart_kept, a.restarts)
                print(f"| {b} | {' · '.join(f'{t:.2f} s' for t in times)} |", flush=True)
        return

    print(f"{a.jobs:,} jobs, `ym_bench drain --connections 4 --consumers 4 --batch 100`\n")
    print("| round | mode | drain jobs/s | end_to_end jobs/s | server CPU µs/op |")
    print("|---|---|---|---|---|")
    ratios = {"drain": [], "e2e": [], "cpu": []}
    for r in range(a.rounds):
        got = {}
        for keep in ((True, False) if r % 2 == 0 else (False, True)):
            m = drain(a.build, a.jobs, keep)
            got[keep] = m
            print(f"| {r + 1} | {'kept' if keep else 'delete-on-ack'} | {m['drain']:,.0f} | "
                  f"{m['e2e']:,.0f} | {m['cpu_us']:.2f} |", flush=True)
        ratios["drain"].append(got[True]["drain"] / got[False]["drain"])
        ratios["e2e"].append(got[True]["e2e"] / got[False]["e2e"])
        ratios["cpu"].append(got[True]["cpu_us"] / got[False]["cpu_us"])
    print()
    for k, name in (("drain", "drain"), ("e2e", "end_to_end"), ("cpu", "CPU per op")):
        v = ratios[k]
        print(f"kept / delete-on-ack {name}: median {statistics.median(v):.2f} "
              f"(rounds: {', '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
