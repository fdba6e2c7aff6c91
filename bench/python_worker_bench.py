#!/usr/bin/env python3
"""Throughput of the Python SDK's Worker with a no-op handler.

Enqueues --jobs jobs (in batches of 1000), then runs one yardmaster.Worker whose handler does
nothing and reports how fast jobs were leased, run and acked (jobs/s), plus the worker process's
CPU time per job. Bounded by --jobs and --max-seconds.

By default the script starts its own server (the binary from --bin or $YM_BIN, default
build/release/yardmaster) on 127.0.0.1, a free port, with a fresh temporary data directory;
--server URL uses a running server instead (the queue should be empty). Usage:

    python3 bench/python_worker_bench.py [--jobs 20000] [--concurrency 8] [--prefetch auto|N]
        [--batch N] [--max-seconds 60] [--durability full|relaxed] [--bin PATH | --server URL]

--prefetch defaults to automatic, as the Worker does; --prefetch 0 measures it without.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import List, Optional, Tuple, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sdk", "python"))

from yardmaster import Client, Job, Worker  # noqa: E402

ADDRESS_RE = re.compile(r"listening on (?:http://)?127\.0\.0\.1:(\d+)")


def start_server(binary: str, durability: str) -> Tuple[subprocess.Popen, str, str]:
    """Start `yardmaster server` on a free port; returns (process, url, data dir)."""
    data_dir = tempfile.mkdtemp(prefix="ym-pybench-")
    proc = subprocess.Popen(
        [binary, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
         "--durability", durability],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    lines: List[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = ADDRESS_RE.search(line)
        if m:
            # Keep draining the log so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr],  # type: ignore[union-attr]
                             daemon=True).start()
            url = f"http://127.0.0.1:{m.group(1)}"
            client = Client(url)
            while time.monotonic() < deadline and not client.ready():
                time.sleep(0.05)
            client.close()
            return proc, url, data_dir
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))


def prefetch_arg(text: str) -> Union[str, int]:
    """``--prefetch``: ``auto`` or an integer >= 0."""
    if text == "auto":
        return text
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("prefetch must be 'auto' or an integer >= 0")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prefetch", type=prefetch_arg, default="auto",
                        help="jobs leased ahead of free slots: auto (default) or N >= 0")
    parser.add_argument("--batch", type=int, default=None,
                        help="most jobs per lease request (default: all the free capacity)")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--durability", choices=["full", "relaxed"], default="full",
                        help="for the server this script starts")
    parser.add_argument("--bin", default=os.environ.get("YM_BIN", os.path.join(
        os.path.dirname(HERE), "build", "release", "yardmaster")))
    parser.add_argument("--server", help="use this running server instead of starting one")
    parser.add_argument("--queue", default="pybench")
    args = parser.parse_args(argv)

    proc: Optional[subprocess.Popen] = None
    data_dir = ""
    if args.server:
        url = args.server
    else:
        proc, url, data_dir = start_server(args.bin, args.durability)
    try:
        client = Client(url)
        t0 = time.monotonic()
        for start in range(0, args.jobs, 1000):
            n = min(1000, args.jobs - start)
            client.enqueue_batch([{"queue": args.queue, "kind": "noop"}] * n)
        enqueue_s = time.monotonic() - t0
        print(f"enqueued {args.jobs} jobs in {enqueue_s:.2f}s "
              f"({args.jobs / enqueue_s:.0f} jobs/s, batches of 1000)")

        prefetch = None if args.prefetch == "auto" else args.prefetch
        worker = Worker([args.queue], concurrency=args.concurrency, url=url, batch=args.batch,
                        poll_wait_ms=1000, prefetch=prefetch)
        done = threading.Event()

        @worker.task("noop")
        def noop(job: Job) -> None:
            return None

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        runner = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
        t0 = time.monotonic()
        runner.start()
        deadline = t0 + args.max_seconds
        while time.monotonic() < deadline:
            if worker.stats["succeeded"] >= args.jobs:
                done.set()
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        worker.stop()
        runner.join(60)
        processed = worker.stats["succeeded"]
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        auto = ""
        if worker._auto is not None:  # what automatic prefetch settled on
            auto = (f" (target {worker._auto.target(args.concurrency)}, handler "
                    f"{(worker._auto.handler_time or 0) * 1e6:.0f} us, round trip "
                    f"{worker._auto.round_trip * 1e3:.2f} ms)")
        print(f"worker: concurrency {args.concurrency}, prefetch {args.prefetch}{auto}, "
              f"batch {args.batch or 'free capacity'}, "
              f"durability {args.durability if not args.server else 'as configured'}")
        print(f"processed {processed} jobs in {elapsed:.2f}s"
              f"{'' if done.is_set() else ' (stopped by --max-seconds)'}")
        print(f"throughput: {processed / elapsed:.0f} jobs/s; worker CPU "
              f"{cpu * 1e6 / max(processed, 1):.0f} us/job")
        client.close()
        return 0 if done.is_set() else 1
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(30)
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
