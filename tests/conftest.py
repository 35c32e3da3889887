"""Shared pytest fixtures. Served-emulator fixtures come from tests/support/emulator_server.py."""

from __future__ import annotations

import os

import pytest

# Variables the forwarder (and the official SDK) read; each test starts without any of them.
_ISOLATED_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUDEYE_", "FORWARDER_", "RUNTIME_PROJECT_ID")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove forwarder settings from the environment so no test sees another's (or the host's)."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
