"""The operator CLI against the real server: output, --json, exit codes (docs/cli.md)."""

import json
import subprocess

from ymtest import binary


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
