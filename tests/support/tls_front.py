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
from pathlib import Path

from tests.support.relay import LoopbackListener, relay


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


class TlsFront(LoopbackListener):
    name = "tls-front"

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        super().__init__()
        self.target_port = target_port
        self.connections = 0  # TLS handshakes completed
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def serve(self, raw: socket.socket) -> None:
        # The handshake happens here; a client that does not trust the certificate ends it.
        secure = self.track(self._context.wrap_socket(raw, server_side=True))
        upstream = None
        try:
            with self.lock:
                self.connections += 1
            upstream = self.track(socket.create_connection(("127.0.0.1", self.target_port), timeout=10))
            relay(secure, upstream, self.stopping, lambda data: None)
        finally:
            self.close(upstream)
            self.close(secure)
