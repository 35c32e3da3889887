"""The benchmark's input: realistic, valid custom events from a fixed seed, and trigger envelopes.

Sizes follow what services report: a short name and source, a resource, a content text of a few
dozen to several hundred characters, sometimes dimensions. ``time`` is "now" minus up to two
minutes, so the events stay inside Cloud Eye's window for the length of a run.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

SEED = 20240611
NAMES = (
    "DiskUsageHigh", "OrderFailed", "DeploymentFinished", "BackupCompleted", "LatencySpike",
    "ConfigChanged", "CertificateExpiring", "QueueBacklog", "LoginAnomaly", "JobRetried",
)  # fmt: skip
SOURCES = ("custom.order_service", "custom.payments", "shop.checkout_api", "ops.batch_jobs")
_TEXT = (
    "the request to upstream service timed out after retries while processing order batch "
    "replica lag exceeded threshold on primary database node volume usage reached percent "
    "deployment of release finished successfully on cluster node pool certificate for domain "
    "expires in days please renew queue consumer backlog grew beyond messages"
)
WORDS = tuple(_TEXT.split())
STATES = ("normal", "warning", "incident")
LEVELS = ("Critical", "Major", "Minor", "Info")
USERS = ("ops/alerting", "deploy-bot", "svc_order", "oncall team")
SUB_TYPES = ("SUB_EVENT.OPS", "SUB_EVENT.PLAN", "SUB_EVENT.CUSTOM")


def make_events(count: int, *, seed: int = SEED, now_ms: int | None = None) -> list[dict[str, Any]]:
    """``count`` valid events, the same ones for the same seed (``time`` aside, which follows now)."""
    rng = random.Random(seed)
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    events = []
    for _ in range(count):
        content = " ".join(rng.choices(WORDS, k=rng.randint(4, 36)))
        detail: dict[str, Any] = {
            "content": content[:4096],
            "group_id": f"rg{rng.getrandbits(64):022x}",  # a group id is exactly 24 characters
            "resource_id": f"ecs-{rng.getrandbits(128):032x}",
            "resource_name": f"order-api-{rng.randint(1, 64)}",
            "event_state": rng.choice(STATES),
            "event_level": rng.choice(LEVELS),
            "event_user": rng.choice(USERS),
            "event_type": "EVENT.CUSTOM",
        }
        if rng.random() < 0.5:
            detail["sub_event_type"] = rng.choice(SUB_TYPES)
        if rng.random() < 0.3:
            detail["dimensions"] = [
                {"name": name, "value": f"{name}-{rng.randint(1, 9)}"}
                for name in rng.sample(("az", "cluster", "tenant", "region"), rng.randint(1, 3))
            ]
        events.append(
            {
                "event_name": rng.choice(NAMES),
                "event_source": rng.choice(SOURCES),
                "time": now - rng.randint(0, 120_000),
                "detail": detail,
            }
        )
    return events


def apig_event(body: str, *, path: str = "/events") -> dict[str, Any]:
    """An API Gateway trigger event carrying ``body`` (a JSON text) as FunctionGraph delivers it."""
    return {
        "httpMethod": "POST",
        "path": path,
        "headers": {"content-type": "application/json", "x-request-id": "bench"},
        "queryStringParameters": {},
        "pathParameters": {},
        "requestContext": {"requestId": "bench", "stage": "RELEASE"},
        "body": body,
        "isBase64Encoded": False,
    }


def mean_json_bytes(events: list[dict[str, Any]]) -> float:
    encoded = (json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in events)
    return sum(len(e) for e in encoded) / max(1, len(events))
