"""Structured JSON log lines (logger ``forwarder``): one summary per invocation, one per reject.

Lines carry counts, positions and reasons. Only a rejected queue item's own text is ever logged
(cut at ``RAW_LIMIT_BYTES``) so an operator can recover it; secrets never are.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

LOGGER_NAME = "forwarder"
RAW_LIMIT_BYTES = 8192
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

logger = logging.getLogger(LOGGER_NAME)


def _ensure_handler() -> None:
    # FunctionGraph collects stdout; with no handler anywhere Python would print only warnings.
    if logger.handlers or logging.getLogger().handlers:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def log_line(level: int, message: str, **fields: Any) -> None:
    """Write one JSON object as the whole log message."""
    _ensure_handler()
    if not logger.isEnabledFor(level):
        return
    record = {"level": logging.getLevelName(level), "logger": LOGGER_NAME, "message": message, **fields}
    text = json.dumps(record, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the input: a UTF-8 stream would drop the line
        text = json.dumps(record, default=str)
    logger.log(level, text)


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
    getter = getattr(context, "getRequestID", None) if context is not None else None
    if getter is not None:
        try:
            value = getter()
        except Exception:  # a broken context must not break the invocation
            value = None
        if isinstance(value, str) and _REQUEST_ID_PATTERN.match(value):
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

    def reject(self, position: Mapping[str, Any], reason: str, raw: Any, **extra: Any) -> None:
        log_line(
            logging.WARNING,
            "rejected",
            request_id=self.request_id,
            trigger=self.trigger,
            position=dict(position),
            reason=reason,
            **extra,
            **cut_raw(raw),
        )

    def summary(self, counts: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
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
