"""429 storms: AIMD concurrency against the emulator's rate limits.

One 5,000-event batch (50 requests) through ``report_events`` while the emulator answers in 50 ms
and admits at most 2 requests at once (or 20 a second); everything else gets 429 with
``Retry-After``. Adaptive (the default) against a fixed concurrency of 8 (``adaptive=False``).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from forwarder.client import AdaptiveLimit
from tests.reliability.harness import storm


@pytest.mark.slow
def test_max_concurrent_storm_adaptation_at_least_halves_the_429s(cloudeye) -> None:
    fixed = storm(cloudeye, adaptive=False, limits={"max_concurrent": 2})
    adaptive = storm(cloudeye, adaptive=True, limits={"max_concurrent": 2})

    assert adaptive.accepted == adaptive.events == 5000, adaptive
    assert adaptive.delivered_requests == 50
    assert fixed.throttled > 0
    assert 2 * adaptive.throttled <= fixed.throttled, (adaptive, fixed)
    assert adaptive.waste < fixed.waste


@pytest.mark.slow
def test_max_per_second_storm_is_fully_delivered_either_way(cloudeye) -> None:
    # A per-second limit answers at once, so every worker spends a 429 per window whatever the
    # concurrency: the Retry-After waits, not adaptation, keep this one in check (see the figures).
    adaptive = storm(cloudeye, adaptive=True, limits={"max_per_second": 20})
    assert adaptive.accepted == 5000 and adaptive.delivered_requests == 50, adaptive
    assert adaptive.waste < 1


def test_limit_holds_until_retry_after_has_passed(monkeypatch) -> None:
    from forwarder import client

    clock = [100.0]
    monkeypatch.setattr(client, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    limit = AdaptiveLimit(8)
    for _ in range(8):
        limit.acquire()
    limit.release(throttled=True, retry_after=2)  # 8 -> 4, no growth for 2 s
    for _ in range(3):
        limit.release(throttled=False)  # the others come back fine: still held
    assert limit.limit == 4
    clock[0] += 2.5
    limit.release(throttled=False)  # four in flight of four: full, and past the hold
    assert limit._limit == pytest.approx(4.25)  # + 1/limit


def test_a_success_that_did_not_need_the_limit_does_not_raise_it() -> None:
    limit = AdaptiveLimit(8)
    limit.acquire()
    limit.release(throttled=True)  # 8 -> 4
    limit.acquire()  # one in flight of four allowed: the limit is not what holds anyone back
    limit.release(throttled=False)
    assert limit._limit == 4.0
