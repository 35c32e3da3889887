"""Cloud Eye's rules for what a client reports, written from Cloud Eye's current API documentation.

Two bodies are checked here: reported events (``POST /V1.0/{project_id}/events``) and custom
metric data (``POST /V1.0/{project_id}/metric-data``). Each check returns the problems it finds
as ``Problem(field, reason)``; an empty list means the item is acceptable. Nothing here knows
about HTTP or the stored state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# --- shared ------------------------------------------------------------------------------------

# A `service.item` name: each part starts with a letter and has 3-32 letters, digits or '_'.
_SERVICE_ITEM = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,31}\.[A-Za-z][A-Za-z0-9_]{2,31}")
_DIMENSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
MAX_DIMENSIONS = 4
MAX_DIMENSION_VALUE = 256


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def json_kind(value: Any) -> str:
    """How JSON would call this value's type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _text(value: Any, where: str, problems: list[Problem]) -> str | None:
    """``value`` when it is text UTF-8 can carry; otherwise one problem and None."""
    if not isinstance(value, str):
        problems.append(Problem(where, f"must be a string, got a JSON {json_kind(value)}"))
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(Problem(where, "must be valid Unicode text (it holds an unpaired surrogate)"))
        return None
    return value


def _unknown_keys(
    item: Mapping[str, Any], known: frozenset[str], where: str, problems: list[Problem]
) -> None:
    for key in sorted(set(item) - known, key=str):
        # A name that is not a plain word ("", "a b", a surrogate) is shown quoted and escaped.
        shown = key if key.isidentifier() else ascii(key)
        accepted = ", ".join(sorted(known))
        problems.append(Problem(f"{where}{shown}", f"is not a field Cloud Eye accepts (known: {accepted})"))


def _whole_number(value: Any) -> int | None:
    """An integer, or a float holding a whole number; None for anything else (true/false too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _dimensions(value: Any, where: str, problems: list[Problem], *, minimum: int) -> None:
    if not isinstance(value, list):
        problems.append(Problem(where, f"must be a list, got a JSON {json_kind(value)}"))
        return
    if not minimum <= len(value) <= MAX_DIMENSIONS:
        problems.append(
            Problem(where, f"must hold {minimum} to {MAX_DIMENSIONS} dimensions, it holds {len(value)}")
        )
    for index, dimension in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(dimension, dict):
            problems.append(Problem(at, f"must be an object, got a JSON {json_kind(dimension)}"))
            continue
        _unknown_keys(dimension, frozenset({"name", "value"}), f"{at}.", problems)
        for key in ("name", "value"):
            if key not in dimension:
                problems.append(Problem(f"{at}.{key}", "is required"))
        name = _text(dimension.get("name", ""), f"{at}.name", problems)
        if name is not None and "name" in dimension and not _DIMENSION_NAME.fullmatch(name):
            problems.append(
                Problem(f"{at}.name", "must start with a letter and have 1-32 letters, digits, '_' or '-'")
            )
        text = _text(dimension.get("value", ""), f"{at}.value", problems)
        if text is not None and "value" in dimension and not 1 <= len(text) <= MAX_DIMENSION_VALUE:
            problems.append(Problem(f"{at}.value", f"must have 1 to {MAX_DIMENSION_VALUE} characters"))


# --- reported events ---------------------------------------------------------------------------

MIN_EVENTS = 1
MAX_EVENTS = 100
# time: from 1 hour ago plus 10 s to 10 minutes ahead minus 10 s.
EVENT_PAST_MS = 3_600_000 - 10_000
EVENT_FUTURE_MS = 600_000 - 10_000
# A time below this (1973 in milliseconds) is far more likely a count of seconds.
SECONDS_LIKELY_BELOW = 10**11
FAR_OUTSIDE_MS = 10**15
MAX_CONTENT = 4096
GROUP_ID_LENGTH = 24
EVENT_STATES = ("normal", "warning", "incident")
EVENT_LEVELS = ("Critical", "Major", "Minor", "Info")
EVENT_TYPES = ("EVENT.SYS", "EVENT.CUSTOM")
REPORTABLE_EVENT_TYPE = "EVENT.CUSTOM"
SUB_EVENT_TYPES = ("SUB_EVENT.OPS", "SUB_EVENT.PLAN", "SUB_EVENT.CUSTOM")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9_:-]{1,128}")
# Letters (Chinese ones too), digits, '@', '_', '-', '.' and spaces.
_RESOURCE_NAME = re.compile(r"[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff@_ .-]{1,128}")
_EVENT_USER = re.compile(r"[A-Za-z0-9_ /-]{0,64}")
_EVENT_KEYS = frozenset({"event_name", "event_source", "time", "detail"})
# The fields a detail may have, in the documented order (test payload generators draw from it).
DETAIL_FIELDS = (
    "content",
    "group_id",
    "resource_id",
    "resource_name",
    "event_state",
    "event_level",
    "event_user",
    "event_type",
    "sub_event_type",
    "dimensions",
)
_DETAIL_KEYS = frozenset(DETAIL_FIELDS)
# The text rules of detail fields: (pattern, reason when it does not match).
_DETAIL_PATTERNS = {
    "resource_id": (_RESOURCE_ID, "must have 1-128 letters, digits, '_', '-' or ':'"),
    "resource_name": (
        _RESOURCE_NAME,
        "must have 1-128 letters (Chinese ones too), digits, '@', '_', '-', '.' or spaces",
    ),
    "event_user": (_EVENT_USER, "must have 0-64 letters, digits, '_', '-', '/' or spaces"),
}
_DETAIL_CHOICES = {
    "event_state": EVENT_STATES,
    "event_level": EVENT_LEVELS,
    "sub_event_type": SUB_EVENT_TYPES,
}


def check_event(event: Any, now_ms: int) -> list[Problem]:
    """The problems of one reported event (``{event_name, event_source, time, detail}``)."""
    if not isinstance(event, dict):
        return [Problem("(event)", f"must be an object, got a JSON {json_kind(event)}")]
    problems: list[Problem] = []
    _unknown_keys(event, _EVENT_KEYS, "", problems)
    for key in sorted(_EVENT_KEYS - set(event)):
        problems.append(Problem(key, "is required"))
    if "event_name" in event:
        name = _text(event["event_name"], "event_name", problems)
        if name is not None and not _EVENT_NAME.fullmatch(name):
            problems.append(
                Problem("event_name", "must start with a letter and have 1-64 letters, digits or '_'")
            )
    if "event_source" in event:
        source = _text(event["event_source"], "event_source", problems)
        if source is not None and not _SERVICE_ITEM.fullmatch(source):
            problems.append(
                Problem(
                    "event_source",
                    "must be 'service.item', each part starting with a letter and having 3-32 "
                    "letters, digits or '_'",
                )
            )
    if "time" in event:
        _event_time(event["time"], now_ms, problems)
    if "detail" in event:
        _detail(event["detail"], problems)
    return problems


def _event_time(value: Any, now_ms: int, problems: list[Problem]) -> None:
    moment = _whole_number(value)
    if moment is None:
        problems.append(Problem("time", "must be a whole number: a UNIX timestamp in milliseconds"))
        return
    if now_ms - EVENT_PAST_MS <= moment <= now_ms + EVENT_FUTURE_MS:
        return
    if abs(moment - now_ms) > FAR_OUTSIDE_MS:  # keeps the message short (and printable) for any number
        reason = "is far outside Cloud Eye's window (1 hour back, 10 minutes ahead)"
    elif 0 < moment < SECONDS_LIKELY_BELOW:
        reason = f"{moment} looks like seconds; Cloud Eye wants milliseconds (did you mean {moment * 1000}?)"
    elif moment < now_ms:
        reason = f"is {(now_ms - moment) // 1000} s old; at most 1 hour (minus 10 s) is accepted"
    else:
        reason = f"is {(moment - now_ms) // 1000} s ahead; at most 10 minutes (minus 10 s) is accepted"
    problems.append(Problem("time", reason))


def _detail(detail: Any, problems: list[Problem]) -> None:
    if not isinstance(detail, dict):
        problems.append(Problem("detail", f"must be an object, got a JSON {json_kind(detail)}"))
        return
    _unknown_keys(detail, _DETAIL_KEYS, "detail.", problems)
    for key in ("content", "group_id", *_DETAIL_PATTERNS, *_DETAIL_CHOICES, "event_type"):
        if key in detail:
            value = _text(detail[key], f"detail.{key}", problems)
            if value is not None:
                _detail_text(key, value, problems)
    if "dimensions" in detail:
        _dimensions(detail["dimensions"], "detail.dimensions", problems, minimum=0)


def _detail_text(key: str, value: str, problems: list[Problem]) -> None:
    where = f"detail.{key}"
    if key == "content" and len(value) > MAX_CONTENT:
        problems.append(Problem(where, f"must have at most {MAX_CONTENT} characters, it has {len(value)}"))
    elif key == "group_id" and len(value) != GROUP_ID_LENGTH:
        problems.append(
            Problem(where, f"must have exactly {GROUP_ID_LENGTH} characters, it has {len(value)}")
        )
    elif key in _DETAIL_PATTERNS and not _DETAIL_PATTERNS[key][0].fullmatch(value):
        problems.append(Problem(where, _DETAIL_PATTERNS[key][1]))
    elif key in _DETAIL_CHOICES and value not in _DETAIL_CHOICES[key]:
        problems.append(Problem(where, f"must be one of {list(_DETAIL_CHOICES[key])}, got {value!r}"))
    elif key == "event_type" and value != REPORTABLE_EVENT_TYPE:
        reason = (
            "EVENT.SYS is for Cloud Eye's own events; a client can only report EVENT.CUSTOM"
            if value == "EVENT.SYS"
            else f"must be {REPORTABLE_EVENT_TYPE}, got {value!r}"
        )
        problems.append(Problem(where, reason))


# --- custom metric data --------------------------------------------------------------------------

TTL_MIN_S = 1
TTL_MAX_S = 604_800
# collect_time: from 3 days ago plus 10 s to 10 minutes ahead minus 10 s.
METRIC_PAST_MS = 3 * 86_400_000 - 10_000
METRIC_FUTURE_MS = 600_000 - 10_000
MAX_UNIT = 32
METRIC_TYPES = ("int", "float")
# Namespaces of Cloud Eye's own services; a custom metric may not use them.
RESERVED_NAMESPACE_PREFIXES = ("SYS.", "AGT.", "SRE.")
_METRIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,95}")
_METRIC_ITEM_KEYS = frozenset({"metric", "ttl", "collect_time", "value", "unit", "type"})
_METRIC_KEYS = frozenset({"namespace", "metric_name", "dimensions"})


def check_metric_item(item: Any, now_ms: int) -> list[Problem]:
    """The problems of one metric-data item (``{metric, ttl, collect_time, value, unit?, type?}``)."""
    if not isinstance(item, dict):
        return [Problem("(item)", f"must be an object, got a JSON {json_kind(item)}")]
    problems: list[Problem] = []
    _unknown_keys(item, _METRIC_ITEM_KEYS, "", problems)
    for key in ("metric", "ttl", "collect_time", "value"):
        if key not in item:
            problems.append(Problem(key, "is required"))
    if "metric" in item:
        _metric(item["metric"], problems)
    if "ttl" in item:
        ttl = _whole_number(item["ttl"])
        if ttl is None or not TTL_MIN_S <= ttl <= TTL_MAX_S:
            problems.append(
                Problem("ttl", f"must be a whole number of seconds from {TTL_MIN_S} to {TTL_MAX_S}")
            )
    if "collect_time" in item:
        _collect_time(item["collect_time"], now_ms, problems)
    if "value" in item:
        _metric_value(item["value"], item.get("type"), problems)
    if "unit" in item:
        unit = _text(item["unit"], "unit", problems)
        if unit is not None and len(unit) > MAX_UNIT:
            problems.append(Problem("unit", f"must have at most {MAX_UNIT} characters, it has {len(unit)}"))
    if "type" in item and item["type"] not in METRIC_TYPES:
        problems.append(Problem("type", f"must be one of {list(METRIC_TYPES)}, got {item['type']!r}"))
    return problems


def _metric(metric: Any, problems: list[Problem]) -> None:
    if not isinstance(metric, dict):
        problems.append(Problem("metric", f"must be an object, got a JSON {json_kind(metric)}"))
        return
    _unknown_keys(metric, _METRIC_KEYS, "metric.", problems)
    for key in sorted(_METRIC_KEYS - set(metric)):
        problems.append(Problem(f"metric.{key}", "is required"))
    if "namespace" in metric:
        namespace = _text(metric["namespace"], "metric.namespace", problems)
        if namespace is not None:
            if not _SERVICE_ITEM.fullmatch(namespace):
                problems.append(
                    Problem(
                        "metric.namespace",
                        "must be 'service.item', each part starting with a letter and having 3-32 "
                        "letters, digits or '_'",
                    )
                )
            elif namespace.upper().startswith(RESERVED_NAMESPACE_PREFIXES):
                problems.append(
                    Problem(
                        "metric.namespace",
                        f"{namespace!r} is reserved for Cloud Eye's own services "
                        f"({', '.join(RESERVED_NAMESPACE_PREFIXES)} cannot start a custom namespace)",
                    )
                )
    if "metric_name" in metric:
        name = _text(metric["metric_name"], "metric.metric_name", problems)
        if name is not None and not _METRIC_NAME.fullmatch(name):
            problems.append(
                Problem(
                    "metric.metric_name", "must start with a letter and have 1-96 letters, digits, '_' or '-'"
                )
            )
    if "dimensions" in metric:
        _dimensions(metric["dimensions"], "metric.dimensions", problems, minimum=1)


def _collect_time(value: Any, now_ms: int, problems: list[Problem]) -> None:
    moment = _whole_number(value)
    if moment is None:
        problems.append(Problem("collect_time", "must be a whole number: a UNIX timestamp in milliseconds"))
        return
    if moment < now_ms - METRIC_PAST_MS:
        problems.append(Problem("collect_time", "is more than 3 days (minus 10 s) in the past"))
    elif moment > now_ms + METRIC_FUTURE_MS:
        problems.append(Problem("collect_time", "is more than 10 minutes (minus 10 s) ahead"))


def _metric_value(value: Any, declared: Any, problems: list[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(Problem("value", f"must be a finite number, got a JSON {json_kind(value)}"))
    elif declared == "int" and _whole_number(value) is None:
        problems.append(Problem("value", f"must be a whole number when type is 'int', got {value!r}"))


def check_items(
    items: list[Any], check: Callable[[Any, int], list[Problem]], now_ms: int
) -> dict[int, list[Problem]]:
    """Every item's problems by index (items without problems left out)."""
    found = {}
    for index, item in enumerate(items):
        problems = check(item, now_ms)
        if problems:
            found[index] = problems
    return found


def describe(found: Mapping[int, list[Problem]], noun: str, limit: int = 10) -> str:
    """One line naming each bad item's index, field and reason (the first ``limit`` of them)."""
    lines = [f"{noun} [{index}] {problem}" for index in sorted(found) for problem in found[index]]
    shown = "; ".join(lines[:limit])
    if len(lines) > limit:
        shown += f"; and {len(lines) - limit} more problem(s)"
    return f"{len(found)} {noun}(s) break Cloud Eye's rules, so none was stored: {shown}"
