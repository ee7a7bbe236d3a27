"""Keep the cyclic garbage collector off what a step process held before its bulk work began.

A step process holds a couple of hundred thousand long-lived objects before
its first record: the Dagster definitions, SQLAlchemy, the CRM clients. A
bulk step allocates containers fast enough to start a full collection every
few thousand records, and every full collection walks all of those objects
again, though none of them is garbage. At 20,000 persons that walk was about
a third of the persons step and of the push's diff (README, "Benchmarks").
`gc.freeze()` moves what is alive to a generation collections skip;
leaving the outermost step gives it back (`gc.unfreeze()`), so a process that
lives on (the test suite, an in-process executor, the webhook receiver)
collects it as before and leaks nothing that was set aside.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_ours = False  # whether this module froze what is frozen (someone else's freeze is left as it is)


@contextmanager
def long_lived_set_aside() -> Iterator[None]:
    """Within: full collections skip every object alive on entry to the outermost one."""
    global _depth, _ours
    with _lock:
        if _depth == 0:
            _ours = gc.get_freeze_count() == 0
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _ours:
                gc.unfreeze()
