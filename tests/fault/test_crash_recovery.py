"""Crash recovery under load: SIGKILL the server at a random moment, restart, check the books.

Producers enqueue in batches (some jobs delayed) and consumers lease and then ack, fail for a
retry or fail for good, concurrently, for a random time; then the server is killed with SIGKILL
(no flush, no shutdown). After a restart the queue is drained and we prove, for every job:
  * no acknowledged enqueue is lost: each enqueue that got a 2xx is acked, dead or delivered
    again after the kill;
  * no acked or dead job is delivered again;
  * every job that was not acked or dead is delivered again (a job whose ack or fail was in
    flight at the kill may go either way: at-least-once);
  * nothing is invented: every delivered job carries a payload some producer actually sent.
A worker thread that meets anything but the kill (an unexpected status, a refused item, an
exception before the kill) records a violation, so the load cannot stop quietly.
The random seed is printed so a failing run can be replayed (YM_CRASH_SEED=...).
"""

import http.client
import os
import random
import threading
import time

from ymtest import Server

QUEUE = "crash"
ROUNDS = 3
MAX_JOBS_PER_ROUND = 20000  # bounded in count...
MAX_ROUND_SECONDS = 3.0      # ...and in time
MAX_DELAY_MS = 300           # delayed enqueues and retries stay short so the drain is quick
# Long enough that a consumer stalled between its lease and its ack (a loaded machine) still
# holds the lease, short enough that a lease that outlives a crash expires soon after the restart.
LEASE_MS = 5000


class Books:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = set()          # payload keys sent in any enqueue request
        self.round_sent = 0        # jobs sent in the current round
        self.enqueued = {}         # job id -> payload key, enqueue acknowledged (2xx)
        self.acked = set()         # job ids whose ack got an OK answer
        self.dead = set()          # job ids whose non-retryable fail got an OK answer
        self.retried = 0           # retryable fails answered OK
        self.in_flight = set()     # job ids in an ack/fail request without an answer yet
        self.violations = []       # found in worker threads, asserted by the test thread
        self.killing = threading.Event()  # set just before SIGKILL: errors after it are expected

    def unexpected(self, what):
        with self.lock:
            self.violations.append(what)


def expected_failure(books, exc):
    """A request that failed because the server is being killed is expected; else it is not."""
    if books.killing.is_set() and isinstance(exc, (OSError, http.client.HTTPException)):
        return
    books.unexpected(f"{type(exc).__name__}: {exc}")


def producer(srv_port, books, stop, pid, rng):
    from ymtest import Client
    c = Client(srv_port, timeout=10)
    seq = 0
    try:
        while not stop.is_set():
            batch = []
            for _ in range(rng.randint(1, 50)):
                key = f"{pid}:{seq}"
                seq += 1
                spec = {"queue": QUEUE, "kind": "k", "payload": {"key": key},
                        "max_attempts": 1000}
                if rng.random() < 0.1:
                    spec["delay_ms"] = rng.randint(1, MAX_DELAY_MS)
                batch.append(spec)
            with books.lock:
                if books.round_sent >= MAX_JOBS_PER_ROUND:
                    return
                books.round_sent += len(batch)
                books.sent.update(j["payload"]["key"] for j in batch)
            status, body = c.call("POST", "/v1/jobs:batch", {"jobs": batch})
            if status != 200:
                books.unexpected(f"enqueue batch answered {status}: {body}")
                return
            with books.lock:
                for item, spec in zip(body["results"], batch):
                    if "id" not in item:
                        books.violations.append(f"batch item refused: {item}")
                        continue
                    books.enqueued[item["id"]] = spec["payload"]["key"]
    except Exception as exc:  # noqa: BLE001 - every other failure is recorded
        expected_failure(books, exc)
    finally:
        c.close()


def consumer(srv_port, books, stop, rng):
    from ymtest import Client
    c = Client(srv_port, timeout=10)
    try:
        while not stop.is_set():
            status, body = c.call("POST", "/v1/leases", {"queues": [QUEUE],
                                                          "max": rng.randint(1, 50),
                                                          "wait_ms": 100,
                                                          "lease_ms": LEASE_MS})
            if status != 200:
                books.unexpected(f"lease answered {status}: {body}")
                return
            jobs = body["jobs"]
            if not jobs:
                continue
            acks, fails = [], []
            with books.lock:
                for j in jobs:
                    if j["id"] in books.acked or j["id"] in books.dead:
                        books.violations.append(f"finished job {j['id']} delivered again")
                    books.in_flight.add(j["id"])
            for j in jobs:
                r = rng.random()
                if r < 0.8:
                    acks.append({"id": j["id"], "token": j["lease"]["token"]})
                else:
                    retry = r < 0.95
                    fails.append({"id": j["id"], "token": j["lease"]["token"],
                                  "error": {"type": "E", "message": "chaos", "retryable": retry},
                                  "retry_in_ms": rng.randint(0, MAX_DELAY_MS)})
            status, body = c.call("POST", "/v1/acks:batch", {"acks": acks, "fails": fails})
            if status != 200:
                books.unexpected(f"acks:batch answered {status}: {body}")
                return
            with books.lock:
                for a, res in zip(acks, body["acks"]):
                    books.in_flight.discard(a["id"])
                    if res.get("ok"):
                        books.acked.add(a["id"])
                    else:
                        books.violations.append(f"ack of a fresh lease refused: {res}")
                for f, res in zip(fails, body["fails"]):
                    books.in_flight.discard(f["id"])
                    if not res.get("ok"):
                        books.violations.append(f"fail of a fresh lease refused: {res}")
                    elif not f["error"]["retryable"]:
                        books.dead.add(f["id"])  # nothing cancels jobs here: it is dead
                    else:
                        books.retried += 1
    except Exception as exc:  # noqa: BLE001 - every other failure is recorded
        expected_failure(books, exc)
    finally:
        c.close()


def test_kill_9_under_load_loses_nothing_and_redelivers_only_unacked(tmp_path):
    seed = int(os.environ.get("YM_CRASH_SEED", random.randrange(1 << 30)))
    print(f"YM_CRASH_SEED={seed}")
    rng = random.Random(seed)
    books = Books()
    srv = Server(str(tmp_path / "data")).start()
    try:
        for rnd in range(ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=producer,
                                        args=(srv.port, books, stop, f"{rnd}.{p}",
                                              random.Random(rng.random())))
                       for p in range(2)]
            threads += [threading.Thread(target=consumer,
                                         args=(srv.port, books, stop, random.Random(rng.random())))
                        for _ in range(2)]
            for t in threads:
                t.start()
            # Kill while the load runs: once a random share of the round's jobs was sent (or
            # when the round's time is up, on a slow machine).
            target = rng.randint(MAX_JOBS_PER_ROUND // 10, MAX_JOBS_PER_ROUND - 1)
            round_end = time.monotonic() + MAX_ROUND_SECONDS
            while time.monotonic() < round_end:
                with books.lock:
                    if books.round_sent >= target:
                        break
                time.sleep(0.005)
            books.killing.set()
            srv.kill()
            stop.set()
            for t in threads:
                t.join(timeout=30)
                assert not t.is_alive()
            books.killing.clear()
            books.round_sent = 0
            srv.start()

        # Drain everything that is left (delayed jobs and retries included) and check the books.
        from ymtest import Client
        c = Client(srv.port)
        delivered = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = c.call("POST", "/v1/leases", {"queues": [QUEUE], "max": 1000,
                                                          "wait_ms": 200})
            assert status == 200
            if not body["jobs"]:
                counts = c.queue(QUEUE)["counts"]
                if counts["scheduled"] + counts["ready"] + counts["active"] == 0:
                    break
                continue
            for j in body["jobs"]:
                assert j["id"] not in delivered, f"job {j['id']} leased twice in one drain"
                delivered[j["id"]] = j["payload"]["key"]
            acks = [{"id": j["id"], "token": j["lease"]["token"]} for j in body["jobs"]]
            status, _ = c.call("POST", "/v1/acks:batch", {"acks": acks, "fails": []})
            assert status == 200
        else:
            raise AssertionError(f"the queue did not drain: {c.queue(QUEUE)['counts']}")
        c.close()

        assert not books.violations, books.violations[:10]
        assert books.enqueued, "the load produced no acknowledged enqueue; nothing was tested"
        assert books.acked and books.retried and books.dead, \
            "the load must ack, retry and kill jobs for the books to mean anything"
        finished_then_redelivered = (books.acked | books.dead) & delivered.keys()
        assert not finished_then_redelivered, \
            f"acked or dead jobs delivered again: {finished_then_redelivered}"
        lost = {jid for jid in books.enqueued
                if jid not in books.acked and jid not in books.dead
                and jid not in books.in_flight and jid not in delivered}
        assert not lost, f"acknowledged enqueues lost: {sorted(lost)[:20]}"
        invented = {key for key in delivered.values() if key not in books.sent}
        assert not invented, f"jobs nobody sent: {invented}"
        for jid, key in delivered.items():
            if jid in books.enqueued:
                assert books.enqueued[jid] == key, "payload does not match its job"
        print(f"enqueued={len(books.enqueued)} acked={len(books.acked)} dead={len(books.dead)} "
              f"retried={books.retried} delivered_in_final_drain={len(delivered)}")
    finally:
        srv.stop()
