"""Tenant data controls with the real binary (docs/security.md, "Tenant data"): a namespace's
retention window stricter than its queue's purges that namespace's finished jobs only; the
namespace export streams every job of the namespace as redacted JSON lines, and a client that
disconnects midway leaves the server healthy; a wipe erases every row of the namespace (read
back from the SQLite file directly) and nothing of another, in audited, re-runnable requests."""

import http.client
import json
import os
import socket
import sqlite3
import subprocess

from ymtest import binary, wait_until


def enqueue_many(client, ns, n, queue="shared", payload=None):
    ids = []
    while len(ids) < n:
        take = min(1000, n - len(ids))
        jobs = [{"queue": queue, "kind": "k", "namespace": ns,
                 "payload": payload if payload is not None else {"i": len(ids) + i}}
                for i in range(take)]
        status, body = client.call("POST", "/v1/jobs:batch", {"jobs": jobs})
        assert status == 200, body
        for r in body["results"]:
            assert "id" in r, r
            ids.append(r["id"])
    return ids


def cancel(client, job_id):
    status, body = client.call("POST", f"/v1/jobs/{job_id}:cancel")
    assert status == 200 and body["state"] == "cancelled", body


def export(port, ns):
    """The export's status, headers and lines (a fresh connection, read to the end)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", f"/v1/namespaces/{ns}/export")
        resp = conn.getresponse()
        body = resp.read()  # http.client decodes the chunked body, and fails on a truncated one
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def test_namespace_retention_stricter_than_the_queue_purges_only_that_namespace(client):
    acme = enqueue_many(client, "acme", 5)
    other = enqueue_many(client, "other", 5)
    for job_id in acme + other:
        cancel(client, job_id)
    # The queue keeps cancelled jobs 7 days by default; acme keeps none (0: the next pass).
    status, ns = client.call("PUT", "/v1/namespaces/acme",
                             {"retention": {"cancelled_ms": 0, "dead_ms": 3600000}})
    assert status == 201, ns
    assert ns["retention"] == {"succeeded_ms": None, "dead_ms": 3600000, "cancelled_ms": 0}, ns

    def acme_gone():
        return all(client.get(j)[0] == 404 for j in acme)

    wait_until(acme_gone, 30, "acme's cancelled jobs purged by its namespace window")
    for job_id in other:
        status, view = client.get(job_id)
        assert status == 200 and view["state"] == "cancelled", view
    # A namespace has windows only: a count cap is refused and changes nothing.
    status, err = client.call("PUT", "/v1/namespaces/acme",
                              {"retention": {"max_dead": 10}})
    assert status == 422 and "retention.max_dead" in err["error"]["message"], err
    status, err = client.call("PUT", "/v1/namespaces/acme", {"retention": {"dead_ms": -1}})
    assert status == 422 and "retention.dead_ms" in err["error"]["message"], err
    status, ns = client.call("GET", "/v1/namespaces/acme")
    assert ns["retention"]["dead_ms"] == 3600000, ns


def test_export_is_complete_redacted_json_lines_of_that_namespace_only(make_server, tmp_path):
    srv = make_server("--redact-fields", "password")
    client = srv.client()
    secret = {"user": "ann", "password": "hunter2"}
    acme = enqueue_many(client, "acme", 2500, payload=secret)
    enqueue_many(client, "other", 700, payload=secret)
    # Some finished jobs too: an export holds live and finished ones.
    for job_id in acme[:50]:
        cancel(client, job_id)
    status, headers, body = export(srv.port, "acme")
    assert status == 200, body[:200]
    assert headers["content-type"] == "application/x-ndjson", headers
    assert headers.get("transfer-encoding") == "chunked", headers
    assert b"hunter2" not in body
    lines = body.decode().splitlines()
    assert len(lines) == len(acme), len(lines)
    jobs = [json.loads(line) for line in lines]
    assert [j["id"] for j in jobs] == acme  # every job once, in id order
    assert all(j["namespace"] == "acme" for j in jobs)
    assert all(j["payload"]["password"] == "[redacted]" and j["payload"]["user"] == "ann"
               for j in jobs), jobs[0]
    assert {j["state"] for j in jobs} == {"ready", "cancelled"}
    # The export is audited (before its first byte), without any payload.
    status, audit = client.call("GET", "/v1/audit?limit=1000")
    assert status == 200, audit
    exports = [e for e in audit["entries"] if e["action"] == "namespace.export"]
    assert len(exports) == 1 and exports[0]["target"] == "namespace acme", audit
    assert "hunter2" not in json.dumps(audit)
    # A namespace with no jobs exports an empty body; a bad name is refused.
    status, _, body = export(srv.port, "nobody")
    assert status == 200 and body == b""
    status, _, body = export(srv.port, "bad%20name")
    assert status == 422, body
    # The CLI writes the same lines to a file.
    out = tmp_path / "acme.jsonl"
    r = subprocess.run([binary(), "namespaces", "export", "acme", "-o", str(out),
                        "--server", srv.url()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"exported {len(acme)} job(s)" in r.stdout, r.stdout
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == acme
    client.close()


def test_a_client_that_disconnects_mid_export_leaves_the_server_healthy(make_server):
    srv = make_server()
    client = srv.client()
    ids = enqueue_many(client, "big", 20000, payload={"pad": "x" * 200})
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"GET /v1/namespaces/big/export HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:100]
        s.close()  # with most of the ~5 MB body unread
    status, body = client.call("GET", "/healthz")
    assert status == 200, body
    # The server still enqueues, and a full export still completes.
    client.enqueue(queue="shared", kind="k", namespace="big")
    status, _, body = export(srv.port, "big")
    assert status == 200
    assert len(body.decode().splitlines()) == len(ids) + 1
    client.close()


# --- Wipe (docs/security.md, "Tenant data") ----------------------------------------------------

WIPE_SECRET = "wipe-me-7f3a9c"


def tenant(client, ns):
    """Every kind of data of namespace `ns`: a succeeded, a dead and a cancelled job, a ready and
    a delayed one, one leased (active), idempotency keys, tags and a schedule. Returns the ids
    and the active job's lease."""
    payload = {"secret": WIPE_SECRET + ns}
    work = f"work-{ns}"

    def put(**spec):
        return client.enqueue(namespace=ns, kind="k", payload=payload, tags=["t-" + ns], **spec)

    ids = {}
    ids["succeeded"] = put(queue=work, idempotency_key=f"k-{ns}-s")["id"]
    [job] = client.lease([work])
    client.ack(job)
    ids["dead"] = put(queue=work, max_attempts=1)["id"]
    [job] = client.lease([work])
    status, body = client.call("POST", f"/v1/jobs/{job['id']}:fail",
                               {"token": job["lease"]["token"],
                                "error": {"type": "E", "message": "boom", "retryable": False}})
    assert status == 200 and body["state"] == "dead", body
    ids["cancelled"] = put(queue="shared")["id"]
    cancel(client, ids["cancelled"])
    ids["ready"] = put(queue="shared", idempotency_key=f"k-{ns}-r")["id"]
    ids["scheduled"] = put(queue="shared", delay_ms=3_600_000)["id"]
    ids["active"] = put(queue=work)["id"]
    [active] = client.lease([work])
    assert active["id"] == ids["active"]
    status, body = client.call("POST", "/v1/schedules", {
        "id": f"sched-{ns}", "cron": "0 0 1 1 *",
        "job": {"namespace": ns, "queue": "shared", "kind": "k", "payload": payload}})
    assert status == 201, body
    return ids, active


def rows(db, ns, ids):
    """What the SQLite file holds of a namespace, read directly."""
    con = sqlite3.connect(db)
    try:
        marks = ",".join("?" * len(ids))
        q = lambda sql, *a: con.execute(sql, a).fetchone()[0]  # noqa: E731
        return {
            "jobs": q("SELECT count(*) FROM jobs WHERE ns = ?", ns),
            "outcomes": q("SELECT count(*) FROM outcomes WHERE ns = ?", ns),
            "keys": q("SELECT count(*) FROM idempotency_keys WHERE ns = ?", ns),
            "tags": q(f"SELECT count(*) FROM job_tags WHERE id IN ({marks})", *ids),
            "leases": q(f"SELECT count(*) FROM leases WHERE id IN ({marks})", *ids),
            "schedules": q("SELECT count(*) FROM schedules WHERE id = ?", f"sched-{ns}"),
            "history": q("SELECT count(*) FROM schedule_history WHERE schedule = ?",
                         f"sched-{ns}"),
        }
    finally:
        con.close()


def wipe(client, ns, limit=None, cursor=None, confirm=None):
    body = {"confirm": ns if confirm is None else confirm}
    if limit is not None:
        body["limit"] = limit
    if cursor is not None:
        body["cursor"] = cursor
    return client.call("POST", f"/v1/namespaces/{ns}:wipe", body)


def test_wipe_erases_every_row_of_the_namespace_and_nothing_else(make_server):
    srv = make_server()
    client = srv.client()
    acme, acme_lease = tenant(client, "acme")
    other, _ = tenant(client, "other")
    db = os.path.join(srv.data_dir, "yardmaster.db")
    acme_ids = [int(i) for i in acme.values()]
    before = rows(db, "acme", acme_ids)
    assert before["jobs"] == 6 and before["keys"] == 2 and before["schedules"] == 1, before

    def raw_bytes():
        return b"".join(open(p, "rb").read() for p in (db, db + "-wal") if os.path.exists(p))

    assert (WIPE_SECRET + "acme").encode() in raw_bytes()

    # Refused, and nothing changes: no confirmation, the wrong one, a bad limit or cursor.
    for body, code in (({}, 422), ({"confirm": "other"}, 422), ({"confirm": "acme", "limit": 0}, 422),
                       ({"confirm": "acme", "cursor": "nope"}, 400)):
        status, err = client.call("POST", "/v1/namespaces/acme:wipe", body)
        assert status == code, (body, status, err)
    status, err = client.call("POST", "/v1/namespaces/acme:wipe")
    assert status in (400, 422), err
    assert rows(db, "acme", acme_ids) == before

    # Two items a request: the client follows next_cursor until done.
    totals = {"live_jobs": 0, "finished_jobs": 0, "idempotency_keys": 0, "schedules": 0}
    cursor, requests = None, 0
    while True:
        status, reply = wipe(client, "acme", limit=2, cursor=cursor)
        assert status == 200, reply
        requests += 1
        assert requests < 20, reply
        for k in totals:
            totals[k] += reply["erased"][k]
        assert sum(reply["erased"].values()) <= 2 or reply["done"], reply
        if reply["done"]:
            assert reply["next_cursor"] is None
            break
        cursor = reply["next_cursor"]
    # A live job's key goes with the job; the finished job's key is read and deleted on its own.
    assert totals == {"live_jobs": 3, "finished_jobs": 3, "idempotency_keys": 1,
                      "schedules": 1}, totals
    assert requests >= 4

    # Read directly from the file: not one row of acme is left, every row of other is.
    assert rows(db, "acme", acme_ids) == {k: 0 for k in before}
    # Nor its bytes: the wipe's deletes overwrite what they delete, and the WAL is truncated
    # once it is done (the other namespace's payloads are found the same way).
    raw = raw_bytes()
    assert (WIPE_SECRET + "other").encode() in raw
    assert (WIPE_SECRET + "acme").encode() not in raw
    other_rows = rows(db, "other", [int(i) for i in other.values()])
    assert other_rows["jobs"] == 6 and other_rows["keys"] == 2 and other_rows["schedules"] == 1
    for state, job_id in acme.items():
        assert client.get(job_id)[0] == 404, state
    for state, job_id in other.items():
        status, view = client.get(job_id)
        assert status == 200 and view["state"] == state, (state, view)
    # The worker that held acme's active job learns its lease is gone.
    client.ack(acme_lease, expect=409)
    # The key is free again: an enqueue with it creates a new job.
    status, again = client.call("POST", "/v1/jobs", {"namespace": "acme", "queue": "shared",
                                                     "kind": "k", "idempotency_key": "k-acme-s"})
    assert status == 201 and not again.get("duplicate"), again
    status, dup = client.call("POST", "/v1/jobs", {"namespace": "other", "queue": "shared",
                                                   "kind": "k", "idempotency_key": "k-other-s"})
    assert status == 200 and dup["duplicate"] is True, dup

    # Every request is audited (with its mark), never with a payload.
    status, audit = client.call("GET", "/v1/audit?limit=1000")
    wipes = [e for e in audit["entries"] if e["action"] == "namespace.wipe"]
    assert len(wipes) == requests, wipes
    assert all(e["target"] == "namespace acme" and "up_to_id" in e["detail"] for e in wipes)
    assert WIPE_SECRET not in json.dumps(audit)

    # A cursor of one namespace's wipe is refused for another.
    status, reply = wipe(client, "acme", limit=1)
    assert status == 200 and reply["erased"]["live_jobs"] == 1 and not reply["done"], reply
    assert reply["up_to_id"] == again["id"], reply  # the mark: a job id, a decimal string
    status, err = wipe(client, "other", cursor=reply["next_cursor"])
    assert status == 400 and "cursor" in err["error"]["message"], err

    # The CLI asks for --yes, then loops to the end.
    r = subprocess.run([binary(), "namespaces", "wipe", "other", "--server", srv.url()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--yes" in r.stderr, (r.returncode, r.stderr)
    assert client.get(other["ready"])[0] == 200
    r = subprocess.run([binary(), "namespaces", "wipe", "other", "--yes", "--limit", "3",
                        "--server", srv.url()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("namespace other wiped: 3 live job(s), 3 finished job(s), 1 idempotency key(s), "
            "1 schedule(s)") in r.stdout, r.stdout
    assert rows(db, "other", [int(i) for i in other.values()])["jobs"] == 0
    client.close()


def test_a_wipe_survives_a_restart_midway_and_ends_at_its_mark(make_server):
    srv = make_server()
    client = srv.client()
    enqueue_many(client, "big", 3000, payload={"s": WIPE_SECRET})
    enqueue_many(client, "keep", 500)
    status, first = wipe(client, "big", limit=1000)
    assert status == 200 and first["erased"]["live_jobs"] == 1000 and not first["done"], first
    srv.restart()  # SIGKILL, then start again on the same data
    client = srv.client()
    # Jobs created after the wipe began are not its to erase.
    late = enqueue_many(client, "big", 10)
    cursor, erased = first["next_cursor"], 1000
    while cursor is not None:
        status, reply = wipe(client, "big", limit=1000, cursor=cursor)
        assert status == 200, reply
        erased += reply["erased"]["live_jobs"]
        cursor = reply["next_cursor"]
    assert erased == 3000
    status, page = client.call("GET", "/v1/jobs?namespace=big&limit=100")
    assert sorted(j["id"] for j in page["items"]) == sorted(late), page
    status, page = client.call("GET", "/v1/jobs?namespace=keep&limit=1")
    assert status == 200 and page["items"], page
    client.close()
