"""Golden request/answer pairs for the served emulator (``tests/data/emulator_golden/*.json``).

Each file holds one request and the exact answer Cloud Eye's stand-in must give, plus what must
be stored afterwards. In a request, ``"__NOW_MS__"`` becomes the current time in ms,
``"__TWO_HOURS_AGO_MS__"`` two hours before it, and ``__PROJECT__`` the test project id. In an
answer, ``"<event-id>"`` stands for any Cloud Eye event id and ``"<request-id>"`` for any request
id. ``auth`` is ``sign`` (the official SDK's signer), ``none``, or ``swap-body`` (signed with its
content hash, then another body sent).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator_server import EmulatorServer

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "emulator_golden"
EVENT_ID = re.compile(r"ev\d{13}[A-Za-z0-9]{10}")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def golden_cases() -> list[str]:
    return sorted(path.stem for path in GOLDEN_DIR.glob("*.json"))


def load_case(name: str, project_id: str, now: int) -> dict[str, Any]:
    text = (GOLDEN_DIR / f"{name}.json").read_text(encoding="utf-8")
    text = text.replace('"__NOW_MS__"', str(now - 1_000)).replace(
        '"__TWO_HOURS_AGO_MS__"', str(now - 7_200_000)
    )
    return json.loads(text.replace("__PROJECT__", project_id))


def body_bytes(request: dict[str, Any], key: str = "body") -> bytes:
    if f"{key}_text" in request:
        return request[f"{key}_text"].encode("utf-8")
    return json.dumps(request[key], ensure_ascii=False).encode("utf-8")


def sdk_headers(
    server: EmulatorServer, method: str, path: str, body: bytes, extra: dict[str, str]
) -> dict[str, str]:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    request = SdkRequest(
        method=method,
        schema="http",
        host=f"{server.host}:{server.port}",
        resource_path=path,
        uri=path,
        query_params=[],
        header_params={"Content-Type": "application/json;charset=UTF-8", **extra},
        body=body,
    )
    return dict(Signer(BasicCredentials(server.access_key, server.secret_key)).sign(request).header_params)


def matches(expected: Any, actual: Any) -> bool:
    """Equal, except that the placeholders stand for any id of their shape."""
    if expected == "<event-id>":
        return isinstance(actual, str) and EVENT_ID.fullmatch(actual) is not None
    if expected == "<request-id>":
        return isinstance(actual, str) and REQUEST_ID.fullmatch(actual) is not None
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list) and len(expected) == len(actual) and all(map(matches, expected, actual))
        )
    return bool(expected == actual) and type(expected) is type(actual)


def test_the_golden_files_are_there() -> None:
    assert len(golden_cases()) >= 10


@pytest.mark.parametrize("name", golden_cases())
def test_golden_exchange(cloudeye: EmulatorServer, name: str) -> None:
    # A frozen clock keeps the ages in the answers exact however slow the machine is.
    now = cloudeye.set_clock(now_ms=time.time_ns() // 1_000_000)
    case = load_case(name, cloudeye.project_id, now)
    cloudeye.set_resource_groups(case.get("setup", {}).get("resource_groups", []))
    request = case["request"]
    method, path = request["method"], request["path"]
    body = body_bytes(request) if ("body" in request or "body_text" in request) else b""
    auth = request.get("auth", "sign")
    if auth == "none":
        headers = {"Content-Type": "application/json;charset=UTF-8"}
    elif auth == "swap-body":
        content_hash = {"X-Sdk-Content-Sha256": hashlib.sha256(body).hexdigest()}
        headers = sdk_headers(cloudeye, method, path, body, content_hash)
        body = body_bytes(request, "sent_body")
    else:
        headers = sdk_headers(cloudeye, method, path, body, {})
    reply = cloudeye.request(method, path, body=body, headers=headers)

    answer = case["answer"]
    assert reply.status == answer["status"], reply.text
    if answer["body"] is None:
        assert reply.body == b""
    else:
        assert matches(answer["body"], reply.json()), json.dumps(reply.json(), ensure_ascii=False, indent=2)
    for name_, value in answer.get("headers", {}).items():
        assert reply.headers[name_.lower()] == value
    assert REQUEST_ID.fullmatch(reply.headers["x-request-id"])
    stored = case["stored"]
    assert len(cloudeye.stored_events()) == stored["events"]
    assert len(cloudeye.stored_metrics()) == stored["metrics"]
