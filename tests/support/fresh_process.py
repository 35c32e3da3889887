"""Run a snippet in a fresh interpreter (cwd ``function/``) and read the JSON it prints last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FUNCTION_ROOT = Path(__file__).resolve().parents[2] / "function"


def run_fresh(code: str) -> Any:
    """Nothing imported by other tests is loaded there, so import-time checks see the truth."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FUNCTION_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])
