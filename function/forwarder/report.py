"""The per-event outcome of one batch: what callers get back and what the log line counts.

Every input item gets exactly one result, in input order:

- ``accepted``: Cloud Eye stored it (``event_id``; ``null`` when Cloud Eye's answer did not say);
  ``copy_of`` when it equalled an earlier event of the batch and was not sent again;
  ``retimed_from`` when ``FORWARDER_LATE_EVENTS=retime`` sent it with the current time.
- ``rejected``: never worth retrying; ``by`` says who refused it: ``forwarder`` (the local
  rules) or ``cloudeye`` (Cloud Eye refused it alone; its code is kept in the error).
- ``failed``: a transient failure (or a configuration problem) after retries; sending it again
  later can succeed.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict, Union

Status = Literal["accepted", "rejected", "failed"]
RejectedBy = Literal["forwarder", "cloudeye"]

ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
BY_FORWARDER: Final = "forwarder"
BY_CLOUDEYE: Final = "cloudeye"


class _ErrorRequired(TypedDict):
    field: str
    message: str


class ErrorItem(_ErrorRequired, total=False):
    code: str  # Cloud Eye's error code, when Cloud Eye refused the event


class _AcceptedRequired(TypedDict):
    index: int
    status: Literal["accepted"]
    event_name: str


class AcceptedResult(_AcceptedRequired, total=False):
    event_id: str | None
    copy_of: int
    retimed_from: int


class _RejectedRequired(TypedDict):
    index: int
    status: Literal["rejected"]
    errors: list[ErrorItem]


class RejectedResult(_RejectedRequired, total=False):
    by: RejectedBy
    copy_of: int


class _FailedRequired(TypedDict):
    index: int
    status: Literal["failed"]
    error: str


class FailedResult(_FailedRequired, total=False):
    copy_of: int


Result = Union[AcceptedResult, RejectedResult, FailedResult]  # noqa: UP007 (runs on Python 3.10)


def rejected(index: int, errors: list[ErrorItem], by: RejectedBy = BY_FORWARDER) -> RejectedResult:
    return {"index": index, "status": REJECTED, "by": by, "errors": errors}


def failed(index: int, error: str) -> FailedResult:
    return {"index": index, "status": FAILED, "error": error}


class Report:
    """Results in input order. ``to_dict()`` is the HTTP answer body."""

    def __init__(
        self,
        results: list[Result],
        *,
        dry_run: bool = False,
        requests: int = 0,
        retries: int = 0,
        throttled: int = 0,
    ) -> None:
        self.results = results
        self.dry_run = dry_run
        self.requests = requests
        self.retries = retries
        self.throttled = throttled
        # How long to wait before sending the failed events again (Cloud Eye's Retry-After,
        # clamped, or what the learned request rate needs), and whether every failure was a
        # transient one.
        self.retry_after: float | None = None
        self.failures_retryable = True
        self.stats: dict[str, Any] = {}

    @property
    def received(self) -> int:
        return len(self.results)

    def _count(self, status: Status) -> int:
        return sum(1 for result in self.results if result["status"] == status)

    @property
    def accepted(self) -> int:
        return self._count(ACCEPTED)

    @property
    def rejected(self) -> int:
        return self._count(REJECTED)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
        }
        if self.dry_run:
            body["dry_run"] = True
        body["results"] = self.results
        return body

    def __repr__(self) -> str:  # the figures, never the events (a REPL or a test failure shows it)
        figures = ", ".join(f"{name}={value}" for name, value in self.counts().items())
        return f"Report({figures}{', dry_run=True' if self.dry_run else ''})"

    def counts(self) -> dict[str, Any]:
        """The figures for the invocation's log line (no event content, no secrets)."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
        }
