"""Pins behaviour that surviving mutants of the core modules showed untested.

- pipeline: in a slice with retimed events, an event that was not retimed is keyed for the
  same-event rule by its own time, so two such events at different times are not copies.
- pacing: a ``RateController`` is enabled and not slow-starting unless told otherwise.
- settings: an infinite number is refused by ``_number`` (for a variable ``check`` does not
  look at) and by ``check`` (for a field set directly); a bad ``FORWARDER_LATE_EVENTS`` is quoted
  to 40 characters; the proxy and CA checks (and their imports) run only when a CA bundle or an
  ``https_proxy`` variable is there.
- connection: a tunnel's proxy credentials go in a header spelled ``Proxy-Authorization``.
"""

from __future__ import annotations

import math
import os
import random
from typing import Any

import pytest

import forwarder.connection
from forwarder.connection import open_connection
from forwarder.pacing import RateController
from forwarder.pipeline import report_events
from forwarder.settings import Settings, SettingsError

NOW = 1_709_294_400_000
TWO_HOURS_MS = 2 * 3_600_000
PROJECT = "0123456789abcdef0123456789abcdef"


def event(name: str, when: int) -> dict[str, Any]:
    return {"event_name": name, "event_source": "app.orders", "time": when, "detail": {"content": "c"}}


# --- pipeline: copies in a slice with retimed events ----------------------------------------------


def test_events_at_different_times_are_not_copies_next_to_a_retimed_event() -> None:
    settings = Settings(project_id=PROJECT, endpoint="https://ces.example.com", late_events="retime")
    items = [event("old", NOW - TWO_HOURS_MS), event("fresh", NOW), event("fresh", NOW - 1000)]
    report = report_events(items, settings=settings, dry_run=True, clock=lambda: NOW)
    summary = [(r["status"], r.get("copy_of"), r.get("retimed_from")) for r in report.results]
    assert summary == [
        ("accepted", None, NOW - TWO_HOURS_MS),
        ("accepted", None, None),
        ("accepted", None, None),
    ]


# --- pacing: the controller's defaults ------------------------------------------------------------


def test_a_controller_is_not_paced_before_its_first_429_by_default() -> None:
    assert RateController(clock=lambda: 0.0, rng=random.Random(1)).rate == math.inf


def test_a_controller_cuts_on_a_429_by_default() -> None:
    controller = RateController(clock=lambda: 0.0, rng=random.Random(1))
    # Enabled, the retry waits exactly the Retry-After; disabled, it would wait a random extra.
    assert controller.throttled(sent_at=0.0, retry_after=1.0) == 1.0
    assert controller.cuts == 1
    assert controller.rate == 1.5 * 0.85  # FIRST_RATE * FIRST_DECREASE: nothing got through yet


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan"])
def test_a_timeout_that_is_not_finite_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ={"CLOUDEYE_TIMEOUT_S": raw})
    assert str(caught.value) == f"CLOUDEYE_TIMEOUT_S must be a finite number (got {raw!r})"


def test_an_infinite_deadline_given_directly_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(http_deadline_s=math.inf)
    assert str(caught.value) == "FORWARDER_HTTP_DEADLINE_S must be a positive number (got inf)"


def test_a_bad_late_events_value_is_quoted_to_40_characters() -> None:
    raw = "retime-" + "x" * 40
    with pytest.raises(SettingsError) as caught:
        Settings(late_events=raw)
    assert str(caught.value) == f"FORWARDER_LATE_EVENTS must be reject or retime (got {raw[:40]!r})"


def test_the_proxy_check_runs_only_with_an_https_proxy_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(
        forwarder.connection, "check_environment", lambda ca, endpoint=None: calls.append((ca, endpoint))
    )
    for name in list(os.environ):
        if name.lower() == "https_proxy":
            monkeypatch.delenv(name)
    monkeypatch.setenv("FORWARDER_UNRELATED", "1")  # other variables do not count
    Settings(endpoint="https://ces.example.com")
    assert calls == []
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    Settings(endpoint="https://ces.example.com")
    assert calls == [(None, "https://ces.example.com")]


# --- connection -----------------------------------------------------------------------------------


def test_the_tunnel_sends_proxy_credentials_as_proxy_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HTTPS_PROXY", "http://fwd-user:pw@proxy.internal:3128")
    conn = open_connection("https", "ces.example.com", 443, 1.0)
    assert (conn.host, conn.port) == ("proxy.internal", 3128)
    # http.client writes the names as given; the exact spelling is the one proxies document.
    assert conn._tunnel_headers == {"Proxy-Authorization": "Basic ZndkLXVzZXI6cHc="}  # type: ignore[attr-defined]
