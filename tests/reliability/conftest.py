"""Fixtures of the reliability suite: the served ingest entry, and a secret scan after every test."""

from __future__ import annotations

import logging

import pytest

from tests.reliability.harness import leaks


@pytest.fixture(scope="module")
def ingest():
    """The functions-framework ``ingest`` entry served on a loopback socket (settings per request)."""
    from tests.support.ingest_server import IngestServer

    with IngestServer("ingest") as server:
        yield server


@pytest.fixture(autouse=True)
def no_secret_in_captured_output(caplog, capfd):
    """Every log record (any logger, any level) and everything written to stdout/stderr during
    the test is scanned for the suite's distinctive credentials."""
    caplog.set_level(logging.DEBUG)
    yield
    captured = capfd.readouterr()
    found = {
        where: names
        for where, text in (("log records", caplog.text), ("stdout", captured.out), ("stderr", captured.err))
        if (names := leaks(text))
    }
    assert not found, f"secrets in captured output: {found}"
