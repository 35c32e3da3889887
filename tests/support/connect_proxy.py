"""A small HTTP CONNECT proxy on 127.0.0.1 for tests: it records what a proxy gets to see.

    with ConnectProxy() as proxy:                     # or ConnectProxy(user="u", password="p")
        proxy.url                                     # "http://127.0.0.1:54321" -> HTTPS_PROXY
        proxy.connects                                # [Connect(target="127.0.0.1:443", headers)]
        proxy.tunnelled                               # the bytes clients sent through tunnels
        proxy.plain_requests                          # request lines of anything but CONNECT

Only loopback targets are tunnelled; connections are bounded and all closed by ``stop()``.
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass, field

from tests.support.relay import LoopbackListener, relay

MAX_HEAD_BYTES = 65536
MAX_RECORDED_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Connect:
    target: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


class ConnectProxy(LoopbackListener):
    name = "connect-proxy"

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.user, self.password = user, password
        self.connects: list[Connect] = []
        self.refused: list[Connect] = []  # CONNECTs answered 407
        self.plain_requests: list[str] = []
        self._tunnelled = bytearray()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tunnelled(self) -> bytes:
        with self.lock:
            return bytes(self._tunnelled)

    def serve(self, client: socket.socket) -> None:
        head = _read_head(client)
        if head is None:
            return
        request_line, headers = head
        method, _, rest = request_line.partition(" ")
        target = rest.split(" ", 1)[0]
        if method.upper() != "CONNECT":
            with self.lock:
                self.plain_requests.append(request_line)
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.user is not None and headers.get("proxy-authorization") != self._expected():
            with self.lock:
                self.refused.append(Connect(target, headers))
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="tests"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        host, _, port = target.rpartition(":")
        if host not in ("127.0.0.1", "localhost"):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with self.lock:
            self.connects.append(Connect(target, headers))
        upstream = self.track(socket.create_connection((host, int(port)), timeout=10))
        try:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            relay(client, upstream, self.stopping, self._record)
        finally:
            self.close(upstream)

    def _record(self, data: bytes) -> None:
        with self.lock:
            if len(self._tunnelled) < MAX_RECORDED_BYTES:
                self._tunnelled.extend(data)

    def _expected(self) -> str:
        pair = f"{self.user}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def _read_head(sock: socket.socket) -> tuple[str, dict[str, str]] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > MAX_HEAD_BYTES:
            return None
        data += chunk
    # A CONNECT client sends nothing after the head until it gets its answer.
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers
