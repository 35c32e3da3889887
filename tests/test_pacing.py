"""The per-instance rate controller: slow start, cut on 429, the pace a behind instance is not cut
below, growth, spacing, jittered returns, deadline hint.

Every test drives it with an injected clock and a seeded random source (mirrored to know each
draw): nothing sleeps, every bound exact. Expected rates are written as numbers, not from the
module's constants, so a changed constant shows.
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


def controller(
    clock: Clock, seed: int = 7, *, enabled: bool = True, slow_start: bool = False
) -> RateController:
    return RateController(clock=clock, rng=random.Random(seed), enabled=enabled, slow_start=slow_start)


def through(pace: RateController, clock: Clock, count: int, *, apart: float) -> None:
    """``count`` requests each start and get through, ``apart`` seconds apart."""
    for _ in range(count):
        pace.reserve()
        clock.now += apart
        pace.succeeded(waited=False)


def first_cut(clock: Clock, seed: int = 7, retry_after: float = 1.0) -> RateController:
    """A controller whose first request got a 429 before anything got through: 1.275 requests/s,
    its pace from when the Retry-After has passed."""
    pace = controller(clock, seed)
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=retry_after)
    return pace


def at_the_floor(clock: Clock) -> RateController:
    """A controller cut round after round down to 0.5 requests/s. A burst's 40 answers come in
    after its first 429 (the rate rises to 36/s): far ahead of its pace, it is cut each round."""
    pace = first_cut(clock)
    for _ in range(40):
        pace.succeeded(waited=False)
    for _ in range(16):  # 36 * 0.75**15 would be 0.48
        clock.now += 2.0
        pace.throttled(sent_at=clock.now, retry_after=1.0)
    return pace


def mirror_after_cuts(seed: int, spacings: list[float]) -> random.Random:
    """The random source of a controller seeded ``seed`` after the cuts' draws (one per cut)."""
    mirror = random.Random(seed)
    for spacing in spacings:
        mirror.uniform(0, spacing)
    return mirror


# --- before the first 429 ------------------------------------------------------------------------


def test_unthrottled_nothing_is_paced() -> None:
    clock = Clock()
    pace = controller(clock)
    waits = []
    for _ in range(100):
        waits.append(pace.reserve())
        pace.succeeded(waited=False)
    assert waits == [0.0] * 100
    assert pace.rate == math.inf
    assert pace.cuts == 0
    assert pace.seconds_for(50) == 0.0


def test_a_cold_instance_starts_at_ten_per_second_and_doubles_per_success() -> None:
    clock = Clock()
    pace = controller(clock, slow_start=True)
    assert pace.rate == 10.0
    assert pace.reserve() == 0.0  # the first request goes at once
    assert pace.reserve() == pytest.approx(0.1)  # the second one spacing later
    pace.succeeded(waited=False)
    assert pace.rate == 20.0
    assert pace.reserve() == pytest.approx(0.15)  # one spacing at 20/s after the turn before it
    pace.succeeded(waited=True)
    pace.succeeded(waited=True)
    assert pace.rate == 80.0
    assert pace.seconds_for(10) == 0.0  # nothing learned yet: no hint


def test_slow_start_does_not_apply_when_pacing_is_disabled() -> None:
    clock = Clock()
    pace = controller(clock, enabled=False, slow_start=True)
    assert pace.rate == math.inf
    assert [pace.reserve(), pace.reserve()] == [0.0, 0.0]


# --- the first 429 -------------------------------------------------------------------------------


def test_the_first_429_keeps_0_85_of_what_got_through() -> None:
    clock = Clock()
    pace = controller(clock, slow_start=True)
    through(pace, clock, 20, apart=0.04)  # 20 within 0.8 s: counted over one second at least
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(17.0)
    assert pace.cuts == 1


def test_what_got_through_is_counted_over_the_instance_age_up_to_two_seconds() -> None:
    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 30, apart=0.05)  # 30 over 1.5 s: 20/s
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(17.0)

    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 40, apart=0.1)  # 4 s old: the 20 of the last two seconds count, 10/s
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(8.5)


def test_successes_older_than_the_window_are_forgotten_at_the_first_cut() -> None:
    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 10, apart=0.01)
    clock.now += 5.0  # all ten are more than two seconds old
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(1.275)  # the first-cut minimum, not 10/2 s


def test_a_success_exactly_two_seconds_old_still_counts() -> None:
    clock = Clock(start=1000.0)
    pace = controller(clock)
    pace.reserve()
    for _ in range(4):
        pace.succeeded(waited=False)  # at 1000.0
    clock.now = 1000.0 + 2.0
    pace.succeeded(waited=False)
    pace.succeeded(waited=False)
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(2.55)  # all six over the two seconds (3/s), not two


def test_an_instance_that_got_little_through_starts_from_the_same_rate_as_the_others() -> None:
    rates = []
    for successes in (0, 1):  # unlucky and lucky in the first second: the same rate after the cut
        clock = Clock()
        pace = controller(clock, slow_start=True)
        through(pace, clock, successes, apart=0.01)
        pace.reserve()
        pace.throttled(sent_at=clock.now, retry_after=1.0)
        rates.append(pace.rate)
    assert rates == pytest.approx([1.275, 1.275])


@pytest.mark.parametrize("retry_after", [0.0, 1.0])
def test_a_first_429_asking_for_no_wait_cuts_from_the_slow_start_rate(retry_after: float) -> None:
    clock = Clock()
    pace = controller(clock, slow_start=True)
    through(pace, clock, 2, apart=0.01)  # 40/s by now
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=retry_after)
    # Retry-After 0 (or none): the account has room again at once, so 0.85 of 40/s; otherwise
    # 0.85 of what got through (2 in the first second), as for instances started together.
    assert pace.rate == pytest.approx(34.0 if retry_after == 0 else 1.7)


def test_a_first_429_asking_for_no_wait_still_paces_an_unpaced_instance() -> None:
    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 2, apart=0.01)
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=0.0)
    assert pace.rate == pytest.approx(1.7)  # 0.85 of the 2/s that got through


def test_after_the_first_cut_the_next_turn_comes_after_retry_after_within_one_spacing() -> None:
    for retry_after in (0.5, 1.0, 7.0):
        clock = Clock()
        pace = first_cut(clock, seed=11, retry_after=retry_after)
        spacing = 1 / 1.275
        jitter = random.Random(11).uniform(0, spacing)
        waits = [pace.reserve() for _ in range(3)]
        assert waits == pytest.approx([retry_after + jitter + k * spacing for k in range(3)])


def test_instances_cut_together_return_spread_over_one_spacing() -> None:
    firsts = []
    for seed in range(30):
        clock = Clock()
        firsts.append(first_cut(clock, seed).reserve())
    spacing = 1 / 1.275
    assert min(firsts) >= 1.0 and max(firsts) <= 1.0 + spacing
    assert max(firsts) - min(firsts) > 0.8 * spacing  # really spread, not in step


def test_the_throttled_request_waits_retry_after_then_books_its_turn() -> None:
    clock = Clock()
    pace = first_cut(clock, seed=3)
    later = pace.throttled(sent_at=clock.now - 1, retry_after=2.5)  # an older request's 429
    assert later == 2.5
    assert pace.throttled(sent_at=clock.now, retry_after=1.0) == 1.0


# --- later 429s ----------------------------------------------------------------------------------


def test_a_later_429_cuts_the_rate_itself_and_its_next_turn_comes_within_one_spacing() -> None:
    clock = Clock()
    pace = controller(clock, seed=5)
    through(pace, clock, 20, apart=0.04)
    pace.throttled(sent_at=clock.now, retry_after=1.0)  # 17/s, its pace from one second on
    clock.now += 1.5
    for _ in range(9):  # half a second at 17/s gives 8.5: not behind its pace
        pace.succeeded(waited=False)
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.cuts == 2
    assert pace.rate == pytest.approx(12.75)  # 17 * 0.75: the rate itself, not what got through
    jitter = mirror_after_cuts(5, [1 / 17]).uniform(0, 1 / 12.75)
    assert pace.reserve() == pytest.approx(jitter)  # no pause after a later cut


def test_the_rate_is_cut_once_per_round() -> None:
    clock = Clock()
    pace = first_cut(clock)  # 1.275/s; quiet for max(Retry-After 1 s, one spacing 0.78 s)
    cut_at = clock.now
    pace.succeeded(waited=False)
    clock.now += 0.5
    # 429s for requests sent before that (the window Cloud Eye counts is still full) say nothing.
    for sent_at in (cut_at, clock.now, cut_at + 1.0 - 1e-9):
        assert pace.throttled(sent_at=sent_at, retry_after=1.0) == 1.0
    assert pace.rate == pytest.approx(1.275)
    assert pace.cuts == 1
    # A request sent once the Retry-After has passed and still throttled: cut again (its pace
    # counts from then, so it is not behind yet).
    clock.now = cut_at + 1.0
    pace.throttled(sent_at=cut_at + 1.0, retry_after=1.0)
    assert pace.cuts == 2
    assert pace.rate == pytest.approx(0.95625)


def test_the_round_lasts_one_spacing_when_that_is_longer_than_retry_after() -> None:
    clock = Clock()
    pace = first_cut(clock, retry_after=0.0)  # 1.275/s: a round of 0.784 s
    cut_at = clock.now
    pace.succeeded(waited=False)
    clock.now += 0.78
    pace.throttled(sent_at=clock.now, retry_after=0.0)
    assert pace.cuts == 1
    clock.now = cut_at + 1 / 1.275
    pace.throttled(sent_at=clock.now, retry_after=0.0)
    assert pace.cuts == 2


def test_a_429_after_the_round_cuts_again_though_nothing_got_through() -> None:
    clock = Clock()
    pace = first_cut(clock)
    clock.now += 1.0  # the round's end, when the pace starts: it gives nothing yet
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(0.95625)
    assert pace.cuts == 2


def test_the_rate_never_drops_below_half_a_request_per_second() -> None:
    clock = Clock()
    pace = at_the_floor(clock)
    assert pace.rate == 0.5
    assert pace.cuts == 17


# --- the pace: instances that met the limit together keep about the same progress ---------------


def test_a_later_429_does_not_cut_an_instance_behind_its_pace() -> None:
    clock = Clock()
    pace = first_cut(clock)  # 1.275/s from one second on
    clock.now += 2.0
    pace.succeeded(waited=False)
    pace.succeeded(waited=False)
    clock.now += 1.0  # two seconds at its pace give 2.55: two got through
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(1.275)
    assert pace.cuts == 2  # a round all the same: its next turn spread over one spacing...
    jitter = mirror_after_cuts(7, [1 / 1.275]).uniform(0, 1 / 1.275)
    assert pace.reserve() == pytest.approx(jitter)
    clock.now += 0.5  # ...and 429s for requests sent within its Retry-After say nothing new
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.cuts == 2


def test_each_held_cut_lowers_the_pace_until_the_instance_is_cut_again() -> None:
    # Nothing ever gets through (a pace the account cannot give): each round's 429 is held while
    # the rate (1.275) is at most twice the pace, which loses a tenth per held cut.
    clock = Clock()
    pace = first_cut(clock)  # pace 1.275/s from 1001 on
    paces = []
    for second in range(1, 9):
        clock.now = 1001.0 + second  # one 429 per round (a round lasts 1 s here)
        pace.throttled(sent_at=clock.now, retry_after=1.0)
        paces.append(round(pace.rate, 5))
    # 1.275 * 0.9**7 = 0.60983: twice that is below 1.275, so the eighth 429 cuts (1.275 * 0.75).
    assert paces == [1.275] * 7 + [0.95625]
    assert pace.cuts == 9


@pytest.mark.parametrize(("got_through", "rate"), [(16, 8.5), (17, 6.375)])
def test_a_later_429_cuts_an_instance_that_got_through_what_its_pace_gives(
    got_through: int, rate: float
) -> None:
    clock = Clock()
    pace = controller(clock, slow_start=True)
    pace.reserve()
    pace.throttled(sent_at=clock.now, retry_after=0.0)  # 0.85 of the slow start's 10/s, from now
    clock.now += 2.0  # two seconds at 8.5/s give 17
    for _ in range(got_through):
        pace.succeeded(waited=False)
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(rate)  # 17 is not fewer than the pace gives: 8.5 * 0.75


def test_what_got_through_before_the_first_429_does_not_count_toward_the_pace() -> None:
    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 20, apart=0.04)
    pace.throttled(sent_at=clock.now, retry_after=1.0)  # 17/s from one second on
    clock.now += 1.5
    for _ in range(8):  # half a second at 17/s gives 8.5: behind, whatever got through before
        pace.succeeded(waited=False)
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(17.0)
    assert pace.cuts == 2


@pytest.mark.parametrize(("got_through", "rate"), [(51, 22.95), (52, 17.55)])
def test_a_behind_instance_whose_rate_rose_above_twice_its_pace_is_cut(got_through: int, rate: float) -> None:
    clock = Clock()
    pace = controller(clock)
    pace.reserve()
    clock.now += 2.0
    for _ in range(27):
        pace.succeeded(waited=False)
    pace.throttled(sent_at=clock.now, retry_after=1.0)  # 0.85 of 27 over 2 s: 11.475/s
    clock.now += 10.0  # nine seconds at its pace give 103.275: behind either way
    for _ in range(got_through):  # the rate rises to 0.9 of what got through over 2 s
        pace.succeeded(waited=False)
    # 51: 22.95/s, twice the pace exactly, is not cut; 52: 23.4/s is, to 23.4 * 0.75.
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(rate)


def test_the_pace_counts_from_when_the_first_retry_after_has_passed() -> None:
    clock = Clock()
    pace = first_cut(clock, retry_after=5.0)  # 1.275/s from five seconds on
    clock.now += 7.0
    for _ in range(3):  # the rate rises to 0.9 of 3 over 2 s: 1.35/s
        pace.succeeded(waited=False)
    # Two seconds at its pace give 2.55: not behind (seven from the 429 itself would give 8.925).
    pace.throttled(sent_at=clock.now, retry_after=1.0)
    assert pace.rate == pytest.approx(1.0125)


# --- growth --------------------------------------------------------------------------------------


def test_the_rate_grows_per_second_while_it_holds_requests_back() -> None:
    clock = Clock()
    pace = controller(clock)
    through(pace, clock, 20, apart=0.04)
    pace.throttled(sent_at=clock.now, retry_after=1.0)  # 17/s
    clock.now += 0.5
    pace.succeeded(waited=True)  # within Cloud Eye's Retry-After: no growth yet
    assert pace.rate == pytest.approx(17.0)
    clock.now += 1.0  # 0.5 s past the Retry-After
    pace.succeeded(waited=False)  # did not wait for its turn: proves nothing
    assert pace.rate == pytest.approx(17.0)
    clock.now += 0.25
    pace.succeeded(waited=True)
    grown = 17.0 + 0.25 * (0.3 + 0.1 * 17.0)
    assert pace.rate == pytest.approx(grown)
    clock.now += 30  # a long gap was not the rate's doing: one second at most
    pace.succeeded(waited=True)
    assert pace.rate == pytest.approx(grown + 0.3 + 0.1 * grown)


def test_a_slow_instance_grows_for_one_spacing_at_most() -> None:
    clock = Clock()
    pace = at_the_floor(clock)  # 0.5/s, a spacing of two seconds
    clock.now += 1.0  # the Retry-After passed
    pace.succeeded(waited=False)  # growth counts from here
    clock.now += 10.0
    pace.succeeded(waited=True)
    assert pace.rate == pytest.approx(0.5 + 2.0 * (0.3 + 0.1 * 0.5))


def test_every_instance_gains_the_fixed_part_whatever_its_rate() -> None:
    for successes, start in ((0, 1.275), (20, 17.0)):
        clock = Clock()
        pace = controller(clock)
        through(pace, clock, successes, apart=0.04)
        pace.reserve()
        pace.throttled(sent_at=clock.now, retry_after=1.0)
        assert pace.rate == pytest.approx(start)
        clock.now += 3.0  # the Retry-After passes, the burst leaves the window
        pace.succeeded(waited=False)
        clock.now += 1.0
        pace.succeeded(waited=True)
        assert pace.rate == pytest.approx(start + 0.3 + 0.1 * start)


def test_a_turn_booked_after_growth_comes_sooner() -> None:
    clock = Clock()
    pace = first_cut(clock)
    clock.now += 3.0  # past the Retry-After and the first turn
    assert pace.reserve() == 0.0
    pace.succeeded(waited=True)  # growth counts from the end of the Retry-After
    grown = 1.275 + 1.0 * (0.3 + 0.1 * 1.275)  # two seconds capped to one (a spacing is less)
    assert pace.rate == pytest.approx(grown)
    clock.now += 0.1
    assert pace.reserve() == pytest.approx(1 / grown - 0.1)  # one spacing at the grown rate


def test_the_rate_is_not_left_far_below_what_got_through() -> None:
    clock = Clock()
    pace = first_cut(clock)  # cut before any answer came back
    for _ in range(6):  # then six answers of the same burst arrive: that much got through
        clock.now += 0.01
        pace.succeeded(waited=False)
    assert pace.rate == pytest.approx(6 * 0.9)


# --- spacing and the deadline hint ---------------------------------------------------------------


def test_paced_requests_start_one_spacing_apart_and_an_idle_gap_is_not_made_up() -> None:
    clock = Clock()
    pace = first_cut(clock, seed=2)
    spacing = 1 / 1.275
    first = pace.reserve()
    waits = [pace.reserve() for _ in range(3)]
    assert waits == pytest.approx([first + spacing, first + 2 * spacing, first + 3 * spacing])
    clock.now += 20.0  # idle: the next one goes at once, the one after one spacing later
    assert [pace.reserve(), pace.reserve()] == pytest.approx([0.0, spacing])


def test_the_deadline_hint_is_the_time_the_requests_take_at_the_learned_rate() -> None:
    clock = Clock()
    pace = first_cut(clock)
    assert pace.seconds_for(51) == pytest.approx(40.0)
    assert pace.seconds_for(1) == pytest.approx(1 / 1.275)
    assert pace.seconds_for(0) == 0.0
    assert pace.seconds_for(-3) == 0.0


def test_disabled_it_never_paces_and_spreads_a_return_over_half_the_wait() -> None:
    clock = Clock()
    pace = controller(clock, seed=9, enabled=False)
    pace.reserve()
    mirror = random.Random(9)
    waits = [pace.throttled(sent_at=clock.now, retry_after=2.0) for _ in range(50)]
    assert waits == [2.0 + mirror.uniform(0, 1.0) for _ in range(50)]
    assert pace.rate == math.inf
    assert pace.cuts == 0
    assert pace.reserve() == 0.0
    assert pace.seconds_for(5) == 0.0


def test_the_constants_hold_the_documented_values() -> None:
    # The README and docs/scaling.md quote these; a change must update them.
    assert (pacing.START_RATE, pacing.START_GROWTH, pacing.FIRST_RATE) == (10.0, 2.0, 1.5)
    assert (pacing.DECREASE, pacing.FIRST_DECREASE, pacing.BEHIND_RATE_CAP) == (0.75, 0.85, 2.0)
    assert (pacing.INCREASE_PER_S, pacing.GROWTH_PER_S, pacing.PACE_DECAY) == (0.3, 0.1, 0.9)
    assert (pacing.FLOOR_SHARE, pacing.MIN_RATE, pacing.WINDOW_S, pacing.MIN_SPAN_S) == (0.9, 0.5, 2.0, 1.0)
