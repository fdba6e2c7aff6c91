"""The C++ SDK's worker runtime (include/yardmaster/worker.h), through examples/cpp_worker.cc.

The example appends "start ID ATTEMPT", "done ID", "cancelled ID", "stopped ID" lines to its
--out file; every wait is bounded.
"""

import collections
import signal
import time

from wtest import FixedPortServer, example_worker, free_port, read_lines, wait_for
from ymtest import HOLD_LEASE_MS, settled, wait_lease_held


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
    # Automatic prefetch (the default): it grows once handlers have finished, and may not
    # cost a job its exactly-once run on a clean run.
    w = start_worker(procs, server, out, "--concurrency", "4")
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


def starts(out, jid):
    """The attempt numbers of the "start" lines of job `jid`."""
    return [int(line.split()[2]) for line in read_lines(str(out))
            if line.split()[:2] == ["start", jid]]


def test_kill_9_mid_job_redelivers_after_lease_expiry(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="record", lease_ms=1000)["id"]
    w1 = start_worker(procs, server, out, "--sleep-ms", "60000")
    wait_for(lambda: starts(out, jid), 15, "the first attempt to start")
    w1.kill()
    # The dead worker's lease has to run out: the job comes back ready with a lease_expired
    # error, and only then does the second worker start (so nothing else can have freed it).
    wait_for(lambda: client.get(jid)[1]["state"] == "ready", 30, "the lease to expire")
    job = client.get(jid)[1]
    assert job["errors"][-1]["type"] == "lease_expired", job
    w2 = start_worker(procs, server, out)
    wait_for(lambda: jid in events(out, "done"), 30, "the re-delivery")
    # Attempt 2 on a quiet machine; on a loaded one the first worker's lease may already have
    # run out once before the kill (at-least-once), so only "a later attempt" is certain.
    assert max(starts(out, jid)) >= 2, read_lines(str(out))
    w2.signal(signal.SIGTERM)
    assert w2.wait(30) == 0


def test_sigterm_finishes_running_and_hands_back_unstarted(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    ids = enqueue_batch(client, 6)
    # The handlers run 4 s: the SIGTERM must reach the worker while they still run (after the
    # waits below), and the grace (20 s) lets them finish.
    w = start_worker(procs, server, out, "--concurrency", "2", "--prefetch", "2",
                     "--sleep-ms", "4000", "--grace-ms", "20000")
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
    status, body = client.call("PUT", "/v1/queues/w?create=true", {"retention": {"succeeded_ms": 600000}})
    assert status == 200, body
    # The handler runs until the test cancels it (and then succeeds anyway); the server shows
    # the lease, on its first attempt, extended by heartbeats two lease lengths past where it
    # started: held well past its own expiry.
    jid = client.enqueue(queue="w", kind="finish_despite_cancel", lease_ms=HOLD_LEASE_MS)["id"]
    w = start_worker(procs, server, out)
    wait_lease_held(lambda: client.get(jid)[1], HOLD_LEASE_MS)
    assert client.call("POST", f"/v1/jobs/{jid}:cancel")[0] == 200
    wait_for(lambda: client.get(jid)[1]["state"] == "succeeded", 20, "the ack")
    job = client.get(jid)[1]
    assert job["attempts"] == 1 and job["errors"] == [], job
    assert events(out, "start") == [jid], read_lines(str(out))
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0
    assert "leases_lost=0" in w.log(), w.log()


def test_cancel_reaches_the_running_handler(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="until_cancelled", lease_ms=HOLD_LEASE_MS)["id"]
    w = start_worker(procs, server, out)
    wait_for(lambda: events(out, "start"), 15, "the handler to start")
    status, job = client.call("POST", f"/v1/jobs/{jid}:cancel")
    assert status == 200 and job["cancel_requested"], job
    # The worker's cancel watch carries it at once (its heartbeats would, every third of the
    # lease).
    wait_for(lambda: jid in events(out, "cancelled"), 10, "the handler to see the cancel")
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 10, "the job to be cancelled")
    assert client.get(jid)[1]["errors"][-1]["type"] == "cancelled"
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0
    assert "cancelled=1" in w.log(), w.log()


# A lease of 30 s: heartbeats come about 10 s apart, so only the cancel watch can carry a cancel
# within CANCEL_BOUND_S (the old runtime took a heartbeat interval: about 10 s).
LONG_LEASE_MS = 30000
CANCEL_BOUND_S = 5.0


def test_cancel_reaches_the_handler_long_before_the_next_heartbeat(server, client, procs,
                                                                    tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="until_cancelled", lease_ms=LONG_LEASE_MS)["id"]
    w = start_worker(procs, server, out)
    wait_for(lambda: events(out, "start"), 15, "the handler to start")
    # The first heartbeat is ~10 s after the lease: the cancel below comes well before it.
    t0 = time.monotonic()
    status, job = client.call("POST", f"/v1/jobs/{jid}:cancel")
    assert status == 200 and job["cancel_requested"], job
    wait_for(lambda: jid in events(out, "cancelled"), 20, "the handler to see the cancel")
    took = time.monotonic() - t0
    assert took < CANCEL_BOUND_S, f"the cancel took {took:.2f} s to reach the handler"
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 10, "the job to be cancelled")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0
    assert "cancelled=1" in w.log(), w.log()


def test_progress_reaches_the_job_object_long_before_the_next_heartbeat(server, client, procs,
                                                                        tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="progress", lease_ms=LONG_LEASE_MS)["id"]
    w = start_worker(procs, server, out)
    wait_for(lambda: jid in events(out, "progress"), 15, "the handler to report progress")
    # The first heartbeat is ~10 s after the lease; the report brings one forward.
    t0 = time.monotonic()
    wait_for(lambda: client.get(jid)[1].get("progress"), 20, "the report to reach the server")
    took = time.monotonic() - t0
    assert took < CANCEL_BOUND_S, f"the report took {took:.2f} s to reach the server"
    assert client.get(jid)[1]["progress"] == {"percent": 30, "step": "load"}
    client.call("POST", f"/v1/jobs/{jid}:cancel")
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 20, "the job to be cancelled")
    assert client.get(jid)[1]["progress"] is None
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_automatic_prefetch_holds_no_jobs_behind_long_handlers(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    # Far more jobs than the 2 slots finish while the test samples, however slowly it runs.
    enqueue_batch(client, 100)
    w = start_worker(procs, server, out, "--concurrency", "2", "--sleep-ms", "1000")
    # Once 8 handlers have finished the runtime knows the jobs take 1 s, far longer than a
    # lease round trip: it keeps round(2 slots x 2 x round trip / 1 s) = 0 jobs queued while a
    # round trip averages under 125 ms, which holds on a loaded machine (250 ms handlers would
    # get one queued job from 31 ms on). Active on the server is then the 2 running jobs plus
    # at most one per slot whose ack is on its way (a prefetching worker would hold all that
    # is ready).
    wait_for(lambda: len(events(out, "done")) >= 8, 60, "eight jobs done")
    samples = []
    for _ in range(20):
        samples.append(client.queue("w")["counts"]["active"])
        time.sleep(0.05)
    assert max(samples) <= 4, samples
    assert client.queue("w")["counts"]["ready"] > 0
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()


def test_success_after_a_cancel_is_acked(server, client, procs, tmp_path):
    # The outcome is what the handler reports: it saw the cancel and finished anyway.
    out = tmp_path / "out.txt"
    # Keep succeeded jobs, so that the result can be read back.
    status, body = client.call("PUT", "/v1/queues/w?create=true", {"retention": {
        "succeeded_ms": 600000, "dead_ms": 600000, "cancelled_ms": 600000}})
    assert status == 200, body
    jid = client.enqueue(queue="w", kind="finish_despite_cancel", lease_ms=HOLD_LEASE_MS)["id"]
    w = start_worker(procs, server, out)
    wait_for(lambda: events(out, "start"), 15, "the handler to start")
    assert client.call("POST", f"/v1/jobs/{jid}:cancel")[0] == 200
    wait_for(lambda: jid in events(out, "done"), 10, "the handler to see the cancel and finish")
    wait_for(lambda: settled(client.get(jid)[1], "succeeded"), 20, "the ack")
    job = client.get(jid)[1]
    assert job["cancel_requested"] and job["result"] == {"finished": "despite the cancel"}, job
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_a_job_cancelled_while_prefetched_never_starts(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    # One slot and one prefetched job: `first` runs until cancelled, `second` waits queued in
    # the worker (priority makes the order certain).
    first = client.enqueue(queue="w", kind="until_cancelled", priority=5,
                           lease_ms=HOLD_LEASE_MS)["id"]
    second = client.enqueue(queue="w", kind="record", lease_ms=HOLD_LEASE_MS)["id"]
    w = start_worker(procs, server, out, "--prefetch", "1")
    wait_for(lambda: events(out, "start") == [first], 15, "the first job to start")
    wait_for(lambda: client.get(second)[1]["state"] == "active", 10, "the prefetch")
    assert client.call("POST", f"/v1/jobs/{second}:cancel")[0] == 200
    # A heartbeat after the cancel moves the lease's expiry by about its interval (a third of
    # the lease: 1 s; the expiry shown may wobble by a millisecond between reads, which is not
    # a heartbeat); its reply carried the cancel. The runtime sends one job's heartbeats one
    # after the other and applies each reply before the next, so a second move proves that the
    # first reply (with the cancel) was applied.
    for n in (1, 2):
        before = client.get(second)[1]["lease"]["expires_at"]
        wait_for(lambda: client.get(second)[1]["lease"]["expires_at"] >= before + 500, 20,
                 f"heartbeat {n} of the queued job after the cancel")
    assert client.call("POST", f"/v1/jobs/{first}:cancel")[0] == 200
    wait_for(lambda: client.get(second)[1].get("state") == "cancelled", 20,
             "the queued job to end")
    assert events(out, "start") == [first], read_lines(str(out))
    assert client.get(second)[1]["errors"][-1]["type"] == "cancelled"
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_exceptions_and_unknown_kinds_are_retried_with_their_type(server, client, procs,
                                                                  tmp_path):
    out = tmp_path / "out.txt"
    # A backoff of up to 30 days (full jitter: uniform in [0, 30 d]) keeps each job `scheduled`
    # after its first failure; with the default (1 s) the retry could run before the check.
    slow = {"initial_ms": 2592000000, "max_ms": 2592000000, "multiplier": 1.0}
    threw = client.enqueue(queue="w", kind="throw", backoff=slow)["id"]
    unknown = client.enqueue(queue="w", kind="no_such_kind", backoff=slow)["id"]
    w = start_worker(procs, server, out)
    for jid in (threw, unknown):
        wait_for(lambda: client.get(jid)[1]["attempts"] == 1 and
                 client.get(jid)[1]["state"] == "scheduled", 15, "a retryable failure")
    err = client.get(threw)[1]["errors"][-1]
    assert err["type"] == "std::runtime_error" and err["message"] == "the handler threw", err
    err = client.get(unknown)[1]["errors"][-1]
    assert err["type"] == "unknown_kind", err
    # The message names what this worker can do, for the operator who reads it.
    assert "no_such_kind" in err["message"] and "until_cancelled" in err["message"], err
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_a_result_the_server_refuses_fails_as_invalid_result(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    bad = client.enqueue(queue="w", kind="bad_result")["id"]
    good = enqueue_batch(client, 3)
    w = start_worker(procs, server, out)
    wait_for(lambda: settled(client.get(bad)[1], "dead"), 20, "the refused result to fail")
    job = client.get(bad)[1]
    assert job["errors"][-1]["type"] == "invalid_result", job
    assert job["dead_reason"] == "non_retryable" and job["attempts"] == 1, job
    # One bad result does not block the outcomes batched with it.
    wait_for(lambda: set(good) <= set(events(out, "done")), 15, "the other jobs")
    wait_for(lambda: client.queue("w")["counts"]["active"] == 0, 10, "their acks")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()


def test_sigterm_interrupts_an_idle_long_poll(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    w = start_worker(procs, server, out)  # default poll_wait: 10 s

    def long_polls():
        # In flight: the worker's lease request plus this very metrics request.
        text = client.raw("GET", "/metrics")[2].decode()
        line = [l for l in text.splitlines() if l.startswith("ym_http_in_flight_requests ")]
        return line and float(line[0].split()[1]) >= 2

    wait_for(long_polls, 15, "the worker's long-poll on the empty queue")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    # Without the interrupt the worker would sit out the rest of its 10 s poll.
    assert time.monotonic() - t0 < 5, w.log()


def test_a_final_refusal_of_the_lease_requests_stops_the_worker(server, client, procs,
                                                                tmp_path):
    # worker_id is limited to 128 bytes by the server; retrying cannot fix that.
    w = start_worker(procs, server, tmp_path / "out.txt", "--worker-id", "w" * 200)
    assert w.wait(30) == 1, w.log()
    assert "validation_failed" in w.log() and "worker_id" in w.log(), w.log()


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
        # The worker's long-poll fails and it starts backing off (it says so once per outage).
        wait_for(lambda: "retrying with backoff" in w.log(), 30, "the worker to notice")
        server.start()
        c = server.client()
        second = enqueue_batch(c, 20)
        wait_for(lambda: set(second) <= set(events(out, "done")), 60,
                 "the second batch after the restart")
        w.signal(signal.SIGTERM)
        assert w.wait(30) == 0, w.log()
        c.close()
    finally:
        server.stop()


def test_each_failed_attempt_is_logged_as_a_warning(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    slow = {"initial_ms": 2592000000, "max_ms": 2592000000, "multiplier": 1.0}
    threw = client.enqueue(queue="w", kind="throw", backoff=slow, max_attempts=3)["id"]
    last = client.enqueue(queue="w", kind="throw", max_attempts=1)["id"]
    failed = client.enqueue(queue="w", kind="fail")["id"]
    retry = client.enqueue(queue="w", kind="retry", max_attempts=5)["id"]
    unknown = client.enqueue(queue="w", kind="no_such_kind", backoff=slow, max_attempts=2)["id"]
    ok = client.enqueue(queue="w", kind="record")["id"]
    w = start_worker(procs, server, out, "--worker-id", "wlog", "--concurrency", "2")
    warning = "yardmaster worker wlog: warning: job "
    expected = {
        threw: f"{warning}{threw} (queue w, kind throw) attempt 1 of 3 failed "
               "(std::runtime_error): the handler threw; it will be retried",
        last: f"{warning}{last} (queue w, kind throw) attempt 1 of 1 failed "
              "(std::runtime_error): the handler threw; no attempts left: the job is dead",
        failed: f"{warning}{failed} (queue w, kind fail) attempt 1 of 10 failed (example): "
                "this job always fails; not retried: the job is dead",
        retry: f"{warning}{retry} (queue w, kind retry) attempt 1 of 5 failed (retry): "
               "try again later; it will be retried",
        unknown: f"{warning}{unknown} (queue w, kind no_such_kind) attempt 1 of 2 failed "
                 f"(unknown_kind): no handler for kind 'no_such_kind'",
    }
    wait_for(lambda: all(any(line.startswith(e) for line in w.stderr)
                         for e in expected.values()), 30, "a warning per failed attempt")
    wait_for(lambda: ok in events(out, "done"), 15, "the good job")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    for jid, line in expected.items():
        assert sum(1 for x in w.stderr if x.startswith(line)) == 1, (jid, w.log())
    # A success is not a failed attempt.
    assert not [x for x in w.stderr if f"job {ok} " in x], w.log()
    # The worker's life is logged too, each line with its severity.
    assert "yardmaster worker wlog: info: stopped" in w.stderr, w.log()


def test_a_handler_obeying_a_cancel_is_logged_as_info(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    jid = client.enqueue(queue="w", kind="until_cancelled", lease_ms=1000)["id"]
    w = start_worker(procs, server, out, "--worker-id", "wlog")
    wait_for(lambda: jid in events(out, "start"), 15, "the job to start")
    client.call("POST", f"/v1/jobs/{jid}:cancel", {})
    line = (f"yardmaster worker wlog: info: job {jid} (queue w, kind until_cancelled) attempt "
            "1 of 10 failed (cancelled): stopped at the operator's request; the job ends "
            "cancelled")
    wait_for(lambda: line in w.stderr, 30, "the cancel to be logged")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
