"""Cloud Eye HTTP client: standard library only, keep-alive, bounded concurrency, careful retries.

What an answer means is decided in one place, :func:`verdict`. Transient failures (connection
errors, 408, 429, 5xx but 501) are retried with exponential backoff and full jitter, waiting at
least Cloud Eye's ``Retry-After``; a 429 asks to slow down and does not spend an attempt when the
call has a deadline. A 400 or 413 for several events is split in halves, resent, until each event
Cloud Eye refuses stands alone; the rest is delivered. 401/403 (credentials) and 404/405/501 or a
redirect (endpoint or project) are configuration problems: they stop the whole send at once.

One deadline bounds everything: the wait for a free slot, the pacing, each attempt's whole
exchange (connect, send, the whole answer: a watchdog closes a socket whose answer drips in too
slowly) and the backoff. Before each attempt the events' ``time`` is checked against Cloud Eye's
window again; an event that left it while waiting is taken out, never retimed.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import http.client
import itertools
import json
import logging
import math
import os
import queue
import random
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from . import connection, signer
from .batching import Chunk
from .events import in_window, now_ms
from .logs import log_line
from .pacing import RateController
from .scrub import scrub
from .settings import Settings

CONTENT_TYPE = "application/json;charset=UTF-8"
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
# Do not start an attempt with less time than this left before the deadline.
MIN_ATTEMPT_S = 0.05
MAX_ERROR_TEXT = 300
# Retry-After values are clamped to this: waiting longer inside one invocation helps nobody.
MAX_RETRY_AFTER_S = 30.0
# A fresh instance starts with this many requests in flight and doubles per round of successes
# up to CLOUDEYE_MAX_CONCURRENCY (many instances starting at once do not all burst at full width).
INITIAL_CONCURRENCY = 2
# Answers whose events Cloud Eye refused: split the request to find the event(s) at fault.
SPLIT_STATUSES = frozenset({400, 413})
CREDENTIAL_STATUSES = frozenset({401, 403})

Verdict = Literal["accepted", "transient", "refused", "configuration"]
LATE_WHILE_WAITING = "left Cloud Eye's time window while waiting to be sent (time is never rewritten)"


def verdict(status: int | None) -> Verdict:
    """What an answer means; the only place that decides it. ``None``: no answer at all.

    - accepted: 2xx, Cloud Eye took the events;
    - transient: no answer, 408, 429 and 5xx but 501: the same request can succeed later;
    - configuration: 401/403 (credentials), 404/405/501 and anything that is not an answer to an
      events request (a redirect, 1xx): no event can get through until a setting is fixed;
    - refused: any other 4xx (400, 413, ...): Cloud Eye refuses these events.
    """
    if status is None:
        return "transient"
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 429) or (500 <= status < 600 and status != 501):
        return "transient"
    if status in CREDENTIAL_STATUSES or status in (404, 405, 501) or not 400 <= status < 500:
        return "configuration"
    return "refused"


class Part(NamedTuple):
    """Some events of a chunk (input indexes) and what became of them."""

    indexes: tuple[int, ...]
    verdict: Literal["accepted", "refused", "late", "failed"]
    created: list[dict[str, Any]] | None = None
    error: str | None = None
    code: str | None = None
    transient: bool = True


class ChunkOutcome:
    """What happened to one prepared chunk: one part, or several when it had to be split."""

    def __init__(self, chunk: Chunk, parts: list[Part] | None = None) -> None:
        self.chunk = chunk
        self.parts: list[Part] = [] if parts is None else parts
        # The longest Retry-After Cloud Eye asked for (clamped), for failed events.
        self.retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return all(part.verdict == "accepted" for part in self.parts)

    def settled(self) -> set[int]:
        return {index for part in self.parts for index in part.indexes}


class SendStats:
    """One client's request counts, kept by its worker threads."""

    def __init__(self) -> None:
        self.requests = self.retries = self.throttled = self.failed_requests = 0
        self.lock = threading.Lock()

    def count(self, *, retry: bool, throttled: bool) -> None:
        with self.lock:
            self.requests += 1
            self.retries += retry
            self.throttled += throttled


def error_code(body: bytes) -> str | None:
    """Cloud Eye's error code (``ces.0014``, ``APIGW.0301``...) from any of its error body shapes."""
    return _code_of(_error_object(body))


def _code_of(data: dict[str, Any] | None) -> str | None:
    if data is None:
        return None
    nested = data.get("message")
    code = nested.get("code") if isinstance(nested, dict) else data.get("error_code") or data.get("code")
    return str(code)[:MAX_ERROR_TEXT] if code else None


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):  # {"error": {"code", "message"}}
        data = data["error"]
    return data if isinstance(data, dict) else None


def describe_error(status: int | None, body: bytes, request_id: str | None) -> str:
    """One readable line from any of the error body shapes Cloud Eye and its gateway use."""
    message = None
    data = _error_object(body)
    code = _code_of(data)
    if data is not None:
        nested = data.get("message")
        if isinstance(nested, dict):  # {"http_code", "message": {"code", "details"}}
            message = nested.get("details") or nested.get("message")
        else:
            message = data.get("error_msg") or nested or data.get("details")
            if nested and data.get("details") and data.get("details") != nested:
                message = f"{nested}: {data['details']}"
        request_id = request_id or data.get("request_id")
    elif body:
        message = body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    parts = [f"Cloud Eye answered {status}" if status else "Cloud Eye could not be reached"]
    if code:
        parts.append(code)
    text = " ".join(parts)
    if message:
        text += f": {str(message)[:MAX_ERROR_TEXT]}"
    if request_id:
        text += f" (request id {str(request_id)[:MAX_ERROR_TEXT]})"
    return text


def retry_after_s(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds or an HTTP date, clamped to 0-``MAX_RETRY_AFTER_S``; ``None``
    when absent or unreadable (never infinite, never NaN)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment is None:
            return None
        try:
            seconds = moment.timestamp() - now()
        except (ValueError, OverflowError, OSError):
            return None
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


class AdaptiveLimit:
    """A concurrency limit (AIMD): a 429 halves it, successes grow it back, up to ``maximum``.

    It starts at ``start`` and, until the first 429, grows by one per success that found it full
    (doubling per round, like TCP's slow start). After a 429 growth is cautious: nothing grows
    until the 429's ``Retry-After`` has passed, only a success that found the limit full counts
    (a limit nobody uses proves nothing), and each adds ``1/limit``: about one more request in
    flight per round of successes.
    """

    def __init__(self, maximum: int, adaptive: bool = True, start: int | None = None) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self._limit = float(maximum if start is None or not adaptive else min(maximum, max(1, start)))
        self._slow_start = True
        self._in_flight = 0
        self._hold_until = 0.0  # time.monotonic() before which the limit does not grow
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a free slot; False when none was free within ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._in_flight >= self.limit:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._in_flight += 1
            return True

    def release(self, *, throttled: bool, retry_after: float | None = None) -> None:
        with self._cond:
            full = self._in_flight >= self.limit
            self._in_flight -= 1
            if self.adaptive:
                now = time.monotonic()
                if throttled:
                    self._slow_start = False
                    self._limit = max(1.0, self._limit / 2)
                    if retry_after:
                        self._hold_until = max(self._hold_until, now + min(retry_after, MAX_RETRY_AFTER_S))
                elif full and now >= self._hold_until:
                    step = 1.0 if self._slow_start else 1 / self._limit
                    self._limit = min(float(self.maximum), self._limit + step)
            self._cond.notify_all()


class _Watchdog:
    """Cuts exchanges that run past their end: one thread for all, sleeping until the earliest.

    A socket's own timeout bounds each read, not the whole answer: a server that sends a byte now
    and then could hold a request forever. ``arm`` returns an entry; ``disarm`` it when the
    exchange is over. An entry still armed at its time gets its socket shut down, which ends any
    read or write in progress with an error; ``entry[3]`` is then True.
    """

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [when, sequence, connection, fired, armed]
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, conn: http.client.HTTPConnection) -> list[Any]:
        entry = [when, next(self._count), conn, False, True]
        with self._cond:
            earliest = self._heap[0][0] if self._heap else math.inf
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cloudeye-watchdog", daemon=True)
                self._thread.start()
            if when < earliest:
                self._cond.notify()
        return entry

    def disarm(self, entry: list[Any]) -> bool:
        """Stop watching; True when the entry had already fired (the exchange was cut)."""
        with self._cond:
            entry[4] = False
            entry[2] = None
            # Exchanges mostly end in the order they started: drop finished entries from the top
            # now, so the thread wakes for live deadlines only, not once per request.
            heap = self._heap
            while heap and not heap[0][4]:
                heapq.heappop(heap)
            return bool(entry[3])

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                entry = heapq.heappop(self._heap)
                if not entry[4]:
                    continue
                entry[3] = True
                conn = entry[2]
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed: nothing left to cut
                    sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()

# http.client's own limits for an answer's header block.
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
# What the email package takes for a header line (a name, or a folded line's leading blank): its
# parser ends the headers at the first line that is neither; so does _read_header_block.
_HEADER_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]*:|[ \t]")


class _Response(http.client.HTTPResponse):
    """``HTTPResponse`` with the header block read line by line instead of by ``email.parser``.

    ``http.client`` hands the header lines to the email package's parser, which costs ~13 us per
    answer, more than all the forwarder's own bookkeeping for a request; Cloud Eye's answers carry
    a few plain ``Name: value`` lines. Everything else is ``HTTPResponse.begin``'s logic (the same
    headers object, the same framing and keep-alive decisions).
    """

    def begin(self) -> None:
        if self.headers is not None:
            return  # already begun
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            _read_header_block(self.fp)  # a 100 Continue's headers: skipped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = _read_header_block(self.fp)
        transfer_encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(transfer_encoding and transfer_encoding.lower() == "chunked")
        self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            with contextlib.suppress(ValueError):
                self.length = int(length)
            if self.length is not None and self.length < 0:  # nonsense: as if not given
                self.length = None
        no_body = status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or 100 <= status < 200
        if no_body or getattr(self, "_method", None) == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # no length, not chunked: the answer ends when the server closes


def _read_header_block(fp: Any) -> http.client.HTTPMessage:
    """The header lines up to the empty one, as ``http.client.parse_headers`` returns them (a
    folded line continues the header before it)."""
    pairs: list[list[str]] = []
    lines = 0
    ended = False  # a line that is no header ended them; the rest of the block is read, unused
    while True:
        line = fp.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            break
        lines += 1
        if lines > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if ended or not _HEADER_LINE.match(text):
            ended = True
        elif text[0] in " \t":
            if pairs:  # a folded line continues the header before it
                pairs[-1][1] += " " + text.strip()
        else:
            name, _, value = text.partition(":")
            pairs.append([name, value.strip()])
    message = http.client.HTTPMessage()
    for name, value in pairs:
        message[name] = value
    return message


class _ConnectionPool:
    """Kept-alive connections to one host, reused across chunks and warm invocations."""

    def __init__(self, scheme: str, host: str, port: int | None, ca_bundle: str | None = None) -> None:
        self.scheme, self.host, self.port, self.ca_bundle = scheme, host, port, ca_bundle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # Whether the last send through this pool met no 429: then the next starts at full width.
        self.unthrottled = False

    def new(self, timeout: float) -> http.client.HTTPConnection:
        # Direct, or through HTTPS_PROXY's CONNECT tunnel; TLS trusts CLOUDEYE_CA_BUNDLE if set.
        conn = connection.open_connection(
            self.scheme, self.host, self.port, timeout, ca_bundle=self.ca_bundle
        )
        conn.response_class = _Response
        return conn

    def get(self, timeout: float) -> http.client.HTTPConnection:
        """An idle connection the server has not closed, or a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self.new(timeout)
            if _still_open(conn):
                break
            conn.close()
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

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


def _after_fork_in_child() -> None:
    """A process forked after the forwarder was used (a server that loads the app, then forks its
    workers) gets its own watchdog and connections: the parent's watchdog thread does not exist
    in the child, so nothing would cut a slow answer, and a kept-alive socket both processes
    wrote to would mix their requests. The parent's sockets are dropped, not closed: closing
    them here could end the parent's exchanges."""
    global _watchdog, _pools, _pools_lock
    _watchdog = _Watchdog()
    _pools = {}
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _OutOfTime(Exception):
    """The deadline came before the next step could start."""


class _Stopped(Exception):
    """A configuration error stopped the send while this request waited for its turn."""


class _Answer(NamedTuple):
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str | None = None  # why there is no answer


class CloudEyeClient:
    """Sends prepared chunks to ``POST /V1.0/{project_id}/{resource}`` (``events`` unless told)."""

    def __init__(
        self,
        settings: Settings,
        *,
        deadline: float | None = None,
        adaptive: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock_ms: Callable[[], int] = now_ms,
        monotonic: Callable[[], float] = time.monotonic,
        resource: str = "events",
    ) -> None:
        """``sleep``, ``rng``, ``clock_ms`` (the events' time window) and ``monotonic`` (the
        deadline's clock) are injectable so tests can replay waits exactly without waiting."""
        settings.require_sending()
        settings.check()  # the project id goes into the URL: Settings owns that rule
        base = urlsplit(settings.base_url)
        self.settings = settings
        self.deadline = deadline  # time.monotonic() value after which no attempt starts
        self.adaptive = adaptive
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.clock_ms = clock_ms
        self.monotonic = monotonic
        self.address = f"{base.scheme}://{base.netloc}"
        self.path = f"{base.path.rstrip('/')}/V1.0/{settings.project_id}/{resource}"
        self.host_header = base.netloc
        self.pool = _pool_for(base.scheme, base.hostname or "", base.port, settings.ca_bundle)
        # A cold instance starts slowly; one whose last send met no 429 keeps its full speed.
        self.pacer = RateController(
            clock=monotonic,
            rng=random.Random(self.rng.random()),
            enabled=adaptive,
            slow_start=not self.pool.unthrottled,
        )
        self.stats = SendStats()
        self._broken: str | None = None  # a configuration error: nothing more is sent
        self._throttled_seen = False

    # --- the send loop -------------------------------------------------------------------------

    def send(
        self, chunks: Iterable[Chunk], on_done: Callable[[ChunkOutcome], None] | None = None
    ) -> list[ChunkOutcome]:
        """Send every chunk (concurrently, up to the limit); outcomes come back in chunk order.

        ``chunks`` may be a generator: each chunk goes to a worker as soon as it is made, so the
        first requests are in flight while the caller is still preparing the rest. ``on_done``
        gets each outcome in its worker as soon as it is final, while other requests still wait.
        No exception raised while sending one chunk escapes: it becomes that chunk's failure.
        """
        start = None if self.pool.unthrottled else INITIAL_CONCURRENCY
        limit = AdaptiveLimit(self.settings.max_concurrency, self.adaptive, start=start)
        outcomes: list[ChunkOutcome] = []
        todo: queue.SimpleQueue[ChunkOutcome | None] = queue.SimpleQueue()
        workers: list[threading.Thread] = []

        def work() -> None:
            while (outcome := todo.get()) is not None:
                self._deliver_safely(outcome, limit)
                if on_done is not None:
                    try:
                        on_done(outcome)
                    except Exception as exc:  # the caller's bug must not end the worker
                        _fail_unsettled(outcome, f"the result could not be recorded ({type(exc).__name__})")

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
            self.pool.unthrottled = not self._throttled_seen
        return outcomes

    def retry_after_hint(self, failed_requests: int) -> float:
        """Seconds until ``failed_requests`` requests could go out at the learned rate (clamped)."""
        return min(MAX_RETRY_AFTER_S, self.pacer.seconds_for(failed_requests))

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.monotonic()

    def _deliver_safely(self, outcome: ChunkOutcome, limit: AdaptiveLimit) -> None:
        try:
            self._deliver(outcome, limit)
        except Exception as exc:  # a bug must not kill the worker nor lose the chunk's events
            # The type only: the text of such an error may quote header values (credentials).
            _fail_unsettled(outcome, f"the request could not be sent ({type(exc).__name__})")

    def _deliver(self, outcome: ChunkOutcome, limit: AdaptiveLimit) -> None:
        """Send a chunk; split it while Cloud Eye refuses some of its events (halves, in order)."""
        pending = [outcome.chunk]
        while pending:
            piece = pending.pop()
            halves = self._send_piece(piece, outcome, limit)
            pending.extend(reversed(halves))  # the first half next: results stay in order

    def _send_piece(self, piece: Chunk, outcome: ChunkOutcome, limit: AdaptiveLimit) -> list[Chunk]:
        """Attempts for one request until it is settled; the halves to send when it must be split."""
        counted = 0  # attempts that count against CLOUDEYE_MAX_ATTEMPTS
        tries = 0
        last_error = "not sent"
        while True:
            current = self._without_late(piece, outcome)
            if current is None:
                return []
            piece = current
            if self._broken is not None:
                self._fail_stopped(outcome, piece)
                return []
            try:
                answer, sent_at = self._attempt(piece, limit, tries > 0)
            except _OutOfTime:
                self._fail(outcome, piece, f"{last_error}; stopped: the invocation is out of time", None)
                return []
            except _Stopped:
                self._fail_stopped(outcome, piece)
                return []
            tries += 1
            kind = verdict(answer.status)
            if kind == "accepted":
                created = _created(answer, len(piece.indexes))
                outcome.parts.append(Part(piece.indexes, "accepted", created=created))
                return []
            request_id = answer.headers.get("x-request-id")
            error = answer.error or describe_error(answer.status, answer.body, request_id)
            error = scrub(error, self.settings)  # upstream text may quote the credentials
            if kind == "configuration":
                self._broken = self._configuration_error(answer.status, error)
                self._fail_stopped(outcome, piece)
                return []
            if kind == "refused":
                if answer.status in SPLIT_STATUSES and len(piece.indexes) > 1:
                    middle = len(piece.indexes) // 2
                    return [piece.subset(range(middle)), piece.subset(range(middle, len(piece.indexes)))]
                code = error_code(answer.body)
                outcome.parts.append(Part(piece.indexes, "refused", error=error, code=code))
                return []
            last_error = error
            throttled = answer.status == 429
            # A 429 is a request to slow down, not a failure: with a deadline it spends no attempt.
            if not (throttled and self.deadline is not None):
                counted += 1
            asked = retry_after_s(answer.headers.get("retry-after"))
            if counted >= self.settings.max_attempts:
                self._fail(outcome, piece, error, asked)
                return []
            delay = self._delay(tries, asked, sent_at, throttled)
            remaining = self._remaining()
            if remaining is not None and delay + MIN_ATTEMPT_S > remaining:
                self._fail(outcome, piece, f"{error}; stopped retrying: the invocation is out of time", asked)
                return []
            self.sleep(delay)

    def _delay(self, tries: int, asked: float | None, sent_at: float, throttled: bool) -> float:
        """Full-jitter exponential backoff, at least Cloud Eye's Retry-After (clamped)."""
        delay = self.rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (tries - 1)))
        if throttled:
            # The pacer cuts the rate and spreads the return over a random share of the wait.
            return max(delay, self.pacer.throttled(sent_at=sent_at, retry_after=asked or 0.0))
        return max(delay, asked or 0.0)

    def _attempt(self, piece: Chunk, limit: AdaptiveLimit, retry: bool) -> tuple[_Answer, float]:
        """One request: wait for a slot and the pacer's turn, then the exchange; raises
        ``_OutOfTime`` when the deadline comes first."""
        remaining = self._remaining()
        if remaining is not None and remaining < MIN_ATTEMPT_S:
            raise _OutOfTime
        if not limit.acquire(remaining):
            raise _OutOfTime
        throttled = False
        retry_after = None
        try:
            if self._broken is not None:  # found while this one waited for its slot
                raise _Stopped
            # The turn is booked once the slot is held: requests queued for a slot before a 429
            # cut the rate are spaced at the new rate, not sent in a burst at the old one.
            waited = False
            while (wait := self.pacer.reserve(retry=retry)) > 0:
                waited = True
                remaining = self._remaining()
                if remaining is not None and wait + MIN_ATTEMPT_S > remaining:
                    raise _OutOfTime
                cuts = self.pacer.cuts
                self.sleep(wait)
                if self.pacer.cuts == cuts:
                    break
            sent_at = self.pacer.clock()
            budget = self.settings.timeout_s
            remaining = self._remaining()
            if remaining is not None:
                if remaining < MIN_ATTEMPT_S:
                    raise _OutOfTime
                budget = min(budget, remaining)
            answer = self._exchange(piece.body, budget)
            throttled = answer.status == 429
            if throttled:
                self._throttled_seen = True
                retry_after = retry_after_s(answer.headers.get("retry-after"))
        finally:
            limit.release(throttled=throttled, retry_after=retry_after)
        self.stats.count(retry=retry, throttled=throttled)
        if verdict(answer.status) == "accepted":
            self.pacer.succeeded(waited=waited)
        return answer, sent_at

    def _without_late(self, piece: Chunk, outcome: ChunkOutcome) -> Chunk | None:
        """``piece`` without the events that left Cloud Eye's time window (rejected alone);
        ``None`` when none is left."""
        if not piece.times:
            return piece
        now = self.clock_ms()
        if in_window(min(piece.times), now) and in_window(max(piece.times), now):
            return piece
        keep = [p for p, moment in enumerate(piece.times) if in_window(moment, now)]
        kept = set(keep)
        late = tuple(index for p, index in enumerate(piece.indexes) if p not in kept)
        outcome.parts.append(Part(late, "late", error=LATE_WHILE_WAITING, transient=False))
        return piece.subset(keep) if keep else None

    def _fail_stopped(self, outcome: ChunkOutcome, piece: Chunk) -> None:
        """``piece`` fails with the configuration error that stopped the send (not retryable)."""
        outcome.parts.append(Part(piece.indexes, "failed", error=self._broken, transient=False))

    def _fail(self, outcome: ChunkOutcome, piece: Chunk, error: str, retry_after: float | None) -> None:
        outcome.parts.append(Part(piece.indexes, "failed", error=error))
        with self.stats.lock:
            self.stats.failed_requests += 1
        if retry_after is not None:
            outcome.retry_after = max(outcome.retry_after or 0.0, retry_after)

    def _configuration_error(self, status: int | None, error: str) -> str:
        if status in CREDENTIAL_STATUSES:
            setting = {
                "environment": "HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK (and HUAWEICLOUD_SDK_SECURITY_TOKEN)",
                "agency": "the function's agency (its keys and its Cloud Eye permissions)",
                "token": "CLOUDEYE_AUTH_TOKEN",
            }.get(self.settings.credential_source, "the credentials")
            what = "refused the credentials" if status == 401 else "refused the credentials' permissions"
            return f"{error}; Cloud Eye {what}: check {setting}"
        return (
            f"{error}; {self.address}{self.path} is not Cloud Eye's events API: check CLOUDEYE_ENDPOINT "
            "(or CLOUDEYE_REGION) and HUAWEICLOUD_SDK_PROJECT_ID"
        )

    # --- one exchange --------------------------------------------------------------------------

    def _headers(self, body: bytes) -> dict[str, str]:
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
        return headers

    def post_once(self, body: bytes, budget: float) -> _Answer:
        """One signed POST of ``body`` to ``self.path``, the whole exchange within ``budget``
        seconds and never retried (the forwarder's own metrics use it)."""
        return self._exchange(body, budget)

    def _exchange(self, body: bytes, budget: float) -> _Answer:
        """POST ``body``: connect, send and read the whole answer within ``budget`` seconds.

        A connection the server closed while idle is replaced in ``pool.get``; a failure here is
        a real attempt (the server may have taken the request), never resent behind the caller's
        back.
        """
        headers = self._headers(body)
        conn = self.pool.get(budget)
        entry = _watchdog.arm(time.monotonic() + budget, conn)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # a half-used connection cannot be reused
            cut = _watchdog.disarm(entry)
            if cut or isinstance(exc, TimeoutError):
                reason = f"timed out: no whole answer within {budget:.3g} s"
            else:
                reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
            return _Answer(None, {}, b"", f"Cloud Eye could not be reached at {self.address}: {reason}")
        except BaseException:
            conn.close()
            _watchdog.disarm(entry)
            raise
        cut = _watchdog.disarm(entry)
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        if response.will_close or cut:
            conn.close()
        else:
            self.pool.put(conn)
        return _Answer(response.status, answer_headers, data)


def _fail_unsettled(outcome: ChunkOutcome, error: str) -> None:
    settled = outcome.settled()
    rest = tuple(index for index in outcome.chunk.indexes if index not in settled)
    if rest:
        outcome.parts.append(Part(rest, "failed", error=error))


def _created(answer: _Answer, expected: int) -> list[dict[str, Any]]:
    """Cloud Eye's ``[{event_id, event_name}]``, one per event sent. Any other 2xx body still means
    the events were taken: their ids are then unknown (``None``), and one warning says so."""
    try:
        data = json.loads(answer.body) if answer.body else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, list) and len(data) == expected and _each_has_an_event_id(data):
        return data
    log_line(
        logging.WARNING,
        "Cloud Eye accepted events with an unexpected answer body; their event ids are unknown",
        status=answer.status,
        cloud_eye_request_id=answer.headers.get("x-request-id"),
        events=expected,
        body_bytes=len(answer.body),
    )
    return [{} for _ in range(expected)]


def _each_has_an_event_id(items: list[Any]) -> bool:
    """Whether every item is an object with a string ``event_id`` (JSON gives dicts, lists,
    strings, numbers, booleans or None: all but a dict fail the lookup)."""
    try:
        return all([type(item["event_id"]) is str for item in items])
    except (TypeError, KeyError, IndexError):
        return False
