"""The adapter layer every entry shares: the platform context read safely, the deadlines, logging
set up by the entry (never by the library), the item cap handed to the extractors."""

from __future__ import annotations

import logging
import time

import pytest

from forwarder import entry, logs
from forwarder.settings import Settings
from tests.support.entry_helpers import FakeContext


class BrokenContext:
    def getRequestID(self) -> str:
        raise RuntimeError("no id today")

    def getRemainingTimeInMilliSeconds(self) -> str:
        return "soon"

    getSecurityAccessKey = None  # present but not callable


@pytest.mark.parametrize(
    ("context", "method", "expected"),
    [
        (FakeContext(request_id="  fg-9 "), "getRequestID", "fg-9"),
        (BrokenContext(), "getRequestID", None),
        (BrokenContext(), "getSecurityAccessKey", None),
        (object(), "getRequestID", None),
        (None, "getRequestID", None),
    ],
)
def test_context_text_never_raises(context, method: str, expected) -> None:
    assert entry.context_text(context, method) == expected


@pytest.mark.parametrize("remaining", [float("nan"), float("inf"), "soon", None])
def test_an_unusable_clock_gives_no_deadline(remaining) -> None:
    assert entry.remaining_s(FakeContext(remaining_ms=remaining)) is None
    assert entry.queue_deadline(FakeContext(remaining_ms=remaining)) is None


def seconds_left(deadline: float | None) -> float:
    assert deadline is not None
    return deadline - time.monotonic()


def test_queue_deadline_keeps_the_margin() -> None:
    long = seconds_left(entry.queue_deadline(FakeContext(remaining_ms=30_000)))
    short = seconds_left(entry.queue_deadline(FakeContext(remaining_ms=1_000)))
    assert 27.5 < long <= 30 - entry.SAFETY_MARGIN_S
    assert 0.5 < short <= 1 - 1 * entry.SAFETY_MARGIN_SHARE  # a fifth of a short budget
    assert seconds_left(entry.queue_deadline(FakeContext(remaining_ms=-5))) <= 0


def test_http_deadline_is_the_sooner_of_the_setting_and_the_platform() -> None:
    assert 24 < seconds_left(entry.http_deadline(25)) <= 25
    assert 7 < seconds_left(entry.http_deadline(25, FakeContext(remaining_ms=10_000))) <= 8
    assert 2 < seconds_left(entry.http_deadline(3, FakeContext(remaining_ms=60_000))) <= 3


def test_the_library_installs_no_handler_the_entry_does(monkeypatch) -> None:
    logger = logging.getLogger(logs.LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    logs.log_line(logging.WARNING, "library line")
    assert logger.handlers == []
    entry.setup_logging()
    entry.setup_logging()
    assert len(logger.handlers) == 1 and logger.level == logging.INFO


def test_the_item_cap_reaches_the_extractor() -> None:
    seen: list[int] = []

    def extract(*, max_items: int) -> list:
        seen.append(max_items)
        return []

    settings = Settings(max_items=7)
    invocation = entry.begin("kafka", "item-cap")
    report = entry.run_batch(
        invocation, extract, settings_factory=lambda: settings, deadline_for=lambda _settings: None
    )
    assert seen == [7]
    assert report.received == 0
