"""Cloud Eye event forwarder: validate, chunk, sign and report custom events.

Public API: :func:`report_events` and :class:`Settings`. Importing this package is cheap:
pydantic and the HTTP client load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DeliveryError",
    "ForwarderError",
    "Report",
    "Settings",
    "SettingsError",
    "report_events",
    "validate_events",
]

_LAZY = {
    "report_events": ("pipeline", "report_events"),
    "Report": ("report", "Report"),
    "Settings": ("settings", "Settings"),
    "SettingsError": ("errors", "SettingsError"),
    "DeliveryError": ("errors", "DeliveryError"),
    "ForwarderError": ("errors", "ForwarderError"),
    "validate_events": ("events", "validate_events"),
}

if TYPE_CHECKING:
    from .errors import DeliveryError, ForwarderError, SettingsError
    from .events import validate_events
    from .pipeline import report_events
    from .report import Report
    from .settings import Settings


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'forwarder' has no attribute {name!r}")
    from importlib import import_module

    module_name, attribute = _LAZY[name]
    value = getattr(import_module(f".{module_name}", __name__), attribute)
    globals()[name] = value
    return value
