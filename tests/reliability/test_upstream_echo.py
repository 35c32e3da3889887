"""An upstream that echoes credentials: Cloud Eye, its gateway or a proxy quoting what it was sent.

Whatever such an answer says, the suite's distinctive credentials must not reach an HTTP answer,
a log line or an exception, through every entry. The autouse scan of this suite checks the log
records and stdout/stderr as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.reliability.harness import (
    ACCESS_KEY,
    AUTH_TOKEN,
    SECURITY_TOKEN,
    forwarder_env,
    leaks,
    now_ms,
)
from tests.support.entry_helpers import FakeContext
from tests.support.environ import environment
from tests.support.loopback import Answer, LoopbackServer

# Every form seen in the wild: the gateway's "ak:<value>", an echoed Authorization header, echoed
# token headers, and a JSON error message quoting them.
ECHO = (
    f"Get secretKey failed,ak:{ACCESS_KEY},err:ak not exist\n"
    f"Authorization: SDK-HMAC-SHA256 Access={ACCESS_KEY}, SignedHeaders=host;x-sdk-date\n"
    f"X-Security-Token: {SECURITY_TOKEN}\nX-Auth-Token: {AUTH_TOKEN}"
)
STATUSES = (400, 401, 403, 429, 500, 503)


def _events(count: int) -> list[dict]:
    return [
        {
            "event_name": "EchoCheck",
            "event_source": "custom.reliability",
            "time": now_ms() - index,
            "detail": {"content": f"event {index}"},
        }
        for index in range(count)
    ]


def _answer(status: int) -> Answer:
    error = {"error_code": f"APIGW.0{status}", "error_msg": ECHO, "request_id": "echo"}
    return Answer(status=status, body=json.dumps(error).encode(), retry_after="0")


@pytest.fixture(params=STATUSES)
def echoing(request: pytest.FixtureRequest) -> Iterator[LoopbackServer]:
    with LoopbackServer([_answer(request.param)]) as upstream, environment(
        forwarder_env(upstream.url, CLOUDEYE_MAX_ATTEMPTS="2")
    ):
        yield upstream


def test_the_api_gateway_answer_holds_no_echoed_credential(echoing: LoopbackServer) -> None:
    import index

    event = {"httpMethod": "POST", "headers": {"authorization": "Bearer x"}, "body": json.dumps(_events(3))}
    with environment({"FORWARDER_INGEST_TOKEN": "x"}):
        answer = index.handler(event, FakeContext(remaining_ms=20_000))
    assert echoing.requests, "nothing reached the upstream"
    assert answer["statusCode"] in (400, 502, 503), answer
    assert "***" in answer["body"]  # the refusal is there, with its credentials masked
    assert leaks(answer["body"]) == []


def test_a_queue_batch_raises_or_returns_without_an_echoed_credential(echoing: LoopbackServer) -> None:
    import index
    from forwarder import DeliveryError

    batch = {"records": [{"topic_id": "t", "messages": [json.dumps(_events(4))]}]}
    try:
        answer = index.handler(batch, FakeContext(remaining_ms=20_000))
    except DeliveryError as exc:  # a transient or configuration failure hands the batch back
        assert leaks(str(exc)) == [] and "***" in str(exc)
    else:  # a 400 refusal isolates each event and rejects it alone
        assert answer["rejected"] == 4, answer
    assert echoing.requests, "nothing reached the upstream"


def test_the_library_report_holds_no_echoed_credential(echoing: LoopbackServer) -> None:
    from forwarder import report_events

    report = report_events(_events(2))
    text = json.dumps(report.to_dict())
    assert report.accepted == 0 and "***" in text
    assert leaks(text) == []
