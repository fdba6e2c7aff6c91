"""Replay and cancel answer by the job's state at the moment they are decided (docs/api.md,
"POST /v1/jobs/{id}:cancel and POST /v1/jobs/{id}:replay"; docs/guarantees.md §6, §8, §9).

Black-box against the real binary. The interleavings that need a read held on the server's
reader thread are in tests/unit/broker_test.cc (BrokerRaceTest); here every answer is checked as
a client sees it.
"""

import signal
import socket
import threading
import time

import pytest
from ymtest import metric, wait_until

RELEASED = "ym_http_released_leases_total"


def dead_job(client, queue, **spec):
    job_id = client.enqueue(queue=queue, kind="k", **spec)["id"]
    jobs = client.lease([queue])
    assert [j["id"] for j in jobs] == [job_id]
    status, body = client.call("POST", f"/v1/jobs/{job_id}:fail", {
        "token": jobs[0]["lease"]["token"],
        "error": {"type": "E", "message": "boom", "retryable": False}})
    assert status == 200 and body["state"] == "dead", body
    return job_id


def replay(client, job_id):
    return client.call("POST", f"/v1/jobs/{job_id}:replay")


def test_replay_answers_by_the_jobs_state_now(client):
    status, body = replay(client, "999999")
    assert status == 404 and body["error"]["code"] == "not_found", body

    live = client.enqueue(queue="rp-live", kind="k")["id"]
    status, body = replay(client, live)
    assert status == 409 and body["error"]["code"] == "invalid_state", body
    assert "ready" in body["error"]["message"], body

    job_id = dead_job(client, "rp")
    status, body = replay(client, job_id)
    assert status == 200 and body["state"] == "ready" and body["runs"] == 2, body
    # The same replay again (a client retrying it): the job is live now, not dead.
    status, body = replay(client, job_id)
    assert status == 409 and body["error"]["code"] == "invalid_state", body
    assert "ready" in body["error"]["message"], body

    # The new run succeeds; the default retention keeps the row: a replay of a succeeded job is
    # refused, and the job never runs again.
    jobs = client.lease(["rp"], max_jobs=10)
    mine = [j for j in jobs if j["id"] == job_id]
    assert len(mine) == 1, jobs
    client.ack(mine[0])
    status, body = replay(client, job_id)
    assert status == 409 and body["error"]["code"] == "invalid_state", body
    assert "succeeded" in body["error"]["message"], body
    assert client.get(job_id)[1]["state"] == "succeeded"
    assert all(j["id"] != job_id for j in client.lease(["rp"], max_jobs=10))

    # A queue that deletes succeeded jobs with their ack: the row is gone, 404.
    status, body = client.call("PUT", "/v1/queues/rp-drop?create=true",
                               {"retention": {"succeeded_ms": 0}})
    assert status == 200, body
    dropped = dead_job(client, "rp-drop")
    assert replay(client, dropped)[0] == 200
    client.ack(client.lease(["rp-drop"])[0])
    status, body = replay(client, dropped)
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert client.get(dropped)[0] == 404


def test_a_late_replay_never_turns_a_succeeded_job_back(client):
    status, _ = client.call("PUT", "/v1/queues/keep?create=true", {"retention": {"succeeded_ms": 3600000}})
    assert status == 200
    job_id = dead_job(client, "keep")
    assert replay(client, job_id)[0] == 200
    [job] = client.lease(["keep"])
    client.ack(job)
    status, body = replay(client, job_id)
    assert status == 409 and "succeeded" in body["error"]["message"], body
    _, view = client.get(job_id)
    assert view["state"] == "succeeded" and view["runs"] == 2, view
    assert client.lease(["keep"]) == []


def test_a_retried_bulk_replay_replays_nothing_twice(client):
    ids = [dead_job(client, "bulkr") for _ in range(3)]
    status, body = client.call("POST", "/v1/dead:replay", {"queue": "bulkr"})
    assert status == 200 and body["replayed"] == 3, body
    # The client retries (it thought the first request timed out): the jobs are live now.
    status, body = client.call("POST", "/v1/dead:replay", {"ids": ids})
    assert status == 200 and body["replayed"] == 0, body
    for job in client.lease(["bulkr"], max_jobs=10):
        client.ack(job)
    status, body = client.call("POST", "/v1/dead:replay", {"queue": "bulkr"})
    assert status == 200 and body["replayed"] == 0, body
    status, body = client.call("POST", "/v1/dead:replay", {"ids": ids})
    assert status == 200 and body["replayed"] == 0, body
    assert client.lease(["bulkr"], max_jobs=10) == []


def test_replays_during_drain_are_refused(server, client):
    job_id = dead_job(client, "drainr")
    client.enqueue(queue="held", kind="k")
    [held] = client.lease(["held"])  # keeps the server draining until it is acked
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: client.call("GET", "/readyz")[0] == 503, 10, "drain")
    status, body = client.call("GET", "/readyz")
    assert status == 503 and body["status"] == "not_ready", body
    assert body["checks"]["accepting"].startswith("draining"), body
    assert body["checks"]["store_writable"] == "ok" and body["checks"]["core_alive"] == "ok"
    assert body["error"]["code"] == "unavailable" and "accepting" in body["error"]["message"]
    assert client.call("GET", "/livez")[0] == 200, "a draining server is alive"
    status, body = replay(client, job_id)
    assert status == 503 and body["error"]["code"] == "unavailable", body
    status, body = client.call("POST", "/v1/dead:replay", {"ids": [job_id]})
    assert status == 503 and body["error"]["code"] == "unavailable", body
    client.ack(held)
    client.close()
    assert server.proc.wait(timeout=30) == 0
    server.start()
    c = server.client()
    _, view = c.get(job_id)
    assert view["state"] == "dead" and view["runs"] == 1, view
    c.close()


def test_cancel_answers_by_the_jobs_state_now(client):
    job_id = client.enqueue(queue="cc", kind="k")["id"]
    status, body = client.call("POST", f"/v1/jobs/{job_id}:cancel")
    assert status == 200 and body["state"] == "cancelled", body
    # Again, once the job has left the server's memory (a client retrying its cancel): the same
    # answer, nothing changed.
    wait_until(lambda: client.call("GET", "/v1/jobs?queue=cc&state=cancelled")[1]["items"], 10,
               "the cancelled job in the store")
    for _ in range(2):
        status, again = client.call("POST", f"/v1/jobs/{job_id}:cancel")
        assert status == 200 and again["state"] == "cancelled", again
        assert again["updated_at"] == body["updated_at"], (again, body)
    dead = dead_job(client, "cc")
    status, body = client.call("POST", f"/v1/jobs/{dead}:cancel")
    assert status == 409 and body["error"]["code"] == "invalid_state", body
    status, body = client.call("POST", "/v1/jobs/999999:cancel")
    assert status == 404 and body["error"]["code"] == "not_found", body


def test_ack_fail_heartbeat_of_an_unknown_id_is_404_of_a_finished_job_409(client):
    token = "0123456789abcdef"
    for verb, body in (("ack", {"token": token}), ("heartbeat", {"token": token}),
                       ("fail", {"token": token, "error": {"message": "x"}})):
        status, resp = client.call("POST", f"/v1/jobs/999999:{verb}", body)
        assert status == 404 and resp["error"]["code"] == "not_found", (verb, resp)
    client.enqueue(queue="fin", kind="k")
    [job] = client.lease(["fin"])
    client.ack(job)  # deleted with its ack (no retention)
    for verb, body in (("ack", {"token": job["lease"]["token"]}),
                       ("heartbeat", {"token": job["lease"]["token"]}),
                       ("fail", {"token": job["lease"]["token"], "error": {"message": "x"}})):
        status, resp = client.call("POST", f"/v1/jobs/{job['id']}:{verb}", body)
        assert status == 409 and resp["error"]["code"] == "stale_lease", (verb, resp)


def _long_poll_then_vanish(port, queue):
    """Sends a long-poll lease request for `queue` and returns the socket, to be reset."""
    s = socket.create_connection(("127.0.0.1", port))
    body = ('{"queues":["%s"],"max":1,"wait_ms":30000}' % queue).encode()
    s.sendall(b"POST /v1/leases HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def test_a_cancel_accepted_before_a_lease_is_handed_back_ends_cancelled(server, client):
    # A job goes to a long-poll whose worker is gone; a cancel lands while that lease is out
    # (the job is active: the cancel is a request); the lease reply cannot be written and the
    # lease is handed back. The job must end cancelled, not ready (where it could run and
    # succeed after its cancel was answered 2xx). The cancel must land between the lease and
    # the hand-back, which a client cannot force; each try that did not interleave so is
    # repeated with a new queue.
    other = server.client()
    try:
        for attempt in range(20):
            queue = f"hand{attempt}"
            assert client.call("POST", f"/v1/queues/{queue}:pause?create=true")[0] == 200
            job_id = client.enqueue(queue=queue, kind="k", lease_ms=60000)["id"]
            sock = _long_poll_then_vanish(server.port, queue)
            wait_until(lambda: client.queue(queue)["waiting_workers"] == 1, 10, "the long poll")
            # Reset, not a polite close: the server's write of the lease reply fails.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
            released = metric(client.call("GET", "/metrics")[1], RELEASED)
            # Resume (the waiter takes the job) and cancel at nearly the same moment.
            resumed = {}
            t = threading.Thread(target=lambda: resumed.setdefault(
                "r", other.call("POST", f"/v1/queues/{queue}:resume")))
            t.start()
            time.sleep(0.002)
            status, view = client.call("POST", f"/v1/jobs/{job_id}:cancel")
            t.join(30)
            assert status == 200, view
            assert resumed["r"][0] == 200, resumed
            if view["state"] != "active":
                continue  # cancelled while still ready: not the case under test
            assert view["cancel_requested"] is True, view
            try:
                wait_until(lambda: metric(client.call("GET", "/metrics")[1], RELEASED) > released,
                           5, "the lease hand-back")
            except AssertionError:
                continue  # the reply reached the kernel after all: no hand-back this time
            final = wait_until(lambda: (lambda v: v if v["state"] != "active" else None)(
                client.get(job_id)[1]), 10, "the job to leave active")
            assert final["state"] == "cancelled", final
            assert final["attempts"] == 0, final
            assert client.lease([queue], max_jobs=5) == [], "a cancelled job was dispatched"
            print(f"interleaved on try {attempt + 1}")
            return
        # The interleaving depends on the machine's timing (persisted leases answer after their
        # commit, which moves the window). The rule itself is proved deterministically by
        # BrokerRaceTest and SchedulerTest (docs/guarantees.md §8); this black-box check only
        # adds evidence when the timing allows, so it must not fail for want of a race.
        pytest.skip("no try put the cancel between the lease and its hand-back")
    finally:
        other.close()


def test_concurrent_bulk_replays_replay_each_job_once(server, client):
    # Two clients replay the same queue's dead letters at once (or one client retried a slow
    # request): together they replay every job exactly once.
    n = 600
    for i in range(0, n, 200):
        status, body = client.call("POST", "/v1/jobs:batch",
                                   {"jobs": [{"queue": "twice", "kind": "k"}] * 200})
        assert status == 200, body
    left = n
    while left:
        jobs = client.lease(["twice"], max_jobs=200)
        fails = [{"id": j["id"], "token": j["lease"]["token"],
                  "error": {"message": "x", "retryable": False}} for j in jobs]
        assert client.call("POST", "/v1/acks:batch", {"fails": fails})[0] == 200
        left -= len(jobs)
    counts = []

    def bulk():
        c = server.client()
        status, body = c.call("POST", "/v1/dead:replay", {"queue": "twice", "limit": n})
        c.close()
        counts.append((status, body))

    threads = [threading.Thread(target=bulk) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(status == 200 for status, _ in counts), counts
    assert sum(body["replayed"] for _, body in counts) == n, counts
    leased = []
    while True:
        got = client.lease(["twice"], max_jobs=1000)
        if not got:
            break
        leased += got
    assert sorted(j["id"] for j in leased) == sorted(set(j["id"] for j in leased))
    assert len(leased) == n
    assert all(j["attempt"] == 1 for j in leased)
