"""Typed errors of the Yardmaster API, one class per stable error code.

The server answers every error as ``{"error": {"code": "...", "message": "..."}}`` with an HTTP
status that belongs to the code (docs/api.md, "Errors"). :func:`error_from_response` turns such an
answer into the matching :class:`YardmasterError` subclass, so callers catch what they can act on
(``except StaleLease``) instead of comparing strings. A server that cannot be reached at all is
reported as :class:`Unreachable`, a subclass of :class:`Unavailable`, because a caller handles
both the same way: wait and try again.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "YardmasterError",
    "BadRequest",
    "Unauthenticated",
    "PermissionDenied",
    "NotFound",
    "Conflict",
    "StaleLease",
    "InvalidState",
    "SingletonConflict",
    "AlreadyExists",
    "PayloadTooLarge",
    "Validation",
    "ResourceExhausted",
    "Internal",
    "Unavailable",
    "Unreachable",
    "WaitTimeout",
    "JobFailed",
    "error_from_response",
]


class YardmasterError(Exception):
    """An error answered by the server (or raised for an unreachable one).

    Attributes:
        code: the stable wire string, e.g. ``"stale_lease"``.
        message: the server's human-readable explanation.
        status: the HTTP status, or ``None`` when no HTTP answer was received.
        retry_after: seconds from a ``Retry-After`` header (429 answers), else ``None``.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"status={self.status!r})")


class BadRequest(YardmasterError):
    """400/405/415: the request itself is malformed (``invalid_json``, ``invalid_request``,
    ``method_not_allowed``, ``unsupported_media_type``). A bug in the caller, not transient."""


class Unauthenticated(YardmasterError):
    """401 ``unauthenticated``."""


class PermissionDenied(YardmasterError):
    """403 ``permission_denied``."""


class NotFound(YardmasterError):
    """404 ``not_found``: no such job, queue or route (a job may have been removed by
    retention)."""


class QueueNotFound(NotFound):
    """404 ``queue_not_found``: the queue does not exist (no live jobs, no finished jobs kept, no
    configuration, no waiting worker). Configuring, pausing or resuming one creates it only when
    asked (``create=True``)."""


class Conflict(YardmasterError):
    """409: the operation conflicts with the job's current state. See the two subclasses."""


class StaleLease(Conflict):
    """409 ``stale_lease``: the lease token is not the job's current lease. The lease expired or
    the job was handed to another worker; this worker must not report its outcome."""


class InvalidState(Conflict):
    """409 ``invalid_state``: the job's state does not allow the operation (cancelling a
    terminal job, replaying a live one)."""


class SingletonConflict(Conflict):
    """409 ``singleton_conflict``: a singleton limit refused the enqueue (or replay) because a
    live job holds its key; nothing was created. ``job_id`` names that job."""

    job_id: Optional[str] = None


class AlreadyExists(Conflict):
    """409 ``already_exists``: a create names something that exists (a schedule id); nothing
    was changed."""


class PayloadTooLarge(YardmasterError):
    """413 ``payload_too_large``: a payload or body over the server's limits."""


class Validation(YardmasterError):
    """422 ``validation_failed``: a missing field, a wrong type or a value out of range. The
    message names the field."""


class ResourceExhausted(YardmasterError):
    """429 ``resource_exhausted``: backpressure; wait ``retry_after`` seconds."""


class NamespaceLimit(ResourceExhausted):
    """429 ``namespace_limit``: the enqueue would take its namespace past ``max_live_jobs`` or
    its ``enqueue_rate``; nothing was enqueued. ``retry_after`` (seconds, from the Retry-After
    header) says when to try again: exact for a rate, a hint for max_live_jobs."""


class Internal(YardmasterError):
    """500 ``internal`` or ``corruption``: a server bug or a damaged store."""


class Unavailable(YardmasterError):
    """503 ``unavailable`` (starting or draining), ``io_error`` (a write could not be made
    durable) or ``store_unavailable`` (the server is read-only until its store takes writes
    again): transient, try again later."""


class Unreachable(Unavailable):
    """No HTTP answer at all: connection refused or reset, or a timeout. Code
    ``"unreachable"``, status ``None``."""

    def __init__(self, message: str) -> None:
        super().__init__("unreachable", message, None)


class WaitTimeout(YardmasterError):
    """Raised by :meth:`Client.wait` (and ``enqueue(..., wait=...)``) when the job has not ended
    within the timeout. Code ``"wait_timeout"``, status ``None``; ``job`` is the job object as
    last seen (still live)."""

    def __init__(self, job: Dict[str, Any]) -> None:
        super().__init__("wait_timeout",
                         f"job {job.get('id')} is still {job.get('state')} after the wait", None)
        self.job = job


class JobFailed(YardmasterError):
    """Raised by ``enqueue(..., wait=...)`` when the job ended ``dead`` or ``cancelled``.
    Code ``"job_dead"`` or ``"job_cancelled"``, status ``None``; ``job`` is the finished job
    object (its ``errors``, ``last_error`` and ``dead_reason`` say why)."""

    def __init__(self, job: Dict[str, Any]) -> None:
        state = str(job.get("state"))
        message = f"job {job.get('id')} ended {state}"
        if job.get("dead_reason"):
            message += f" ({job['dead_reason']})"
        last = job.get("last_error") or {}
        if last:
            message += f": {last.get('type')}: {last.get('message')}"
        super().__init__(f"job_{state}", message, None)
        self.job = job


_BY_CODE: Dict[str, Type[YardmasterError]] = {
    "invalid_json": BadRequest,
    "invalid_request": BadRequest,
    "method_not_allowed": BadRequest,
    "unsupported_media_type": BadRequest,
    "unauthenticated": Unauthenticated,
    "permission_denied": PermissionDenied,
    "forbidden": PermissionDenied,
    "not_found": NotFound,
    "queue_not_found": QueueNotFound,
    "stale_lease": StaleLease,
    "invalid_state": InvalidState,
    "singleton_conflict": SingletonConflict,
    "already_exists": AlreadyExists,
    "payload_too_large": PayloadTooLarge,
    "validation_failed": Validation,
    "resource_exhausted": ResourceExhausted,
    "namespace_limit": NamespaceLimit,
    "internal": Internal,
    "corruption": Internal,
    "unavailable": Unavailable,
    "io_error": Unavailable,
    "store_unavailable": Unavailable,
}

# For codes this SDK does not know yet (a newer server), fall back on the HTTP status.
_BY_STATUS: Dict[int, Type[YardmasterError]] = {
    400: BadRequest, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
    405: BadRequest, 409: Conflict, 413: PayloadTooLarge, 415: BadRequest, 422: Validation,
    429: ResourceExhausted, 500: Internal, 503: Unavailable,
}


def error_class(code: str, status: Optional[int] = None) -> Type[YardmasterError]:
    """The exception class for a wire error code (falling back on the HTTP status)."""
    cls = _BY_CODE.get(code)
    if cls is None and status is not None:
        cls = _BY_STATUS.get(status)
        if cls is None and status >= 500:
            cls = Internal
    return cls or YardmasterError


def error_from_response(status: int, body: Any,
                        retry_after: Optional[float] = None) -> YardmasterError:
    """Build the typed error for a non-2xx answer.

    ``body`` is the decoded JSON body (normally ``{"error": {"code", "message"}}``); anything
    else (a proxy's HTML page, an empty body) still gives an error typed by ``status``.
    """
    code = ""
    message = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or "")
        message = str(body["error"].get("message") or "")
    elif body is not None:
        message = str(body)[:500]
    if not code:
        code = f"http_{status}"
    err = error_class(code, status)(code, message, status, retry_after)
    _add_details(err, body.get("error") if isinstance(body, dict) else None)
    return err


def _add_details(err: YardmasterError, obj: Any) -> None:
    # A singleton refusal names the job that holds the key.
    if isinstance(err, SingletonConflict) and isinstance(obj, dict) and obj.get("job_id"):
        err.job_id = str(obj["job_id"])


def error_from_item(item: Dict[str, Any]) -> YardmasterError:
    """Build the typed error for one failed item of a batch answer (``{"error": {...}}``),
    which carries no HTTP status of its own."""
    err = item.get("error") if isinstance(item, dict) else None
    code = str(err.get("code") or "internal") if isinstance(err, dict) else "internal"
    message = str(err.get("message") or "") if isinstance(err, dict) else str(item)
    out = error_class(code)(code, message, None)
    _add_details(out, err)
    return out
