"""The worker runtime: lease jobs, run handlers in a thread pool, heartbeat, report, shut down.

The behaviour is the contract every Yardmaster worker runtime follows, docs/workers.md; the
decision rules with their constants (prefetch, when to lease, backoff, heartbeat timing) are
the pure functions of :mod:`yardmaster._policy`. The wire protocol is docs/api.md.

Threads and who owns what::

    main thread (run)   waits for stop(), SIGTERM or SIGINT, then drives the shutdown
    ym-lease            POST /v1/leases (long poll), one at a time, for the free capacity
                        (concurrency + prefetch - running - queued) by _policy.lease_want
    ym-handler-N        ThreadPoolExecutor running handlers, one job at a time each; jobs
                        leased ahead of a free slot wait in its queue ("queued")
    ym-heartbeat        POST /v1/jobs/{id}:heartbeat for every leased job until its outcome is
                        confirmed; turns cancel_requested / 409 / 404 into job.cancelled;
                        at a job's execution deadline (timeout_ms) stops heartbeating it,
                        sets job.cancelled ("timeout") and raises JobTimeout in its handler
    ym-cancels          POST /v1/cancels:watch (long poll) while jobs are held: a cancel
                        reaches job.cancelled as soon as it is requested, not at the next
                        heartbeat
    ym-acks             POST /v1/acks:batch 10 ms after the first pending outcome, or at 100

Each HTTP-speaking thread has its own keep-alive connection. The shared bookkeeping (which jobs
are queued or running, which leases to heartbeat, which outcomes wait to be sent) is guarded by
one lock, ``Worker._lock``; each waiting thread has its own condition on it, so that a handler
finishing wakes the leaser and not every thread.

Life of a job in the worker::

    leased --> queued --> running --> outcome pending --> confirmed (acked / failed)
      |          |  \\        |  \\           |
      |          |   \\       |   +-- lease lost (409/404) or timeout: outcome dropped, logged
      |          |    +-- cancel learnt: failed "cancelled" at once, never started
      +----------+-----------+-----> handed back (fail retryable, retry_in_ms 0, "shutdown")
   (reply crossed   (stopping)  (shutdown grace over)
    the shutdown)
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import os
import signal
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from ._http import Connection, encode_json, resolve_url
from ._policy import (MAX_CAPACITY, MIN_EMPTY_LEASE_INTERVAL, AutoPrefetch, Backoff,
                      heartbeat_interval, heartbeat_retry_delay, lease_want)
from .errors import (Conflict, Internal, NotFound, ResourceExhausted, Unavailable,
                     YardmasterError, error_from_item)
from ._tracing import Tracing
from .job import Cancelled, Job, JobTimeout, Permanent, Retry

__all__ = ["Worker", "Handler"]

log = logging.getLogger("yardmaster.worker")
"""The worker's logger. Lifecycle lines (start, shutdown, reconnects) are INFO; every failed
attempt is a WARNING with the exception and its traceback (docs/python-sdk.md, "Logging")."""

Handler = Callable[[Job], Any]
"""A task handler: takes the :class:`~yardmaster.job.Job`, returns its JSON result or None."""

H = TypeVar("H", bound=Handler)

MAX_POLL_WAIT_MS = 30000        # POST /v1/leases accepts wait_ms up to 30 s
DEFAULT_POLL_WAIT_MS = 10000
MAX_ERROR_MESSAGE_BYTES = 8192  # error.message limit of :fail and acks:batch
MAX_ERROR_TYPE_BYTES = 128
MAX_WORKER_ID_BYTES = 128       # lease worker_id limit
CANCEL_WATCH_WAIT_MS = 25000    # how long one cancel watch waits on the server for news
CANCEL_WATCH_MIN_ROUND = 0.1    # a watch answered without news faster than this (a draining
CANCEL_WATCH_PAUSE = 0.5        # server answers at once) is renewed only after the pause
MAX_KNOWN_CANCELS = 1000        # POST /v1/cancels:watch accepts up to 1000 known ids
MAX_RETRY_IN_MS = 2592000000    # 30 days
MAX_ACK_BATCH = 1000            # items per POST /v1/acks:batch
TRACEBACK_LINES = 12            # how much of a handler's traceback goes into the error message
PROGRESS_INTERVAL = 0.25        # job.progress() reports go out at most this often per job

STAT_KEYS = ("leased", "succeeded", "failed", "handed_back", "leases_lost", "cancelled",
             "timeouts", "heartbeats", "reconnects", "running")


def _raise_in_thread(thread_id: int, exc: Optional[type]) -> bool:
    """Schedule ``exc`` to be raised in the thread ``thread_id`` the next time it runs Python
    code (``None`` withdraws one not yet raised). CPython only; False where unavailable."""
    try:
        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except AttributeError:  # not CPython
        return False
    return set_async_exc(ctypes.c_ulong(thread_id),
                         ctypes.py_object(exc) if exc is not None else None) == 1


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _is_transient(err: YardmasterError) -> bool:
    """Whether a request refused with ``err`` may succeed if sent again: no answer, a 5xx, a
    408 or a 429 (docs/workers.md). Every other 4xx will not heal by retrying."""
    if isinstance(err, (Unavailable, Internal, ResourceExhausted)):
        return True
    return err.status is not None and (err.status >= 500 or err.status in (408, 429))


class _Report:
    """One outcome waiting to be confirmed by the server: an ack or a fail item of
    acks:batch. ``handback`` marks the shutdown's fails (counted as ``handed_back``)."""

    __slots__ = ("ack", "item", "job", "handback")

    def __init__(self, ack: bool, item: Dict[str, Any], job: Job, handback: bool = False) -> None:
        self.ack = ack
        self.item = item
        self.job = job
        self.handback = handback


class Worker:
    """Runs handlers for the jobs of some queues, following docs/workers.md.

    Args:
        queues: queue names to lease from (a list, or one comma-separated string).
        concurrency: handler threads; at most this many jobs run at any time (1..1000).
        url: server URL; default ``$YM_URL``, else ``http://127.0.0.1:7433``.
        lease_ms: lease length to ask for (100..86400000) and to extend by on each heartbeat;
            ``None`` uses each job's own ``lease_ms`` (its queue's, 30 s by default).
        batch: most jobs per lease request (1..1000); default: all the free capacity.
        heartbeat_fraction: heartbeat each leased job once this fraction of its lease has
            elapsed (0.05..0.9, default 1/3; never more often than every 50 ms).
        shutdown_grace: seconds that running handlers get to finish after SIGTERM/SIGINT or
            :meth:`stop`; jobs still running then are handed back (failed retryable with
            ``retry_in_ms=0``), so that another worker picks them up at once.
        worker_id: shown in each job's ``lease.worker_id`` (at most 128 bytes); default
            ``<hostname>-<pid>``.
        poll_wait_ms: long-poll wait of each lease request when nothing is ready (0..30000,
            default 10000).
        ack_interval: seconds an outcome may wait to be batched with others (default 10 ms).
        ack_batch: pending outcomes that trigger an immediate flush (1..1000, default 100).
        prefetch: jobs leased ahead of free handler slots, so that a slot starts its next job
            without a lease round trip. ``None`` (the default) is automatic: just enough to
            cover the lease round trip, measured as the worker runs. An integer keeps up to
            that many queued whatever the run times; ``0`` turns prefetch off (use it when
            several workers must share a queue strictly evenly). Queued jobs are heartbeated
            and handed back at once on shutdown. ``concurrency + prefetch <= 1000``.
        report_grace: seconds that pending outcomes keep being retried at shutdown, once the
            handlers are done, while the server is unreachable (default 10).
        tracing: run each handler in an OpenTelemetry span that continues the job's trace
            context, when the ``opentelemetry`` API package is importable (default True;
            docs/python-sdk.md, "Trace context"). Never required.
        ca_file: for an ``https://`` URL, a PEM file of the CAs the server's certificate must
            chain to; default ``$YM_CA_FILE``, else the system's trusted CAs.
        client_cert_file, client_key_file: a client certificate and its key for a server that
            requires one (mTLS); default ``$YM_CLIENT_CERT_FILE`` / ``$YM_CLIENT_KEY_FILE``.
        token, token_file: an API token (or a file whose first line is one) sent as
            ``Authorization: Bearer``; default ``$YM_TOKEN``, else ``$YM_TOKEN_FILE``.

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
                 poll_wait_ms: int = DEFAULT_POLL_WAIT_MS, ack_interval: float = 0.01,
                 ack_batch: int = 100, prefetch: Optional[int] = None,
                 report_grace: float = 10.0, tracing: bool = True,
                 ca_file: Optional[str] = None, client_cert_file: Optional[str] = None,
                 client_key_file: Optional[str] = None, token: Optional[str] = None,
                 token_file: Optional[str] = None) -> None:
        self._handlers: Dict[str, Handler] = {}
        self._token = token  # None: token_file, $YM_TOKEN, $YM_TOKEN_FILE (never shown)
        self._token_file = token_file
        self._tracing = Tracing(tracing)
        self.queues: List[str] = []
        self.url = resolve_url(url)
        self.ca_file = ca_file  # https:// only; None: $YM_CA_FILE, else the system's CAs
        self.client_cert_file = client_cert_file  # mTLS; None: $YM_CLIENT_CERT_FILE
        self.client_key_file = client_key_file  # None: $YM_CLIENT_KEY_FILE
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.lease_ms = lease_ms
        self.batch = batch
        self.heartbeat_fraction = heartbeat_fraction
        self.shutdown_grace = shutdown_grace
        self.worker_id = worker_id if worker_id is not None else _truncate_utf8(
            f"{socket.gethostname()}-{os.getpid()}", MAX_WORKER_ID_BYTES)
        self.poll_wait_ms = poll_wait_ms
        self.ack_interval = ack_interval
        self.ack_batch = ack_batch
        self.report_grace = report_grace
        self.set_queues(queues)

        self._lock = threading.Lock()
        self._lease_cv = threading.Condition(self._lock)  # capacity freed, or stopping
        self._idle_cv = threading.Condition(self._lock)   # a running handler finished
        self._hb_cv = threading.Condition(self._lock)     # a heartbeat is due sooner, or closing
        self._ack_cv = threading.Condition(self._lock)    # outcomes pending, or closing
        self._watch_cv = threading.Condition(self._lock)  # jobs leased, or closing
        self._running = False
        # Set from signal handlers and other threads without taking a lock (a signal handler
        # that blocked on a lock the main thread holds would deadlock); the main thread polls
        # them. Plain attribute writes are atomic under the GIL.
        self._stop_requested = False
        self._force_stop = False
        self._fatal: Optional[BaseException] = None
        self._abandoned = 0
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
        """Counters since :meth:`run` started (docs/workers.md, "Counters"):

        - ``leased``: jobs received from the server;
        - ``succeeded`` / ``failed``: acks / fails the server confirmed (hand-backs excluded);
        - ``handed_back``: shutdown fails (``retry_in_ms=0``) the server confirmed;
        - ``leases_lost``: leases found gone (409/404 on a heartbeat, ack or fail);
        - ``cancelled``: cancels learnt (from the cancel watch or a heartbeat);
        - ``timeouts``: attempts stopped at their execution timeout (the job's ``timeout_ms``);
        - ``heartbeats``: heartbeats the server answered;
        - ``reconnects``: lease requests retried after a failure (no answer, 5xx, 408, 429);
        - ``running``: handlers running now.
        """
        with self._lock:
            return dict(self._stats, running=self._handlers_running)

    @property
    def abandoned_handlers(self) -> int:
        """Handlers still running after the last :meth:`run` returned (they outlived
        ``shutdown_grace`` and their jobs were handed back)."""
        return self._abandoned

    def _validate(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.concurrency) or not 1 <= self.concurrency <= MAX_CAPACITY:
            raise ValueError(f"concurrency must be an integer 1..{MAX_CAPACITY} "
                             f"(got {self.concurrency!r})")
        if self.prefetch is not None:
            if not is_int(self.prefetch) or self.prefetch < 0:
                raise ValueError("prefetch must be None (automatic) or an integer >= 0 "
                                 f"(got {self.prefetch!r})")
            if self.concurrency + self.prefetch > MAX_CAPACITY:
                raise ValueError(f"concurrency + prefetch must be <= {MAX_CAPACITY} "
                                 f"(got {self.concurrency} + {self.prefetch})")
        if self.batch is not None and (not is_int(self.batch) or not 1 <= self.batch <= 1000):
            raise ValueError(f"batch must be 1..1000 (got {self.batch!r})")
        if self.lease_ms is not None and (not is_int(self.lease_ms)
                                          or not 100 <= self.lease_ms <= 86400000):
            raise ValueError(f"lease_ms must be 100..86400000 (got {self.lease_ms!r})")
        if not 0.05 <= self.heartbeat_fraction <= 0.9:
            raise ValueError("heartbeat_fraction must be 0.05..0.9 "
                             f"(got {self.heartbeat_fraction!r})")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must be >= 0")
        if self.report_grace < 0:
            raise ValueError("report_grace must be >= 0")
        if not is_int(self.poll_wait_ms) or not 0 <= self.poll_wait_ms <= MAX_POLL_WAIT_MS:
            raise ValueError(f"poll_wait_ms must be 0..{MAX_POLL_WAIT_MS} "
                             f"(got {self.poll_wait_ms!r})")
        if self.ack_interval < 0:
            raise ValueError("ack_interval must be >= 0")
        if not is_int(self.ack_batch) or not 1 <= self.ack_batch <= MAX_ACK_BATCH:
            raise ValueError(f"ack_batch must be 1..{MAX_ACK_BATCH} (got {self.ack_batch!r})")
        if len(self.worker_id.encode("utf-8")) > MAX_WORKER_ID_BYTES:
            raise ValueError(f"worker_id must be at most {MAX_WORKER_ID_BYTES} bytes")

    def _reset_run_state(self) -> None:
        self._stopping = False                 # no new lease, no new handler start
        self._queued: Dict[str, Job] = {}      # token -> leased, waiting for a handler thread
        self._running_jobs: Dict[str, Job] = {}  # token -> handler running, job holds a slot
        self._handlers_running = 0             # handler calls in progress (abandoned included)
        self._leases: Dict[str, Job] = {}      # token -> heartbeated until its outcome is done
        self._hb_heap: List[Tuple[float, int, str]] = []
        self._deadline_heap: List[Tuple[float, int, str]] = []  # execution deadlines
        self._hb_seq = itertools.count()
        self._pending: List[_Report] = []
        self._pending_since = 0.0
        self._hb_closing = False
        self._acks_closing = False
        self._watch_closing = False
        self._auto: Optional[AutoPrefetch] = AutoPrefetch() if self.prefetch is None else None
        self._stats: Dict[str, int] = {k: 0 for k in STAT_KEYS if k != "running"}

    # --- public control ----------------------------------------------------------------------

    def stop(self, force: bool = False) -> None:
        """Ask a running worker to shut down gracefully; safe from any thread and from signal
        handlers (it takes no lock). ``force=True`` (or a second call) does not wait for
        running handlers: their jobs are handed back at once."""
        if self._stop_requested or force:
            self._force_stop = True
        self._stop_requested = True

    def _connection(self) -> Connection:
        return Connection(self.url, timeout=30.0, ca_file=self.ca_file,
                          client_cert_file=self.client_cert_file,
                          client_key_file=self.client_key_file, token=self._token,
                          token_file=self._token_file)

    def run(self, install_signal_handlers: bool = True) -> None:
        """Process jobs until :meth:`stop`, SIGTERM or SIGINT, then shut down gracefully.

        Signal handlers are installed only when called from the main thread (and restored on
        return). Returns normally after a graceful shutdown.

        Raises:
            ValueError: an invalid setting, or no handler registered.
            YardmasterError: the server refused a lease request for a reason retrying cannot
                fix (any 4xx but 408 and 429, e.g. :class:`~yardmaster.errors.Validation` for
                an invalid queue name); the worker shut down gracefully first.
        """
        self._validate()
        if self._running:
            raise RuntimeError("this Worker is already running")
        if not self._handlers:
            raise ValueError("no handlers registered; use @worker.task(kind)")
        self._running = True
        # _stop_requested is not cleared here: a stop() that raced ahead of run() still counts.
        self._fatal = None
        self._abandoned = 0
        self._reset_run_state()
        self._batch = self.batch or MAX_CAPACITY
        self._lease_conn = self._connection()
        self._hb_conn = self._connection()
        self._ack_conn = self._connection()
        self._watch_conn = self._connection()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency,
                                            thread_name_prefix="ym-handler")
        threads = {
            "lease": threading.Thread(target=self._lease_loop, name="ym-lease", daemon=True),
            "hb": threading.Thread(target=self._heartbeat_loop, name="ym-heartbeat", daemon=True),
            "acks": threading.Thread(target=self._ack_loop, name="ym-acks", daemon=True),
            "cancels": threading.Thread(target=self._cancel_watch_loop, name="ym-cancels",
                                        daemon=True),
        }
        previous = self._install_signals() if install_signal_handlers else {}
        log.info("worker %s: queues %s, concurrency %d, prefetch %s, kinds %s, server %s",
                 self.worker_id, ",".join(self.queues), self.concurrency,
                 "auto" if self.prefetch is None else self.prefetch, ",".join(self.kinds),
                 self.url)
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
        """docs/workers.md, "Shutdown", steps 1 to 5."""
        with self._lock:
            self._stopping = True
            self._lease_cv.notify_all()
        # 1. Hanging up the long poll makes the server release whatever it had not yet sent; a
        # reply already on its way is still read, and _take hands those jobs back.
        self._lease_conn.abort()
        threads["lease"].join(timeout=10.0)

        # 2. Queued jobs are handed back now, not when a slot frees up (which may take the
        # whole grace period).
        with self._lock:
            unstarted = list(self._queued.values())
            self._queued.clear()
            for job in unstarted:
                job._reported = True
                self._queue_handback_locked(job)
        if unstarted:
            log.info("shutdown: %d queued job(s) handed back for immediate re-delivery",
                     len(unstarted))

        # 3. Running handlers get the grace period. _force_stop is set without the lock (from
        # a signal handler), hence the bounded waits.
        deadline = time.monotonic() + self.shutdown_grace
        with self._lock:
            while self._running_jobs and not self._force_stop:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._idle_cv.wait(min(remaining, 0.05))
            leftovers = list(self._running_jobs.values())
            self._running_jobs.clear()
            for job in leftovers:
                job._reported = True
                self._abandoned += 1
                self._queue_handback_locked(job)
        # 4. The handlers may still run; telling them to stop is all that can be done. What
        # they return later is ignored (_run_job sees _reported).
        for job in leftovers:
            job._set_cancelled("shutdown")
        if leftovers:
            log.warning("shutdown grace over: %d running job(s) handed back for immediate "
                        "re-delivery", len(leftovers))

        # 5. Pending outcomes are sent (for up to report_grace while the server is down); jobs
        # stay heartbeated until then, so the heartbeater closes last.
        with self._lock:
            self._acks_closing = True
            self._ack_cv.notify_all()
        threads["acks"].join(timeout=self.report_grace + 5.0)
        with self._lock:
            self._hb_closing = True
            self._hb_cv.notify_all()
        self._hb_conn.abort()
        threads["hb"].join(timeout=5.0)
        with self._lock:
            self._watch_closing = True
            self._watch_cv.notify_all()
        self._watch_conn.abort()
        threads["cancels"].join(timeout=5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        for conn in (self._lease_conn, self._hb_conn, self._ack_conn, self._watch_conn):
            conn.close()
        log.info("worker %s stopped: %s", self.worker_id, self.stats)

    def _queue_handback_locked(self, job: Job) -> None:
        self._queue_report_locked(_Report(False, {
            "id": job.id, "token": job.token, "retry_in_ms": 0,
            "error": {"type": "shutdown", "retryable": True,
                      "message": f"worker {self.worker_id} shut down before the job finished"},
        }, job, handback=True))

    # --- leasing -----------------------------------------------------------------------------

    def _capacity_locked(self) -> int:
        if self._auto is not None:
            return self.concurrency + self._auto.target(self.concurrency)
        return self.concurrency + (self.prefetch or 0)

    def _lease_loop(self) -> None:
        backoff = Backoff()
        down_logged = False  # one warning per outage, not one per attempt
        try:
            while True:
                with self._lock:
                    while True:
                        if self._stopping:
                            return
                        want = lease_want(self.concurrency, self._capacity_locked(),
                                          len(self._running_jobs), len(self._queued),
                                          self._batch)
                        if want > 0:
                            break
                        self._lease_cv.wait()
                body: Dict[str, Any] = {"queues": self.queues, "max": want,
                                        "wait_ms": self.poll_wait_ms, "worker_id": self.worker_id}
                if self.lease_ms is not None:
                    body["lease_ms"] = self.lease_ms
                started = time.monotonic()
                try:
                    answer = self._lease_conn.request("POST", "/v1/leases", body,
                                                      timeout=self.poll_wait_ms / 1000 + 15.0)
                except YardmasterError as e:
                    if self._stopping:
                        return
                    if not _is_transient(e):
                        # A bad queue name or a refused credential will not heal: stop as if
                        # stop() had been called (running handlers get their grace), and let
                        # run() raise it. Not stop(): a second stop() would force.
                        log.error("lease refused: %s; shutting the worker down", e)
                        self._fatal = e
                        self._stop_requested = True
                        return
                    with self._lock:
                        self._stats["reconnects"] += 1
                    delay = backoff.next_delay(e.retry_after)
                    if not down_logged:
                        log.warning("lease failed (%s); retrying with backoff", e)
                        down_logged = True
                    else:
                        log.debug("lease failed (%s); retrying in %.2fs", e, delay)
                    self._sleep_unless_stopping(delay)
                    continue
                round_trip = time.monotonic() - started
                if down_logged:
                    log.info("leasing again")
                    down_logged = False
                backoff.reset()
                jobs = (answer.get("jobs") or []) if isinstance(answer, dict) else []
                if not jobs and round_trip < MIN_EMPTY_LEASE_INTERVAL:
                    # An empty answer that came back at once (poll_wait_ms 0, or a server that
                    # ends long-polls early): pause, so that an idle worker cannot turn into a
                    # request loop.
                    self._sleep_unless_stopping(MIN_EMPTY_LEASE_INTERVAL - round_trip)
                    continue
                if self._auto is not None and len(jobs) == want:
                    # Answered with all it asked for: it did not long-poll, so this is the
                    # round trip itself.
                    with self._lock:
                        self._auto.record_round_trip(round_trip)
                self._take(jobs)
        except BaseException as e:  # noqa: BLE001 - never die silently in a thread
            log.exception("lease loop crashed")
            self._fatal = e
            self._stop_requested = True

    def _sleep_unless_stopping(self, seconds: float) -> None:
        with self._lock:
            self._lease_cv.wait_for(lambda: self._stopping, timeout=seconds)

    def _take(self, leased: List[Dict[str, Any]]) -> None:
        """Hand freshly leased jobs to the handler pool (or back, if the shutdown began)."""
        now_ms = time.time() * 1000
        jobs = [Job(item) for item in leased]
        accepted: List[Job] = []
        with self._lock:
            self._stats["leased"] += len(jobs)
            for job in jobs:
                job._progress_hook = lambda job=job: self._progress_reported(job)
                self._schedule_heartbeat_locked(job, now_ms)
                self._leases[job.token] = job
                if job.deadline is not None:
                    soonest = (not self._deadline_heap or
                               job.deadline < self._deadline_heap[0][0])
                    heapq.heappush(self._deadline_heap,
                                   (job.deadline, next(self._hb_seq), job.token))
                    if soonest:
                        self._hb_cv.notify()
                if self._stopping:
                    # The reply crossed our hang-up: the job was never started, hand it back.
                    job._reported = True
                    self._queue_handback_locked(job)
                else:
                    self._queued[job.token] = job
                    accepted.append(job)
            self._watch_cv.notify_all()
        for job in accepted:
            try:
                self._executor.submit(self._run_job, job)
            except RuntimeError:  # the executor was shut down: only after a stuck lease loop
                with self._lock:
                    if self._queued.pop(job.token, None) is not None:
                        job._reported = True
                        self._queue_handback_locked(job)

    # --- running handlers --------------------------------------------------------------------

    def _run_job(self, job: Job) -> None:
        with self._lock:
            # Gone from the queue: handed back by the shutdown, cancelled, or its lease lost.
            if self._queued.pop(job.token, None) is None:
                return
            self._running_jobs[job.token] = job
            self._handlers_running += 1
            self._lease_cv.notify_all()
        started = time.monotonic()
        try:
            is_ack, item = self._execute(job)
        except BaseException as e:  # noqa: BLE001 - _execute catches the handler's; a bug here
            log.exception("job %s: could not build its outcome", job.id)
            is_ack, item = False, {"id": job.id, "token": job.token, "error": self._error(
                e, "worker_error", retryable=True, with_traceback=True)}
        elapsed = time.monotonic() - started
        # One critical section from "no longer running" to "outcome pending": the shutdown
        # waits for _running_jobs to empty and then closes the ack thread, so an outcome queued
        # after a separate unlock could be left behind.
        with self._lock:
            self._handlers_running -= 1
            if self._auto is not None and job.kind in self._handlers:
                # Only handlers that ran say how long jobs take (an unknown kind runs none).
                self._auto.record_handler(elapsed)
            self._running_jobs.pop(job.token, None)
            self._lease_cv.notify_all()
            self._idle_cv.notify_all()
            if job._reported:  # the shutdown grace ran out first: the job was handed back
                self._abandoned = max(0, self._abandoned - 1)
                return
            job._reported = True
            if job.lease_lost or job.timed_out:  # logged and counted when it was found out
                return
            self._queue_report_locked(_Report(is_ack, item, job))

    def _execute(self, job: Job) -> Tuple[bool, Dict[str, Any]]:
        """Run the handler; returns (is_ack, the acks:batch item). docs/workers.md, "What the
        handler decides, and what the server records"."""
        base: Dict[str, Any] = {"id": job.id, "token": job.token}
        handler = self._handlers.get(job.kind)
        if handler is None:
            # Retryable: a worker that knows the kind may be rolling out.
            error = {
                "type": "unknown_kind", "retryable": True,
                "message": _truncate_utf8(
                    f"no handler for kind {job.kind!r} in worker {self.worker_id} "
                    f"(kinds: {', '.join(self.kinds)})", MAX_ERROR_MESSAGE_BYTES)}
            self._log_failed_attempt(job, error, None)
            return False, dict(base, error=error)
        try:
            with job._interrupt_lock:
                job._handler_thread = threading.get_ident()
            try:
                with self._tracing.span(job):
                    result = handler(job)
            finally:
                # The timeout's exception is raised only while the handler runs: one scheduled
                # too late to land in it is withdrawn, under the lock the timeout takes.
                with job._interrupt_lock:
                    job._handler_thread = None
                    if job.timed_out:
                        _raise_in_thread(threading.get_ident(), None)
        except JobTimeout as e:
            if not str(e):  # raised into the thread: the class, without a message
                e = JobTimeout(f"job {job.id}: the attempt reached its timeout of "
                               f"{job.timeout_ms} ms")
            error = self._error(e, "timeout", retryable=True)
            self._log_failed_attempt(job, error, None)
            return False, dict(base, error=error)
        except Retry as e:
            item = dict(base, error=self._error(e, e.type or "retry", retryable=True))
            if e.after is not None:
                item["retry_in_ms"] = min(int(e.after * 1000), MAX_RETRY_IN_MS)
            self._log_failed_attempt(job, item["error"], e)
            return False, item
        except Permanent as e:
            error = self._error(e, e.type or "permanent", retryable=False)
            self._log_failed_attempt(job, error, e)
            return False, dict(base, error=error)
        except Cancelled as e:
            if not str(e):
                e = Cancelled(f"job {job.id}: stopped by its handler")
            error = self._error(e, "cancelled", retryable=False)
            self._log_failed_attempt(job, error, e)
            return False, dict(base, error=error)
        except BaseException as e:  # noqa: BLE001 - a handler's SystemExit must not kill us
            error = self._error(e, type(e).__name__, retryable=True, with_traceback=True)
            self._log_failed_attempt(job, error, e)
            return False, dict(base, error=error)
        if result is None:
            return True, base
        try:
            # Checked here so that one bad result fails its own job, not the whole batch.
            encode_json(result)
        except (TypeError, ValueError, RecursionError) as e:
            error = {
                "type": "invalid_result", "retryable": False,
                "message": _truncate_utf8(
                    f"the handler of kind {job.kind!r} returned a result that is not "
                    f"JSON-serialisable: {type(e).__name__}: {e}", MAX_ERROR_MESSAGE_BYTES)}
            self._log_failed_attempt(job, error, e)
            return False, dict(base, error=error)
        return True, dict(base, result=result)

    def _log_failed_attempt(self, job: Job, error: Dict[str, Any],
                            exc: Optional[BaseException]) -> None:
        """One log record per failed attempt: WARNING with the exception and its traceback
        (``exc_info``), except a handler stopping on a requested cancel, which did what was
        asked (INFO). The record carries the job as ``extra`` fields (``job_id``, ``job_queue``,
        ``job_kind``, ``job_attempt``, ``error_type``) for structured log handlers."""
        cancel_obeyed = error["type"] == "cancelled" and job.cancel_reason == "cancel_requested"
        if job.cancel_reason == "lease_lost":
            then = "not reported: the lease was lost"
        elif job.cancel_reason == "timeout":
            then = "not reported: the attempt reached its timeout and the broker failed it"
        elif job.cancel_reason == "shutdown":
            then = "not reported: the job was handed back at shutdown"
        elif not error["retryable"]:
            then = "the job ends cancelled" if cancel_obeyed else "not retried: the job is dead"
        elif job.max_attempts and job.attempt >= job.max_attempts:
            then = "no attempts left: the job is dead"
        else:
            then = "it will be retried"
        # The exception's own text: the error message sent to the server may carry a traceback
        # tail, which exc_info already prints in full.
        what = f"{type(exc).__name__}: {exc}" if exc is not None else error["message"]
        log.log(logging.INFO if cancel_obeyed else logging.WARNING,
                "job %s (queue %s, kind %s) attempt %d of %s failed (%s): %s; %s", job.id,
                job.queue, job.kind, job.attempt, job.max_attempts or "?", error["type"], what,
                then, exc_info=exc if exc is not None and not cancel_obeyed else None,
                extra={"job_id": job.id, "job_queue": job.queue, "job_kind": job.kind,
                       "job_attempt": job.attempt, "error_type": error["type"]})

    @staticmethod
    def _error(exc: BaseException, type_: str, retryable: bool,
               with_traceback: bool = False) -> Dict[str, Any]:
        message = str(exc)
        if exc.__cause__ is not None:
            message += f" (caused by {type(exc.__cause__).__name__}: {exc.__cause__})"
        if with_traceback:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            tail = "".join(lines).splitlines()[-TRACEBACK_LINES:]
            message = (message + "\n" if message else "") + "\n".join(tail)
        return {"type": _truncate_utf8(type_, MAX_ERROR_TYPE_BYTES),
                "message": _truncate_utf8(message, MAX_ERROR_MESSAGE_BYTES),
                "retryable": retryable}

    # --- heartbeats --------------------------------------------------------------------------

    def _schedule_heartbeat_locked(self, job: Job, now_ms: float) -> None:
        """Called when the job is leased."""
        if self.lease_ms is not None:
            lease_s = self.lease_ms / 1000
        else:
            # The job's own lease length, estimated from the server's expiry; with skewed
            # clocks this is off by the skew, hence the floor (set lease_ms to avoid it).
            lease_s = max(0.1, (job.lease_expires_at - now_ms) / 1000)
        job._hb_interval = heartbeat_interval(lease_s, self.heartbeat_fraction)
        self._push_heartbeat_locked(job, self._next_beat_in(job, job._hb_interval))

    @staticmethod
    def _next_beat_in(job: Job, interval: float) -> float:
        """Seconds to the job's next heartbeat. A lease the server already capped at the
        attempt's deadline cannot be extended: it is not beaten again before the deadline
        (a progress report still brings a beat forward; cancels come by the cancel watch)."""
        if (job.deadline is not None and job.deadline_at is not None
                and job.lease_expires_at >= job.deadline_at):
            return max(interval, job.deadline - time.monotonic())
        return interval

    def _push_heartbeat_locked(self, job: Job, delay: float) -> None:
        job._hb_due = time.monotonic() + delay
        soonest = not self._hb_heap or job._hb_due < self._hb_heap[0][0]
        heapq.heappush(self._hb_heap, (job._hb_due, next(self._hb_seq), job.token))
        if soonest:
            self._hb_cv.notify()

    def _heartbeat_loop(self) -> None:
        try:
            while True:
                due: List[Job] = []
                with self._lock:
                    while not self._hb_closing:
                        now = time.monotonic()
                        timed_out: List[Job] = []
                        while self._deadline_heap and self._deadline_heap[0][0] <= now:
                            _, _, token = heapq.heappop(self._deadline_heap)
                            job = self._leases.get(token)
                            if job is not None and not job._reported:
                                timed_out.append(job)
                        for job in timed_out:
                            self._time_out_locked(job)
                        while self._hb_heap and self._hb_heap[0][0] <= now:
                            at, _, token = heapq.heappop(self._hb_heap)
                            job = self._leases.get(token)
                            if job is not None and job._hb_due == at:
                                due.append(job)
                        if due:
                            break
                        wait = self._hb_heap[0][0] - now if self._hb_heap else 1.0
                        if self._deadline_heap:
                            wait = min(wait, self._deadline_heap[0][0] - now)
                        self._hb_cv.wait(max(0.0, min(wait, 1.0)))
                    if self._hb_closing:
                        return
                for job in due:
                    if self._hb_closing:
                        return
                    self._heartbeat(job)
        except BaseException as e:  # noqa: BLE001 - never die silently in a thread
            log.exception("heartbeat loop crashed")
            self._fatal = self._fatal or e
            self._stop_requested = True

    def _progress_reported(self, job: Job) -> None:
        """A handler called job.progress(): heartbeat soon, at most every PROGRESS_INTERVAL."""
        with self._lock:
            if job.token not in self._leases:
                return
            due = max(job._progress_sent_at + PROGRESS_INTERVAL, time.monotonic())
            if due < job._hb_due:
                self._push_heartbeat_locked(job, due - time.monotonic())

    def _heartbeat(self, job: Job) -> None:
        body: Dict[str, Any] = {"token": job.token}
        if self.lease_ms is not None:
            body["extend_ms"] = self.lease_ms
        progress = job._take_progress()
        if progress is not None:
            body["progress"] = progress
            job._progress_sent_at = time.monotonic()
        next_in = job._hb_interval
        try:
            # No answer within an interval counts as none: retried after half an interval,
            # which still leaves time before the lease (three intervals by default) runs out.
            answer = self._hb_conn.request("POST", f"/v1/jobs/{job.id}:heartbeat", body,
                                           timeout=max(1.0, job._hb_interval))
        except (Conflict, NotFound) as e:
            with self._lock:
                outcome_pending = job._reported and not job.lease_lost
                if outcome_pending:
                    # The outcome is queued or on its way, so this heartbeat probably crossed
                    # it and the server has applied it already ("job 7 is succeeded"). Stop
                    # heartbeating; the outcome's own reply settles the job, and counts a lost
                    # lease if it gets a 409 too.
                    self._leases.pop(job.token, None)
            if not outcome_pending:
                self._lose_lease(job, "heartbeat", e)
            return
        except YardmasterError as e:
            if progress is not None and job._progress is None:
                job._progress = progress  # not delivered: sent again with the next beat
            if _is_transient(e):
                next_in = heartbeat_retry_delay(job._hb_interval)
                if e.retry_after:
                    next_in = max(next_in, e.retry_after)
                log.warning("job %s: heartbeat failed (%s); retrying in %.2fs", job.id, e,
                            next_in)
            else:
                log.error("job %s: heartbeat refused: %s", job.id, e)
        else:
            if isinstance(answer, dict):
                job.lease_expires_at = int(answer.get("expires_at", job.lease_expires_at))
                if answer.get("cancel_requested"):
                    self._cancel_learnt(job)
            next_in = self._next_beat_in(job, next_in)
            with self._lock:
                self._stats["heartbeats"] += 1
        with self._lock:
            if job.token in self._leases:
                self._push_heartbeat_locked(job, next_in)

    # --- cancel watch ------------------------------------------------------------------------

    def _cancel_watch_loop(self) -> None:
        """Keep one POST /v1/cancels:watch open while jobs are held (docs/workers.md,
        "Cancellation"): the server answers as soon as one of this worker's jobs gets a cancel
        request, with the ids of all of them; ``known`` is the last answer, so only news wakes
        the next watch. Ids of jobs this worker does not hold are ignored."""
        backoff = Backoff()
        known: List[str] = []
        try:
            while True:
                with self._lock:
                    while not self._watch_closing and not self._leases:
                        self._watch_cv.wait()
                    if self._watch_closing:
                        return
                started = time.monotonic()
                try:
                    answer = self._watch_conn.request(
                        "POST", "/v1/cancels:watch",
                        {"worker_id": self.worker_id, "known": known,
                         "wait_ms": CANCEL_WATCH_WAIT_MS},
                        timeout=CANCEL_WATCH_WAIT_MS / 1000 + 15.0)
                except YardmasterError as e:
                    if self._watch_closing:
                        return
                    if e.status in (404, 405):
                        log.info("the server has no POST /v1/cancels:watch (%s); cancels "
                                 "arrive with heartbeats", e)
                        return
                    delay = backoff.next_delay(e.retry_after)
                    log.debug("cancel watch failed (%s); retrying in %.2fs", e, delay)
                    with self._lock:
                        self._watch_cv.wait_for(lambda: self._watch_closing, timeout=delay)
                    continue
                backoff.reset()
                ids = answer.get("cancel_requested") if isinstance(answer, dict) else None
                ids = [i for i in (ids or []) if isinstance(i, str)]
                news = any(i not in known for i in ids)
                with self._lock:
                    by_id = {job.id: job for job in self._leases.values()}
                for i in ids:
                    job = by_id.get(i)
                    if job is not None:
                        self._cancel_learnt(job)
                known = ids[:MAX_KNOWN_CANCELS]
                if not news and time.monotonic() - started < CANCEL_WATCH_MIN_ROUND:
                    with self._lock:
                        self._watch_cv.wait_for(lambda: self._watch_closing,
                                                timeout=CANCEL_WATCH_PAUSE)
        except BaseException as e:  # noqa: BLE001 - never die silently in a thread
            log.exception("cancel watch loop crashed")
            self._fatal = self._fatal or e
            self._stop_requested = True

    def _cancel_learnt(self, job: Job) -> None:
        """The cancel watch or a heartbeat said ``cancel_requested``: a queued job is not
        started but reported
        cancelled at once; a running handler sees ``job.cancelled`` and decides the outcome."""
        with self._lock:
            if job._cancel_seen:
                return
            job._cancel_seen = True
            self._stats["cancelled"] += 1
            queued = self._queued.pop(job.token, None) is not None
            if queued:
                job._reported = True
                self._queue_report_locked(_Report(False, {
                    "id": job.id, "token": job.token,
                    "error": {"type": "cancelled", "retryable": False,
                              "message": f"job {job.id}: cancel requested before worker "
                                         f"{self.worker_id} started it"}}, job))
                self._lease_cv.notify_all()
        job._set_cancelled("cancel_requested")
        log.info("job %s: cancellation requested%s", job.id,
                 "; not started, reported cancelled" if queued else "")

    def _time_out_locked(self, job: Job) -> None:
        """The job's execution deadline came before its outcome: the broker fails the attempt
        with type ``"timeout"``, so stop heartbeating it and never report it; a queued job is
        not started; a running handler sees ``job.cancelled`` (``"timeout"``) and gets
        :class:`JobTimeout` raised in its thread (CPython)."""
        job._set_cancelled("timeout")
        self._leases.pop(job.token, None)
        self._stats["timeouts"] += 1
        if self._queued.pop(job.token, None) is not None:
            job._reported = True
            self._lease_cv.notify_all()
            started = False
        else:
            started = True
            # A stuck handler must not hold the shutdown: the job is no longer this worker's.
            self._running_jobs.pop(job.token, None)
            self._idle_cv.notify_all()
            with job._interrupt_lock:
                if job._handler_thread is not None:
                    _raise_in_thread(job._handler_thread, JobTimeout)
        log.warning("job %s (queue %s, kind %s) attempt %d reached its timeout of %d ms%s; "
                    "the broker fails it (timeout) and this worker does not report it",
                    job.id, job.queue, job.kind, job.attempt, job.timeout_ms or 0,
                    "" if started else " before it started",
                    extra={"job_id": job.id, "job_queue": job.queue, "job_kind": job.kind,
                           "job_attempt": job.attempt, "error_type": "timeout"})

    def _lose_lease(self, job: Job, what: str, err: YardmasterError) -> None:
        """The server refused the job's lease (409/404): stop heartbeating it, never report it,
        tell its handler (``lease_lost``), log one line. A queued job is not started."""
        with self._lock:
            if job.lease_lost or job.timed_out:
                return
            job._set_cancelled("lease_lost")
            self._leases.pop(job.token, None)
            self._stats["leases_lost"] += 1
            if self._queued.pop(job.token, None) is not None:
                job._reported = True
                self._lease_cv.notify_all()
        log.warning("job %s: lease lost (%s refused: %s); its outcome will not be reported",
                    job.id, what, err)

    # --- acks and fails ----------------------------------------------------------------------

    def _queue_report_locked(self, report: _Report) -> None:
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(report)
        if len(self._pending) == 1 or len(self._pending) >= self.ack_batch:
            self._ack_cv.notify()

    def _ack_loop(self) -> None:
        backoff = Backoff()
        give_up_at: Optional[float] = None
        try:
            while True:
                with self._lock:
                    while True:
                        if self._acks_closing and give_up_at is None:
                            give_up_at = time.monotonic() + self.report_grace
                        # Reports of lost leases are never sent.
                        if any(r.job.lease_lost for r in self._pending):
                            self._pending = [r for r in self._pending if not r.job.lease_lost]
                        if self._pending and (
                                self._acks_closing or len(self._pending) >= self.ack_batch
                                or time.monotonic() - self._pending_since >= self.ack_interval):
                            break
                        if self._acks_closing and not self._pending:
                            return
                        if self._pending:
                            self._ack_cv.wait(max(0.0, self._pending_since + self.ack_interval
                                                  - time.monotonic()))
                        else:
                            self._ack_cv.wait()
                    chunk = self._pending[:MAX_ACK_BATCH]
                    del self._pending[:MAX_ACK_BATCH]
                    if self._pending:
                        self._pending_since = time.monotonic()
                # At shutdown a request may not outlast report_grace by much.
                timeout = 30.0 if give_up_at is None else max(
                    1.0, min(30.0, give_up_at - time.monotonic()))
                retry, retry_after = self._flush(chunk, timeout)
                if not retry:
                    backoff.reset()
                    continue
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    log.error("could not report %d outcome(s) before exiting; their leases "
                              "will expire and the jobs will run again", len(retry))
                    return
                with self._lock:
                    self._pending[:0] = retry
                    self._pending_since = time.monotonic()
                delay = backoff.next_delay(retry_after)
                if give_up_at is not None:
                    delay = min(delay, max(0.0, give_up_at - time.monotonic()))
                time.sleep(delay)
        except BaseException as e:  # noqa: BLE001 - never die silently in a thread
            log.exception("ack loop crashed")
            self._fatal = self._fatal or e
            self._stop_requested = True

    def _flush(self, chunk: List[_Report],
               timeout: float = 30.0) -> Tuple[List[_Report], Optional[float]]:
        """Send one acks:batch. Returns the reports to send again later (no answer, or a 5xx
        for them) and a Retry-After to honour, if any."""
        acks = [r for r in chunk if r.ack]
        fails = [r for r in chunk if not r.ack]
        body: Dict[str, Any] = {}
        if acks:
            body["acks"] = [r.item for r in acks]
        if fails:
            body["fails"] = [r.item for r in fails]
        try:
            answer = self._ack_conn.request("POST", "/v1/acks:batch", body, timeout=timeout)
        except YardmasterError as e:
            if _is_transient(e):
                log.warning("reporting %d outcome(s) failed (%s); will retry", len(chunk), e)
                return chunk, e.retry_after
            if len(chunk) > 1:
                # Refused as a whole (e.g. too large a body): report them one by one, so that
                # a single bad item cannot block the others.
                log.warning("acks:batch of %d refused (%s); reporting them one by one",
                            len(chunk), e)
                retry: List[_Report] = []
                retry_after: Optional[float] = None
                for r in chunk:
                    again, after = self._flush([r], timeout)
                    retry += again
                    retry_after = after or retry_after
                return retry, retry_after
            self._settle(chunk[0], e)
            return [], None
        retry = []
        for reports, results in ((acks, answer.get("acks") or []),
                                 (fails, answer.get("fails") or [])):
            for report, res in zip(reports, results):
                err = error_from_item(res) if isinstance(res, dict) and "error" in res else None
                if err is not None and _is_transient(err):
                    retry.append(report)
                else:
                    self._settle(report, err)
        return retry, None

    def _settle(self, report: _Report, err: Optional[YardmasterError]) -> None:
        """Book a report the server answered for good: confirmed (``err`` None), lease lost,
        or refused (an ack's result refused becomes an ``invalid_result`` fail)."""
        job = report.job
        if err is None:
            with self._lock:
                key = "handed_back" if report.handback else "succeeded" if report.ack else "failed"
                self._stats[key] += 1
                self._leases.pop(job.token, None)
            return
        if isinstance(err, (Conflict, NotFound)):
            self._lose_lease(job, "ack" if report.ack else "fail", err)
            return
        if report.ack:
            log.error("job %s: result refused (%s); failing it as invalid_result", job.id, err)
            with self._lock:
                self._queue_report_locked(_Report(False, {
                    "id": job.id, "token": job.token,
                    "error": {"type": "invalid_result", "retryable": False,
                              "message": _truncate_utf8(f"handler result refused: {err}",
                                                        MAX_ERROR_MESSAGE_BYTES)}}, job))
            return
        log.error("job %s: fail refused (%s); its lease will expire", job.id, err)
        with self._lock:
            self._leases.pop(job.token, None)
