"""The per-instance rate controller: cut on 429, slow growth, spacing, jittered returns.

Every test drives it with an injected clock and random source: nothing sleeps, every bound exact.
"""

from __future__ import annotations

import math
import random

import pytest

from forwarder import pacing
from forwarder.pacing import RateController


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def controller(clock: Clock, seed: int = 7, enabled: bool = True) -> RateController:
    return RateController(clock=clock, rng=random.Random(seed), enabled=enabled)


def test_unthrottled_nothing_is_paced() -> None:
    clock = Clock()
    pace = controller(clock)
    assert [pace.reserve() for _ in range(1000)] == [0.0] * 1000
    assert pace.rate == math.inf
    assert pace.seconds_for(50) == 0.0


def test_a_429_cuts_the_rate_to_a_share_of_what_got_through() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(20):  # 20 requests start and get through within one second
        pace.reserve()
        clock.now += 0.04
        pace.succeeded(waited=False)
    sent_at = clock.now
    pace.reserve()
    pace.throttled(sent_at=sent_at, retry_after=1.0)
    assert pace.rate == pytest.approx(20 * pacing.DECREASE)


def test_an_instance_that_got_nothing_through_halves_what_it_tried() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(8):  # a burst of 8, all throttled
        pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(8 / 2 * pacing.DECREASE)


def test_the_rate_is_cut_once_per_round() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(10):
        pace.reserve()
    burst_sent = clock.now
    pace.throttled(sent_at=burst_sent, retry_after=1.0)
    cut = pace.rate
    clock.now += 0.5
    # More 429s for requests sent before the Retry-After had passed (the window Cloud Eye counts
    # is still full) say nothing new about the new rate.
    for sent_at in (burst_sent, clock.now):
        pace.throttled(sent_at=sent_at, retry_after=1.0)
    assert pace.rate == cut
    # A request sent after that and still throttled: the cut rate is too high, cut again.
    clock.now += 0.6
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate < cut


def test_the_rate_never_drops_below_the_floor() -> None:
    clock = Clock()
    pace = controller(clock)
    pace.reserve()
    for _ in range(50):
        clock.now += 2  # nothing gets through, the old sends leave the window
        pace.throttled(sent_at=clock.now, retry_after=0.0)
    assert pace.rate == pacing.MIN_RATE


def test_requests_are_spaced_at_the_learned_rate() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(8):
        pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    rate = pace.rate
    waits = [pace.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 1 / rate, 2 / rate, 3 / rate, 4 / rate])
    assert pace.seconds_for(6) == pytest.approx(6 / rate)


def test_the_rate_grows_by_a_fixed_amount_per_second_only_while_it_holds_requests_back() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(40):
        pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    start = pace.rate
    assert start == pytest.approx(40 / 2 * pacing.DECREASE)
    clock.now += 5  # the burst leaves the window
    pace.succeeded(waited=True)  # the first success after a cut only starts the clock
    assert pace.rate == start
    clock.now += 0.5
    pace.succeeded(waited=False)  # did not wait for its turn: proves nothing
    assert pace.rate == start
    clock.now += 0.25
    pace.succeeded(waited=True)
    assert pace.rate == pytest.approx(start + 0.25 * pacing.INCREASE_PER_S)
    clock.now += 30  # a long gap counts as one window at most
    pace.succeeded(waited=True)
    assert pace.rate == pytest.approx(start + 1.25 * pacing.INCREASE_PER_S)


def test_slow_and_fast_instances_gain_the_same_per_second() -> None:
    gains = []
    for burst in (4, 40):  # cut to 1.8 and to 18 requests/s
        clock = Clock()
        pace = controller(clock)
        for _ in range(burst):
            pace.reserve()
        pace.throttled(sent_at=clock.now, retry_after=1.0)
        clock.now += 5
        start = pace.rate
        for _ in range(4):  # one success a second for four seconds
            pace.succeeded(waited=True)
            clock.now += 1
        gains.append(pace.rate - start)
    assert gains == pytest.approx([3 * pacing.INCREASE_PER_S] * 2)


def test_the_rate_is_not_left_far_below_what_got_through() -> None:
    clock = Clock()
    pace = controller(clock)
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)  # cut before any answer came back
    assert pace.rate == pacing.MIN_RATE
    for _ in range(6):  # then six answers of the same burst arrive: that much got through
        clock.now += 0.01
        pace.succeeded(waited=False)
    assert pace.rate == pytest.approx(6 * pacing.FLOOR_SHARE)


@pytest.mark.parametrize("retry_after", [0.5, 1.0, 7.0, 30.0])
def test_a_throttled_request_returns_after_retry_after_plus_bounded_jitter(retry_after: float) -> None:
    clock = Clock()
    pace = controller(clock, seed=11)
    for _ in range(8):
        pace.reserve()
    mirror = random.Random(11)  # the same draws the controller makes
    waits = [pace.throttled(sent_at=clock.now - 1, retry_after=retry_after) for _ in range(200)]
    expected = [retry_after + mirror.uniform(0, pacing.RETURN_JITTER * retry_after) for _ in range(200)]
    assert waits == expected
    assert all(retry_after <= wait <= retry_after * (1 + pacing.RETURN_JITTER) for wait in waits)
    assert max(waits) - min(waits) > 0.3 * pacing.RETURN_JITTER * retry_after  # really spread


def test_without_retry_after_a_throttled_request_waits_up_to_one_spacing() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(8):
        pace.reserve()
    first = pace.throttled(sent_at=clock.now, retry_after=0.0)
    spacing = 1 / pace.rate
    waits = [first] + [pace.throttled(sent_at=clock.now - 1, retry_after=0.0) for _ in range(100)]
    assert all(0 <= wait <= pacing.RETURN_JITTER * spacing for wait in waits)


def test_disabled_it_never_paces() -> None:
    clock = Clock()
    pace = controller(clock, enabled=False)
    for _ in range(8):
        pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == math.inf
    assert pace.reserve() == 0.0
