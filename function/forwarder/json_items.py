"""Walk the items of a JSON array in its text without parsing the whole array at once.

An HTTP body may hold millions of tiny items (``[0,0,0,...]``): parsed at once they cost far more
memory than the text, and every one of them would become a result. So an array's text is first
cut into pieces of about ``PIECE_CHARS`` characters at item boundaries, each piece checked to be
JSON and its items counted (nothing kept but where the pieces are); then each piece is parsed and
validated in turn. Peak memory follows the piece, not the body.

A cut is guessed cheaply (the first ``},`` or ``,`` past the piece size where the brackets before
it balance) and proved by parsing: when ``[`` + piece + ``]`` is one JSON array whose first item
starts where an item of the body starts, its items are exactly the body's items up to the cut (a
JSON value ends where its own text says; a number ends before the ``,`` or ``]`` that follows it).
A guess that does not parse is replaced by walking items one at a time with
``json.JSONDecoder.raw_decode``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NON_BLANK_LINE = re.compile(r"^[ \t\r]*[^ \t\r\n]", re.MULTILINE)
_OBJECT_END = re.compile(r"\}[ \t\n\r]*,")
_decoder = json.JSONDecoder()
# Counts and checks without building objects: each object becomes its number of keys.
_skimmer = json.JSONDecoder(object_pairs_hook=len)
# Characters per piece of an array's text: about a hundred events, one request's worth.
PIECE_CHARS = 65536
# Candidate cuts tried per piece before walking item by item.
MAX_GUESSES = 8


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, what: str) -> None:
    raise json.JSONDecodeError(f"Expecting {what}", text, pos)


class ArrayWalk:
    """The items of the array whose ``[`` is at ``start``, one at a time; ``end`` is set (just past
    the ``]``) once they are all out. Raises ``ValueError`` on bad JSON."""

    def __init__(self, text: str, start: int) -> None:
        self.text, self.start = text, start
        self.end: int | None = None

    def __iter__(self) -> Iterator[Any]:
        text = self.text
        pos = _skip(text, self.start + 1)
        if text.startswith("]", pos):
            self.end = pos + 1
            return
        while True:
            value, pos = _decoder.raw_decode(text, pos)
            yield value
            pos = _skip(text, pos)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
            elif text.startswith("]", pos):
                self.end = pos + 1
                return
            else:
                _expect(text, pos, "',' delimiter or ']'")


def iter_array(text: str, start: int) -> Iterator[Any]:
    """The items of the array whose ``[`` is at ``start`` (see ``ArrayWalk``)."""
    return iter(ArrayWalk(text, start))


class ArrayPieces:
    """An array in ``text`` whose ``[`` is at ``start``, cut at item boundaries: ``(begin, end,
    count)`` per piece (``text[begin:end]`` holds ``count`` whole items, separated by commas)."""

    def __init__(self, text: str, start: int, pieces: list[tuple[int, int, int]]) -> None:
        self.text = text
        self.start = start
        self.pieces = pieces

    @property
    def count(self) -> int:
        return sum(count for _begin, _end, count in self.pieces)

    def texts(self) -> Iterator[str]:
        """Each piece as a JSON array of its items, one at a time."""
        for begin, end, _count in self.pieces:
            yield "[" + self.text[begin:end] + "]"


@lru_cache(maxsize=1)
def _objects_validator() -> Any:
    # Checks a JSON array of objects in Rust without making Python objects of their contents
    # (about five times cheaper than json.loads); anything it refuses is left to the json module.
    # It stops at the first item that is no object: a piece of strings fails at once.
    from pydantic_core import SchemaValidator, core_schema

    objects = core_schema.typed_dict_schema({}, extra_behavior="ignore")
    return SchemaValidator(core_schema.list_schema(objects, fail_fast=True))


def _piece_count(piece: str, objects: bool) -> int | None:
    """Items in ``piece`` (``[...]``) when it is one JSON array, else ``None``. With ``objects``
    (the items are likely objects) Rust checks it first, else the json module alone."""
    if objects:
        from pydantic_core import ValidationError

        try:
            return len(_objects_validator().validate_json(piece))
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                # Not JSON to Rust: nearly always not to the json module either (a wrong guess).
                # Where they differ (lone surrogates, deep nesting) walking the items decides.
                return None
        # Valid JSON, but not all objects: the json module counts.
    try:
        value, end = _skimmer.raw_decode(piece)
    except (ValueError, RecursionError):
        return None
    return len(value) if end == len(piece) else None


def _balanced(text: str, begin: int, end: int) -> bool:
    count = text.count
    return count("{", begin, end) == count("}", begin, end) and (
        count("[", begin, end) == count("]", begin, end)
    )


def _guesses(text: str, pos: int, last: int) -> Iterator[tuple[int, bool]]:
    """Where a piece starting at ``pos`` might end, and whether its items look like objects: the
    array's last ``]`` when it is near, else just past an object's ``}`` after ``PIECE_CHARS``
    (tried at once: a wrong one costs one quick parse), then a ``,`` where brackets balance.
    A few candidates of each kind are looked at, no more."""
    if last - pos <= 2 * PIECE_CHARS:
        if last > pos:
            yield last, text.startswith("{", pos)
        return
    low, high = pos + PIECE_CHARS, pos + 2 * PIECE_CHARS
    for match in islice(_OBJECT_END.finditer(text, low, high), MAX_GUESSES):
        yield match.start() + 1, True
    end = low
    for _ in range(MAX_GUESSES):
        end = text.find(",", end, high)
        if end < 0:
            return
        if _balanced(text, pos, end):
            yield end, False
        end += 1


def _cut(text: str, start: int) -> tuple[list[tuple[int, int, int]], int]:
    """The pieces of the array whose ``[`` is at ``start``, and where it ends (just past ``]``).
    Raises ``ValueError`` (or ``RecursionError``) when it is not JSON."""
    pieces: list[tuple[int, int, int]] = []
    pos = _skip(text, start + 1)
    if text.startswith("]", pos):
        return pieces, pos + 1
    last = text.rfind("]")
    while True:
        for end, objects in _guesses(text, pos, last):
            count = _piece_count("[" + text[pos:end] + "]", objects)
            if count:
                pieces.append((pos, end, count))
                pos = _skip(text, end)
                if text.startswith("]", pos):
                    return pieces, pos + 1
                pos = _skip(text, pos + 1)  # the ',' the guess stopped at
                break
        else:  # no guess held: one item at a time, to a little past the piece size
            begin, count = pos, 0
            while True:
                _value, end = _skimmer.raw_decode(text, pos)
                count += 1
                pos = _skip(text, end)
                if text.startswith("]", pos):
                    pieces.append((begin, end, count))
                    return pieces, pos + 1
                if not text.startswith(",", pos):
                    _expect(text, pos, "',' delimiter or ']'")
                pos = _skip(text, pos + 1)
                if end - begin >= PIECE_CHARS:
                    pieces.append((begin, end, count))
                    break


def events_array(text: str) -> ArrayPieces | None:
    """The array of events, cut into pieces: a top-level array, or the ``events`` array of a
    ``{"events": [...]}`` wrapper; ``None`` for any other JSON value. Raises ``ValueError``
    (``json.JSONDecodeError``, or for values Python cannot hold) when the text is not one JSON value.
    """
    pos = _skip(text, 0)
    found: ArrayPieces | None
    if text.startswith("[", pos):
        pieces, end = _cut(text, pos)
        found = ArrayPieces(text, pos, pieces)
    elif text.startswith("{", pos):
        found, end = _wrapper_events(text, pos)
    else:
        _value, end = _skimmer.raw_decode(text, pos)
        found = None
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, end))
    return found


def _wrapper_events(text: str, start: int) -> tuple[ArrayPieces | None, int]:
    """(the ``events`` array or None, end of the object) for the object at ``start``."""
    found: ArrayPieces | None = None
    is_event = False
    pos = _skip(text, start + 1)
    if text.startswith("}", pos):
        return None, pos + 1
    while True:
        if not text.startswith('"', pos):
            _expect(text, pos, "property name enclosed in double quotes")
        key, pos = _decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if not text.startswith(":", pos):
            _expect(text, pos, "':' delimiter")
        pos = _skip(text, pos + 1)
        is_event = is_event or key == "event_name"
        if key == "events" and text.startswith("[", pos):
            array_start = pos
            pieces, pos = _cut(text, pos)
            found = ArrayPieces(text, array_start, pieces)
        else:
            if key == "events":
                found = None
            _value, pos = _skimmer.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("}", pos):
            return (None if is_event else found), pos + 1
        else:
            _expect(text, pos, "',' delimiter or '}'")


def count_lines(text: str, limit: int) -> int:
    """How many non-blank lines ``text`` has, counting no further than ``limit + 1``."""
    return sum(1 for _ in islice(_NON_BLANK_LINE.finditer(text), limit + 1))


# An event has at most 4 fields, 11 in its detail and 4 dimensions of 2: 27 entries in all.
# Checking an item far wider than that field by field gives one error per entry: a 6 MiB item with
# 500,000 unknown keys would make an answer of some 30 MB and hold 600 MiB. Such an item is
# refused whole, unchecked.
MAX_ENTRIES = 48


def too_wide(item: Any) -> str | None:
    """Why ``item`` is refused without checking its fields (one reason), or ``None``."""
    if not isinstance(item, dict):
        return None
    entries = len(item)
    detail = item.get("detail")
    if isinstance(detail, dict | list):
        entries += len(detail)
        dimensions = detail.get("dimensions") if isinstance(detail, dict) else None
        if isinstance(dimensions, list):
            entries += len(dimensions)
            if entries <= MAX_ENTRIES:
                entries += sum(len(value) for value in dimensions if isinstance(value, dict | list))
    if entries <= MAX_ENTRIES:
        return None
    return (
        f"the item has {entries} fields, detail fields and dimensions in all, more than the "
        f"{MAX_ENTRIES} an event can have: not checked field by field"
    )
