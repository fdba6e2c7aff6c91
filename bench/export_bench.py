#!/usr/bin/env python3
"""Namespace export benchmark (docs/benchmarks.md, "Namespace export"): how fast
GET /v1/namespaces/{ns}/export streams N jobs, and what the broker's other traffic does meanwhile.

Starts a release `yardmaster server` on a fresh temporary data directory (127.0.0.1, port 0),
enqueues N jobs (1000 per batch) of namespace `tenant` with a ~200-byte payload, then:
  1. runs `ym_bench drain` alone on another queue (baseline);
  2. runs the same drain while the namespace is exported `--exports` times in a row on another
     connection, reading the body as fast as it comes;
and reports the export rate (jobs/s, MB/s) and the drain's throughput in both runs. Bounded: the
drain has its own --max-seconds, each export a 300 s socket timeout.

    python3 bench/export_bench.py --build build/release --jobs 100000 --exports 10
"""

import argparse
import http.client
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time

ADDRESS_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def start(binary, data_dir):
    proc = subprocess.Popen([binary, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        m = ADDRESS_RE.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(m.group(1))
    raise RuntimeError("server did not start")


def fill(port, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    done = 0
    while done < n:
        take = min(1000, n - done)
        jobs = [{"queue": "data", "kind": "k", "namespace": "tenant",
                 "payload": {"i": done + i, "text": "x" * 180}} for i in range(take)]
        c.request("POST", "/v1/jobs:batch", body=json.dumps({"jobs": jobs}).encode(),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        done += take
    c.close()


def export(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.monotonic()
    c.request("GET", "/v1/namespaces/tenant/export")
    r = c.getresponse()
    lines = 0
    size = 0
    while True:
        chunk = r.read(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        lines += chunk.count(b"\n")
    c.close()
    return lines, size, time.monotonic() - t0


def drain(bench, port, jobs, seconds):
    out = subprocess.run([bench, "--json", "--server", f"http://127.0.0.1:{port}", "--jobs",
                          str(jobs), "--max-seconds", str(seconds), "--queue-prefix",
                          f"d{time.monotonic_ns()}", "drain"], capture_output=True, text=True,
                         timeout=seconds * 3 + 60)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(out.stdout + out.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--drain-jobs", type=int, default=100000)
    ap.add_argument("--exports", type=int, default=10)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="ym-export-bench-")
    proc, port = start(f"{args.build}/yardmaster", data)
    try:
        fill(port, args.jobs)
        n, size, secs = export(port)
        assert n == args.jobs, n
        print(f"export alone: {n} jobs, {size / 1e6:.1f} MB in {secs:.2f} s: "
              f"{n / secs:,.0f} jobs/s, {size / 1e6 / secs:.1f} MB/s")
        bench = f"{args.build}/ym_bench"
        base = drain(bench, port, args.drain_jobs, 60)
        results = []
        stop = threading.Event()

        def exporter():
            for _ in range(args.exports):
                if stop.is_set():
                    break
                results.append(export(port))

        t = threading.Thread(target=exporter)
        t.start()
        during = drain(bench, port, args.drain_jobs, 60)
        stop.set()
        t.join()
        print("drain alone:", json.dumps({k: v for k, v in base.items()
                                           if isinstance(v, (int, float))}))
        print("drain during exports:", json.dumps({k: v for k, v in during.items()
                                                    if isinstance(v, (int, float))}))
        for n, size, secs in results:
            print(f"export during drain: {n} jobs in {secs:.2f} s: {n / secs:,.0f} jobs/s")
        # Purge cost: cancel every job of the namespace, then give it a cancelled window of 0 and
        # time until its queue's cancelled count is 0 (the passes delete through the
        # (state, ns, id) index, 2,000 rows a chunk).
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def call(method, path, body=None):
            c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")

        cursor = None
        for _ in range(10000):
            body = {"namespace": "tenant", "limit": 10000}
            if cursor:
                body["cursor"] = cursor
            status, reply = call("POST", "/v1/jobs:cancel", body)
            assert status == 200, reply
            cursor = reply["next_cursor"]
            if cursor is None:
                break
        status, q = call("GET", "/v1/queues/data")
        cancelled = q["counts"]["cancelled"]
        t0 = time.monotonic()
        status, _ = call("PUT", "/v1/namespaces/tenant", {"retention": {"cancelled_ms": 0}})
        assert status in (200, 201)
        deadline = t0 + 600
        while time.monotonic() < deadline:
            status, q = call("GET", "/v1/queues/data")
            if status == 404 or q["counts"]["cancelled"] == 0:
                break
            time.sleep(0.05)
        secs = time.monotonic() - t0
        print(f"namespace purge: {cancelled} cancelled rows in {secs:.2f} s: "
              f"{cancelled / secs:,.0f} rows/s")
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
