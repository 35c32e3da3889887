"""A JSON-array body of valid events is parsed and validated in one pass (``validate_json``).

Whatever the body holds, the answer is the one the per-item path gives: the fast path either
produces exactly that outcome or steps aside (any bad item, another body form, a default source
to fill in), and the per-item path then names each bad item, its field and the reason.
"""

from __future__ import annotations

import contextlib
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import index
from forwarder import events as events_module
from forwarder import http_ingest, json_items, pipeline, triggers
from forwarder.batching import encode_event
from forwarder.events import event_adapter, validate_events, validate_json_array
from tests.support.entry_helpers import FakeContext, loopback_env
from tests.support.loopback import LoopbackServer

NOW = 1_709_294_400_000
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


@pytest.fixture
def fixed_clock(monkeypatch):
    """Both paths read the same 'now', so window checks (and their messages) agree."""
    clock = SimpleNamespace(time_ns=lambda: NOW * 1_000_000, strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr(events_module, "_time", clock)


@contextlib.contextmanager
def fast_path_off():
    """The per-item path alone: what every answer must equal."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "report_json_array", lambda *args, **kwargs: None)
        yield


# Events the validator accepts, in every accepted form (string and float times, optional fields,
# times outside the window: those are rejected after validation, on both paths).
valid_times = st.integers(min_value=NOW - 3_700_000, max_value=NOW + 700_000) | st.sampled_from(
    [str(NOW), f" {NOW} ", float(NOW), NOW // 1000, 10**30]
)
valid_details = st.fixed_dictionaries(
    {},
    optional={
        "content": st.text(max_size=20),
        "group_id": st.text(max_size=5),
        "resource_id": st.sampled_from(["i-1:a_b", "ecs-01"]),
        "resource_name": st.sampled_from(["web-01", "db_2"]),
        "event_state": st.sampled_from(["normal", "warning", "incident"]),
        "event_level": st.sampled_from(["Info", "Critical"]),
        "event_user": st.sampled_from(["ops/alert bot", "svc_order"]),
        "event_type": st.just("EVENT.CUSTOM"),
        "sub_event_type": st.sampled_from(["SUB_EVENT.OPS", "SUB_EVENT.PLAN"]),
        "dimensions": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["az", "b-1"]), "value": st.text(min_size=1)}),
            max_size=4,
        ),
    },
)
valid_events = st.fixed_dictionaries(
    {
        "event_name": st.sampled_from(["DiskFull", "a", "x" * 64, "Order_2"]),
        "event_source": st.sampled_from(["app.orders", "abc.def"]),
        "time": valid_times,
        "detail": valid_details,
    }
)
# Values near the rules' edges, valid and not.
names = st.sampled_from(["DiskFull", "a", "x" * 65, "bad name", "9lives", "", "é"])
sources = st.sampled_from(["app.orders", "app", "ab.orders", "app.orders.x"])
times = valid_times | st.sampled_from([NOW + 0.5, True, None, "soon", "-1", "١٢"])
details = st.fixed_dictionaries(
    {},
    optional={
        "content": st.text(max_size=20) | st.just("c" * 4097),
        "group_id": st.text(max_size=5) | st.integers(),
        "resource_id": st.sampled_from(["i-1:a_b", "", "a b"]),
        "event_level": st.sampled_from(["Info", "info"]),
        "event_type": st.sampled_from(["EVENT.CUSTOM", "EVENT.SYS"]),
        "sub_event_type": st.sampled_from(["SUB_EVENT.OPS", "SUB_EVENT.X"]),
        "dimensions": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["az", "1x", "a" * 33]),
                    "value": st.sampled_from(["v", "", "x" * 257]),
                }
            ),
            max_size=5,
        ),
        "unknown": st.just(1),
    },
)
any_events = st.fixed_dictionaries(
    {"event_name": names, "event_source": sources, "time": times, "detail": details},
    optional={"extra": st.just("no")},
)
# A required key dropped now and then: a missing field, or a source the default may fill in.
any_events = any_events | (valid_events | any_events).flatmap(
    lambda e: st.sampled_from(sorted(e)).map(lambda key: {k: v for k, v in e.items() if k != key})
)
# Half the arrays hold only valid events (the fast path), half mix in bad items and non-objects.
items = st.lists(valid_events, max_size=8) | st.lists(
    valid_events | any_events | st.sampled_from([None, 1, "text", [], {}]), max_size=8
)


def _encode(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def _all_valid(values: list[Any]) -> bool:
    try:
        for value in values:
            event_adapter().validate_python(value)
    except ValidationError:
        return False
    return True


# --- the validator: one pass equals item by item, or steps aside ---------------------------------


@FUZZ
@given(values=items, ascii_only=st.booleans(), as_text=st.booleans())
def test_one_pass_equals_item_by_item_or_steps_aside(values, ascii_only: bool, as_text: bool) -> None:
    text = _encode(values, ascii_only)
    body = text if as_text else text.encode("utf-8")
    parsed = json.loads(text)

    fast = validate_json_array(body, clock=lambda: NOW)

    if not parsed or not _all_valid(parsed):
        assert fast is None
        return
    slow = validate_events(parsed, clock=lambda: NOW)
    assert vars(fast) == vars(slow)  # same valid events (window rejects included), same errors
    # and the same bytes on the wire (key order included)
    assert [encode_event(e) for _, e in fast.valid] == [encode_event(e) for _, e in slow.valid]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"[]",
        b"{}",
        b'{"events": []}',
        b"\xef\xbb\xbf[]",
        b"[" * 50_000,
        b'[{"event_name": "a"}] trailing',
        b'[{"a": "\xff"}]',
    ],
)
def test_not_an_array_of_events_steps_aside(body: bytes) -> None:
    assert validate_json_array(body, clock=lambda: NOW) is None


# --- the HTTP answer is the same either way ------------------------------------------------------


def apig(body: str, *, query: dict[str, str] | None = None, content_type: str = "application/json"):
    return {
        "httpMethod": "POST",
        "headers": {"content-type": content_type},
        "queryStringParameters": query or {},
        "body": body,
        "isBase64Encoded": False,
    }


@FUZZ
@given(values=items, ascii_only=st.booleans(), default_source=st.sampled_from([None, "svc.default"]))
def test_dry_run_answers_are_identical_with_and_without_the_fast_path(
    values, ascii_only: bool, default_source: str | None, fixed_clock
) -> None:
    event = apig(_encode(values, ascii_only), query={"dry_run": "true"})
    with pytest.MonkeyPatch.context() as patch:
        if default_source:
            patch.setenv("FORWARDER_DEFAULT_SOURCE", default_source)
        fast = index.handler(event, FakeContext())
        with fast_path_off():
            slow = index.handler(event, FakeContext())
    assert fast == slow


def _send_to(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # One request at a time, in chunk order: the two paths' event ids stay comparable.
    for name, value in loopback_env(server.url, CLOUDEYE_MAX_CONCURRENCY="1").items():
        monkeypatch.setenv(name, value)


def _both_paths(event: dict, monkeypatch) -> tuple[Any, list[bytes], Any, list[bytes]]:
    """The answer and the request bodies sent for ``event``, by the one-pass path then per item."""
    with LoopbackServer() as server:
        _send_to(server, monkeypatch)
        fast = index.handler(event, FakeContext())
        fast_requests = [request.body for request in server.requests]
        server.requests.clear()
        with fast_path_off():
            slow = index.handler(event, FakeContext())
        slow_requests = [request.body for request in server.requests]
    return fast, fast_requests, slow, slow_requests


def _event(index: int, **changes: Any) -> dict[str, Any]:
    event = {
        "event_name": f"Event{index}",
        "event_source": "app.orders",
        "time": NOW - index,
        "detail": {"content": f"number {index}", "event_type": "EVENT.CUSTOM"},
    }
    return {**event, **changes}


@pytest.mark.parametrize(
    "values",
    [
        [_event(i) for i in range(250)],  # all valid: the fast path
        [_event(i, time=str(NOW - i)) for i in range(120)],  # numeric-string times: fast path too
        [_event(i) for i in range(150)] + [_event(150, time=NOW - 7_200_000)],  # a window reject
        [_event(i) for i in range(150)] + [_event(150, event_name="bad name")],  # per item
    ],
    ids=["valid", "string-times", "too-old", "invalid-item"],
)
def test_sent_requests_and_answers_are_identical(values, monkeypatch, fixed_clock) -> None:
    event = apig(json.dumps(values))
    fast, fast_requests, slow, slow_requests = _both_paths(event, monkeypatch)
    assert fast == slow
    assert fast_requests == slow_requests
    sent = [item for body in fast_requests for item in json.loads(body)]
    assert all(isinstance(item["time"], int) for item in sent)  # string times normalised


# --- a large array goes a piece at a time -------------------------------------------------------

# Small pieces, so that even a short body is cut many times (at guessed and at walked boundaries).
piece_sizes = st.sampled_from([1, 60, 400])
longer_items = st.lists(valid_events | any_events | st.sampled_from([None, 1, "text", [], {}]), max_size=40)


@FUZZ
@given(
    values=longer_items | st.lists(valid_events, max_size=40),
    piece_chars=piece_sizes,
    late=st.sampled_from(["reject", "retime"]),
    default_source=st.sampled_from([None, "svc.default"]),
    indent=st.sampled_from([None, 1]),
)
def test_pieces_answer_as_the_per_item_path(
    values, piece_chars: int, late: str, default_source: str | None, indent: int | None, fixed_clock
) -> None:
    event = apig(json.dumps(values, indent=indent), query={"dry_run": "true"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_items, "PIECE_CHARS", piece_chars)
        patch.setenv("FORWARDER_LATE_EVENTS", late)
        if default_source:
            patch.setenv("FORWARDER_DEFAULT_SOURCE", default_source)
        fast = index.handler(event, FakeContext())
        with fast_path_off():
            slow = index.handler(event, FakeContext())
    assert fast == slow


@pytest.mark.parametrize(
    "values",
    [
        [_event(i) for i in range(90)],
        [_event(i, event_name="bad name") if i % 7 == 3 else _event(i) for i in range(90)],
        [
            _event(i, detail={"content": "},{" * i, "dimensions": [{"name": "a", "value": "}"}] * 2})
            for i in range(90)
        ],
        [
            item
            for i in range(30)
            for item in (_event(i), 0, {"kkk": i, **{f"x{n}": n for n in range(60)}})  # too wide
        ],
    ],
    ids=["valid", "some-invalid", "boundary-lookalikes", "mixed"],
)
def test_pieces_send_what_the_per_item_path_sends(values, monkeypatch, fixed_clock) -> None:
    monkeypatch.setattr(json_items, "PIECE_CHARS", 300)
    event = apig(json.dumps(values))
    fast, fast_requests, slow, slow_requests = _both_paths(event, monkeypatch)
    assert fast == slow
    assert fast_requests == slow_requests


def test_a_large_array_is_validated_a_piece_at_a_time(monkeypatch, fixed_clock) -> None:
    sizes: list[int] = []
    real = pipeline.validate_json_array

    def spy(data, **kwargs):
        sizes.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(pipeline, "validate_json_array", spy)
    body = json.dumps([_event(i, detail={"content": "x" * 400}) for i in range(3000)])
    answer = index.handler(apig(body, query={"dry_run": "true"}), FakeContext())
    assert answer["statusCode"] == 201 and json.loads(answer["body"])["accepted"] == 3000
    assert len(sizes) >= len(body) // (2 * json_items.PIECE_CHARS)
    assert max(sizes) <= pipeline.MAX_ONE_PASS_CHARS


def test_retimed_events_stay_a_millisecond_apart_across_pieces(monkeypatch, fixed_clock) -> None:
    monkeypatch.setattr(json_items, "PIECE_CHARS", 200)
    monkeypatch.setenv("FORWARDER_LATE_EVENTS", "retime")
    late = [_event(i, time=NOW - 7_200_000) for i in range(40)]
    with LoopbackServer() as server:
        _send_to(server, monkeypatch)
        answer = index.handler(apig(json.dumps(late)), FakeContext())
        sent = [item["time"] for request in server.requests for item in json.loads(request.body)]
    assert answer["statusCode"] == 201
    assert sent == [NOW + offset for offset in range(40)]


def test_the_fast_path_is_taken_for_an_array_of_valid_events(monkeypatch, fixed_clock) -> None:
    taken = []
    real = pipeline.report_json_array

    def spy(*args, **kwargs):
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(pipeline, "report_json_array", spy)
    answer = index.handler(apig(json.dumps([_event(1), _event(2)]), query={"dry_run": "true"}), FakeContext())
    assert answer["statusCode"] == 201
    assert len(taken) == 1 and taken[0] is not None


def test_a_default_source_is_filled_in_by_the_per_item_path(monkeypatch, fixed_clock) -> None:
    monkeypatch.setenv("FORWARDER_DEFAULT_SOURCE", "svc.default")
    sourceless = {k: v for k, v in _event(1).items() if k != "event_source"}
    with LoopbackServer() as server:
        _send_to(server, monkeypatch)
        answer = index.handler(apig(json.dumps([_event(0), sourceless])), FakeContext())
    assert answer["statusCode"] == 201
    [request] = server.requests
    assert [item["event_source"] for item in json.loads(request.body)] == ["app.orders", "svc.default"]


# --- other body forms keep their path ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "accepted"),
    [
        (json.dumps(_event(0)), "application/json", 1),  # one object
        (json.dumps({"events": [_event(0), _event(1)]}), "application/json", 2),
        (json.dumps(_event(0)) + "\n" + json.dumps(_event(1)), "application/x-ndjson", 2),
        (json.dumps(_event(0)) + "\n" + json.dumps(_event(1)), "application/json", 2),  # NDJSON by shape
        (json.dumps([_event(0)]), "application/x-ndjson", 0),  # one line holding an array: rejected
    ],
    ids=["object", "events-wrapper", "ndjson", "ndjson-untyped", "ndjson-array-line"],
)
def test_other_body_forms(body: str, content_type: str, accepted: int, fixed_clock) -> None:
    answer = index.handler(apig(body, query={"dry_run": "true"}, content_type=content_type), FakeContext())
    assert json.loads(answer["body"])["accepted"] == accepted


def test_a_deeply_nested_array_is_still_a_400_that_says_so() -> None:
    answer = index.handler(apig("[" * 50_000), FakeContext())
    assert answer["statusCode"] == 400
    assert "nested too deeply" in json.loads(answer["body"])["error"]


# --- API Gateway's text body is not copied; its size is counted in bytes -------------------------


def test_ascii_text_is_read_as_is() -> None:
    text = json.dumps([_event(0)])
    request = triggers.apig_request(apig(text))
    assert http_ingest._read(request, 10_000) is text


def test_non_ascii_text_is_read_as_its_utf8_bytes(monkeypatch) -> None:
    text = json.dumps([_event(0, detail={"content": "é" * 600})], ensure_ascii=False)
    assert len(text) <= 1024 < len(text.encode())
    monkeypatch.setenv("FORWARDER_MAX_BODY_BYTES", "1024")
    answer = index.handler(apig(text, query={"dry_run": "true"}), FakeContext())
    assert answer["statusCode"] == 413
