"""Hypothesis fuzz targets: every trigger parser and the HTTP body forms, 10,000 inputs each.

Each target feeds one entry point what a caller or the platform could send it, shaped enough to
reach the parsers and validators (trigger envelopes, event-like objects, valid events) and
arbitrary enough to break them (any JSON, any text, any bytes, bad base64). The only answers
allowed are the documented ones: an HTTP status of the contract, a queue count, or ``DeliveryError``
when valid events could not be sent. Sending goes to a loopback port that refuses connections
(one attempt), so an input costs parsing and validation only.

``fuzz_environment()`` sets that up; ``TARGETS[name]()`` runs one entry's 10,000 inputs and
``COUNTS[name]`` counts them. ``test_fuzz.py`` runs them all; ``report.py`` times them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import random
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from emulator.rules import DETAIL_FIELDS
from tests.reliability.harness import INGEST_TOKEN, forwarder_env, leaks, now_ms, seed_from_env
from tests.support.environ import environment

EXAMPLES = 10_000
settings.register_profile(
    "reliability-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
PROFILE = settings.get_profile("reliability-fuzz")

HTTP_STATUSES = frozenset({201, 207, 400, 401, 405, 413, 502, 503})
COUNTS: Counter[str] = Counter()
# Problems the checks cannot raise where they happen (log lines written on other threads).
LOG_PROBLEMS: list[str] = []
# Pub/Sub CloudEvents that functions-framework refused before ``ingest_pubsub`` ran
# (see the README, Reliability: Known limits).
FRAMEWORK_REFUSALS = [0]

# --- inputs ---------------------------------------------------------------------------------------
#
# Hypothesis draws a seed and a few atoms (text, bytes, numbers: it is good at odd ones); a seeded
# generator turns them into a whole trigger payload. Drawing whole nested payloads with hypothesis
# strategies costs 3-5 ms an input; this costs about 0.5 ms, which is what lets 10,000 inputs per
# entry fit in CI. Hypothesis still shrinks a failure (to a smaller seed and simpler atoms).

SPECIAL_TEXTS = (
    "",
    " ",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "\x00",
    "\u202e",
    "EVENT.SYS",
    "EVENT.CUSTOM",
    "SUB_EVENT.OPS",
    "Critical",
    "incident",
    "app.orders",
    "../x",
    "%2e%2e",
    "a/b",
    "x?y",
    "9" * 5000,
    "a" * 5000,
    "NaN",
)
GARBAGE_TEXTS = (
    '{"a": ' * 200,
    "[" * 5000,
    "1" * 5000,  # longer than Python's int-from-text limit
    "NaN",
    "[Infinity, -Infinity]",
    '"\\ud800"',
    "\ufeff[]",
    "[1,",
    "{}",
    "[]",
    "null",
    "\x00\x01\x02",
    '{"events": 5}',
    '{"events": []}',
    "[[]]",
    '{"event_name": "A"}\n{"event_name": ',
)
# Values that must stay the rejection of the one item holding them: integers Python cannot print
# (4,300 digits), text too long to be a number, nesting, lone surrogates, huge keys.
def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


HOSTILE_VALUES = (
    -(10**4299),
    10**4299,
    "9" * 5000,
    "-" + "9" * 4000,
    1e308,
    -1,
    _nested(400),  # deep, and still encodable as JSON by the maker
    {"k" * 100_000: 1},
    {"\ud800": "x"},
    "\udfff",
    ["\ud800"] * 3,
)
HOSTILE_FIELDS = (
    "time",
    "event_name",
    "event_source",
    "detail",
    "detail.content",
    "detail.group_id",
    "detail.resource_name",
    "detail.event_user",
    "detail.dimensions",
    "detail.k" + "k" * 50_000,
)
# Texts of one message holding a hostile value JSON can carry but Python's encoder cannot build.
HOSTILE_TEXTS = (
    '{"event_name": "A", "event_source": "abc.def", "time": -' + "9" * 4300 + ', "detail": {}}',
    '{"event_name": "A", "event_source": "abc.def", "time": 1, "detail": {"content": '
    + "[" * 5000
    + "]" * 5000
    + "}}",
    '[{"event_name": "A", "event_source": "abc.def", "time": ' + "1" * 5000 + ', "detail": {}}]',
)
TRIGGER_TYPES = (
    "KAFKA",
    "DMS_KAFKA",
    "OPENSOURCEKAFKA",
    "ROCKETMQ",
    "DMS_ROCKETMQ",
    "RABBITMQ",
    "DMS_RABBITMQ",
)
CONTENT_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/json; charset=utf-8",
    "text/plain",
    "",
)
AUTHORIZATIONS = (f"Bearer {INGEST_TOKEN}",) * 6 + (
    "",
    "Bearer",
    "Bearer wrong",
    "Basic x",
    f"bearer  {INGEST_TOKEN} ",
)
DETAIL_KEYS = (*DETAIL_FIELDS, "unknown")


class Maker:
    """Builds payloads from a seeded generator and hypothesis's atoms."""

    def __init__(self, seed_value: int, atoms: tuple[Any, ...]) -> None:
        self.rng = random.Random(seed_value)
        text, raw, number, real = atoms
        self.atoms = [text, raw.decode("latin-1"), number, real, raw]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def scalar(self) -> Any:
        rng = self.rng
        kind = rng.randrange(8)
        if kind == 0:
            return rng.choice(self.atoms[:4])
        if kind == 1:
            return rng.choice((None, True, False, 0, -1, 2**63, 10**30, 1.5, float("nan"), float("inf")))
        if kind == 2:
            return rng.choice((now_ms(), now_ms() // 1000, now_ms() - 7_200_000, str(now_ms())))
        if kind == 3:
            return rng.choice(SPECIAL_TEXTS)
        return "".join(rng.choice("abcXYZ09_.:- /") for _ in range(rng.randrange(12)))

    def value(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(6) if depth < 3 else 0
        if kind == 4:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        if kind == 5:
            keys = [*DETAIL_KEYS, "event_name", "time", "x"]
            return {
                self.rng.choice([*keys, str(self.scalar())]): self.value(depth + 1)
                for _ in range(self.rng.randrange(4))
            }
        return self.scalar()

    def valid_event(self) -> dict[str, Any]:
        rng = self.rng
        detail: dict[str, Any] = {
            "content": str(self.atoms[0])[:100],
            "event_level": rng.choice(("Critical", "Info")),
        }
        if self.chance(0.5):
            detail["resource_id"] = f"res:{rng.randrange(10**6)}"
        if self.chance(0.3):
            detail["dimensions"] = [{"name": "host", "value": f"h{rng.randrange(99)}"}]
        if self.chance(0.3):
            detail["event_type"] = "EVENT.CUSTOM"
        return {
            "event_name": rng.choice(("DiskFull", "a", "Z9_" + "x" * 60)),
            "event_source": rng.choice(("fuzz.inputs", "svc.item_2")),
            "time": now_ms() - rng.randrange(600_000),
            "detail": detail,
        }

    def hostile_event(self) -> dict[str, Any]:
        """A valid event with one hostile value in one field (see ``HOSTILE_VALUES``)."""
        event = self.valid_event()
        *parents, last = self.rng.choice(HOSTILE_FIELDS).split(".")
        target: Any = event
        for part in parents:
            target = target[part]
        target[last] = self.rng.choice(HOSTILE_VALUES)
        return event

    def event(self) -> Any:
        rng = self.rng
        kind = rng.randrange(10)
        if self.chance(0.08):
            return self.hostile_event()
        event = self.valid_event()
        if kind < 3:
            return event
        if kind < 8:  # one or two fields broken
            for _ in range(rng.randint(1, 2)):
                where = event if self.chance(0.5) else event.get("detail")
                if isinstance(where, dict):
                    key = rng.choice([*list(where), *DETAIL_KEYS, "extra"])
                    if self.chance(0.15):
                        where.pop(key, None)
                    else:
                        where[key] = self.value(1)
            return event
        if kind == 8:
            return self.value()
        return {
            key: self.value(1) for key in ("event_name", "event_source", "time", "detail") if self.chance(0.8)
        }

    def events(self) -> Any:
        kind = self.rng.randrange(6)
        items = [self.event() for _ in range(self.rng.randrange(6))]
        if kind < 2:
            return self.event()
        if kind < 4:
            return items
        if kind == 4:
            return {"events": items}
        return {"events": self.value(1)}

    def text(self) -> str:
        rng = self.rng
        kind = rng.randrange(10)
        if kind < 4:
            return json.dumps(self.events(), allow_nan=True)
        if kind == 4:
            return "\n".join(
                json.dumps(self.event()) if self.chance(0.8) else str(self.scalar())
                for _ in range(rng.randrange(1, 5))
            )
        if kind == 5:
            whole = json.dumps(self.events())
            return whole[: rng.randrange(len(whole) + 1)]  # cut short
        if kind == 6:
            return rng.choice(GARBAGE_TEXTS + HOSTILE_TEXTS)
        return str(rng.choice(self.atoms[:4]))

    def body(self) -> bytes:
        if self.chance(0.15):
            return self.atoms[4]
        return self.text().encode("utf-8", "surrogatepass")

    def base64(self) -> Any:
        kind = self.rng.randrange(6)
        if kind < 4:
            return base64.b64encode(self.body()).decode()
        if kind == 4:
            return self.text()  # not base64 at all (or by accident)
        return self.value()

    def message(self) -> Any:
        kind = self.rng.randrange(10)
        if kind < 6:
            return self.text()
        if kind < 8:
            return self.events()  # already parsed by the platform
        if kind == 8:
            return {
                "body": self.message() if self.chance(0.5) else self.text(),
                "delivery_tag": self.scalar(),
            }
        return self.value()

    def label(self) -> Any:
        return self.scalar() if self.chance(0.7) else self.value()

    def some(self, make: Callable[[], Any], most: int = 5) -> list[Any]:
        return [make() for _ in range(self.rng.randrange(most + 1))]

    # the entries ------------------------------------------------------------------------------

    def apig(self) -> dict[str, Any]:
        rng = self.rng
        encoded = self.chance(0.5)
        body = self.body()
        headers: Any = {
            "content-type": rng.choice(CONTENT_TYPES),
            "authorization": rng.choice(AUTHORIZATIONS),
        }
        if self.chance(0.1):
            headers = self.value()
        elif self.chance(0.2):
            headers["Content-Type"] = [rng.choice(CONTENT_TYPES), "x"]
        query: Any = (
            {}
            if self.chance(0.5)
            else {"dry_run": rng.choice(("true", "false", "", "1", "maybe", ["true", "x"]))}
        )
        if self.chance(0.1):
            query = self.value()
        event: dict[str, Any] = {
            "httpMethod": rng.choice(("POST", "POST", "POST", "post", "GET", "PUT", "", None, 7)),
            "path": "/events",
            "headers": headers,
            "queryStringParameters": query,
            "isBase64Encoded": rng.choice((encoded, encoded, "true", "false", None, 1)),
            "body": base64.b64encode(body).decode() if encoded else body.decode("utf-8", "surrogateescape"),
            "requestContext": {"requestId": "fuzz"},
        }
        if self.chance(0.1):
            event["body"] = self.value()  # a test console passing the JSON itself
        if self.chance(0.05):
            event.pop(rng.choice(list(event)))
        return event

    def mq(self) -> dict[str, Any]:
        rng = self.rng
        kind: Any = rng.choice(TRIGGER_TYPES) if self.chance(0.9) else self.scalar()
        if self.chance(0.3):
            return {"trigger_type": kind, "messages": self.some(self.message), "topic_id": self.label()}
        records = self.some(lambda: {"messages": self.some(self.message), "topic_id": self.label()}, 3)
        if self.chance(0.1):
            records.append(self.value())
        return {"event_version": "v1.0", "trigger_type": kind, "region": "r", "records": records}

    def smn(self) -> dict[str, Any]:
        def record() -> Any:
            if self.chance(0.1):
                return self.value()
            smn: dict[str, Any] = {
                "topic_urn": self.label(),
                "message_id": self.label(),
                "message": self.message(),
            }
            if self.chance(0.05):
                smn.pop("message")
            return {"event_source": "smn", "event_version": "1.0", "smn": smn}

        return {"record": self.some(record, 4)}

    def dis(self) -> dict[str, Any]:
        def record() -> Any:
            if self.chance(0.1):
                return self.value()
            return {"data": self.base64(), "sequence_number": self.label(), "partition_key": "p"}

        return {
            "ShardID": self.label(),
            "StreamName": self.label(),
            "Message": {"records": self.some(record, 4)},
        }

    def pubsub(self) -> dict[str, Any]:
        message: Any = {"data": self.base64(), "messageId": self.label(), "attributes": {}}
        if self.chance(0.1):
            message.pop("data")
        if self.chance(0.05):
            message = self.value()
        return {"message": message, "subscription": self.label()}

    def direct(self) -> Any:
        return self.events() if self.chance(0.8) else self.value()

    def http(self) -> tuple[bytes, str, Any, str]:
        rng = self.rng
        dry_run = None if self.chance(0.5) else rng.choice(("true", "false", "", "maybe", str(self.atoms[0])))
        return self.body(), rng.choice(CONTENT_TYPES), dry_run, rng.choice(AUTHORIZATIONS)

    def cloud_event(self) -> bytes:
        kind = self.rng.randrange(10)
        if kind < 7:
            return json.dumps(self.pubsub()).encode()
        if kind < 9:
            return self.body()
        return json.dumps(self.value()).encode()


atoms = st.tuples(st.text(max_size=16), st.binary(max_size=32), st.integers(), st.floats())


def inputs(build: Callable[[Maker], Any]) -> st.SearchStrategy[Any]:
    """A strategy of whole payloads: hypothesis's seed and atoms through ``build``."""
    return st.builds(
        lambda seed_value, drawn: build(Maker(seed_value, drawn)), st.integers(0, 2**32 - 1), atoms
    )


# --- checks ---------------------------------------------------------------------------------------


class FuzzContext:
    def getRequestID(self) -> str:  # FunctionGraph's method names
        return "fuzz"

    def getRemainingTimeInMilliSeconds(self) -> float:
        return 30_000


def _reconciles(body: dict[str, Any]) -> None:
    received, accepted, rejected, failed = (body[k] for k in ("received", "accepted", "rejected", "failed"))
    assert received == accepted + rejected + failed == len(body["results"]), body
    assert [result["index"] for result in body["results"]] == list(range(received)), body


def check_http_answer(status: int, text: str) -> None:
    """A documented status, a JSON body whose counts reconcile, 502/503 only for failed events."""
    assert status in HTTP_STATUSES, (status, text[:500])
    body = json.loads(text)
    assert isinstance(body, dict)
    _reconciles(body)
    assert (status in (502, 503)) == (body["failed"] > 0), (status, text[:500])
    assert not leaks(text)


def check_apig(event: Any) -> None:
    import index

    answer = index.handler(event, FuzzContext())
    assert isinstance(answer, dict) and answer.get("isBase64Encoded") is False, answer
    check_http_answer(answer["statusCode"], answer["body"])


def check_queue(payload: Any) -> None:
    import index
    from forwarder.queue_ingest import DeliveryError

    try:
        answer = index.handler(payload, FuzzContext())
    except DeliveryError as exc:  # documented: valid events that could not be sent
        counts = exc.counts
        assert counts["failed"] > 0
        assert counts["received"] == counts["accepted"] + counts["rejected"] + counts["failed"]
        assert not leaks(str(exc))
        return
    if isinstance(answer, dict) and "statusCode" in answer:  # the payload happened to look like APIG
        check_http_answer(answer["statusCode"], answer["body"])
    elif isinstance(answer, dict) and "results" in answer:  # a direct invocation gets the report
        _reconciles(answer)
        assert answer["failed"] == 0
    else:
        assert answer["received"] == answer["accepted"] + answer["rejected"] and answer["failed"] == 0, answer


_clients: dict[str, Any] = {}


def _client(target: str) -> Any:
    if target not in _clients:
        from tests.support.ingest_server import create_app

        _clients[target] = create_app(target).test_client()
    return _clients[target]


def check_http_body(value: tuple[bytes, str, str | None, str]) -> None:
    body, content_type, dry_run, authorization = value
    response = _client("ingest").post(
        "/",
        data=body,
        headers={"Content-Type": content_type, "Authorization": authorization},
        query_string={} if dry_run is None else {"dry_run": dry_run},
    )
    check_http_answer(response.status_code, response.get_data(as_text=True))


class _Exceptions(logging.Handler):
    """The exception types functions-framework (Flask) logged while answering 500."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)  # any level: Flask adds its own printing handler otherwise
        self.types: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            self.types.append(record.exc_info[0].__name__)


_pubsub_errors = _Exceptions()


def check_pubsub_cloud_event(data: bytes) -> None:
    headers = {
        "ce-id": "fuzz-1",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {INGEST_TOKEN}",  # pushes carry the ingest token too
    }
    seen = len(_pubsub_errors.types)
    response = _client("ingest_pubsub").post("/", data=data, headers=headers)
    if response.status_code < 500:
        assert response.status_code == 200, (response.status_code, data[:300])
        return
    raised = _pubsub_errors.types[seen:]
    if raised == ["DataUnmarshallerError"] and _beyond_python_json(data):
        FRAMEWORK_REFUSALS[0] += 1  # functions-framework's CloudEvent parsing: the function never ran
        return
    assert raised == ["DeliveryError"], (raised, data[:300])  # the documented redelivery signal


def _beyond_python_json(data: bytes) -> bool:
    """JSON that Python's parser gives up on with something other than a syntax error (nested
    deeper than its recursion limit, an integer over 4300 digits): cloudevents lets that escape."""
    try:
        json.loads(data)
    except json.JSONDecodeError:
        return False
    except (RecursionError, ValueError):
        return True
    return False


# id -> (what it feeds, strategy, check)
ENTRIES: dict[str, tuple[str, st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "apig": ("API Gateway events -> index.handler", inputs(Maker.apig), check_apig),
    "mq": ("Kafka / RocketMQ / RabbitMQ batches -> index.handler", inputs(Maker.mq), check_queue),
    "smn": ("SMN notifications -> index.handler", inputs(Maker.smn), check_queue),
    "dis": ("DIS batches -> index.handler", inputs(Maker.dis), check_queue),
    "pubsub": ("Pub/Sub push messages -> index.handler", inputs(Maker.pubsub), check_queue),
    "direct": ("direct invocations (events) -> index.handler", inputs(Maker.direct), check_queue),
    "http": ("raw HTTP bodies -> main.ingest (test client)", inputs(Maker.http), check_http_body),
    "cloudevent": (
        "Pub/Sub CloudEvents -> main.ingest_pubsub (test client)",
        inputs(Maker.cloud_event),
        check_pubsub_cloud_event,
    ),
}


def target(name: str, examples: int = EXAMPLES) -> Callable[[], None]:
    """The hypothesis run of entry ``name`` (``examples`` inputs); each input counts in ``COUNTS``."""
    _, strategy, check = ENTRIES[name]

    @seed(seed_from_env())
    @settings(PROFILE, max_examples=examples)
    @given(strategy)
    def run(value: Any) -> None:
        COUNTS[name] += 1
        check(value)

    return run


TARGETS = {name: target(name) for name in ENTRIES}


# --- environment -----------------------------------------------------------------------------------


class _Lines(logging.Handler):
    """Formats every forwarder log line (so its code runs), checks it could be written to a UTF-8
    stream and holds no secret, and keeps nothing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        text = record.getMessage()
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            LOG_PROBLEMS.append(f"a log line cannot be written as UTF-8 ({exc.reason}): {text[:300]!r}")
        if leaks(text):
            LOG_PROBLEMS.append(f"a log line holds a secret: {leaks(text)}")


@contextlib.contextmanager
def fuzz_environment(max_examples: int | None = None) -> Iterator[_Lines]:
    """Forwarder settings (distinctive secrets, one attempt) aimed at a loopback port that refuses
    connections; the forwarder's log lines checked but not kept; Flask's logged exceptions noted."""
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    port = refusing.getsockname()[1]
    env = forwarder_env(f"http://127.0.0.1:{port}", CLOUDEYE_MAX_ATTEMPTS="1", CLOUDEYE_TIMEOUT_S="2")
    forwarder_logger = logging.getLogger("forwarder")
    pubsub_logger = logging.getLogger("ingest_pubsub")
    lines = _Lines()
    saved = (
        forwarder_logger.propagate,
        forwarder_logger.level,
        pubsub_logger.propagate,
        pubsub_logger.handlers,
    )
    forwarder_logger.addHandler(lines)
    forwarder_logger.setLevel(logging.INFO)
    forwarder_logger.propagate = False
    pubsub_logger.handlers = [_pubsub_errors]  # Flask's own handler would print every traceback
    pubsub_logger.propagate = False
    LOG_PROBLEMS.clear()
    try:
        with environment(env):
            yield lines
    finally:
        forwarder_logger.removeHandler(lines)
        (
            forwarder_logger.propagate,
            forwarder_logger.level,
            pubsub_logger.propagate,
            pubsub_logger.handlers,
        ) = saved
        refusing.close()
