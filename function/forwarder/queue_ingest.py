"""Queue batches (Kafka, RocketMQ, RabbitMQ, SMN, DIS, Pub/Sub): reject alone, send the rest, raise last.

An unreadable message, an invalid event or an event Cloud Eye itself refused is logged with its
position, reason (and who refused it) and raw text (cut at 8 KiB), and never retried: it would
fail again. Every valid event is sent. If any of them still failed after the client's retries
(a transient failure, or a configuration problem), ``DeliveryError`` is raised *after*
everything else was sent, so the platform redelivers the batch. That is safe: Cloud Eye stores
an event equal to one it already has only once, and the forwarder never rewrites ``time`` (but
``FORWARDER_LATE_EVENTS=retime`` does, for late events: those may be stored again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .errors import DeliveryError
from .intake import Candidate, Unreadable, report_candidates
from .logs import Invocation
from .report import FAILED, REJECTED, ErrorItem, FailedResult, Report

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["DeliveryError", "process"]

MAX_LOGGED_POSITIONS = 20
MAX_LOGGED_ERRORS = 5


def _reason(errors: list[ErrorItem]) -> str:
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
    failed: list[FailedResult] = []
    for result in report.results:
        candidate = candidates[result["index"]]
        if result["status"] == REJECTED:
            value = candidate.value
            raw = value.raw if isinstance(value, Unreadable) else value
            why = result["errors"]
            by = result.get("by", "forwarder")
            invocation.reject(candidate.position, _reason(why), raw, errors=why, by=by)
        elif result["status"] == FAILED:
            failed.append(result)
    errors = list(dict.fromkeys(result["error"] for result in failed))
    if failed:
        invocation.log(
            logging.ERROR,
            "delivery failed",
            failed=len(failed),
            errors=errors[:MAX_LOGGED_ERRORS],
            positions=[candidates[result["index"]].position for result in failed[:MAX_LOGGED_POSITIONS]],
        )
    counts = report.counts()
    invocation.summary(counts)
    if failed:
        raise DeliveryError(counts, errors)
    return report
