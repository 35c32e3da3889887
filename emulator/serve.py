"""``python -m emulator.serve``: serve the emulator and say where (what ``make emulator`` runs).

Host and port come from ``--host`` / ``--port`` or ``EMULATOR_HOST`` / ``EMULATOR_PORT``
(default ``127.0.0.1:8900``). The port is tried first, so a busy one gives one clear line
instead of the server's traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"


def _free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on, else why not."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the local Cloud Eye emulator.")
    parser.add_argument("--host", default=os.environ.get("EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "8900")))
    args = parser.parse_args(argv)
    problem = _free(args.host, args.port)
    if problem:
        print(
            f"Cloud Eye emulator: cannot listen on http://{args.host}:{args.port}: {problem}", file=sys.stderr
        )
        return 1

    import functions_framework
    from functions_framework._http import create_server

    app = functions_framework.create_app(target="cloudeye", source=str(MAIN))
    print(
        f"Cloud Eye emulator listening on http://{args.host}:{args.port} (page: /_emulator/; Ctrl-C stops)",
        flush=True,
    )
    create_server(app, False).run(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
