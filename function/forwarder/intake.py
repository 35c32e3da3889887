"""Raw items as a trigger delivers them -> one Report, with unreadable pieces rejected in place.

A trigger yields *candidates*: parsed items (possible events) and ``Unreadable`` pieces (a line or
a message that is not JSON at all). Only parsed items go through the pipeline; the unreadable
ones get a rejected result at their own index, so every piece of input has exactly one result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .report import RejectedResult, Report, Result, rejected

if TYPE_CHECKING:
    from .settings import Settings


class Unreadable(NamedTuple):
    """A piece of input that holds no JSON value: rejected alone, with ``field`` and ``reason``."""

    reason: str
    raw: Any = None
    field: str = "(message)"


class Candidate(NamedTuple):
    """One piece of input: a parsed item or an ``Unreadable``, and where it came from."""

    value: Any
    position: dict[str, Any]

    @property
    def readable(self) -> bool:
        return not isinstance(self.value, Unreadable)


def report_candidates(
    candidates: Iterable[Candidate],
    *,
    settings: Settings,
    dry_run: bool = False,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Validate and send the readable candidates; results come back in candidate order.

    ``candidates`` may be any iterable (a stream): it is read once, lazily, a slice at a time,
    as the pipeline asks for items. Only the positions of the candidates are kept.
    """
    readable_at: list[int] = []  # candidate index of each readable item, in order
    unreadable: list[RejectedResult] = []

    def readable_values() -> Iterator[Any]:
        for index, candidate in enumerate(candidates):
            if candidate.readable:
                readable_at.append(index)
                yield candidate.value
            else:
                piece: Unreadable = candidate.value
                unreadable.append(rejected(index, [{"field": piece.field, "message": piece.reason}]))

    if isinstance(candidates, Sequence) and not any(candidate.readable for candidate in candidates):
        report = Report(results=[], dry_run=dry_run)  # nothing to check: pydantic need not load
        list(readable_values())
    else:
        from .pipeline import report_events  # loads pydantic: there is something to check

        report = report_events(
            readable_values(), settings=settings, dry_run=dry_run, deadline=deadline, sleep=sleep
        )
    if not unreadable:
        return report
    results: list[Result] = list(unreadable)
    for result in report.results:
        moved: Any = dict(result)
        moved["index"] = readable_at[result["index"]]
        if "copy_of" in moved:
            moved["copy_of"] = readable_at[moved["copy_of"]]
        results.append(moved)
    results.sort(key=lambda result: result["index"])
    report.results = results
    return report
