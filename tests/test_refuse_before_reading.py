"""Refusal costs nothing: served through the functions-framework command (gunicorn, real sockets),
a request without the token, one over the byte cap and one with the wrong method get their
answer while the serving process's memory (read from /proc) stays where it was, whatever the
body's size, chunked or not. Pub/Sub pushes take the same token, as a bearer or ``?token=``."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.entry_helpers import make_events, stored_names
from tests.support.ingest_server import IngestServer, ServedFunction

TOKEN = "push-shared-secret-0123"
HUGE = 256 * 1024 * 1024
CAP = 1024 * 1024
# Growth allowed while refusing a 256 MiB body: a few MiB of pieces in flight, not the body.
FEW_MIB = 8.0
PUSH_HEADERS = {
    "ce-id": "push-1",
    "ce-specversion": "1.0",
    "ce-source": "//pubsub.googleapis.com/projects/shop/topics/cloudeye-events",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
}

pytestmark = pytest.mark.slow


def settings_env(**extra: str) -> dict[str, str]:
    return {
        "FORWARDER_INGEST_TOKEN": TOKEN,
        "FORWARDER_MAX_BODY_BYTES": str(CAP),
        "HUAWEICLOUD_SDK_PROJECT_ID": "project1",
        "CLOUDEYE_REGION": "ap-southeast-1",
        "HUAWEICLOUD_SDK_AK": "AKNOTUSED",
        "HUAWEICLOUD_SDK_SK": "SKNOTUSED",
        **extra,
    }


@pytest.fixture(scope="module", params=["ingest", "ingest_pubsub"])
def served(request):
    with ServedFunction(request.param, settings_env()) as function:
        yield function


def refused_with_bounded_memory(served: ServedFunction, headers: dict[str, str], chunked: bool) -> int:
    served.reset_peak()
    before = served.rss_mib()
    reply = served.send({**PUSH_HEADERS, **headers}, HUGE, chunked=chunked)
    growth = served.peak_mib() - before
    assert reply is not None, "no answer came back"
    assert growth <= FEW_MIB, f"the server grew by {growth:.1f} MiB refusing a 256 MiB body"
    assert reply.headers.get("x-request-id")
    assert reply.json()["accepted"] == 0
    return reply.status


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_256_mib_without_the_token_is_refused_with_bounded_memory(served, chunked: bool) -> None:
    status = refused_with_bounded_memory(served, {}, chunked)
    assert status == 401


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_256_mib_with_the_token_over_the_cap_is_refused_with_bounded_memory(served, chunked: bool) -> None:
    status = refused_with_bounded_memory(served, {"Authorization": f"Bearer {TOKEN}"}, chunked)
    assert status == 413


def test_wrong_method_with_a_huge_body_is_refused_with_bounded_memory() -> None:
    with ServedFunction("ingest", settings_env()) as function:
        function.reset_peak()
        before = function.rss_mib()
        reply = function.send({}, HUGE, chunked=False, method="PUT")
        assert reply is not None and reply.status == 405
        assert reply.headers["allow"] == "POST" and reply.headers.get("x-request-id")
        assert function.peak_mib() - before <= FEW_MIB


# --- Pub/Sub push: authenticated and capped --------------------------------------------------


def push_body(events: list[dict]) -> bytes:
    data = base64.b64encode(json.dumps(events).encode()).decode()
    return json.dumps({"message": {"data": data, "messageId": "m-1"}, "subscription": "s"}).encode()


@pytest.fixture
def push_server(cloudeye, monkeypatch):
    for name, value in cloudeye.forwarder_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", TOKEN)
    with IngestServer("ingest_pubsub") as server:
        yield server


def test_a_push_without_the_token_is_refused_and_sends_nothing(push_server, cloudeye) -> None:
    for headers, target in (({}, "/"), ({}, "/?token=wrong"), ({"Authorization": "Bearer wrong"}, "/")):
        reply = push_server.post(
            push_body(make_events(2)), target=target, headers={**PUSH_HEADERS, **headers}
        )
        assert reply.status == 401, reply.text
        assert reply.headers["www-authenticate"].startswith("Bearer")
    assert cloudeye.stored_events() == []


def test_a_push_with_the_token_in_the_query_is_delivered(push_server, cloudeye) -> None:
    reply = push_server.post(push_body(make_events(2)), target=f"/?token={TOKEN}", headers=PUSH_HEADERS)
    assert reply.status == 200, reply.text
    assert stored_names(cloudeye) == ["BatchEvent", "BatchEvent"]


def test_a_push_with_the_token_as_bearer_is_delivered(push_server, cloudeye) -> None:
    headers = {**PUSH_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    assert push_server.post(push_body(make_events(1)), headers=headers).status == 200
    assert len(cloudeye.stored_events()) == 1


def test_a_push_over_the_cap_is_413_and_one_at_the_cap_is_read(push_server, cloudeye, monkeypatch) -> None:
    body = push_body(make_events(1))
    headers = {**PUSH_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", str(len(body) - 1))
    assert push_server.post(body, headers=headers).status == 413
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", str(len(body)))
    assert push_server.post(body, headers=headers).status == 200
    assert len(cloudeye.stored_events()) == 1


def test_a_chunked_push_within_the_cap_is_delivered(cloudeye) -> None:
    # No Content-Length: the guard reads it (in pieces, never past the cap) and hands it on.
    env = settings_env(**cloudeye.forwarder_env())
    env["FORWARDER_MAX_BODY_BYTES"] = str(CAP)
    with ServedFunction("ingest_pubsub", env) as function:
        body = push_body(make_events(3))
        reply = function.send({**PUSH_HEADERS, "Authorization": f"Bearer {TOKEN}"}, body, chunked=True)
        assert reply is not None and reply.status == 200, reply and reply.text
    assert len(cloudeye.stored_events()) == 3
