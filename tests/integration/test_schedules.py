"""Durable cron from outside (docs/api.md, "Schedules"; issue 11): the /v1/schedules resource
validates and persists, a per-second schedule killed with SIGKILL across several windows
restarts into its missed-run policy's outcome with no window producing two jobs, and a change
takes effect on the next window.

Before: there was no /v1/schedules (404 for every path here).
"""

import time

from ymtest import metric, wait_until


def create(client, body, expect=201):
    status, reply = client.call("POST", "/v1/schedules", body)
    assert status == expect, (status, reply)
    return reply


def schedule(client, sid, query=""):
    status, reply = client.call("GET", f"/v1/schedules/{sid}{query}")
    assert status == 200, (status, reply)
    return reply


def jobs_of(client, queue):
    """Every job of `queue` (live and finished), by the documented listing."""
    items, cursor = [], None
    for _ in range(100):
        path = f"/v1/jobs?queue={queue}&limit=1000"
        if cursor:
            path += f"&cursor={cursor}"
        status, page = client.call("GET", path)
        assert status == 200, (status, page)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("too many pages")


def windows_of(client, queue):
    ws = [j["schedule"]["window"] for j in jobs_of(client, queue) if j["schedule"]]
    assert len(ws) == len(set(ws)), f"a window produced two jobs: {sorted(ws)}"
    return sorted(ws)


def error_field(client, method, path, body):
    status, reply = client.call(method, path, body)
    assert status == 422, (status, reply)
    assert reply["error"]["code"] == "validation_failed"
    return reply["error"]["message"]


def test_schedule_resource_validates_persists_and_lists(client):
    job = {"queue": "reports", "kind": "nightly", "payload": {"scope": "all"}}
    bad = [
        ({"cron": "0 3 * * *", "job": job}, '"id"'),
        ({"id": "x", "cron": "0 3 * * * * *", "job": job}, '"cron"'),
        ({"id": "x", "cron": "0 25 * * *", "job": job}, '"cron"'),
        ({"id": "x", "cron": "@daily", "time_zone": "Mars/Olympus", "job": job}, '"time_zone"'),
        ({"id": "x", "cron": "@daily", "job": {"kind": "k"}}, '"job.queue"'),
        ({"id": "x", "cron": "@daily", "job": dict(job, run_at=5)}, '"job.run_at"'),
        ({"id": "x", "cron": "@daily", "overlap": "sometimes", "job": job}, '"overlap"'),
        ({"id": "x", "cron": "@daily", "missed_runs": {"max_count": 0}, "job": job},
         '"missed_runs.max_count"'),
        ({"id": "x", "cron": "@daily", "jitter_ms": -1, "job": job}, '"jitter_ms"'),
        ({"id": "x", "cron": "@daily", "job": job, "colour": "red"}, '"colour"'),
    ]
    for body, field in bad:
        message = error_field(client, "POST", "/v1/schedules", body)
        assert field in message, (body, message)
    status, reply = client.call("GET", "/v1/schedules/x")
    assert status == 404, "a refused create changes nothing"

    s = create(client, {"id": "nightly", "cron": "0 3 * * *", "time_zone": "Europe/Paris",
                        "job": job})
    assert s["state"] == "active" and s["overlap"] == "skip"
    assert s["missed_runs"]["policy"] == "latest_only"
    assert s["job"] == job
    create(client, {"id": "nightly", "cron": "@hourly", "job": job}, expect=409)
    got = schedule(client, "nightly", "?next=3")
    assert len(got["next_fire_times"]) == 3
    # 03:00 in Paris is 01:00 or 02:00 UTC, a day apart.
    times = got["next_fire_times"]
    assert all(b - a == 86_400_000 for a, b in zip(times, times[1:]))
    assert all(t % 3_600_000 == 0 for t in times)

    status, reply = client.call("PATCH", "/v1/schedules/nightly",
                                {"overlap": "buffer_one", "missed_runs": {"policy": "skip"}})
    assert status == 200, (status, reply)
    assert reply["overlap"] == "buffer_one"
    assert reply["missed_runs"]["policy"] == "skip"
    assert reply["cron"] == "0 3 * * *", "PATCH keeps what it does not name"
    message = error_field(client, "PATCH", "/v1/schedules/nightly", {"cron": "bad"})
    assert '"cron"' in message
    assert schedule(client, "nightly")["cron"] == "0 3 * * *"

    # PUT replaces the spec as a whole (members left out take their defaults); a body naming
    # another id is refused. Regression: PUT answered 404 (the id was read after the request
    # had been moved into the core command).
    status, reply = client.call("PUT", "/v1/schedules/nightly",
                                {"cron": "30 4 * * *", "job": job, "jitter_ms": 1000})
    assert status == 200, (status, reply)
    assert reply["cron"] == "30 4 * * *" and reply["jitter_ms"] == 1000
    assert reply["overlap"] == "skip" and reply["missed_runs"]["policy"] == "latest_only"
    message = error_field(client, "PUT", "/v1/schedules/nightly",
                          {"id": "other", "cron": "@daily", "job": job})
    assert '"id"' in message
    assert client.call("PUT", "/v1/schedules/missing", {"cron": "@daily", "job": job})[0] == 404

    status, reply = client.call("POST", "/v1/schedules/nightly:pause")
    assert status == 200 and reply["state"] == "paused" and reply["next_fire_at"] is None
    status, reply = client.call("POST", "/v1/schedules/nightly:resume")
    assert status == 200 and reply["state"] == "active"

    status, reply = client.call("POST", "/v1/schedules/nightly:trigger")
    assert status == 201, (status, reply)
    status, triggered = client.get(reply["id"])
    assert triggered["schedule"] == {"id": "nightly", "window": None, "trigger": True}
    assert triggered["kind"] == "nightly"

    for i in range(3):
        create(client, {"id": f"s{i}", "cron": "@hourly", "job": job})
    status, page = client.call("GET", "/v1/schedules?limit=2")
    assert status == 200 and [i["id"] for i in page["items"]] == ["nightly", "s0"]
    status, page = client.call("GET", f"/v1/schedules?limit=2&cursor={page['next_cursor']}")
    assert [i["id"] for i in page["items"]] == ["s1", "s2"] and page["next_cursor"] is None

    # Producers cannot take a schedule's keys.
    status, reply = client.call("POST", "/v1/jobs", {"queue": "q", "kind": "k",
                                                     "idempotency_key": "schedule:nightly:1"})
    assert status == 422 and '"idempotency_key"' in reply["error"]["message"]

    status, reply = client.call("DELETE", "/v1/schedules/s2")
    assert status == 200 and reply == {"id": "s2", "deleted": True}
    assert client.call("GET", "/v1/schedules/s2")[0] == 404
    assert client.call("POST", "/v1/schedules/s2:trigger")[0] == 404


def test_kill9_across_per_second_windows_never_emits_a_window_twice(make_server):
    """catch_up with overlap allow: every window from creation to the end is emitted exactly
    once, across three SIGKILLs with the server down for ~2 windows each."""
    server = make_server()
    client = server.client()
    s = create(client, {"id": "tick", "cron": "every 1s", "overlap": "allow",
                        "missed_runs": {"policy": "catch_up", "grace_ms": 0},
                        "job": {"queue": "cron", "kind": "tick"}})
    created = s["created_at"]
    for cycle in range(3):
        # Let a few windows pass on a live server, then kill it between windows.
        seen = len(windows_of(client, "cron"))
        wait_until(lambda: len(windows_of(client, "cron")) >= seen + 2, 30,
                   f"two more windows before kill {cycle}")
        server.kill()
        client.close()
        time.sleep(2.2)  # the windows of this downtime are what the restart must catch up
        down_until = int(time.time() * 1000)
        server.start()
        client = server.client()
        wait_until(lambda: schedule(client, "tick")["cursor"] >= down_until, 30,
                   f"the restart reconciled the downtime of cycle {cycle}")
    ws = windows_of(client, "cron")
    cursor = schedule(client, "tick")["cursor"]
    first = ws[0]
    assert first - created <= 1000
    assert ws == list(range(first, ws[-1] + 1, 1000)), "catch_up: no window missed or repeated"
    assert ws[-1] <= cursor
    history = schedule(client, "tick")["history"]
    assert any(e["reason"] == "catch_up" for e in history), history
    client.close()


def test_kill9_with_skip_policy_skips_the_downtime_once(make_server):
    server = make_server()
    client = server.client()
    create(client, {"id": "tick", "cron": "every 1s", "overlap": "allow",
                    "missed_runs": {"policy": "skip", "grace_ms": 0},
                    "job": {"queue": "cron", "kind": "tick"}})
    wait_until(lambda: len(windows_of(client, "cron")) >= 2, 30, "two windows")
    server.kill()
    client.close()
    killed_at = int(time.time() * 1000)
    time.sleep(3.2)
    server.start()
    client = server.client()
    restarted_at = int(time.time() * 1000)
    wait_until(lambda: any(not e["outcome"] == "emitted" and e["reason"] == "missed"
                           for e in schedule(client, "tick")["history"]), 30,
               "the downtime recorded as missed")
    wait_until(lambda: max(windows_of(client, "cron")) > restarted_at, 30, "a window after")
    ws = windows_of(client, "cron")
    # No window of the downtime (more than a second after the kill, before the restart).
    assert not [w for w in ws if killed_at + 1000 < w < restarted_at - 1000], ws
    client.close()


def test_a_change_takes_effect_on_the_next_window(client):
    create(client, {"id": "s", "cron": "every 1s", "overlap": "allow",
                    "job": {"queue": "chg", "kind": "before"}})
    wait_until(lambda: len(windows_of(client, "chg")) >= 2, 30, "two windows of the old spec")
    status, reply = client.call("PATCH", "/v1/schedules/s", {"job": {"queue": "chg",
                                                                     "kind": "after"}})
    assert status == 200, (status, reply)
    changed_at = reply["updated_at"]
    wait_until(lambda: any(j["kind"] == "after" for j in jobs_of(client, "chg")), 30,
               "a window of the new spec")
    for j in jobs_of(client, "chg"):
        w = j["schedule"]["window"]
        assert j["kind"] == ("after" if w > changed_at else "before"), (w, changed_at, j["kind"])
    windows_of(client, "chg")  # and none twice
    # Lag is visible per schedule and in the metrics.
    got = schedule(client, "s")
    assert got["last_run"]["lag_ms"] >= 0 and got["lag"]["samples"] >= 2, got
    status, _, text = client.raw("GET", "/metrics")
    text = text.decode()
    assert metric(text, "ym_schedules") == 1
    assert metric(text, "ym_schedule_windows_emitted_total") >= 3
    assert metric(text, "ym_schedule_fire_lag_seconds_count") >= 3


def test_backfill_emits_past_windows_once(client):
    s = create(client, {"id": "bf", "cron": "* * * * * *", "paused": True,
                        "job": {"queue": "bfq", "kind": "k"}})
    cursor = s["cursor"]
    top = cursor - cursor % 1000  # the last whole second at or before the cursor
    body = {"from": top - 4000, "to": top}
    status, reply = client.call("POST", "/v1/schedules/bf:backfill", body)
    assert status == 200, (status, reply)
    assert reply == {"emitted": 5, "duplicates": 0, "after_cursor": 0, "windows": 5}, reply
    assert windows_of(client, "bfq") == list(range(top - 4000, top + 1, 1000))
    # Again, and overlapping the future: the same windows are duplicates, later ones are left
    # to the schedule's own sequence.
    status, reply = client.call("POST", "/v1/schedules/bf:backfill",
                                {"from": top - 4000, "to": top + 3000})
    assert status == 200, (status, reply)
    assert reply["emitted"] == 0 and reply["duplicates"] == 5 and reply["after_cursor"] == 3
    assert len(windows_of(client, "bfq")) == 5
    got = schedule(client, "bf")
    history = got["history"]
    assert sorted(e["window"] for e in history if e["reason"] == "backfill") == \
        list(range(top - 4000, top + 1, 1000))
    # A backfilled window is late by design: it is not the schedule's fire lag.
    assert got["lag"] == {"last_ms": None, "max_recent_ms": None, "samples": 0}, got["lag"]
    status, reply = client.call("POST", "/v1/schedules/bf:backfill", {"from": 5, "to": 4})
    assert status == 422 and '"to"' in reply["error"]["message"]
    status, reply = client.call("POST", "/v1/schedules/bf:backfill",
                                {"from": top - 86_400_000, "to": top})
    assert status == 422 and "10000 windows" in reply["error"]["message"], reply
