"""What the Python worker logs about failed attempts (docs/python-sdk.md, "Logging"): one record
per failed attempt on the ``yardmaster.worker`` logger, WARNING with the exception and its
traceback, the job in ``extra`` fields; nothing for a success."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List

import pytest
from conftest import PinnedServer, WorkerThread, wait_until
from ymtest import settled

from yardmaster import Client, Job, Permanent, Retry, Worker

# A retry backoff long enough that a retried job stays `scheduled` while the test looks.
SLOW = {"initial_ms": 2592000000, "max_ms": 2592000000, "multiplier": 1.0}


def failure_records(caplog: pytest.LogCaptureFixture) -> Dict[str, List[logging.LogRecord]]:
    by_job: Dict[str, List[logging.LogRecord]] = {}
    for r in caplog.records:
        if r.name == "yardmaster.worker" and hasattr(r, "job_id"):
            by_job.setdefault(r.job_id, []).append(r)  # type: ignore[attr-defined]
    return by_job


def test_each_failed_attempt_is_a_warning_with_its_traceback(
        server: PinnedServer, client: Client, run_worker: Callable[[Worker], WorkerThread],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="yardmaster.worker")
    crash = client.enqueue("logq", "crash", backoff=SLOW, max_attempts=3)["id"]
    last = client.enqueue("logq", "crash", max_attempts=1)["id"]
    retry = client.enqueue("logq", "retry", backoff=SLOW)["id"]
    permanent = client.enqueue("logq", "permanent")["id"]
    unknown = client.enqueue("logq", "nobody_handles_this", backoff=SLOW)["id"]
    ok = client.enqueue("logq", "ok")["id"]
    worker = Worker(["logq"], concurrency=2, url=server.url())

    @worker.task("crash")
    def do_crash(job: Job) -> None:
        {}["missing_key"]

    @worker.task("retry")
    def do_retry(job: Job) -> None:
        try:
            raise ConnectionError("smtp down")
        except ConnectionError as e:
            raise Retry("mail server busy") from e

    @worker.task("permanent")
    def do_permanent(job: Job) -> None:
        raise Permanent("no such user")

    @worker.task("ok")
    def do_ok(job: Job) -> Dict[str, Any]:
        return {"fine": True}

    wt = run_worker(worker)
    failing = [crash, last, retry, permanent, unknown]
    wait_until(lambda: all(client.get(i)["state"] == "scheduled" or settled(client.get(i), "dead")
                           for i in failing) and settled(client.get(ok), "succeeded"),
               30, "every job to fail once, and the good one to succeed")
    wt.stop()

    recs = failure_records(caplog)
    assert ok not in recs, [r.getMessage() for r in recs[ok]]
    for job_id in failing:
        assert len(recs.get(job_id, [])) == 1, (job_id, caplog.text)
        assert recs[job_id][0].levelno == logging.WARNING, recs[job_id][0].getMessage()

    r = recs[crash][0]
    message = r.getMessage()
    assert f"job {crash} (queue logq, kind crash) attempt 1 of 3 failed (KeyError)" in message
    assert message.endswith("; it will be retried"), message
    assert r.exc_info is not None and r.exc_info[0] is KeyError
    # The formatted record (what a log file shows) has the traceback down to the handler's line.
    text = logging.Formatter().format(r)
    assert "Traceback (most recent call last)" in text and "do_crash" in text
    assert "missing_key" in text
    assert (r.job_id, r.job_queue, r.job_kind, r.job_attempt, r.error_type) == (  # type: ignore
        crash, "logq", "crash", 1, "KeyError")

    assert recs[last][0].getMessage().endswith("no attempts left: the job is dead")

    r = recs[retry][0]
    assert "failed (retry): Retry: mail server busy; it will be retried" in r.getMessage()
    text = logging.Formatter().format(r)
    assert "ConnectionError: smtp down" in text and "do_retry" in text  # the cause's traceback too

    r = recs[permanent][0]
    assert "failed (permanent): Permanent: no such user; not retried: the job is dead" in \
        r.getMessage()
    assert r.exc_info is not None and r.exc_info[0] is Permanent

    r = recs[unknown][0]
    assert "failed (unknown_kind): no handler for kind 'nobody_handles_this'" in r.getMessage()
    assert r.exc_info is None  # no exception: nothing raised, the kind has no handler


def test_a_handler_obeying_a_cancel_is_logged_at_info(
        server: PinnedServer, client: Client, run_worker: Callable[[Worker], WorkerThread],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="yardmaster.worker")
    jid = client.enqueue("logc", "long", lease_ms=1000)["id"]
    worker = Worker(["logc"], url=server.url())

    @worker.task("long")
    def long(job: Job) -> None:
        job.wait_cancelled(60)
        job.raise_if_cancelled()

    wt = run_worker(worker)
    wait_until(lambda: client.get(jid)["state"] == "active", 20, "the job to start")
    client.cancel(jid)
    wait_until(lambda: settled(client.get(jid), "cancelled"), 30, "the job to end cancelled")
    wt.stop()
    (r,) = failure_records(caplog)[jid]
    assert r.levelno == logging.INFO and r.exc_info is None
    assert r.getMessage().endswith("failed (cancelled): Cancelled: job %s: cancel_requested; "
                                   "the job ends cancelled" % jid), r.getMessage()
