"""Malformed input never raises and never answers 500, through either entry.

Kept small here (a separate reliability suite fuzzes far more inputs).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import index
from tests.support.entry_helpers import FakeContext
from tests.support.ingest_server import create_app

EXAMPLES = 60
HTTP_STATUSES = {201, 207, 400, 401, 405, 413}
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Objects shaped like events, so the validator (not only the parser) sees odd values.
event_like = st.fixed_dictionaries(
    {"event_name": json_values, "event_source": json_values, "time": json_values},
    optional={
        "detail": json_values
        | st.dictionaries(
            st.sampled_from(["content", "resource_id", "event_level", "event_type", "dimensions", "x"]),
            json_values,
            max_size=4,
        )
    },
)
anything = json_values | event_like | st.lists(event_like, max_size=3)
texts = (
    st.text(max_size=60)
    | anything.map(json.dumps)
    | st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
)
b64_texts = (
    st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
    | anything.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode())
    | st.text(max_size=20)
)
content_types = st.sampled_from(
    ["application/json", "application/x-ndjson", "text/plain", "", "application/json; charset=utf-16"]
)
bodies = (
    st.binary(max_size=300)
    | anything.map(lambda v: json.dumps(v).encode())
    | st.lists(event_like.map(json.dumps), max_size=4).map(lambda lines: "\n".join(lines).encode())
)
dry_runs = st.none() | st.sampled_from(["true", "false", "", "maybe"]) | st.text(max_size=5)


@pytest.fixture
def fuzz_env(emulator, monkeypatch):
    for name, value in emulator.forwarder_env(CLOUDEYE_MAX_ATTEMPTS="1").items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def ingest_client():
    return create_app("ingest").test_client()


@pytest.fixture(scope="module")
def pubsub_client():
    return create_app("ingest_pubsub").test_client()


def _check_http_answer(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] in HTTP_STATUSES, answer
    assert isinstance(json.loads(answer["body"]), dict)
    assert answer["isBase64Encoded"] is False


@FUZZ
@given(
    body=bodies,
    encode=st.booleans(),
    content_type=content_types,
    dry_run=dry_runs,
    method=st.sampled_from(["POST", "post", "GET", None, 7]),
)
def test_api_gateway_never_500(
    fuzz_env, body: bytes, encode: bool, content_type: str, dry_run, method
) -> None:
    event: dict[str, Any] = {
        "headers": {"content-type": content_type},
        "body": base64.b64encode(body).decode() if encode else body.decode("utf-8", "replace"),
        "isBase64Encoded": encode,
        "queryStringParameters": {} if dry_run is None else {"dry_run": dry_run},
    }
    if method is not None:
        event["httpMethod"] = method
    _check_http_answer(index.handler(event, FakeContext()))


@FUZZ
@given(
    event=st.dictionaries(
        st.sampled_from(
            ["body", "headers", "isBase64Encoded", "httpMethod", "queryStringParameters", "requestContext"]
        ),
        json_values,
        min_size=1,
    )
)
def test_api_gateway_with_odd_fields_never_500(fuzz_env, event: dict[str, Any]) -> None:
    event.setdefault("httpMethod", "POST")
    if isinstance(event["httpMethod"], str) and not event["httpMethod"]:
        event["httpMethod"] = "POST"
    _check_http_answer(index.handler(event, FakeContext()))


queue_payloads = st.one_of(
    st.builds(
        lambda msgs, topic: {"trigger_type": "KAFKA", "records": [{"messages": msgs, "topic_id": topic}]},
        st.lists(texts | anything, max_size=4),
        json_values,
    ),
    st.builds(
        lambda msgs, kind: {"trigger_type": kind, "messages": msgs},
        st.lists(texts, max_size=4),
        st.sampled_from(["ROCKETMQ", "RABBITMQ", "KAFKA", 5]),
    ),
    st.builds(
        lambda records: {"trigger_type": "KAFKA", "records": records}, st.lists(json_values, max_size=3)
    ),
    st.builds(
        lambda msgs: {"record": [{"smn": {"message": m, "topic_urn": "urn"}} for m in msgs]},
        st.lists(texts | json_values, max_size=3),
    ),
    st.builds(lambda records: {"record": records}, st.lists(json_values, max_size=3)),
    st.builds(
        lambda datas: {"Message": {"records": [{"data": d} for d in datas]}, "StreamName": "s"},
        st.lists(b64_texts | json_values, max_size=3),
    ),
    st.builds(lambda data: {"message": {"data": data}, "subscription": "s"}, b64_texts | json_values),
    anything,
)


@FUZZ
@given(payload=queue_payloads)
def test_queue_triggers_never_raise(fuzz_env, payload: Any) -> None:
    answer = index.handler(payload, FakeContext())
    if isinstance(answer, dict) and "statusCode" in answer:  # the payload happened to look like APIG
        _check_http_answer(answer)
    else:
        assert answer["failed"] == 0
        assert answer["received"] == answer["accepted"] + answer["rejected"]


@FUZZ
@given(body=bodies, content_type=content_types, dry_run=dry_runs)
def test_functions_framework_ingest_never_500(
    fuzz_env, ingest_client, body: bytes, content_type: str, dry_run
):
    query = {} if dry_run is None else {"dry_run": dry_run}
    response = ingest_client.post("/", data=body, content_type=content_type or None, query_string=query)
    assert response.status_code in HTTP_STATUSES, response.get_data()
    assert isinstance(response.get_json(), dict)


@FUZZ
@given(
    data=st.binary(max_size=200)
    | anything.map(lambda v: json.dumps(v).encode())
    | queue_payloads.map(lambda v: json.dumps(v).encode())
)
def test_functions_framework_pubsub_never_500(fuzz_env, pubsub_client, data: bytes) -> None:
    headers = {
        "ce-id": "1",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub",
        "ce-type": "t",
        "Content-Type": "application/json",
    }
    response = pubsub_client.post("/", data=data, headers=headers)
    assert response.status_code < 500, response.get_data()


# --- caps: the item count decides 413, the answer grows with the items processed only ----------

FUZZ_CAP = 6
wide_items = st.one_of(
    st.integers(0, 3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 1), max_size=80),
    st.builds(lambda n: {"event_name": "E", "detail": {"dimensions": [{}] * n}}, st.integers(0, 60)),
    event_like,
)


@FUZZ
@given(
    items=st.lists(wide_items, max_size=2 * FUZZ_CAP),
    form=st.sampled_from(["array", "wrapped", "ndjson"]),
)
def test_item_cap_and_proportional_answers(fuzz_env, monkeypatch, items: list[Any], form: str) -> None:
    monkeypatch.setenv("FORWARDER_MAX_ITEMS", str(FUZZ_CAP))
    if form == "array":
        body, content_type = json.dumps(items), "application/json"
    elif form == "wrapped":
        body, content_type = json.dumps({"events": items}), "application/json"
    else:
        body, content_type = "\n".join(json.dumps(item) for item in items), "application/x-ndjson"
    event = {
        "httpMethod": "POST",
        "headers": {"content-type": content_type},
        "queryStringParameters": {"dry_run": "true"},
        "body": body,
    }
    answer = index.handler(event, FakeContext())
    _check_http_answer(answer)
    reply = json.loads(answer["body"])
    if len(items) > FUZZ_CAP:
        assert answer["statusCode"] == 413 and reply["received"] == 0
    else:
        assert answer["statusCode"] != 413
        assert reply["received"] in (0, len(items))
        # a few capped errors per item, whatever the item's width
        assert len(answer["body"]) <= 200 + 1500 * max(1, len(items))


# --- the push token: only the exact token, as a bearer or ?token=, lets a push through ---------

TOKEN = "fuzz-token-1"
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)  # what HTTP carries


@FUZZ
@given(
    header=st.none() | header_text | st.just(f"Bearer {TOKEN}") | st.just(f"bearer  {TOKEN} "),
    query=st.none() | st.text(max_size=20) | st.just(TOKEN),
)
def test_push_token_is_checked_before_anything(fuzz_env, pubsub_client, monkeypatch, header, query) -> None:
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", TOKEN)
    headers = {"ce-id": "1", "ce-specversion": "1.0", "ce-source": "//pubsub", "ce-type": "t"}
    if header is not None:
        headers["Authorization"] = header
    query_string = {} if query is None else {"token": query}
    response = pubsub_client.post("/", data=b"{}", headers=headers, query_string=query_string)
    scheme, _, given = (header or "").strip().partition(" ")
    allowed = (scheme.lower() == "bearer" and given.strip() == TOKEN) or query == TOKEN
    assert (response.status_code == 401) is not allowed, (header, query, response.status_code)
