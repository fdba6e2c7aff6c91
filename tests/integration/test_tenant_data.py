"""Tenant data controls with the real binary (docs/security.md, "Tenant data"): a namespace's
retention window stricter than its queue's purges that namespace's finished jobs only; the
namespace export streams every job of the namespace as redacted JSON lines, and a client that
disconnects midway leaves the server healthy."""

import http.client
import json
import socket
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
