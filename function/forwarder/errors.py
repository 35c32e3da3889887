"""The forwarder's exceptions: one base class for everything the library raises on purpose."""

from __future__ import annotations

from typing import Any


class ForwarderError(Exception):
    """Base of every error the forwarder raises on purpose (never carries a secret in its text)."""


class SettingsError(ForwarderError, ValueError):
    """A setting is missing or malformed; the message names the variable (never its secret value)."""


class EventRuleError(ForwarderError, ValueError):
    """A value breaks one of Cloud Eye's event rules (the message is the plain-words reason)."""


class BodyError(ForwarderError, ValueError):
    """An HTTP body cannot be read as events at all (answered with 400)."""


class DeliveryError(ForwarderError, RuntimeError):
    """Some valid events could not be delivered after retries; the batch should be redelivered."""

    def __init__(self, counts: dict[str, Any], errors: list[str]) -> None:
        self.counts = counts
        self.errors = errors
        first = f"; first error: {errors[0]}" if errors else ""
        super().__init__(
            f"{counts['failed']} of {counts['received']} events could not be delivered to Cloud Eye "
            f"after retries (accepted {counts['accepted']}, rejected {counts['rejected']}){first}. "
            "Redelivering the batch is safe: Cloud Eye keeps one copy of an identical event."
        )
