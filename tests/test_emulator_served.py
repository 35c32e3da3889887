"""The emulator served over a real socket: the official SDK, faults, rate limits, the page, and
the forwarder's own client end to end."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support.emulator_server import EmulatorServer


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(name: str = "DiskFull", *, at: int | None = None, **detail: Any) -> dict[str, Any]:
    return {
        "event_name": name,
        "event_source": "ops.Storage",
        "time": now_ms() - 1_000 if at is None else at,
        "detail": {"event_type": "EVENT.CUSTOM", **detail},
    }


# --- the official SDK --------------------------------------------------------------------------


def test_official_sdk_creates_events_and_finds_them_with_both_query_apis(cloudeye: EmulatorServer) -> None:
    from huaweicloudsdkces.v1.model import (
        CreateEventsRequest,
        CreateEventsRequestBody,
        EventItemDetail,
        ListEventDetailRequest,
        ListEventsRequest,
    )

    client = cloudeye.sdk_client()
    occurred = now_ms() - 5_000
    body = [
        CreateEventsRequestBody(
            event_name="systemInvaded",
            event_source="financial.System",
            time=occurred + i,
            detail=EventItemDetail(
                content="The financial system was invaded",
                resource_id="1234567890sjgggad",
                resource_name="ecs001",
                event_state="normal",
                event_level="Major",
                event_user=user,
                event_type="EVENT.CUSTOM",
            ),
        )
        for i, user in enumerate(["xiaokong", "xihong"])
    ]

    created = client.create_events(CreateEventsRequest(body=body))
    listed = client.list_events(
        ListEventsRequest(event_type="EVENT.CUSTOM", _from=occurred - 60_000, to=now_ms() + 60_000)
    )
    detail = client.list_event_detail(
        ListEventDetailRequest(event_name="systemInvaded", event_type="EVENT.CUSTOM", limit=10)
    )

    assert created.status_code == 201
    ids = [item.event_id for item in created.body]
    assert len(set(ids)) == 2 and all(i.startswith("ev") and len(i) == 25 for i in ids)
    assert [item.event_name for item in created.body] == ["systemInvaded", "systemInvaded"]
    assert listed.meta_data.total == 1
    assert listed.events[0].event_name == "systemInvaded"
    assert listed.events[0].event_count == 2
    assert listed.events[0].latest_occur_time == occurred + 1
    assert detail.meta_data.total == 2
    assert sorted(detail.event_users) == ["xiaokong", "xihong"]
    assert detail.event_sources == ["financial.System"]
    assert sorted(info.event_id for info in detail.event_info) == sorted(ids)
    assert detail.event_info[0].detail.resource_name == "ecs001"
    assert len(cloudeye.stored_events()) == 2


def test_official_sdk_with_a_wrong_secret_key_gets_401(cloudeye: EmulatorServer) -> None:
    from huaweicloudsdkces.v1.model import CreateEventsRequest, CreateEventsRequestBody, EventItemDetail
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    client = cloudeye.sdk_client(secret_key="not-the-secret-key")
    request = CreateEventsRequest(
        body=[CreateEventsRequestBody("diskFull", "ops.Storage", now_ms(), EventItemDetail())]
    )

    with pytest.raises(ClientRequestException) as caught:
        client.create_events(request)

    assert caught.value.status_code == 401
    assert caught.value.error_code == "APIGW.0301"
    assert caught.value.request_id
    assert cloudeye.stored_events() == []


# --- refusals over the socket ------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"secret_key": "wrong-secret"},
        {"moment": datetime.now(timezone.utc) - timedelta(minutes=20)},
        {"sign": False},
    ],
    ids=["wrong-sk", "stale-date", "no-auth"],
)
def test_unauthenticated_posts_are_refused_with_401(
    cloudeye: EmulatorServer, options: dict[str, Any]
) -> None:
    reply = cloudeye.post_events([event()], **options)

    assert reply.status == 401
    assert reply.json()["error_code"] == "APIGW.0301"
    assert reply.headers["x-request-id"] == reply.json()["request_id"]
    assert cloudeye.stored_events() == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([event(), event(event_level="Serious")], "event [1] detail.event_level"),
        ([], "this one holds 0"),
        ([event(f"E{i}") for i in range(101)], "this one holds 101"),
        ("{not json", "the body is not valid JSON"),
    ],
    ids=["invalid-event", "zero", "101", "not-json"],
)
def test_bad_bodies_are_refused_with_400_and_nothing_is_stored(
    cloudeye: EmulatorServer, body: Any, words: str
) -> None:
    reply = cloudeye.post_events(body)

    assert reply.status == 400
    assert reply.json()["error_code"] == "ces.0014"
    assert words in reply.json()["error_msg"]
    assert cloudeye.stored_events() == []
    assert cloudeye.stats()["events_stored"] == 0


# --- faults ------------------------------------------------------------------------------------


def test_status_fault_answers_the_next_posts_then_lets_them_through(cloudeye: EmulatorServer) -> None:
    cloudeye.set_faults({"status": 503, "count": 2, "delay_ms": 0, "retry_after": 1})

    replies = [cloudeye.post_events([event(f"Try{i}")]) for i in range(3)]

    assert [r.status for r in replies] == [503, 503, 201]
    assert replies[0].headers["retry-after"] == "1"
    assert replies[0].json()["error_code"] == "APIGW.0202"
    assert "retry-after" not in replies[2].headers
    assert [s["event"]["event_name"] for s in cloudeye.stored_events()] == ["Try2"]
    assert cloudeye.stats()["responses"] == {"503": 2, "201": 1}


def test_standing_delay_slows_every_answer(cloudeye: EmulatorServer) -> None:
    cloudeye.set_faults(delay_ms=300)

    started = time.monotonic()
    slow = cloudeye.post_events([event()])
    slow_elapsed = time.monotonic() - started
    cloudeye.clear_faults()
    started = time.monotonic()
    fast = cloudeye.post_events([event("Other")])
    fast_elapsed = time.monotonic() - started

    assert slow.status == fast.status == 201
    # A standing delay is a floor, never a race: the slow answer took at least that long, and
    # the answer after clearing it took less.
    assert slow_elapsed >= 0.3
    assert fast_elapsed < slow_elapsed


def test_max_concurrent_answers_429_with_retry_after(cloudeye: EmulatorServer) -> None:
    # GIVEN four slots, each post holding its slot for 500 ms
    cloudeye.set_faults(max_concurrent=4, delay_ms=500)
    barrier = threading.Barrier(8)
    replies: list[Any] = [None] * 8

    def post(i: int) -> None:
        barrier.wait()
        replies[i] = cloudeye.post_events([event(f"Parallel{i}")])

    # WHEN eight posts arrive at once
    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN at least four are throttled, and what was admitted is stored
    throttled = [r for r in replies if r.status == 429]
    accepted = [r for r in replies if r.status == 201]
    assert len(throttled) >= 4
    assert len(throttled) + len(accepted) == 8
    assert all(r.headers["retry-after"] == "1" for r in throttled)
    assert all(r.json()["error_code"] == "APIGW.0308" for r in throttled)
    assert len(cloudeye.stored_events()) == len(accepted)
    stats = cloudeye.stats()
    assert stats["throttled"] == len(throttled) and stats["peak_in_flight"] <= 4


def test_max_per_second_answers_429(cloudeye: EmulatorServer) -> None:
    cloudeye.set_faults(max_per_second=3)

    statuses = [cloudeye.post_events([event(f"Rate{i}")]).status for i in range(5)]

    assert statuses == [201, 201, 201, 429, 429]


def test_drop_fault_closes_the_connection_without_an_answer(cloudeye: EmulatorServer) -> None:
    import http.client

    cloudeye.set_faults(faults=[{"kind": "drop"}, {"kind": "drop", "store": True}])

    unanswered = event("StoredButUnanswered")

    with pytest.raises(http.client.RemoteDisconnected):
        cloudeye.post_events([event("Lost")])
    with pytest.raises(http.client.RemoteDisconnected):
        cloudeye.post_events([unanswered])
    after = cloudeye.post_events([unanswered])  # the resend: Cloud Eye's duplicate rule applies

    stored = cloudeye.stored_events()
    assert [s["event"]["event_name"] for s in stored] == ["StoredButUnanswered"]
    assert after.status == 201 and after.json()[0]["event_id"] == stored[0]["event_id"]
    assert cloudeye.stats()["dropped"] == 2


def test_slow_fault_answers_late_but_normally(cloudeye: EmulatorServer) -> None:
    cloudeye.set_faults(kind="slow", delay_ms=250)

    started = time.monotonic()
    reply = cloudeye.post_events([event()])

    assert time.monotonic() - started >= 0.25
    assert reply.status == 201
    assert len(cloudeye.stored_events()) == 1


# --- reset and the page ------------------------------------------------------------------------


def test_reset_empties_events_faults_and_counters(cloudeye: EmulatorServer) -> None:
    cloudeye.post_events([event()])
    cloudeye.set_faults(status=500, count=5)

    cloudeye.reset()

    assert cloudeye.stored_events() == []
    assert cloudeye.fault_plan()["faults"] == []
    assert cloudeye.stats()["posts_received"] == 0
    assert cloudeye.post_events([event()]).status == 201


def test_html_page_renders_the_stored_events(cloudeye: EmulatorServer) -> None:
    created = cloudeye.post_events([event("PageVisible", content="seen <on> the page"), event("Second")])

    reply = cloudeye.page()

    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert "PageVisible" in reply.text and "Second" in reply.text
    assert created.json()[0]["event_id"] in reply.text
    assert "seen &lt;on&gt; the page" in reply.text
    assert "Showing 2 of 2 stored event(s)" in reply.text


def test_the_fixture_starts_each_test_empty(cloudeye: EmulatorServer) -> None:
    assert cloudeye.stored_events() == []
    assert cloudeye.fault_plan() == {
        "delay_ms": 0,
        "max_concurrent": None,
        "max_per_second": None,
        "retry_after": 1,
        "faults": [],
    }


# --- the forwarder end to end ------------------------------------------------------------------


def test_forwarder_delivers_250_events_in_3_requests(cloudeye: EmulatorServer) -> None:
    import forwarder

    # GIVEN 250 distinct valid events and settings pointing at the served emulator
    base = now_ms() - 10_000
    items = [event(f"Bulk{i % 10}", at=base + i, resource_id=f"vol-{i}") for i in range(250)]
    settings = forwarder.Settings.from_env(environ=cloudeye.forwarder_env())

    # WHEN the forwarder reports them
    report = forwarder.report_events(items, settings=settings)

    # THEN all are accepted in three requests and the emulator holds all 250
    assert report.accepted == 250 and report.failed == 0 and report.rejected == 0
    assert report.requests == 3
    stored = cloudeye.stored_events()
    assert len(stored) == 250
    assert sorted(s["event"]["detail"]["resource_id"] for s in stored) == sorted(
        f"vol-{i}" for i in range(250)
    )
    assert {r["event_id"] for r in report.results} == {s["event_id"] for s in stored}
    posts = [r for r in cloudeye.requests_log() if r["method"] == "POST"]
    assert sorted(r["events"] for r in posts) == [50, 100, 100]
    assert all(r["status"] == 201 for r in posts)
