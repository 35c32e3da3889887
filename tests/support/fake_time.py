"""A monotonic clock for client tests that only moves when the client sleeps."""

from __future__ import annotations

import time


class FakeTime:
    """A monotonic clock that only moves when the client sleeps: waits replay exactly."""

    def __init__(self) -> None:
        self.now = time.monotonic()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
