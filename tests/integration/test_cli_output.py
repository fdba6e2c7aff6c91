"""The CLI's human-readable output and paging (docs/cli.md), against the real server.

docs/cli.md says the table layout may change, so these tests check what each command prints
(fields, values, the documented sentences), not column positions. test_cli.py covers --json,
stdin payloads and exit codes.
"""

import json
import subprocess

from ymtest import binary, settled, wait_until


def run(server, *args, stdin=None):
    return subprocess.run([binary(), *args, "--server", server.url()], input=stdin,
                          capture_output=True, text=True, timeout=60)


def fields(text):
    """`name: value` lines of a field listing, as a dict (the first occurrence of each)."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name and " " not in name and name not in out:
            out[name] = value.strip()
    return out


def rows(text):
    """The rows of a table below its header line, split on whitespace."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [line.split() for line in lines[1:] if not line.startswith("more:")]


def test_jobs_get_prints_every_field_the_errors_the_lease_and_the_result(make_server):
    server = make_server("--retention-succeeded-ms", "3600000")
    c = server.client()
    jid = c.enqueue(queue="show", kind="mail", payload={"a": 1}, max_attempts=3, priority=7,
                    tags=["t1", "t2"], idempotency_key="idem-1", concurrency_key="ck")["id"]
    job = c.lease(["show"], lease_ms=600_000)[0]
    status, body = c.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"], "retry_in_ms": 0,
        "error": {"type": "SmtpError", "message": "550 mailbox unavailable"}})
    assert status == 200, body
    job = c.lease(["show"], lease_ms=600_000, wait_ms=10_000)[0]

    p = run(server, "jobs", "get", jid)
    assert p.returncode == 0, p.stderr
    f = fields(p.stdout)
    assert f["id"] == jid and f["queue"] == "show" and f["kind"] == "mail"
    assert f["state"] == "active" and f["priority"] == "7" and f["attempts"] == "2/3"
    assert f["namespace"] == "default"
    assert f["tags"] == "t1,t2"
    assert f["idempotency_key"] == "idem-1" and f["concurrency_key"] == "ck"
    assert "worker test" in f["lease"]
    assert f["last_error"] == "SmtpError: 550 mailbox unavailable"
    assert json.loads(f["payload"]) == {"a": 1}
    assert f["finished_at"] == "-"
    # One row per failed attempt under "errors:".
    errors = p.stdout.split("errors:\n", 1)[1]
    assert "550 mailbox unavailable" in errors and "SmtpError" in errors
    assert rows(errors)[0][0] == "1"

    status, body = c.call("POST", f"/v1/jobs/{jid}:ack",
                          {"token": job["lease"]["token"], "result": {"sent": True}})
    assert status == 200, body
    wait_until(lambda: settled(c.get(jid)[1], "succeeded"), 30, "the result to be recorded")
    p = run(server, "jobs", "get", jid)
    assert p.returncode == 0, p.stderr
    f = fields(p.stdout)
    assert f["state"] == "succeeded" and json.loads(f["result"]) == {"sent": True}
    assert f["finished_at"] != "-" and "lease" not in f
    c.close()


def test_jobs_list_table_pages_with_a_cursor_and_all_follows_it(server):
    c = server.client()
    ids = [c.enqueue(queue="pages", kind="k", priority=i)["id"] for i in range(5)]
    c.close()
    p = run(server, "jobs", "list", "--queue", "pages", "--limit", "2")
    assert p.returncode == 0, p.stderr
    table = rows(p.stdout)
    assert len(table) == 2 and all(r[1] == "pages" and r[3] == "ready" for r in table)
    more = [line for line in p.stdout.splitlines() if line.startswith("more: --cursor ")]
    assert len(more) == 1
    cursor = more[0].split()[2]
    p = run(server, "jobs", "list", "--queue", "pages", "--limit", "2", "--cursor", cursor)
    assert p.returncode == 0, p.stderr
    assert len(rows(p.stdout)) == 2
    assert not {r[0] for r in rows(p.stdout)} & {r[0] for r in table}

    # --all follows every cursor: every job once, as a table and as one merged JSON page.
    p = run(server, "jobs", "list", "--queue", "pages", "--limit", "2", "--all")
    assert p.returncode == 0, p.stderr
    assert sorted(r[0] for r in rows(p.stdout)) == sorted(ids)
    assert "more:" not in p.stdout
    p = run(server, "jobs", "list", "--queue", "pages", "--limit", "2", "--all", "--json")
    assert p.returncode == 0, p.stderr
    merged = json.loads(p.stdout)
    assert merged["next_cursor"] is None
    assert sorted(j["id"] for j in merged["items"]) == sorted(ids)
    assert all(j["queue"] == "pages" for j in merged["items"])

    for extra in ([], ["--all"]):
        p = run(server, "jobs", "list", "--queue", "nothing-here", *extra)
        assert p.returncode == 0 and p.stdout.strip() == "no jobs", p.stdout


def test_dead_list_table_and_replay_by_id(server):
    c = server.client()
    jid = c.enqueue(queue="dl", kind="k", max_attempts=1)["id"]
    job = c.lease(["dl"])[0]
    status, body = c.call("POST", f"/v1/jobs/{jid}:fail", {
        "token": job["lease"]["token"], "error": {"type": "Boom", "message": "it broke"}})
    assert status == 200 and body["state"] == "dead", body
    wait_until(lambda: settled(c.get(jid)[1], "dead"), 30, "the dead reason")
    c.close()
    p = run(server, "dead", "list", "--queue", "dl")
    assert p.returncode == 0, p.stderr
    (row,) = rows(p.stdout)
    assert row[0] == jid and row[1] == "dl" and row[3] == "1"
    assert "max_attempts_exceeded" in row, row
    assert "Boom: it broke" in p.stdout
    p = run(server, "dead", "list", "--queue", "dl", "--all")
    assert p.returncode == 0 and [r[0] for r in rows(p.stdout)] == [jid]
    p = run(server, "dead", "replay", "--id", jid)
    assert p.returncode == 0 and p.stdout.strip() == "replayed 1 dead job", p.stdout
    p = run(server, "dead", "replay", "--id", jid)  # not dead any more: skipped
    assert p.returncode == 0 and p.stdout.strip() == "replayed 0 dead jobs", p.stdout
    p = run(server, "dead", "list", "--queue", "dl")
    assert p.returncode == 0 and p.stdout.strip() == "no dead jobs", p.stdout


def test_jobs_cancel_replay_and_the_duplicate_enqueue_sentence(server):
    p = run(server, "enqueue", "-q", "cr", "-k", "k", "--idempotency-key", "once")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("enqueued job ") and p.stdout.strip().endswith("(ready)")
    jid = p.stdout.split()[2]
    p = run(server, "enqueue", "-q", "cr", "-k", "k", "--idempotency-key", "once")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == \
        f"job {jid} already exists with this idempotency key (ready); nothing enqueued"

    # An active job: the cancel is only requested; its worker is told at once.
    c = server.client()
    job = c.lease(["cr"], lease_ms=600_000)[0]
    assert job["id"] == jid
    p = run(server, "jobs", "cancel", jid)
    assert p.returncode == 0, p.stderr
    assert "cancel requested" in p.stdout and jid in p.stdout
    status, body = c.call("POST", f"/v1/jobs/{jid}:heartbeat", {"token": job["lease"]["token"]})
    assert status == 200 and body["cancel_requested"] is True, body
    # A ready job is cancelled at once; a cancelled job can be replayed.
    other = c.enqueue(queue="cr", kind="k")["id"]
    p = run(server, "jobs", "cancel", other)
    assert p.returncode == 0 and p.stdout.strip() == f"job {other}: cancelled", p.stdout
    p = run(server, "jobs", "replay", other)
    assert p.returncode == 0 and p.stdout.strip() == f"job {other}: ready", p.stdout
    assert c.get(other)[1]["state"] == "ready"
    # Replaying a job that is not dead or cancelled is the server's invalid_state.
    p = run(server, "jobs", "replay", other)
    assert p.returncode == 1 and "invalid_state" in p.stderr, p.stderr
    c.close()


def test_queues_show_pause_resume_and_the_list(server):
    c = server.client()
    c.enqueue(queue="qa", kind="k")
    c.enqueue(queue="qa", kind="k", delay_ms=600_000)
    status, body = c.call("PUT", "/v1/queues/qa", {"max_attempts": 4})  # it exists: jobs
    assert status == 200, body
    c.close()
    p = run(server, "queues", "qa")
    assert p.returncode == 0, p.stderr
    f = fields(p.stdout)
    assert f["name"] == "qa" and f["paused"] == "no"
    assert f["ready"] == "1" and f["scheduled"] == "1" and f["active"] == "0"
    assert f["max_attempts"] == "4"
    for name in ("lease", "backoff", "retention", "oldest_ready_age", "waiting_workers"):
        assert name in f, (name, p.stdout)

    p = run(server, "queues", "pause", "qa")
    assert p.returncode == 0 and p.stdout.strip() == "queue qa: paused", p.stdout
    p = run(server, "queues")
    assert p.returncode == 0, p.stderr
    (row,) = [r for r in rows(p.stdout) if r[0] == "qa"]
    assert row[1] == "yes" and row[2] == "1" and row[3] == "1"
    p = run(server, "queues", "resume", "qa", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["paused"] is False
    p = run(server, "queues", "pause", "qa", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["paused"] is True
    p = run(server, "queues", "resume", "qa")
    assert p.returncode == 0 and p.stdout.strip() == "queue qa: running", p.stdout
    p = run(server, "queues", "qa", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["paused"] is False


def test_queues_on_an_empty_server_and_info(server):
    p = run(server, "queues")
    assert p.returncode == 0 and p.stdout.strip() == "no queues", p.stdout
    p = run(server, "queues", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["items"] == []
    c = server.client()
    c.enqueue(queue="inf", kind="k")
    c.close()
    p = run(server, "info")
    assert p.returncode == 0, p.stderr
    f = fields(p.stdout)
    assert f["server"] == server.url() or p.stdout.splitlines()[0].endswith(server.url())
    assert f["live_jobs"] == "1" and f["draining"] == "no"
    assert int(f["commits"]) >= 1 and f["version"]
    p = run(server, "info", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["live_jobs"] == 1


def test_payload_from_a_file_and_its_errors(server, tmp_path):
    path = tmp_path / "payload.json"
    path.write_text('{"from": "file"}')
    p = run(server, "enqueue", "-q", "pf", "-k", "k", "--payload", f"@{path}", "--json")
    assert p.returncode == 0, p.stderr
    jid = json.loads(p.stdout)["id"]
    c = server.client()
    assert c.get(jid)[1]["payload"] == {"from": "file"}
    p = run(server, "enqueue", "-q", "pf", "-k", "k", "--payload", f"@{tmp_path}/missing.json")
    assert p.returncode == 2 and "missing.json" in p.stderr, p.stderr
    path.write_text("{not json")
    p = run(server, "enqueue", "-q", "pf", "-k", "k", "--payload", f"@{path}")
    assert p.returncode == 2 and p.stderr.startswith("error: "), p.stderr
    # Nothing was enqueued by the refused commands.
    assert c.queue("pf")["counts"]["ready"] == 1
    c.close()
