"""functions-framework entry points: ``ingest`` (HTTP) and ``ingest_pubsub`` (CloudEvent).

    functions-framework --source function/main.py --target ingest
    functions-framework --source function/main.py --target ingest_pubsub

``ingest`` gives the same answers as ``index.handler``'s API Gateway trigger, within
``FORWARDER_HTTP_DEADLINE_S``. ``ingest_pubsub`` takes a Pub/Sub push (the token as a bearer
header or ``?token=``) and raises when events could not be delivered, so the push is retried.
Nothing is read from a body before its caller is known and its size is within the cap.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

# functions-framework adds this directory to sys.path; other loaders (a WSGI server importing
# the file by path) may not, and `forwarder` lives next to this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

import functions_framework  # noqa: E402

from forwarder import entry, framework, http_ingest, logs, triggers  # noqa: E402
from forwarder.settings import Settings  # noqa: E402
from forwarder.triggers import Trigger  # noqa: E402


@functions_framework.http
def ingest(request: Any) -> Any:
    """HTTP ingest: JSON array, one event, {"events": [...]} or NDJSON -> per-event answer."""
    headers = http_ingest.normalise_headers(dict(request.headers))
    invocation = entry.begin(Trigger.HTTP, logs.request_id(None, headers))
    answer = entry.answer_http(
        framework.http_request(request, headers),
        invocation,
        settings_factory=lambda: Settings.from_env(headers=headers),
        deadline_for=lambda settings: entry.http_deadline(settings.http_deadline_s),
    )
    return framework.response(answer)


@functions_framework.cloud_event
def ingest_pubsub(cloud_event: Any) -> None:
    """Pub/Sub push (a CloudEvent whose data is ``{"message": {"data": base64}}``)."""
    data, event_id = framework.push_message(cloud_event)
    invocation = entry.begin(Trigger.PUBSUB, logs.request_id(None, {"x-request-id": event_id}))
    entry.run_batch(
        invocation,
        functools.partial(triggers.pubsub_candidates, data),
        settings_factory=Settings.from_env,
        deadline_for=lambda settings: entry.http_deadline(settings.http_deadline_s),
    )


framework.guard_push_entry(ingest_pubsub.__name__, Trigger.PUBSUB)  # the framework reads push bodies first
