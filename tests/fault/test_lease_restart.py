"""Leases survive a restart (issue 7, item 5; docs/guarantees.md).

* SIGTERM (an upgrade): the jobs workers hold stay leased to them across the restart; every
  worker's heartbeat and ack still succeed with its token, and no job is leased twice.
* SIGKILL: every durably recorded lease is kept until its recorded expiry, then expires
  normally and the attempt is counted.
"""

import time

import pytest

from ymtest import Server, wait_until

QUEUE = "leases"


def heartbeat(c, job, **extra):
    body = {"token": job["lease"]["token"]}
    body.update(extra)
    return c.call("POST", f"/v1/jobs/{job['id']}:heartbeat", body)


def same_instant(a, b):
    """Expiry times are kept on the monotonic clock and shown on the wall clock: a conversion
    may differ by a millisecond or two from the time first shown."""
    return abs(a - b) <= 5



def test_sigterm_restart_keeps_every_lease_and_no_job_is_leased_twice(tmp_path):
    srv = Server(str(tmp_path / "data"), ["--shutdown-grace-ms", "100"]).start()
    try:
        c = srv.client()
        ids = [c.enqueue(queue=QUEUE, kind="k", payload={"n": i}, lease_ms=600_000)["id"]
               for i in range(20)]
        held = c.lease([QUEUE], max_jobs=10)
        assert len(held) == 10
        # The worker's heartbeats work before the restart, as usual.
        status, body = heartbeat(c, held[0])
        assert status == 200, body
        # SIGTERM: the grace period ends with the jobs still leased.
        assert srv.terminate() == 0
        assert any("still leased" in line for line in srv.log_lines), srv.log_lines[-5:]
        srv.start()
        c = srv.client()
        for job in held:
            status, body = c.get(job["id"])
            assert status == 200, body
            assert body["state"] == "active", body
            assert body["attempts"] == 1, body
            assert body["lease"]["worker_id"] == "test", body
            assert same_instant(body["lease"]["expires_at"], job["lease"]["expires_at"]), body
            status, body = heartbeat(c, job)
            assert status == 200, (job["id"], body)
        # A second worker gets only the ten jobs nobody held: nothing is dispatched twice.
        rest = c.lease([QUEUE], max_jobs=100)
        held_ids = {j["id"] for j in held}
        assert {j["id"] for j in rest} == set(ids) - held_ids
        assert all(j["attempt"] == 1 for j in rest)
        for job in held + rest:
            c.ack(job)
        counts = c.queue(QUEUE)["counts"]
        assert counts["active"] == 0 and counts["ready"] == 0, counts
    finally:
        srv.stop()


@pytest.mark.parametrize("lease_reply", ["immediate", "after-commit"])
def test_kill9_keeps_a_recorded_lease_until_its_expiry_and_counts_the_attempt(tmp_path,
                                                                               lease_reply):
    lease_ms = 10_000
    srv = Server(str(tmp_path / "data"), ["--lease-reply", lease_reply]).start()
    try:
        c = srv.client()
        for i in range(2):
            c.enqueue(queue=QUEUE, kind="k", payload={"n": i}, lease_ms=lease_ms,
                      max_attempts=5)
        held = c.lease([QUEUE], max_jobs=2)
        assert len(held) == 2
        if lease_reply == "immediate":
            # The lease reply went out before the commit; any later write's 2xx means what it
            # observed, the leases included, is durable ("recorded").
            c.enqueue(queue="sync", kind="k")
        srv.kill()
        srv.start()
        c = srv.client()
        # Kept: still active under the recorded lease, not handed to anyone else.
        assert c.lease([QUEUE], max_jobs=10) == []
        for job in held:
            status, body = c.get(job["id"])
            assert status == 200 and body["state"] == "active", body
            assert same_instant(body["lease"]["expires_at"], job["lease"]["expires_at"]), body
        # The token of a worker that outlived the server's crash still works (and keeps this
        # job leased for the rest of the test).
        status, body = heartbeat(c, held[0], extend_ms=600_000)
        assert status == 200, body
        # The other lease expires at its recorded time (its worker never comes back), and the
        # attempt that died with the server is counted.
        other = held[1]
        wait_until(lambda: c.get(other["id"])[1]["state"] == "ready", 60, "the lease to expire")
        status, body = c.get(other["id"])
        assert time.time() * 1000 >= other["lease"]["expires_at"] - 50
        assert body["attempts"] == 1, body
        assert [e["type"] for e in body["errors"]] == ["lease_expired"], body
        again = c.lease([QUEUE], max_jobs=10)
        assert [j["id"] for j in again] == [other["id"]]
        assert again[0]["attempt"] == 2
    finally:
        srv.stop()
