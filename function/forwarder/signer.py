"""SDK-HMAC-SHA256 request signing, computed exactly as huaweicloudsdkcore's ``Signer`` does.

Standard library only. The same functions verify signatures in the local emulator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_HEADER = "X-Sdk-Date"
# Like the SDK: a payload that is not JSON/BSON is signed as this header's value, not hashed.
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-fA-F]+)$"
)


def sdk_date(moment: datetime | None = None) -> str:
    """The ``X-Sdk-Date`` value for ``moment`` (default: now, UTC)."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime(DATE_FORMAT)


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Each path segment percent-encoded (after decoding once), always ending in ``/``."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query: Iterable[tuple[str, object]]) -> str:
    """Sorted ``key=value`` pairs; like the SDK, the raw pairs are sorted before encoding, so
    numbers sort as numbers (``9`` before ``10``)."""
    parts = []
    for key, value in sorted(query):
        if isinstance(value, bool):
            value = str(value).lower()
        parts.append(f"{_encode(key)}={_encode(str(value))}")
    return "&".join(parts)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased, sorted header names; like the SDK, names containing ``_`` are not signed."""
    return sorted(name.lower() for name in headers if "_" not in name)


def string_to_sign(
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
    date: str,
) -> str:
    """The text that gets HMAC-ed: algorithm, date and the hash of the canonical request."""
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed_headers)
    # A signed X-Sdk-Content-Sha256 (the SDK's UNSIGNED-PAYLOAD) stands in for the body's hash.
    declared = lowered.get("x-sdk-content-sha256") if "x-sdk-content-sha256" in signed_headers else None
    payload_hash = (declared or hashlib.sha256(body).hexdigest()) if body else EMPTY_BODY_SHA256
    canonical_request = "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        )
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def signature(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    *,
    moment: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``X-Sdk-Date`` (unless present) and ``Authorization``.

    ``headers`` must already hold every header to sign (``Host``, ``Content-Type``, ...).
    """
    signed = dict(headers)
    # The SDK looks up exactly "Content-Type" here (case-sensitive); so do we, to sign alike.
    content_type = signed.get("Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        signed[CONTENT_SHA256_HEADER] = UNSIGNED_PAYLOAD
    date = next((v for k, v in signed.items() if k.lower() == "x-sdk-date"), None)
    if date is None:
        date = sdk_date(moment)
        signed[DATE_HEADER] = date
    names = signed_header_names(signed)
    text = string_to_sign(method, path, query, signed, names, body, date)
    signed["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature(secret_key, text)}"
    )
    return signed


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """Split an ``Authorization`` header into (access key, signed header names, signature)."""
    match = _AUTH_RE.match(value.strip())
    if not match:
        return None
    return match["access"], match["signed"].split(";"), match["signature"].lower()


def verify(
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    headers: Mapping[str, str],
    body: bytes,
    signed_headers: list[str],
    claimed_signature: str,
    secret_key: str,
) -> bool:
    """True when ``claimed_signature`` is what ``secret_key`` produces for this request."""
    lowered = {name.lower(): value for name, value in headers.items()}
    date = lowered.get("x-sdk-date", "")
    text = string_to_sign(method, path, query, lowered, signed_headers, body, date)
    return hmac.compare_digest(signature(secret_key, text), claimed_signature)
