"""API behaviour of the real server, end to end over HTTP (docs/api.md)."""

import json
import threading
import time

import pytest
from ymtest import wait_until


def counts(client, queue):
    return client.queue(queue)["counts"]


def test_enqueue_lease_ack_round_trip(client):
    created = client.enqueue(queue="emails", kind="send", payload={"to": "a@example.com"},
                             priority=3, tags=["welcome"])
    assert created["state"] == "ready"
    jobs = client.lease(["emails"], max_jobs=10)
    assert [j["id"] for j in jobs] == [created["id"]]
    job = jobs[0]
    assert job["payload"] == {"to": "a@example.com"}
    assert job["kind"] == "send" and job["attempt"] == 1 and job["tags"] == ["welcome"]
    assert len(job["lease"]["token"]) == 16
    status, view = client.get(job["id"])
    assert status == 200 and view["state"] == "active" and view["lease"]["worker_id"] == "test"
    body = client.ack(job)
    assert body["state"] == "succeeded"
    assert counts(client, "emails")["active"] == 0
    # The default retention keeps a succeeded job (a day): it is readable after its ack.
    status, view = client.get(job["id"])
    assert status == 200 and view["state"] == "succeeded", view
    assert view["finished_at"] is not None, view


def test_batch_enqueue_reports_each_item(client):
    status, body = client.call("POST", "/v1/jobs:batch", {"jobs": [
        {"queue": "b", "kind": "k", "payload": 1},
        {"queue": "bad name", "kind": "k"},
        {"queue": "b", "kind": "k", "payload": 2},
    ]})
    assert status == 200
    results = body["results"]
    assert "id" in results[0] and "id" in results[2]
    assert results[1]["error"]["code"] == "validation_failed"
    assert counts(client, "b")["ready"] == 2


def test_priority_then_fifo(client):
    ids = [client.enqueue(queue="p", kind="k", priority=pr)["id"] for pr in (0, 5, 0, 5)]
    got = [j["id"] for j in client.lease(["p"], max_jobs=4)]
    assert got == [ids[1], ids[3], ids[0], ids[2]]


def test_delayed_job_waits(client):
    job = client.enqueue(queue="d", kind="k", delay_ms=60_000)
    assert job["state"] == "scheduled"
    assert client.lease(["d"]) == []
    _, view = client.get(job["id"])
    assert view["blocked_reason"] == "scheduled"


def test_long_poll_returns_when_job_arrives(server, client):
    def later():
        # Once the long poll waits (the queue exists, and says so, only from then on).
        c = server.client()
        wait_until(lambda: c.call("GET", "/v1/queues/lp")[1].get("waiting_workers") == 1, 30,
                   "the long poll to wait")
        c.enqueue(queue="lp", kind="k")
        c.close()

    t = threading.Thread(target=later)
    start = time.monotonic()
    t.start()
    jobs = client.lease(["lp"], wait_ms=20_000)
    elapsed = time.monotonic() - start
    t.join()
    assert len(jobs) == 1
    assert elapsed < 10, "the long poll should return on arrival, not at its deadline"


def test_long_poll_times_out_empty(client):
    start = time.monotonic()
    assert client.lease(["nothing-here"], wait_ms=300) == []
    assert time.monotonic() - start >= 0.25


def test_cancel_ready_and_active(client):
    ready = client.enqueue(queue="c", kind="k")
    status, view = client.call("POST", f"/v1/jobs/{ready['id']}:cancel")
    assert status == 200 and view["state"] == "cancelled"
    assert client.lease(["c"]) == []

    active_id = client.enqueue(queue="c", kind="k")["id"]
    job = client.lease(["c"])[0]
    assert job["id"] == active_id
    status, view = client.call("POST", f"/v1/jobs/{active_id}:cancel")
    assert status == 200 and view["state"] == "active" and view["cancel_requested"] is True
    status, hb = client.call("POST", f"/v1/jobs/{active_id}:heartbeat",
                             {"token": job["lease"]["token"]})
    assert status == 200 and hb["cancel_requested"] is True
    status, body = client.call("POST", f"/v1/jobs/{active_id}:fail", {
        "token": job["lease"]["token"],
        "error": {"type": "cancelled", "message": "stopped", "retryable": True}})
    assert status == 200 and body["state"] == "cancelled"


def test_fail_non_retryable_goes_dead_and_replays(client):
    jid = client.enqueue(queue="f", kind="k", max_attempts=5)["id"]
    job = client.lease(["f"])[0]
    status, body = client.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"],
        "error": {"type": "ValueError", "message": "bad input", "retryable": False}})
    assert status == 200 and body["state"] == "dead"
    _, view = client.get(jid)
    assert view["dead_reason"] == "non_retryable"
    assert view["last_error"]["message"] == "bad input"
    status, dead = client.call("GET", "/v1/dead?queue=f")
    assert status == 200 and [d["id"] for d in dead["items"]] == [jid]

    status, view = client.call("POST", f"/v1/jobs/{jid}:replay")
    assert status == 200 and view["state"] == "ready" and view["attempts"] == 0
    assert view["runs"] == 2 and view["errors"][0]["message"] == "bad input"
    job = client.lease(["f"])[0]
    assert job["id"] == jid and job["attempt"] == 1


def test_bulk_dead_replay(client):
    ids = []
    for _ in range(3):
        ids.append(client.enqueue(queue="bulk", kind="k", max_attempts=1)["id"])
    for job in client.lease(["bulk"], max_jobs=3):
        client.call("POST", f"/v1/jobs/{job['id']}:fail", {
            "token": job["lease"]["token"], "error": {"type": "x", "message": "y"}})
    assert counts(client, "bulk")["dead"] == 3
    status, body = client.call("POST", "/v1/dead:replay", {"queue": "bulk"})
    assert status == 200 and body["replayed"] == 3
    assert sorted(j["id"] for j in client.lease(["bulk"], max_jobs=10)) == sorted(ids)


def test_retryable_failure_is_rescheduled(client):
    jid = client.enqueue(queue="r", kind="k", backoff={"initial_ms": 60000, "max_ms": 60000,
                                                       "multiplier": 1.0})["id"]
    job = client.lease(["r"])[0]
    status, body = client.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"], "error": {"type": "Timeout", "message": "slow"},
        "retry_in_ms": 50000})
    assert status == 200 and body["state"] == "scheduled"
    _, view = client.get(jid)
    assert view["blocked_reason"] == "retry_backoff"
    assert 0 < view["run_at"] - view["updated_at"] <= 50000


def test_pause_and_resume(client):
    client.enqueue(queue="pz", kind="k")
    status, q = client.call("POST", "/v1/queues/pz:pause")
    assert status == 200 and q["paused"] is True
    assert client.lease(["pz"]) == []
    status, q = client.call("POST", "/v1/queues/pz:resume")
    assert status == 200 and q["paused"] is False
    assert len(client.lease(["pz"])) == 1


def test_put_queue_config_applies_to_new_jobs(client):
    status, q = client.call("PUT", "/v1/queues/cfg?create=true", {"max_attempts": 2, "lease_ms": 5000})
    assert status == 200 and q["max_attempts"] == 2 and q["lease_ms"] == 5000
    jid = client.enqueue(queue="cfg", kind="k")["id"]
    _, view = client.get(jid)
    assert view["max_attempts"] == 2 and view["lease_ms"] == 5000


def test_list_pagination_covers_every_job(client):
    ids = {client.enqueue(queue="pg", kind="k")["id"] for _ in range(25)}
    seen = []
    cursor = None
    for _ in range(20):
        path = "/v1/jobs?queue=pg&limit=7" + (f"&cursor={cursor}" if cursor else "")
        status, page = client.call("GET", path)
        assert status == 200
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen, key=int) == sorted(ids, key=int)
    assert len(seen) == len(set(seen))


def test_idempotency_key_coalesces(client):
    a = client.call("POST", "/v1/jobs", {"queue": "i", "kind": "k", "idempotency_key": "order-1"})
    b = client.call("POST", "/v1/jobs", {"queue": "i", "kind": "k", "idempotency_key": "order-1"})
    assert a[0] == 201 and b[0] == 200
    assert b[1]["id"] == a[1]["id"] and b[1]["duplicate"] is True
    assert counts(client, "i")["ready"] == 1


def test_health_info_metrics(server, client):
    assert client.call("GET", "/healthz")[0] == 200
    status, body = client.call("GET", "/livez")
    assert status == 200 and body == {"status": "ok", "checks": {"core_alive": "ok"}}, body
    status, body = client.call("GET", "/readyz")
    assert status == 200, body
    assert body == {"status": "ready", "checks": {"recovered": "ok", "store_writable": "ok",
                                                 "accepting": "ok", "core_alive": "ok"}}, body
    status, info = client.call("GET", "/v1/info")
    assert status == 200 and "version" in info
    client.enqueue(queue="m", kind="k")
    status, _, body = client.raw("GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert "ym_jobs_enqueued_total 1" in text
    assert "ym_store_commits_total" in text
    # Histograms: the enqueue above is one POST /v1/jobs answered 2xx, its commit one or more.
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    route = 'route="POST /v1/jobs",code="2xx"'
    assert series[f"ym_http_request_duration_seconds_count{{{route}}}"] == 1, text
    assert series[f'ym_http_request_duration_seconds_bucket{{{route},le="+Inf"}}'] == 1
    assert 0 < series[f"ym_http_request_duration_seconds_sum{{{route}}}"] < 60
    assert "# TYPE ym_http_request_duration_seconds histogram" in text
    commits = series["ym_store_commit_duration_seconds_count"]
    assert commits >= 1 and series['ym_store_commit_duration_seconds_bucket{le="+Inf"}'] == commits
    assert series['ym_store_commit_batch_mutations_bucket{le="+Inf"}'] >= 1
    # The process, under the standard names.
    assert 1e6 < series["process_resident_memory_bytes"] < 1e11
    assert 3 <= series["process_open_fds"] <= series["process_max_fds"]
    assert abs(series["process_start_time_seconds"] - info["started_at"] / 1000) < 1


def test_keep_alive_reuses_one_connection(client):
    client.enqueue(queue="ka", kind="k")
    first = client.conn
    for _ in range(5):
        client.call("GET", "/v1/queues/ka")
    assert client.conn is first


# --- Bad input: a clear error and nothing changes ------------------------------------------

BAD_ENQUEUES = [
    (b'{"queue": "q", "kind": ', "application/json", 400, "invalid_json"),
    (b'[1,2]', "application/json", 422, "validation_failed"),
    (json.dumps({"kind": "k"}).encode(), "application/json", 422, "validation_failed"),
    (json.dumps({"queue": "q", "kind": 5}).encode(), "application/json", 422, "validation_failed"),
    (json.dumps({"queue": "q/x", "kind": "k"}).encode(), "application/json", 422,
     "validation_failed"),
    (json.dumps({"queue": "q", "kind": "k", "priority": "high"}).encode(), "application/json",
     422, "validation_failed"),
    (json.dumps({"queue": "q", "kind": "k", "delay_ms": -1}).encode(), "application/json", 422,
     "validation_failed"),
    (json.dumps({"queue": "q", "kind": "k", "max_attempts": 0}).encode(), "application/json",
     422, "validation_failed"),
    (json.dumps({"queue": "q", "kind": "k", "surprise": 1}).encode(), "application/json", 422,
     "validation_failed"),
    (json.dumps({"queue": "q", "kind": "k"}).encode(), "text/plain", 415,
     "unsupported_media_type"),
]


@pytest.mark.parametrize("body,ctype,status,code", BAD_ENQUEUES)
def test_bad_enqueue_is_refused_and_changes_nothing(client, body, ctype, status, code):
    client.enqueue(queue="q", kind="k")  # make the queue exist
    before = counts(client, "q")
    got_status, _, payload = client.raw("POST", "/v1/jobs", body, {"Content-Type": ctype})
    err = json.loads(payload)["error"]
    assert got_status == status and err["code"] == code, payload
    assert err["message"]
    assert counts(client, "q") == before


def test_oversized_payload_is_413(make_server):
    srv = make_server("--max-payload-bytes", "1000")
    c = srv.client()
    status, body = c.call("POST", "/v1/jobs", {"queue": "big", "kind": "k", "payload": "x" * 2000})
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    status, _ = c.call("GET", "/v1/queues/big")
    assert status == 404  # nothing was created, not even the queue
    c.close()


def test_oversized_body_is_413(make_server):
    srv = make_server("--max-request-bytes", "4096", "--max-payload-bytes", "1024")
    c = srv.client()
    status, _, payload = c.raw("POST", "/v1/jobs:batch", b"{" + b" " * 10000 + b"}",
                               {"Content-Type": "application/json"})
    assert status == 413 and json.loads(payload)["error"]["code"] == "payload_too_large"
    c.close()


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/v2/jobs", 404, "not_found"),
    ("GET", "/v1/jobs/abc", 400, "invalid_request"),
    ("DELETE", "/v1/jobs", 405, "method_not_allowed"),
    ("GET", "/v1/jobs/999999", 404, "not_found"),
    ("GET", "/v1/jobs?state=bogus", 400, "invalid_request"),
    ("GET", "/v1/jobs?limit=5000", 400, "invalid_request"),
    ("GET", "/v1/jobs?cursor=!!", 400, "invalid_request"),
])
def test_bad_paths(client, method, path, status, code):
    got, body = client.call(method, path)
    assert got == status and body["error"]["code"] == code, body


def test_stale_token_is_409(client):
    jid = client.enqueue(queue="st", kind="k")["id"]
    job = client.lease(["st"])[0]
    for verb, extra in (("ack", {}), ("heartbeat", {}),
                        ("fail", {"error": {"type": "x", "message": "y"}})):
        body = {"token": "0123456789abcdef"}
        body.update(extra)
        status, resp = client.call("POST", f"/v1/jobs/{jid}:{verb}", body)
        assert status == 409 and resp["error"]["code"] == "stale_lease", (verb, resp)
    _, view = client.get(jid)
    assert view["state"] == "active" and view["attempts"] == 1
    client.ack(job)


def test_terminal_state_never_changes(client):
    jid = client.enqueue(queue="t", kind="k", max_attempts=1)["id"]
    job = client.lease(["t"])[0]
    client.call("POST", f"/v1/jobs/{jid}:fail", {"token": job["lease"]["token"],
                                                  "error": {"type": "x", "message": "y"}})
    status, body = client.call("POST", f"/v1/jobs/{jid}:cancel")
    assert status == 409 and body["error"]["code"] == "invalid_state"
    client.ack(job, expect=409)
    _, view = client.get(jid)
    assert view["state"] == "dead"


def test_dead_replay_by_ids_skips_jobs_that_are_not_dead(client):
    dead_id = client.enqueue(queue="ids", kind="k", max_attempts=1)["id"]
    job = client.lease(["ids"])[0]
    status, body = client.call("POST", f"/v1/jobs/{dead_id}:fail", {
        "token": job["lease"]["token"], "error": {"type": "x", "message": "y"}})
    assert status == 200 and body["state"] == "dead"
    cancelled_id = client.enqueue(queue="ids", kind="k")["id"]
    client.call("POST", f"/v1/jobs/{cancelled_id}:cancel")
    status, body = client.call("POST", "/v1/dead:replay",
                               {"ids": [dead_id, cancelled_id, "999999"]})
    assert status == 200 and body["replayed"] == 1
    _, view = client.get(cancelled_id)
    assert view["state"] == "cancelled"
    _, view = client.get(dead_id)
    assert view["state"] == "ready"


def test_fail_reports_the_resulting_state(client):
    jid = client.enqueue(queue="fs", kind="k", max_attempts=3)["id"]
    job = client.lease(["fs"])[0]
    status, body = client.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"], "error": {"type": "x", "message": "y"},
        "retry_in_ms": 60000})
    assert status == 200 and body == {"id": jid, "state": "scheduled"}


# ---- issue 7: payloads exactly, strict JSON, opaque cursors ----

EXACT_PAYLOAD = (b'{"big":12345678901234567890123,"neg":-9223372036854775809,"e":1E2,'
                 b'"fuzz":799999999999999999999999999999999999999990,"huge":1e400,'
                 b'"s":"\\u00e9\\ud83d\\ude00\\/","raw":"\xc3\xa9","l":[1.50,-0.0,{}]}')


def test_payload_round_trip_is_exact(make_server):
    """enqueue -> lease -> GET (and ack result -> GET) return the payload's bytes as sent, minus
    insignificant whitespace. Regression: numbers went through doubles (1E2 came back 100.0,
    1e400 was refused)."""
    srv = make_server("--retention-succeeded-ms", "600000")
    c = srv.client()
    spaced = EXACT_PAYLOAD.replace(b'"big":', b'\n "big" :\t').replace(b",{}", b" , { } ")
    body = b'{"queue":"exact","kind":"k","payload":' + spaced + b"}"
    status, _, created = c.raw("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
    assert status == 201, created
    jid = json.loads(created)["id"]
    status, _, leased = c.raw("POST", "/v1/leases", b'{"queues":["exact"]}',
                              {"Content-Type": "application/json"})
    assert status == 200 and b'"payload":' + EXACT_PAYLOAD + b',"attempt"' in leased, leased
    token = json.loads(leased)["jobs"][0]["lease"]["token"]
    status, _, view = c.raw("GET", f"/v1/jobs/{jid}")
    assert status == 200 and b'"payload":' + EXACT_PAYLOAD + b',' in view, view
    ack = b'{"token":"' + token.encode() + b'","result":' + EXACT_PAYLOAD + b"}"
    status, _, _ = c.raw("POST", f"/v1/jobs/{jid}:ack", ack, {"Content-Type": "application/json"})
    assert status == 200
    status, _, view = c.raw("GET", f"/v1/jobs/{jid}")
    assert b'"result":' + EXACT_PAYLOAD + b',' in view, view
    status, _, page = c.raw("GET", "/v1/jobs?queue=exact&state=succeeded")
    assert b'"payload":' + EXACT_PAYLOAD + b',' in page, page
    # It survives a restart: the store keeps the text.
    srv.restart()
    c = srv.client()
    status, _, view = c.raw("GET", f"/v1/jobs/{jid}")
    assert status == 200 and b'"payload":' + EXACT_PAYLOAD + b',' in view, view
    c.close()


@pytest.mark.parametrize("body", [
    b'{"queue":"u","kind":"k","payload":"\\udc00"}',          # lone low surrogate
    b'{"queue":"u","kind":"k","payload":{"\\udc00":1}}',      # in a member name
    b'{"queue":"u","kind":"k","tags":["a\\udfffb"]}',         # in a field
    b'{"queue":"u","kind":"k","payload":"\\ud800"}',          # lone high surrogate
    b'{"queue":"u","kind":"k","payload":"\xed\xb0\x80"}',     # a surrogate as UTF-8 bytes
    b'{"queue":"u","kind":"k"}\x00{"queue":"u","kind":"x"}',  # bytes after a NUL
    b'{"queue":"u","kind":"k"}\x00',
    b'{"queue":"u","kind":"k"} {}',
])
def test_invalid_unicode_and_trailing_bytes_are_400(client, body):
    status, _, payload = client.raw("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
    assert status == 400 and json.loads(payload)["error"]["code"] == "invalid_json", payload
    status, _ = client.call("GET", "/v1/queues/u")
    assert status == 404  # nothing was created


def test_cursors_are_opaque_and_checked(client):
    for _ in range(5):
        client.enqueue(queue="cur", kind="k")
    status, page = client.call("GET", "/v1/jobs?queue=cur&limit=2")
    assert status == 200 and len(page["items"]) == 2
    cursor = page["next_cursor"]
    assert cursor and not cursor.isdigit()
    status, nxt = client.call("GET", f"/v1/jobs?queue=cur&limit=2&cursor={cursor}")
    assert status == 200 and nxt["items"][0]["id"] != page["items"][0]["id"]
    # Regression: a bare id was taken as the cursor, and the largest one wrapped to the start.
    for bad in ["18446744073709551615", "1", cursor[:-1], cursor + "A", "x" * 600]:
        status, body = client.call("GET", f"/v1/jobs?queue=cur&limit=2&cursor={bad}")
        assert status == 400 and body["error"]["code"] == "invalid_request", (bad, body)
    # A cursor belongs to its listing and filters.
    for other in ["/v1/jobs?queue=other", "/v1/jobs?queue=cur&state=ready", "/v1/dead?queue=cur"]:
        status, body = client.call("GET", f"{other}&cursor={cursor}")
        assert status == 400, (other, body)
