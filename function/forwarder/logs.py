"""Structured JSON log lines (logger ``forwarder``): one summary per invocation, one per reject.

Lines carry counts, positions and reasons. Only a rejected queue item's own text is ever logged
(cut at ``RAW_LIMIT_BYTES``) so an operator can recover it; secrets never are.

Reject lines are whole up to a budget per invocation (``REJECT_LOG_LINES`` lines or
``REJECT_LOG_BYTES`` bytes, whichever comes first), so one hostile message cannot flood the logs;
the rejects past it are counted by reason in one ``rejects not logged`` line. The library installs
no handler: the entry points do (``forwarder.entry.setup_logging``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

LOGGER_NAME = "forwarder"
RAW_LIMIT_BYTES = 8192
# Enough for a normal batch's rejects to stay whole, even with their raw text.
REJECT_LOG_LINES = 1000
REJECT_LOG_BYTES = 4 * 1024 * 1024
# The summary of unlogged rejects names at most this many reasons (each cut short).
MAX_SUMMARY_REASONS = 20
MAX_SUMMARY_REASON_CHARS = 200
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

logger = logging.getLogger(LOGGER_NAME)


def log_line(level: int, message: str, **fields: Any) -> int:
    """Write one JSON object as the whole log message; returns its size in characters."""
    if not logger.isEnabledFor(level):
        return 0
    record = {"level": logging.getLevelName(level), "logger": LOGGER_NAME, "message": message, **fields}
    text = json.dumps(record, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the input: a UTF-8 stream would drop the line
        text = json.dumps(record, default=str)
    logger.log(level, text)
    return len(text)


def cut_raw(raw: Any) -> dict[str, Any]:
    """The item as text, at most ``RAW_LIMIT_BYTES`` of UTF-8, with its full size."""
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw).decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        try:
            text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, TypeError, RecursionError):
            text = f"<{type(raw).__name__} that cannot be shown as JSON>"
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= RAW_LIMIT_BYTES:
        return {"raw": text, "raw_bytes": len(encoded), "raw_truncated": False}
    return {
        "raw": encoded[:RAW_LIMIT_BYTES].decode("utf-8", "ignore"),
        "raw_bytes": len(encoded),
        "raw_truncated": True,
    }


def request_id(context: Any = None, headers: Mapping[str, str] | None = None) -> str:
    """FunctionGraph's request id, else ``X-Request-Id`` / ``X-CFF-Request-Id``, else a new one."""
    from .entry import context_text  # the one safe way to read the platform's context

    value = context_text(context, "getRequestID")
    if value is not None and _REQUEST_ID_PATTERN.match(value):
        return value
    for name in ("x-request-id", "x-cff-request-id", "x-apig-request-id"):
        value = (headers or {}).get(name)
        if isinstance(value, str) and _REQUEST_ID_PATTERN.match(value.strip()):
            return value.strip()
    return uuid.uuid4().hex


class Invocation:
    """Times one invocation and writes its summary line."""

    def __init__(self, trigger: str, request_id: str) -> None:
        self.trigger = trigger
        self.request_id = request_id
        self.started = time.monotonic()
        self.figures: dict[str, Any] | None = None  # the summary line's fields, once written
        self.reject_lines = 0
        self.reject_bytes = 0
        self.unlogged: dict[str, int] = {}

    def log(self, level: int, message: str, **fields: Any) -> int:
        """One line of this invocation, named by its request id and trigger (see ``log_line``)."""
        return log_line(level, message, request_id=self.request_id, trigger=self.trigger, **fields)

    def reject(self, position: Mapping[str, Any], reason: str, raw: Any, **extra: Any) -> None:
        """One whole line per reject while within the budget; past it, only counted by reason."""
        if self.reject_lines >= REJECT_LOG_LINES or self.reject_bytes >= REJECT_LOG_BYTES:
            self._count_unlogged(reason)
            return
        self.reject_lines += 1
        self.reject_bytes += self.log(
            logging.WARNING,
            "rejected",
            position=dict(position),
            reason=reason,
            **extra,
            **cut_raw(raw),
        )

    def _count_unlogged(self, reason: str) -> None:
        key = str(reason)[:MAX_SUMMARY_REASON_CHARS]
        if key not in self.unlogged and len(self.unlogged) >= MAX_SUMMARY_REASONS:
            key = "(other reasons)"
        self.unlogged[key] = self.unlogged.get(key, 0) + 1

    def summary(self, counts: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        if self.unlogged:
            self.log(
                logging.WARNING,
                "rejects not logged",
                logged=self.reject_lines,
                not_logged=sum(self.unlogged.values()),
                by_reason=self.unlogged,
                budget={"lines": REJECT_LOG_LINES, "bytes": REJECT_LOG_BYTES},
            )
            self.unlogged = {}
        fields = {
            "request_id": self.request_id,
            "trigger": self.trigger,
            "received": 0,
            "accepted": 0,
            "rejected": 0,
            "failed": 0,
            "requests": 0,
            "retries": 0,
            **counts,
            "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            **extra,
        }
        log_line(logging.INFO, "invocation", **fields)
        self.figures = fields
        return fields
