"""The route table: which handler answers which method and path.

Cloud Eye's API lives under ``/V1.0/{project_id}/``; the emulator's own control endpoints under
``/_emulator``. A path no route knows is a 404 from the API gateway (``APIGW.0101``), and so is
a known path asked with a method it does not take.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import flask

from emulator import errors, responses

Handler = Callable[[responses.Exchange], flask.Response]

_PROJECT = r"/V1\.0/(?P<project_id>[^/]+)"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    handlers: Mapping[str, Handler]  # by HTTP method


def _routes(*rows: tuple[str, Mapping[str, Handler]]) -> tuple[Route, ...]:
    return tuple(Route(re.compile(f"{path}/?"), handlers) for path, handlers in rows)


API_ROUTES = _routes(
    (f"{_PROJECT}/events", {"POST": responses.post_events, "GET": responses.list_events}),
    (f"{_PROJECT}/event/(?P<event_name>[^/]+)", {"GET": responses.event_detail}),
    (f"{_PROJECT}/metric-data", {"POST": responses.post_metric_data}),
)

CONTROL_ROUTES = _routes(
    ("/_emulator", {"GET": responses.html_page}),
    ("/_emulator/reset", {"POST": responses.reset}),
    ("/_emulator/events", {"GET": responses.stored_events}),
    ("/_emulator/metrics", {"GET": responses.stored_metrics}),
    (
        "/_emulator/faults",
        {"POST": responses.set_faults, "GET": responses.show_faults, "DELETE": responses.clear_faults},
    ),
    ("/_emulator/stats", {"GET": responses.stats}),
    ("/_emulator/requests", {"GET": responses.request_log}),
    (
        "/_emulator/resource-groups",
        {"PUT": responses.set_resource_groups, "GET": responses.show_resource_groups},
    ),
    ("/_emulator/clock", {"POST": responses.set_clock}),
)


def is_control(path: str) -> bool:
    return path == "/_emulator" or path.startswith("/_emulator/")


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for this request and the path parameters it captured, or a 404 error."""
    control = is_control(path)
    known_path = False
    for route in CONTROL_ROUTES if control else API_ROUTES:
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        known_path = True
        if method in route.handlers:
            return route.handlers[method], found.groupdict()
    if control:
        raise errors.ApiNotFound(f"no control endpoint {method} {path}")
    raise errors.MethodNotFound() if known_path else errors.ApiNotFound()
