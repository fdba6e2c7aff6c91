"""A failing disk degrades, it does not thrash (issue 7, item 4; docs/guarantees.md).

A real fault, not the fault store: the server runs under a file-size limit (RLIMIT_FSIZE, set on
the running process with prlimit) just above the size of its store files, so SQLite's writes
fail with EFBIG (the server ignores SIGXFSZ) once the files must grow: a disk full, as far as the
store can tell. The test fills it, checks the read-only behaviour (writes 503 store_unavailable
with Retry-After, reads, heartbeats and /healthz served, /readyz 503 naming the cause, running
leases kept, one log line per episode), frees it by raising the limit again, and checks that the
server recovered by itself and that nothing acknowledged was lost, also across a restart.
"""

import json
import os
import resource
import time

from ymtest import Server, wait_until

QUEUE = "disk"
PAYLOAD = "x" * 2000
MAX_BATCHES = 1500          # bounded in count (about 60 MB at most)...
MAX_FILL_SECONDS = 120.0    # ...and in time



def largest_file(data_dir):
    sizes = []
    for root, _, files in os.walk(data_dir):
        for f in files:
            try:
                sizes.append(os.path.getsize(os.path.join(root, f)))
            except OSError:
                pass
    return max(sizes)


def metric(c, name):
    status, _, body = c.raw("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found")


def test_disk_full_makes_the_server_read_only_and_it_recovers_by_itself(tmp_path):
    data = str(tmp_path / "data")
    srv = Server(data).start()
    try:
        c = srv.client()
        acknowledged = set()
        for i in range(20):
            acknowledged.add(c.enqueue(queue=QUEUE, kind="k", payload={"n": i})["id"])
        held = c.lease([QUEUE], max_jobs=2, lease_ms=600_000)
        assert len(held) == 2
        assert metric(c, "ym_store_available") == 1

        limit = largest_file(data) + 64 * 1024
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        # Fill: batches are acknowledged until the store cannot grow any more.
        refused = None
        started = time.monotonic()
        for n in range(MAX_BATCHES):
            if time.monotonic() - started > MAX_FILL_SECONDS:
                break
            batch = [{"queue": QUEUE, "kind": "k", "payload": {"n": n, "pad": PAYLOAD}}
                     for _ in range(20)]
            status, headers, body = c.raw("POST", "/v1/jobs:batch",
                                          json.dumps({"jobs": batch}).encode(),
                                          {"Content-Type": "application/json"})
            reply = json.loads(body)
            assert status == 200, (status, reply)
            for item in reply["results"]:
                if "id" in item and "error" not in item:
                    acknowledged.add(item["id"])
                else:
                    refused = item
            if refused is not None:
                break
        assert refused is not None, "the file-size limit never made a commit fail"
        assert refused["error"]["code"] == "store_unavailable", refused
        assert srv.proc.poll() is None, "SIGXFSZ killed the server"

        # The disk stays full: no write can land anywhere past the first page any more. (With
        # the first limit a one-page probe may still fit where a batch did not, and the server
        # would rightly resume until the next batch fails.) Writes that were accepted meanwhile
        # count as acknowledged; then the server is read-only for as long as the limit holds.
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

        def write_refused():
            status, body = c.call("POST", "/v1/jobs", {"queue": QUEUE, "kind": "k"})
            if status in (200, 201):
                acknowledged.add(body["id"])
                return False
            assert status == 503 and body["error"]["code"] == "store_unavailable", body
            return True
        wait_until(write_refused, 60, "writes to be refused")

        # Read-only: writes refused with Retry-After, the rest served.
        status, headers, body = c.raw("POST", "/v1/jobs",
                                      json.dumps({"queue": QUEUE, "kind": "k"}).encode(),
                                      {"Content-Type": "application/json"})
        assert status == 503, body
        assert json.loads(body)["error"]["code"] == "store_unavailable"
        assert int(headers["retry-after"]) >= 1
        status, body = c.call("POST", "/v1/leases", {"queues": [QUEUE], "max": 5})
        assert status == 503 and body["error"]["code"] == "store_unavailable", body
        status, body = c.call("GET", "/healthz")
        assert status == 200, body
        status, body = c.call("GET", "/readyz")
        assert status == 503, body
        assert body["error"]["code"] == "store_unavailable", body
        assert "read-only" in body["error"]["message"], body
        status, body = c.get(held[0]["id"])
        assert status == 200 and body["state"] == "active", body
        status, body = c.call("POST", f"/v1/jobs/{held[0]['id']}:heartbeat",
                              {"token": held[0]["lease"]["token"]})
        assert status == 200, body
        assert metric(c, "ym_store_available") == 0
        # No thrash: probes back off, no new episode (no reload) while the fault lasts, and one
        # log line per episode, not per request or probe.
        episodes = metric(c, "ym_store_unavailable_episodes_total")
        probes = metric(c, "ym_store_probes_total")
        time.sleep(2.0)
        for _ in range(20):
            assert write_refused()
        assert metric(c, "ym_store_unavailable_episodes_total") == episodes
        assert metric(c, "ym_store_probes_total") - probes <= 4
        assert sum("is read-only" in line for line in srv.log_lines) == episodes

        # Free the disk: the server resumes by itself.
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_until(lambda: c.call("GET", "/readyz")[0] == 200, 60, "/readyz to recover")
        assert metric(c, "ym_store_available") == 1
        # The line is read from the server's stderr by another thread, and /readyz may answer
        # 200 a moment before the reader has it: wait for it, then count.
        wait_until(lambda: sum("writes are accepted" in line for line in srv.log_lines) >= episodes,
                   10, "the recovery's log line")
        assert sum("writes are accepted" in line for line in srv.log_lines) == episodes

        # The running leases were kept: the same tokens ack.
        for job in held:
            c.ack(job)
        acknowledged.add(c.enqueue(queue=QUEUE, kind="k", payload={"after": True})["id"])

        # Nothing acknowledged was lost, including across a crash and restart.
        srv.kill()
        srv.start()
        c = srv.client()
        held_ids = {j["id"] for j in held}
        for job_id in acknowledged - held_ids:
            status, body = c.get(job_id)
            assert status == 200, (job_id, body)
            assert body["state"] == "ready", body
        for job_id in held_ids:  # acked: kept as succeeded (or gone with succeeded_ms 0)
            status, body = c.get(job_id)
            assert status == 404 or body["state"] == "succeeded", body
    finally:
        srv.stop()
