#!/usr/bin/env python3
"""What a change costs end to end: an interleaved A/B of two (or more) builds of `yardmaster`.

docs/benchmarks.md, "Issue 12 as a whole" (and any later before/after). Each run starts a fresh
server of one build on 127.0.0.1 with a fresh temporary data directory and the default options
(plus --server-arg values, given to every build), runs the same `ym_bench drain` (pre-fill, then
lease + ack in batches over 4 connections; one `ym_bench`, --driver, drives all), and
reads the server's CPU time from /proc. While it runs, a thread scrapes GET /metrics once a
second, as a (busy) Prometheus would, so the exposition's cost is in the figures. The builds
alternate within a round and the order flips each round, so that the drift of a shared machine
falls on all alike. Prints each run and then the medians; bounded by ym_bench's --jobs and
--max-seconds and by --rounds.

    python3 bench/build_cost.py --builds /path/before/build/release build/release \
        [--jobs 100000] [--rounds 7]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402


def scrape_every_second(url, stop):
    n = 0
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
                r.read()
            n += 1
        except OSError:
            pass
    return n


def one_run(build, driver, jobs, server_args):
    d = tempfile.mkdtemp(prefix="ym-build-cost-")
    try:
        s = run_all.Server(build, d, server_args)
        stop = threading.Event()
        try:
            s.wait_ready()
            scraper = threading.Thread(target=scrape_every_second, args=(s.url, stop),
                                       daemon=True)
            scraper.start()
            c0 = run_all.cpu_seconds(s.proc.pid)
            res, cmd = run_all.bench(driver, s.url, "drain", "--jobs", str(jobs),
                                     "--connections", "4", "--consumers", "4", "--batch", "100",
                                     "--max-seconds", "300")
            cpu = run_all.cpu_seconds(s.proc.pid) - c0
            stop.set()
            scraper.join(timeout=10)
        finally:
            stop.set()
            s.stop()
        # Per job: its enqueue and its lease + ack together (both phases of the drain).
        return {
            "e2e": float(res["end_to_end_jobs_per_s"]),
            "cpu_us_per_job": cpu * 1e6 / jobs,
        }, cmd
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", nargs="+", required=True,
                    help="build directories holding yardmaster; the first is the baseline")
    ap.add_argument("--driver", help="build directory whose ym_bench drives every run "
                    "(default: the first of --builds)")
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="an extra server argument for every build (repeatable)")
    a = ap.parse_args()
    if a.rounds < 1 or a.rounds > 100 or a.jobs < 1000 or a.jobs > 10_000_000:
        ap.error("--rounds must be 1..100 and --jobs 1000..10000000")
    results = {b: [] for b in a.builds}
    cmd = None
    for r in range(a.rounds):
        order = a.builds if r % 2 == 0 else list(reversed(a.builds))
        for b in order:
            res, cmd = one_run(b, a.driver or a.builds[0], a.jobs, a.server_arg)
            results[b].append(res)
            print(f"round {r + 1} {b}: {res['e2e']:.0f} jobs/s end to end, "
                  f"{res['cpu_us_per_job']:.2f} us server CPU per job", flush=True)
    print("command:", cmd)
    base = None
    for b in a.builds:
        e2e = statistics.median(x["e2e"] for x in results[b])
        cpu = statistics.median(x["cpu_us_per_job"] for x in results[b])
        if base is None:
            base = (e2e, cpu)
            rel = ""
        else:
            rel = (f"  ({(e2e / base[0] - 1) * 100:+.1f} % throughput, "
                   f"{(cpu / base[1] - 1) * 100:+.1f} % CPU per job)")
        print(f"median {b}: {e2e:.0f} jobs/s end to end, {cpu:.2f} us CPU per job{rel}")


if __name__ == "__main__":
    main()
