"""How the client uses its pacer: a cold client's slow start, a warm one's full speed, and a turn
booked before a cut booked again at the cut rate. A fake monotonic clock moves only when the
client sleeps, so every wait is exact."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from forwarder.batching import Chunk
from forwarder.client import CloudEyeClient
from forwarder.events import now_ms
from forwarder.settings import Settings
from tests.support.fake_time import FakeTime
from tests.support.loopback import Answer, LoopbackServer


def settings_for(server: LoopbackServer) -> Settings:
    return Settings.from_env(
        environ={
            "HUAWEICLOUD_SDK_AK": "AKPACINGCLIENT0000001",
            "HUAWEICLOUD_SDK_SK": "sk-pacing-client-0000000000000000000000",
            "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
            "CLOUDEYE_ENDPOINT": server.url,
            "CLOUDEYE_MAX_CONCURRENCY": "1",
        }
    )


def chunk(index: int) -> Chunk:
    event: dict[str, Any] = {
        "event_name": f"e{index}",
        "event_source": "app.pacing",
        "time": now_ms(),
        "detail": {"content": "x", "event_state": "normal", "event_level": "Minor", "event_user": "t"},
    }
    return Chunk((index,), json.dumps([event]).encode())


def test_a_cold_client_spaces_its_first_requests_and_a_warm_one_does_not() -> None:
    with LoopbackServer([Answer(201)]) as server:
        clock = FakeTime()
        cold = CloudEyeClient(settings_for(server), sleep=clock.sleep, rng=random.Random(1), monotonic=clock)
        assert all(outcome.ok for outcome in cold.send([chunk(i) for i in range(4)]))
        # 10/s doubled per success; one at a time, so each turn is booked after the success
        # before it: 20/s, 40/s, 80/s (the fake clock does not move during an exchange).
        assert clock.sleeps == pytest.approx([0.05, 0.025, 0.0125])

        clock = FakeTime()
        warm = CloudEyeClient(settings_for(server), sleep=clock.sleep, rng=random.Random(1), monotonic=clock)
        assert all(outcome.ok for outcome in warm.send([chunk(i) for i in range(4)]))
        assert clock.sleeps == []  # the pool's last send met no 429


def test_a_turn_booked_before_a_cut_is_booked_again_at_the_cut_rate() -> None:
    with LoopbackServer([Answer(201)]) as server:
        clock = FakeTime()
        client = CloudEyeClient(
            settings_for(server), sleep=clock.sleep, rng=random.Random(2), monotonic=clock
        )
        cut: list[float] = []

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            if not cut:  # another worker's request meets a 429 while this one waits for its turn
                client.pacer.throttled(sent_at=clock.now, retry_after=1.0)
                cut.append(clock.now)

        client.sleep = sleep
        assert all(outcome.ok for outcome in client.send([chunk(0), chunk(1)]))

    assert client.pacer.cuts == 1
    # Slow start: 0.05 s (20/s after the first success); then the cut at 1.125/s moves the turn
    # past the Retry-After.
    assert clock.sleeps[0] == pytest.approx(0.05)
    assert len(clock.sleeps) == 2
    jitter = clock.sleeps[1] - 1.0
    assert 0.0 <= jitter <= 1 / 1.125
    assert len(server.requests) == 2
