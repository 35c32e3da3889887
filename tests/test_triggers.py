"""Trigger detection and extraction (no network): shapes, positions, unreadable messages alone."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from forwarder import triggers
from forwarder.intake import Unreadable
from forwarder.triggers import Trigger
from tests.support.entry_helpers import log_lines, make_event
from tests.support.golden import golden_names, load_event

# Each payload in tests/events/ (published FunctionGraph trigger shapes) and the trigger it is.
EXPECTED_TRIGGER = {
    "apig": Trigger.APIG,
    "apig_console": Trigger.APIG,
    "cts": Trigger.CTS,
    "dds": Trigger.DDS,
    "dis": Trigger.DIS,
    "kafka": Trigger.KAFKA,
    "kafka_flat": Trigger.KAFKA,
    "kafka_opensource": Trigger.KAFKA,
    "lts": Trigger.LTS,
    "obs": Trigger.OBS,
    "pubsub": Trigger.PUBSUB,
    "rabbitmq": Trigger.RABBITMQ,
    "rocketmq": Trigger.ROCKETMQ,
    "smn": Trigger.SMN,
    "timer": Trigger.TIMER,
    "timer_events": Trigger.TIMER,
    "timer_text": Trigger.TIMER,
}


def b64(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


def test_every_golden_payload_has_an_expected_trigger() -> None:
    assert golden_names() == sorted(EXPECTED_TRIGGER)


@pytest.mark.parametrize("name", sorted(EXPECTED_TRIGGER))
def test_detects_the_trigger_of_each_golden_payload(name: str) -> None:
    assert triggers.detect(load_event(name)) is EXPECTED_TRIGGER[name]


def test_trigger_values_are_what_logs_and_metrics_carry() -> None:
    assert [t.value for t in Trigger] == [
        "apig", "http", "kafka", "rocketmq", "rabbitmq", "smn", "dis", "pubsub", "timer", "direct",
        "dds", "obs", "lts", "cts", "unknown",
    ]  # fmt: skip
    assert f"{Trigger.KAFKA}" == str(Trigger.KAFKA) == "kafka"
    assert json.dumps({"trigger": Trigger.DDS}) == '{"trigger": "dds"}'
    assert Trigger.KAFKA == "kafka"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([], Trigger.DIRECT),
        ({"events": []}, Trigger.DIRECT),
        ({"event_name": "x"}, Trigger.DIRECT),
        ({"body": "", "headers": {}}, Trigger.APIG),
        ({"httpMethod": "GET"}, Trigger.APIG),
        ({"messages": [], "trigger_type": "ROCKETMQ"}, Trigger.ROCKETMQ),
        ({"records": [], "trigger_type": "OPENSOURCEKAFKA"}, Trigger.KAFKA),
        ({"records": [], "trigger_type": "dms_rabbitmq"}, Trigger.RABBITMQ),
        ({"records": []}, Trigger.KAFKA),
        ({"records": [{"messages": []}]}, Trigger.KAFKA),
        ({"records": [{"event_source": "gaussdb_mongo", "data": {}}]}, Trigger.UNKNOWN),
        ({"records": [{"messages": []}, "x"]}, Trigger.UNKNOWN),
        ({"records": ["x"], "trigger_type": "KAFKA"}, Trigger.KAFKA),
        ({"records": [], "trigger_type": 7}, Trigger.UNKNOWN),
        ({"records": [], "trigger_type": "DMS"}, Trigger.UNKNOWN),
        ({"records": [{"event_source": "dds", "dds": {}}]}, Trigger.DDS),
        ({"records": [{"dds": {}}], "trigger_type": "KAFKA"}, Trigger.DDS),
        ({"trigger_type": "TIMER", "user_event": "x"}, Trigger.TIMER),
        ({"trigger_name": "t", "user_event": ""}, Trigger.TIMER),
        ({"Records": [{"s3": {}}]}, Trigger.OBS),
        ({"lts": {"data": ""}}, Trigger.LTS),
        ({"cts": {}}, Trigger.CTS),
        ({"record": []}, Trigger.SMN),
        ({"Message": {"records": []}}, Trigger.DIS),
        ({"Message": "records"}, Trigger.UNKNOWN),
        ({"message": {}}, Trigger.PUBSUB),
        ({"hello": "world"}, Trigger.UNKNOWN),
        ({}, Trigger.UNKNOWN),
        (42, Trigger.UNKNOWN),
        (None, Trigger.UNKNOWN),
        ("text", Trigger.UNKNOWN),
    ],
)
def test_detect_by_shape(payload: object, expected: Trigger) -> None:
    assert triggers.detect(payload) is expected


def test_kafka_positions_name_topic_record_message_and_event() -> None:
    # GIVEN the golden Kafka batch: message 0 holds one event, message 1 an array of two
    candidates = triggers.queue_candidates(load_event("kafka"), Trigger.KAFKA)
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
    candidates = triggers.queue_candidates(load_event("kafka_flat"), Trigger.KAFKA)
    assert [c.position for c in candidates] == [
        {"topic": "cloudeye-events", "message": 0},
        {"topic": "cloudeye-events", "message": 1},
    ]


def test_dis_and_pubsub_data_is_base64() -> None:
    dis = triggers.queue_candidates(load_event("dis"), Trigger.DIS)
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
    pubsub = triggers.queue_candidates(load_event("pubsub"), Trigger.PUBSUB)
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
    candidates = triggers.queue_candidates(payload, Trigger.KAFKA)
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
    candidates = triggers.queue_candidates(payload, Trigger.KAFKA)
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
    candidates = triggers.queue_candidates(payload, Trigger.DIS)
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
    candidates = triggers.queue_candidates(payload, Trigger.SMN)
    assert candidates[0].readable and candidates[0].position["topic"] == "urn:x"
    assert candidates[1].value.reason == "the record has no smn.message"


def test_rabbitmq_envelope_body_is_unwrapped() -> None:
    message = {"exchange": "", "routingKey": "events", "body": json.dumps([make_event(1), make_event(2)])}
    payload = {"trigger_type": "RABBITMQ", "records": [{"topic_id": "q", "messages": [message]}]}
    candidates = triggers.queue_candidates(payload, Trigger.RABBITMQ)
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
    assert [c.value for c in triggers.queue_candidates(event, Trigger.DIRECT)] == [event]
    assert [c.position for c in triggers.queue_candidates([event, event], Trigger.DIRECT)] == [
        {"event": 0},
        {"event": 1},
    ]
    assert len(triggers.queue_candidates({"events": [event]}, Trigger.DIRECT)) == 1
    assert not triggers.queue_candidates([], Trigger.DIRECT)[0].readable


def test_unknown_payload_is_one_unreadable_item() -> None:
    (candidate,) = triggers.queue_candidates({"hello": "world"}, Trigger.UNKNOWN)
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


# --- odd input: every trigger's reader answers with rejections, never an exception ----------------

ODD_PAYLOADS = [
    {},
    [],
    None,
    "text",
    7,
    {"Message": 3},
    {"Message": {"records": "x"}},
    {"records": "x", "messages": {"a": 1}},
    {"record": [None, 3]},
    {"message": {"data": None}},
    {"user_event": None},
    {"events": None},
]


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("payload", ODD_PAYLOADS, ids=repr)
def test_no_payload_makes_a_reader_raise(trigger: Trigger, payload: object) -> None:
    candidates = triggers.queue_candidates(payload, trigger)
    assert all(isinstance(c, triggers.Candidate) for c in candidates)
    assert all(not c.readable for c in candidates if not isinstance(c.value, dict))


def test_a_dis_reader_on_an_empty_payload_finds_no_records() -> None:
    assert triggers.queue_candidates({}, Trigger.DIS) == []


def test_a_trigger_given_as_its_value_or_an_unknown_name() -> None:
    event = make_event(1)
    assert [c.value for c in triggers.queue_candidates(event, "direct")] == [event]
    (candidate,) = triggers.queue_candidates(event, "no-such-trigger")
    assert "unrecognised payload" in candidate.value.reason


# --- triggers the forwarder does not take ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("dds", "a payload of the DDS trigger (records[].dds)"),
        ("obs", "a payload of the OBS trigger (Records[])"),
        ("lts", "a payload of the LTS trigger (lts.data)"),
        ("cts", "a payload of the CTS trigger (cts)"),
    ],
)
def test_an_unsupported_trigger_is_one_rejection_naming_it_and_the_supported_ones(
    name: str, named: str
) -> None:
    payload = load_event(name)
    (candidate,) = triggers.queue_candidates(payload, triggers.detect(payload))
    reason = candidate.value.reason
    assert reason.startswith(f"{named}, which the forwarder does not take; it takes ")
    for supported in ("API Gateway", "Timer (user_event)", "Kafka", "RocketMQ", "RabbitMQ", "SMN", "DIS"):
        assert supported in reason
    assert "Pub/Sub push" in reason and "direct invocation" in reason
    # the payload itself (documents, audit records) is not kept for the log
    assert candidate.value.raw is None
    assert candidate.value.field == "(payload)"


def test_dds_is_not_read_as_kafka() -> None:
    (candidate,) = triggers.queue_candidates(load_event("dds"), triggers.detect(load_event("dds")))
    assert "Kafka" not in candidate.value.reason.split(";")[0]
    assert "no messages array" not in candidate.value.reason


def test_an_unknown_payload_names_its_top_level_fields_only() -> None:
    payload = {"secretish": "value-not-logged", "other": 1}
    (candidate,) = triggers.queue_candidates(payload, triggers.detect(payload))
    assert candidate.value.reason.startswith(
        "an unrecognised payload (top-level fields: secretish, other); it takes API Gateway"
    )
    assert "value-not-logged" not in candidate.value.reason
    (scalar,) = triggers.queue_candidates(42, Trigger.UNKNOWN)
    assert scalar.value.reason.startswith("an unrecognised payload (a JSON number); it takes ")


def test_an_api_gateway_event_is_not_read_as_a_batch() -> None:
    (candidate,) = triggers.queue_candidates(load_event("apig"), Trigger.APIG)
    reason = candidate.value.reason
    assert reason.startswith("a request of the API Gateway trigger, which is answered over HTTP")


# --- timer ---------------------------------------------------------------------------------------

FIRED = "2024-11-26T08:30:00+08:00"
FIRED_MS = 1732581000000


def timer(user_event: object, fired: object = FIRED) -> dict[str, object]:
    return {
        "version": "v1.0",
        "time": fired,
        "trigger_type": "TIMER",
        "trigger_name": "hb",
        "user_event": user_event,
    }


def test_timer_with_one_event_without_time_takes_the_firing_time() -> None:
    event = make_event(1)
    del event["time"]
    (candidate,) = triggers.queue_candidates(timer(json.dumps(event)), Trigger.TIMER)
    assert candidate.value == {**event, "time": FIRED_MS}
    assert candidate.position == {"timer": "hb"}


@pytest.mark.parametrize("wrap", [lambda items: items, lambda items: {"events": items}])
def test_timer_with_several_events_keeps_their_own_times(wrap) -> None:
    first, second = make_event(1, now=123), make_event(2)
    del second["time"]
    candidates = triggers.queue_candidates(timer(json.dumps(wrap([first, second]))), Trigger.TIMER)
    assert [c.value["time"] for c in candidates] == [123, FIRED_MS]
    assert [c.position for c in candidates] == [{"timer": "hb", "event": 0}, {"timer": "hb", "event": 1}]


def test_timer_user_event_already_parsed_and_odd_firing_times() -> None:
    event = {"event_name": "x"}
    assert triggers.queue_candidates(timer(event, "2024-11-26T00:30:00Z"), Trigger.TIMER)[0].value == {
        "event_name": "x",
        "time": FIRED_MS,
    }
    assert triggers.queue_candidates(timer(event, "2024-11-26T00:30:00"), Trigger.TIMER)[0].value["time"] == (
        FIRED_MS
    )
    before = triggers.queue_candidates(timer(event, "yesterday"), Trigger.TIMER)[0].value["time"]
    assert abs(before - make_event(0)["time"]) < 60_000  # not a time: the moment it is read


@pytest.mark.parametrize(
    ("user_event", "reason"),
    [
        ("Hello world", "the timer's user_event is not JSON: Expecting value (line 1, column 1): put one"),
        ("", "the timer sent no user_event: put one event, an array of events or {\"events\": [...]}"),
        (None, "the timer sent no user_event"),
        ("3", "the user_event holds a JSON number, not an event object or an array of events"),
        ('{"events": 3}', '"events" in the user_event is a JSON number, not an array of events'),
        ("[]", "the user_event holds an empty array: no events"),
    ],
)
def test_timer_without_events_is_one_rejection(user_event: object, reason: str) -> None:
    (candidate,) = triggers.queue_candidates(timer(user_event), Trigger.TIMER)
    assert candidate.value.reason.startswith(reason)


# --- FORWARDER_MAX_ITEMS --------------------------------------------------------------------------


def test_a_message_with_more_events_than_max_items_is_one_rejection() -> None:
    three = json.dumps([make_event(i) for i in range(3)])
    two = json.dumps([make_event(i) for i in range(2)])
    payload = {"trigger_type": "KAFKA", "records": [{"topic_id": "t", "messages": [three, two]}]}
    candidates = triggers.queue_candidates(payload, Trigger.KAFKA, max_items=2)
    # the message at the limit is taken whole; the one above it is one rejection
    assert [c.readable for c in candidates] == [False, True, True]
    assert candidates[0].value.reason == (
        "the message holds 3 events, more than the 2 one message may hold (FORWARDER_MAX_ITEMS); "
        "none of them was taken"
    )
    assert candidates[0].position == {"topic": "t", "record": 0, "message": 0}
    assert candidates[0].value.raw == three


def test_max_items_applies_to_direct_pubsub_and_dis_payloads() -> None:
    events = [make_event(i) for i in range(3)]
    (direct,) = triggers.queue_candidates(events, Trigger.DIRECT, max_items=2)
    assert "the payload holds 3 events, more than the 2 one payload may hold" in direct.value.reason
    (pubsub,) = triggers.pubsub_candidates({"message": {"data": b64(events)}}, max_items=1)
    assert "FORWARDER_MAX_ITEMS" in pubsub.value.reason
    dis = {"Message": {"records": [{"data": b64(events)}]}}
    assert len(triggers.queue_candidates(dis, Trigger.DIS, max_items=3)) == 3
    (rejected,) = triggers.queue_candidates(dis, Trigger.DIS, max_items=2)
    assert not rejected.readable


def test_events_wrapper_that_is_not_an_array() -> None:
    (candidate,) = triggers.queue_candidates({"events": {"a": 1}}, Trigger.DIRECT)
    assert candidate.value.reason == '"events" in the payload is a JSON object, not an array of events'


# --- API Gateway's console test template ------------------------------------------------------------


def test_console_template_body_marked_base64_but_plain_json_is_read_as_text(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    event = load_event("apig_console")
    request = triggers.apig_request(event, request_id="console-1")
    assert request.body == event["body"]
    assert request.body_error is None
    assert [e["event_name"] for e in json.loads(request.body)] == ["ConsoleTestEvent", "ConsoleTestEvent2"]
    (note,) = log_lines(caplog.records, "note")
    assert note["request_id"] == "console-1"
    assert note["trigger"] == "apig"
    assert "plain JSON text" in note["note"]


def test_runtime_base64_body_logs_no_note(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forwarder")
    request = triggers.apig_request(load_event("apig"))
    assert json.loads(request.body)[0]["event_name"] == "OrderBacklogHigh"
    assert log_lines(caplog.records, "note") == []


def test_text_that_is_both_base64_and_json_is_decoded_as_base64() -> None:
    # "1234" is valid base64 and valid JSON: the flag wins, as API Gateway means it.
    assert triggers.apig_request({"body": "1234", "isBase64Encoded": True}).body == base64.b64decode("1234")


def test_neither_base64_nor_json_stays_a_body_error() -> None:
    request = triggers.apig_request({"body": "{not json", "isBase64Encoded": "true"})
    assert request.body_error == "the body is marked isBase64Encoded but is not valid base64"
