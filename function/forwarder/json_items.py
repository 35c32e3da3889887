"""Walk the items of a JSON array in its text, one at a time, without parsing the whole array.

An HTTP body may hold millions of tiny items (``[0,0,0,...]``): parsed at once they cost far more
memory than the text, and every one of them would become a result. Walking the text with
``json.JSONDecoder.raw_decode`` holds one item at a time, so a body can be counted against the
item cap first and then handed over item by item.
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
_decoder = json.JSONDecoder()


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


def _array_end(text: str, start: int) -> int:
    """Where the array opening at ``start`` ends; its items are parsed one by one and dropped."""
    walk = ArrayWalk(text, start)
    for _ in walk:
        pass
    assert walk.end is not None
    return walk.end


def events_array(text: str) -> int | None:
    """Where the array of events starts: a top-level array, or the ``events`` array of a
    ``{"events": [...]}`` wrapper; ``None`` for any other JSON value. Raises ``ValueError``
    (``json.JSONDecodeError``, or for values Python cannot hold) when the text is not one JSON value.
    """
    pos = _skip(text, 0)
    found: int | None
    if text.startswith("[", pos):
        found = pos
        end = _array_end(text, pos)
    elif text.startswith("{", pos):
        found, end = _wrapper_events(text, pos)
    else:
        _value, end = _decoder.raw_decode(text, pos)
        found = None
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, end))
    return found


def _wrapper_events(text: str, start: int) -> tuple[int | None, int]:
    """(start of the ``events`` array or None, end of the object) for the object at ``start``."""
    found: int | None = None
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
            found, pos = pos, _array_end(text, pos)
        else:
            if key == "events":
                found = None
            _value, pos = _decoder.raw_decode(text, pos)
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


@lru_cache(maxsize=1)
def _known_keys() -> tuple[frozenset[str], frozenset[str]]:
    from .events import Event, EventDetail  # loads pydantic: only once there are items to check

    def keys(kind: Any) -> frozenset[str]:
        return frozenset(kind.__required_keys__ | kind.__optional_keys__)

    return keys(Event), keys(EventDetail)


def only_known_keys(item: Any) -> bool:
    """Whether ``item`` has no key an event does not have (top level and detail). Items that do
    are invalid anyway: the one-pass check of a whole array would only collect their errors."""
    if not isinstance(item, dict):
        return True
    top, detail_keys = _known_keys()
    detail = item.get("detail")
    return item.keys() <= top and (not isinstance(detail, dict) or detail.keys() <= detail_keys)
