"""The read-only HTML page at ``/_emulator/``: recent events and the counters. Escapes everything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from emulator.models import StoredEvent, StoredMetric, event_type_of

CONTENT_PREVIEW = 200


def _when(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}Z"


def _cell(value: Any) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _row(stored: StoredEvent) -> str:
    event = stored.event
    detail = event.get("detail", {})
    content = detail.get("content") or ""
    if len(content) > CONTENT_PREVIEW:
        content = content[:CONTENT_PREVIEW] + "…"
    resource = " / ".join(v for v in (detail.get("resource_id"), detail.get("resource_name")) if v)
    cells = (
        _when(event["time"]),
        stored.project_id,
        stored.event_id,
        event["event_name"],
        event["event_source"],
        detail.get("event_level"),
        detail.get("event_state"),
        event_type_of(event),
        detail.get("event_user"),
        resource,
        content,
    )
    return "<tr>" + "".join(_cell(v) for v in cells) + "</tr>"


_HEADINGS = (
    "time (UTC)",
    "project",
    "event_id",
    "event_name",
    "event_source",
    "level",
    "state",
    "type",
    "user",
    "resource",
    "content",
)

_METRIC_HEADINGS = (
    "received (UTC)",
    "project",
    "namespace",
    "metric_name",
    "dimensions",
    "value",
    "unit",
    "collected (UTC)",
)


def _metric_row(stored: StoredMetric) -> str:
    item = stored.item
    metric = item.get("metric", {})
    dimensions = ", ".join(f"{d.get('name')}={d.get('value')}" for d in metric.get("dimensions", []))
    cells = (
        _when(stored.received_at),
        stored.project_id,
        metric.get("namespace"),
        metric.get("metric_name"),
        dimensions,
        item.get("value"),
        item.get("unit"),
        _when(int(item.get("collect_time", 0))),
    )
    return "<tr>" + "".join(_cell(v) for v in cells) + "</tr>"


def _table(headings: Sequence[str], rows: str, empty: str) -> str:
    if not rows:
        rows = f'<tr><td colspan="{len(headings)}">{escape(empty)}</td></tr>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
    "table{border-collapse:collapse;font-size:.85rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem}"
)


def render(
    recent: Sequence[StoredEvent],
    total: int,
    stats: Mapping[str, Any],
    recent_metrics: Sequence[StoredMetric] = (),
    total_metrics: int = 0,
) -> str:
    """The page: ``recent`` events newest first, out of ``total`` stored, the counters, and the
    ``recent_metrics`` (custom metric data, newest first) out of ``total_metrics``."""
    counters = ", ".join(
        f"{escape(str(name))}: {escape(str(value))}"
        for name, value in stats.items()
        if not isinstance(value, dict)
    )
    responses = ", ".join(
        f"{escape(str(code))}: {escape(str(count))}"
        for code, count in sorted(stats.get("responses", {}).items())
    )
    events = _table(_HEADINGS, "\n".join(_row(stored) for stored in recent), "No events stored yet.")
    metrics = _table(
        _METRIC_HEADINGS, "\n".join(_metric_row(m) for m in recent_metrics), "No metric data stored yet."
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5">'
        "<title>Cloud Eye emulator</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        "<h1>Cloud Eye emulator</h1>\n"
        f"<p>Showing {len(recent)} of {total} stored event(s), newest first. "
        "Raw JSON: <code>GET /_emulator/events</code>; counters: <code>GET /_emulator/stats</code>.</p>\n"
        f"<p>Counters: {counters}</p>\n"
        f"<p>Responses by status: {responses or 'none yet'}</p>\n"
        f"{events}"
        f"<h2>Custom metric data</h2>\n<p>Showing {len(recent_metrics)} of {total_metrics} item(s), "
        "newest first. Raw JSON: <code>GET /_emulator/metrics</code>.</p>\n"
        f"{metrics}"
        "</body></html>\n"
    )
