"""Serve the forwarder's functions-framework entry (``function/main.py``) on a loopback socket.

    with IngestServer() as server:                   # target "ingest", a free port, a thread
        reply = server.post([...events...])           # JSON-encodes unless given bytes/str
        reply.status, reply.json()

Settings are read per request from ``os.environ`` of this process, so ``monkeypatch.setenv``
in a test reaches the served app.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.emulator_server import Reply
from tests.support.environ import preserved
from tests.support.wsgi_thread import ServedApp

MAIN_SOURCE = Path(__file__).resolve().parents[2] / "function" / "main.py"
_FF_VARIABLES = ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_SOURCE")


def create_app(target: str = "ingest") -> Any:
    """``functions_framework.create_app`` for ``function/main.py``, leaving ``os.environ`` as it was
    (functions-framework records its target there)."""
    import functions_framework

    with preserved(_FF_VARIABLES):
        return functions_framework.create_app(target=target, source=str(MAIN_SOURCE))


class IngestServer:
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

    def __enter__(self) -> IngestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self, method: str, target: str = "/", *, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

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
