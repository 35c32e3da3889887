"""Shared pytest fixtures. Served-emulator fixtures come from tests/support/emulator_server.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Variables the forwarder (and the official SDK) read; each test starts without any of them.
_ISOLATED_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUDEYE_", "FORWARDER_", "RUNTIME_PROJECT_ID")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove forwarder settings from the environment so no test sees another's (or the host's)."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name, raising=False)


# --- The served Cloud Eye emulator (see tests/support/emulator_server.py) ----------------------

EMULATOR_TEST_AK = "test-emulator-ak"
EMULATOR_TEST_SK = "test-emulator-sk"


@pytest.fixture(scope="session")
def emulator():
    """The Cloud Eye emulator served on a free loopback port, once per session.

    An ``EmulatorServer``: ``base_url``, ``access_key``/``secret_key`` (``test-emulator-ak`` /
    ``test-emulator-sk``), ``project_id``, ``forwarder_env()``, ``sdk_client()``,
    ``post_events()``, ``reset()``, ``set_faults()``, ``stored_events()``, ``stats()``.
    Prefer ``cloudeye``, which also resets it around each test.
    """
    from tests.support.emulator_server import EmulatorServer
    from tests.support.environ import environment

    with environment({"EMULATOR_AK": EMULATOR_TEST_AK, "EMULATOR_SK": EMULATOR_TEST_SK}):
        server = EmulatorServer(access_key=EMULATOR_TEST_AK, secret_key=EMULATOR_TEST_SK).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def cloudeye(emulator):
    """The served emulator, emptied (events, faults, rate limits, counters, clock) before and
    after the test."""
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture
def to_cloudeye(cloudeye, monkeypatch: pytest.MonkeyPatch):
    """The served emulator (reset), with the forwarder's environment pointing at it."""
    for name, value in cloudeye.forwarder_env().items():
        monkeypatch.setenv(name, value)
    return cloudeye


@pytest.fixture
def forwarder_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` recording the forwarder's INFO lines (read them with ``entry_helpers.log_lines``)."""
    caplog.set_level("INFO", logger="forwarder")
    return caplog


@pytest.fixture
def fresh_connection_pool() -> Iterator[None]:
    """No kept-alive client connection crosses into or out of the test (ports are reused).
    Modules that talk to loopback servers use it: ``pytestmark = pytest.mark.usefixtures(...)``."""
    from tests.support.loopback import forget_pooled_connections

    forget_pooled_connections()
    yield
    forget_pooled_connections()
