"""Settings and credentials from the environment, FunctionGraph's context or request headers.

Read per invocation (never at import) so tests can patch them and agency keys can rotate.
Secrets are wrapped so they never show up in a repr, a log line or an exception message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from .errors import SettingsError

__all__ = ["Secret", "Settings", "SettingsError"]

PROJECT_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# T Cloud Public regions use the t-systems domain instead of myhuaweicloud.com.
TCLOUD_REGIONS = frozenset({"eu-de", "eu-nl"})
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z0-9]+){1,3}$")
# Credentials that travel in HTTP headers must be printable ASCII: http.client refuses anything
# else with an error that quotes the value (the secret) and breaks the whole send.
HEADER_SAFE_PATTERN = re.compile(r"^[\x20-\x7e]+$")

DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_REQUEST_BYTES = 524_288
DEFAULT_MAX_BODY_BYTES = 6_291_456
DEFAULT_MAX_ITEMS = 10_000
# API Gateway's default backend timeout is 30 s; answer a few seconds before it.
DEFAULT_HTTP_DEADLINE_S = 25.0
# FunctionGraph sets these in every function's environment; elsewhere they are normally absent.
FUNCTIONGRAPH_MARKERS = ("RUNTIME_PROJECT_ID", "RUNTIME_FUNC_NAME")
# Any of these configures a credential: caller-supplied credential headers are then ignored.
CREDENTIAL_VARIABLES = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "CLOUDEYE_AUTH_TOKEN",
)


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = _text(env, name)
    return Secret(value) if value else None


def _number(env: Mapping[str, str], name: str, default: Any, kind: type, minimum: float) -> Any:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a {kind.__name__} (got {raw!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{name} must be a finite number (got {raw!r})")
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum} (got {raw!r})")
    return value


def parse_bool(name: str, raw: str | None, default: bool = False) -> bool:
    """Strict boolean parsing: 'maybe' is an error, not False."""
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false (got {raw!r})")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, variable: str = "CLOUDEYE_ENDPOINT") -> str:
    """An endpoint must be https, or plain http on a loopback host (the local emulator)."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise SettingsError(
            f"{variable} is not a usable URL (a bad port or host?): expected https://host[:port]"
        ) from None
    # First, so the messages below that quote the endpoint never quote a password in it.
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"{variable} must be a plain base URL without query or user info")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"{variable} must be an https:// URL (got {endpoint!r})")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError(f"{variable} must use https:// unless the host is loopback (got {endpoint!r})")
    return endpoint.rstrip("/")


def endpoint_for_region(region: str) -> str:
    if not REGION_PATTERN.fullmatch(region):
        raise SettingsError(f"CLOUDEYE_REGION is not a region id like 'ap-southeast-1' (got {region!r})")
    if region in TCLOUD_REGIONS:
        return f"https://ces.{region}.otc.t-systems.com"
    return f"https://ces.{region}.myhuaweicloud.com"


def _call(context: Any, method: str) -> str | None:
    from .entry import context_text  # the one safe way to read the platform's context

    return context_text(context, method)


def on_functiongraph(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs on FunctionGraph (the platform sets ``RUNTIME_*`` variables)."""
    env = os.environ if environ is None else environ
    return all(_text(env, name) for name in FUNCTIONGRAPH_MARKERS)


def ingest_token_from_env(environ: Mapping[str, str] | None = None) -> Secret | None:
    """``FORWARDER_INGEST_TOKEN`` alone: checked before anything else is read, so a caller without
    the token never learns whether the rest of the configuration is sound."""
    return _secret(os.environ if environ is None else environ, "FORWARDER_INGEST_TOKEN")


_POSITIVE = (
    ("max_body_bytes", "FORWARDER_MAX_BODY_BYTES"),
    ("max_items", "FORWARDER_MAX_ITEMS"),
    ("http_deadline_s", "FORWARDER_HTTP_DEADLINE_S"),
)
_SECRET_FIELDS = ("secret_key", "security_token", "auth_token", "ingest_token")


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything one invocation needs. Build with :meth:`from_env`; fields override env values.

    Checked when built, however built: an invalid value raises ``SettingsError`` at once.
    """

    access_key: str | None = None
    secret_key: Secret | None = field(default=None)
    security_token: Secret | None = field(default=None)
    auth_token: Secret | None = field(default=None)
    project_id: str | None = None
    region: str | None = None
    endpoint: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    ingest_token: Secret | None = field(default=None)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    http_deadline_s: float = DEFAULT_HTTP_DEADLINE_S
    default_source: str | None = None
    credential_source: str = "none"
    metrics_namespace: str | None = None
    function_name: str | None = None
    ca_bundle: str | None = None
    late_events: str = "reject"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        context: Any = None,
        headers: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``).

        Credentials: AK/SK from the environment, else FunctionGraph agency keys from ``context``
        (event functions) or ``X-CFF-Security-*`` ``headers`` (HTTP functions; used only on
        FunctionGraph and only when no credential is configured), else an IAM token.
        Keyword ``overrides`` (explicit arguments) win over everything.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "project_id": _text(env, "HUAWEICLOUD_SDK_PROJECT_ID") or _text(env, "RUNTIME_PROJECT_ID"),
            "region": _text(env, "CLOUDEYE_REGION"),
            "endpoint": _text(env, "CLOUDEYE_ENDPOINT"),
            "max_concurrency": _number(env, "CLOUDEYE_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, int, 1),
            "max_attempts": _number(env, "CLOUDEYE_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, int, 1),
            "timeout_s": _number(env, "CLOUDEYE_TIMEOUT_S", DEFAULT_TIMEOUT_S, float, 0.001),
            "max_request_bytes": _number(
                env, "CLOUDEYE_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, int, 1024
            ),
            "ingest_token": _secret(env, "FORWARDER_INGEST_TOKEN"),
            "max_body_bytes": _number(env, "FORWARDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, 1),
            "max_items": _number(env, "FORWARDER_MAX_ITEMS", DEFAULT_MAX_ITEMS, int, 1),
            "http_deadline_s": _number(
                env, "FORWARDER_HTTP_DEADLINE_S", DEFAULT_HTTP_DEADLINE_S, float, 0.001
            ),
            "default_source": _text(env, "FORWARDER_DEFAULT_SOURCE"),
            "metrics_namespace": _text(env, "FORWARDER_METRICS_NAMESPACE"),
            "function_name": _text(env, "FORWARDER_FUNCTION_NAME")
            or (_call(context, "getFunctionName") if context is not None else None)
            or _text(env, "RUNTIME_FUNC_NAME"),
            "ca_bundle": _text(env, "CLOUDEYE_CA_BUNDLE"),
            "late_events": (_text(env, "FORWARDER_LATE_EVENTS") or "reject").lower(),
        }
        values.update(_credentials(env, context, headers))
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        for name in _SECRET_FIELDS:  # a plain string given for a secret is wrapped, never printed
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Secret(getattr(self, name)))
        self.check()

    def __repr__(self) -> str:
        # The access key identifies the account: shown masked like every secret.
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "access_key" and value:
                value = Secret(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    def check(self) -> None:
        """Validate the shape of what is set (whether sending is possible: ``require_sending``)."""
        for name, variable in _POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise SettingsError(f"{variable} must be a positive number (got {value!r})")
        if self.project_id is not None and not PROJECT_ID_PATTERN.fullmatch(self.project_id):
            raise SettingsError(
                "HUAWEICLOUD_SDK_PROJECT_ID must be 1-64 letters, digits or '-' "
                f"(got {len(self.project_id)} characters)"
            )
        if self.endpoint is not None:
            check_endpoint(self.endpoint)
        elif self.region is not None:
            endpoint_for_region(self.region)
        if self.ingest_token and not HEADER_SAFE_PATTERN.fullmatch(self.ingest_token.reveal()):
            # Callers send it in an HTTP header, so anything else could never match.
            raise SettingsError(
                "FORWARDER_INGEST_TOKEN has characters that cannot be sent in an HTTP header "
                "(only printable ASCII is allowed)"
            )
        if self.default_source is not None:
            from .events import EVENT_SOURCE_PATTERN  # pydantic loads on first use

            if not re.fullmatch(EVENT_SOURCE_PATTERN, self.default_source):
                raise SettingsError(
                    "FORWARDER_DEFAULT_SOURCE must look like 'service.item' (each part 3-32 "
                    f"letters, digits or '_', starting with a letter); got {self.default_source!r}"
                )
        if self.metrics_namespace is not None:
            from .metrics import check_function_name, check_namespace

            check_namespace(self.metrics_namespace)
            check_function_name(self.function_name)
        if self.ca_bundle is not None or any(n.lower() == "https_proxy" for n in os.environ):
            from .connection import check_environment  # ssl and urllib load only when needed

            check_environment(self.ca_bundle, self.endpoint)
        if self.late_events not in ("reject", "retime"):
            got = self.late_events[:40]
            raise SettingsError(f"FORWARDER_LATE_EVENTS must be reject or retime (got {got!r})")

    @property
    def base_url(self) -> str:
        if self.endpoint:
            return check_endpoint(self.endpoint)
        if self.region:
            return endpoint_for_region(self.region)
        raise SettingsError("set CLOUDEYE_REGION (e.g. ap-southeast-1) or CLOUDEYE_ENDPOINT")

    def require_sending(self) -> None:
        """Raise a SettingsError naming the first missing variable needed to send events."""
        if not self.project_id:
            raise SettingsError(
                "HUAWEICLOUD_SDK_PROJECT_ID is not set (nor FunctionGraph's RUNTIME_PROJECT_ID)"
            )
        _ = self.base_url
        if self.access_key and not self.secret_key:
            raise SettingsError("HUAWEICLOUD_SDK_SK is not set (HUAWEICLOUD_SDK_AK is)")
        if self.secret_key and not self.access_key:
            raise SettingsError("HUAWEICLOUD_SDK_AK is not set (HUAWEICLOUD_SDK_SK is)")
        if not self.access_key and not self.auth_token:
            raise SettingsError(
                "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, give the function "
                "an agency, or set CLOUDEYE_AUTH_TOKEN"
            )
        sent_in_headers = (
            (
                ("HUAWEICLOUD_SDK_AK (or the agency's access key)", self.access_key),
                ("HUAWEICLOUD_SDK_SECURITY_TOKEN (or the agency's security token)", self.security_token),
            )
            if self.access_key
            else (("CLOUDEYE_AUTH_TOKEN", self.auth_token),)
        )
        for variable, value in sent_in_headers:
            text = value.reveal() if isinstance(value, Secret) else value
            if text and not HEADER_SAFE_PATTERN.fullmatch(text):
                raise SettingsError(
                    f"{variable} has characters that cannot be sent in an HTTP header "
                    "(only printable ASCII is allowed)"
                )


def _credentials(
    env: Mapping[str, str], context: Any, headers: Mapping[str, str] | None
) -> dict[str, Any]:
    ak, sk = _text(env, "HUAWEICLOUD_SDK_AK"), _text(env, "HUAWEICLOUD_SDK_SK")
    if ak or sk:
        return {
            "access_key": ak,
            "secret_key": Secret(sk) if sk else None,
            "security_token": _secret(env, "HUAWEICLOUD_SDK_SECURITY_TOKEN"),
            "credential_source": "environment",
        }
    if context is not None:
        ak = _call(context, "getSecurityAccessKey")
        sk = _call(context, "getSecuritySecretKey")
        if ak and sk:
            token = _call(context, "getSecurityToken")
            return {
                "access_key": ak,
                "secret_key": Secret(sk),
                "security_token": Secret(token) if token else None,
                "credential_source": "agency",
            }
    # Credential headers arrive with the request: trusted only on FunctionGraph, whose HTTP functions
    # get the agency's keys that way, and only when the environment configures no credential.
    trusted = on_functiongraph(env) and not any(_text(env, name) for name in CREDENTIAL_VARIABLES)
    lowered = {k.lower(): v for k, v in (headers or {}).items()} if trusted else {}
    if lowered:
        ak = lowered.get("x-cff-security-access-key")
        sk = lowered.get("x-cff-security-secret-key")
        if ak and sk:
            token = lowered.get("x-cff-security-token")
            return {
                "access_key": ak,
                "secret_key": Secret(sk),
                "security_token": Secret(token) if token else None,
                "credential_source": "agency",
            }
    token = _text(env, "CLOUDEYE_AUTH_TOKEN") or lowered.get("x-cff-auth-token") or (
        _call(context, "getToken") if context is not None else None
    )
    if token:
        return {"auth_token": Secret(token), "credential_source": "token"}
    return {}
