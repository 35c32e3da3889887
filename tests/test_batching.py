"""Chunking: order kept, every event exactly once, <= 100 events and <= the byte limit per request."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.batching import MAX_EVENTS_PER_REQUEST, chunk_events, encode_event

# Bytes of JSON an event takes before its content: {"event_name":"eNNN","detail":{"content":""}}
_OVERHEAD = len(encode_event({"event_name": "e000", "detail": {"content": ""}}))


def _event(index: int, content: str) -> dict[str, Any]:
    return {"event_name": f"e{index:03d}", "detail": {"content": content}}


def _content(rng: random.Random, encoded_size: int) -> str:
    """Content that makes the event encode to about ``encoded_size`` bytes (some multi-byte)."""
    length = max(0, encoded_size - _OVERHEAD)
    if rng.random() < 0.3:
        # 'é' is 2 bytes of UTF-8: sizes are bytes, not characters.
        return "é" * (length // 2) + "x" * (length % 2)
    return "x" * length


def _check(events: list[tuple[int, dict[str, Any]]], max_bytes: int, max_events: int) -> None:
    chunks, oversized = chunk_events(events, max_bytes=max_bytes, max_events=max_events)

    too_big = [index for index, event in events if len(encode_event(event)) + 2 > max_bytes]
    assert [big.input_index for big in oversized] == too_big
    for big in oversized:
        assert big.size > max_bytes
    kept = [(index, event) for index, event in events if index not in set(too_big)]

    # Concatenated chunks equal the input (minus the oversized ones), in order.
    parsed = [event for chunk in chunks for event in json.loads(chunk.body)]
    assert parsed == [event for _, event in kept]
    assert [index for chunk in chunks for index in chunk.indexes] == [index for index, _ in kept]
    # Every index exactly once, across chunks and oversized.
    seen = [index for chunk in chunks for index in chunk.indexes] + [big.input_index for big in oversized]
    assert sorted(seen) == [index for index, _ in events]

    for chunk in chunks:
        assert 1 <= len(chunk.indexes) <= max_events
        assert len(chunk.body) <= max_bytes
        assert len(json.loads(chunk.body)) == len(chunk.indexes)
    # Greedy: a chunk is only closed when the next event would not fit (no needless requests).
    for current, following in itertools.pairwise(chunks):
        first_next = json.loads(following.body)[0]
        merged = len(current.body) + 1 + len(encode_event(first_next))
        assert len(current.indexes) == max_events or merged > max_bytes


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 450),
    max_bytes=st.one_of(st.integers(60, 400), st.integers(401, 6000), st.sampled_from([1024, 4099, 524_288])),
    max_events=st.sampled_from([MAX_EVENTS_PER_REQUEST, 1, 7, 33]),
    seed=st.integers(0, 2**32 - 1),
    profile=st.sampled_from(["tiny", "mixed", "near_limit", "halves"]),
)
def test_chunks_round_trip(count: int, max_bytes: int, max_events: int, seed: int, profile: str) -> None:
    rng = random.Random(seed)
    events = []
    for index in range(count):
        if profile == "tiny":
            size = rng.randint(0, 60)
        elif profile == "near_limit":
            size = max_bytes + rng.randint(-5, 3)  # both sides of "fits alone"
        elif profile == "halves":
            size = max_bytes // 2 + rng.randint(-3, 3)  # two per chunk, or just not
        else:
            size = rng.choice([rng.randint(0, 80), rng.randint(0, max_bytes), max_bytes + rng.randint(-3, 3)])
        events.append((index, _event(index, _content(rng, size))))

    _check(events, max_bytes, max_events)


def test_indexes_need_not_be_contiguous() -> None:
    # Validation drops rejected items: chunks carry the original input indexes.
    events = [(i, _event(i, "x")) for i in (0, 3, 4, 9, 250)]
    chunks, oversized = chunk_events(events)
    assert oversized == []
    assert [chunk.indexes for chunk in chunks] == [(0, 3, 4, 9, 250)]


@pytest.mark.parametrize(
    ("count", "expected"), [(0, []), (1, [1]), (100, [100]), (101, [100, 1]), (450, [100] * 4 + [50])]
)
def test_hundred_events_per_request(count: int, expected: list[int]) -> None:
    chunks, _ = chunk_events([(i, _event(i, "")) for i in range(count)])
    assert [len(chunk.indexes) for chunk in chunks] == expected


def test_exact_fit_stays_in_one_request() -> None:
    events = [(i, _event(i, "x" * 10)) for i in range(3)]
    exact = sum(len(encode_event(e)) for _, e in events) + 2 + 2  # brackets and two commas
    chunks, _ = chunk_events(events, max_bytes=exact)
    assert [len(c.body) for c in chunks] == [exact]
    chunks, _ = chunk_events(events, max_bytes=exact - 1)
    assert [c.indexes for c in chunks] == [(0, 1), (2,)]


def test_single_oversized_event_is_rejected_alone() -> None:
    small, big = _event(0, "small"), _event(1, "x" * 2000)
    events = [(0, small), (1, big), (2, _event(2, "also small"))]

    chunks, oversized = chunk_events(events, max_bytes=1024)

    assert [c.indexes for c in chunks] == [(0, 2)]
    assert [(o.input_index, o.size) for o in oversized] == [(1, len(encode_event(big)) + 2)]


def test_event_exactly_at_the_limit_is_sent() -> None:
    event = _event(0, "")
    limit = len(encode_event(event)) + 2
    chunks, oversized = chunk_events([(0, event)], max_bytes=limit)
    assert oversized == [] and len(chunks[0].body) == limit
    chunks, oversized = chunk_events([(0, event)], max_bytes=limit - 1)
    assert chunks == [] and [o.input_index for o in oversized] == [0]


def test_report_events_rejects_an_oversized_event_naming_the_limit() -> None:
    from forwarder import report_events
    from forwarder.events import now_ms
    from forwarder.settings import Settings

    now = now_ms()
    items = [
        {"event_name": "small", "event_source": "app.orders", "time": now, "detail": {}},
        {"event_name": "big", "event_source": "app.orders", "time": now, "detail": {"content": "x" * 4000}},
        {"event_name": "small2", "event_source": "app.orders", "time": now, "detail": {}},
    ]
    settings = Settings.from_env(environ={"CLOUDEYE_MAX_REQUEST_BYTES": "2048"})

    body = report_events(items, settings=settings, dry_run=True, clock=lambda: now).to_dict()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    [error] = body["results"][1]["errors"]
    assert "2048-byte" in error["message"] and "CLOUDEYE_MAX_REQUEST_BYTES" in error["message"]
    assert body["results"][1]["index"] == 1


def test_a_subset_keeps_the_bytes_indexes_and_times_of_its_events() -> None:
    events = [(index, {**_event(index, "é" * index), "time": 1000 + index}) for index in (3, 5, 8)]
    [chunk], _ = chunk_events(events, max_bytes=10_000)
    part = chunk.subset([0, 2])
    assert part.indexes == (3, 8)
    assert part.times == (1003, 1008)  # the time window is checked again before each attempt
    # Byte for byte as first encoded: a resent event is the event Cloud Eye saw before.
    assert part.body == b"[" + encode_event(events[0][1]) + b"," + encode_event(events[2][1]) + b"]"


def test_a_subset_of_a_chunk_without_times_has_none() -> None:
    from forwarder.batching import Chunk

    chunk = Chunk((1, 2), b'[{"event_name":"a"},{"event_name":"b"}]')
    part = chunk.subset([1])
    assert (part.indexes, part.body, part.times) == ((2,), b'[{"event_name":"b"}]', ())
