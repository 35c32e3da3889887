"""The raw limit: ``json.dumps`` of pre-built chunks, stdlib signing, ``http.client``.

One kept-alive connection, requests one after another, no validation and no retries: the least a
correct client must do per request.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from forwarder import signer

CONTENT_TYPE = "application/json;charset=UTF-8"


def prebuilt_chunks(events: Sequence[dict[str, Any]], size: int = 100) -> list[list[dict[str, Any]]]:
    return [list(events[start : start + size]) for start in range(0, len(events), size)]


def send_all(
    chunks: Sequence[Sequence[dict[str, Any]]], endpoint: str, ak: str, sk: str, project_id: str
) -> int:
    """POST each chunk in turn; return how many events the server created."""
    base = urlsplit(endpoint)
    path = f"/V1.0/{project_id}/events"
    conn = http.client.HTTPConnection(base.hostname or "127.0.0.1", base.port, timeout=30)
    created = 0
    try:
        for chunk in chunks:
            body = json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers = {"Host": base.netloc, "Content-Type": CONTENT_TYPE, "X-Project-Id": project_id}
            headers = signer.sign("POST", path, (), headers, body, ak, sk)
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 201:
                raise RuntimeError(f"the stand-in answered {response.status}: {data[:200]!r}")
            created += len(json.loads(data))
    finally:
        conn.close()
    return created
