"""The benchmark's quick-mode code path, once, on tiny inputs: so `make bench` cannot rot.

Not a performance test: it asserts that every figure, ratio and goal is present and sane, and that
cold starts are measured on up-to-date bytecode.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

from benchmarks import run


@pytest.mark.slow
def test_quick_mode_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN tiny inputs: two requests per run, one fresh process per cold-start figure
    output = tmp_path / "results.json"
    argv = ["--quick", "--events", "200", "--rounds", "1", "--cold-runs", "1", "--memory-events", "200",
            "--http-batch", "100", "--output", str(output), "--quiet"]  # fmt: skip

    # WHEN the benchmark runs
    assert run.main(argv) == 0

    # THEN the JSON holds every figure, positive, and the printed table shows them
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["mode"] == "quick"
    figures = results["figures"]
    for service in ("30ms", "0ms"):
        throughput = figures["throughput_eps"][service]
        for contender in ("forwarder", "http_entry", "sdk", "raw"):
            assert throughput[contender] > 0, (service, contender)
        for contender in ("forwarder", "sdk", "raw"):
            assert figures["cpu_s_per_10k"][service][contender] > 0, (service, contender)
    assert figures["throughput_eps"]["30ms"]["ideal"] > 0
    assert figures["throughput_eps"]["0ms"]["ideal"] is None  # no service time, no finite ideal
    cold = figures["cold_start_s"]
    for name in (
        "forwarder",
        "sdk",
        "forwarder_process",
        "sdk_process",
        "pydantic_import",
        "validator_build",
    ):
        assert 0 < cold[name] < 60, name
    assert cold["forwarder"] < cold["forwarder_process"]
    for name in ("forwarder", "sdk", "forwarder_before", "sdk_before"):
        assert figures["peak_rss_mib"][name] > 5, name
    for name, value in results["ratios"].items():
        assert value is not None and value > 0 and math.isfinite(value), name
    assert [goal["met"] in (True, False) for goal in results["goals"]] == [True] * len(results["goals"])
    assert len(results["goals"]) >= 6
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["cpu_model"] and machine["date"]
    assert results["parameters"]["events"] == 200 and results["parameters"]["requests_needed"] == 2
    printed = capsys.readouterr().out
    assert "| throughput, 30 ms service time (events/s) |" in printed
    assert "vs SDK" in printed and str(output) in printed


def test_a_quick_run_leaves_the_committed_results_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    written = {}

    def record(plan: run.Plan, mode: str, output: Path, log: object) -> dict[str, str]:
        written[mode] = output
        return {"table_markdown": ""}

    monkeypatch.setattr(run, "run", record)
    run.main(["--quick", "--quiet"])
    run.main(["--quiet"])
    assert written == {"quick": run.QUICK_OUTPUT, "full": run.DEFAULT_OUTPUT}
    assert run.QUICK_OUTPUT != run.DEFAULT_OUTPUT


def test_cold_starts_run_on_bytecode_that_matches_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a code root whose module has no bytecode, and one whose bytecode is older than its source
    (tmp_path / "function").mkdir()
    (tmp_path / "benchmarks").mkdir()
    fresh = tmp_path / "function" / "index.py"
    fresh.write_text("ANSWER = 1\n", encoding="utf-8")
    edited = tmp_path / "benchmarks" / "child.py"
    edited.write_text("ANSWER = 2\n", encoding="utf-8")
    stale = Path(importlib.util.cache_from_source(str(edited)))
    stale.parent.mkdir()
    stale.write_bytes(b"stale")
    monkeypatch.setattr(run, "ROOT", str(tmp_path))
    monkeypatch.setattr(run, "FUNCTION_DIR", str(tmp_path / "function"))

    # WHEN the benchmark prepares its fresh processes
    run.compile_bytecode()

    # THEN each module has bytecode stamped with its source's modification time and size
    for source in (fresh, edited):
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        stat = os.stat(source)
        assert int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        assert int.from_bytes(header[12:16], "little") == stat.st_size


def test_a_module_that_does_not_compile_stops_the_cold_start_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "function").mkdir()
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "function" / "index.py").write_text("def handler(:\n", encoding="utf-8")
    monkeypatch.setattr(run, "ROOT", str(tmp_path))
    monkeypatch.setattr(run, "FUNCTION_DIR", str(tmp_path / "function"))
    with pytest.raises(RuntimeError, match=r"could not compile .*function"):
        run.compile_bytecode()
