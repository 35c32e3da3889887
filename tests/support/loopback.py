"""A scripted Cloud Eye stand-in on 127.0.0.1 for client tests: one answer per request, in order.

Each request is recorded (method, path, headers, body, client port = the TCP connection), the
number of requests in flight is tracked, and answers come from a script:

    with LoopbackServer([Answer(429, retry_after="2"), Answer(201)]) as server:
        ...  # point CLOUDEYE_ENDPOINT at server.url

The last answer repeats once the script runs out. ``Answer(201)`` answers with one
``{event_id, event_name}`` per event in the request body, like Cloud Eye.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 201
    body: Any = None  # bytes, or JSON-able; None: Cloud Eye's created-events answer for 2xx
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    request_id: str | None = None
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering
    close_after: bool = False  # answer (as if keeping alive), then close the connection
    # > 0: promise a long body, then send it one byte every drip_s seconds (each read succeeds,
    # the answer never completes) until the client hangs up or the server stops
    drip_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    in_flight: int = 0  # requests being answered when this one arrived, itself included


class LoopbackServer:
    def __init__(
        self, script: list[Answer] | None = None, *, answer_for: Callable[[bytes], Answer] | None = None
    ) -> None:
        """``answer_for(body)``, when given, chooses each answer from the request body instead."""
        self.script = list(script or [Answer(201)])
        self.answer_for = answer_for
        self.requests: list[Received] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> set[int]:
        return {request.client_port for request in self.requests}

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_answer(self, received: Received) -> tuple[int, Answer]:
        with self._lock:
            self.requests.append(received)
            position = len(self.requests) - 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            received.in_flight = self.active
        if self.answer_for is not None:
            return position, self.answer_for(received.body)
        return position, self.script[min(position, len(self.script) - 1)]

    def _done(self) -> None:
        with self._lock:
            self.active -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive
            wbufsize = -1  # one write per answer (no Nagle + delayed-ACK stalls); flushed per request
            timeout = 10  # idle kept-alive connections end instead of lingering

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received(
                    self.command, self.path, dict(self.headers.items()), body, self.client_address[1]
                )
                position, answer = server._next_answer(received)
                try:
                    if answer.delay_s:
                        time.sleep(answer.delay_s)
                    if answer.drop:
                        self.close_connection = True
                        return
                    if answer.drip_s:
                        self._drip(answer)
                        return
                    self._answer(answer, body, position)
                    if answer.close_after:
                        self.close_connection = True
                finally:
                    server._done()

            do_GET = do_POST

            def _drip(self, answer: Answer) -> None:
                self.close_connection = True
                self.send_response(answer.status)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    self.wfile.flush()
                    while not server._stopping.wait(answer.drip_s):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    return  # the client hung up

            def _answer(self, answer: Answer, request_body: bytes, position: int) -> None:
                payload = answer.body
                if payload is None and 200 <= answer.status < 300:
                    try:
                        events = json.loads(request_body)
                    except ValueError:
                        events = []
                    payload = [
                        {"event_id": f"ev{position}-{i}", "event_name": event.get("event_name")}
                        for i, event in enumerate(events)
                    ]
                data = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                if answer.request_id is not None:
                    self.send_header("X-Request-Id", answer.request_id)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def forget_pooled_connections() -> None:
    """Close and drop the client's kept-alive connections (ports get reused between tests)."""
    from forwarder import client

    with client._pools_lock:
        pools = list(client._pools.values())
        client._pools.clear()
    for pool in pools:
        with pool._lock:
            idle, pool._idle = pool._idle, []
        for conn in idle:
            conn.close()
