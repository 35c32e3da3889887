"""Fuzzing every trigger parser and the HTTP body forms.

10,000 hypothesis inputs per entry (profile ``reliability-fuzz``: ``max_examples=10000``, no
deadline), each answered with a documented status or count, never an exception or a 500; every
log line the forwarder writes on the way is checked to be writable as UTF-8 and free of secrets.
The inputs come from ``RELIABILITY_SEED`` (``tests/reliability/fuzz.py`` explains how they are made).
"""

from __future__ import annotations

import pytest

from tests.reliability.fuzz import COUNTS, EXAMPLES, LOG_PROBLEMS, TARGETS, fuzz_environment


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_ten_thousand_inputs_never_crash_nor_answer_500(name: str) -> None:
    before = COUNTS[name]
    with fuzz_environment() as lines:
        TARGETS[name]()
    assert COUNTS[name] - before >= EXAMPLES == 10_000
    assert LOG_PROBLEMS == []
    assert lines.count > 0  # the log lines really went through the check
