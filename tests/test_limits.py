"""Caps and budgets: the byte cap at its exact edge, the item cap, bounded reject logs, the
internal-error answer every entry shares, and the deadlines the entries hand to the pipeline."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import time

import pytest

import index
from forwarder import entry, http_ingest, logs
from tests.support.entry_helpers import FakeContext, log_lines, make_event, make_events
from tests.support.ingest_server import IngestServer

SEND = {
    "HUAWEICLOUD_SDK_AK": "AK",
    "HUAWEICLOUD_SDK_SK": "SK",
    "HUAWEICLOUD_SDK_PROJECT_ID": "p1",
    "CLOUDEYE_REGION": "ap-southeast-1",
}


@pytest.fixture(scope="module")
def ingest_server():
    with IngestServer("ingest") as server:
        yield server


@pytest.fixture
def sendable(monkeypatch):
    for name, value in SEND.items():
        monkeypatch.setenv(name, value)


def body_of_exactly(size: int) -> bytes:
    """A JSON array of valid events, padded with whitespace to exactly ``size`` bytes."""
    body = json.dumps(make_events(3)).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


def chunked_post(server: IngestServer, body: bytes, target: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        pieces = (body[start : start + 1000] for start in range(0, len(body), 1000))
        connection.request(
            "POST", target, body=pieces, encode_chunked=True, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# --- the byte cap, at its edge ----------------------------------------------------------------


def test_a_body_of_exactly_max_body_bytes_is_accepted_and_one_byte_more_is_413(
    ingest_server, sendable, monkeypatch
) -> None:
    size = 5000
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", str(size))
    exact, over = body_of_exactly(size), body_of_exactly(size + 1)
    assert (len(exact), len(over)) == (size, size + 1)
    # with Content-Length, chunked (no length: read up to the cap), and through API Gateway
    assert ingest_server.post(exact, target="/?dry_run").status == 201
    assert ingest_server.post(over, target="/?dry_run").status == 413
    assert chunked_post(ingest_server, exact, "/?dry_run") == 201
    assert chunked_post(ingest_server, over, "/?dry_run") == 413
    for body, status in ((exact, 201), (over, 413)):
        event = {
            "httpMethod": "POST",
            "headers": {},
            "queryStringParameters": {"dry_run": "true"},
            "body": body.decode(),
        }
        assert index.handler(event, FakeContext())["statusCode"] == status
        event = {**event, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
        assert index.handler(event, FakeContext())["statusCode"] == status


# --- the item cap -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "content_type"),
    [
        ("array", "application/json"),
        ("wrapped", "application/json"),
        ("ndjson", "application/x-ndjson"),
        ("ndjson-untyped", "application/json"),
    ],
)
def test_more_items_than_max_items_is_413_and_exactly_max_items_is_processed(
    ingest_server, sendable, monkeypatch, shape: str, content_type: str
) -> None:
    monkeypatch.setenv("FORWARDER_MAX_ITEMS", "5")

    def body(count: int) -> bytes:
        items = make_events(count)
        if shape == "array":
            return json.dumps(items).encode()
        if shape == "wrapped":
            return json.dumps({"events": items}).encode()
        return "\n".join(json.dumps(item) for item in items).encode()

    reply = ingest_server.post(body(6), target="/?dry_run", content_type=content_type)
    assert reply.status == 413
    assert "FORWARDER_MAX_ITEMS" in reply.json()["error"] and reply.json()["received"] == 0
    reply = ingest_server.post(body(5), target="/?dry_run", content_type=content_type)
    assert reply.status == 201 and reply.json()["accepted"] == 5


def test_six_mib_of_tiny_invalid_items_is_413_with_a_small_answer(ingest_server, sendable) -> None:
    body = ("[" + "0," * (3_000_000 - 1) + "0]").encode()  # 6,000,001 bytes: within the byte cap
    reply = ingest_server.post(body)
    assert reply.status == 413
    assert len(reply.body) < 1000
    assert "FORWARDER_MAX_ITEMS" in reply.json()["error"]


def test_a_single_event_object_is_not_counted_as_items(ingest_server, sendable, monkeypatch) -> None:
    monkeypatch.setenv("FORWARDER_MAX_ITEMS", "1")
    assert ingest_server.post(make_event(0), target="/?dry_run").status == 201


# --- bounded reject logs ------------------------------------------------------------------------


def test_reject_lines_are_whole_up_to_the_budget_then_one_summary_by_reason(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    entry.setup_logging()
    invocation = logs.Invocation("kafka", "req-budget")
    extra = 250
    for number in range(logs.REJECT_LOG_LINES + extra):
        reason = "event_name: missing" if number % 2 else "time: not an integer"
        invocation.reject({"message": number}, reason, {"n": number})
    invocation.summary({"rejected": logs.REJECT_LOG_LINES + extra})
    rejected = log_lines(caplog.records, "rejected")
    assert len(rejected) == logs.REJECT_LOG_LINES
    assert all(line["raw_truncated"] is False for line in rejected)  # whole lines
    (summary,) = log_lines(caplog.records, "rejects not logged")
    assert summary["not_logged"] == extra and summary["logged"] == logs.REJECT_LOG_LINES
    assert summary["by_reason"] == {"event_name: missing": extra // 2, "time: not an integer": extra // 2}


def test_a_normal_batch_keeps_every_reject_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    invocation = logs.Invocation("kafka", "req-normal")
    for number in range(500):
        invocation.reject({"message": number}, "event_name: missing", make_event(number))
    invocation.summary({})
    assert len(log_lines(caplog.records, "rejected")) == 500
    assert log_lines(caplog.records, "rejects not logged") == []


def test_the_byte_budget_also_bounds_reject_lines(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    invocation = logs.Invocation("kafka", "req-bytes")
    raw = "x" * logs.RAW_LIMIT_BYTES
    for number in range(logs.REJECT_LOG_LINES):
        invocation.reject({"message": number}, "too big", raw)
    invocation.summary({})
    written = sum(len(record.getMessage()) for record in caplog.records if record.name == "forwarder")
    assert written < logs.REJECT_LOG_BYTES + 2 * (logs.RAW_LIMIT_BYTES + 1000)
    assert log_lines(caplog.records, "rejects not logged")[0]["not_logged"] > 0


def test_a_kafka_message_of_100000_zeros_yields_a_bounded_number_of_log_lines(sendable, caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    message = "[" + ",".join(["0"] * 100_000) + "]"
    batch = {"trigger_type": "KAFKA", "records": [{"topic_id": "t", "messages": [message]}]}
    answer = index.handler(batch, FakeContext())
    assert answer["accepted"] == 0 and answer["rejected"] >= 1
    lines = [record for record in caplog.records if record.name == "forwarder"]
    assert len(lines) <= logs.REJECT_LOG_LINES + 2
    unlogged = log_lines(caplog.records, "rejects not logged")
    logged = len(log_lines(caplog.records, "rejected"))
    assert logged + sum(line["not_logged"] for line in unlogged) == answer["rejected"]


# --- the internal-error answer, the same from every HTTP entry ----------------------------------


def test_a_bug_answers_500_with_zero_counts_and_the_request_id_on_every_entry(
    ingest_server, sendable, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")

    def bug(*args, **kwargs):
        raise RuntimeError("secret-looking detail")

    monkeypatch.setattr(http_ingest, "_answer", bug)
    served = ingest_server.post(make_events(1), headers={"X-Request-Id": "req-500-ff"})
    apig = index.handler(
        {"httpMethod": "POST", "headers": {}, "body": "[]"}, FakeContext(request_id="req-500-fg")
    )
    expected = {
        "received": 0,
        "accepted": 0,
        "rejected": 0,
        "failed": 0,
        "results": [],
        "error": "internal error",
    }
    assert served.status == 500 and served.json() == expected
    assert served.headers["x-request-id"] == "req-500-ff"
    assert apig["statusCode"] == 500 and json.loads(apig["body"]) == expected
    assert apig["headers"]["X-Request-Id"] == "req-500-fg"
    errors = log_lines(caplog.records, "internal error")
    assert [line["error"] for line in errors] == ["RuntimeError", "RuntimeError"]
    assert "secret-looking" not in caplog.text


def test_a_configuration_error_is_logged_once_by_every_entry(ingest_server, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", "https://host:abc")
    with pytest.raises(Exception, match="CLOUDEYE_ENDPOINT"):
        index.handler({"records": [{"messages": ["{}"]}]}, FakeContext(request_id="q-1"))
    apig = index.handler({"httpMethod": "POST", "headers": {}, "body": "[]"}, FakeContext(request_id="a-1"))
    served = ingest_server.post(make_events(1), headers={"X-Request-Id": "h-1"})
    assert apig["statusCode"] == served.status == 500
    lines = log_lines(caplog.records, "configuration error")
    assert [(line["request_id"], line["trigger"]) for line in lines] == [
        ("q-1", "kafka"),
        ("a-1", "apig"),
        ("h-1", "http"),
    ]
    assert all("CLOUDEYE_ENDPOINT" in line["error"] for line in lines)


# --- deadlines ---------------------------------------------------------------------------------


@pytest.fixture
def deadlines(monkeypatch):
    """The deadline each Cloud Eye client got, as seconds from the moment it was built."""
    from forwarder import client

    seen: list[float] = []
    original = client.CloudEyeClient.__init__

    def spy(self, settings, *, deadline=None, **kwargs):
        seen.append(float("inf") if deadline is None else deadline - time.monotonic())
        original(self, settings, deadline=deadline, **kwargs)

    monkeypatch.setattr(client.CloudEyeClient, "__init__", spy)
    return seen


def test_http_ingest_takes_its_deadline_from_the_setting(ingest_server, to_cloudeye, deadlines, monkeypatch):
    assert ingest_server.post(make_events(1)).status == 201
    monkeypatch.setenv("FORWARDER_HTTP_DEADLINE_S", "3")
    assert ingest_server.post(make_events(1)).status == 201
    assert len(deadlines) == 2
    assert 20 < deadlines[0] <= 25  # the default
    assert 0 < deadlines[1] <= 3


@pytest.mark.parametrize(
    ("remaining_ms", "limit_s", "most"), [(60_000, 25, 25), (10_000, 25, 8), (60_000, 4, 4)]
)
def test_api_gateway_answers_within_the_setting_and_the_platform_time(
    to_cloudeye, deadlines, monkeypatch, remaining_ms: int, limit_s: float, most: float
) -> None:
    monkeypatch.setenv("FORWARDER_HTTP_DEADLINE_S", str(limit_s))
    event = {"httpMethod": "POST", "headers": {}, "body": json.dumps(make_events(1))}
    assert index.handler(event, FakeContext(remaining_ms=remaining_ms))["statusCode"] == 201
    (left,) = deadlines
    assert most - 1 < left <= most


def test_queue_triggers_use_the_platform_time_less_the_margin(to_cloudeye, deadlines, monkeypatch) -> None:
    monkeypatch.setenv("FORWARDER_HTTP_DEADLINE_S", "1")  # not for queue triggers
    batch = {"records": [{"topic_id": "t", "messages": [json.dumps(make_events(1))]}]}
    index.handler(batch, FakeContext(remaining_ms=40_000))
    (left,) = deadlines
    assert 37 < left <= 40 - entry.SAFETY_MARGIN_S


# --- the token comes before the configuration ---------------------------------------------------


def test_callers_without_the_token_never_see_configuration_errors(ingest_server, monkeypatch) -> None:
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "the-token")
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", "https://host:99999")  # broken configuration
    reply = ingest_server.post(make_events(1))
    assert reply.status == 401 and "CLOUDEYE_ENDPOINT" not in reply.text
    apig = index.handler({"httpMethod": "POST", "headers": {}, "body": "[]"}, FakeContext())
    assert apig["statusCode"] == 401 and "CLOUDEYE_ENDPOINT" not in apig["body"]
    # with the token, the caller is told what is wrong
    allowed = ingest_server.post(make_events(1), headers={"Authorization": "Bearer the-token"})
    assert allowed.status == 500 and "CLOUDEYE_ENDPOINT" in allowed.json()["error"]


def test_every_push_answer_names_its_request(monkeypatch) -> None:
    from tests.support.ingest_server import create_app

    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "the-token")
    client = create_app("ingest_pubsub").test_client()
    headers = {"ce-id": "push-77", "ce-specversion": "1.0", "ce-source": "//pubsub", "ce-type": "t"}
    refused = client.post("/", data=b"{}", headers=headers)
    assert refused.status_code == 401 and refused.headers["X-Request-Id"] == "push-77"
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", "https://host:abc")  # the function raises: a 500
    failed = client.post("/?token=the-token", data=b'{"message": {"data": "e30="}}', headers=headers)
    assert failed.status_code == 500 and failed.headers["X-Request-Id"] == "push-77"
