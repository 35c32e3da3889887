"""Misbehaviour on demand: queued faults, standing latency and rate limits.

A fault plan (``POST /_emulator/faults``) queues faults that each act on the next ``count``
posts of their ``scope`` (``events`` by default, ``metric-data``, or ``any``) and sets standing
behaviour: ``delay_ms`` before every API request, ``max_concurrent`` / ``max_per_second`` for
event posts (429 with ``Retry-After`` past them). ``FaultPlan`` keeps all of it, thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from emulator import errors

FAULT_KINDS = ("status", "drop", "slow")
# Which requests a fault acts on: event posts (the default), metric-data posts, or either.
FAULT_SCOPES = ("events", "metric-data", "any")
_FAULT_KEYS = frozenset({"kind", "status", "count", "delay_ms", "retry_after", "body", "store", "scope"})
_SETTING_KEYS = frozenset({"delay_ms", "max_concurrent", "max_per_second", "retry_after", "faults", "append"})


@dataclass(frozen=True)
class Fault:
    """One queued misbehaviour for the next ``count`` posts of its ``scope``.

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


class FaultPlan:
    """The plan in force, the rate-limit window and the live concurrency count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0  # live requests: a reset leaves it alone
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._settings = FaultSettings()
            self._window: deque[float] = deque()
            self._peak_in_flight = self._in_flight
            self.counters = {"throttled": 0, "faults_injected": 0}

    def configure(self, payload: Any) -> dict[str, Any]:
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

    def clear(self) -> dict[str, Any]:
        with self._lock:
            self._settings = FaultSettings()
            self._window.clear()
            return self._settings.to_dict()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return self._settings.to_dict()

    def standing_delay_ms(self) -> int:
        return self._settings.delay_ms

    def take(self, scope: str = "events") -> Fault | None:
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
            self.counters["faults_injected"] += 1
            return replace(fault, count=1)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a concurrency slot for an event post; raise 429 past the limits."""
        with self._lock:
            self._check_limits()
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _check_limits(self) -> None:
        settings = self._settings
        if settings.max_concurrent is not None and self._in_flight >= settings.max_concurrent:
            self.counters["throttled"] += 1
            raise errors.Throttled(
                f"more than {settings.max_concurrent} concurrent requests", retry_after=settings.retry_after
            )
        if settings.max_per_second is not None:
            now = time.monotonic()
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= settings.max_per_second:
                self.counters["throttled"] += 1
                wait = math.ceil(self._window[0] + 1.0 - now)
                raise errors.Throttled(
                    f"more than {settings.max_per_second} requests per second",
                    retry_after=max(settings.retry_after, wait, 1),
                )
            self._window.append(now)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counters, "in_flight": self._in_flight, "peak_in_flight": self._peak_in_flight}
