"""A small HTTP CONNECT proxy on 127.0.0.1 for tests: it records what a proxy gets to see.

    with ConnectProxy() as proxy:                     # or ConnectProxy(user="u", password="p")
        proxy.url                                     # "http://127.0.0.1:54321" -> HTTPS_PROXY
        proxy.connects                                # [Connect(target="127.0.0.1:443", headers)]
        proxy.tunnelled                               # the bytes clients sent through tunnels
        proxy.plain_requests                          # request lines of anything but CONNECT

Only loopback targets are tunnelled. Threads are bounded (``max_connections``) and everything is
closed by ``stop()``. ``relay`` (moving bytes between two sockets) is shared with the TLS front.
"""

from __future__ import annotations

import base64
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 65536
MAX_RECORDED_BYTES = 4 * 1024 * 1024
IDLE_LIMIT_S = 30.0


@dataclass(frozen=True)
class Connect:
    target: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


def relay(a: socket.socket, b: socket.socket, stop: threading.Event, on_a: Callable[[bytes], None]) -> None:
    """Copy bytes both ways until either side closes, ``stop`` is set, or nothing moves for a while.

    ``on_a`` sees what ``a`` sent. One thread, select(): an SSL socket is never used by two threads.
    """
    sockets = [a, b]
    idle = 0.0
    while not stop.is_set() and idle < IDLE_LIMIT_S:
        pending = [s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()]
        ready = pending or select.select(sockets, [], [], 0.2)[0]
        if not ready:
            idle += 0.2
            continue
        idle = 0.0
        for source in ready:
            try:
                data = source.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                return
            if not data:
                return
            if source is a:
                on_a(data)
            try:
                (b if source is a else a).sendall(data)
            except OSError:
                return


class ConnectProxy:
    def __init__(
        self, *, user: str | None = None, password: str | None = None, max_connections: int = 16
    ) -> None:
        self.user, self.password = user, password
        self.connects: list[Connect] = []
        self.refused: list[Connect] = []  # CONNECTs answered 407
        self.plain_requests: list[str] = []
        self._tunnelled = bytearray()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept, name="connect-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tunnelled(self) -> bytes:
        with self._lock:
            return bytes(self._tunnelled)

    def start(self) -> ConnectProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(timeout=5):
                client.close()  # over the bound: refuse rather than pile up threads
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._sockets.add(client)
                self._threads.append(thread)
            thread.start()

    def _record(self, data: bytes) -> None:
        with self._lock:
            if len(self._tunnelled) < MAX_RECORDED_BYTES:
                self._tunnelled.extend(data)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(10)
            head = _read_head(client)
            if head is None:
                return
            request_line, headers = head
            method, _, rest = request_line.partition(" ")
            target = rest.split(" ", 1)[0]
            if method.upper() != "CONNECT":
                with self._lock:
                    self.plain_requests.append(request_line)
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.user is not None and headers.get("proxy-authorization") != self._expected():
                with self._lock:
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
            with self._lock:
                self.connects.append(Connect(target, headers))
            upstream = socket.create_connection((host, int(port)), timeout=10)
            with self._lock:
                self._sockets.add(upstream)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            relay(client, upstream, self._stop, self._record)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()
                    with self._lock:
                        self._sockets.discard(sock)
            self._slots.release()

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
