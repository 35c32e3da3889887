"""Every post the client makes is an attempt: counted, bounded by CLOUDEYE_MAX_ATTEMPTS (regressions).

The emulator's werkzeug server closes every connection after answering, so the fault run never
reuses one; these use the keep-alive loopback server instead.
"""

from __future__ import annotations

import time

import pytest

from forwarder import report_events
from forwarder.settings import Settings
from tests.reliability.harness import PROJECT_ID, now_ms, valid_event
from tests.support.loopback import Answer, LoopbackServer

pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


def send(server: LoopbackServer, tag: str, attempts: int = 2):
    import random

    settings = Settings.from_env(
        environ={
            "CLOUDEYE_ENDPOINT": server.url,
            "HUAWEICLOUD_SDK_AK": "AK",
            "HUAWEICLOUD_SDK_SK": "SK",
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT_ID,
            "CLOUDEYE_MAX_ATTEMPTS": str(attempts),
        }
    )
    events = [valid_event(random.Random(1), tag, 0, now_ms())]
    return report_events(events, settings=settings, sleep=lambda _s: None)


def test_a_drop_on_a_kept_alive_connection_is_a_counted_attempt() -> None:
    # GIVEN a connection kept alive by a first, successful invocation
    script = [Answer(201)] + [Answer(drop=True)] * 5
    with LoopbackServer(script) as server:
        assert send(server, "warm").accepted == 1
        # WHEN the server takes the next request on it and drops the connection, every time
        report = send(server, "dropped", attempts=2)
        posts = len(server.requests) - 1

    # THEN the client posted at most CLOUDEYE_MAX_ATTEMPTS times, and counted every post
    # (it used to resend once on a fresh connection without counting: 3 posts, 2 counted)
    assert report.failed == 1
    assert posts == report.requests == 2
    assert report.retries == 1


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    # The server answers, then closes the kept-alive connection: the next invocation must notice
    # before sending (no attempt spent, no retry), as before the change above.
    with LoopbackServer([Answer(201, close_after=True), Answer(201)]) as server:
        assert send(server, "first").accepted == 1
        time.sleep(0.05)  # the server's FIN reaches the client
        second = send(server, "second")
    assert second.accepted == 1 and second.requests == 1 and second.retries == 0
    assert len(server.connections) == 2
