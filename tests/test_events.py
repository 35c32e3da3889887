"""Cloud Eye's event rules: each rule on both sides of its boundary."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from forwarder.events import FieldError, validate_events

# 2024-03-01T12:00:00Z, a fixed "now" so window tests never sleep.
NOW = 1_709_294_400_000
EARLIEST = NOW - 3_600_000 + 20_000
LATEST = NOW + 600_000 - 20_000

# The API document's example request, copied verbatim into the project's test data.
SEED_EXAMPLE = Path(__file__).resolve().parent / "data" / "seed_example_request.json"


def clock() -> int:
    return NOW


def make_event(**detail: Any) -> dict[str, Any]:
    return {
        "event_name": "systemInvaded",
        "event_source": "financial.System",
        "time": NOW,
        "detail": {"content": "The financial system was invaded", **detail},
    }


def with_path(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``event`` with ``path`` (dotted, e.g. ``detail.event_user``) set to ``value``."""
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    target[last] = value
    return event


def without(event: dict[str, Any], path: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    del target[last]
    return event


def errors_of(item: Any) -> list[FieldError]:
    outcome = validate_events([item], clock=clock)
    if outcome.valid:
        assert outcome.errors == {}
        return []
    assert [index for index, _ in outcome.valid] == []
    return outcome.errors[0]


def assert_valid(item: Any) -> dict[str, Any]:
    outcome = validate_events([item], clock=clock)
    assert outcome.errors == {}, outcome.errors
    assert len(outcome.valid) == 1 and outcome.valid[0][0] == 0
    return outcome.valid[0][1]


def assert_rejected(item: Any, field: str, *words: str) -> FieldError:
    errors = errors_of(item)
    assert errors, f"{item!r} should be rejected at {field}"
    by_field = {error.field: error for error in errors}
    assert field in by_field, errors
    error = by_field[field]
    for word in words:
        assert word in error.message, error.message
    return error


# --- the seed document's example ---------------------------------------------------------------


def _seed_example() -> list[dict[str, Any]]:
    return json.loads(SEED_EXAMPLE.read_text(encoding="utf-8"))


def test_seed_example_request_validates_once_in_the_window() -> None:
    items = _seed_example()
    assert len(items) == 2
    seed_now = items[0]["time"] + 60_000  # the example's times, one minute ago

    outcome = validate_events(items, clock=lambda: seed_now)

    assert outcome.errors == {}
    assert outcome.valid == [(0, items[0]), (1, items[1])]


def test_seed_example_is_rejected_outside_the_window() -> None:
    outcome = validate_events(_seed_example(), clock=clock)  # 2024: the 2018 example is too old
    assert outcome.valid == []
    assert set(outcome.errors) == {0, 1}
    assert all(
        errors[0].field == "time" and "older" in errors[0].message for errors in outcome.errors.values()
    )


def test_minimal_event_is_valid_and_unchanged() -> None:
    event = {"event_name": "a", "event_source": "abc.def", "time": NOW, "detail": {}}
    assert assert_valid(event) == event


# --- every rule, both sides of its boundary ----------------------------------------------------

# (path, good value, bad value, words expected in the bad value's reason)
BOUNDARIES = [
    ("event_name", "a" * 64, "a" * 65, ("1-64",)),
    ("event_name", "A1_b", "1abc", ("start with a letter",)),
    ("event_name", "x", "_abc", ("start with a letter",)),
    ("event_name", "abc_def", "abc-def", ("letters, digits or underscores",)),
    ("event_name", "abc", "abc\n", ()),
    ("event_name", "abc", "", ()),
    ("event_name", "abc", "abcé", ()),
    ("event_source", "abc.def", "ab.def", ("service.item", "3-32")),
    ("event_source", "abc.def", "abc.de", ("3-32",)),
    ("event_source", "s" * 32 + "." + "i" * 32, "s" * 33 + ".item", ("3-32",)),
    ("event_source", "s" * 32 + "." + "i" * 32, "svc." + "i" * 33, ("3-32",)),
    ("event_source", "a_1.b_2", "1bc.def", ("starting with a letter",)),
    ("event_source", "abc.def", "abcdef", ("service.item",)),
    ("event_source", "abc.def", "abc.def.ghi", ()),
    ("event_source", "abc.def", "abc.d-f", ()),
    ("detail.content", "c" * 4096, "c" * 4097, ("4096",)),
    ("detail.content", "é" * 4096, "中" * 4097, ("4096",)),  # characters, not bytes
    ("detail.content", "", 42, ("string",)),
    ("detail.group_id", "rg15221211517051YWWkEnVd", 15, ("string",)),
    ("detail.group_id", "rg15221211517051YWWkEnVd", "rg15221211517051YWWkEnV", ("exactly 24",)),
    ("detail.group_id", "rg15221211517051YWWkEnVd", "rg15221211517051YWWkEnVdx", ("exactly 24",)),
    ("detail.group_id", "rg15221211517051YWWkEnVd", "", ("exactly 24",)),
    ("detail.resource_id", "r" * 128, "r" * 129, ("1-128",)),
    ("detail.resource_id", "6a69bf28-ee62:49f3_9785", "a/b", ("':'",)),
    ("detail.resource_id", "a:b", "a b", ()),
    ("detail.resource_id", "a-b", "a.b", ()),
    ("detail.resource_id", "a", "", ()),
    ("detail.resource_name", "n" * 128, "n" * 129, ("1-128",)),
    ("detail.resource_name", "数" * 128, "数" * 129, ("1-128",)),  # characters, not bytes
    ("detail.resource_name", "ecs_001-a", "ecs:001", ("'@', '_', '-', '.' or spaces", "Chinese")),
    ("detail.resource_name", "web-01.example.com", "web/01", ()),
    ("detail.resource_name", "db@prod", "db#prod", ()),
    ("detail.resource_name", "my vm", "my\tvm", ()),
    ("detail.resource_name", "数据库", "数据库!", ()),
    ("detail.resource_name", "Ünïcødé", "a\u00b2", ()),  # superscript two: not an ASCII digit
    ("detail.resource_name", "a", "", ()),
    ("detail.event_user", "u" * 64, "u" * 65, ("at most 64",)),
    ("detail.event_user", "ops/team a_b-c", "ops:team", ("'/'", "spaces")),
    ("detail.event_user", "a b", "a.b", ()),
    ("detail.event_user", "a/b", "a\\b", ()),
    ("detail.event_user", "", "数据库", ()),
    ("detail.event_state", "normal", "Normal", ("normal", "warning", "incident")),
    ("detail.event_state", "warning", "ok", ()),
    ("detail.event_state", "incident", "", ()),
    ("detail.event_level", "Critical", "critical", ("Critical", "Major", "Minor", "Info")),
    ("detail.event_level", "Major", "Warning", ()),
    ("detail.event_level", "Minor", "MINOR", ()),
    ("detail.event_level", "Info", "Information", ()),
    ("detail.event_type", "EVENT.CUSTOM", "EVENT.custom", ("EVENT.CUSTOM",)),
    ("detail.sub_event_type", "SUB_EVENT.OPS", "SUB_EVENT.OTHER", ("SUB_EVENT.OPS",)),
    ("detail.sub_event_type", "SUB_EVENT.PLAN", "SUB_EVENT.plan", ()),
    ("detail.sub_event_type", "SUB_EVENT.CUSTOM", "EVENT.CUSTOM", ()),
    ("detail", {}, "not an object", ("object",)),
    ("detail", {"content": "x"}, None, ("object",)),
]


@pytest.mark.parametrize(
    ("path", "good", "bad", "words"),
    BOUNDARIES,
    ids=[f"{path}-{i}" for i, (path, *_rest) in enumerate(BOUNDARIES)],
)
def test_rule_boundary(path: str, good: Any, bad: Any, words: tuple[str, ...]) -> None:
    assert_valid(with_path(make_event(), path, good))
    assert_rejected(with_path(make_event(), path, bad), path, *words)


def test_event_sys_refused_with_its_own_message() -> None:
    error = assert_rejected(make_event(event_type="EVENT.SYS"), "detail.event_type", "EVENT.SYS")
    assert "users can only report EVENT.CUSTOM" in error.message
    other = assert_rejected(make_event(event_type="EVENT.OTHER"), "detail.event_type")
    assert other.message != error.message


@pytest.mark.parametrize("path", ["event_name", "event_source", "time", "detail"])
def test_required_top_level_fields(path: str) -> None:
    assert_rejected(without(make_event(), path), path, "required")


@pytest.mark.parametrize(
    "item", ["a string", 42, None, ["a", "list"], True], ids=["str", "int", "none", "list", "bool"]
)
def test_non_object_item_rejected(item: Any) -> None:
    assert_rejected(item, "(event)", "object")


@pytest.mark.parametrize(
    ("path", "key"), [("", "extra"), ("", "Event_Name"), ("detail.", "colour"), ("detail.", "eventType")]
)
def test_unknown_keys_refused(path: str, key: str) -> None:
    field = f"{path}{key}"
    assert_rejected(with_path(make_event(), field, "x"), field, "not a field Cloud Eye accepts")


# --- dimensions ---------------------------------------------------------------------------------


def _dimensions(count: int) -> list[dict[str, str]]:
    return [{"name": f"dim{i}", "value": f"v{i}"} for i in range(count)]


def test_dimensions_count_boundary() -> None:
    assert_valid(make_event(dimensions=_dimensions(4)))
    assert_valid(make_event(dimensions=[]))
    assert_rejected(make_event(dimensions=_dimensions(5)), "detail.dimensions", "at most 4")


@pytest.mark.parametrize(
    ("good", "bad", "field", "words"),
    [
        ({"name": "a" * 32, "value": "v"}, {"name": "a" * 33, "value": "v"}, "name", ("1-32",)),
        ({"name": "a-b_c1", "value": "v"}, {"name": "1ab", "value": "v"}, "name", ("start with a letter",)),
        ({"name": "a", "value": "v"}, {"name": "a.b", "value": "v"}, "name", ()),
        ({"name": "a", "value": "v"}, {"name": "", "value": "v"}, "name", ()),
        ({"name": "a", "value": "v" * 256}, {"name": "a", "value": "v" * 257}, "value", ("256",)),
        ({"name": "a", "value": "x"}, {"name": "a", "value": ""}, "value", ("at least 1",)),
        ({"name": "a", "value": "x"}, {"name": "a"}, "value", ("required",)),
        ({"name": "a", "value": "x"}, {"name": "a", "value": "x", "unit": "s"}, "unit", ("not a field",)),
    ],
)
def test_dimension_item_boundaries(good: dict, bad: dict, field: str, words: tuple[str, ...]) -> None:
    assert_valid(make_event(dimensions=[good]))
    assert_rejected(make_event(dimensions=[good, bad]), f"detail.dimensions[1].{field}", *words)


def test_dimensions_must_be_a_list_of_objects() -> None:
    assert_rejected(make_event(dimensions={"name": "a", "value": "b"}), "detail.dimensions", "list")
    assert_rejected(make_event(dimensions=["a=b"]), "detail.dimensions[0]", "object")


# --- time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [EARLIEST, LATEST, NOW, EARLIEST + 1, LATEST - 1])
def test_time_inside_window(value: int) -> None:
    assert assert_valid(with_path(make_event(), "time", value))["time"] == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (EARLIEST - 1, ("older", "1 hour minus 20 s")),
        (EARLIEST - 3_600_000, ("older", "3600 s")),
        (LATEST + 1, ("ahead", "10 minutes minus 20 s")),
        (LATEST + 60_000, ("ahead", "60 s")),
    ],
)
def test_time_outside_window(value: int, words: tuple[str, ...]) -> None:
    error = assert_rejected(with_path(make_event(), "time", value), "time", *words)
    # Plain words: even 1 ms outside must not read as "0 s older".
    assert " 0 s " not in error.message


def test_window_follows_the_injected_clock() -> None:
    event = with_path(make_event(), "time", NOW)
    assert validate_events([event], clock=lambda: NOW + 3_580_000).errors == {}
    assert validate_events([event], clock=lambda: NOW + 3_580_001).errors[0][0].field == "time"
    assert validate_events([event], clock=lambda: NOW - 580_000).errors == {}
    assert validate_events([event], clock=lambda: NOW - 580_001).errors[0][0].field == "time"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, ("true/false",)),
        (False, ("true/false",)),
        (NOW + 0.5, ("fraction",)),
        (float("nan"), ()),
        ("soon", ("milliseconds",)),
        ("", ()),
        ("1.7e12", ()),
        ("-1709294400000", ()),
        ("１７０９２９４４００００００", ()),  # full-width digits are not a number here
        (None, ()),
        ([NOW], ()),
        ({"ms": NOW}, ()),
    ],
)
def test_time_type_refused(value: Any, words: tuple[str, ...]) -> None:
    assert_rejected(with_path(make_event(), "time", value), "time", *words)


@pytest.mark.parametrize("value", [str(NOW), f" {NOW} ", float(NOW)])
def test_time_numeric_forms_normalised_to_int(value: Any) -> None:
    event = assert_valid(with_path(make_event(), "time", value))
    assert event["time"] == NOW
    assert type(event["time"]) is int


@pytest.mark.parametrize("value", [NOW // 1000, str(NOW // 1000)])
def test_time_in_seconds_gets_a_hint(value: Any) -> None:
    error = assert_rejected(
        with_path(make_event(), "time", value), "time", "looks like seconds", "milliseconds"
    )
    assert str(NOW // 1000 * 1000) in error.message


# --- batches: index, field path, reason; a bad item never affects the others -------------------


def test_rejections_name_index_field_and_reason() -> None:
    items = [
        make_event(),
        with_path(make_event(), "event_name", "1bad"),
        make_event(),
        make_event(dimensions=[{"name": "ok", "value": "v"}, {"name": "9", "value": "v"}]),
        "not an event",
        with_path(make_event(), "time", NOW // 1000),
        with_path(make_event(event_level="Loud", event_state="fine"), "extra", 1),
        make_event(event_user="ops/team"),
    ]

    outcome = validate_events(items, clock=clock)

    assert [index for index, _ in outcome.valid] == [0, 2, 7]
    assert [event for _, event in outcome.valid] == [items[0], items[2], items[7]]
    assert set(outcome.errors) == {1, 3, 4, 5, 6}
    assert [e.field for e in outcome.errors[1]] == ["event_name"]
    assert [e.field for e in outcome.errors[3]] == ["detail.dimensions[1].name"]
    assert [e.field for e in outcome.errors[4]] == ["(event)"]
    assert [e.field for e in outcome.errors[5]] == ["time"]
    assert sorted(e.field for e in outcome.errors[6]) == ["detail.event_level", "detail.event_state", "extra"]
    for errors in outcome.errors.values():
        for error in errors:
            assert error.message.strip()
            # Plain words: not pydantic's default wording, no regexes, no documentation URLs.
            for jargon in ("should match pattern", "^[", "pydantic", "http"):
                assert jargon not in error.message
            assert error.to_dict() == {"field": error.field, "message": error.message}


def test_bad_item_does_not_affect_the_others() -> None:
    good = [with_path(make_event(), "event_name", f"event{i}") for i in range(20)]
    bad = with_path(make_event(), "detail.content", "x" * 5000)
    items = [*good[:10], bad, *good[10:]]

    outcome = validate_events(items, clock=clock)

    assert list(outcome.errors) == [10]
    assert [index for index, _ in outcome.valid] == [*range(10), *range(11, 21)]
    assert [event for _, event in outcome.valid] == good


def test_input_is_not_mutated() -> None:
    item = with_path(make_event(), "time", str(NOW))
    before = copy.deepcopy(item)
    validate_events([item], clock=clock, default_source="svc.item")
    assert item == before


def test_default_source_fills_only_missing_sources() -> None:
    items = [without(make_event(), "event_source"), make_event()]
    outcome = validate_events(items, clock=clock, default_source="app.orders")
    assert outcome.errors == {}
    assert [event["event_source"] for _, event in outcome.valid] == ["app.orders", "financial.System"]


def test_report_events_dry_run_carries_index_field_and_reason() -> None:
    from forwarder import report_events
    from forwarder.settings import Settings

    items = [make_event(), with_path(make_event(), "detail.event_type", "EVENT.SYS")]
    body = report_events(items, settings=Settings(), dry_run=True, clock=clock).to_dict()

    assert body["received"] == 2 and body["accepted"] == 1 and body["rejected"] == 1
    assert body["results"][0] == {"index": 0, "status": "accepted", "event_name": "systemInvaded"}
    assert body["results"][1]["index"] == 1
    assert body["results"][1]["status"] == "rejected"
    [error] = body["results"][1]["errors"]
    assert error["field"] == "detail.event_type" and "EVENT.SYS" in error["message"]


# --- each item judged alone: hostile values stay that item's rejection -------------------------


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (-(10**4299), ("negative",)),  # 4,300 digits: Python cannot print it
        (10**4299, ("-bit number", "not a UNIX timestamp")),
        (10**100, ("-bit number",)),
        ("9" * 5000, ("5000 digits long",)),
        (-1, ("negative",)),
        (float("inf"), ("infinite",)),
        (float("-inf"), ("infinite",)),
        (1e300, ("-bit number",)),
    ],
    ids=["neg-4300-digits", "pos-4300-digits", "googol", "5000-digit-text", "-1", "inf", "-inf", "1e300"],
)
def test_hostile_times_are_that_items_rejection(value: Any, words: tuple[str, ...]) -> None:
    items = [make_event(), with_path(make_event(), "time", value), make_event()]
    outcome = validate_events(items, clock=clock)
    assert [index for index, _ in outcome.valid] == [0, 2]
    [error] = outcome.errors[1]
    assert error.field == "time"
    for word in words:
        assert word in error.message
    assert len(error.message) < 200


def test_deep_nesting_inside_an_item_is_that_items_rejection() -> None:
    items = [with_path(make_event(), "detail.content", _deep(100_000)), make_event()]
    outcome = validate_events(items, clock=clock)
    assert [index for index, _ in outcome.valid] == [1]
    assert [(e.field, e.message) for e in outcome.errors[0]] == [("detail.content", "must be a string")]


def test_a_very_long_unknown_key_is_named_cut_short() -> None:
    key = "k" * 1_000_000
    outcome = validate_events([with_path(make_event(), f"detail.{key}", 1)], clock=clock)
    [error] = outcome.errors[0]
    assert error.field == f"detail.{key}"[:200] + "..."
    assert error.message == "is not a field Cloud Eye accepts"


def test_an_item_with_thousands_of_problems_lists_eight_and_counts_the_rest() -> None:
    item = make_event(**{f"extra{i}": i for i in range(5000)})
    errors = validate_events([item], clock=clock).errors[0]
    assert len(errors) == 9
    assert errors[-1] == FieldError("(event)", "4992 more errors not listed")


def test_a_lone_surrogate_in_a_key_is_that_items_rejection() -> None:
    outcome = validate_events([with_path(make_event(), "detail.k\ud800", "v"), make_event()], clock=clock)
    assert [index for index, _ in outcome.valid] == [1]
    assert outcome.errors[0][0].field.startswith("detail")


def test_anything_an_item_raises_stays_that_items_problem() -> None:
    class Hostile(dict):
        def __contains__(self, key: object) -> bool:
            raise RuntimeError("boom")

    items = [Hostile(make_event()), make_event()]
    outcome = validate_events(items, clock=clock, default_source="svc.item")
    assert [index for index, _ in outcome.valid] == [1]
    assert outcome.errors[0] == [FieldError("(event)", "cannot be checked (RuntimeError)")]


def test_the_json_array_pass_declines_hostile_values_for_the_per_item_path() -> None:
    from forwarder.events import validate_json_array

    body = json.dumps([make_event(), with_path(make_event(), "time", -(10**4299))])
    assert validate_json_array(body, clock=clock) is None
    assert validate_json_array("[" * 100_000 + "]" * 100_000, clock=clock) is None


RESOURCE_NAMES_ACCEPTED = [
    "ecs-01", "web-01.example.com", "db@prod", "my vm", "数据库 主", "Ünïcødé", "n" * 128
]
RESOURCE_NAMES_REFUSED = ["ecs:01", "数据库!", "a\u00b2", "", "数" * 129, "a\ud800", 7, None]


def test_resource_names_get_the_same_verdict_on_both_paths() -> None:
    from forwarder.events import validate_json_array

    for name in RESOURCE_NAMES_ACCEPTED:
        event = make_event(resource_name=name)
        assert_valid(event)
        outcome = validate_json_array(json.dumps([event], ensure_ascii=False).encode(), clock=clock)
        assert outcome is not None and outcome.valid[0][1]["detail"]["resource_name"] == name
    for name in RESOURCE_NAMES_REFUSED:
        event = make_event(resource_name=name)
        # One error for the field, whichever check refused it: a string type or the character rule.
        assert [error.field for error in errors_of(event)] == ["detail.resource_name"]
        words = ("string",) if not isinstance(name, str) else ("1-128 letters (Chinese too)",)
        assert_rejected(event, "detail.resource_name", *words)
        if "\ud800" not in str(name):
            assert validate_json_array(json.dumps([event]), clock=clock) is None
