"""The memory benchmark's code path on tiny caps, so `make bench-memory` cannot rot.

Not a performance test: it checks that every body shape is built within the caps, goes through
its entry in a fresh process and gets a peak figure, never how large that figure is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import memory


def test_every_body_fits_the_caps_it_stands_for() -> None:
    for body in memory.BODIES:
        data = body.build(20_000, 20)
        assert 0 < len(data) <= 20_000, body.name
    events = memory.valid_events(20_000, 20)
    assert len(events) == 20
    assert 15_000 < len(json.dumps(events, separators=(",", ":"))) <= 20_000


@pytest.mark.slow
def test_tiny_caps_give_a_figure_for_every_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN caps of 20,000 bytes and 20 items, and a 20-event batch against the SDK
    output = tmp_path / "memory.json"
    argv = ["--body-bytes", "20000", "--max-items", "20", "--batch-events", "20", "--output", str(output),
            "--quiet"]  # fmt: skip

    # WHEN the benchmark runs
    assert memory.main(argv) == 0

    # THEN every body has an answer and a peak, and the batch both contenders' peaks
    results = json.loads(output.read_text(encoding="utf-8"))
    assert [row["body"] for row in results["bodies"]] == [body.name for body in memory.BODIES]
    for row in results["bodies"]:
        assert row["stopped"] is None, row
        assert 200 <= row["status"] < 500 and row["peak_mib"] > 5 and row["answer_bytes"] > 0, row
    valid = [row for row in results["bodies"] if row["body"].startswith("valid events")]
    assert len(valid) == 3 and all(row["status"] == 201 for row in valid)
    batch = results["batch"]
    assert batch["forwarder"] > 5 and batch["sdk"] > 5
    printed = capsys.readouterr().out
    assert "| valid events, JSON array | main.ingest |" in printed and "x the SDK" in printed
