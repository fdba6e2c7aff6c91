"""A job's execution timeout (`timeout_ms`) on the exec worker and the C++ SDK's runtime: the
broker fails the attempt with type `timeout` at the deadline (heartbeats cannot extend it), and
the worker stops the handler promptly: the exec worker kills the command's whole process group,
the C++ SDK marks the handler's context stopped (StopReason::kTimeout). Timeouts are 1.5 s with a
30 s lease, so only the timeout can end the attempt; every wait is bounded."""

import signal
import time

from test_exec_worker import exec_worker, script, stop
from wtest import example_worker, pid_gone, read_lines, wait_for

LEASE = 30000


def test_exec_worker_kills_the_process_group_at_the_jobs_timeout(server, client, procs,
                                                                 tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    # A command that starts a grandchild ignoring SIGTERM, then hangs: only the group-wide
    # SIGKILL after --kill-grace can stop the grandchild.
    h = script(tmp_path, "hang.sh",
               f'sh -c \'trap "" TERM; echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; '
               f'exec sleep 300\' &\n'
               'echo "about to hang" >&2\nwait\n')
    jid = client.enqueue(queue="x", kind="k", timeout_ms=1500, lease_ms=LEASE,
                         max_attempts=1)["id"]
    # No --timeout of its own: the job's timeout_ms is what applies.
    w = exec_worker(procs, server, h, "--kill-grace", "1s")
    wait_for(lambda: pidfile.exists(), 20, "the grandchild to start")
    grandchild = int(pidfile.read_text())
    t0 = time.monotonic()
    wait_for(lambda: client.get(jid)[1]["state"] == "dead", 20, "the timeout to fail the job")
    _, job = client.get(jid)
    assert [e["type"] for e in job["errors"]] == ["timeout"], job
    assert "1500 ms" in job["errors"][0]["message"]
    # Killed with its group: SIGTERM at the deadline, SIGKILL a kill grace (1 s) later.
    wait_for(lambda: pid_gone(grandchild), 15, f"grandchild {grandchild} to be killed")
    assert time.monotonic() - t0 < 15
    wait_for(lambda: "reached its timeout of 1500 ms" in w.log(), 10, "the worker's log line")
    # The worker is free again: the next job runs.
    done = tmp_path / "done"
    ok = script(tmp_path, "ok.sh", f"touch {done}\n")
    stop(w)
    w2 = exec_worker(procs, server, ok)
    jid2 = client.enqueue(queue="x", kind="k", timeout_ms=5000)["id"]
    wait_for(lambda: done.exists(), 20, "the next job to run")
    wait_for(lambda: client.get(jid2)[0] == 404 or client.get(jid2)[1]["state"] == "succeeded",
             20, "the next job to succeed")
    stop(w2)


def start_cpp_worker(procs, server, out, *extra):
    return procs([example_worker(), "--server", server.url(), "--queue", "w", "--out", str(out),
                  *extra])


def test_cpp_sdk_stops_the_handler_at_the_jobs_timeout(server, client, procs, tmp_path):
    out = tmp_path / "out.txt"
    # `until_cancelled` waits on the context for up to 120 s: only the timeout can stop it.
    jid = client.enqueue(queue="w", kind="until_cancelled", timeout_ms=1500, lease_ms=LEASE,
                         max_attempts=2,
                         backoff={"initial_ms": 60000, "max_ms": 60000, "multiplier": 1})["id"]
    w = start_cpp_worker(procs, server, out)
    wait_for(lambda: any(line.split()[:2] == ["start", jid] for line in read_lines(str(out))),
             20, "the handler to start")
    t0 = time.monotonic()
    wait_for(lambda: f"timeout {jid}" in read_lines(str(out)), 15,
             "the handler to see its timeout")
    assert time.monotonic() - t0 < 10
    _, job = client.get(jid)
    assert job["errors"][-1]["type"] == "timeout", job
    assert job["state"] != "dead", job  # retried (by the backoff: up to a minute here)
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    assert "timeouts=1" in w.log() and "leases_lost=0" in w.log(), w.log()
    assert "reached its timeout of 1500 ms" in w.log(), w.log()
