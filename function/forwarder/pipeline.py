"""raw items -> validated events -> chunks -> Cloud Eye -> per-event results."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .batching import chunk_events
from .events import FieldError, now_ms, validate_events
from .report import ACCEPTED, FAILED, REJECTED, Report
from .settings import Settings


def report_events(
    items: Sequence[Any],
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    clock: Callable[[], int] = now_ms,
    deadline: float | None = None,
    adaptive: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Validate ``items``, send the valid ones to Cloud Eye in API-sized requests, report each.

    Invalid items are rejected alone (with field and reason) and never sent. ``deadline`` is a
    ``time.monotonic()`` value after which no new attempt starts. Raises ``SettingsError`` only
    when something must be sent and the settings cannot send it.
    """
    settings = settings if settings is not None else Settings.from_env()
    validation = validate_events(items, clock=clock, default_source=settings.default_source)
    chunks, oversized = chunk_events(validation.valid, max_bytes=settings.max_request_bytes)

    results: list[dict[str, Any] | None] = [None] * len(items)
    for index, errors in validation.errors.items():
        results[index] = _rejected(index, errors)
    for big in oversized:
        reason = (
            f"the event is {big.size} bytes of JSON, over the {settings.max_request_bytes}-byte "
            "request limit (CLOUDEYE_MAX_REQUEST_BYTES)"
        )
        results[big.index] = _rejected(big.index, [FieldError("(event)", reason)])

    report = Report(results=[], dry_run=dry_run)
    names = {index: event["event_name"] for index, event in validation.valid}
    if dry_run:
        for chunk in chunks:
            for index in chunk.indexes:
                results[index] = {"index": index, "status": ACCEPTED, "event_name": names[index]}
        report.stats["requests_needed"] = len(chunks)
    elif chunks:
        from .client import CloudEyeClient  # only invocations that send need it

        client = CloudEyeClient(settings, deadline=deadline, adaptive=adaptive, sleep=sleep)
        for outcome in client.send(chunks):
            if outcome.ok:
                for index, created in zip(outcome.chunk.indexes, outcome.created or (), strict=True):
                    results[index] = {
                        "index": index,
                        "status": ACCEPTED,
                        "event_id": created.get("event_id"),
                        "event_name": created.get("event_name") or names[index],
                    }
                continue
            for index in outcome.chunk.indexes:
                results[index] = {"index": index, "status": FAILED, "error": outcome.error}
            if outcome.retry_after is not None:
                report.retry_after = max(report.retry_after or 0.0, outcome.retry_after)
            if outcome.status is not None and outcome.status < 500 and outcome.status not in (408, 429):
                report.failures_retryable = False
        report.requests = client.stats.requests
        report.retries = client.stats.retries
        report.throttled = client.stats.throttled
    report.results = [result for result in results if result is not None]
    return report


def _rejected(index: int, errors: list[FieldError]) -> dict[str, Any]:
    return {"index": index, "status": REJECTED, "errors": [error.to_dict() for error in errors]}
