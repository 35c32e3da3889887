"""Chunking: when the one-call encoding is used, and streaming with any request size.

chunk_events encodes a whole window of events in one call when they fit, and falls back to
encoding them one by one only for a chunk that the byte limit closes. The result is the same
either way; these tests pin which path is taken, since the one-by-one path costs about 3x.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import to_json

from forwarder import batching
from forwarder.batching import chunk_events, encode_event, iter_chunks


def sized(name: str, content_length: int) -> dict[str, Any]:
    return {"event_name": name, "detail": {"content": "x" * content_length}}


@pytest.fixture
def encoded_one_by_one(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the events the greedy path encodes one at a time, in order."""
    names: list[str] = []

    def spy(event: dict[str, Any]) -> bytes:
        names.append(event["event_name"])
        return encode_event(event)

    monkeypatch.setattr(batching, "encode_event", spy)
    return names


def test_events_that_fit_are_encoded_in_one_call(encoded_one_by_one: list[str]) -> None:
    events = list(enumerate(sized(f"e{i}", 10) for i in range(250)))
    chunks, oversized = chunk_events(events)
    assert [len(chunk.indexes) for chunk in chunks] == [100, 100, 50]
    assert oversized == []
    assert encoded_one_by_one == []


def test_a_window_of_exactly_max_bytes_is_encoded_in_one_call(encoded_one_by_one: list[str]) -> None:
    events = list(enumerate(sized(f"e{i}", 10) for i in range(3)))
    body = to_json([event for _, event in events])
    chunks, _ = chunk_events(events, max_bytes=len(body))
    assert [(chunk.indexes, chunk.body) for chunk in chunks] == [((0, 1, 2), body)]
    assert encoded_one_by_one == []


def test_one_by_one_only_after_the_byte_limit_closed_a_chunk(encoded_one_by_one: list[str]) -> None:
    # GIVEN at most 2 events a request, and a byte limit that [e0, e1] exceeds but [e1, e2] meets
    events = [sized("e0", 40), sized("e1", 200), *(sized(f"e{i}", 10) for i in range(2, 6))]
    pairs = list(enumerate(events))
    limit = 3 + len(encode_event(events[1])) + len(encode_event(events[2]))
    assert 3 + len(encode_event(events[0])) + len(encode_event(events[1])) > limit

    chunks, oversized = chunk_events(pairs, max_events=2, max_bytes=limit)

    # THEN e0 goes alone (bytes), e1 and e2 together (count), then two fast windows
    assert [chunk.indexes for chunk in chunks] == [(0,), (1, 2), (3, 4), (5,)]
    assert oversized == []
    # the window [e0, e1] did not fit: e0 and e1 were encoded one by one, and, since bytes closed
    # that chunk, so was the next one (e1, e2); count closed that one, so e3.. go in one call again.
    assert encoded_one_by_one == ["e0", "e1", "e1", "e2"]


@pytest.mark.parametrize("max_events", [3, 150])
def test_streaming_gives_the_same_chunks_for_any_request_size(max_events: int) -> None:
    # 420 = 2 x 150 + 120: the last, streamed after the input ends, is larger than 100 too.
    events = list(enumerate(sized(f"e{i}", i % 7) for i in range(420)))
    oversized: list = []
    streamed = list(iter_chunks(iter(events), oversized, max_events=max_events))
    assert streamed == chunk_events(events, max_events=max_events)[0]
    expected = [3] * 140 if max_events == 3 else [150, 150, 120]
    assert [len(chunk.indexes) for chunk in streamed] == expected
    assert oversized == []
