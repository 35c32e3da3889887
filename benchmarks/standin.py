"""A minimal loopback Cloud Eye stand-in: ``POST /V1.0/{project_id}/events`` -> 201 after a fixed delay.

It answers ``[{"event_id", "event_name"}]`` per event, keeps connections alive (HTTP/1.1), checks
no signature and keeps no state beyond counters, so it costs the client nothing but the round trip
and the service time. It runs in its own process (``python -m benchmarks.standin``) so its CPU is
never counted as the client's. Control: ``POST /_standin/config {"delay_ms": 30}``,
``GET /_standin/stats``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
                stats = {"requests": self.server.requests, "events": self.server.events}
                stats["busy_s"] = self.server.busy_s
            self._answer(200, stats)
        else:
            self._answer(404, {"error_code": "standin.404", "error_msg": f"no route {self.path}"})


class StandIn:
    """The stand-in served by a child process: ``with StandIn() as s: s.url; s.set_delay(30)``."""

    def __init__(self, delay_ms: float = 0.0) -> None:
        self.delay_ms = delay_ms
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> StandIn:
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.standin", "--port", "0", "--delay-ms", str(self.delay_ms)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith(READY_PREFIX):
            self.close()
            raise RuntimeError(f"the Cloud Eye stand-in did not start (said {line!r})")
        self.url = line[len(READY_PREFIX) :].strip()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout:
                self._process.stdout.close()
            self._process = None

    def _call(self, method: str, path: str, payload: object = None) -> dict:
        host_port = self.url.split("://", 1)[1]
        conn = http.client.HTTPConnection(host_port, timeout=10)
        try:
            body = None if payload is None else json.dumps(payload).encode()
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def set_delay(self, delay_ms: float) -> None:
        self._call("POST", "/_standin/config", {"delay_ms": delay_ms})
        self.delay_ms = delay_ms

    def stats(self) -> dict:
        return self._call("GET", "/_standin/stats")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = StandInServer((args.host, args.port), args.delay_ms)
    host, port = server.server_address[:2]
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
