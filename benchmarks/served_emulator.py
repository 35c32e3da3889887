"""The Cloud Eye emulator (emulator/main.py) served over a loopback socket in its own process.

``python -m benchmarks.served_emulator`` loads the ``cloudeye`` target with functions-framework
and serves it threaded (one thread per connection, so a burst of instances is answered, not queued
behind a fixed pool); :class:`ServedEmulator` starts that child and drives its control endpoints.
Its CPU is never counted as the forwarder's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import ROOT

READY_PREFIX = "EMULATOR-READY "
EMULATOR_SOURCE = Path(ROOT) / "emulator" / "main.py"
ACCESS_KEY = "BENCHAK000000000000"
SECRET_KEY = "bench-secret-key"
PROJECT_ID = "0123456789abcdef0123456789abcdef"


class ServedEmulator:
    """``with ServedEmulator() as emulator: emulator.url; emulator.set_faults(max_per_second=20)``."""

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServedEmulator:
        env = {**os.environ, "PYTHONPATH": ROOT, "EMULATOR_AK": ACCESS_KEY, "EMULATOR_SK": SECRET_KEY}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.served_emulator", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith(READY_PREFIX):
            self.close()
            raise RuntimeError(f"the emulator did not start (said {line!r})")
        self.url = line[len(READY_PREFIX) :].strip()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout:
                self._process.stdout.close()
            self._process = None

    def forwarder_env(self) -> dict[str, str]:
        """Credentials and endpoint for a forwarder that reports to this emulator."""
        return {
            "CLOUDEYE_ENDPOINT": self.url,
            "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT_ID,
        }

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        """One call to a ``/_emulator/...`` control endpoint; its JSON answer."""
        host, port = self.url.split("://", 1)[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            body = None if payload is None else json.dumps(payload).encode()
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path} -> {response.status}: {data[:300]!r}")
            return json.loads(data)
        finally:
            conn.close()

    def reset(self) -> None:
        self.control("POST", "/_emulator/reset")

    def set_faults(self, **plan: Any) -> dict[str, Any]:
        return self.control("POST", "/_emulator/faults", plan)

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "/_emulator/stats")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    import functions_framework
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # a line per request is noise
            pass

    app = functions_framework.create_app(target="cloudeye", source=str(EMULATOR_SOURCE))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    print(f"{READY_PREFIX}http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
