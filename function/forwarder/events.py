"""Cloud Eye's rules for a custom event, as pydantic v2 models, and batch validation.

The models are TypedDicts so a validated event is already the plain dict that goes on the wire
(no model instances to build and dump). The validator is built once per process, on first use.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from .errors import EventRuleError
from .jsontext import field_path

# The accepted `time` window relative to now (SPEC section 3, the API document's note).
WINDOW_PAST_MS = 3_600_000 - 20_000
WINDOW_FUTURE_MS = 600_000 - 20_000
# Below this a timestamp is far more likely seconds than milliseconds (10^11 ms is 1973).
SECONDS_THRESHOLD = 10**11
# Items per slice in validate_in_slices: one request's worth when all are valid.
VALIDATION_SLICE = 100
MAX_ERRORS_PER_ITEM = 8

EVENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
SOURCE_PART = r"[A-Za-z][A-Za-z0-9_]{2,31}"
EVENT_SOURCE_PATTERN = rf"^{SOURCE_PART}\.{SOURCE_PART}$"
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9_:-]{1,128}$"
RESOURCE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
EVENT_USER_PATTERN = r"^[A-Za-z0-9_/ -]{1,64}$"
DIMENSION_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"

# Plain-words reasons for pattern mismatches, keyed by the last element of the field path.
_PATTERN_REASONS = {
    "event_name": "must start with a letter and have 1-64 letters, digits or underscores",
    "event_source": (
        "must be 'service.item', each part starting with a letter and having 3-32 letters, "
        "digits or underscores"
    ),
    "resource_id": "must have 1-128 letters, digits, '_', '-' or ':'",
    "resource_name": "must have 1-128 letters, digits, '_' or '-'",
    "event_user": "must have 1-64 letters, digits, '_', '-', '/' or spaces",
    "name": "must start with a letter and have 1-32 letters, digits, '_' or '-'",
}


def _timestamp_ms(value: Any) -> int:
    # bool is an int subclass in Python; Cloud Eye wants a number, so refuse it explicitly.
    if isinstance(value, bool):
        raise EventRuleError("must be an integer UNIX timestamp in milliseconds, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise EventRuleError("must be a whole number of milliseconds, not a fraction")
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    raise EventRuleError("must be an integer UNIX timestamp in milliseconds")


Timestamp = Annotated[int, BeforeValidator(_timestamp_ms)]


class Dimension(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    name: Annotated[str, Field(pattern=DIMENSION_NAME_PATTERN)]
    value: Annotated[str, Field(min_length=1, max_length=256)]


class EventDetail(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    content: NotRequired[Annotated[str, Field(max_length=4096)]]
    # Any text, but text: a bare ``str`` lets an unpaired surrogate through, which no request can carry
    # (UTF-8 cannot encode it); a constraint makes pydantic check it like every other field.
    group_id: NotRequired[Annotated[str, Field(min_length=0)]]
    resource_id: NotRequired[Annotated[str, Field(pattern=RESOURCE_ID_PATTERN)]]
    resource_name: NotRequired[Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]]
    event_state: NotRequired[Literal["normal", "warning", "incident"]]
    event_level: NotRequired[Literal["Critical", "Major", "Minor", "Info"]]
    event_user: NotRequired[Annotated[str, Field(pattern=EVENT_USER_PATTERN)]]
    event_type: NotRequired[Literal["EVENT.CUSTOM"]]
    sub_event_type: NotRequired[Literal["SUB_EVENT.OPS", "SUB_EVENT.PLAN", "SUB_EVENT.CUSTOM"]]
    dimensions: NotRequired[Annotated[list[Dimension], Field(max_length=4)]]


class Event(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    event_name: Annotated[str, Field(pattern=EVENT_NAME_PATTERN)]
    event_source: Annotated[str, Field(pattern=EVENT_SOURCE_PATTERN)]
    time: Timestamp
    detail: EventDetail


@lru_cache(maxsize=1)
def event_adapter() -> TypeAdapter[Event]:
    """The event validator, built on first use and then kept for the life of the process."""
    return TypeAdapter(Event)


@lru_cache(maxsize=1)
def event_list_adapter() -> TypeAdapter[list[Event]]:
    """The validator of a whole JSON array of events (``validate_json_array``), built on first use."""
    return TypeAdapter(list[Event])


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class Validation:
    """Outcome of validating a batch: valid events with their input index, and errors per index."""

    valid: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: dict[int, list[FieldError]] = field(default_factory=dict)


def _field_path(loc: tuple[Any, ...]) -> str:
    return field_path(loc) or "(event)"


def _reason(error: Any) -> str:
    kind = error["type"]
    loc = error["loc"]
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field Cloud Eye accepts"
    if kind == "string_pattern_mismatch":
        return _PATTERN_REASONS.get(last, f"must match {ctx.get('pattern')}")
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} character(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "literal_error":
        if last == "event_type" and error.get("input") == "EVENT.SYS":
            return "EVENT.SYS is reserved for system events; users can only report EVENT.CUSTOM"
        return f"must be one of {ctx.get('expected')}"
    if kind in ("string_type", "str_type"):
        return "must be a string"
    if kind in ("dict_type", "model_type"):
        return "must be an object"
    if kind == "list_type":
        return "must be a list"
    if kind == "string_unicode":
        return "must be valid Unicode text (it holds an unpaired surrogate)"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


def _whole_seconds(ms: int) -> int:
    # Rounded up: 1 ms outside the window must not read as "0 s older".
    return -(-ms // 1000)


def _window_error(time_ms: int, now_ms: int) -> str | None:
    earliest = now_ms - WINDOW_PAST_MS
    latest = now_ms + WINDOW_FUTURE_MS
    if earliest <= time_ms <= latest:
        return None
    if time_ms < SECONDS_THRESHOLD:
        return (
            f"{time_ms} looks like seconds; Cloud Eye wants milliseconds "
            f"(did you mean {time_ms * 1000}?)"
        )
    if time_ms < earliest:
        return (
            f"is {_whole_seconds(earliest - time_ms)} s older than Cloud Eye accepts "
            "(at most 1 hour minus 20 s in the past)"
        )
    return (
        f"is {_whole_seconds(time_ms - latest)} s further ahead than Cloud Eye accepts "
        "(at most 10 minutes minus 20 s in the future)"
    )


def now_ms() -> int:
    return _time.time_ns() // 1_000_000


def validate_events(
    items: Sequence[Any],
    *,
    clock: Callable[[], int] = now_ms,
    default_source: str | None = None,
) -> Validation:
    """Validate raw items one by one; a bad item gets errors by its index, the rest go on.

    ``clock`` returns the current time in UNIX milliseconds (injectable for tests).
    ``default_source`` fills in ``event_source`` for items that lack it.
    """
    return _validate(items, range(len(items)), clock(), default_source)


def validate_in_slices(
    items: Sequence[Any],
    *,
    clock: Callable[[], int] = now_ms,
    default_source: str | None = None,
    size: int = VALIDATION_SLICE,
) -> Iterator[Validation]:
    """``validate_events`` a slice of ``size`` items at a time (indexes stay those of ``items``),
    so the caller can send the first valid events while the rest are still being checked."""
    current = clock()  # once, as for a whole batch: one batch, one window
    for start in range(0, len(items), size):
        yield _validate(items, range(start, min(start + size, len(items))), current, default_source)


def _validate(items: Sequence[Any], indexes: range, current: int, default_source: str | None) -> Validation:
    # The core validator itself: TypeAdapter.validate_python's wrapper costs ~15% per event.
    validate = event_adapter().validator.validate_python
    outcome = Validation()
    for index in indexes:
        item = items[index]
        if default_source and isinstance(item, dict) and "event_source" not in item:
            item = {**item, "event_source": default_source}
        try:
            event = validate(item)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)  # listed up to a cap: answers stay proportional
            outcome.errors[index] = [
                FieldError(_field_path(err["loc"]), _reason(err)) for err in errors[:MAX_ERRORS_PER_ITEM]
            ]
            if len(errors) > MAX_ERRORS_PER_ITEM:
                more = f"{len(errors) - MAX_ERRORS_PER_ITEM} more errors not listed"
                outcome.errors[index].append(FieldError("(event)", more))
            continue
        problem = _window_error(event["time"], current)
        if problem:
            outcome.errors[index] = [FieldError("time", problem)]
            continue
        outcome.valid.append((index, event))
    return outcome


def validate_json_array(data: bytes | str, *, clock: Callable[[], int] = now_ms) -> Validation | None:
    """A JSON array of events checked in one pass, or ``None`` unless every item is a valid event.

    When it returns, the outcome is the one ``validate_events(json.loads(data))`` would give (the
    window check is still made per event); ``None`` (not JSON, not an array, empty, or any item
    invalid) means: take that per-item path, which names each bad item, its field and the reason.
    One pass skips json.loads' intermediate dicts: for 10,000 events about 35% less CPU and 9 MiB.
    """
    try:
        events = event_list_adapter().validator.validate_json(data)
    except ValidationError:
        return None
    if not events:
        return None
    current = clock()
    outcome = Validation()
    for index, event in enumerate(events):
        problem = _window_error(event["time"], current)
        if problem:
            outcome.errors[index] = [FieldError("time", problem)]
        else:
            outcome.valid.append((index, event))
    return outcome
