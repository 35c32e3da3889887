"""Every reason an event can be refused for, word for word, and the time window's edges.

The rule tests (test_events.py) check that a reason names the right words; these pin the whole
text a user reads, so a changed or lost message fails a test.
"""

from __future__ import annotations

from typing import Any

import pytest

from forwarder import events
from forwarder.events import validate_events, validate_json_array

NOW = 1_709_294_400_000  # 2024-03-01T12:00:00Z
EARLIEST = NOW - 3_600_000 + 20_000
LATEST = NOW + 600_000 - 20_000


def event(**fields: Any) -> dict[str, Any]:
    return {"event_name": "a", "event_source": "abc.def", "time": NOW, "detail": {}, **fields}


def refusal(item: Any) -> list[tuple[str, str]]:
    outcome = validate_events([item], clock=lambda: NOW)
    assert outcome.valid == []
    return [(error.field, error.message) for error in outcome.errors[0]]


# Every window reason ends by naming the setting that would send the event anyway.
LATE_HINT = "; FORWARDER_LATE_EVENTS=retime would send it with the current time"
PASSED_TIME = "(at most 1 hour minus 20 s in the past)" + LATE_HINT
AHEAD_TIME = "(at most 10 minutes minus 20 s in the future)" + LATE_HINT
NOT_A_NUMBER = "must be an integer UNIX timestamp in milliseconds"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"event_source": "abc.def", "time": NOW, "detail": {}}, ("event_name", "is required")),
        (event(extra=1), ("extra", "is not a field Cloud Eye accepts")),
        (
            event(event_name="1a"),
            ("event_name", "must start with a letter and have 1-64 letters, digits or underscores"),
        ),
        (event(detail={"content": "x" * 4097}), ("detail.content", "must be at most 4096 characters")),
        (
            event(detail={"dimensions": [{"name": "a", "value": ""}]}),
            ("detail.dimensions[0].value", "must be at least 1 character(s)"),
        ),
        (
            event(detail={"dimensions": [{"name": "a", "value": "v"}] * 5}),
            ("detail.dimensions", "must have at most 4 items"),
        ),
        (
            event(detail={"event_state": "bad"}),
            ("detail.event_state", "must be one of 'normal', 'warning' or 'incident'"),
        ),
        (
            event(detail={"event_type": "EVENT.SYS"}),
            (
                "detail.event_type",
                "EVENT.SYS is reserved for system events; users can only report EVENT.CUSTOM",
            ),
        ),
        (event(event_name=5), ("event_name", "must be a string")),
        (event(detail=[]), ("detail", "must be an object")),
        (5, ("(event)", "must be an object")),
        (event(detail={"dimensions": "x"}), ("detail.dimensions", "must be a list")),
        (
            event(detail={"content": "\ud800"}),
            ("detail.content", "must be valid Unicode text (it holds an unpaired surrogate)"),
        ),
        (event(time=True), ("time", f"{NOT_A_NUMBER}, not true/false")),
        (event(time=1.5), ("time", "must be a whole number of milliseconds, not a fraction")),
        (event(time="soon"), ("time", NOT_A_NUMBER)),
        (event(time=None), ("time", NOT_A_NUMBER)),
    ],
)
def test_each_reason_word_for_word(item: Any, expected: tuple[str, str]) -> None:
    assert refusal(item) == [expected]


@pytest.mark.parametrize(
    ("time", "message"),
    [
        (EARLIEST - 1, f"is 1 s older than Cloud Eye accepts {PASSED_TIME}"),  # 1 ms rounds up to 1 s
        (EARLIEST - 1000, f"is 1 s older than Cloud Eye accepts {PASSED_TIME}"),
        (EARLIEST - 1001, f"is 2 s older than Cloud Eye accepts {PASSED_TIME}"),
        (LATEST + 1, f"is 1 s further ahead than Cloud Eye accepts {AHEAD_TIME}"),
        (LATEST + 1001, f"is 2 s further ahead than Cloud Eye accepts {AHEAD_TIME}"),
        # 10^11 ms (1973) is the first value read as milliseconds rather than seconds.
        (10**11, f"is 1609290820 s older than Cloud Eye accepts {PASSED_TIME}"),
        (
            10**11 - 1,
            f"{10**11 - 1} looks like seconds; Cloud Eye wants milliseconds "
            f"(did you mean {(10**11 - 1) * 1000}?)",
        ),
    ],
)
def test_window_reasons_word_for_word(time: int, message: str) -> None:
    assert refusal(event(time=time)) == [("time", message)]


def test_window_edges_are_inside() -> None:
    outcome = validate_events([event(time=EARLIEST), event(time=LATEST)], clock=lambda: NOW)
    assert [index for index, _ in outcome.valid] == [0, 1]


def test_json_array_path_gives_the_same_window_reason() -> None:
    data = f'[{{"event_name":"a","event_source":"abc.def","time":{LATEST + 1},"detail":{{}}}}]'
    outcome = validate_json_array(data, clock=lambda: NOW)
    assert outcome is not None and outcome.valid == []
    assert [(e.field, e.message) for e in outcome.errors[0]] == [
        ("time", f"is 1 s further ahead than Cloud Eye accepts {AHEAD_TIME}")
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # A pattern on a field without a plain-words reason (one added later) names the pattern.
        (
            {"type": "string_pattern_mismatch", "loc": ("new",), "ctx": {"pattern": "^x$"}, "msg": "m"},
            "must match ^x$",
        ),
        # pydantic's other spellings of the same kinds.
        ({"type": "str_type", "loc": ("event_name",), "msg": "m"}, "must be a string"),
        ({"type": "model_type", "loc": ("detail",), "msg": "m"}, "must be an object"),
        # A rule's own message; pydantic's text when there is none, or for a kind not listed.
        ({"type": "value_error", "loc": ("time",), "ctx": {"error": "own words"}, "msg": "m"}, "own words"),
        ({"type": "value_error", "loc": ("time",), "ctx": {}, "msg": "Value error, x"}, "Value error, x"),
        ({"type": "int_parsing", "loc": ("time",), "msg": "Not an integer"}, "Not an integer"),
    ],
)
def test_reasons_for_error_kinds_the_model_does_not_raise_today(error: dict[str, Any], reason: str) -> None:
    assert events._reason(error) == reason


# --- edges found by mutation testing -------------------------------------------------------------


def test_a_resource_name_schema_built_afresh_checks_names_as_the_event_model_does() -> None:
    # A new adapter builds the schema again (the event model's is built once per process).
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(events.ResourceName)
    for name in ["vm-01 @a_b.c", "名", "云服务器 01", "x" * 128]:
        assert adapter.validate_python(name) == name
    reason = "must have 1-128 letters (Chinese too), digits, '@', '_', '-', '.' or spaces"
    for bad in ["", "a/b", "名/", "x" * 129]:
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(bad)
        [error] = caught.value.errors(include_url=False)
        assert (error["type"], error["msg"]) == ("resource_name_mismatch", reason), bad
    for not_text in [b"vm-01", 5]:  # strict: bytes are not decoded into a name
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(not_text)
        assert [error["type"] for error in caught.value.errors()] == ["string_type"]


def test_a_field_path_of_exactly_the_limit_is_shown_whole() -> None:
    limit = events.MAX_FIELD_PATH_CHARS
    [(whole, _)] = refusal(event(**{"k" * limit: 1}))
    [(cut, _)] = refusal(event(**{"k" * (limit + 1): 1}))
    assert whole == "k" * limit
    assert cut == "k" * limit + "..."


def test_exactly_the_most_errors_listed_needs_no_more_line() -> None:
    most = events.MAX_ERRORS_PER_ITEM
    listed = refusal(event(**{f"extra{n}": 1 for n in range(most)}))
    assert [field for field, _ in listed] == [f"extra{n}" for n in range(most)]
    over = refusal(event(**{f"extra{n}": 1 for n in range(most + 1)}))
    assert over[-1] == ("(event)", "1 more errors not listed") and len(over) == most + 1


def test_the_one_pass_check_keeps_both_edges_of_the_window() -> None:
    import json

    body = json.dumps([event(time=EARLIEST), event(time=LATEST)])
    validation = validate_json_array(body, clock=lambda: NOW)
    assert validation is not None
    assert [index for index, _ in validation.valid] == [0, 1] and not validation.errors


def test_validate_events_retimes_when_asked() -> None:
    old = NOW - 2 * 3_600_000
    validation = validate_events([event(time=old)], clock=lambda: NOW, late="retime")
    [(index, sent)] = validation.valid
    assert (index, sent["time"], validation.retimed) == (0, NOW, {0: old})


def test_retiming_an_event_without_content_gives_the_note_alone() -> None:
    old = NOW - 2 * 3_600_000
    sent = events.retime({"event_name": "a", "time": old, "detail": {}}, NOW)
    assert sent["detail"] == {"content": f" [original time 2024-03-01T10:00:00.000Z = {old} ms]"}


def test_in_window_includes_both_edges() -> None:
    assert events.in_window(EARLIEST, NOW) and events.in_window(LATEST, NOW)
    assert not events.in_window(EARLIEST - 1, NOW) and not events.in_window(LATEST + 1, NOW)


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (float("inf"), "must be an integer UNIX timestamp in milliseconds, not infinite or NaN"),
        (float("nan"), "must be an integer UNIX timestamp in milliseconds, not infinite or NaN"),
        (-1, "must be a UNIX timestamp in milliseconds, not a negative number"),
        ("-1", "must be an integer UNIX timestamp in milliseconds"),
        # The largest time allowed, as text, is read (then refused for the window, not its size).
        (str(events.MAX_TIME_MS), f"is {-(-(events.MAX_TIME_MS - LATEST) // 1000)} s further ahead"),
        (str(events.MAX_TIME_MS) + "0", "is 16 digits long: not a UNIX timestamp in milliseconds"),
        (events.MAX_TIME_MS + 1, "is a 47-bit number: not a UNIX timestamp in milliseconds"),
        ("0", "0 looks like seconds; Cloud Eye wants milliseconds (did you mean 0?)"),
    ],
)
def test_each_bad_time_gets_its_own_reason(time: Any, expected: str) -> None:
    [(field, message)] = refusal(event(time=time))
    assert field == "time" and message.startswith(expected)
