"""Delivery semantics end to end, against the served emulator: one refused event never costs the
batch, no valid event is refused, every event ends delivered, rejected with a reason, or handed
back; late events, copies and the deadline.

Kafka batches go through ``index.handler``; HTTP bodies through the served functions-framework
``ingest`` entry. The emulator knows one resource group and refuses a whole request naming any
other, as Cloud Eye does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import index
from forwarder.events import WINDOW_PAST_MS
from forwarder.queue_ingest import DeliveryError
from tests.support.entry_helpers import FakeContext, log_lines, make_events, now_ms
from tests.support.loopback import Answer, LoopbackServer

KNOWN_GROUP = "rg15221211517051YWWkEnVd"
UNKNOWN_GROUP = "rg00000000000000NoSuchGp"
VALID = 250


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


@pytest.fixture
def to_cloudeye(cloudeye, monkeypatch):
    for name, value in cloudeye.forwarder_env().items():
        monkeypatch.setenv(name, value)
    cloudeye.set_resource_groups([KNOWN_GROUP])
    return cloudeye


@pytest.fixture
def logs(caplog):
    caplog.set_level("INFO", logger="forwarder")
    return caplog


def kafka(messages: list[str]) -> dict[str, Any]:
    return {"trigger_type": "KAFKA", "records": [{"messages": messages, "topic_id": "events"}]}


def edge_events(now: int) -> list[dict[str, Any]]:
    """Values Cloud Eye's current documentation allows (and the 2023 page did not)."""
    base = {"event_name": "EdgeCase", "event_source": "tests.edges", "time": now}
    return [
        {**base, "detail": {"resource_name": "web-01.example.com", "resource_id": "edge-1"}},
        {**base, "detail": {"resource_name": "db@prod", "resource_id": "edge-2"}},
        {**base, "detail": {"resource_name": "my vm", "resource_id": "edge-3"}},
        {**base, "detail": {"resource_name": "数据库", "resource_id": "edge-4"}},
        {**base, "detail": {"event_user": "", "resource_id": "edge-5"}},
        {**base, "detail": {"group_id": KNOWN_GROUP, "resource_id": "edge-6"}},
    ]


def poisoned_batch() -> tuple[list[str], list[dict[str, Any]]]:
    """250 valid events, the edge values, one event naming an unknown resource group (only Cloud
    Eye can tell) and one whose time is a 4,300-digit negative integer; messages and the valid ones."""
    now = now_ms()
    valid = make_events(VALID, now=now) + edge_events(now)
    unknown_group = {**valid[0], "event_name": "UnknownGroup", "detail": {"group_id": UNKNOWN_GROUP}}
    huge_time_text = json.dumps({**valid[1], "event_name": "HugeTime"}).replace(
        f'"time": {now}', '"time": -' + "9" * 4300
    )
    messages = [json.dumps(event) for event in valid]
    messages.insert(100, json.dumps(unknown_group))
    messages.insert(200, huge_time_text)
    return messages, valid


def identities(events: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(event, sort_keys=True, ensure_ascii=False) for event in events)


# --- one refused event never costs the batch ------------------------------------------------------


def test_a_poisoned_kafka_batch_delivers_every_valid_event_once(to_cloudeye, logs) -> None:
    messages, valid = poisoned_batch()

    answer = index.handler(kafka(messages), FakeContext())  # returns: nothing to redeliver

    assert (answer["received"], answer["accepted"], answer["rejected"], answer["failed"]) == (
        len(valid) + 2,
        len(valid),
        2,
        0,
    )
    stored = [item["event"] for item in to_cloudeye.stored_events()]
    assert identities(stored) == identities(valid)  # every valid event, each once
    rejects = {line["position"]["message"]: line for line in log_lines(logs.records, "rejected")}
    assert set(rejects) == {100, 200}
    assert rejects[100]["by"] == "cloudeye" and "400" in rejects[100]["reason"]
    assert rejects[200]["by"] == "forwarder" and rejects[200]["reason"].startswith("time: ")
    # 256 events in 3 requests; isolating one refused event among 100 costs about 2 x log2(100).
    assert answer["requests"] <= 3 + 2 * 7


def test_the_same_batch_over_http_answers_207_with_every_result(to_cloudeye) -> None:
    from tests.support.ingest_server import IngestServer

    messages, valid = poisoned_batch()
    body = ("[" + ",".join(messages) + "]").encode()
    with IngestServer("ingest") as server:
        reply = server.post(body)

    assert reply.status == 207
    answer = reply.json()
    assert (answer["accepted"], answer["rejected"], answer["failed"]) == (len(valid), 2, 0)
    refused, huge = answer["results"][100], answer["results"][200]
    assert refused["status"] == "rejected" and refused["by"] == "cloudeye"
    assert refused["errors"][0]["message"].startswith("Cloud Eye answered 400")
    assert huge["status"] == "rejected" and huge["by"] == "forwarder"
    assert huge["errors"][0]["field"] == "time"
    stored = [item["event"] for item in to_cloudeye.stored_events()]
    assert identities(stored) == identities(valid)


# --- late events ----------------------------------------------------------------------------------


def two_hours_old() -> dict[str, Any]:
    event = make_events(1)[0]
    event["time"] -= 2 * 3_600_000
    return event


def test_a_two_hour_old_event_is_rejected_by_default_naming_the_setting(to_cloudeye, logs) -> None:
    answer = index.handler(kafka([json.dumps(two_hours_old())]), FakeContext())
    assert (answer["accepted"], answer["rejected"]) == (0, 1)
    [reject] = log_lines(logs.records, "rejected")
    assert "older than Cloud Eye accepts" in reject["reason"]
    assert "FORWARDER_LATE_EVENTS=retime" in reject["reason"]
    assert to_cloudeye.stored_events() == []


def test_with_retime_a_two_hour_old_event_is_stored_with_its_original_time_kept(
    to_cloudeye, monkeypatch
) -> None:
    monkeypatch.setenv("FORWARDER_LATE_EVENTS", "retime")
    old = two_hours_old()
    started = now_ms()
    answer = index.handler([old], FakeContext())  # a direct invocation answers with the report

    [result] = answer["results"]
    assert result["status"] == "accepted" and result["retimed_from"] == old["time"]
    [stored] = [item["event"] for item in to_cloudeye.stored_events()]
    assert started - WINDOW_PAST_MS <= stored["time"] <= now_ms() + 1000
    assert stored["detail"]["content"].startswith(old["detail"]["content"])
    assert stored["detail"]["content"].endswith(f"= {old['time']} ms]")


# --- copies ---------------------------------------------------------------------------------------


def test_an_exact_copy_inside_one_batch_reaches_cloud_eye_once(to_cloudeye) -> None:
    event = make_events(1)[0]
    answer = index.handler(kafka([json.dumps(event), json.dumps(event)]), FakeContext())

    assert (answer["accepted"], answer["requests"]) == (2, 1)
    assert [request["events"] for request in to_cloudeye.requests_log()] == [1]
    assert len(to_cloudeye.stored_events()) == 1
    assert to_cloudeye.stats()["duplicates"] == 0  # never even sent twice


# --- the deadline ---------------------------------------------------------------------------------

REMAINING_MS = 2000
MARGIN_S = 1.0  # scheduling noise on a shared machine; the budget itself is 2 s


def point_forwarder_at(url: str, monkeypatch, **settings: str) -> None:
    """The forwarder's environment for a test credential set and ``url`` as Cloud Eye,
    with extra ``CLOUDEYE_*`` settings (``max_attempts="1"``)."""
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", url)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "p1")
    for name, value in settings.items():
        monkeypatch.setenv(f"CLOUDEYE_{name.upper()}", value)


def test_a_slow_drip_upstream_cannot_hold_the_handler_past_its_time(monkeypatch) -> None:
    from tests.test_client import slow_drip

    with slow_drip() as server:
        point_forwarder_at(server.url, monkeypatch)
        started = time.monotonic()
        batch = kafka([json.dumps(e) for e in make_events(3)])
        with pytest.raises(DeliveryError, match="no whole answer"):
            index.handler(batch, FakeContext(remaining_ms=REMAINING_MS))
        elapsed = time.monotonic() - started
    assert elapsed <= REMAINING_MS / 1000 + MARGIN_S


def test_a_429_storm_cannot_hold_the_handler_past_its_time(monkeypatch) -> None:
    with LoopbackServer([Answer(429, retry_after="1")]) as server:
        point_forwarder_at(server.url, monkeypatch, max_request_bytes="1024")
        events = make_events(8)
        for event in events:
            event["detail"]["content"] = "x" * 700  # one event per request: eight requests
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="out of time") as raised:
            index.handler(kafka([json.dumps(e) for e in events]), FakeContext(remaining_ms=REMAINING_MS))
        elapsed = time.monotonic() - started
    assert raised.value.counts["failed"] == 8
    assert raised.value.counts["throttled"] >= 1
    assert elapsed <= REMAINING_MS / 1000 + MARGIN_S


# --- what the HTTP entry tells its caller ---------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "answered"),
    [("7", "7"), ("3600", "30"), ("1e400", "30"), ("0.2", "1"), (None, "5")],
    ids=["seconds", "clamped", "huge", "under-one", "none: the default"],
)
def test_the_503_retry_after_is_cloud_eyes_clamped_value(upstream, answered, monkeypatch) -> None:
    from tests.support.ingest_server import IngestServer

    with LoopbackServer([Answer(503, retry_after=upstream)]) as cloud_eye, IngestServer("ingest") as entry:
        point_forwarder_at(cloud_eye.url, monkeypatch, max_attempts="1")
        reply = entry.post(make_events(2))
    assert reply.status == 503
    assert reply.headers["retry-after"] == answered


@pytest.mark.parametrize(("status", "answered"), [(401, 502), (404, 502), (400, 400), (503, 503)])
def test_what_cloud_eye_answered_decides_the_entrys_status(status, answered, monkeypatch) -> None:
    from tests.support.ingest_server import IngestServer

    with LoopbackServer([Answer(status)]) as cloud_eye, IngestServer("ingest") as entry:
        point_forwarder_at(cloud_eye.url, monkeypatch, max_attempts="1")
        reply = entry.post(make_events(1))
    assert reply.status == answered  # 400: the only event was refused by Cloud Eye: nothing valid
    [result] = reply.json()["results"]
    assert result["status"] == {502: "failed", 503: "failed", 400: "rejected"}[answered]
