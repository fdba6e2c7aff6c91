"""Singleton and debounce from outside (docs/flow-control.md, "Singleton and debounce";
docs/api.md, "Limits"): key modes of a limit, decided by the real server under concurrent
producers, through the API, the CLI, the config file and the Python SDK.

Before: a limit had only `concurrency`; nothing refused, skipped or replaced an enqueue.
"""

import json
import subprocess
import sys
import threading
import time

import pytest

from ymtest import binary, wait_until


def put_limit(client, name, body, expect=(200, 201)):
    status, reply = client.call("PUT", f"/v1/limits/{name}", body)
    assert status in ((expect,) if isinstance(expect, int) else expect), (status, reply)
    return reply


def run_cli(server, *args):
    p = subprocess.run([binary(), "--server", server.url(), *args], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def producers(server, n_threads, per_thread, make_spec):
    """Runs n_threads producers at once (each its own connection), each enqueueing per_thread
    jobs as fast as it can, all released together; returns [(spec, status, body)]."""
    results = []
    lock = threading.Lock()
    start = threading.Barrier(n_threads)
    errors = []

    def run(t):
        c = server.client()
        try:
            start.wait(timeout=30)
            for i in range(per_thread):
                spec = make_spec(t, i)
                status, body = c.call("POST", "/v1/jobs", spec)
                with lock:
                    results.append((spec, status, body))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert len(results) == n_threads * per_thread
    return results


def test_singleton_refuse_holds_under_concurrent_producers_and_workers(server):
    c = server.client()
    put_limit(c, "one-per-acct", {"key": "payload.acct", "singleton": "refuse"})
    keys = ["a", "b", "c"]
    # Round 1, no worker: exactly one job per key is created, every other producer is refused
    # naming it.
    res = producers(server, 8, 20, lambda t, i: {"queue": "s", "kind": "k",
                                                 "payload": {"acct": keys[(t + i) % 3]}})
    created = {}
    for spec, status, body in res:
        if status == 201:
            assert spec["payload"]["acct"] not in created, body
            created[spec["payload"]["acct"]] = body["id"]
    assert sorted(created) == keys, created
    for spec, status, body in res:
        if status == 201:
            continue
        assert status == 409, (status, body)
        assert body["error"]["code"] == "singleton_conflict", body
        assert body["error"]["job_id"] == created[spec["payload"]["acct"]], body
        assert created[spec["payload"]["acct"]] in body["error"]["message"], body
    assert c.queue("s")["counts"]["ready"] == 3
    # Round 2, with workers acking as fast as they can while 6 producers keep trying: a new
    # job of a key is created only after the previous one ended (finished before created).
    stop = threading.Event()

    def worker():
        wc = server.client()
        try:
            while not stop.is_set():
                for j in wc.lease(["s"], max_jobs=4, wait_ms=100):
                    wc.ack(j)
        finally:
            wc.close()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        res = producers(server, 6, 40, lambda t, i: {"queue": "s", "kind": "k",
                                                     "payload": {"acct": keys[(t + i) % 3]}})
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    made = {k: [created[k]] for k in keys}
    for spec, status, body in res:
        assert status in (201, 409), (status, body)
        if status == 201:
            made[spec["payload"]["acct"]].append(body["id"])
        else:
            assert body["error"]["code"] == "singleton_conflict", body
    assert sum(len(v) for v in made.values()) > 3, made  # the workers let some through
    for key, ids in made.items():
        ids.sort(key=int)
        jobs = [c.get(i)[1] for i in ids]
        for prev, nxt in zip(jobs, jobs[1:]):
            assert prev["finished_at"] is not None, (key, prev)
            assert prev["finished_at"] <= nxt["created_at"], (key, prev, nxt)
    c.close()


def test_singleton_skip_answers_the_live_job_under_concurrent_producers(server):
    c = server.client()
    put_limit(c, "one", {"key": "concurrency_key", "singleton": "skip"})
    res = producers(server, 8, 15, lambda t, i: {"queue": "k", "kind": "k",
                                                 "concurrency_key": f"x{i % 2}"})
    created = {s["concurrency_key"]: b["id"] for s, st, b in res if st == 201}
    assert len(created) == 2, created
    for spec, status, body in res:
        if status == 201:
            assert "skipped" not in body, body
            continue
        assert status == 200, (status, body)
        assert body == {"id": created[spec["concurrency_key"]], "state": "ready",
                        "skipped": True}, body
    assert c.queue("k")["counts"]["ready"] == 2
    # A dead job's replay while another job holds the key: 409 naming it (a replay has no
    # job to answer instead, even in mode skip).
    got = c.lease(["k"], max_jobs=2)
    first = next(j for j in got if j["id"] == created["x0"])
    status, _ = c.call("POST", f"/v1/jobs/{first['id']}:fail",
                       {"token": first["lease"]["token"],
                        "error": {"type": "x", "message": "m", "retryable": False}})
    assert status == 200
    holder = c.enqueue(queue="k", kind="k", concurrency_key="x0")
    status, body = c.call("POST", f"/v1/jobs/{first['id']}:replay", {})
    assert status == 409 and body["error"]["code"] == "singleton_conflict", body
    assert body["error"]["job_id"] == holder["id"], body
    c.close()


def test_debounce_keeps_one_waiting_job_per_key_under_concurrent_producers(server):
    c = server.client()
    put_limit(c, "deb", {"key": "payload.acct",
                         "debounce": {"delay_ms": 1500, "max_wait_ms": 60000}})
    t0 = int(time.time() * 1000)
    res = producers(server, 6, 20, lambda t, i: {"queue": "d", "kind": "sync",
                                                 "payload": {"acct": f"a{(t + i) % 2}",
                                                             "n": t * 100 + i}})
    ids = {}
    superseded = []
    for spec, status, body in res:
        assert status == 201, (status, body)
        ids[body["id"]] = spec["payload"]["acct"]
        superseded += body.get("superseded", [])
    # Every job but one per key was replaced, each exactly once, by a later job of its key.
    assert len(superseded) == len(set(superseded)) == len(ids) - 2, superseded
    survivors = sorted(set(ids) - set(superseded), key=int)
    assert sorted(ids[s] for s in survivors) == ["a0", "a1"], survivors
    for s in survivors:
        status, job = c.get(s)
        assert job["state"] == "scheduled" and job["blocked_reason"] == "debounced", job
        # The newest of its key, due its delay after its arrival.
        assert int(s) == max(int(i) for i, k in ids.items() if k == ids[s]), (s, ids)
        assert job["run_at"] == job["created_at"] + 1500, job
        assert job["blocked_until"] == job["run_at"], job
    for r in superseded[:10]:
        status, job = c.get(r)
        assert job["state"] == "cancelled", job
        by = job["superseded_by"]
        assert job["dead_reason"] == f"superseded_by:{by}", job
        assert ids[by] == ids[r] and int(by) > int(r), (job, by)
    blocked = c.queue("d")["blocked"]
    assert blocked["debounced"] == 2 and blocked["scheduled"] == 0, blocked
    # The survivors run, once each, after their delay: exactly the payloads of the newest jobs.
    got = []
    wait_until(lambda: got.extend(c.lease(["d"], max_jobs=10, wait_ms=500)) or len(got) >= 2,
               30, "the two debounced jobs")
    assert sorted(j["id"] for j in got) == survivors, got
    assert all(j["lease"] for j in got)
    assert int(time.time() * 1000) >= t0 + 1500
    assert c.lease(["d"], max_jobs=10) == []
    c.close()


def test_debounce_max_wait_holds_across_kill_and_restart(server):
    c = server.client()
    # The group's deadline is its first arrival + 20 s; the state that holds it is in memory.
    put_limit(c, "deb", {"key": "concurrency_key",
                         "debounce": {"delay_ms": 20000, "max_wait_ms": 20000}})
    first = c.enqueue(queue="r", kind="k", concurrency_key="x")
    status, j1 = c.get(first["id"])
    deadline = j1["created_at"] + 20000
    assert j1["run_at"] == deadline, j1
    c.close()
    server.restart()  # kill -9 and start again
    c = server.client()
    second = c.enqueue(queue="r", kind="k", concurrency_key="x")
    assert second["superseded"] == [first["id"]], second
    status, j2 = c.get(second["id"])
    assert j2["blocked_reason"] == "debounced", j2
    # Not pushed to its own arrival + 20 s: the deadline survived the restart (recovered as
    # the waiting job's run_at, docs/flow-control.md).
    assert j2["created_at"] < deadline, (j2, deadline)
    assert j2["run_at"] == deadline, (j2, deadline)
    status, j1 = c.get(first["id"])
    assert j1["state"] == "cancelled" and j1["superseded_by"] == second["id"], j1
    assert c.lease(["r"], max_jobs=5) == []
    c.close()


def test_bad_key_modes_are_422_and_change_nothing(client):
    put_limit(client, "kept", {"key": "kind", "singleton": "skip"})
    cases = [
        {"singleton": "maybe"},
        {"singleton": True},
        {"singleton": "refuse", "debounce": {"delay_ms": 10}},
        {"debounce": 10},
        {"debounce": {}},
        {"debounce": {"delay_ms": -1}},
        {"debounce": {"delay_ms": "10"}},
        {"debounce": {"delay_ms": 2592000001}},
        {"debounce": {"delay_ms": 100, "max_wait_ms": 50}},
        {"debounce": {"delay_ms": 100, "max_wait": 500}},
    ]
    for body in cases:
        status, err = client.call("PUT", "/v1/limits/kept", body)
        assert status == 422, (body, status, err)
        assert err["error"]["code"] == "validation_failed", err
        assert ('"singleton"' in err["error"]["message"]
                or '"debounce' in err["error"]["message"]), (body, err)
    status, got = client.call("GET", "/v1/limits/kept")
    assert status == 200 and got["singleton"] == "skip" and got["debounce"] is None, got
    assert got["concurrency"] is None, got


def test_cli_key_modes(server):
    rc, out, err = run_cli(server, "limits", "set", "deb", "--debounce-ms", "500",
                           "--debounce-max-wait-ms", "5000", "--key", "concurrency_key")
    assert rc == 0 and "limit deb created" in out and "debounce:     500 ms, max wait 5000 ms" in out, (rc, out, err)
    rc, out, err = run_cli(server, "limits", "set", "one", "--singleton", "refuse", "--key",
                           "concurrency_key", "--kind", "s")
    assert rc == 0 and "singleton:    refuse" in out, (rc, out, err)
    rc, out, _ = run_cli(server, "limits", "list")
    assert rc == 0 and "MODE" in out and "debounce:500ms/5000ms" in out, out
    assert "singleton:refuse" in out, out
    rc, out, _ = run_cli(server, "limits", "get", "deb", "--json")
    got = json.loads(out)
    assert got["debounce"] == {"delay_ms": 500, "max_wait_ms": 5000} and got["concurrency"] is None
    rc, out, err = run_cli(server, "enqueue", "-q", "q", "-k", "d", "--concurrency-key", "x")
    assert rc == 0 and "enqueued job" in out, (rc, out, err)
    rc, out2, err = run_cli(server, "enqueue", "-q", "q", "-k", "d", "--concurrency-key", "x")
    first = out.split()[2]
    assert rc == 0 and f"replacing job {first}" in out2, (rc, out2, err)
    rc, out, err = run_cli(server, "enqueue", "-q", "q", "-k", "s", "--concurrency-key", "x")
    assert rc == 0
    rc, out, err = run_cli(server, "enqueue", "-q", "q", "-k", "s", "--concurrency-key", "x")
    assert rc == 1 and "singleton_conflict" in err, (rc, out, err)
    # Bad flags: a clear usage error, nothing changed.
    bad = [
        (["--singleton", "maybe"], "--singleton"),
        (["--singleton", "skip", "--debounce-ms", "5"], "excludes"),
        (["--debounce-max-wait-ms", "5"], "--debounce-ms"),
        (["--debounce-ms", "x"], "--debounce-ms"),
        ([], "--singleton and --debounce-ms"),
    ]
    for flags, what in bad:
        rc, out, err = run_cli(server, "limits", "set", "deb", *flags)
        assert rc != 0 and what in err, (flags, rc, out, err)
    rc, out, err = run_cli(server, "limits", "set", "deb", "--debounce-ms", "500",
                           "--debounce-max-wait-ms", "100")
    assert rc == 1 and '"debounce.max_wait_ms"' in err, (rc, out, err)
    rc, out, _ = run_cli(server, "limits", "get", "deb", "--json")
    assert json.loads(out)["debounce"] == {"delay_ms": 500, "max_wait_ms": 5000}, out


def test_config_file_key_modes_and_bad_ones(make_server, tmp_path):
    cfg = tmp_path / "ym.toml"
    cfg.write_text('[[limits]]\nname = "deb"\nkey = "concurrency_key"\n'
                   'debounce = { delay_ms = 250, max_wait_ms = 1000 }\n\n'
                   '[[limits]]\nname = "one"\nsingleton = "skip"\n')
    s = make_server("--config", str(cfg))
    c = s.client()
    status, page = c.call("GET", "/v1/limits")
    items = {i["name"]: i for i in page["items"]}
    assert items["deb"]["debounce"] == {"delay_ms": 250, "max_wait_ms": 1000}, items
    assert items["one"]["singleton"] == "skip", items
    c.close()
    cases = [
        ('[[limits]]\nname = "x"\nsingleton = "maybe"\n', 'limits[0] (x): field "singleton"'),
        ('[[limits]]\nname = "x"\nsingleton = 1\n', 'limits[0] (x): field "singleton"'),
        ('[[limits]]\nname = "x"\ndebounce = 5\n', 'limits[0] (x): field "debounce"'),
        ('[[limits]]\nname = "x"\ndebounce = { max_wait_ms = 5 }\n',
         'field "debounce.delay_ms": required'),
        ('[[limits]]\nname = "x"\ndebounce = { delay_ms = "5" }\n',
         'field "debounce.delay_ms": must be an integer'),
        ('[[limits]]\nname = "x"\ndebounce = { delay_ms = 5, wait = 1 }\n',
         'field "debounce.wait": unknown member'),
        ('[[limits]]\nname = "x"\ndebounce = { delay_ms = 50, max_wait_ms = 5 }\n',
         'limits[0] (x): field "debounce.max_wait_ms"'),
        ('[[limits]]\nname = "x"\nsingleton = "skip"\ndebounce = { delay_ms = 5 }\n',
         "one key mode"),
    ]
    for i, (text, expected) in enumerate(cases):
        bad = tmp_path / f"bad{i}.toml"
        bad.write_text(text)
        with pytest.raises(RuntimeError) as e:
            make_server("--config", str(bad))
        assert str(bad) in str(e.value) and expected in str(e.value), (text, str(e.value))


def test_python_sdk_key_modes(server):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "sdk" /
                           "python"))
    from yardmaster import Client, SingletonConflict, Validation

    c = Client(server.url())
    lim = c.set_limit("one", key="concurrency_key", kind="s", singleton="refuse")
    assert lim["singleton"] == "refuse" and lim["concurrency"] is None, lim
    lim = c.set_limit("deb", key="concurrency_key", kind="d", debounce_ms=60000,
                      debounce_max_wait_ms=120000)
    assert lim["debounce"] == {"delay_ms": 60000, "max_wait_ms": 120000}, lim
    a = c.enqueue("q", "s", None, concurrency_key="k")
    with pytest.raises(SingletonConflict) as e:
        c.enqueue("q", "s", None, concurrency_key="k")
    assert e.value.job_id == a["id"] and e.value.status == 409
    d1 = c.enqueue("q", "d", None, concurrency_key="k")
    d2 = c.enqueue("q", "d", None, concurrency_key="k")
    assert d2["superseded"] == [d1["id"]] and "superseded" not in d1, (d1, d2)
    with pytest.raises(Validation):
        c.set_limit("deb", debounce_ms=-1)
    with pytest.raises(ValueError):
        c.set_limit("deb", debounce_max_wait_ms=5)
    assert c.limit("deb")["debounce"] == {"delay_ms": 60000, "max_wait_ms": 120000}
    c.close()
