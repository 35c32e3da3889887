"""Inputs the fuzzing found or that sit on parser limits, kept as plain regression cases."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

import index
from forwarder.queue_ingest import DeliveryError
from tests.reliability.fuzz import (
    HOSTILE_TEXTS,
    HOSTILE_VALUES,
    INGEST_TOKEN,
    FuzzContext,
    _nested,
    check_apig,
    check_http_body,
    check_queue,
    fuzz_environment,
)

# Texts at Python's JSON limits: nested past the recursion limit, an integer over 4300 digits,
# constants JSON does not have, a lone surrogate, a BOM, a cut-off document.
EDGE_TEXTS = [
    "[" * 5000,
    '{"a": ' * 200,
    "1" * 5000,
    "[NaN, Infinity]",
    '"\\ud800"',
    '[{"event_name": "A\\ud800"}]',
    "\ufeff[]",
    '[{"event_name": "A", "event_source": "a',
]


@pytest.fixture
def utf8_stream():
    """The forwarder's log lines written to a strict UTF-8 stream, as FunctionGraph's stdout is."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    handler = logging.StreamHandler(stream)
    failures: list[str] = []
    handler.handleError = lambda record: failures.append(record.getMessage()[:200])  # type: ignore[method-assign]
    logger = logging.getLogger("forwarder")
    logger.addHandler(handler)
    yield raw, failures
    logger.removeHandler(handler)


def test_a_reject_holding_a_lone_surrogate_is_still_logged(utf8_stream, monkeypatch) -> None:
    # Found by fuzzing: a Kafka message whose JSON escapes a lone surrogate ("\ud800") was rejected,
    # but its log line (position, reason, raw text) could not be written to a UTF-8 stdout and
    # was lost. Such a line now falls back to \u escapes.
    raw, failures = utf8_stream
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "p1")
    message = json.dumps({"event_name": "Bad\ud800", "event_source": "app.orders", "time": 1, "detail": {}})
    answer = index.handler({"trigger_type": "KAFKA", "records": [{"messages": [message]}]}, FuzzContext())
    assert answer["rejected"] == 1
    assert failures == []
    lines = [json.loads(line) for line in raw.getvalue().decode("utf-8").splitlines()]
    (reject,) = [line for line in lines if line["message"] == "rejected"]
    assert reject["position"] == {"topic": None, "record": 0, "message": 0}
    assert "Bad\ud800" in reject["raw"]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_texts_through_every_entry(text: str) -> None:
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    with fuzz_environment():
        check_apig({"httpMethod": "POST", "headers": {}, "body": text})
        check_apig({"httpMethod": "POST", "headers": {}, "body": encoded, "isBase64Encoded": True})
        check_http_body((text.encode("utf-8", "surrogatepass"), "application/json", None, ""))
        check_http_body((text.encode("utf-8", "surrogatepass"), "application/x-ndjson", "true", ""))
        check_queue({"trigger_type": "KAFKA", "records": [{"messages": [text], "topic_id": "t"}]})
        check_queue({"trigger_type": "RABBITMQ", "messages": [{"body": text}]})
        check_queue({"record": [{"smn": {"message": text}}]})
        check_queue({"Message": {"records": [{"data": encoded}]}})
        check_queue({"message": {"data": encoded}})


def test_a_valid_event_that_cannot_be_sent_is_the_only_reason_to_raise() -> None:
    event = {"event_name": "Ok", "event_source": "app.orders", "time": 0, "detail": {}}
    with fuzz_environment():
        from tests.reliability.harness import now_ms

        event["time"] = now_ms()
        payload = {"trigger_type": "KAFKA", "records": [{"messages": [json.dumps(event), "junk"]}]}
        with pytest.raises(DeliveryError) as raised:
            index.handler(payload, FuzzContext())
    assert raised.value.counts["failed"] == 1 and raised.value.counts["rejected"] == 1


@pytest.mark.parametrize(
    "where",
    ["group_id", "content", "event_name", "dimension value"],
)
def test_an_unpaired_surrogate_is_rejected_alone_not_a_crash(where: str) -> None:
    # Found by fuzzing (seed 5): a queue message whose event carried "\ud800" in detail.group_id
    # passed validation (a bare str field), then crashed the request encoding for its whole batch
    # (PydanticSerializationError / UnicodeEncodeError). Now the event is rejected alone.
    from tests.reliability.harness import now_ms

    def event(text: str) -> dict:
        made = {"event_name": "Ok", "event_source": "app.orders", "time": now_ms(), "detail": {}}
        if where == "event_name":
            made["event_name"] = "Ok" + text
        elif where == "dimension value":
            made["detail"]["dimensions"] = [{"name": "host", "value": text}]
        elif where == "group_id":
            made["detail"][where] = text.ljust(24, "g")  # a group id is exactly 24 characters
        else:
            made["detail"][where] = text
        return made

    bad, good = event("x\ud800"), event("fine")
    with fuzz_environment():
        for payload in (
            {"trigger_type": "KAFKA", "records": [{"messages": [json.dumps(bad), json.dumps(good)]}]},
            {"trigger_type": "RABBITMQ", "messages": [bad, good]},  # already parsed by the platform
            [bad, good],  # a direct invocation
        ):
            with pytest.raises(DeliveryError) as raised:  # the good one cannot reach the refusing port
                index.handler(payload, FuzzContext())
            assert (raised.value.counts["rejected"], raised.value.counts["failed"]) == (1, 1)
        answer = index.handler(
            {
                "httpMethod": "POST",
                "headers": {"authorization": f"Bearer {INGEST_TOKEN}"},
                "body": json.dumps([bad]),
                "queryStringParameters": {"dry_run": "1"},
            },
            FuzzContext(),
        )
    assert answer["statusCode"] == 400
    (error,) = json.loads(answer["body"])["results"][0]["errors"]
    assert "unpaired surrogate" in error["message"]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=["time-4300-digits", "deep-content", "time-5000-digits"])
def test_hostile_texts_through_every_entry(text: str) -> None:
    encoded = base64.b64encode(text.encode("utf-8")).decode()
    with fuzz_environment():
        check_apig({"httpMethod": "POST", "headers": {}, "body": text})
        check_http_body((text.encode("utf-8"), "application/json", None, ""))
        check_http_body((text.encode("utf-8"), "application/x-ndjson", "true", ""))
        check_queue({"trigger_type": "KAFKA", "records": [{"messages": [text], "topic_id": "t"}]})
        check_queue({"record": [{"smn": {"message": text}}]})
        check_queue({"Message": {"records": [{"data": encoded}]}})
        check_queue({"message": {"data": encoded}})


def _with(field: str, value: object) -> dict:
    from tests.reliability.harness import now_ms

    event: dict = {"event_name": "Ok", "event_source": "app.orders", "time": now_ms(), "detail": {}}
    *parents, last = field.split(".")
    target = event
    for part in parents:
        target = target[part]
    target[last] = value
    return event


@pytest.mark.parametrize("value", [*HOSTILE_VALUES, _nested(100_000)], ids=lambda value: type(value).__name__)
@pytest.mark.parametrize("field", ["time", "detail.content", "detail.resource_name", "event_name"])
def test_a_hostile_value_is_rejected_alone_and_the_rest_is_sent(field: str, value: object) -> None:
    from forwarder.events import validate_events
    from tests.reliability.harness import now_ms

    good = {"event_name": "Ok", "event_source": "app.orders", "time": now_ms(), "detail": {}}
    bad = _with(field, value)
    # A 4,001-character text is fine content: only what breaks a rule is rejected.
    rejected = 0 if validate_events([bad]).valid else 1
    with fuzz_environment():
        # Already parsed by the platform (a direct invocation, RabbitMQ): any depth, any size.
        for payload in ([bad, good], {"trigger_type": "RABBITMQ", "messages": [bad, good]}):
            with pytest.raises(DeliveryError) as raised:  # the good one cannot reach the refusing port
                index.handler(payload, FuzzContext())
            counts = raised.value.counts
            assert (counts["rejected"], counts["failed"]) == (rejected, 2 - rejected)
