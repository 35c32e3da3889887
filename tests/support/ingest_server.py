"""Serve the forwarder's functions-framework entry (``function/main.py``) on a loopback socket.

    with IngestServer() as server:                   # target "ingest", a free port, a thread
        reply = server.post([...events...])           # JSON-encodes unless given bytes/str
        reply.status, reply.json()

Settings are read per request from ``os.environ`` of this process, so ``monkeypatch.setenv``
in a test reaches the served app.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.support.environ import preserved
from tests.support.wsgi_thread import AppServer, Reply, ServedApp

MAIN_SOURCE = Path(__file__).resolve().parents[2] / "function" / "main.py"
_FF_VARIABLES = ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_SOURCE")


def create_app(target: str = "ingest") -> Any:
    """``functions_framework.create_app`` for ``function/main.py``, leaving ``os.environ`` as it was
    (functions-framework records its target there)."""
    import functions_framework

    with preserved(_FF_VARIABLES):
        return functions_framework.create_app(target=target, source=str(MAIN_SOURCE))


class IngestServer(AppServer):
    def __init__(self, target: str = "ingest", host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port: int | None = None
        self._served = ServedApp(host, name=target)

    def start(self) -> IngestServer:
        self._served.start(create_app(self.target))
        self.port = self._served.port
        return self

    def stop(self) -> None:
        self._served.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def post(
        self,
        payload: Any,
        *,
        target: str = "/",
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        if isinstance(payload, bytes | str):
            body = payload.encode("utf-8") if isinstance(payload, str) else payload
        else:
            body = json.dumps(payload).encode("utf-8")
        return self.request(
            "POST", target, body=body, headers={"Content-Type": content_type, **(headers or {})}
        )


# --- the functions-framework command, in its own process -------------------------------------


class ServedFunction:
    """``functions-framework --source function/main.py --target <target>`` in a child process, as
    a user runs it (gunicorn on Linux), on a free loopback port. Its worker's memory is read from
    ``/proc``: ``reset_peak()`` then ``peak_mib()`` gives the most it held in between."""

    def __init__(self, target: str, env: Mapping[str, str]) -> None:
        self.target = target
        self.env = dict(env)
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServedFunction:
        command = Path(sys.executable).with_name("functions-framework")
        self.process = subprocess.Popen(
            [
                str(command),
                "--source",
                str(MAIN_SOURCE),
                "--target",
                self.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                if self._worker() is not None:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"functions-framework did not listen on 127.0.0.1:{self.port}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _worker(self) -> int | None:
        """The process that serves requests: gunicorn's worker (the arbiter's child), else itself."""
        assert self.process is not None
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def _status_mib(self, key: str) -> float:
        pid = self._worker()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {key} in /proc/{pid}/status")

    def rss_mib(self) -> float:
        return self._status_mib("VmRSS")

    def peak_mib(self) -> float:
        return self._status_mib("VmHWM")

    def reset_peak(self) -> None:
        """Start the peak (VmHWM) again from the current RSS (Linux: ``5`` to ``clear_refs``)."""
        Path(f"/proc/{self._worker()}/clear_refs").write_text("5")

    def send(
        self,
        headers: Mapping[str, str],
        body: bytes | int,
        *,
        chunked: bool = True,
        method: str = "POST",
        target: str = "/",
    ) -> Reply | None:
        """Send ``body`` (or that many bytes of a JSON-looking array), chunked or with
        Content-Length, while reading the answer as it comes. A server that answers early may
        close the connection before the body is all sent: the answer is what counts."""
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        total = body if isinstance(body, int) else len(body)
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
        answer: list[Reply] = []
        reader = threading.Thread(target=lambda: answer.extend(_read_reply(connection)), daemon=True)
        reader.start()
        try:
            connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for data in _pieces(body):
                connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            if chunked:
                connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        reader.join(timeout=60)
        connection.close()
        return answer[0] if answer else None


def _pieces(body: bytes | int) -> Iterator[bytes]:
    if isinstance(body, bytes):
        yield from (body[start : start + 65536] for start in range(0, len(body), 65536))
        return
    piece = b"[" + b"0," * 32_767 + b"0"
    for start in range(0, body, len(piece)):
        yield piece[: min(len(piece), body - start)]


def _read_reply(connection: socket.socket) -> list[Reply]:
    data = b""
    try:
        while True:
            head, found, rest = data.partition(b"\r\n\r\n")
            if found:
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                }
                length = int(headers.get("content-length", "-1"))
                if 0 <= length <= len(rest):
                    return [Reply(int(lines[0].split()[1]), headers, rest[:length])]
            more = connection.recv(65536)
            if not more:
                return []
            data += more
    except OSError:
        return []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
