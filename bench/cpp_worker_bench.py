#!/usr/bin/env python3
"""Throughput of the C++ SDK's worker runtime with a no-op handler.

Starts a server (fresh temporary data directory, 127.0.0.1, a free port), enqueues --jobs jobs
of kind `record` in batches of 1000, then runs `ym_example_worker` (examples/cpp_worker.cc, the
SDK's Worker with a handler that records the job id and returns Ok) until every job is done or
--max-seconds pass. Reports jobs/s from the worker's start to the last job done, and the worker
process's CPU time per job. Usage:

    python3 bench/cpp_worker_bench.py [--build build/release] [--jobs 100000]
        [--concurrency 16] [--prefetch auto|N] [--max-seconds 120]
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))

from yardmaster import Client  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--prefetch", default="auto",
                    help="jobs leased beyond the free slots (Worker option `prefetch`): 'auto' "
                         "(the default, sized by the runtime) or a number")
    ap.add_argument("--max-seconds", type=float, default=120)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="ym-cpp-worker-bench-")
    server = subprocess.Popen(
        [os.path.join(a.build, "yardmaster"), "server", "--listen", "127.0.0.1:0",
         "--data-dir", os.path.join(tmp, "data")], stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        port = None
        for _ in range(50):
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", server.stderr.readline())
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("the server did not start")
        url = f"http://127.0.0.1:{port}"
        client = Client(url)
        for start in range(0, a.jobs, 1000):
            n = min(1000, a.jobs - start)
            client.enqueue_batch([{"queue": "cppbench", "kind": "record", "payload": {"i": i}}
                                  for i in range(start, start + n)])
        out = os.path.join(tmp, "worker.out")
        t0 = time.monotonic()
        worker = subprocess.Popen(
            [os.path.join(a.build, "ym_example_worker"), "--queue", "cppbench", "--server", url,
             "--concurrency", str(a.concurrency), "--prefetch", str(a.prefetch), "--sleep-ms", "0",
             "--out", out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = 0
        deadline = t0 + a.max_seconds
        while not os.path.exists(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Read the worker's log incrementally: rescanning it would compete with the worker.
        with open(out, "rb") as f:
            rest = b""
            while time.monotonic() < deadline:
                chunk = f.read()
                if chunk:
                    lines = (rest + chunk).split(b"\n")
                    rest = lines.pop()
                    done += sum(1 for line in lines if line.startswith(b"done "))
                if done >= a.jobs:
                    break
                time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(worker.pid)
        complete = done >= a.jobs
        print(f"jobs={done} seconds={elapsed:.2f} jobs_per_s={done / elapsed:,.0f} "
              f"worker_cpu_us_per_job={cpu * 1e6 / max(done, 1):.1f} "
              f"concurrency={a.concurrency} prefetch={a.prefetch}"
              f"{'' if complete else ' [INCOMPLETE]'}")
        return 0 if complete else 1
    finally:
        if worker and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
