"""`yardmaster worker -- COMMAND`: one command per job (docs/cli.md, "worker")."""

import os
import signal
import stat
import time

import pytest

from wtest import pid_gone, read_lines, wait_for
from ymtest import HOLD_LEASE_MS, binary, metric, settled


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def exec_worker(procs, server, handler, *extra, queue="x"):
    return procs([binary(), "worker", "--server", server.url(), "--queue", queue, *extra,
                  "--", handler])


def stop(w):
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()


def test_exit_0_acks(server, client, procs, tmp_path):
    status, _ = client.call("PUT", "/v1/queues/x?create=true", {"retention": {"succeeded_ms": 3600000}})
    assert status == 200
    h = script(tmp_path, "ok.sh", "cat > /dev/null\nexit 0\n")
    jid = client.enqueue(queue="x", kind="k", payload={"a": 1})["id"]
    w = exec_worker(procs, server, h)
    wait_for(lambda: client.get(jid)[1]["state"] == "succeeded", 20, "the ack")
    stop(w)


def test_exit_75_retries(server, client, procs, tmp_path):
    log = tmp_path / "attempts.txt"
    h = script(tmp_path, "tempfail.sh",
               f'echo "$YM_JOB_ID $YM_ATTEMPT" >> {log}\n'
               'echo "try later" >&2\n'
               '[ "$YM_ATTEMPT" = 1 ] && exit 75\nexit 0\n')
    # One job retries soon and then succeeds; the other's retry is due within 30 days (full
    # jitter: uniform in [0, 30 d]; a one-minute cap would still retry within a second 1.7 % of
    # the time), so its state can be read.
    fast = client.enqueue(queue="x", kind="k", backoff={"initial_ms": 100, "max_ms": 100})["id"]
    slow = client.enqueue(queue="x", kind="k",
                          backoff={"initial_ms": 2592000000, "max_ms": 2592000000})["id"]
    w = exec_worker(procs, server, h, "--concurrency", "2")
    wait_for(lambda: f"{fast} 2" in read_lines(str(log)), 20, "the second attempt")
    wait_for(lambda: client.get(slow)[1]["state"] == "scheduled", 20, "the retry to be scheduled")
    _, job = client.get(slow)
    assert job["attempts"] == 1 and job["errors"][0]["type"] == "tempfail", job
    assert "try later" in job["errors"][0]["message"]
    assert f"{slow} 2" not in read_lines(str(log))
    stop(w)


def test_other_exit_fails_with_stderr_tail(server, client, procs, tmp_path):
    h = script(tmp_path, "fail.sh",
               'i=1; while [ $i -le 30 ]; do echo "line$i" >&2; i=$((i+1)); done\nexit 3\n')
    jid = client.enqueue(queue="x", kind="k", max_attempts=1)["id"]
    w = exec_worker(procs, server, h)
    wait_for(lambda: client.get(jid)[1]["state"] == "dead", 20, "the job to fail")
    _, job = client.get(jid)
    message = job["last_error"]["message"]
    assert message.endswith("line30") and "line11" in message, message
    assert "line10\n" not in message  # only the tail (20 lines) is kept
    assert job["errors"][-1]["type"] == "exit_3"
    stop(w)


def test_permanent_exit_code_goes_dead_at_once(server, client, procs, tmp_path):
    h = script(tmp_path, "bad.sh", 'echo "bad input" >&2\nexit 65\n')
    jid = client.enqueue(queue="x", kind="k", max_attempts=5)["id"]
    w = exec_worker(procs, server, h, "--permanent-exit-code", "65")
    wait_for(lambda: client.get(jid)[1]["state"] == "dead", 20, "the job to go dead")
    _, job = client.get(jid)
    assert job["attempts"] == 1 and job["last_error"]["message"] == "bad input", job
    stop(w)


def test_env_and_stdin_are_delivered(server, client, procs, tmp_path):
    out = tmp_path / "seen.txt"
    h = script(tmp_path, "env.sh",
               f'printf "%s|%s|%s|%s|%s|" "$YM_JOB_ID" "$YM_QUEUE" "$YM_KIND" "$YM_ATTEMPT" '
               f'"$YM_URL" > {out}.tmp\ncat >> {out}.tmp\nmv {out}.tmp {out}\n')
    jid = client.enqueue(queue="x", kind="greet", payload={"name": "ada", "n": [1, 2]})["id"]
    w = exec_worker(procs, server, h)
    wait_for(lambda: out.exists(), 20, "the handler to run")
    fields = out.read_text().split("|")
    assert fields[:5] == [jid, "x", "greet", "1", server.url()], fields
    assert fields[5] == '{"name":"ada","n":[1,2]}'
    stop(w)


def test_trace_context_reaches_the_command_as_traceparent_and_tracestate(server, client, procs,
                                                                         tmp_path):
    """The OpenTelemetry environment carrier (docs/workers.md, "Trace context"): a job's context
    is in TRACEPARENT/TRACESTATE; a job without one sees neither, even when the worker process
    itself was started with them (the command must not join the worker's own trace)."""
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    h = script(tmp_path, "trace.sh",
               f'printf "%s|%s|%s" "${{TRACEPARENT-unset}}" "${{TRACESTATE-unset}}" "$YM_JOB_ID" '
               f'> {tmp_path}/seen.tmp\nmv {tmp_path}/seen.tmp {tmp_path}/seen.$YM_JOB_ID\n')
    traced = client.enqueue(queue="x", kind="k", traceparent=tp, tracestate="rojo=1")["id"]
    plain = client.enqueue(queue="x", kind="k")["id"]
    w = procs([binary(), "worker", "--server", server.url(), "--queue", "x", "--", h],
              env={"TRACEPARENT": "00-11111111111111111111111111111111-2222222222222222-01",
                   "TRACESTATE": "worker=own"})
    for jid in (traced, plain):
        wait_for(lambda: (tmp_path / f"seen.{jid}").exists(), 20, f"job {jid} to run")
    assert (tmp_path / f"seen.{traced}").read_text() == f"{tp}|rojo=1|{traced}"
    assert (tmp_path / f"seen.{plain}").read_text() == f"unset|unset|{plain}"
    stop(w)


def test_timeout_kills_the_whole_process_group(server, client, procs, tmp_path):
    pidfile = tmp_path / "child.pid"
    # The child ignores SIGTERM, so only the group-wide SIGKILL after --kill-grace stops it.
    h = script(tmp_path, "hang.sh",
               f'sh -c \'trap "" TERM; echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; '
               f'exec sleep 300\' &\n'
               'echo "about to hang" >&2\nwait\n')
    jid = client.enqueue(queue="x", kind="k", max_attempts=1)["id"]
    w = exec_worker(procs, server, h, "--timeout", "1s", "--kill-grace", "1s")
    wait_for(lambda: pidfile.exists(), 20, "the child to start")
    child = int(pidfile.read_text())
    t0 = time.monotonic()
    wait_for(lambda: client.get(jid)[1]["state"] == "dead", 20, "the timeout to fail the job")
    assert time.monotonic() - t0 < 15
    _, job = client.get(jid)
    assert job["errors"][-1]["type"] == "timeout", job
    assert "about to hang" in job["last_error"]["message"]
    wait_for(lambda: pid_gone(child), 10, f"child {child} to be killed with its group")
    stop(w)


def test_sigterm_waits_for_grace_then_hands_back(server, client, procs, tmp_path):
    started = tmp_path / "started"
    h = script(tmp_path, "slow.sh", f'touch {started}.$YM_JOB_ID\nexec sleep 300\n')
    jid = client.enqueue(queue="x", kind="k")["id"]
    w = exec_worker(procs, server, h, "--grace", "1s", "--kill-grace", "1s")
    wait_for(lambda: os.path.exists(f"{started}.{jid}"), 20, "the command to start")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    assert w.wait(20) == 0, w.log()
    assert time.monotonic() - t0 < 10
    _, job = client.get(jid)
    # Handed back for immediate re-delivery, not left to its lease.
    assert job["state"] == "ready" and job["errors"][-1]["type"] == "shutdown", job


def test_cancel_kills_the_command_and_ends_the_job_cancelled(server, client, procs, tmp_path):
    pidfile = tmp_path / "cmd.pid"
    h = script(tmp_path, "long.sh", f'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}\n'
                                    'exec sleep 300\n')
    jid = client.enqueue(queue="x", kind="k", lease_ms=HOLD_LEASE_MS)["id"]
    w = exec_worker(procs, server, h, "--kill-grace", "1s")
    wait_for(lambda: pidfile.exists(), 20, "the command to start")
    pid = int(pidfile.read_text())
    assert client.call("POST", f"/v1/jobs/{jid}:cancel")[0] == 200
    # Learnt from the worker's cancel watch at once, then the group gets SIGTERM.
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 20, "the job to be cancelled")
    assert client.get(jid)[1]["errors"][-1]["type"] == "cancelled"
    wait_for(lambda: pid_gone(pid), 10, f"command {pid} to be killed")
    stop(w)


def test_cancel_kills_the_command_long_before_the_next_heartbeat(server, client, procs,
                                                                 tmp_path):
    # A lease of 30 s: heartbeats come about 10 s apart, so only the cancel watch can reach the
    # command within the bound (the old worker took a heartbeat interval, about 10 s).
    pidfile = tmp_path / "cmd.pid"
    h = script(tmp_path, "long.sh", f'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}\n'
                                    'exec sleep 300\n')
    jid = client.enqueue(queue="x", kind="k", lease_ms=30000)["id"]
    w = exec_worker(procs, server, h, "--kill-grace", "1s")
    wait_for(lambda: pidfile.exists(), 20, "the command to start")
    pid = int(pidfile.read_text())
    t0 = time.monotonic()
    assert client.call("POST", f"/v1/jobs/{jid}:cancel")[0] == 200
    wait_for(lambda: pid_gone(pid), 20, f"command {pid} to be killed")
    took = time.monotonic() - t0
    assert took < 5.0, f"the cancel took {took:.2f} s to kill the command"
    wait_for(lambda: client.get(jid)[1]["state"] == "cancelled", 10, "the job to be cancelled")
    assert client.get(jid)[1]["errors"][-1]["type"] == "cancelled"
    stop(w)


def lease_requests(client):
    return int(metric(client.raw("GET", "/metrics")[2].decode(),
                      'ym_http_requests_total{route="POST /v1/leases",code="2xx"}'))


def test_an_idle_worker_without_long_polls_asks_at_most_ten_times_a_second(server, client,
                                                                            procs, tmp_path):
    w = exec_worker(procs, server, "true", "--poll-wait", "0s", queue="idle")
    wait_for(lambda: lease_requests(client) >= 1, 20, "the first lease request")
    t0 = time.monotonic()  # before the first read, so that the window counted lies within took
    before = lease_requests(client)
    # A measuring window, not a wait for something to happen: the rate limit is an upper
    # bound, so a slow machine only makes the count smaller.
    time.sleep(1.0)
    asked, took = lease_requests(client) - before, time.monotonic() - t0
    stop(w)
    # 10 a second at most (plus one in flight at each end); without the pause it would be
    # hundreds or thousands.
    assert asked <= 10 * took + 2, (asked, took)
    assert asked >= 1


def test_a_final_refusal_exits_1(server, tmp_path):
    import subprocess
    r = subprocess.run([binary(), "worker", "--server", server.url(), "--queue", "x",
                        "--worker-id", "w" * 200, "--", "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "worker_id" in r.stderr


def test_usage_errors(tmp_path):
    import subprocess
    r = subprocess.run([binary(), "worker", "--queue", "x"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "no command" in r.stderr
    r = subprocess.run([binary(), "worker", "--", "true"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--queue" in r.stderr
    r = subprocess.run([binary(), "worker", "-q", "x", "--prefetch", "lots", "--", "true"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--prefetch" in r.stderr
    r = subprocess.run([binary(), "worker", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "EX_TEMPFAIL" in r.stdout


def dead_view(client, jid):
    """The job's view once it is dead with its dead_reason recorded."""
    return wait_for(lambda: (lambda v: v if settled(v, "dead") else None)(client.get(jid)[1]),
                    30, f"job {jid} to be dead")


@pytest.mark.parametrize("how", ["missing", "not_executable"])
def test_a_command_that_cannot_be_started_is_a_failed_attempt(server, client, procs, tmp_path,
                                                              how):
    handler = tmp_path / "handler.sh"
    if how == "not_executable":
        handler.write_text("#!/bin/sh\nexit 0\n")
        handler.chmod(0o644)
    jid = client.enqueue(queue="x", kind="k", max_attempts=1)["id"]
    w = exec_worker(procs, server, str(handler))
    job = dead_view(client, jid)
    assert job["attempts"] == 1 and job["dead_reason"] == "max_attempts_exceeded", job
    assert job["errors"][0]["type"] == "spawn_failed", job
    assert f"cannot run '{handler}'" in job["errors"][0]["message"], job
    stop(w)  # the worker itself keeps running


def test_a_command_killed_by_a_signal_is_a_failed_attempt(server, client, procs, tmp_path):
    h = script(tmp_path, "suicide.sh", "kill -KILL $$\n")
    jid = client.enqueue(queue="x", kind="k", max_attempts=1)["id"]
    w = exec_worker(procs, server, h)
    job = dead_view(client, jid)
    assert job["errors"][0]["type"] == "signal", job
    assert "signal 9" in job["errors"][0]["message"], job
    stop(w)


def keep_succeeded(client):
    status, _ = client.call("PUT", "/v1/queues/x?create=true",
                            {"retention": {"succeeded_ms": 3600000}})
    assert status == 200


def test_the_result_file_becomes_the_jobs_result_and_is_removed(server, client, procs, tmp_path):
    keep_succeeded(client)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    seen = tmp_path / "seen.txt"
    # The result is kept exactly as written (number spelling, member order, whitespace inside
    # values); a second job writes nothing and has no result.
    h = script(tmp_path, "result.sh",
               'cat > /dev/null\n'
               f'echo "$YM_RESULT_FILE" >> {seen}\n'
               'if [ "$YM_KIND" = "with" ]; then\n'
               '  printf \'{"sent":true,"n":1E2,"s":"a  b"}\\n\' > "$YM_RESULT_FILE"\n'
               'fi\n')
    with_result = client.enqueue(queue="x", kind="with", payload={})["id"]
    without = client.enqueue(queue="x", kind="without", payload={})["id"]
    w = procs([binary(), "worker", "--server", server.url(), "--queue", "x", "--", h],
              env={"TMPDIR": str(tmp)})
    for jid in (with_result, without):
        wait_for(lambda: client.get(jid)[1]["state"] == "succeeded", 20, "the ack")
    stop(w)
    status, _, raw = client.raw("GET", f"/v1/jobs/{with_result}")
    assert status == 200
    assert b'"result":{"sent":true,"n":1E2,"s":"a  b"}' in raw, raw
    assert client.get(without)[1]["result"] is None
    # Each run had its own private file in $TMPDIR, and none is left behind.
    paths = seen.read_text().split()
    assert len(paths) == 2 and paths[0] != paths[1], paths
    assert all(os.path.dirname(p) == str(tmp) for p in paths), paths
    assert os.listdir(tmp) == []


def test_a_result_file_that_is_not_json_ends_the_job_dead(server, client, procs, tmp_path):
    h = script(tmp_path, "bad.sh", 'cat > /dev/null\nprintf "not json" > "$YM_RESULT_FILE"\n')
    jid = client.enqueue(queue="x", kind="k", payload={})["id"]
    w = exec_worker(procs, server, h)
    view = dead_view(client, jid)
    stop(w)
    assert view["last_error"]["type"] == "invalid_result", view
    assert view["attempts"] == 1
