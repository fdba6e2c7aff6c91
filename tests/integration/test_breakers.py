"""Circuit breakers from outside (docs/flow-control.md, "Circuit breakers"; docs/api.md,
"Limits"): the `breaker` member of a limit, validated, enforced at dispatch by the real server
against a worker that fails jobs, explained by blocked_reason `circuit_open`, and reset by an
operator through the API, the CLI and the Python SDK.

Before: `breaker` was refused as an unknown member of a limit and no job waited for one.
Timing: the open interval is measured by the server; the test waits on the server's answers (a
long-poll is answered when the breaker half-opens) with generous deadlines, and asserts that a
key is refused only while the server's own next_open_at is still ahead.
"""

import os
import subprocess
import sys
import time

from ymtest import binary, wait_until

BASE_MS = 3000  # the first open interval


def now_ms():
    return int(time.time() * 1000)


def put_limit(client, name, body, expect=(200, 201)):
    status, reply = client.call("PUT", f"/v1/limits/{name}", body)
    assert status in ((expect,) if isinstance(expect, int) else expect), (status, reply)
    return reply


def fail(client, job):
    status, body = client.call("POST", f"/v1/jobs/{job['id']}:fail", {
        "token": job["lease"]["token"],
        "error": {"type": "Upstream", "message": "503 from the partner"}, "retry_in_ms": 0})
    assert status == 200, (status, body)
    return body


def breaker_key(client, name, key):
    status, lim = client.call("GET", f"/v1/limits/{name}")
    assert status == 200, lim
    for k in lim["breaker"]["keys"]:
        if k["key"] == key:
            return k
    return {"key": key, "state": "closed"}


def trip(client, queue):
    """Fails jobs of kind `send` until the breaker opens (2 failures in a row)."""
    for _ in range(2):
        got = client.lease([queue], max_jobs=1, wait_ms=10_000)
        assert len(got) == 1 and got[0]["kind"] == "send", got
        fail(client, got[0])
    k = breaker_key(client, "partner", "send")
    assert k["state"] == "open", k
    return k


def test_the_breaker_opens_half_opens_and_closes_against_a_failing_worker(server):
    c = server.client()
    lim = put_limit(c, "partner", {
        "match": {"queue": "calls"}, "key": "kind",
        "breaker": {"consecutive_failures": 2, "open_base_ms": BASE_MS, "open_max_ms": 60000}},
        201)
    assert lim["breaker"] == {
        "consecutive_failures": 2, "window": 0, "min_samples": 1, "failure_percent": 50,
        "open_base_ms": BASE_MS, "open_max_ms": 60000, "tripped_keys": 0, "tracked_keys": 0,
        "keys": []}, lim
    send = [c.enqueue(queue="calls", kind="send", max_attempts=50)["id"] for _ in range(4)]
    k = trip(c, "calls")
    other = c.enqueue(queue="calls", kind="resize")["id"]
    assert k["next_open_at"] - k["opened_at"] == BASE_MS, k
    assert k["open_interval_ms"] == BASE_MS and k["trial_in_flight"] is False, k
    # While open: send jobs wait, with the reason and the time; other kinds run.
    got = c.lease(["calls"], max_jobs=10)
    assert now_ms() >= k["next_open_at"] or [j["id"] for j in got] == [other], got
    assert other in [j["id"] for j in got], got
    for j in got:
        c.ack(j)
    got = c.lease(["calls"], max_jobs=10)
    if now_ms() < k["next_open_at"]:
        assert got == [], "a job of an open key was leased"
    attempts_before = 0
    for jid in send:
        status, j = c.get(jid)
        assert status == 200 and j["state"] == "ready", j
        attempts_before += j["attempts"]
        if now_ms() < k["next_open_at"]:
            assert j["blocked_reason"] == "circuit_open", j
            assert j["blocked_until"] == k["next_open_at"], (j, k)
    assert attempts_before == 2, "no attempt was burnt while the breaker was open"
    q = c.queue("calls")
    if now_ms() < k["next_open_at"]:
        assert q["blocked"]["circuit_open"] == 4, q
    # A long-poll is answered when it half-opens, with exactly one job: the trial.
    trial = c.lease(["calls"], max_jobs=10, wait_ms=30_000, lease_ms=60_000)
    assert len(trial) == 1 and trial[0]["kind"] == "send", trial
    granted = trial[0]["lease"]["expires_at"] - 60_000
    assert granted >= k["next_open_at"] - 2, (granted, k)  # 1 ms per wall-clock conversion
    k = breaker_key(c, "partner", "send")
    assert k["state"] == "half_open" and k["trial_in_flight"] is True, k
    assert c.lease(["calls"], max_jobs=10) == [], "one trial at a time"
    status, waiting = c.get(next(j for j in send if j != trial[0]["id"]))
    assert waiting["blocked_reason"] == "circuit_open" and waiting["blocked_until"] is None, \
        waiting
    # The trial fails: open again for twice as long.
    fail(c, trial[0])
    k = breaker_key(c, "partner", "send")
    assert k["state"] == "open" and k["open_interval_ms"] == 2 * BASE_MS, k
    assert k["next_open_at"] - k["opened_at"] == 2 * BASE_MS, k
    # The next trial succeeds and closes it: every send job runs.
    trial = c.lease(["calls"], max_jobs=10, wait_ms=30_000)
    assert len(trial) == 1 and trial[0]["kind"] == "send", trial
    c.ack(trial[0])
    assert breaker_key(c, "partner", "send")["state"] == "closed"
    rest = c.lease(["calls"], max_jobs=10)
    assert sorted(j["id"] for j in rest) == sorted(j for j in send if j != trial[0]["id"]), rest
    for j in rest:
        c.ack(j)
    status, lim = c.call("GET", "/v1/limits/partner")
    assert lim["breaker"]["tripped_keys"] == 0 and lim["breaker"]["keys"] == [], lim
    c.close()


def test_reset_through_the_api_cli_and_sdk_serves_waiting_jobs_at_once(server):
    c = server.client()
    put_limit(c, "partner", {"key": "kind", "breaker": {
        "consecutive_failures": 2, "open_base_ms": 600_000, "open_max_ms": 600_000}}, 201)
    for _ in range(6):
        c.enqueue(queue="calls", kind="send", max_attempts=50)
    trip(c, "calls")
    # A long-poll waits (the interval is 10 minutes) and is answered by the reset.
    import threading
    served = []
    wc = server.client()
    t = threading.Thread(target=lambda: served.extend(
        wc.lease(["calls"], max_jobs=1, wait_ms=30_000)))
    t.start()
    wait_until(lambda: c.queue("calls")["waiting_workers"] == 1, 30, "the long-poll waits")
    status, r = c.call("POST", "/v1/limits/partner:reset-breaker", {})
    assert status == 200, r
    assert r["reset"] == {"key": None, "tripped_keys": 1}, r
    assert r["breaker"]["tripped_keys"] == 0, r
    t.join(timeout=30)
    assert len(served) == 1 and served[0]["kind"] == "send", served
    wc.ack(served[0])  # a success: the next trip needs two failures in a row again
    wc.close()

    # Open again; the CLI resets one key.
    trip(c, "calls")
    env = dict(os.environ, YM_URL=server.url())

    def cli(*args):
        p = subprocess.run([binary(), *args], capture_output=True, text=True, env=env,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = cli("limits", "get", "partner")
    assert rc == 0 and "breaker:      2 failures in a row, open 600000..600000 ms" in out, out
    assert "send: open until" in out, out
    rc, out, err = cli("limits", "reset-breaker", "partner", "--key", "other")
    assert rc == 0 and "(0 were open or half-open)" in out, (out, err)
    assert breaker_key(c, "partner", "send")["state"] == "open"
    rc, out, err = cli("limits", "reset-breaker", "partner", "--key", "send")
    assert rc == 0 and "(1 were open or half-open)" in out, (out, err)
    assert breaker_key(c, "partner", "send")["state"] == "closed"
    rc, out, err = cli("--json", "limits", "reset-breaker", "partner")
    assert rc == 0 and '"reset":{"key":null,"tripped_keys":0}' in out, out

    # The Python SDK: set a breaker and reset it.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
    from yardmaster import Client, NotFound, Validation
    py = Client(server.url())
    got = py.set_limit("py", breaker={"window": 10, "consecutive_failures": 0},
                       key="concurrency_key")
    assert got["breaker"]["min_samples"] == 10 and got["breaker"]["failure_percent"] == 50, got
    trip(c, "calls")
    r = py.reset_breaker("partner", key="send")
    assert r["reset"] == {"key": "send", "tripped_keys": 1}, r
    assert len(c.lease(["calls"], max_jobs=1)) == 1
    try:
        py.reset_breaker("nope")
        raise AssertionError("reset of a missing limit succeeded")
    except NotFound:
        pass
    put_limit(c, "plain", {"concurrency": 3}, 201)
    try:
        py.reset_breaker("plain")
        raise AssertionError("reset of a limit without a breaker succeeded")
    except Validation as e:
        assert "has no breaker" in str(e), e
    c.close()


def test_bad_breakers_and_resets_are_refused_and_change_nothing(server):
    c = server.client()
    good = put_limit(c, "cb", {"key": "kind", "breaker": {"consecutive_failures": 3}}, 201)
    cases = [
        ({"breaker": 5}, '"breaker"'),
        ({"breaker": {"consecutive_failures": -1}}, '"breaker.consecutive_failures"'),
        ({"breaker": {"consecutive_failures": "3"}}, '"breaker.consecutive_failures"'),
        ({"breaker": {"consecutive_failures": 0}}, "needs consecutive_failures or window"),
        ({"breaker": {"window": 10001}}, '"breaker.window"'),
        ({"breaker": {"window": 10, "min_samples": 0}}, '"breaker.min_samples"'),
        ({"breaker": {"window": 10, "min_samples": 11}}, '"breaker.min_samples"'),
        ({"breaker": {"window": 10, "failure_percent": 101}}, '"breaker.failure_percent"'),
        ({"breaker": {"window": 10, "failure_percent": 1.5}}, '"breaker.failure_percent"'),
        ({"breaker": {"open_base_ms": 0}}, '"breaker.open_base_ms"'),
        ({"breaker": {"open_base_ms": 5000, "open_max_ms": 4999}}, '"breaker.open_max_ms"'),
        ({"breaker": {"open_max_ms": 2592000001}}, '"breaker.open_max_ms"'),
        ({"breaker": {"half_open_trials": 2}}, '"breaker.half_open_trials"'),
    ]
    for bad, field in cases:
        status, err = c.call("PUT", "/v1/limits/cb", dict(bad, key="kind"))
        assert status == 422 and err["error"]["code"] == "validation_failed", (bad, err)
        assert field in err["error"]["message"], (bad, err)
    status, after = c.call("GET", "/v1/limits/cb")
    assert status == 200 and after["breaker"] == good["breaker"], after

    for path, body, code, fragment in [
        ("/v1/limits/nope:reset-breaker", {}, 404, "not found"),
        ("/v1/limits/cb:reset-breaker", {"key": 5}, 422, '"key"'),
        ("/v1/limits/cb:reset-breaker", {"keys": ["a"]}, 422, '"keys"'),
        ("/v1/limits/cb:reset-breaker", [1], 422, "JSON object"),
    ]:
        status, err = c.call("POST", path, body)
        assert status == code, (path, body, status, err)
        assert fragment in err["error"]["message"], (body, err)
    status, _, raw = c.raw("POST", "/v1/limits/cb:reset-breaker", b"{oops",
                           {"Content-Type": "application/json"})
    assert status == 400, raw
    put_limit(c, "plain", {"concurrency": 1}, 201)
    status, err = c.call("POST", "/v1/limits/plain:reset-breaker", None)
    assert status == 422 and "has no breaker" in err["error"]["message"], err
    status, after = c.call("GET", "/v1/limits/plain")
    assert after["breaker"] is None, after

    env = dict(os.environ, YM_URL=server.url())
    for args, rc_want, fragment in [
        (("limits", "set", "x", "--breaker-failures", "abc"), 2, "--breaker-failures"),
        (("limits", "set", "x", "--breaker-window", "10", "--breaker-min-samples", "11"), 1,
         '"breaker.min_samples"'),
        (("limits", "set", "x", "--key", "kind"), 2, "--breaker"),
        (("limits", "reset-breaker", "nope"), 1, "not found"),
        (("limits", "reset-breaker"), 2, "name"),
    ]:
        p = subprocess.run([binary(), *args], capture_output=True, text=True, env=env,
                           timeout=60)
        assert p.returncode == rc_want and fragment in p.stderr, (args, p.returncode, p.stderr)
    status, _ = c.call("GET", "/v1/limits/x")
    assert status == 404, "a refused limit was not created"
    c.close()


def test_breaker_state_is_in_memory_and_a_restart_starts_closed(server):
    c = server.client()
    put_limit(c, "partner", {"key": "kind", "breaker": {
        "consecutive_failures": 2, "open_base_ms": 600_000, "open_max_ms": 600_000}}, 201)
    for _ in range(3):
        c.enqueue(queue="calls", kind="send", max_attempts=50)
    trip(c, "calls")
    assert c.lease(["calls"], max_jobs=10) == []
    c.close()
    server.kill()
    server.start()
    c = server.client()
    status, lim = c.call("GET", "/v1/limits/partner")
    assert status == 200 and lim["breaker"]["consecutive_failures"] == 2, lim
    assert lim["breaker"]["keys"] == [], "documented: a restart starts every breaker closed"
    assert len(c.lease(["calls"], max_jobs=10)) == 3
    c.close()
