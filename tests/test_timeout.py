"""Per-test timeout: a test that never returns fails (and the run goes on) instead of hanging.

The project's pytest configuration sets the limit (`timeout` in pyproject.toml); here a copy of
that configuration runs a deliberately endless test with the limit lowered to 2 seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ENDLESS = """
def test_endless_loop():
    while True:  # what an off-by-one in a "while it does not fit" loop looks like
        pass


def test_after_it():
    assert sum([1, 2]) == 3
"""


def test_the_suite_has_a_per_test_timeout(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 300


def test_an_endless_test_is_reported_as_a_failure(tmp_path: Path) -> None:
    (tmp_path / "test_endless.py").write_text(ENDLESS)
    completed = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
            "-o", "timeout=2", "-p", "no:cacheprovider", "test_endless.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        # Only a guard so this test cannot hang itself if the timeout were not in force.
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr

    assert completed.returncode == 1, output  # 1: tests failed (not interrupted, not an error)
    assert "FAILED test_endless.py::test_endless_loop" in output
    assert "Failed: Timeout (>2.0s) from pytest-timeout." in output
    assert "1 failed, 1 passed" in output
