"""JSON text helpers: parse with a readable problem, a value's JSON kind, the events wrapper, paths."""

from __future__ import annotations

import pytest

from forwarder import jsontext


@pytest.mark.parametrize(
    ("text", "value"),
    [('{"a": 1}', {"a": 1}), (b"[1, 2]", [1, 2]), (b"\xef\xbb\xbf3", 3), (bytearray(b"null"), None)],
)
def test_parse_reads_one_json_value(text: str | bytes, value: object) -> None:
    assert jsontext.parse(text) == (value, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        (" \n", "is empty"),
        ("{", "is not JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        (b"\xff", "is not UTF-8 text (bad byte at offset 0)"),
        ("[" * 100_000, "is not usable JSON: nested too deeply"),
    ],
)
def test_parse_names_the_problem(text: str | bytes, problem: str) -> None:
    assert jsontext.parse(text) == (None, problem)


def test_parse_refuses_an_overlong_integer_literal() -> None:
    value, problem = jsontext.parse("1" * 5000)
    assert value is None
    assert problem is not None and problem.startswith("is not usable JSON: ")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (False, "boolean"),
        (0, "number"),
        (1.5, "number"),
        ("", "string"),
        ([], "array"),
        ((), "array"),
        ({}, "object"),
        (b"x", "bytes"),
    ],
)
def test_kind_uses_json_names(value: object, name: str) -> None:
    assert jsontext.kind(value) == name


@pytest.mark.parametrize(
    ("value", "unwrapped"),
    [
        ({"events": [1, 2]}, [1, 2]),
        ({"events": 3}, 3),
        ({"events": [1], "event_name": "e"}, {"events": [1], "event_name": "e"}),
        ({"event": [1]}, {"event": [1]}),
        ([{"events": [1]}], [{"events": [1]}]),
        ("events", "events"),
    ],
)
def test_unwrap_events_only_takes_off_the_wrapper(value: object, unwrapped: object) -> None:
    assert jsontext.unwrap_events(value) == unwrapped


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        ((), ""),
        (("detail",), "detail"),
        (("detail", "dimensions", 0, "name"), "detail.dimensions[0].name"),
        ((2, "time"), "[2].time"),
        (("triggers", "kafka", "topics", 0), "triggers.kafka.topics[0]"),
    ],
)
def test_field_path(parts: tuple[str | int, ...], path: str) -> None:
    assert jsontext.field_path(parts) == path
