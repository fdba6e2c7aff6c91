"""yardmaster.Worker and a job's execution timeout (``timeout_ms``): at the deadline the broker
fails the attempt with type ``timeout``; the worker stops heartbeating the job, sets
``job.cancelled`` (``cancel_reason == "timeout"``), raises :class:`JobTimeout` in a handler
running Python code, and reports nothing for the attempt. Timeouts of 1.5 s under a 30 s lease;
every wait is bounded."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict

from conftest import PinnedServer, WorkerThread, wait_until

from yardmaster import Client, Job, JobTimeout, Worker

LEASE = 30000


def test_a_hung_handler_gets_job_timeout_raised_in_it(server: PinnedServer, client: Client,
                                                      run_worker: Callable[[Worker], WorkerThread]
                                                      ) -> None:
    jid = client.enqueue("to", "spin", timeout_ms=1500, lease_ms=LEASE, max_attempts=1)["id"]
    worker = Worker(["to"], concurrency=1, url=server.url())
    seen: Dict[str, Any] = {}
    started = threading.Event()

    @worker.task("spin")
    def spin(job: Job) -> None:
        seen["deadline"] = job.deadline
        seen["timeout_ms"] = job.timeout_ms
        started.set()
        try:
            while True:  # never looks at job.cancelled: only the raised exception stops it
                time.sleep(0.01)
        except JobTimeout:
            seen["raised_at"] = time.monotonic()
            seen["reason"] = job.cancel_reason
            raise

    @worker.task("ok")
    def ok(job: Job) -> Dict[str, bool]:
        return {"ok": True}

    wt = run_worker(worker)
    assert started.wait(20), "the handler did not start"
    wait_until(lambda: "raised_at" in seen, 15, "JobTimeout to be raised in the handler")
    assert seen["timeout_ms"] == 1500 and seen["reason"] == "timeout"
    assert seen["raised_at"] >= seen["deadline"] - 0.01
    assert seen["raised_at"] - seen["deadline"] < 5.0
    wait_until(lambda: client.get(jid)["state"] == "dead", 20, "the broker's timeout")
    job = client.get(jid)
    assert [e["type"] for e in job["errors"]] == ["timeout"], job
    assert job["dead_reason"] == "max_attempts_exceeded"
    # The slot is free again and the worker carries on.
    nxt = client.enqueue("to", "ok")["id"]
    wait_until(lambda: client.get(nxt)["state"] == "succeeded", 20, "the next job")
    wt.stop()
    assert worker.stats["timeouts"] == 1, worker.stats
    assert worker.stats["leases_lost"] == 0 and worker.stats["failed"] == 0, worker.stats


def test_a_waiting_handler_sees_cancelled_with_reason_timeout(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    jid = client.enqueue("tw", "wait", timeout_ms=1500, lease_ms=LEASE, max_attempts=3,
                         backoff={"initial_ms": 60000, "max_ms": 60000, "multiplier": 1})["id"]
    worker = Worker(["tw"], concurrency=1, url=server.url())
    seen: Dict[str, Any] = {}

    @worker.task("wait")
    def wait(job: Job) -> None:
        t0 = time.monotonic()
        try:
            seen["woke"] = job.wait_cancelled(60)
        except JobTimeout:
            # Raised in the thread while it waited (Event.wait runs Python code): also fine.
            seen["woke"] = True
            seen["interrupted"] = True
        seen["after"] = time.monotonic() - t0
        seen["reason"] = job.cancel_reason
        seen["timed_out"] = job.timed_out
        try:
            job.raise_if_cancelled()
        except JobTimeout as e:
            seen["raised"] = str(e)
            raise

    wt = run_worker(worker)
    wait_until(lambda: "raised" in seen, 20, "the handler to see its timeout")
    assert seen["woke"] is True and seen["reason"] == "timeout" and seen["timed_out"], seen
    assert seen["after"] < 10, seen
    assert "timeout of 1500 ms" in seen["raised"]
    wait_until(lambda: client.get(jid)["errors"], 20, "the broker's timeout")
    job = client.get(jid)
    assert job["errors"][-1]["type"] == "timeout" and job["attempts"] == 1, job
    assert job["state"] != "dead", job  # retried, by the backoff
    wt.stop()
    assert worker.stats["timeouts"] == 1 and worker.stats["leases_lost"] == 0, worker.stats


def test_a_queued_job_whose_deadline_passes_is_never_started(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    # One slot, held by a job without a timeout; the timed job waits prefetched behind it.
    blocker = client.enqueue("tq", "block", lease_ms=LEASE)["id"]
    worker = Worker(["tq"], concurrency=1, prefetch=1, url=server.url())
    release = threading.Event()
    ran: Dict[str, int] = {}

    @worker.task("block")
    def block(job: Job) -> None:
        assert release.wait(60), "never released"

    @worker.task("timed")
    def timed(job: Job) -> None:
        ran[job.id] = job.attempt

    wt = run_worker(worker)
    wait_until(lambda: client.get(blocker)["state"] == "active", 20, "the blocker to run")
    timed_id = client.enqueue("tq", "timed", timeout_ms=1000, lease_ms=LEASE, max_attempts=1)["id"]
    wait_until(lambda: client.get(timed_id)["state"] == "dead", 20, "the broker's timeout")
    wait_until(lambda: worker.stats["timeouts"] == 1, 10, "the worker to count the timeout")
    release.set()
    wait_until(lambda: client.get(blocker)["state"] == "succeeded", 20, "the blocker to finish")
    wt.stop()
    assert ran == {}, "a job whose deadline passed in the worker's queue was started"
    assert client.get(timed_id)["errors"][-1]["type"] == "timeout"
    assert worker.stats["leases_lost"] == 0, worker.stats
