"""scripts/send-events through a served forwarder (functions-framework `ingest`) and the emulator."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fresh_process import run_command

ROOT = Path(__file__).resolve().parents[1]
SEND_EVENTS = ROOT / "scripts" / "send-events"
INGEST_TOKEN = "e2e-ingest-token"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def forwarder(emulator: Any) -> Iterator[str]:
    """The HTTP entry served by functions-framework, sending to the served emulator; its URL."""
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HUAWEICLOUD_", "CLOUDEYE_", "FORWARDER_"))
        },
        **emulator.forwarder_env(FORWARDER_INGEST_TOKEN=INGEST_TOKEN),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--source", str(ROOT / "function" / "main.py"),
         "--target", "ingest", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/")
                connection.getresponse().read()
                connection.close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the forwarder did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def send(
    *argv: str, token: str | None = INGEST_TOKEN, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORWARDER_INGEST_TOKEN"}
    if token:
        env["FORWARDER_INGEST_TOKEN"] = token
    return run_command([sys.executable, str(SEND_EVENTS), *argv], env=env, input=stdin)


def event(i: int, now_ms: int) -> dict[str, Any]:
    return {
        "event_name": "OrderSynced",
        "event_source": "shop.Orders",
        "time": now_ms - 60_000 - i,  # distinct times: Cloud Eye would merge identical events
        "detail": {"event_type": "EVENT.CUSTOM", "event_level": "Info", "resource_id": f"order-{i}"},
    }


def test_thousand_events_ndjson_in_batches_with_progress(
    forwarder: str, cloudeye: Any, tmp_path: Path
) -> None:
    # GIVEN a 1,000-event NDJSON file
    now_ms = time.time_ns() // 1_000_000
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(event(i, now_ms)) + "\n" for i in range(1000)))

    # WHEN it is sent with progress forced on (stderr is not a terminal here)
    done = send(str(path), "--url", forwarder, "--progress")

    # THEN all 1,000 are accepted, in two forwarder batches and ten Cloud Eye requests
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "1000 events in 2 batches: 1000 accepted, 0 rejected, 0 failed" in done.stdout
    assert done.stderr.splitlines()[-1].startswith("progress: 1000/1000 events 100%  accepted 1000")
    assert len(done.stdout.splitlines()) == 1 + 1000 + 1  # header, one row per event, totals
    assert INGEST_TOKEN not in done.stdout + done.stderr
    assert len(cloudeye.stored_events()) == 1000
    posts = [r for r in cloudeye.requests_log() if r["method"] == "POST"]
    assert sorted(r["events"] for r in posts) == [100] * 10


def test_mixed_batch_names_each_rejection_and_exits_one(
    forwarder: str, cloudeye: Any, tmp_path: Path
) -> None:
    now_ms = time.time_ns() // 1_000_000
    events = [event(i, now_ms) for i in range(5)]
    events[1]["time"] //= 1000
    events[3]["detail"]["event_type"] = "EVENT.SYS"
    out = tmp_path / "results.json"
    done = send("-", "--url", forwarder, "--batch-size", "2", "--json", str(out), stdin=json.dumps(events))
    assert done.returncode == 1, done.stderr
    assert "5 events in 3 batches: 3 accepted, 2 rejected, 0 failed" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "rejected", "accepted"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert "looks like seconds" in results[1]["errors"][0]["message"]
    assert results[3]["errors"][0]["field"] == "detail.event_type"
    assert {s["event_id"] for s in cloudeye.stored_events()} == {results[i]["event_id"] for i in (0, 2, 4)}


def test_dry_run_sends_nothing_to_cloud_eye(forwarder: str, cloudeye: Any) -> None:
    now_ms = time.time_ns() // 1_000_000
    done = send("-", "--url", forwarder, "--dry-run", stdin=json.dumps([event(0, now_ms)]))
    assert done.returncode == 0, done.stderr
    assert "(valid; dry run, not sent)" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("dry run: 1 event in 1 batch: 1 accepted")
    assert cloudeye.stored_events() == []


def test_missing_token_is_refused_with_a_hint(forwarder: str, cloudeye: Any) -> None:
    done = send("-", "--url", forwarder, token=None, stdin=json.dumps([event(0, 0)]))
    assert done.returncode == 1
    assert "forwarder answered 401" in done.stderr and "FORWARDER_INGEST_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[\n  {"event_name": "A"},\n  {"event_name": \n]\n', "line 4 column 1: invalid JSON"),
        ("", "is empty"),
        (None, "no such file"),
    ],
    ids=["invalid-json", "empty", "missing"],
)
def test_bad_input_file_exits_two_and_names_it(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    done = send(str(path), "--url", "http://127.0.0.1:9/")
    assert done.returncode == 2
    assert done.stderr.startswith("send-events: ") and str(path) in done.stderr and message in done.stderr
    assert done.stdout == ""


def test_unreachable_forwarder_exits_three() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    done = send("-", "--url", url, stdin='{"event_name": "A"}')
    assert done.returncode == 3
    assert f"could not reach the forwarder at {url}" in done.stderr
