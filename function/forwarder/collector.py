"""The garbage collector in a long-lived function process: what the entry points do, once.

The library itself never touches the collector. The entry points (``index.py``, ``main.py``)
own their process, and a warm instance serves many invocations.
"""

from __future__ import annotations

import gc
import sys
import threading

_frozen = False
_lock = threading.Lock()


def freeze_when_warm() -> None:
    """Once the validator has been loaded, freeze what the process holds: call at the start of
    an invocation.

    The modules, pydantic and the validators (some 27,000 objects) live as long as the process,
    yet every full collection walks them again: about 10 ms of CPU per 10,000-event batch.
    ``gc.freeze()`` moves them out of the collector's walks; the collector stays on for
    everything else. It runs at the start of the invocation after the one that loaded the
    validator, so the cold start is not made slower, and after ``gc.collect()``, so no garbage
    is frozen (frozen objects are never collected).
    """
    global _frozen
    if _frozen or "forwarder.events" not in sys.modules:
        return
    with _lock:
        if not _frozen:
            gc.collect()
            gc.freeze()
            _frozen = True
