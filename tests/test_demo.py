"""The quickstart demo (scripts/demo) runs non-interactively and leaves nothing behind."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from scripts import demo

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo"
STARTED_LINE = re.compile(r"^demo: (?P<name>emulator|function) pid=(?P<pid>\d+) port=(?P<port>\d+) ", re.M)



def children(output: str) -> dict[str, tuple[int, int]]:
    """{name: (pid, port)} from the demo's 'demo: emulator pid=.. port=..' lines."""
    return {m["name"]: (int(m["pid"]), int(m["port"])) for m in STARTED_LINE.finditer(output)}


def start_demo(*options: str) -> subprocess.Popen[bytes]:
    """The demo with ``options``, its output (stdout and stderr) to read as it comes."""
    return subprocess.Popen(
        [sys.executable, str(DEMO), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def assert_nothing_left(started: dict[str, tuple[int, int]]) -> None:
    assert set(started) == {"emulator", "function"}
    for name, (pid, port) in started.items():
        assert not demo.group_alive(pid), f"the {name}'s process group {pid} is still alive"
        assert demo.port_is_free(port), f"the {name}'s port {port} is still bound"


# Every rejection the demo's batches hold, as the output must show it: index, field and reason.
REJECTIONS = [
    r"^   17  rejected  time: \d+ looks like seconds; Cloud Eye wants milliseconds \(did you mean \d+\?\)$",
    r"^   58  rejected  detail\.event_type: EVENT\.SYS is reserved for system events",
    r"^   93  rejected  event_name: must start with a letter",
    r"^  121  rejected  severity: is not a field Cloud Eye accepts$",
    r"^    4  rejected  \(message\): the message is not JSON",
    r"^    8  rejected  detail\.event_level: must be one of 'Critical', 'Major', 'Minor' or 'Info'$",
]


@pytest.mark.slow
def test_demo_runs_end_to_end_short_enough_to_read_and_cleans_up() -> None:
    # WHEN the demo runs as `make demo` runs it, without a terminal (the virtualenv is already there)
    process = subprocess.Popen(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, err = (stream.decode() for stream in process.communicate(timeout=120))
    finally:
        cleanup(process, {})  # only if it hangs

    # THEN it succeeds on one screen or so, every rejection visible with its reason
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert len(out.splitlines()) <= 70, out
    for pattern in REJECTIONS:
        assert re.search(pattern, out, re.M), f"{pattern!r} not in:\n{out}"
    assert "HTTP 207: 130 received, 126 accepted, 4 rejected, 0 failed" in out
    assert '"received": 11, "accepted": 9, "rejected": 2, "failed": 0' in out
    assert "135 events stored" in out
    assert re.search(r"^DeploymentFinished\s+EVENT\.CUSTOM\s+\d+", out, re.M)
    # AND accepted rows and the look-around addresses wait for --verbose and --keep-running
    assert " accepted  ev" not in out
    assert "Look around" not in out and "--verbose" in out and "--keep-running" in out
    assert "UNEXPECTED" not in out
    assert "their ports are free" in out

    # AND nothing it started is left running or listening
    assert_nothing_left(children(out))


@pytest.mark.slow
def test_keep_running_shows_addresses_that_answer_without_a_signature() -> None:
    # GIVEN the demo left running
    process = start_demo("--keep-running")
    started: dict[str, tuple[int, int]] = {}
    try:
        shown = read_until(process, "their logs:")
        started = children(shown)

        # WHEN every address it prints is fetched with a plain, unsigned GET
        urls = re.findall(r"(?:curl |page:\s+)(http://127\.0\.0\.1:\d+/_emulator/\S*)$", shown, re.M)
        answers = {url: urllib.request.urlopen(url, timeout=10).status for url in urls}
        send_line = re.search(r"scripts/send-events FILE --url (\S+)$", shown, re.M)
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[0].decode()
    finally:
        cleanup(process, started)

    # THEN each one answers 200, the function's address is the one that was served, and Ctrl-C stops both
    assert len(urls) >= 4 and set(answers.values()) == {200}, answers
    assert send_line and send_line.group(1) == f"http://127.0.0.1:{started['function'][1]}/"
    assert "their ports are free" in rest
    assert_nothing_left(started)


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
        if demo.group_alive(pid):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_leaves_no_process_and_no_port(signum: signal.Signals) -> None:
    # GIVEN the demo paused right after both services answered
    process = start_demo("--pause-after-start")
    started: dict[str, tuple[int, int]] = {}
    try:
        before = read_until(process, "demo: paused after start")
        started = children(before)
        for name, (pid, port) in started.items():
            assert demo.group_alive(pid) and not demo.port_is_free(port), f"the {name} is not running"

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


RESULTS: list[dict[str, Any]] = [
    {"index": 0, "status": "accepted", "event_id": "ev1", "event_name": "DiskAlmostFull"},
    {"index": 1, "status": "rejected", "errors": [{"field": "time", "message": "looks like seconds"}]},
    {"index": 2, "status": "accepted", "event_id": "ev2", "event_name": "DiskAlmostFull"},
]


@pytest.mark.parametrize(
    ("verbose", "rows"),
    [
        (False, ["    1  rejected  time: looks like seconds"]),
        (
            True,
            [
                "    0  accepted  ev1  DiskAlmostFull",
                "    1  rejected  time: looks like seconds",
                "    2  accepted  ev2  DiskAlmostFull",
            ],
        ),
    ],
    ids=["default", "verbose"],
)
def test_accepted_rows_only_with_verbose(
    verbose: bool, rows: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    counts = demo.print_results(RESULTS, verbose)
    assert capsys.readouterr().out.splitlines() == ["index  status    event id / reason", *rows]
    assert counts == {"received": 3, "accepted": 2, "rejected": 1, "failed": 0}


def test_metric_values_are_read_from_cloud_eyes_metric_data_items() -> None:
    def item(name: str, value: float, unit: str = "count") -> dict[str, Any]:
        dimensions = [{"name": "function", "value": "demo"}, {"name": "trigger", "value": "kafka"}]
        metric = {"namespace": "FORWARDER.EVENTS", "dimensions": dimensions, "metric_name": name}
        return {"metric": metric, "ttl": 172800, "collect_time": 1, "value": value, "unit": unit}

    # GIVEN metric-data requests as a listing may wrap them, the later one repeating a name
    listing = {
        "count": 2,
        "metrics": [
            {"project_id": "p", "body": [item("received", 5), item("duration", 41.5, "ms")]},
            {"project_id": "p", "body": [item("received", 11), item("rejected", 2)]},
        ],
    }
    # THEN every metric is found with its unit, the latest value winning; nothing else counts
    assert demo.metric_values(listing) == {
        "received": (11.0, "count"),
        "duration": (41.5, "ms"),
        "rejected": (2.0, "count"),
    }
    assert demo.metric_values({"count": 0, "metrics": []}) == {}
