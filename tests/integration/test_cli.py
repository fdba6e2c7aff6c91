"""The operator CLI against the real server: output, --json, exit codes (docs/cli.md)."""

import json
import re
import subprocess

import pytest
from ymtest import binary, metric


def run(server, *args, stdin=None):
    return subprocess.run([binary(), *args, "--server", server.url()], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_enqueue_get_and_list_with_json(server):
    p = run(server, "enqueue", "--queue", "cli", "--kind", "k", "--payload", '{"a":1}', "--json")
    assert p.returncode == 0, p.stderr
    job_id = json.loads(p.stdout)["id"]
    p = run(server, "jobs", "get", job_id, "--json")
    assert p.returncode == 0, p.stderr
    job = json.loads(p.stdout)
    assert job["payload"] == {"a": 1} and job["queue"] == "cli"
    p = run(server, "jobs", "list", "--queue", "cli", "--json")
    assert p.returncode == 0
    assert [j["id"] for j in json.loads(p.stdout)["items"]] == [job_id]


def test_payload_from_stdin_and_tables(server):
    p = run(server, "enqueue", "--queue", "cli2", "--kind", "k", "--payload", "-",
            stdin='{"from":"stdin"}')
    assert p.returncode == 0, p.stderr
    p = run(server, "queues")
    assert p.returncode == 0
    assert "cli2" in p.stdout


def test_server_error_exits_1_with_the_code(server):
    p = run(server, "jobs", "get", "987654")
    assert p.returncode == 1
    assert "not_found" in p.stderr


def test_bad_usage_exits_2(server):
    p = run(server, "enqueue", "--kind", "k")  # --queue missing
    assert p.returncode == 2
    p = run(server, "enqueue", "--queue", "q", "--kind", "k", "--payload", "{not json")
    assert p.returncode in (1, 2) and p.stderr


def test_unreachable_server_exits_3():
    p = subprocess.run([binary(), "info", "--server", "http://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert p.stderr


def test_cancel_and_dead_replay(server):
    c = server.client()
    jid = c.enqueue(queue="cli3", kind="k", max_attempts=1)["id"]
    job = c.lease(["cli3"])[0]
    c.call("POST", f"/v1/jobs/{jid}:fail", {"token": job["lease"]["token"],
                                           "error": {"type": "x", "message": "y"}})
    c.close()
    p = run(server, "dead", "list", "--queue", "cli3", "--json")
    assert p.returncode == 0 and [j["id"] for j in json.loads(p.stdout)["items"]] == [jid]
    p = run(server, "dead", "replay", "--queue", "cli3", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["replayed"] == 1
    p = run(server, "jobs", "cancel", jid, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "cancelled"


def test_queues_lists_every_page_and_pause_of_an_unknown_queue_needs_create(server):
    c = server.client()
    names = [f"cliq{i:03d}" for i in range(150)]  # more than one page of 100
    status, body = c.call("POST", "/v1/jobs:batch", {"jobs": [{"queue": n, "kind": "k"}
                                                              for n in names]})
    assert status == 200, body
    p = run(server, "queues")
    assert p.returncode == 0, p.stderr
    rows = [line.split()[0] for line in p.stdout.splitlines()[1:]]
    assert rows == names
    p = run(server, "queues", "--json")
    assert p.returncode == 0, p.stderr
    listing = json.loads(p.stdout)
    assert [q["name"] for q in listing["items"]] == names and listing["next_cursor"] is None
    # A typo does not create a paused phantom queue.
    for verb in ("pause", "resume"):
        p = run(server, "queues", verb, "cliqtypo")
        assert p.returncode == 1 and "queue_not_found" in p.stderr, (verb, p.stderr)
    assert c.call("GET", "/v1/queues/cliqtypo")[0] == 404
    p = run(server, "queues", "pause", "cliqnew", "--create")
    assert p.returncode == 0, p.stderr
    assert "cliqnew: paused" in p.stdout
    assert c.queue("cliqnew")["paused"] is True
    p = run(server, "queues", "resume", "cliqnew")
    assert p.returncode == 0 and "cliqnew: running" in p.stdout
    p = run(server, "queues", "reset", "cliqnew")
    assert p.returncode == 0 and "configuration removed" in p.stdout, p.stdout
    p = run(server, "queues", "reset", "cliqtypo")
    assert p.returncode == 1 and "queue_not_found" in p.stderr, p.stderr
    c.close()


def test_jobs_wait_exit_codes_follow_how_the_job_ended(server):
    c = server.client()
    # Still live when --timeout passes: exit 5, the job shown as it stands.
    job = c.enqueue(queue="cliwait", kind="k", max_attempts=1)
    p = run(server, "jobs", "wait", job["id"], "--timeout", "0.2", "--json")
    assert p.returncode == 5, (p.stdout, p.stderr)
    assert json.loads(p.stdout)["state"] == "ready"
    assert "still ready" in p.stderr
    # Woken by the ack while it waits: exit 0, with the result.
    waiting = subprocess.Popen([binary(), "jobs", "wait", job["id"], "--server", server.url()],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from ymtest import metric, wait_until
        wait_until(lambda: metric(c.call("GET", "/metrics")[1], "ym_job_waits") == 1, 20,
                   "the CLI's wait to be registered")
        leased = c.lease(["cliwait"])[0]
        status, _ = c.call("POST", f"/v1/jobs/{job['id']}:ack",
                           {"token": leased["lease"]["token"], "result": {"ok": 1}})
        assert status == 200
        out, errs = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, errs
    assert "succeeded" in out and '{"ok":1}' in out.replace(" ", "")
    # Ended dead: exit 4.
    dead = c.enqueue(queue="cliwait", kind="k", max_attempts=1)
    leased = c.lease(["cliwait"])[0]
    c.call("POST", f"/v1/jobs/{dead['id']}:fail",
           {"token": leased["lease"]["token"], "error": {"type": "E", "message": "m"}})
    p = run(server, "jobs", "wait", dead["id"], "--timeout", "30")
    assert p.returncode == 4, (p.stdout, p.stderr)
    assert "dead" in p.stdout
    # Bad values are usage errors; an unknown job is the server's not_found.
    assert run(server, "jobs", "wait", dead["id"], "--timeout", "-1").returncode == 2
    assert run(server, "jobs", "wait", dead["id"], "--timeout", "soon").returncode == 2
    p = run(server, "jobs", "wait", "987654", "--timeout", "1")
    assert p.returncode == 1 and "not_found" in p.stderr
    c.close()


def version_of_build() -> dict:
    p = subprocess.run([binary(), "version", "--json"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return json.loads(p.stdout)


def test_version_flag_and_command_need_no_server():
    v = version_of_build()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v["version"]), v
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?|unknown", v["commit"]), v
    line = f"yardmaster {v['version']}" + (f" (commit {v['commit']})"
                                           if v["commit"] != "unknown" else "")
    for args in (["--version"], ["version"], ["version", "--server", "http://127.0.0.1:1"],
                 ["server", "--version"], ["worker", "--version"]):
        p = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=60)
        assert (p.returncode, p.stdout, p.stderr) == (0, line + "\n", ""), (args, p)


def test_the_server_reports_the_same_build(server):
    v = version_of_build()
    c = server.client()
    status, info = c.call("GET", "/v1/info")
    assert status == 200
    assert (info["version"], info["commit"]) == (v["version"], v["commit"])
    status, _, body = c.raw("GET", "/metrics")
    assert status == 200
    series = f'ym_build_info{{version="{v["version"]}",commit="{v["commit"]}"}}'
    assert metric(body.decode(), series) == 1.0, body.decode()
    assert "# TYPE ym_build_info gauge" in body.decode()
    c.close()
    p = run(server, "info")
    assert p.returncode == 0, p.stderr
    assert re.search(rf"^version:\s+{re.escape(v['version'])}$", p.stdout, re.M), p.stdout
    assert re.search(rf"^commit:\s+{re.escape(v['commit'])}$", p.stdout, re.M), p.stdout


@pytest.mark.parametrize("args,message", [
    (["queue"], "unknown command 'queue'; did you mean 'queues'?"),
    (["--json", "enqeue", "-q", "q", "-k", "k"], "unknown command 'enqeue'; did you mean 'enqueue'?"),
    (["jobs", "lsit"], "unknown command 'jobs lsit'; did you mean 'jobs list'?"),
    (["dead", "replya", "--all"], "unknown command 'dead replya'; did you mean 'dead replay'?"),
    (["queues", "resme", "emails"],
     "unknown command 'queues resme'; did you mean 'queues resume'?"),
    (["frobnicate"], "unknown command 'frobnicate'; the commands are: server, worker, enqueue, "
                     "jobs, queues, namespaces, limits, schedules, dead, info, alerts, audit, version"),
    ([], "a command is required: server, worker, enqueue, jobs, queues, namespaces, limits, schedules, dead, info, alerts, audit, version"),
    (["jobs"], "'jobs' needs a command: get, wait, list, cancel, replay, delete"),
])
def test_mistyped_commands_name_the_closest_one_and_exit_2(args, message):
    # --server points nowhere: a usage error is found before anything is sent.
    p = subprocess.run([binary(), *args, "--server", "http://127.0.0.1:1"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2, p
    assert p.stdout == ""
    assert p.stderr == f"error: {message}\nRun with --help for more information.\n"


def test_jobs_list_takes_every_filter(make_server):
    """`jobs list` filters (docs/cli.md): each flag reaches the server; times as RFC 3339 or
    epoch ms."""
    server = make_server("--retention-succeeded-ms", "3600000")
    c = server.client()
    try:
        ids = [c.enqueue(queue="cf", kind="a" if i % 2 else "b", namespace="t1" if i < 4 else "t2",
                         tags=["blue"] if i % 3 == 0 else [])["id"] for i in range(8)]
        done = []
        for j in c.lease(["cf"], max_jobs=2, lease_ms=600000):
            c.ack(j)
            done.append(j["id"])
        done.sort(key=int)
        assert len(done) == 2
    finally:
        c.close()

    def listed(*flags):
        p = run(server, "jobs", "list", "--all", "--json", "--limit", "2", *flags)
        assert p.returncode == 0, p.stderr
        return [j["id"] for j in json.loads(p.stdout)["items"]]

    assert listed("--queue", "cf") == ids
    assert listed("--kind", "a") == [ids[i] for i in (1, 3, 5, 7)]
    assert listed("--namespace", "t2", "--kind", "b") == [ids[i] for i in (4, 6)]
    assert listed("--tag", "blue") == [ids[i] for i in (0, 3, 6)]
    assert listed("--state", "succeeded") == done
    assert listed("--state", "ready,succeeded", "--kind", "b") == [ids[i] for i in (0, 2, 4, 6)]
    assert listed("--state", "ready", "--queue", "cf") == [i for i in ids if i not in done]
    assert listed("--finished-after", "0") == done
    assert listed("--finished-before", "2000-01-01T00:00:00Z") == []
    assert listed("--created-after", "2000-01-01T00:00:00Z", "--queue", "cf") == ids
    assert listed("--created-before", "946684800000") == []
    assert listed("--created-after", "2999-01-01T00:00:00+02:00") == []
    # Bad values are usage errors (exit 2) naming the flag; the server is not asked.
    for flags, word in ((["--state", "done"], "done"), (["--created-after", "yesterday"],
                                                        "--created-after"),
                        (["--finished-before", "-5"], "--finished-before")):
        p = run(server, "jobs", "list", *flags)
        assert p.returncode == 2, (flags, p.stdout, p.stderr)
        assert word in p.stderr, (flags, p.stderr)
    # A bad name is the server's 400, exit 1 with the parameter in the message.
    p = run(server, "jobs", "list", "--kind", "no spaces")
    assert p.returncode == 1 and '"kind"' in p.stderr, p.stderr


def test_schedules_from_the_command_line(server, tmp_path):
    """`yardmaster schedules`: create, show, change, trigger, backfill, pause, delete, and the
    errors a user meets (docs/cli.md, "schedules")."""
    payload = tmp_path / "payload.json"
    payload.write_text('{"scope": "all"}')
    p = run(server, "schedules", "create", "nightly", "--cron", "0 3 * * *", "--time-zone",
            "Europe/Paris", "--queue", "rep", "--kind", "nightly", "--payload", f"@{payload}",
            "--missed", "catch_up", "--max-missed", "7", "--overlap", "buffer_one")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("schedule nightly created (active); next fire at 20"), p.stdout
    p = run(server, "schedules", "get", "nightly", "--next", "2", "--json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["missed_runs"]["policy"] == "catch_up" and got["overlap"] == "buffer_one"
    assert got["job"]["payload"] == {"scope": "all"} and len(got["next_fire_times"]) == 2
    p = run(server, "schedules", "get", "nightly")
    assert p.returncode == 0 and "Europe/Paris" in p.stdout and "next fire times:" in p.stdout

    p = run(server, "schedules", "update", "nightly", "--cron", "30 3 * * *")
    assert p.returncode == 0, p.stderr
    got = json.loads(run(server, "schedules", "get", "nightly", "--json").stdout)
    assert got["cron"] == "30 3 * * *" and got["overlap"] == "buffer_one", "PATCH keeps the rest"
    assert all((t // 1000) % 1800 == 0 and (t // 1000) % 3600 != 0
               for t in got["next_fire_times"]), got["next_fire_times"]

    p = run(server, "schedules", "trigger", "nightly")
    assert p.returncode == 0 and "enqueued job" in p.stdout, p.stdout + p.stderr
    cursor = got["cursor"]
    p = run(server, "schedules", "backfill", "nightly", "--from", str(cursor - 2 * 86_400_000),
            "--to", str(cursor), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"emitted": 2, "duplicates": 0, "after_cursor": 0,
                                    "windows": 2}, p.stdout
    p = run(server, "schedules", "backfill", "nightly", "--from", str(cursor - 2 * 86_400_000),
            "--to", str(cursor))
    assert p.returncode == 0 and "0 emitted, 2 already emitted before" in p.stdout, p.stdout

    p = run(server, "schedules", "pause", "nightly")
    assert p.returncode == 0 and "paused" in p.stdout
    p = run(server, "schedules", "list")
    assert p.returncode == 0 and "nightly" in p.stdout and "paused" in p.stdout, p.stdout
    p = run(server, "schedules", "list", "--json")
    listed = json.loads(p.stdout)
    assert [x["id"] for x in listed["items"]] == ["nightly"] and listed["next_cursor"] is None

    # Mistakes: the server's judgement (exit 1) and usage errors (exit 2); nothing changes.
    p = run(server, "schedules", "create", "nightly", "-c", "@daily", "-q", "q", "-k", "k")
    assert p.returncode == 1 and "already_exists" in p.stderr, p.stderr
    p = run(server, "schedules", "create", "bad", "-c", "0 0 30 2 *", "-q", "q", "-k", "k")
    assert p.returncode == 1 and "cron" in p.stderr, p.stderr
    p = run(server, "schedules", "create", "bad", "-c", "@daily", "-z", "Mars/Olympus", "-q", "q",
            "-k", "k")
    assert p.returncode == 1 and "time_zone" in p.stderr, p.stderr
    p = run(server, "schedules", "update", "nightly")
    assert p.returncode == 2, p.stderr
    p = run(server, "schedules", "get", "bad")
    assert p.returncode == 1 and "not_found" in p.stderr

    p = run(server, "schedules", "delete", "nightly")
    assert p.returncode == 0 and "deleted" in p.stdout
    assert run(server, "schedules", "list").stdout == "no schedules\n"
