"""JSON text helpers used by every entry: read one JSON value, name a value's kind, unwrap events.

Each answer comes with words a user can act on ("is not JSON: Expecting value (line 1, column 1)",
"a JSON null"), so every entry explains unreadable input the same way. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# The one wrapper every entry accepts around a list of events.
EVENTS_KEY = "events"


def parse(text: str | bytes | bytearray) -> tuple[Any, str | None]:
    """``(value, None)`` for text holding one JSON value, else ``(None, problem)``.

    ``problem`` reads after the name of the thing that was parsed: "the message " + problem.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, f"is not UTF-8 text (bad byte at offset {exc.start})"
    if not text.strip():
        return None, "is empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        return None, "is not usable JSON: nested too deeply"
    except ValueError as exc:  # e.g. an integer literal longer than Python allows
        return None, f"is not usable JSON: {exc}"


def kind(value: Any) -> str:
    """The JSON name of a parsed value's type: null, boolean, number, string, array or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # not from JSON at all (a test console may pass anything)


def is_events_wrapper(value: Any) -> bool:
    """``{"events": ...}`` that is not itself an event (an event has an ``event_name``)."""
    return isinstance(value, dict) and EVENTS_KEY in value and "event_name" not in value


def unwrap_events(value: Any) -> Any:
    """The list inside ``{"events": [...]}``; any other value unchanged.

    The caller checks the result: ``{"events": 3}`` gives ``3``, which is no array of events.
    """
    return value[EVENTS_KEY] if is_events_wrapper(value) else value


def field_path(parts: Iterable[str | int]) -> str:
    """``("detail", "dimensions", 0, "name")`` -> ``detail.dimensions[0].name`` ("" for none)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
