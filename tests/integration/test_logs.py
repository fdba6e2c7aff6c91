"""Structured logs, request ids, the access log, per-component levels and payload redaction
(docs/operations.md, "Logs"; docs/api.md, "Request ids")."""

import json
import re
import subprocess

import pytest
from ymtest import Server, binary, wait_until

GENERATED_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]+$")


def records(srv):
    out = []
    for line in list(srv.log_lines):
        out.append(json.loads(line))  # every line is one JSON object
    return out


def access_lines(srv):
    return [r for r in records(srv) if r.get("component") == "access"]


def wait_access(srv, request_id):
    return wait_until(lambda: [r for r in access_lines(srv) if r["request_id"] == request_id],
                      30, f"the access line of {request_id}")[0]


def test_request_ids_are_kept_generated_or_replaced_and_echoed_on_every_response(make_server):
    srv = make_server("--log-format", "json", "--access-log", "on")
    c = srv.client()
    # A valid client id is kept and echoed, on a success...
    status, headers, _ = c.raw("POST", "/v1/jobs", json.dumps({"queue": "q", "kind": "k"}).encode(),
                               {"Content-Type": "application/json", "X-Request-Id": "client-1"})
    assert status == 201 and headers["x-request-id"] == "client-1"
    # ... and on errors: a 404, a 422 and an unmatched route.
    status, headers, _ = c.raw("GET", "/v1/jobs/99999", None, {"X-Request-Id": "client-2"})
    assert status == 404 and headers["x-request-id"] == "client-2"
    status, headers, _ = c.raw("POST", "/v1/jobs", b'{"queue":1}',
                               {"Content-Type": "application/json", "X-Request-Id": "client-3"})
    assert status in (400, 422) and headers["x-request-id"] == "client-3"
    status, headers, _ = c.raw("GET", "/v1/nope/unbounded-path-value", None,
                               {"X-Request-Id": "client-4"})
    assert status == 404 and headers["x-request-id"] == "client-4"
    # No id: one is generated, a new one per request.
    ids = set()
    for _ in range(3):
        status, headers, _ = c.raw("GET", "/livez")
        assert status == 200 and GENERATED_ID.match(headers["x-request-id"]), headers
        ids.add(headers["x-request-id"])
    assert len(ids) == 3
    # An invalid id (a space, too long, a quote) is replaced, never echoed.
    for bad in ("has space", "x" * 129, 'quo"te'):
        status, headers, _ = c.raw("GET", "/livez", None, {"X-Request-Id": bad})
        assert status == 200
        assert headers["x-request-id"] != bad and GENERATED_ID.match(headers["x-request-id"])
    # A request refused before routing (bad framing) still gets one.
    status, headers, _ = c.raw("POST", "/v1/jobs", b"{}", {"Content-Type": "application/json",
                                                          "Content-Length": "2",
                                                          "Transfer-Encoding": "chunked"})
    assert status == 400 and GENERATED_ID.match(headers["x-request-id"]), headers
    c.close()

    line = wait_access(srv, "client-1")
    assert line["method"] == "POST" and line["route"] == "POST /v1/jobs"
    assert line["status"] == 201 and line["peer"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_bytes"] == len(json.dumps({"queue": "q", "kind": "k"}))
    assert line["response_bytes"] > 0 and line["level"] == "info"
    assert line["delivered"] is True
    assert wait_access(srv, "client-2")["status"] == 404
    assert wait_access(srv, "client-2")["route"] == "GET /v1/jobs/{id}"
    unmatched = wait_access(srv, "client-4")
    assert unmatched["route"] == "unmatched" and unmatched["status"] == 404
    # The raw path is never logged: only the route's label.
    assert not any("unbounded-path-value" in l for l in srv.log_lines)


def test_access_log_is_off_by_default_and_text_lines_carry_logfmt_fields(make_server):
    srv = make_server("--log-format", "json")
    c = srv.client()
    c.enqueue(queue="q", kind="k")
    status, _ = c.call("GET", "/v1/info")
    assert status == 200
    c.close()
    assert srv.terminate() == 0
    assert access_lines(srv) == []
    # Every line has the component of the part of the server that wrote it.
    recs = records(srv)
    listening = next(r for r in recs if r["msg"].startswith("listening on"))
    assert listening["component"] == "http" and listening["port"] == srv.port
    assert recs[-1]["msg"] == "stopped cleanly" and recs[-1]["component"] == "server"

    srv = make_server("--access-log", "on")
    c = srv.client()
    c.raw("GET", "/v1/info", None, {"X-Request-Id": "text-1"})
    c.close()
    line = wait_until(lambda: [l for l in srv.log_lines if "request_id=text-1" in l], 30,
                      "the text access line")[0]
    assert " info GET /v1/info 200 component=access method=GET route=\"GET /v1/info\" " \
           "status=200 duration_ms=" in line, line
    assert "peer=127.0.0.1" in line


def test_levels_per_component(make_server):
    # job lines are debug: off at the default level, on for the job component alone.
    srv = make_server("--log-format", "json")
    c = srv.client()
    c.enqueue(queue="q", kind="k")
    c.close()
    assert srv.terminate() == 0
    assert not [r for r in records(srv) if r.get("component") == "job"]

    srv = make_server("--log-format", "json", "--log-levels", "job=debug")
    c = srv.client()
    status, headers, body = c.raw("POST", "/v1/jobs",
                                  json.dumps({"queue": "lv", "kind": "kk"}).encode(),
                                  {"Content-Type": "application/json", "X-Request-Id": "lv-1"})
    assert status == 201
    job_id = json.loads(body)["id"]
    leased = c.lease(["lv"])
    c.ack(leased[0])
    c.close()
    assert srv.terminate() == 0
    recs = records(srv)
    enq = [r for r in recs if r.get("msg") == "job enqueued"]
    assert len(enq) == 1, recs
    assert enq[0]["level"] == "debug" and enq[0]["component"] == "job"
    assert enq[0]["job_id"] == job_id and enq[0]["request_id"] == "lv-1"
    assert enq[0]["queue"] == "lv" and enq[0]["kind"] == "kk"
    lease = next(r for r in recs if r.get("msg") == "job leased")
    assert lease["job_id"] == job_id and lease["worker_id"] == "test"
    assert GENERATED_ID.match(lease["request_id"])
    assert next(r for r in recs if r.get("msg") == "ack")["job_id"] == job_id
    # Other components stay at info.
    assert {r["level"] for r in recs if r.get("component") != "job"} <= {"info", "warning"}


def test_bad_component_levels_and_redact_fields_exit_2(tmp_path):
    for args, fragment in ((["--log-levels", "htp=debug"], 'unknown log component "htp"'),
                           (["--log-levels", "http=loud"], "log level of http"),
                           (["--access-log", "maybe"], "--access-log"),
                           (["--redact-fields", "a,,b"], "a field name is empty")):
        p = subprocess.run([binary(), "server", "--data-dir", str(tmp_path / "d"), *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (args, p.stderr)
        assert fragment in p.stderr, (args, p.stderr)


SECRETS = {
    "password": "S3cret-pw-in-payload",
    "API_KEY": "S3cret-key-nested",
    "token": "S3cret-token-in-list",
    "result_pw": "S3cret-pw-in-result",
    "sched_pw": "S3cret-pw-in-schedule",
    "dead_pw": "S3cret-pw-in-dead-job",
    "key4": "S3cret-limit-key",
}


def test_redacted_fields_never_reach_logs_or_api_output_but_reach_the_worker(make_server):
    srv = make_server("--log-format", "json", "--log-level", "debug", "--access-log", "on",
                      "--redact-fields", "password,api_key,token")
    c = srv.client()
    shown = []  # every API body a non-worker sees

    def call(method, path, body=None):
        status, parsed = c.call(method, path, body)
        shown.append(json.dumps(parsed))
        return status, parsed

    payload = {"user": "ann", "password": SECRETS["password"],
               "nested": {"Api_Key": SECRETS["API_KEY"], "keep": 1.50},
               "list": [{"token": SECRETS["token"]}, "token"]}
    status, enq = call("POST", "/v1/jobs", {"queue": "red", "kind": "k", "payload": payload})
    assert status == 201
    jid = enq["id"]
    status, view = call("GET", f"/v1/jobs/{jid}")
    assert status == 200
    assert view["payload"] == {"user": "ann", "password": "[redacted]",
                               "nested": {"Api_Key": "[redacted]", "keep": 1.5},
                               "list": [{"token": "[redacted]"}, "token"]}
    status, page = call("GET", "/v1/jobs?queue=red")
    assert status == 200 and page["items"][0]["payload"]["password"] == "[redacted]"

    # The worker gets the payload as stored.
    status, leased = c.call("POST", "/v1/leases",
                            {"queues": ["red"], "max": 1, "wait_ms": 0, "worker_id": "w1"})
    assert status == 200 and leased["jobs"][0]["payload"] == payload
    status, _ = c.call("POST", f"/v1/jobs/{jid}:ack",
                       {"token": leased["jobs"][0]["lease"]["token"],
                        "result": {"ok": True, "password": SECRETS["result_pw"]}})
    assert status == 200
    status, done = call("GET", f"/v1/jobs/{jid}")
    assert done["state"] == "succeeded"
    assert done["result"] == {"ok": True, "password": "[redacted]"}

    # Dead letters.
    status, enq2 = call("POST", "/v1/jobs", {"queue": "red2", "kind": "k", "max_attempts": 1,
                                             "payload": {"password": SECRETS["dead_pw"]}})
    status, leased = c.call("POST", "/v1/leases",
                            {"queues": ["red2"], "max": 1, "wait_ms": 0, "worker_id": "w1"})
    assert leased["jobs"][0]["payload"] == {"password": SECRETS["dead_pw"]}
    status, _ = c.call("POST", f"/v1/jobs/{enq2['id']}:fail",
                       {"token": leased["jobs"][0]["lease"]["token"],
                        "error": {"type": "E", "message": "no", "retryable": False}})
    assert status == 200
    status, dead = call("GET", "/v1/dead?queue=red2")
    assert status == 200 and dead["items"][0]["payload"] == {"password": "[redacted]"}

    # A schedule's job template: its payload is redacted, its other members are not.
    status, sched = call("POST", "/v1/schedules", {
        "id": "red-sched", "cron": "0 3 * * *", "paused": True,
        "job": {"queue": "red3", "kind": "k", "payload": {"password": SECRETS["sched_pw"]}}})
    assert status == 201, sched
    assert sched["job"]["payload"] == {"password": "[redacted]"}
    assert sched["job"]["queue"] == "red3"
    status, _ = call("GET", "/v1/schedules/red-sched")
    status, _ = call("GET", "/v1/schedules")

    # A limit keyed by a redacted payload member: its key values are payload values.
    status, _ = call("PUT", "/v1/limits/red-limit", {"match": {"queue": "red4"},
                                                     "key": "payload.account.API_KEY",
                                                     "concurrency": 1})
    assert status in (200, 201)
    status, _ = call("POST", "/v1/jobs", {"queue": "red4", "kind": "k",
                                          "payload": {"account": {"api_key": SECRETS["key4"]}}})
    assert status == 201
    status, leased4 = c.call("POST", "/v1/leases",
                             {"queues": ["red4"], "max": 1, "wait_ms": 0, "worker_id": "w1"})
    assert leased4["jobs"][0]["payload"]["account"]["api_key"] == SECRETS["key4"]
    status, limit = call("GET", "/v1/limits/red-limit")
    assert status == 200 and limit["active"] == [{"key": "[redacted]", "count": 1}], limit
    status, _ = call("GET", "/v1/limits")

    # The CLI's views go through the same API.
    for args in (["jobs", "get", jid, "--json"], ["jobs", "get", jid],
                 ["jobs", "list", "--queue", "red", "--json"], ["dead", "list", "--json"],
                 ["limits", "get", "red-limit"]):
        p = subprocess.run([binary(), *args, "--server", srv.url()], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, (args, p.stderr)
        assert "[redacted]" in p.stdout, (args, p.stdout)
        shown.append(p.stdout)

    # Redaction changed nothing stored: the dead job, replayed, is leased with its real payload.
    status, _ = c.call("POST", f"/v1/jobs/{enq2['id']}:replay")
    assert status == 200
    status, leased = c.call("POST", "/v1/leases",
                            {"queues": ["red2"], "max": 1, "wait_ms": 0, "worker_id": "w1"})
    assert leased["jobs"][0]["payload"] == {"password": SECRETS["dead_pw"]}
    c.close()
    assert srv.terminate() == 0

    everything_shown = "\n".join(shown)
    logs = "\n".join(srv.log_lines)
    for secret in SECRETS.values():
        assert secret not in everything_shown, secret
        assert secret not in logs, secret
    # The payloads were logged (redacted), so the check above is not vacuous.
    recs = records(srv)
    enqueued = [r for r in recs if r.get("msg") == "job enqueued" and r.get("queue") == "red"]
    assert enqueued and json.loads(enqueued[0]["payload"])["password"] == "[redacted]"
    acked = [r for r in recs if r.get("msg") == "ack" and r.get("job_id") == jid]
    assert acked and json.loads(acked[0]["result"])["password"] == "[redacted]"
    assert "user" in enqueued[0]["payload"]
    assert any(r.get("component") == "access" for r in recs)
