"""Split validated events into Cloud Eye-sized requests: at most 100 events and a byte limit each."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

# pydantic's Rust serializer: for these plain dicts (str, int, list, dict) it writes exactly the
# bytes of json.dumps(..., separators=(",", ":"), ensure_ascii=False).encode(), about 3x faster.
from pydantic_core import to_json

from .settings import DEFAULT_MAX_REQUEST_BYTES

MAX_EVENTS_PER_REQUEST = 100


class Chunk(NamedTuple):
    """One request's worth of events: their input indexes, the JSON array body and each event's
    ``time`` (so the time window can be checked again before each attempt)."""

    indexes: tuple[int, ...]
    body: bytes
    times: tuple[int, ...] = ()

    def subset(self, positions: Sequence[int]) -> Chunk:
        """The events at ``positions`` (0-based, within this chunk) as a chunk of their own.

        Each event is encoded again from this body, byte for byte as it was: a resent event is
        exactly the event sent before (Cloud Eye recognises it as the same one).
        """
        events = json.loads(self.body)
        return Chunk(
            tuple(self.indexes[p] for p in positions),
            to_json([events[p] for p in positions]),
            tuple(self.times[p] for p in positions) if self.times else (),
        )


class Oversized(NamedTuple):
    input_index: int  # (a tuple's own `index` is a method)
    size: int


def encode_event(event: dict[str, Any]) -> bytes:
    # Compact and UTF-8 (not \u escapes): what is measured is exactly what is sent.
    return to_json(event)


def chunk_events(
    events: Sequence[tuple[int, dict[str, Any]]],
    *,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> tuple[list[Chunk], list[Oversized]]:
    """Greedy, order-keeping packing of ``(index, event)`` pairs into request bodies.

    Every event lands in exactly one chunk, except one that alone exceeds ``max_bytes``
    (as ``[event]``), which is returned in the second list instead.
    """
    chunks: list[Chunk] = []
    oversized: list[Oversized] = []
    start, total = 0, len(events)
    fast = True
    while start < total:
        if fast:
            # Usually the next ``max_events`` events fit together: encode them in one call. The body
            # is byte for byte what the greedy loop below would build, at a fraction of the cost.
            window = events[start : start + max_events]
            body = to_json([event for _, event in window])
            if len(body) <= max_bytes:
                indexes = tuple(index for index, _ in window)
                chunks.append(Chunk(indexes, body, tuple([event.get("time", 0) for _, event in window])))
                start += len(window)
                continue
        start, fast = _greedy_chunk(events, start, max_events, max_bytes, chunks, oversized)
    return chunks, oversized


def iter_chunks(
    events: Iterable[tuple[int, dict[str, Any]]],
    oversized: list[Oversized],
    *,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Iterator[Chunk]:
    """``chunk_events`` over a stream: each chunk is yielded as soon as no later event can join it.

    The chunks are exactly those ``chunk_events`` makes of the whole sequence (greedy packing
    decides a chunk from the events before it), so the first request can leave while later events
    are still being validated. Events too large for any request are appended to ``oversized``.
    """
    slices = ([pair] for pair in events)
    return iter_chunks_of_slices(slices, oversized, max_events=max_events, max_bytes=max_bytes)


def iter_chunks_of_slices(
    slices: Iterable[Sequence[tuple[int, dict[str, Any]]]],
    oversized: list[Oversized],
    *,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Iterator[Chunk]:
    """``iter_chunks`` over a stream of slices of ``(index, event)`` pairs: the stream is read a
    slice at a time, not an event at a time (no Python step per event), with the same chunks."""
    pending: list[tuple[int, dict[str, Any]]] = []
    for pairs in slices:
        pending += pairs
        if len(pending) < max_events:
            continue
        chunks, too_big = chunk_events(pending, max_events=max_events, max_bytes=max_bytes)
        oversized.extend(too_big)
        if chunks and len(chunks[-1].indexes) < max_events:
            # The last chunk ran out of events, not of room: later events may still join it.
            still_open = set(chunks.pop().indexes)
            pending = [pair for pair in pending if pair[0] in still_open]
        else:
            pending = []
        yield from chunks
    chunks, too_big = chunk_events(pending, max_events=max_events, max_bytes=max_bytes)
    oversized.extend(too_big)
    yield from chunks


def _greedy_chunk(
    events: Sequence[tuple[int, dict[str, Any]]],
    start: int,
    max_events: int,
    max_bytes: int,
    chunks: list[Chunk],
    oversized: list[Oversized],
) -> tuple[int, bool]:
    """Fill one chunk event by event from ``start``; return where the next chunk starts and
    whether it is worth trying the one-call encoding for it (not when bytes closed this one)."""
    indexes: list[int] = []
    times: list[int] = []
    parts: list[bytes] = []
    size = 2  # the enclosing "[" and "]"
    position = start
    while position < len(events):
        index, event = events[position]
        encoded = encode_event(event)
        if len(encoded) + 2 > max_bytes:
            oversized.append(Oversized(index, len(encoded) + 2))
            position += 1
            continue
        # A comma separates this event from the previous one in the same chunk.
        added = len(encoded) + (1 if parts else 0)
        if size + added > max_bytes:
            break  # this event opens the next chunk
        indexes.append(index)
        times.append(event.get("time", 0))
        parts.append(encoded)
        size += added
        position += 1
        if len(parts) >= max_events:
            break
    if parts:
        chunks.append(Chunk(tuple(indexes), b"[" + b",".join(parts) + b"]", tuple(times)))
    by_bytes = position < len(events) and len(parts) < max_events
    return position, not by_bytes
