"""FunctionGraph's index.handler: golden payloads end to end, queue semantics, agency credentials."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import index
from forwarder.queue_ingest import DeliveryError
from tests.support.entry_helpers import (
    FakeContext,
    kafka_batch,
    log_lines,
    make_event,
    make_events,
    now_ms,
    stored_names,
)
from tests.support.entry_helpers import temporary_keys as agency_keys
from tests.support.golden import EVENTS_INSIDE, load_event
from tests.support.ingest_server import create_app

ROOT = Path(__file__).resolve().parents[1]

# The payloads followed end to end here; tests/test_trigger_events.py covers every published shape.
GOLDEN = ["apig", "dis", "kafka", "kafka_flat", "pubsub", "rabbitmq", "rocketmq", "smn"]


# --- must show 1: every golden payload reaches the emulator and is counted right ---------------


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_payload_reaches_cloud_eye(name: str, to_cloudeye, forwarder_logs, monkeypatch) -> None:
    # GIVEN a real-shaped trigger payload (with the ingest token its API Gateway headers carry)
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "ingest-demo-token")
    payload = load_event(name)
    # WHEN FunctionGraph hands it to the handler
    answer = index.handler(payload, FakeContext(request_id=f"golden-{name}"))
    expected = EVENTS_INSIDE[name]
    # THEN Cloud Eye holds exactly the events inside, in order
    assert stored_names(to_cloudeye) == expected
    # AND the answer (API Gateway) or the return value and log line (queues) count them right
    if name == "apig":
        assert answer["statusCode"] == 201
        body = json.loads(answer["body"])
        assert (body["received"], body["accepted"]) == (len(expected), len(expected))
        assert [result["event_name"] for result in body["results"]] == expected
    else:
        assert answer["accepted"] == answer["received"] == len(expected)
    (line,) = log_lines(forwarder_logs.records, "invocation")
    assert line["request_id"] == f"golden-{name}"
    assert line["trigger"] == ("kafka" if name == "kafka_flat" else name)
    assert (line["received"], line["accepted"], line["rejected"], line["failed"]) == (
        len(expected),
        len(expected),
        0,
        0,
    )
    assert line["requests"] == 1


def test_golden_pubsub_through_functions_framework_cloud_event(to_cloudeye, forwarder_logs) -> None:
    # Pub/Sub push arrives at ingest_pubsub as a CloudEvent whose data is the push message.
    client = create_app("ingest_pubsub").test_client()
    headers = {
        "ce-id": "12817390431237",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/shop-audit/topics/cloudeye-events",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    }
    response = client.post("/", json=load_event("pubsub"), headers=headers)
    assert response.status_code == 200
    assert stored_names(to_cloudeye) == EVENTS_INSIDE["pubsub"]
    (line,) = log_lines(forwarder_logs.records, "invocation")
    assert (line["trigger"], line["request_id"], line["accepted"]) == ("pubsub", "12817390431237", 2)


def test_pubsub_cloud_event_with_failed_delivery_is_an_error_so_the_push_is_retried(
    to_cloudeye, monkeypatch
) -> None:
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "1")
    to_cloudeye.set_faults(status=503, count=5, retry_after=0)
    client = create_app("ingest_pubsub").test_client()
    headers = {"ce-id": "1", "ce-specversion": "1.0", "ce-source": "//pubsub", "ce-type": "t"}
    response = client.post("/", json=load_event("pubsub"), headers=headers)
    assert response.status_code == 500
    # malformed data is logged and acknowledged, not retried forever
    bad = client.post("/", json={"message": {"data": "***"}}, headers=headers)
    assert bad.status_code == 200


# --- must show 3: queue semantics -------------------------------------------------------------


def test_kafka_rejects_alone_then_redelivery_fills_the_gap_without_duplicates(
    to_cloudeye, forwarder_logs, monkeypatch
) -> None:
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "2")
    moment = now_ms()
    good = make_events(6, now=moment)
    invalid = make_event(99, now=moment)
    invalid["detail"]["event_type"] = "EVENT.SYS"
    batch = kafka_batch(
        json.dumps(good[0]),
        "this is not JSON",
        json.dumps([good[1], invalid, good[2]]),
        json.dumps(good[3:]),
    )

    # GIVEN Cloud Eye answers 503 to every attempt
    to_cloudeye.set_faults(status=503, count=1000, retry_after=0)
    # WHEN the batch arrives, THEN the handler tries, then raises so the platform redelivers
    with pytest.raises(DeliveryError) as raised:
        index.handler(batch, FakeContext(request_id="first"))
    message = str(raised.value)
    assert "6 of 8 events could not be delivered" in message
    assert "503" in message
    assert to_cloudeye.stats()["posts_received"] == 2  # tried: one request, two attempts
    assert stored_names(to_cloudeye) == []
    # AND the two rejects are logged with their position, reason and raw text
    rejects = log_lines(forwarder_logs.records, "rejected")
    assert [(r["position"], r["raw"]) for r in rejects] == [
        ({"topic": "cloudeye-events", "record": 0, "message": 1}, "this is not JSON"),
        (
            {"topic": "cloudeye-events", "record": 0, "message": 2, "event": 1},
            json.dumps(invalid, separators=(",", ":")),
        ),
    ]
    assert "not JSON" in rejects[0]["reason"]
    assert "EVENT.SYS" in rejects[1]["reason"] and rejects[1]["errors"][0]["field"] == "detail.event_type"
    (failed_line,) = log_lines(forwarder_logs.records, "delivery failed")
    assert failed_line["failed"] == 6
    (summary,) = log_lines(forwarder_logs.records, "invocation")
    assert (summary["received"], summary["accepted"], summary["rejected"], summary["failed"]) == (8, 0, 2, 6)
    assert summary["retries"] == 1

    # WHEN Cloud Eye recovers and the platform redelivers the same batch
    to_cloudeye.clear_faults()
    forwarder_logs.clear()
    answer = index.handler(batch, FakeContext(request_id="second"))
    # THEN every valid event is stored once
    assert answer["accepted"] == 6 and answer["rejected"] == 2 and answer["failed"] == 0
    stored = [s["event"]["detail"]["resource_id"] for s in to_cloudeye.stored_events()]
    assert sorted(stored) == [f"res:{i:05d}" for i in range(6)]

    # AND a third delivery (the platform may repeat a batch) stores no duplicate
    index.handler(batch, FakeContext(request_id="third"))
    assert len(to_cloudeye.stored_events()) == 6
    assert to_cloudeye.stats()["duplicates"] == 6


def test_partial_failure_sends_everything_else_before_raising(to_cloudeye, monkeypatch) -> None:
    # GIVEN 250 events (3 requests) and Cloud Eye failing exactly one request for good
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("CLOUDEYE_MAX_CONCURRENCY", "1")
    to_cloudeye.set_faults(status=500, count=1)
    batch = kafka_batch(json.dumps(make_events(250)))
    with pytest.raises(DeliveryError) as raised:
        index.handler(batch, FakeContext())
    # THEN the other two requests were sent before the error
    assert raised.value.counts["failed"] == 100
    assert len(to_cloudeye.stored_events()) == 150


def test_a_rejected_item_is_logged_whole_up_to_8_kib(to_cloudeye, forwarder_logs) -> None:
    big = "x" * 20_000
    index.handler(kafka_batch(big), FakeContext())
    (reject,) = log_lines(forwarder_logs.records, "rejected")
    assert reject["raw_truncated"] is True
    assert reject["raw_bytes"] == 20_000
    assert len(reject["raw"].encode()) == 8192


def test_unknown_payload_is_logged_not_raised(to_cloudeye, forwarder_logs) -> None:
    answer = index.handler({"unexpected": "shape"}, FakeContext())
    assert (answer["trigger"], answer["rejected"]) == ("unknown", 1)
    (reject,) = log_lines(forwarder_logs.records, "rejected")
    assert "unrecognised payload" in reject["reason"]


def test_direct_invocation_answers_the_report(to_cloudeye) -> None:
    answer = index.handler([make_event(1), {"event_name": "x"}], FakeContext())
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["results"][1]["errors"][0]["field"] == "event_source"


def test_queue_config_error_names_the_variable_and_raises(forwarder_logs, monkeypatch) -> None:
    with pytest.raises(Exception, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        index.handler(kafka_batch(json.dumps(make_event(1))), FakeContext())
    (line,) = log_lines(forwarder_logs.records, "configuration error")
    assert "HUAWEICLOUD_SDK_PROJECT_ID" in line["error"]


def test_runtime_project_id_is_the_fallback(to_cloudeye, monkeypatch) -> None:
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID")
    monkeypatch.setenv("RUNTIME_PROJECT_ID", to_cloudeye.project_id)
    answer = index.handler(kafka_batch(json.dumps(make_event(1))), FakeContext())
    assert answer["accepted"] == 1


# --- must show 4: agency credentials from the context ------------------------------------------


@pytest.fixture
def temporary_keys(cloudeye):
    """The emulator accepts only these temporary keys, and requires their security token."""
    with agency_keys(cloudeye) as keys:
        yield keys


def test_agency_credentials_from_the_context_sign_the_requests(
    cloudeye, temporary_keys, monkeypatch, forwarder_logs
) -> None:
    # GIVEN no keys in the environment, only the endpoint and the project
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", cloudeye.base_url)
    monkeypatch.setenv("RUNTIME_PROJECT_ID", cloudeye.project_id)
    context = FakeContext(**temporary_keys)
    # WHEN a queue batch and an API Gateway request arrive
    answer = index.handler(kafka_batch(json.dumps(make_event(1))), context)
    apig = index.handler(
        {"httpMethod": "POST", "headers": {}, "body": json.dumps([make_event(2)]), "isBase64Encoded": False},
        context,
    )
    # THEN the emulator verified the signature made with the temporary keys and saw the token
    assert answer["accepted"] == 1
    assert apig["statusCode"] == 201, apig["body"]
    assert len(cloudeye.stored_events()) == 2
    # AND no secret appears in any log line
    text = "\n".join(record.getMessage() for record in forwarder_logs.records)
    assert "temp-agency-sk" not in text and "temp-agency-token" not in text


def test_without_the_security_token_the_temporary_keys_are_refused(
    cloudeye, temporary_keys, monkeypatch
) -> None:
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", cloudeye.base_url)
    monkeypatch.setenv("RUNTIME_PROJECT_ID", cloudeye.project_id)
    context = FakeContext(access_key="temp-agency-ak", secret_key="temp-agency-sk")
    with pytest.raises(DeliveryError) as raised:
        index.handler(kafka_batch(json.dumps(make_event(1))), context)
    assert "401" in str(raised.value)
    assert "temp-agency-sk" not in str(raised.value)


# --- the context's clock bounds retries ------------------------------------------------------


def test_deadline_from_the_remaining_time() -> None:
    before = time.monotonic()
    deadline = index.deadline_from(FakeContext(remaining_ms=10_000))
    assert before + 7.9 <= deadline <= time.monotonic() + 8.0  # 10 s minus a 2 s margin
    short = index.deadline_from(FakeContext(remaining_ms=1_000))
    assert short - time.monotonic() == pytest.approx(0.8, abs=0.05)  # 20 % margin when short
    assert index.deadline_from(object()) is None
    assert index.deadline_from(FakeContext(remaining_ms=float("nan"))) is None


def test_no_time_left_means_no_retry_storm(to_cloudeye, monkeypatch) -> None:
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "10")
    to_cloudeye.set_faults(status=503, count=1000, retry_after=0)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="out of time"):
        index.handler(kafka_batch(json.dumps(make_event(1))), FakeContext(remaining_ms=500))
    assert time.monotonic() - started < 1.0


# --- cold start ------------------------------------------------------------------------------


def test_importing_the_handler_is_cheap() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import index\n"
        "elapsed = time.perf_counter() - t\n"
        "heavy = [m for m in ('pydantic', 'flask', 'functions_framework', 'werkzeug') if m in sys.modules]\n"
        "print(heavy, elapsed)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "function", capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    heavy, elapsed = result.stdout.rsplit("]", 1)
    assert heavy == "["
    assert float(elapsed) < 0.5


def test_apig_base64_body_and_logged_summary(to_cloudeye, forwarder_logs) -> None:
    event = {
        "httpMethod": "POST",
        "headers": {"x-request-id": "ignored-when-context-has-one"},
        "body": base64.b64encode(json.dumps(make_events(2)).encode()).decode(),
        "isBase64Encoded": True,
    }
    answer = index.handler(event, FakeContext(request_id="fg-req-9"))
    assert answer["statusCode"] == 201
    assert answer["headers"]["X-Request-Id"] == "fg-req-9"
    (line,) = log_lines(forwarder_logs.records, "invocation")
    assert set(line) >= {
        "request_id",
        "trigger",
        "received",
        "accepted",
        "rejected",
        "failed",
        "requests",
        "retries",
        "duration_ms",
    }
    assert line["status"] == 201


# --- log helpers -----------------------------------------------------------------------------


def test_cut_raw_keeps_whole_characters_and_the_full_size() -> None:
    from forwarder.logs import RAW_LIMIT_BYTES, cut_raw

    text = "é" * RAW_LIMIT_BYTES  # 2 bytes each
    cut = cut_raw(text)
    assert cut["raw_truncated"] is True
    assert cut["raw_bytes"] == 2 * RAW_LIMIT_BYTES
    assert cut["raw"] == "é" * (RAW_LIMIT_BYTES // 2)
    assert cut_raw({"a": [1, 2]}) == {"raw": '{"a":[1,2]}', "raw_bytes": 11, "raw_truncated": False}
    assert cut_raw(b"\xff")["raw"] == "\ufffd"


def test_request_id_sources() -> None:
    from forwarder.logs import request_id

    assert request_id(FakeContext(request_id="fg-1"), {"x-request-id": "hdr"}) == "fg-1"
    assert request_id(None, {"x-cff-request-id": "cff-2"}) == "cff-2"
    # an unusable header (too long, or with characters that do not belong in an id) is replaced
    generated = request_id(None, {"x-request-id": "bad id\n" * 40})
    assert len(generated) == 32 and "\n" not in generated
