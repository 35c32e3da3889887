"""Published FunctionGraph trigger shapes (tests/events/) through index.handler to the served emulator.

Supported triggers deliver every event they carry; the ones the forwarder does not take (DDS, OBS,
LTS, CTS) answer with one rejection that names the trigger, store nothing and raise nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import index
from tests.support.entry_helpers import FakeContext, log_lines, stored_names
from tests.support.golden import EVENTS_INSIDE, load_event

NOT_TAKEN = {"dds": "DDS", "obs": "OBS", "lts": "LTS", "cts": "CTS"}


@pytest.fixture
def to_cloudeye(to_cloudeye, monkeypatch):
    """With the ingest token the API Gateway payloads' headers carry."""
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "ingest-demo-token")
    return to_cloudeye


def fired_now(payload: dict) -> dict:
    """A timer payload as FunctionGraph sends it when it fires now (its time in ISO 8601)."""
    if payload.get("trigger_type") == "TIMER":
        payload["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return payload


@pytest.mark.parametrize("name", sorted(EVENTS_INSIDE))
def test_every_event_of_a_supported_trigger_reaches_cloud_eye(name: str, to_cloudeye, forwarder_logs) -> None:
    answer = index.handler(fired_now(load_event(name)), FakeContext(request_id=f"shape-{name}"))
    expected = EVENTS_INSIDE[name]
    assert stored_names(to_cloudeye) == expected
    if name.startswith("apig"):
        assert answer["statusCode"] == 201, answer
        assert json.loads(answer["body"])["accepted"] == len(expected)
    else:
        counts = (answer["received"], answer["accepted"], answer["rejected"])
        assert counts == (len(expected), len(expected), 0)
    (line,) = log_lines(forwarder_logs.records, "invocation")
    assert (line["accepted"], line["rejected"], line["failed"]) == (len(expected), 0, 0)


def test_the_console_template_is_noted_once(to_cloudeye, forwarder_logs) -> None:
    index.handler(load_event("apig_console"), FakeContext(request_id="console"))
    (note,) = log_lines(forwarder_logs.records, "note")
    assert "isBase64Encoded" in note["note"]


def test_a_heartbeat_timer_stores_its_event_at_the_firing_time(to_cloudeye) -> None:
    payload = fired_now(load_event("timer"))
    fired_ms = int(datetime.fromisoformat(payload["time"]).timestamp() * 1000)
    index.handler(payload, FakeContext())
    (stored,) = to_cloudeye.stored_events()
    assert stored["event"]["time"] == fired_ms


@pytest.mark.parametrize("name", sorted(NOT_TAKEN))
def test_an_unsupported_trigger_is_one_clear_rejection(name: str, to_cloudeye, forwarder_logs) -> None:
    answer = index.handler(load_event(name), FakeContext())
    assert answer["trigger"] == name
    assert (answer["received"], answer["accepted"], answer["rejected"], answer["failed"]) == (1, 0, 1, 0)
    assert to_cloudeye.stored_events() == []
    (reject,) = log_lines(forwarder_logs.records, "rejected")
    assert reject["trigger"] == name
    assert reject["errors"][0]["field"] == "(payload)"
    assert reject["reason"].startswith(f"(payload): a payload of the {NOT_TAKEN[name]} trigger")
    assert "it takes API Gateway" in reject["reason"]
    assert reject["raw"] == "null"  # the document, object or audit record itself is not logged


def test_a_timer_with_plain_text_is_one_rejection(to_cloudeye, forwarder_logs) -> None:
    answer = index.handler(fired_now(load_event("timer_text")), FakeContext())
    assert (answer["trigger"], answer["received"], answer["rejected"]) == ("timer", 1, 1)
    assert to_cloudeye.stored_events() == []
    (reject,) = log_lines(forwarder_logs.records, "rejected")
    assert reject["reason"].startswith("(message): the timer's user_event is not JSON")
    assert reject["position"] == {"timer": "Timer_001"}
