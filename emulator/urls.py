"""The route table: which handler answers which method and path.

Cloud Eye's API lives under ``/V1.0/{project_id}/``; the emulator's own control endpoints under
``/_emulator``. A path no route knows is a 404 from the API gateway (``APIGW.0101``), and so is
a known path asked with a method it does not take.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import flask

from emulator import errors, responses

Handler = Callable[[responses.Exchange], flask.Response]

_PROJECT = r"/V1\.0/(?P<project_id>[^/]+)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _routes(*rows: tuple[str, str, Handler]) -> tuple[Route, ...]:
    return tuple(Route(method, re.compile(f"{path}/?"), handler) for method, path, handler in rows)


API_ROUTES = _routes(
    ("POST", f"{_PROJECT}/events", responses.post_events),
    ("GET", f"{_PROJECT}/events", responses.list_events),
    ("GET", f"{_PROJECT}/event/(?P<event_name>[^/]+)", responses.event_detail),
    ("POST", f"{_PROJECT}/metric-data", responses.post_metric_data),
)

CONTROL_ROUTES = _routes(
    ("GET", "/_emulator", responses.html_page),
    ("POST", "/_emulator/reset", responses.reset),
    ("GET", "/_emulator/events", responses.stored_events),
    ("GET", "/_emulator/metrics", responses.stored_metrics),
    ("POST", "/_emulator/faults", responses.set_faults),
    ("GET", "/_emulator/faults", responses.show_faults),
    ("DELETE", "/_emulator/faults", responses.clear_faults),
    ("GET", "/_emulator/stats", responses.stats),
    ("GET", "/_emulator/requests", responses.request_log),
    ("PUT", "/_emulator/resource-groups", responses.set_resource_groups),
    ("GET", "/_emulator/resource-groups", responses.show_resource_groups),
    ("POST", "/_emulator/clock", responses.set_clock),
)


def is_control(path: str) -> bool:
    return path == "/_emulator" or path.startswith("/_emulator/")


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for this request and the path parameters it captured, or a 404 error."""
    control = is_control(path)
    path_matched = False
    for route in CONTROL_ROUTES if control else API_ROUTES:
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        path_matched = True
        if route.method == method:
            return route.handler, found.groupdict()
    if control:
        raise errors.ApiNotFound(f"no control endpoint {method} {path}")
    raise errors.MethodNotFound() if path_matched else errors.ApiNotFound()
