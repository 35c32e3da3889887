"""Queue batches (Kafka, RocketMQ, RabbitMQ, SMN, DIS, Pub/Sub): reject alone, send the rest, raise last.

An unreadable message or an invalid event is logged with its position, reason and raw text
(cut at 8 KiB) and never retried: it would fail again. Every valid event is sent. If any of them
still failed after the client's retries, ``DeliveryError`` is raised *after* everything else was
sent, so the platform redelivers the batch. That is safe: Cloud Eye stores an event equal to one
it already has only once, and the forwarder never rewrites ``time``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .intake import Candidate, Unreadable, report_candidates
from .logs import Invocation, log_line
from .report import FAILED, REJECTED, Report

if TYPE_CHECKING:
    from .settings import Settings

MAX_LOGGED_POSITIONS = 20
MAX_LOGGED_ERRORS = 5


class DeliveryError(RuntimeError):
    """Some valid events could not be delivered after retries; the batch should be redelivered."""

    def __init__(self, counts: dict[str, Any], errors: list[str]) -> None:
        self.counts = counts
        self.errors = errors
        first = f"; first error: {errors[0]}" if errors else ""
        super().__init__(
            f"{counts['failed']} of {counts['received']} events could not be delivered to Cloud Eye "
            f"after retries (accepted {counts['accepted']}, rejected {counts['rejected']}){first}. "
            "Redelivering the batch is safe: Cloud Eye keeps one copy of an identical event."
        )


def _reason(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)


def process(
    candidates: Sequence[Candidate],
    *,
    settings: Settings,
    invocation: Invocation,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Send a batch's valid events, log every reject and the summary; raise ``DeliveryError`` last."""
    report = report_candidates(candidates, settings=settings, deadline=deadline, sleep=sleep)
    failed: list[dict[str, Any]] = []
    for result in report.results:
        candidate = candidates[result["index"]]
        if result["status"] == REJECTED:
            value = candidate.value
            raw = value.raw if isinstance(value, Unreadable) else value
            invocation.reject(candidate.position, _reason(result["errors"]), raw, errors=result["errors"])
        elif result["status"] == FAILED:
            failed.append(result)
    errors = list(dict.fromkeys(str(result.get("error")) for result in failed))
    if failed:
        log_line(
            logging.ERROR,
            "delivery failed",
            request_id=invocation.request_id,
            trigger=invocation.trigger,
            failed=len(failed),
            errors=errors[:MAX_LOGGED_ERRORS],
            positions=[candidates[result["index"]].position for result in failed[:MAX_LOGGED_POSITIONS]],
        )
    counts = report.counts()
    invocation.summary(counts)
    if failed:
        raise DeliveryError(counts, errors)
    return report
