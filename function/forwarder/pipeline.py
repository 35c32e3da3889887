"""raw items -> validated events -> chunks -> Cloud Eye -> per-event results.

The stages overlap: items are validated and packed a slice at a time, and each finished request
goes to the client's workers at once, so the first events are on the wire while later ones are
still being checked (and a validated slice is dropped once encoded: only the names are kept).
Results of accepted events are filled in by the workers as each request ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from .batching import Oversized, iter_chunks
from .events import FieldError, Validation, now_ms, validate_in_slices, validate_json_array
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
    validations = validate_in_slices(items, clock=clock, default_source=settings.default_source)
    return _report(validations, len(items), settings, dry_run, deadline, adaptive, sleep)


def report_json_array(
    body: bytes | str,
    *,
    settings: Settings,
    dry_run: bool = False,
    clock: Callable[[], int] = now_ms,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report | None:
    """``report_events(json.loads(body))`` with the body parsed and validated in one pass, when it
    is a JSON array whose items all pass validation (the time window is still checked per event);
    ``None`` (nothing sent) otherwise: take the per-item path then.

    ``FORWARDER_DEFAULT_SOURCE`` needs nothing here: an item without ``event_source`` fails this
    pass, and the per-item path fills it in.
    """
    validation = validate_json_array(body, clock=clock)
    if validation is None:
        return None
    received = len(validation.valid) + len(validation.errors)
    return _report([validation], received, settings, dry_run, deadline, True, sleep)


def _report(
    validations: Iterable[Validation],
    received: int,
    settings: Settings,
    dry_run: bool,
    deadline: float | None,
    adaptive: bool,
    sleep: Callable[[float], None],
) -> Report:
    """Chunk and send the valid events of ``validations`` as they come; results by input index."""
    results: list[dict[str, Any] | None] = [None] * received
    names = [""] * received
    oversized: list[Oversized] = []

    def valid_events() -> Iterator[tuple[int, dict[str, Any]]]:
        for validation in validations:
            for index, errors in validation.errors.items():
                results[index] = _rejected(index, errors)
            for index, event in validation.valid:
                names[index] = event["event_name"]
            yield from validation.valid

    chunks = iter_chunks(valid_events(), oversized, max_bytes=settings.max_request_bytes)
    report = Report(results=[], dry_run=dry_run)
    if dry_run:
        requests = 0
        for chunk in chunks:
            requests += 1
            for index in chunk.indexes:
                results[index] = {"index": index, "status": ACCEPTED, "event_name": names[index]}
        report.stats["requests_needed"] = requests
    elif (first := next(chunks, None)) is not None:  # a client (and its settings) only if needed
        from .client import ChunkOutcome, CloudEyeClient

        def accepted(outcome: ChunkOutcome) -> None:
            # In the worker, as each request ends: these results are ready when the last one is.
            if outcome.ok:
                for index, created in zip(outcome.chunk.indexes, outcome.created or (), strict=True):
                    results[index] = {
                        "index": index,
                        "status": ACCEPTED,
                        "event_id": created.get("event_id"),
                        "event_name": created.get("event_name") or names[index],
                    }

        client = CloudEyeClient(settings, deadline=deadline, adaptive=adaptive, sleep=sleep)
        for outcome in client.send(chain([first], chunks), on_done=accepted):
            if outcome.ok:
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
    for big in oversized:
        reason = (
            f"the event is {big.size} bytes of JSON, over the {settings.max_request_bytes}-byte "
            "request limit (CLOUDEYE_MAX_REQUEST_BYTES)"
        )
        results[big.index] = _rejected(big.index, [FieldError("(event)", reason)])
    # Every item has exactly one result; should one ever be missing, say so rather than drop it.
    report.results = [
        result if result is not None else {"index": index, "status": FAILED, "error": "no result recorded"}
        for index, result in enumerate(results)
    ]
    return report


def _rejected(index: int, errors: list[FieldError]) -> dict[str, Any]:
    return {"index": index, "status": REJECTED, "errors": [error.to_dict() for error in errors]}
