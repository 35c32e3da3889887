"""Change ``os.environ`` for a while and put it back exactly as it was (set or unset)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def preserved(names: list[str] | tuple[str, ...]) -> Iterator[None]:
    """Whatever happens to ``names`` inside the block is undone after it."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in ``os.environ`` for the duration of the block."""
    with preserved(list(values)):
        os.environ.update(values)
        yield
