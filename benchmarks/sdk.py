"""The official SDK as a user would call it: ``CesClient.create_events``, 100 events a call, in turn.

Imports huaweicloudsdkcore/huaweicloudsdkces at module level on purpose: the cold-start child
imports this module after its clock starts, so the SDK's import cost is part of its figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huaweicloudsdkces.v1 import (
    CesClient,
    CreateEventsRequest,
    CreateEventsRequestBody,
    EventItemDetail,
    MetricsDimension,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials

CHUNK = 100


def make_client(endpoint: str, ak: str, sk: str, project_id: str) -> CesClient:
    credentials = BasicCredentials(ak, sk, project_id)
    return CesClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()


def to_sdk(event: dict[str, Any]) -> CreateEventsRequestBody:
    """One event dict as the SDK's model objects (the work an SDK user has to do)."""
    detail = event["detail"]
    dimensions = detail.get("dimensions")
    return CreateEventsRequestBody(
        event_name=event["event_name"],
        event_source=event["event_source"],
        time=event["time"],
        detail=EventItemDetail(
            content=detail.get("content"),
            group_id=detail.get("group_id"),
            resource_id=detail.get("resource_id"),
            resource_name=detail.get("resource_name"),
            event_state=detail.get("event_state"),
            event_level=detail.get("event_level"),
            event_user=detail.get("event_user"),
            event_type=detail.get("event_type"),
            sub_event_type=detail.get("sub_event_type"),
            dimensions=[MetricsDimension(name=d["name"], value=d["value"]) for d in dimensions]
            if dimensions
            else None,
        ),
    )


def send_all(client: CesClient, events: Sequence[dict[str, Any]]) -> int:
    """Send ``events`` in 100-event ``create_events`` calls, sequentially; return how many were created."""
    created = 0
    for start in range(0, len(events), CHUNK):
        request = CreateEventsRequest(body=[to_sdk(event) for event in events[start : start + CHUNK]])
        response = client.create_events(request)
        created += len(response.body or ())
    return created
