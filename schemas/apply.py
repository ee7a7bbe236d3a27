"""Run one normalizer over many payloads: one outcome per payload, never an exception.

Imports nothing of `pipelines`, because it is what a normalization worker
process runs (pipelines/steps/workers.py): a worker imports this module and
the normalizer's own, not the Dagster definitions, so it starts in half a
second and holds tens of MB, not a hundred. The same function runs in the step's process when there is no pool,
so both ways give the same outcomes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, NamedTuple

from schemas.errors import NORMALIZER_ERROR, InvalidRecord
from schemas.raw import storable


class Outcome(NamedTuple):
    """A payload's canonical record (`data`), or why it has none (`reason`, `detail`)."""

    data: dict[str, Any] | None
    reason: str | None = None
    detail: str | None = None


def normalize_all(normalize: Callable[..., dict[str, Any]], payloads: Iterable[Any], region: str) -> list[Outcome]:
    """`normalize(payload, region=region)` for each payload; what it raises becomes that payload's reason,
    and so does a canonical record the store could not hold as it is (a normalizer bug)."""
    return [_outcome(normalize, payload, region) for payload in payloads]


def _outcome(normalize: Callable[..., dict[str, Any]], payload: Any, region: str) -> Outcome:
    try:
        data = normalize(payload, region=region)
        changes = storable(data).changes
    except InvalidRecord as exc:
        return Outcome(None, exc.reason, exc.detail)
    except Exception as exc:  # a payload no rule foresaw: kept in quarantine, with what it raised
        return Outcome(None, NORMALIZER_ERROR, f"{type(exc).__name__}: {exc}"[:500])
    if changes:
        return Outcome(None, NORMALIZER_ERROR, f"the canonical record holds what the store cannot keep: {', '.join(changes)}")
    return Outcome(data)


def exit_with_parent() -> None:
    """A worker's initializer: exit when the process that started it is gone (a run killed with
    SIGKILL leaves no idle workers behind)."""
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (wait([parent.sentinel]), os._exit(0)), daemon=True).start()
