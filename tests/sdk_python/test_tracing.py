"""Trace context in the Python SDK (docs/python-sdk.md, "Trace context").

The job carries the traceparent/tracestate it was enqueued with, on every attempt. When the
``opentelemetry`` API package is importable the worker runs each handler in a CONSUMER span
whose parent is that context; without it the handler runs as before.

The real ``opentelemetry`` package is not installed on this machine (it is in neither Debian
nor the registries the project may use here), so the span path is tested with a small fake of
the two API entry points the SDK uses (``opentelemetry.trace.get_tracer`` with
``Tracer.start_as_current_span``, and ``TraceContextTextMapPropagator.extract``), injected
through ``sys.modules``; the fake keeps the real signatures. If the real package is installed,
``test_with_the_real_api_if_installed`` runs the SDK against it as well.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
import types
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from conftest import PinnedServer, WorkerThread, wait_until

from yardmaster import Client, Job, Retry, Worker
from yardmaster._tracing import Tracing

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "rojo=00f067aa0ba902b7"


class FakeSpan:
    def __init__(self, name: str, parent: Any, kind: Any, attributes: Dict[str, Any],
                 record_exception: bool, set_status_on_exception: bool) -> None:
        self.name = name
        self.parent = parent
        self.kind = kind
        self.attributes = dict(attributes)
        self.record_exception = record_exception
        self.set_status_on_exception = set_status_on_exception
        self.exception: Optional[BaseException] = None
        self.ended = False


class FakeOtel:
    """The fake ``opentelemetry`` package: records every span started and what it got."""

    def __init__(self) -> None:
        self.spans: List[FakeSpan] = []
        self.current: List[FakeSpan] = []  # the handler checks it runs inside its span
        self.lock = threading.Lock()
        fake = self

        class SpanKind:
            INTERNAL = "INTERNAL"
            CONSUMER = "CONSUMER"

        class Tracer:
            def __init__(self, name: str, version: Optional[str]) -> None:
                self.name = name
                self.version = version

            @contextlib.contextmanager
            def start_as_current_span(self, name: str, context: Any = None,
                                      kind: Any = SpanKind.INTERNAL,
                                      attributes: Optional[Dict[str, Any]] = None,
                                      links: Any = None, start_time: Any = None,
                                      record_exception: bool = True,
                                      set_status_on_exception: bool = True,
                                      end_on_exit: bool = True) -> Iterator[FakeSpan]:
                span = FakeSpan(name, context, kind, attributes or {}, record_exception,
                                set_status_on_exception)
                with fake.lock:
                    fake.spans.append(span)
                    fake.current.append(span)
                try:
                    yield span
                except BaseException as e:
                    span.exception = e
                    raise
                finally:
                    span.ended = True
                    with fake.lock:
                        fake.current.remove(span)

        def get_tracer(instrumenting_module_name: str,
                       instrumenting_library_version: Optional[str] = None,
                       *args: Any, **kwargs: Any) -> Tracer:
            return Tracer(instrumenting_module_name, instrumenting_library_version)

        class TraceContextTextMapPropagator:
            def extract(self, carrier: Dict[str, str], context: Any = None,
                        getter: Any = None) -> Dict[str, str]:
                # The real one returns a Context holding a NonRecordingSpan; the fake keeps
                # the carrier so the test can see what was extracted.
                return {"extracted": dict(carrier)}

        root = types.ModuleType("opentelemetry")
        trace = types.ModuleType("opentelemetry.trace")
        trace.SpanKind = SpanKind  # type: ignore[attr-defined]
        trace.get_tracer = get_tracer  # type: ignore[attr-defined]
        propagation = types.ModuleType("opentelemetry.trace.propagation")
        tracecontext = types.ModuleType("opentelemetry.trace.propagation.tracecontext")
        tracecontext.TraceContextTextMapPropagator = (  # type: ignore[attr-defined]
            TraceContextTextMapPropagator)
        root.trace = trace  # type: ignore[attr-defined]
        trace.propagation = propagation  # type: ignore[attr-defined]
        propagation.tracecontext = tracecontext  # type: ignore[attr-defined]
        self.modules = {
            "opentelemetry": root,
            "opentelemetry.trace": trace,
            "opentelemetry.trace.propagation": propagation,
            "opentelemetry.trace.propagation.tracecontext": tracecontext,
        }


@pytest.fixture
def fake_otel(monkeypatch: pytest.MonkeyPatch) -> FakeOtel:
    fake = FakeOtel()
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def no_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import opentelemetry`` fails, whether or not the package is installed."""
    for name in list(sys.modules):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # makes the import raise


def run_one_job(server: PinnedServer, client: Client,
                run_worker: Callable[[Worker], WorkerThread], queue: str,
                handler: Callable[[Job], Any], **enqueue: Any) -> Dict[str, Any]:
    job_id = client.enqueue(queue, "k", {"n": 1}, **enqueue)["id"]
    worker = Worker([queue], concurrency=1, url=server.url())
    worker.task("k")(handler)
    wt = run_worker(worker)
    job = wait_until(lambda: (lambda j: j if j["state"] in ("succeeded", "dead") else None)(
        client.get(job_id)), 30, "the job to finish")
    wt.stop()
    return job


def test_job_exposes_the_context_without_opentelemetry(
        no_otel: None, server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    assert not Tracing().active
    seen: Dict[str, Any] = {}

    def handler(job: Job) -> None:
        seen.update(tp=job.traceparent, ts=job.tracestate, rid=job.request_id)

    job = run_one_job(server, client, run_worker, "plain", handler, traceparent=TP,
                      tracestate=TS)
    assert job["state"] == "succeeded"
    assert seen["tp"] == TP and seen["ts"] == TS
    # A job enqueued without context shows None.
    seen.clear()
    run_one_job(server, client, run_worker, "plain2", handler)
    assert seen["tp"] is None and seen["ts"] is None


def test_handler_runs_in_a_child_span_of_the_job_context(
        fake_otel: FakeOtel, server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    inside: Dict[str, Any] = {}

    def handler(job: Job) -> None:
        with fake_otel.lock:
            inside["current"] = [s.name for s in fake_otel.current]

    job = run_one_job(server, client, run_worker, "otel", handler, traceparent=TP,
                      tracestate=TS)
    assert job["state"] == "succeeded"
    assert inside["current"] == ["otel process"], "the handler runs inside the span"
    [span] = fake_otel.spans
    assert span.parent == {"extracted": {"traceparent": TP, "tracestate": TS}}
    assert span.kind == "CONSUMER" and span.ended
    assert span.attributes == {
        "messaging.system": "yardmaster", "messaging.operation.type": "process",
        "messaging.destination.name": "otel", "messaging.message.id": job["id"],
        "yardmaster.job.kind": "k", "yardmaster.job.attempt": 1}
    assert span.record_exception and span.set_status_on_exception


def test_a_failed_attempt_is_recorded_on_its_span_and_the_retry_keeps_the_parent(
        fake_otel: FakeOtel, server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    def handler(job: Job) -> str:
        if job.attempt == 1:
            raise Retry("once more", after=0)
        return "ok"

    job = run_one_job(server, client, run_worker, "otel_retry", handler, traceparent=TP)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    first, second = fake_otel.spans
    assert isinstance(first.exception, Retry)
    assert second.exception is None
    for span in (first, second):
        assert span.parent == {"extracted": {"traceparent": TP}}
    assert [s.attributes["yardmaster.job.attempt"] for s in (first, second)] == [1, 2]


def test_a_job_without_context_gets_a_root_span_and_tracing_can_be_off(
        fake_otel: FakeOtel, server: PinnedServer, client: Client,
        run_worker: Callable[[Worker], WorkerThread]) -> None:
    run_one_job(server, client, run_worker, "otel_root", lambda job: None)
    [span] = fake_otel.spans
    assert span.parent is None  # the current context: none in a handler thread
    assert Tracing(enabled=False).active is False
    job_id = client.enqueue("otel_off", "k", traceparent=TP)["id"]
    worker = Worker(["otel_off"], concurrency=1, url=server.url(), tracing=False)
    worker.task("k")(lambda job: None)
    wt = run_worker(worker)
    wait_until(lambda: client.get(job_id)["state"] == "succeeded", 30, "the job")
    wt.stop()
    assert len(fake_otel.spans) == 1, "tracing=False starts no span"


@pytest.mark.skipif(importlib.util.find_spec("opentelemetry") is None,
                    reason="the opentelemetry API package is not installed here")
def test_with_the_real_api_if_installed(server: PinnedServer, client: Client,
                                        run_worker: Callable[[Worker], WorkerThread]) -> None:
    from opentelemetry import trace
    seen: Dict[str, Any] = {}

    def handler(job: Job) -> None:
        seen["span"] = trace.get_current_span()

    assert Tracing().active
    job = run_one_job(server, client, run_worker, "otel_real", handler, traceparent=TP)
    # What the span records depends on the SDK the application installs (none here); the SDK's
    # own calls into the API must work and leave the handler's outcome alone.
    assert job["state"] == "succeeded" and "span" in seen
