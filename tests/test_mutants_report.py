"""The invocation log line's figures."""

from __future__ import annotations

from forwarder.report import Report


def test_log_counts_name_every_figure() -> None:
    statuses = ["accepted", "rejected", "failed", "accepted"]
    report = Report(results=[{"status": s} for s in statuses], requests=3, retries=2, throttled=1)
    assert report.counts() == {
        "received": 4,
        "accepted": 2,
        "rejected": 1,
        "failed": 1,
        "requests": 3,
        "retries": 2,
        "throttled": 1,
    }
