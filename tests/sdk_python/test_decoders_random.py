"""Bounded randomized test of the Python SDK's reply decoders (no fuzzer: Atheris is not in
Debian). Random and mutated server answers, status codes and headers go through the SDK's own
decoding path (Connection.request with the transport replaced, error_from_response,
error_from_item, Job) and must always give a value or a typed YardmasterError, never another
exception. YM_DECODER_SEED=<n> replays a run; YM_DECODER_ITERATIONS sets its length."""

from __future__ import annotations

import json
import os
import random
import string
from typing import Any, Dict, Tuple

import pytest

from yardmaster import errors
from yardmaster._http import Connection
from yardmaster.job import Job

SEED = int(os.environ.get("YM_DECODER_SEED") or random.SystemRandom().randrange(1 << 63))
ITERATIONS = int(os.environ.get("YM_DECODER_ITERATIONS") or 3000)

STATUSES = [200, 201, 204, 302, 400, 401, 403, 404, 405, 409, 413, 415, 418, 422, 429, 500,
            502, 503, 504, 599]
CODES = ["not_found", "stale_lease", "invalid_state", "validation_failed", "resource_exhausted",
         "unavailable", "store_unavailable", "brand_new_code", "", "internal"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 10**40, rng.randrange(-10**6, 10**6)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e300, 1e-300])
    if kind == 4:
        alphabet = string.printable + "\u00e9\u2713\U0001F600\x00"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["error", "code", "message", "id", "items", "next_cursor", "jobs", "lease", "token"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_body(rng: random.Random) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:  # a well-formed error reply
        return json.dumps({"error": {"code": rng.choice(CODES),
                                     "message": random_json(rng)}}).encode()
    if choice == 1:  # any JSON value
        return json.dumps(random_json(rng)).encode()
    if choice == 2:  # mutated JSON: truncated or with flipped bytes
        data = bytearray(json.dumps(random_json(rng)).encode())
        for _ in range(rng.randrange(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data[:rng.randrange(len(data) + 1)])
    if choice == 3:  # a proxy's page
        return b"<html><body>502 Bad Gateway</body></html>"
    return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))


def random_headers(rng: random.Random) -> Dict[str, str]:
    h: Dict[str, str] = {}
    if rng.random() < 0.5:
        h["retry-after"] = rng.choice(["3", "0.5", "-1", "soon", "", "1e3", "nan", "inf"])
    if rng.random() < 0.3:
        h["connection"] = rng.choice(["close", "keep-alive", "CLOSE"])
    return h


class ScriptedConnection(Connection):
    """A Connection whose transport answers what the test says."""

    answer: Tuple[int, Dict[str, str], bytes] = (200, {}, b"")

    def _roundtrip(self, method: str, path: str, body: Any, timeout: Any) -> Tuple[int, Dict[str, str], bytes]:
        return self.answer


def test_random_replies_decode_to_a_value_or_a_typed_error() -> None:
    print(f"decoder seed: YM_DECODER_SEED={SEED} ({ITERATIONS} iterations)")
    rng = random.Random(SEED)
    conn = ScriptedConnection("http://127.0.0.1:1")
    raised = 0
    for i in range(ITERATIONS):
        status = rng.choice(STATUSES)
        body = random_body(rng)
        headers = random_headers(rng)
        conn.answer = (status, headers, body)
        where = f"iteration {i} (YM_DECODER_SEED={SEED}): status {status}, body {body!r}"
        try:
            value = conn.request("GET", "/v1/jobs/1")
        except errors.YardmasterError as e:
            raised += 1
            assert status >= 300, where
            assert e.status == status, where
            assert isinstance(e.code, str) and e.code, where
            assert isinstance(e.message, str), where
            assert e.retry_after is None or isinstance(e.retry_after, float), where
            assert isinstance(e, errors.error_class(e.code, status)), where
        except Exception as e:  # noqa: BLE001 - anything else is the finding
            pytest.fail(f"{where}: {type(e).__name__}: {e}")
        else:
            assert status < 300, where
            if body:
                try:
                    assert value == json.loads(body), where
                except ValueError:
                    assert value == body.decode("utf-8", errors="replace"), where
            else:
                assert value is None, where
    assert raised > 0


def test_random_batch_items_decode_to_typed_errors() -> None:
    rng = random.Random(SEED ^ 0x5EED)
    for i in range(ITERATIONS):
        item = random_json(rng)
        if rng.random() < 0.5:
            item = {"error": {"code": rng.choice(CODES), "message": random_json(rng)}}
        try:
            e = errors.error_from_item(item)
        except Exception as ex:  # noqa: BLE001
            pytest.fail(f"iteration {i} (YM_DECODER_SEED={SEED}): {item!r}: {type(ex).__name__}: {ex}")
        assert isinstance(e, errors.YardmasterError)
        assert isinstance(e.code, str) and e.code
        assert e.status is None


def test_documented_lease_items_decode_with_their_values() -> None:
    rng = random.Random(SEED ^ 0x1EA5E)
    for _ in range(ITERATIONS):
        item = {
            "id": str(rng.randrange(1, 2**63)),
            "namespace": "default",
            "queue": "q" + str(rng.randrange(10)),
            "kind": "k",
            "payload": random_json(rng),
            "attempt": rng.randrange(1, 100),
            "max_attempts": rng.randrange(1, 100),
            "priority": rng.randrange(-1000, 1000),
            "created_at": rng.randrange(0, 2**62),
            "tags": [str(t) for t in range(rng.randrange(3))],
            "lease": {"token": format(rng.randrange(2**64), "016x"),
                      "expires_at": rng.randrange(0, 2**62)},
        }
        # Through JSON, as the reply arrives.
        decoded = json.loads(json.dumps(item))
        job = Job(decoded)
        assert job.id == item["id"] and job.queue == item["queue"]
        assert job.payload == item["payload"]
        assert job.attempt == item["attempt"] and job.max_attempts == item["max_attempts"]
        assert job.priority == item["priority"] and job.tags == item["tags"]
        assert job.token == item["lease"]["token"]
        assert job.lease_expires_at == item["lease"]["expires_at"]
