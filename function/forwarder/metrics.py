"""The forwarder's own figures in Cloud Eye: one custom-metrics request at the end of an invocation.

With ``FORWARDER_METRICS_NAMESPACE`` set, :func:`publish` sends the counts of the invocation's
summary log line (received, accepted, rejected, failed, retries, throttled) and its duration as
``POST /V1.0/{project_id}/metric-data``, signed and sent like the events themselves (same endpoint,
credentials, proxy and kept-alive connections). Each metric has two dimensions, ``function`` and
``trigger``, so an alarm can watch one function or one trigger of it.

Best effort: one attempt, never past the invocation's deadline, never an exception; when the
figures cannot be sent, one warning log line says why and the invocation goes on unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import SettingsError
from .logs import Invocation
from .scrub import scrub
from .settings import Settings

# metric_name -> unit. The deploy template's alarm rules use these names.
COUNT_METRICS = ("received", "accepted", "rejected", "failed", "retries", "throttled")
METRIC_UNITS = {**{name: "count" for name in COUNT_METRICS}, "duration": "ms"}
# How long Cloud Eye keeps each raw data point, in seconds: the most it allows (7 days).
TTL_S = 604_800
DEFAULT_FUNCTION_NAME = "cloudeye-forwarder"
# Without a platform deadline (a local HTTP host), still never hold an answer longer than this.
MAX_WAIT_S = 3.0
# Do not start the request with less time than this left before the deadline.
MIN_WAIT_S = 0.05

# Cloud Eye's custom namespace: service.item, each part 3-32 letters, digits or '_' starting with
# a letter. Namespaces starting like the cloud's own are refused by Cloud Eye, so they are here too.
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,31}\.[A-Za-z][A-Za-z0-9_]{2,31}$")
RESERVED_PREFIXES = ("SYS.", "AGT.", "SRE.")
# A dimension value: Cloud Eye allows 1-256 characters; FunctionGraph function names fit this.
FUNCTION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")


def check_namespace(namespace: str) -> str:
    """The namespace, or a ``SettingsError`` naming FORWARDER_METRICS_NAMESPACE."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise SettingsError(
            "FORWARDER_METRICS_NAMESPACE must look like 'service.item' (each part 3-32 letters, "
            "digits or '_', starting with a letter), e.g. 'FORWARDER.EVENTS'; "
            f"got {namespace[:100]!r}"
        )
    if namespace.upper().startswith(RESERVED_PREFIXES):
        raise SettingsError(
            f"FORWARDER_METRICS_NAMESPACE must not start with {', '.join(RESERVED_PREFIXES)} "
            f"(Cloud Eye keeps those for the cloud's own metrics); got {namespace!r}"
        )
    return namespace


def check_function_name(name: str | None) -> None:
    """A ``SettingsError`` unless ``name`` (when set) can be a metric dimension value."""
    if name is not None and not FUNCTION_NAME_PATTERN.fullmatch(name):
        raise SettingsError(
            "FORWARDER_FUNCTION_NAME (else the platform's function name) must be 1-256 letters, "
            f"digits, '_', '-' or '.' to be a metric dimension; got {name[:100]!r}"
        )


def metric_data(
    namespace: str, function_name: str, trigger: str, figures: Mapping[str, Any], collect_time_ms: int
) -> list[dict[str, Any]]:
    """The metric-data body: one item per metric, all with the same dimensions and time."""
    dimensions = [{"name": "function", "value": function_name}, {"name": "trigger", "value": trigger}]
    items = []
    for name, unit in METRIC_UNITS.items():
        if name == "duration":
            value: int | float = round(float(figures.get("duration_ms") or 0.0), 1)
            kind = "float"
        else:
            value, kind = int(figures.get(name) or 0), "int"
        items.append(
            {
                "metric": {"namespace": namespace, "dimensions": dimensions, "metric_name": name},
                "ttl": TTL_S,
                "collect_time": collect_time_ms,
                "value": value,
                "unit": unit,
                "type": kind,
            }
        )
    return items


def publish(
    invocation: Invocation, settings_factory: Callable[[], Settings], *, deadline: float | None = None
) -> bool:
    """Send the figures of ``invocation``'s summary line, if metrics are on; True when Cloud Eye
    took them. Never raises; ``deadline`` is a ``time.monotonic()`` value it never runs past."""
    figures = getattr(invocation, "figures", None)
    try:
        settings = settings_factory()
    except Exception:  # the invocation has already reported its configuration problem
        return False
    if not settings.metrics_namespace or not figures or figures.get("dry_run"):
        return False  # off; or nothing was counted; or a dry run, which sends nothing at all
    try:
        problem = _send(settings, invocation, figures, deadline)
    except SettingsError as exc:  # say which setting (its text never holds a secret)
        problem = str(exc)
    except Exception as exc:  # a bug must not fail the invocation; the type alone is safe to log
        problem = f"the request could not be sent ({type(exc).__name__})"
    if problem is None:
        return True
    invocation.log(
        logging.WARNING,
        "metrics not sent",
        namespace=settings.metrics_namespace,
        error=scrub(problem, settings),
    )
    return False



def _send(
    settings: Settings, invocation: Invocation, figures: Mapping[str, Any], deadline: float | None
) -> str | None:
    """One signed request; ``None`` when Cloud Eye took it, else why not."""
    from .client import CloudEyeClient, describe_error  # http.client and ssl load only when on

    timeout = min(settings.timeout_s, MAX_WAIT_S)
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining < MIN_WAIT_S:
            return "no time left before the invocation's deadline"
        timeout = min(timeout, remaining)
    namespace = settings.metrics_namespace or ""
    body = metric_data(
        namespace,
        settings.function_name or DEFAULT_FUNCTION_NAME,
        invocation.trigger,
        figures,
        time.time_ns() // 1_000_000,
    )
    # The events client, aimed at metric-data: the same headers, signing, proxy and connections.
    sender = CloudEyeClient(settings, deadline=deadline, resource="metric-data")
    answer = sender.post_once(json.dumps(body).encode("utf-8"), timeout)
    if answer.status is None:
        return answer.error or "no answer"
    if 200 <= answer.status < 300:
        return None
    return describe_error(answer.status, answer.body, answer.headers.get("x-request-id"))
