"""Crash recovery under load: SIGKILL the server at a random moment, restart, check the books.

Producers enqueue in batches and consumers lease and batch-ack, concurrently, for a random time;
then the server is killed with SIGKILL (no flush, no shutdown). After a restart the queue is
drained and we prove, for every job:
  * no acknowledged enqueue is lost: each enqueue that got a 2xx is either acked before the
    kill or delivered again after it;
  * no acked job is delivered again;
  * every job that was not acked is delivered again (a job whose ack was in flight at the kill
    may go either way: at-least-once);
  * nothing is invented: every delivered job carries a payload some producer actually sent.
The random seed is printed so a failing run can be replayed (YM_CRASH_SEED=...).
"""

import os
import random
import threading
import time

from ymtest import Server

QUEUE = "crash"
ROUNDS = 3
MAX_JOBS_PER_ROUND = 20000  # bounded in count...
MAX_ROUND_SECONDS = 3.0      # ...and in time


class Books:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = set()          # payload keys sent in any enqueue request
        self.enqueued = {}         # job id -> payload key, enqueue acknowledged (2xx)
        self.acked = set()         # job ids whose ack got an OK answer
        self.ack_in_flight = set()  # job ids in an ack request without an answer yet
        self.violations = []       # found in worker threads, asserted by the test thread


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
                batch.append({"queue": QUEUE, "kind": "k", "payload": {"key": key}})
            with books.lock:
                if len(books.sent) >= MAX_JOBS_PER_ROUND * ROUNDS:
                    return
                books.sent.update(j["payload"]["key"] for j in batch)
            status, body = c.call("POST", "/v1/jobs:batch", {"jobs": batch})
            if status != 200:
                return
            with books.lock:
                for item, spec in zip(body["results"], batch):
                    if "id" not in item:
                        books.violations.append(f"batch item refused: {item}")
                        continue
                    books.enqueued[item["id"]] = spec["payload"]["key"]
    except OSError:
        return  # the server died under us: expected
    finally:
        c.close()


def consumer(srv_port, books, stop, rng):
    from ymtest import Client
    c = Client(srv_port, timeout=10)
    try:
        while not stop.is_set():
            status, body = c.call("POST", "/v1/leases", {"queues": [QUEUE],
                                                          "max": rng.randint(1, 50),
                                                          "wait_ms": 100})
            if status != 200:
                return
            jobs = body["jobs"]
            if not jobs:
                continue
            with books.lock:
                for j in jobs:
                    if j["id"] in books.acked:
                        books.violations.append(f"acked job {j['id']} delivered again")
                    books.ack_in_flight.add(j["id"])
            acks = [{"id": j["id"], "token": j["lease"]["token"]} for j in jobs]
            status, body = c.call("POST", "/v1/acks:batch", {"acks": acks, "fails": []})
            if status != 200:
                return
            with books.lock:
                for j, res in zip(jobs, body["acks"]):
                    books.ack_in_flight.discard(j["id"])
                    if res.get("ok"):
                        books.acked.add(j["id"])
    except OSError:
        return
    finally:
        c.close()


def test_kill_9_under_load_loses_nothing_and_redelivers_only_unacked(tmp_path):
    seed = int(os.environ.get("YM_CRASH_SEED", random.randrange(1 << 30)))
    print(f"YM_CRASH_SEED={seed}")
    rng = random.Random(seed)
    books = Books()
    srv = Server(str(tmp_path / "data")).start()
    try:
        for _ in range(ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=producer,
                                        args=(srv.port, books, stop, p, random.Random(rng.random())))
                       for p in range(2)]
            threads += [threading.Thread(target=consumer,
                                         args=(srv.port, books, stop, random.Random(rng.random())))
                        for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, MAX_ROUND_SECONDS))
            srv.kill()
            stop.set()
            for t in threads:
                t.join(timeout=30)
                assert not t.is_alive()
            srv.start()

        # Drain everything that is left and check the books.
        from ymtest import Client
        c = Client(srv.port)
        delivered = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = c.call("POST", "/v1/leases", {"queues": [QUEUE], "max": 1000})
            assert status == 200
            if not body["jobs"]:
                break
            for j in body["jobs"]:
                assert j["id"] not in delivered, f"job {j['id']} leased twice in one drain"
                delivered[j["id"]] = j["payload"]["key"]
            acks = [{"id": j["id"], "token": j["lease"]["token"]} for j in body["jobs"]]
            status, _ = c.call("POST", "/v1/acks:batch", {"acks": acks, "fails": []})
            assert status == 200
        c.close()

        assert not books.violations, books.violations[:10]
        assert books.enqueued, "the load produced no acknowledged enqueue; nothing was tested"
        acked_then_redelivered = books.acked & delivered.keys()
        assert not acked_then_redelivered, f"acked jobs delivered again: {acked_then_redelivered}"
        lost = {jid for jid in books.enqueued
                if jid not in books.acked and jid not in books.ack_in_flight
                and jid not in delivered}
        assert not lost, f"acknowledged enqueues lost: {sorted(lost)[:20]}"
        invented = {key for key in delivered.values() if key not in books.sent}
        assert not invented, f"jobs nobody sent: {invented}"
        for jid, key in delivered.items():
            if jid in books.enqueued:
                assert books.enqueued[jid] == key, "payload does not match its job"
        print(f"enqueued={len(books.enqueued)} acked={len(books.acked)} "
              f"redelivered_after_crash={len(delivered)}")
    finally:
        srv.kill()
