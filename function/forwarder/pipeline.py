"""raw items -> validated events -> chunks -> Cloud Eye -> per-event results.

The stages overlap: items are read, validated and packed a slice at a time, and each finished
request goes to the client's workers at once, so the first events are on the wire while later
ones are still being checked (and a validated slice is dropped once encoded: only the names are
kept). Results of accepted events are filled in by the workers as each request ends.

Copies inside one batch (events Cloud Eye would count as one: equal time, source, name, type,
state, level, user, resource id and resource name) are sent once; each copy gets the result of
the first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from .batching import Oversized, iter_chunks_of_slices
from .events import (
    FieldError,
    Validation,
    now_ms,
    validate_events,
    validate_in_slices,
    validate_json_array,
)
from .json_items import PIECE_CHARS
from .report import ACCEPTED, BY_CLOUDEYE, AcceptedResult, ErrorItem, Report, Result, failed, rejected
from .settings import Settings

if TYPE_CHECKING:
    from .client import ChunkOutcome, CloudEyeClient

NO_RESULT = "no result recorded"


def report_events(
    items: Iterable[Any],
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    clock: Callable[[], int] = now_ms,
    deadline: float | None = None,
    adaptive: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Validate ``items``, send the valid ones to Cloud Eye in API-sized requests, report each.

    ``items`` may be any iterable (a generator reading a stream): it is consumed a slice at a
    time, in order, and neither all items nor all validated events are held at once. Invalid
    items are rejected alone (with field and reason) and never sent. ``deadline`` is a
    ``time.monotonic()`` value that bounds all the sending. Raises ``SettingsError`` only when
    something must be sent and the settings cannot send it.
    """
    settings = settings if settings is not None else Settings.from_env()
    validations = validate_in_slices(
        items, clock=clock, default_source=settings.default_source, late=settings.late_events
    )
    return _report(validations, settings, dry_run, deadline, adaptive, sleep, clock)


def report_json_array(
    pieces: Iterable[str],
    *,
    settings: Settings,
    dry_run: bool = False,
    clock: Callable[[], int] = now_ms,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report | None:
    """``report_events`` for one JSON array given as ``pieces``: each a JSON array of the next
    items (``json_items.events_array`` cuts a body so). Pieces are parsed, validated and sent one
    at a time, so memory follows the piece, not the array; ``None`` (nothing sent) when there
    are no items.

    A piece of valid events is parsed and validated in one pass (``validate_json_array``); any
    other piece item by item, as ``report_events`` would (a default source filled in, items far
    wider than an event refused unchecked). One time window holds for every piece.
    """
    pieces = iter(pieces)
    first = next(pieces, None)
    if first is None:
        return None
    current = clock()
    validations = _piece_validations(chain([first], pieces), current, settings)
    return _report(validations, settings, dry_run, deadline, True, sleep, clock)


# The one-pass check is skipped once this many pieces in a row failed it (a body of invalid items
# would pay for each piece twice), and for a piece longer than this: it lists every error of every item
# before giving up, so one 6 MiB item of 500,000 unknown keys would hold hundreds of MiB.
MAX_ONE_PASS_MISSES = 4
MAX_ONE_PASS_CHARS = 2 * PIECE_CHARS + 2


def _piece_validations(pieces: Iterable[str], current: int, settings: Settings) -> Iterator[Validation]:
    """One ``Validation`` per piece, as if the pieces were one: indexes counted over all of them,
    and retimed events a millisecond apart across pieces too."""

    def same_now() -> int:
        return current

    late, base, retimed, misses = settings.late_events, 0, 0, 0
    for piece in pieces:
        validation = None
        if misses < MAX_ONE_PASS_MISSES and len(piece) <= MAX_ONE_PASS_CHARS:
            validation = validate_json_array(piece, clock=same_now, late=late)
            misses = misses + 1 if validation is None else 0
        if validation is None:
            validation = _validate_items(json.loads(piece), same_now, settings)
        count, late_here = validation.count, len(validation.retimed)
        yield _shifted(validation, base, retimed) if base else validation
        base, retimed = base + count, retimed + late_here


def _validate_items(items: list[Any], clock: Callable[[], int], settings: Settings) -> Validation:
    """``validate_events`` with items far wider than any event refused unchecked, one reason each."""
    from .json_items import too_wide

    def validate(some: list[Any]) -> Validation:
        return validate_events(
            some, clock=clock, default_source=settings.default_source, late=settings.late_events
        )

    wide = {index: reason for index, item in enumerate(items) if (reason := too_wide(item)) is not None}
    if not wide:
        return validate(items)
    at = [index for index in range(len(items)) if index not in wide]
    outcome = validate([items[index] for index in at])
    moved = Validation(
        valid=[(at[index], event) for index, event in outcome.valid],
        errors={at[index]: errors for index, errors in outcome.errors.items()},
        count=len(items),
        retimed={at[index]: original for index, original in outcome.retimed.items()},
    )
    for index, reason in wide.items():
        moved.errors[index] = [FieldError("(event)", reason)]
    return moved


def _shifted(validation: Validation, base: int, retimed_before: int) -> Validation:
    """``validation`` with every index moved up by ``base``, and its retimed events sent
    ``retimed_before`` ms later (after those of the pieces before)."""
    if retimed_before and validation.retimed:
        for index, event in validation.valid:
            if index in validation.retimed:
                event["time"] += retimed_before  # a copy made by retime(): its own dict
    return Validation(
        valid=[(index + base, event) for index, event in validation.valid],
        errors={index + base: errors for index, errors in validation.errors.items()},
        count=validation.count,
        retimed={index + base: original for index, original in validation.retimed.items()},
    )


def _report(
    validations: Iterable[Validation],
    settings: Settings,
    dry_run: bool,
    deadline: float | None,
    adaptive: bool,
    sleep: Callable[[float], None],
    clock: Callable[[], int],
) -> Report:
    """Chunk and send the valid events of ``validations`` as they come; results by input index."""
    results: list[Result | None] = []
    names: list[str] = []
    retimed: dict[int, int] = {}
    first_of: dict[int, int] = {}  # identity key (see below) -> index of the first event with it
    copies: dict[int, int] = {}  # index of a copy -> index of the event sent for it
    oversized: list[Oversized] = []

    def valid_slices() -> Iterator[list[tuple[int, dict[str, Any]]]]:
        setdefault = first_of.setdefault
        for validation in validations:
            results.extend([None] * validation.count)
            names.extend([""] * validation.count)
            retimed.update(validation.retimed)
            for index, errors in validation.errors.items():
                results[index] = rejected(index, _error_items(errors))
            late = validation.retimed
            had_copies = False
            for index, event in validation.valid:
                names[index] = name = event["event_name"]
                # Cloud Eye's same-event rule: equal time, source, name, type, state, level, user,
                # resource id and resource name. The type is left out as validation lets only
                # EVENT.CUSTOM (or nothing, meaning the same) through. The key is the hash of
                # those values: an integer, untracked by the garbage collector and cheaper to
                # build than the values themselves, and two different events share one only if
                # their hashes collide (about once in 2^64; string hashes are salted per process,
                # so no input can aim for that). A retimed event is keyed by its original time:
                # two late copies are still copies.
                field = event["detail"].get
                key = hash(
                    (
                        late.get(index, event["time"]) if late else event["time"],
                        event["event_source"],
                        name,
                        field("event_state"),
                        field("event_level"),
                        field("event_user"),
                        field("resource_id"),
                        field("resource_name"),
                    )
                )
                first = setdefault(key, index)
                if first != index:
                    copies[index] = first
                    had_copies = True
            # The validation's own pairs go on, not new ones: no per-event tuple, no per-event yield.
            if had_copies:
                yield [pair for pair in validation.valid if pair[0] not in copies]
            else:
                yield validation.valid

    chunks = iter_chunks_of_slices(valid_slices(), oversized, max_bytes=settings.max_request_bytes)
    report = Report(results=[], dry_run=dry_run)
    if dry_run:
        requests = 0
        for chunk in chunks:
            requests += 1
            for index in chunk.indexes:
                results[index] = {"index": index, "status": ACCEPTED, "event_name": names[index]}
        report.stats["requests_needed"] = requests
    elif (first := next(chunks, None)) is not None:  # a client (and its settings) only if needed
        _send(chain([first], chunks), settings, deadline, adaptive, sleep, clock, results, names, report)
    for big in oversized:
        reason = (
            f"the event is {big.size} bytes of JSON, over the {settings.max_request_bytes}-byte "
            "request limit (CLOUDEYE_MAX_REQUEST_BYTES)"
        )
        results[big.input_index] = rejected(big.input_index, [{"field": "(event)", "message": reason}])
    for index, original in retimed.items():
        result = results[index]
        if result is not None and result["status"] == ACCEPTED:
            result["retimed_from"] = original
    for index, first_index in copies.items():
        result = results[first_index]
        copy: Any = dict(result) if result is not None else failed(index, NO_RESULT)
        copy.update(index=index, copy_of=first_index)
        copy.pop("retimed_from", None)
        if index in retimed and copy["status"] == ACCEPTED:
            copy["retimed_from"] = retimed[index]
        results[index] = copy
    # Every item has exactly one result; should one ever be missing, say so rather than drop it.
    report.results = [
        result if result is not None else failed(index, NO_RESULT) for index, result in enumerate(results)
    ]
    return report


def _send(
    chunks: Iterable[Any],
    settings: Settings,
    deadline: float | None,
    adaptive: bool,
    sleep: Callable[[float], None],
    clock: Callable[[], int],
    results: list[Result | None],
    names: list[str],
    report: Report,
) -> None:
    from .client import CloudEyeClient

    def settle(outcome: ChunkOutcome) -> None:
        # In the worker, as each request ends: these results are ready when the last one is.
        for part in outcome.parts:
            if part.verdict == "accepted":
                # The client hands over a string event_id per event, or none (ids unknown).
                for index, created in zip(part.indexes, part.created or (), strict=True):
                    accepted: AcceptedResult = {
                        "index": index,
                        "status": ACCEPTED,
                        "event_id": created.get("event_id"),
                        "event_name": names[index],
                    }
                    results[index] = accepted
            elif part.verdict == "refused":
                item: ErrorItem = {"field": "(event)", "message": part.error or "refused by Cloud Eye"}
                if part.code:
                    item["code"] = part.code
                for index in part.indexes:
                    results[index] = rejected(index, [dict(item)], by=BY_CLOUDEYE)  # type: ignore[list-item]
            elif part.verdict == "late":
                for index in part.indexes:
                    results[index] = rejected(index, [{"field": "time", "message": part.error or ""}])
            else:
                for index in part.indexes:
                    results[index] = failed(index, part.error or "not sent")

    client: CloudEyeClient = CloudEyeClient(
        settings, deadline=deadline, adaptive=adaptive, sleep=sleep, clock_ms=clock
    )
    waits: list[float] = []  # Cloud Eye's Retry-After values (clamped) for what failed
    for outcome in client.send(chunks, on_done=settle):
        for part in outcome.parts:
            if part.verdict == "failed" and not part.transient:
                report.failures_retryable = False
        if outcome.retry_after is not None:
            waits.append(outcome.retry_after)
    # What the learned request rate needs to send the failed requests again, when it is paced.
    if (paced := client.retry_after_hint(client.stats.failed_requests)) > 0:
        waits.append(paced)
    report.retry_after = max(waits, default=None)
    report.requests = client.stats.requests
    report.retries = client.stats.retries
    report.throttled = client.stats.throttled


def _error_items(errors: list[FieldError]) -> list[ErrorItem]:
    return [{"field": error.field, "message": error.message} for error in errors]
