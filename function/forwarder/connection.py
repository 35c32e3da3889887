"""Opening connections to Cloud Eye: directly or through an HTTPS proxy, with the right CA bundle.

Proxies come from the process environment, read the way other HTTP clients read them
(``urllib.request.getproxies_environment``: ``https_proxy`` before ``HTTPS_PROXY``, and
``NO_PROXY`` / ``no_proxy`` host suffixes or ``*``):

- An ``https://`` endpoint goes through ``HTTPS_PROXY`` with a ``CONNECT`` tunnel. TLS runs end to
  end inside the tunnel, so the proxy sees the host name and port, never a header or a credential.
  The proxy's own user and password (the proxy URL's user info) travel as ``Proxy-Authorization``
  on the ``CONNECT`` request only. A kept-alive connection keeps its tunnel.
- A plain ``http://`` endpoint is always reached directly. The settings allow one only on a
  loopback host (the local emulator), and a proxy would see its signed headers and tokens in
  clear, so ``HTTP_PROXY`` is never used for it.

``CLOUDEYE_CA_BUNDLE`` names a PEM file whose certificates replace the system's trusted ones
(for proxies that inspect TLS with their own certificate authority).
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import threading
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from .errors import SettingsError

PROXY_VARIABLE = "HTTPS_PROXY"
CA_BUNDLE_VARIABLE = "CLOUDEYE_CA_BUNDLE"


class Proxy(NamedTuple):
    """Where to open the tunnel, and the ``Proxy-Authorization`` value for it (if any)."""

    host: str
    port: int
    authorization: str | None = None  # holds the proxy password, so it stays out of repr()

    def __repr__(self) -> str:
        return f"Proxy(host={self.host!r}, port={self.port!r})"


def _proxy_settings() -> dict[str, str]:
    """``{"https": url, "no": hosts, ...}`` exactly as urllib reads them from ``os.environ``."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return {}  # the common case, without importing urllib.request (slow to import)
    import urllib.request

    return urllib.request.getproxies_environment()


def parse_proxy(url: str) -> Proxy:
    """A proxy URL (``http://[user:password@]host[:port]``; the scheme may be left out)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # how curl and urllib read "proxy.example:3128"
    parts = urlsplit(text)
    # The messages below never quote the URL: it may carry the proxy password.
    if parts.scheme.lower() != "http":
        raise SettingsError(
            f"{PROXY_VARIABLE} must be an http:// proxy URL (got the scheme {parts.scheme!r}); the "
            "connection to Cloud Eye is TLS inside the proxy's CONNECT tunnel"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise SettingsError(f"{PROXY_VARIABLE} has a port that is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise SettingsError(f"{PROXY_VARIABLE} has no host name")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname, port, authorization)


def proxy_for(scheme: str, host: str, port: int | None = None) -> Proxy | None:
    """The proxy to reach ``scheme://host:port`` through, or ``None`` to connect directly."""
    if scheme != "https":
        return None  # plain http is loopback only, and must not show its credentials to a proxy
    proxies = _proxy_settings()
    url = proxies.get("https")
    if not url:
        return None
    import urllib.request

    # urllib's NO_PROXY rules: '*', or host-name suffixes, with or without the port.
    address = f"{host}:{port}" if port and ":" not in host else host
    # (proxy_bypass_environment is what urllib's proxy_bypass is on Linux; typeshed omits it.)
    if urllib.request.proxy_bypass_environment(address, proxies):  # type: ignore[attr-defined]
        return None
    return parse_proxy(url)


_contexts: dict[str | None, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying TLS context (certificates and host names), one per CA bundle, built once."""
    with _contexts_lock:
        context = _contexts.get(ca_bundle)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                reason = getattr(exc, "strerror", None) or exc  # ssl errors carry their reason here too
                raise SettingsError(
                    f"{CA_BUNDLE_VARIABLE} must name a readable PEM file of CA certificates "
                    f"(could not load {ca_bundle!r}: {reason})"
                ) from None
            _contexts[ca_bundle] = context
        return context


def check_environment(ca_bundle: str | None, endpoint: str | None = None) -> None:
    """Raise a ``SettingsError`` now, not at the first request, for a CA bundle or an HTTPS proxy
    that could never work (the proxy only when the endpoint is https, the only one it serves)."""
    if ca_bundle is not None:
        tls_context(ca_bundle)
    if endpoint is not None and urlsplit(endpoint).scheme != "https":
        return
    url = _proxy_settings().get("https")
    if url:
        parse_proxy(url)


def open_connection(
    scheme: str, host: str, port: int | None, timeout: float, *, ca_bundle: str | None = None
) -> http.client.HTTPConnection:
    """A new (not yet connected) connection to Cloud Eye, tunnelled through a proxy if one applies."""
    if scheme != "https":
        return http.client.HTTPConnection(host, port, timeout=timeout)
    context = tls_context(ca_bundle)
    proxy = proxy_for(scheme, host, port)
    if proxy is None:
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    # Connects to the proxy, sends CONNECT host:port, then runs TLS (SNI and host-name check
    # against ``host``, not the proxy) over the tunnel.
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=context)
    headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
    conn.set_tunnel(host, port or 443, headers=headers)
    return conn
