"""yardmaster.Worker against the real server: the rules of docs/workers.md that the Python
runtime shares with the C++ one (unknown kinds, cancels, refused leases, stop during a long
poll, refused results, automatic prefetch, counters). Every wait is bounded."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Callable, Dict, List

from conftest import PinnedServer, WorkerThread, wait_until, worker_env
from ymtest import HOLD_LEASE_MS, metric, settled

from yardmaster import Client, Job, NotFound, Validation, Worker

STAT_KEYS = {"leased", "succeeded", "failed", "handed_back", "leases_lost", "cancelled",
             "timeouts", "heartbeats", "reconnects", "running"}


def test_unknown_kind_is_retried_not_dead(server: PinnedServer, client: Client,
                                          run_worker: Callable[[Worker], WorkerThread]) -> None:
    # A worker that knows the kind may be rolling out: the attempt counts, the job stays alive.
    job_id = client.enqueue("uk", "nobody_handles_this")["id"]
    worker = Worker(["uk"], concurrency=1, url=server.url(), worker_id="w-uk")
    worker.register("something_else", lambda job: None)
    worker.register("another", lambda job: None)
    wt = run_worker(worker)
    wait_until(lambda: worker.stats["failed"] >= 1, 20, "the attempt to be reported")
    wt.stop()
    job = client.get(job_id)
    # The queue's backoff has full jitter, so the retry may already have been leased again
    # before the stop (and then handed back): at least one attempt, never dead.
    assert job["state"] in ("scheduled", "ready"), job
    assert job["attempts"] >= 1, job
    err = job["errors"][0]
    assert err["type"] == "unknown_kind", err
    assert {e["type"] for e in job["errors"]} <= {"unknown_kind", "shutdown"}, job
    for part in ("nobody_handles_this", "w-uk", "another", "something_else"):
        assert part in err["message"], err


def test_a_handler_that_returns_after_a_cancel_succeeds(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    # "The outcome is what the handler reports": the work was done, the job is acked.
    job_id = client.enqueue("rc", "long")["id"]
    started = threading.Event()
    seen: Dict[str, Any] = {}
    worker = Worker(["rc"], concurrency=1, url=server.url(), lease_ms=HOLD_LEASE_MS)

    @worker.task("long")
    def long(job: Job) -> Dict[str, bool]:
        started.set()
        seen["cancelled"] = job.wait_cancelled(20)
        seen["reason"] = job.cancel_reason
        return {"finished": True}

    wt = run_worker(worker)
    assert started.wait(20)
    client.cancel(job_id)
    wait_until(lambda: client.get(job_id)["state"] not in ("active", "ready", "succeeded")
               or settled(client.get(job_id), "succeeded"), 20, "the job to finish")
    wt.stop()
    assert seen == {"cancelled": True, "reason": "cancel_requested"}
    job = client.get(job_id)
    assert job["state"] == "succeeded", job
    assert job["result"] == {"finished": True} and job["cancel_requested"] is True, job
    stats = worker.stats
    assert stats["cancelled"] == 1 and stats["succeeded"] == 1 and stats["failed"] == 0, stats


def test_a_queued_job_whose_cancel_is_learnt_is_never_run(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    # One slot held by `first` until the test releases it; `second` is prefetched behind it.
    first = client.enqueue("qc", "k", {"n": 1}, priority=10)["id"]
    second = client.enqueue("qc", "k", {"n": 2}, priority=5)["id"]
    release = threading.Event()
    started = threading.Event()
    ran: List[str] = []
    worker = Worker(["qc"], concurrency=1, prefetch=1, url=server.url(),
                    lease_ms=HOLD_LEASE_MS)

    @worker.task("k")
    def k(job: Job) -> None:
        ran.append(job.id)
        started.set()
        if job.id == first:
            assert release.wait(30), "never released"

    wt = run_worker(worker)
    assert started.wait(20)
    wait_until(lambda: client.get(second)["state"] == "active", 20, "the second job to be leased")
    assert client.get(second)["lease"]["worker_id"] == worker.worker_id
    client.cancel(second)
    wait_until(lambda: worker.stats["cancelled"] == 1, 20, "a heartbeat to bring the cancel")
    # Reported at once, while the slot is still busy with the first job.
    wait_until(lambda: client.get(second)["state"] == "cancelled", 20,
               "the queued job to be reported cancelled")
    assert client.get(first)["state"] == "active"
    release.set()
    wait_until(lambda: client.get(first)["state"] == "succeeded", 20, "the first job")
    wt.stop()
    assert ran == [first]
    job = client.get(second)
    assert job["state"] == "cancelled" and job["attempts"] == 1, job
    assert job["errors"][-1]["type"] == "cancelled"
    stats = worker.stats
    assert stats["succeeded"] == 1 and stats["failed"] == 1 and stats["leased"] == 2, stats


def test_a_refused_lease_stops_the_worker_with_the_typed_error(server: PinnedServer) -> None:
    # A bad queue name will not heal by retrying: run() shuts down and raises the server's
    # 422 as yardmaster.Validation, instead of retrying forever.
    worker = Worker(["bad name!"], url=server.url(), poll_wait_ms=10000)
    worker.register("k", lambda job: None)
    wt = WorkerThread(worker).start()
    wt.thread.join(20)
    assert not wt.thread.is_alive(), "run() did not return"
    assert isinstance(wt.error, Validation), repr(wt.error)
    assert wt.error.status == 422 and "queues" in wt.error.message


def test_the_cli_exits_1_on_a_refused_lease(server: PinnedServer, tmp_path: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "yardmaster", "worker", "ym_worker_app:worker",
         "--queues", "bad name!", "--poll-wait-ms", "10000"],
        env=worker_env(server, str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "validation_failed" in proc.stderr


def test_stop_interrupts_the_long_poll(server: PinnedServer, client: Client,
                                       run_worker: Callable[[Worker], WorkerThread]) -> None:
    worker = Worker(["nothing_here"], url=server.url(), poll_wait_ms=30000)
    worker.register("k", lambda job: None)
    wt = run_worker(worker)

    def long_polling() -> bool:
        # The queue exists (and says so) once the worker's wait is registered.
        try:
            return client.queue("nothing_here")["waiting_workers"] == 1
        except NotFound:
            return False

    wait_until(long_polling, 30, "the lease request to long-poll the empty queue")
    t0 = time.monotonic()
    wt.stop(timeout=30)
    took = time.monotonic() - t0
    assert took < 15.0, took  # not the 30 s poll wait
    assert worker.stats["leased"] == 0


def test_a_result_the_server_refuses_fails_as_invalid_result(
        tmp_path: Any, run_worker: Callable[[Worker], WorkerThread]) -> None:
    s = PinnedServer(str(tmp_path / "data"), ["--max-payload-bytes", "1000",
                                              "--retention-succeeded-ms", "3600000"]).start()
    try:
        client = Client(s.url(), timeout=40.0)
        big = client.enqueue("rr", "big")["id"]
        small = client.enqueue("rr", "small")["id"]
        worker = Worker(["rr"], concurrency=2, url=s.url())
        worker.register("big", lambda job: "x" * 3000)  # JSON, but over the server's limit
        worker.register("small", lambda job: None)
        wt = run_worker(worker)
        wait_until(lambda: settled(client.get(big), "dead"), 20, "the refused result")
        wt.stop()
        job = client.get(big)
        assert job["attempts"] == 1 and job["errors"][-1]["type"] == "invalid_result", job
        assert "payload_too_large" in job["errors"][-1]["message"]
        # The other outcome of the same batch was not held back by it.
        assert worker.stats["succeeded"] == 1 and worker.stats["failed"] == 1, worker.stats
        assert client.get(small)["attempts"] == 1
        client.close()
    finally:
        s.stop()


def test_automatic_prefetch_runs_each_job_exactly_once(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    ids = [r["id"] for r in client.enqueue_batch([{"queue": "ap", "kind": "noop"}] * 300)]
    calls: Dict[str, int] = collections.Counter()
    lock = threading.Lock()
    worker = Worker(["ap"], concurrency=4, url=server.url())
    assert worker.prefetch is None  # automatic is the default

    @worker.task("noop")
    def noop(job: Job) -> None:
        with lock:
            calls[job.id] += 1

    wt = run_worker(worker)
    wait_until(lambda: worker.stats["succeeded"] == 300, 60, "300 jobs to succeed")
    wt.stop()
    assert sorted(calls) == sorted(ids) and set(calls.values()) == {1}
    stats = worker.stats
    assert set(stats) == STAT_KEYS
    assert stats["leased"] == 300 and stats["succeeded"] == 300, stats
    assert stats["failed"] == 0 and stats["handed_back"] == 0 and stats["leases_lost"] == 0
    assert stats["running"] == 0 and stats["reconnects"] == 0
    assert client.queue("ap")["counts"]["succeeded"] == 300


def test_automatic_prefetch_holds_no_jobs_behind_long_handlers(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    # As tests/worker/test_cpp_worker.py does for the C++ runtime: once the worker has seen
    # that jobs take 1 s, far longer than a lease round trip, it keeps nothing queued
    # (round(2 slots x 2 x round trip / 1 s) = 0 while a round trip averages under 125 ms).
    # Far more jobs than the 2 slots finish while the test samples, however slowly it runs.
    client.enqueue_batch([{"queue": "slow", "kind": "nap"}] * 100)
    worker = Worker(["slow"], concurrency=2, url=server.url())
    worker.register("nap", lambda job: time.sleep(1.0))
    wt = run_worker(worker)
    wait_until(lambda: worker.stats["succeeded"] >= 8, 60, "eight jobs done")
    samples = []
    for _ in range(20):
        samples.append(client.queue("slow")["counts"]["active"])
        time.sleep(0.05)
    # The 2 running jobs, plus at most one per slot whose ack is on its way (a prefetching
    # worker would hold everything that is ready).
    assert max(samples) <= 4, samples
    assert client.queue("slow")["counts"]["ready"] > 0
    wt.stop()
    assert worker.stats["handed_back"] == 0, worker.stats


def test_defaults() -> None:
    worker = Worker(["d"])
    assert worker.worker_id == f"{socket.gethostname()}-{os.getpid()}"
    assert worker.prefetch is None and worker.poll_wait_ms == 10000
    assert worker.ack_batch == 100 and worker.report_grace == 10.0
    assert set(worker.stats) == STAT_KEYS and not any(worker.stats.values())


def test_an_idle_worker_without_long_polls_asks_at_most_ten_times_a_second(
        server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    def lease_requests() -> int:
        with urllib.request.urlopen(server.url() + "/metrics", timeout=10) as answer:
            return int(metric(answer.read().decode(),
                              'ym_http_requests_total{route="POST /v1/leases",code="2xx"}'))

    worker = Worker(["idle"], concurrency=1, url=server.url(), poll_wait_ms=0)
    worker.register("k", lambda job: None)
    wt = run_worker(worker)
    wait_until(lambda: lease_requests() >= 1, 20, "the first lease request")
    t0 = time.monotonic()  # before the first read, so that the window counted lies within took
    before = lease_requests()
    # A measuring window, not a wait for something to happen: the rate limit is an upper
    # bound, so a slow machine only makes the count smaller.
    time.sleep(1.0)
    asked, took = lease_requests() - before, time.monotonic() - t0
    wt.stop()
    # 10 a second at most (plus one in flight at each end); without the pause it would be
    # hundreds or thousands.
    assert asked <= 10 * took + 2, (asked, took)
    assert asked >= 1
