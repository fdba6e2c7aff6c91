"""yardmaster._policy: the worker's pure rules from docs/workers.md, without a server or a clock.
(conftest.py puts sdk/python on sys.path.)"""

from __future__ import annotations

import math
import random

import pytest

from yardmaster._policy import (AutoPrefetch, Backoff, heartbeat_interval, heartbeat_retry_delay,
                                lease_want)


def warmed(handler_seconds: float, n: int = 8) -> AutoPrefetch:
    p = AutoPrefetch()
    for _ in range(n):
        p.record_handler(handler_seconds)
    return p


# --- automatic prefetch ------------------------------------------------------------------------

def test_no_prefetch_until_eight_handlers_finished() -> None:
    p = warmed(0.0001, n=7)
    assert p.target(8) == 0
    p.record_handler(0.0001)
    assert p.target(8) > 0


def test_target_is_concurrency_times_two_round_trips_over_run_time_rounded() -> None:
    # The same figures as tests/unit/sdk_policy_test.cc (SdkPrefetch): both runtimes agree.
    p = warmed(0.001)                  # d = 1 ms, r = 1 ms (initial)
    assert p.target(4) == 8            # 4 * 2 * 1 / 1
    p.record_round_trip(0.006)         # r = 1 + 0.2 * (6 - 1) = 2 ms: blended from 1 ms
    assert p.round_trip == pytest.approx(0.002)
    assert p.target(4) == 16
    q = warmed(0.005)
    q.record_round_trip(0.006)
    assert q.target(3) == 2            # 2.4 -> 2: rounded to the nearest, not up
    assert q.target(4) == 3            # 3.2 -> 3
    assert q.target(5) == 4            # 4.0
    assert q.target(1) == 1            # 0.8 -> 1
    r = warmed(0.008)                  # d = 8 ms, r = 1 ms: halves round up
    assert r.target(2) == 1            # 0.5 -> 1
    assert r.target(6) == 2            # 1.5 -> 2


def test_long_jobs_are_not_prefetched() -> None:
    # docs/workers.md: "a 30 s job against a 1 ms round trip gives 0".
    p = warmed(30.0)
    assert p.target(8) == 0            # 8 * 0.002 / 30 = 0.0005
    assert p.target(1) == 0
    # Handlers turning slow: the weight-0.1 average moves a tenth of the way each time.
    p = warmed(0.00001)
    assert p.target(2) == 64           # the cap, 32 per slot
    p.record_handler(30.0)
    assert p.handler_time == pytest.approx(0.00001 + 0.1 * (30 - 0.00001))
    assert p.target(2) == 0


def test_target_is_capped() -> None:
    p = warmed(0.0)                    # a no-op handler: d floored at 1 us, no division by zero
    assert p.target(8) == 32 * 8
    assert p.target(1) == 32
    assert p.target(100) == 900        # 1000 - concurrency wins over 32 x concurrency
    assert p.target(1000) == 0


def test_handler_time_is_a_moving_average_with_weight_0_1() -> None:
    p = AutoPrefetch()
    p.record_handler(1.0)
    assert p.handler_time == pytest.approx(1.0)
    p.record_handler(2.0)
    assert p.handler_time == pytest.approx(1.1)
    p.record_handler(0.0)
    assert p.handler_time == pytest.approx(0.99)
    assert p.handlers_finished == 3


def test_slower_handlers_shrink_the_target() -> None:
    p = warmed(0.001)
    p.record_round_trip(0.006)         # r = 2 ms
    fast = p.target(8)                 # 8 * 4 / 1 = 32
    assert fast == 32
    for _ in range(50):
        p.record_handler(0.1)
    assert p.target(8) < fast
    assert p.target(8) == math.floor(8 * 2 * p.round_trip / p.handler_time + 0.5)


# --- the lease "want" rule ---------------------------------------------------------------------

def test_idle_slot_with_nothing_queued_asks_at_once() -> None:
    # capacity 10: 9 running, 0 queued, 1 free -> a slot is idle, ask for the one free
    assert lease_want(concurrency=10, capacity=10, running=9, queued=0, batch=1000) == 1
    # no prefetch at all: every idle slot asks at once
    assert lease_want(concurrency=1, capacity=1, running=0, queued=0, batch=1000) == 1


def test_otherwise_waits_for_half_the_capacity() -> None:
    # concurrency 4 + prefetch 6: all slots busy, 1 queued, 5 free = ceil(10 / 2): ask
    assert lease_want(4, 10, running=4, queued=1, batch=1000) == 5
    # one job fewer free: no request
    assert lease_want(4, 10, running=4, queued=2, batch=1000) == 0
    # an idle slot, but a job is queued for it: it takes that one, no request yet
    assert lease_want(4, 10, running=3, queued=3, batch=1000) == 0
    # odd capacity rounds the half up: 7 -> 4
    assert lease_want(3, 7, running=3, queued=1, batch=1000) == 0
    assert lease_want(3, 7, running=3, queued=0, batch=1000) == 4


def test_nothing_free_asks_nothing_and_batch_caps() -> None:
    assert lease_want(4, 4, running=4, queued=0, batch=1000) == 0
    assert lease_want(4, 10, running=4, queued=6, batch=1000) == 0
    assert lease_want(4, 10, running=0, queued=0, batch=3) == 3
    assert lease_want(8, 8, running=0, queued=0, batch=1000) == 8


# --- backoff and heartbeats --------------------------------------------------------------------

def test_backoff_equal_jitter_doubles_to_five_seconds() -> None:
    b = Backoff(random.Random(1234))
    for n in range(12):
        d = min(5.0, 0.1 * 2 ** n)
        delay = b.next_delay()
        assert d / 2 <= delay <= d, (n, delay)
    assert b.failures == 12
    b.reset()
    assert 0.05 <= b.next_delay() <= 0.1


def test_backoff_is_random_within_the_window() -> None:
    delays = set()
    for seed in range(20):
        b = Backoff(random.Random(seed))
        for _ in range(10):
            b.next_delay()
        delays.add(round(b.next_delay(), 6))   # d = 5 s: somewhere in [2.5, 5]
    assert all(2.5 <= d <= 5.0 for d in delays)
    assert len(delays) > 10                   # not a constant


def test_backoff_waits_at_least_retry_after() -> None:
    b = Backoff(random.Random(7))
    assert b.next_delay(retry_after=2.0) == 2.0
    assert 0.1 <= b.next_delay(retry_after=0.01) <= 0.2  # a shorter Retry-After changes nothing


def test_heartbeat_interval_and_retry() -> None:
    assert heartbeat_interval(30.0, 1 / 3) == pytest.approx(10.0)
    assert heartbeat_interval(0.1, 0.05) == 0.05         # 5 ms -> the 50 ms floor
    assert heartbeat_retry_delay(10.0) == 5.0
    assert heartbeat_retry_delay(0.08) == 0.05            # half of 80 ms -> the floor
