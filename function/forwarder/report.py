"""The per-event outcome of one batch: what callers get back and what the log line counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"


@dataclass
class Report:
    """Results in input order. ``to_dict()`` is the HTTP answer body of SPEC section 6."""

    results: list[dict[str, Any]]
    dry_run: bool = False
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    # The largest Retry-After Cloud Eye asked for, and whether every failure was a retryable one.
    retry_after: float | None = None
    failures_retryable: bool = True
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def received(self) -> int:
        return len(self.results)

    def _count(self, status: str) -> int:
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
