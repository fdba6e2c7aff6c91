"""yardmaster._policy: the worker's pure rules from docs/workers.md, without a server or a clock."""

from __future__ import annotations

import math
import random

import pytest
from conftest import SDK  # noqa: F401 - puts sdk/python on sys.path

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


def test_target_is_ceil_of_concurrency_times_two_round_trips_over_run_time() -> None:
    p = warmed(0.009)                  # d = 9 ms
    assert p.target(4) == 1            # r = 1 ms until measured: ceil(4 * 2 / 9) = ceil(0.89)
    p.record_round_trip(0.026)         # r = 1 + 0.2 * (26 - 1) = 6 ms: blended from 1 ms
    assert p.round_trip == pytest.approx(0.006)
    assert p.target(4) == 6            # ceil(4 * 12 / 9) = ceil(5.33)
    p.record_round_trip(0.001)         # r = 6 + 0.2 * (1 - 6) = 5 ms
    assert p.round_trip == pytest.approx(0.005)
    assert p.target(4) == 5            # ceil(4 * 10 / 9) = ceil(4.44)
    assert p.target(1) == 2            # ceil(10 / 9)


def test_long_jobs_keep_at_most_one_queued() -> None:
    # ceil() of any positive ratio is 1: a 30 s handler against a 1 ms round trip keeps one job
    # queued (docs/workers.md's example says 0, which ceil cannot give; see _policy.AutoPrefetch).
    p = warmed(30.0)
    assert p.target(8) == 1            # ceil(8 * 0.002 / 30) = ceil(0.00053)
    assert p.target(1) == 1


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
    fast = p.target(8)                 # ceil(8 * 4 / 1) = 32
    assert fast == 32
    for _ in range(50):
        p.record_handler(0.1)
    assert p.target(8) < fast
    assert p.target(8) == math.ceil(8 * 2 * p.round_trip / p.handler_time)


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
