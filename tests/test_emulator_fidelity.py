"""The served emulator checks what Cloud Eye's gateway checks: the project id in the URL and a
signed body hash. Requests here are signed with the official SDK's own signer."""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import quote

import pytest

from tests.support.emulator_server import EmulatorServer, Reply


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def events(name: str = "DiskFull") -> bytes:
    item = {"event_name": name, "event_source": "ops.Storage", "time": now_ms() - 1_000, "detail": {}}
    return json.dumps([item]).encode()


def sdk_signed(server: EmulatorServer, path: str, body: bytes, **headers: str) -> dict[str, str]:
    """Headers the official SDK's signer makes for ``POST path`` with ``body``."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    request = SdkRequest(
        method="POST",
        schema="http",
        host=f"{server.host}:{server.port}",
        resource_path=path,
        uri=path,
        query_params=[],
        header_params={"Content-Type": "application/json;charset=UTF-8", **headers},
        body=body,
    )
    signed = Signer(BasicCredentials(server.access_key, server.secret_key)).sign(request)
    return dict(signed.header_params)


def post(server: EmulatorServer, path: str, body: bytes, headers: dict[str, str]) -> Reply:
    return server.request("POST", path, body=body, headers=headers)


def test_the_official_sdk_signature_is_accepted(cloudeye: EmulatorServer) -> None:
    path = cloudeye.events_path()
    body = events()
    assert post(cloudeye, path, body, sdk_signed(cloudeye, path, body)).status == 201


def test_a_body_swapped_under_a_signed_content_hash_is_refused(cloudeye: EmulatorServer) -> None:
    path = cloudeye.events_path()
    signed_body = events("Signed")
    headers = sdk_signed(
        cloudeye, path, signed_body, **{"X-Sdk-Content-Sha256": hashlib.sha256(signed_body).hexdigest()}
    )
    swapped = post(cloudeye, path, events("Swapped"), headers)
    assert swapped.status == 401
    assert swapped.json()["error_code"] == "APIGW.0301"
    assert "X-Sdk-Content-Sha256" in swapped.json()["error_msg"]
    assert cloudeye.stored_events() == []
    assert post(cloudeye, path, signed_body, headers).status == 201
    assert [s["event"]["event_name"] for s in cloudeye.stored_events()] == ["Signed"]


def test_unsigned_payload_vouches_for_any_body(cloudeye: EmulatorServer) -> None:
    path = cloudeye.events_path()
    headers = sdk_signed(cloudeye, path, events("Signed"), **{"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert post(cloudeye, path, events("Other"), headers).status == 201


def test_a_body_changed_without_a_content_hash_breaks_the_signature(cloudeye: EmulatorServer) -> None:
    path = cloudeye.events_path()
    headers = sdk_signed(cloudeye, path, events("Signed"))
    changed = post(cloudeye, path, events("Changed"), headers)
    assert changed.status == 401 and "verify aksk signature fail" in changed.json()["error_msg"]
    assert cloudeye.stored_events() == []


def test_the_official_sdk_without_a_project_id_is_refused_and_nothing_is_stored(
    cloudeye: EmulatorServer,
) -> None:
    from huaweicloudsdkces.v1 import CesClient
    from huaweicloudsdkces.v1.model import CreateEventsRequest, CreateEventsRequestBody, EventItemDetail
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    client = (
        CesClient.new_builder()
        .with_credentials(BasicCredentials(cloudeye.access_key, cloudeye.secret_key))
        .with_endpoint(cloudeye.base_url)
        .build()
    )
    body = [CreateEventsRequestBody("DiskFull", "ops.Storage", now_ms() - 1_000, EventItemDetail())]
    with pytest.raises(ClientRequestException) as raised:
        client.create_events(CreateEventsRequest(body=body))
    assert 400 <= raised.value.status_code < 500
    assert raised.value.error_code == "ces.0003"
    assert "{project_id}" in raised.value.error_msg and "no project id" in raised.value.error_msg
    assert cloudeye.stored_events() == []
    assert cloudeye.stats()["events_stored"] == 0


@pytest.mark.parametrize("project_id", ["{project_id}", "p" * 65, "proj_1", "proj.1", "项目"])
@pytest.mark.parametrize("kind", ["events", "metric-data"])
def test_project_ids_outside_cloud_eyes_form_are_refused(
    cloudeye: EmulatorServer, project_id: str, kind: str
) -> None:
    cloudeye.set_faults(status=503, scope="any")  # a refused project id takes no queued fault
    path = f"/V1.0/{project_id}/{kind}"
    body = events()
    reply = cloudeye.request("POST", quote(path), body=body, headers=sdk_signed(cloudeye, path, body))
    assert reply.status == 400, reply.text
    assert set(reply.json()) == {"error_code", "error_msg"} and reply.json()["error_code"] == "ces.0003"
    assert "is not 1-64 letters, digits or '-'" in reply.json()["error_msg"]
    assert cloudeye.stored_events() == [] and cloudeye.stored_metrics() == []
    assert len(cloudeye.fault_plan()["faults"]) == 1


@pytest.mark.parametrize("project_id", ["a", "0a1b2c3d-4e5f", "P" * 64])
def test_project_ids_of_cloud_eyes_form_are_taken(cloudeye: EmulatorServer, project_id: str) -> None:
    path = f"/V1.0/{project_id}/events"
    body = events()
    reply = post(cloudeye, path, body, sdk_signed(cloudeye, path, body))
    assert reply.status == 201, reply.text
    assert [s["project_id"] for s in cloudeye.stored_events()] == [project_id]
