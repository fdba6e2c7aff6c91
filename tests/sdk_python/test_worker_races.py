"""Races between the worker's own requests, replayed deterministically against a scripted HTTP
server (standard library, 127.0.0.1, port 0) that holds one reply until another request came."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

from conftest import WorkerThread

from yardmaster import Job, Worker


class _CrossingServer(ThreadingHTTPServer):
    """Leases one job (300 ms lease), then long-polls empty. The ack of that job is answered
    only after a heartbeat of it has been answered 409 `job 1 is succeeded`: the heartbeat and
    the ack cross, as they do when the server applies the ack just before the heartbeat."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.leased = False
        self.heartbeat_refused = threading.Event()
        self.acks: List[Dict[str, Any]] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CrossingServer

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def _reply(self, status: int, body: Dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/v1/leases":
            with self.server.lock:
                first = not self.server.leased
                self.server.leased = True
            if not first:
                time.sleep(0.05)
                return self._reply(200, {"jobs": []})
            expires = int(time.time() * 1000) + 300
            return self._reply(200, {"jobs": [{
                "id": "1", "queue": "q", "kind": "k", "namespace": "default", "payload": None,
                "attempt": 1, "max_attempts": 3, "priority": 0, "tags": [],
                "lease": {"token": "t1", "expires_at": expires, "worker_id": "w"}}]})
        if self.path == "/v1/jobs/1:heartbeat":
            self._reply(409, {"error": {"code": "stale_lease", "message": "job 1 is succeeded"}})
            self.server.heartbeat_refused.set()
            return None
        if self.path == "/v1/acks:batch":
            self.server.heartbeat_refused.wait(10)
            with self.server.lock:
                self.server.acks.extend(body.get("acks") or [])
            return self._reply(200, {"acks": [{"ok": True} for _ in body.get("acks") or []],
                                     "fails": [{"ok": True} for _ in body.get("fails") or []]})
        return self._reply(404, {"error": {"code": "not_found", "message": self.path}})


def test_a_heartbeat_that_crosses_the_ack_is_not_a_lost_lease() -> None:
    server = _CrossingServer()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        worker = Worker(["q"], concurrency=1, url=f"http://127.0.0.1:{server.server_port}",
                        lease_ms=300, poll_wait_ms=100, prefetch=0)
        worker.register("k", lambda job: {"done": True})
        wt = WorkerThread(worker).start()
        deadline = time.monotonic() + 20
        while worker.stats["succeeded"] < 1:
            assert time.monotonic() < deadline, worker.stats
            time.sleep(0.02)
        wt.stop()
        assert server.heartbeat_refused.is_set()
        assert [a["id"] for a in server.acks] == ["1"]
        # The 409 crossed the ack: the job succeeded, no lease was lost.
        assert worker.stats["leases_lost"] == 0, worker.stats
        assert worker.stats["succeeded"] == 1, worker.stats
    finally:
        server.shutdown()
        server.server_close()
