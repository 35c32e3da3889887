"""The Cloud Eye client against a scripted loopback server: retries, deadline, keep-alive, limits."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from typing import Any

import pytest

from forwarder import client as client_module
from forwarder import pacing, report_events, signer
from forwarder.batching import Chunk
from forwarder.client import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    MIN_ATTEMPT_S,
    AdaptiveLimit,
    CloudEyeClient,
    describe_error,
    retry_after_s,
)
from forwarder.events import now_ms
from forwarder.settings import Settings
from tests.support.fake_time import FakeTime
from tests.support.loopback import Answer, LoopbackServer

AK, SK = "test-access-key", "test-secret-key"
PROJECT = "0123456789abcdef0123456789abcdef"


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


class Sleeps(list):
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def env(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CLOUDEYE_ENDPOINT": server.url,
        **extra,
    }


def events(count: int, content: str = "something happened") -> list[dict[str, Any]]:
    now = now_ms()
    return [
        {
            "event_name": f"event{i}",
            "event_source": "app.orders",
            "time": now,
            "detail": {"content": content, "event_type": "EVENT.CUSTOM"},
        }
        for i in range(count)
    ]


def run(server: LoopbackServer, items, sleeps=None, deadline=None, adaptive=True, **extra: str):
    settings = Settings.from_env(environ=env(server, **extra))
    return report_events(
        items,
        settings=settings,
        sleep=sleeps if sleeps is not None else Sleeps(),
        deadline=deadline,
        adaptive=adaptive,
    )


def error_of(report) -> str:
    """The one error text every result carries (a failure's error or a rejection's message)."""
    errors = {result.get("error") or result["errors"][0]["message"] for result in report.results}
    assert len(errors) == 1
    error = errors.pop()
    assert error
    return error


# --- the happy path, and what goes on the wire ---------------------------------------------------


def test_all_events_accepted_with_their_ids() -> None:
    with LoopbackServer() as server:
        report = run(server, events(3))

    body = report.to_dict()
    assert (body["received"], body["accepted"], body["rejected"], body["failed"]) == (3, 3, 0, 0)
    assert [r["event_id"] for r in body["results"]] == ["ev0-0", "ev0-1", "ev0-2"]
    assert [r["event_name"] for r in body["results"]] == ["event0", "event1", "event2"]
    assert report.requests == 1 and report.retries == 0
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == f"/V1.0/{PROJECT}/events"
    assert request.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert request.headers["X-Project-Id"] == PROJECT
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"
    assert [event["event_name"] for event in json.loads(request.body)] == ["event0", "event1", "event2"]


def _verify_on_server(request, secret_key: str) -> bool:
    parsed = signer.parse_authorization(request.headers["Authorization"])
    assert parsed is not None
    access, names, signature = parsed
    assert access == AK
    return signer.verify(
        "POST", request.path, [], request.headers, request.body, names, signature, secret_key
    )


def test_requests_are_signed_so_the_server_can_verify_them() -> None:
    with LoopbackServer() as server:
        run(server, events(2))

    [request] = server.requests
    _, names, _ = signer.parse_authorization(request.headers["Authorization"])
    assert names == ["content-type", "host", "x-project-id", "x-sdk-date"]
    assert "X-Security-Token" not in request.headers and "X-Auth-Token" not in request.headers
    assert _verify_on_server(request, SK)
    assert not _verify_on_server(request, SK + "x")


def test_security_token_is_sent_and_signed() -> None:
    with LoopbackServer() as server:
        run(server, events(1), HUAWEICLOUD_SDK_SECURITY_TOKEN="temporary-token/+=")

    [request] = server.requests
    assert request.headers["X-Security-Token"] == "temporary-token/+="
    _, names, _ = signer.parse_authorization(request.headers["Authorization"])
    assert "x-security-token" in names
    assert _verify_on_server(request, SK)
    # A different token than the one signed fails verification.
    tampered = dataclasses.replace(request, headers={**request.headers, "X-Security-Token": "other"})
    assert not _verify_on_server(tampered, SK)


def test_auth_token_used_when_no_access_key() -> None:
    with LoopbackServer() as server:
        settings = Settings.from_env(
            environ={
                "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
                "CLOUDEYE_ENDPOINT": server.url,
                "CLOUDEYE_AUTH_TOKEN": "iam-token-value",
            }
        )
        report = report_events(events(1), settings=settings, sleep=Sleeps())

    assert report.accepted == 1
    [request] = server.requests
    assert request.headers["X-Auth-Token"] == "iam-token-value"
    assert "Authorization" not in request.headers


# --- retries --------------------------------------------------------------------------------------


def test_429_with_retry_after_then_201_succeeds() -> None:
    sleeps = Sleeps()
    script = [Answer(429, {"error_code": "ces.0429", "error_msg": "too many"}, retry_after="2"), Answer(201)]
    with LoopbackServer(script) as server:
        report = run(server, events(2), sleeps)

    assert report.accepted == 2 and report.failed == 0
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body  # never rewritten on retry
    assert report.requests == 2 and report.retries == 1 and report.throttled == 1
    # The Retry-After (2 s); then, since these sleeps are recorded and the clock did not move, the
    # pacing's turn: the Retry-After plus at most one spacing at the rate the 429 set.
    spacing = 1 / (pacing.FIRST_RATE * pacing.FIRST_DECREASE)
    assert sleeps[0] == 2.0 and len(sleeps) == 2 and 2.0 <= sleeps[1] <= 2.0 + spacing


def test_retry_after_beyond_the_cap_is_clamped_to_30_seconds() -> None:
    sleeps = Sleeps()
    script = [Answer(503, {"error_code": "ces.0503", "error_msg": "busy"}, retry_after="3600")] * 4
    with LoopbackServer(script) as server:
        report = run(server, events(1), sleeps)

    assert report.failed == 1
    assert sleeps == [30.0, 30.0, 30.0]  # waited as asked, but never longer than 30 s
    assert len(server.requests) == 4
    assert report.retry_after == 30.0  # the caller sees the clamped value too


def test_a_retry_after_that_does_not_fit_the_deadline_ends_the_retries() -> None:
    sleeps = Sleeps()
    script = [Answer(503, {"error_code": "ces.0503", "error_msg": "busy"}, retry_after="3600")] * 4
    with LoopbackServer(script) as server:
        report = run(server, events(1), sleeps, deadline=time.monotonic() + 5)

    assert report.failed == 1 and sleeps == [] and len(server.requests) == 1
    assert "out of time" in error_of(report)
    assert report.retry_after == 30.0


def test_unexpected_error_while_sending_fails_the_chunk_without_its_text(monkeypatch) -> None:
    from forwarder import client

    def broken(self, body, timeout):
        raise ValueError("Invalid header value b'quoted-secret'")

    monkeypatch.setattr(client.CloudEyeClient, "_exchange", broken)
    with LoopbackServer([Answer(201)]) as server:
        report = run(server, events(3))

    assert report.failed == 3
    error = error_of(report)
    assert "ValueError" in error and "quoted-secret" not in error


def test_retry_after_as_http_date_falls_back_to_backoff() -> None:
    sleeps = Sleeps()
    script = [Answer(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"), Answer(201)]
    with LoopbackServer(script) as server:
        report = run(server, events(1), sleeps)
    assert report.accepted == 1
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status: int) -> None:
    with LoopbackServer([Answer(status), Answer(201)]) as server:
        report = run(server, events(1))
    assert report.accepted == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 409, 413, 422])
def test_an_event_cloud_eye_refuses_alone_is_rejected_by_cloud_eye_not_retried(status: int) -> None:
    sleeps = Sleeps()
    body = {"error_code": "ces.0014", "error_msg": "Some content in the request is invalid."}
    with LoopbackServer([Answer(status, body, request_id="req-400"), Answer(201)]) as server:
        report = run(server, events(1), sleeps)

    assert len(server.requests) == 1
    assert sleeps == []
    [result] = report.results
    assert result["status"] == "rejected" and result["by"] == "cloudeye"
    [error] = result["errors"]
    assert error["field"] == "(event)" and error["code"] == "ces.0014"
    assert error["message"] == (
        f"Cloud Eye answered {status} ces.0014: Some content in the request is invalid. (request id req-400)"
    )
    assert report.failed == 0


@pytest.mark.parametrize(
    ("status", "setting"),
    [
        (401, "HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK"),
        (403, "HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK"),
        (404, "CLOUDEYE_ENDPOINT"),
        (405, "CLOUDEYE_ENDPOINT"),
        (501, "CLOUDEYE_ENDPOINT"),
        (302, "CLOUDEYE_ENDPOINT"),
    ],
)
def test_a_configuration_error_stops_everything_with_one_clear_error(status: int, setting: str) -> None:
    sleeps = Sleeps()
    body = {"code": "APIGW.0301", "message": "Incorrect IAM authentication information"}
    items = events(3, content="x" * 700)  # three requests of one event each
    with LoopbackServer([Answer(status, body, request_id="req-cfg"), Answer(201)]) as server:
        report = run(server, items, sleeps, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="1")

    assert len(server.requests) == 1  # the others are not even sent
    assert sleeps == []
    assert report.failed == 3 and report.accepted == 0
    error = error_of(report)
    assert error.startswith(f"Cloud Eye answered {status} APIGW.0301: Incorrect IAM authentication")
    assert "req-cfg" in error and f"check {setting}" in error
    assert report.failures_retryable is False


def test_a_refused_request_is_split_until_the_refused_event_stands_alone() -> None:
    # Cloud Eye refuses any request holding event5 (an unknown resource group, say), whole.
    refused = {"error_code": "ces.0014", "error_msg": "The resource group does not exist."}

    def answer_for(body: bytes) -> Answer:
        names = [event["event_name"] for event in json.loads(body)]
        return Answer(400, refused, request_id="rg") if "event5" in names else Answer(201)

    items = events(16)
    with LoopbackServer(answer_for=answer_for) as server:
        report = run(server, items)

    statuses = [result["status"] for result in report.results]
    assert statuses == ["accepted"] * 5 + ["rejected"] + ["accepted"] * 10
    assert report.results[5]["by"] == "cloudeye"
    assert report.results[5]["errors"][0]["code"] == "ces.0014"
    # 16 -> 8+8 -> 4+4 -> 2+2 -> 1+1: 1 + 2 * log2(16) requests, every other event sent once.
    assert len(server.requests) == 1 + 2 * 4
    bodies = [[event["event_name"] for event in json.loads(request.body)] for request in server.requests]
    delivered = [name for names in bodies if "event5" not in names for name in names]
    assert sorted(delivered) == sorted(f"event{i}" for i in range(16) if i != 5)
    # A resent event is byte for byte what was sent before (Cloud Eye's same-event rule holds).
    first = json.loads(server.requests[0].body)
    for request in server.requests[1:]:
        for event in json.loads(request.body):
            assert event in first


def test_503_on_every_attempt_fails_with_a_readable_error() -> None:
    sleeps = Sleeps()
    body = {"error_code": "ces.0015", "error_msg": "The service is currently unavailable."}
    with LoopbackServer([Answer(503, body, request_id="req-503-abc")]) as server:
        report = run(server, events(3), sleeps, CLOUDEYE_MAX_ATTEMPTS="3")

    assert len(server.requests) == 3
    assert report.failed == 3 and report.accepted == 0
    assert report.requests == 3 and report.retries == 2
    error = error_of(report)
    assert error == (
        "Cloud Eye answered 503 ces.0015: The service is currently unavailable. (request id req-503-abc)"
    )
    assert report.failures_retryable is True
    # Exponential backoff with full jitter: attempt n waits uniformly within [0, 0.1 * 2^(n-1)].
    assert len(sleeps) == 2
    for attempt, delay in enumerate(sleeps, start=1):
        assert 0 <= delay <= 0.1 * 2 ** (attempt - 1)


def test_retry_after_is_reported_for_the_callers_answer() -> None:
    with LoopbackServer([Answer(503, retry_after="7")]) as server:
        report = run(server, events(1), CLOUDEYE_MAX_ATTEMPTS="2")
    assert report.failed == 1
    assert report.retry_after == 7.0


def test_dropped_connection_is_retried() -> None:
    sleeps = Sleeps()
    with LoopbackServer([Answer(drop=True), Answer(201)]) as server:
        report = run(server, events(2), sleeps)

    assert report.accepted == 2
    assert len(server.requests) == 2
    assert report.retries == 1 and len(sleeps) == 1


def test_dropped_connection_on_every_attempt_fails_readably() -> None:
    with LoopbackServer([Answer(drop=True)]) as server:
        report = run(server, events(1), CLOUDEYE_MAX_ATTEMPTS="3")

    assert len(server.requests) == 3
    assert report.failed == 1
    error = error_of(report)
    assert error.startswith(f"Cloud Eye could not be reached at http://127.0.0.1:{server.port}: ")
    assert "RemoteDisconnected" in error


def test_server_closing_an_idle_kept_alive_connection_is_not_a_failure() -> None:
    # The first answer keeps the connection "alive" and then the server closes it: the pooled
    # connection is stale, and the client opens a fresh one without spending an attempt.
    with LoopbackServer([Answer(201, close_after=True), Answer(201)]) as server:
        first = run(server, events(1))
        time.sleep(0.05)  # let the server's close reach the client's socket
        second = run(server, events(1))

    assert first.accepted == 1 and second.accepted == 1
    assert second.retries == 0
    assert len(server.requests) == 2 and len(server.connections) == 2


def test_read_timeout_is_retried_and_bounded() -> None:
    with LoopbackServer([Answer(201, delay_s=1.0)]) as server:
        started = time.monotonic()
        report = run(server, events(1), CLOUDEYE_TIMEOUT_S="0.2", CLOUDEYE_MAX_ATTEMPTS="2")
        elapsed = time.monotonic() - started

    assert report.failed == 1
    assert len(server.requests) == 2
    assert "timed out" in error_of(report)
    assert elapsed < 0.9


# --- the deadline ---------------------------------------------------------------------------------


def test_deadline_stops_a_retry_that_would_not_fit() -> None:
    sleeps = Sleeps()
    with LoopbackServer([Answer(503, retry_after="30"), Answer(201)]) as server:
        report = run(server, events(1), sleeps, deadline=time.monotonic() + 2)

    assert len(server.requests) == 1
    assert sleeps == []
    assert report.failed == 1
    error = error_of(report)
    assert "503" in error and "out of time" in error


def test_deadline_already_past_sends_nothing() -> None:
    with LoopbackServer() as server:
        report = run(server, events(2), deadline=time.monotonic() - 1)
    assert server.requests == []
    assert report.failed == 2
    assert "out of time" in error_of(report)


def one_chunk(count: int = 1) -> Chunk:
    return Chunk(tuple(range(count)), json.dumps(events(count)).encode())


def test_deadline_cuts_backoff_short_exactly() -> None:
    # 503 without Retry-After, 50 attempts allowed, 0.5 s left: attempt n waits
    # uniform(0, 0.1 * 2^(n-1)); no attempt starts when less than MIN_ATTEMPT_S would be left.
    clock = FakeTime()
    with LoopbackServer([Answer(503)]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="50"))
        client = CloudEyeClient(
            settings, deadline=clock.now + 0.5, sleep=clock.sleep, rng=random.Random(3), monotonic=clock
        )
        [outcome] = client.send([one_chunk()])

    replay = random.Random(3)
    replay.random()  # the client seeds its pacer's random source first
    expected_sleeps, spent = [], 0.0
    for attempt in range(1, 50):
        delay = replay.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))
        if spent + delay + MIN_ATTEMPT_S > 0.5:
            break
        expected_sleeps.append(delay)
        spent += delay
    assert clock.sleeps == expected_sleeps
    assert len(server.requests) == len(expected_sleeps) + 1
    [part] = outcome.parts
    assert part.verdict == "failed" and "out of time" in (part.error or "")


def test_backoff_bounds_per_attempt_with_a_seeded_random_source() -> None:
    clock = FakeTime()
    with LoopbackServer([Answer(503)] * 4 + [Answer(201)]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="5"))
        client = CloudEyeClient(settings, sleep=clock.sleep, rng=random.Random(42), monotonic=clock)
        [outcome] = client.send([one_chunk()])

    replay = random.Random(42)
    replay.random()
    assert clock.sleeps == [replay.uniform(0, 0.1 * 2**n) for n in range(4)]  # 0.1, 0.2, 0.4, 0.8
    assert outcome.ok and len(server.requests) == 5


def test_a_429_spends_no_attempt_when_there_is_a_deadline() -> None:
    clock = FakeTime()
    script = [Answer(429, retry_after="1")] * 6 + [Answer(201)]
    with LoopbackServer(script) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="2"))
        client = CloudEyeClient(settings, deadline=clock.now + 60, sleep=clock.sleep, monotonic=clock)
        [outcome] = client.send([one_chunk()])

    assert outcome.ok and len(server.requests) == 7
    assert client.stats.throttled == 6 and client.stats.retries == 6
    # Each 429 was waited out (Retry-After 1 s, plus jitter and the pacing's spacing).
    assert sum(1 for wait in clock.sleeps if wait >= 1.0) >= 6


def test_without_a_deadline_429s_count_as_attempts() -> None:
    clock = FakeTime()
    with LoopbackServer([Answer(429, retry_after="0")] * 6 + [Answer(201)]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="2"))
        client = CloudEyeClient(settings, sleep=clock.sleep, monotonic=clock)
        [outcome] = client.send([one_chunk()])
    assert not outcome.ok and len(server.requests) == 2


def test_a_429_storm_ends_at_the_deadline_with_retry_after_from_the_learned_rate() -> None:
    clock = FakeTime()
    items = events(6, content="x" * 700)  # six requests of one event
    with LoopbackServer([Answer(429, retry_after="1")]) as server:
        settings = Settings.from_env(
            environ=env(server, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="1")
        )
        report = report_events(items, settings=settings, sleep=clock.sleep, deadline=clock.now + 20)

    assert report.failed == 6 and report.accepted == 0
    assert report.results[0]["error"] == "Cloud Eye answered 429; stopped: the invocation is out of time"
    assert all(r["error"].endswith("stopped: the invocation is out of time") for r in report.results)
    # The answer's Retry-After: six requests at the learned rate (the first cut from its
    # minimum; the sleeps are recorded, not waited, so the pacer's round never ends and later
    # 429s do not cut again), not Cloud Eye's 1 s nor a constant.
    assert report.retry_after == pytest.approx(6 / (pacing.FIRST_RATE * pacing.FIRST_DECREASE))


def test_deadline_bounds_the_read_timeout() -> None:
    with LoopbackServer([Answer(201, delay_s=2.0)]) as server:
        started = time.monotonic()
        report = run(server, events(1), deadline=started + 0.3, CLOUDEYE_TIMEOUT_S="10")
        elapsed = time.monotonic() - started

    assert report.failed == 1
    assert elapsed < 1.0


# --- error body shapes ----------------------------------------------------------------------------

ERROR_SHAPES = [
    (
        {"error_code": "ces.0014", "error_msg": "Some content in the request is invalid."},
        ("ces.0014", "Some content in the request is invalid."),
    ),
    (
        {"http_code": 400, "message": {"code": "ces.0050", "details": "Request body is invalid."}},
        ("ces.0050", "Request body is invalid."),
    ),
    (
        {
            "code": "APIGW.0301",
            "message": "Incorrect IAM authentication information",
            "details": "verify aksk",
        },
        ("APIGW.0301", "Incorrect IAM authentication information", "verify aksk"),
    ),
    ({"code": "ces.0001", "message": "Bad things"}, ("ces.0001", "Bad things")),
    (
        {"error": {"code": "APIGW.0101", "message": "The API does not exist"}},
        ("APIGW.0101", "The API does not exist"),
    ),
    (
        {"error_code": "ces.0014", "error_msg": "bad", "request_id": "body-req-id"},
        ("ces.0014", "bad", "request id body-req-id"),
    ),
    (b"<html>502 Bad Gateway</html>", ("502 Bad Gateway",)),
    (b"", ()),
]


@pytest.mark.parametrize(("body", "words"), ERROR_SHAPES)
def test_describe_error_parses_every_body_shape(body: Any, words: tuple[str, ...]) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    text = describe_error(400, raw, "hdr-req-id" if b"request_id" not in raw else None)
    assert text.startswith("Cloud Eye answered 400")
    for word in words:
        assert word in text
    assert "{" not in text  # no raw JSON dumped at the user


def test_describe_error_without_status() -> None:
    assert describe_error(None, b"", None) == "Cloud Eye could not be reached"


def test_describe_error_cuts_huge_bodies() -> None:
    text = describe_error(500, b"x" * 100_000, "r1")
    assert len(text) < 400 and text.endswith("(request id r1)")


@pytest.mark.parametrize(("body", "words"), ERROR_SHAPES[:5])
def test_error_shapes_end_to_end(body: dict, words: tuple[str, ...]) -> None:
    with LoopbackServer([Answer(400, body, request_id="req-shape")]) as server:
        report = run(server, events(1))
    error = error_of(report)
    for word in (*words, "Cloud Eye answered 400", "request id req-shape"):
        assert word in error


# --- keep-alive and concurrency -------------------------------------------------------------------


def test_keep_alive_reuses_one_connection_across_chunks_and_invocations() -> None:
    # 1 KiB requests and ~700-byte events: one event per request, five requests.
    items = events(5, content="x" * 700)
    with LoopbackServer() as server:
        report = run(server, items, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="1")
        again = run(server, items[:2], CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="1")

    assert report.accepted == 5 and again.accepted == 2
    assert report.requests == 5
    assert len(server.requests) == 7
    assert len(server.connections) == 1


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_is_bounded(limit: int) -> None:
    items = events(12, content="x" * 700)
    with LoopbackServer([Answer(201, delay_s=0.05)]) as server:
        report = run(server, items, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY=str(limit))

    assert report.accepted == 12 and len(server.requests) == 12
    assert server.max_active == limit  # never more, and really concurrent when allowed
    # Results stay in input order whatever order the requests finished in.
    assert [r["index"] for r in report.results] == list(range(12))
    assert [r["event_name"] for r in report.results] == [f"event{i}" for i in range(12)]


def test_mixed_outcomes_across_chunks_keep_every_event_in_place() -> None:
    items = events(4, content="x" * 700)
    items.insert(2, {"event_name": "bad name", "event_source": "app.orders", "time": now_ms(), "detail": {}})

    def answer_for(body: bytes) -> Answer:  # Cloud Eye refuses event1
        refused = b'"event1"' in body
        return Answer(400, {"error_code": "ces.0014", "error_msg": "no"}) if refused else Answer(201)

    with LoopbackServer(answer_for=answer_for) as server:
        report = run(server, items, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="1")

    statuses = [r["status"] for r in report.results]
    assert statuses == ["accepted", "rejected", "rejected", "accepted", "accepted"]
    assert [r["by"] for r in report.results if r["status"] == "rejected"] == ["cloudeye", "forwarder"]
    assert [r["index"] for r in report.results] == [0, 1, 2, 3, 4]


# --- AIMD -----------------------------------------------------------------------------------------


def test_adaptive_limit_halves_on_429_and_grows_back() -> None:
    limit = AdaptiveLimit(8)
    assert limit.limit == 8
    for expected in (4, 2, 1, 1):
        limit.acquire()
        limit.release(throttled=True)
        assert limit.limit == expected
    # Back up by 1/limit per success that finds the limit full (about one per round), to 8 at most.
    seen = []
    limit.acquire()
    for _ in range(40):
        limit.release(throttled=False)
        seen.append(limit.limit)
        while limit._in_flight < limit.limit:
            limit.acquire()
    assert seen[:2] == [2, 2] and seen == sorted(seen) and seen[-1] == 8
    assert 20 <= seen.index(8) <= 35  # 1 + 2 + ... + 7 rounds' worth


def test_fixed_limit_does_not_adapt() -> None:
    limit = AdaptiveLimit(4, adaptive=False)
    limit.acquire()
    limit.release(throttled=True)
    assert limit.limit == 4


def test_adaptive_limit_blocks_beyond_the_limit() -> None:
    limit = AdaptiveLimit(2)
    limit.acquire()
    limit.acquire()
    entered = threading.Event()

    def third() -> None:
        limit.acquire()
        entered.set()

    thread = threading.Thread(target=third, daemon=True)
    thread.start()
    assert not entered.wait(0.1)  # blocked while two are in flight
    limit.release(throttled=False)
    assert entered.wait(2)
    thread.join(2)


def test_after_429_fewer_requests_run_at_once() -> None:
    # Four requests at once all get 429: each 429 halves the limit (4 -> 2 -> 1 -> 1), so the
    # retries start one at a time and successes grow the limit back by one each.
    # An instance whose last send met no 429 starts at full width (a fresh one starts at two).
    items = events(4, content="x" * 700)
    script = [Answer(201)] + [Answer(429, retry_after="0", delay_s=0.2)] * 4 + [Answer(201, delay_s=0.05)]
    with LoopbackServer(script) as server:
        run(server, events(1))
        report = run(server, items, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="4")

    assert report.accepted == 4 and report.throttled == 4
    assert len(server.requests) == 9
    assert max(r.in_flight for r in server.requests[1:5]) == 4
    retries = server.requests[5:]
    assert retries[0].in_flight == 1
    assert max(r.in_flight for r in retries) <= 2


def test_without_adaptation_429_does_not_reduce_concurrency() -> None:
    items = events(4, content="x" * 700)
    script = [Answer(429, retry_after="0", delay_s=0.2)] * 4 + [Answer(201, delay_s=0.2)]
    with LoopbackServer(script) as server:
        report = run(
            server, items, adaptive=False, CLOUDEYE_MAX_REQUEST_BYTES="1024", CLOUDEYE_MAX_CONCURRENCY="4"
        )

    assert report.accepted == 4
    assert max(r.in_flight for r in server.requests[4:]) >= 3


# --- Retry-After ----------------------------------------------------------------------------------

NOW_EPOCH = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("0.25", 0.25),
        ("3600", 30.0),
        ("1e9", 30.0),
        ("1e400", 30.0),
        ("Infinity", 30.0),
        ("-Infinity", 0.0),
        ("NaN", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Tue, 14 Nov 2023 22:13:27 GMT", 7.0),  # an HTTP date 7 s ahead
        ("Tue, 14 Nov 2023 23:13:20 GMT", 30.0),  # an hour ahead: clamped
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: at once
        ("Tue, 99 Nov 2023 22:13:27 GMT", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date_clamped_to_0_to_30(value, seconds) -> None:
    assert retry_after_s(value, now=lambda: NOW_EPOCH) == seconds


def test_retry_after_as_an_http_date_is_waited() -> None:
    from email.utils import formatdate

    sleeps = Sleeps()
    script = [Answer(503, retry_after=formatdate(time.time() + 4, usegmt=True)), Answer(201)]
    with LoopbackServer(script) as server:
        report = run(server, events(1), sleeps)
    assert report.accepted == 1
    assert len(sleeps) == 1 and 2.5 <= sleeps[0] <= 4.0  # the date has whole seconds


@pytest.mark.parametrize("value", ["1e400", "Infinity", "NaN", "1e9"])
def test_odd_retry_after_values_reach_the_caller_clamped(value: str) -> None:
    with LoopbackServer([Answer(503, retry_after=value)]) as server:
        report = run(server, events(1), CLOUDEYE_MAX_ATTEMPTS="1")
    assert report.failed == 1
    assert report.retry_after == (None if value == "NaN" else 30.0)


# --- the whole exchange is bounded ----------------------------------------------------------------


def slow_drip() -> LoopbackServer:
    """A server that answers 201 and then sends its body one byte every 0.05 s."""
    return LoopbackServer([Answer(201, drip_s=0.05)])


def test_a_slow_drip_answer_is_cut_by_the_deadline_not_by_each_read() -> None:
    with slow_drip() as server:
        settings = Settings.from_env(
            environ={**env(server), "CLOUDEYE_TIMEOUT_S": "10", "CLOUDEYE_MAX_ATTEMPTS": "3"}
        )
        started = time.monotonic()
        report = report_events(events(1), settings=settings, sleep=Sleeps(), deadline=started + 0.6)
        elapsed = time.monotonic() - started

    assert report.failed == 1
    assert "timed out: no whole answer within" in error_of(report)
    assert f"at http://127.0.0.1:{server.port}" in error_of(report)
    assert elapsed < 0.6 + 1.0  # each read succeeds within 0.05 s: only the deadline ends it


def test_a_slow_drip_answer_is_cut_by_the_attempt_timeout_without_a_deadline() -> None:
    with slow_drip() as server:
        settings = Settings.from_env(
            environ={**env(server), "CLOUDEYE_TIMEOUT_S": "0.3", "CLOUDEYE_MAX_ATTEMPTS": "2"}
        )
        report = report_events(events(1), settings=settings, sleep=Sleeps())
    assert report.failed == 1 and len(server.requests) == 2
    assert "no whole answer within 0.3 s" in error_of(report)


def test_a_refused_connection_names_the_address_tried() -> None:
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refused at once
    port = closed.getsockname()[1]
    try:
        settings = Settings.from_env(
            environ={
                "HUAWEICLOUD_SDK_AK": AK,
                "HUAWEICLOUD_SDK_SK": SK,
                "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
                "CLOUDEYE_ENDPOINT": f"http://127.0.0.1:{port}",
            }
        )
        report = report_events(events(1), settings=settings, sleep=Sleeps())
    finally:
        closed.close()
    assert error_of(report).startswith(f"Cloud Eye could not be reached at http://127.0.0.1:{port}: ")
    assert "ConnectionRefusedError" in error_of(report)


# --- odd answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b"not json",
        b"",
        b'{"event_id": "x"}',
        b'[{"event_id": "only-one"}]',
        b'[{"event_id": 5}, {"event_id": 6}]',
        b'[["event_id"], "event_id"]',
        b'[{"event_name": "a"}, {"event_name": "b"}]',
    ],
    ids=["deep", "text", "empty", "object", "short", "not-text-ids", "not-objects", "no-ids"],
)
def test_an_odd_2xx_body_means_accepted_with_unknown_ids_and_one_warning(body: bytes, caplog) -> None:
    caplog.set_level("WARNING", logger="forwarder")
    with LoopbackServer([Answer(201, body, request_id="odd-1")]) as server:
        report = run(server, events(2))

    assert [(r["status"], r["event_id"]) for r in report.results] == [("accepted", None)] * 2
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1
    line = json.loads(warnings[0])
    assert line["cloud_eye_request_id"] == "odd-1" and line["events"] == 2


def test_an_exception_in_a_worker_becomes_that_requests_failure(monkeypatch) -> None:
    from forwarder import client

    def broken(answer, expected):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(client, "_created", broken)
    before = threading.active_count()
    with LoopbackServer() as server:
        report = run(server, events(3))
    assert report.failed == 3
    assert error_of(report) == "the request could not be sent (RecursionError)"
    assert threading.active_count() <= before + 1  # the workers ended (the watchdog may remain)


# --- the time window is checked again before each attempt -----------------------------------------


def test_an_event_that_leaves_the_window_while_waiting_is_rejected_alone() -> None:
    from forwarder.events import WINDOW_PAST_MS

    fake_now = [1_709_294_400_000]

    class AdvancingSleeps(Sleeps):
        def __call__(self, seconds: float) -> None:
            super().__call__(seconds)
            fake_now[0] += int(seconds * 1000)

    edge = {**events(1)[0], "event_name": "nearlyTooOld", "time": fake_now[0] - WINDOW_PAST_MS + 5_000}
    fresh = {**events(1)[0], "event_name": "fresh", "time": fake_now[0]}
    sleeps = AdvancingSleeps()
    with LoopbackServer([Answer(503, retry_after="10"), Answer(201)]) as server:
        settings = Settings.from_env(environ=env(server))
        report = report_events([edge, fresh], settings=settings, sleep=sleeps, clock=lambda: fake_now[0])

    assert sleeps == [10.0]
    late, sent = report.results
    assert late["status"] == "rejected" and late["by"] == "forwarder"
    assert late["errors"] == [{"field": "time", "message": client_module.LATE_WHILE_WAITING}]
    assert sent["status"] == "accepted"
    first, second = (json.loads(request.body) for request in server.requests)
    assert [e["event_name"] for e in first] == ["nearlyTooOld", "fresh"]
    assert second == [first[1]]  # the rest resent as it was: time never rewritten


# --- one owner for "transient or permanent" --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (None, "transient"),
        (200, "accepted"),
        (201, "accepted"),
        (204, "accepted"),
        (408, "transient"),
        (429, "transient"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
        (599, "transient"),
        (501, "configuration"),
        (401, "configuration"),
        (403, "configuration"),
        (404, "configuration"),
        (405, "configuration"),
        (302, "configuration"),
        (100, "configuration"),
        (400, "refused"),
        (409, "refused"),
        (413, "refused"),
        (422, "refused"),
    ],
)
def test_one_verdict_decides_what_an_answer_means(status, meaning) -> None:
    assert client_module.verdict(status) == meaning


def test_a_fresh_instance_starts_narrow_and_doubles_per_round_until_a_429() -> None:
    limit = AdaptiveLimit(8, start=2)
    seen = []
    for _ in range(8):
        while limit._in_flight < limit.limit:
            limit.acquire()
        limit.release(throttled=False)  # a success that found the limit full
        seen.append(limit.limit)
    assert seen == [3, 4, 5, 6, 7, 8, 8, 8]  # one more per success: doubling per round
    limit.acquire()
    limit.release(throttled=True)
    assert limit.limit == 4
    while limit._in_flight < limit.limit:
        limit.acquire()
    limit.release(throttled=False)
    assert limit._limit == pytest.approx(4.25)  # after a 429, about one per round


def test_a_slot_wait_ends_at_the_deadline() -> None:
    limit = AdaptiveLimit(1)
    limit.acquire()
    assert limit.acquire(timeout=0.05) is False
    limit.release(throttled=False)
    assert limit.acquire(timeout=0.05) is True
