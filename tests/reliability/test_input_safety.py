"""Input safety: what a caller or a setting controls cannot redirect, inflate or time a request.

- Project ids and event names cannot change the request path: a project id must match
  ``^[A-Za-z0-9-]{1,64}$`` before any URL is built (settings and client both check), and an event
  name only ever travels in the body, after validation.
- Endpoint overrides are https unless the host is loopback.
- Bodies and messages are capped: ``FORWARDER_MAX_BODY_BYTES`` (413), ``CLOUDEYE_MAX_REQUEST_BYTES``
  (an event over it is rejected alone), and a rejected queue item is logged cut to 8 KiB.
- The ingest token is compared with ``hmac.compare_digest`` (constant time), nothing else.
"""

from __future__ import annotations

import base64
import inspect
import json
import socket
from types import SimpleNamespace

import pytest

import index
from forwarder import http_ingest, report_events
from forwarder.client import CloudEyeClient
from forwarder.logs import RAW_LIMIT_BYTES
from forwarder.queue_ingest import DeliveryError
from forwarder.settings import Settings, SettingsError
from tests.reliability.harness import (
    INGEST_TOKEN,
    PROJECT_ID,
    environment,
    exception_text,
    forwarder_env,
    leaks,
    now_ms,
    valid_event,
)
from tests.support.entry_helpers import FakeContext, log_lines
from tests.support.loopback import Answer, LoopbackServer

PATH_TRICKS = ["../x", "a/b", "%2e%2e", "x?y", "x#y", "a b", "..", "/", "x" * 65, "é", "a\r\nHost: evil"]


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


@pytest.fixture
def server():
    with LoopbackServer([Answer(201)]) as loopback:
        yield loopback


def kafka(*events: object) -> dict:
    return {"trigger_type": "KAFKA", "records": [{"messages": [json.dumps(e) for e in events]}]}


def events(count: int, tag: str = "safe") -> list[dict]:
    import random

    rng = random.Random(7)
    return [valid_event(rng, tag, index, now_ms()) for index in range(count)]


# --- project ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("project_id", PATH_TRICKS)
def test_a_project_id_that_could_change_the_path_sends_nothing(project_id: str, server) -> None:
    # From the environment: refused when the settings are read, naming the variable, not the value.
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID") as refused:
        Settings.from_env(environ=forwarder_env(server.url, HUAWEICLOUD_SDK_PROJECT_ID=project_id))
    if len(project_id) > 2:
        assert project_id not in str(refused.value)
    # Built directly, bypassing from_env: refused as it is built, so no client ever gets it.
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        Settings(access_key="AK", secret_key="SK", project_id=project_id, endpoint=server.url)
    # Through FunctionGraph's own variable and both entries: a configuration error, nothing sent.
    env = forwarder_env(server.url, RUNTIME_PROJECT_ID=project_id)
    del env["HUAWEICLOUD_SDK_PROJECT_ID"]
    with environment(env):
        with pytest.raises(SettingsError):
            index.handler(kafka(*events(2)), FakeContext())
        answer = index.handler(
            {"httpMethod": "POST", "headers": {"authorization": f"Bearer {INGEST_TOKEN}"}, "body": "[]"},
            FakeContext(),
        )
    assert answer["statusCode"] == 500 and "PROJECT_ID" in answer["body"]
    assert server.requests == []


def test_the_path_is_exactly_the_events_api(server) -> None:
    report = report_events(events(3), settings=Settings.from_env(environ=forwarder_env(server.url)))
    assert report.accepted == 3
    assert [request.path for request in server.requests] == [f"/V1.0/{PROJECT_ID}/events"]


# --- event names ------------------------------------------------------------------------------------


def test_event_names_never_reach_the_path_or_the_wire_unvalidated(server) -> None:
    good = events(2)
    bad = [
        {**good[0], "event_name": name, "detail": {"resource_id": f"bad{i}"}}
        for i, name in enumerate(PATH_TRICKS)
    ]
    bad += [{**good[0], "event_name": "Ok\n"}]  # a trailing newline must not slip through "$"
    with environment(forwarder_env(server.url)):
        answer = index.handler(kafka(*bad, *good), FakeContext())
    assert (answer["accepted"], answer["rejected"]) == (2, len(bad))
    (request,) = server.requests
    assert request.path == f"/V1.0/{PROJECT_ID}/events"
    assert [e["event_name"] for e in json.loads(request.body)] == [e["event_name"] for e in good]


# --- endpoints --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://ces.ap-southeast-1.myhuaweicloud.com",
        "http://10.0.0.1:8900",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://0x7f.0.0.1",
        "http://127.1",
        "http://[::ffff:8.8.8.8]",
        "ftp://127.0.0.1",
        "file:///etc/passwd",
        "//127.0.0.1",
        "http://127.0.0.1@evil.example",
    ],
)
def test_plain_http_only_to_loopback(endpoint: str, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("a refused endpoint must not be connected to")

    monkeypatch.setattr(socket, "create_connection", no_network)
    env = forwarder_env(endpoint)
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT"):
        Settings.from_env(environ=env)
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT"):
        CloudEyeClient(Settings(access_key="AK", secret_key="SK", project_id="p", endpoint=endpoint))
    with environment(env), pytest.raises(SettingsError):
        index.handler(kafka(*events(1)), FakeContext())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"])
def test_plain_http_to_loopback_is_allowed(host: str) -> None:
    endpoint = f"http://{host}:8900"
    assert Settings.from_env(environ=forwarder_env(endpoint)).base_url == endpoint


def test_regions_always_give_https() -> None:
    for region in ("ap-southeast-1", "cn-north-4", "eu-de"):
        assert Settings.from_env(environ={"CLOUDEYE_REGION": region}).base_url.startswith("https://ces.")
    with pytest.raises(SettingsError, match="CLOUDEYE_REGION"):
        Settings.from_env(environ={"CLOUDEYE_REGION": "evil.example/x"})


# --- size caps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoded", [False, True])
def test_api_gateway_body_over_the_cap_is_413_and_nothing_is_parsed(encoded: bool, server) -> None:
    body = json.dumps(events(30))
    assert len(body) > 4096
    with environment(forwarder_env(server.url, FORWARDER_MAX_BODY_BYTES="4096")):
        answer = index.handler(
            {
                "httpMethod": "POST",
                "headers": {"authorization": f"Bearer {INGEST_TOKEN}"},
                "body": base64.b64encode(body.encode()).decode() if encoded else body,
                "isBase64Encoded": encoded,
            },
            FakeContext(),
        )
    assert answer["statusCode"] == 413 and "FORWARDER_MAX_BODY_BYTES" in answer["body"]
    assert server.requests == []


def test_ingest_body_over_the_cap_is_413(ingest, server) -> None:
    with environment(forwarder_env(server.url, FORWARDER_MAX_BODY_BYTES="4096")):
        reply = ingest.post(events(30), headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
    assert reply.status == 413 and "FORWARDER_MAX_BODY_BYTES" in reply.text
    assert server.requests == []


def test_an_event_over_the_request_size_is_rejected_alone(server, caplog) -> None:
    big = events(1, "big")[0]
    big["detail"]["content"] = "g" * 4096  # valid by Cloud Eye's rules, too big for one request
    with environment(forwarder_env(server.url, CLOUDEYE_MAX_REQUEST_BYTES="4096")):
        answer = index.handler(kafka(*events(3), big), FakeContext())
    assert (answer["accepted"], answer["rejected"]) == (3, 1)
    (reject,) = log_lines(caplog.records, "rejected")
    assert "CLOUDEYE_MAX_REQUEST_BYTES" in reject["reason"]
    assert all(len(request.body) <= 4096 for request in server.requests)


def test_a_huge_unreadable_message_is_rejected_and_logged_cut(server, caplog) -> None:
    junk = "not json " * 200_000  # 1.8 MB
    with environment(forwarder_env(server.url)):
        answer = index.handler(
            {"trigger_type": "KAFKA", "records": [{"messages": [junk, json.dumps(events(1)[0])]}]},
            FakeContext(),
        )
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    (reject,) = log_lines(caplog.records, "rejected")
    assert reject["raw_truncated"] is True and reject["raw_bytes"] == len(junk)
    assert len(reject["raw"].encode()) <= RAW_LIMIT_BYTES
    assert max(len(record.getMessage()) for record in caplog.records) < 2 * RAW_LIMIT_BYTES


# --- the ingest token -------------------------------------------------------------------------------


def test_the_ingest_token_is_compared_in_constant_time(monkeypatch, server) -> None:
    # By inspection: the header and the query parameter go through one comparison, which hands
    # both sides to hmac.compare_digest and compares nothing itself.
    for check in (http_ingest.bearer_ok, http_ingest.query_token_ok):
        source = inspect.getsource(check)
        assert "_same(" in source and "==" not in source
    source = inspect.getsource(http_ingest._same)
    assert "hmac.compare_digest(" in source and "==" not in source
    # By substitution: whatever compare_digest says decides, whatever the token.
    calls: list[tuple[bytes, bytes]] = []
    verdict = [True]

    def compare_digest(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return verdict[0]

    monkeypatch.setattr(http_ingest, "hmac", SimpleNamespace(compare_digest=compare_digest))
    request = {
        "httpMethod": "POST",
        "queryStringParameters": {"dry_run": "true"},
        "body": json.dumps(events(1)),
    }
    with environment(forwarder_env(server.url)):
        wrong = index.handler({**request, "headers": {"authorization": "Bearer wrong-token"}}, FakeContext())
        verdict[0] = False
        right = index.handler(
            {**request, "headers": {"authorization": f"Bearer {INGEST_TOKEN}"}}, FakeContext()
        )
    assert wrong["statusCode"] == 201  # compare_digest said yes
    assert right["statusCode"] == 401  # compare_digest said no
    assert calls == [(b"wrong-token", INGEST_TOKEN.encode()), (INGEST_TOKEN.encode(), INGEST_TOKEN.encode())]


def test_delivery_errors_name_no_credential(server) -> None:
    # Every attempt dropped: the exception the platform logs carries reasons, not credentials.
    with LoopbackServer([Answer(drop=True)]) as dropping:
        env = forwarder_env(dropping.url, CLOUDEYE_MAX_ATTEMPTS="2")
        with environment(env), pytest.raises(DeliveryError) as raised:
            index.handler(kafka(*events(2)), FakeContext())
    assert "could not be reached" in str(raised.value)
    assert leaks(exception_text(raised.value)) == []
