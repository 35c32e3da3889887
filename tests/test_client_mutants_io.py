"""Exact edges of the client's I/O that the behaviour tests leave open.

The connection pool gives every connection it hands out the caller's timeout, on a new connection
and on a reused one (the attribute and its socket). One exchange connects with its budget as the
socket timeout, returns an empty body when Cloud Eye cannot be reached, and does not keep a
connection the server said it would close or the watchdog cut.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from forwarder import client as client_module
from forwarder.client import CloudEyeClient, _ConnectionPool
from forwarder.settings import Settings
from tests.support.loopback import Answer, LoopbackServer

PROJECT_ID = "0123456789abcdef0123456789abcdef"


def _settings(url: str) -> Settings:
    return Settings.from_env(
        environ={
            "HUAWEICLOUD_SDK_AK": "io-access-key",
            "HUAWEICLOUD_SDK_SK": "io-secret-key",
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT_ID,
            "CLOUDEYE_ENDPOINT": url,
        }
    )


def _client(url: str) -> CloudEyeClient:
    client = CloudEyeClient(_settings(url))
    scheme, _, rest = url.partition("://")
    host, _, port = rest.partition(":")
    client.pool = _ConnectionPool(scheme, host, int(port))  # fresh: nothing left by other tests
    return client


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that never answers (connections wait in its backlog)."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server
    finally:
        server.close()


def test_a_new_connection_gets_the_callers_timeout(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    pool = _ConnectionPool("http", "127.0.0.1", port)
    made = pool.new(3.5)
    got = pool.get(2.25)  # nothing idle: a new one
    try:
        assert made.timeout == 3.5
        assert got.timeout == 2.25
        assert got is not made
        got.connect()
        assert got.sock.gettimeout() == 2.25
    finally:
        made.close()
        got.close()


def test_a_reused_connection_gets_the_callers_timeout_on_it_and_its_socket(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    pool = _ConnectionPool("http", "127.0.0.1", port)
    conn = pool.new(9.0)
    conn.connect()
    try:
        assert conn.sock.gettimeout() == 9.0
        pool.put(conn)
        got = pool.get(1.25)
        assert got is conn
        assert got.timeout == 1.25
        assert got.sock.gettimeout() == 1.25
    finally:
        conn.close()


def test_an_exchange_connects_with_its_budget_as_the_socket_timeout() -> None:
    with LoopbackServer([Answer(201, body=b"[]")]) as server:
        client = _client(server.url)
        answer = client._exchange(b"[]", 7.0)
        assert (answer.status, answer.body) == (201, b"[]")
        (kept,) = client.pool._idle
        try:
            assert kept.timeout == 7.0
            assert kept.sock.gettimeout() == 7.0
        finally:
            kept.close()


def test_an_unreachable_cloud_eye_gives_an_empty_body() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the connection is refused
    client = _client(f"http://127.0.0.1:{port}")
    answer = client.post_once(b"[]", 5.0)
    assert answer.status is None
    assert answer.headers == {}
    assert answer.body == b""
    assert answer.error is not None
    assert answer.error.startswith(f"Cloud Eye could not be reached at http://127.0.0.1:{port}: ")
    assert client.pool._idle == []


def test_a_connection_the_server_will_close_is_closed_not_kept() -> None:
    with LoopbackServer([Answer(201, body=b"[]", headers={"Connection": "close"})]) as server:
        client = _client(server.url)
        answer = client._exchange(b"[]", 5.0)
        assert (answer.status, answer.body) == (201, b"[]")
        assert answer.headers["connection"] == "close"
        assert client.pool._idle == []


class _CuttingWatchdog:
    """A watchdog that reports every exchange as cut when it is disarmed, and records them."""

    def __init__(self) -> None:
        self.armed: list[Any] = []

    def arm(self, when: float, conn: http.client.HTTPConnection) -> list[Any]:
        entry = [when, len(self.armed), conn, True, True]
        self.armed.append(conn)
        return entry

    def disarm(self, entry: list[Any]) -> bool:
        return True


def test_a_connection_the_watchdog_cut_is_closed_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    watchdog = _CuttingWatchdog()
    monkeypatch.setattr(client_module, "_watchdog", watchdog)
    with LoopbackServer([Answer(201, body=b"[]")]) as server:
        client = _client(server.url)
        answer = client._exchange(b"[]", 5.0)
        assert (answer.status, answer.body) == (201, b"[]")
        (conn,) = watchdog.armed
        assert client.pool._idle == []
        assert conn.sock is None  # closed
