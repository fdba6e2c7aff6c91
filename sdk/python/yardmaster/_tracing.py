"""OpenTelemetry span around a handler, when the ``opentelemetry`` API package is importable.

The broker stores the W3C trace context a producer sent with the enqueue (``traceparent`` and
``tracestate``) and hands it to the worker with the lease (docs/api.md, "Trace context"). This
module continues that trace: each handler call runs inside a CONSUMER span whose parent is the
job's context, made with the OpenTelemetry *API* only (``opentelemetry.trace`` and its W3C
propagator). Whether spans are recorded and where they go is the application's choice: it
installs an SDK and an exporter, or none (the API's default tracer makes no-op spans).

``opentelemetry`` is never required. Without it (or with ``Worker(..., tracing=False)``) the
handler runs as before and the context is still on the job (``job.traceparent``).

The span follows the OpenTelemetry messaging conventions: name ``"<queue> process"``, kind
CONSUMER, attributes ``messaging.system = "yardmaster"``, ``messaging.operation.type =
"process"``, ``messaging.destination.name`` (the queue), ``messaging.message.id`` (the job id),
and ``yardmaster.job.kind`` / ``yardmaster.job.attempt``. An exception the handler raises
(including :class:`~yardmaster.Retry`) is recorded on the span and sets its status to ERROR. A
job enqueued without a traceparent gets a root span.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Optional

from ._version import __version__


class Tracing:
    """The loaded API (or nothing). Built once per Worker: a failed import is not cached by
    Python, so trying it for every job would search ``sys.path`` every time."""

    def __init__(self, enabled: bool = True) -> None:
        self._trace: Any = None
        self._propagator: Any = None
        self._tracer: Any = None
        if not enabled:
            return
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import \
                TraceContextTextMapPropagator
        except ImportError:
            return
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()

    @property
    def active(self) -> bool:
        """True when spans are started (the API was importable and tracing is enabled)."""
        return self._trace is not None

    def span(self, job: Any) -> ContextManager[Any]:
        """The context manager to run ``job``'s handler in: a span when active, else nothing."""
        if self._trace is None:
            return contextlib.nullcontext()
        if self._tracer is None:
            # Looked up at first use, not at import: the application may set its tracer
            # provider after building the Worker.
            self._tracer = self._trace.get_tracer("yardmaster", __version__)
        parent: Optional[Any] = None
        if job.traceparent:
            carrier = {"traceparent": job.traceparent}
            if job.tracestate:
                carrier["tracestate"] = job.tracestate
            parent = self._propagator.extract(carrier)
        attributes = {
            "messaging.system": "yardmaster",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": job.id,
            "yardmaster.job.kind": job.kind,
            "yardmaster.job.attempt": job.attempt,
        }
        return self._tracer.start_as_current_span(
            f"{job.queue} process", context=parent, kind=self._trace.SpanKind.CONSUMER,
            attributes=attributes, record_exception=True, set_status_on_exception=True)
