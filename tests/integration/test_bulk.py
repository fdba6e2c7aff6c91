"""Bulk operations: POST /v1/jobs:cancel, :replay and :delete (docs/api.md "Bulk operations";
docs/guarantees.md "Bulk operations").

Black-box against the real binary: each operation by several filters, bounded per request and
resumed with the cursor, a retried request counted once, jobs changing state while a bulk
operation runs, delete never touching a live job, bad input changing nothing, and drain.
The interleavings that need a read held on the server's reader thread are unit-tested
(tests/unit/bulk_test.cc).
"""

import signal
import threading
import time

from ymtest import wait_until

KEEP = {"succeeded_ms": 3_600_000, "dead_ms": 3_600_000, "cancelled_ms": 3_600_000}


def keep_finished(client, queue):
    status, body = client.call("PUT", f"/v1/queues/{queue}?create=true", {"retention": KEEP})
    assert status == 200, body


def bulk(client, verb, body, expect=200):
    status, reply = client.call("POST", f"/v1/jobs:{verb}", body)
    assert status == expect, (status, reply)
    return reply


def walk(client, verb, body, limit):
    """Repeats the request with next_cursor until null; returns the pages."""
    pages, cursor = [], None
    for _ in range(1000):
        page = bulk(client, verb, {**body, "limit": limit, **({"cursor": cursor} if cursor else {})})
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor never ended")


def counts(client, queue):
    return client.queue(queue)["counts"]


def fail_all(client, queue, n, retryable=False):
    jobs = client.lease([queue], max_jobs=n)
    assert len(jobs) == n, jobs
    for j in jobs:
        status, body = client.call("POST", f"/v1/jobs/{j['id']}:fail", {
            "token": j["lease"]["token"],
            "error": {"type": "E", "message": "boom", "retryable": retryable}})
        assert status == 200 and body["state"] == "dead", body
    return [j["id"] for j in jobs]


def test_cancel_by_queue_kind_tag_state_and_creation_time(client):
    a = [client.enqueue(queue="bc-a", kind="mail", tags=["vip"])["id"] for _ in range(3)]
    b = [client.enqueue(queue="bc-a", kind="sms")["id"] for _ in range(2)]
    later = [client.enqueue(queue="bc-b", kind="mail", delay_ms=3_600_000)["id"]
             for _ in range(2)]
    c = [client.enqueue(queue="bc-b", kind="push", tags=["vip"])["id"] for _ in range(2)]
    [running] = client.lease(["bc-a"])  # a[0], now active
    assert running["id"] == a[0]

    reply = bulk(client, "cancel", {"queue": "bc-a", "kind": "mail"})
    assert reply == {"matched": 3, "cancelled": 3, "cancel_requested": 1, "skipped": 0,
                     "next_cursor": None}, reply
    assert client.get(a[0])[1]["cancel_requested"] is True
    assert client.get(a[0])[1]["state"] == "active"
    assert [client.get(i)[1]["state"] for i in a[1:]] == ["cancelled"] * 2
    assert [client.get(i)[1]["state"] for i in b] == ["ready"] * 2, "another kind"

    reply = bulk(client, "cancel", {"state": "scheduled"})
    assert (reply["matched"], reply["cancelled"]) == (2, 2), reply
    assert [client.get(i)[1]["state"] for i in later] == ["cancelled"] * 2

    reply = bulk(client, "cancel", {"tag": "vip"})
    # c[0], c[1]; a[0] is active with its cancel already requested: matched, skipped.
    assert (reply["matched"], reply["cancelled"], reply["skipped"]) == (3, 2, 1), reply
    assert [client.get(i)[1]["state"] for i in c] == ["cancelled"] * 2

    created = client.get(b[1])[1]["created_at"]
    reply = bulk(client, "cancel", {"queue": "bc-a", "kind": "sms", "created_after": created})
    assert reply["cancelled"] >= 1 and client.get(b[1])[1]["state"] == "cancelled", reply
    reply = bulk(client, "cancel", {"namespace": "default", "queue": "bc-a", "kind": "sms"})
    assert [client.get(i)[1]["state"] for i in b] == ["cancelled"] * 2
    # Another namespace matches nothing.
    assert bulk(client, "cancel", {"namespace": "other", "queue": "bc-a"})["matched"] == 0


def test_each_request_is_bounded_and_resumes_with_its_cursor(client):
    ids = [client.enqueue(queue="bnd", kind="k")["id"] for _ in range(25)]
    first = bulk(client, "cancel", {"queue": "bnd", "limit": 10})
    assert (first["matched"], first["cancelled"]) == (10, 10) and first["next_cursor"], first
    assert [client.get(i)[1]["state"] for i in ids].count("cancelled") == 10
    # Interrupted here: the client stops, other work happens, it resumes later.
    more = [client.enqueue(queue="bnd", kind="k")["id"] for _ in range(3)]
    pages = walk(client, "cancel", {"queue": "bnd"}, 10)
    # (the walk above restarts from the beginning; resuming from `first` is the next check)
    assert sum(p["cancelled"] for p in pages) == 18
    assert all(p["matched"] <= 10 for p in pages)
    assert [client.get(i)[1]["state"] for i in ids + more] == ["cancelled"] * 28

    # Replay them in pages of 7, resuming from each page's cursor.
    pages = walk(client, "replay", {"queue": "bnd"}, 7)
    assert [p["replayed"] for p in pages[:4]] == [7, 7, 7, 7], pages
    assert sum(p["replayed"] for p in pages) == 28
    assert pages[-1]["next_cursor"] is None
    # A resumed walk that starts from the first page's cursor continues after it.
    bulk(client, "cancel", {"queue": "bnd"})
    page1 = bulk(client, "replay", {"queue": "bnd", "limit": 5})
    assert page1["replayed"] == 5
    page2 = bulk(client, "replay", {"queue": "bnd", "limit": 100, "cursor": page1["next_cursor"]})
    assert page2["replayed"] == 23 and page2["next_cursor"] is None, page2
    runs = sorted(client.get(i)[1]["runs"] for i in ids + more)
    assert runs == [3] * 28, "every job replayed exactly twice in all"


def test_a_walk_stopped_after_one_page_resumes_from_its_cursor(server, client):
    """The CLI walks the cursor; a walk cut short (--max-pages) resumes from the cursor it
    printed."""
    import subprocess
    from ymtest import binary
    ids = [client.enqueue(queue="kill", kind="k")["id"] for _ in range(30)]
    env = {"YM_URL": server.url()}
    # One page of 10 (as if the client died right after it): --max-pages stops the walk.
    out = subprocess.run([binary(), "jobs", "cancel", "--queue", "kill", "--limit", "10",
                          "--max-pages", "1", "--yes"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "cancelled 10" in out.stdout, out.stdout
    cursor = [line.split("--cursor ", 1)[1].strip() for line in out.stderr.splitlines()
              if "--cursor " in line][-1]
    out = subprocess.run([binary(), "jobs", "cancel", "--queue", "kill", "--limit", "10",
                          "--cursor", cursor, "--yes"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "cancelled 20" in out.stdout, out.stdout
    assert [client.get(i)[1]["state"] for i in ids] == ["cancelled"] * 30


def test_a_retried_request_never_replays_a_job_whose_new_run_is_live(client):
    ids = [client.enqueue(queue="retry", kind="k")["id"] for _ in range(4)]
    fail_all(client, "retry", 4)
    body = {"queue": "retry", "limit": 100}
    first = bulk(client, "replay", body)
    assert (first["matched"], first["replayed"]) == (4, 4), first
    # The reply was "lost": the client sends the same request again. Two of the new runs are
    # running, two are waiting; none may be replayed again.
    running = client.lease(["retry"], max_jobs=2)
    assert len(running) == 2
    again = bulk(client, "replay", body)
    assert again == {"matched": 0, "replayed": 0, "skipped": 0, "next_cursor": None}, again
    assert sorted(client.get(i)[1]["runs"] for i in ids) == [2, 2, 2, 2]
    # Only a new run that died again is dead, and replayed again, as any later replay would.
    status, _ = client.call("POST", f"/v1/jobs/{running[0]['id']}:fail", {
        "token": running[0]["lease"]["token"],
        "error": {"message": "again", "retryable": False}})
    assert status == 200
    third = bulk(client, "replay", body)
    assert (third["matched"], third["replayed"]) == (1, 1), third
    assert client.get(running[0]["id"])[1]["runs"] == 3

    # A cancel retried: counted once (the flagged active job is skipped the second time).
    first = bulk(client, "cancel", body)
    assert (first["cancelled"], first["cancel_requested"]) == (4, 1), first
    again = bulk(client, "cancel", body)
    assert (again["matched"], again["cancelled"], again["skipped"]) == (1, 0, 1), again


def test_delete_takes_finished_jobs_only_and_keeps_idempotency_final_states(client):
    keep_finished(client, "del")
    live = [client.enqueue(queue="del", kind="k")["id"] for _ in range(3)]
    done = client.enqueue(queue="del", kind="k", idempotency_key="once")["id"]
    [j] = [x for x in client.lease(["del"], max_jobs=10) if x["id"] == done] or [None]
    assert j is not None
    client.ack(j)
    # Leased ones other than `done` were handed back as still active: leave them running.
    dead_ids = []
    for _ in range(2):
        dead_ids.append(client.enqueue(queue="del", kind="k")["id"])
    jobs = client.lease(["del"], max_jobs=10)
    for x in jobs:
        if x["id"] in dead_ids:
            client.call("POST", f"/v1/jobs/{x['id']}:fail", {
                "token": x["lease"]["token"], "error": {"message": "x", "retryable": False}})
    before = counts(client, "del")
    assert before["succeeded"] == 1 and before["dead"] == 2, before

    status, body = client.call("POST", "/v1/jobs:delete", {"queue": "del", "state": "ready"})
    assert status == 422 and "not ready" in body["error"]["message"], body
    dry = bulk(client, "delete", {"queue": "del", "dry_run": True})
    assert (dry["matched"], dry["deleted"], dry["dry_run"]) == (3, 0, True), dry
    assert counts(client, "del") == before, "a dry run changes nothing"

    reply = bulk(client, "delete", {"queue": "del", "state": "dead"})
    assert (reply["matched"], reply["deleted"]) == (2, 2), reply
    assert [client.get(i)[0] for i in dead_ids] == [404, 404]
    reply = bulk(client, "delete", {"queue": "del"})
    assert (reply["matched"], reply["deleted"]) == (1, 1), reply
    assert client.get(done)[0] == 404
    after = counts(client, "del")
    assert (after["succeeded"], after["dead"], after["cancelled"]) == (0, 0, 0), after
    # No live job was touched.
    for i in live:
        status, view = client.get(i)
        assert status == 200 and view["state"] in ("ready", "active"), view
    # The idempotency key keeps the job's final state after the row went.
    status, dup = client.call("POST", "/v1/jobs", {"queue": "del", "kind": "k",
                                                    "idempotency_key": "once"})
    assert status == 200 and dup == {"id": done, "state": "succeeded", "duplicate": True}, dup
    # A retry deletes nothing more.
    assert bulk(client, "delete", {"queue": "del"})["deleted"] == 0


def test_jobs_changing_state_while_a_bulk_cancel_runs(client, server):
    """A worker leases and acks jobs of the queue while it is cancelled in pages: every job ends
    either cancelled or succeeded (an active one flagged may still succeed), and every page
    counts each job it matched exactly once."""
    n = 600
    resp = client.call("POST", "/v1/jobs:batch",
                       {"jobs": [{"queue": "race", "kind": "k"} for _ in range(n)]})
    ids = [r["id"] for r in resp[1]["results"]]
    stop = threading.Event()
    acked = []

    def worker():
        w = server.client()
        try:
            while not stop.is_set():
                jobs = w.lease(["race"], max_jobs=20)
                if not jobs:
                    return
                for j in jobs:
                    status, _ = w.call("POST", f"/v1/jobs/{j['id']}:ack",
                                       {"token": j["lease"]["token"]})
                    if status == 200:
                        acked.append(j["id"])
        finally:
            w.close()

    t = threading.Thread(target=worker)
    t.start()
    pages = walk(client, "cancel", {"queue": "race"}, 50)
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    for p in pages:
        assert p["matched"] == p["cancelled"] + p["skipped"], p
        assert p["matched"] <= 50
    states = {}
    for i in ids:
        status, view = client.get(i)
        states[i] = view["state"] if status == 200 else "gone"
    # A succeeded job is "gone" when its queue keeps none, "succeeded" when it is kept. The
    # worker acks every job it leased, also one whose cancel was requested meanwhile (an ack
    # wins).
    assert set(states.values()) <= {"cancelled", "gone", "succeeded"}, set(states.values())
    assert sorted(i for i in ids if states[i] in ("gone", "succeeded")) == sorted(acked)
    # Each cancelled job was counted by exactly one page; a flagged active job is counted as
    # cancel_requested and then succeeded.
    cancelled_now = sum(p["cancelled"] - p["cancel_requested"] for p in pages)
    assert cancelled_now == sum(1 for s in states.values() if s == "cancelled"), pages
    # Nothing is left ready: a job the cancel missed would be.
    assert client.queue("race")["counts"]["ready"] == 0


def test_bad_input_is_refused_and_changes_nothing(client):
    ids = [client.enqueue(queue="bad", kind="k")["id"] for _ in range(3)]
    page = bulk(client, "cancel", {"queue": "bad", "limit": 1, "dry_run": True})
    cursor = page["next_cursor"]
    assert cursor
    cases = [
        ("cancel", {}, 422, "validation_failed", "filter is empty"),
        ("cancel", {"all": False}, 422, "validation_failed", "filter is empty"),
        ("cancel", {"all": True, "queue": "bad"}, 422, "validation_failed", "all"),
        ("cancel", {"queue": "bad", "colour": "red"}, 422, "validation_failed", "colour"),
        ("cancel", {"queue": "bad", "limit": 0}, 422, "validation_failed", "limit"),
        ("cancel", {"queue": "bad", "limit": 10001}, 422, "validation_failed", "limit"),
        ("cancel", {"queue": "bad", "state": "done"}, 422, "validation_failed", "state"),
        ("cancel", {"queue": "bad", "state": "dead"}, 422, "validation_failed", "not dead"),
        ("replay", {"queue": "bad", "state": "ready"}, 422, "validation_failed", "not ready"),
        ("cancel", {"queue": "bad", "finished_before": 5}, 422, "validation_failed",
         "finished_before"),
        ("cancel", {"queue": "b a d"}, 422, "validation_failed", "queue"),
        ("cancel", {"queue": "bad", "created_after": -1}, 422, "validation_failed",
         "created_after"),
        ("cancel", {"queue": "bad", "cursor": "nonsense"}, 400, "invalid_request", "cursor"),
        ("cancel", {"queue": "bad", "cursor": cursor[:-2]}, 400, "invalid_request", "cursor"),
        # A cursor of another filter or another operation.
        ("cancel", {"queue": "bad", "kind": "k", "cursor": cursor}, 400, "invalid_request",
         "cursor"),
        ("replay", {"queue": "bad", "cursor": cursor}, 400, "invalid_request", "cursor"),
        ("cancel", {"queue": "bad", "cursor": 5}, 422, "validation_failed", "cursor"),
    ]
    for verb, body, status, code, words in cases:
        got, reply = client.call("POST", f"/v1/jobs:{verb}", body)
        assert (got, reply["error"]["code"]) == (status, code), (verb, body, reply)
        assert words in reply["error"]["message"], (verb, body, reply)
    got, _, _ = client.raw("POST", "/v1/jobs:cancel", b"{not json",
                           {"Content-Type": "application/json"})
    assert got == 400
    assert [client.get(i)[1]["state"] for i in ids] == ["ready"] * 3, "nothing changed"
    # The good cursor still works with its own filter.
    page = bulk(client, "cancel", {"queue": "bad", "limit": 1, "cursor": cursor})
    assert page["cancelled"] == 1 and client.get(ids[1])[1]["state"] == "cancelled", page


def test_all_true_acts_on_every_job_the_action_applies_to(client):
    ids = [client.enqueue(queue=f"all-{i}", kind="k")["id"] for i in range(3)]
    reply = bulk(client, "cancel", {"all": True})
    assert reply["cancelled"] >= 3, reply
    assert [client.get(i)[1]["state"] for i in ids] == ["cancelled"] * 3
    reply = bulk(client, "replay", {"all": True, "limit": 2})
    assert reply["replayed"] == 2 and reply["next_cursor"], reply


def test_bulk_operations_during_drain_are_refused(server, client):
    ids = [client.enqueue(queue="drainb", kind="k")["id"] for _ in range(3)]
    client.enqueue(queue="heldb", kind="k")
    [held] = client.lease(["heldb"])  # keeps the server draining until it is acked
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: client.call("GET", "/readyz")[0] == 503, 10, "drain")
    for verb in ("cancel", "replay", "delete"):
        status, body = client.call("POST", f"/v1/jobs:{verb}", {"queue": "drainb"})
        assert status == 503 and body["error"]["code"] == "unavailable", body
    client.ack(held)
    client.close()
    assert server.proc.wait(timeout=30) == 0
    server.start()
    c = server.client()
    assert [c.get(i)[1]["state"] for i in ids] == ["ready"] * 3
    # After the restart the operation runs.
    assert bulk(c, "cancel", {"queue": "drainb"})["cancelled"] == 3
    c.close()


def test_cli_asks_for_yes_counts_with_dry_run_and_prints_totals(server, client):
    import json
    import subprocess
    from ymtest import binary
    ids = [client.enqueue(queue="clib", kind="k", tags=["t"])["id"] for _ in range(5)]
    env = {"YM_URL": server.url()}

    def run(*args):
        return subprocess.run([binary(), "jobs", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    out = run("cancel", "--queue", "clib")
    assert out.returncode == 2 and "--yes" in out.stderr, out
    out = run("cancel", "--queue", "clib", "--dry-run")
    assert out.returncode == 0 and out.stdout.startswith("5 jobs match"), out
    assert [client.get(i)[1]["state"] for i in ids] == ["ready"] * 5, "a dry run changes nothing"
    out = run("cancel", "--tag", "t", "--limit", "2", "--yes", "--json")
    assert out.returncode == 0, out
    totals = json.loads(out.stdout)
    assert totals == {"matched": 5, "cancelled": 5, "cancel_requested": 0, "skipped": 0,
                      "pages": 3, "next_cursor": None}, totals
    assert out.stderr.count("resume with --cursor") == 2, out.stderr
    out = run("replay", "--queue", "clib", "--state", "cancelled", "--yes")
    assert out.returncode == 0 and out.stdout.strip() == \
        "replayed 5 (matched 5, skipped 0)", out
    out = run("delete", "--queue", "clib", "--state", "ready", "--yes")
    assert out.returncode == 1 and "validation_failed" in out.stderr, out


def test_cli_killed_midway_resumes_from_the_last_cursor_it_printed(server, client):
    """SIGKILL the CLI while it walks (one job per request), then resume from the last cursor
    it printed: every job ends cancelled once, and nothing is counted twice."""
    import subprocess
    from ymtest import binary
    n = 300
    resp = client.call("POST", "/v1/jobs:batch",
                       {"jobs": [{"queue": "killed", "kind": "k"} for _ in range(n)]})
    ids = [r["id"] for r in resp[1]["results"]]
    proc = subprocess.Popen([binary(), "jobs", "cancel", "--queue", "killed", "--limit", "1",
                             "--yes"], env={"YM_URL": server.url()}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if len(lines) == 5:
                proc.kill()
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len(lines) == 5, lines
    counted = sum(int(line.split("cancelled ")[1].split(",")[0]) for line in lines)
    cursor = lines[-1].split("--cursor ")[1].strip()
    out = subprocess.run([binary(), "jobs", "cancel", "--queue", "killed", "--limit", "100",
                          "--cursor", cursor, "--yes", "--json"], env={"YM_URL": server.url()},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json
    resumed = json.loads(out.stdout)
    # The killed client may have had requests answered after the last line it printed; those
    # jobs are cancelled already and are not counted again.
    assert counted + resumed["cancelled"] <= n, (counted, resumed)
    assert resumed["matched"] == resumed["cancelled"] + resumed["skipped"]
    assert all(client.get(i)[1]["state"] == "cancelled" for i in ids)
    assert client.queue("killed")["counts"]["ready"] == 0
