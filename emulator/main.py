"""The emulator's HTTP layer: parse requests, call the backend, serialise Cloud Eye-shaped answers.

Run from the repository root:
``functions-framework --source emulator/main.py --target cloudeye --port 8900``
(functions-framework loads this file on its own, so it puts the repository root and
``function/`` on ``sys.path`` to reach the ``emulator`` package and the forwarder's rules).
Keep ``WORKERS`` at 1: the state lives in this process's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

_ROOT = Path(__file__).resolve().parent.parent
for _entry in (str(_ROOT), str(_ROOT / "function")):
    if _entry not in sys.path:
        sys.path.append(_entry)

import flask  # noqa: E402
import functions_framework  # noqa: E402
from werkzeug.exceptions import ClientDisconnected  # noqa: E402

from emulator import auth, errors, page  # noqa: E402
from emulator.backend import BACKEND, Fault  # noqa: E402

DEFAULT_MAX_BODY_BYTES = 524288
RECENT_ON_PAGE = 200
JSON_TYPE = "application/json;charset=UTF-8"

_EVENTS_PATH = re.compile(r"^/V1\.0/(?P<project_id>[^/]+)/events/?$")
_METRIC_DATA_PATH = re.compile(r"^/V1\.0/(?P<project_id>[^/]+)/metric-data/?$")
_EVENT_PATH = re.compile(r"^/V1\.0/(?P<project_id>[^/]+)/event/(?P<event_name>[^/]+)/?$")


class _Dropped(Exception):
    """The connection was closed on purpose (a ``drop`` fault); nothing must be answered."""


@functions_framework.http
def cloudeye(request: flask.Request) -> flask.Response:
    """Entry point: the Cloud Eye event API under ``/V1.0/`` and control endpoints under ``/_emulator``."""
    request_id = uuid.uuid4().hex
    if request.path == "/_emulator" or request.path.startswith("/_emulator/"):
        try:
            response = _control(request)
        except errors.EmulatorError as exc:
            response = _error_response(exc, request_id)
    else:
        response = _api(request, request_id)
    response.headers["X-Request-Id"] = request_id
    return response


# --- Cloud Eye API -----------------------------------------------------------------------------


def _api(request: flask.Request, request_id: str) -> flask.Response:
    counted: dict[str, int | None] = {"events": None}
    try:
        response = _route_api(request, counted)
    except errors.EmulatorError as exc:
        response = _error_response(exc, request_id)
    except _Dropped:
        BACKEND.record_response(
            status=None, method=request.method, path=request.path, request_id=request_id, **counted
        )
        # The socket is already shut; the server's attempt to write this fails quietly.
        return flask.Response(status=500)
    BACKEND.record_response(
        status=response.status_code,
        method=request.method,
        path=request.path,
        request_id=request_id,
        **counted,
    )
    return response


def _route_api(request: flask.Request, counted: dict[str, int | None]) -> flask.Response:
    path = request.path
    match = _EVENTS_PATH.match(path)
    if match:
        if request.method == "POST":
            return _post_events(request, match["project_id"], counted)
        if request.method == "GET":
            _wait_standing_delay()
            _authenticate(request, match["project_id"])
            return _list_events(request, match["project_id"])
        raise errors.MethodNotFound()
    match = _METRIC_DATA_PATH.match(path)
    if match:
        if request.method == "POST":
            return _post_metric_data(request, match["project_id"])
        raise errors.MethodNotFound()
    match = _EVENT_PATH.match(path)
    if match:
        if request.method == "GET":
            _wait_standing_delay()
            _authenticate(request, match["project_id"])
            return _event_detail(request, match["project_id"], match["event_name"])
        raise errors.MethodNotFound()
    raise errors.ApiNotFound()


def _post_events(request: flask.Request, project_id: str, counted: dict[str, int | None]) -> flask.Response:
    # Order: rate limits, standing latency, queued fault, authentication, body, storage.
    with BACKEND.admit_post():
        _wait_standing_delay()
        fault = BACKEND.take_fault()
        if fault is not None:
            _apply_fault_before(request, fault)
        _authenticate(request, project_id)
        items = _json_body(request)
        if isinstance(items, list):
            counted["events"] = len(items)
        answer = BACKEND.put_events(project_id, items)
        if fault is not None and fault.kind == "drop":
            _drop_connection(request)  # store=True: stored, then the answer is lost
        return _json_response(answer, 201)


def _post_metric_data(request: flask.Request, project_id: str) -> flask.Response:
    # Same order as event posts, without the rate limits (they are set for event posts).
    BACKEND.count_metric_post()
    _wait_standing_delay()
    fault = BACKEND.take_fault("metric-data")
    if fault is not None:
        _apply_fault_before(request, fault)
    _authenticate(request, project_id)
    BACKEND.put_metric_data(project_id, _json_body(request))
    if fault is not None and fault.kind == "drop":
        _drop_connection(request)
    return flask.Response(status=201)


def _wait_standing_delay() -> None:
    delay_ms = BACKEND.standing_delay_ms()
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
    with contextlib.suppress(OSError):  # already gone is fine
        sock.shutdown(socket.SHUT_RDWR)
    raise _Dropped()


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
        raise errors.EmptyBody("the body is empty; send a JSON array of 1 to 100 events")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise errors.InvalidBody(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise errors.InvalidBody(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    except ValueError as exc:
        raise errors.InvalidBody(f"the body is not valid JSON ({exc})") from exc


def _int_param(request: flask.Request, name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidQuery(f"{name} must be an integer, got {raw!r}") from None


def _text_param(request: flask.Request, name: str) -> str | None:
    return request.args.get(name) or None


def _list_events(request: flask.Request, project_id: str) -> flask.Response:
    answer = BACKEND.list_events(
        project_id,
        event_type=_text_param(request, "event_type"),
        sub_event_type=_text_param(request, "sub_event_type"),
        event_name=_text_param(request, "event_name"),
        from_ms=_int_param(request, "from"),
        to_ms=_int_param(request, "to"),
        start=_int_param(request, "start", 0) or 0,
        limit=_int_param(request, "limit", 100) or 0,
    )
    return _json_response(answer, 200)


def _event_detail(request: flask.Request, project_id: str, event_name: str) -> flask.Response:
    answer = BACKEND.list_event_detail(
        project_id,
        event_name,
        event_type=_text_param(request, "event_type"),
        sub_event_type=_text_param(request, "sub_event_type"),
        event_source=_text_param(request, "event_source"),
        event_level=_text_param(request, "event_level"),
        event_user=_text_param(request, "event_user"),
        event_state=_text_param(request, "event_state"),
        from_ms=_int_param(request, "from"),
        to_ms=_int_param(request, "to"),
        start=_int_param(request, "start", 0) or 0,
        limit=_int_param(request, "limit", 100) or 0,
    )
    return _json_response(answer, 200)


# --- Control endpoints -------------------------------------------------------------------------


def _control(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/") or "/"
    method = request.method
    if path == "/_emulator" and method == "GET":
        return _html_page(request)
    if path == "/_emulator/reset" and method == "POST":
        BACKEND.reset()
        return _json_response({"reset": True}, 200)
    if path == "/_emulator/events" and method == "GET":
        stored = BACKEND.stored_events(request.args.get("project_id") or None)
        return _json_response(
            {"count": len(stored), "events": [s.to_dict() for s in stored], "stats": BACKEND.stats()}, 200
        )
    if path == "/_emulator/metrics" and method == "GET":
        metrics = BACKEND.stored_metrics(request.args.get("project_id") or None)
        return _json_response({"count": len(metrics), "metrics": [m.to_dict() for m in metrics]}, 200)
    if path == "/_emulator/faults":
        if method == "POST":
            return _json_response(BACKEND.configure_faults(_control_json(request)), 200)
        if method == "GET":
            return _json_response(BACKEND.fault_plan(), 200)
        if method == "DELETE":
            return _json_response(BACKEND.clear_faults(), 200)
    if path == "/_emulator/stats" and method == "GET":
        return _json_response(BACKEND.stats(), 200)
    if path == "/_emulator/requests" and method == "GET":
        return _json_response({"requests": BACKEND.request_log()}, 200)
    if path == "/_emulator/resource-groups":
        if method == "PUT":
            return _json_response(BACKEND.set_resource_groups(_control_json(request)), 200)
        if method == "GET":
            return _json_response(BACKEND.resource_groups(), 200)
    if path == "/_emulator/clock" and method == "POST":
        return _json_response(_set_clock(_control_json(request)), 200)
    raise errors.ApiNotFound(f"no control endpoint {method} {path}")


def _control_json(request: flask.Request) -> Any:
    body = request.get_data(cache=True)
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise errors.ControlError(f"the body is not valid JSON ({exc})") from exc


def _set_clock(payload: Any) -> dict[str, int]:
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
        BACKEND.set_clock(lambda: time.time_ns() // 1_000_000 + offset)
    else:
        BACKEND.set_clock(None)
    return {"now_ms": BACKEND.now_ms()}


def _html_page(request: flask.Request) -> flask.Response:
    limit = request.args.get("limit", "")
    shown = int(limit) if limit.isdigit() else RECENT_ON_PAGE
    stored = BACKEND.stored_events(request.args.get("project_id") or None)
    recent = list(reversed(stored[-shown:])) if shown else []
    metrics = BACKEND.stored_metrics(request.args.get("project_id") or None)
    recent_metrics = list(reversed(metrics[-shown:])) if shown else []
    html = page.render(recent, len(stored), BACKEND.stats(), recent_metrics, len(metrics))
    return flask.Response(html, status=200, content_type="text/html; charset=utf-8")


# --- Serialisation -----------------------------------------------------------------------------


def _json_response(payload: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return flask.Response(body, status=status, headers=headers or {}, content_type=JSON_TYPE)


def _error_response(exc: errors.EmulatorError, request_id: str) -> flask.Response:
    return _json_response(exc.body(request_id), exc.status, exc.headers)
