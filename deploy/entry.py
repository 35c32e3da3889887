"""What `scripts/deploy` and `scripts/package` share: the project's virtualenv and import path.

Each script puts the repository on ``sys.path``, imports this module and calls ``run``. Nothing
else is imported here, so the re-exec below happens before any dependency is loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# Set for the re-executed process, so a virtualenv whose prefix does not match cannot loop.
REEXEC_FLAG = "DEPLOY_SCRIPTS_REEXEC"


def _use_project_venv(script: str) -> None:
    """Run with the project's virtualenv when there is one (the shebang cannot know where it is)."""
    if not VENV_PYTHON.exists() or os.environ.get(REEXEC_FLAG):
        return
    if Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve():
        return
    os.environ[REEXEC_FLAG] = "1"
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), script, *sys.argv[1:]])  # noqa: S606


def run(command: str, script: str) -> NoReturn:
    """Start ``command`` ("deploy" or "package") for the script file ``script``."""
    _use_project_venv(script)
    for path in (ROOT / "function", ROOT):  # deploy/ uses the forwarder's own helpers
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from deploy import cli

    main = {"deploy": cli.deploy_main, "package": cli.package_main}[command]
    sys.exit(main())
