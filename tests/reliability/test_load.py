"""Load through the functions-framework HTTP entry.

16 callers x 50 requests x 100 events (80,000 events) to ``ingest`` served on a loopback socket in
this process, while the emulator, in a child process so its stored events do not count against
this one, answers every request 20 ms late. Resident memory is sampled from /proc/self/status.
"""

from __future__ import annotations

import pytest

from tests.reliability.harness import LOAD_STATUSES, RemoteEmulator, load


@pytest.mark.slow
def test_concurrent_callers_get_documented_answers_lose_nothing_and_memory_stays_flat(ingest) -> None:
    with RemoteEmulator() as emulator:
        figures = load(ingest, emulator, threads=16, requests_per_thread=50, events_per_request=100)

    assert figures.problems == [], figures
    assert set(figures.answered) <= LOAD_STATUSES, figures.answered
    assert sum(figures.answered.values()) == figures.requests + figures.resent == 800 + figures.resent
    assert figures.stored == figures.events == 80_000 and figures.lost == 0
    assert figures.peak_kib <= 1.5 * figures.baseline_kib, figures
