"""GET /v1/jobs/{id}?wait_ms=N: a request that waits for its job to end (docs/api.md).

Each wait is first seen registered (the ym_job_waits gauge), then the end is caused; so a wait
that returns with the terminal state was woken by that end, not by its deadline, which is set
far beyond the test's own deadline.
"""

import threading
from typing import Any, Dict, List

from ymtest import metric, settled, wait_until

LONG_WAIT = 30000  # the longest wait: a test that depended on it would time out first


def waits(client) -> float:
    return metric(client.call("GET", "/metrics")[1], "ym_job_waits")


class Waiter:
    """GET /v1/jobs/{id}?wait_ms=N on its own connection and thread."""

    def __init__(self, server, job_id: str, wait_ms: int = LONG_WAIT):
        self.client = server.client()
        self.result: List[Any] = []
        self.thread = threading.Thread(target=self._run, args=(job_id, wait_ms))
        self.thread.start()

    def _run(self, job_id: str, wait_ms: int) -> None:
        self.result.append(self.client.call("GET", f"/v1/jobs/{job_id}?wait_ms={wait_ms}"))

    def get(self, timeout: float = 20) -> Dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the wait was not answered"
        self.client.close()
        status, body = self.result[0]
        assert status == 200, (status, body)
        return body


def start_waits(server, client, job_id: str, n: int = 1) -> List[Waiter]:
    before = waits(client)
    ws = [Waiter(server, job_id) for _ in range(n)]
    wait_until(lambda: waits(client) >= before + n, 10, "the waits to be registered")
    return ws


def test_a_wait_is_woken_by_the_ack_and_carries_the_result(server, client):
    job = client.enqueue(queue="w", kind="k")
    (w1, w2) = start_waits(server, client, job["id"], 2)
    leased = client.lease(["w"])[0]
    status, _ = client.call("POST", f"/v1/jobs/{job['id']}:ack",
                            {"token": leased["lease"]["token"], "result": {"n": 12345678901234567890}})
    assert status == 200
    for w in (w1, w2):
        got = w.get()
        assert got["state"] == "succeeded", got
        # The result as sent, even though this queue keeps nothing of a succeeded job.
        assert got["result"] == {"n": 12345678901234567890}, got
    assert waits(client) == 0


def test_a_wait_is_woken_by_a_fail_into_dead_with_the_reason(server, client):
    job = client.enqueue(queue="w", kind="k", max_attempts=1)
    (w,) = start_waits(server, client, job["id"])
    leased = client.lease(["w"])[0]
    status, _ = client.call("POST", f"/v1/jobs/{job['id']}:fail",
                            {"token": leased["lease"]["token"],
                             "error": {"type": "Boom", "message": "no"}})
    assert status == 200
    got = w.get()
    assert got["state"] == "dead" and got["dead_reason"], got
    assert got["errors"][-1]["type"] == "Boom", got


def test_a_retried_failure_does_not_end_the_wait(server, client):
    job = client.enqueue(queue="w", kind="k", max_attempts=3)
    (w,) = start_waits(server, client, job["id"])
    leased = client.lease(["w"])[0]
    status, _ = client.call("POST", f"/v1/jobs/{job['id']}:fail",
                            {"token": leased["lease"]["token"], "retry_in_ms": 0,
                             "error": {"type": "Flaky", "message": "again"}})
    assert status == 200
    assert waits(client) == 1 and w.thread.is_alive()
    again = wait_until(lambda: client.lease(["w"]), 10, "the retry")
    client.ack(again[0])
    got = w.get()
    assert got["state"] == "succeeded" and got["attempts"] == 2, got


def test_a_wait_is_woken_by_a_cancel(server, client):
    job = client.enqueue(queue="w", kind="k", delay_ms=3_600_000)
    (w,) = start_waits(server, client, job["id"])
    status, _ = client.call("POST", f"/v1/jobs/{job['id']}:cancel")
    assert status == 200
    assert w.get()["state"] == "cancelled"


def test_a_wait_is_woken_when_an_expired_lease_ends_the_job(server, client):
    job = client.enqueue(queue="w", kind="k", max_attempts=1, lease_ms=1000)
    (w,) = start_waits(server, client, job["id"])
    client.lease(["w"])  # never acked: the lease runs out and the last attempt is spent
    got = w.get(timeout=30)
    assert got["state"] == "dead", got
    assert got["errors"][-1]["type"] == "lease_expired", got


def test_a_wait_ends_at_its_deadline_with_the_state_then(server, client):
    job = client.enqueue(queue="idle", kind="k")
    status, got = client.call("GET", f"/v1/jobs/{job['id']}?wait_ms=300")
    assert status == 200 and got["state"] == "ready", got
    assert got["blocked_reason"] == "no_workers"
    assert waits(client) == 0


def test_a_wait_on_a_finished_or_unknown_job_answers_at_once(server, client):
    job = client.enqueue(queue="w", kind="k", delay_ms=3_600_000)
    client.call("POST", f"/v1/jobs/{job['id']}:cancel")
    done = wait_until(lambda: settled(client.get(job["id"])[1], "cancelled"), 10, "the cancel")
    assert done
    status, got = client.call("GET", f"/v1/jobs/{job['id']}?wait_ms={LONG_WAIT}")
    assert status == 200 and got["state"] == "cancelled"
    status, body = client.call("GET", f"/v1/jobs/9999999?wait_ms={LONG_WAIT}")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_bad_wait_values_are_refused_and_register_nothing(server, client):
    job = client.enqueue(queue="w", kind="k")
    for query in ("wait_ms=-1", "wait_ms=abc", "wait_ms=30001", "wait_ms=1e3", "wait=5",
                  "wait_ms=1&wait_ms=2"):
        status, body = client.call("GET", f"/v1/jobs/{job['id']}?{query}")
        assert status == 400, (query, status, body)
        assert body["error"]["code"] == "invalid_request", body
    assert waits(client) == 0
    assert client.get(job["id"])[1]["state"] == "ready"


def test_waits_past_the_cap_are_refused_with_429(make_server):
    srv = make_server("--max-job-waits", "2")
    c = srv.client()
    job = c.enqueue(queue="w", kind="k")
    ws = start_waits(srv, c, job["id"], 2)
    status, body = c.call("GET", f"/v1/jobs/{job['id']}?wait_ms=1000")
    assert status == 429 and body["error"]["code"] == "resource_exhausted", body
    assert "max_job_waits" in body["error"]["message"]
    c.ack(c.lease(["w"])[0])
    for w in ws:
        assert w.get()["state"] == "succeeded"
    c.close()


def test_sigterm_answers_waits_at_once(server, client):
    job = client.enqueue(queue="w", kind="k")
    (w,) = start_waits(server, client, job["id"])
    server.proc.terminate()
    got = w.get()
    assert got["state"] == "ready", got
    server.proc.wait(30)
