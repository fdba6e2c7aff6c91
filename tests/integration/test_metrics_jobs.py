"""Per-queue and per-kind job metrics on GET /metrics (issue 12, item 1; docs/operations.md,
"Metrics"): ym_job_events_total, the wait / run / end-to-end histograms, blocked jobs by
reason, the last poll per queue, and the label cap with its overflow set.

Black box: the real binary with a known workload on three (queue, kind) pairs and a fourth past
a cap of 3; the counters and histogram counts must be exactly what the workload did. Waits for
timers (a lease expiry, a timeout) and for the gauge refresh (about once a second) are on a
condition with a generous bound."""

import re
import time

from ymtest import wait_until

EVENTS = ("enqueued", "leased", "succeeded", "failed", "retried", "dead", "cancelled",
          "lease_expired", "timed_out")


def scrape(client):
    status, _, body = client.raw("GET", "/metrics")
    assert status == 200
    series = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def events(series, queue, kind):
    return {e: series.get(f'ym_job_events_total{{queue="{queue}",kind="{kind}",event="{e}"}}')
            for e in EVENTS}


def expect_events(series, queue, kind, **nonzero):
    want = {e: float(nonzero.get(e, 0)) for e in EVENTS}
    assert events(series, queue, kind) == want, (queue, kind)


def histogram(series, name, queue, kind):
    """(count, sum, +Inf bucket, buckets by le) of one labelled histogram."""
    labels = f'queue="{queue}",kind="{kind}"'
    buckets = {}
    pattern = re.compile(re.escape(f"{name}_bucket{{{labels},le=") + r'"([^"]+)"\}')
    for key, value in series.items():
        m = pattern.fullmatch(key)
        if m:
            buckets[m.group(1)] = value
    return (series.get(f"{name}_count{{{labels}}}"), series.get(f"{name}_sum{{{labels}}}"),
            buckets.get("+Inf"), buckets)


def fail(client, job, retryable=True, retry_in_ms=None):
    body = {"token": job["lease"]["token"],
            "error": {"type": "boom", "message": "test", "retryable": retryable}}
    if retry_in_ms is not None:
        body["retry_in_ms"] = retry_in_ms
    status, reply = client.call("POST", f"/v1/jobs/{job['id']}:fail", body)
    assert status == 200, reply
    return reply


def test_a_known_workload_gives_exact_job_counters_histograms_and_overflow(make_server):
    server = make_server("--metrics-max-label-sets", "3")
    client = server.client()
    started = time.time()

    # mq1/ka: five jobs, three leased and acked, two left ready with nobody polling.
    for _ in range(5):
        client.enqueue(queue="mq1", kind="ka")
    leased = client.lease(["mq1"], max_jobs=3)
    assert len(leased) == 3
    time.sleep(0.05)  # every run lasts at least 50 ms
    for job in leased:
        client.ack(job)

    # mq2/kb: A fails and is retried, then fails and is dead; B fails non-retryable (dead);
    # C is cancelled while ready; D's lease expires and D is ready again. Priorities fix the
    # order in which leases take them.
    spec = dict(queue="mq2", kind="kb", max_attempts=2)
    a = client.enqueue(priority=3, **spec)["id"]
    b = client.enqueue(priority=2, **spec)["id"]
    c = client.enqueue(priority=1, **spec)["id"]
    d = client.enqueue(priority=0, **spec)["id"]
    status, _ = client.call("POST", f"/v1/jobs/{c}:cancel")
    assert status == 200
    [job] = client.lease(["mq2"])
    assert job["id"] == a
    assert fail(client, job, retry_in_ms=0)["state"] == "ready"
    [job] = client.lease(["mq2"])
    assert job["id"] == a
    assert fail(client, job)["state"] == "dead"
    [job] = client.lease(["mq2"])
    assert job["id"] == b
    assert fail(client, job, retryable=False)["state"] == "dead"
    [job] = client.lease(["mq2"], lease_ms=200)
    assert job["id"] == d

    # mq1/kt: one attempt that runs into its one-second timeout, and is dead.
    client.enqueue(queue="mq1", kind="kt", timeout_ms=1000, max_attempts=1, priority=10)
    [job] = client.lease(["mq1"])
    assert job["kind"] == "kt"

    # mq3/kz: a fourth pair, past the cap of 3: counted under ~other.
    client.enqueue(queue="mq3", kind="kz")
    status, _ = client.call("PUT", "/v1/queues/mq3", {"paused": True})
    assert status == 200

    def settled():
        s = scrape(client)
        done = (events(s, "mq2", "kb")["lease_expired"] == 1
                and events(s, "mq1", "kt")["timed_out"] == 1)
        return s if done else None
    s = wait_until(settled, 30, "the lease expiry and the timeout to be counted")

    expect_events(s, "mq1", "ka", enqueued=5, leased=3, succeeded=3)
    expect_events(s, "mq2", "kb", enqueued=4, leased=4, failed=3, retried=2, dead=2, cancelled=1,
                  lease_expired=1)
    expect_events(s, "mq1", "kt", enqueued=1, leased=1, timed_out=1, dead=1)
    expect_events(s, "~other", "~other", enqueued=1)
    assert not any('queue="mq3"' in k and k.startswith("ym_job_") for k in s), \
        "a pair past the cap has no series of its own"
    assert not any(re.search(r'\bid="', k) for k in s), "never a job id"
    # The old unlabelled totals still count everything.
    assert s["ym_jobs_enqueued_total"] == 11
    assert s["ym_jobs_acked_total"] == 3
    assert s["ym_jobs_failed_total"] == 3

    # Histograms: one wait per lease, one run per ended attempt, one end to end per terminal job.
    for name, pair, count in [
            ("ym_job_wait_seconds", ("mq1", "ka"), 3),
            ("ym_job_wait_seconds", ("mq2", "kb"), 4),
            ("ym_job_wait_seconds", ("mq1", "kt"), 1),
            ("ym_job_run_seconds", ("mq1", "ka"), 3),
            ("ym_job_run_seconds", ("mq2", "kb"), 4),  # A twice, B, D's expired lease
            ("ym_job_run_seconds", ("mq1", "kt"), 1),
            ("ym_job_end_to_end_seconds", ("mq1", "ka"), 3),
            ("ym_job_end_to_end_seconds", ("mq2", "kb"), 3),  # A, B dead; C cancelled
            ("ym_job_end_to_end_seconds", ("mq1", "kt"), 1)]:
        n, total, inf, buckets = histogram(s, name, *pair)
        assert n == count and inf == count, (name, pair, n, inf)
        assert list(buckets.values()) == sorted(buckets.values()), (name, pair, buckets)
        assert len(buckets) == 19, "18 bounds, 100 µs .. 60 s, and +Inf"
    # Runs: the acked ones lasted at least 50 ms; the timed-out one its full second; D's lease
    # its 200 ms. None reaches a minute.
    n, total, _, buckets = histogram(s, "ym_job_run_seconds", "mq1", "ka")
    assert buckets["0.025"] == 0 and total >= 3 * 0.05, buckets
    n, total, _, buckets = histogram(s, "ym_job_run_seconds", "mq1", "kt")
    assert buckets["0.5"] == 0 and buckets["60"] == 1 and 1.0 <= total < 60, buckets
    n, total, _, buckets = histogram(s, "ym_job_run_seconds", "mq2", "kb")
    assert buckets["0.1"] <= 3 and total >= 0.2, buckets
    # Nothing waited past the workload's own length.
    elapsed = time.time() - started
    _, total, _, _ = histogram(s, "ym_job_wait_seconds", "mq1", "ka")
    assert 0 <= total <= 3 * elapsed

    # The cap and its overflow.
    assert s['ym_metrics_label_sets{family="ym_job_events_total"}'] == 4  # 3 + ~other
    assert s['ym_metrics_label_sets{family="ym_job_wait_seconds"}'] == 3
    assert s['ym_metrics_label_sets{family="ym_job_end_to_end_seconds"}'] == 3
    assert s['ym_metrics_label_overflow_total{family="ym_job_events_total"}'] == 1
    assert s['ym_metrics_label_overflow_total{family="ym_job_wait_seconds"}'] == 0

    # Blocked by reason, from the per-queue snapshot (refreshed about once a second): mq1's two
    # ready jobs have no worker waiting, mq2's D too; mq3 is paused.
    def blocked():
        s = scrape(client)
        want = {("mq1", "no_workers"): 2, ("mq2", "no_workers"): 1, ("mq3", "paused"): 1,
                ("mq1", "paused"): 0, ("mq3", "no_workers"): 0}
        got = {k: s.get(f'ym_queue_blocked_jobs{{queue="{k[0]}",reason="{k[1]}"}}') for k in want}
        return s if got == want else None
    s = wait_until(blocked, 30, "the blocked reasons of the three queues")
    for q in ("mq1", "mq2", "mq3"):
        reasons = [k for k in s if k.startswith(f'ym_queue_blocked_jobs{{queue="{q}",')]
        assert len(reasons) == 10, reasons
    # The last poll: mq1 and mq2 were polled during the test, mq3 never.
    now = time.time()
    for q in ("mq1", "mq2"):
        t = s[f'ym_queue_last_poll_timestamp_seconds{{queue="{q}"}}']
        assert started - 1 <= t <= now + 1, (q, started, t, now)
    assert 'ym_queue_last_poll_timestamp_seconds{queue="mq3"}' not in s
    client.close()


def test_the_default_cap_and_a_bad_cap_is_a_clear_config_error(make_server, tmp_path):
    import subprocess
    from ymtest import binary
    server = make_server()
    client = server.client()
    for i in range(3):
        client.enqueue(queue=f"q{i}", kind="k")
    s = scrape(client)
    assert s['ym_metrics_label_sets{family="ym_job_events_total"}'] == 3
    assert s['ym_metrics_label_overflow_total{family="ym_job_events_total"}'] == 0
    assert 'ym_job_events_total{queue="~other",kind="~other",event="enqueued"}' not in s
    client.close()
    for bad in ("0", "100001", "lots"):
        r = subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                            str(tmp_path / "never"), "--metrics-max-label-sets", bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        assert "--metrics-max-label-sets: must be an integer between 1 and 100000" in r.stderr, \
            r.stderr
