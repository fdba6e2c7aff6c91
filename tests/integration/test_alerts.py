"""Alerts (docs/operations.md, "Alerts"; GET /v1/alerts in docs/api.md): rules from the config
file fire and resolve, each event is a job of the reserved queue _ym.alerts that the built-in
delivery worker POSTs to a real webhook receiver, a failing webhook is retried by the job's
backoff, a restart neither loses a firing alert nor sends it again, and bad rules stop the
server with an error naming the rule and the field."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ymtest import wait_until

# Generous: the evaluator runs once a second, the gauges it reads refresh once a second, and a
# loaded 2-core machine may run the suite twice at once.
DEADLINE = 60


class Receiver:
    """A webhook receiver on 127.0.0.1, port 0. Answers the statuses in `answers` in turn (then
    200), and records every POST: (path, headers, parsed JSON body)."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.posts = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.posts.append((self.path, dict(self.headers), json.loads(body)))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, state=None):
        with self.lock:
            return [b for _, _, b in self.posts if state is None or b["state"] == state]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def config(tmp_path, text):
    cfg = tmp_path / "ym.toml"
    cfg.write_text(text)
    return str(cfg)


def lag_rule(url, name="lag", queue="work", extra=""):
    return (f'[[alerts]]\nname = "{name}"\nqueue = "{queue}"\n'
            f'condition = "oldest_ready_age > 1s for 0s"\nwebhooks = ["{url}"]\n{extra}')


def alerts(client):
    status, body = client.call("GET", "/v1/alerts")
    assert status == 200, body
    return body


def instance(client, rule, queue):
    for r in alerts(client)["alerts"]:
        if r["name"] == rule:
            for i in r["instances"]:
                if i["queue"] == queue:
                    return i
    return None


def delivery_job(client, rule, queue):
    """The one delivery job of the instance's last event. Waits for it: the worker may POST the
    job before the evaluator has recorded the id its enqueue returned."""
    def jobs():
        i = instance(client, rule, queue)
        return i["last_event"]["jobs"] if i and i["last_event"] else None
    [job_id] = wait_until(jobs, DEADLINE, f"the delivery job of {rule}/{queue}")
    return job_id


def drain(client, queue):
    for job in client.lease([queue], max_jobs=100):
        client.ack(job)


def test_fires_delivers_and_resolves(make_server, tmp_path, receiver):
    cfg = config(tmp_path, lag_rule(receiver.url("/hook?team=ops"),
                                    extra='headers = { X-Token = "s3cret" }\n'))
    s = make_server("--config", cfg)
    c = s.client()
    # Before anything happened: the rule and its one instance, inactive.
    got = alerts(c)
    assert got["delivery_queue"] == "_ym.alerts"
    [rule] = got["alerts"]
    assert rule["name"] == "lag" and rule["queue"] == "work"
    assert rule["condition"] == "oldest_ready_age > 1s for 0s"
    assert rule["webhooks"] == [receiver.url("/hook?team=ops")]
    assert [i["state"] for i in rule["instances"]] == ["inactive"]

    c.enqueue(queue="work", kind="k")  # no worker polls "work"
    wait_until(lambda: receiver.bodies("firing"), DEADLINE, "the firing POST")
    path, headers, firing = receiver.posts[0]
    assert path == "/hook?team=ops"
    assert headers["X-Token"] == "s3cret"
    assert headers["Content-Type"] == "application/json"
    assert firing["rule"] == "lag" and firing["queue"] == "work" and firing["state"] == "firing"
    assert firing["condition"] == "oldest_ready_age > 1s for 0s"
    assert firing["value"] > 1 and firing["threshold"] == 1
    assert firing["ends_at"] is None and firing["at"] >= firing["started_at"] > 0
    # The dedupe key joins rule, queue, episode start and state with '/' (docs/operations.md).
    assert firing["dedupe_key"] == "/".join(["lag", "work", str(firing["started_at"]), "firing"])
    assert firing["webhook"] == receiver.url("/hook?team=ops")

    # GET /v1/alerts: firing, with the event and its delivery job, which succeeded.
    job_id = delivery_job(c, "lag", "work")
    inst = instance(c, "lag", "work")
    assert inst["state"] == "firing" and inst["value"] > 1
    assert inst["last_event"]["dedupe_key"] == firing["dedupe_key"]
    job = wait_until(lambda: (lambda j: j if j["state"] == "succeeded" else None)(c.get(job_id)[1]),
                     DEADLINE, "the delivery job to succeed")
    assert job["queue"] == "_ym.alerts" and job["kind"] == "alert.webhook"
    assert job["payload"] == firing  # the payload is the notification, POSTed unchanged
    assert "s3cret" not in json.dumps(job)  # headers never reach the store

    drain(c, "work")
    wait_until(lambda: receiver.bodies("resolved"), DEADLINE, "the resolved POST")
    [resolved] = receiver.bodies("resolved")
    assert resolved["started_at"] == firing["started_at"]
    assert resolved["ends_at"] >= firing["at"]
    assert resolved["value"] == 0
    assert resolved["dedupe_key"] == "/".join(["lag", "work", str(firing["started_at"]),
                                               "resolved"])
    assert len(receiver.bodies("firing")) == 1  # one episode, one firing

    inst = wait_until(lambda: (lambda i: i if i["state"] == "inactive" else None)(
        instance(c, "lag", "work")), DEADLINE, "the instance to be inactive")
    assert inst["last_event"]["state"] == "resolved"
    assert inst["last_event"]["ends_at"] == resolved["ends_at"]
    c.close()


def test_a_failing_webhook_is_retried_by_the_jobs_backoff(make_server, tmp_path):
    receiver = Receiver(answers=[500])
    try:
        s = make_server("--config", config(tmp_path, lag_rule(receiver.url())))
        c = s.client()
        c.enqueue(queue="work", kind="k")
        wait_until(lambda: len(receiver.bodies()) >= 2, DEADLINE, "a second POST after the 500")
        first, second = receiver.bodies()[:2]
        assert first == second  # the same event, the same dedupe key
        job_id = delivery_job(c, "lag", "work")
        job = wait_until(
            lambda: (lambda j: j if j["state"] == "succeeded" else None)(c.get(job_id)[1]),
            DEADLINE, "the delivery job to succeed")
        assert job["attempts"] == 2, job
        [error] = job["errors"]
        assert error["type"] == "webhook_http_500", job
        assert receiver.url() in error["message"]
        c.close()
    finally:
        receiver.close()


def test_a_restart_keeps_a_firing_alert_without_sending_it_again(make_server, tmp_path,
                                                                  receiver):
    s = make_server("--config", config(tmp_path, lag_rule(receiver.url())))
    c = s.client()
    c.enqueue(queue="work", kind="k")
    wait_until(lambda: receiver.bodies("firing"), DEADLINE, "the firing POST")
    [firing] = receiver.bodies("firing")
    # Its ack durable first: a kill between the POST and the ack's commit would (rightly, at
    # least once) send the same event again after the restart.
    job_id = delivery_job(c, "lag", "work")
    wait_until(lambda: c.get(job_id)[1]["state"] == "succeeded", DEADLINE, "the ack")
    c.close()

    s.restart()  # the job is still ready: the condition still holds
    c = s.client()
    inst = instance(c, "lag", "work")
    assert inst["state"] == "firing", inst  # rebuilt before the listener opened
    assert inst["last_event"]["dedupe_key"] == firing["dedupe_key"]
    assert len(inst["last_event"]["jobs"]) == 1
    # Several evaluations later, still no second firing.
    wait_until(lambda: alerts(c)["evaluations_total"] >= 3, DEADLINE, "three evaluations")
    assert len(receiver.bodies("firing")) == 1
    assert instance(c, "lag", "work")["state"] == "firing"

    drain(c, "work")
    wait_until(lambda: receiver.bodies("resolved"), DEADLINE, "the resolved POST")
    [resolved] = receiver.bodies("resolved")
    assert resolved["started_at"] == firing["started_at"]  # the same episode
    c.close()


def test_no_pollers_and_failure_ratio_rules(make_server, tmp_path, receiver):
    text = (f'[[alerts]]\nname = "idle"\nqueue = "nobody"\ncondition = "no_pollers for 1s"\n'
            f'webhooks = ["{receiver.url("/idle")}"]\n'
            f'[[alerts]]\nname = "failing"\nqueue = "*"\n'
            f'condition = "failure_ratio >= 0.5 over 1m min 2"\n'
            f'webhooks = ["{receiver.url("/ratio")}"]\n')
    s = make_server("--config", config(tmp_path, text))
    c = s.client()
    c.enqueue(queue="nobody", kind="k")
    for _ in range(2):
        c.enqueue(queue="flaky", kind="k", max_attempts=5)
    for job in c.lease(["flaky"], max_jobs=2):
        status, body = c.call("POST", f"/v1/jobs/{job['id']}:fail",
                              {"token": job["lease"]["token"],
                               "error": {"type": "E", "message": "boom"}})
        assert status == 200, body
    wait_until(lambda: {b["rule"] for b in receiver.bodies("firing")} >= {"idle", "failing"},
               DEADLINE, "both rules to fire")
    by_rule = {b["rule"]: b for b in receiver.bodies("firing")}
    assert by_rule["idle"]["queue"] == "nobody" and by_rule["idle"]["value"] >= 1
    assert by_rule["failing"]["queue"] == "flaky" and by_rule["failing"]["value"] == 1
    paths = {p for p, _, _ in receiver.posts}
    assert paths == {"/idle", "/ratio"}
    # A rule on every queue shows an instance per queue it fired for, never _ym.alerts.
    [failing] = [r for r in alerts(c)["alerts"] if r["name"] == "failing"]
    assert failing["queue"] == "*"
    assert [i["queue"] for i in failing["instances"]] == ["flaky"]
    # A worker polls "nobody": resolved.
    c.lease(["nobody"])
    wait_until(lambda: [b for b in receiver.bodies("resolved") if b["rule"] == "idle"],
               DEADLINE, "no_pollers to resolve")
    c.close()


def test_no_rules_lists_none(client):
    status, body = client.call("GET", "/v1/alerts")
    assert status == 200 and body["alerts"] == [] and body["events_total"] == 0, body


GOOD = 'name = "r"\ncondition = "lag_seconds > 1"\nwebhooks = ["http://127.0.0.1:9/h"]\n'


@pytest.mark.parametrize("table, expected", [
    (GOOD.replace('name = "r"\n', ''), "alerts[0].name: required"),
    (GOOD.replace('"lag_seconds > 1"', '"lag_seconds > 1 for ever"'),
     'alerts[0] (r).condition: for: bad duration "ever"'),
    (GOOD.replace('"lag_seconds > 1"', '"depth > 1"'),
     'alerts[0] (r).condition: unknown measure "depth"'),
    (GOOD.replace('"lag_seconds > 1"', '"failure_ratio > 0.5"'),
     "alerts[0] (r).condition: failure_ratio needs a window"),
    (GOOD.replace("http://127.0.0.1:9/h", "https://127.0.0.1:9/h"),
     "alerts[0] (r).webhooks[0]: \"https://127.0.0.1:9/h\": https is not supported"),
    (GOOD.replace('["http://127.0.0.1:9/h"]', '[]'), "alerts[0] (r).webhooks: must be an array"),
    (GOOD + 'queue = "bad queue"\n', "alerts[0] (r).queue: must be a queue name"),
    (GOOD + 'headers = { Host = "x" }\n', 'alerts[0] (r).headers.Host: header "Host" is set'),
    (GOOD + 'colour = "red"\n', 'alerts[0] (r): unknown key "colour"'),
])
def test_bad_rules_stop_the_server_naming_the_rule_and_field(make_server, tmp_path, table,
                                                             expected):
    cfg = config(tmp_path, "[[alerts]]\n" + table)
    with pytest.raises(RuntimeError) as e:
        make_server("--config", cfg)
    assert cfg in str(e.value) and expected in str(e.value), str(e.value)


def run_cli(server, *args):
    import subprocess
    from ymtest import binary
    return subprocess.run([binary(), *args, "--server", server.url()], capture_output=True,
                          text=True, timeout=60)


def test_cli_lists_the_rules_and_their_state(make_server, tmp_path, receiver):
    text = lag_rule(receiver.url()) + (
        '[[alerts]]\nname = "dead-any"\nqueue = "*"\ncondition = "dead_growth >= 1 over 1m"\n'
        f'webhooks = ["{receiver.url()}"]\n')
    s = make_server("--config", config(tmp_path, text))
    c = s.client()
    c.enqueue(queue="work", kind="k")
    wait_until(lambda: receiver.bodies("firing"), DEADLINE, "the firing POST")
    job_id = delivery_job(c, "lag", "work")
    r = run_cli(s, "alerts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["RULE", "QUEUE", "CONDITION", "STATE", "SINCE", "VALUE",
                                "LAST", "EVENT", "JOBS"]
    [lag] = [line for line in lines if line.startswith("lag ")]
    assert " work " in lag and " firing " in lag and lag.endswith(job_id), lag
    [dead] = [line for line in lines if line.startswith("dead-any ")]
    assert dead.split()[1] == "*" and " - " in dead, dead
    assert "delivered" in lines[-1] and "_ym.alerts" in lines[-1]
    r = run_cli(s, "alerts", "--json")
    assert r.returncode == 0, r.stderr
    assert [a["name"] for a in json.loads(r.stdout)["alerts"]] == ["lag", "dead-any"]
    c.close()


def test_cli_without_rules(server):
    r = run_cli(server, "alerts")
    assert r.returncode == 0 and r.stdout.startswith("no alert rules"), (r.stdout, r.stderr)


def test_a_delivery_whose_rule_left_the_config_ends_dead_and_can_be_replayed(make_server,
                                                                           tmp_path):
    receiver = Receiver(answers=[500] * 1000)
    try:
        cfg = config(tmp_path, lag_rule(receiver.url()))
        s = make_server("--config", cfg)
        c = s.client()
        c.enqueue(queue="work", kind="k")
        wait_until(lambda: receiver.bodies(), DEADLINE, "a first (refused) POST")
        job_id = delivery_job(c, "lag", "work")
        c.close()

        # The rule is gone from the file: its webhook's headers are unknown, nothing is sent.
        config(tmp_path, lag_rule(receiver.url(), name="other", queue="elsewhere"))
        s.restart()
        c = s.client()
        # (Up to a lease of 60 s more if the kill caught the job leased.)
        job = wait_until(lambda: (lambda j: j if j["state"] == "dead" else None)(c.get(job_id)[1]),
                         DEADLINE + 60, "the delivery job to go dead")
        assert job["dead_reason"] == "non_retryable", job
        assert job["last_error"]["type"] == "alert_rule_gone", job
        assert "rule lag" in job["last_error"]["message"]
        c.close()

        # Back in the file, and the webhook healthy: a replay delivers it.
        receiver.answers = []
        config(tmp_path, lag_rule(receiver.url()))
        s.restart()
        c = s.client()
        posts = len(receiver.bodies())
        status, body = c.call("POST", f"/v1/jobs/{job_id}:replay")
        assert status == 200, body
        wait_until(lambda: len(receiver.bodies()) > posts, DEADLINE, "the replayed POST")
        assert receiver.bodies()[-1]["dedupe_key"] == receiver.bodies()[0]["dedupe_key"]
        c.close()
    finally:
        receiver.close()
