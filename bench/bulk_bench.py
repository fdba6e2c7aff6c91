#!/usr/bin/env python3
"""Bulk operations benchmark (docs/benchmarks.md, "Bulk operations"): how long POST
/v1/jobs:cancel, :replay and :delete take to walk N jobs with a given page size, the slowest
request, and how long other requests that need the core thread wait meanwhile.

Starts a release `yardmaster server` on a fresh temporary data directory (127.0.0.1, port 0),
enqueues N jobs (1000 per batch) into a queue that keeps finished jobs, then walks the queue with
each operation in turn (cancel, replay, cancel again, delete), following next_cursor. During
every walk a second connection reads a live job of another queue in a loop
(GET /v1/jobs/{id}: answered by the core thread), and the latencies are reported. Bounded: at
most N / limit + 2 requests per walk, a 60 s HTTP timeout per request.

    python3 bench/bulk_bench.py --build build/release --jobs 20000 --limit 1000
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

ADDRESS_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data or method != "GET" else {}
        self.c.request(method, path, body=data, headers=headers)
        r = self.c.getresponse()
        payload = r.read()
        return r.status, json.loads(payload) if payload else None


def start(binary, data_dir):
    proc = subprocess.Popen([binary, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        m = ADDRESS_RE.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(m.group(1))
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError("the server did not start")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    binary = os.path.join(args.build, "yardmaster")
    tmp = tempfile.mkdtemp(prefix="ym-bulk-bench-")
    proc, port = start(binary, os.path.join(tmp, "data"))
    try:
        c = Conn(port)
        keep = {"succeeded_ms": 3_600_000, "dead_ms": 3_600_000, "cancelled_ms": 3_600_000}
        c.call("PUT", "/v1/queues/bulk?create=true", {"retention": keep})
        for _ in range(0, args.jobs, 1000):
            status, _ = c.call("POST", "/v1/jobs:batch",
                               {"jobs": [{"queue": "bulk", "kind": "k", "payload": {"n": 1}}
                                         for _ in range(1000)]})
            assert status == 200
        _, probe_job = c.call("POST", "/v1/jobs", {"queue": "other", "kind": "k"})
        for verb, state in (("cancel", None), ("replay", None), ("cancel", None),
                            ("delete", None)):
            lat, stop = [], threading.Event()

            def prober():
                p = Conn(port)
                while not stop.is_set():
                    t0 = time.monotonic()
                    p.call("GET", f"/v1/jobs/{probe_job['id']}")
                    lat.append(time.monotonic() - t0)

            th = threading.Thread(target=prober)
            th.start()
            t = time.monotonic()
            cursor, done, requests, worst = None, 0, 0, 0.0
            for _ in range(args.jobs // args.limit + 2):
                body = {"queue": "bulk", "limit": args.limit}
                if cursor:
                    body["cursor"] = cursor
                t0 = time.monotonic()
                status, reply = c.call("POST", f"/v1/jobs:{verb}", body)
                worst = max(worst, time.monotonic() - t0)
                assert status == 200, reply
                requests += 1
                done += reply.get("cancelled", reply.get("replayed", reply.get("deleted", 0)))
                cursor = reply["next_cursor"]
                if cursor is None:
                    break
            elapsed = time.monotonic() - t
            stop.set()
            th.join()
            print(json.dumps({"operation": verb, "jobs": done, "requests": requests,
                              "seconds": round(elapsed, 3),
                              "jobs_per_second": round(done / elapsed) if elapsed else None,
                              "slowest_request_ms": round(worst * 1e3, 1),
                              "core_read_p50_ms": round(percentile(lat, 0.5) * 1e3, 2),
                              "core_read_p99_ms": round(percentile(lat, 0.99) * 1e3, 2),
                              "core_read_max_ms": round(max(lat, default=0) * 1e3, 2)}))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
