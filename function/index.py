"""FunctionGraph entry point: ``index.handler`` for API Gateway and every queue trigger.

API Gateway gets an HTTP answer ``{statusCode, headers, body, isBase64Encoded}`` within
``FORWARDER_HTTP_DEADLINE_S`` and the platform's remaining time; queue triggers get their events
sent, rejects logged, and an exception when valid events could not be delivered after retries
(the platform then redelivers the batch). Importing this module loads the standard library only:
pydantic waits until there are events to validate.
"""

from __future__ import annotations

import functools
from typing import Any

from forwarder import entry, http_ingest, logs, triggers
from forwarder.entry import SAFETY_MARGIN_S, SAFETY_MARGIN_SHARE  # noqa: F401 - part of this API
from forwarder.entry import queue_deadline as deadline_from  # noqa: F401 - part of this API
from forwarder.settings import Settings
from forwarder.triggers import Trigger


def handler(event: Any, context: Any = None) -> Any:
    """Detect the trigger from the payload and answer it in its own convention."""
    trigger = triggers.detect(event)
    if trigger is Trigger.APIG:
        return _apig(event, context)
    invocation = entry.begin(trigger, logs.request_id(context))
    report = entry.run_batch(
        invocation,
        functools.partial(triggers.queue_candidates, event, trigger),
        settings_factory=lambda: Settings.from_env(context=context),
        deadline_for=lambda _settings: entry.queue_deadline(context),
    )
    if trigger is Trigger.DIRECT:
        return report.to_dict()
    return {"trigger": trigger.value, **report.counts()}


def _apig(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = logs.request_id(context, http_ingest.normalise_headers(event.get("headers")))
    request = triggers.apig_request(event, request_id=request_id)
    invocation = entry.begin(Trigger.APIG, request_id)
    answer = entry.answer_http(
        request,
        invocation,
        # Not the request headers: behind API Gateway they come from the caller, not the platform.
        settings_factory=lambda: Settings.from_env(context=context),
        deadline_for=lambda settings: entry.http_deadline(settings.http_deadline_s, context),
    )
    return {
        "statusCode": answer.status,
        "headers": answer.headers,
        "body": answer.body_text(),
        "isBase64Encoded": False,
    }
