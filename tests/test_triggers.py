"""Trigger detection and extraction (no network): shapes, positions, unreadable messages alone."""

from __future__ import annotations

import base64
import json

import pytest

from forwarder import triggers
from forwarder.intake import Unreadable
from tests.support.entry_helpers import make_event
from tests.support.golden import golden_names, load_event

EXPECTED_TRIGGER = {
    "apig": triggers.APIG,
    "dis": triggers.DIS,
    "kafka": triggers.KAFKA,
    "kafka_flat": triggers.KAFKA,
    "pubsub": triggers.PUBSUB,
    "rabbitmq": triggers.RABBITMQ,
    "rocketmq": triggers.ROCKETMQ,
    "smn": triggers.SMN,
}


def b64(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


def test_every_golden_payload_has_an_expected_trigger() -> None:
    assert golden_names() == sorted(EXPECTED_TRIGGER)


@pytest.mark.parametrize("name", sorted(EXPECTED_TRIGGER))
def test_detects_the_trigger_of_each_golden_payload(name: str) -> None:
    assert triggers.detect(load_event(name)) == EXPECTED_TRIGGER[name]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([], triggers.DIRECT),
        ({"events": []}, triggers.DIRECT),
        ({"event_name": "x"}, triggers.DIRECT),
        ({"body": "", "headers": {}}, triggers.APIG),
        ({"httpMethod": "GET"}, triggers.APIG),
        ({"messages": [], "trigger_type": "ROCKETMQ"}, triggers.ROCKETMQ),
        ({"records": [], "trigger_type": "OPENSOURCEKAFKA"}, triggers.KAFKA),
        ({"records": [], "trigger_type": 7}, triggers.KAFKA),
        ({"record": []}, triggers.SMN),
        ({"Message": {"records": []}}, triggers.DIS),
        ({"message": {}}, triggers.PUBSUB),
        ({"hello": "world"}, triggers.UNKNOWN),
        (42, triggers.UNKNOWN),
        (None, triggers.UNKNOWN),
        ("text", triggers.UNKNOWN),
    ],
)
def test_detect_by_shape(payload: object, expected: str) -> None:
    assert triggers.detect(payload) == expected


def test_kafka_positions_name_topic_record_message_and_event() -> None:
    # GIVEN the golden Kafka batch: message 0 holds one event, message 1 an array of two
    candidates = triggers.queue_candidates(load_event("kafka"), triggers.KAFKA)
    # THEN every event is tagged with where it came from
    assert [c.position for c in candidates] == [
        {"topic": "cloudeye-events", "record": 0, "message": 0},
        {"topic": "cloudeye-events", "record": 0, "message": 1, "event": 0},
        {"topic": "cloudeye-events", "record": 0, "message": 1, "event": 1},
        {"topic": "cloudeye-events-priority", "record": 1, "message": 0},
    ]
    assert [c.value["event_name"] for c in candidates] == [
        "DiskAlmostFull",
        "CertExpiring",
        "CertRenewed",
        "BackupFailed",
    ]


def test_flat_messages_variant() -> None:
    candidates = triggers.queue_candidates(load_event("kafka_flat"), triggers.KAFKA)
    assert [c.position for c in candidates] == [
        {"topic": "cloudeye-events", "message": 0},
        {"topic": "cloudeye-events", "message": 1},
    ]


def test_dis_and_pubsub_data_is_base64() -> None:
    dis = triggers.queue_candidates(load_event("dis"), triggers.DIS)
    assert [c.value["event_name"] for c in dis] == [
        "LoginFailuresSpike",
        "WafBlockRateHigh",
        "WafRuleUpdated",
    ]
    assert dis[1].position == {
        "stream": "cloudeye-events",
        "shard": "shardId-0000000001",
        "record": 1,
        "sequence_number": "42",
        "event": 0,
    }
    pubsub = triggers.queue_candidates(load_event("pubsub"), triggers.PUBSUB)
    assert [c.position["message_id"] for c in pubsub] == ["12817390431237", "12817390431237"]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json {", "the message is not JSON"),
        ("", "the message is empty"),
        ("   ", "the message is empty"),
        ("[]", "empty array"),
        ("42", "holds a JSON number"),
        ('"text"', "holds a JSON string"),
        ("null", "holds a JSON null"),
        ("[" * 100_000, "nested too deeply"),
        ("1" * 5000, "not usable JSON"),
    ],
)
def test_an_unreadable_message_is_rejected_alone(message: str, reason: str) -> None:
    # GIVEN a batch where the middle message cannot be read
    good = json.dumps(make_event(1))
    payload = {"trigger_type": "KAFKA", "records": [{"topic_id": "t", "messages": [good, message, good]}]}
    candidates = triggers.queue_candidates(payload, triggers.KAFKA)
    # THEN only that message is unreadable, with its position and its raw text kept for the log
    assert [c.readable for c in candidates] == [True, False, True]
    bad = candidates[1]
    assert reason in bad.value.reason
    assert bad.value.raw == message
    assert bad.position == {"topic": "t", "record": 0, "message": 1}


def test_bad_records_and_already_parsed_messages() -> None:
    payload = {
        "records": [
            "not a record",
            {"topic_id": {"nested": True}, "messages": [make_event(1), [make_event(2)], 3]},
            {"topic_id": "no-messages"},
        ]
    }
    candidates = triggers.queue_candidates(payload, triggers.KAFKA)
    assert [type(c.value).__name__ for c in candidates] == [
        "Unreadable",
        "dict",
        "dict",
        "Unreadable",
        "Unreadable",
    ]
    assert candidates[1].position["topic"] == "{'nested': True}"
    assert "holds a JSON number" in candidates[3].value.reason


def test_base64_problems_are_rejected_alone() -> None:
    payload = {
        "Message": {
            "records": [
                {"data": "%%% not base64 %%%"},
                {"data": base64.b64encode(b"\xff\xfe\x00bad").decode()},
                {"data": 12},
                {"no_data": True},
                {"data": b64([make_event(1)])},
            ]
        },
        "StreamName": "s",
    }
    candidates = triggers.queue_candidates(payload, triggers.DIS)
    reasons = [c.value.reason for c in candidates if not c.readable]
    assert reasons == [
        "data is not valid base64",
        "the decoded data is not UTF-8 text (bad byte at offset 0)",
        "data is a JSON number, not base64 text",
        "the record has no data",
    ]
    assert candidates[-1].readable


def test_smn_records() -> None:
    payload = {"record": [{"smn": {"message": json.dumps(make_event(1)), "topic_urn": "urn:x"}}, {"smn": {}}]}
    candidates = triggers.queue_candidates(payload, triggers.SMN)
    assert candidates[0].readable and candidates[0].position["topic"] == "urn:x"
    assert candidates[1].value.reason == "the record has no smn.message"


def test_rabbitmq_envelope_body_is_unwrapped() -> None:
    message = {"exchange": "", "routingKey": "events", "body": json.dumps([make_event(1), make_event(2)])}
    payload = {"trigger_type": "RABBITMQ", "records": [{"topic_id": "q", "messages": [message]}]}
    candidates = triggers.queue_candidates(payload, triggers.RABBITMQ)
    assert [c.position.get("event") for c in candidates] == [0, 1]
    assert all(c.readable for c in candidates)


def test_pubsub_without_message_or_data() -> None:
    assert not triggers.pubsub_candidates({"subscription": "s"})[0].readable
    assert triggers.pubsub_candidates({"message": {"attributes": {}}})[0].value.reason == (
        "the Pub/Sub message has no data"
    )
    assert not triggers.pubsub_candidates("text")[0].readable


def test_direct_invocation_payloads() -> None:
    event = make_event(1)
    assert [c.value for c in triggers.queue_candidates(event, triggers.DIRECT)] == [event]
    assert [c.position for c in triggers.queue_candidates([event, event], triggers.DIRECT)] == [
        {"event": 0},
        {"event": 1},
    ]
    assert len(triggers.queue_candidates({"events": [event]}, triggers.DIRECT)) == 1
    assert not triggers.queue_candidates([], triggers.DIRECT)[0].readable


def test_unknown_payload_is_one_unreadable_item() -> None:
    (candidate,) = triggers.queue_candidates({"hello": "world"}, triggers.UNKNOWN)
    assert isinstance(candidate.value, Unreadable)
    assert "unrecognised payload" in candidate.value.reason


class TestApigRequest:
    def test_golden_base64_body(self) -> None:
        request = triggers.apig_request(load_event("apig"))
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body)[0]["event_name"] == "OrderBacklogHigh"
        assert request.body_error is None

    @pytest.mark.parametrize("flag", [True, "true", "True"])
    def test_base64_flag_forms(self, flag: object) -> None:
        request = triggers.apig_request({"body": b64("[]"), "isBase64Encoded": flag})
        assert request.body == b"[]"

    def test_plain_text_body(self) -> None:
        # The text is kept as is (not copied to bytes): http_ingest reads it as its UTF-8 bytes.
        request = triggers.apig_request({"body": "[1]", "isBase64Encoded": False, "httpMethod": "post"})
        assert (request.body, request.method) == ("[1]", "POST")

    def test_invalid_base64_is_a_body_error(self) -> None:
        request = triggers.apig_request({"body": "***", "isBase64Encoded": True})
        assert request.body_error == "the body is marked isBase64Encoded but is not valid base64"

    def test_odd_fields_are_tolerated(self) -> None:
        request = triggers.apig_request(
            {
                "body": [{"a": 1}],
                "headers": {"X-Multi": ["a", "b"], "Empty": None},
                "queryStringParameters": {"dry_run": ["true", "false"], "n": 3},
            }
        )
        assert request.body == b'[{"a": 1}]'
        assert request.headers == {"x-multi": "a,b", "empty": ""}
        assert request.query == {"dry_run": "true", "n": "3"}
        assert triggers.apig_request({"body": None, "headers": "nope"}).body == b""
