"""Request handling: read an HTTP request, call the backend, answer the way Cloud Eye does.

Every handler takes an ``Exchange`` (the request, the path parameters its route captured, the
request id) and returns a ``flask.Response`` or raises an ``errors.EmulatorError``. Which handler
answers which method and path is decided in ``emulator.urls``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import flask
from werkzeug.exceptions import ClientDisconnected

from emulator import auth, errors, page
from emulator.faults import Fault
from emulator.models import BACKEND, MAX_QUERY_LIMIT, real_now_ms

DEFAULT_MAX_BODY_BYTES = 524288
RECENT_ON_PAGE = 200
JSON_TYPE = "application/json;charset=UTF-8"
# Cloud Eye's project ids; the official SDK sends the literal "{project_id}" when it has none.
PROJECT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class Dropped(Exception):
    """A ``drop`` fault: nothing is answered. The entry counts the drop, then ``close()`` shuts the
    socket, so a client that sees its connection closed also finds the drop in the statistics."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__("connection dropped")
        self.sock = sock

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone is fine
            self.sock.shutdown(socket.SHUT_RDWR)


@dataclass
class Exchange:
    """One request on its way through a handler."""

    request: flask.Request
    params: dict[str, str]
    request_id: str
    events: int | None = None  # how many events a post carried, for the request log

    @property
    def project_id(self) -> str:
        """The URL's project id, refused (400, nothing stored) unless it has Cloud Eye's form."""
        project_id = self.params["project_id"]
        if not PROJECT_ID.fullmatch(project_id):
            hint = " (the client was given no project id)" if project_id == "{project_id}" else ""
            raise errors.InvalidProjectId(
                f"the project id in the URL {project_id!r} is not 1-64 letters, digits or '-'{hint}"
            )
        return project_id


# --- Cloud Eye API -----------------------------------------------------------------------------


def post_events(exchange: Exchange) -> flask.Response:
    # Order: project id, rate limits, standing latency, queued fault, authentication, body, storage.
    project_id = exchange.project_id
    with BACKEND.admit_post():
        _wait_standing_delay()
        fault = BACKEND.faults.take("events")
        if fault is not None:
            _apply_fault_before(exchange.request, fault)
        _authenticate(exchange.request, project_id)
        items = _json_body(exchange.request)
        if isinstance(items, list):
            exchange.events = len(items)
        answer = BACKEND.put_events(project_id, items)
        if fault is not None and fault.kind == "drop":
            _drop_connection(exchange.request)  # store=True: stored, then the answer is lost
        return json_response(answer, 201)


def post_metric_data(exchange: Exchange) -> flask.Response:
    # As event posts, without the rate limits (those are set for event posts).
    project_id = exchange.project_id
    BACKEND.count_metric_post()
    _wait_standing_delay()
    fault = BACKEND.faults.take("metric-data")
    if fault is not None:
        _apply_fault_before(exchange.request, fault)
    _authenticate(exchange.request, project_id)
    BACKEND.put_metric_data(project_id, _json_body(exchange.request))
    if fault is not None and fault.kind == "drop":
        _drop_connection(exchange.request)
    return flask.Response(status=201)  # Cloud Eye answers metric data with no body


def list_events(exchange: Exchange) -> flask.Response:
    args = _authorized_query(exchange)
    answer = BACKEND.list_events(
        exchange.project_id, **_query_params(args, "event_type", "sub_event_type", "event_name")
    )
    return json_response(answer, 200)


def event_detail(exchange: Exchange) -> flask.Response:
    args = _authorized_query(exchange)
    filters = _query_params(
        args, "event_type", "sub_event_type", "event_source", "event_level", "event_user", "event_state"
    )
    answer = BACKEND.list_event_detail(exchange.project_id, exchange.params["event_name"], **filters)
    return json_response(answer, 200)


def _authorized_query(exchange: Exchange) -> Any:
    """The query APIs' common start: the standing latency, authentication; returns the query."""
    _wait_standing_delay()
    _authenticate(exchange.request, exchange.project_id)
    return exchange.request.args


def _wait_standing_delay() -> None:
    delay_ms = BACKEND.faults.standing_delay_ms()
    if delay_ms:
        time.sleep(delay_ms / 1000)


def _apply_fault_before(request: flask.Request, fault: Fault) -> None:
    if fault.delay_ms:
        time.sleep(fault.delay_ms / 1000)
    if fault.kind == "status":
        raise errors.InjectedError(fault.status or 500, retry_after=fault.retry_after, body=fault.body)
    if fault.kind == "drop" and not fault.store:
        _drop_connection(request)
    # "slow" (and drop with store) carry on and answer normally after the wait.


def _drop_connection(request: flask.Request) -> None:
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if sock is None:
        raise errors.InjectedError(502, body={"error_msg": "this server cannot drop connections"})
    # Take in what the client sent first: functions-framework reads the body after every request,
    # and reading it from the shut socket logged an internal error for each dropped post.
    with contextlib.suppress(OSError, ClientDisconnected):
        request.get_data(cache=True)
    raise Dropped(sock)


def _raw_path_and_query(request: flask.Request) -> tuple[str, list[tuple[str, str]]]:
    """The path as sent (the signature covers it) and the decoded query pairs."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        path, _, query = raw.partition("?")
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
    else:
        path, query = request.path, request.query_string.decode("latin-1")
    return path, parse_qsl(query, keep_blank_values=True)


def _authenticate(request: flask.Request, project_id: str) -> None:
    path, query = _raw_path_and_query(request)
    auth.authenticate(
        method=request.method,
        path=path,
        query=query,
        headers=dict(request.headers.items()),
        body=request.get_data(cache=True),
        settings=auth.AuthSettings.from_env(),
        now_ms=BACKEND.now_ms(),
    )
    header_project = request.headers.get("X-Project-Id")
    if header_project and header_project != project_id:
        raise errors.ProjectMismatch(
            f"X-Project-Id {header_project!r} differs from the project id in the URL {project_id!r}"
        )


def _max_body_bytes() -> int:
    raw = os.environ.get("EMULATOR_MAX_BODY_BYTES", "")
    return int(raw) if raw.isdigit() else DEFAULT_MAX_BODY_BYTES


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_body(request: flask.Request) -> Any:
    limit = _max_body_bytes()
    if request.content_length is not None and request.content_length > limit:
        raise errors.EntityTooLarge(f"the body has {request.content_length} bytes, the limit is {limit}")
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise errors.EntityTooLarge(f"the body has {len(body)} bytes, the limit is {limit}")
    if not body.strip():
        raise errors.EmptyBody("the body is empty; send a JSON array")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise errors.InvalidBody(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise errors.InvalidBody(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidBody(f"the body is not valid JSON ({exc})") from exc


def _int_param(args: Any, name: str, default: int | None = None) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidQuery(f"{name} must be an integer, got {raw!r}") from None


def _query_params(args: Any, *names: str) -> dict[str, Any]:
    """The query APIs' filters (``None`` where absent or empty), the time range and the page."""
    return {
        **{name: args.get(name) or None for name in names},
        "from_ms": _int_param(args, "from"),
        "to_ms": _int_param(args, "to"),
        "start": _int_param(args, "start", 0) or 0,
        "limit": _int_param(args, "limit", MAX_QUERY_LIMIT) or 0,
    }


# --- Control endpoints -------------------------------------------------------------------------


def html_page(exchange: Exchange) -> flask.Response:
    args = exchange.request.args
    limit = args.get("limit", "")
    shown = int(limit) if limit.isdigit() else RECENT_ON_PAGE
    project_id = args.get("project_id") or None
    stored = BACKEND.stored_events(project_id)
    recent = list(reversed(stored[-shown:])) if shown else []
    metrics = BACKEND.stored_metrics(project_id)
    recent_metrics = list(reversed(metrics[-shown:])) if shown else []
    html = page.render(recent, len(stored), BACKEND.stats(), recent_metrics, len(metrics))
    return flask.Response(html, status=200, content_type="text/html; charset=utf-8")


def reset(exchange: Exchange) -> flask.Response:
    BACKEND.reset()
    return json_response({"reset": True}, 200)


def stored_events(exchange: Exchange) -> flask.Response:
    stored = BACKEND.stored_events(exchange.request.args.get("project_id") or None)
    return json_response(
        {"count": len(stored), "events": [s.to_dict() for s in stored], "stats": BACKEND.stats()}, 200
    )


def stored_metrics(exchange: Exchange) -> flask.Response:
    metrics = BACKEND.stored_metrics(exchange.request.args.get("project_id") or None)
    return json_response({"count": len(metrics), "metrics": [m.to_dict() for m in metrics]}, 200)


def set_faults(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.faults.configure(_control_json(exchange.request)), 200)


def show_faults(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.faults.to_dict(), 200)


def clear_faults(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.faults.clear(), 200)


def stats(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.stats(), 200)


def request_log(exchange: Exchange) -> flask.Response:
    return json_response({"requests": BACKEND.request_log()}, 200)


def set_resource_groups(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.set_resource_groups(_control_json(exchange.request)), 200)


def show_resource_groups(exchange: Exchange) -> flask.Response:
    return json_response(BACKEND.resource_groups(), 200)


def set_clock(exchange: Exchange) -> flask.Response:
    payload = _control_json(exchange.request)
    if not isinstance(payload, dict) or set(payload) - {"now_ms", "offset_ms"} or len(payload) > 1:
        raise errors.ControlError('send {"now_ms": <UNIX ms>}, {"offset_ms": <ms>} or {} for real time')
    value = next(iter(payload.values()), None)
    if payload and (isinstance(value, bool) or not isinstance(value, int)):
        raise errors.ControlError("the clock value must be an integer number of milliseconds")
    if "now_ms" in payload:
        frozen = int(value or 0)
        BACKEND.set_clock(lambda: frozen)
    elif "offset_ms" in payload:
        offset = int(value or 0)
        BACKEND.set_clock(lambda: real_now_ms() + offset)
    else:
        BACKEND.set_clock(None)
    return json_response({"now_ms": BACKEND.now_ms()}, 200)


def _control_json(request: flask.Request) -> Any:
    body = request.get_data(cache=True)
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise errors.ControlError(f"the body is not valid JSON ({exc})") from exc


# --- Serialisation -----------------------------------------------------------------------------


def json_response(payload: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return flask.Response(body, status=status, headers=headers or {}, content_type=JSON_TYPE)


def error_response(exc: errors.EmulatorError, request_id: str) -> flask.Response:
    return json_response(exc.body(request_id), exc.status, exc.headers)
