"""yardmaster.Client against the real server: every method, cursors, typed errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import SDK

from yardmaster import (Client, InvalidState, NotFound, QueueNotFound, Unreachable, Validation,
                        YardmasterError)


def test_enqueue_get_and_options(client: Client) -> None:
    job = client.enqueue("mail", "welcome", {"user": 7}, priority=5, tags=["a"],
                         idempotency_key="welcome-7")
    assert job["state"] == "ready"
    got = client.get(job["id"])
    assert got["payload"] == {"user": 7}
    assert got["priority"] == 5 and got["tags"] == ["a"]
    dup = client.enqueue("mail", "welcome", {"user": 7}, idempotency_key="welcome-7")
    assert dup["id"] == job["id"] and dup["duplicate"] is True
    later = client.enqueue("mail", "welcome", delay_ms=60000)
    assert later["state"] == "scheduled"


def test_errors_are_typed(client: Client) -> None:
    with pytest.raises(NotFound) as e:
        client.get("999999")
    assert e.value.status == 404 and e.value.code == "not_found"
    with pytest.raises(Validation) as v:
        client.enqueue("mail", "welcome", no_such_option=1)
    assert v.value.status == 422 and "no_such_option" in v.value.message
    job = client.enqueue("mail", "x")
    with pytest.raises(InvalidState) as s:
        client.replay(job["id"])  # a live job cannot be replayed
    assert isinstance(s.value, YardmasterError) and s.value.status == 409


def test_unreachable_server_is_typed() -> None:
    c = Client("http://127.0.0.1:1", timeout=2.0)
    with pytest.raises(Unreachable) as e:
        c.info()
    assert e.value.status is None and e.value.code == "unreachable"
    assert not c.ready()


def test_batch_list_follows_cursors(client: Client) -> None:
    specs = [{"queue": "bulk", "kind": "k", "payload": i} for i in range(1001)]
    specs.append({"queue": "bulk"})  # refused alone: no kind
    results = client.enqueue_batch(specs)
    assert len(results) == 1002
    assert all("id" in r for r in results[:1001])
    assert results[1001]["error"]["code"] == "validation_failed"
    listed = list(client.list_jobs(queue="bulk", state="ready", page_size=300))
    assert [j["payload"] for j in listed] == list(range(1001))
    assert len({j["id"] for j in listed}) == 1001


def test_queues_listing_follows_cursors_and_unknown_queues_need_create(client: Client) -> None:
    names = [f"lq{i:03d}" for i in range(230)]
    client.enqueue_batch([{"queue": n, "kind": "k"} for n in names])
    # The server may hold other tests' queues too.
    assert [q["name"] for q in client.queues(page_size=100) if q["name"].startswith("lq")] == names
    mine = [q["name"] for q in client.iter_queues(page_size=7) if q["name"].startswith("lq")]
    assert mine == names
    for call in (lambda: client.pause("nope"), lambda: client.resume("nope"),
                 lambda: client.configure_queue("nope", max_attempts=2),
                 lambda: client.queue("nope")):
        with pytest.raises(QueueNotFound) as e:
            call()
        assert e.value.code == "queue_not_found" and isinstance(e.value, NotFound)
    assert client.pause("nope", create=True)["paused"] is True
    assert client.configure_queue("made", create=True, max_attempts=2)["max_attempts"] == 2
    assert client.resume("nope")["paused"] is False
    assert client.reset_queue("made")["max_attempts"] == 10  # back to the server default
    with pytest.raises(QueueNotFound):
        client.reset_queue("never-seen")


def test_queues_pause_resume_info(client: Client) -> None:
    client.enqueue("q:with:colons", "k")
    assert client.pause("q:with:colons")["paused"] is True
    assert client.queue("q:with:colons")["counts"]["ready"] == 1
    assert client.resume("q:with:colons")["paused"] is False
    assert "q:with:colons" in [q["name"] for q in client.queues()]
    assert client.configure_queue("q:with:colons", max_attempts=3)["max_attempts"] == 3
    info = client.info()
    assert "version" in info and info["draining"] is False
    assert client.ready()


def test_dead_jobs_and_replay(client: Client) -> None:
    ids = [client.enqueue("dq", "k")["id"] for _ in range(3)]
    leased = client.request("POST", "/v1/leases", {"queues": ["dq"], "max": 3})["jobs"]
    fails = [{"id": j["id"], "token": j["lease"]["token"],
              "error": {"type": "boom", "message": "no", "retryable": False}} for j in leased]
    answer = client.request("POST", "/v1/acks:batch", {"fails": fails})
    assert all(r.get("ok") for r in answer["fails"])
    dead = list(client.dead_jobs(queue="dq", page_size=2))
    assert sorted(j["id"] for j in dead) == sorted(ids)
    assert client.replay_dead(ids=[ids[0]]) == 1
    assert client.get(ids[0])["state"] == "ready"
    assert client.replay_dead(queue="dq") == 2
    assert list(client.dead_jobs(queue="dq")) == []
    client.cancel(ids[1])
    assert client.replay(ids[1])["state"] == "ready"


def test_client_is_shared_between_threads(client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(lambda i: client.enqueue("threads", "k", i)["id"], range(200)))
    assert len(set(out)) == 200


def test_module_help_and_bad_target() -> None:
    env = {"PYTHONPATH": SDK, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "yardmaster", "--help"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "worker" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "yardmaster", "worker", "no_such_module:w"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot load" in bad.stderr


def test_list_jobs_filters_live_and_finished_jobs(client: Client) -> None:
    import datetime
    from typing import Any, List
    ids = {}
    for i in range(12):
        ids[i] = client.enqueue("srch", f"k{i % 3}", {"i": i},
                                namespace="ns-a" if i % 2 else "ns-b",
                                tags=["even"] if i % 2 == 0 else ["odd", "x"])["id"]
    # Finish the first six (they lease in id order): acked, so succeeded and kept here.
    leased = client.request("POST", "/v1/leases",
                            {"queues": ["srch"], "max": 6, "lease_ms": 60000})["jobs"]
    client.request("POST", "/v1/acks:batch",
                   {"acks": [{"id": j["id"], "token": j["lease"]["token"]} for j in leased]})
    every = list(client.list_jobs(queue="srch", page_size=5))
    assert [j["id"] for j in every] == [ids[i] for i in range(12)]

    def got(**f: Any) -> List[str]:
        return [j["id"] for j in client.list_jobs(page_size=2, **f)]

    assert got(queue="srch", kind="k1") == [ids[i] for i in (1, 4, 7, 10)]
    assert got(queue="srch", tag="even", state="succeeded") == [ids[i] for i in (0, 2, 4)]
    assert got(queue="srch", tag="x", state=["ready", "succeeded"]) == \
        [ids[i] for i in (1, 3, 5, 7, 9, 11)]
    assert got(namespace="ns-a", queue="srch", state="ready,active") == [ids[i] for i in (7, 9, 11)]
    finished = sorted(j["finished_at"] for j in every if j["finished_at"] is not None)
    assert len(finished) == 6
    assert got(queue="srch", finished_after=0) == [ids[i] for i in range(6)]
    # finished_before is exclusive, finished_after inclusive: they split at any instant.
    mid = finished[3]
    lo = got(queue="srch", finished_before=mid)
    hi = got(queue="srch", finished_after=datetime.datetime.fromtimestamp(
        mid / 1000, tz=datetime.timezone.utc))
    assert sorted(lo + hi, key=int) == [ids[i] for i in range(6)] and not set(lo) & set(hi)
    created = every[6]["created_at"]
    assert set(got(queue="srch", created_after=created)) >= {ids[i] for i in range(6, 12)}
    assert got(queue="srch", created_before=every[0]["created_at"]) == []
    with pytest.raises(YardmasterError) as e:
        list(client.list_jobs(kind="no spaces"))
    assert e.value.status == 400 and '"kind"' in str(e.value)
    with pytest.raises(ValueError):
        list(client.list_jobs(created_after=datetime.datetime(2024, 1, 1)))  # naive


def _dead(client: Client, queue: str, n: int) -> list:
    ids = [client.enqueue(queue, "k")["id"] for _ in range(n)]
    leased = client.request("POST", "/v1/leases", {"queues": [queue], "max": n})["jobs"]
    fails = [{"id": j["id"], "token": j["lease"]["token"],
              "error": {"type": "boom", "message": "no", "retryable": False}} for j in leased]
    client.request("POST", "/v1/acks:batch", {"fails": fails})
    return ids


def test_bulk_operations_loop_over_pages_and_resume(client: Client) -> None:
    from yardmaster import BadRequest
    ids = [client.enqueue("sdk-bulk", "k", tags=["x"])["id"] for _ in range(7)]
    # One page, then the rest from its cursor.
    page = client.bulk_page("cancel", queue="sdk-bulk", limit=3)
    assert (page["matched"], page["cancelled"], page["skipped"]) == (3, 3, 0), page
    assert page["next_cursor"]
    seen = []
    totals = client.cancel_jobs(queue="sdk-bulk", limit=3, cursor=page["next_cursor"],
                                on_page=seen.append)
    assert totals["cancelled"] == 4 and totals["next_cursor"] is None, totals
    assert totals["pages"] == len(seen) >= 2
    assert [client.get(i)["state"] for i in ids] == ["cancelled"] * 7
    # max_pages stops early with a cursor to resume from.
    first = client.replay_jobs(tag="x", state=["cancelled"], limit=2, max_pages=1)
    assert (first["replayed"], first["pages"]) == (2, 1) and first["next_cursor"], first
    rest = client.replay_jobs(tag="x", state=["cancelled"], limit=2, cursor=first["next_cursor"])
    assert rest["replayed"] == 5 and rest["next_cursor"] is None, rest
    assert sorted(client.get(i)["runs"] for i in ids) == [2] * 7
    # A dry run counts, and an empty filter or a bad cursor is refused and changes nothing.
    assert client.cancel_jobs(queue="sdk-bulk", dry_run=True)["matched"] == 7
    with pytest.raises(Validation):
        client.cancel_jobs()
    with pytest.raises(BadRequest):
        client.bulk_page("cancel", queue="sdk-bulk", cursor="bogus")
    assert [client.get(i)["state"] for i in ids] == ["ready"] * 7
    with pytest.raises(ValueError):
        client.bulk_page("explode", queue="sdk-bulk")


def test_delete_jobs_takes_finished_jobs_only(client: Client) -> None:
    client.configure_queue("sdk-del", create=True,
                           retention={"dead_ms": 3_600_000, "succeeded_ms": 3_600_000})
    dead = _dead(client, "sdk-del", 3)
    live = client.enqueue("sdk-del", "k")["id"]
    totals = client.delete_jobs(queue="sdk-del", limit=2)
    assert (totals["matched"], totals["deleted"], totals["pages"]) == (3, 3, 2), totals
    for i in dead:
        with pytest.raises(NotFound):
            client.get(i)
    assert client.get(live)["state"] == "ready"
    assert client.delete_jobs(all_jobs=True)["deleted"] == 0


def test_limits_set_list_get_delete(client: Client) -> None:
    created = client.set_limit("per-acct", 1, key="payload.acct", queue="mail")
    assert created["match"] == {"queue": "mail"} and created["concurrency"] == 1
    for acct in ("a", "a", "b"):
        client.enqueue("mail", "send", {"acct": acct})
    got = client.request("POST", "/v1/leases", {"queues": ["mail"], "max": 10})["jobs"]
    assert sorted(j["payload"]["acct"] for j in got) == ["a", "b"]
    live = client.limit("per-acct")
    assert live["active_keys"] == 2
    assert [x["name"] for x in client.limits()] == ["per-acct"]
    with pytest.raises(Validation) as v:
        client.set_limit("per-acct", 0)
    assert '"concurrency"' in v.value.message
    client.delete_limit("per-acct")
    with pytest.raises(NotFound):
        client.limit("per-acct")


def test_breaker_set_trip_and_reset(client: Client) -> None:
    created = client.set_limit("cb", breaker={"consecutive_failures": 1, "open_base_ms": 600000},
                               key="kind", queue="brk")
    assert created["breaker"]["consecutive_failures"] == 1
    assert created["breaker"]["open_max_ms"] == 600000, "the cap follows a large first interval"
    for _ in range(2):
        client.enqueue("brk", "send", None, max_attempts=5)
    job = client.request("POST", "/v1/leases", {"queues": ["brk"], "max": 1})["jobs"][0]
    client.request("POST", f"/v1/jobs/{job['id']}:fail",
                   {"token": job["lease"]["token"], "error": {"type": "E", "message": "no"},
                    "retry_in_ms": 0})
    keys = client.limit("cb")["breaker"]["keys"]
    assert [(k["key"], k["state"]) for k in keys] == [("send", "open")], keys
    assert client.request("POST", "/v1/leases", {"queues": ["brk"], "max": 5})["jobs"] == []
    reset = client.reset_breaker("cb", key="send")
    assert reset["reset"] == {"key": "send", "tripped_keys": 1}, reset
    assert len(client.request("POST", "/v1/leases", {"queues": ["brk"], "max": 5})["jobs"]) == 2
    assert client.reset_breaker("cb")["reset"] == {"key": None, "tripped_keys": 0}
    with pytest.raises(Validation) as v:
        client.set_limit("cb", breaker={"window": 5, "min_samples": 6})
    assert '"breaker.min_samples"' in v.value.message
    client.set_limit("plain", 1)
    with pytest.raises(Validation) as v:
        client.reset_breaker("plain")
    assert "has no breaker" in v.value.message
    with pytest.raises(NotFound):
        client.reset_breaker("nope")


def test_namespaces_set_list_get_delete_and_429(client: Client) -> None:
    from yardmaster import NamespaceLimit, ResourceExhausted
    created = client.set_namespace("tenant", max_live_jobs=1,
                                   enqueue_rate={"count": 5, "per": "minute"}, weight=2)
    assert created["max_live_jobs"] == 1 and created["weight"] == 2
    assert created["enqueue_rate"] == {"count": 5, "period_ms": 60000, "burst": 5}
    client.enqueue("nsq", "k", namespace="tenant")
    with pytest.raises(NamespaceLimit) as e:
        client.enqueue("nsq", "k", namespace="tenant")
    assert isinstance(e.value, ResourceExhausted) and e.value.retry_after == 1.0
    assert e.value.code == "namespace_limit" and "max_live_jobs" in e.value.message
    assert client.namespace("tenant")["live_jobs"] == 1
    assert [x["name"] for x in client.namespaces()] == ["tenant"]
    with pytest.raises(Validation) as v:
        client.set_namespace("tenant", weight=0)
    assert '"weight"' in v.value.message
    assert client.configure_queue("nsq", weight=4)["weight"] == 4
    client.delete_namespace("tenant")
    with pytest.raises(NotFound):
        client.namespace("tenant")


def test_schedules_create_get_update_pause_trigger_backfill_delete(client: Client) -> None:
    from yardmaster import AlreadyExists
    job = {"queue": "cronq", "kind": "tick", "payload": {"n": 1}}
    created = client.create_schedule("nightly", "0 3 * * *", job, time_zone="Europe/Paris",
                                     missed_runs={"policy": "catch_up", "max_count": 7},
                                     overlap="allow")
    assert created["id"] == "nightly" and created["state"] == "active"
    assert created["time_zone"] == "Europe/Paris" and created["overlap"] == "allow"
    assert created["missed_runs"]["policy"] == "catch_up"
    assert created["missed_runs"]["max_count"] == 7
    with pytest.raises(AlreadyExists):
        client.create_schedule("nightly", "@daily", job)
    with pytest.raises(Validation) as v:
        client.create_schedule("bad", "0 25 * * *", job)
    assert '"cron"' in v.value.message
    with pytest.raises(NotFound):
        client.schedule("bad")

    got = client.schedule("nightly", next=3)
    times = got["next_fire_times"]
    assert len(times) == 3 and times == sorted(times) and times[0] == got["next_fire_at"]
    # 03:00 in Paris is 01:00 or 02:00 UTC, on consecutive days.
    assert all((t // 1000) % 3600 == 0 for t in times)
    assert all(b - a in (82_800_000, 86_400_000, 90_000_000) for a, b in zip(times, times[1:]))

    patched = client.update_schedule("nightly", cron="30 3 * * *")
    assert patched["cron"] == "30 3 * * *" and patched["overlap"] == "allow"
    assert patched["time_zone"] == "Europe/Paris", "PATCH keeps what it does not name"
    replaced = client.put_schedule("nightly", "30 3 * * *", job)
    assert replaced["time_zone"] == "UTC", "PUT sets what it does not name to its default"

    assert client.pause_schedule("nightly")["state"] == "paused"
    assert client.resume_schedule("nightly")["state"] == "active"

    triggered = client.trigger_schedule("nightly")
    fired = client.get(triggered["id"])
    assert fired["queue"] == "cronq" and fired["payload"] == {"n": 1}
    assert fired["schedule"]["id"] == "nightly" and fired["schedule"].get("trigger") is True

    # Backfill: the windows before the cursor (the creation time), each at most once.
    cursor = client.schedule("nightly")["cursor"]
    day = 86_400_000
    first = client.backfill_schedule("nightly", cursor - 3 * day, cursor)
    assert first["windows"] == 3 and first["emitted"] == 3 and first["duplicates"] == 0
    again = client.backfill_schedule("nightly", cursor - 3 * day, cursor)
    assert again["emitted"] == 0 and again["duplicates"] == 3
    windows = sorted(j["schedule"]["window"] for j in client.list_jobs(queue="cronq")
                     if j["schedule"] and j["schedule"].get("window") is not None)
    assert len(windows) == 3 and len(set(windows)) == 3

    assert [s["id"] for s in client.schedules()] == ["nightly"]
    assert client.delete_schedule("nightly")["deleted"] is True
    with pytest.raises(NotFound):
        client.schedule("nightly")
    assert client.schedules() == []
