"""Pacing requests to Cloud Eye's account-wide rate limit, per instance, without shared state.

Many instances of the function can report into one account at once; none knows about the others.
Each learns a request rate from its own answers, the way additive-increase/multiplicative-decrease
controllers do (TCP, Vector's adaptive concurrency):

- Until the first 429 nothing is paced: one instance alone keeps its full speed.
- A 429 cuts the rate to a share of what this instance actually got through in the last second
  (its successes; half of what it tried when nothing got through yet), at most once per round:
  429s for requests sent before the 429's ``Retry-After`` had passed say nothing new.
- While the rate is what holds requests back (they wait for their turn), it grows by
  ``INCREASE_PER_S`` requests/s per second, the same for every instance whatever its rate, so a
  slow one catches up with the fast ones; and it never stays below ``FLOOR_SHARE`` of what
  actually got through in the last second.
- Requests start at least ``1 / rate`` apart, and a throttled request waits Cloud Eye's
  ``Retry-After`` plus a random share of it, so instances do not come back in step.

The clock and the random source are injectable so the behaviour can be tested without waiting.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable

# The window over which successes are counted when the rate is cut (Cloud Eye limits per second).
WINDOW_S = 1.0
# A cut keeps this share of the measured success rate.
DECREASE = 0.9
# Growth while the rate is what holds requests back: requests/s gained per second.
INCREASE_PER_S = 0.5
# Never slower than this share of what got through in the last second (a cut made before the
# answers of a burst were in would otherwise stay far too low).
FLOOR_SHARE = 0.9
# Never slower than this (requests/s): the deadline, not the pacing, ends a hopeless wait.
MIN_RATE = 0.5
# A throttled request waits Retry-After plus up to this share of it (or of one spacing) at random.
RETURN_JITTER = 0.5


class RateController:
    """The learned request rate of one client, and the spacing of its requests."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        enabled: bool = True,
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.enabled = enabled
        self._rate = math.inf
        self._next_start = -math.inf
        self._quiet_until = -math.inf  # 429s for requests sent before this do not cut again
        self._grown_at = math.inf  # no growth before the first success after a cut
        self._successes: deque[float] = deque()  # when requests got through, over the last window
        self._sends: deque[float] = deque()  # when requests started, over the last window
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Requests per second; ``inf`` while nothing has been throttled."""
        return self._rate

    def reserve(self) -> float:
        """Book the next request's start: how many seconds to wait before sending it (0: now)."""
        with self._lock:
            now = self.clock()
            if self._rate == math.inf:
                self._sends.append(now)
                return 0.0
            start = max(now, self._next_start)
            self._next_start = start + 1 / self._rate
            self._sends.append(start)
            return start - now

    def succeeded(self, *, waited: bool) -> None:
        """A request got through; ``waited``: it had to wait for its turn (the rate held it back)."""
        with self._lock:
            now = self.clock()
            self._successes.append(now)
            self._forget_before(now - WINDOW_S)
            if self.enabled and self._rate != math.inf:
                # Never much slower than what got through in the last second: the account took that
                # much from this instance (a cut made before a burst's answers were in is too low).
                got_through = len(self._successes) / WINDOW_S
                if waited:
                    # Additive increase per second of successes, not per success: every instance
                    # gains the same whatever its rate (per success the fast would outgrow the slow).
                    self._rate += INCREASE_PER_S * max(0.0, min(WINDOW_S, now - self._grown_at))
                self._grown_at = now
                self._rate = max(self._rate, got_through * FLOOR_SHARE)

    def throttled(self, *, sent_at: float, retry_after: float) -> float:
        """A request sent at ``sent_at`` got 429: cut the rate (once per round) and return how
        many seconds this request waits before it is sent again."""
        with self._lock:
            now = self.clock()
            if self.enabled and sent_at >= self._quiet_until:
                self._forget_before(now - WINDOW_S)
                # What got through is the best estimate of this instance's share; an instance that
                # got nothing through yet (it just started) halves what it tried instead.
                measured = max(len(self._successes), len(self._sends) / 2) / WINDOW_S
                self._rate = max(MIN_RATE, min(self._rate, measured) * DECREASE)
                # Requests sent before Cloud Eye's Retry-After (or one spacing) has passed meet the
                # window that is still full: their 429s say nothing about the new rate.
                self._quiet_until = now + max(retry_after, 1 / self._rate)
                self._grown_at = math.inf
            spacing = 0.0 if self._rate == math.inf else 1 / self._rate
            spread = retry_after if retry_after > 0 else spacing
            return retry_after + self.rng.uniform(0, RETURN_JITTER * spread)

    def seconds_for(self, requests: int) -> float:
        """How long ``requests`` more requests take at the learned rate (0 while unpaced)."""
        if self._rate == math.inf or requests <= 0:
            return 0.0
        return requests / self._rate

    def _forget_before(self, moment: float) -> None:
        for times in (self._successes, self._sends):
            while times and times[0] < moment:
                times.popleft()
