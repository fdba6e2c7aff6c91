"""The producer / operator client of the Yardmaster HTTP API (docs/api.md).

:class:`Client` is safe to share between threads: each thread gets its own keep-alive
connection, opened on first use. Every method returns the decoded JSON of the answer (plain
``dict``/``list``) and raises a :class:`~yardmaster.errors.YardmasterError` subclass on an error
answer, e.g. :class:`~yardmaster.errors.NotFound` or :class:`~yardmaster.errors.Validation`.
"""

from __future__ import annotations

import threading
import time
import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union
from urllib.parse import quote, urlencode

from ._http import Connection, resolve_url
from .errors import JobFailed, WaitTimeout, YardmasterError

__all__ = ["Client", "JobId"]

JobId = Union[str, int]
"""A job id: the API uses decimal strings (``"42"``); ints are accepted for convenience."""
TimeArg = Union[int, datetime.datetime, None]
"""A time filter: epoch milliseconds, or an aware ``datetime``."""

MAX_BATCH = 1000  # POST /v1/jobs:batch takes 1..1000 specs
MAX_WAIT_MS = 30000  # GET /v1/jobs/{id}?wait_ms= takes 0..30000
TERMINAL_STATES = ("succeeded", "dead", "cancelled")


def _epoch_ms(t: TimeArg) -> Optional[int]:
    if t is None:
        return None
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            raise ValueError("a time filter needs an aware datetime (with a tzinfo)")
        return int(t.timestamp() * 1000)
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError("a time filter is epoch milliseconds (int) or an aware datetime")
    return t


def _filter_fields(namespace: Optional[str], queue: Optional[str], kind: Optional[str],
                   state: Union[str, Iterable[str], None], tag: Optional[str],
                   created_after: TimeArg, created_before: TimeArg, finished_after: TimeArg,
                   finished_before: TimeArg) -> Dict[str, Any]:
    """The job filter of list_jobs and the bulk operations under its wire names (docs/api.md);
    ``None`` for each field not given. A state set other than a string becomes a list."""
    if state is not None and not isinstance(state, str):
        state = list(state)
    return {"namespace": namespace, "queue": queue, "kind": kind, "state": state, "tag": tag,
            "created_after": _epoch_ms(created_after),
            "created_before": _epoch_ms(created_before),
            "finished_after": _epoch_ms(finished_after),
            "finished_before": _epoch_ms(finished_before)}


def _job_path(job_id: JobId, verb: str = "") -> str:
    path = "/v1/jobs/" + quote(str(job_id), safe="")
    return path + (":" + verb if verb else "")


def _limit_path(name: str) -> str:
    return "/v1/limits/" + quote(name, safe="")


def _create(create: bool) -> str:
    return "?create=true" if create else ""


def _namespace_path(name: str) -> str:
    return "/v1/namespaces/" + quote(name, safe="")


def _schedule_path(schedule_id: str, verb: str = "") -> str:
    return "/v1/schedules/" + quote(schedule_id, safe="") + (":" + verb if verb else "")


def _schedule_spec(cron: Optional[str], time_zone: Optional[str], start_at: TimeArg,
                   end_at: TimeArg, jitter_ms: Optional[int],
                   missed_runs: Optional[Dict[str, Any]], overlap: Optional[str],
                   paused: Optional[bool], job: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The members of a schedule spec that are given (docs/api.md, "Schedules")."""
    body: Dict[str, Any] = {}
    for name, value in (("cron", cron), ("time_zone", time_zone),
                        ("start_at", _epoch_ms(start_at)), ("end_at", _epoch_ms(end_at)),
                        ("jitter_ms", jitter_ms), ("missed_runs", missed_runs),
                        ("overlap", overlap), ("paused", paused), ("job", job)):
        if value is not None:
            body[name] = value
    return body


def _queue_path(name: str, verb: str = "") -> str:
    # Queue names may contain ':'; percent-encoding it keeps a name such as "x:pause" from being
    # read as a verb (docs/api.md, "Paths").
    path = "/v1/queues/" + quote(name, safe="")
    return path + (":" + verb if verb else "")


class Client:
    """A client for producers and operators.

    Args:
        url: server URL; default ``$YM_URL``, else ``http://127.0.0.1:7433``.
        timeout: socket timeout in seconds for each request.
        ca_file: for an ``https://`` URL, a PEM file of the CAs the server's certificate must
            chain to; default ``$YM_CA_FILE``, else the system's trusted CAs.
        client_cert_file, client_key_file: a client certificate and its key for a server that
            requires one (mTLS); default ``$YM_CLIENT_CERT_FILE`` / ``$YM_CLIENT_KEY_FILE``.
        token, token_file: an API token (or a file whose first line is one) sent as
            ``Authorization: Bearer``; default ``$YM_TOKEN``, else ``$YM_TOKEN_FILE``.

    Example::

        client = Client()
        job = client.enqueue("emails", "send_welcome", {"user": 7}, idempotency_key="welcome-7")
        print(client.get(job["id"])["state"])
    """

    def __init__(self, url: Optional[str] = None, timeout: float = 60.0,
                 ca_file: Optional[str] = None, client_cert_file: Optional[str] = None,
                 client_key_file: Optional[str] = None, token: Optional[str] = None,
                 token_file: Optional[str] = None) -> None:
        self.url = resolve_url(url)
        self.timeout = timeout
        self._token = token  # None: token_file, $YM_TOKEN, $YM_TOKEN_FILE (never shown)
        self._token_file = token_file
        self.ca_file = ca_file  # https:// only; None: $YM_CA_FILE, else the system's CAs
        self.client_cert_file = client_cert_file  # mTLS; None: $YM_CLIENT_CERT_FILE
        self.client_key_file = client_key_file  # None: $YM_CLIENT_KEY_FILE
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: List[Connection] = []

    # --- plumbing ----------------------------------------------------------------------------

    def _connection(self) -> Connection:
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self.url, self.timeout, ca_file=self.ca_file,
                              client_cert_file=self.client_cert_file,
                              client_key_file=self.client_key_file,
                              token=self._token, token_file=self._token_file)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def request(self, method: str, path: str, body: Any = None,
                timeout: Optional[float] = None) -> Any:
        """Send any API request on this thread's connection; returns the decoded JSON answer.

        Raises:
            YardmasterError subclass: an error answer, or Unreachable.
        """
        return self._connection().request(method, path, body, timeout)

    def close(self) -> None:
        """Close every connection this client opened (on any thread)."""
        with self._lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _pages(self, path: str, params: Dict[str, Any], page_size: int) -> Iterator[Dict[str, Any]]:
        query = {k: v for k, v in params.items() if v is not None}
        query["limit"] = page_size
        while True:
            page = self.request("GET", path + "?" + urlencode(query))
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    # --- jobs --------------------------------------------------------------------------------

    def enqueue(self, queue: str, kind: str, payload: Any = None, *,
                wait: Optional[float] = None, **options: Any) -> Any:
        """Enqueue one job; returns ``{"id", "state"}`` (plus ``"duplicate": True`` when an
        ``idempotency_key`` matched an earlier job, in which case nothing was created).
        Under a singleton limit in mode ``skip`` the reply is the live job of the key with
        ``"skipped": True`` (nothing created); in mode ``refuse`` it raises
        :class:`~yardmaster.errors.SingletonConflict`. Under a debounce limit,
        ``"superseded": [ids]`` lists the waiting jobs this one replaced.

        ``options`` are the other fields of the enqueue spec: ``namespace``, ``priority``,
        ``delay_ms`` or ``run_at``, ``max_attempts``, ``backoff``, ``lease_ms``, ``timeout_ms``
        (longest run of one attempt; ``0``: none even if the queue has one), ``idempotency_key``, ``idempotency_ttl_ms``, ``concurrency_key``, ``tags``, and the W3C
        trace context ``traceparent``/``tracestate`` handed to the worker that runs the job
        (e.g. ``**carrier`` after ``opentelemetry.propagate.inject(carrier)``). Unknown
        options are refused by the server (:class:`~yardmaster.errors.Validation`).

        With ``wait`` (seconds), waits for the job to end instead and returns its ``result``
        (what the handler returned)::

            total = client.enqueue("reports", "sum", {"ids": [1, 2]}, wait=60)

        Raises:
            Validation, PayloadTooLarge, ResourceExhausted, Unavailable.
            JobFailed: (with ``wait``) the job ended ``dead`` or ``cancelled``.
            WaitTimeout: (with ``wait``) the job had not ended after ``wait`` seconds.
        """
        spec: Dict[str, Any] = {"queue": queue, "kind": kind, "payload": payload}
        spec.update(options)
        created = self.request("POST", "/v1/jobs", spec)
        if wait is None:
            return created
        job = self.wait(created["id"], timeout=wait)
        if job["state"] != "succeeded":
            raise JobFailed(job)
        return job.get("result")

    def wait(self, job_id: JobId, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Wait until the job ends (``succeeded``, ``dead`` or ``cancelled``) and return the job
        object, with its ``result``. The server wakes the request when the job ends (no polling);
        waits longer than 30 s are made of several requests.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.

        Raises:
            WaitTimeout: the job had not ended after ``timeout`` seconds (``.job`` is its state).
            NotFound: no such job, or removed by retention.
        """
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0 seconds")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left_ms = MAX_WAIT_MS
            if deadline is not None:
                left_ms = min(MAX_WAIT_MS, max(0, int((deadline - time.monotonic()) * 1000)))
            job: Dict[str, Any] = self.request(
                "GET", f"{_job_path(job_id)}?wait_ms={left_ms}",
                timeout=self.timeout + left_ms / 1000)
            if job.get("state") in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(job)

    def enqueue_batch(self, specs: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Enqueue many jobs, each a full spec dict (``{"queue", "kind", "payload", ...}``).

        Returns one result per spec, in order: ``{"id", "state", "duplicate"?}`` or
        ``{"error": {"code", "message"}}`` for an item that was refused alone. More than 1000
        specs are sent as several requests.
        """
        items = list(specs)
        results: List[Dict[str, Any]] = []
        for start in range(0, len(items), MAX_BATCH):
            chunk = items[start:start + MAX_BATCH]
            answer = self.request("POST", "/v1/jobs:batch", {"jobs": chunk})
            results.extend(answer["results"])
        return results

    def get(self, job_id: JobId) -> Dict[str, Any]:
        """The job object (state, attempts, errors, timestamps, ``blocked_reason``).

        Raises:
            NotFound: no such job, or removed by retention.
        """
        return self.request("GET", _job_path(job_id))  # type: ignore[no-any-return]

    def list_jobs(self, queue: Optional[str] = None,
                  state: Union[str, Iterable[str], None] = None, page_size: int = 100, *,
                  namespace: Optional[str] = None, kind: Optional[str] = None,
                  tag: Optional[str] = None, created_after: TimeArg = None,
                  created_before: TimeArg = None, finished_after: TimeArg = None,
                  finished_before: TimeArg = None) -> Iterator[Dict[str, Any]]:
        """Iterate over the jobs matching every given filter, live and finished alike, in
        ascending id order, following ``next_cursor`` page by page (docs/api.md,
        "GET /v1/jobs")::

            for job in client.list_jobs(kind="resize", tag="customer:42", state="dead"):
                ...

        Args:
            queue: only this queue (default every queue).
            state: only this state (``scheduled``, ``ready``, ``active``, ``succeeded``,
                ``dead``, ``cancelled``), or any of several (a list, or a comma-separated
                string).
            page_size: jobs per request, 1..1000.
            namespace, kind: only jobs of this namespace, of this kind.
            tag: only jobs carrying this tag.
            created_after, created_before, finished_after, finished_before: time bounds, as
                epoch milliseconds or an aware ``datetime``; ``*_after`` is inclusive,
                ``*_before`` exclusive. A finished-at bound matches finished jobs only.

        A page may hold fewer jobs than ``page_size`` (even none) and still have a cursor: the
        server bounds the work of one request. The iterator simply goes on.
        """
        params = _filter_fields(namespace, queue, kind, state, tag, created_after,
                                created_before, finished_after, finished_before)
        if isinstance(params["state"], list):
            params["state"] = ",".join(params["state"])  # one query parameter
        return self._pages("/v1/jobs", params, page_size)

    def cancel(self, job_id: JobId) -> Dict[str, Any]:
        """Cancel a job: a ``ready``/``scheduled`` one at once; an ``active`` one is flagged
        (``cancel_requested``) and its worker learns it at once through its cancel watch
        (docs/workers.md, "Cancellation"). Returns the job.

        Raises:
            NotFound; InvalidState: the job is already terminal.
        """
        return self.request("POST", _job_path(job_id, "cancel"))  # type: ignore[no-any-return]

    def replay(self, job_id: JobId) -> Dict[str, Any]:
        """Start a new run of a ``dead`` or ``cancelled`` job (attempts reset). Returns the job.

        Raises:
            NotFound; InvalidState: the job is live or succeeded.
        """
        return self.request("POST", _job_path(job_id, "replay"))  # type: ignore[no-any-return]

    # --- queues ------------------------------------------------------------------------------

    def queues(self, page_size: int = 1000) -> List[Dict[str, Any]]:
        """Every existing queue, in name order: counts per state, oldest ready age,
        configuration. Follows ``next_cursor`` page by page (``page_size`` queues per request,
        1..1000); use :meth:`iter_queues` to avoid holding them all."""
        return list(self.iter_queues(page_size))

    def iter_queues(self, page_size: int = 1000) -> Iterator[Dict[str, Any]]:
        """Iterate over every existing queue in name order, one page per request."""
        return self._pages("/v1/queues", {}, page_size)

    def queue(self, name: str) -> Dict[str, Any]:
        """One queue object (a queue never configured shows the server defaults).

        Raises:
            QueueNotFound: the queue does not exist.
        """
        return self.request("GET", _queue_path(name))  # type: ignore[no-any-return]

    def configure_queue(self, name: str, create: bool = False, **config: Any) -> Dict[str, Any]:
        """``PUT /v1/queues/{name}``: set any of ``paused``, ``max_attempts``, ``lease_ms``,
        ``timeout_ms`` (the default execution timeout of its jobs; ``0``: none), ``backoff``,
        ``retention``, ``weight`` (1..1000: its share of a lease naming several queues); only
        those given change. Returns the queue object.

        Raises:
            QueueNotFound: the queue does not exist and ``create`` is false.
        """
        return self.request(  # type: ignore[no-any-return]
            "PUT", _queue_path(name) + _create(create), config)

    def pause(self, name: str, create: bool = False) -> Dict[str, Any]:
        """Stop dispatch from a queue (enqueues still succeed). Returns the queue object.

        Raises:
            QueueNotFound: the queue does not exist and ``create`` is false.
        """
        return self.request(  # type: ignore[no-any-return]
            "POST", _queue_path(name, "pause") + _create(create))

    def resume(self, name: str, create: bool = False) -> Dict[str, Any]:
        """Resume dispatch from a paused queue. Returns the queue object.

        Raises:
            QueueNotFound: the queue does not exist and ``create`` is false.
        """
        return self.request(  # type: ignore[no-any-return]
            "POST", _queue_path(name, "resume") + _create(create))

    def reset_queue(self, name: str) -> Dict[str, Any]:
        """``DELETE /v1/queues/{name}``: remove the queue's configuration; it follows the server
        defaults again (unpaused) and, unconfigured, is forgotten once it holds nothing. Jobs are
        not touched. Returns the queue object.

        Raises:
            QueueNotFound: the queue does not exist.
        """
        return self.request("DELETE", _queue_path(name))  # type: ignore[no-any-return]

    # --- limits (docs/flow-control.md, "Concurrency limits") -------------------------------

    def set_limit(self, name: str, concurrency: Optional[int] = None, *,
                  rate: Optional[Dict[str, Any]] = None, quota: Optional[Dict[str, Any]] = None,
                  breaker: Optional[Dict[str, Any]] = None, key: Optional[str] = None,
                  queue: Optional[str] = None,
                  kind: Optional[str] = None, namespace: Optional[str] = None,
                  singleton: Optional[str] = None, debounce_ms: Optional[int] = None,
                  debounce_max_wait_ms: Optional[int] = None) -> Dict[str, Any]:
        """``PUT /v1/limits/{name}``: create or replace a limit among the jobs it matches
        (``queue``, ``kind``, ``namespace``; none given: every job), per key, with at least one
        of its bounds:

        * ``concurrency``: at most this many active jobs;
        * ``rate``: at most ``{"count": N, "per": "second"|"minute"|"hour"|"day"}`` starts (or
          ``"period_ms": ms`` instead of ``per``), with an optional ``"burst"``;
        * ``quota``: at most ``{"count": N, "per": "day"|"week"|"month"}`` starts per calendar
          window, with an optional ``"time_zone"`` (IANA name, default ``"UTC"``);
        * ``breaker``: a circuit breaker per key, ``{"consecutive_failures": 5, "window": 0,
          "min_samples": ..., "failure_percent": 50, "open_base_ms": 1000,
          "open_max_ms": 300000}``, every member optional (``{}``: the defaults); an open key
          starts no job until its interval has passed, then one trial (docs/flow-control.md,
          "Circuit breakers").

        ``key`` is what it counts by: ``None`` (one count for all matched jobs),
        ``"concurrency_key"``, ``"kind"``, ``"namespace"``, ``"queue"`` or
        ``"payload.<field>[.<field>...]"``. Answered once durable; returns the limit object
        (with ``active``, its busiest keys, and a quota's ``window`` and ``used`` keys).

        Key modes (docs/flow-control.md, "Singleton and debounce"), at most one, each enough
        without ``concurrency``: ``singleton="refuse"`` (while a job of the key is live, an
        enqueue raises :class:`~yardmaster.errors.SingletonConflict` naming it) or ``"skip"``
        (the enqueue answers that job with ``"skipped": True``); ``debounce_ms=D`` keeps only
        the newest waiting job of the key, run D ms after the last enqueue but at most
        ``debounce_max_wait_ms`` after the first (the enqueue reply lists the jobs it
        ``"superseded"``).

        Raises:
            ValidationFailed: a bad value, naming the field.
            ValueError: ``debounce_max_wait_ms`` without ``debounce_ms``.
        """
        body: Dict[str, Any] = {}
        if concurrency is not None:
            body["concurrency"] = concurrency
        if rate is not None:
            body["rate"] = rate
        if quota is not None:
            body["quota"] = quota
        if breaker is not None:
            body["breaker"] = breaker
        if singleton is not None:
            body["singleton"] = singleton
        if debounce_ms is not None:
            body["debounce"] = {"delay_ms": debounce_ms}
            if debounce_max_wait_ms is not None:
                body["debounce"]["max_wait_ms"] = debounce_max_wait_ms
        elif debounce_max_wait_ms is not None:
            raise ValueError("debounce_max_wait_ms needs debounce_ms")
        match = {k: v for k, v in (("queue", queue), ("kind", kind), ("namespace", namespace))
                 if v is not None}
        if match:
            body["match"] = match
        if key is not None:
            body["key"] = key
        return self.request("PUT", _limit_path(name), body)  # type: ignore[no-any-return]

    def limit(self, name: str) -> Dict[str, Any]:
        """``GET /v1/limits/{name}``: the limit with its live counts (``active_keys`` and the
        busiest keys in ``active``). Raises NotFound when there is no such limit."""
        return self.request("GET", _limit_path(name))  # type: ignore[no-any-return]

    def limits(self, page_size: int = 1000) -> List[Dict[str, Any]]:
        """Every limit, in name order (``GET /v1/limits``, following the cursor)."""
        return list(self._pages("/v1/limits", {}, page_size))

    def delete_limit(self, name: str) -> Dict[str, Any]:
        """``DELETE /v1/limits/{name}``: the jobs it held back run at once. Raises NotFound when
        there is no such limit."""
        return self.request("DELETE", _limit_path(name))  # type: ignore[no-any-return]

    # --- namespaces (docs/flow-control.md, "Namespace limits") -------------------------------

    def set_namespace(self, name: str, *, max_live_jobs: Optional[int] = None,
                      enqueue_rate: Optional[Dict[str, Any]] = None,
                      weight: Optional[int] = None,
                      max_active: Optional[int] = None) -> Dict[str, Any]:
        """``PUT /v1/namespaces/{name}``: create or replace a namespace's (tenant's)
        configuration. ``max_live_jobs``: at most this many live jobs; ``enqueue_rate``:
        ``{"count": N, "per": "second"|"minute"|"hour" (or "period_ms": P), "burst": B}``;
        ``weight`` (1..1000): its share among the namespaces of a queue; ``max_active``
        (1..1000000): at most this many of its jobs leased at once, across its queues (the others
        wait with ``blocked_reason`` ``namespace_limit``). An enqueue past a limit raises
        :class:`NamespaceLimit` (429) with ``retry_after``. Answered once durable; returns the
        namespace object (with ``live_jobs`` and ``active_jobs``).

        Raises:
            ValidationFailed: a bad value, naming the field.
        """
        body: Dict[str, Any] = {}
        if max_live_jobs is not None:
            body["max_live_jobs"] = max_live_jobs
        if enqueue_rate is not None:
            body["enqueue_rate"] = enqueue_rate
        if weight is not None:
            body["weight"] = weight
        if max_active is not None:
            body["max_active"] = max_active
        return self.request("PUT", _namespace_path(name), body)  # type: ignore[no-any-return]

    def namespace(self, name: str) -> Dict[str, Any]:
        """``GET /v1/namespaces/{name}``: its configuration and ``live_jobs``. Raises NotFound
        when it has no configuration."""
        return self.request("GET", _namespace_path(name))  # type: ignore[no-any-return]

    def namespaces(self, page_size: int = 1000) -> List[Dict[str, Any]]:
        """Every configured namespace, in name order (``GET /v1/namespaces``)."""
        return list(self._pages("/v1/namespaces", {}, page_size))

    def delete_namespace(self, name: str) -> Dict[str, Any]:
        """``DELETE /v1/namespaces/{name}``: its limits are lifted and its weight is 1 again.
        Raises NotFound when it has no configuration."""
        return self.request("DELETE", _namespace_path(name))  # type: ignore[no-any-return]

    def reset_breaker(self, name: str, key: Optional[str] = None) -> Dict[str, Any]:
        """``POST /v1/limits/{name}:reset-breaker``: close the limit's breaker for ``key`` (every
        key when ``None``) now; the jobs it held back run at once. Returns the limit object with
        ``reset``: ``{"key", "tripped_keys"}`` (how many of the keys reset were open or
        half-open).

        Raises:
            NotFound: there is no such limit.
            Validation: the limit has no breaker.
        """
        body: Dict[str, Any] = {} if key is None else {"key": key}
        return self.request(  # type: ignore[no-any-return]
            "POST", _limit_path(name) + ":reset-breaker", body)

    # --- schedules (docs/cron.md) --------------------------------------------------------------

    def create_schedule(self, schedule_id: str, cron: str, job: Dict[str, Any], *,
                        time_zone: Optional[str] = None, start_at: TimeArg = None,
                        end_at: TimeArg = None, jitter_ms: Optional[int] = None,
                        missed_runs: Optional[Dict[str, Any]] = None,
                        overlap: Optional[str] = None,
                        paused: Optional[bool] = None) -> Dict[str, Any]:
        """``POST /v1/schedules``: a durable schedule that emits one job per window of ``cron``
        (5 or 6 fields, ``@daily``..., or ``"every 90s"``) in ``time_zone`` (IANA, default
        UTC), from the template ``job`` (an enqueue spec: ``{"queue", "kind", "payload", ...}``
        without ``delay_ms``/``run_at``/``idempotency_key``)::

            client.create_schedule("nightly", "0 3 * * *",
                                   {"queue": "reports", "kind": "nightly"},
                                   time_zone="Europe/Paris",
                                   missed_runs={"policy": "catch_up", "max_count": 7},
                                   overlap="buffer_one")

        ``start_at``/``end_at`` (epoch ms or datetime) bound the windows; ``jitter_ms`` delays
        each window's job by a fixed pseudo-random amount up to it; ``missed_runs`` is
        ``{"policy": "catch_up"|"latest_only"|"skip", "max_count", "max_age_ms",
        "grace_ms"}``; ``overlap`` is ``"skip"`` (default), ``"allow"``, ``"buffer_one"`` or
        ``"cancel_previous"``. Answered once durable; returns the schedule object.

        Raises:
            AlreadyExists: a schedule with this id exists.
            Validation: a bad member, naming it (``"cron"``, ``"job.queue"``...).
        """
        body = _schedule_spec(cron, time_zone, start_at, end_at, jitter_ms, missed_runs,
                              overlap, paused, job)
        body["id"] = schedule_id
        return self.request("POST", "/v1/schedules", body)  # type: ignore[no-any-return]

    def put_schedule(self, schedule_id: str, cron: str, job: Dict[str, Any], *,
                     time_zone: Optional[str] = None, start_at: TimeArg = None,
                     end_at: TimeArg = None, jitter_ms: Optional[int] = None,
                     missed_runs: Optional[Dict[str, Any]] = None,
                     overlap: Optional[str] = None,
                     paused: Optional[bool] = None) -> Dict[str, Any]:
        """``PUT /v1/schedules/{id}``: replace an existing schedule's spec (members not given
        take their defaults). The cursor and the history are kept: the change takes effect on
        the next window. Raises NotFound when there is no such schedule."""
        body = _schedule_spec(cron, time_zone, start_at, end_at, jitter_ms, missed_runs,
                              overlap, paused, job)
        return self.request(  # type: ignore[no-any-return]
            "PUT", _schedule_path(schedule_id), body)

    def update_schedule(self, schedule_id: str, *, cron: Optional[str] = None,
                        time_zone: Optional[str] = None, start_at: TimeArg = None,
                        end_at: TimeArg = None, jitter_ms: Optional[int] = None,
                        missed_runs: Optional[Dict[str, Any]] = None,
                        overlap: Optional[str] = None, paused: Optional[bool] = None,
                        job: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """``PATCH /v1/schedules/{id}``: change only the members given (``missed_runs`` members
        are merged; ``job`` replaces the template as a whole); takes effect on the next window.
        Raises NotFound when there is no such schedule."""
        body = _schedule_spec(cron, time_zone, start_at, end_at, jitter_ms, missed_runs,
                              overlap, paused, job)
        return self.request(  # type: ignore[no-any-return]
            "PATCH", _schedule_path(schedule_id), body)

    def schedule(self, schedule_id: str, next: Optional[int] = None) -> Dict[str, Any]:
        """``GET /v1/schedules/{id}``: the schedule with its state, ``cursor``, ``last_run``,
        ``lag``, ``history`` (newest first) and its next ``next`` fire times (0..100, default 5)
        in ``next_fire_times``. Raises NotFound when there is no such schedule."""
        path = _schedule_path(schedule_id)
        if next is not None:
            path += "?" + urlencode({"next": next})
        return self.request("GET", path)  # type: ignore[no-any-return]

    def schedules(self, page_size: int = 1000) -> List[Dict[str, Any]]:
        """Every schedule, in id order (``GET /v1/schedules``, following the cursor)."""
        return list(self._pages("/v1/schedules", {}, page_size))

    def delete_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """``DELETE /v1/schedules/{id}``: the schedule and its history are removed; jobs it
        emitted are untouched. Raises NotFound when there is no such schedule."""
        return self.request(  # type: ignore[no-any-return]
            "DELETE", _schedule_path(schedule_id))

    def pause_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """``POST /v1/schedules/{id}:pause``: it emits nothing until resumed. Returns the
        schedule object."""
        return self.request(  # type: ignore[no-any-return]
            "POST", _schedule_path(schedule_id, "pause"), {})

    def resume_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """``POST /v1/schedules/{id}:resume``: the windows missed while paused are decided by
        its ``missed_runs`` policy. Returns the schedule object."""
        return self.request(  # type: ignore[no-any-return]
            "POST", _schedule_path(schedule_id, "resume"), {})

    def trigger_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """``POST /v1/schedules/{id}:trigger``: enqueue one job from the template now, outside
        the window sequence (also while paused). Returns ``{"id", "state"}`` of the job."""
        return self.request(  # type: ignore[no-any-return]
            "POST", _schedule_path(schedule_id, "trigger"), {})

    def backfill_schedule(self, schedule_id: str, start: TimeArg, end: TimeArg) -> Dict[str, Any]:
        """``POST /v1/schedules/{id}:backfill``: emit the schedule's windows from ``start`` to
        ``end`` (inclusive, epoch ms or datetime) that are at or before its cursor, each at
        most once ever (a window already emitted is counted in ``duplicates``). Returns
        ``{"emitted", "duplicates", "after_cursor", "windows"}``."""
        body = {"from": _epoch_ms(start), "to": _epoch_ms(end)}
        return self.request(  # type: ignore[no-any-return]
            "POST", _schedule_path(schedule_id, "backfill"), body)

    # --- dead letters ------------------------------------------------------------------------

    def dead_jobs(self, queue: Optional[str] = None,
                  page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Iterate over dead jobs (with ``dead_reason``, ``last_error``, ``errors``)."""
        return self._pages("/v1/dead", {"queue": queue}, page_size)

    def replay_dead(self, queue: Optional[str] = None, ids: Optional[Iterable[JobId]] = None,
                    limit: Optional[int] = None) -> int:
        """Replay dead jobs: the given ``ids`` (those not dead are skipped), or up to ``limit``
        (server default 1000) of one ``queue`` or of every queue. Returns how many were
        replayed."""
        body: Dict[str, Any] = {}
        if ids is not None:
            if queue is not None or limit is not None:
                raise ValueError("ids cannot be combined with queue or limit")
            body["ids"] = [str(i) for i in ids]
        else:
            if queue is not None:
                body["queue"] = queue
            if limit is not None:
                body["limit"] = limit
        return int(self.request("POST", "/v1/dead:replay", body)["replayed"])

    # --- bulk operations by filter (docs/api.md, "Bulk operations") -------------------------

    def bulk_page(self, action: str, *, cursor: Optional[str] = None,
                  limit: Optional[int] = None, dry_run: bool = False, all_jobs: bool = False,
                  queue: Optional[str] = None, state: Union[str, Iterable[str], None] = None,
                  namespace: Optional[str] = None, kind: Optional[str] = None,
                  tag: Optional[str] = None, created_after: TimeArg = None,
                  created_before: TimeArg = None, finished_after: TimeArg = None,
                  finished_before: TimeArg = None) -> Dict[str, Any]:
        """One request of a bulk operation: ``POST /v1/jobs:cancel``, ``:replay`` or ``:delete``
        (``action`` is ``"cancel"``, ``"replay"`` or ``"delete"``). The filters are those of
        :meth:`list_jobs`; an empty filter is refused unless ``all_jobs=True``. Processes at
        most ``limit`` matching jobs (1..10000, server default 1000) after ``cursor`` and
        returns the reply: ``{"matched", "cancelled"|"replayed"|"deleted",
        "cancel_requested" (cancel), "skipped", "next_cursor"}``. Send ``next_cursor`` back
        with the same filter for the next page; ``None`` means done. Retrying a request whose
        answer was lost is safe: what the first try did is skipped, not done twice."""
        if action not in ("cancel", "replay", "delete"):
            raise ValueError("action must be cancel, replay or delete")
        fields = _filter_fields(namespace, queue, kind, state, tag, created_after,
                                created_before, finished_after, finished_before)
        fields.update(limit=limit, cursor=cursor)
        body: Dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        if all_jobs:
            body["all"] = True
        if dry_run:
            body["dry_run"] = True
        return self.request("POST", f"/v1/jobs:{action}", body)

    def _bulk(self, action: str, done: str, max_pages: Optional[int],
              on_page: Optional[Callable[[Dict[str, Any]], None]], cursor: Optional[str],
              **kwargs: Any) -> Dict[str, Any]:
        totals: Dict[str, Any] = {"matched": 0, done: 0, "skipped": 0, "pages": 0,
                                  "next_cursor": cursor}
        if action == "cancel":
            totals["cancel_requested"] = 0
        while True:
            page = self.bulk_page(action, cursor=totals["next_cursor"], **kwargs)
            totals["pages"] += 1
            for key in ("matched", done, "skipped", "cancel_requested"):
                if key in totals:
                    totals[key] += int(page.get(key, 0))
            totals["next_cursor"] = page.get("next_cursor")
            if on_page is not None:
                on_page(page)
            if totals["next_cursor"] is None:
                return totals
            if max_pages is not None and totals["pages"] >= max_pages:
                return totals

    def cancel_jobs(self, *, max_pages: Optional[int] = None,
                    on_page: Optional[Callable[[Dict[str, Any]], None]] = None,
                    cursor: Optional[str] = None, **filters: Any) -> Dict[str, Any]:
        """Cancel every live job the filters select (as :meth:`cancel` does: a waiting job at
        once, a running one flagged), page after page until done (or ``max_pages``)::

            client.cancel_jobs(queue="emails", kind="send_welcome")

        Takes the arguments of :meth:`bulk_page` but ``action``. ``on_page`` is called with
        each reply. Returns the totals ``{"matched", "cancelled", "cancel_requested",
        "skipped", "pages", "next_cursor"}``; ``next_cursor`` is not ``None`` only when
        ``max_pages`` stopped it (pass it back as ``cursor`` to resume)."""
        return self._bulk("cancel", "cancelled", max_pages, on_page, cursor, **filters)

    def replay_jobs(self, *, max_pages: Optional[int] = None,
                    on_page: Optional[Callable[[Dict[str, Any]], None]] = None,
                    cursor: Optional[str] = None, **filters: Any) -> Dict[str, Any]:
        """Replay every dead or cancelled job the filters select (as :meth:`replay` does), page
        after page; as :meth:`cancel_jobs`, with ``"replayed"`` in the totals."""
        return self._bulk("replay", "replayed", max_pages, on_page, cursor, **filters)

    def delete_jobs(self, *, max_pages: Optional[int] = None,
                    on_page: Optional[Callable[[Dict[str, Any]], None]] = None,
                    cursor: Optional[str] = None, **filters: Any) -> Dict[str, Any]:
        """Delete every finished job (succeeded, dead, cancelled) the filters select; a live
        job is never deleted. Idempotency keys keep the final state of their jobs. Page after
        page; as :meth:`cancel_jobs`, with ``"deleted"`` in the totals."""
        return self._bulk("delete", "deleted", max_pages, on_page, cursor, **filters)

    # --- server ------------------------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        """``{"version", "commit", "started_at", "live_jobs", "commits", "draining", "store"}``."""
        return self.request("GET", "/v1/info")  # type: ignore[no-any-return]

    def ready(self) -> bool:
        """True when the server answers ``/readyz`` with 200 (recovered and not draining)."""
        try:
            self.request("GET", "/readyz")
        except YardmasterError:
            return False
        return True
