"""Loopback servers the benchmarks run in child processes: start one, call it, stop it."""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from benchmarks import ROOT


class ChildServer:
    """A server in a child process; a subclass's ``__enter__`` calls :meth:`_start`."""

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def _start(self, module: str, args: list[str], env: Mapping[str, str], ready_prefix: str) -> None:
        self._process, self.url = start(module, args, env, ready_prefix)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        return call(self.url, method, path, payload)


def server_parser(doc: str | None) -> argparse.ArgumentParser:
    """A child server's command line, described by its module's first doc line: ``--host`` and
    ``--port`` (0: a free one, announced on the ready line)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser


def start(
    module: str, args: list[str], env: Mapping[str, str], ready_prefix: str
) -> tuple[subprocess.Popen[str], str]:
    """``python -m module args`` whose first stdout line is ``ready_prefix`` + its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith(ready_prefix):
        stop(process)
        raise RuntimeError(f"{module} did not start (said {line!r})")
    return process, line[len(ready_prefix) :].strip()


def stop(process: subprocess.Popen[Any], grace_s: float = 5.0) -> None:
    """Terminate, and kill what does not end within ``grace_s``."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


def call(url: str, method: str, path: str, payload: Any = None) -> Any:
    """One JSON control call to the server at ``url``; its JSON answer (a non-200 raises)."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def serve(server: Any, url: str, ready_prefix: str) -> None:
    """In the child: announce ``url`` on stdout for :func:`start`, then serve until stopped."""
    print(f"{ready_prefix}{url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
