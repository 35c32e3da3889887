"""Raw items as a trigger delivers them -> one Report, with unreadable pieces rejected in place.

A trigger yields *candidates*: parsed items (possible events) and ``Unreadable`` pieces (a line or
a message that is not JSON at all). Only parsed items go through the pipeline; the unreadable
ones get a rejected result at their own index, so every piece of input has exactly one result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .report import REJECTED, Report

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True)
class Unreadable:
    """A piece of input that holds no JSON value: rejected alone, with ``field`` and ``reason``."""

    reason: str
    raw: Any = None
    field: str = "(message)"


@dataclass
class Candidate:
    """One piece of input: a parsed item or an ``Unreadable``, and where it came from."""

    value: Any
    position: dict[str, Any] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return not isinstance(self.value, Unreadable)


def report_candidates(
    candidates: Sequence[Candidate],
    *,
    settings: Settings,
    dry_run: bool = False,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Validate and send the readable candidates; results come back in candidate order."""
    readable = [index for index, candidate in enumerate(candidates) if candidate.readable]
    if readable:
        from .pipeline import report_events  # loads pydantic: only when there is something to check

        report = report_events(
            [candidates[index].value for index in readable],
            settings=settings,
            dry_run=dry_run,
            deadline=deadline,
            sleep=sleep,
        )
    else:
        report = Report(results=[], dry_run=dry_run)
    if len(readable) == len(candidates):
        return report
    results: list[dict[str, Any]] = []
    remap = dict(enumerate(readable))
    for result in report.results:
        results.append({**result, "index": remap[result["index"]]})
    for index, candidate in enumerate(candidates):
        if not candidate.readable:
            piece: Unreadable = candidate.value
            results.append(
                {
                    "index": index,
                    "status": REJECTED,
                    "errors": [{"field": piece.field, "message": piece.reason}],
                }
            )
    results.sort(key=lambda result: result["index"])
    report.results = results
    return report
