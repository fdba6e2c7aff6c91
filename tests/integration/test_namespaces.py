"""Namespace (tenant) limits and weighted fair dispatch from outside (docs/flow-control.md,
"Namespace limits" and "Weights"; docs/api.md, "Namespaces"): the /v1/namespaces resource
validates and persists, an enqueue past max_live_jobs or the enqueue rate gets 429
namespace_limit with Retry-After, batches are all or nothing, the CLI and the config file
configure it, and weights share real workers' throughput.

Before: there was no /v1/namespaces, no queue weight, and a lease naming several queues took
them round-robin whatever their weights.
"""

import json
import subprocess
import threading
import time

import pytest

from ymtest import binary, wait_until


def put_ns(client, name, body, expect=(200, 201)):
    status, reply = client.call("PUT", f"/v1/namespaces/{name}", body)
    assert status in ((expect,) if isinstance(expect, int) else expect), (status, reply)
    return reply


def enqueue_raw(client, **spec):
    data = json.dumps(spec).encode()
    status, headers, body = client.raw("POST", "/v1/jobs", data,
                                       {"Content-Type": "application/json"})
    return status, headers, json.loads(body)


def run_cli(server, *args):
    p = subprocess.run([binary(), "--server", server.url(), *args], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_put_get_list_delete(client):
    body = {"max_live_jobs": 10, "enqueue_rate": {"count": 5, "per": "minute"}, "weight": 3}
    status, created = client.call("PUT", "/v1/namespaces/acme", body)
    assert status == 201, created
    assert created == {"name": "acme", "max_live_jobs": 10,
                       "enqueue_rate": {"count": 5, "period_ms": 60000, "burst": 5},
                       "weight": 3, "max_active": None, "retention": None, "live_jobs": 0,
                       "active_jobs": 0}, created
    status, replaced = client.call("PUT", "/v1/namespaces/acme", {"weight": 2})
    assert status == 200 and replaced["weight"] == 2 and replaced["max_live_jobs"] is None
    assert replaced["enqueue_rate"] is None
    client.enqueue(queue="q", kind="k", namespace="acme")
    status, got = client.call("GET", "/v1/namespaces/acme")
    assert status == 200 and got["live_jobs"] == 1, got
    for i in range(3):
        put_ns(client, f"n{i}", {"weight": 1 + i})
    names, cursor = [], None
    for _ in range(10):
        path = "/v1/namespaces?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = client.call("GET", path)
        assert status == 200 and len(page["items"]) <= 2, page
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["acme", "n0", "n1", "n2"]
    status, deleted = client.call("DELETE", "/v1/namespaces/n1")
    assert status == 200 and deleted == {"name": "n1", "deleted": True}
    status, err = client.call("DELETE", "/v1/namespaces/n1")
    assert status == 404 and err["error"]["code"] == "not_found", err
    status, err = client.call("GET", "/v1/namespaces/n1")
    assert status == 404, err


def test_bad_namespaces_are_rejected_naming_the_field_and_change_nothing(client):
    put_ns(client, "kept", {"max_live_jobs": 4})
    cases = [
        ({}, "at least one"),
        ({"weight": 0}, '"weight"'),
        ({"weight": 1001}, '"weight"'),
        ({"weight": "2"}, '"weight"'),
        ({"max_live_jobs": 0}, '"max_live_jobs"'),
        ({"max_live_jobs": 1000000001}, '"max_live_jobs"'),
        ({"max_live_jobs": 2.5}, '"max_live_jobs"'),
        ({"enqueue_rate": 5}, '"enqueue_rate"'),
        ({"enqueue_rate": {"per": "second"}}, '"enqueue_rate.count"'),
        ({"enqueue_rate": {"count": 1}}, "per"),
        ({"enqueue_rate": {"count": 1, "per": "day"}}, '"enqueue_rate.per"'),
        ({"enqueue_rate": {"count": 1, "per": "second", "period_ms": 10}}, "not both"),
        ({"enqueue_rate": {"count": 1, "period_ms": 86400001}}, '"enqueue_rate.period_ms"'),
        ({"enqueue_rate": {"count": 1, "per": "second", "burst": 0}}, '"enqueue_rate.burst"'),
        ({"enqueue_rate": {"count": 0, "per": "second"}}, '"enqueue_rate.count"'),
        ({"max_live": 3}, '"max_live"'),
        ({"max_active": 0}, '"max_active"'),
        ({"max_active": 1000001}, '"max_active"'),
        ({"max_active": "2"}, '"max_active"'),
        ({"name": "other", "weight": 2}, '"name"'),
    ]
    for body, field in cases:
        status, err = client.call("PUT", "/v1/namespaces/kept", body)
        assert status == 422, (body, status, err)
        assert err["error"]["code"] == "validation_failed", err
        assert field in err["error"]["message"], (body, err)
    status, err = client.call("PUT", "/v1/namespaces/bad%20name", {"weight": 2})
    assert status == 422 and "name" in err["error"]["message"], err
    status, err = client.call("PUT", "/v1/namespaces/kept", None)
    assert status == 400, err
    status, err = client.call("GET", "/v1/namespaces?cursor=nonsense")
    assert status == 400, err
    status, err = client.call("GET", "/v1/namespaces?limit=0")
    assert status == 400, err
    status, err = client.call("GET", "/v1/namespaces?foo=1")
    assert status == 400, err
    status, err = client.call("DELETE", "/v1/namespaces/kept", {"force": True})
    assert status in (400, 422), err
    status, err = client.call("POST", "/v1/namespaces/kept", {"weight": 2})
    assert status == 405, err
    status, got = client.call("GET", "/v1/namespaces/kept")
    assert got["max_live_jobs"] == 4 and got["weight"] == 1, got
    status, page = client.call("GET", "/v1/namespaces")
    assert [i["name"] for i in page["items"]] == ["kept"], page


def test_max_live_jobs_is_429_with_retry_after_and_a_duplicate_is_still_answered(client):
    put_ns(client, "t", {"max_live_jobs": 2})
    first = client.enqueue(queue="q", kind="k", namespace="t", idempotency_key="a")
    client.enqueue(queue="q", kind="k", namespace="t")
    status, headers, err = enqueue_raw(client, queue="q", kind="k", namespace="t")
    assert status == 429, err
    assert err["error"]["code"] == "namespace_limit", err
    assert "max_live_jobs" in err["error"]["message"], err
    assert err["error"]["retry_after_ms"] == 1000 and headers["retry-after"] == "1", (headers, err)
    # An idempotent retry of an existing job answers it (200), never 429.
    status, _, dup = enqueue_raw(client, queue="q", kind="k", namespace="t", idempotency_key="a")
    assert status == 200 and dup["id"] == first["id"] and dup.get("duplicate") is True, dup
    # Nothing was created by the refusals; another namespace is not affected.
    assert client.queue("q")["counts"]["ready"] == 2
    client.enqueue(queue="q", kind="k", namespace="other")
    # An ack frees a slot.
    job = [j for j in client.lease(["q"], max_jobs=3) if j["namespace"] == "t"][0]
    client.ack(job)
    client.enqueue(queue="q", kind="k", namespace="t")
    status, got = client.call("GET", "/v1/namespaces/t")
    assert got["live_jobs"] == 2, got


def test_enqueue_rate_is_429_with_the_exact_wait_and_a_batch_is_all_or_nothing(client):
    # 1 per hour, burst 3: three pass at once, then nothing for about 20 minutes.
    put_ns(client, "t", {"enqueue_rate": {"count": 1, "per": "hour", "burst": 3}})
    for _ in range(2):
        client.enqueue(queue="q", kind="k", namespace="t")
    # A batch of 2 does not fit the 1 left: refused whole, 429, nothing enqueued.
    status, headers, err = client.raw(
        "POST", "/v1/jobs:batch",
        json.dumps({"jobs": [{"queue": "q", "kind": "k", "namespace": "t"},
                             {"queue": "q", "kind": "k", "namespace": "t"}]}).encode(),
        {"Content-Type": "application/json"})
    err = json.loads(err)
    assert status == 429 and err["error"]["code"] == "namespace_limit", err
    assert client.queue("q")["counts"]["ready"] == 2
    # The one left passes; the next is told the exact wait (about an hour from the first admit,
    # less what has passed): in ms in the body, rounded up to seconds in Retry-After.
    client.enqueue(queue="q", kind="k", namespace="t")
    status, headers, err = enqueue_raw(client, queue="q", kind="k", namespace="t")
    assert status == 429 and "enqueue_rate" in err["error"]["message"], err
    ms = err["error"]["retry_after_ms"]
    assert 3_500_000 < ms <= 3_600_000, err
    assert int(headers["retry-after"]) == (ms + 999) // 1000, (headers, err)
    # A batch larger than the burst can never pass: 422, split it.
    status, reply = client.call("POST", "/v1/jobs:batch",
                                {"jobs": [{"queue": "q", "kind": "k", "namespace": "t"}] * 4})
    assert status == 200 and all(r["error"]["code"] == "validation_failed" and
                                 "split" in r["error"]["message"] for r in reply["results"]), reply
    assert client.queue("q")["counts"]["ready"] == 3


def test_namespaces_survive_a_restart(make_server, tmp_path):
    s = make_server(data_dir=str(tmp_path / "d"))
    c = s.client()
    put_ns(c, "t", {"max_live_jobs": 1, "weight": 7})
    status, q = c.call("PUT", "/v1/queues/heavy?create=true", {"weight": 5})
    assert status == 200 and q["weight"] == 5, q
    c.enqueue(queue="q", kind="k", namespace="t")
    c.close()
    s.restart()
    c = s.client()
    status, got = c.call("GET", "/v1/namespaces/t")
    assert status == 200 and got["weight"] == 7 and got["live_jobs"] == 1, got
    status, _, err = enqueue_raw(c, queue="q", kind="k", namespace="t")
    assert status == 429, err
    assert c.queue("heavy")["weight"] == 5
    c.close()


def test_max_active_holds_under_concurrent_workers_and_survives_a_restart(make_server, tmp_path):
    """Namespace t may have at most 3 jobs active at once across its two queues. Six workers
    lease from both queues and hold each job a little; a sampler reads the namespace's
    active_jobs continuously and the workers count their own overlap: neither ever exceeds 3.
    Namespace u, in the same queues, is not held back. The waiting jobs of t say
    namespace_limit and the queues count them."""
    s = make_server(data_dir=str(tmp_path / "d"))
    c = s.client()
    put_ns(c, "t", {"max_active": 3})
    status, body = c.call("POST", "/v1/jobs:batch", {"jobs": [
        {"queue": f"q{i % 2}", "kind": "k", "namespace": "t"} for i in range(60)] + [
        {"queue": f"q{i % 2}", "kind": "k", "namespace": "u"} for i in range(20)]})
    assert status == 200 and all("id" in r for r in body["results"]), body
    # Held: three of t running, the rest waits with its reason.
    holder = s.client()
    held = holder.lease(["q0", "q1"], max_jobs=100)
    assert sum(1 for j in held if j["namespace"] == "t") == 3, held
    assert sum(1 for j in held if j["namespace"] == "u") == 20, held
    status, page = c.call("GET", "/v1/jobs?namespace=t&state=ready&limit=100")
    assert status == 200 and len(page["items"]) == 57, page
    assert all(j["blocked_reason"] == "namespace_limit" for j in page["items"]), page
    assert c.queue("q0")["blocked"]["namespace_limit"] + \
        c.queue("q1")["blocked"]["namespace_limit"] == 57
    assert c.call("GET", "/v1/namespaces/t")[1]["active_jobs"] == 3
    for j in held:
        holder.ack(j)
    holder.close()
    lock = threading.Lock()
    state = {"running": 0, "max_running": 0, "done": 0, "max_sampled": 0, "errors": []}
    stop = threading.Event()

    def worker():
        wc = s.client()
        try:
            while not stop.is_set():
                jobs = wc.lease(["q0", "q1"], max_jobs=1, wait_ms=500)
                if not jobs:
                    continue
                with lock:
                    state["running"] += 1
                    state["max_running"] = max(state["max_running"], state["running"])
                time.sleep(0.005)
                with lock:
                    state["running"] -= 1  # before the ack: the server's count drops after
                wc.ack(jobs[0])
                with lock:
                    state["done"] += 1
        except Exception as e:  # reported below
            state["errors"].append(repr(e))
        finally:
            wc.close()

    def sampler():
        sc = s.client()
        while not stop.is_set():
            status, got = sc.call("GET", "/v1/namespaces/t")
            if status == 200:
                state["max_sampled"] = max(state["max_sampled"], got["active_jobs"])
        sc.close()

    threads = [threading.Thread(target=worker) for _ in range(6)] + [
        threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: state["done"] >= 57 or state["errors"], 120, "t's jobs are done")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not state["errors"], state["errors"]
    assert state["done"] == 57, state
    assert 2 <= state["max_sampled"] <= 3, state
    assert state["max_running"] <= 3, state
    # The limit is stored: after a restart it still holds.
    c.close()
    s.restart()
    c = s.client()
    status, got = c.call("GET", "/v1/namespaces/t")
    assert got["max_active"] == 3, got
    status, body = c.call("POST", "/v1/jobs:batch", {"jobs": [
        {"queue": "q0", "kind": "k", "namespace": "t"} for _ in range(5)]})
    assert status == 200, body
    assert len(c.lease(["q0"], max_jobs=10)) == 3
    assert c.queue("q0")["blocked"]["namespace_limit"] == 2
    c.close()


def test_queue_weight_is_validated(client):
    for bad in (0, 1001, "3", 1.5):
        status, err = client.call("PUT", "/v1/queues/q?create=true", {"weight": bad})
        assert status == 422 and '"weight"' in err["error"]["message"], (bad, err)
    status, err = client.call("GET", "/v1/queues/q")
    assert status == 404, err  # nothing was created


def test_cli_namespaces_and_queue_weight(server):
    rc, out, err = run_cli(server, "namespaces", "set", "acme", "--max-live-jobs", "5", "--rate",
                           "100/s", "--burst", "10", "--weight", "4")
    assert rc == 0 and "namespace acme created" in out, (rc, out, err)
    assert "100/s (burst 10)" in out and "weight:         4" in out, out
    rc, out, _ = run_cli(server, "namespaces", "list")
    assert rc == 0 and "acme" in out and "100/s (burst 10)" in out, out
    rc, out, _ = run_cli(server, "namespaces", "get", "acme", "--json")
    assert rc == 0 and json.loads(out)["enqueue_rate"] == {"count": 100, "period_ms": 1000,
                                                           "burst": 10}, out
    rc, out, _ = run_cli(server, "namespaces", "list", "--json")
    assert rc == 0 and [i["name"] for i in json.loads(out)["items"]] == ["acme"], out
    rc, out, _ = run_cli(server, "namespaces", "set", "acme", "--rate", "2/1500")
    assert rc == 0 and "2/1500ms" in out and "namespace acme replaced" in out, out
    rc, out, _ = run_cli(server, "namespaces", "set", "acme", "--rate", "2/1500", "--max-active",
                         "3")
    assert rc == 0 and "max active:     3" in out and "active jobs:    0" in out, out
    rc, out, _ = run_cli(server, "namespaces", "list")
    assert rc == 0 and "MAX_ACTIVE" in out, out
    # Bad input: usage errors (2) for shapes, server errors (1) naming the field for ranges;
    # nothing changes.
    usage = [["--rate", "100"], ["--rate", "x/s"], ["--rate", "5/day"], ["--burst", "3"],
             ["--rate", "5/s", "--burst", "0"], [], ["--weight", "abc"]]
    for extra in usage:
        rc, out, err = run_cli(server, "namespaces", "set", "acme", *extra)
        assert rc == 2 and "error" in err, (extra, rc, out, err)
    for extra, field in ((["--weight", "0"], '"weight"'),
                         (["--max-active", "0"], '"max_active"'),
                         (["--max-live-jobs", "0"], '"max_live_jobs"'),
                         (["--rate", "0/s"], '"enqueue_rate.count"')):
        rc, out, err = run_cli(server, "namespaces", "set", "acme", *extra)
        assert rc == 1 and field in err, (extra, rc, out, err)
    rc, out, _ = run_cli(server, "namespaces", "get", "acme", "--json")
    assert json.loads(out)["enqueue_rate"]["period_ms"] == 1500, out
    rc, out, _ = run_cli(server, "namespaces", "delete", "acme")
    assert rc == 0 and "deleted" in out
    rc, _, err = run_cli(server, "namespaces", "get", "acme")
    assert rc == 1 and "not_found" in err
    # queues set --weight
    rc, out, err = run_cli(server, "queues", "set", "hot", "--weight", "3")
    assert rc == 1 and "queue_not_found" in err, (rc, out, err)
    rc, out, err = run_cli(server, "queues", "set", "hot", "--weight", "3", "--create")
    assert rc == 0 and "weight 3" in out, (rc, out, err)
    rc, out, err = run_cli(server, "queues", "set", "hot", "--weight", "0")
    assert rc == 1 and '"weight"' in err, (rc, out, err)
    rc, out, err = run_cli(server, "queues", "set", "hot")
    assert rc == 2, (rc, out, err)
    rc, out, _ = run_cli(server, "queues", "hot")
    assert rc == 0 and "weight" in out and "3" in out, out


def test_config_file_namespaces_are_created_and_others_kept(make_server, tmp_path):
    cfg = tmp_path / "ym.toml"
    cfg.write_text('[[namespaces]]\nname = "gold"\nweight = 3\nmax_live_jobs = 100\n'
                   'max_active = 4\n\n'
                   '[[namespaces]]\nname = "free"\n'
                   'enqueue_rate = { count = 10, per = "minute", burst = 2 }\n')
    data = str(tmp_path / "data")
    s = make_server("--config", str(cfg), data_dir=data)
    c = s.client()
    status, page = c.call("GET", "/v1/namespaces")
    assert [(i["name"], i["weight"]) for i in page["items"]] == [("free", 1), ("gold", 3)], page
    assert page["items"][0]["enqueue_rate"] == {"count": 10, "period_ms": 60000, "burst": 2}
    assert page["items"][1]["max_active"] == 4, page
    put_ns(c, "api-only", {"weight": 9})
    put_ns(c, "gold", {"weight": 5})
    c.close()
    s.restart()
    c = s.client()
    status, page = c.call("GET", "/v1/namespaces")
    assert [(i["name"], i["weight"]) for i in page["items"]] == [
        ("api-only", 9), ("free", 1), ("gold", 3)], page
    c.close()


def test_bad_config_file_namespaces_name_the_file_and_key(make_server, tmp_path):
    cases = [
        ('[[namespaces]]\nname = "x"\nweight = 0\n', 'namespaces[0] (x): field "weight"'),
        ('[[namespaces]]\nname = "x"\nmax_active = 0\n', 'namespaces[0] (x): field "max_active"'),
        ('[[namespaces]]\nname = "x"\nweight = 1.5\n', "namespaces[0].weight: must be an"),
        ('[[namespaces]]\nname = "x"\nquota = 2\n', 'field "quota": unknown member'),
        ('[[namespaces]]\nweight = 1\n', "namespaces[0].name: required"),
        ('[[namespaces]]\nname = "x"\n', "at least one"),
        ('[[namespaces]]\nname = "x"\nenqueue_rate = { count = 1, per = "day" }\n',
         '"enqueue_rate.per"'),
        ('[[namespaces]]\nname = "x"\nweight = 2\n[[namespaces]]\nname = "x"\nweight = 3\n',
         "defined twice"),
        ('namespaces = 3\n', 'key "namespaces" must be an array of tables'),
    ]
    for i, (text, expected) in enumerate(cases):
        cfg = tmp_path / f"bad{i}.toml"
        cfg.write_text(text)
        with pytest.raises(RuntimeError) as e:
            make_server("--config", str(cfg))
        assert str(cfg) in str(e.value) and expected in str(e.value), (text, str(e.value))


# --- weighted fair dispatch with real workers (issue 10 item 2) -------------------------------

def test_queue_weights_share_real_workers_three_to_one(server):
    """Two queues, both far deeper than what is taken, weights 3:1, four concurrent workers
    leasing one job at a time from both: the completions split about 3:1. Loose bounds (2.3..4)
    so that it holds on a loaded machine; the exact ratio is proved with counted dispatches in
    SchedulerFairTest."""
    c = server.client()
    status, _ = c.call("PUT", "/v1/queues/a?create=true", {"weight": 3})
    assert status == 200
    for q in ("a", "b"):
        for _ in range(5):
            status, reply = c.call("POST", "/v1/jobs:batch",
                                   {"jobs": [{"queue": q, "kind": "k"}] * 200})
            assert status == 200, reply
    c.close()
    done = {"a": 0, "b": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def work():
        wc = server.client()
        while time.monotonic() < deadline:
            with lock:
                if done["a"] + done["b"] >= 800:
                    break
            jobs = wc.lease(["a", "b"], max_jobs=1, wait_ms=1000)
            for j in jobs:
                wc.ack(j)
                with lock:
                    done[j["queue"]] += 1
        wc.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done["a"] + done["b"] >= 800, done
    ratio = done["a"] / max(done["b"], 1)
    assert 2.3 <= ratio <= 4.0, done


def test_cold_queue_finishes_next_to_a_flood(server):
    """A hot queue with 20,000 jobs and a cold one with 100 at equal weight: a worker leasing
    both finishes the cold queue within 2 x 100 + slack leases, not after the flood."""
    c = server.client()
    for _ in range(20):
        status, reply = c.call("POST", "/v1/jobs:batch", {"jobs": [{"queue": "hot", "kind": "k"}] * 1000})
        assert status == 200, reply
    status, reply = c.call("POST", "/v1/jobs:batch", {"jobs": [{"queue": "cold", "kind": "k"}] * 100})
    assert status == 200, reply
    leases = cold = 0
    while cold < 100:
        jobs = c.lease(["hot", "cold"], max_jobs=1)
        assert jobs, "nothing leased"
        leases += 1
        cold += jobs[0]["queue"] == "cold"
        c.ack(jobs[0])
        assert leases <= 202, (leases, cold)
    assert c.queue("hot")["counts"]["ready"] >= 20000 - 102
    c.close()
