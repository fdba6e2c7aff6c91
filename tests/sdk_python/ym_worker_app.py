"""A worker module for the subprocess tests: `python -m yardmaster worker ym_worker_app:worker`.

Every handler leaves marker files in $YM_TEST_DIR so the test can see what ran:
``started-<id>-<attempt>`` when the handler begins and ``done-<id>-<attempt>`` when it returns.
Settings come from the environment: YM_TEST_QUEUE, YM_TEST_CONCURRENCY, YM_TEST_LEASE_MS,
YM_TEST_GRACE, YM_TEST_PREFETCH (an integer, or unset / "auto" for automatic prefetch).
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict

from yardmaster import Job, Worker

MARKERS = os.environ.get("YM_TEST_DIR", ".")
_lease = os.environ.get("YM_TEST_LEASE_MS")
_prefetch = os.environ.get("YM_TEST_PREFETCH", "auto")

worker = Worker(
    [os.environ.get("YM_TEST_QUEUE", "sdk")],
    concurrency=int(os.environ.get("YM_TEST_CONCURRENCY", "2")),
    lease_ms=int(_lease) if _lease else None,
    shutdown_grace=float(os.environ.get("YM_TEST_GRACE", "30")),
    prefetch=None if _prefetch == "auto" else int(_prefetch),
)


def _mark(what: str, job: Job) -> None:
    with open(os.path.join(MARKERS, f"{what}-{job.id}-{job.attempt}"), "w") as f:
        f.write(str(os.getpid()))


@worker.task("sleep")
def sleep(job: Job) -> Dict[str, Any]:
    """Sleeps payload["seconds"] (ignoring cancellation), then succeeds."""
    _mark("started", job)
    time.sleep(float(job.payload["seconds"]))
    _mark("done", job)
    return {"slept": job.payload["seconds"]}


@worker.task("block")
def block(job: Job) -> None:
    """Blocks for 120 s regardless of anything: only kill -9 or the shutdown grace ends it."""
    _mark("started", job)
    time.sleep(120)
    _mark("done", job)
