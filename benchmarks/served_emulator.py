"""The Cloud Eye emulator (emulator/main.py) served over a loopback socket in its own process.

``python -m benchmarks.served_emulator`` loads the ``cloudeye`` target with functions-framework
and serves it threaded (one thread per connection, so a burst of instances is answered, not queued
behind a fixed pool); :class:`ServedEmulator` starts that child and drives its control endpoints.
Its CPU is never counted as the forwarder's; ``call()`` reaches its ``/_emulator/...`` control
endpoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks import ROOT, served

READY_PREFIX = "EMULATOR-READY "
EMULATOR_SOURCE = Path(ROOT) / "emulator" / "main.py"
ACCESS_KEY = "BENCHAK000000000000"
SECRET_KEY = "bench-secret-key"
PROJECT_ID = "0123456789abcdef0123456789abcdef"


class ServedEmulator(served.ChildServer):
    """``with ServedEmulator() as emulator: emulator.url; emulator.set_faults(max_per_second=20)``."""

    def __enter__(self) -> ServedEmulator:
        env = {**os.environ, "EMULATOR_AK": ACCESS_KEY, "EMULATOR_SK": SECRET_KEY}
        self._start("benchmarks.served_emulator", ["--port", "0"], env, READY_PREFIX)
        return self

    def forwarder_env(self) -> dict[str, str]:
        """Credentials and endpoint for a forwarder that reports to this emulator."""
        return {
            "CLOUDEYE_ENDPOINT": self.url,
            "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT_ID,
        }

    def reset(self) -> None:
        self.call("POST", "/_emulator/reset")

    def set_faults(self, **plan: Any) -> dict[str, Any]:
        faults: dict[str, Any] = self.call("POST", "/_emulator/faults", plan)
        return faults

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.call("GET", "/_emulator/stats")
        return stats


def main(argv: list[str] | None = None) -> None:
    parser = served.server_parser(__doc__)
    args = parser.parse_args(argv)
    import functions_framework
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # a line per request is noise
            pass

    app = functions_framework.create_app(target="cloudeye", source=str(EMULATOR_SOURCE))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    served.serve(server, f"http://{args.host}:{server.server_port}", READY_PREFIX)


if __name__ == "__main__":
    main()
