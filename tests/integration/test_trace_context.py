"""Trace context (issue 12 item 4; docs/api.md, "Trace context").

A W3C traceparent/tracestate sent with an enqueue (as headers, or per job in the body) is
stored with the job and handed to the worker with the lease and shown by GET, on every
attempt and after a kill -9 and recovery. A malformed one is a 400 (header) or 422 (body field)
that changes nothing.
"""

import http.client
import json

from ymtest import Server, wait_until

QUEUE = "traced"
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
TS = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def post(c, path, body, headers):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers)
    status, _, data = c.raw("POST", path, json.dumps(body).encode(), hdrs)
    return status, json.loads(data) if data else None


def post_with_header_list(port, path, body, header_list):
    """POST with headers given as a list, so that one name can be sent more than once."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode()
        conn.putrequest("POST", path)
        for k, v in [("Content-Type", "application/json"),
                     ("Content-Length", str(len(payload)))] + header_list:
            conn.putheader(k, v)
        conn.endheaders(payload)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def count_jobs(c):
    status, body = c.call("GET", f"/v1/jobs?queue={QUEUE}&limit=1000")
    assert status == 200, body
    return len(body["items"])


def test_header_context_reaches_lease_and_get_on_every_attempt_and_after_kill9(tmp_path):
    srv = Server(str(tmp_path / "data")).start()
    try:
        c = srv.client()
        status, created = post(c, "/v1/jobs", {"queue": QUEUE, "kind": "k", "max_attempts": 3},
                               {"traceparent": TP, "tracestate": " rojo=00f067aa0ba902b7 , "
                                                                 "congo=t61rcWkgMzE"})
        assert status == 201, created
        plain = c.enqueue(queue=QUEUE, kind="k")

        status, job = c.get(created["id"])
        assert status == 200
        assert job["traceparent"] == TP
        assert job["tracestate"] == TS, "stored normalized (optional whitespace dropped)"
        status, other = c.get(plain["id"])
        assert other["traceparent"] is None and other["tracestate"] is None

        leased = {j["id"]: j for j in c.lease([QUEUE], max_jobs=2)}
        assert leased[created["id"]]["traceparent"] == TP
        assert leased[created["id"]]["tracestate"] == TS
        # A job without context carries no trace members in the lease reply.
        assert "traceparent" not in leased[plain["id"]]
        assert "tracestate" not in leased[plain["id"]]

        # A retry keeps the original context.
        status, body = c.call("POST", f"/v1/jobs/{created['id']}:fail",
                              {"token": leased[created["id"]]["lease"]["token"],
                               "error": {"message": "again"}, "retry_in_ms": 0})
        assert status == 200, body
        c.ack(leased[plain["id"]])
        again = wait_until(lambda: c.lease([QUEUE]), 30, "the retry to be leased")
        assert again[0]["id"] == created["id"] and again[0]["attempt"] == 2
        assert again[0]["traceparent"] == TP and again[0]["tracestate"] == TS

        # kill -9 with the job leased: recovery reads the context back from the store. (A lease
        # reply may go out before its commit; any later write's 2xx means it is durable.)
        c.enqueue(queue="sync", kind="k")
        srv.kill()
        srv.start()
        c = srv.client()
        status, job = c.get(created["id"])
        assert status == 200 and job["state"] == "active", job
        assert job["traceparent"] == TP and job["tracestate"] == TS
        status, body = c.call("POST", f"/v1/jobs/{created['id']}:fail",
                              {"token": again[0]["lease"]["token"],
                               "error": {"message": "after restart"}, "retry_in_ms": 0})
        assert status == 200, body
        third = wait_until(lambda: c.lease([QUEUE]), 30, "the job after the restart")
        assert third[0]["attempt"] == 3
        assert third[0]["traceparent"] == TP and third[0]["tracestate"] == TS
        c.ack(third[0])
        # Finished and kept: GET reads it from the store.
        status, job = c.get(created["id"])
        assert job["state"] == "succeeded" and job["traceparent"] == TP, job
    finally:
        srv.stop()


def test_body_fields_win_over_headers_per_batch_item(client):
    status, body = post(client, "/v1/jobs:batch", {"jobs": [
        {"queue": QUEUE, "kind": "from_headers"},
        {"queue": QUEUE, "kind": "own", "traceparent": TP2},
        {"queue": QUEUE, "kind": "own_state", "traceparent": TP2, "tracestate": "k=v"},
        {"queue": QUEUE, "kind": "bad", "traceparent": "00-nope"},
    ]}, {"traceparent": TP, "tracestate": TS})
    assert status == 200, body
    results = body["results"]
    assert results[3]["error"]["code"] == "validation_failed", results[3]
    assert 'field "traceparent"' in results[3]["error"]["message"]
    jobs = [client.get(r["id"])[1] for r in results[:3]]
    assert (jobs[0]["traceparent"], jobs[0]["tracestate"]) == (TP, TS)
    # A job's own traceparent replaces the headers' pair whole: no tracestate of another trace.
    assert (jobs[1]["traceparent"], jobs[1]["tracestate"]) == (TP2, None)
    assert (jobs[2]["traceparent"], jobs[2]["tracestate"]) == (TP2, "k=v")
    assert count_jobs(client) == 3

    # POST /v1/jobs follows the same rule.
    status, one = post(client, "/v1/jobs", {"queue": QUEUE, "kind": "k", "traceparent": TP2},
                       {"traceparent": TP})
    assert status == 201, one
    assert client.get(one["id"])[1]["traceparent"] == TP2


def test_bad_trace_headers_are_400_and_change_nothing(client):
    cases = [
        ({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}, "traceparent"),
        ({"traceparent": TP.upper()}, "traceparent"),
        ({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
         "all zeros"),
        ({"traceparent": "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
         "only version 00"),
        ({"tracestate": "k=v"}, "without header \"traceparent\""),
        ({"traceparent": TP, "tracestate": "Bad=1"}, "tracestate"),
        ({"traceparent": TP, "tracestate": "k=" + "v" * 256 + ",l=" + "w" * 256},
         "longer than 512"),
    ]
    for headers, words in cases:
        for path, body in (("/v1/jobs", {"queue": QUEUE, "kind": "k"}),
                           ("/v1/jobs:batch", {"jobs": [{"queue": QUEUE, "kind": "k"}]})):
            status, reply = post(client, path, body, headers)
            assert status == 400, (headers, path, reply)
            assert reply["error"]["code"] == "invalid_request", reply
            assert words in reply["error"]["message"], reply
    # A traceparent header sent twice is refused too.
    status, reply = post_with_header_list(client.port, "/v1/jobs", {"queue": QUEUE, "kind": "k"},
                                          [("traceparent", TP), ("traceparent", TP2)])
    assert status == 400, reply
    assert "more than once" in reply["error"]["message"], reply
    # The one valid enqueue of this test.
    client.enqueue(queue=QUEUE, kind="k")
    # Nothing but the one valid enqueue above was created.
    assert count_jobs(client) == 1
    # Body fields: a 422 naming the field, nothing created.
    for spec, words in (({"traceparent": "x"}, 'field "traceparent"'),
                        ({"tracestate": "k=v"}, 'field "tracestate"'),
                        ({"traceparent": 5}, 'field "traceparent"')):
        status, reply = client.call("POST", "/v1/jobs", dict(queue=QUEUE, kind="k", **spec))
        assert status == 422, reply
        assert words in reply["error"]["message"], reply
    assert count_jobs(client) == 1


def test_several_tracestate_headers_form_one_list(client):
    status, created = post_with_header_list(
        client.port, "/v1/jobs", {"queue": QUEUE, "kind": "k"},
        [("traceparent", TP), ("tracestate", "a=1"), ("tracestate", "b=2")])
    assert status == 201, created
    assert client.get(created["id"])[1]["tracestate"] == "a=1,b=2"


def job_lines(srv, job_id):
    out = []
    for line in list(srv.log_lines):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("job_id") == job_id:
            out.append(obj)
    return out


def test_log_lines_about_a_job_carry_its_request_id_and_trace_id(tmp_path):
    """The enqueue's request id is stored with the job (GET shows it) and, with the trace id,
    is on the server's lines about the job: the enqueue and lease lines (debug) and the lines
    of the events no request sees, here a lease expiry and the job going dead (info)."""
    srv = Server(str(tmp_path / "data"), ["--log-format", "json", "--log-levels",
                                          "job=debug"]).start()
    try:
        c = srv.client()
        status, created = post(c, "/v1/jobs", {"queue": QUEUE, "kind": "k", "max_attempts": 1,
                                               "lease_ms": 100},
                               {"traceparent": TP, "X-Request-Id": "producer-req-1"})
        assert status == 201, created
        jid = created["id"]
        status, job = c.get(jid)
        assert job["request_id"] == "producer-req-1", job
        leased = c.lease([QUEUE])
        assert leased[0]["request_id"] == "producer-req-1"
        wait_until(lambda: c.get(jid)[1]["state"] == "dead", 30, "the lease to expire")
        lines = wait_until(lambda: (lambda ls: ls if {"lease expired", "job dead"} <= {
            x["msg"] for x in ls} else None)(job_lines(srv, jid)), 30, "the job's log lines")
        by_msg = {x["msg"]: x for x in lines}
        assert by_msg["job enqueued"]["request_id"] == "producer-req-1"
        assert by_msg["job enqueued"]["trace_id"] == TP[3:35]
        assert by_msg["job leased"]["trace_id"] == TP[3:35]
        for msg in ("lease expired", "job dead"):
            line = by_msg[msg]
            assert line["level"] == "info" and line["component"] == "job", line
            assert line["request_id"] == "producer-req-1", line
            assert line["trace_id"] == TP[3:35], line
            assert line["queue"] == QUEUE and line["attempt"] == 1, line
        assert by_msg["job dead"]["reason"] == "max_attempts_exceeded"
        assert by_msg["lease expired"]["reason"] == "lease_expired"
        # A job without context or a request id of its own gets a generated id, and no trace_id.
        plain = c.enqueue(queue="plain", kind="k")
        status, job = c.get(plain["id"])
        assert job["request_id"] and job["traceparent"] is None
    finally:
        srv.stop()
