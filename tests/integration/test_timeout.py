"""Execution timeout (`timeout_ms`, docs/api.md): the broker fails an attempt that runs longer
than its job's timeout with error type `timeout`, whatever the worker's heartbeats say.

Black box: the real binary, its HTTP API, a worker that holds the lease by heartbeating.
Timeouts are 1-2 s and every wait is on a condition with a generous bound."""

import json
import re
import subprocess
import time

from ymtest import binary, settled, wait_until

HOLD = 30000  # a lease far longer than the timeouts: only the timeout can end these attempts


def heartbeat(client, job, extend_ms=None):
    body = {"token": job["lease"]["token"]}
    if extend_ms is not None:
        body["extend_ms"] = extend_ms
    return client.call("POST", f"/v1/jobs/{job['id']}:heartbeat", body)


def test_the_leased_job_carries_its_timeout_and_the_lease_ends_at_the_deadline(client):
    jid = client.enqueue(queue="t", kind="k", timeout_ms=1500, lease_ms=HOLD)["id"]
    before = int(time.time() * 1000)
    [job] = client.lease(["t"])
    after = int(time.time() * 1000)
    assert job["id"] == jid and job["timeout_ms"] == 1500, job
    deadline = job["lease"]["deadline_at"]
    assert before + 1500 - 50 <= deadline <= after + 1500 + 50, (before, deadline, after)
    assert job["lease"]["expires_at"] == deadline, "the lease is capped at the deadline"
    _, view = client.get(jid)
    assert view["timeout_ms"] == 1500 and view["lease"]["deadline_at"] == deadline, view


def test_heartbeats_cannot_extend_past_the_deadline_and_the_attempt_times_out(client):
    jid = client.enqueue(queue="t", kind="k", timeout_ms=1500, lease_ms=HOLD, max_attempts=3,
                         backoff={"initial_ms": 60000, "max_ms": 60000, "multiplier": 1})["id"]
    [job] = client.lease(["t"])
    deadline = job["lease"]["deadline_at"]
    status, hb = heartbeat(client, job, extend_ms=3600000)
    assert status == 200 and hb["expires_at"] == deadline, hb
    # Keep beating as a hung handler's worker would: the attempt still ends at the deadline.
    def ended():
        s, _ = heartbeat(client, job)
        return s == 409
    wait_until(ended, 20, "the heartbeats to be refused after the timeout")
    assert int(time.time() * 1000) >= deadline - 20
    _, view = client.get(jid)
    assert view["attempts"] == 1 and view["errors"][-1]["type"] == "timeout", view
    assert "1500 ms" in view["errors"][-1]["message"]
    # Retried by the backoff (uniform up to a minute here), not at once like a lapsed lease.
    assert view["state"] in ("scheduled", "ready"), view
    if view["state"] == "scheduled":
        assert view["blocked_reason"] == "retry_backoff"
    # The late worker's ack is refused: the attempt is over.
    status, body = client.call("POST", f"/v1/jobs/{jid}:ack", {"token": job["lease"]["token"]})
    assert status == 409 and body["error"]["code"] == "stale_lease", body


def test_a_timed_out_last_attempt_is_dead_and_wakes_a_waiting_client(server, client):
    jid = client.enqueue(queue="t", kind="k", timeout_ms=1000, lease_ms=HOLD,
                         max_attempts=1)["id"]
    [job] = client.lease(["t"])
    waiter = server.client()
    t0 = time.monotonic()
    status, view = waiter.call("GET", f"/v1/jobs/{jid}?wait_ms=20000")
    waited = time.monotonic() - t0
    waiter.close()
    assert status == 200 and view["state"] == "dead", view
    assert waited < 15, f"the wait took {waited:.1f} s: it was not woken by the timeout"
    assert view["dead_reason"] == "max_attempts_exceeded"
    assert [e["type"] for e in view["errors"]] == ["timeout"]
    status, body = client.call("POST", f"/v1/jobs/{jid}:fail",
                               {"token": job["lease"]["token"],
                                "error": {"type": "late", "message": "too late"}})
    assert status == 409 and body["error"]["code"] == "stale_lease", body


def test_a_lapsed_lease_before_the_deadline_stays_a_lease_expiry(client):
    jid = client.enqueue(queue="t", kind="k", timeout_ms=60000, lease_ms=1000)["id"]
    [job] = client.lease(["t"])
    assert job["lease"]["deadline_at"] - job["lease"]["expires_at"] >= 58000
    wait_until(lambda: client.get(jid)[1]["errors"], 20, "the lease to expire")
    assert client.get(jid)[1]["errors"][-1]["type"] == "lease_expired"


def test_queue_default_server_default_and_the_jobs_own_value(make_server):
    server = make_server("--default-timeout-ms", "7000")
    client = server.client()
    try:
        assert client.enqueue(queue="d", kind="k")["id"]
        [job] = client.lease(["d"])
        assert job["timeout_ms"] == 7000, "the server's default"
        status, q = client.call("PUT", "/v1/queues/d", {"timeout_ms": 2500})
        assert status == 200 and q["timeout_ms"] == 2500, q
        assert client.queue("d")["timeout_ms"] == 2500
        queued = client.enqueue(queue="d", kind="k")["id"]
        own = client.enqueue(queue="d", kind="k", timeout_ms=1200)["id"]
        none = client.enqueue(queue="d", kind="k", timeout_ms=0)["id"]
        assert client.get(queued)[1]["timeout_ms"] == 2500
        assert client.get(own)[1]["timeout_ms"] == 1200
        assert client.get(none)[1]["timeout_ms"] is None, "0: no timeout"
        leased = {j["id"]: j for j in client.lease(["d"], max_jobs=10)}
        assert leased[none]["timeout_ms"] is None and leased[none]["lease"]["deadline_at"] is None
        assert leased[own]["timeout_ms"] == 1200
        # The setting survives a restart.
        server.restart()
        client.close()
        client = server.client()
        assert client.queue("d")["timeout_ms"] == 2500
    finally:
        client.close()


def test_a_restarted_broker_still_enforces_the_deadline_of_a_kept_lease(server, client):
    jid = client.enqueue(queue="t", kind="k", timeout_ms=2000, lease_ms=HOLD,
                         max_attempts=1)["id"]
    [job] = client.lease(["t"])
    deadline = job["lease"]["deadline_at"]
    # The lease is committed with the next group commit: wait until a GET shows it durable.
    wait_until(lambda: client.get(jid)[1]["state"] == "active", 10, "the lease")
    time.sleep(0.2)
    server.restart()
    client.close()
    client = server.client()
    _, view = client.get(jid)
    if view["state"] == "active":
        assert view["lease"]["deadline_at"] == deadline, view
        status, hb = heartbeat(client, job, extend_ms=3600000)
        assert status in (200, 409), hb
        if status == 200:
            assert hb["expires_at"] <= deadline, hb
    wait_until(lambda: settled(client.get(jid)[1], "dead"), 30, "the timeout after the restart")
    _, view = client.get(jid)
    assert view["errors"][-1]["type"] == "timeout", view
    client.close()


def test_validation_errors(client):
    for bad in (-1, 86400001, 1.5, "1000", True):
        for path, body in (("/v1/jobs", {"queue": "v", "kind": "k", "timeout_ms": bad}),
                           ("/v1/jobs:batch",
                            {"jobs": [{"queue": "v", "kind": "k", "timeout_ms": bad}]}),
                           ("/v1/queues/v?create=true", {"timeout_ms": bad})):
            method = "PUT" if path.startswith("/v1/queues") else "POST"
            status, reply = client.call(method, path, body)
            if path == "/v1/jobs:batch":
                # Per-item errors: the batch answers 200 with the item's error in its place.
                assert status == 200, reply
                reply = reply["results"][0]
                assert "error" in reply, (bad, reply)
            else:
                assert status == 422, (path, bad, status, reply)
            err = reply["error"]
            assert err["code"] == "validation_failed", reply
            assert '"timeout_ms"' in err["message"], err
            assert "0 for no timeout" in err["message"], err
    # Nothing was created or changed.
    status, page = client.call("GET", "/v1/jobs?queue=v")
    assert status == 200 and page["items"] == [], page
    assert client.call("GET", "/v1/queues/v")[0] == 404


def test_cli_enqueue_sets_the_timeout_and_refuses_a_bad_one(server, client):
    def run(*args):
        return subprocess.run([binary(), *args, "--server", server.url()], capture_output=True,
                              text=True, timeout=60)
    p = run("enqueue", "--queue", "cli", "--kind", "k", "--timeout-ms", "1500", "--json")
    assert p.returncode == 0, p.stderr
    jid = json.loads(p.stdout)["id"]
    assert client.get(jid)[1]["timeout_ms"] == 1500
    p = run("enqueue", "--queue", "cli", "--kind", "k", "--timeout-ms", "86400001")
    assert p.returncode == 2 and "--timeout-ms" in p.stderr, (p.returncode, p.stderr)


def test_jobs_batch_takes_timeout_ms_per_item(client):
    status, body = client.call("POST", "/v1/jobs:batch", {"jobs": [
        {"queue": "b", "kind": "k", "timeout_ms": 1200},
        {"queue": "b", "kind": "k"},
        {"queue": "b", "kind": "k", "timeout_ms": -5}]})
    assert status == 200, body
    first, second, bad = body["results"]
    assert client.get(first["id"])[1]["timeout_ms"] == 1200
    assert client.get(second["id"])[1]["timeout_ms"] is None
    assert bad["error"]["code"] == "validation_failed" and '"timeout_ms"' in bad["error"]["message"]


def test_cli_shows_the_timeout_of_a_job_and_a_queue(server, client):
    def run(*args):
        return subprocess.run([binary(), *args, "--server", server.url()], capture_output=True,
                              text=True, timeout=60)
    jid = client.enqueue(queue="show", kind="k", timeout_ms=90000, lease_ms=HOLD)["id"]
    plain = client.enqueue(queue="show", kind="k")["id"]
    client.lease(["show"])
    p = run("jobs", "get", jid)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^timeout:\s+1m30s$", p.stdout, re.M), p.stdout
    assert re.search(r"^lease:\s+worker test, expires .*, timeout at ", p.stdout, re.M), p.stdout
    p = run("jobs", "get", plain)
    assert "timeout" not in p.stdout, p.stdout
    assert client.call("PUT", "/v1/queues/show", {"timeout_ms": 60000})[0] == 200
    p = run("queues", "show")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^timeout:\s+1m00s$", p.stdout, re.M), p.stdout
