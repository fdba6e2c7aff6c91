"""The guarantees of docs/guarantees.md, each proved against the real binary.

Nothing here depends on how fast a step runs: expiries are awaited as states (a long poll that
returns when the lease expires, a job that turns ready or dead), never as fixed sleeps, and a
lease the test must keep is long enough to survive a stalled machine (docs/testing.md).
"""

import os
import re
import time

from ymtest import metric, settled, wait_until


def test_acknowledged_enqueue_survives_kill_9(server, client):
    ids = [client.enqueue(queue="dur", kind="k", payload={"n": i})["id"] for i in range(50)]
    server.kill()  # SIGKILL right after the 201s: nothing gets a chance to flush
    server.start()
    c = server.client()
    got = c.lease(["dur"], max_jobs=100)
    assert sorted(j["id"] for j in got) == sorted(ids)
    assert {j["payload"]["n"] for j in got} == set(range(50))
    c.close()


def test_leased_jobs_come_back_ready_after_crash_when_their_lease_expires(server, client):
    jid = client.enqueue(queue="crash", kind="k")["id"]
    lease_ms = 3000
    t0 = time.monotonic()  # before the lease: it cannot expire before t0 + lease_ms
    job = client.lease(["crash"], lease_ms=lease_ms)[0]
    # The lease reply goes before its commit (--lease-reply immediate, the default); any write
    # answered after it covers it (guarantees.md §4a).
    client.enqueue(queue="crash-sync", kind="k")
    server.kill()
    server.start()
    c = server.client()
    # The lease was persisted: the job is not handed out again while it runs... (checked when
    # the restart took less than the lease, as it does unless the machine is badly stalled;
    # the lease may have run out otherwise)
    status, view = c.get(jid)
    assert status == 200, view
    if time.monotonic() - t0 < lease_ms / 1000:
        assert view["state"] == "active", view
    # ...and once the recorded lease expires it comes back, with the attempt counted.
    deadline = time.monotonic() + 30
    again = []
    while not again and time.monotonic() < deadline:
        again = c.lease(["crash"], wait_ms=500)
    assert [j["id"] for j in again] == [jid]
    assert again[0]["attempt"] == 2
    # The expired lease's token is refused.
    status, body = c.call("POST", f"/v1/jobs/{jid}:ack", {"token": job["lease"]["token"]})
    assert status == 409 and body["error"]["code"] == "stale_lease"
    c.close()


def test_acked_job_is_not_delivered_after_restart(server, client):
    jid = client.enqueue(queue="acked", kind="k")["id"]
    client.ack(client.lease(["acked"])[0])
    server.kill()
    server.start()
    c = server.client()
    assert c.lease(["acked"]) == []
    status, view = c.get(jid)
    # Succeeded, and kept by the default retention across the restart.
    assert status == 200 and view["state"] == "succeeded", view
    c.close()


def test_lease_expiry_requeues_and_counts_an_attempt(client):
    jid = client.enqueue(queue="exp", kind="k", lease_ms=200, max_attempts=3)["id"]
    first = client.lease(["exp"])[0]
    # Nothing else touches the job: it is ready again only because its lease expired.
    wait_until(lambda: client.get(jid)[1]["state"] == "ready", 30, "the lease to expire")
    second = client.lease(["exp"], wait_ms=5000)
    assert [j["id"] for j in second] == [jid]
    assert second[0]["attempt"] == 2
    assert second[0]["lease"]["token"] != first["lease"]["token"]
    _, view = client.get(jid)
    assert view["errors"][0]["type"] == "lease_expired"
    # The zombie holding the first lease cannot complete the job.
    client.ack(first, expect=409)
    client.ack(second[0])


def test_expiry_exhausts_attempts_into_dead_letters(client):
    jid = client.enqueue(queue="exp2", kind="k", lease_ms=100, max_attempts=2)["id"]
    for attempt in (1, 2):
        # The second long poll returns when the first lease expires.
        jobs = client.lease(["exp2"], wait_ms=30000)
        assert jobs and jobs[0]["attempt"] == attempt
    wait_until(lambda: settled(client.get(jid)[1], "dead"), 30,
               "the second lease to expire into the dead letters")
    _, view = client.get(jid)
    assert view["dead_reason"] == "max_attempts_exceeded"
    assert [e["type"] for e in view["errors"]] == ["lease_expired", "lease_expired"]
    assert all(e["at"] > 0 for e in view["errors"])


def test_heartbeat_keeps_a_job_past_its_lease(client):
    # 2 s between the lease and its heartbeat (sent right after) hold on a stalled machine.
    jid = client.enqueue(queue="hb", kind="k", lease_ms=2000)["id"]
    job = client.lease(["hb"])[0]
    status, hb = client.call("POST", f"/v1/jobs/{jid}:heartbeat",
                             {"token": job["lease"]["token"], "extend_ms": 60000})
    assert status == 200 and hb["cancel_requested"] is False
    assert hb["expires_at"] > job["lease"]["expires_at"]
    # Until well past the original lease, on the wall clock the server shares with the test.
    wait_until(lambda: time.time() * 1000 > job["lease"]["expires_at"] + 500, 30,
               "the original lease to run out")
    _, view = client.get(jid)
    assert view["state"] == "active" and view["attempts"] == 1 and view["errors"] == [], view
    client.ack(job)


def test_backoff_delay_is_capped(client):
    # initial 1000 ms x10 per attempt, capped at 1500 ms: from the second retry on only the cap
    # bounds the delay. Every retry's due time is checked against the failure's own timestamp,
    # whatever state the job is in when it is read (a short delay may already have made it ready).
    cap = 1500
    jid = client.enqueue(queue="bo", kind="k", max_attempts=10,
                         backoff={"initial_ms": 1000, "max_ms": cap, "multiplier": 10})["id"]
    delays = []
    for n in range(4):
        job = client.lease(["bo"], wait_ms=10000)[0]
        assert job["id"] == jid
        status, body = client.call("POST", f"/v1/jobs/{jid}:fail", {
            "token": job["lease"]["token"], "error": {"type": "x", "message": f"again {n}"}})
        assert status == 200 and body["state"] in ("scheduled", "ready"), body
        _, view = client.get(jid)
        assert view["state"] in ("scheduled", "ready"), view
        assert view["attempts"] == n + 1
        delay = view["run_at"] - view["errors"][-1]["at"]
        assert 0 <= delay <= cap, (n, delay, view)
        delays.append(delay)
    assert len(delays) == 4


def test_idempotency_key_survives_restart(server, client):
    first = client.enqueue(queue="idem", kind="k", idempotency_key="charge-42")
    server.kill()
    server.start()
    c = server.client()
    status, again = c.call("POST", "/v1/jobs", {"queue": "idem", "kind": "k",
                                                "idempotency_key": "charge-42"})
    assert status == 200 and again["duplicate"] is True and again["id"] == first["id"]
    # Still coalesced after the job finished and left memory.
    c.ack(c.lease(["idem"])[0])
    server.kill()
    server.start()
    c2 = server.client()
    status, again = c2.call("POST", "/v1/jobs", {"queue": "idem", "kind": "k",
                                                 "idempotency_key": "charge-42"})
    assert status == 200 and again["id"] == first["id"] and again["state"] == "succeeded"
    c.close()
    c2.close()


def test_dead_letter_keeps_every_error_across_restart(server, client):
    jid = client.enqueue(queue="dl", kind="k", max_attempts=3)["id"]
    for n in range(3):
        job = client.lease(["dl"], wait_ms=5000)[0]
        client.call("POST", f"/v1/jobs/{jid}:fail", {
            "token": job["lease"]["token"], "error": {"type": "E", "message": f"try {n}"},
            "retry_in_ms": 0})
    server.kill()
    server.start()
    c = server.client()
    _, view = c.get(jid)
    assert view["state"] == "dead" and view["dead_reason"] == "max_attempts_exceeded"
    assert [e["message"] for e in view["errors"]] == ["try 0", "try 1", "try 2"]
    assert [e["attempt"] for e in view["errors"]] == [1, 2, 3]
    c.close()


def test_sigterm_exits_zero_and_keeps_everything(server, client):
    ids = [client.enqueue(queue="term", kind="k")["id"] for _ in range(20)]
    client.close()
    assert server.terminate() == 0
    assert any("stopped cleanly" in line for line in server.log_lines)
    server.start()
    c = server.client()
    assert sorted(j["id"] for j in c.lease(["term"], max_jobs=50)) == sorted(ids)
    c.close()


def test_second_server_on_same_data_dir_is_refused(server, make_server):
    import subprocess
    from ymtest import binary
    proc = subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                           server.data_dir], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "locked" in proc.stderr
    assert os.path.exists(os.path.join(server.data_dir, "yardmaster.db"))


def test_sigterm_drains_refuses_new_work_and_accepts_acks(server, client):
    import signal
    ids = [client.enqueue(queue="drain", kind="k")["id"] for _ in range(4)]
    jobs = {j["id"]: j for j in client.lease(["drain"], max_jobs=3)}
    assert len(jobs) == 3
    acked, failed, beating = sorted(jobs)
    server.proc.send_signal(signal.SIGTERM)
    # While the workers still hold leases, the server waits for them (up to the grace period).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.call("GET", "/readyz")[0] != 503:
        time.sleep(0.02)
    assert client.call("GET", "/readyz")[0] == 503
    status, body = client.call("POST", "/v1/jobs", {"queue": "drain", "kind": "k"})
    assert status == 503 and body["error"]["code"] == "unavailable"
    assert client.call("POST", "/v1/leases", {"queues": ["drain"], "max": 1})[0] == 503
    # Acks, fails and heartbeats of running jobs are still accepted.
    status, body = client.call("POST", f"/v1/jobs/{acked}:ack",
                               {"token": jobs[acked]["lease"]["token"]})
    assert status == 200 and body["state"] == "succeeded"
    status, body = client.call("POST", f"/v1/jobs/{failed}:fail", {
        "token": jobs[failed]["lease"]["token"],
        "error": {"type": "E", "message": "during drain", "retryable": False}})
    assert status == 200 and body["state"] == "dead", body
    status, body = client.call("POST", f"/v1/jobs/{beating}:heartbeat",
                               {"token": jobs[beating]["lease"]["token"], "extend_ms": 20000})
    assert status == 200 and body["cancel_requested"] is False, body
    status, body = client.call("POST", f"/v1/jobs/{beating}:ack",
                               {"token": jobs[beating]["lease"]["token"]})
    assert status == 200 and body["state"] == "succeeded"
    client.close()
    assert server.proc.wait(timeout=30) == 0
    server.start()
    c = server.client()
    # The acked jobs are gone, the failed one is dead with its error, the never-leased one is
    # still there; nothing from the refused enqueue.
    left = c.lease(["drain"], max_jobs=10)
    assert [j["id"] for j in left] == [i for i in ids if i not in jobs]
    _, view = c.get(failed)
    assert view["state"] == "dead" and view["errors"][-1]["message"] == "during drain"
    c.close()


def test_a_second_stop_signal_skips_the_rest_of_the_grace(make_server):
    import signal
    # A grace period of ten minutes with a job still leased: only the second signal can end the
    # drain within the test's deadline.
    server = make_server("--shutdown-grace-ms", "600000")
    c = server.client()
    jid = c.enqueue(queue="skip", kind="k")["id"]
    assert [j["id"] for j in c.lease(["skip"], lease_ms=600_000)] == [jid]
    c.close()
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: any("draining" in line for line in server.log_lines), 30,
               "the server to begin draining")
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=60) == 0
    wait_until(lambda: any("stopped cleanly" in line for line in server.log_lines), 10,
               "the last log line")
    assert any("skipping the rest of the grace" in line for line in server.log_lines)
    assert any("1 jobs still leased" in line for line in server.log_lines), server.log_lines
    # The lease that was cut short by the second signal is kept across the restart.
    server.start()
    c = server.client()
    _, view = c.get(jid)
    assert view["state"] == "active" and view["attempts"] == 1, view
    c.close()


def test_a_long_poll_whose_client_died_gives_its_job_back(server, client):
    # A worker process waiting in a long-poll is SIGKILLed. The job that arrives afterwards is
    # handed to its still-registered wait, but the reply cannot reach anyone: the server must
    # release the lease at once (ready, no attempt counted) instead of leaving the job active
    # until a lease expires.
    import signal
    import subprocess
    import sys
    code = (
        "import http.client, json, sys\n"
        f"c = http.client.HTTPConnection('127.0.0.1', {server.port})\n"
        "c.request('POST', '/v1/leases', body=json.dumps({'queues': ['gone'], 'max': 1, "
        "'wait_ms': 30000}), headers={'Content-Type': 'application/json'})\n"
        "print('waiting', flush=True)\n"
        "c.getresponse()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "waiting"
        deadline = time.monotonic() + 10
        while True:
            # 404 until the wait is registered: the queue exists only from then on.
            status, q = client.call("GET", "/v1/queues/gone")
            if status == 200 and q["waiting_workers"] == 1:
                break
            assert time.monotonic() < deadline, (status, q)
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    job = client.enqueue(queue="gone", kind="k", lease_ms=60000)
    deadline = time.monotonic() + 10
    while True:
        _, got = client.call("GET", f"/v1/jobs/{job['id']}")
        if got["state"] == "ready" and client.queue("gone")["waiting_workers"] == 0:
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.02)
    assert got["attempts"] == 0 and got["errors"] == [], got


def _waiting_lease(server, client, queue: str):
    """A raw keep-alive connection with a long-poll lease on `queue`, registered as a waiter."""
    import json
    import socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    body = json.dumps({"queues": [queue], "max": 1, "wait_ms": 30000}).encode()
    s.sendall(b"POST /v1/leases HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    wait_until(lambda: client.call("GET", f"/v1/queues/{queue}")[1].get("waiting_workers") == 1,
               10, "the long-poll to be registered")
    return s


def _read_reply(s) -> bytes:
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            if len(body) >= length:
                return data
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk


def _settled_view(client, job_id: str, state: str):
    view = client.get(job_id)[1]
    return view if settled(view, state) else None


def test_a_lease_reply_the_client_never_read_gives_its_job_back(server, client):
    # The reply reaches the worker's socket, but the worker closes it without reading (it hung
    # up, or died, as the job arrived): its kernel answers with a reset, and the server gives the
    # lease back at once instead of keeping the job until the lease expires.
    import select
    s = _waiting_lease(server, client, "unread")
    job = client.enqueue(queue="unread", kind="k", lease_ms=600000)
    assert select.select([s], [], [], 30)[0], "the lease reply never arrived"
    assert client.get(job["id"])[1]["state"] == "active"
    s.close()  # unread data in the receive buffer: a reset, not a clean close
    got = wait_until(lambda: _settled_view(client, job["id"], "ready"), 10,
                     "the unread lease to be given back")
    assert got["attempts"] == 0 and got["errors"] == [], got


def test_a_lease_reply_read_then_closed_keeps_its_job(server, client):
    # The control: a worker that read its lease reply and then closed the connection has the
    # job; the server must not take it back.
    s = _waiting_lease(server, client, "read")
    open_now = lambda: metric(client.call("GET", "/metrics")[1], "ym_http_open_connections")
    before = open_now()
    job = client.enqueue(queue="read", kind="k", lease_ms=600000)
    assert job["id"].encode() in _read_reply(s)
    s.close()
    # Once the server has closed its side (after its grace for a late reset), the job is still
    # the worker's.
    wait_until(lambda: open_now() <= before - 1, 10, "the server to close the connection")
    assert client.get(job["id"])[1]["state"] == "active"


def test_hang_ups_racing_lease_replies_keep_no_job(server, client):
    # 100 workers each hang up at a random moment around the arrival of their job: before the
    # server sends the reply, while it is on its way, or after it landed unread. Every job must
    # come back ready with no attempt counted; none may wait out its 10-minute lease.
    import random
    import threading
    rng = random.Random()
    producer = server.client()
    jobs = []
    for i in range(100):
        s = _waiting_lease(server, client, f"race{i}")
        t = threading.Thread(target=lambda q=f"race{i}": jobs.append(
            producer.enqueue(queue=q, kind="k", lease_ms=600000)["id"]))
        t.start()
        time.sleep(rng.uniform(0, 0.004))
        s.close()
        t.join(30)
    producer.close()
    assert len(jobs) == 100
    for jid in jobs:
        got = wait_until(lambda: _settled_view(client, jid, "ready"), 10,
                         f"job {jid} to be given back")
        assert got["attempts"] == 0, got
