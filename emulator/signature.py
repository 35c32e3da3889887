"""Checking an ``SDK-HMAC-SHA256`` signature the way Huawei Cloud's API gateway does.

The client builds a canonical request (method, path, query, the headers it names, and the hash
of the body), hashes it into a string to sign with its ``X-Sdk-Date``, and sends
``Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>``. The
gateway rebuilds the same text from what arrived and compares. A signed
``X-Sdk-Content-Sha256`` stands in for the body's hash; unless it is ``UNSIGNED-PAYLOAD`` it must
also be the body's real hash, or a body could be swapped under a valid signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CONTENT_HASH_HEADER = "x-sdk-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_HASH_OF_NOTHING = hashlib.sha256(b"").hexdigest()

_AUTHORIZATION = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)


@dataclass(frozen=True)
class Authorization:
    """The three parts of an ``Authorization`` header."""

    access_key: str
    signed_headers: tuple[str, ...]  # lower-case, in the order the client gave
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The parts of an ``SDK-HMAC-SHA256`` header, or None when it is not one."""
    found = _AUTHORIZATION.match(value.strip())
    if found is None:
        return None
    names = tuple(name.strip().lower() for name in found["headers"].split(";") if name.strip())
    return Authorization(found["access"], names, found["signature"].lower())


def _escape(text: str) -> str:
    # RFC 3986 unreserved characters stay, everything else is percent-encoded (UTF-8).
    return quote(text, safe="~")


def canonical_path(raw_path: str) -> str:
    """The path as sent, each segment decoded once and re-encoded, with a trailing ``/``."""
    encoded = "/".join(_escape(segment) for segment in unquote(raw_path).split("/"))
    return encoded if encoded.endswith("/") else f"{encoded}/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded query pairs, sorted, re-encoded and joined with ``&``."""
    return "&".join(f"{_escape(name)}={_escape(value)}" for name, value in sorted(pairs))


def payload_hash(headers: Mapping[str, str], signed_headers: Iterable[str], body: bytes) -> str:
    """What the canonical request's last line holds for this body."""
    if not body:
        return _HASH_OF_NOTHING
    if CONTENT_HASH_HEADER in signed_headers and headers.get(CONTENT_HASH_HEADER):
        return headers[CONTENT_HASH_HEADER]
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    body: bytes,
) -> str:
    """The text the client hashed. ``headers`` must have lower-case names."""
    header_lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        (
            method.upper(),
            canonical_path(raw_path),
            canonical_query(query),
            header_lines,
            ";".join(signed_headers),
            payload_hash(headers, signed_headers, body),
        )
    )


def expected_signature(secret_key: str, sdk_date: str, request_text: str) -> str:
    """HMAC-SHA256 of the string to sign (algorithm, date, hash of the canonical request)."""
    digest = hashlib.sha256(request_text.encode("utf-8")).hexdigest()
    to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def body_hash_mismatch(headers: Mapping[str, str], signed_headers: Iterable[str], body: bytes) -> str | None:
    """Why a signed ``X-Sdk-Content-Sha256`` does not vouch for this body, or None when it does
    (or is absent, unsigned, or ``UNSIGNED-PAYLOAD``)."""
    declared = headers.get(CONTENT_HASH_HEADER)
    if declared is None or CONTENT_HASH_HEADER not in signed_headers or declared.strip() == UNSIGNED_PAYLOAD:
        return None
    actual = hashlib.sha256(body).hexdigest()
    if hmac.compare_digest(declared.strip().lower(), actual):
        return None
    return "the body's SHA-256 differs from the signed X-Sdk-Content-Sha256"
