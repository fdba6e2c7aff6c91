"""What a handler receives (:class:`Job`) and the exceptions it raises to steer the outcome.

A handler is ``def handler(job: Job) -> Any``. The outcome is what the handler reports
(docs/workers.md): returning acknowledges the job (the return value, if not ``None``, is stored
as the job's ``result`` and must be JSON-serialisable), and raising decides how the attempt
failed:

==========================  =====================================================================
the handler                 outcome (error ``type``)
==========================  =====================================================================
returns a value             ack: the job ends ``succeeded`` -- also after a cancel was requested
returns a value that is     non-retryable failure (``invalid_result``): the job is dead
not JSON-serialisable
``raise Retry(after=s)``    retryable failure (``retry``); the next attempt runs ``s`` seconds
                            later, or after the queue's backoff when ``after`` is ``None``
``raise Permanent(msg)``    non-retryable failure (``permanent``): the job is dead at once
``raise Cancelled`` or      non-retryable failure (``cancelled``): the job ends ``cancelled``
``job.raise_if_cancelled``  when a cancel was requested, else it is dead
anything else               retryable failure with ``type`` = the exception's class name and
                            ``message`` = ``str(exc)`` plus the last lines of the traceback
==========================  =====================================================================

``Retry`` and ``Permanent`` take ``type="smtp"`` to record another error type. A handler that
stops early because :attr:`Job.cancelled` turned true must say so by raising (best:
``job.raise_if_cancelled()``); a plain ``return`` reports success.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional

MAX_PROGRESS_BYTES = 4096  # the server's limit on a progress report (JSON, no whitespace)

__all__ = ["Job", "Retry", "Permanent", "Cancelled", "JobTimeout"]


def _check_type(type: Optional[str]) -> Optional[str]:
    """Validate an explicit error type: a non-empty string (clipped to 128 bytes when sent)."""
    if type is not None and (not isinstance(type, str) or not type):
        raise ValueError(f"error type must be a non-empty string (got {type!r})")
    return type


class Retry(Exception):
    """Fail this attempt and retry the job (``retryable: true``, error type ``"retry"``).

    Args:
        message: recorded as the attempt's error message.
        after: seconds until the next attempt (``retry_in_ms`` on the wire); ``None`` lets the
            server apply the job's or queue's exponential backoff. The job still goes dead when
            its ``max_attempts`` are used up.
        type: the error type to record instead of ``"retry"`` (1..128 bytes; longer is clipped),
            e.g. ``"smtp_busy"``.
    """

    def __init__(self, message: str = "retry requested", after: Optional[float] = None, *,
                 type: Optional[str] = None) -> None:
        super().__init__(message)
        if after is not None and after < 0:
            raise ValueError("Retry(after=...) must be >= 0 seconds")
        self.after = after
        self.type = _check_type(type)


class Permanent(Exception):
    """Fail this job for good (``retryable: false``, error type ``"permanent"``): it is dead at
    once, with this message as its last error, and can be replayed by an operator.

    Args:
        message: recorded as the attempt's error message.
        type: the error type to record instead of ``"permanent"`` (1..128 bytes; longer is
            clipped), e.g. ``"bad_address"``.
    """

    def __init__(self, message: str = "permanent failure", *, type: Optional[str] = None) -> None:
        super().__init__(message)
        self.type = _check_type(type)


class Cancelled(Exception):
    """Raise it (or call :meth:`Job.raise_if_cancelled`) to stop a job whose cancel was
    requested: the attempt is failed non-retryable with type ``"cancelled"``, and the server
    ends the job ``cancelled`` (``dead`` if no cancel was requested). After a lost lease or the
    end of the shutdown grace the worker ignores it, as any late outcome."""


class JobTimeout(Cancelled):
    """The attempt reached the job's execution timeout (``timeout_ms``): the broker has failed
    it with error type ``"timeout"`` and retries it by its backoff. The worker raises it inside
    a running handler at the deadline (CPython, while the handler runs Python code; a handler
    blocked in a C call sees it when the call returns), and :meth:`Job.raise_if_cancelled`
    raises it once ``cancel_reason == "timeout"``. Whatever the handler does next is not
    reported: the attempt is over."""


class Job:
    """One leased job, handed to a handler. Thread-safe.

    Attributes:
        id: the job id (a decimal string).
        queue, kind, namespace: where the job came from and what it is.
        payload: the decoded JSON payload given at enqueue.
        attempt: 1 for the first attempt, 2 for the first retry, ...
        max_attempts: after this many failed attempts the job is dead.
        priority, created_at, tags: as enqueued (``created_at`` in epoch ms).
        token: the lease token (heartbeat, ack and fail need it; the worker handles them).
        lease_expires_at: epoch ms when the lease ends unless a heartbeat extends it.
        timeout_ms: the job's execution timeout (its own or its queue's), or ``None``.
        deadline_at: epoch ms (server clock) when the broker fails this attempt with type
            ``"timeout"``, or ``None``; heartbeats never extend the lease past it.
        deadline: the same moment on this process's :func:`time.monotonic` clock, measured
            from when the lease arrived (so never before the broker's), or ``None``.
        traceparent, tracestate: the W3C trace context the job was enqueued with (the same on
            every attempt), or ``None``. With the ``opentelemetry`` API package installed the
            worker already runs the handler in a span that continues it (docs/python-sdk.md,
            "Trace context").
        request_id: the id of the request that enqueued the job, or ``None``.
    """

    def __init__(self, leased: Dict[str, Any]) -> None:
        lease = leased.get("lease") or {}
        self.id: str = str(leased["id"])
        self.queue: str = leased.get("queue", "")
        self.kind: str = leased.get("kind", "")
        self.namespace: str = leased.get("namespace", "default")
        self.payload: Any = leased.get("payload")
        self.attempt: int = int(leased.get("attempt", 1))
        self.max_attempts: int = int(leased.get("max_attempts", 0))
        self.priority: int = int(leased.get("priority", 0))
        self.created_at: Optional[int] = leased.get("created_at")
        self.tags: List[str] = list(leased.get("tags") or [])
        self.traceparent: Optional[str] = leased.get("traceparent") or None
        self.tracestate: Optional[str] = leased.get("tracestate") or None
        self.request_id: Optional[str] = leased.get("request_id") or None
        self.token: str = str(lease.get("token", ""))
        self.lease_expires_at: int = int(lease.get("expires_at", 0))
        timeout_ms = leased.get("timeout_ms")
        self.timeout_ms: Optional[int] = int(timeout_ms) if timeout_ms else None
        deadline_at = lease.get("deadline_at")
        self.deadline_at: Optional[int] = int(deadline_at) if deadline_at else None
        self.deadline: Optional[float] = (time.monotonic() + self.timeout_ms / 1000
                                          if self.timeout_ms else None)
        self._cancel = threading.Event()
        self._cancel_reason: Optional[str] = None
        # Worker bookkeeping, guarded by the worker's lock.
        self._reported = False      # an outcome was decided (or the job handed back / dropped)
        self._cancel_seen = False   # cancel_requested learnt from a heartbeat (counted once)
        self._hb_interval = 1.0
        self._hb_due = 0.0
        self._progress: Optional[Dict[str, Any]] = None  # reported at the next heartbeat
        self._progress_hook: Optional[Callable[[], None]] = None  # asks for that heartbeat
        self._progress_sent_at = 0.0  # time.monotonic() of the last report sent
        # The handler's thread while it runs (for the timeout's exception), under this lock.
        self._interrupt_lock = threading.Lock()
        self._handler_thread: Optional[int] = None

    def __repr__(self) -> str:
        return (f"Job(id={self.id!r}, queue={self.queue!r}, kind={self.kind!r}, "
                f"attempt={self.attempt})")

    @property
    def cancelled(self) -> bool:
        """True once the job should stop: cancellation was requested (learnt from a heartbeat),
        the lease was lost (another worker may now run the job), the attempt reached its
        execution timeout, or the worker's shutdown grace ran out. A handler doing long work should check it between steps and stop by calling
        :meth:`raise_if_cancelled`: returning normally reports success, and the job ends
        ``succeeded`` even though a cancel was requested."""
        return self._cancel.is_set()

    @property
    def cancel_reason(self) -> Optional[str]:
        """Why :attr:`cancelled` is true: ``"cancel_requested"``, ``"lease_lost"``, ``"timeout"``
        or ``"shutdown"``; ``None`` while it is not. After ``"lease_lost"``, ``"timeout"`` (the
        broker failed the attempt with type ``"timeout"``) or ``"shutdown"`` the worker no
        longer reports this attempt, whatever the handler does."""
        return self._cancel_reason

    @property
    def lease_lost(self) -> bool:
        """True when the worker no longer holds the lease: its outcome will not be reported."""
        return self._cancel_reason == "lease_lost"

    @property
    def timed_out(self) -> bool:
        """True once the attempt reached its execution timeout: its outcome is not reported
        (the broker failed it with type ``"timeout"``)."""
        return self._cancel_reason == "timeout"

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :attr:`cancelled` is true; otherwise do nothing. The way
        to stop early: the job then ends ``cancelled``."""
        if self._cancel.is_set():
            if self._cancel_reason == "timeout":
                raise JobTimeout(f"job {self.id}: the attempt reached its timeout of "
                                 f"{self.timeout_ms} ms")
            raise Cancelled(f"job {self.id}: {self._cancel_reason}")

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancellation. Returns
        :attr:`cancelled`. Use it instead of ``time.sleep`` in handlers that wait, and follow a
        ``True`` with :meth:`raise_if_cancelled` (or ``raise Cancelled``) to stop."""
        return self._cancel.wait(timeout)

    def progress(self, percent: Optional[float] = None, **info: Any) -> None:
        """Report how far this attempt got; shown in the job object (``progress``) until the
        attempt ends. ``percent`` is 0..100; ``info`` are any other JSON-serializable fields,
        e.g. ``job.progress(40, step="resize")``. Sent with a heartbeat soon after the call (at
        most a few per second: a later report replaces one not yet sent). Returns at once.

        Raises:
            ValueError: ``percent`` outside 0..100, or the report over 4096 bytes as JSON.
        """
        report: Dict[str, Any] = dict(info)
        if percent is not None:
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or \
                    not 0 <= percent <= 100:
                raise ValueError(f"percent must be a number 0..100 (got {percent!r})")
            report["percent"] = percent
        size = len(json.dumps(report, separators=(",", ":")).encode())
        if size > MAX_PROGRESS_BYTES:
            raise ValueError(f"a progress report is at most {MAX_PROGRESS_BYTES} bytes as JSON "
                             f"(this one is {size})")
        self._progress = report
        hook = self._progress_hook
        # After the timeout the attempt is over (nothing more is sent), and the worker's code
        # behind the hook is kept out of the way of the JobTimeout raised into this thread.
        if hook is not None and not self.timed_out:
            hook()

    def _take_progress(self) -> Optional[Dict[str, Any]]:
        report, self._progress = self._progress, None
        return report

    def _set_cancelled(self, reason: str) -> None:
        if self._cancel_reason is None or reason in ("lease_lost", "timeout"):
            self._cancel_reason = reason
        self._cancel.set()
