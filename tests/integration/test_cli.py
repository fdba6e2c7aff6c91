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
    c.close()
