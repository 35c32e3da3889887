"""An https:// Cloud Eye on loopback: TLS with a self-signed certificate in front of a plain server.

    cert, key = self_signed_certificate(tmp_dir)      # made now with the openssl command
    with TlsFront(target_port, cert, key) as front:   # e.g. the served emulator's port
        front.url                                     # "https://127.0.0.1:54321"
        front.connections                             # TLS connections accepted so far

The certificate names 127.0.0.1 (an IP subject alternative name), so a client that trusts it
(``CLOUDEYE_CA_BUNDLE=cert``) verifies host and chain for real; one that does not is refused.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from tests.support.connect_proxy import relay


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1 and its key (EC P-256: quick to make), as PEM files."""
    cert, key = directory / "cloudeye-test-cert.pem", directory / "cloudeye-test-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


class TlsFront:
    def __init__(self, target_port: int, cert: Path, key: Path, max_connections: int = 16) -> None:
        self.target_port = target_port
        self.connections = 0
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept, name="tls-front", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> TlsFront:
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

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(timeout=5):
                raw.close()
                continue
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            with self._lock:
                self._sockets.add(raw)
                self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        secure: socket.socket | None = None
        upstream: socket.socket | None = None
        try:
            raw.settimeout(10)
            secure = self._context.wrap_socket(raw, server_side=True)  # the handshake, here
            with self._lock:
                self.connections += 1
                self._sockets.add(secure)
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            with self._lock:
                self._sockets.add(upstream)
            relay(secure, upstream, self._stop, lambda data: None)
        except OSError:  # includes a refused handshake (the client did not trust the certificate)
            pass
        finally:
            for sock in (secure, raw, upstream):
                if sock is not None:
                    sock.close()
                    with self._lock:
                        self._sockets.discard(sock)
            self._slots.release()
