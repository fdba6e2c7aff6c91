#!/usr/bin/env python3
"""Runs the issue's benchmark set against fresh release servers and prints a Markdown report.

Each measurement starts its own `yardmaster server` on 127.0.0.1 (a free port) with a fresh
temporary data directory, runs `ym_bench` against it, and also reads the server's CPU time from
/proc so that CPU per job is reported next to throughput (on a 2-core machine the load generator
competes with the server for the same cores). Every run is bounded by ym_bench's --jobs and
--max-seconds. Usage:

    python3 bench/run_all.py [--build build/release] [--repeat 3] [--quick]
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ADDRESS_RE = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, build, data_dir, extra=()):
        self.proc = subprocess.Popen(
            [os.path.join(build, "yardmaster"), "server", "--listen", "127.0.0.1:0",
             "--data-dir", data_dir, *extra],
            stderr=subprocess.PIPE, text=True)
        self.lines = []
        deadline = time.monotonic() + 120
        self.port = None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = ADDRESS_RE.search(line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            raise RuntimeError("server did not start:\n" + "".join(self.lines))
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("server not ready")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)


def bench(build, url, scenario, *args):
    cmd = [os.path.join(build, "ym_bench"), "--server", url, "--json", *args, scenario]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if not results:
        raise RuntimeError(f"{' '.join(cmd)} printed no result:\n{out.stderr}")
    return results[0], " ".join(["ym_bench", *args, scenario])


def measure(build, scenario, args, server_args=()):
    """One fresh server, one scenario; returns (result, server CPU seconds, command)."""
    d = tempfile.mkdtemp(prefix="ym-bench-")
    try:
        s = Server(build, d, server_args)
        s.wait_ready()
        cpu0 = cpu_seconds(s.proc.pid)
        extra = ["--server-pid", str(s.proc.pid)] if scenario == "memory" else []
        result, cmd = bench(build, s.url, scenario, *args, *extra)
        cpu = cpu_seconds(s.proc.pid) - cpu0
        s.stop()
        return result, cpu, cmd
    finally:
        shutil.rmtree(d, ignore_errors=True)


def restart_time(build, jobs):
    """Fills a server with `jobs` live jobs, SIGKILLs it, and times a restart until /readyz."""
    d = tempfile.mkdtemp(prefix="ym-bench-")
    try:
        s = Server(build, d)
        s.wait_ready()
        bench(build, s.url, "enqueue-batch", "--jobs", str(jobs), "--batch", "1000",
              "--connections", "4", "--payload-bytes", "64", "--max-seconds", "600")
        s.stop(signal.SIGKILL)
        start = time.monotonic()
        s2 = Server(build, d)
        s2.wait_ready()
        elapsed = time.monotonic() - start
        s2.lines.append(s2.proc.stderr.readline())  # the start-up summary follows the address
        log = "".join(s2.lines)
        s2.stop()
        return elapsed, log
    finally:
        shutil.rmtree(d, ignore_errors=True)


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller counts, one repeat")
    a = ap.parse_args()
    if a.quick:
        a.repeat = 1
    n = 50_000 if a.quick else 300_000
    plans = [
        ("enqueue", ["--jobs", str(n // 10), "--connections", "8"], "jobs_per_s", 1),
        ("enqueue-batch", ["--jobs", str(n), "--connections", "4", "--batch", "100"],
         "jobs_per_s", 1),
        ("drain", ["--jobs", str(n), "--connections", "4", "--consumers", "4", "--batch", "100"],
         "drain_jobs_per_s", 2),
        ("latency", ["--jobs", str(n // 20), "--rate", "5000", "--consumers", "4"],
         "enqueue_to_lease_p99_us", 1),
        ("memory", ["--jobs", "1000000", "--batch", "1000", "--payload-bytes", "16"],
         "bytes_per_job", 1),
    ]
    print(f"Machine: {machine()}\n")
    print("| scenario | command | result (median of runs) | server CPU per job |")
    print("| --- | --- | --- | --- |")
    for scenario, args, key, phases in plans:
        values, cpus = [], []
        cmd = ""
        for _ in range(1 if scenario == "memory" else a.repeat):
            result, cpu, cmd = measure(a.build, scenario, [*args, "--max-seconds", "300"])
            jobs = result.get("jobs") or result.get("prefilled_jobs") or result.get("drained_jobs")
            values.append(result.get(key))
            if jobs:
                cpus.append(cpu * 1e6 / (jobs * phases))
            sys.stdout.flush()
        med = statistics.median(v for v in values if v is not None)
        cpu_txt = f"{statistics.median(cpus):.1f} µs" if cpus else "-"
        print(f"| {scenario} | `{cmd}` | {key} = {med:,.1f} (runs: "
              f"{', '.join(f'{v:,.0f}' for v in values)}) | {cpu_txt} |")
    # The cost of a lease must not grow with the backlog: lease latency draining a small queue
    # and a queue of a million jobs.
    for backlog in (20_000, 1_000_000 if not a.quick else 200_000):
        result, _, cmd = measure(a.build, "drain",
                                 ["--jobs", str(backlog), "--connections", "4", "--consumers", "4",
                                  "--batch", "100", "--max-seconds", "600"])
        print(f"| lease vs backlog | `{cmd}` | lease p50 = {result.get('lease_p50_us')} µs, "
              f"p99 = {result.get('lease_p99_us')} µs with {backlog:,} queued | - |")
    elapsed, log = restart_time(a.build, 200_000 if a.quick else 1_000_000)
    m = re.search(r"recovered (\d+) live jobs in (\d+) ms", log)
    rec = f"{m.group(1)} jobs recovered in {m.group(2)} ms" if m else "?"
    print(f"| restart | SIGKILL with live jobs, restart until /readyz | {elapsed:.2f} s ({rec}) | - |")


if __name__ == "__main__":
    main()
