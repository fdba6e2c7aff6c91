#!/usr/bin/env python3
"""Durable cron at scale (docs/benchmarks.md, "Schedules"): N schedules on one server.

Starts a fresh release server on 127.0.0.1 with a temporary data directory and measures:
  * create: N `POST /v1/schedules` (`every 1m`, created paused) over --threads keep-alive
    connections, and the server's resident memory before and after (VmRSS);
  * restart: SIGKILL, then the time until /readyz answers 200 with the N schedules loaded
    (recovery reads every schedule row and its history, parses its spec, arms its timer);
  * fire lag: every schedule resumed (`:resume`), then the server's
    `ym_schedule_fire_lag_seconds` histogram once each schedule emitted a window (an interval
    counts from the schedule's creation, so the windows are spread over the minute the creates
    took): p50 and p99 as the histogram buckets bound them.

    python3 bench/cron_bench.py --build build/release [--schedules 100000] [--threads 8]
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_calls(port, calls, threads):
    """Runs (method, path, body) calls over `threads` connections; returns elapsed seconds."""
    chunks = [calls[i::threads] for i in range(threads)]
    errors = []

    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for method, path, body in chunk:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data or method != "GET" else {}
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            payload = r.read()
            if r.status >= 300:
                errors.append((r.status, payload[:200]))
        conn.close()

    start = time.monotonic()
    ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed, e.g. {errors[0]}")
    return time.monotonic() - start


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        return r.read().decode()


def series(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def buckets_of(text, name):
    out = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{le=\""):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out.append((float("inf") if le == "+Inf" else float(le),
                        float(line.rsplit(" ", 1)[1])))
    return out


def quantile(after, before, name, q):
    """The upper bound of the bucket holding quantile q of histogram `name` (seconds), over the
    observations between two scrapes."""
    b0 = dict(buckets_of(before, name))
    buckets = [(le, cum - b0.get(le, 0)) for le, cum in buckets_of(after, name)]
    total = buckets[-1][1] if buckets else 0
    for le, cum in buckets:
        if total and cum >= q * total:
            return le
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--schedules", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    n = args.schedules
    d = tempfile.mkdtemp(prefix="ym-cron-bench-")
    try:
        s = run_all.Server(args.build, d)
        s.wait_ready()
        rss0 = rss_mib(s.proc.pid)
        calls = [("POST", "/v1/schedules",
                  {"id": f"s{i}", "cron": "every 1m", "paused": True, "overlap": "allow",
                   "job": {"queue": "cronbench", "kind": "tick"}}) for i in range(n)]
        created_s = run_calls(s.port, calls, args.threads)
        rss1 = rss_mib(s.proc.pid)
        print(f"create: {n} schedules in {created_s:.1f} s ({n / created_s:.0f}/s); "
              f"RSS {rss0:.1f} -> {rss1:.1f} MiB ({(rss1 - rss0) * 1024 * 1024 / n:.0f} B each)")
        s.stop(signal.SIGKILL)
        start = time.monotonic()
        s = run_all.Server(args.build, d)
        s.wait_ready()
        restart_s = time.monotonic() - start
        # Recovery loads every schedule before the listener opens; the gauge is refreshed by
        # the core loop's next turn.
        deadline = time.monotonic() + 60
        while series(metrics(s.url), "ym_schedules") < n and time.monotonic() < deadline:
            time.sleep(0.1)
        loaded = series(metrics(s.url), "ym_schedules")
        print(f"restart: ready in {restart_s:.2f} s with {loaded:.0f} schedules loaded; "
              f"RSS {rss_mib(s.proc.pid):.1f} MiB")
        resume_s = run_calls(s.port, [("POST", f"/v1/schedules/s{i}:resume", None)
                                      for i in range(n)], args.threads)
        # The first round after the resume holds windows missed while paused (emitted late, by
        # the missed-run policy); the lag is measured over the second round, on-time windows.
        name = "ym_schedule_fire_lag_seconds"
        rounds = []
        for target in (n, 2 * n):
            deadline = time.monotonic() + 240
            text = metrics(s.url)
            while series(text, name + "_count") < target and time.monotonic() < deadline:
                time.sleep(1)
                text = metrics(s.url)
            rounds.append(text)
        fired = series(rounds[1], name + "_count") - series(rounds[0], name + "_count")
        print(f"fire: resumed in {resume_s:.1f} s; lag over {fired:.0f} on-time windows: "
              f"p50 <= {quantile(rounds[1], rounds[0], name, 0.5) * 1000:.0f} ms, "
              f"p99 <= {quantile(rounds[1], rounds[0], name, 0.99) * 1000:.0f} ms; "
              f"RSS {rss_mib(s.proc.pid):.1f} MiB (with up to {n} live jobs)")
        s.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
