"""Split validated events into Cloud Eye-sized requests: at most 100 events and a byte limit each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_EVENTS_PER_REQUEST = 100
DEFAULT_MAX_REQUEST_BYTES = 524_288


@dataclass(frozen=True)
class Chunk:
    """One request's worth of events: their input indexes and the JSON array body."""

    indexes: tuple[int, ...]
    body: bytes


@dataclass(frozen=True)
class Oversized:
    index: int
    size: int


def encode_event(event: dict[str, Any]) -> bytes:
    # Compact and UTF-8 (not \u escapes): what is measured is exactly what is sent.
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
    indexes: list[int] = []
    parts: list[bytes] = []
    size = 2  # the enclosing "[" and "]"

    def flush() -> None:
        nonlocal size
        if parts:
            chunks.append(Chunk(tuple(indexes), b"[" + b",".join(parts) + b"]"))
            indexes.clear()
            parts.clear()
            size = 2

    for index, event in events:
        encoded = encode_event(event)
        if len(encoded) + 2 > max_bytes:
            oversized.append(Oversized(index, len(encoded) + 2))
            continue
        # A comma separates this event from the previous one in the same chunk.
        added = len(encoded) + (1 if parts else 0)
        if len(parts) >= max_events or size + added > max_bytes:
            flush()
            added = len(encoded)
        indexes.append(index)
        parts.append(encoded)
        size += added
    flush()
    return chunks, oversized
