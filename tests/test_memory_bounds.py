"""The worst bodies the caps allow, each through index.handler in a fresh process: the process
stays under 200 MiB and the answer stays proportional to the items processed (at most the item
cap), never to the body's size. Figures: ``python -m benchmarks.memory_caps``."""

from __future__ import annotations

import pytest

from benchmarks.memory_caps import SHAPES, measure

PEAK_LIMIT_MIB = 200
# Per processed item: one result with a few capped errors, never hundreds.
ANSWER_BYTES_PER_ITEM = 600
MAX_ITEMS = 10_000

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("shape", list(SHAPES))
def test_worst_bodies_stay_under_200_mib_with_bounded_answers(shape: str) -> None:
    row = measure(shape)
    assert row["peak_mib"] < PEAK_LIMIT_MIB, row
    assert row["answer_bytes"] <= MAX_ITEMS * ANSWER_BYTES_PER_ITEM, row
    if any(many in shape for many in ("3,000,000", "2,000,000", "tiny items (6 MB")):
        assert row["status"] == 413, row  # millions of items: refused by the item cap, unprocessed
