"""The HTTP entry (functions-framework target ``ingest`` of function/main.py) served over a socket.

``python -m benchmarks.http_entry --port P`` serves it the way the ``functions-framework`` command
does (gunicorn, one worker, threads); :class:`HttpEntry` starts that in a child process and POSTs
JSON arrays of events to it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks import ROOT, served

MAIN_PY = Path(ROOT) / "function" / "main.py"
TARGET = "ingest"


def create_ingest_app() -> Any:
    """The WSGI app of the HTTP entry, loaded as the ``functions-framework`` command loads it."""
    from functions_framework import create_app

    return create_app(target=TARGET, source=str(MAIN_PY))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpEntry:
    """``with HttpEntry(env) as entry: entry.send_all(events, batch)``: the served ``ingest`` target."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> HttpEntry:
        self.port = _free_port()
        # The server logs one line per invocation: keep it off the benchmark's output.
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.http_entry", "--port", str(self.port)],
            cwd=ROOT,
            env={**self.env, "PYTHONPATH": ROOT},
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the HTTP entry exited with {self._process.returncode}: {self._log_tail()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("the HTTP entry did not start listening within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-1500:].decode("utf-8", "replace")

    def close(self) -> None:
        if self._process is not None:
            served.stop(self._process, grace_s=10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """One POST on a fresh connection (gunicorn drops idle ones after 2 s)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def send_all(self, bodies: Sequence[bytes]) -> int:
        """POST each pre-encoded JSON array in turn; return how many events were accepted."""
        accepted = 0
        for body in bodies:
            status, answer = self.post(body)
            if status not in (201, 207):
                raise RuntimeError(f"the HTTP entry answered {status}: {str(answer)[:300]}")
            accepted += answer.get("accepted", 0)
        return accepted


def encode_bodies(events: Sequence[dict[str, Any]], batch: int) -> list[bytes]:
    """The events as JSON-array request bodies of ``batch`` events each."""
    return [
        json.dumps(list(events[start : start + batch]), separators=(",", ":")).encode()
        for start in range(0, len(events), batch)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve the ingest target like functions-framework")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from functions_framework._http import create_server  # what the functions-framework command uses

    os.environ.setdefault("GUNICORN_LOG_LEVEL", "error")
    create_server(create_ingest_app(), False).run("127.0.0.1", args.port)


if __name__ == "__main__":
    main()
