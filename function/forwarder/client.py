"""Cloud Eye HTTP client: standard library only, keep-alive, bounded concurrency, careful retries.

Retries follow SPEC section 4: 408/429/5xx and connection errors, exponential backoff with full
jitter, at least ``Retry-After`` when the server sends one, bounded by attempts and a deadline.
On 429 the number of requests in flight is halved and, once the Retry-After has passed, grows back
by about one per round of successes (AIMD), so a rate limit wastes few requests.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import select
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import connection, signer
from .batching import Chunk
from .scrub import scrub
from .settings import PROJECT_ID_PATTERN, Settings, SettingsError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CONTENT_TYPE = "application/json;charset=UTF-8"
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
# Do not start an attempt with less time than this left before the deadline.
MIN_ATTEMPT_S = 0.05
MAX_ERROR_TEXT = 300
# A Retry-After longer than this ends the retries (the caller or the platform retries later).
MAX_RETRY_AFTER_S = 30.0


@dataclass
class ChunkOutcome:
    """What happened to one request: the created events, or the last error after retries."""

    chunk: Chunk
    created: list[dict[str, Any]] | None = None
    error: str | None = None
    status: int | None = None
    attempts: int = 0
    retry_after: float | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.created is not None


@dataclass
class SendStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, retry: bool, throttled: bool) -> None:
        with self.lock:
            self.requests += 1
            self.retries += retry
            self.throttled += throttled


def describe_error(status: int | None, body: bytes, request_id: str | None) -> str:
    """One readable line from any of the error body shapes Cloud Eye and its gateway use."""
    code = message = None
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):  # {"error": {"code", "message"}}
            data = data["error"]
        nested = data.get("message")
        if isinstance(nested, dict):  # {"http_code", "message": {"code", "details"}}
            code, message = nested.get("code"), nested.get("details") or nested.get("message")
        else:
            code = data.get("error_code") or data.get("code")
            message = data.get("error_msg") or nested or data.get("details")
            if nested and data.get("details") and data.get("details") != nested:
                message = f"{nested}: {data['details']}"
        request_id = request_id or data.get("request_id")
    if message is None and body and data is None:
        message = body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    parts = [f"Cloud Eye answered {status}" if status else "Cloud Eye could not be reached"]
    if code:
        parts.append(str(code))
    text = " ".join(parts)
    if message:
        text += f": {str(message)[:MAX_ERROR_TEXT]}"
    if request_id:
        text += f" (request id {request_id})"
    return text


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here; fall back to our own backoff


class AdaptiveLimit:
    """A concurrency limit (AIMD): a 429 halves it, successes grow it back, up to ``maximum``.

    Growth is cautious so a known rate limit is not probed again and again: nothing grows until the
    429's ``Retry-After`` has passed (the server said when capacity returns), only a success that
    found the limit full counts (a limit nobody uses proves nothing), and each adds ``1/limit``,
    so about one more request in flight per round of successes.
    """

    def __init__(self, maximum: int, adaptive: bool = True) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self._limit = float(maximum)
        self._in_flight = 0
        self._hold_until = 0.0  # time.monotonic() before which the limit does not grow
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1

    def release(self, *, throttled: bool, retry_after: float | None = None) -> None:
        with self._cond:
            full = self._in_flight >= self.limit
            self._in_flight -= 1
            if self.adaptive:
                now = time.monotonic()
                if throttled:
                    self._limit = max(1.0, self._limit / 2)
                    if retry_after:
                        wait = min(retry_after, MAX_RETRY_AFTER_S)
                        self._hold_until = max(self._hold_until, now + wait)
                elif full and now >= self._hold_until:
                    self._limit = min(float(self.maximum), self._limit + 1 / self._limit)
            self._cond.notify_all()


class _ConnectionPool:
    """Kept-alive connections to one host, reused across chunks and warm invocations."""

    def __init__(self, scheme: str, host: str, port: int | None, ca_bundle: str | None = None) -> None:
        self.scheme, self.host, self.port, self.ca_bundle = scheme, host, port, ca_bundle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def new(self, timeout: float) -> http.client.HTTPConnection:
        # Direct, or through HTTPS_PROXY's CONNECT tunnel; TLS trusts CLOUDEYE_CA_BUNDLE if set.
        return connection.open_connection(
            self.scheme, self.host, self.port, timeout, ca_bundle=self.ca_bundle
        )

    def get(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection the server has not closed (reused=True), or a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self.new(timeout), False
            if _still_open(conn):
                break
            conn.close()
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append(conn)


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """False when an idle connection's socket is readable: the server closed it (or sent something
    nobody asked for), so it must not carry a request."""
    if conn.sock is None:
        return False
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):  # a closed socket, or a descriptor select() cannot watch
        return False
    return not readable


_pools: dict[tuple[str, str, int | None, str | None], _ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool_for(scheme: str, host: str, port: int | None, ca_bundle: str | None = None) -> _ConnectionPool:
    key = (scheme, host, port, ca_bundle)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = _ConnectionPool(scheme, host, port, ca_bundle)
        return _pools[key]


class CloudEyeClient:
    """Sends prepared chunks to ``POST /V1.0/{project_id}/events``."""

    def __init__(
        self,
        settings: Settings,
        *,
        deadline: float | None = None,
        adaptive: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        settings.require_sending()
        project_id = settings.project_id or ""
        if not PROJECT_ID_PATTERN.fullmatch(project_id):
            raise SettingsError("HUAWEICLOUD_SDK_PROJECT_ID must be 1-64 letters, digits or '-'")
        base = urlsplit(settings.base_url)
        self.settings = settings
        self.deadline = deadline  # time.monotonic() value after which no attempt starts
        self.adaptive = adaptive
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.path = f"{base.path.rstrip('/')}/V1.0/{project_id}/events"
        self.host_header = base.netloc
        self.pool = _pool_for(base.scheme, base.hostname or "", base.port, settings.ca_bundle)
        self.stats = SendStats()

    def send(
        self, chunks: Iterable[Chunk], on_done: Callable[[ChunkOutcome], None] | None = None
    ) -> list[ChunkOutcome]:
        """Send every chunk (concurrently, up to the limit); outcomes come back in chunk order.

        ``chunks`` may be a generator: each chunk goes to a worker as soon as it is made, so the
        first requests are in flight while the caller is still preparing the rest. ``on_done``
        gets each outcome in its worker as soon as it is final, while other requests still wait.
        """
        limit = AdaptiveLimit(self.settings.max_concurrency, self.adaptive)
        outcomes: list[ChunkOutcome] = []
        todo: queue.SimpleQueue[ChunkOutcome | None] = queue.SimpleQueue()
        workers: list[threading.Thread] = []

        def work() -> None:
            while (outcome := todo.get()) is not None:
                self._deliver(outcome, limit)
                if on_done is not None:
                    on_done(outcome)

        try:
            for chunk in chunks:
                outcome = ChunkOutcome(chunk)
                outcomes.append(outcome)
                todo.put(outcome)
                if len(workers) < self.settings.max_concurrency:
                    workers.append(threading.Thread(target=work, daemon=True))
                    workers[-1].start()
        finally:
            for _ in workers:
                todo.put(None)  # each worker stops once the chunks before it are taken
            for worker in workers:
                worker.join()
        return outcomes

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _deliver(self, outcome: ChunkOutcome, limit: AdaptiveLimit) -> None:
        for attempt in range(1, self.settings.max_attempts + 1):
            remaining = self._remaining()
            if remaining is not None and remaining < MIN_ATTEMPT_S:
                outcome.error = (outcome.error or "not sent") + "; stopped: the invocation is out of time"
                return
            timeout = self.settings.timeout_s
            if remaining is not None:
                timeout = min(timeout, remaining)
            limit.acquire()
            throttled = False
            try:
                status, headers, body = self._post(outcome.chunk.body, timeout)
            except (OSError, http.client.HTTPException) as exc:
                status, headers, body = None, {}, b""
                reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
                outcome.error = f"Cloud Eye could not be reached: {scrub(reason, self.settings)}"
            except Exception as exc:  # anything else is a bug or a bad setting: fail the chunk, no retry
                outcome.attempts = attempt
                # The type only: the text of such an error may quote header values (credentials).
                outcome.error = f"the request could not be sent ({type(exc).__name__})"
                return
            else:
                throttled = status == 429
            finally:
                limit.release(
                    throttled=throttled,
                    retry_after=_retry_after_s(headers.get("retry-after")) if throttled else None,
                )
            outcome.attempts = attempt
            self.stats.count(retry=attempt > 1, throttled=throttled)
            outcome.status = status
            if status is not None:
                outcome.request_id = headers.get("x-request-id")
                if 200 <= status < 300:
                    outcome.created = _created(body, len(outcome.chunk.indexes))
                    outcome.error = None
                    return
                outcome.error = scrub(describe_error(status, body, outcome.request_id), self.settings)
                outcome.retry_after = _retry_after_s(headers.get("retry-after"))
                if status not in RETRYABLE_STATUSES:
                    return
            if attempt == self.settings.max_attempts:
                return
            delay = self.rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))
            if outcome.retry_after is not None and status is not None:
                if outcome.retry_after > MAX_RETRY_AFTER_S:
                    # Waiting that long inside one invocation helps nobody: report it instead.
                    wait = f"; Cloud Eye asked to wait {outcome.retry_after:.0f} s"
                    outcome.error = (outcome.error or "") + wait
                    return
                delay = max(delay, outcome.retry_after)
            remaining = self._remaining()
            if remaining is not None and delay + MIN_ATTEMPT_S > remaining:
                outcome.error = (outcome.error or "") + "; stopped retrying: the invocation is out of time"
                return
            self.sleep(delay)

    def _post(self, body: bytes, timeout: float) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Host": self.host_header,
            "Content-Type": CONTENT_TYPE,
            "X-Project-Id": self.settings.project_id or "",
        }
        settings = self.settings
        if settings.access_key and settings.secret_key:
            if settings.security_token:
                headers["X-Security-Token"] = settings.security_token.reveal()
            headers = signer.sign(
                "POST", self.path, (), headers, body, settings.access_key, settings.secret_key.reveal()
            )
        elif settings.auth_token:
            headers["X-Auth-Token"] = settings.auth_token.reveal()
        # A connection the server closed while idle is replaced in pool.get(); a failure here is a
        # real attempt (the server may have taken the request), never resent behind the caller's back.
        conn, _reused = self.pool.get(timeout)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()  # a half-used connection cannot be reused
            raise
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        if response.will_close:
            conn.close()
        else:
            self.pool.put(conn)
        return response.status, answer_headers, data


def _created(body: bytes, expected: int) -> list[dict[str, Any]]:
    """The ``[{event_id, event_name}]`` answer; tolerant of a missing or short body."""
    try:
        data = json.loads(body) if body else []
    except ValueError:
        data = []
    items = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
    items += [{}] * (expected - len(items))
    return items[:expected]
