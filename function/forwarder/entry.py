"""What every entry point does around the pipeline it starts, in one place.

``index.handler`` (FunctionGraph: API Gateway and the queue triggers) and ``main.py``
(functions-framework) stay thin: they turn their platform's request into the forwarder's and call
:func:`answer_http` or :func:`run_batch`. Here live the parts they share: log handler setup, the
warm-instance GC freeze, reading FunctionGraph's context (:class:`PlatformContext` through one
safe getter), the deadlines, configuration-error logging and the internal-error answer.
Standard library only at import.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from . import collector, logs

if TYPE_CHECKING:
    from .http_ingest import HttpAnswer, HttpRequest
    from .report import Report
    from .settings import Settings

# Stop starting new Cloud Eye attempts this long before the platform's timeout, so the answer
# (or the exception that triggers redelivery) still gets out: 2 s, or a fifth of a short budget.
SAFETY_MARGIN_S = 2.0
SAFETY_MARGIN_SHARE = 0.2


class PlatformContext(Protocol):
    """The parts of FunctionGraph's ``context`` the forwarder reads (any of them may be missing)."""

    def getRequestID(self) -> str: ...
    def getRemainingTimeInMilliSeconds(self) -> float: ...
    def getSecurityAccessKey(self) -> str: ...
    def getSecuritySecretKey(self) -> str: ...
    def getSecurityToken(self) -> str: ...
    def getToken(self) -> str: ...
    def getFunctionName(self) -> str: ...


def context_value(context: PlatformContext | object | None, method: str) -> Any:
    """``context.method()``, or ``None`` when the context lacks it or it fails: a broken context
    must not break the invocation."""
    getter = getattr(context, method, None) if context is not None else None
    if not callable(getter):
        return None
    try:
        return getter()
    except Exception:
        return None


def context_text(context: PlatformContext | object | None, method: str) -> str | None:
    """A text value of the context, stripped; ``None`` when absent or empty."""
    value = context_value(context, method)
    if isinstance(value, str):
        value = value.strip()
    return value or None


def remaining_s(context: PlatformContext | object | None) -> float | None:
    """Seconds left before the platform's timeout, if the context says."""
    value = context_value(context, "getRemainingTimeInMilliSeconds")
    try:
        seconds = float(value) / 1000.0
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None


def queue_deadline(context: PlatformContext | object | None) -> float | None:
    """A ``time.monotonic()`` deadline: the platform's remaining time less the safety margin."""
    left = remaining_s(context)
    if left is None:
        return None
    left = max(0.0, left)
    return time.monotonic() + left - min(SAFETY_MARGIN_S, left * SAFETY_MARGIN_SHARE)


def http_deadline(limit_s: float, context: PlatformContext | object | None = None) -> float:
    """An HTTP answer's deadline: ``FORWARDER_HTTP_DEADLINE_S`` from now, sooner if the platform's
    remaining time (less the margin) ends first."""
    deadline = time.monotonic() + limit_s
    platform = queue_deadline(context)
    return deadline if platform is None else min(deadline, platform)


def setup_logging() -> None:
    """Log lines go to stdout (FunctionGraph collects it) at INFO, unless the host set logging up."""
    logger = logging.getLogger(logs.LOGGER_NAME)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def begin(trigger: str, request_id: str) -> logs.Invocation:
    """Start an invocation: logging ready, a warm instance's long-lived objects frozen."""
    setup_logging()
    collector.freeze_when_warm()
    return logs.Invocation(str(trigger), request_id)  # a Trigger's str() is its name


def configuration_error(invocation: logs.Invocation, exc: Exception) -> None:
    """The one log line of a configuration error (the message names the variable)."""
    invocation.log(logging.ERROR, "configuration error", error=str(exc))


def internal_error(invocation: logs.Invocation, exc: BaseException) -> HttpAnswer:
    """The answer to a bug, not to bad input: 500, zero counts, the request id; the log line
    names the exception's type only (its text might quote the input)."""
    from .http_ingest import JSON_CONTENT_TYPE, HttpAnswer, empty_body

    logs.log_line(logging.ERROR, "internal error", request_id=invocation.request_id, error=type(exc).__name__)
    headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Request-Id": invocation.request_id}
    return HttpAnswer(500, empty_body("internal error"), headers)


def answer_http(
    request: HttpRequest,
    invocation: logs.Invocation,
    *,
    settings_factory: Callable[[], Settings],
    deadline_for: Callable[[Settings], float | None],
) -> HttpAnswer:
    """Serve one HTTP ingest request; whatever happens, an answer with the request id. The
    invocation's own metrics follow the answer, within the same deadline."""
    from .http_ingest import serve

    deadlines: list[float | None] = []

    def deadline_once(settings: Settings) -> float | None:
        deadlines.append(deadline_for(settings))
        return deadlines[-1]

    try:
        answer = serve(
            request, settings_factory=settings_factory, invocation=invocation, deadline_for=deadline_once
        )
    except Exception as exc:
        return internal_error(invocation, exc)
    _publish_metrics(invocation, settings_factory, deadlines[0] if deadlines else None)
    return answer


def run_batch(
    invocation: logs.Invocation,
    extract: Callable[..., list[Any]],
    *,
    settings_factory: Callable[[], Settings],
    deadline_for: Callable[[Settings], float | None],
) -> Report:
    """A queue batch: settings, the batch's items (``extract(max_items=...)``), then send and log;
    a configuration error is logged once and raised. The invocation's own metrics follow, also
    when the batch raises for redelivery."""
    from .http_ingest import refuse_too_wide
    from .queue_ingest import process

    deadline = None
    try:
        settings = settings_factory()
        candidates = list(refuse_too_wide(extract(max_items=settings.max_items)))
        deadline = deadline_for(settings)
        return process(candidates, settings=settings, invocation=invocation, deadline=deadline)
    except Exception as exc:
        from .errors import SettingsError

        if isinstance(exc, SettingsError):
            configuration_error(invocation, exc)
        raise
    finally:
        _publish_metrics(invocation, settings_factory, deadline)


def _publish_metrics(
    invocation: logs.Invocation, settings_factory: Callable[[], Settings], deadline: float | None
) -> None:
    from .metrics import publish  # best effort, never raises; off unless a namespace is set

    publish(invocation, settings_factory, deadline=deadline)
