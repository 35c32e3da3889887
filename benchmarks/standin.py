"""A minimal loopback Cloud Eye stand-in: ``POST /V1.0/{project_id}/events`` -> 201 after a fixed delay.

It answers ``[{"event_id", "event_name"}]`` per event, keeps connections alive (HTTP/1.1), checks
no signature and keeps no state beyond counters, so it costs the client nothing but the round trip
and the service time. It runs in its own process (``python -m benchmarks.standin``) so its CPU is
never counted as the client's. Control: ``POST /_standin/config {"delay_ms": 30}``,
``GET /_standin/stats``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks import served

EVENTS_PATH = re.compile(r"^/V1\.0/[A-Za-z0-9-]{1,64}/events/?$")
READY_PREFIX = "STANDIN-READY "


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], delay_ms: float = 0.0) -> None:
        super().__init__(address, _Handler)
        self.delay_s = delay_ms / 1000
        self.requests = 0
        self.events = 0
        self.busy_s = 0.0  # summed time from request line to answer written: the real service time
        self.lock = threading.Lock()
        self.ids = itertools.count(1)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: StandInServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "standin")
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        started = time.perf_counter()
        body = self._body()
        if self.path == "/_standin/config":
            self.server.delay_s = float(json.loads(body or b"{}").get("delay_ms", 0)) / 1000
            self._answer(200, {"delay_ms": self.server.delay_s * 1000})
            return
        if not EVENTS_PATH.match(self.path.split("?", 1)[0]):
            self._answer(404, {"error_code": "standin.404", "error_msg": f"no route {self.path}"})
            return
        try:
            events = json.loads(body)
        except ValueError:
            self._answer(400, {"error_code": "ces.0014", "error_msg": "body is not JSON"})
            return
        if not isinstance(events, list) or not 1 <= len(events) <= 100:
            self._answer(400, {"error_code": "ces.0014", "error_msg": "1-100 events per request"})
            return
        if self.server.delay_s:
            time.sleep(self.server.delay_s)  # the fixed service time: Cloud Eye's work + network
        answer = [
            {"event_id": f"ev{next(self.server.ids):016x}", "event_name": event.get("event_name")}
            for event in events
        ]
        self._answer(201, answer)
        with self.server.lock:
            self.server.requests += 1
            self.server.events += len(events)
            self.server.busy_s += time.perf_counter() - started

    def do_GET(self) -> None:
        if self.path == "/_standin/stats":
            with self.server.lock:
                stats: dict[str, float] = {"requests": self.server.requests, "events": self.server.events}
                stats["busy_s"] = self.server.busy_s
            self._answer(200, stats)
        else:
            self._answer(404, {"error_code": "standin.404", "error_msg": f"no route {self.path}"})


class StandIn(served.ChildServer):
    """The stand-in served by a child process: ``with StandIn() as s: s.url; s.set_delay(30)``."""

    def __init__(self, delay_ms: float = 0.0) -> None:
        super().__init__()
        self.delay_ms = delay_ms

    def __enter__(self) -> StandIn:
        args = ["--port", "0", "--delay-ms", str(self.delay_ms)]
        self._start("benchmarks.standin", args, os.environ, READY_PREFIX)
        return self

    def set_delay(self, delay_ms: float) -> None:
        self.call("POST", "/_standin/config", {"delay_ms": delay_ms})
        self.delay_ms = delay_ms

    def stats(self) -> dict[str, float]:
        stats: dict[str, float] = self.call("GET", "/_standin/stats")
        return stats


def main(argv: list[str] | None = None) -> None:
    parser = served.server_parser(__doc__)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = StandInServer((args.host, args.port), args.delay_ms)
    served.serve(server, f"http://{args.host}:{server.server_port}", READY_PREFIX)


if __name__ == "__main__":
    main()
