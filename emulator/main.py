"""The emulator's functions-framework entry point (target ``cloudeye``).

Run from the repository root:
``functions-framework --source emulator/main.py --target cloudeye --port 8900``
(or ``make emulator``). functions-framework loads this file on its own, so it puts the
repository root on ``sys.path`` to reach the ``emulator`` package. Keep ``WORKERS`` at 1: the
state lives in this process's memory.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

import flask  # noqa: E402
import functions_framework  # noqa: E402

from emulator import errors, responses, urls  # noqa: E402
from emulator.models import BACKEND  # noqa: E402


@functions_framework.http
def cloudeye(request: flask.Request) -> flask.Response:
    """Cloud Eye's API under ``/V1.0/`` and the control endpoints under ``/_emulator``."""
    request_id = uuid.uuid4().hex
    exchange: responses.Exchange | None = None
    try:
        handler, params = urls.resolve(request.method, request.path.rstrip("/") or "/")
        exchange = responses.Exchange(request, params, request_id)
        response = handler(exchange)
    except errors.EmulatorError as exc:
        response = responses.error_response(exc, request_id)
    except responses.Dropped as drop:
        _record(request, request_id, None, exchange)
        drop.close()
        # The socket is shut; the server's attempt to write this fails quietly.
        return flask.Response(status=500)
    if not urls.is_control(request.path):
        _record(request, request_id, response.status_code, exchange)
    response.headers["X-Request-Id"] = request_id
    return response


def _record(
    request: flask.Request, request_id: str, status: int | None, exchange: responses.Exchange | None
) -> None:
    BACKEND.record_response(
        status=status,
        method=request.method,
        path=request.path,
        request_id=request_id,
        events=exchange.events if exchange else None,
    )
