"""Reserved queue names (docs/security.md, "Reserved queue names"): over HTTP no request, admin
included, enqueues into, leases from, configures, pauses, resumes or resets a `_ym.` queue, or
names one in a limit or a schedule; reads stay allowed. Black box against the real binary
(without tokens every request is the anonymous admin, so the rule is checked at its strongest).
"""


def forbidden(status, body):
    return status == 403 and body["error"]["code"] == "forbidden" and \
        "reserved" in body["error"]["message"]


def test_reserved_queues_refuse_every_write_and_allow_reads(client):
    writes = [
        ("POST", "/v1/jobs", {"queue": "_ym.alerts", "kind": "alert.webhook",
                              "payload": {"url": "http://attacker.example"}}),
        ("POST", "/v1/jobs:batch", {"jobs": [{"queue": "fine", "kind": "k"},
                                             {"queue": "_ym.alerts", "kind": "k"}]}),
        ("POST", "/v1/leases", {"queues": ["_ym.alerts"]}),
        ("PUT", "/v1/queues/_ym.alerts?create=true", {"weight": 2}),
        ("POST", "/v1/queues/_ym.alerts:pause?create=true", {}),
        ("POST", "/v1/queues/_ym.alerts:resume?create=true", {}),
        ("DELETE", "/v1/queues/_ym.alerts", {}),
        ("PUT", "/v1/limits/hold-alerts", {"match": {"queue": "_ym.alerts"}, "concurrency": 1}),
        ("POST", "/v1/schedules", {"id": "s", "cron": "* * * * *",
                                   "job": {"queue": "_ym.alerts", "kind": "k"}}),
    ]
    for method, path, body in writes:
        status, answer = client.call(method, path, body)
        assert forbidden(status, answer), (method, path, status, answer)
    # Nothing of it happened: no job in either queue, no limit, no schedule.
    for queue in ("_ym.alerts", "fine"):
        status, page = client.call("GET", f"/v1/jobs?queue={queue}")
        assert status == 200 and page["items"] == [], page
    assert client.call("GET", "/v1/limits/hold-alerts")[0] == 404
    assert client.call("GET", "/v1/schedules/s")[0] == 404
    # Reads are answered as for any queue (it does not exist yet: 404, not 403).
    status, answer = client.call("GET", "/v1/queues/_ym.alerts")
    assert status == 404 and answer["error"]["code"] == "queue_not_found", answer
