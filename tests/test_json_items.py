"""An array's text cut into pieces: the pieces hold exactly its items, and a text that is not
JSON is refused as the json module refuses it, wherever the fault is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder import json_items
from forwarder.json_items import events_array

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Strings that look like the boundaries a cut is guessed at: braces, brackets, commas, quotes.
tricky_text = st.text(alphabet='{}[],:"\\ aé\n', max_size=12)
leaves = st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | tricky_text
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)
events_like = st.fixed_dictionaries(
    {
        "event_name": tricky_text,
        "detail": st.fixed_dictionaries(
            {"dimensions": st.lists(st.dictionaries(tricky_text, tricky_text, max_size=2), max_size=3)}
        ),
    }
)
arrays = st.lists(values | events_like, max_size=30)
layouts = st.sampled_from(
    [{"separators": (",", ":")}, {}, {"indent": 2}, {"indent": "\t", "ensure_ascii": False}]
)
piece_sizes = st.sampled_from([1, 7, 40, 300, json_items.PIECE_CHARS])


def _items(found: json_items.ArrayPieces) -> list[Any]:
    return [item for piece in found.texts() for item in json.loads(piece)]


@FUZZ
@given(array=arrays, layout=layouts, piece_chars=piece_sizes, wrapped=st.booleans())
def test_the_pieces_hold_exactly_the_items(
    array, layout, piece_chars: int, wrapped: bool, monkeypatch
) -> None:
    monkeypatch.setattr(json_items, "PIECE_CHARS", piece_chars)
    text = json.dumps({"events": array, "note": [1, "]"]} if wrapped else array, **layout)
    found = events_array(text)
    assert found is not None
    assert found.count == len(array)
    assert _items(found) == json.loads(text)["events" if wrapped else slice(None)]
    assert all(count for _begin, _end, count in found.pieces)  # no empty piece


@FUZZ
@given(
    array=arrays,
    piece_chars=piece_sizes,
    cut=st.integers(0, 10**6),
    junk=st.sampled_from(["", "x", ",", "]", "{", '"', "}"]),
)
def test_a_text_that_is_not_json_is_refused_wherever_the_fault_is(
    array, piece_chars: int, cut: int, junk: str, monkeypatch
) -> None:
    monkeypatch.setattr(json_items, "PIECE_CHARS", piece_chars)
    text = json.dumps(array, separators=(",", ":"))
    at = cut % (len(text) + 1)
    broken = text[:at] + junk + text[at + 1 :] if junk else text[:at]
    try:
        json.loads(broken)
    except (ValueError, RecursionError):
        with pytest.raises((ValueError, RecursionError)):
            events_array(broken)
    else:
        found = events_array(broken)  # still JSON: one value, perhaps no array at all
        if isinstance(json.loads(broken), list):
            assert found is not None and _items(found) == json.loads(broken)


def test_a_large_array_is_cut_into_pieces_of_about_the_piece_size() -> None:
    array = [
        {
            "event_name": f"E{i}",
            "detail": {"content": "x" * 200, "dimensions": [{"name": "a", "value": "b"}] * 2},
        }
        for i in range(3000)
    ]
    text = json.dumps(array)
    found = events_array(text)
    assert found is not None and found.count == 3000
    sizes = [end - begin for begin, end, _count in found.pieces]
    assert len(sizes) >= len(text) // (2 * json_items.PIECE_CHARS)
    assert max(sizes) <= 2 * json_items.PIECE_CHARS


def test_tiny_items_are_cut_too() -> None:
    text = "[" + "0," * 1_000_000 + "0]"
    found = events_array(text)
    assert found is not None and found.count == 1_000_001
    assert max(end - begin for begin, end, _count in found.pieces) <= 2 * json_items.PIECE_CHARS


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("[]", 0),
        ('  [1, {"a": "}, {"}]', 2),
        ('{"events": [1, 2], "x": [3]}', 11),
        ('{"events": 1, "events": [2]}', 24),
    ],
)
def test_where_the_events_array_starts(text: str, start: int) -> None:
    found = events_array(text)
    assert found is not None and found.start == start


@pytest.mark.parametrize(
    "text", ['{"event_name": "a", "events": [1]}', '{"events": [1], "events": 2}', "3", '"[1]"', "{}"]
)
def test_no_events_array(text: str) -> None:
    assert events_array(text) is None


@pytest.mark.parametrize("piece_chars", [1, 50, json_items.PIECE_CHARS])
def test_what_only_the_json_module_reads_is_still_cut_right(piece_chars: int, monkeypatch) -> None:
    # Lone surrogates and nesting past 200 levels: Rust's parser refuses them, the json module not.
    monkeypatch.setattr(json_items, "PIECE_CHARS", piece_chars)
    array = [
        {"a": "\ud800"},
        {"b": [[[[]]]]},
        *[{"deep": json.loads("[" * 300 + "]" * 300)}] * 3,
        "\udfff",
        0,
    ]
    text = json.dumps(array * 400)
    found = events_array(text)
    assert found is not None and found.count == len(array) * 400
    assert _items(found) == json.loads(text)


@pytest.mark.parametrize(
    "text", ["[{},", "[{}", "[0,", "[", '[{"a": 1}, {"b": "]"}', "[{}]]", '{"events": [{},']
)
def test_an_unfinished_array_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        events_array(text)
