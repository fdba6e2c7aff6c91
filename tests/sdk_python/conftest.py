"""Fixtures for the Python SDK tests: the real server (tests/ymtest.py) and the SDK from
sdk/python on sys.path, so that the tests run against the source tree without pip."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
SDK = os.path.join(os.path.dirname(TESTS), "sdk", "python")
for path in (SDK, TESTS, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import ymtest  # noqa: E402
from ymtest import Server  # noqa: E402

from yardmaster import Client, Worker  # noqa: E402


class PinnedServer(Server):
    """A Server that comes back on the port it first got, so that a worker configured with its
    URL reconnects to the restarted process. (ymtest's Server always binds port 0 and the
    server refuses a second --listen, so the first start goes through ymtest and later ones
    run the same command with the port filled in.)"""

    def start(self, timeout: float = 30.0) -> "PinnedServer":
        if not self.port:
            super().start(timeout)
            return self
        args = [ymtest.binary(), "server", "--listen", f"127.0.0.1:{self.port}",
                "--data-dir", self.data_dir] + self.extra_args
        env = dict(os.environ)
        env.update(self.env or {})
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen(args, stderr=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, env=env, text=True)
            self._reader = threading.Thread(target=self._drain_log, args=(self.proc,),
                                            daemon=True)
            self._reader.start()
            if self._wait_ready(deadline):
                return self
            # The port may be held for a moment after SIGKILL: try again until the deadline.
            self.kill()
            if time.monotonic() > deadline:
                raise RuntimeError("server did not restart:\n" + "\n".join(self.log_lines))
            time.sleep(0.2)

    def _drain_log(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log_lines.append(line.rstrip("\n"))

    def _wait_ready(self, deadline: float) -> bool:
        probe = ymtest.Client(self.port, timeout=2.0)
        try:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    return False
                try:
                    if probe.call("GET", "/readyz")[0] == 200:
                        return True
                except (OSError, http.client.HTTPException):
                    probe.close()  # http.client cannot reuse a connection that failed
                time.sleep(0.05)
            return False
        finally:
            probe.close()


@pytest.fixture
def server(tmp_path: Any) -> Iterator[PinnedServer]:
    # Succeeded jobs are kept (an hour here; the default is a day) so that tests can read each
    # job's final state, attempts and result; spelled out so the tests do not depend on it.
    s = PinnedServer(str(tmp_path / "data"), ["--retention-succeeded-ms", "3600000"]).start()
    yield s  # type: ignore[misc]
    s.stop()


@pytest.fixture
def client(server: PinnedServer) -> Iterator[Client]:
    c = Client(server.url(), timeout=40.0)
    yield c
    c.close()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class WorkerThread:
    """Runs a Worker.run() on a background thread; stop() joins it with a bound."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(install_signal_handlers=False)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def start(self) -> "WorkerThread":
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop in time"
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_worker() -> Iterator[Callable[[Worker], WorkerThread]]:
    """Factory: run_worker(worker) starts it on a thread; every one is stopped at teardown."""
    started: List[WorkerThread] = []

    def start(worker: Worker) -> WorkerThread:
        wt = WorkerThread(worker).start()
        started.append(wt)
        return wt

    yield start
    for wt in started:
        if wt.thread.is_alive():
            wt.worker.stop(force=True)
            wt.thread.join(30)


def worker_env(server: Server, marker_dir: str, **extra: str) -> Dict[str, str]:
    """Environment for a `python -m yardmaster worker` subprocess running tests/sdk_python's
    app module against ``server``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SDK, HERE] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["YM_URL"] = server.url()
    env["YM_TEST_DIR"] = marker_dir
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
