"""Run a command, or a Python snippet, in a fresh child process and read what it printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ROOT = ROOT / "function"


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``argv`` with its output captured as text; its stdin is ``input`` or closed, never the
    terminal (a command that asks for confirmation must not wait for a test to type)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def run_fresh(code: str) -> Any:
    """Nothing imported by other tests is loaded there, so import-time checks see the truth."""
    completed = run_command([sys.executable, "-c", code], cwd=FUNCTION_ROOT, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])
