"""Pacing requests to Cloud Eye's account-wide rate limit, per instance, without shared state.

Many instances of the function can report into one account at once; none knows about the others.
Each learns a request rate from its own answers, the way additive-increase/multiplicative-decrease
controllers do (TCP, Vector's adaptive concurrency):

- Until the first 429 an instance either is not paced (its client proved the account unthrottled
  before: a warm instance keeps its full speed) or starts slowly: its second request goes
  ``1 / START_RATE`` after the first and the rate doubles per success, so many instances starting
  together each meet the account's limit with one request, not with a burst.
- The first 429 sets the rate to ``FIRST_DECREASE`` of what this instance got through so far,
  or of ``FIRST_RATE`` when that is more (instances that started together start from the same
  rate, whoever was lucky in the first second), or of the slow start's rate when the 429 asks
  for no wait (``Retry-After`` 0 or none: the account has room again at once). That rate is the
  instance's pace: its share of the account when the limit was met.
- A later 429 cuts the rate itself by ``DECREASE``, at most once per round: 429s for requests
  sent before the last round's ``Retry-After`` had passed say nothing new. The cut works on the
  rate, not on a count of recent successes: an instance that was waiting out a ``Retry-After``
  got little through, and cutting to that would punish it twice. No cut while the instance is
  behind its pace (fewer requests got through since the first 429 than the pace gives) and its
  rate is at most ``BEHIND_RATE_CAP`` times the pace: its 429s say others take more than their
  share, and cutting would only widen the gap. Instances that met the limit together so keep
  about the same progress and finish together, instead of the unlucky ones (each 429 costs a
  request its ``Retry-After``) running on alone at a low rate after the others are done. Each
  cut so held lowers the pace by ``PACE_DECAY``: a pace the account cannot give (more instances
  share it than the first second showed, or one that started alone meets newcomers) stops
  holding cuts after a few rounds.
- While the rate is what holds requests back (they wait for their turn), it grows per second by
  ``INCREASE_PER_S`` requests/s plus ``GROWTH_PER_S`` of itself: the fixed part lets a slow
  instance catch up with fast ones, the proportional part takes up what finished instances left.
  It never stays below ``FLOOR_SHARE`` of what got through over the last ``WINDOW_S`` (a first
  cut made before a burst's answers were in would otherwise stay far too low).
- Requests start at least ``1 / rate`` apart, and after a cut the next turn comes at a random
  point of one spacing, so instances cut together come back spread over it. After the first cut
  that spacing starts once Cloud Eye's ``Retry-After`` has passed: a start's burst filled the
  window; a later 429 meets a window that a paced instance overfilled only a little. The
  throttled request waits the ``Retry-After`` and then books its turn like any other; so does a
  request whose turn was booked before a cut (``cuts`` tells).

The clock and the random source are injectable so the behaviour can be tested without waiting.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable

# Successes are counted over this window (Cloud Eye limits per second; two smooth the count). An
# instance younger than that is measured over its age, but over one second at least.
WINDOW_S = 2.0
MIN_SPAN_S = 1.0
# A cut keeps this share of the rate; the first cut keeps more: it is made from what got
# through, which is already about this instance's share.
DECREASE = 0.75
FIRST_DECREASE = 0.85
# An instance behind its pace is not cut while its rate is at most this multiple of the pace;
# each cut so held lowers the pace by PACE_DECAY.
BEHIND_RATE_CAP = 2.0
PACE_DECAY = 0.9
# Growth while the rate is what holds requests back, per second: a fixed part (requests/s) and a
# share of the rate itself.
INCREASE_PER_S = 0.3
GROWTH_PER_S = 0.1
# Never slower than this share of what got through over the window.
FLOOR_SHARE = 0.9
# Never slower than this (requests/s): the deadline, not the pacing, ends a hopeless wait.
MIN_RATE = 0.5
# A cold instance's start (requests/s), doubled per success until the first 429.
START_RATE = 10.0
START_GROWTH = 2.0
# The first 429 cuts from at least this rate (requests/s).
FIRST_RATE = 1.5


class RateController:
    """The learned request rate of one client, and the spacing of its requests."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        enabled: bool = True,
        slow_start: bool = False,
    ) -> None:
        """``slow_start``: pace from the first request at ``START_RATE`` (a cold instance);
        otherwise nothing is paced until the first 429."""
        self.clock = clock
        self.rng = rng or random.Random()
        self.enabled = enabled
        self._rate = START_RATE if enabled and slow_start else math.inf
        self.cuts = 0  # rounds of 429s; a turn booked before one is booked again at the new rate
        self._started = math.inf  # the first request's start
        self._last_start = -math.inf  # the latest booked start
        self._quiet_until = -math.inf  # 429s for requests sent before this do not cut again
        self._grown_at = math.inf  # growth counts from here (set by a cut)
        self._successes: deque[float] = deque()  # when requests got through, over the last window
        self._pace = 0.0  # the rate the first 429 set
        self._pace_from = math.inf  # when the first 429's Retry-After had passed
        self._through_since_first = 0  # requests that got through since the first 429
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Requests per second; ``inf`` while not paced."""
        return self._rate

    def reserve(self, *, retry: bool = False) -> float:
        """Book the next request's start: how many seconds to wait before sending it (0: now).
        Its turn is one spacing at the rate learned so far after the turn booked before it. A
        ``retry`` during the slow start goes at once: its backoff spaced it, and the slow start
        is about a burst of new requests."""
        with self._lock:
            now = self.clock()
            self._started = min(self._started, now)
            unpaced = self._rate == math.inf or (retry and not self.cuts)
            start = now if unpaced else max(now, self._last_start + 1 / self._rate)
            self._last_start = max(self._last_start, start)
            return start - now

    def succeeded(self, *, waited: bool) -> None:
        """A request got through; ``waited``: it had to wait for its turn (the rate held it back)."""
        with self._lock:
            now = self.clock()
            self._successes.append(now)
            self._through_since_first += 1
            self._forget_before(now - WINDOW_S)
            if not self.cuts:  # slow start (or not paced: inf stays inf)
                self._rate *= START_GROWTH
            elif self.enabled:
                if waited:
                    # Per second of successes, not per success: the fixed part is the same for
                    # every instance whatever its rate (per success the fast would outgrow the slow).
                    # A gap longer than one spacing (and a second) was not the rate's doing.
                    elapsed = max(0.0, min(max(1.0, 1 / self._rate), now - self._grown_at))
                    self._rate += (INCREASE_PER_S + GROWTH_PER_S * self._rate) * elapsed
                self._grown_at = max(self._grown_at, now)
                self._rate = max(self._rate, self._got_through(now) * FLOOR_SHARE)

    def throttled(self, *, sent_at: float, retry_after: float) -> float:
        """A request sent at ``sent_at`` got 429: cut the rate (once per round) and return how
        many seconds this request waits before it is sent again."""
        with self._lock:
            now = self.clock()
            if self.enabled and sent_at >= self._quiet_until:
                self._forget_before(now - WINDOW_S)
                pause = 0.0
                if not self.cuts:
                    # The first 429: what got through so far, FIRST_RATE at least. One that asks
                    # for no wait (Retry-After 0 or none) says the account has room again at once:
                    # then the cut is from the slow start's rate when that is more.
                    at_least = FIRST_RATE
                    if retry_after <= 0 and self._rate != math.inf:
                        at_least = self._rate  # the slow start's, 10/s or more
                    self._rate = max(MIN_RATE, max(self._got_through(now), at_least) * FIRST_DECREASE)
                    self._pace, self._pace_from, self._through_since_first = self._rate, now + retry_after, 0
                    pause = retry_after
                elif not self._behind(now):
                    self._rate = max(MIN_RATE, self._rate * DECREASE)
                else:
                    self._pace *= PACE_DECAY
                self.cuts += 1
                # Requests sent before Cloud Eye's Retry-After (or one spacing) has passed meet the
                # window that is still full: their 429s say nothing new.
                self._quiet_until = now + max(retry_after, 1 / self._rate)
                # Growth counts from when Cloud Eye's window has room again.
                self._grown_at = now + retry_after
                # The next turn at a random point of one spacing (after the pause), so instances
                # cut together come back spread.
                spacing = 1 / self._rate
                resume = now + pause + self.rng.uniform(0, spacing)
                self._last_start = max(self._last_start, resume - spacing)
            if not self.cuts:  # pacing disabled: spread over half the wait
                return retry_after + self.rng.uniform(0, retry_after / 2)
            # The retry then books its turn like any request.
            return retry_after

    def _behind(self, now: float) -> bool:
        """Fewer requests got through since the first 429 than its pace gives, at a rate at most
        ``BEHIND_RATE_CAP`` times the pace."""
        # Only 429s for requests sent after the first round get here: now >= _pace_from.
        expected = self._pace * (now - self._pace_from)
        return self._through_since_first < expected and self._rate <= BEHIND_RATE_CAP * self._pace

    def _span(self, now: float) -> float:
        """Seconds of history the success count covers."""
        return min(WINDOW_S, max(MIN_SPAN_S, now - self._started))

    def _got_through(self, now: float) -> float:
        return len(self._successes) / self._span(now)

    def seconds_for(self, requests: int) -> float:
        """How long ``requests`` more requests take at the learned rate (0 while unpaced)."""
        if not self.cuts or requests <= 0:
            return 0.0
        return requests / self._rate

    def _forget_before(self, moment: float) -> None:
        while self._successes and self._successes[0] < moment:
            self._successes.popleft()
