"""Serve a WSGI app (a functions-framework app) on a real loopback socket from a background thread."""

from __future__ import annotations

import threading
from typing import Any


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
