"""The C++ SDK's worker runtime (include/yardmaster/worker.h), through examples/cpp_worker.cc.

The example appends "start ID ATTEMPT", "done ID", "cancelled ID", "stopped ID" lines to its
--out file; every wait is bounded.
"""

import collections
import os
import signal
import time

from wtest import FixedPortServer, example_worker, free_port, read_lines, wait_for


def start_worker(procs, server, out, *extra):
    return procs([example_worker(), "--server", server.url(), "--queue", "w", "--out", str(out),
                  *extra])


def events(out, kind):
    return [line.split()[1] for line in read_lines(str(out)) if line.split()[0] == kind]


def enqueue_batch(client, n, kind="record", **spec):
    status, body = client.call("POST", "/v1/jobs:batch", {
        "jobs": [dict(queue="w", kind=kind, payload={"n": i}, **spec) for i in range(n)]})
    assert status == 200, body
    return [r["id"] for r in body["results"]]


def test_every_job_processed_exactly_once(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    ids = enqueue_batch(client, 300)
    w = start_worker(procs, server, out, "--concurrency", "4", "--prefetch", "4")
    wait_for(lambda: len(events(out, "done")) >= 300, 60, "300 jobs done")
    wait_for(lambda: client.queue("w")["counts"]["active"] == 0, 10, "all acks applied")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    done = collections.Counter(events(out, "done"))
    started = collections.Counter(events(out, "start"))
    assert sorted(done) == sorted(ids)
    assert set(done.values()) == {1}, [i for i, c in done.items() if c > 1]
    assert set(started.values()) == {1}
    counts = client.queue("w")["counts"]
    assert counts["ready"] == 0 and counts["active"] == 0 and counts["scheduled"] == 0
    assert "succeeded=300" in w.log() and "leases_lost=0" in w.log()


def test_kill_9_mid_job_redelivers_after_lease_expiry(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="record", lease_ms=1000)["id"]
    w1 = start_worker(procs, server, out, "--sleep-ms", "60000")
    wait_for(lambda: f"start {jid} 1" in read_lines(str(out)), 15, "the first attempt to start")
    killed_at = time.monotonic()
    w1.kill()
    w2 = start_worker(procs, server, out)
    wait_for(lambda: jid in events(out, "done"), 30, "re-delivery after the lease expired")
    # Not before the 1 s lease could expire: the dead worker's lease had to run out first.
    assert time.monotonic() - killed_at >= 0.5
    assert f"start {jid} 2" in read_lines(str(out))
    w2.signal(signal.SIGTERM)
    assert w2.wait(30) == 0


def test_sigterm_finishes_running_and_hands_back_unstarted(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    ids = enqueue_batch(client, 6)
    w = start_worker(procs, server, out, "--concurrency", "2", "--prefetch", "2",
                     "--sleep-ms", "1500", "--grace-ms", "20000")
    wait_for(lambda: len(events(out, "start")) >= 2, 15, "two handlers to start")
    wait_for(lambda: client.queue("w")["counts"]["active"] == 4, 10, "prefetched leases")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    started = events(out, "start")
    done = events(out, "done")
    assert len(started) == 2 and sorted(done) == sorted(started), read_lines(str(out))
    assert not events(out, "stopped")
    for jid in ids:
        status, job = client.get(jid)
        if jid in done:
            assert status == 404 or job["state"] == "succeeded"
        else:
            # Handed back (prefetched) or never leased: ready again at once, for anyone.
            assert status == 200 and job["state"] == "ready", job
    assert client.queue("w")["counts"]["ready"] == 4
    assert "handed_back=2" in w.log(), w.log()


def test_grace_expiry_hands_back_running_jobs(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="record")["id"]
    w = start_worker(procs, server, out, "--sleep-ms", "60000", "--grace-ms", "500")
    wait_for(lambda: events(out, "start"), 15, "the handler to start")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    assert w.wait(20) == 0, w.log()
    assert time.monotonic() - t0 < 10
    assert events(out, "stopped") == [jid]
    _, job = client.get(jid)
    assert job["state"] == "ready" and job["errors"][-1]["type"] == "shutdown", job


def test_heartbeats_keep_a_job_alive_past_its_lease(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="record", lease_ms=500)["id"]
    # 4 s of work under a 500 ms lease: eight leases' worth, kept alive by heartbeats.
    w = start_worker(procs, server, out, "--sleep-ms", "4000")
    wait_for(lambda: jid in events(out, "done"), 30, "the long job to finish")
    wait_for(lambda: client.queue("w")["counts"]["active"] == 0, 10, "the ack")
    assert events(out, "start") == [jid], read_lines(str(out))
    status, job = client.get(jid)
    assert status == 404 or job["state"] == "succeeded"
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0
    assert "leases_lost=0" in w.log()


def test_cancel_reaches_the_running_handler(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="until_cancelled", lease_ms=1000)["id"]
    w = start_worker(procs, server, out)
    wait_for(lambda: events(out, "start"), 15, "the handler to start")
    status, job = client.call("POST", f"/v1/jobs/{jid}:cancel")
    assert status == 200 and job["cancel_requested"], job
    # The worker learns it from its next heartbeat (every third of the 1 s lease).
    wait_for(lambda: jid in events(out, "cancelled"), 10, "the handler to see the cancel")
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 10, "the job to be cancelled")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_worker_survives_a_server_restart(procs, tmp_path):
    out = tmp_path / "out.txt"
    server = FixedPortServer(str(tmp_path / "data"), free_port()).start()
    try:
        c = server.client()
        first = enqueue_batch(c, 20)
        w = start_worker(procs, server, out, "--concurrency", "2")
        wait_for(lambda: set(first) <= set(events(out, "done")), 30, "the first batch")
        server.kill()
        c.close()
        time.sleep(1.0)  # the worker's long-poll fails and it starts backing off
        server.start()
        c = server.client()
        second = enqueue_batch(c, 20)
        wait_for(lambda: set(second) <= set(events(out, "done")), 60,
                 "the second batch after the restart")
        w.signal(signal.SIGTERM)
        assert w.wait(30) == 0, w.log()
        c.close()
    finally:
        server.kill()
