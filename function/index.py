"""FunctionGraph entry point: ``index.handler`` for API Gateway and every queue trigger.

API Gateway gets an HTTP answer ``{statusCode, headers, body, isBase64Encoded}``; queue triggers
get their events sent, rejects logged one by one, and an exception when valid events could not be
delivered after retries (the platform then redelivers the batch). Importing this module loads
the standard library only: pydantic waits until there are events to validate.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from forwarder import collector, http_ingest, logs, metrics, queue_ingest, triggers
from forwarder.settings import Settings, SettingsError

# Stop starting new Cloud Eye attempts this long before the platform's timeout, so the answer
# (or the exception that triggers redelivery) still gets out.
SAFETY_MARGIN_S = 2.0
SAFETY_MARGIN_SHARE = 0.2


def deadline_from(context: Any) -> float | None:
    """A ``time.monotonic()`` deadline from ``context.getRemainingTimeInMilliSeconds()``, if any."""
    getter = getattr(context, "getRemainingTimeInMilliSeconds", None)
    if getter is None:
        return None
    try:
        remaining = float(getter()) / 1000.0
    except Exception:  # a context without a usable clock: rely on the attempt limit alone
        return None
    if remaining != remaining or remaining == float("inf"):
        return None
    margin = min(SAFETY_MARGIN_S, max(0.0, remaining) * SAFETY_MARGIN_SHARE)
    return time.monotonic() + max(0.0, remaining - margin)


def handler(event: Any, context: Any = None) -> Any:
    """Detect the trigger from the payload and answer it in its own convention."""
    collector.freeze_when_warm()  # a warm instance: keep long-lived objects out of GC walks
    trigger = triggers.detect(event)
    if trigger == triggers.APIG:
        return _apig(event, context)
    return _batch(event, context, trigger)


def _apig(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = triggers.apig_request(event)
    invocation = logs.Invocation(triggers.APIG, logs.request_id(context, request.headers))
    try:
        answer = http_ingest.serve(
            request,
            # Not the request headers: behind API Gateway they come from the caller, not the platform.
            settings_factory=lambda: Settings.from_env(context=context),
            invocation=invocation,
            deadline=deadline_from(context),
        )
    except Exception as exc:  # a bug, not bad input: answer 500 without details, log the type
        logs.log_line(
            logging.ERROR, "internal error", request_id=invocation.request_id, error=type(exc).__name__
        )
        return {
            "statusCode": 500,
            "headers": {"Content-Type": "application/json", "X-Request-Id": invocation.request_id},
            "body": '{"error":"internal error"}',
            "isBase64Encoded": False,
        }
    metrics.publish(invocation, lambda: Settings.from_env(context=context), deadline=deadline_from(context))
    return {
        "statusCode": answer.status,
        "headers": answer.headers,
        "body": answer.body_text(),
        "isBase64Encoded": False,
    }


def _batch(event: Any, context: Any, trigger: str) -> dict[str, Any]:
    invocation = logs.Invocation(trigger, logs.request_id(context))
    candidates = triggers.queue_candidates(event, trigger)
    try:
        settings = Settings.from_env(context=context)
        report = queue_ingest.process(
            candidates, settings=settings, invocation=invocation, deadline=deadline_from(context)
        )
    except SettingsError as exc:
        logs.log_line(
            logging.ERROR,
            "configuration error",
            request_id=invocation.request_id,
            trigger=trigger,
            error=str(exc),
        )
        raise
    finally:  # after the summary line, also when the batch failed (DeliveryError)
        deadline = deadline_from(context)
        metrics.publish(invocation, lambda: Settings.from_env(context=context), deadline=deadline)
    if trigger == triggers.DIRECT:
        return report.to_dict()
    return {"trigger": trigger, **report.counts()}
