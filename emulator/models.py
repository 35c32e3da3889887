"""Cloud Eye's state, in memory, per project id: events, metric data, resource groups, counters.

Holds the stored events (with Cloud Eye-shaped ids and its same-event rule), custom metric
data and the resource groups that exist; answers both event query APIs; keeps the fault plan
(``faults``), the clock and the request log. Knows nothing about HTTP. Thread-safe: the server
answers requests on many threads at once. ``BACKEND`` is the process-wide instance.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emulator import errors, rules
from emulator.faults import FaultPlan

MAX_QUERY_LIMIT = 100
# How many recent API requests GET /_emulator/requests remembers.
REQUEST_LOG_SIZE = 1000
RESOURCE_GROUPS_ENV = "EMULATOR_RESOURCE_GROUPS"

# What Cloud Eye assumes for a reported event that leaves these out.
DEFAULT_EVENT_TYPE = "EVENT.CUSTOM"
DEFAULT_SUB_EVENT_TYPE = "SUB_EVENT.CUSTOM"

_ID_ALPHABET = string.ascii_letters + string.digits


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000


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
        return asdict(self)


@dataclass(frozen=True)
class StoredMetric:
    project_id: str
    received_at: int  # UNIX ms, by the backend's clock
    item: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "received_at": self.received_at, **self.item}


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
        if not isinstance(group, str) or len(group) != rules.GROUP_ID_LENGTH:
            raise errors.ControlError(
                f"group_ids[{index}] must be a string of exactly {rules.GROUP_ID_LENGTH} characters "
                f"(Cloud Eye's group ids look like rg15221211517051YWWkEnVd), got {group!r}"
            )
    return set(ids)


# --- The backend -------------------------------------------------------------------------------


class Backend:
    """All emulator state. ``reset()`` empties events, metric data, faults, counters and the clock
    override, and returns the resource groups to those named in ``EMULATOR_RESOURCE_GROUPS``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self.reset()

    # clock ---------------------------------------------------------------------------------

    def set_clock(self, clock: Callable[[], int] | None) -> None:
        """Use ``clock`` (UNIX ms) for the time window, the X-Sdk-Date skew and ids; None: real time."""
        with self._lock:
            self._clock = clock

    def now_ms(self) -> int:
        clock = self._clock
        return clock() if clock is not None else real_now_ms()

    # state ---------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._clock = None
            self._stored: list[StoredEvent] = []
            self._by_project: dict[str, list[StoredEvent]] = {}
            self._by_key: dict[str, dict[tuple[Any, ...], StoredEvent]] = {}
            self.faults.reset()
            self._counters = {
                "requests": 0,
                "posts_received": 0,
                "events_stored": 0,
                "duplicates": 0,
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
                f"the body must be a JSON array of events, got a JSON {rules.json_kind(items)}"
            )
        if not rules.MIN_EVENTS <= len(items) <= rules.MAX_EVENTS:
            raise errors.InvalidBody(
                f"a request must hold {rules.MIN_EVENTS} to {rules.MAX_EVENTS} events, "
                f"this one holds {len(items)}"
            )
        now = self.now_ms()
        found = rules.check_items(items, rules.check_event, now)
        if found:
            raise errors.InvalidBody(rules.describe(found, "event"))
        with self._lock:
            self._refuse_unknown_groups(items)
            received = self.now_ms()
            known = self._by_key.setdefault(project_id, {})
            answer = []
            for raw in items:
                event = {**raw, "time": int(raw["time"])}  # 1.7e12 is stored as 1700000000000
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

    def _refuse_unknown_groups(self, events: Sequence[Mapping[str, Any]]) -> None:
        # Cloud Eye checks that a named group exists; one unknown group refuses the whole request.
        unknown = [
            (index, event["detail"]["group_id"])
            for index, event in enumerate(events)
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

    # faults ------------------------------------------------------------------------------

    def admit_post(self) -> Any:
        """Count an event post and hold a concurrency slot for it (429 past the rate limits)."""
        with self._lock:
            self._counters["posts_received"] += 1
        return self.faults.admit()

    def count_metric_post(self) -> None:
        with self._lock:
            self._counters["metric_posts"] += 1

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
                **self.faults.stats(),
                "projects": len(self._by_project),
            }

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)


def _check_query(
    event_type: str | None,
    sub_event_type: str | None,
    from_ms: int | None,
    to_ms: int | None,
    start: int,
    limit: int,
) -> None:
    if event_type is not None and event_type not in rules.EVENT_TYPES:
        raise errors.InvalidQuery(f"event_type must be one of {list(rules.EVENT_TYPES)}, got {event_type!r}")
    if sub_event_type is not None and sub_event_type not in rules.SUB_EVENT_TYPES:
        raise errors.InvalidQuery(
            f"sub_event_type must be one of {list(rules.SUB_EVENT_TYPES)}, got {sub_event_type!r}"
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
