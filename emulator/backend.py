"""Cloud Eye's state and rules, in memory, per project id. Knows nothing about HTTP.

Holds the stored events (with Cloud Eye-shaped ids and its duplicate rule), answers both query
APIs, keeps the fault plan and the rate limits, and counts what happened. Thread-safe: the
server answers requests on many threads at once. ``BACKEND`` is the process-wide instance.
"""

from __future__ import annotations

import math
import os
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from emulator import errors, rules
from forwarder import events as event_rules

MIN_EVENTS_PER_REQUEST = 1
MAX_EVENTS_PER_REQUEST = 100
MAX_QUERY_LIMIT = 100
# How many validation problems one 400 answer spells out before summarising the rest.
MAX_REPORTED_PROBLEMS = 10
# How many recent API requests GET /_emulator/requests remembers.
REQUEST_LOG_SIZE = 1000

EVENT_TYPES = ("EVENT.SYS", "EVENT.CUSTOM")
SUB_EVENT_TYPES = ("SUB_EVENT.OPS", "SUB_EVENT.PLAN", "SUB_EVENT.CUSTOM")
# What Cloud Eye assumes for a reported event that leaves these out.
DEFAULT_EVENT_TYPE = "EVENT.CUSTOM"
DEFAULT_SUB_EVENT_TYPE = "SUB_EVENT.CUSTOM"

_ID_ALPHABET = string.ascii_letters + string.digits

FAULT_KINDS = ("status", "drop", "slow")
# Which requests a fault acts on: event posts (the default), metric-data posts, or either.
FAULT_SCOPES = ("events", "metric-data", "any")
_FAULT_KEYS = frozenset({"kind", "status", "count", "delay_ms", "retry_after", "body", "store", "scope"})
RESOURCE_GROUPS_ENV = "EMULATOR_RESOURCE_GROUPS"
GROUP_ID_LENGTH = 24
_SETTING_KEYS = frozenset({"delay_ms", "max_concurrent", "max_per_second", "retry_after", "faults", "append"})


def new_event_id(now_ms: int) -> str:
    """``ev`` + 13-digit milliseconds + 10 letters/digits, the shape of Cloud Eye's event ids."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
    return f"ev{now_ms:013d}{suffix}"


def event_type_of(event: Mapping[str, Any]) -> str:
    return event.get("detail", {}).get("event_type") or DEFAULT_EVENT_TYPE


def sub_event_type_of(event: Mapping[str, Any]) -> str:
    return event.get("detail", {}).get("sub_event_type") or DEFAULT_SUB_EVENT_TYPE


def duplicate_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """Events with equal keys are one event to Cloud Eye: a re-post stores nothing new."""
    detail = event.get("detail", {})
    return (
        event["time"],
        event["event_source"],
        event["event_name"],
        event_type_of(event),
        detail.get("event_state"),
        detail.get("event_level"),
        detail.get("event_user"),
        detail.get("resource_id"),
        detail.get("resource_name"),
    )


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    project_id: str
    received_at: int  # UNIX ms, by the backend's clock
    event: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "project_id": self.project_id,
            "received_at": self.received_at,
            "event": self.event,
        }


@dataclass(frozen=True)
class StoredMetric:
    project_id: str
    received_at: int  # UNIX ms, by the backend's clock
    item: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "received_at": self.received_at, **self.item}


# --- Faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One queued misbehaviour for the next ``count`` event posts.

    ``status``: answer with that status (Cloud Eye-shaped body, or ``body``) and ``Retry-After``
    when ``retry_after`` is set; ``drop``: close the connection without answering (``store``:
    after storing the events); ``slow``: wait ``delay_ms``, then answer normally.
    ``delay_ms`` is waited before acting for every kind.
    """

    kind: str
    count: int = 1
    status: int | None = None
    delay_ms: int = 0
    retry_after: int | None = None
    body: Any = None
    store: bool = False
    scope: str = "events"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "delay_ms": self.delay_ms,
            "scope": self.scope,
        }
        if self.kind == "status":
            out["status"] = self.status
            if self.retry_after is not None:
                out["retry_after"] = self.retry_after
            if self.body is not None:
                out["body"] = self.body
        if self.kind == "drop":
            out["store"] = self.store
        return out


@dataclass
class FaultSettings:
    """Standing behaviour: latency for every API request and rate limits for event posts."""

    delay_ms: int = 0
    max_concurrent: int | None = None
    max_per_second: int | None = None
    retry_after: int = 1
    queue: deque[Fault] = field(default_factory=deque)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delay_ms": self.delay_ms,
            "max_concurrent": self.max_concurrent,
            "max_per_second": self.max_per_second,
            "retry_after": self.retry_after,
            "faults": [fault.to_dict() for fault in self.queue],
        }


def _integer(value: Any, where: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.ControlError(f"{where} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise errors.ControlError(f"{where} must be {bound}, got {value}")
    return value


def _optional_limit(value: Any, where: str) -> int | None:
    return None if value is None else _integer(value, where, minimum=1)


def parse_fault(raw: Any, where: str = "fault") -> Fault:
    """Check one fault object (see ``Fault``) and build it."""
    if not isinstance(raw, dict):
        raise errors.ControlError(f"{where} must be a JSON object")
    unknown = sorted(set(raw) - _FAULT_KEYS)
    if unknown:
        raise errors.ControlError(f"{where} has unknown keys {unknown}; known: {sorted(_FAULT_KEYS)}")
    kind = raw.get("kind", "status" if "status" in raw else None)
    if kind not in FAULT_KINDS:
        raise errors.ControlError(f"{where}.kind must be one of {list(FAULT_KINDS)}, got {kind!r}")
    count = _integer(raw.get("count", 1), f"{where}.count", minimum=1)
    delay_ms = _integer(raw.get("delay_ms", 0), f"{where}.delay_ms", minimum=0)
    scope = raw.get("scope", "events")
    if scope not in FAULT_SCOPES:
        raise errors.ControlError(f"{where}.scope must be one of {list(FAULT_SCOPES)}, got {scope!r}")
    return replace(_parse_fault_kind(raw, where, kind, count, delay_ms), scope=scope)


def _parse_fault_kind(raw: dict[str, Any], where: str, kind: str, count: int, delay_ms: int) -> Fault:
    if kind == "status":
        status = _integer(raw.get("status"), f"{where}.status", minimum=400, maximum=599)
        retry_after = raw.get("retry_after")
        if retry_after is not None:
            retry_after = _integer(retry_after, f"{where}.retry_after", minimum=0)
        return Fault("status", count, status, delay_ms, retry_after, raw.get("body"))
    extra = sorted({"status", "retry_after", "body"} & set(raw))
    if extra:
        raise errors.ControlError(f"{where}: {extra} only apply to status faults")
    if kind == "slow":
        if "store" in raw:
            raise errors.ControlError(f"{where}.store only applies to drop faults")
        if delay_ms == 0:
            raise errors.ControlError(f"{where}: a slow fault needs delay_ms > 0")
        return Fault("slow", count, delay_ms=delay_ms)
    store = raw.get("store", False)
    if not isinstance(store, bool):
        raise errors.ControlError(f"{where}.store must be true or false")
    return Fault("drop", count, delay_ms=delay_ms, store=store)


def parse_fault_plan(payload: Any) -> tuple[dict[str, Any], list[Fault], bool]:
    """Split a ``POST /_emulator/faults`` body into (settings, queued faults, append).

    A body with ``status`` or ``kind`` at the top is itself one fault (its ``delay_ms`` and
    ``retry_after`` belong to that fault); otherwise ``delay_ms`` is the standing latency and
    ``faults`` lists the faults to queue.
    """
    if not isinstance(payload, dict):
        raise errors.ControlError("the faults body must be a JSON object")
    append = payload.get("append", False)
    if not isinstance(append, bool):
        raise errors.ControlError("append must be true or false")
    if "status" in payload or "kind" in payload:
        fault_part = {k: v for k, v in payload.items() if k in _FAULT_KEYS}
        rest = {k: v for k, v in payload.items() if k not in _FAULT_KEYS and k != "append"}
        unknown = sorted(set(rest) - {"max_concurrent", "max_per_second"})
        if unknown:
            raise errors.ControlError(f"unknown keys {unknown} next to a fault")
        return rest, [parse_fault(fault_part)], append
    unknown = sorted(set(payload) - _SETTING_KEYS)
    if unknown:
        raise errors.ControlError(
            f"unknown keys {unknown}; known: {sorted(_SETTING_KEYS)} (or a single fault with 'status'/'kind')"
        )
    raw_faults = payload.get("faults", [])
    if not isinstance(raw_faults, list):
        raise errors.ControlError("faults must be a list of fault objects")
    faults = [parse_fault(raw, f"faults[{i}]") for i, raw in enumerate(raw_faults)]
    settings = {k: v for k, v in payload.items() if k not in ("faults", "append")}
    return settings, faults, append


# --- Resource groups ---------------------------------------------------------------------------


def groups_from_env() -> set[str]:
    """The groups named in ``EMULATOR_RESOURCE_GROUPS`` (comma-separated ids; none when unset)."""
    raw = os.environ.get(RESOURCE_GROUPS_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def parse_group_ids(payload: Any) -> set[str]:
    """Check a ``{"group_ids": [...]}`` body: a list of 24-character ids."""
    if not isinstance(payload, dict) or set(payload) != {"group_ids"}:
        raise errors.ControlError('send {"group_ids": ["rg...", ...]} (an empty list forgets them all)')
    ids = payload["group_ids"]
    if not isinstance(ids, list):
        raise errors.ControlError("group_ids must be a list of strings")
    for index, group in enumerate(ids):
        if not isinstance(group, str) or len(group) != GROUP_ID_LENGTH:
            raise errors.ControlError(
                f"group_ids[{index}] must be a string of exactly {GROUP_ID_LENGTH} characters "
                f"(Cloud Eye's group ids look like rg15221211517051YWWkEnVd), got {group!r}"
            )
    return set(ids)


# --- Validation messages -----------------------------------------------------------------------


def describe_problems(problems: Mapping[int, Sequence[event_rules.FieldError]]) -> str:
    """One readable line naming each bad event's index, field and reason."""
    lines = [
        f"event [{index}] {error.field}: {error.message}"
        for index in sorted(problems)
        for error in problems[index]
    ]
    shown = "; ".join(lines[:MAX_REPORTED_PROBLEMS])
    if len(lines) > MAX_REPORTED_PROBLEMS:
        shown += f"; and {len(lines) - MAX_REPORTED_PROBLEMS} more problem(s)"
    bad = len(problems)
    return f"{bad} event(s) break Cloud Eye's rules, so none was stored: {shown}"


# --- The backend -------------------------------------------------------------------------------


class Backend:
    """All emulator state. ``reset()`` empties events, faults, counters and the clock override."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._in_flight = 0  # live, so reset() leaves it alone
        self.reset()

    # clock ---------------------------------------------------------------------------------

    def set_clock(self, clock: Callable[[], int] | None) -> None:
        """Use ``clock`` (UNIX ms) for the time window, the X-Sdk-Date skew and ids; None: real time."""
        with self._lock:
            self._clock = clock

    def now_ms(self) -> int:
        clock = self._clock
        return clock() if clock is not None else event_rules.now_ms()

    # state ---------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._clock = None
            self._stored: list[StoredEvent] = []
            self._by_project: dict[str, list[StoredEvent]] = {}
            self._by_key: dict[str, dict[tuple[Any, ...], StoredEvent]] = {}
            self._settings = FaultSettings()
            self._window: deque[float] = deque()
            self._peak_in_flight = self._in_flight
            self._counters = {
                "requests": 0,
                "posts_received": 0,
                "events_stored": 0,
                "duplicates": 0,
                "throttled": 0,
                "faults_injected": 0,
                "dropped": 0,
                "metric_posts": 0,
                "metrics_stored": 0,
            }
            self._responses: dict[str, int] = {}
            self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
            self._groups = groups_from_env()
            self._metrics: list[StoredMetric] = []

    def put_events(self, project_id: str, items: Any) -> list[dict[str, str]]:
        """Store a reported batch, all or nothing; answer ``[{event_id, event_name}]`` in order."""
        if not isinstance(items, list):
            raise errors.InvalidBody(
                f"the body must be a JSON array of events, got a JSON {_json_kind(items)}"
            )
        if not MIN_EVENTS_PER_REQUEST <= len(items) <= MAX_EVENTS_PER_REQUEST:
            raise errors.InvalidBody(
                f"a request must hold {MIN_EVENTS_PER_REQUEST} to {MAX_EVENTS_PER_REQUEST} events, "
                f"this one holds {len(items)}"
            )
        validation = event_rules.validate_events(items, clock=self.now_ms)
        if validation.errors:
            raise errors.InvalidBody(describe_problems(validation.errors))
        with self._lock:
            self._refuse_unknown_groups(validation.valid)
            received = self.now_ms()
            known = self._by_key.setdefault(project_id, {})
            answer = []
            for _, event in validation.valid:
                key = duplicate_key(event)
                stored = known.get(key)
                if stored is None:
                    stored = StoredEvent(new_event_id(received), project_id, received, event)
                    known[key] = stored
                    self._by_project.setdefault(project_id, []).append(stored)
                    self._stored.append(stored)
                    self._counters["events_stored"] += 1
                else:
                    self._counters["duplicates"] += 1
                answer.append({"event_id": stored.event_id, "event_name": stored.event["event_name"]})
            return answer

    # metric data ----------------------------------------------------------------------------

    def put_metric_data(self, project_id: str, items: Any) -> None:
        """Store a custom metric-data batch, all or nothing (Cloud Eye answers 201 with no body)."""
        if not isinstance(items, list) or not items:
            raise errors.InvalidBody(
                "the body must be a non-empty JSON array of metric data, got "
                + ("an empty array" if isinstance(items, list) else f"a JSON {rules.json_kind(items)}")
            )
        now = self.now_ms()
        found = rules.check_items(items, rules.check_metric_item, now)
        if found:
            raise errors.InvalidBody(rules.describe(found, "item"))
        with self._lock:
            self._metrics.extend(StoredMetric(project_id, now, item) for item in items)
            self._counters["metrics_stored"] += len(items)

    def stored_metrics(self, project_id: str | None = None) -> list[StoredMetric]:
        """Every metric-data item stored (for one project, or all), oldest first."""
        with self._lock:
            return [m for m in self._metrics if project_id is None or m.project_id == project_id]

    # resource groups ------------------------------------------------------------------------

    def set_resource_groups(self, payload: Any) -> dict[str, list[str]]:
        """Apply a ``PUT /_emulator/resource-groups`` body: the known groups become exactly these."""
        with self._lock:
            self._groups = parse_group_ids(payload)
            return self.resource_groups()

    def resource_groups(self) -> dict[str, list[str]]:
        with self._lock:
            return {"group_ids": sorted(self._groups)}

    def _refuse_unknown_groups(self, events: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        # Cloud Eye checks that a named group exists; one unknown group refuses the whole request.
        unknown = [
            (index, event["detail"]["group_id"])
            for index, event in events
            if "group_id" in event["detail"] and event["detail"]["group_id"] not in self._groups
        ]
        if unknown:
            named = "; ".join(f"event [{index}] detail.group_id: {group!r}" for index, group in unknown[:10])
            more = f"; and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise errors.UnknownResourceGroup(
                f"{len(unknown)} event(s) name a resource group that does not exist, so none was "
                f"stored: {named}{more}"
            )

    def stored_events(self, project_id: str | None = None) -> list[StoredEvent]:
        """Everything stored (for one project, or all), oldest first."""
        with self._lock:
            if project_id is None:
                return list(self._stored)
            return list(self._by_project.get(project_id, ()))

    # queries -------------------------------------------------------------------------------

    def list_events(
        self,
        project_id: str,
        *,
        event_type: str | None = None,
        sub_event_type: str | None = None,
        event_name: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        start: int = 0,
        limit: int = MAX_QUERY_LIMIT,
    ) -> dict[str, Any]:
        """``GET /V1.0/{project_id}/events``: one entry per event name, latest first."""
        _check_query(event_type, sub_event_type, from_ms, to_ms, start, limit)
        matches = [
            stored.event
            for stored in self.stored_events(project_id)
            if (event_type is None or event_type_of(stored.event) == event_type)
            and (sub_event_type is None or sub_event_type_of(stored.event) == sub_event_type)
            and (event_name is None or stored.event["event_name"] == event_name)
            and _in_range(stored.event["time"], from_ms, to_ms)
        ]
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for event in matches:
            key = (event["event_name"], event_type_of(event))
            group = groups.get(key)
            if group is None:
                groups[key] = group = {
                    "event_name": event["event_name"],
                    "event_type": event_type_of(event),
                    "sub_event_type": sub_event_type_of(event),
                    "event_count": 0,
                    "latest_occur_time": event["time"],
                    "latest_event_source": event["event_source"],
                }
            group["event_count"] += 1
            if event["time"] >= group["latest_occur_time"]:
                group["latest_occur_time"] = event["time"]
                group["latest_event_source"] = event["event_source"]
                group["sub_event_type"] = sub_event_type_of(event)
        ordered = sorted(groups.values(), key=lambda g: (-g["latest_occur_time"], g["event_name"]))
        return {"events": ordered[start : start + limit], "meta_data": {"total": len(ordered)}}

    def list_event_detail(
        self,
        project_id: str,
        event_name: str,
        *,
        event_type: str | None,
        sub_event_type: str | None = None,
        event_source: str | None = None,
        event_level: str | None = None,
        event_user: str | None = None,
        event_state: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        start: int = 0,
        limit: int = MAX_QUERY_LIMIT,
    ) -> dict[str, Any]:
        """``GET /V1.0/{project_id}/event/{event_name}``: the matching events, latest first."""
        if not event_type:
            raise errors.InvalidQuery("event_type is required (EVENT.SYS or EVENT.CUSTOM)")
        _check_query(event_type, sub_event_type, from_ms, to_ms, start, limit)
        detail_filters = {
            "event_level": event_level,
            "event_user": event_user,
            "event_state": event_state,
        }
        matches = [
            stored
            for stored in self.stored_events(project_id)
            if stored.event["event_name"] == event_name
            and event_type_of(stored.event) == event_type
            and (sub_event_type is None or sub_event_type_of(stored.event) == sub_event_type)
            and (event_source is None or stored.event["event_source"] == event_source)
            and all(
                wanted is None or stored.event["detail"].get(name) == wanted
                for name, wanted in detail_filters.items()
            )
            and _in_range(stored.event["time"], from_ms, to_ms)
        ]
        matches.sort(key=lambda s: (-s.event["time"], s.event_id))
        users = _distinct(s.event["detail"].get("event_user") for s in matches)
        sources = _distinct(s.event["event_source"] for s in matches)
        page = matches[start : start + limit]
        return {
            "event_name": event_name,
            "event_type": event_type,
            "sub_event_type": sub_event_type_of(matches[0].event) if matches else sub_event_type,
            "event_users": users,
            "event_sources": sources,
            "event_info": [
                {
                    "event_name": s.event["event_name"],
                    "event_source": s.event["event_source"],
                    "time": s.event["time"],
                    "detail": s.event["detail"],
                    "event_id": s.event_id,
                }
                for s in page
            ],
            "meta_data": {"total": len(matches)},
        }

    # faults and rate limits ----------------------------------------------------------------

    def configure_faults(self, payload: Any) -> dict[str, Any]:
        """Apply a ``POST /_emulator/faults`` body (replacing the plan unless ``append``)."""
        settings, faults, append = parse_fault_plan(payload)
        with self._lock:
            current = self._settings if append else FaultSettings()
            updated = replace(current, queue=deque(current.queue))
            if "delay_ms" in settings:
                updated.delay_ms = _integer(settings["delay_ms"], "delay_ms", minimum=0)
            if "max_concurrent" in settings:
                updated.max_concurrent = _optional_limit(settings["max_concurrent"], "max_concurrent")
            if "max_per_second" in settings:
                updated.max_per_second = _optional_limit(settings["max_per_second"], "max_per_second")
            if "retry_after" in settings:
                updated.retry_after = _integer(settings["retry_after"], "retry_after", minimum=0)
            updated.queue.extend(faults)
            self._settings = updated
            self._window.clear()
            return updated.to_dict()

    def clear_faults(self) -> dict[str, Any]:
        with self._lock:
            self._settings = FaultSettings()
            self._window.clear()
            return self._settings.to_dict()

    def fault_plan(self) -> dict[str, Any]:
        with self._lock:
            return self._settings.to_dict()

    def standing_delay_ms(self) -> int:
        return self._settings.delay_ms

    def count_metric_post(self) -> None:
        with self._lock:
            self._counters["metric_posts"] += 1

    @contextmanager
    def admit_post(self) -> Iterator[None]:
        """Count an event post and hold a concurrency slot for it; raise 429 past the limits."""
        with self._lock:
            self._counters["posts_received"] += 1
            settings = self._settings
            if settings.max_concurrent is not None and self._in_flight >= settings.max_concurrent:
                self._counters["throttled"] += 1
                raise errors.Throttled(
                    f"more than {settings.max_concurrent} concurrent requests",
                    retry_after=settings.retry_after,
                )
            if settings.max_per_second is not None:
                now = time.monotonic()
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) >= settings.max_per_second:
                    self._counters["throttled"] += 1
                    wait = math.ceil(self._window[0] + 1.0 - now)
                    raise errors.Throttled(
                        f"more than {settings.max_per_second} requests per second",
                        retry_after=max(settings.retry_after, wait, 1),
                    )
                self._window.append(now)
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def take_fault(self, scope: str = "events") -> Fault | None:
        """The first queued fault for this kind of post (``events`` or ``metric-data``), if any;
        each use counts down its ``count``. Faults for the other kind stay queued."""
        with self._lock:
            queue = self._settings.queue
            position = next((i for i, fault in enumerate(queue) if fault.scope in (scope, "any")), None)
            if position is None:
                return None
            fault = queue[position]
            if fault.count <= 1:
                del queue[position]
            else:
                queue[position] = replace(fault, count=fault.count - 1)
            self._counters["faults_injected"] += 1
            return replace(fault, count=1)

    # counters ------------------------------------------------------------------------------

    def record_response(
        self,
        *,
        status: int | None,
        method: str,
        path: str,
        request_id: str,
        events: int | None = None,
    ) -> None:
        """Count one answered API request (``status`` None: the connection was dropped)."""
        with self._lock:
            self._counters["requests"] += 1
            if status is None:
                self._counters["dropped"] += 1
                label = "dropped"
            else:
                label = str(status)
            self._responses[label] = self._responses.get(label, 0) + 1
            self._log.append(
                {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "events": events,
                    "at": self.now_ms(),
                }
            )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._counters,
                "responses": dict(self._responses),
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak_in_flight,
                "projects": len(self._by_project),
            }

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def _check_query(
    event_type: str | None,
    sub_event_type: str | None,
    from_ms: int | None,
    to_ms: int | None,
    start: int,
    limit: int,
) -> None:
    if event_type is not None and event_type not in EVENT_TYPES:
        raise errors.InvalidQuery(f"event_type must be one of {list(EVENT_TYPES)}, got {event_type!r}")
    if sub_event_type is not None and sub_event_type not in SUB_EVENT_TYPES:
        raise errors.InvalidQuery(
            f"sub_event_type must be one of {list(SUB_EVENT_TYPES)}, got {sub_event_type!r}"
        )
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        raise errors.InvalidQuery(f"from ({from_ms}) must be smaller than to ({to_ms})")
    if start < 0:
        raise errors.InvalidQuery(f"start must be 0 or more, got {start}")
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise errors.InvalidQuery(f"limit must be between 1 and {MAX_QUERY_LIMIT}, got {limit}")


def _in_range(time_ms: int, from_ms: int | None, to_ms: int | None) -> bool:
    return (from_ms is None or time_ms >= from_ms) and (to_ms is None or time_ms <= to_ms)


def _distinct(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


BACKEND = Backend()
