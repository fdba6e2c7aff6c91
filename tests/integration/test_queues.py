"""Queues from outside (docs/api.md, "GET /v1/queues"): the listing is paginated by name with
validated cursors and costs per page, not per queue in existence; a queue exists while it is
listed, and configuring, pausing or resuming one that does not exist is 404 queue_not_found
unless ?create=true (issue 7 items 7-8, issue 9 item 8).

Before: one GET /v1/queues rendered every queue (7-9 s of server CPU and 34 MB with 100,000
queues), and `POST /v1/queues/typo:pause` created a paused phantom queue that stayed forever.
"""

import os
import threading
import time

from ymtest import wait_until


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc (clock ticks of 10 ms)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def make_queues(client, names, per_request=1000):
    """One ready job on each queue, 1,000 queues per batch request."""
    for i in range(0, len(names), per_request):
        jobs = [{"queue": n, "kind": "k"} for n in names[i:i + per_request]]
        status, body = client.call("POST", "/v1/jobs:batch", {"jobs": jobs})
        assert status == 200, body
        assert all("id" in r for r in body["results"]), body


def walk(client, limit):
    """Every page of GET /v1/queues; returns (names, pages)."""
    names, pages, cursor = [], 0, None
    while True:
        path = f"/v1/queues?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, page = client.call("GET", path)
        assert status == 200, page
        pages += 1
        assert len(page["items"]) <= limit
        names += [q["name"] for q in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return names, pages
        assert pages < 100_000


def test_queue_listing_pages_by_name_and_validates_cursors(client):
    names = [f"q{i:04d}" for i in range(250)]
    make_queues(client, list(reversed(names)), per_request=100)
    # Without parameters: the first page of 100, in name order, with a cursor.
    status, first = client.call("GET", "/v1/queues")
    assert status == 200
    assert [q["name"] for q in first["items"]] == names[:100]
    assert isinstance(first["next_cursor"], str)
    assert first["items"][0]["counts"]["ready"] == 1
    listed, pages = walk(client, 100)
    assert listed == names and pages == 3
    listed, pages = walk(client, 1000)
    assert listed == names and pages == 1
    # Cursors are opaque and checked; limits are bounded.
    for bad in ("cursor=abc", "cursor=18446744073709551615", "limit=0", "limit=1001",
                "state=ready"):
        status, body = client.call("GET", "/v1/queues?" + bad)
        assert status == 400 and body["error"]["code"] == "invalid_request", (bad, body)
    # A job-listing cursor is refused by the queue listing.
    status, jobs = client.call("GET", "/v1/jobs?limit=1")
    assert status == 200 and jobs["next_cursor"]
    status, body = client.call("GET", "/v1/queues?cursor=" + jobs["next_cursor"])
    assert status == 400, body


def test_queue_listing_pages_are_capped_by_bytes(make_server):
    srv = make_server("--max-reply-bytes", "4096")
    c = srv.client()
    names = [f"bytes{i:03d}" for i in range(60)]
    make_queues(c, names)
    status, raw = c.call("GET", "/v1/queues?limit=1000")
    assert status == 200
    assert 0 < len(raw["items"]) < 60 and raw["next_cursor"]
    listed, pages = walk(c, 1000)
    assert listed == names and pages > 1


def test_unknown_queue_is_404_unless_created(client):
    for method, path, body in (("POST", "/v1/queues/typo:pause", None),
                               ("POST", "/v1/queues/typo:resume", None),
                               ("PUT", "/v1/queues/typo", {"max_attempts": 3}),
                               ("GET", "/v1/queues/typo", None)):
        status, reply = client.call(method, path, body)
        assert status == 404 and reply["error"]["code"] == "queue_not_found", (path, reply)
    status, listing = client.call("GET", "/v1/queues")
    assert "typo" not in [q["name"] for q in listing["items"]]
    status, reply = client.call("POST", "/v1/queues/typo:pause?create=maybe")
    assert status == 400, reply
    # Asked to create: it exists from then on, configured (and kept) with its pause.
    status, q = client.call("POST", "/v1/queues/typo:pause?create=true")
    assert status == 200 and q["paused"] is True
    assert client.queue("typo")["paused"] is True
    status, q = client.call("PUT", "/v1/queues/made?create=true", {"max_attempts": 3})
    assert status == 200 and q["max_attempts"] == 3
    status, q = client.call("POST", "/v1/queues/made:resume")
    assert status == 200 and q["max_attempts"] == 3
    # A queue with live jobs exists without being configured.
    client.enqueue(queue="busy", kind="k")
    status, q = client.call("POST", "/v1/queues/busy:pause")
    assert status == 200 and q["paused"] is True and q["counts"]["ready"] == 1


def test_a_queue_with_a_waiting_worker_exists(server, client):
    result = {}
    poller = server.client()
    t = threading.Thread(target=lambda: result.setdefault(
        "r", poller.call("POST", "/v1/leases", {"queues": ["polled"], "max": 1,
                                                 "wait_ms": 20000, "worker_id": "w"})))
    t.start()
    try:
        wait_until(lambda: client.call("GET", "/v1/queues/polled")[0] == 200
                   and client.queue("polled")["waiting_workers"] == 1, 30, "the long poll")
        status, q = client.call("POST", "/v1/queues/polled:pause")
        assert status == 200 and q["paused"] is True
    finally:
        status, _ = client.call("POST", "/v1/queues/polled:resume")
        assert status == 200
        client.enqueue(queue="polled", kind="k")  # ends the long poll
        t.join(30)
        poller.close()
    assert result["r"][0] == 200


def test_queue_known_only_by_its_finished_jobs_exists_after_a_restart(server):
    c = server.client()
    job = c.enqueue(queue="fin", kind="k", max_attempts=1)
    leased = c.lease(["fin"])
    assert leased and leased[0]["id"] == job["id"]
    status, body = c.call("POST", f"/v1/jobs/{job['id']}:fail",
                          {"token": leased[0]["lease"]["token"],
                           "error": {"message": "no", "retryable": False}})
    assert status == 200 and body["state"] == "dead"
    c.close()
    server.kill()
    server.start()
    c = server.client()
    # Core holds nothing of "fin" now (no live job, no configuration); the store keeps its dead
    # job, so it is listed, shown and can be configured, with the store's finished count.
    status, listing = c.call("GET", "/v1/queues")
    fin = [q for q in listing["items"] if q["name"] == "fin"]
    assert fin and fin[0]["counts"]["dead"] == 1, listing
    assert c.queue("fin")["counts"]["dead"] == 1
    status, q = c.call("POST", "/v1/queues/fin:pause")
    assert status == 200 and q["paused"] is True and q["counts"]["dead"] == 1
    # The count follows commits without a rescan: a replay takes the job out of "dead".
    status, _ = c.call("POST", f"/v1/jobs/{job['id']}:replay")
    assert status == 200
    counts = c.queue("fin")["counts"]
    assert counts["dead"] == 0 and counts["ready"] == 1, counts
    c.close()


def test_many_queues_one_page_costs_per_page(server, client):
    """A bounded black-box check with many queues (YM_MANY_QUEUES, default 20,000; the figures
    in docs/benchmarks.md were taken with 100,000): each page call's server CPU and reply size
    stay those of one page, and a walk lists every queue exactly once."""
    n = int(os.environ.get("YM_MANY_QUEUES", "20000"))
    pid = server.proc.pid
    rss0 = rss_bytes(pid)
    names = [f"many-{i:07d}" for i in range(n)]
    t0 = time.monotonic()
    make_queues(client, names)
    made_s = time.monotonic() - t0
    rss1 = rss_bytes(pid)
    # 20 first pages and 20 pages from the middle of the name space.
    cursor = None
    for _ in range(max(n // 2000, 1)):
        status, mid = client.call("GET", "/v1/queues?limit=1000"
                                  + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        cursor = mid["next_cursor"]
    calls, sizes = 0, []
    cpu0 = cpu_seconds(pid)
    for _ in range(20):
        status, _, raw = client.raw("GET", "/v1/queues")
        assert status == 200
        sizes.append(len(raw))
        calls += 1
    for i in range(20):
        _, page = client.call("GET", "/v1/queues?limit=100&cursor=" + mid["next_cursor"])
        calls += 1
        assert len(page["items"]) == 100
        mid = page
    cpu = cpu_seconds(pid) - cpu0
    per_call_ms = cpu * 1000 / calls
    print(f"\nqueues={n} made_in_s={made_s:.1f} rss_growth_bytes_per_queue="
          f"{(rss1 - rss0) / n:.0f} server_cpu_per_page_call_ms={per_call_ms:.2f} "
          f"page_bytes={max(sizes)}")
    assert max(sizes) < 100_000
    # Before, one call with 20,000 queues cost hundreds of ms of CPU; a page costs a few ms at
    # most (the bound is generous for sanitizer builds and clock-tick rounding).
    assert per_call_ms < 50, per_call_ms
    t0 = time.monotonic()
    listed, pages = walk(client, 1000)
    walk_s = time.monotonic() - t0
    print(f"walk of {n} queues: {pages} pages in {walk_s:.2f} s")
    assert [x for x in listed if x.startswith("many-")] == names


def test_reset_removes_a_configuration_so_a_queue_created_by_mistake_goes_away(server):
    c = server.client()
    status, body = c.call("DELETE", "/v1/queues/never")
    assert status == 404 and body["error"]["code"] == "queue_not_found", body
    status, q = c.call("POST", "/v1/queues/oops:pause?create=true")
    assert status == 200 and q["paused"] is True
    status, q = c.call("DELETE", "/v1/queues/oops")
    assert status == 200 and q["paused"] is False, q
    # Nothing keeps it any more: after a restart (core reloads only configurations and live
    # jobs) it does not exist, where before the reset it would have stayed forever.
    c.close()
    server.kill()
    server.start()
    c = server.client()
    status, body = c.call("GET", "/v1/queues/oops")
    assert status == 404 and body["error"]["code"] == "queue_not_found", body
    # A queue with jobs keeps them and exists; only its configuration goes.
    status, q = c.call("PUT", "/v1/queues/busy?create=true", {"max_attempts": 2})
    assert status == 200
    c.enqueue(queue="busy", kind="k")
    status, q = c.call("DELETE", "/v1/queues/busy")
    assert status == 200 and q["max_attempts"] == 10 and q["counts"]["ready"] == 1, q
    c.close()
