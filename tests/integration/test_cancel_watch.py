"""POST /v1/cancels:watch: a worker's long-poll for cancels of the jobs it holds (docs/api.md).

Each watch is first seen registered (the ym_cancel_watches gauge), then the cancel is made; so a
watch answered with the job's id was woken by that cancel, not by its deadline, which lies far
beyond the test's own deadline.
"""

import threading
import time
from typing import Any, List

from ymtest import metric, wait_until

LONG_WAIT = 30000


def watches(client) -> float:
    return metric(client.call("GET", "/metrics")[1], "ym_cancel_watches")


class Watch:
    """POST /v1/cancels:watch on its own connection and thread."""

    def __init__(self, server, body):
        self.client = server.client()
        self.result: List[Any] = []
        self.thread = threading.Thread(target=self._run, args=(body,))
        self.thread.start()

    def _run(self, body) -> None:
        self.result.append(self.client.call("POST", "/v1/cancels:watch", body))
        self.answered = time.monotonic()

    def get(self, timeout: float = 20):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the watch was not answered"
        self.client.close()
        return self.result[0]


def start_watch(server, client, body) -> Watch:
    before = watches(client)
    w = Watch(server, body)
    wait_until(lambda: watches(client) >= before + 1, 10, "the watch to be registered")
    return w


def lease_as(client, worker_id: str, queue: str = "cw"):
    status, body = client.call("POST", "/v1/leases",
                               {"queues": [queue], "max": 1, "worker_id": worker_id})
    assert status == 200 and len(body["jobs"]) == 1, (status, body)
    return body["jobs"][0]


def test_a_cancel_wakes_the_watch_of_the_worker_holding_the_job(server, client):
    job = client.enqueue(queue="cw", kind="k", lease_ms=30000)
    leased = lease_as(client, "w-1")
    mine = start_watch(server, client, {"worker_id": "w-1", "wait_ms": LONG_WAIT})
    other = start_watch(server, client, {"worker_id": "w-2", "wait_ms": 1000})
    t0 = time.monotonic()
    status, view = client.call("POST", f"/v1/jobs/{job['id']}:cancel")
    assert status == 200 and view["state"] == "active" and view["cancel_requested"], view
    status, body = mine.get()
    assert status == 200 and body == {"cancel_requested": [job["id"]]}, body
    # Woken by the cancel, not by a deadline 30 s away.
    assert mine.answered - t0 < 10
    # Another worker's watch hears nothing and ends at its own deadline, empty.
    assert other.get() == (200, {"cancel_requested": []})
    # Knowing the id, the next watch waits; not knowing it, it is answered at once.
    status, body = client.call("POST", "/v1/cancels:watch", {"worker_id": "w-1", "wait_ms": 0,
                                                            "known": [job["id"]]})
    assert (status, body) == (200, {"cancel_requested": [job["id"]]})
    t1 = time.monotonic()
    status, body = client.call("POST", "/v1/cancels:watch",
                               {"worker_id": "w-1", "wait_ms": LONG_WAIT})
    assert (status, body) == (200, {"cancel_requested": [job["id"]]})
    assert time.monotonic() - t1 < 10
    # Once the worker reports the cancelled attempt, the job is no longer reported.
    status, body = client.call("POST", f"/v1/jobs/{job['id']}:fail",
                               {"token": leased["lease"]["token"],
                                "error": {"type": "cancelled", "message": "stopped"}})
    assert status == 200 and body["state"] == "cancelled", body
    status, body = client.call("POST", "/v1/cancels:watch", {"worker_id": "w-1", "wait_ms": 100})
    assert (status, body) == (200, {"cancel_requested": []})
    # The gauge is refreshed by the core thread right after it answers.
    wait_until(lambda: watches(client) == 0, 10, "no watch left")


def test_a_watch_ends_at_its_deadline_with_what_it_knows(server, client):
    client.enqueue(queue="cw2", kind="k", lease_ms=30000)
    lease_as(client, "w-3", "cw2")
    t0 = time.monotonic()
    status, body = client.call("POST", "/v1/cancels:watch", {"worker_id": "w-3", "wait_ms": 300})
    assert (status, body) == (200, {"cancel_requested": []})
    assert time.monotonic() - t0 >= 0.29


def test_bad_watches_are_refused_clearly_and_change_nothing(server, client):
    job = client.enqueue(queue="cw3", kind="k", lease_ms=30000)
    lease_as(client, "w-4", "cw3")
    cases = [
        ({}, 422, "worker_id"),
        ({"worker_id": ""}, 422, "worker_id"),
        ({"worker_id": "x" * 129}, 422, "worker_id"),
        ({"worker_id": 7}, 422, "worker_id"),
        ({"worker_id": "w", "wait_ms": -1}, 422, "wait_ms"),
        ({"worker_id": "w", "wait_ms": 30001}, 422, "wait_ms"),
        ({"worker_id": "w", "known": "42"}, 422, "known"),
        ({"worker_id": "w", "known": [42]}, 422, "known[0]"),
        ({"worker_id": "w", "known": ["0"]}, 422, "known[0]"),
        ({"worker_id": "w", "known": [str(i + 1) for i in range(1001)]}, 422, "known"),
        ({"worker_id": "w", "jobs": []}, 422, "jobs"),
    ]
    for body, code, field in cases:
        status, err = client.call("POST", "/v1/cancels:watch", body)
        assert status == code and err["error"]["code"] == "validation_failed", (body, status, err)
        assert field in err["error"]["message"], (body, err)
    status, err = client.call("POST", "/v1/cancels:watch?wait_ms=5", {"worker_id": "w"})
    assert status == 400 and err["error"]["code"] == "invalid_request", err
    status, err = client.call("GET", "/v1/cancels:watch")
    assert status == 405, err
    status, err = client.raw("POST", "/v1/cancels:watch", b"{not json",
                             {"Content-Type": "application/json"})[:2]
    assert status == 400
    # Nothing changed: the job is still active, no cancel requested, nothing registered.
    status, view = client.get(job["id"])
    assert view["state"] == "active" and not view["cancel_requested"], view
    assert watches(client) == 0
