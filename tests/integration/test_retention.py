"""Retention with the real binary (docs/operations.md, "Retention"): finished jobs are kept by
default with their result, a per-queue cap per state purges the oldest first and never touches
another state, purging under load never removes a live job, and bad settings are refused."""

import subprocess
import threading

from ymtest import binary, metric, wait_until

DAY_MS = 24 * 3600 * 1000


def put_queue(client, name, retention):
    status, body = client.call("PUT", f"/v1/queues/{name}?create=true", {"retention": retention})
    assert status == 200, body
    return body


def run(client, queue, n, result=None):
    """Enqueues n jobs on `queue`, leases and acks them one by one; returns their ids in order."""
    ids = []
    for i in range(n):
        ids.append(client.enqueue(queue=queue, kind="k", payload={"i": i})["id"])
        job = client.lease([queue])[0]
        assert job["id"] == ids[-1]
        body = {"token": job["lease"]["token"]}
        if result is not None:
            body["result"] = result
        status, reply = client.call("POST", f"/v1/jobs/{job['id']}:ack", body)
        assert status == 200 and reply["state"] == "succeeded", reply
    return ids


def dead(client, queue):
    job_id = client.enqueue(queue=queue, kind="k")["id"]
    job = client.lease([queue])[0]
    status, body = client.call("POST", f"/v1/jobs/{job_id}:fail", {
        "token": job["lease"]["token"],
        "error": {"type": "E", "message": "boom", "retryable": False}})
    assert status == 200 and body["state"] == "dead", body
    return job_id


def test_a_succeeded_job_is_readable_after_its_ack_by_default_with_its_result(client):
    [job_id] = run(client, "kept", 1, result={"total": 42})
    status, view = client.get(job_id)
    assert status == 200 and view["state"] == "succeeded", view
    assert view["result"] == {"total": 42}, view
    q = client.queue("kept")
    assert q["retention"] == {"succeeded_ms": DAY_MS, "dead_ms": 7 * DAY_MS,
                              "cancelled_ms": 7 * DAY_MS, "max_succeeded": 1_000_000,
                              "max_dead": 100_000, "max_cancelled": 100_000}, q
    assert q["counts"]["succeeded"] == 1, q
    # Listed with the finished jobs too.
    status, page = client.call("GET", "/v1/jobs?queue=kept&state=succeeded")
    assert status == 200 and [j["id"] for j in page["items"]] == [job_id], page


def test_delete_on_ack_is_one_setting_away(make_server):
    srv = make_server("--retention-succeeded-ms", "0")
    c = srv.client()
    [job_id] = run(c, "gone", 1)
    assert c.get(job_id)[0] == 404
    assert c.queue("gone")["retention"]["succeeded_ms"] == 0
    # ... and a queue can still keep them on such a server.
    put_queue(c, "keep", {"succeeded_ms": 60_000})
    [kept] = run(c, "keep", 1)
    assert c.get(kept)[1]["state"] == "succeeded"
    c.close()


def test_the_cap_purges_the_oldest_first_and_leaves_dead_letters_alone(client):
    put_queue(client, "capped", {"max_succeeded": 3, "max_dead": 2})
    letters = [dead(client, "capped") for _ in range(2)]
    ids = run(client, "capped", 8)
    # The trim rides in the batches that keep jobs, or the next purge chunk (250 ms later).
    wait_until(lambda: client.queue("capped")["counts"]["succeeded"] == 3, 30,
               "the succeeded jobs trimmed to the cap")
    for job_id in ids[:5]:
        assert client.get(job_id)[0] == 404, f"{job_id}: an old job survived the cap"
    for job_id in ids[5:]:
        status, view = client.get(job_id)
        assert status == 200 and view["state"] == "succeeded", (job_id, view)
    # A flood of succeeded jobs never evicts the dead letters an operator must replay.
    assert client.queue("capped")["counts"]["dead"] == 2
    for job_id in letters:
        assert client.get(job_id)[1]["state"] == "dead"
    # Counted in the metrics: the 5 succeeded jobs above the cap.
    status, _, text = client.raw("GET", "/metrics")
    assert status == 200
    assert metric(text.decode(), "ym_retention_purged_jobs_total") == 5
    # A third dead letter pushes the oldest one out, and only it.
    third = dead(client, "capped")
    wait_until(lambda: client.get(letters[0])[0] == 404, 30, "the oldest dead letter purged")
    assert client.get(letters[1])[1]["state"] == "dead"
    assert client.get(third)[1]["state"] == "dead"
    assert client.queue("capped")["counts"]["succeeded"] == 3


def test_purging_under_load_keeps_every_live_job(make_server):
    srv = make_server()
    c = srv.client()
    put_queue(c, "load", {"max_succeeded": 20})
    # Live jobs that are never leased (another queue name would not share the purge's queue).
    status, body = c.call("POST", "/v1/jobs:batch", {
        "jobs": [{"queue": "load", "kind": "idle", "payload": i, "delay_ms": 3_600_000}
                 for i in range(200)]})
    assert status == 200, body
    idle = [r["id"] for r in body["results"]]
    acked = []
    errors = []

    def producer():
        p = srv.client()
        try:
            for _ in range(10):
                status, body = p.call("POST", "/v1/jobs:batch", {
                    "jobs": [{"queue": "load", "kind": "k", "payload": i} for i in range(50)]})
                if status != 200:
                    errors.append(body)
        finally:
            p.close()

    t = threading.Thread(target=producer)
    t.start()
    # Lease and ack until the producer's 500 jobs are done (bounded in rounds).
    for _ in range(2000):
        jobs = c.lease(["load"], max_jobs=50)
        for job in jobs:
            status, reply = c.call("POST", f"/v1/jobs/{job['id']}:ack",
                                   {"token": job["lease"]["token"]})
            assert status == 200, reply
            acked.append(job["id"])
        if len(acked) == 500:
            break
    t.join(60)
    assert not errors, errors
    assert len(acked) == 500
    wait_until(lambda: c.queue("load")["counts"]["succeeded"] == 20, 60,
               "the succeeded jobs trimmed to the cap")
    counts = c.queue("load")["counts"]
    assert counts["scheduled"] == 200, counts
    for job_id in idle:
        status, view = c.get(job_id)
        assert status == 200 and view["state"] == "scheduled", (job_id, view)
    # The 20 kept are the last 20 acked (oldest finished purged first).
    kept = [j for j in acked if c.get(j)[0] == 200]
    assert kept == acked[-20:], kept
    # A restart keeps them and the live jobs alike.
    srv.kill()
    srv.start()
    c2 = srv.client()
    assert c2.queue("load")["counts"]["scheduled"] == 200
    assert c2.queue("load")["counts"]["succeeded"] == 20
    c2.close()
    c.close()


def test_retention_settings_are_validated(client):
    put_queue(client, "v", {"max_succeeded": 5})
    cases = [
        ({"max_succeeded": -1},
         'field "retention.max_succeeded": must be an integer between 0 and 1000000000000'),
        ({"max_dead": 1.5},
         'field "retention.max_dead": must be an integer between 0 and 1000000000000'),
        ({"max_cancelled": "all"},
         'field "retention.max_cancelled": must be an integer between 0 and 1000000000000'),
        ({"max_kept": 1}, 'field "retention.max_kept": unknown field'),
        ({"succeeded_ms": -5},
         'field "retention.succeeded_ms": must be an integer between 0 and 315360000000'),
    ]
    for retention, message in cases:
        status, body = client.call("PUT", "/v1/queues/v", {"retention": retention})
        assert status == 422, (retention, status, body)
        assert body["error"]["code"] == "validation_failed", body
        assert body["error"]["message"] == message, body
    # Nothing changed.
    assert client.queue("v")["retention"]["max_succeeded"] == 5
    # 0 is "no cap".
    assert put_queue(client, "v", {"max_succeeded": 0})["retention"]["max_succeeded"] == 0


def test_server_wide_caps_are_flags_and_validated(make_server, tmp_path):
    srv = make_server("--retention-max-succeeded", "7", "--retention-max-dead", "0")
    c = srv.client()
    c.enqueue(queue="anything", kind="k")
    r = c.queue("anything")["retention"]
    assert r["max_succeeded"] == 7 and r["max_dead"] == 0 and r["max_cancelled"] == 100_000, r
    c.close()
    p = subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                        str(tmp_path / "bad"), "--retention-max-dead", "-1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "retention-max-dead" in p.stderr or "retention_max_dead" in p.stderr, p.stderr
