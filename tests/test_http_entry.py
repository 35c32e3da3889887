"""The HTTP ingest contract: body forms, token, size cap, dry_run, statuses; served over a socket."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest

import index
from forwarder import http_ingest
from forwarder.intake import Unreadable
from forwarder.report import Report
from tests.support.entry_helpers import (
    FakeContext,
    log_lines,
    make_event,
    make_events,
    now_ms,
    stored_names,
    temporary_keys,
)
from tests.support.fresh_process import run_command
from tests.support.ingest_server import IngestServer, create_app


@pytest.fixture(scope="module")
def ingest_server():
    with IngestServer("ingest") as server:
        yield server


# --- body forms ----------------------------------------------------------------------------------


class TestParseBody:
    def test_json_array(self) -> None:
        events = [make_event(0), make_event(1)]
        assert [c.value for c in http_ingest.parse_body(json.dumps(events).encode())] == events

    def test_one_object(self) -> None:
        event = make_event(0)
        assert [c.value for c in http_ingest.parse_body(json.dumps(event).encode())] == [event]

    def test_events_wrapper(self) -> None:
        events = [make_event(0)]
        body = json.dumps({"events": events}).encode()
        assert [c.value for c in http_ingest.parse_body(body)] == events

    def test_events_wrapper_must_hold_an_array(self) -> None:
        with pytest.raises(http_ingest.BodyError, match='"events" must be an array'):
            http_ingest.parse_body(b'{"events": {}}')

    def test_ndjson_by_content_type_rejects_bad_lines_alone(self) -> None:
        body = b'{"a": 1}\n\nnot json\r\n{"b": 2}\n'
        candidates = http_ingest.parse_body(body, "application/x-ndjson; charset=utf-8")
        assert [c.position for c in candidates] == [{"line": 1}, {"line": 3}, {"line": 4}]
        bad = candidates[1].value
        assert isinstance(bad, Unreadable)
        assert bad.field == "(line 3)"
        assert bad.reason.startswith("line 3 is not JSON")

    def test_ndjson_detected_when_every_line_parses(self) -> None:
        body = b'{"a": 1}\n{"b": 2}\n'
        assert [c.value for c in http_ingest.parse_body(body)] == [{"a": 1}, {"b": 2}]

    def test_unparsable_body_without_ndjson_type_is_an_error(self) -> None:
        with pytest.raises(http_ingest.BodyError, match="the body is not JSON"):
            http_ingest.parse_body(b'{"a": 1}\nnot json\n')

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "the body is empty"),
            (b"  \n ", "the body is empty"),
            (b"\xff\xfe", "not UTF-8"),
            (b"42", "holds a JSON number"),
            (b'"x"', "holds a JSON string"),
            (b"[" * 50_000, "nested too deeply"),
        ],
    )
    def test_unreadable_bodies(self, body: bytes, message: str) -> None:
        with pytest.raises(http_ingest.BodyError, match=message):
            http_ingest.parse_body(body)

    def test_a_utf8_bom_is_allowed(self) -> None:
        assert len(http_ingest.parse_body(b"\xef\xbb\xbf[{}]")) == 1


class TestFlagsAndToken:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({}, False),
            ({"dry_run": "true"}, True),
            ({"dry_run": "1"}, True),
            ({"dry_run": ""}, True),
            ({"dry_run": "false"}, False),
            ({"dry_run": "OFF"}, False),
        ],
    )
    def test_dry_run_values(self, query: dict[str, str], expected: bool) -> None:
        assert http_ingest.dry_run_flag(query) is expected

    @pytest.mark.parametrize("value", ["maybe", "2", "truthy"])
    def test_dry_run_is_strict(self, value: str) -> None:
        with pytest.raises(http_ingest.BodyError, match="dry_run must be true or false"):
            http_ingest.dry_run_flag({"dry_run": value})

    @pytest.mark.parametrize(
        ("header", "ok"),
        [
            ("Bearer s3cret", True),
            ("bearer  s3cret ", True),
            ("Bearer wrong", False),
            ("s3cret", False),
            ("Basic s3cret", False),
            ("", False),
            ("Bearer s3cret\udcff", False),
        ],
    )
    def test_bearer(self, header: str, ok: bool) -> None:
        assert http_ingest.bearer_ok({"authorization": header}, "s3cret") is ok


@pytest.mark.parametrize(
    ("statuses", "failure", "expected"),
    [
        (["accepted", "accepted"], None, 201),
        (["accepted", "rejected"], None, 207),
        (["rejected"], None, 400),
        ([], None, 400),
        (["accepted", "failed"], "retryable", 503),
        (["rejected", "failed"], "final", 502),
    ],
)
def test_status_for(statuses: list[str], failure: str | None, expected: int) -> None:
    report = Report(results=[{"index": i, "status": s} for i, s in enumerate(statuses)])
    report.failures_retryable = failure != "final"
    assert http_ingest.status_for(report) == expected


# --- functions-framework over a real socket -------------------------------------------------------


def test_250_valid_events_answer_201_in_order_in_3_requests(ingest_server, to_cloudeye) -> None:
    # GIVEN 250 valid events
    events = make_events(250)
    # WHEN they are posted to the functions-framework entry
    reply = ingest_server.post(events)
    # THEN every one is accepted, in input order, with Cloud Eye's id
    assert reply.status == 201, reply.text
    body = reply.json()
    assert (body["received"], body["accepted"], body["rejected"], body["failed"]) == (250, 250, 0, 0)
    assert [result["index"] for result in body["results"]] == list(range(250))
    assert all(result["status"] == "accepted" and result["event_id"] for result in body["results"])
    assert reply.headers["content-type"].startswith("application/json")
    # AND Cloud Eye got them in 3 requests (100 + 100 + 50)
    assert to_cloudeye.stats()["posts_received"] == 3
    assert len(to_cloudeye.stored_events()) == 250


def test_two_invalid_events_answer_207_naming_index_and_field(ingest_server, to_cloudeye) -> None:
    events = make_events(250)
    events[17]["event_name"] = "9starts_with_a_digit"
    events[203]["detail"]["event_level"] = "Catastrophic"
    reply = ingest_server.post(events)
    assert reply.status == 207, reply.text
    body = reply.json()
    assert (body["accepted"], body["rejected"]) == (248, 2)
    rejected = [result for result in body["results"] if result["status"] == "rejected"]
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in rejected] == [
        (17, ["event_name"]),
        (203, ["detail.event_level"]),
    ]
    stored = {stored["event"]["detail"]["resource_id"] for stored in to_cloudeye.stored_events()}
    assert len(stored) == 248
    assert "res:00017" not in stored and "res:00203" not in stored


def test_unreadable_body_answers_400(ingest_server, to_cloudeye) -> None:
    reply = ingest_server.post(b"{this is not json", content_type="application/json")
    assert reply.status == 400
    body = reply.json()
    assert body["received"] == 0 and body["results"] == []
    assert "the body is not JSON" in body["error"]
    assert to_cloudeye.stored_events() == []


def test_body_over_the_cap_answers_413(ingest_server, to_cloudeye, monkeypatch) -> None:
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", "2000")
    reply = ingest_server.post(make_events(20))
    assert reply.status == 413
    assert "FORWARDER_MAX_BODY_BYTES" in reply.json()["error"]
    assert to_cloudeye.stored_events() == []


def test_body_over_the_cap_without_content_length_answers_413(
    ingest_server, to_cloudeye, monkeypatch
) -> None:
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", "2000")
    body = json.dumps(make_events(20)).encode()

    def chunks():
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    import http.client

    connection = http.client.HTTPConnection(ingest_server.host, ingest_server.port, timeout=30)
    try:
        connection.request(
            "POST", "/", body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 413
        response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic c3VwZXI6c2VjcmV0"])
def test_missing_or_wrong_bearer_token_answers_401(
    ingest_server, to_cloudeye, monkeypatch, authorization
) -> None:
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "the-right-token")
    headers = {"Authorization": authorization} if authorization else {}
    reply = ingest_server.post(make_events(3), headers=headers)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert "the-right-token" not in reply.text
    assert to_cloudeye.stored_events() == []
    # the right token gets in
    ok = ingest_server.post(make_events(3), headers={"Authorization": "Bearer the-right-token"})
    assert ok.status == 201


def test_dry_run_validates_and_stores_nothing(ingest_server, to_cloudeye) -> None:
    events = make_events(5)
    events[2]["time"] = 1_700_000_000  # seconds, not milliseconds
    reply = ingest_server.post(events, target="/?dry_run=true")
    assert reply.status == 207
    body = reply.json()
    assert body["dry_run"] is True
    assert (body["accepted"], body["rejected"]) == (4, 1)
    assert "looks like seconds" in body["results"][2]["errors"][0]["message"]
    assert to_cloudeye.stored_events() == []
    assert to_cloudeye.stats()["posts_received"] == 0


def test_bad_dry_run_value_answers_400(ingest_server, to_cloudeye) -> None:
    reply = ingest_server.post(make_events(1), target="/?dry_run=perhaps")
    assert reply.status == 400
    assert "dry_run must be true or false" in reply.json()["error"]


def test_ndjson_over_the_socket(ingest_server, to_cloudeye) -> None:
    lines = [json.dumps(event) for event in make_events(3)]
    lines.insert(1, "{broken")
    reply = ingest_server.post("\n".join(lines), content_type="application/x-ndjson")
    assert reply.status == 207
    results = reply.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "accepted"]
    assert results[1]["errors"][0]["field"] == "(line 2)"
    assert len(to_cloudeye.stored_events()) == 3


def test_cloud_eye_failing_after_retries_answers_503_with_retry_after(
    ingest_server, to_cloudeye, monkeypatch
):
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "2")
    to_cloudeye.set_faults(status=503, count=10, retry_after=0)
    reply = ingest_server.post(make_events(3))
    assert reply.status == 503, reply.text
    assert int(reply.headers["retry-after"]) >= 1
    body = reply.json()
    assert body["failed"] == 3
    assert "503" in body["results"][0]["error"]


def test_cloud_eye_refusing_the_keys_answers_502(ingest_server, to_cloudeye, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-emulator-secret")
    reply = ingest_server.post(make_events(2))
    assert reply.status == 502, reply.text
    assert "retry-after" not in reply.headers
    assert "not-the-emulator-secret" not in reply.text


def test_missing_settings_answer_500_naming_the_variable(ingest_server, to_cloudeye, monkeypatch):
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID")
    reply = ingest_server.post(make_events(1))
    assert reply.status == 500
    assert "HUAWEICLOUD_SDK_PROJECT_ID" in reply.json()["error"]
    assert to_cloudeye.access_key not in reply.text and to_cloudeye.secret_key not in reply.text


def test_agency_keys_from_x_cff_headers_sign_the_requests(ingest_server, cloudeye, monkeypatch) -> None:
    # GIVEN an HTTP function on FunctionGraph (its RUNTIME_* variables) with no credential in the
    # environment: the platform passes the agency's keys in headers
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", cloudeye.base_url)
    monkeypatch.setenv("RUNTIME_PROJECT_ID", cloudeye.project_id)
    monkeypatch.setenv("RUNTIME_FUNC_NAME", "forwarder")
    with temporary_keys(cloudeye) as keys:
        headers = {
            "X-CFF-Security-Access-Key": keys["access_key"],
            "X-CFF-Security-Secret-Key": keys["secret_key"],
            "X-CFF-Security-Token": keys["security_token"],
            "X-CFF-Request-Id": "cff-req-7",
        }
        reply = ingest_server.post(make_events(2), headers=headers)
    # THEN the emulator accepted requests signed with them and carrying the token
    assert reply.status == 201, reply.text
    assert reply.headers["x-request-id"] == "cff-req-7"
    assert len(cloudeye.stored_events()) == 2


CALLER_KEYS = {
    "X-CFF-Security-Access-Key": "caller-ak",
    "X-CFF-Security-Secret-Key": "caller-sk",
    "X-CFF-Security-Token": "caller-token",
}


def test_credential_headers_are_ignored_off_functiongraph(ingest_server, cloudeye, monkeypatch) -> None:
    # GIVEN no RUNTIME_* variables: not FunctionGraph, so the headers come from the caller
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", cloudeye.base_url)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", cloudeye.project_id)
    with temporary_keys(cloudeye) as keys:
        headers = {
            "X-CFF-Security-Access-Key": keys["access_key"],
            "X-CFF-Security-Secret-Key": keys["secret_key"],
            "X-CFF-Security-Token": keys["security_token"],
        }
        reply = ingest_server.post(make_events(2), headers=headers)
    # THEN they are not used: no credential is configured, nothing is sent
    assert reply.status == 500 and "no credentials" in reply.json()["error"]
    assert cloudeye.stored_events() == []


def test_caller_headers_never_replace_a_configured_iam_token(ingest_server, cloudeye, monkeypatch) -> None:
    # GIVEN FunctionGraph with only CLOUDEYE_AUTH_TOKEN configured
    monkeypatch.setenv("CLOUDEYE_ENDPOINT", cloudeye.base_url)
    monkeypatch.setenv("RUNTIME_PROJECT_ID", cloudeye.project_id)
    monkeypatch.setenv("RUNTIME_FUNC_NAME", "forwarder")
    monkeypatch.setenv("CLOUDEYE_AUTH_TOKEN", "configured-iam-token")
    captured: list[dict[str, str]] = []
    from forwarder import client

    original = client.CloudEyeClient._exchange

    def spy(self, body, timeout):
        captured.append({"token": self.settings.auth_token and self.settings.auth_token.reveal(),
                         "ak": self.settings.access_key or ""})
        return original(self, body, timeout)

    monkeypatch.setattr(client.CloudEyeClient, "_exchange", spy)
    # WHEN a caller sends its own keys in the platform's credential headers
    ingest_server.post(make_events(1), headers=CALLER_KEYS)
    # THEN the request went out with the configured token, never the caller's keys
    assert captured and all(c == {"token": "configured-iam-token", "ak": ""} for c in captured)


def test_get_is_not_allowed(ingest_server) -> None:
    reply = ingest_server.request("GET", "/")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"


def test_request_id_header_is_echoed_and_logged(ingest_server, to_cloudeye, caplog) -> None:
    caplog.set_level("INFO", logger="forwarder")
    reply = ingest_server.post(make_events(2), headers={"X-Request-Id": "trace-abc-123"})
    assert reply.headers["x-request-id"] == "trace-abc-123"
    (line,) = log_lines(caplog.records, "invocation")
    assert line["request_id"] == "trace-abc-123"
    assert line["trigger"] == "http"
    assert (line["received"], line["accepted"], line["requests"], line["status"]) == (2, 2, 1, 201)


def test_main_makes_forwarder_importable_from_the_repo_root(tmp_path) -> None:
    # functions-framework loads main.py by path from wherever it is started.
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import functions_framework, sys\n"
        "app = functions_framework.create_app(target='ingest', source='function/main.py')\n"
        "client = app.test_client()\n"
        "r = client.post('/?dry_run=1', data=b'[]')\n"
        "print(r.status_code)\n"
    )
    result = run_command([sys.executable, "-c", code], cwd=root, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("400")


# --- the same answers through API Gateway --------------------------------------------------------


def _apig(body: bytes, *, query: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> dict:
    return {
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", **(headers or {})},
        "queryStringParameters": query or {},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
        "requestContext": {"requestId": "apig-1"},
    }


def _parity_body(kind: str, now: int) -> bytes:
    if kind == "valid":
        return json.dumps(make_events(3, now=now)).encode()
    if kind == "mixed":
        return json.dumps([make_event(0, now=now), {"event_name": 5}]).encode()
    if kind == "large":
        return json.dumps(make_events(30, now=now)).encode()
    return {"unreadable": b"nope", "empty": b"[]"}[kind]


@pytest.mark.parametrize(
    ("kind", "query", "env"),
    [
        ("valid", {}, {}),
        ("mixed", {}, {}),
        ("unreadable", {}, {}),
        ("empty", {}, {}),
        ("valid", {"dry_run": "true"}, {}),
        ("valid", {"dry_run": "x"}, {}),
        ("empty", {}, {"FORWARDER_INGEST_TOKEN": "t"}),
        ("large", {}, {"FORWARDER_MAX_BODY_BYTES": "100"}),
    ],
)
def test_api_gateway_and_functions_framework_answer_identically(
    kind, query, env, ingest_server, to_cloudeye, monkeypatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    body = _parity_body(kind, now_ms())
    target = "/?" + urlencode(query) if query else "/"
    # WHEN the same request reaches functions-framework and API Gateway
    served = ingest_server.post(body, target=target)
    to_cloudeye.reset()  # the same events must be created again, not found as duplicates
    apig = index.handler(_apig(body, query=query), FakeContext())
    # THEN status and body are the same (event ids aside)
    assert apig["statusCode"] == served.status
    assert apig["isBase64Encoded"] is False
    assert apig["headers"]["Content-Type"] == "application/json"

    def without_ids(answer: dict) -> dict:
        for result in answer.get("results", []):
            result.pop("event_id", None)
        return answer

    assert without_ids(json.loads(apig["body"])) == without_ids(served.json())


def test_test_client_unit(to_cloudeye) -> None:
    client = create_app("ingest").test_client()
    response = client.post("/", data=json.dumps(make_events(2)), content_type="application/json")
    assert response.status_code == 201
    assert stored_names(to_cloudeye) == ["BatchEvent", "BatchEvent"]


def test_an_empty_array_is_a_400_that_says_so() -> None:
    client = create_app("ingest").test_client()
    response = client.post("/", data=b"[]", content_type="application/json")
    assert response.status_code == 400
    assert "holds no events" in response.get_json()["error"]
