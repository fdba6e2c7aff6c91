"""Documented behaviours that had no black-box test: each checks a sentence of docs/api.md or
docs/operations.md against the real binary."""

import pytest


def dead_job(client, queue):
    jid = client.enqueue(queue=queue, kind="k")["id"]
    job = client.lease([queue])[0]
    status, body = client.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"],
        "error": {"type": "E", "message": "no", "retryable": False}})
    assert status == 200 and body["state"] == "dead", (status, body)
    return jid


# --- --durability reaches the store (docs/operations.md, "durability") ------------------------

def test_info_reports_full_durability_by_default(client):
    status, info = client.call("GET", "/v1/info")
    assert status == 200
    assert info["store"] == {"journal_mode": "wal", "synchronous": "full"}


def test_durability_relaxed_sets_synchronous_normal(make_server):
    c = make_server("--durability", "relaxed").client()
    status, info = c.call("GET", "/v1/info")
    assert status == 200
    assert info["store"] == {"journal_mode": "wal", "synchronous": "normal"}
    # Still a working broker: a write is answered and kept across a process crash.
    jid = c.enqueue(queue="r", kind="k")["id"]
    assert c.get(jid)[1]["state"] == "ready"
    c.close()


def test_durability_from_the_environment_and_bad_values(make_server):
    c = make_server(env={"YM_DURABILITY": "relaxed"}).client()
    assert c.call("GET", "/v1/info")[1]["store"]["synchronous"] == "normal"
    c.close()
    with pytest.raises(RuntimeError, match="durability"):
        make_server("--durability", "fast")


# --- POST /v1/dead:replay limits (docs/api.md) -------------------------------------------------

@pytest.mark.parametrize("body, fragment", [
    ({"ids": []}, "ids"),
    ({"ids": [str(i) for i in range(1, 1002)]}, "ids"),
    ({"limit": 0}, "limit"),
    ({"limit": 100001}, "limit"),
    ({"ids": ["1"], "queue": "dr"}, "ids"),
    ({"ids": ["1"], "limit": 5}, "ids"),
    ({"ids": ["not-a-number"]}, "ids"),
    ({"queue": "bad name!"}, "queue"),
    ({"unknown": 1}, "unknown"),
])
def test_dead_replay_bad_bodies_are_refused_and_replay_nothing(client, body, fragment):
    jid = dead_job(client, "dr")
    status, reply = client.call("POST", "/v1/dead:replay", body)
    assert status in (400, 422), (status, reply)
    assert fragment in reply["error"]["message"], reply
    assert client.get(jid)[1]["state"] == "dead"


def test_dead_replay_limit_bounds_how_many_are_replayed(client):
    ids = [dead_job(client, "dl2") for _ in range(3)]
    status, reply = client.call("POST", "/v1/dead:replay", {"queue": "dl2", "limit": 2})
    assert status == 200 and reply == {"replayed": 2}
    states = sorted(client.get(i)[1]["state"] for i in ids)
    assert states == ["dead", "ready", "ready"]
    # The filter only takes dead jobs of that queue: another queue's dead job stays dead.
    other = dead_job(client, "dl3")
    status, reply = client.call("POST", "/v1/dead:replay", {"queue": "dl2"})
    assert status == 200 and reply == {"replayed": 1}
    assert client.get(other)[1]["state"] == "dead"


def test_dead_replay_without_a_queue_takes_every_queue(client):
    a, b = dead_job(client, "all1"), dead_job(client, "all2")
    status, reply = client.call("POST", "/v1/dead:replay", {})
    assert status == 200 and reply == {"replayed": 2}
    assert client.get(a)[1]["state"] == "ready" and client.get(b)[1]["state"] == "ready"


# --- PUT /v1/queues/{q}: only the fields present change (docs/api.md) --------------------------

def test_put_queue_changes_only_the_fields_present(client):
    status, q = client.call("PUT", "/v1/queues/pq?create=true", {
        "max_attempts": 5, "lease_ms": 4000,
        "backoff": {"initial_ms": 500, "max_ms": 60000, "multiplier": 3},
        "retention": {"succeeded_ms": 3600000, "dead_ms": 7000, "cancelled_ms": 8000}})
    assert status == 200, q
    status, q = client.call("PUT", "/v1/queues/pq", {"lease_ms": 9000})
    assert status == 200, q
    assert q["lease_ms"] == 9000
    assert q["max_attempts"] == 5
    assert q["backoff"] == {"initial_ms": 500, "max_ms": 60000, "multiplier": 3}
    assert q["retention"] == {"succeeded_ms": 3600000, "dead_ms": 7000, "cancelled_ms": 8000,
                              "max_succeeded": 1000000, "max_dead": 100000,
                              "max_cancelled": 100000}
    assert q["paused"] is False
    # backoff and retention are replaced as whole objects; a missing retention member takes the
    # built-in default (24 h for succeeded, 7 days for dead and cancelled, the default caps).
    status, q = client.call("PUT", "/v1/queues/pq", {"retention": {"dead_ms": 1000,
                                                                   "max_dead": 5}})
    assert status == 200, q
    assert q["retention"] == {"succeeded_ms": 86400000, "dead_ms": 1000,
                              "cancelled_ms": 604800000, "max_succeeded": 1000000,
                              "max_dead": 5, "max_cancelled": 100000}
    assert q["lease_ms"] == 9000 and q["max_attempts"] == 5
    # Pause keeps the rest; what GET shows is what PUT answered.
    status, q = client.call("POST", "/v1/queues/pq:pause")
    assert status == 200 and q["paused"] is True and q["max_attempts"] == 5
    got = client.queue("pq")
    for key in ("paused", "max_attempts", "lease_ms", "backoff", "retention"):
        assert got[key] == q[key], key


def test_put_queue_bad_field_changes_nothing(client):
    assert client.call("PUT", "/v1/queues/pb?create=true", {"max_attempts": 4})[0] == 200
    status, body = client.call("PUT", "/v1/queues/pb", {"max_attempts": 3, "lease_ms": 1})
    assert status in (400, 422), body
    assert client.queue("pb")["max_attempts"] == 4


def test_queue_config_survives_a_restart(server, client):
    assert client.call("PUT", "/v1/queues/pr?create=true", {"max_attempts": 6, "lease_ms": 7000})[0] == 200
    assert client.call("POST", "/v1/queues/pr:pause")[0] == 200
    server.kill()
    server.start()
    c = server.client()
    q = c.queue("pr")
    assert (q["max_attempts"], q["lease_ms"], q["paused"]) == (6, 7000, True)
    c.close()


# --- Guarantee 10: bad input to the worker endpoints changes nothing ----------------------------

BAD_WORKER_CALLS = [
    ("POST", "/v1/leases", {"queues": [], "max": 1}),
    ("POST", "/v1/leases", {"queues": ["bi"], "max": 0}),
    ("POST", "/v1/leases", {"queues": ["bi"], "max": 1001}),
    ("POST", "/v1/leases", {"queues": ["bi"], "wait_ms": -1}),
    ("POST", "/v1/leases", {"queues": ["bi"], "lease_ms": 1}),
    ("POST", "/v1/leases", {"queues": ["bad name!"]}),
    ("POST", "/v1/leases", {"queues": ["bi"], "extra": True}),
    ("POST", "/v1/jobs/{id}:ack", {"token": "not-hex"}),
    ("POST", "/v1/jobs/{id}:ack", {}),
    ("POST", "/v1/jobs/{id}:ack", {"token": "{token}", "result": {"n": 1}, "extra": 1}),
    ("POST", "/v1/jobs/{id}:fail", {"token": "{token}"}),
    ("POST", "/v1/jobs/{id}:fail", {"token": "{token}", "error": {"message": 5}}),
    ("POST", "/v1/jobs/{id}:fail", {"token": "{token}", "error": {}, "retry_in_ms": -5}),
    ("POST", "/v1/jobs/{id}:heartbeat", {"token": "{token}", "extend_ms": -1}),
    ("POST", "/v1/jobs/{id}:heartbeat", {"token": "{token}", "extend_ms": "soon"}),
    ("POST", "/v1/acks:batch", {"acks": [{"id": "{id}", "token": "{token}"}], "more": 1}),
    ("POST", "/v1/acks:batch", {"acks": [], "fails": []}),
    ("POST", "/v1/acks:batch", {"acks": "all"}),
    ("POST", "/v1/jobs/{id}:cancel", {"force": True}),
]


@pytest.mark.parametrize("method, path, body", BAD_WORKER_CALLS)
def test_bad_worker_requests_are_refused_and_change_nothing(client, method, path, body):
    jid = client.enqueue(queue="bi", kind="k")["id"]
    other = client.enqueue(queue="bi", kind="k")["id"]
    job = client.lease(["bi"])[0]
    assert job["id"] == jid
    token = job["lease"]["token"]

    def fill(v):
        if isinstance(v, str):
            return v.replace("{id}", jid).replace("{token}", token)
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    before = (client.get(jid)[1], client.get(other)[1])
    status, reply = client.call(method, fill(path), fill(body))
    assert status in (400, 413, 415, 422), (status, reply)
    assert set(reply["error"]) == {"code", "message"} and reply["error"]["message"]
    after = (client.get(jid)[1], client.get(other)[1])
    assert after == before, "a refused request changed a job"
    # The lease still works with its token, and the other job is still ready for a worker.
    client.ack(job)
    assert [j["id"] for j in client.lease(["bi"])] == [other]


def test_a_bad_item_in_acks_batch_fails_alone(client):
    ids = [client.enqueue(queue="bb", kind="k")["id"] for _ in range(2)]
    jobs = client.lease(["bb"], max_jobs=2)
    status, reply = client.call("POST", "/v1/acks:batch", {"acks": [
        {"id": jobs[0]["id"]},
        {"id": jobs[1]["id"], "token": jobs[1]["lease"]["token"]}]})
    assert status == 200, reply
    assert reply["acks"][0]["error"]["code"] == "validation_failed"
    assert reply["acks"][1] == {"ok": True}
    assert client.get(jobs[0]["id"])[1]["state"] == "active"
    assert sorted(ids) == sorted(j["id"] for j in jobs)
