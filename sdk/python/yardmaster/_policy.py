"""The worker's pure decision rules (internal): how many jobs to lease, how many to prefetch,
how long to back off, when to heartbeat.

Every rule here is one of docs/workers.md, with its constants; the C++ runtime follows the same
document. Nothing in this module does I/O or reads a clock: callers pass durations (seconds) in,
and randomness comes from an injectable :class:`random.Random`, so the rules are unit-tested
without a server or a sleep (tests/sdk_python/test_policy.py).
"""

from __future__ import annotations

import math
import random
from typing import Optional

__all__ = [
    "AutoPrefetch", "Backoff", "lease_want", "heartbeat_interval", "heartbeat_retry_delay",
    "MAX_CAPACITY", "MIN_EMPTY_LEASE_INTERVAL",
]

# POST /v1/leases returns at most 1000 jobs, and a worker never holds more than that.
MAX_CAPACITY = 1000

HANDLER_TIME_WEIGHT = 0.1       # EWMA weight of each finished handler's run time (d)
ROUND_TRIP_WEIGHT = 0.2         # EWMA weight of each lease round trip (r)
INITIAL_ROUND_TRIP = 0.001      # r until the first round trip is measured: 1 ms
WARMUP_HANDLERS = 8             # no automatic prefetch before this many handlers finished
MAX_PREFETCH_PER_SLOT = 32      # automatic prefetch is at most 32 x concurrency
MIN_HANDLER_TIME = 1e-6         # floor of d, so a no-op handler does not divide by ~0

BACKOFF_INITIAL = 0.1           # seconds; the first reconnect waits in [0.05, 0.1]
BACKOFF_MAX = 5.0               # the delay doubles up to this cap

HEARTBEAT_FLOOR = 0.05          # never heartbeat (or retry a heartbeat) more often than 50 ms
MIN_EMPTY_LEASE_INTERVAL = 0.1  # an idle worker sends at most 10 lease requests a second


class AutoPrefetch:
    """Automatic prefetch: keeps just enough jobs queued to cover the lease round trip.

    It tracks ``d``, the handlers' run time (moving average, weight 0.1, over all kinds), and
    ``r``, the lease round trip (moving average, weight 0.2, 1 ms until measured), and asks for
    ``concurrency * 2r / d`` queued jobs, at most ``min(32 * concurrency, 1000 -
    concurrency)``, and none until 8 handlers have finished. A prefetched job thus waits about
    two round trips for its slot: long jobs are not prefetched (fairness between workers is
    kept), and fast handlers are not bound by round trips.

    The ratio is rounded to the nearest integer (halves up), as docs/workers.md says and the C++
    runtime does (src/sdk/runtime_policy.cc): rounding up would keep one job queued behind even
    the longest handlers.

    ``d`` starts at the first handler's run time; ``r`` starts at 1 ms and every measured round
    trip moves it by the weight, the first one included.

    Not thread-safe: the worker calls it with its lock held.
    """

    def __init__(self) -> None:
        self.handlers_finished = 0
        self.handler_time: Optional[float] = None   # d, seconds; None until the first handler
        self.round_trip = INITIAL_ROUND_TRIP        # r, seconds

    def record_handler(self, seconds: float) -> None:
        """Count one finished handler that ran for ``seconds`` (any outcome, any kind)."""
        seconds = max(0.0, seconds)
        if self.handler_time is None:
            self.handler_time = seconds
        else:
            self.handler_time += HANDLER_TIME_WEIGHT * (seconds - self.handler_time)
        self.handlers_finished += 1

    def record_round_trip(self, seconds: float) -> None:
        """Record the round trip of one lease request. Call it only for requests answered with
        exactly as many jobs as asked: those did not long-poll, so they measure the network
        and the server, not how long the queue stayed empty."""
        self.round_trip += ROUND_TRIP_WEIGHT * (max(0.0, seconds) - self.round_trip)

    def target(self, concurrency: int) -> int:
        """How many jobs to keep queued (leased, not started) for ``concurrency`` slots."""
        if self.handlers_finished < WARMUP_HANDLERS or self.handler_time is None:
            return 0
        cap = min(MAX_PREFETCH_PER_SLOT * concurrency, MAX_CAPACITY - concurrency)
        if cap <= 0:
            return 0
        d = max(self.handler_time, MIN_HANDLER_TIME)
        wanted = math.floor(concurrency * 2 * self.round_trip / d + 0.5)
        if wanted >= cap:  # compared as floats: a tiny d makes the ratio huge
            return cap
        return max(0, int(wanted))


def lease_want(concurrency: int, capacity: int, running: int, queued: int, batch: int) -> int:
    """How many jobs the next lease request should ask for; 0 means "do not send one yet".

    ``free = capacity - running - queued``, where ``capacity = concurrency + prefetch``. A
    request goes out as soon as a slot is idle with nothing queued for it, and otherwise only
    once at least half of the capacity is free, so that fast handlers turn into few large
    requests instead of many one-job ones. It asks for ``min(free, batch)``.
    """
    free = capacity - running - queued
    if free < 1 or batch < 1:
        return 0
    idle_slot = running < concurrency and queued == 0
    if idle_slot or free >= max(1, math.ceil(capacity / 2)):
        return min(free, batch)
    return 0


class Backoff:
    """Exponential backoff with "equal jitter" for requests that found the server unreachable.

    After ``n`` consecutive failures the delay is a random number in ``[d/2, d]`` with
    ``d = min(5 s, 0.1 s * 2**n)``: half of it keeps a worker from hammering a restarting
    server, the random half keeps a fleet from reconnecting in lock-step. :meth:`reset` after a
    success. A 429's ``Retry-After`` is waited at least.

    Args:
        rng: the source of randomness (inject a seeded one in tests).
    """

    def __init__(self, rng: Optional[random.Random] = None, initial: float = BACKOFF_INITIAL,
                 maximum: float = BACKOFF_MAX) -> None:
        self.rng = rng or random.Random()
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self, retry_after: Optional[float] = None) -> float:
        """The delay before the next attempt, in seconds; counts one more failure."""
        # The exponent is bounded so 2**n stays a small float long after the cap is reached.
        d = min(self.maximum, self.initial * (2 ** min(self.failures, 32)))
        self.failures += 1
        delay = self.rng.uniform(d / 2, d)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay

    def reset(self) -> None:
        """Start over from the shortest delay (after a request that got an answer)."""
        self.failures = 0


def heartbeat_interval(lease_seconds: float, fraction: float) -> float:
    """Seconds between two heartbeats of a job whose lease is extended by ``lease_seconds``:
    ``max(50 ms, lease * fraction)``, so that with the default fraction of 1/3 two heartbeats
    can fail before the lease expires."""
    return max(HEARTBEAT_FLOOR, lease_seconds * fraction)


def heartbeat_retry_delay(interval: float) -> float:
    """Seconds before retrying a heartbeat that got no answer: half an interval, at least
    50 ms."""
    return max(HEARTBEAT_FLOOR, interval / 2)
