"""functions-framework entry points: ``ingest`` (HTTP) and ``ingest_pubsub`` (CloudEvent).

    functions-framework --source function/main.py --target ingest
    functions-framework --source function/main.py --target ingest_pubsub

``ingest`` accepts the same bodies and gives the same answers as the API Gateway trigger of
``index.handler`` (both use ``forwarder.http_ingest``); FunctionGraph HTTP functions pass agency
credentials in ``X-CFF-Security-*`` headers, which are used when the environment has none.
``ingest_pubsub`` takes a Pub/Sub push message and raises when events could not be delivered,
so the push is retried.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

# functions-framework adds this directory to sys.path; other loaders (a WSGI server importing
# the file by path) may not, and `forwarder` lives next to this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

import functions_framework  # noqa: E402

from forwarder import collector, http_ingest, logs, metrics, queue_ingest, triggers  # noqa: E402
from forwarder.settings import Settings, SettingsError  # noqa: E402

READ_CHUNK_BYTES = 65536


def _reader(stream: Any) -> Any:
    def read(limit: int) -> bytes:
        # Read until the end or past `limit`, whichever comes first; never the whole of a huge body.
        parts, size = [], 0
        while size < limit:
            chunk = stream.read(min(READ_CHUNK_BYTES, limit - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    return read


@functions_framework.http
def ingest(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """HTTP ingest: JSON array, one event, {"events": [...]} or NDJSON -> per-event answer."""
    collector.freeze_when_warm()  # a warm instance: keep long-lived objects out of GC walks
    headers = http_ingest.normalise_headers(dict(request.headers))
    invocation = logs.Invocation("http", logs.request_id(None, headers))
    try:
        http_request = http_ingest.HttpRequest(
            method=request.method.upper(),
            headers=headers,
            query={name: request.args.get(name, "") for name in request.args},
            content_length=request.content_length,
            read_body=_reader(request.stream),
        )
        answer = http_ingest.serve(
            http_request,
            settings_factory=lambda: Settings.from_env(headers=headers),
            invocation=invocation,
        )
    except Exception as exc:  # a bug, not bad input: answer 500 without details, log the type
        logs.log_line(
            logging.ERROR, "internal error", request_id=invocation.request_id, error=type(exc).__name__
        )
        return b'{"error":"internal error"}', 500, {"Content-Type": "application/json"}
    metrics.publish(invocation, lambda: Settings.from_env(headers=headers))
    return answer.body_text().encode("utf-8"), answer.status, answer.headers


@functions_framework.cloud_event
def ingest_pubsub(cloud_event: Any) -> None:
    """Pub/Sub push (a CloudEvent whose data is ``{"message": {"data": base64}}``)."""
    collector.freeze_when_warm()
    data = cloud_event.data
    if isinstance(data, bytes | str):
        parsed, problem = triggers.parse_json_text(data)
        data = parsed if problem is None else data
    try:
        event_id = cloud_event["id"]
    except KeyError:
        event_id = None
    invocation = logs.Invocation(triggers.PUBSUB, logs.request_id(None, {"x-request-id": str(event_id)}))
    candidates = triggers.pubsub_candidates(data)
    try:
        settings = Settings.from_env()
        queue_ingest.process(candidates, settings=settings, invocation=invocation)
    except SettingsError as exc:
        logs.log_line(
            logging.ERROR,
            "configuration error",
            request_id=invocation.request_id,
            trigger=triggers.PUBSUB,
            error=str(exc),
        )
        raise
    finally:  # after the summary line, also when the batch failed (DeliveryError)
        metrics.publish(invocation, Settings.from_env)
