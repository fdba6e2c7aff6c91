"""A real scrape (issue 12, part 7): a real `prometheus` server (Debian's package) on a free
loopback port scrapes a running broker every second and evaluates deploy/prometheus/alerts.yml;
after a known workload, Prometheus's HTTP API must answer the queue depth that was made, and
histogram quantiles in the buckets that the workload's durations fall into.

A second broker runs with `--auth tokens`, as deploy/ ships it: a Prometheus given the scrape job
of deploy/prometheus/prometheus.yml as shipped (its `authorization` block, a `credentials_file`
holding a viewer token) scrapes it (up == 1), while the same job without the token gets 401s
(up == 0, counted by the broker in ym_auth_failures_total).

Skips only when the `prometheus` binary is missing (scripts/install-deps.sh installs it, so CI
runs this). Every wait is on a condition with a deadline; both servers are stopped at the end.
"""

import bisect
import copy
import os
import threading
import time

import pytest
import yaml

from promtest import (ALERTS, PROMETHEUS_YML, Prometheus, dashboard_exprs, families,
                      grafana_to_promql, load_alerts, load_dashboard, tool)
from ymtest import Server, admin_secret, auth_call, create_token, wait_until

pytestmark = pytest.mark.skipif(
    tool("prometheus") is None,
    reason="prometheus is not installed (Debian package `prometheus`; scripts/install-deps.sh)")

DEADLINE = 60.0          # per condition; a scrape every second
DEPTH = 7                # jobs left ready on queue "q" (no worker)
POLLS = 3                # long-polls on an empty queue, each answered after POLL_MS
POLL_MS = 1500
RUN_JOBS = 4             # jobs leased from queue "r" and acked after HOLD_S
HOLD_S = 1.2

# obs::Histogram::LatencyBoundsUs() in seconds: the `le` bounds of every latency histogram.
BOUNDS = [1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5,
          10, 30, 60]


def bucket(seconds):
    """(lower, upper] of the bucket an observation of `seconds` falls into."""
    i = bisect.bisect_left(BOUNDS, seconds)
    return (BOUNDS[i - 1] if i > 0 else 0.0), (BOUNDS[i] if i < len(BOUNDS) else float("inf"))


def assert_in_buckets(value, low_s, high_s, what):
    """A quantile estimated from observations known to lie in [low_s, high_s] lies between the
    lower edge of low_s's bucket and the upper edge of high_s's (histogram_quantile
    interpolates inside a bucket)."""
    lo, _ = bucket(low_s)
    _, hi = bucket(high_s)
    assert value is not None, f"{what}: no value"
    assert lo <= value <= hi, f"{what} = {value}, expected in [{lo}, {hi}] " \
                              f"(observations between {low_s:.3f}s and {high_s:.3f}s)"


class Scrape:
    """The broker, Prometheus, and what the workload measured from the client's side."""

    def __init__(self, tmp):
        self.broker = Server(str(tmp / "data"))
        self.prom = None
        self.tmp = tmp
        self.poll_s = []            # client-side duration of each long-poll
        self.run_low = self.run_high = None
        self.polls_seen_at = None   # a time at which Prometheus had scraped the polls
        self.exposed = {}

    def wait_value(self, expr, expected, at=None):
        def check():
            v = self.prom.value(expr, at)
            return v == expected and (v,)
        try:
            return wait_until(check, DEADLINE, f"{expr} == {expected}", step=0.25)
        except AssertionError as e:
            raise AssertionError(f"{e}; last value {self.prom.value(expr, at)}; prometheus log:\n"
                                 f"{self.prom.log()}") from None


@pytest.fixture(scope="module")
def scrape(tmp_path_factory):
    s = Scrape(tmp_path_factory.mktemp("scrape"))
    s.broker.start()
    try:
        s.prom = Prometheus(str(s.tmp), [f"127.0.0.1:{s.broker.port}"], rule_files=[ALERTS])
        s.prom.start()
        c = s.broker.client()
        status, _, text = c.raw("GET", "/metrics")
        assert status == 200
        s.exposed = families(text.decode())

        # Phase 1: DEPTH jobs on "q", which nobody polls; POLLS long-polls on the empty "idle"
        # queue, at once, each answered empty after POLL_MS.
        for i in range(DEPTH):
            c.enqueue(queue="q", kind="k", payload={"i": i})

        def poll():
            pc = s.broker.client()
            t0 = time.monotonic()
            assert pc.lease(["idle"], wait_ms=POLL_MS) == []
            s.poll_s.append(time.monotonic() - t0)
            pc.close()
        threads = [threading.Thread(target=poll) for _ in range(POLLS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=DEADLINE)
        assert len(s.poll_s) == POLLS, s.poll_s
        s.wait_value('sum(ym_http_request_duration_seconds_count{route="POST /v1/leases"})',
                     POLLS)
        s.polls_seen_at = time.time()

        # Phase 2: RUN_JOBS jobs on "r", leased at once and each acked HOLD_S later.
        for i in range(RUN_JOBS):
            c.enqueue(queue="r", kind="k", payload={"i": i})
        t_before_lease = time.monotonic()
        jobs = c.lease(["r"], max_jobs=RUN_JOBS)
        t_leased = time.monotonic()
        assert len(jobs) == RUN_JOBS, jobs
        time.sleep(HOLD_S)
        for job in jobs:
            c.ack(job)
        t_acked = time.monotonic()
        # Each attempt ran from its lease (between t_before_lease and t_leased) to its ack
        # (between HOLD_S after t_leased and t_acked).
        s.run_low = HOLD_S
        s.run_high = t_acked - t_before_lease
        c.close()
        s.wait_value("sum(ym_jobs_acked_total)", RUN_JOBS)
        yield s
    finally:
        if s.prom is not None:
            s.prom.stop()
        s.broker.stop()


def test_queue_depth_series(scrape):
    """The depth made by the workload, as Prometheus stored it from the scrape."""
    scrape.wait_value('ym_queue_jobs{job="yardmaster",queue="q",state="ready"}', DEPTH)
    scrape.wait_value('ym_queue_jobs{queue="q",state="active"}', 0)
    # Every job of "r" was acked: its series are 0 or gone (a queue without live jobs).
    scrape.wait_value('sum(ym_queue_jobs{queue="r"}) or vector(0)', 0)
    # The oldest of them has been ready since phase 1, at least the long-polls' time ago.
    age = scrape.prom.value('ym_queue_oldest_ready_age_seconds{queue="q"}')
    assert age is not None and age >= POLL_MS / 1000 * 0.9, age
    assert scrape.prom.value('up{job="yardmaster"}') == 1


def test_http_request_duration_quantile(scrape):
    """Three long-polls that each waited POLL_MS: the p90 of POST /v1/leases at the moment
    Prometheus had scraped them (and before phase 2 leased anything) lies in their bucket."""
    q = scrape.prom.value(
        'histogram_quantile(0.9, sum by (le) ('
        'ym_http_request_duration_seconds_bucket{route="POST /v1/leases",code="2xx"}))',
        at=scrape.polls_seen_at)
    # The server answers a long-poll when its wait is over: no sooner than POLL_MS after it read
    # the request, and no later than the client saw the answer.
    assert_in_buckets(q, POLL_MS / 1000, max(scrape.poll_s), "p90 of POST /v1/leases")


def test_store_commit_duration_histogram(scrape):
    """ym_store_commit_duration_seconds counts every commit of the workload (enqueues, leases,
    acks: at least one commit each for phase 1 and 2) and its p50 is a real bucket value."""
    count = scrape.prom.value("sum(ym_store_commit_duration_seconds_count)")
    commits = scrape.prom.value("sum(ym_store_commits_total)")
    assert count is not None and commits is not None and count >= commits >= 2, (count, commits)
    p50 = scrape.prom.value(
        "histogram_quantile(0.5, sum by (le) (ym_store_commit_duration_seconds_bucket))")
    assert p50 is not None and 0 < p50 <= 60, p50


def test_job_run_seconds_quantile(scrape):
    """Four attempts that ran HOLD_S each (from lease to ack): the p50 of ym_job_run_seconds for
    queue "r" lies in their bucket."""
    assert scrape.exposed.get("ym_job_run_seconds") == "histogram", scrape.exposed
    scrape.wait_value('sum(ym_job_run_seconds_count{queue="r"})', RUN_JOBS)
    q = scrape.prom.value(
        'histogram_quantile(0.5, sum by (le) (ym_job_run_seconds_bucket{queue="r"}))')
    assert_in_buckets(q, scrape.run_low, scrape.run_high, 'p50 of ym_job_run_seconds{queue="r"}')


def test_alert_rules_load_and_evaluate(scrape):
    """Prometheus loaded every rule of deploy/prometheus/alerts.yml and evaluates each without
    an error against the real series."""
    names = {a["alert"] for a in load_alerts()}

    def evaluated():
        groups = scrape.prom.api("rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        done = all(rules.get(n, {}).get("lastEvaluation", "0001").startswith("20")
                   for n in names)
        return (rules,) if set(rules) == names and done else None
    (rules,) = wait_until(evaluated, DEADLINE, "every alert rule to be evaluated", step=0.25)
    for name, r in rules.items():
        assert r["health"] == "ok", (name, r)
        assert not r.get("lastError"), (name, r)
    # Nothing of the workload is bad enough to fire anything.
    firing = [a for a in scrape.prom.api("alerts")["alerts"] if a["state"] == "firing"]
    assert not firing, firing


def test_dashboard_expressions_evaluate(scrape):
    """Every dashboard query runs on the real Prometheus, and those reading exposed families that
    the workload moved return series."""
    for where, expr in dashboard_exprs(load_dashboard()):
        scrape.prom.query(grafana_to_promql(expr))  # fails the test on an error answer
    assert scrape.prom.query('sum by (queue, state) (ym_queue_jobs{queue=~".*"})')


def test_no_pollers_alert_expression_on_real_series(scrape):
    """YardmasterQueueNoPollers's expression, evaluated on the scraped series (its `for:` aside):
    it names queue "q" (7 ready jobs, never polled) with its depth, and neither "idle" (polled,
    empty) nor "r" (polled, every job acked)."""
    (rule,) = [a for a in load_alerts() if a["alert"] == "YardmasterQueueNoPollers"]

    def only_q():
        result = scrape.prom.query(rule["expr"])
        return [(r["metric"].get("queue"), float(r["value"][1])) for r in result] == \
            [("q", DEPTH)] and (result,)
    wait_until(only_q, DEADLINE, "the no-pollers expression to name queue q", step=0.25)


# --- Scraping a broker with auth on, as shipped ----------------------------------------------------

def test_shipped_scrape_config_with_a_viewer_token_scrapes_an_auth_broker(tmp_path):
    """deploy/prometheus/prometheus.yml's job, as shipped, against `--auth tokens`: with the
    viewer token in its credentials_file every scrape succeeds (up == 1, the broker's series
    stored); the same job without the `authorization` block is refused (401: up == 0), and the
    broker counts those failures."""
    with open(PROMETHEUS_YML, encoding="utf-8") as f:
        shipped = yaml.safe_load(f)
    (job,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "yardmaster"]
    assert job["authorization"]["type"] == "Bearer", job
    credentials = job["authorization"]["credentials_file"]
    assert not os.path.isabs(credentials), credentials  # from the config file's directory

    broker = Server(str(tmp_path / "data"), ["--auth", "tokens"]).start()
    prom = None
    try:
        admin = admin_secret(broker)
        viewer = create_token(broker, admin, "prometheus", role="viewer")
        assert viewer["namespaces"] == ["*"], viewer
        # What the scraper is refused without a token, and given with it.
        assert auth_call(broker, "GET", "/metrics")[0] == 401
        assert auth_call(broker, "GET", "/metrics", token=viewer["secret"])[0] == 200
        # Probes stay open (deploy/kubernetes/server.yaml's probes send no header).
        for path in ("/livez", "/readyz"):
            assert auth_call(broker, "GET", path)[0] == 200, path

        workdir = tmp_path / "prom"
        workdir.mkdir()
        fd = os.open(str(workdir / credentials), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(viewer["secret"] + "\n")
        target = f"127.0.0.1:{broker.port}"
        with_token = copy.deepcopy(job)
        with_token["static_configs"] = [{"targets": [target]}]
        with_token["scrape_timeout"] = "1s"
        without = copy.deepcopy(with_token)
        without["job_name"] = "yardmaster-no-token"
        del without["authorization"]
        prom = Prometheus(str(workdir), [target], scrape_configs=[with_token, without]).start()

        def value(expr, expected):
            def check():
                v = prom.value(expr)
                return v == expected and (v,)
            try:
                wait_until(check, DEADLINE, f"{expr} == {expected}", step=0.25)
            except AssertionError as e:
                raise AssertionError(f"{e}; last {prom.value(expr)}; log:\n{prom.log()}") \
                    from None
        value('up{job="yardmaster"}', 1)
        value('count(ym_build_info{job="yardmaster"})', 1)
        value('up{job="yardmaster-no-token"}', 0)
        assert prom.value('count(ym_build_info{job="yardmaster-no-token"}) or vector(0)') == 0
        targets = prom.api("targets")["activeTargets"]
        refused = [t for t in targets if t["labels"]["job"] == "yardmaster-no-token"]
        assert refused and "401" in refused[0]["lastError"], refused
        # The broker saw the refused scrapes (read through the scrape that works).
        wait_until(lambda: (prom.value('sum(ym_auth_failures_total{job="yardmaster"})') or 0)
                   >= 1, DEADLINE, "the broker to count the 401 scrapes", step=0.25)
    finally:
        if prom is not None:
            prom.stop()
        broker.stop()
