"""Trigger payloads -> raw items: which trigger sent an event, and what it carries.

FunctionGraph hands every trigger's payload to the same ``handler(event, context)``; the shape
tells them apart. One table, ``SPECS``, says for every trigger how its payload is recognised,
where its messages are, whether their data is base64 and how a message is unwrapped; detection
and extraction both read it, so they cannot disagree. Each message holds one event object, an
array of events or ``{"events": [...]}`` as JSON. Every item keeps its position (topic, record,
message, event index) so a rejected one can be found again from the log line. Payloads of
triggers the forwarder does not take (DDS, OBS, LTS, CTS, anything unknown) become one rejection
that names the trigger and the ones it takes. Standard library only: importing this is cheap.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NamedTuple

from . import jsontext, logs
from .http_ingest import HttpRequest, normalise_headers, normalise_query
from .intake import Candidate, Unreadable

MAX_LABEL_CHARS = 256
DEFAULT_MAX_ITEMS = 10_000
# Top-level field names quoted when a payload is not recognised (names only, never values).
MAX_NAMED_FIELDS = 8


class Trigger(str, Enum):
    """What invoked the function; the value is what log lines and metric dimensions carry."""

    APIG = "apig"
    HTTP = "http"  # the functions-framework HTTP entry (main.ingest), never detected from a payload
    KAFKA = "kafka"
    ROCKETMQ = "rocketmq"
    RABBITMQ = "rabbitmq"
    SMN = "smn"
    DIS = "dis"
    PUBSUB = "pubsub"
    TIMER = "timer"
    DIRECT = "direct"
    # Recognised so they can be named, but not taken: their payloads hold no events of ours.
    DDS = "dds"
    OBS = "obs"
    LTS = "lts"
    CTS = "cts"
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # "kafka", not "Trigger.KAFKA", in f-strings and logs
        return self.value


Position = dict[str, Any]
# What a trigger's message reader yields: a message with its position, or a piece already rejected.
Piece = tuple[Any, Position] | Candidate
Messages = Callable[[Mapping[str, Any]], Iterator[Piece]]


class TriggerSpec(NamedTuple):
    """How one trigger's payload looks and where its events are."""

    trigger: Trigger
    name: str  # as a user knows it
    shape: str  # where the events are, in the payload's own field names
    recognise: Callable[[Mapping[str, Any]], bool]
    messages: Messages | None = None  # None: not a batch of messages (API Gateway) or not taken
    supported: bool = True
    base64: bool = False  # message data is base64 text of the JSON
    unwrap_body: bool = False  # a message may be an envelope whose "body" holds the JSON
    noun: str = "message"  # what one message is called in a rejection's reason


# --- small readers ---------------------------------------------------------------------------


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


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def _list(event: Mapping[str, Any], key: str) -> list[Any] | None:
    value = event.get(key)
    return value if isinstance(value, list) else None


def _trigger_type(event: Mapping[str, Any]) -> str | None:
    kind = event.get("trigger_type")
    return kind.strip().upper() if isinstance(kind, str) else None


# --- recognising a payload -------------------------------------------------------------------

# FunctionGraph's trigger_type values for the records[].messages[] shape.
_MQ_TRIGGER_TYPES = {
    "KAFKA": Trigger.KAFKA,
    "DMS_KAFKA": Trigger.KAFKA,
    "OPENSOURCEKAFKA": Trigger.KAFKA,
    "ROCKETMQ": Trigger.ROCKETMQ,
    "DMS_ROCKETMQ": Trigger.ROCKETMQ,
    "RABBITMQ": Trigger.RABBITMQ,
    "DMS_RABBITMQ": Trigger.RABBITMQ,
}


def _is_apig(event: Mapping[str, Any]) -> bool:
    if "httpMethod" in event or "isBase64Encoded" in event or "requestContext" in event:
        return True
    return "body" in event and "headers" in event


def _is_timer(event: Mapping[str, Any]) -> bool:
    return _trigger_type(event) == "TIMER" or ("trigger_name" in event and "user_event" in event)


def _is_dds(event: Mapping[str, Any]) -> bool:
    records = _list(event, "records") or ()
    return any(
        isinstance(record, dict) and (record.get("event_source") == "dds" or "dds" in record)
        for record in records
    )


def _mq_kind(event: Mapping[str, Any]) -> Trigger | None:
    """The message-queue trigger of a records[].messages[] (or flat messages[]) payload."""
    records = _list(event, "records")
    if records is None and _list(event, "messages") is None:
        return None
    if "trigger_type" not in event:
        # The shape alone (DMS for Kafka payloads without a trigger_type): every record must carry
        # messages, or another service's records[] would be read as Kafka.
        has_messages = all(isinstance(r, dict) and isinstance(r.get("messages"), list) for r in records or ())
        return Trigger.KAFKA if has_messages else None
    kind = _trigger_type(event)
    return _MQ_TRIGGER_TYPES.get(kind) if kind else None


def _is_dis(event: Mapping[str, Any]) -> bool:
    message = event.get("Message")
    return isinstance(message, dict) and isinstance(message.get("records"), list)


def _is_direct(event: Mapping[str, Any]) -> bool:
    return isinstance(event.get(jsontext.EVENTS_KEY), list) or "event_name" in event


# --- where each trigger's messages are ---------------------------------------------------------


def _mq_messages(event: Mapping[str, Any]) -> Iterator[Piece]:
    for record_index, record in enumerate(_list(event, "records") or ()):
        where: Position = {"record": record_index}
        if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
            yield Candidate(Unreadable("the record has no messages array", record), where)
            continue
        where = {"topic": _label(record.get("topic_id")), **where}
        for index, message in enumerate(record["messages"]):
            yield message, {**where, "message": index}
    for index, message in enumerate(_list(event, "messages") or ()):
        yield message, {"topic": _label(event.get("topic_id")), "message": index}


def _smn_messages(event: Mapping[str, Any]) -> Iterator[Piece]:
    for index, record in enumerate(_list(event, "record") or ()):
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


def _dis_messages(event: Mapping[str, Any]) -> Iterator[Piece]:
    stream = {"stream": _label(event.get("StreamName")), "shard": _label(event.get("ShardID"))}
    message = event.get("Message")
    records = message.get("records") if isinstance(message, dict) else None
    for index, record in enumerate(records if isinstance(records, list) else ()):
        if not isinstance(record, dict) or "data" not in record:
            yield Candidate(Unreadable("the record has no data", record), {**stream, "record": index})
            continue
        where = {**stream, "record": index, "sequence_number": _label(record.get("sequence_number"))}
        yield record["data"], where


def _pubsub_messages(envelope: Mapping[str, Any]) -> Iterator[Piece]:
    message = envelope.get("message")
    if not isinstance(message, dict):
        yield Candidate(Unreadable("not a Pub/Sub push message: no message object", envelope), {})
        return
    where = {
        "subscription": _label(envelope.get("subscription")),
        "message_id": _label(message.get("messageId", message.get("message_id"))),
    }
    if "data" not in message:
        yield Candidate(Unreadable("the Pub/Sub message has no data", envelope), where)
        return
    yield message["data"], where


TIMER_HINT = 'put one event, an array of events or {"events": [...]} in the timer\'s user_event'


def _fired_ms(value: Any) -> int:
    """The timer's firing time (ISO 8601, e.g. 2023-06-01T08:30:00+08:00) in ms; else now."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return int(moment.timestamp() * 1000)
    return time.time_ns() // 1_000_000


def _timed(value: Any, fired_ms: int) -> Any:
    """Events without a ``time`` take the moment the timer fired: a fixed heartbeat can be sent."""
    items = jsontext.unwrap_events(value)
    if isinstance(items, list):
        return [_timed(item, fired_ms) if isinstance(item, dict) else item for item in items]
    if isinstance(value, dict) and "time" not in value and not jsontext.is_events_wrapper(value):
        return {**value, "time": fired_ms}
    return value


def _timer_messages(event: Mapping[str, Any]) -> Iterator[Piece]:
    where = {"timer": _label(event.get("trigger_name"))}
    raw = event.get("user_event")
    if raw is None or raw == "":
        yield Candidate(Unreadable(f"the timer sent no user_event: {TIMER_HINT}", raw), where)
        return
    value, problem = jsontext.parse(raw) if isinstance(raw, str) else (raw, None)
    if problem:
        yield Candidate(Unreadable(f"the timer's user_event {problem}: {TIMER_HINT}", raw), where)
        return
    yield _timed(value, _fired_ms(event.get("time"))), where


def _direct_messages(event: Any) -> Iterator[Piece]:
    yield event, {}


SPECS: tuple[TriggerSpec, ...] = (
    # Order matters: the first spec that recognises a payload names its trigger.
    TriggerSpec(Trigger.APIG, "API Gateway", "an HTTP request with a body", _is_apig),
    TriggerSpec(Trigger.TIMER, "Timer", "user_event", _is_timer, _timer_messages, noun="user_event"),
    TriggerSpec(Trigger.DDS, "DDS", "records[].dds", _is_dds, supported=False),
    TriggerSpec(
        Trigger.KAFKA,
        "DMS for Kafka / open-source Kafka",
        "records[].messages[]",
        lambda event: _mq_kind(event) is Trigger.KAFKA,
        _mq_messages,
    ),
    TriggerSpec(
        Trigger.ROCKETMQ,
        "DMS for RocketMQ",
        "records[].messages[]",
        lambda event: _mq_kind(event) is Trigger.ROCKETMQ,
        _mq_messages,
    ),
    TriggerSpec(
        Trigger.RABBITMQ,
        "DMS for RabbitMQ",
        "records[].messages[], a message's body",
        lambda event: _mq_kind(event) is Trigger.RABBITMQ,
        _mq_messages,
        unwrap_body=True,
    ),
    TriggerSpec(
        Trigger.SMN, "SMN", "record[].smn.message", lambda e: _list(e, "record") is not None, _smn_messages
    ),
    TriggerSpec(Trigger.DIS, "DIS", "Message.records[].data, base64", _is_dis, _dis_messages, base64=True),
    TriggerSpec(Trigger.OBS, "OBS", "Records[]", lambda e: _list(e, "Records") is not None, supported=False),
    TriggerSpec(Trigger.LTS, "LTS", "lts.data", lambda e: isinstance(e.get("lts"), dict), supported=False),
    TriggerSpec(Trigger.CTS, "CTS", "cts", lambda e: isinstance(e.get("cts"), dict), supported=False),
    TriggerSpec(
        Trigger.PUBSUB,
        "Pub/Sub push",
        "message.data, base64",
        lambda e: isinstance(e.get("message"), dict),
        _pubsub_messages,
        base64=True,
    ),
    TriggerSpec(
        Trigger.DIRECT,
        "direct invocation",
        '[...], {"events": [...]} or one event',
        _is_direct,
        _direct_messages,
        noun="payload",
    ),
)
SPEC_BY_TRIGGER = {spec.trigger: spec for spec in SPECS}
SUPPORTED = "; ".join(f"{spec.name} ({spec.shape})" for spec in SPECS if spec.supported)


def detect(event: Any) -> Trigger:
    """The trigger that produced ``event``; never raises, ``Trigger.UNKNOWN`` when nothing fits."""
    if isinstance(event, list):
        return Trigger.DIRECT
    if not isinstance(event, dict):
        return Trigger.UNKNOWN
    for spec in SPECS:
        if spec.recognise(event):
            return spec.trigger
    return Trigger.UNKNOWN


# --- API Gateway -------------------------------------------------------------------------------


def apig_request(event: Mapping[str, Any], *, request_id: str | None = None) -> HttpRequest:
    """The HTTP request inside an API Gateway (shared or dedicated) event.

    FunctionGraph's console test template for API Gateway sends a plain JSON body while saying
    ``"isBase64Encoded": true``; such a body (not base64, but readable JSON) is taken as the text
    it is, with one note in the log.
    """
    method = event.get("httpMethod")
    headers = normalise_headers(event.get("headers"))
    query = normalise_query(event.get("queryStringParameters"))
    raw = event.get("body")
    body: bytes | str
    body_error = None
    if raw is None:
        body = b""
    elif isinstance(raw, str):
        body = raw  # the text itself: http_ingest reads it as UTF-8 without copying it
        if _flag(event.get("isBase64Encoded")):
            decoded = _b64decode(raw)
            if decoded is not None:
                body = decoded
            elif jsontext.parse(raw)[1] is None:
                logs.log_line(
                    logging.INFO,
                    "note",
                    request_id=request_id or logs.request_id(None, headers),
                    trigger=Trigger.APIG,
                    note="the body is marked isBase64Encoded but is plain JSON text; read as text",
                )
            else:
                body, body_error = b"", "the body is marked isBase64Encoded but is not valid base64"
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


def _too_many(count: int, max_items: int, raw: Any, position: Position, noun: str) -> Candidate:
    reason = (
        f"the {noun} holds {count} events, more than the {max_items} one {noun} may hold "
        "(FORWARDER_MAX_ITEMS); none of them was taken"
    )
    return Candidate(Unreadable(reason, raw), position)


def message_candidates(
    payload: Any,
    position: Position,
    *,
    base64_data: bool = False,
    unwrap_body: bool = False,
    max_items: int = DEFAULT_MAX_ITEMS,
    noun: str = "message",
) -> list[Candidate]:
    """One message -> its events (each tagged with ``event`` index when it held an array)."""
    raw = payload
    if base64_data:
        if not isinstance(payload, str):
            reason = f"data is a JSON {jsontext.kind(payload)}, not base64 text"
            return [Candidate(Unreadable(reason, raw), position)]
        decoded = _b64decode(payload)
        if decoded is None:
            return [Candidate(Unreadable("data is not valid base64", raw), position)]
        payload = decoded
    if isinstance(payload, str | bytes):
        value, problem = jsontext.parse(payload)
        if problem:
            what = "decoded data" if base64_data else noun
            return [Candidate(Unreadable(f"the {what} {problem}", raw), position)]
    else:
        value = payload  # already parsed by the platform
    if unwrap_body and isinstance(value, dict) and "event_name" not in value and "body" in value:
        # An AMQP-style envelope: the event JSON is its body.
        return message_candidates(value["body"], position, max_items=max_items, noun=noun)
    if jsontext.is_events_wrapper(value):
        value = jsontext.unwrap_events(value)
        if not isinstance(value, list):
            reason = f'"events" in the {noun} is a JSON {jsontext.kind(value)}, not an array of events'
            return [Candidate(Unreadable(reason, raw), position)]
    if isinstance(value, dict):
        return [Candidate(value, position)]
    if isinstance(value, list):
        if not value:
            return [Candidate(Unreadable(f"the {noun} holds an empty array: no events", raw), position)]
        if len(value) > max_items:
            return [_too_many(len(value), max_items, raw, position, noun)]
        return [Candidate(item, {**position, "event": index}) for index, item in enumerate(value)]
    reason = f"the {noun} holds a JSON {jsontext.kind(value)}, not an event object or an array of events"
    return [Candidate(Unreadable(reason, raw), position)]


def _not_taken(event: Any, trigger: Trigger) -> Candidate:
    """One rejection for a whole payload the forwarder does not take. Its content is not logged:
    an audit record or a stored document is none of the forwarder's business."""
    spec = SPEC_BY_TRIGGER.get(trigger)
    if spec is not None and not spec.supported:
        seen = f"a payload of the {spec.name} trigger ({spec.shape}), which the forwarder does not take"
    elif spec is not None and spec.messages is None:
        seen = f"a request of the {spec.name} trigger, which is answered over HTTP, not read as a batch"
    elif isinstance(event, dict):
        fields = ", ".join(str(key)[:64] for key in list(event)[:MAX_NAMED_FIELDS]) or "none"
        seen = f"an unrecognised payload (top-level fields: {fields})"
    else:
        seen = f"an unrecognised payload (a JSON {jsontext.kind(event)})"
    return Candidate(Unreadable(f"{seen}; it takes {SUPPORTED}", None, field="(payload)"), {})


def queue_candidates(
    event: Any, trigger: Trigger | str, *, max_items: int = DEFAULT_MAX_ITEMS
) -> list[Candidate]:
    """Every item of a batch (queue, timer or direct invocation), unreadable messages included.

    Never raises: a payload that does not fit ``trigger``'s shape gives rejections, not errors.
    """
    try:
        trigger = Trigger(trigger)
    except ValueError:
        trigger = Trigger.UNKNOWN
    spec = SPEC_BY_TRIGGER.get(trigger)
    if spec is None or spec.messages is None or not spec.supported:
        return [_not_taken(event, trigger)]
    if not isinstance(event, dict) and trigger is not Trigger.DIRECT:
        return [_not_taken(event, Trigger.UNKNOWN)]
    candidates: list[Candidate] = []
    for piece in spec.messages(event):
        if isinstance(piece, Candidate):
            candidates.append(piece)
            continue
        payload, where = piece
        candidates.extend(
            message_candidates(
                payload,
                where,
                base64_data=spec.base64,
                unwrap_body=spec.unwrap_body,
                max_items=max_items,
                noun=spec.noun,
            )
        )
    return candidates


def pubsub_candidates(data: Any, *, max_items: int = DEFAULT_MAX_ITEMS) -> list[Candidate]:
    """A Pub/Sub push body ``{"message": {"data": base64, ...}, "subscription": ...}``."""
    if not isinstance(data, dict):
        return [Candidate(Unreadable("not a Pub/Sub push message: no message object", data), {})]
    return queue_candidates(data, Trigger.PUBSUB, max_items=max_items)
