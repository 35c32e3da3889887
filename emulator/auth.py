"""Who may call the emulator's Cloud Eye API, decided the way Huawei Cloud's API gateway does.

Accepted: an ``SDK-HMAC-SHA256`` signature made with ``EMULATOR_AK`` / ``EMULATOR_SK`` (``host``
and ``x-sdk-date`` signed, ``X-Sdk-Date`` within 15 minutes of the emulator's clock), or an
``X-Auth-Token`` equal to ``EMULATOR_TOKEN``. When ``EMULATOR_SECURITY_TOKEN`` is set the keys
are temporary ones: signed requests must also carry (and sign) ``X-Security-Token`` with that
value; when it is unset, a signed non-empty ``X-Security-Token`` is accepted as is. A signed
``X-Sdk-Content-Sha256`` must be the body's hash (or ``UNSIGNED-PAYLOAD``).
Settings are read from the environment on every request; ``pin()`` overrides them in-process
(the test server uses it so tests that isolate ``os.environ`` cannot lock it out).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from emulator import errors, signature

DEMO_ACCESS_KEY = "demo-ak"
DEMO_SECRET_KEY = "demo-sk-not-secret"  # noqa: S105 - a documented demo value, not a secret
MAX_SKEW_MS = 15 * 60 * 1000
REQUIRED_SIGNED_HEADERS = ("host", "x-sdk-date")

_ENV_NAMES = {
    "access_key": "EMULATOR_AK",
    "secret_key": "EMULATOR_SK",
    "security_token": "EMULATOR_SECURITY_TOKEN",
    "auth_token": "EMULATOR_TOKEN",
}
_pinned: dict[str, str | None] = {}


@dataclass(frozen=True)
class AuthSettings:
    access_key: str
    secret_key: str
    security_token: str | None = None
    auth_token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Settings from ``EMULATOR_*`` variables (demo keys when unset), then pinned values."""
        env = os.environ if environ is None else environ
        values: dict[str, str | None] = {field: env.get(name) or None for field, name in _ENV_NAMES.items()}
        values.update(_pinned)
        return cls(
            access_key=values["access_key"] or DEMO_ACCESS_KEY,
            secret_key=values["secret_key"] or DEMO_SECRET_KEY,
            security_token=values["security_token"],
            auth_token=values["auth_token"],
        )


def pin(**values: str | None) -> None:
    """Override settings in this process: ``access_key``, ``secret_key``, ``security_token``,
    ``auth_token`` (None switches that one off). ``unpin()`` returns to the environment."""
    unknown = set(values) - set(_ENV_NAMES)
    if unknown:
        raise TypeError(f"unknown auth settings {sorted(unknown)}; known: {sorted(_ENV_NAMES)}")
    _pinned.update(values)


def unpin(*names: str) -> None:
    """Forget pinned values (all of them when no name is given)."""
    for name in names or list(_pinned):
        _pinned.pop(name, None)


def _refuse(reason: str) -> errors.AuthenticationFailed:
    return errors.AuthenticationFailed(reason)


def _sdk_date_ms(value: str) -> int:
    try:
        moment = datetime.strptime(value, signature.DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise _refuse(f"X-Sdk-Date {value!r} is not in the form 20240131T235959Z") from None
    return int(moment.timestamp() * 1000)


def authenticate(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    settings: AuthSettings,
    now_ms: int,
) -> str:
    """Return how the caller proved itself (``"aksk"`` or ``"token"``) or raise a 401 error."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization")
    if authorization:
        _check_signature(_Signed(method, path, list(query), lowered, body), authorization, settings, now_ms)
        return "aksk"
    token = lowered.get("x-auth-token")
    if token is not None:
        if not settings.auth_token:
            raise _refuse("token authentication is off (set EMULATOR_TOKEN to accept X-Auth-Token)")
        if not hmac.compare_digest(token.encode(), settings.auth_token.encode()):
            raise _refuse("decrypt token fail")
        return "token"
    raise _refuse(
        "no authentication information: sign the request (SDK-HMAC-SHA256 Authorization header) "
        "or send X-Auth-Token"
    )


@dataclass(frozen=True)
class _Signed:
    """What a signature covers: the request line, the headers (lower-case names) and the body."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


def _check_signature(request: _Signed, authorization: str, settings: AuthSettings, now_ms: int) -> None:
    headers, body = request.headers, request.body
    parsed = signature.parse_authorization(authorization)
    if parsed is None:
        raise _refuse(
            "the Authorization header is not 'SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...'"
        )
    signed_headers = parsed.signed_headers
    if not hmac.compare_digest(parsed.access_key.encode(), settings.access_key.encode()):
        raise _refuse(f"Get secretKey failed,ak:{parsed.access_key},err:ak not exist")
    date = headers.get("x-sdk-date")
    if not date:
        raise _refuse("the X-Sdk-Date header is missing")
    skew_ms = abs(now_ms - _sdk_date_ms(date))
    if skew_ms > MAX_SKEW_MS:
        raise _refuse(
            f"X-Sdk-Date {date} is {skew_ms // 1000} s away from the server's time; "
            "at most 15 minutes are allowed (check the client's clock)"
        )
    missing = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed_headers]
    if missing:
        raise _refuse(f"SignedHeaders must include {', '.join(missing)}")
    token = headers.get("x-security-token")
    if settings.security_token and token is None:
        raise _refuse("these are temporary keys: send the X-Security-Token header")
    if token is not None:
        if not token or "x-security-token" not in signed_headers:
            raise _refuse("X-Security-Token must be non-empty and signed")
        if settings.security_token and not hmac.compare_digest(
            token.encode(), settings.security_token.encode()
        ):
            raise _refuse("the security token is invalid or expired")
    text = signature.canonical_request(
        request.method, request.path, request.query, headers, signed_headers, body
    )
    expected = signature.expected_signature(settings.secret_key, date, text)
    if not hmac.compare_digest(expected, parsed.signature):
        raise _refuse("verify aksk signature fail")
    mismatch = signature.body_hash_mismatch(headers, signed_headers, body)
    if mismatch:
        raise _refuse(f"the body is not the one that was signed: {mismatch}")
