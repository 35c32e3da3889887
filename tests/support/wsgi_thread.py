"""Serve a WSGI app (a functions-framework app) on a real loopback socket from a background thread.

``ServedApp`` does the serving; ``AppServer`` is the base of the test servers built on it (the
emulator's and the forwarder's HTTP entry): context manager and plain requests answering ``Reply``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar


class ServedApp:
    """``start(app)`` serves on a free port (threaded, one thread per request); ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", name: str = "wsgi") -> None:
        self.host = host
        self.name = name
        self.port: int | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, app: Any) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request is noise
                pass

        self._server = make_server(self.host, 0, app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers (lower-case names) and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


_Server = TypeVar("_Server", bound="AppServer")


class AppServer:
    """What the served test apps share: ``with Server() as server`` (``start()``/``stop()`` come
    from the subclass, ``start`` sets ``port``) and plain HTTP requests to it."""

    host: str
    port: int | None
    request_timeout_s: float = 60

    def start(self: _Server) -> _Server:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(
        self, method: str, target: str = "/", *, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A plain HTTP request to this server (no signing)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.request_timeout_s)
        try:
            connection.request(method, target, body=body or None, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()
