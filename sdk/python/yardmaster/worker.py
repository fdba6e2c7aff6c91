"""The worker runtime: lease jobs, run handlers in a thread pool, heartbeat, ack, shut down.

Threads and who owns what::

    main thread (run)   waits for stop(), SIGTERM or SIGINT, then drives the shutdown
    ym-lease            POST /v1/leases (long poll), never more jobs than free handler slots
                        plus ``prefetch`` (those wait in the executor's queue, heartbeated)
    ym-handler-N        ThreadPoolExecutor running handlers, one job at a time each
    ym-heartbeat        one thread for every running job: POST /v1/jobs/{id}:heartbeat at a
                        fraction of the lease; turns cancel_requested / 409 into job.cancelled
    ym-acks             POST /v1/acks:batch every ~10 ms or when enough outcomes are pending

Each HTTP-speaking thread has its own keep-alive connection. The shared bookkeeping (which jobs
hold a slot, which leases to heartbeat, which outcomes wait to be sent) is guarded by one
condition variable, ``Worker._cond``.

Life of a job in the worker::

    leased --> submitted --> running --> outcome queued --> flushed (acked / failed)
                  |             |  \\                          ^
                  |  stopping   |   +-- lease lost (409): outcome dropped, logged
                  +-------------+-----> shutdown fail (retryable, retry_in_ms=0) -+
                   (not started yet, or still running when shutdown_grace ends)

The wire protocol is docs/api.md; the behaviour contract is docs/python-sdk.md.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import signal
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from ._http import Connection, encode_json, resolve_url
from .errors import (Conflict, NotFound, ResourceExhausted, Unavailable, YardmasterError,
                     error_from_item)
from .job import Cancelled, Job, Permanent, Retry

__all__ = ["Worker", "Handler"]

log = logging.getLogger("yardmaster.worker")

Handler = Callable[[Job], Any]
"""A task handler: takes the :class:`~yardmaster.job.Job`, returns its JSON result or None."""

H = TypeVar("H", bound=Handler)

MAX_POLL_WAIT_MS = 30000        # POST /v1/leases accepts wait_ms up to 30 s
MAX_ERROR_MESSAGE_BYTES = 8192  # error.message limit of :fail and acks:batch
MAX_ERROR_TYPE_BYTES = 128
MAX_RETRY_IN_MS = 2592000000    # 30 days
MAX_ACK_BATCH = 1000            # items per POST /v1/acks:batch
TRACEBACK_LINES = 12            # how much of a handler's traceback goes into the error message


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


class _Backoff:
    """Exponential backoff with full jitter for reconnecting to an unreachable server."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * (2 ** min(self.failures, 16)))
        self.failures += 1
        # Full jitter keeps a fleet of workers from reconnecting in lock-step after a restart,
        # but never below a floor that would spin.
        return max(self.initial / 2, random.uniform(0, cap))

    def reset(self) -> None:
        self.failures = 0


class Worker:
    """Runs handlers for the jobs of some queues.

    Args:
        queues: queue names to lease from (a list, or one comma-separated string).
        concurrency: handler threads; at most this many jobs run at any time.
        prefetch: extra jobs leased ahead of free handler slots (default 0), so that a slot
            never waits for a lease round trip. They wait in a local queue, are heartbeated
            like running jobs, and are handed back at shutdown with a retryable fail and
            ``retry_in_ms=0`` (re-delivered at once). At most ``concurrency + prefetch``
            (<= 1000) jobs are leased at any time.
        url: server URL; default ``$YM_URL``, else ``http://127.0.0.1:7433``.
        lease_ms: lease length to ask for (100..86400000) and to extend by on each heartbeat;
            ``None`` uses each job's own ``lease_ms`` (its queue's, 30 s by default).
        batch: most jobs per lease request (1..1000); default ``concurrency + prefetch``.
        heartbeat_fraction: heartbeat each running job every ``lease * fraction`` (0 < f < 1).
        shutdown_grace: seconds that running handlers get to finish after SIGTERM/SIGINT or
            :meth:`stop`; jobs still running then are failed as retryable with
            ``retry_in_ms=0``, so that another worker picks them up at once.
        worker_id: shown in each job's ``lease.worker_id``; default ``host:pid:random``.
        poll_wait_ms: long-poll wait of each lease request when nothing is ready (<= 30000).
        ack_interval: seconds an outcome may wait to be batched with others (default 10 ms).
        ack_batch: outcomes that trigger an immediate flush; default ``max(concurrency, 64)``.

    Example::

        worker = Worker(["emails"], concurrency=8)

        @worker.task("send_welcome")
        def send_welcome(job: Job) -> dict:
            return {"sent_to": job.payload["user"]}

        worker.run()  # until SIGTERM / SIGINT
    """

    def __init__(self, queues: Union[str, Sequence[str]], concurrency: int = 8,
                 url: Optional[str] = None, lease_ms: Optional[int] = None,
                 batch: Optional[int] = None, heartbeat_fraction: float = 1 / 3,
                 shutdown_grace: float = 30.0, worker_id: Optional[str] = None,
                 poll_wait_ms: int = MAX_POLL_WAIT_MS, ack_interval: float = 0.01,
                 ack_batch: Optional[int] = None, prefetch: int = 0) -> None:
        self._handlers: Dict[str, Handler] = {}
        self.queues: List[str] = []
        self.url = resolve_url(url)
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.lease_ms = lease_ms
        self.batch = batch
        self.heartbeat_fraction = heartbeat_fraction
        self.shutdown_grace = shutdown_grace
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}")
        self.poll_wait_ms = poll_wait_ms
        self.ack_interval = ack_interval
        self.ack_batch = ack_batch
        self.ack_flush_timeout = 10.0
        self.set_queues(queues)

        self._cond = threading.Condition()
        self._running = False
        # Set from signal handlers and other threads without taking a lock (a signal handler
        # that blocked on a lock the main thread holds would deadlock); the main thread polls
        # them. Plain attribute writes are atomic under the GIL.
        self._stop_requested = False
        self._force_stop = False
        self._fatal: Optional[BaseException] = None
        self._reset_run_state()

    # --- configuration -----------------------------------------------------------------------

    def set_queues(self, queues: Union[str, Sequence[str]]) -> None:
        """Replace the queues to lease from (before :meth:`run`)."""
        if isinstance(queues, str):
            queues = [q.strip() for q in queues.split(",")]
        names = [q for q in queues if q]
        if not names:
            raise ValueError("a Worker needs at least one queue")
        self.queues = list(names)

    def task(self, kind: str) -> Callable[[H], H]:
        """Decorator registering ``fn`` as the handler of jobs of ``kind``::

            @worker.task("resize_image")
            def resize(job: Job) -> None: ...
        """
        def decorate(fn: H) -> H:
            self.register(kind, fn)
            return fn
        return decorate

    def register(self, kind: str, handler: Handler) -> None:
        """Register ``handler`` for jobs of ``kind`` (replacing an earlier one)."""
        if not kind:
            raise ValueError("kind must be a non-empty string")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> List[str]:
        """The kinds this worker has handlers for."""
        return sorted(self._handlers)

    @property
    def stats(self) -> Dict[str, int]:
        """Counters since :meth:`run` started: ``leased``, ``succeeded``, ``failed``,
        ``lease_lost``, ``requeued`` (failed by the shutdown), ``heartbeats``."""
        with self._cond:
            return dict(self._stats)

    def _validate(self) -> None:
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ValueError("concurrency must be an integer >= 1")
        if not isinstance(self.prefetch, int) or self.prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0 (got {self.prefetch!r})")
        if self.concurrency + self.prefetch > 1000:
            raise ValueError(f"concurrency + prefetch must be <= 1000 (got {self.concurrency} "
                             f"+ {self.prefetch})")
        if self.batch is not None and not 1 <= self.batch <= 1000:
            raise ValueError("batch must be 1..1000")
        if self.lease_ms is not None and not 100 <= self.lease_ms <= 86400000:
            raise ValueError("lease_ms must be 100..86400000")
        if not 0 < self.heartbeat_fraction < 1:
            raise ValueError("heartbeat_fraction must be between 0 and 1")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must be >= 0")
        if not 0 <= self.poll_wait_ms <= MAX_POLL_WAIT_MS:
            raise ValueError(f"poll_wait_ms must be 0..{MAX_POLL_WAIT_MS}")

    def _reset_run_state(self) -> None:
        self._stopping = False           # no new lease, no new handler start
        self._active: Dict[str, Job] = {}  # token -> job running or waiting for a slot
        self._leases: Dict[str, Job] = {}  # token -> job whose outcome is not yet flushed
        self._hb_heap: List[Tuple[float, int, str]] = []
        self._hb_seq = itertools.count()
        self._pending: List[Tuple[str, Dict[str, Any], Job]] = []  # ("ack"|"fail", item, job)
        self._pending_since = 0.0
        self._hb_closing = False
        self._acks_closing = False
        self._abandoned = 0
        self._stats: Dict[str, int] = {k: 0 for k in (
            "leased", "succeeded", "failed", "lease_lost", "requeued", "heartbeats")}

    # --- public control ----------------------------------------------------------------------

    def stop(self, force: bool = False) -> None:
        """Ask a running worker to shut down gracefully; safe from any thread and from signal
        handlers (it takes no lock). ``force=True`` (or a second call) does not wait for
        running handlers: they are failed for re-delivery at once."""
        if self._stop_requested or force:
            self._force_stop = True
        self._stop_requested = True

    @property
    def abandoned_handlers(self) -> int:
        """Handlers still running after the last :meth:`run` returned (they outlived
        ``shutdown_grace`` and their jobs were failed for re-delivery)."""
        return self._abandoned

    def run(self, install_signal_handlers: bool = True) -> None:
        """Process jobs until :meth:`stop`, SIGTERM or SIGINT, then shut down gracefully.

        Signal handlers are installed only when called from the main thread (and restored on
        return). Returns normally after a graceful shutdown.

        Raises:
            YardmasterError: the server refused the worker's requests for a reason retrying
                cannot fix (e.g. an invalid queue name).
        """
        self._validate()
        if self._running:
            raise RuntimeError("this Worker is already running")
        if not self._handlers:
            raise ValueError("no handlers registered; use @worker.task(kind)")
        self._running = True
        # _stop_requested is not cleared here: a stop() that raced ahead of run() still counts.
        self._fatal = None
        self._reset_run_state()
        self._capacity = self.concurrency + self.prefetch
        self._batch = self.batch or min(self._capacity, 1000)
        self._ack_flush_size = min(self.ack_batch or max(self.concurrency, 64), MAX_ACK_BATCH)
        self._lease_conn = Connection(self.url, timeout=30.0)
        self._hb_conn = Connection(self.url, timeout=30.0)
        self._ack_conn = Connection(self.url, timeout=30.0)
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency,
                                            thread_name_prefix="ym-handler")
        threads = {
            "lease": threading.Thread(target=self._lease_loop, name="ym-lease", daemon=True),
            "hb": threading.Thread(target=self._heartbeat_loop, name="ym-heartbeat", daemon=True),
            "acks": threading.Thread(target=self._ack_loop, name="ym-acks", daemon=True),
        }
        previous = self._install_signals() if install_signal_handlers else {}
        log.info("worker %s: queues %s, concurrency %d, prefetch %d, kinds %s, server %s",
                 self.worker_id, ",".join(self.queues), self.concurrency, self.prefetch,
                 ",".join(self.kinds), self.url)
        try:
            for t in threads.values():
                t.start()
            # A short sleep rather than a blocking wait: signal handlers must not take locks
            # (see stop()), so the main thread polls the flag instead of being notified.
            while not self._stop_requested:
                time.sleep(0.05)
            self._shutdown(threads)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._stop_requested = False
            self._force_stop = False
            self._running = False
        if self._fatal is not None:
            raise self._fatal

    # --- signals -----------------------------------------------------------------------------

    def _install_signals(self) -> Dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: Dict[int, Any] = {}

        def on_signal(signum: int, _frame: Any) -> None:
            if self._stop_requested:
                log.warning("signal %d again: not waiting for running handlers", signum)
            else:
                log.info("signal %d: shutting down (grace %.1fs)", signum, self.shutdown_grace)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
        return previous

    # --- shutdown ----------------------------------------------------------------------------

    def _shutdown(self, threads: Dict[str, threading.Thread]) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        # Hanging up the long poll makes the server release whatever it had not yet sent.
        self._lease_conn.abort()
        threads["lease"].join(timeout=10.0)

        # Prefetched jobs that no handler has started yet are handed back now, not when a
        # slot frees up (which may take the whole grace period).
        with self._cond:
            unstarted = [j for j in self._active.values() if not j._started and not j._reported]
            for job in unstarted:
                job._reported = True
                del self._active[job.token]
            self._cond.notify_all()
        for job in unstarted:
            self._queue_shutdown_fail(job)
        if unstarted:
            log.info("shutdown: %d prefetched job(s) handed back for immediate re-delivery",
                     len(unstarted))

        deadline = time.monotonic() + self.shutdown_grace
        with self._cond:
            while self._active and not self._force_stop:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.05))
            leftovers = [j for j in self._active.values() if not j._reported]
            for job in leftovers:
                job._reported = True
                self._abandoned += 1 if job._started else 0
            self._active.clear()
            self._cond.notify_all()
        for job in leftovers:
            # The handler may still be running; telling it to stop is all we can do.
            job._set_cancelled("shutdown")
            self._queue_shutdown_fail(job)
        if leftovers:
            log.warning("shutdown grace over: %d job(s) failed for immediate re-delivery",
                        len(leftovers))

        with self._cond:
            self._hb_closing = True
            self._acks_closing = True
            self._cond.notify_all()
        threads["acks"].join(timeout=self.ack_flush_timeout + 5.0)
        threads["hb"].join(timeout=5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        for conn in (self._lease_conn, self._hb_conn, self._ack_conn):
            conn.close()
        log.info("worker %s stopped: %s", self.worker_id, self._stats)

    def _queue_shutdown_fail(self, job: Job) -> None:
        with self._cond:
            self._stats["requeued"] += 1
        self._queue_outcome("fail", {
            "id": job.id, "token": job.token, "retry_in_ms": 0,
            "error": {"type": "shutdown", "retryable": True,
                      "message": f"worker {self.worker_id} shut down before the job finished"},
        }, job)

    # --- leasing -----------------------------------------------------------------------------

    def _lease_loop(self) -> None:
        backoff = _Backoff()
        try:
            while True:
                with self._cond:
                    while not self._stopping and len(self._active) >= self._capacity:
                        self._cond.wait()
                    if self._stopping:
                        return
                    # With a fast handler, slots free up one by one; waiting a moment for a
                    # few more turns many one-job lease requests into fewer larger ones.
                    low_water = max(1, min(self._batch, self._capacity) // 2)
                    if self._active and self._capacity - len(self._active) < low_water:
                        self._cond.wait(0.002)
                    want = min(self._capacity - len(self._active), self._batch)
                    if self._stopping:
                        return
                    if want <= 0:
                        continue
                body: Dict[str, Any] = {"queues": self.queues, "max": want,
                                        "wait_ms": self.poll_wait_ms, "worker_id": self.worker_id}
                if self.lease_ms is not None:
                    body["lease_ms"] = self.lease_ms
                try:
                    answer = self._lease_conn.request("POST", "/v1/leases", body,
                                                      timeout=self.poll_wait_ms / 1000 + 15.0)
                except (Unavailable, ResourceExhausted) as e:
                    if self._stopping:
                        return
                    delay = backoff.next_delay()
                    if isinstance(e, ResourceExhausted) and e.retry_after:
                        delay = max(delay, e.retry_after)
                    log.warning("lease failed (%s); retrying in %.2fs", e, delay)
                    self._sleep_unless_stopping(delay)
                    continue
                backoff.reset()
                self._take(answer.get("jobs") or [])
        except YardmasterError as e:
            log.error("lease refused: %s; stopping the worker", e)
            self._fatal = e
            self.stop(force=True)
        except BaseException as e:  # noqa: BLE001 - never die silently in a thread
            log.exception("lease loop crashed")
            self._fatal = e
            self.stop(force=True)

    def _sleep_unless_stopping(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)

    def _take(self, leased: List[Dict[str, Any]]) -> None:
        now_ms = time.time() * 1000
        jobs = [Job(item) for item in leased]
        refused: List[Job] = []
        with self._cond:
            self._stats["leased"] += len(jobs)
            for job in jobs:
                self._schedule_heartbeat(job, now_ms)
                self._leases[job.token] = job
                if self._stopping:
                    # The reply crossed our hang-up: the job was never started, hand it back.
                    job._reported = True
                    refused.append(job)
                else:
                    self._active[job.token] = job
            self._cond.notify_all()
        for job in jobs:
            if job in refused:
                self._queue_shutdown_fail(job)
            else:
                self._executor.submit(self._run_job, job)

    # --- running handlers --------------------------------------------------------------------

    def _run_job(self, job: Job) -> None:
        with self._cond:
            if job._reported:  # failed by the shutdown before a thread was free for it
                return
            if self._stopping:
                job._reported = True
                self._active.pop(job.token, None)
                self._cond.notify_all()
                start = False
            else:
                job._started = True
                start = True
        if not start:
            self._queue_shutdown_fail(job)
            return
        kind, item = self._execute(job)
        with self._cond:
            self._active.pop(job.token, None)
            self._cond.notify_all()
            if job._reported:  # the shutdown grace ran out first; the job was failed already
                self._abandoned = max(0, self._abandoned - 1)
                return
            job._reported = True
            lost = job.lease_lost
            if lost:
                self._leases.pop(job.token, None)
                self._stats["lease_lost"] += 1
        if lost:
            log.warning("job %s: lease lost while running; its outcome (%s) is dropped",
                        job.id, kind)
            return
        self._queue_outcome(kind, item, job)

    def _execute(self, job: Job) -> Tuple[str, Dict[str, Any]]:
        """Run the handler; returns ("ack"|"fail", the acks:batch item)."""
        base: Dict[str, Any] = {"id": job.id, "token": job.token}
        handler = self._handlers.get(job.kind)
        if handler is None:
            return "fail", dict(base, error={
                "type": "unknown_kind", "retryable": False,
                "message": f"no handler for kind {job.kind!r} in worker {self.worker_id} "
                           f"(kinds: {', '.join(self.kinds)})"})
        try:
            result = handler(job)
            if job.cancelled:
                raise Cancelled(f"job {job.id}: {job.cancel_reason}")
            if result is not None:
                encode_json(result)  # not JSON-serialisable: fail the attempt here, not the batch
                return "ack", dict(base, result=result)
            return "ack", base
        except Retry as e:
            item = dict(base, error=self._error(e, retryable=True, with_traceback=False))
            if e.after is not None:
                item["retry_in_ms"] = min(int(e.after * 1000), MAX_RETRY_IN_MS)
            return "fail", item
        except Permanent as e:
            return "fail", dict(base, error=self._error(e, retryable=False, with_traceback=False))
        except Cancelled as e:
            return "fail", dict(base, error={"type": "cancelled", "retryable": False,
                                             "message": str(e)})
        except BaseException as e:  # noqa: BLE001 - a handler's SystemExit must not kill us
            return "fail", dict(base, error=self._error(e, retryable=True, with_traceback=True))

    @staticmethod
    def _error(exc: BaseException, retryable: bool, with_traceback: bool) -> Dict[str, Any]:
        message = str(exc)
        if exc.__cause__ is not None:
            message += f" (caused by {type(exc.__cause__).__name__}: {exc.__cause__})"
        if with_traceback:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            tail = "".join(lines).splitlines()[-TRACEBACK_LINES:]
            message = (message + "\n" if message else "") + "\n".join(tail)
        return {"type": _truncate_utf8(type(exc).__name__, MAX_ERROR_TYPE_BYTES),
                "message": _truncate_utf8(message, MAX_ERROR_MESSAGE_BYTES),
                "retryable": retryable}

    # --- heartbeats --------------------------------------------------------------------------

    def _schedule_heartbeat(self, job: Job, now_ms: float) -> None:
        """Called with the lock held, when the job is leased."""
        if self.lease_ms is not None:
            lease_s = self.lease_ms / 1000
        else:
            # The job's own lease length, estimated from the server's expiry; with skewed
            # clocks this is off by the skew, hence the floor (set lease_ms to avoid it).
            lease_s = max(0.1, (job.lease_expires_at - now_ms) / 1000)
        job._hb_interval = max(0.02, lease_s * self.heartbeat_fraction)
        job._hb_due = time.monotonic() + job._hb_interval
        heapq.heappush(self._hb_heap, (job._hb_due, next(self._hb_seq), job.token))
        self._cond.notify_all()

    def _heartbeat_loop(self) -> None:
        try:
            while True:
                due: List[Job] = []
                with self._cond:
                    while not self._hb_closing:
                        now = time.monotonic()
                        while self._hb_heap and self._hb_heap[0][0] <= now:
                            at, _, token = heapq.heappop(self._hb_heap)
                            job = self._leases.get(token)
                            if job is not None and job._hb_due == at:
                                due.append(job)
                        if due:
                            break
                        wait = self._hb_heap[0][0] - now if self._hb_heap else 1.0
                        self._cond.wait(min(wait, 1.0))
                    if self._hb_closing:
                        return
                for job in due:
                    self._heartbeat(job)
        except BaseException:  # noqa: BLE001 - never die silently in a thread
            log.exception("heartbeat loop crashed")
            self._fatal = self._fatal or RuntimeError("heartbeat loop crashed")
            self.stop(force=True)

    def _heartbeat(self, job: Job) -> None:
        body: Dict[str, Any] = {"token": job.token}
        if self.lease_ms is not None:
            body["extend_ms"] = self.lease_ms
        next_in = job._hb_interval
        try:
            answer = self._hb_conn.request("POST", f"/v1/jobs/{job.id}:heartbeat", body)
            job.lease_expires_at = int(answer.get("expires_at", job.lease_expires_at))
            if answer.get("cancel_requested") and not job.cancelled:
                log.info("job %s: cancellation requested", job.id)
                job._set_cancelled("cancel_requested")
            with self._cond:
                self._stats["heartbeats"] += 1
        except (Conflict, NotFound) as e:
            # The lease expired or the job was handed to someone else: tell the handler to
            # stop, and never report this attempt (it would be refused with 409 anyway).
            log.warning("job %s: lease lost (%s)", job.id, e)
            job._set_cancelled("lease_lost")
            with self._cond:
                self._leases.pop(job.token, None)
            return
        except Unavailable as e:
            next_in = max(0.02, job._hb_interval / 2)
            log.warning("job %s: heartbeat failed (%s); retrying in %.2fs", job.id, e, next_in)
        except YardmasterError as e:
            log.error("job %s: heartbeat refused: %s", job.id, e)
        with self._cond:
            if job.token in self._leases:
                job._hb_due = time.monotonic() + next_in
                heapq.heappush(self._hb_heap, (job._hb_due, next(self._hb_seq), job.token))

    # --- acks and fails ----------------------------------------------------------------------

    def _queue_outcome(self, kind: str, item: Dict[str, Any], job: Job) -> None:
        with self._cond:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append((kind, item, job))
            if len(self._pending) >= self._ack_flush_size:
                self._cond.notify_all()

    def _ack_loop(self) -> None:
        backoff = _Backoff()
        give_up_at: Optional[float] = None
        try:
            while True:
                with self._cond:
                    while True:
                        if self._acks_closing and give_up_at is None:
                            give_up_at = time.monotonic() + self.ack_flush_timeout
                        if self._pending and (
                                self._acks_closing or len(self._pending) >= self._ack_flush_size
                                or time.monotonic() - self._pending_since >= self.ack_interval):
                            break
                        if self._acks_closing and not self._pending:
                            return
                        wait = self.ack_interval if not self._pending else max(
                            0.0, self._pending_since + self.ack_interval - time.monotonic())
                        self._cond.wait(wait)
                    chunk = self._pending[:MAX_ACK_BATCH]
                    del self._pending[:MAX_ACK_BATCH]
                    if self._pending:
                        self._pending_since = time.monotonic()
                retry = self._flush(chunk)
                if retry:
                    if give_up_at is not None and time.monotonic() >= give_up_at:
                        log.error("could not report %d outcome(s) before exiting; their leases "
                                  "will expire and the jobs will run again", len(retry))
                        return
                    with self._cond:
                        self._pending[:0] = retry
                        self._pending_since = time.monotonic()
                    delay = backoff.next_delay()
                    if give_up_at is not None:
                        delay = min(delay, max(0.0, give_up_at - time.monotonic()))
                    time.sleep(delay)
                else:
                    backoff.reset()
        except BaseException:  # noqa: BLE001 - never die silently in a thread
            log.exception("ack loop crashed")
            self._fatal = self._fatal or RuntimeError("ack loop crashed")
            self.stop(force=True)

    def _flush(self, chunk: List[Tuple[str, Dict[str, Any], Job]]
               ) -> List[Tuple[str, Dict[str, Any], Job]]:
        """Send one acks:batch; returns the entries to send again (transient failures)."""
        acks = [e for e in chunk if e[0] == "ack"]
        fails = [e for e in chunk if e[0] == "fail"]
        body: Dict[str, Any] = {}
        if acks:
            body["acks"] = [e[1] for e in acks]
        if fails:
            body["fails"] = [e[1] for e in fails]
        try:
            answer = self._ack_conn.request("POST", "/v1/acks:batch", body)
        except Unavailable as e:
            log.warning("reporting %d outcome(s) failed (%s); will retry", len(chunk), e)
            return chunk
        except YardmasterError as e:
            log.error("acks:batch refused (%s); dropping %d outcome(s)", e, len(chunk))
            self._forget(chunk)
            return []
        retry: List[Tuple[str, Dict[str, Any], Job]] = []
        done: List[Tuple[str, Dict[str, Any], Job]] = []
        for entries, results in ((acks, answer.get("acks") or []),
                                 (fails, answer.get("fails") or [])):
            for entry, res in zip(entries, results):
                if isinstance(res, dict) and "error" in res:
                    err = error_from_item(res)
                    if isinstance(err, Unavailable):
                        retry.append(entry)
                        continue
                    if isinstance(err, (Conflict, NotFound)):
                        log.warning("job %s: %s refused, lease lost: %s", entry[2].id, entry[0],
                                    err)
                        with self._cond:
                            self._stats["lease_lost"] += 1
                    else:
                        log.error("job %s: %s refused: %s", entry[2].id, entry[0], err)
                else:
                    with self._cond:
                        self._stats["succeeded" if entry[0] == "ack" else "failed"] += 1
                done.append(entry)
        self._forget(done)
        return retry

    def _forget(self, entries: List[Tuple[str, Dict[str, Any], Job]]) -> None:
        with self._cond:
            for _, _, job in entries:
                self._leases.pop(job.token, None)
