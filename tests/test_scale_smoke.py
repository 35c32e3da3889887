"""The scale-out simulation's code path on tiny inputs, so `make scale` cannot rot.

Not a performance test: it checks what the tool counts (stored, 429s, failed), never how fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scale


def _one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    """The tool's exit status, its one run of 5-event instances (JSON), and the printed table."""
    output = tmp_path / "scale.json"
    status = scale.main([*argv, "--events", "5", "--per-message", "2", "--json", str(output), "--quiet"])
    [run] = json.loads(output.read_text(encoding="utf-8"))["runs"]
    return status, run, capsys.readouterr().out


@pytest.mark.slow
def test_two_instances_over_a_one_request_limit_count_the_429s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an account limit of 1 request/s and two instances of 5 events (one request each)
    # WHEN both start together
    status, run, table = _one_run(tmp_path, capsys, "--instances", "2", "--limit", "1")

    # THEN both batches are stored, and the post the limit refused is counted as a 429
    assert status == 0
    assert (run["instances"], run["events"], run["stored"], run["failed"]) == (2, 10, 10, 0)
    assert run["throttled"] >= 1
    assert run["posts"] - run["throttled"] == 2
    assert run["throttled_share"] == round(run["throttled"] / run["posts"], 4)
    assert run["goodput"] > 0 and run["seconds"] > 0 and run["crashed"] == []
    assert "| 2 | 0 of 10 |" in table and "limit 1 requests/s" in table


@pytest.mark.slow
def test_an_instance_that_cannot_start_counts_its_events_as_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a setting the forwarder refuses, so the one invocation raises
    # WHEN the tool runs one instance
    status, run, table = _one_run(tmp_path, capsys, "--instances", "1", "--set", "CLOUDEYE_MAX_ATTEMPTS=0")

    # THEN the run is marked failed: every event counted as failed, the cause named
    assert (status, run["stored"], run["failed"]) == (1, 0, 5)
    assert len(run["crashed"]) == 1 and "CLOUDEYE_MAX_ATTEMPTS" in run["crashed"][0]
    assert "CLOUDEYE_MAX_ATTEMPTS" in table


def test_help_names_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        scale.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("goodput", "429s", "--instances", "--limit", "report-events"):
        assert phrase in text, phrase
