"""The per-instance rate controller: cut on 429, growth, spacing, jittered returns, deadline hint.

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


def sends(pace: RateController, clock: Clock, count: int, *, apart: float = 0.0) -> None:
    """``count`` requests start ``apart`` seconds apart (no answers yet)."""
    for _ in range(count):
        assert pace.reserve() == 0.0
        clock.now += apart


def cut_from_burst(clock: Clock, burst: int, seed: int = 7) -> RateController:
    """A controller whose first 429 came after a burst of ``burst`` requests, none answered."""
    pace = controller(clock, seed)
    sends(pace, clock, burst)
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    return pace


def test_unthrottled_nothing_is_paced() -> None:
    clock = Clock()
    pace = controller(clock)
    assert [pace.reserve() for _ in range(1000)] == [0.0] * 1000
    assert pace.rate == math.inf
    assert pace.seconds_for(50) == 0.0


def test_the_first_429_sets_the_rate_to_a_share_of_what_got_through() -> None:
    clock = Clock()
    pace = controller(clock)
    for _ in range(20):  # 20 requests start and get through within 0.8 s: 20/s (one second at least)
        pace.reserve()
        clock.now += 0.04
        pace.succeeded(waited=False)
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(20 * pacing.DECREASE)


def test_an_instance_that_got_nothing_through_counts_half_of_what_it_tried() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 8)
    assert pace.rate == pytest.approx(8 / 2 * pacing.DECREASE)


def test_a_later_429_cuts_the_rate_itself_not_the_few_successes_of_a_wait() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 40)
    first = pace.rate
    clock.now += 1.5  # waited out the Retry-After: nothing got through meanwhile
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(first * pacing.DECREASE)


def test_the_rate_is_cut_once_per_round() -> None:
    clock = Clock()
    pace = controller(clock)
    sends(pace, clock, 10)
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
    assert pace.rate == pytest.approx(cut * pacing.DECREASE)


def test_the_rate_never_drops_below_the_floor() -> None:
    clock = Clock()
    pace = controller(clock)
    pace.reserve()
    for _ in range(50):
        clock.now += 2  # nothing gets through
        pace.throttled(sent_at=clock.now, retry_after=0.0)
    assert pace.rate == pacing.MIN_RATE


def test_after_a_cut_requests_start_one_spacing_apart() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 8)
    spacing = 1 / pace.rate
    # The account is full: not even the next request goes at once; each books the next turn.
    waits = [pace.reserve() for _ in range(5)]
    assert waits == pytest.approx([spacing, 2 * spacing, 3 * spacing, 4 * spacing, 5 * spacing])
    clock.now += 10 * spacing  # idle: the next one goes at once, the one after a spacing later
    assert [pace.reserve(), pace.reserve()] == pytest.approx([0.0, spacing])
    assert pace.seconds_for(6) == pytest.approx(6 * spacing)


def test_a_turn_booked_after_growth_comes_sooner() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 8)  # 3 requests/s
    clock.now += 1.0  # the Retry-After has just passed
    assert pace.reserve() == pytest.approx(0.0)
    pace.succeeded(waited=True)  # growth counts from the end of the Retry-After: nothing yet
    assert pace.rate == pytest.approx(3.0)
    clock.now += 0.1
    pace.succeeded(waited=True)
    grown = 3.0 + 0.1 * (pacing.INCREASE_PER_S + pacing.GROWTH_PER_S * 3.0)
    assert pace.rate == pytest.approx(grown)
    assert pace.reserve() == pytest.approx(1 / grown - 0.1)  # one spacing at the grown rate


def test_the_rate_grows_per_second_while_it_holds_requests_back() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 40)
    start = pace.rate
    assert start == pytest.approx(40 / 2 * pacing.DECREASE)
    clock.now += 0.5
    pace.succeeded(waited=True)  # within Cloud Eye's Retry-After: no growth yet
    assert pace.rate == start
    clock.now += 1.0  # 0.5 s past the Retry-After
    pace.succeeded(waited=False)  # did not wait for its turn: proves nothing
    assert pace.rate == start
    clock.now += 0.25
    pace.succeeded(waited=True)
    grown = start + 0.25 * (pacing.INCREASE_PER_S + pacing.GROWTH_PER_S * start)
    assert pace.rate == pytest.approx(grown)
    clock.now += 30  # a long gap was not the rate's doing: one second at most
    pace.succeeded(waited=True)
    assert pace.rate == pytest.approx(grown + pacing.INCREASE_PER_S + pacing.GROWTH_PER_S * grown)


def test_every_instance_gains_the_fixed_part_whatever_its_rate() -> None:
    for burst in (4, 40):  # cut to 1.5 and to 15 requests/s
        clock = Clock()
        pace = cut_from_burst(clock, burst)
        clock.now += 1.0  # the Retry-After passes
        start = pace.rate
        clock.now += 1.0
        pace.succeeded(waited=True)
        assert pace.rate - start == pytest.approx(pacing.INCREASE_PER_S + pacing.GROWTH_PER_S * start)


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
def test_a_throttled_request_returns_after_retry_after_plus_up_to_one_spacing(retry_after: float) -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 8, seed=11)
    spacing = 1 / pace.rate
    mirror = random.Random(11)
    mirror.uniform(0, spacing)  # the draw for the 429 that set the rate
    waits = [pace.throttled(sent_at=clock.now - 1, retry_after=retry_after) for _ in range(200)]
    assert pace.rate == 1 / spacing  # old requests: no second cut
    assert waits == [retry_after + mirror.uniform(0, spacing) for _ in range(200)]
    assert all(retry_after <= wait <= retry_after + spacing for wait in waits)
    assert max(waits) - min(waits) > 0.8 * spacing  # really spread over the interval


def test_instances_return_spread_at_about_the_rate_they_learned() -> None:
    # 20 instances cut to the same rate return within one spacing of the Retry-After.
    returns = sorted(
        cut_from_burst(Clock(), 8, seed).throttled(sent_at=0.0, retry_after=1.0) for seed in range(20)
    )
    spacing = 1 / (8 / 2 * pacing.DECREASE)
    assert returns[0] >= 1.0 and returns[-1] <= 1.0 + spacing
    assert returns[-1] - returns[0] > 0.5 * spacing


def test_the_deadline_hint_is_the_time_the_requests_take_at_the_learned_rate() -> None:
    clock = Clock()
    pace = cut_from_burst(clock, 8)
    assert pace.seconds_for(6) == pytest.approx(6 / (8 / 2 * pacing.DECREASE))
    assert pace.seconds_for(0) == 0.0


def test_disabled_it_never_paces() -> None:
    clock = Clock()
    pace = controller(clock, enabled=False)
    sends(pace, clock, 8)
    wait = pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == math.inf
    assert pace.reserve() == 0.0
    assert 1.0 <= wait <= 1.5
