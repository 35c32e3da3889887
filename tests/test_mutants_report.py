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
