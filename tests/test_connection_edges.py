"""How connections to Cloud Eye are opened: proxy URLs and NO_PROXY, CA bundles, timeouts, tunnels.

test_proxy.py sends events end to end through a proxy and a TLS front; these tests look at each
rule of forwarder/connection.py on its own, against loopback sockets only.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from forwarder import SettingsError
from forwarder.connection import (
    Proxy,
    check_environment,
    open_connection,
    parse_proxy,
    proxy_for,
    tls_context,
)
from forwarder.settings import Settings
from tests.support.connect_proxy import ConnectProxy
from tests.support.tls_front import openssl_available, self_signed_certificate

# Kept short so a connection that waits for nothing fails fast; a listener that never answers is
# closed after CLOSE_AFTER_S anyway, so a connection opened without a timeout ends then, with a
# different error, instead of hanging the test.
TIMEOUT_S = 0.2
CLOSE_AFTER_S = 3.0


@pytest.fixture(autouse=True)
def no_host_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    closer = threading.Timer(CLOSE_AFTER_S, listener.close)
    closer.start()
    try:
        yield listener.getsockname()[1]
    finally:
        closer.cancel()
        listener.close()


# --- proxy URLs -----------------------------------------------------------------------------------


def test_a_proxy_url_is_read_with_spaces_and_an_upper_case_scheme() -> None:
    assert parse_proxy("  HTTP://Proxy.Internal:3128 ") == Proxy("proxy.internal", 3128)


def test_a_proxy_user_without_a_password_logs_in_with_an_empty_one() -> None:
    # "fwd-user:" in base64
    assert parse_proxy("http://fwd-user@proxy.internal:3128").authorization == "Basic ZndkLXVzZXI6"
    assert parse_proxy("http://proxy.internal:3128").authorization is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "socks5://127.0.0.1:1080",
            "HTTPS_PROXY must be an http:// proxy URL (got the scheme 'socks5'); the connection to "
            "Cloud Eye is TLS inside the proxy's CONNECT tunnel",
        ),
        ("http://proxy.internal:99999", "HTTPS_PROXY has a port that is not a number from 0 to 65535"),
        ("http://:3128", "HTTPS_PROXY has no host name"),
    ],
)
def test_an_unusable_proxy_url_is_named_exactly(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_proxy(url)
    assert str(caught.value) == message


def test_an_upper_case_https_proxy_variable_alone_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.internal:3128")
    assert proxy_for("https", "ces.example.com", 443) == Proxy("upper.internal", 3128)


def test_without_proxy_variables_everything_goes_directly() -> None:
    assert proxy_for("https", "ces.example.com", 443) is None


def test_no_proxy_may_name_a_host_with_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "ces.example.com:8443")
    assert proxy_for("https", "ces.example.com", 8443) is None
    assert proxy_for("https", "ces.example.com", 443) == Proxy("proxy.internal", 3128)
    assert proxy_for("https", "other.example.com", 8443) == Proxy("proxy.internal", 3128)


def test_no_proxy_matches_an_ipv6_endpoint_by_its_address_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # "fd00::1:8443" is another IPv6 address, not fd00::1 on port 8443: no port is added to an
    # IPv6 literal before matching.
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "fd00::1:8443")
    assert proxy_for("https", "fd00::1", 8443) == Proxy("proxy.internal", 3128)
    monkeypatch.setenv("NO_PROXY", "fd00::1")
    assert proxy_for("https", "fd00::1", 8443) is None


def test_an_unusable_proxy_is_reported_when_the_endpoint_is_not_known_yet(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(SettingsError, match="HTTPS_PROXY must be an http:// proxy URL"):
        check_environment(None)
    with pytest.raises(SettingsError, match="HTTPS_PROXY must be an http:// proxy URL"):
        check_environment(None, "https://ces.example.com")
    check_environment(None, "http://127.0.0.1:8080")  # plain http never uses it: no error


# --- CA bundles -----------------------------------------------------------------------------------


def ca_bundle_error(path: str) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ={"CLOUDEYE_REGION": "eu-de", "CLOUDEYE_CA_BUNDLE": path})
    return str(caught.value)


PREFIX = "CLOUDEYE_CA_BUNDLE must name a readable PEM file of CA certificates (could not load"


def test_a_missing_ca_bundle_is_named_with_the_system_reason(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    assert ca_bundle_error(missing) == f"{PREFIX} {missing!r}: No such file or directory)"
    assert ca_bundle_error(str(tmp_path)) == f"{PREFIX} {str(tmp_path)!r}: Is a directory)"


def test_a_ca_bundle_without_certificates_is_named_with_openssl_reason(tmp_path: Path) -> None:
    not_pem = tmp_path / "bundle.pem"
    not_pem.write_text("this is not a certificate\n")
    message = ca_bundle_error(str(not_pem))
    reason = "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found"
    assert message.startswith(f"{PREFIX} {str(not_pem)!r}: {reason}")


def test_a_ca_bundle_path_python_cannot_open_is_named_with_the_reason() -> None:
    # A NUL byte cannot be in a file name: a ValueError, which has no system error text.
    assert ca_bundle_error("bundle\x00.pem") == f"{PREFIX} 'bundle\\x00.pem': embedded null byte)"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not openssl_available():
        pytest.skip("the openssl command makes the test certificate")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))[0]


def test_each_ca_bundle_gets_its_own_context_built_once(certificate: Path) -> None:
    system = tls_context(None)
    bundle = tls_context(str(certificate))
    assert tls_context(None) is system and tls_context(str(certificate)) is bundle
    # The bundle's context trusts the bundle's certificate and nothing else.
    [trusted] = bundle.get_ca_certs()
    assert dict(pair[0] for pair in trusted["subject"]) == {"commonName": "127.0.0.1"}
    assert bundle.verify_mode == ssl.CERT_REQUIRED and bundle.check_hostname


# --- opening connections --------------------------------------------------------------------------


def test_a_plain_http_connection_gives_up_after_its_timeout(silent_port: int) -> None:
    conn = open_connection("http", "127.0.0.1", silent_port, TIMEOUT_S)
    try:
        conn.request("POST", "/V1.0/p/events", body=b"[]")
        with pytest.raises(TimeoutError):
            conn.getresponse()
    finally:
        conn.close()


def test_a_tls_handshake_gives_up_after_the_timeout(silent_port: int) -> None:
    conn = open_connection("https", "127.0.0.1", silent_port, TIMEOUT_S)
    try:
        with pytest.raises(TimeoutError):
            conn.connect()
    finally:
        conn.close()


def test_a_silent_proxy_is_given_up_after_the_timeout(silent_port: int, monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{silent_port}")
    conn = open_connection("https", "ces.example.com", 443, TIMEOUT_S)
    try:
        with pytest.raises(TimeoutError):
            conn.connect()  # waits for the answer to CONNECT
    finally:
        conn.close()


def connect_through(proxy: ConnectProxy, port: int | None) -> None:
    """Open a connection to https://127.0.0.1[:port] through ``proxy``; nothing listens there."""
    conn = open_connection("https", "127.0.0.1", port, 5.0)
    try:
        with pytest.raises(OSError):
            conn.connect()
    finally:
        conn.close()


def test_the_tunnel_goes_to_port_443_when_the_endpoint_names_none(monkeypatch) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        connect_through(proxy, None)
        assert [(c.target, c.headers.get("proxy-authorization")) for c in proxy.connects] == [
            ("127.0.0.1:443", None)
        ]


def test_the_tunnel_request_carries_the_proxy_login(monkeypatch) -> None:
    with ConnectProxy(user="fwd-user", password="pw") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://fwd-user:pw@127.0.0.1:{proxy.port}")
        connect_through(proxy, 9)
        assert [(c.target, c.headers["proxy-authorization"]) for c in proxy.connects] == [
            ("127.0.0.1:9", "Basic ZndkLXVzZXI6cHc=")
        ]
        assert proxy.refused == []
