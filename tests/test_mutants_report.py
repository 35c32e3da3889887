"""A report's figures: in the invocation log line, printed, and for a report that sent nothing."""

from __future__ import annotations

from forwarder.pipeline import report_events
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


def test_a_report_prints_its_figures_not_its_events() -> None:
    secret_content = {"status": "accepted", "event_name": "e", "content": "customer 4711"}
    report = Report(results=[secret_content], dry_run=True, requests=1)
    shown = repr(report)
    assert shown == (
        "Report(received=1, accepted=1, rejected=0, failed=0, requests=1, retries=0, throttled=0, "
        "dry_run=True)"
    )
    assert "4711" not in shown
    assert repr(Report(results=[])).endswith("throttled=0)")


def test_a_report_that_sent_nothing_counts_no_request_and_asks_for_no_wait() -> None:
    fresh = Report(results=[])
    assert (fresh.requests, fresh.retries, fresh.throttled) == (0, 0, 0)
    assert fresh.retry_after is None
    assert fresh.failures_retryable is True
    assert fresh.stats == {}
    # Nothing valid to send: the invocation's figures say no request was made.
    report = report_events([{"event_name": "bad name"}])
    assert report.counts()["requests"] == 0
    assert report.retry_after is None
