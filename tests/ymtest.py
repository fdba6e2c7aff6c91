"""Helpers for black-box tests: start the real `yardmaster` binary and talk HTTP to it.

Servers bind 127.0.0.1 on port 0 (the kernel picks a free port, which the server prints on its
first log line) and keep their data in a temporary directory. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

ADDRESS_RE = re.compile(r"listening on (?:https?://)?127\.0\.0\.1:(\d+)")


# scripts/coverage.sh sets YM_TEST_GRACEFUL_STOP=1: processes still running at the end of a
# test are then stopped cleanly (stop_process) instead of SIGKILLed, because a process writes
# its coverage counts (.gcda) only when it exits normally. Tests that kill on purpose still do.
GRACEFUL_STOP = os.environ.get("YM_TEST_GRACEFUL_STOP") == "1"


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 30.0) -> None:
    """Ends a process left running at teardown. SIGKILL by default (fast, nothing to wait for);
    with YM_TEST_GRACEFUL_STOP=1, SIGTERM and then SIGINT (the second stop signal skips the
    server's and the workers' shutdown grace), and SIGKILL only if it is still running after
    `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    if GRACEFUL_STOP:
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def binary() -> str:
    path = os.environ.get("YM_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "release", "yardmaster")
    if not os.path.exists(path):
        raise RuntimeError(f"yardmaster binary not found at {path}; set YM_BIN")
    return os.path.abspath(path)


# Timing in black-box tests (docs/testing.md, "Flakiness"): the suites run twice in parallel
# (release and ASan) on a loaded 2-core machine, so nothing may depend on how fast a step runs.
# A test waits on a condition (a job state, a metric, a log line, a file) with a generous
# deadline, and a lease that heartbeats must hold is HOLD_LEASE_MS long: heartbeats every third
# of it then survive a stall of two seconds.
HOLD_LEASE_MS = 3000


def wait_until(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Polls cond() until it returns something truthy, which it returns; fails the test after
    `timeout` seconds. Ends as soon as the condition holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def metric(text: str, series: str) -> float:
    """The value of one series (name and labels exactly as printed) in a /metrics text; 0 when
    it is absent (a counter that never moved is not printed)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def settled(job: Dict[str, Any], state: str) -> bool:
    """True when a job view shows the terminal `state` with what is recorded with it: a dead
    job's dead_reason, a succeeded job's result (so only for jobs whose handler returns one).
    The server shows a job that just finished in its terminal state a moment before the batch
    that records it has committed, and that view has neither yet; a test that reads them
    waits for this instead of reading the first terminal view."""
    if job.get("state") != state:
        return False
    if state == "dead":
        return job.get("dead_reason") is not None
    if state == "succeeded":
        return job.get("result") is not None
    return True


def wait_lease_held(view: Callable[[], Dict[str, Any]], lease_ms: int, lengths: int = 2,
                    timeout: float = 60.0) -> Dict[str, Any]:
    """Proves that heartbeats hold a job's lease, from the server's side and whatever the load:
    waits until `view()` (the job's GET /v1/jobs/{id} body) shows it active and then until its
    lease expiry has moved `lengths` lease lengths past the first one seen. Every view on the
    way must be the same lease (active, same attempt, no error), so the job was held well past
    the expiry of the lease it started with. Returns the last view."""
    first = wait_until(lambda: (lambda j: j if j.get("state") == "active" else None)(view()),
                       timeout, "the job to be leased")
    expires0 = first["lease"]["expires_at"]
    deadline = time.monotonic() + timeout
    while True:
        job = view()
        assert job["state"] == "active", ("the lease was not held", job)
        assert job["attempts"] == first["attempts"] and job["errors"] == first["errors"], \
            ("the lease was lost and the job leased again", first, job)
        if job["lease"]["expires_at"] >= expires0 + lengths * lease_ms:
            return job
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s: the lease of {first} was not "
                                 f"extended by {lengths} lease lengths ({job})")
        time.sleep(0.05)


class Client:
    """A keep-alive JSON client for one server. Not thread-safe: one per thread."""

    def __init__(self, port: int, timeout: float = 40.0):
        self.port = port
        self.timeout = timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def raw(self, method: str, path: str, body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        hdrs = dict(headers or {})
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed while idle: retry once on a new one.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
        if body is not None or method not in ("GET", "HEAD"):
            # The server refuses writes without it, body or not (docs/security.md).
            headers["Content-Type"] = "application/json"
        status, _, payload = self.raw(method, path, data, headers)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, parsed

    def call_as(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
        """One request with `Authorization: Bearer <token>` (none when token is None): the
        status, the headers (lower-case names) and the body (parsed JSON, else text)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if body is not None or method not in ("GET", "HEAD"):
            hdrs["Content-Type"] = "application/json"
        status, h, payload = self.raw(method, path, data, hdrs)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, h, parsed

    # Shorthands for the common calls; each asserts the expected status.
    def enqueue(self, **spec: Any) -> Dict[str, Any]:
        status, body = self.call("POST", "/v1/jobs", spec)
        assert status in (200, 201), (status, body)
        return body

    def lease(self, queues: List[str], max_jobs: int = 1, wait_ms: int = 0,
              **extra: Any) -> List[Dict[str, Any]]:
        req = {"queues": queues, "max": max_jobs, "wait_ms": wait_ms, "worker_id": "test"}
        req.update(extra)
        status, body = self.call("POST", "/v1/leases", req)
        assert status == 200, (status, body)
        return body["jobs"]

    def ack(self, job: Dict[str, Any], expect: int = 200) -> Any:
        status, body = self.call("POST", f"/v1/jobs/{job['id']}:ack",
                                 {"token": job["lease"]["token"]})
        assert status == expect, (status, body)
        return body

    def get(self, job_id: str) -> Tuple[int, Any]:
        return self.call("GET", f"/v1/jobs/{job_id}")

    def queue(self, name: str) -> Dict[str, Any]:
        status, body = self.call("GET", f"/v1/queues/{name}")
        assert status == 200, (status, body)
        return body


class Server:
    """One `yardmaster server` process on a temporary data directory."""

    def __init__(self, data_dir: str, extra_args: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None):
        self.data_dir = data_dir
        self.extra_args = list(extra_args or [])
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.log_lines: List[str] = []
        self._reader: Optional[threading.Thread] = None

    def start(self, timeout: float = 30.0) -> "Server":
        args = [binary(), "server", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir]
        args += self.extra_args
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.log_lines = []
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     env=env, text=True)
        port_found = threading.Event()

        def read_log(proc: subprocess.Popen) -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.log_lines.append(line.rstrip("\n"))
                m = ADDRESS_RE.search(line)
                if m and not port_found.is_set():
                    self.port = int(m.group(1))
                    port_found.set()

        self._reader = threading.Thread(target=read_log, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_found.wait(0.05):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("server exited at start:\n" + "\n".join(self.log_lines))
        else:
            self.kill()
            raise RuntimeError("server did not print its address:\n" + "\n".join(self.log_lines))
        return self

    def client(self) -> Client:
        return Client(self.port)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        if self._reader:
            self._reader.join(timeout=5)

    def stop(self) -> None:
        """End of a test: see stop_process (SIGKILL, or a clean stop when measuring coverage)."""
        stop_process(self.proc)
        if self._reader:
            self._reader.join(timeout=5)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        if self._reader:
            self._reader.join(timeout=5)
        return rc

    def restart(self) -> "Server":
        self.kill()
        return self.start()


# API tokens (docs/security.md, "Tokens"): a server started with `--auth tokens` writes its
# bootstrap admin secret to <data_dir>/admin.token.
def admin_secret(server: Server) -> str:
    with open(os.path.join(server.data_dir, "admin.token")) as f:
        return f.read().strip()


def auth_call(server: Server, method: str, path: str, body: Any = None,
              token: Optional[str] = None,
              headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
    """Client.call_as on a new connection."""
    return server.client().call_as(method, path, body, token, headers)


def create_token(server: Server, admin: str, name: str, role: str = "admin",
                 **extra: Any) -> Dict[str, Any]:
    """POST /v1/tokens as `admin`: the token object, with its `secret`."""
    status, _, body = auth_call(server, "POST", "/v1/tokens",
                                {"name": name, "role": role, **extra}, token=admin)
    assert status == 201, body
    return body
