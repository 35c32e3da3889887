"""The quickstart demo (scripts/demo) runs non-interactively and leaves nothing behind."""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo"
STARTED_LINE = re.compile(r"^demo: (?P<name>emulator|function) pid=(?P<pid>\d+) port=(?P<port>\d+) ", re.M)

pytestmark = pytest.mark.slow


def children(output: str) -> dict[str, tuple[int, int]]:
    """{name: (pid, port)} from the demo's 'demo: emulator pid=.. port=..' lines."""
    return {m["name"]: (int(m["pid"]), int(m["port"])) for m in STARTED_LINE.finditer(output)}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def port_bound(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def assert_nothing_left(started: dict[str, tuple[int, int]]) -> None:
    assert set(started) == {"emulator", "function"}
    for name, (pid, port) in started.items():
        assert not group_alive(pid), f"the {name}'s process group {pid} is still alive"
        assert not port_bound(port), f"the {name}'s port {port} is still bound"


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    # WHEN the README's demo command runs, without a terminal (the virtualenv is already there)
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, err = (stream.decode() for stream in process.communicate(timeout=120))
    finally:
        cleanup(process, {})  # only if it hangs

    # THEN it succeeds, showing accepted events, named rejections and what was stored
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert re.search(r"^\s+0  accepted  ev\d{13}\w+  DeploymentFinished$", out, re.M)
    assert "17  rejected  time: " in out and "looks like seconds; Cloud Eye wants milliseconds" in out
    assert "58  rejected  detail.event_type: EVENT.SYS is reserved for system events" in out
    assert "93  rejected  event_name: must start with a letter" in out
    assert "121  rejected  severity: is not a field Cloud Eye accepts" in out
    assert "totals: 130 received, 126 accepted, 4 rejected, 0 failed" in out
    assert "4  rejected  (message): the message is not JSON" in out
    assert "totals: 11 received, 9 accepted, 2 rejected, 0 failed" in out
    assert "135 events stored" in out
    assert re.search(r"^DeploymentFinished\s+EVENT\.CUSTOM\s+\d+", out, re.M)
    assert re.search(r"emulator page: http://127\.0\.0\.1:\d+/_emulator/", out)
    assert "UNEXPECTED" not in out
    assert "their ports are free" in out

    # AND nothing it started is left running or listening
    assert_nothing_left(children(out))


def read_until(process: subprocess.Popen[bytes], marker: str, timeout: float = 30) -> str:
    """The process's output up to and including ``marker`` (raw reads: no buffer hides lines)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no {marker!r} within {timeout} s; output so far:\n{seen.decode()}")
        chunk = os.read(fd, 65536)
        if not chunk:
            pytest.fail(f"the demo ended before {marker!r}; output:\n{seen.decode()}")
        seen += chunk
    return seen.decode()


def cleanup(process: subprocess.Popen[bytes], started: dict[str, tuple[int, int]]) -> None:
    """After a failed test: stop the demo, and anything it left, so no test leaks processes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid, _ in started.values():
        if group_alive(pid):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_leaves_no_process_and_no_port(signum: signal.Signals) -> None:
    # GIVEN the demo paused right after both services answered
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--pause-after-start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    started: dict[str, tuple[int, int]] = {}
    try:
        before = read_until(process, "demo: paused after start")
        started = children(before)
        for name, (pid, port) in started.items():
            assert group_alive(pid) and port_bound(port), f"the {name} is not running"

        # WHEN it is interrupted (Ctrl-C sends SIGINT; a service manager sends SIGTERM)
        process.send_signal(signum)
        rest = process.communicate(timeout=30)[0].decode()
    finally:
        cleanup(process, started)

    # THEN it stops what it started, says so, and exits 128 + the signal number
    assert process.returncode == 128 + signum, before + rest
    assert f"demo: interrupted by {signum.name}" in rest
    assert "their ports are free" in rest
    assert_nothing_left(started)
