"""Cloud Eye's rules for a custom event, as pydantic v2 models, and batch validation.

The models are TypedDicts so a validated event is already the plain dict that goes on the wire
(no model instances to build and dump). The validator is built once per process, on first use.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import core_schema
from typing_extensions import NotRequired, TypedDict

from .errors import EventRuleError
from .jsontext import field_path

# Cloud Eye accepts `time` from 1 hour in the past to 10 minutes ahead; 20 s of each are kept
# as a margin for the time a request takes and for clocks that disagree a little.
WINDOW_PAST_MS = 3_600_000 - 20_000
WINDOW_FUTURE_MS = 600_000 - 20_000
# Below this a timestamp is far more likely seconds than milliseconds (10^11 ms is 1973).
SECONDS_THRESHOLD = 10**11
# No plausible millisecond time is this large (year 5138); larger values are refused before any
# arithmetic or text is made of them (a 4,300-digit integer cannot even be printed).
MAX_TIME_MS = 10**14
# Items per slice in validate_in_slices: one request's worth when all are valid.
VALIDATION_SLICE = 100
# One item's errors are listed up to this many; a field path is shown up to this many characters.
MAX_ERRORS_PER_ITEM = 8
MAX_FIELD_PATH_CHARS = 200
GROUP_ID_LENGTH = 24
GROUP_ID_EXAMPLE = "rg15221211517051YWWkEnVd"
MAX_CONTENT_CHARS = 4096

LATE_REJECT, LATE_RETIME = "reject", "retime"
_FIRST, _SECOND, _TIME = itemgetter(0), itemgetter(1), itemgetter("time")

EVENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
SOURCE_PART = r"[A-Za-z][A-Za-z0-9_]{2,31}"
EVENT_SOURCE_PATTERN = rf"^{SOURCE_PART}\.{SOURCE_PART}$"
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9_:-]{1,128}$"
# Letters of any script (Chinese included), ASCII digits, '@', '_', '-', '.' and spaces. Checked
# by _resource_name, not a pydantic pattern: a Unicode letter class costs the compiled validator
# megabytes and every event a slower match, for names that are nearly always ASCII.
RESOURCE_NAME_PATTERN = r"^[A-Za-z0-9@_. -]{1,128}$"
RESOURCE_NAME_MARKS = frozenset("0123456789@_-. ")
MAX_RESOURCE_NAME_CHARS = 128
EVENT_USER_PATTERN = r"^[A-Za-z0-9_/ -]{0,64}$"
DIMENSION_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"

# Plain-words reasons for pattern mismatches, keyed by the last element of the field path.
_PATTERN_REASONS = {
    "event_name": "must start with a letter and have 1-64 letters, digits or underscores",
    "event_source": (
        "must be 'service.item', each part starting with a letter and having 3-32 letters, "
        "digits or underscores"
    ),
    "resource_id": "must have 1-128 letters, digits, '_', '-' or ':'",
    "resource_name": "must have 1-128 letters (Chinese too), digits, '@', '_', '-', '.' or spaces",
    "event_user": "must have at most 64 letters, digits, '_', '-', '/' or spaces",
    "name": "must start with a letter and have 1-32 letters, digits, '_' or '-'",
}


def _timestamp_ms(value: Any) -> int:
    if type(value) is int and 0 <= value <= MAX_TIME_MS:  # the usual case, checked first
        return value
    # bool is an int subclass in Python; Cloud Eye wants a number, so refuse it explicitly.
    if isinstance(value, bool):
        raise EventRuleError("must be an integer UNIX timestamp in milliseconds, not true/false")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventRuleError("must be an integer UNIX timestamp in milliseconds, not infinite or NaN")
        if not value.is_integer():
            raise EventRuleError("must be a whole number of milliseconds, not a fraction")
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        digits = value.strip()
        if len(digits) > len(str(MAX_TIME_MS)):
            raise EventRuleError(f"is {len(digits)} digits long: not a UNIX timestamp in milliseconds")
        value = int(digits)
    if not isinstance(value, int):
        raise EventRuleError("must be an integer UNIX timestamp in milliseconds")
    if value < 0:
        raise EventRuleError("must be a UNIX timestamp in milliseconds, not a negative number")
    if value > MAX_TIME_MS:
        # bit_length, not str(): a huge integer cannot be turned into text.
        raise EventRuleError(
            f"is a {value.bit_length()}-bit number: not a UNIX timestamp in milliseconds"
        )
    return value


Timestamp = Annotated[int, BeforeValidator(_timestamp_ms)]

def _resource_name(value: str) -> str:
    if not (
        0 < len(value) <= MAX_RESOURCE_NAME_CHARS
        and all(char.isalpha() or char in RESOURCE_NAME_MARKS for char in value)
    ):
        raise EventRuleError(_PATTERN_REASONS["resource_name"])
    return value


def _resource_name_schema(_source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    # An ASCII name is matched by pydantic's own pattern, with no call into Python (a call per
    # event costs more than the whole match); only a name that fails it gets _resource_name.
    # Either way a refused name is one error, worded as for the other patterns.
    return core_schema.chain_schema([
        core_schema.str_schema(strict=True),
        core_schema.union_schema(
            [
                core_schema.str_schema(pattern=RESOURCE_NAME_PATTERN),
                core_schema.no_info_after_validator_function(_resource_name, core_schema.str_schema()),
            ],
            mode="left_to_right",
            custom_error_type="resource_name_mismatch",
            custom_error_message=_PATTERN_REASONS["resource_name"],
        ),
    ])


ResourceName = Annotated[str, GetPydanticSchema(_resource_name_schema)]


class Dimension(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    name: Annotated[str, Field(pattern=DIMENSION_NAME_PATTERN)]
    value: Annotated[str, Field(min_length=1, max_length=256)]


class EventDetail(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    content: NotRequired[Annotated[str, Field(max_length=MAX_CONTENT_CHARS)]]
    # A length constraint also makes pydantic check the text is valid Unicode: a bare ``str`` lets an
    # unpaired surrogate through, which no request can carry (UTF-8 cannot encode it).
    group_id: NotRequired[Annotated[str, Field(min_length=GROUP_ID_LENGTH, max_length=GROUP_ID_LENGTH)]]
    resource_id: NotRequired[Annotated[str, Field(pattern=RESOURCE_ID_PATTERN)]]
    resource_name: NotRequired[ResourceName]
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


class FieldError(NamedTuple):
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class Validation:
    """Outcome of validating some items: valid events with their input index, errors per index,
    how many items were looked at, and the original ``time`` of each retimed event."""

    def __init__(
        self,
        *,
        valid: list[tuple[int, dict[str, Any]]] | None = None,
        errors: dict[int, list[FieldError]] | None = None,
        count: int,
        retimed: dict[int, int] | None = None,
        retime_base: int = 0,
    ) -> None:
        self.valid = [] if valid is None else valid
        self.errors = {} if errors is None else errors
        self.count = count
        self.retimed = {} if retimed is None else retimed
        # Milliseconds after the current time for the first event retimed here: the slices of one
        # batch continue each other's count, so no two retimed events of a batch share a time.
        self.retime_base = retime_base


def _field_path(loc: tuple[Any, ...]) -> str:
    path = field_path(loc)
    if len(path) > MAX_FIELD_PATH_CHARS:  # an unknown key can be megabytes long
        path = path[:MAX_FIELD_PATH_CHARS] + "..."
    return path or "(event)"


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
    if last == "group_id" and kind in ("string_too_long", "string_too_short"):
        return f"must be exactly {GROUP_ID_LENGTH} characters (a resource group id like {GROUP_ID_EXAMPLE})"
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
    return str(error["msg"])


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = exc.errors(include_url=False)
    shown = [FieldError(_field_path(err["loc"]), _reason(err)) for err in errors[:MAX_ERRORS_PER_ITEM]]
    if len(errors) > MAX_ERRORS_PER_ITEM:
        more = len(errors) - MAX_ERRORS_PER_ITEM
        shown.append(FieldError("(event)", f"{more} more errors not listed"))
    return shown


def _whole_seconds(ms: int) -> int:
    # Rounded up: 1 ms outside the window must not read as "0 s older".
    return -(-ms // 1000)


def in_window(time_ms: int, now_ms: int) -> bool:
    return now_ms - WINDOW_PAST_MS <= time_ms <= now_ms + WINDOW_FUTURE_MS


def looks_like_seconds(time_ms: int) -> bool:
    return time_ms < SECONDS_THRESHOLD


def _window_error(time_ms: int, now_ms: int, late: str = LATE_REJECT) -> str | None:
    if in_window(time_ms, now_ms):
        return None
    if looks_like_seconds(time_ms):
        return (
            f"{time_ms} looks like seconds; Cloud Eye wants milliseconds "
            f"(did you mean {time_ms * 1000}?)"
        )
    # Only reached with FORWARDER_LATE_EVENTS=reject: name the setting that would send it anyway.
    hint = "; FORWARDER_LATE_EVENTS=retime would send it with the current time"
    if time_ms < now_ms - WINDOW_PAST_MS:
        return (
            f"is {_whole_seconds(now_ms - WINDOW_PAST_MS - time_ms)} s older than Cloud Eye accepts "
            f"(at most 1 hour minus 20 s in the past){hint}"
        )
    return (
        f"is {_whole_seconds(time_ms - now_ms - WINDOW_FUTURE_MS)} s further ahead than Cloud Eye "
        f"accepts (at most 10 minutes minus 20 s in the future){hint}"
    )


def retime(event: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A copy of ``event`` sent at ``now_ms``, its original time appended to ``content`` (cut to
    fit Cloud Eye's 4,096 characters if need be) so the time it happened stays visible."""
    original = event["time"]
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(original // 1000))
    note = f" [original time {stamp}.{original % 1000:03d}Z = {original} ms]"
    detail = dict(event["detail"])
    content = detail.get("content", "")
    detail["content"] = content[: MAX_CONTENT_CHARS - len(note)] + note
    return {**event, "time": now_ms, "detail": detail}


def now_ms() -> int:
    return _time.time_ns() // 1_000_000


def validate_events(
    items: Sequence[Any],
    *,
    clock: Callable[[], int] = now_ms,
    default_source: str | None = None,
    late: str = LATE_REJECT,
) -> Validation:
    """Validate raw items one by one; a bad item gets errors by its index, the rest go on.

    ``clock`` returns the current time in UNIX milliseconds (injectable for tests).
    ``default_source`` fills in ``event_source`` for items that lack it. ``late="retime"``
    sends events outside the time window with the current time instead of rejecting them.
    """
    return _validate(enumerate(items), len(items), clock(), default_source, late)


def validate_in_slices(
    items: Iterable[Any],
    *,
    clock: Callable[[], int] = now_ms,
    default_source: str | None = None,
    size: int = VALIDATION_SLICE,
    late: str = LATE_REJECT,
) -> Iterator[Validation]:
    """``validate_events`` a slice of ``size`` items at a time (indexes count from 0 over all of
    ``items``), taking the items lazily: the caller can send the first valid events while later
    items are not even read yet."""
    current = clock()  # once, as for a whole batch: one batch, one window
    numbered = enumerate(items)
    # Each slice is first checked in one call (no Python step per item), until one holds an item
    # that is not a valid event: from then on item by item, so a batch with bad items scattered
    # through it pays for at most one wasted check. Items that need the default source go item
    # by item from the start.
    whole = not default_source
    retimed = 0
    while True:
        piece = list(islice(numbered, size))
        if not piece:
            return
        outcome = _validate_whole(piece, current, late, retimed) if whole else None
        if outcome is None:
            whole = False
            outcome = _validate(piece, len(piece), current, default_source, late, retimed)
        retimed += len(outcome.retimed)
        yield outcome


def _validate_whole(
    piece: list[tuple[int, Any]], current: int, late: str, retime_base: int
) -> Validation | None:
    """Every item of ``piece`` validated in one call, or ``None`` when any of them is not a valid
    event (then the caller judges each alone, with its errors)."""
    try:
        events = event_list_adapter().validator.validate_python(list(map(_SECOND, piece)))
    except Exception:  # a ValidationError, or anything an odd item raises
        return None
    outcome = Validation(count=len(piece), retime_base=retime_base)
    _place(outcome, list(map(_FIRST, piece)), events, current, late)
    return outcome


def _place(outcome: Validation, indexes: list[int], events: list[Any], current: int, late: str) -> None:
    """Valid events into ``outcome``: those in the time window as they are, the others retimed or
    rejected (``_outside_window``)."""
    earliest, latest = current - WINDOW_PAST_MS, current + WINDOW_FUTURE_MS
    times = list(map(_TIME, events))
    if earliest <= min(times, default=earliest) and max(times, default=latest) <= latest:
        outcome.valid.extend(zip(indexes, events, strict=True))  # the usual case: no Python step each
        return
    for index, event, time_ms in zip(indexes, events, times, strict=True):
        if earliest <= time_ms <= latest:
            outcome.valid.append((index, event))
        else:
            _outside_window(outcome, index, event, current, late)


def _validate(
    numbered: Iterable[tuple[int, Any]],
    count: int,
    current: int,
    default_source: str | None,
    late: str,
    retime_base: int = 0,
) -> Validation:
    # The core validator itself: TypeAdapter.validate_python's wrapper costs ~15% per event.
    validate = event_adapter().validator.validate_python
    outcome = Validation(count=count, retime_base=retime_base)
    valid = outcome.valid
    earliest, latest = current - WINDOW_PAST_MS, current + WINDOW_FUTURE_MS
    for index, item in numbered:
        try:
            if default_source and isinstance(item, dict) and "event_source" not in item:
                item = {**item, "event_source": default_source}
            event = validate(item)
            if earliest <= event["time"] <= latest:
                valid.append((index, event))
            else:
                _outside_window(outcome, index, event, current, late)
        except ValidationError as exc:
            outcome.errors[index] = _field_errors(exc)
        except Exception as exc:  # whatever one item holds stays that item's problem
            outcome.errors[index] = [FieldError("(event)", f"cannot be checked ({type(exc).__name__})")]
    return outcome


def _outside_window(outcome: Validation, index: int, event: dict[str, Any], current: int, late: str) -> None:
    """An event outside the time window: retimed into the valid ones, or its error recorded."""
    time_ms = event["time"]
    if late == LATE_RETIME and not looks_like_seconds(time_ms):
        # Distinct times (1 ms apart, in input order, over the whole batch) so two late events
        # that differ only in their original time are not one event to Cloud Eye.
        sent_at = current + outcome.retime_base + len(outcome.retimed)
        outcome.valid.append((index, retime(event, sent_at)))
        outcome.retimed[index] = time_ms
    else:
        outcome.errors[index] = [FieldError("time", _window_error(time_ms, current) or "")]


def validate_json_array(
    data: bytes | str, *, clock: Callable[[], int] = now_ms, late: str = LATE_REJECT
) -> Validation | None:
    """A JSON array of events checked in one pass, or ``None`` unless every item is a valid event.

    When it returns, the outcome is the one ``validate_events(json.loads(data))`` would give (the
    window check is still made per event); ``None`` (not JSON, not an array, empty, or any item
    invalid) means: take that per-item path, which names each bad item, its field and the reason.
    One pass skips json.loads' intermediate dicts: for 10,000 events about 35% less CPU and 9 MiB.
    """
    try:
        events = event_list_adapter().validator.validate_json(data)
    except Exception:  # invalid or anything odd: the per-item path names the item at fault
        return None
    if not events:
        return None
    outcome = Validation(count=len(events))
    _place(outcome, list(range(len(events))), events, clock(), late)
    return outcome
