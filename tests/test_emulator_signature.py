"""The emulator's own SDK-HMAC-SHA256 check agrees with the official SDK's signer."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from emulator import signature

AK, SK = "sig-test-ak", "sig-test-sk"


def sdk_sign(
    method: str, path: str, query: list[tuple[str, Any]], body: bytes, **headers: str
) -> dict[str, str]:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    request = SdkRequest(
        method=method,
        schema="https",
        host="ces.example.test",
        resource_path=path,
        uri=path,
        query_params=query,
        header_params={"Content-Type": "application/json;charset=UTF-8", **headers},
        body=body,
    )
    return dict(Signer(BasicCredentials(AK, SK)).sign(request).header_params)


def verifies(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = signature.parse_authorization(lowered["authorization"])
    assert parsed is not None and parsed.access_key == AK
    text = signature.canonical_request(method, path, query, lowered, parsed.signed_headers, body)
    return signature.expected_signature(SK, lowered["x-sdk-date"], text) == parsed.signature


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("POST", "/V1.0/p1/events", [], b'[{"event_name": "A"}]'),
        ("POST", "/V1.0/p1/metric-data", [], '[{"unit": "毫秒"}]'.encode()),
        ("GET", "/V1.0/p1/events", [("limit", "10"), ("event_type", "EVENT.CUSTOM"), ("from", "1")], b""),
        ("GET", "/V1.0/p1/event/Disk Full", [("event_user", "ops/alerting team"), ("a", "x y~z*")], b""),
        ("GET", "/V1.0/p1/event/数据库", [("event_source", "ops.Storage")], b""),
    ],
)
def test_what_the_sdk_signs_verifies(
    method: str, path: str, query: list[tuple[str, str]], body: bytes
) -> None:
    headers = sdk_sign(method, path, list(query), body)
    assert verifies(method, path, query, headers, body)
    assert not verifies(method, path + "x", query, headers, body)
    assert not verifies("PUT", path, query, headers, body)
    assert not verifies(method, path, [*query, ("extra", "1")], headers, body)
    assert not verifies(method, path, query, {**headers, "X-Sdk-Date": "20000101T000000Z"}, body)


def test_a_changed_body_breaks_the_signature_unless_a_content_hash_stands_in() -> None:
    body = b'[{"event_name": "A"}]'
    plain = sdk_sign("POST", "/V1.0/p1/events", [], body)
    assert not verifies("POST", "/V1.0/p1/events", [], plain, b'[{"event_name": "B"}]')
    declared = hashlib.sha256(body).hexdigest()
    hashed = sdk_sign("POST", "/V1.0/p1/events", [], body, **{"X-Sdk-Content-Sha256": declared})
    swapped = b'[{"event_name": "B"}]'
    # The signature alone cannot see the swap: the declared hash stands in for the body...
    assert verifies("POST", "/V1.0/p1/events", [], hashed, swapped)
    lowered = {name.lower(): value for name, value in hashed.items()}
    names = ("content-type", "host", "x-sdk-content-sha256", "x-sdk-date")
    # ...so the body itself is checked against it.
    assert signature.body_hash_mismatch(lowered, names, swapped) is not None
    assert signature.body_hash_mismatch(lowered, names, body) is None
    assert (
        signature.body_hash_mismatch({**lowered, "x-sdk-content-sha256": "UNSIGNED-PAYLOAD"}, names, swapped)
        is None
    )
    assert signature.body_hash_mismatch(lowered, ("host", "x-sdk-date"), swapped) is None
