"""What the reliability tests and the figures runner share.

Seeded events and fault schedules, a spy on every event post that leaves the process, a collector
for the forwarder's log lines, distinctive credentials, and the end-to-end runs (faults with
redelivery, 429 storms, load). Each run returns its figures and a ``problems`` list: every broken
promise found, in words. The tests assert that list is empty; ``report.py`` prints the figures.
Nothing here needs pytest.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import os
import random
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.environ import environment

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = 20261126
SEED_VARIABLE = "RELIABILITY_SEED"


def seed_from_env() -> int:
    """``RELIABILITY_SEED`` when set (to replay a run), else the published seed."""
    raw = os.environ.get(SEED_VARIABLE, "").strip()
    return int(raw) if raw else DEFAULT_SEED


# --- distinctive credentials ---------------------------------------------------------------------

# Values no real code path prints by accident; each has a unique core the scans look for too.
ACCESS_KEY = "AKREL8Q4Z7X1V5N2M9K3"
SECRET_KEY = "rel-sk-3f9a71c2e8d4-never-printed"
SECURITY_TOKEN = "rel-sectoken-b62e0d95f1a7-never-printed"
AUTH_TOKEN = "rel-iamtoken-4c8e1f3a9d20-never-printed"
INGEST_TOKEN = "rel-ingest-7d2b5e8c0a61-never-printed"
SECRETS = {
    "access key": (ACCESS_KEY, "8Q4Z7X1V5N2M"),
    "secret key": (SECRET_KEY, "3f9a71c2e8d4"),
    "security token": (SECURITY_TOKEN, "b62e0d95f1a7"),
    "IAM token": (AUTH_TOKEN, "4c8e1f3a9d20"),
    "ingest token": (INGEST_TOKEN, "7d2b5e8c0a61"),
}
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def leaks(text: str) -> list[str]:
    """The names of the distinctive secrets found in ``text`` (whole, or their unique core)."""
    return [name for name, (value, core) in SECRETS.items() if value in text or core in text]


def forwarder_env(base_url: str, *, auth_token_only: bool = False, **extra: str) -> dict[str, str]:
    """The forwarder's environment with every distinctive secret set (keys win over the token)."""
    env = {
        "CLOUDEYE_ENDPOINT": base_url,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT_ID,
        "CLOUDEYE_AUTH_TOKEN": AUTH_TOKEN,
        "FORWARDER_INGEST_TOKEN": INGEST_TOKEN,
    }
    if not auth_token_only:
        env |= {
            "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": SECRET_KEY,
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
        }
    return env | extra


def emulator_auth_env() -> dict[str, str]:
    """``EMULATOR_*`` variables that make an emulator accept exactly the distinctive credentials."""
    return {
        "EMULATOR_AK": ACCESS_KEY,
        "EMULATOR_SK": SECRET_KEY,
        "EMULATOR_SECURITY_TOKEN": SECURITY_TOKEN,
        "EMULATOR_TOKEN": AUTH_TOKEN,
    }


@contextlib.contextmanager
def distinctive_credentials(server: Any) -> Iterator[None]:
    """Make the in-process served emulator accept only the distinctive keys, token and IAM token."""
    from emulator import auth

    auth.pin(
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, security_token=SECURITY_TOKEN, auth_token=AUTH_TOKEN
    )
    try:
        yield
    finally:
        auth.pin(access_key=server.access_key, secret_key=server.secret_key)
        auth.unpin("security_token", "auth_token")


@contextlib.contextmanager
def quick_backoff(base_s: float = 0.005) -> Iterator[None]:
    """Shrink the client's exponential backoff (Retry-After is still honoured) so runs stay short."""
    from forwarder import client

    saved = client.BACKOFF_BASE_S
    client.BACKOFF_BASE_S = base_s
    try:
        yield
    finally:
        client.BACKOFF_BASE_S = saved


# --- observing the process -----------------------------------------------------------------------


class LogCollector(logging.Handler):
    """Keeps every line the ``forwarder`` logger writes (each one a JSON object)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def lines(self, start: int = 0, message: str | None = None) -> list[dict[str, Any]]:
        parsed = [json.loads(text) for text in self.messages[start:]]
        return [line for line in parsed if message is None or line.get("message") == message]

    @contextlib.contextmanager
    def attached(self) -> Iterator[LogCollector]:
        logger = logging.getLogger("forwarder")
        saved_level = logger.level
        logger.addHandler(self)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(saved_level)


@dataclass(frozen=True)
class Post:
    at: float  # time.monotonic() when the request was written
    path: str
    body: bytes


class WireSpy:
    """Every event post that leaves this process, seen where ``http.client`` writes it.

    Lower than the forwarder's own client, so a request it makes without counting it shows up.
    """

    def __init__(self) -> None:
        self.posts: list[Post] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[WireSpy]:
        original = http.client.HTTPConnection.request
        posts = self.posts

        def request(conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if method == "POST" and "/V1.0/" in url:
                body = kwargs.get("body", args[0] if args else None)
                posts.append(Post(time.monotonic(), url, bytes(body or b"")))
            return original(conn, method, url, *args, **kwargs)

        http.client.HTTPConnection.request = request  # type: ignore[method-assign]
        try:
            yield self
        finally:
            http.client.HTTPConnection.request = original  # type: ignore[method-assign]


def rss_kib() -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of this process in KiB, from ``/proc/self/status``."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def wait_until_idle(server: Any, timeout_s: float = 10.0) -> None:
    """Wait for the emulator to finish requests still running (slow faults the client gave up on)."""
    deadline = time.monotonic() + timeout_s
    while server.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)


def exception_text(exc: BaseException) -> str:
    """What a log handler would print for ``exc``: message, repr, causes and traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


# --- events ---------------------------------------------------------------------------------------

EVENT_NAMES = ("OrderBacklogHigh", "PaymentRetryStorm", "DiskAlmostFull", "CertExpiring", "CacheFailover")
STATES = ("normal", "warning", "incident")
LEVELS = ("Critical", "Major", "Minor", "Info")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def valid_event(rng: random.Random, tag: str, index: int, now: int) -> dict[str, Any]:
    """A valid event; ``tag`` and ``index`` make its resource id (its identity here) unique."""
    return {
        "event_name": rng.choice(EVENT_NAMES),
        "event_source": "reliability.suite",
        "time": now - rng.randrange(0, 300_000),
        "detail": {
            "content": f"{tag} event {index}",
            "resource_id": f"{tag}:{index:06d}",
            "resource_name": f"{tag}-{index:06d}",
            "event_state": rng.choice(STATES),
            "event_level": rng.choice(LEVELS),
            "event_user": "reliability",
            "event_type": "EVENT.CUSTOM",
        },
    }


def identity(event: Any) -> str | None:
    """The resource id: unique per event this suite makes (valid or not)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    return detail.get("resource_id") if isinstance(detail, dict) else None


def _set(path: str, value: Any) -> Callable[[dict[str, Any], int], None]:
    def apply(event: dict[str, Any], now: int) -> None:
        target = event["detail"] if path.startswith("detail.") else event
        target[path.removeprefix("detail.")] = value(now) if callable(value) else value

    return apply


def _drop_detail(event: dict[str, Any], now: int) -> None:
    event["detail_"] = event.pop("detail")  # keeps the identity findable on the wire


# kind -> (field Cloud Eye's rules name, how to break a valid event)
INVALID_KINDS: dict[str, tuple[str, Callable[[dict[str, Any], int], None]]] = {
    "bad event_name": ("event_name", _set("event_name", "9 bad name")),
    "bad event_source": ("event_source", _set("event_source", "nodot")),
    "EVENT.SYS": ("detail.event_type", _set("detail.event_type", "EVENT.SYS")),
    "time in seconds": ("time", _set("time", lambda now: now // 1000)),
    "time two hours old": ("time", _set("time", lambda now: now - 7_200_000)),
    "time as a boolean": ("time", _set("time", True)),
    "unknown key": ("colour", _set("colour", "red")),
    "content too long": ("detail.content", _set("detail.content", "x" * 4097)),
    "five dimensions": (
        "detail.dimensions",
        _set("detail.dimensions", [{"name": f"d{i}", "value": "v"} for i in range(5)]),
    ),
    "missing detail": ("detail", _drop_detail),
}
# Queue messages that hold no event at all (rejected alone as "(message)").
UNREADABLE_MESSAGES = ("not JSON at all {", "42", "[]", '"a string"', "", "null", "\u0000\u0001 binary")


@dataclass
class Invalid:
    kind: str
    field: str
    event: dict[str, Any]


def invalid_event(rng: random.Random, tag: str, index: int, now: int) -> Invalid:
    kind = rng.choice(sorted(INVALID_KINDS))
    expected_field, breaker = INVALID_KINDS[kind]
    event = valid_event(rng, f"{tag}X", index, now)
    breaker(event, now)
    return Invalid(kind, expected_field, event)


# --- faults ---------------------------------------------------------------------------------------

# label -> (emulator fault, weight in the random schedules)
FAULTS: dict[str, tuple[dict[str, Any], float]] = {
    "429 with Retry-After: 0": ({"status": 429, "retry_after": 0}, 3),
    "429 with Retry-After: 1": ({"status": 429, "retry_after": 1}, 0.4),
    "429 without Retry-After": ({"status": 429}, 2),
    "500": ({"status": 500}, 2),
    "502": ({"status": 502}, 2),
    "503 with Retry-After: 0": ({"status": 503, "retry_after": 0}, 2),
    "504": ({"status": 504}, 2),
    "slow answer past the read timeout": ({"kind": "slow", "delay_ms": 450}, 1),
    "dropped connection, nothing stored": ({"kind": "drop"}, 2),
    "dropped connection, events stored": ({"kind": "drop", "store": True}, 2),
}
_LABELS = sorted(FAULTS)
_WEIGHTS = [FAULTS[label][1] for label in _LABELS]


def fault_schedule(rng: random.Random, requests: int, delivery: int) -> list[str]:
    """Fault labels for the next posts of one invocation: heavy on the first delivery, fewer on each
    redelivery, none from the fourth on (so every batch gets through in a bounded number of tries)."""
    if delivery >= 4:
        return []
    mean = requests * 1.2 / delivery**2
    count = rng.randint(0, max(1, round(2 * mean)))
    return rng.choices(_LABELS, _WEIGHTS, k=count)


def consumed(schedule: list[str], plan: dict[str, Any]) -> list[str]:
    """The scheduled faults the posts used up (faults are taken in order; the rest remain queued)."""
    remaining = len(plan.get("faults", ()))
    return schedule[: len(schedule) - remaining]


# --- FunctionGraph context -------------------------------------------------------------------------


class RunningContext:
    """A FunctionGraph context whose remaining time runs down with the wall clock."""

    def __init__(self, request_id: str, budget_ms: float) -> None:
        self.request_id = request_id
        self.budget_ms = budget_ms
        self.created = time.monotonic()

    def getRequestID(self) -> str:  # FunctionGraph's method names
        return self.request_id

    def getRemainingTimeInMilliSeconds(self) -> float:
        return self.budget_ms - (time.monotonic() - self.created) * 1000

    def latest_attempt_start(self) -> float:
        """The latest moment a Cloud Eye attempt may start (index.deadline_from's margin)."""
        from index import SAFETY_MARGIN_S, SAFETY_MARGIN_SHARE

        budget_s = self.budget_ms / 1000
        return self.created + budget_s - min(SAFETY_MARGIN_S, budget_s * SAFETY_MARGIN_SHARE)


# --- the fault run ---------------------------------------------------------------------------------


@dataclass
class FaultRunConfig:
    seed: int = DEFAULT_SEED
    kafka_batches: int = 20
    http_batches: int = 20
    events_per_batch: int = 500  # valid ones; invalid and unreadable ones come on top
    invalid_share: float = 0.03
    max_attempts: int = 3
    timeout_s: float = 0.3
    tight_budget_ms: float = 800  # the remaining time of some Kafka invocations
    normal_budget_ms: float = 15000
    tight_share: float = 0.25
    max_deliveries: int = 8  # per batch, first delivery included
    auth_token_only: bool = False


@dataclass
class FaultFigures:
    seed: int
    sent: Counter[str] = field(default_factory=Counter)  # events given to each entry, by kind
    valid: int = 0
    invalid: int = 0  # invalid events plus unreadable messages/lines
    accepted: int = 0
    rejected: int = 0
    lost: int = 0
    duplicated: int = 0
    invalid_sent: int = 0
    crashes: int = 0
    stored: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    redelivered_batches: Counter[str] = field(default_factory=Counter)
    deadline_stops: int = 0
    posts: int = 0
    retries: int = 0
    max_posts_per_request: int = 0
    cloud_eye_duplicates: int = 0  # re-posted events Cloud Eye recognised (the duplicate rule at work)
    texts_scanned: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Invocation:
    """What one call of an entry produced, for the per-invocation checks."""

    where: str
    posts: list[Post]
    lines: list[dict[str, Any]]
    started: float
    ended: float
    context: RunningContext | None = None


class FaultRun:
    """Seeded faults against the served emulator while Kafka batches go through ``index.handler``
    (called again whenever it raises, as the platform redelivers) and HTTP batches go through the
    functions-framework ``ingest`` entry over a socket (the failed events resent, as a caller would).
    """

    def __init__(self, emulator: Any, ingest: Any, config: FaultRunConfig) -> None:
        self.emulator = emulator
        self.ingest = ingest
        self.config = config
        self.rng = random.Random(config.seed)
        self.figures = FaultFigures(seed=config.seed)
        self.valid: dict[str | None, dict[str, Any]] = {}  # identity -> the event as given
        self.accepted_ids: set[str] = set()
        self.spy = WireSpy()
        self.logs = LogCollector()
        self.texts: list[str] = []  # answers, exception texts, log lines: scanned for secrets

    # -- driver ---------------------------------------------------------------------------------

    def run(self) -> FaultFigures:
        config, figures = self.config, self.figures
        started = time.monotonic()
        self.emulator.reset()
        env = forwarder_env(
            self.emulator.base_url,
            auth_token_only=config.auth_token_only,
            CLOUDEYE_MAX_ATTEMPTS=str(config.max_attempts),
            CLOUDEYE_TIMEOUT_S=str(config.timeout_s),
        )
        with (
            distinctive_credentials(self.emulator),
            environment(env),
            quick_backoff(),
            self.spy.installed(),
            self.logs.attached(),
        ):
            batches = ["kafka"] * config.kafka_batches + ["http"] * config.http_batches
            self.rng.shuffle(batches)
            for number, kind in enumerate(batches):
                if kind == "kafka":
                    self._kafka_batch(number)
                else:
                    self._http_batch(number)
            # Requests the client gave up on (slow answers) finish before the keys change back.
            wait_until_idle(self.emulator)
        self._reconcile()
        figures.seconds = round(time.monotonic() - started, 1)
        return figures

    def _schedule(self, requests: int, delivery: int) -> list[str]:
        schedule = fault_schedule(self.rng, requests, delivery)
        self.emulator.set_faults(faults=[FAULTS[label][0] for label in schedule])
        return schedule

    def _used(self, schedule: list[str]) -> None:
        self.figures.faults.update(consumed(schedule, self.emulator.fault_plan()))
        self.emulator.clear_faults()

    # -- Kafka through index.handler ----------------------------------------------------------------

    def _kafka_batch(self, number: int) -> None:
        import index
        from forwarder.queue_ingest import DeliveryError

        config, figures, rng = self.config, self.figures, self.rng
        tag = f"k{number:03d}"
        payload, valid, invalid, unreadable = kafka_batch(
            rng, tag, config.events_per_batch, config.invalid_share
        )
        self._sent("kafka", valid, len(invalid) + unreadable)
        candidates = len(valid) + len(invalid) + unreadable
        requests = math.ceil(len(valid) / 100)
        for delivery in range(1, config.max_deliveries + 1):
            where = f"kafka batch {tag}, delivery {delivery}"
            schedule = self._schedule(requests, delivery)
            tight = rng.random() < config.tight_share
            context = RunningContext(
                f"{tag}-d{delivery}", config.tight_budget_ms if tight else config.normal_budget_ms
            )
            mark_posts, mark_logs = len(self.spy.posts), len(self.logs.messages)
            figures.invocations["kafka"] += 1
            answer = error = None
            try:
                answer = index.handler(payload, context)
                self.texts.append(json.dumps(answer))
            except DeliveryError as exc:
                error = exc
                self.texts.append(exception_text(exc))
            except Exception as exc:  # a crash: anything but the documented redelivery signal
                figures.crashes += 1
                self._problem(f"{where}: index.handler raised {exception_text(exc)}")
                return
            finally:
                self._used(schedule)
            invocation = _Invocation(
                where,
                self.spy.posts[mark_posts:],
                self.logs.lines(mark_logs),
                context.created,
                time.monotonic(),
                context,
            )
            self._check_invocation(invocation)
            counts = error.counts if error is not None else answer
            self._check_queue_counts(where, counts, candidates, len(invalid) + unreadable, error)
            self._check_rejects_logged(invocation, len(invalid) + unreadable)
            if error is None:
                figures.rejected += counts["rejected"]
                if counts["accepted"] != len(valid):
                    self._problem(f"{where}: accepted {counts['accepted']} of {len(valid)} valid events")
                self.accepted_ids.update(identity(event) for event in valid)
                if delivery > 1:
                    figures.redelivered_batches["kafka"] += 1
                return
            if any("out of time" in text for text in error.errors):
                figures.deadline_stops += 1
        self._problem(f"kafka batch {tag}: still failing after {config.max_deliveries} deliveries")

    def _check_queue_counts(self, where: str, counts: Any, candidates: int, rejects: int, error: Any) -> None:
        if not isinstance(counts, dict):
            self._problem(f"{where}: the handler answered {counts!r}")
            return
        received, accepted, rejected, failed = (
            counts.get(name) for name in ("received", "accepted", "rejected", "failed")
        )
        if received != candidates or received != accepted + rejected + failed:
            self._problem(f"{where}: counts do not reconcile: {counts} for {candidates} items")
        if rejected != rejects:
            self._problem(f"{where}: rejected {rejected}, expected {rejects}")
        if (error is not None) != bool(failed):
            self._problem(f"{where}: failed={failed} but raised={error is not None}")

    def _check_rejects_logged(self, invocation: _Invocation, rejects: int) -> None:
        lines = [line for line in invocation.lines if line.get("message") == "rejected"]
        if len(lines) != rejects:
            self._problem(f"{invocation.where}: {len(lines)} rejected log lines for {rejects} rejects")
        for line in lines:
            if not line.get("reason") or "position" not in line:
                self._problem(f"{invocation.where}: a rejected log line without reason/position: {line}")
                break

    # -- HTTP through the functions-framework entry ---------------------------------------------------

    def _http_batch(self, number: int) -> None:
        config, figures, rng = self.config, self.figures, self.rng
        tag = f"h{number:03d}"
        body, content_type, expected, valid = http_batch(
            rng, tag, config.events_per_batch, config.invalid_share
        )
        self._sent("http", valid, sum(1 for item in expected if not isinstance(item, dict)))
        headers = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        for delivery in range(1, config.max_deliveries + 1):
            where = f"http batch {tag}, request {delivery}"
            requests = math.ceil(sum(1 for item in expected if isinstance(item, dict)) / 100)
            schedule = self._schedule(requests, delivery)
            mark_posts, mark_logs = len(self.spy.posts), len(self.logs.messages)
            figures.invocations["http"] += 1
            started = time.monotonic()
            try:
                reply = self.ingest.post(
                    body, content_type=content_type, headers={**headers, "X-Request-Id": f"{tag}-r{delivery}"}
                )
            finally:
                self._used(schedule)
            self.texts.append(reply.text + json.dumps(reply.headers))
            invocation = _Invocation(
                where, self.spy.posts[mark_posts:], self.logs.lines(mark_logs), started, time.monotonic()
            )
            self._check_invocation(invocation)
            failed = self._check_http_answer(where, reply, expected, first=delivery == 1)
            if failed is None:
                return
            if not failed:
                figures.redelivered_batches["http"] += delivery > 1
                return
            # As a caller would: resend the failed events (all valid), unchanged.
            expected = failed
            body, content_type = json.dumps(failed).encode(), "application/json"
        self._problem(f"http batch {tag}: {len(expected)} events still failing after {config.max_deliveries}")

    def _check_http_answer(
        self, where: str, reply: Any, expected: list[Any], *, first: bool
    ) -> list[dict[str, Any]] | None:
        """Check one answer against what was sent; the valid events it failed (None: unusable)."""
        if reply.status not in (201, 207, 502, 503):
            self.figures.crashes += reply.status == 500
            self._problem(f"{where}: answered {reply.status}: {reply.text[:300]}")
            return None
        answer = reply.json()
        results = answer.get("results", [])
        counts = [answer.get(name) for name in ("received", "accepted", "rejected", "failed")]
        if counts[0] != len(expected) or counts[0] != sum(counts[1:]) or len(results) != len(expected):
            self._problem(f"{where}: counts do not reconcile: {counts} for {len(expected)} items")
            return None
        if [result.get("index") for result in results] != list(range(len(expected))):
            self._problem(f"{where}: results are not one per item in input order")
            return None
        if first:
            self.figures.rejected += counts[2]
        failed = []
        for item, result in zip(expected, results, strict=True):
            status = result.get("status")
            if isinstance(item, dict):  # a valid event
                if status == "accepted" and str(result.get("event_id", "")).startswith("ev"):
                    self.accepted_ids.add(identity(item))
                elif status == "failed" and result.get("error"):
                    failed.append(item)
                else:
                    self._problem(f"{where}: valid event {identity(item)} answered {result}")
            elif status != "rejected" or not result.get("errors"):
                self._problem(f"{where}: invalid item answered {result} (expected a rejection)")
            elif item[0] == "invalid" and item[1] not in {error.get("field") for error in result["errors"]}:
                self._problem(f"{where}: rejection names {result['errors']}, expected field {item[1]!r}")
        wanted = 503 if failed else (207 if counts[2] else 201)
        if failed and reply.status == 502:
            wanted = 502  # a non-retryable failure is allowed to say so, but none is injected here
            self._problem(f"{where}: answered 502, yet every injected fault is retryable")
        if reply.status != wanted:
            self._problem(f"{where}: answered {reply.status}, expected {wanted}")
        if reply.status == 503 and not reply.headers.get("retry-after", "").isdigit():
            self._problem(f"{where}: 503 without a Retry-After")
        return failed

    # -- shared checks ------------------------------------------------------------------------------

    def _sent(self, entry: str, valid: list[dict[str, Any]], invalid: int) -> None:
        self.figures.sent[entry] += len(valid) + invalid
        self.figures.valid += len(valid)
        self.figures.invalid += invalid
        self.valid.update((identity(event), event) for event in valid)

    def _problem(self, text: str) -> None:
        self.figures.problems.append(text)

    def _check_invocation(self, invocation: _Invocation) -> None:
        """Attempts per request within CLOUDEYE_MAX_ATTEMPTS (a 429 spends none: it asks to slow
        down), the log line's counts equal to what went on the wire, and no attempt started past
        the deadline from the context."""
        where, posts = invocation.where, invocation.posts
        per_body = Counter(post.body for post in posts)
        most = max(per_body.values(), default=0)
        self.figures.max_posts_per_request = max(self.figures.max_posts_per_request, most)
        summaries = [line for line in invocation.lines if line.get("message") == "invocation"]
        allowed = self.config.max_attempts + sum(line.get("throttled", 0) for line in summaries)
        if most > allowed:
            self._problem(f"{where}: one request was posted {most} times (max {allowed})")
        if len(summaries) != 1:
            self._problem(f"{where}: {len(summaries)} invocation log lines")
        else:
            summary = summaries[0]
            self.figures.retries += summary.get("retries", 0)
            parts = [summary.get(name, -1) for name in ("accepted", "rejected", "failed")]
            if summary.get("received") != sum(parts):
                self._problem(f"{where}: the log line's counts do not reconcile: {summary}")
            if summary.get("requests") != len(posts) or summary.get("retries") != len(posts) - len(per_body):
                self._problem(
                    f"{where}: the log line counts {summary.get('requests')} requests and "
                    f"{summary.get('retries')} retries; the wire saw {len(posts)} posts of "
                    f"{len(per_body)} distinct requests"
                )
        context = invocation.context
        if context is not None:
            latest = context.latest_attempt_start() + 0.02
            late = [post for post in posts if post.at > latest]
            if late:
                self._problem(f"{where}: {len(late)} attempts started after the deadline")
            if invocation.ended - context.created > context.budget_ms / 1000:
                self._problem(
                    f"{where}: took {invocation.ended - context.created:.2f} s of a "
                    f"{context.budget_ms / 1000:.2f} s budget"
                )

    def _reconcile(self) -> None:
        """Cloud Eye's side: every valid event stored once, nothing else, every post accounted for."""
        figures = self.figures
        stats = self.emulator.stats()
        stored = [item["event"] for item in self.emulator.stored_events()]
        figures.stored = len(stored)
        figures.posts = len(self.spy.posts)
        figures.cloud_eye_duplicates = stats["duplicates"]
        # An event counts as delivered only as given: same identity, every field equal (a resend
        # with a rewritten time would be stored as a second event and show up as duplicated).
        figures.duplicated = len(stored) - len({identity(event) for event in stored})
        delivered = {identity(event) for event in stored if self.valid.get(identity(event)) == event}
        figures.lost = len(self.valid.keys() - delivered)
        figures.accepted = len(self.accepted_ids & self.valid.keys())
        on_the_wire = [event for post in self.spy.posts for event in _json_list(post.body)]
        figures.invalid_sent = sum(
            1 for event in on_the_wire + stored if self.valid.get(identity(event)) != event
        )
        if figures.lost or figures.duplicated or figures.invalid_sent:
            self._problem(
                f"lost {figures.lost}, duplicated {figures.duplicated}, invalid sent {figures.invalid_sent}"
            )
        if figures.rejected != figures.invalid:
            self._problem(f"{figures.rejected} rejections for {figures.invalid} invalid items")
        if figures.accepted != len(self.valid):
            self._problem(f"{figures.accepted} of {len(self.valid)} valid events were answered accepted")
        if stats["posts_received"] != figures.posts:
            self._problem(f"Cloud Eye saw {stats['posts_received']} posts, the wire {figures.posts}")
        refused = {status: n for status, n in stats["responses"].items() if status in ("400", "401", "413")}
        if refused:
            self._problem(f"Cloud Eye refused requests: {refused}")
        texts = self.texts + self.logs.messages
        figures.texts_scanned = len(texts)
        found = sorted({name for text in texts for name in leaks(text)})
        if found:
            self._problem(f"secrets in answers, exceptions or log lines: {found}")


def _json_list(body: bytes) -> list[Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return [None]
    return value if isinstance(value, list) else [value]


def kafka_batch(
    rng: random.Random, tag: str, count: int, invalid_share: float
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Invalid], int]:
    """A Kafka trigger payload: messages of one event or an array of events, a few invalid events
    and unreadable messages among them, spread over one to three topics."""
    now = now_ms()
    valid = [valid_event(rng, tag, index, now) for index in range(count)]
    invalid = [invalid_event(rng, tag, index, now) for index in range(max(1, round(count * invalid_share)))]
    items = valid + [bad.event for bad in invalid]
    rng.shuffle(items)
    messages: list[str] = []
    position = 0
    while position < len(items):
        if rng.random() < 0.25:
            group = items[position : position + rng.randint(2, 8)]
            position += len(group)
            messages.append(json.dumps(group if rng.random() < 0.8 else {"events": group}))
        else:
            messages.append(json.dumps(items[position]))
            position += 1
    unreadable = rng.randint(1, 3)
    for _ in range(unreadable):
        messages.insert(rng.randrange(len(messages) + 1), rng.choice(UNREADABLE_MESSAGES))
    topics = rng.randint(1, 3)
    size = math.ceil(len(messages) / topics)
    payload = {
        "event_version": "v1.0",
        "event_time": int(time.time()),
        "trigger_type": "KAFKA",
        "region": "ap-southeast-1",
        "instance_id": "3f9c2a71-6d4e-4b8a-9e15-0c7d2b3a4f68",
        "records": [
            {"messages": messages[start : start + size], "topic_id": f"events-{start // size}"}
            for start in range(0, len(messages), size)
        ],
    }
    return payload, valid, invalid, unreadable


def http_batch(
    rng: random.Random, tag: str, count: int, invalid_share: float
) -> tuple[bytes, str, list[Any], list[dict[str, Any]]]:
    """An HTTP body in one of the documented forms, with what each item must come back as:
    the event itself (valid), ``("invalid", field)`` or ``("unreadable", None)`` (an NDJSON line)."""
    now = now_ms()
    valid = [valid_event(rng, tag, index, now) for index in range(count)]
    invalid = [invalid_event(rng, tag, index, now) for index in range(max(1, round(count * invalid_share)))]
    items: list[Any] = [(event, event) for event in valid]
    items += [(bad.event, ("invalid", bad.field)) for bad in invalid]
    rng.shuffle(items)
    form = rng.choice(("array", "events", "ndjson"))
    if form == "ndjson":
        lines = [json.dumps(event) for event, _ in items]
        expected = [want for _, want in items]
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(lines) + 1)
            lines.insert(at, "{not json")
            expected.insert(at, ("unreadable", None))
        return "\n".join(lines).encode(), "application/x-ndjson", expected, valid
    events = [event for event, _ in items]
    body = json.dumps(events if form == "array" else {"events": events}).encode()
    return body, "application/json", [want for _, want in items], valid


# --- 429 storms ------------------------------------------------------------------------------------


@dataclass
class StormFigures:
    limit: str
    adaptive: bool
    events: int
    accepted: int
    requests: int
    delivered_requests: int
    throttled: int
    seconds: float

    @property
    def waste(self) -> float:
        """429 answers per delivered request."""
        return self.throttled / self.delivered_requests if self.delivered_requests else math.inf


def storm(
    emulator: Any, *, adaptive: bool, limits: dict[str, int], events: int = 5000, delay_ms: int = 50
) -> StormFigures:
    """One batch of ``events`` through ``report_events`` against a rate-limited, slow emulator."""
    import forwarder

    rng = random.Random(DEFAULT_SEED)
    now = now_ms()
    tag = f"s{int(adaptive)}{time.time_ns() % 10**9}"
    batch = [valid_event(rng, tag, index, now) for index in range(events)]
    emulator.reset()
    emulator.set_faults(delay_ms=delay_ms, **limits)
    with distinctive_credentials(emulator):
        settings = forwarder.Settings.from_env(environ=forwarder_env(emulator.base_url))
        started = time.monotonic()
        report = forwarder.report_events(batch, settings=settings, adaptive=adaptive)
        seconds = time.monotonic() - started
    stats = emulator.stats()
    emulator.reset()
    return StormFigures(
        ", ".join(f"{name}: {value}" for name, value in limits.items()),
        adaptive,
        events,
        report.accepted,
        report.requests,
        stats["responses"].get("201", 0),
        stats["throttled"],
        round(seconds, 1),
    )


# --- load ------------------------------------------------------------------------------------------

LOAD_STATUSES = frozenset({201, 207, 502, 503})


@dataclass
class LoadFigures:
    threads: int
    requests_per_thread: int
    events_per_request: int
    delay_ms: int
    answered: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    events: int = 0
    stored: int = 0
    lost: int = 0
    resent: int = 0
    baseline_kib: int = 0
    peak_kib: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.peak_kib / self.baseline_kib if self.baseline_kib else math.inf


class RemoteEmulator:
    """The emulator in a child process (so its stored events do not weigh on this one's memory),
    with the helpers of ``tests.support.emulator_server.EmulatorServer`` that talk HTTP."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.helper: Any = None

    def __enter__(self) -> Any:
        from tests.support.emulator_server import EmulatorServer

        path = os.pathsep.join([str(ROOT), str(ROOT / "function")])
        env = {**os.environ, **emulator_auth_env(), "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.harness", "serve-emulator"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline().strip())
        helper = EmulatorServer(access_key=ACCESS_KEY, secret_key=SECRET_KEY, project_id=PROJECT_ID)
        helper.port = port  # the helpers only need the address
        self.helper = helper
        return helper

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the child stops when its stdin closes
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serve_emulator() -> None:
    """Child side of ``RemoteEmulator``: serve on a free port, print it, stop when stdin closes."""
    from tests.support.emulator_server import EmulatorServer

    server = EmulatorServer(access_key=ACCESS_KEY, secret_key=SECRET_KEY, project_id=PROJECT_ID).start()
    from emulator import auth

    auth.pin(security_token=SECURITY_TOKEN, auth_token=AUTH_TOKEN)
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()


def load(
    ingest: Any,
    emulator: Any,
    *,
    threads: int = 16,
    requests_per_thread: int = 50,
    events_per_request: int = 100,
    delay_ms: int = 20,
    resend_limit: int = 5,
) -> LoadFigures:
    """Concurrent callers through the served ``ingest`` entry while Cloud Eye answers slowly;
    samples this process's resident memory throughout. The callers keep counters only (no
    per-event bookkeeping that would itself grow), and the expected events are rebuilt after."""
    figures = LoadFigures(threads, requests_per_thread, events_per_request, delay_ms)
    emulator.reset()
    emulator.set_faults(delay_ms=delay_ms)
    total = threads * requests_per_thread
    done = [0]
    accepted = [0]
    lock = threading.Lock()
    samples: list[tuple[int, int]] = []  # (requests done, VmRSS KiB)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((done[0], rss_kib()[0]))
            stop.wait(0.02)

    def caller(number: int) -> None:
        rng = random.Random(DEFAULT_SEED + number)
        for request in range(requests_per_thread):
            tag = f"L{number:02d}r{request:03d}"
            pending = [valid_event(rng, tag, index, now_ms()) for index in range(events_per_request)]
            for attempt in range(resend_limit):
                reply = ingest.post(pending, headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
                with lock:
                    figures.answered[reply.status] += 1
                    figures.resent += attempt > 0
                if reply.status not in LOAD_STATUSES:
                    with lock:
                        figures.problems.append(f"{tag}: answered {reply.status}: {reply.text[:200]}")
                    break
                results = reply.json()["results"]
                ok = sum(1 for result in results if result["status"] == "accepted")
                pending = [e for e, r in zip(pending, results, strict=True) if r["status"] != "accepted"]
                with lock:
                    accepted[0] += ok
                if not pending:
                    break
            with lock:
                done[0] += 1

    started = time.monotonic()
    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    with environment(forwarder_env(emulator.base_url)):
        sampler.start()
        workers = [threading.Thread(target=caller, args=(n,), name=f"load-{n}") for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        sampler.join()
    figures.seconds = round(time.monotonic() - started, 1)
    figures.requests = total
    figures.events = total * events_per_request
    after_first_tenth = [rss for count, rss in samples if count >= max(1, total // 10)]
    figures.baseline_kib = after_first_tenth[0] if after_first_tenth else 0
    figures.peak_kib = max(after_first_tenth, default=0)
    expected = {
        f"L{number:02d}r{request:03d}:{index:06d}"
        for number in range(threads)
        for request in range(requests_per_thread)
        for index in range(events_per_request)
    }
    stored = [identity(item["event"]) for item in emulator.stored_events()]
    figures.stored = len(stored)
    figures.lost = len(expected - set(stored))
    if figures.lost or figures.stored != len(expected) or accepted[0] != len(expected):
        figures.problems.append(
            f"{len(expected)} events sent, {accepted[0]} answered accepted, {figures.stored} stored, "
            f"{figures.lost} lost"
        )
    if figures.growth > 1.5:
        figures.problems.append(
            f"resident memory grew from {figures.baseline_kib} KiB to {figures.peak_kib} KiB"
        )
    emulator.reset()
    return figures


if __name__ == "__main__" and sys.argv[1:] == ["serve-emulator"]:
    _serve_emulator()
