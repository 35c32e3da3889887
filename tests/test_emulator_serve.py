"""``python -m emulator.serve`` (what ``make emulator`` runs) says where it listens."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_server_prints_its_address_and_answers_there() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"Cloud Eye emulator listening on http://127.0.0.1:{port}")
        stats = None
        for _ in range(100):  # the server binds just after saying so
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=5) as answer:
                    stats = json.load(answer)
                break
            except OSError:
                assert process.poll() is None, "the server stopped"
                time.sleep(0.1)
        assert stats is not None and stats["events_stored"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_busy_port_gives_one_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "emulator.serve", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Cloud Eye emulator: cannot listen on http://127.0.0.1:{port}: Address already in use"
    ]
    assert done.stdout == ""
