"""Exact edges of the watchdog, the adaptive limit, the late-event split and the request path.

Pins, without sockets or real waits:

- the watchdog's thread is a daemon named ``cloudeye-watchdog``, woken only when a new deadline
  comes before every armed one (not for a later or an equal one), and ``disarm`` drops finished
  entries from the top of its heap at once;
- ``AdaptiveLimit`` grows at the very moment a 429's hold ends, grows from the start of the
  monotonic clock, and a zero timeout on a full limit gives up without waiting;
- events that left the time window while waiting become a ``late`` part that is not transient;
- an endpoint whose path ends in a slash (hidden behind a tab ``urlsplit`` drops) gives no ``//``.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from forwarder import client as client_module
from forwarder.batching import Chunk
from forwarder.client import LATE_WHILE_WAITING, AdaptiveLimit, ChunkOutcome, CloudEyeClient, Part
from forwarder.events import WINDOW_PAST_MS
from forwarder.settings import Settings

PROJECT = "0123456789abcdef0123456789abcdef"
SETTINGS_ENV = {
    "HUAWEICLOUD_SDK_AK": "watch-access-key",
    "HUAWEICLOUD_SDK_SK": "watch-secret-key",
    "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
    "CLOUDEYE_ENDPOINT": "http://127.0.0.1:9",  # never connected to
}


class CountingCondition(threading.Condition):
    """A condition that counts ``notify`` calls and records each ``wait`` timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = 0
        self.waits: list[float | None] = []

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


class FakeConn:
    def __init__(self) -> None:
        self.sock = SimpleNamespace(shutdown=lambda how: None)


# --- the watchdog ---------------------------------------------------------------------------------


class NotStarted(threading.Thread):
    """The watchdog's thread as built, never started: a mutant's non-daemon thread would keep
    the test process alive forever."""

    def start(self) -> None:
        pass


def test_the_watchdog_thread_is_a_daemon_named_cloudeye_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_threading = SimpleNamespace(Thread=NotStarted, Condition=threading.Condition)
    monkeypatch.setattr(client_module, "threading", fake_threading)
    watchdog = client_module._Watchdog()
    entry = watchdog.arm(client_module.time.monotonic() + 3600, FakeConn())  # type: ignore[arg-type]
    thread = watchdog._thread
    assert isinstance(thread, NotStarted)
    assert thread.name == "cloudeye-watchdog"
    assert thread.daemon is True  # never keeps the process alive at exit
    assert watchdog.disarm(entry) is False


def test_the_watchdog_is_woken_only_for_a_deadline_before_every_armed_one() -> None:
    watchdog = client_module._Watchdog()
    cond = CountingCondition()
    watchdog._cond = cond
    base = client_module.time.monotonic() + 3600
    entries = [watchdog.arm(base, FakeConn())]  # type: ignore[arg-type]
    assert cond.notified == 1  # the first deadline: the thread must learn of it

    entries.append(watchdog.arm(base + 10, FakeConn()))  # type: ignore[arg-type]
    assert cond.notified == 1  # later than the earliest: the thread's sleep is still right

    entries.append(watchdog.arm(base, FakeConn()))  # type: ignore[arg-type]
    assert cond.notified == 1  # the same time as the earliest: no need to wake either

    entries.append(watchdog.arm(base - 10, FakeConn()))  # type: ignore[arg-type]
    assert cond.notified == 2  # earlier than every armed one: the thread must sleep less

    assert [watchdog.disarm(entry) for entry in entries] == [False, False, False, False]


def test_disarming_drops_finished_entries_from_the_top_of_the_heap_at_once() -> None:
    watchdog = client_module._Watchdog()
    base = client_module.time.monotonic() + 3600
    first = watchdog.arm(base, FakeConn())  # type: ignore[arg-type]
    second = watchdog.arm(base + 10, FakeConn())  # type: ignore[arg-type]

    assert watchdog.disarm(second) is False
    assert [entry[0] for entry in watchdog._heap] == [base, base + 10]  # not on top: stays

    assert watchdog.disarm(first) is False
    assert watchdog._heap == []  # both finished: the thread has nothing to wake for


# --- the adaptive limit ---------------------------------------------------------------------------


class Clock:
    """``time`` as ``forwarder.client`` sees it: ``monotonic`` returns the given values in turn,
    then the last one."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def monotonic(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def test_the_limit_grows_at_the_very_moment_a_429_hold_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(100.0)
    monkeypatch.setattr(client_module, "time", clock)
    limit = AdaptiveLimit(4, start=2)
    assert limit.acquire() and limit.acquire()
    limit.release(throttled=True, retry_after=5.0)  # limit 1, held until 105
    assert limit.limit == 1

    clock.values = [105.0]  # exactly the end of the hold
    limit.release(throttled=False)  # found the limit (1) full: grows by 1/1
    assert limit.limit == 2
    assert limit._limit == 2.0


def test_the_limit_grows_from_the_start_of_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "time", Clock(0.0))
    limit = AdaptiveLimit(4, start=1)
    assert limit.acquire()
    limit.release(throttled=False)  # full, no 429 yet: slow start adds one
    assert limit._limit == 2.0


def test_a_zero_timeout_on_a_full_limit_gives_up_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    # The clock stands still for the first two readings (no time left exactly), then moves on,
    # so a wait would not spin forever.
    monkeypatch.setattr(client_module, "time", Clock(10.0, 10.0, 11.0))
    limit = AdaptiveLimit(1)
    cond = CountingCondition()
    limit._cond = cond
    assert limit.acquire() is True
    assert limit.acquire(timeout=0) is False
    assert cond.waits == []


# --- late events and the request path -------------------------------------------------------------


def make_client(clock_ms: Any = None, **env: str) -> CloudEyeClient:
    settings = Settings.from_env(environ={**SETTINGS_ENV, **env})
    if clock_ms is None:
        return CloudEyeClient(settings)
    return CloudEyeClient(settings, clock_ms=clock_ms)


def test_events_that_left_the_window_while_waiting_are_a_late_part_not_a_transient_one() -> None:
    now = 10_000_000_000_000
    client = make_client(clock_ms=lambda: now)
    piece = Chunk((7, 8), b'[{"a":1},{"b":2}]', (now - WINDOW_PAST_MS - 1, now))
    outcome = ChunkOutcome(piece)

    kept = client._without_late(piece, outcome)

    assert kept == Chunk((8,), b'[{"b":2}]', (now,))
    assert outcome.parts == [Part((7,), "late", error=LATE_WHILE_WAITING, transient=False)]
    assert outcome.parts[0].transient is False  # the pipeline does not send it again


def test_a_slash_before_a_tab_in_the_endpoint_path_gives_no_double_slash() -> None:
    # urlsplit drops the tab, so the path ends in a slash only the client's own strip removes.
    client = make_client(CLOUDEYE_ENDPOINT="http://127.0.0.1:9/p/\t/")
    assert client.path == f"/p/V1.0/{PROJECT}/events"
