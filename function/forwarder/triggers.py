"""Trigger payloads -> raw items: which trigger sent an event, and what it carries.

FunctionGraph hands every trigger's payload to the same ``handler(event, context)``; the shape
tells them apart. Queue triggers carry *messages*; each message holds one event object or an
array of events as JSON (base64 for DIS and Pub/Sub). Every item keeps its position (topic,
record, message, event index) so a rejected one can be found again from the log line.
Standard library only: importing this module is cheap.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .http_ingest import HttpRequest, normalise_headers, normalise_query
from .intake import Candidate, Unreadable

APIG = "apig"
KAFKA = "kafka"
ROCKETMQ = "rocketmq"
RABBITMQ = "rabbitmq"
SMN = "smn"
DIS = "dis"
PUBSUB = "pubsub"
DIRECT = "direct"
UNKNOWN = "unknown"

QUEUE_TRIGGERS = frozenset({KAFKA, ROCKETMQ, RABBITMQ, SMN, DIS, PUBSUB})
# FunctionGraph's trigger_type values for the records[].messages[] shape.
_TRIGGER_TYPES = {
    "KAFKA": KAFKA,
    "DMS_KAFKA": KAFKA,
    "OPENSOURCEKAFKA": KAFKA,
    "ROCKETMQ": ROCKETMQ,
    "DMS_ROCKETMQ": ROCKETMQ,
    "RABBITMQ": RABBITMQ,
    "DMS_RABBITMQ": RABBITMQ,
}
MAX_LABEL_CHARS = 256
_SHAPES = (
    "an API Gateway request, a Kafka/RocketMQ/RabbitMQ batch (records[].messages[]), an SMN "
    "notification (record[].smn.message), a DIS batch (Message.records[].data), a Pub/Sub push "
    'message ({"message": {"data": ...}}), or events ([...], {"events": [...]}, one event)'
)


def detect(event: Any) -> str:
    """The trigger that produced ``event``: one of the module's trigger names."""
    if isinstance(event, list):
        return DIRECT
    if not isinstance(event, dict):
        return UNKNOWN
    if "httpMethod" in event or "isBase64Encoded" in event or "requestContext" in event:
        return APIG
    if "body" in event and "headers" in event:
        return APIG
    if isinstance(event.get("records"), list) or isinstance(event.get("messages"), list):
        kind = event.get("trigger_type")
        return _TRIGGER_TYPES.get(kind.upper(), KAFKA) if isinstance(kind, str) else KAFKA
    if isinstance(event.get("record"), list):
        return SMN
    message = event.get("Message")
    if isinstance(message, dict) and isinstance(message.get("records"), list):
        return DIS
    if isinstance(event.get("message"), dict):
        return PUBSUB
    if isinstance(event.get("events"), list) or "event_name" in event:
        return DIRECT
    return UNKNOWN


# --- API Gateway -------------------------------------------------------------------------------


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def apig_request(event: Mapping[str, Any]) -> HttpRequest:
    """The HTTP request inside an API Gateway (shared or dedicated) event."""
    method = event.get("httpMethod")
    headers = normalise_headers(event.get("headers"))
    query = normalise_query(event.get("queryStringParameters"))
    raw = event.get("body")
    body: bytes | str
    body_error = None
    if raw is None:
        body = b""
    elif isinstance(raw, str):
        if _flag(event.get("isBase64Encoded")):
            decoded = _b64decode(raw)
            body = decoded if decoded is not None else b""
            if decoded is None:
                body_error = "the body is marked isBase64Encoded but is not valid base64"
        else:
            body = raw  # the text itself: http_ingest reads it as UTF-8 without copying it
    else:  # a test console may pass the JSON itself instead of its text
        try:
            body = json.dumps(raw).encode("utf-8")
        except (TypeError, ValueError, RecursionError):
            body, body_error = b"", "the body is neither text nor JSON"
    return HttpRequest(
        method=method.upper() if isinstance(method, str) and method else "POST",
        headers=headers,
        query=query,
        body=body,
        body_error=body_error,
    )


# --- queue messages ----------------------------------------------------------------------------


def _label(value: Any) -> Any:
    """A position value from the payload, safe to log (short text or a number)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    return str(value)[:MAX_LABEL_CHARS]


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def parse_json_text(text: str | bytes) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, reason)`` for text that should hold one JSON value."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, f"is not UTF-8 text (bad byte at offset {exc.start})"
    if not text.strip():
        return None, "is empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        return None, "is not usable JSON: nested too deeply"
    except ValueError as exc:  # e.g. an integer literal longer than Python allows
        return None, f"is not usable JSON: {exc}"


def message_candidates(
    payload: Any, position: dict[str, Any], *, base64_data: bool = False, unwrap_body: bool = False
) -> list[Candidate]:
    """One queue message -> its events (each tagged with ``event`` index when it held an array)."""
    raw = payload
    if base64_data:
        if not isinstance(payload, str):
            reason = f"data is a JSON {_json_kind(payload)}, not base64 text"
            return [Candidate(Unreadable(reason, raw), position)]
        decoded = _b64decode(payload)
        if decoded is None:
            return [Candidate(Unreadable("data is not valid base64", raw), position)]
        payload = decoded
    if isinstance(payload, str | bytes):
        value, problem = parse_json_text(payload)
        if problem:
            what = "decoded data" if base64_data else "message"
            return [Candidate(Unreadable(f"the {what} {problem}", raw), position)]
    else:
        value = payload  # already parsed by the platform
    if unwrap_body and isinstance(value, dict) and "event_name" not in value and "body" in value:
        # An AMQP-style envelope: the event JSON is its body.
        return message_candidates(value["body"], position)
    if isinstance(value, dict) and isinstance(value.get("events"), list) and "event_name" not in value:
        value = value["events"]
    if isinstance(value, dict):
        return [Candidate(value, position)]
    if isinstance(value, list):
        if not value:
            return [Candidate(Unreadable("the message holds an empty array: no events", raw), position)]
        return [Candidate(item, {**position, "event": index}) for index, item in enumerate(value)]
    reason = f"the message holds a JSON {_json_kind(value)}, not an event object or an array of events"
    return [Candidate(Unreadable(reason, raw), position)]


def _mq_messages(event: Mapping[str, Any]) -> Iterator[tuple[Any, dict[str, Any]] | Candidate]:
    records = event.get("records")
    if isinstance(records, list):
        for record_index, record in enumerate(records):
            where = {"record": record_index}
            if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
                yield Candidate(Unreadable("the record has no messages array", record), where)
                continue
            where = {"topic": _label(record.get("topic_id")), **where}
            for index, message in enumerate(record["messages"]):
                yield message, {**where, "message": index}
    flat = event.get("messages")
    if isinstance(flat, list):
        for index, message in enumerate(flat):
            yield message, {"topic": _label(event.get("topic_id")), "message": index}


def _smn_messages(event: Mapping[str, Any]) -> Iterator[tuple[Any, dict[str, Any]] | Candidate]:
    for index, record in enumerate(event.get("record") or ()):
        smn = record.get("smn") if isinstance(record, dict) else None
        if not isinstance(smn, dict) or "message" not in smn:
            yield Candidate(Unreadable("the record has no smn.message", record), {"record": index})
            continue
        where = {
            "topic": _label(smn.get("topic_urn")),
            "record": index,
            "message_id": _label(smn.get("message_id")),
        }
        yield smn["message"], where


def _dis_messages(event: Mapping[str, Any]) -> Iterator[tuple[Any, dict[str, Any]] | Candidate]:
    stream = {"stream": _label(event.get("StreamName")), "shard": _label(event.get("ShardID"))}
    for index, record in enumerate(event["Message"]["records"]):
        if not isinstance(record, dict) or "data" not in record:
            yield Candidate(Unreadable("the record has no data", record), {**stream, "record": index})
            continue
        where = {**stream, "record": index, "sequence_number": _label(record.get("sequence_number"))}
        yield record["data"], where


def pubsub_candidates(envelope: Any) -> list[Candidate]:
    """A Pub/Sub push body ``{"message": {"data": base64, ...}, "subscription": ...}``."""
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        return [Candidate(Unreadable("not a Pub/Sub push message: no message object", envelope), {})]
    where = {
        "subscription": _label(envelope.get("subscription")),
        "message_id": _label(message.get("messageId", message.get("message_id"))),
    }
    if "data" not in message:
        return [Candidate(Unreadable("the Pub/Sub message has no data", envelope), where)]
    return message_candidates(message["data"], where, base64_data=True)


def queue_candidates(event: Any, trigger: str) -> list[Candidate]:
    """Every item of a queue batch (or a direct invocation), unreadable messages included."""
    if trigger == PUBSUB:
        return pubsub_candidates(event)
    if trigger == DIRECT:
        if isinstance(event, dict) and ("event_name" in event or not isinstance(event.get("events"), list)):
            return [Candidate(event, {})]
        items = event if isinstance(event, list) else event["events"]
        if not items:
            return [Candidate(Unreadable("the payload holds an empty array: no events", event), {})]
        return [Candidate(item, {"event": index}) for index, item in enumerate(items)]
    if trigger in (KAFKA, ROCKETMQ, RABBITMQ):
        messages, options = _mq_messages(event), {"unwrap_body": trigger == RABBITMQ}
    elif trigger == SMN:
        messages, options = _smn_messages(event), {}
    elif trigger == DIS:
        messages, options = _dis_messages(event), {"base64_data": True}
    else:
        return [Candidate(Unreadable(f"unrecognised payload: expected {_SHAPES}", event), {})]
    candidates: list[Candidate] = []
    for message in messages:
        if isinstance(message, Candidate):
            candidates.append(message)
        else:
            payload, where = message
            candidates.extend(message_candidates(payload, where, **options))
    return candidates
