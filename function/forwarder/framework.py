"""functions-framework glue for ``main.py``: requests in, answers out, and refusal before reading.

functions-framework reads whole request bodies on its own: after an HTTP function answers (an
``after_request`` hook calls ``request.get_data()``) and before a CloudEvent function runs.
Unchecked, a caller without the token could make the process hold a body of any size. So:

- the ingest answer is a streamed response, which that hook leaves alone; the function reads the
  body itself, in pieces, no further than the cap, and only after the token check;
- the push entry gets a ``before_request`` guard: token first, then ``Content-Length`` against the
  cap; a body without a length (chunked) is read by the guard, in pieces and no further than the
  cap, and handed to the framework from memory.

What is left unread is the server's to discard: gunicorn and werkzeug both read it away in
bounded pieces (or close the connection), never holding it whole.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from . import jsontext, logs
from .http_ingest import HttpAnswer, HttpRequest, normalise_headers, token_refusal, too_large
from .settings import DEFAULT_MAX_BODY_BYTES, SettingsError, _number

READ_CHUNK_BYTES = 65536


def body_reader(stream: Any) -> Callable[[int], bytes]:
    """``read(limit)``: the body until its end or past ``limit``, read in bounded pieces."""

    def read(limit: int) -> bytes:
        body = bytearray()
        while len(body) < limit:
            piece = stream.read(min(READ_CHUNK_BYTES, limit - len(body)))
            if not piece:
                break
            body += piece
        # Over the cap only its length matters: no copy of what is about to be refused.
        return bytes(body) if len(body) < limit else body  # type: ignore[return-value]

    return read


def http_request(request: Any, headers: dict[str, str]) -> HttpRequest:
    """The forwarder's view of a Flask request; the body is read later, and only if needed."""
    return HttpRequest(
        method=request.method.upper(),
        headers=headers,
        query={name: request.args.get(name, "") for name in request.args},
        content_length=request.content_length,
        read_body=body_reader(request.stream),
    )


def response(answer: HttpAnswer) -> Any:
    """A streamed Flask response, so the framework's hook does not read the rest of the body."""
    import flask

    data = answer.body_text().encode("utf-8")
    headers = {**answer.headers, "Content-Length": str(len(data))}
    return flask.Response(iter([data]), status=answer.status, headers=headers)


def push_message(cloud_event: Any) -> tuple[Any, str]:
    """A push CloudEvent's data (parsed when it is JSON text) and its id."""
    data = cloud_event.data
    if isinstance(data, bytes | str):
        parsed, problem = jsontext.parse(data)
        data = parsed if problem is None else data
    return data, str(cloud_event.get("id") if hasattr(cloud_event, "get") else None)


def cap_bytes() -> int:
    """``FORWARDER_MAX_BODY_BYTES``; a bad value is reported by the settings, the default holds here."""
    try:
        return int(_number(os.environ, "FORWARDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, 1))
    except SettingsError:
        return DEFAULT_MAX_BODY_BYTES


def guard_push_entry(target: str, trigger: str) -> None:
    """Install the guard on the app being created for the push entry ``target`` (functions-framework
    loads ``main.py`` inside the app's context; a plain import, or another target, installs nothing)."""
    import flask

    if not flask.has_app_context():
        return
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    if app.name != target:
        return

    def request_id(headers: dict[str, str]) -> str:
        # The caller's X-Request-Id, else the CloudEvent's id (binary mode), else a new one.
        given = headers.get("x-request-id") or headers.get("ce-id", "")
        return logs.request_id(None, {"x-request-id": given})

    def refused(answer: HttpAnswer, headers: dict[str, str]) -> Any:
        invocation = logs.Invocation(trigger, request_id(headers))
        answer.headers.setdefault("Content-Type", "application/json")
        answer.headers["X-Request-Id"] = invocation.request_id
        invocation.summary({}, status=answer.status, error=answer.body.get("error"))
        return response(answer)

    def refuse_before_reading() -> Any:
        request = flask.request
        headers = normalise_headers(dict(request.headers))
        query = {name: request.args.get(name, "") for name in request.args}
        refusal = token_refusal(headers, query)
        if refusal is not None:
            return refused(refusal, headers)
        limit = cap_bytes()
        if request.content_length is not None:
            return refused(too_large(limit), headers) if request.content_length > limit else None
        # No length (chunked): read it here, never past the cap, before the framework reads it all.
        environ = request.environ
        body = body_reader(environ["wsgi.input"])(limit + 1)
        if len(body) > limit:
            return refused(too_large(limit), headers)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return None

    def with_request_id(answer: Any) -> Any:
        # Every push answer names its request (the CloudEvent id), the framework's 500 included.
        answer.headers.setdefault("X-Request-Id", request_id(normalise_headers(dict(flask.request.headers))))
        return answer

    app.before_request(refuse_before_reading)
    app.after_request(with_request_id)
