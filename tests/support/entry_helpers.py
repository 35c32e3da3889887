"""Small helpers for the entry-point tests: valid events, a fake FunctionGraph context, log lines."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tests.support.golden import load_event


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_event(
    index: int, *, now: int | None = None, name: str = "BatchEvent", **detail: Any
) -> dict[str, Any]:
    """A valid custom event; ``index`` makes its resource (and so its duplicate key) unique."""
    return {
        "event_name": name,
        "event_source": "tests.entry",
        "time": now if now is not None else now_ms(),
        "detail": {
            "content": f"event number {index}",
            "resource_id": f"res:{index:05d}",
            "resource_name": f"res-{index:05d}",
            "event_state": "normal",
            "event_level": "Info",
            "event_user": "entry-tests",
            "event_type": "EVENT.CUSTOM",
            **detail,
        },
    }


def short_event(name: str = "DiskFull", *, time_ms: int | None = None, **detail: Any) -> dict[str, Any]:
    """A valid custom event with only the fields Cloud Eye requires (plus ``detail``), from a
    second before ``time_ms`` (default now)."""
    return {
        "event_name": name,
        "event_source": "ops.Storage",
        "time": (time_ms if time_ms is not None else now_ms()) - 1_000,
        "detail": {"event_type": "EVENT.CUSTOM", **detail},
    }


def make_events(count: int, *, now: int | None = None, name: str = "BatchEvent") -> list[dict[str, Any]]:
    moment = now if now is not None else now_ms()
    return [make_event(index, now=moment, name=name) for index in range(count)]


def loopback_env(url: str, **extra: str) -> dict[str, str]:
    """The forwarder's settings for a Cloud Eye stand-in at ``url``: test keys, a fixed project."""
    return {
        "CLOUDEYE_ENDPOINT": url,
        "HUAWEICLOUD_SDK_AK": "test-access-key",
        "HUAWEICLOUD_SDK_SK": "test-secret-key",
        "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        **extra,
    }


def kafka_batch(*messages: str, topic: str = "cloudeye-events") -> dict[str, Any]:
    """The published DMS for Kafka trigger payload (tests/events/kafka.json), sent now, carrying
    ``messages`` in one record."""
    payload = load_event("kafka")
    payload["event_time"] = int(time.time())
    payload["records"] = [{"messages": list(messages), "topic_id": topic}]
    return payload


class FakeContext:
    """The parts of FunctionGraph's context object the forwarder uses."""

    def __init__(
        self,
        *,
        request_id: str = "req-0001",
        remaining_ms: float = 30_000,
        access_key: str | None = None,
        secret_key: str | None = None,
        security_token: str | None = None,
    ) -> None:
        self._request_id = request_id
        self._remaining_ms = remaining_ms
        self._keys = (access_key, secret_key, security_token)

    def getRequestID(self) -> str:
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> float:
        return self._remaining_ms

    def getSecurityAccessKey(self) -> str | None:
        return self._keys[0]

    def getSecuritySecretKey(self) -> str | None:
        return self._keys[1]

    def getSecurityToken(self) -> str | None:
        return self._keys[2]


def log_lines(records: Iterable[Any], message: str | None = None) -> list[dict[str, Any]]:
    """The forwarder's JSON log lines (optionally only those with ``message``)."""
    lines = [json.loads(record.getMessage()) for record in records if record.name == "forwarder"]
    return [line for line in lines if message is None or line["message"] == message]


def stored_names(server: Any) -> list[str]:
    return [stored["event"]["event_name"] for stored in server.stored_events()]


@contextlib.contextmanager
def temporary_keys(server: Any) -> Iterator[dict[str, str]]:
    """Make the served emulator accept only agency-style temporary keys plus their security token."""
    from emulator import auth

    keys = {
        "access_key": "temp-agency-ak",
        "secret_key": "temp-agency-sk",
        "security_token": "temp-agency-token",
    }
    auth.pin(**keys)
    try:
        yield keys
    finally:
        auth.pin(access_key=server.access_key, secret_key=server.secret_key)
        auth.unpin("security_token")
