"""HTTPS proxies and a custom CA bundle: events reach the served emulator through a CONNECT tunnel.

The https Cloud Eye here is the served emulator behind a loopback TLS front whose self-signed
certificate is made at test time (openssl) and trusted through CLOUDEYE_CA_BUNDLE; the proxy is
a small CONNECT proxy (tests/support/connect_proxy.py) that records what it gets to see.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from forwarder import SettingsError, logs, metrics
from forwarder.connection import Proxy, parse_proxy, proxy_for
from forwarder.pipeline import report_events
from forwarder.settings import Settings
from tests.support.connect_proxy import ConnectProxy
from tests.support.entry_helpers import make_events
from tests.support.loopback import Answer, LoopbackServer, forget_pooled_connections
from tests.support.tls_front import TlsFront, openssl_available, self_signed_certificate

needs_openssl = pytest.mark.skipif(
    not openssl_available(), reason="the openssl command makes the test certificate"
)


@pytest.fixture(autouse=True)
def no_host_proxies(monkeypatch: pytest.MonkeyPatch):
    """Each test starts without the host's proxy variables and leaves no pooled connection."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    yield
    forget_pooled_connections()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not openssl_available():
        pytest.skip("the openssl command makes the test certificate")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def front(cloudeye, certificate):
    cert, key = certificate
    with TlsFront(cloudeye.port, cert, key) as served:
        yield served


@pytest.fixture
def proxy():
    with ConnectProxy() as served:
        yield served


def https_settings(cloudeye, front: TlsFront, certificate, **extra: str) -> Settings:
    env = cloudeye.forwarder_env(
        CLOUDEYE_ENDPOINT=front.url,
        CLOUDEYE_CA_BUNDLE=str(certificate[0]),
        CLOUDEYE_MAX_CONCURRENCY="1",  # one connection: its reuse is what the tests look at
        **extra,
    )
    return Settings.from_env(environ=env)


def stored_count(cloudeye) -> int:
    return len(cloudeye.stored_events())


# --- through the proxy ----------------------------------------------------------------------------


@needs_openssl
def test_events_and_metrics_reach_cloud_eye_through_tunnels_the_proxy_cannot_read(
    cloudeye, front, proxy, certificate, monkeypatch
) -> None:
    # GIVEN HTTPS_PROXY and an https Cloud Eye the proxy must tunnel to
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    settings = https_settings(
        cloudeye,
        front,
        certificate,
        CLOUDEYE_MAX_REQUEST_BYTES="1024",
        FORWARDER_METRICS_NAMESPACE="FORWARDER.EVENTS",
    )
    # WHEN an invocation sends events in several requests, then its metrics
    report = report_events(make_events(7, name="TunnelEvent"), settings=settings)
    invocation = logs.Invocation("kafka", "req-tunnel")
    invocation.summary(report.counts())
    sent = metrics.publish(invocation, lambda: settings)
    # THEN Cloud Eye has them all
    assert (report.accepted, report.requests, sent) == (7, 3, True)
    assert stored_count(cloudeye) == 7
    assert len(cloudeye.stored_metrics()) == len(metrics.METRIC_UNITS)
    # AND every request went through a CONNECT tunnel to the endpoint (the emulator closes each
    # connection after answering, so one tunnel per request here), without proxy credentials
    assert [c.target for c in proxy.connects] == [f"127.0.0.1:{front.port}"] * 4
    assert all("proxy-authorization" not in c.headers for c in proxy.connects)
    assert proxy.plain_requests == []
    # AND the proxy saw only TLS: no header, key, signature or event in clear
    seen = proxy.tunnelled
    assert len(seen) > 1000
    for clear in (cloudeye.access_key.encode(), b"SDK-HMAC-SHA256", b"X-Project-Id", b"TunnelEvent", b"POST"):
        assert clear not in seen


@needs_openssl
def test_a_kept_alive_connection_keeps_its_tunnel_across_requests_and_invocations(
    proxy, certificate, monkeypatch
) -> None:
    # A stand-in Cloud Eye that keeps connections alive (the emulator closes them), behind TLS.
    with LoopbackServer([Answer(201)]) as server, TlsFront(server.port, *certificate) as tls:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        env = {
            "CLOUDEYE_ENDPOINT": tls.url,
            "CLOUDEYE_CA_BUNDLE": str(certificate[0]),
            "CLOUDEYE_MAX_CONCURRENCY": "1",
            "CLOUDEYE_MAX_REQUEST_BYTES": "1024",
            "HUAWEICLOUD_SDK_AK": "proxy-test-ak",
            "HUAWEICLOUD_SDK_SK": "proxy-test-sk",
            "HUAWEICLOUD_SDK_PROJECT_ID": "proxy-tests",
        }
        settings = Settings.from_env(environ=env)
        first = report_events(make_events(7), settings=settings)
        second = report_events(make_events(2), settings=settings)
        assert (first.accepted, second.accepted, len(server.requests)) == (7, 2, 4)
        assert [c.target for c in proxy.connects] == [f"127.0.0.1:{tls.port}"]
        assert tls.connections == 1 and len(server.connections) == 1


@contextlib.contextmanager
def proxy_with_login(monkeypatch: pytest.MonkeyPatch, userinfo: str) -> Iterator[ConnectProxy]:
    """A proxy that wants user ``fwd-user``, password ``p@ss:word``, named in HTTPS_PROXY with the
    ``userinfo`` given (``user:password``, percent-encoded)."""
    with ConnectProxy(user="fwd-user", password="p@ss:word") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://{userinfo}@127.0.0.1:{proxy.port}")
        yield proxy


@needs_openssl
def test_proxy_user_and_password_go_on_the_connect_request_only(
    cloudeye, front, certificate, monkeypatch
) -> None:
    # The URL carries them percent-encoded, as in any proxy URL.
    with proxy_with_login(monkeypatch, "fwd-user:p%40ss%3Aword") as proxy:
        report = report_events(make_events(3), settings=https_settings(cloudeye, front, certificate))
        assert report.accepted == 3
        assert [c.headers["proxy-authorization"] for c in proxy.connects] == [
            "Basic ZndkLXVzZXI6cEBzczp3b3Jk"
        ]
        assert b"p@ss:word" not in proxy.tunnelled and b"Proxy-Authorization" not in proxy.tunnelled


@needs_openssl
def test_a_refused_proxy_login_fails_the_events_without_showing_the_password(
    cloudeye, front, certificate, monkeypatch
) -> None:
    with proxy_with_login(monkeypatch, "fwd-user:wrong-one") as proxy:
        settings = https_settings(cloudeye, front, certificate, CLOUDEYE_MAX_ATTEMPTS="1")
        report = report_events(make_events(2), settings=settings)
        assert report.failed == 2 and len(proxy.refused) == 1
        error = report.results[0]["error"]
        assert "407" in error and "wrong-one" not in error
        assert stored_count(cloudeye) == 0


# --- around the proxy ----------------------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
@pytest.mark.parametrize("hosts", ["127.0.0.1", "internal.example, 127.0.0.1", "*", "{host_port}"])
def test_no_proxy_hosts_are_reached_directly(
    cloudeye, front, proxy, certificate, monkeypatch, variable: str, hosts: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv(variable, hosts.format(host_port=f"127.0.0.1:{front.port}"))
    report = report_events(make_events(2), settings=https_settings(cloudeye, front, certificate))
    assert report.accepted == 2 and stored_count(cloudeye) == 2
    assert proxy.connects == [] and front.connections == 1


def test_a_plain_http_endpoint_is_never_sent_through_a_proxy(cloudeye, proxy, monkeypatch) -> None:
    # Its signed headers and tokens would travel in clear: loopback http always goes directly.
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    report = report_events(make_events(2), settings=Settings.from_env(environ=cloudeye.forwarder_env()))
    assert report.accepted == 2 and stored_count(cloudeye) == 2
    assert proxy.connects == [] and proxy.plain_requests == [] and proxy.tunnelled == b""


# --- the CA bundle --------------------------------------------------------------------------------


@needs_openssl
def test_without_the_ca_bundle_the_self_signed_cloud_eye_is_refused(cloudeye, front, monkeypatch) -> None:
    # The counterpart of the tests above: certificates really are checked, against the system's CAs.
    env = cloudeye.forwarder_env(CLOUDEYE_ENDPOINT=front.url, CLOUDEYE_MAX_ATTEMPTS="1")
    report = report_events(make_events(1), settings=Settings.from_env(environ=env))
    assert report.failed == 1
    assert "CERTIFICATE_VERIFY_FAILED" in report.results[0]["error"]
    assert stored_count(cloudeye) == 0


def test_a_ca_bundle_that_cannot_be_loaded_is_a_settings_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "bundle.pem"
    not_pem.write_text("this is not a certificate\n")
    for path in (tmp_path / "missing.pem", not_pem):
        with pytest.raises(SettingsError, match="CLOUDEYE_CA_BUNDLE") as caught:
            Settings.from_env(environ={"CLOUDEYE_REGION": "eu-de", "CLOUDEYE_CA_BUNDLE": str(path)})
        assert str(path) in str(caught.value)


# --- proxy settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("socks5://fwd:hunter22@127.0.0.1:1080", "http:// proxy URL"),
        ("https://fwd:hunter22@proxy.internal:3128", "http:// proxy URL"),
        ("http://fwd:hunter22@proxy.internal:80800", "port"),
        ("http://fwd:hunter22@:3128", "host"),
    ],
)
def test_an_unusable_https_proxy_is_a_settings_error_that_hides_its_password(
    monkeypatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", url)
    with pytest.raises(SettingsError, match="HTTPS_PROXY") as caught:
        Settings.from_env(environ={"CLOUDEYE_REGION": "eu-de"})
    assert problem in str(caught.value) and "hunter22" not in str(caught.value)


def test_an_unusable_https_proxy_does_not_matter_to_a_loopback_http_endpoint(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    settings = Settings.from_env(environ={"CLOUDEYE_ENDPOINT": "http://127.0.0.1:8080"})
    assert settings.endpoint == "http://127.0.0.1:8080"


def test_proxy_urls_are_read_like_other_clients_read_them() -> None:
    assert parse_proxy("proxy.internal:3128") == Proxy("proxy.internal", 3128)
    assert parse_proxy("http://proxy.internal") == Proxy("proxy.internal", 80)
    with_login = parse_proxy("http://me%40corp:s%3Acret@10.0.0.5:8080")
    assert (with_login.host, with_login.port) == ("10.0.0.5", 8080)
    assert with_login.authorization == "Basic bWVAY29ycDpzOmNyZXQ="  # me@corp:s:cret
    # The header value is the password in base64: neither form may show when the proxy is printed.
    for shown in (repr(with_login), str(with_login), f"{with_login}"):
        assert "bWVAY29ycDpzOmNyZXQ" not in shown and "s:cret" not in shown
        assert "10.0.0.5" in shown


def test_lower_case_variables_win_and_no_proxy_matches_host_suffixes(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.internal:1")
    monkeypatch.setenv("https_proxy", "http://lower.internal:2")
    monkeypatch.setenv("NO_PROXY", ".example.com,direct.internal")
    assert proxy_for("https", "ces.ap-southeast-1.myhuaweicloud.com") == Proxy("lower.internal", 2)
    assert proxy_for("https", "ces.example.com", 443) is None
    assert proxy_for("https", "direct.internal") is None
    assert proxy_for("https", "notexample.org") == Proxy("lower.internal", 2)
    assert proxy_for("http", "127.0.0.1", 8080) is None  # plain http: never through a proxy
    monkeypatch.setenv("https_proxy", "")  # an empty lower-case variable turns the proxy off
    assert proxy_for("https", "ces.ap-southeast-1.myhuaweicloud.com") is None
