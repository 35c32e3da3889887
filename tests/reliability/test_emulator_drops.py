"""The emulator's dropped-connection fault is quiet and exact (regression found by the fault run)."""

from __future__ import annotations

import contextlib
import http.client
import logging
import random

from tests.reliability.harness import now_ms, valid_event


def test_dropping_before_storing_logs_no_internal_error(cloudeye, caplog) -> None:
    # Before: when a drop hit a post whose body werkzeug had not buffered yet, functions-framework's
    # after-request hook read the body from the shut socket and logged "Exception on /V1.0/..."
    # with two tracebacks (about one drop in six, for 100-event posts).
    caplog.set_level(logging.ERROR)
    rng = random.Random(3)
    cloudeye.set_faults(kind="drop", count=20)
    for attempt in range(20):
        body = [valid_event(rng, f"drop{attempt}", index, now_ms()) for index in range(100)]
        with contextlib.suppress(http.client.HTTPException, OSError):  # dropped, as asked
            cloudeye.post_events(body)
        # A client that has seen its connection closed finds the drop counted already.
        assert cloudeye.stats()["dropped"] == attempt + 1
    assert cloudeye.stats()["events_stored"] == 0
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
