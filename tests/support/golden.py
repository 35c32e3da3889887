"""Load the golden trigger payloads in ``tests/events/*.json``.

Events inside them carry ``__NOW_MS__`` where their ``time`` goes (Cloud Eye only takes events of
the last hour), also inside base64 fields (DIS data, Pub/Sub data, API Gateway bodies).
``load_event(name)`` puts the current time in every one of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
PLACEHOLDER = "__NOW_MS__"

# The events inside each payload that carries some, in input order (read off tests/events/*.json).
EVENTS_INSIDE = {
    "apig": ["OrderBacklogHigh", "PaymentRetryStorm", "NightlyExportDone"],
    "apig_console": ["ConsoleTestEvent", "ConsoleTestEvent2"],
    "kafka": ["DiskAlmostFull", "CertExpiring", "CertRenewed", "BackupFailed"],
    "kafka_flat": ["CacheEvictionsHigh", "CacheFailover"],
    "kafka_opensource": ["LagAboveLimit", "LagBackToNormal"],
    "rocketmq": ["InventorySyncLag", "InventorySyncOk"],
    "rabbitmq": ["QueueConsumerDown", "QueueConsumerBack"],
    "smn": ["DeployStarted", "DeployFinished", "SmokeTestFailed"],
    "dis": ["LoginFailuresSpike", "WafBlockRateHigh", "WafRuleUpdated"],
    "pubsub": ["BucketPolicyChanged", "BucketQuotaNear"],
    "timer": ["ForwarderHeartbeat"],
    "timer_events": ["NightlyCheckStarted", "NightlyCheckReminder"],
}


def golden_names() -> list[str]:
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))


def _fill(value: Any, now: str) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, now) for item in value]
    if isinstance(value, str) and len(value) >= 16 and len(value) % 4 == 0:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return value
        if PLACEHOLDER in decoded:
            return base64.b64encode(decoded.replace(PLACEHOLDER, now).encode("utf-8")).decode("ascii")
    return value


def load_event(name: str, now_ms: int | None = None) -> Any:
    """The payload ``tests/events/<name>.json`` with every event's time set to ``now_ms`` (default now)."""
    now = str(now_ms if now_ms is not None else time.time_ns() // 1_000_000)
    text = (EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8")
    return _fill(json.loads(text.replace(PLACEHOLDER, now)), now)
