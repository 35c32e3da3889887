"""Loopback TCP servers for tests that pass bytes along: a bounded accept loop and a byte relay.

``ConnectProxy`` (connect_proxy.py) and ``TlsFront`` (tls_front.py) are built on these.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TypeVar

IDLE_LIMIT_S = 30.0

ListenerT = TypeVar("ListenerT", bound="LoopbackListener")


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


class LoopbackListener:
    """Accepts on a free 127.0.0.1 port; each connection gets ``serve(sock)`` in its own thread,
    at most ``max_connections`` at once. ``stop()`` closes every socket ``track`` was given."""

    name = "loopback-listener"

    def __init__(self, max_connections: int = 16) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept, name=self.name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def serve(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def track(self, sock: socket.socket) -> socket.socket:
        with self.lock:
            self._sockets.add(sock)
        return sock

    def start(self: ListenerT) -> ListenerT:
        self._acceptor.start()
        return self

    def __enter__(self: ListenerT) -> ListenerT:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self.lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(timeout=5):
                client.close()  # over the bound: refuse rather than pile up threads
                continue
            thread = threading.Thread(target=self._run, args=(client,), daemon=True)
            with self.lock:
                self._threads.append(thread)
            self.track(client)
            thread.start()

    def _run(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            self.serve(client)
        except OSError:
            pass  # a peer that went away, a refused TLS handshake: the test looks at the outcome
        finally:
            self.close(client)
            self._slots.release()

    def close(self, sock: socket.socket | None) -> None:
        if sock is not None:
            sock.close()
            with self.lock:
                self._sockets.discard(sock)
