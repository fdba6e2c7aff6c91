"""Rates and calendar quotas from outside (docs/flow-control.md, "Rate limits" and "Calendar
quotas"; docs/api.md, "Limits"): configured as members of a limit, validated, persisted, and
enforced at dispatch by the real server under concurrent workers and across kill -9.

Before: a limit had only `concurrency`; `rate` and `quota` were refused as unknown members.
"""

import datetime
import http.client
import threading
import time

from ymtest import wait_until


def put_limit(client, name, body, expect=(200, 201)):
    status, reply = client.call("PUT", f"/v1/limits/{name}", body)
    assert status in ((expect,) if isinstance(expect, int) else expect), (status, reply)
    return reply


def next_utc_midnight_ms():
    now = datetime.datetime.now(datetime.timezone.utc)
    tomorrow = (now + datetime.timedelta(days=1)).date()
    midnight = datetime.datetime(tomorrow.year, tomorrow.month, tomorrow.day,
                                 tzinfo=datetime.timezone.utc)
    return int(midnight.timestamp() * 1000)


def test_rate_and_quota_members_round_trip_and_bad_ones_change_nothing(client):
    body = {"key": "concurrency_key", "rate": {"count": 10, "per": "minute", "burst": 3},
            "quota": {"count": 500, "per": "week", "time_zone": "Europe/Paris"}}
    created = put_limit(client, "partner", body, 201)
    assert created["concurrency"] is None
    assert created["rate"] == {"count": 10, "per": "minute", "period_ms": 60000, "burst": 3}
    assert created["quota"] == {"count": 500, "per": "week", "time_zone": "Europe/Paris",
                                "window": None, "used_keys": 0, "used": []}
    # The default burst is the least that reaches the rate on a ms clock.
    got = put_limit(client, "fast", {"rate": {"count": 5000, "per": "second"}}, 201)
    assert got["rate"]["burst"] == 5
    got = put_limit(client, "odd", {"rate": {"count": 3, "period_ms": 1500}}, 201)
    assert got["rate"] == {"count": 3, "per": None, "period_ms": 1500, "burst": 1}
    cases = [
        ({"rate": {"count": 0, "per": "second"}}, '"rate"'),
        ({"rate": {"count": 1}}, '"rate.per"'),
        ({"rate": {"count": 1, "per": "week"}}, '"rate.per"'),
        ({"rate": {"count": 1, "per": "second", "period_ms": 1000}}, "one of per and period_ms"),
        ({"rate": {"count": 5000, "per": "second", "burst": 4}}, '"rate.burst"'),
        ({"rate": {"count": "1", "per": "second"}}, '"rate.count"'),
        ({"rate": {"count": 1, "per": "second", "jitter": 1}}, '"rate.jitter"'),
        ({"rate": 10}, '"rate"'),
        ({"quota": {"count": 1, "per": "year"}}, '"quota.per"'),
        ({"quota": {"count": 0, "per": "day"}}, '"quota.count"'),
        ({"quota": {"count": 1, "per": "day", "time_zone": "Not/AZone"}}, '"quota.time_zone"'),
        ({"quota": {"count": 1, "per": "day", "time_zone": ""}}, '"quota.time_zone"'),
        ({"key": "queue"}, "at least one of"),
    ]
    for bad, field in cases:
        status, err = client.call("PUT", "/v1/limits/partner", bad)
        assert status == 422 and err["error"]["code"] == "validation_failed", (bad, err)
        assert field in err["error"]["message"], (bad, err)
    status, after = client.call("GET", "/v1/limits/partner")
    assert status == 200 and after["rate"] == created["rate"] and after["quota"]["count"] == 500


def test_cli_and_python_sdk_set_rates_and_quotas(server, tmp_path):
    import subprocess
    import sys
    import os
    from ymtest import binary
    env = dict(os.environ, YM_URL=server.url())

    def cli(*args):
        p = subprocess.run([binary(), *args], capture_output=True, text=True, env=env,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = cli("limits", "set", "api", "--rate", "10/s", "--burst", "4",
                       "--quota", "100/day", "--time-zone", "Asia/Tokyo", "--key", "kind")
    assert rc == 0, (out, err)
    assert "rate:         10/second burst 4" in out and "quota:        100/day Asia/Tokyo" in out
    rc, out, err = cli("limits", "list")
    assert rc == 0 and "10/second burst 4" in out and "100/day Asia/Tokyo" in out, out
    for args, msg in [
        (("--rate", "10"), "--rate '10': expected N/second"),
        (("--rate", "0/s"), "--rate '0/s'"),
        (("--rate", "5/fortnight"), "--rate '5/fortnight'"),
        (("--quota", "5/year"), "--quota '5/year'"),
        (("--burst", "3", "--concurrency", "1"), "--burst needs --rate"),
        (("--time-zone", "UTC", "--concurrency", "1"), "--time-zone needs --quota"),
        ((), "at least one of --concurrency, --rate, --quota"),
    ]:
        rc, out, err = cli("limits", "set", "bad", *args)
        assert rc == 2 and msg in err, (args, rc, err)
    rc, out, err = cli("limits", "set", "bad", "--quota", "5/day", "--time-zone", "Nowhere/X")
    assert rc == 1 and '"quota.time_zone"' in err, (rc, err)
    rc, out, err = cli("limits", "get", "bad")
    assert rc != 0, "a refused limit was not created"

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
    from yardmaster import Client
    c = Client(server.url())
    got = c.set_limit("py", rate={"count": 2, "per": "second"},
                      quota={"count": 9, "per": "month", "time_zone": "America/New_York"},
                      key="concurrency_key")
    assert got["rate"]["count"] == 2 and got["quota"]["time_zone"] == "America/New_York"
    assert c.limit("py")["quota"]["per"] == "month"


def test_a_rate_holds_under_concurrent_workers(server):
    """Starts per window never exceed rate * window + burst (issue 10), measured on the server's
    own grant times, while four workers long-poll as fast as they can."""
    c = server.client()
    rate, burst = 20, 2  # per second: one start every 50 ms after a burst of 2
    put_limit(c, "twenty", {"match": {"queue": "r"}, "rate": {"count": rate, "per": "second",
                                                               "burst": burst}})
    n = 50
    status, body = c.call("POST", "/v1/jobs:batch",
                          {"jobs": [{"queue": "r", "kind": "k"} for _ in range(n)]})
    assert status == 200, body
    grants = []
    lock = threading.Lock()
    errors = []
    lease_ms = 60_000

    def worker(k):
        wc = server.client()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with lock:
                    if len(grants) >= n:
                        return
                got = wc.lease(["r"], max_jobs=3, wait_ms=500, worker_id=f"w{k}",
                               lease_ms=lease_ms)
                for j in got:
                    # The server's grant time: the lease runs lease_ms from it.
                    with lock:
                        grants.append(j["lease"]["expires_at"] - lease_ms)
                    wc.ack(j)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
        finally:
            wc.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    assert len(grants) == n, len(grants)
    grants.sort()
    # Every window [grants[i], grants[j]] holds j - i + 1 starts: at most rate * W / 1000 + burst
    # (1 ms of slack per end for the wall-clock conversion of the grant times).
    for j in range(n):
        for i in range(j + 1):
            window = grants[j] - grants[i] + 2
            assert (j - i + 1 - burst) * 1000 <= window * rate, (i, j, grants[i:j + 1])
    # And the limiter let them through at the rate, not slower than a tenth of it.
    span = grants[-1] - grants[0]
    assert span >= (n - burst) * 1000 // rate - 2, span
    status, q = c.call("GET", "/v1/queues/r")
    assert q["blocked"]["rate_limited"] == 0 and q["counts"]["succeeded"] == n, q


def test_every_quota_start_a_worker_saw_is_counted_after_a_kill_9_mid_flood(make_server):
    # Default --lease-reply (immediate). Four workers lease quota-counted jobs as fast as they
    # can while the server is killed -9 in the middle: every lease a worker received must be
    # counted by the quota after the restart (a reply leaves only once its count is durable).
    # Before, the reply went at once and a kill within the commit lost the last batch's counts.
    server = make_server()
    c = server.client()
    put_limit(c, "big", {"key": "queue", "quota": {"count": 1_000_000, "per": "day"}})
    total_received = 0
    for round_no in range(3):
        status, body = c.call("POST", "/v1/jobs:batch", {"jobs": [
            {"queue": "flood", "kind": "k"} for _ in range(600)]})
        assert status == 200, body
        received = [0] * 4
        stop = threading.Event()

        def worker(i):
            wc = server.client()
            try:
                while not stop.is_set():
                    received[i] += len(wc.lease(["flood"], max_jobs=2))
            except (AssertionError, OSError, http.client.HTTPException):
                pass  # the server is gone
            finally:
                wc.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: sum(received) >= 100, 60, "the workers lease")
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        c.close()
        server.start()
        c = server.client()
        total_received += sum(received)
        lim = c.call("GET", "/v1/limits/big")[1]
        used = sum(u["count"] for u in lim["quota"]["used"])
        # Leases committed whose replies never arrived count too: at least, never fewer.
        assert used >= total_received, (round_no, used, total_received)
    c.close()


def test_a_quota_holds_across_kill_9_and_says_why_and_until_when(make_server):
    # The default --lease-reply (immediate): a lease that counted a quota start is still answered
    # only once its batch, which holds the count, is durable (docs/flow-control.md, "Calendar
    # quotas"), so the last lease before the kill -9 is counted after the restart.
    server = make_server()
    c = server.client()
    put_limit(c, "five-a-day", {"key": "queue", "quota": {"count": 5, "per": "day"}})
    ids = [c.enqueue(queue="partner", kind="call")["id"] for _ in range(8)]
    leased = c.lease(["partner"], max_jobs=3)
    assert len(leased) == 3
    for j in leased[:2]:
        c.ack(j)
    leased += c.lease(["partner"], max_jobs=1)
    assert len(leased) == 4
    server.kill()  # SIGKILL at once: the counts must already be in the store with the leases
    c.close()
    server.start()
    c = server.client()
    got = c.lease(["partner"], max_jobs=10)
    assert len(got) == 1, "4 of the 5 starts of today were made before the crash"
    assert c.lease(["partner"], max_jobs=10) == []
    midnight = next_utc_midnight_ms()
    status, page = c.call("GET", "/v1/jobs?queue=partner&state=ready&limit=100")
    assert status == 200 and page["items"], page
    for j in page["items"]:
        assert j["blocked_reason"] == "quota_exhausted", j
        assert j["blocked_until"] == midnight, (j["blocked_until"], midnight)
    q = c.queue("partner")
    assert q["blocked"]["quota_exhausted"] == len(page["items"]), q
    lim = c.call("GET", "/v1/limits/five-a-day")[1]
    assert lim["quota"]["used"] == [{"key": "partner", "count": 5}], lim
    assert lim["quota"]["window"]["end"] == midnight, lim
    # Another restart, with every start of the day used: still nothing.
    c.close()
    server.kill()
    server.start()
    c = server.client()
    assert c.lease(["partner"], max_jobs=10) == []
    # Raising the quota lets the rest run at once (a waiting long-poll is answered).
    result = {}

    def poll():
        pc = server.client()
        result["jobs"] = pc.lease(["partner"], max_jobs=10, wait_ms=20_000)
        pc.close()

    t = threading.Thread(target=poll)
    t.start()
    wait_until(lambda: c.queue("partner")["waiting_workers"] == 1, 30, "the long-poll waits")
    put_limit(c, "five-a-day", {"key": "queue", "quota": {"count": 7, "per": "day"}})
    t.join(timeout=60)
    assert len(result["jobs"]) == 2, result
    assert len(ids) == 8
