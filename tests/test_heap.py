"""The bulk steps keep the garbage collector off what was alive before them, and give it back after.

Checked by the collector itself: a callback notes how many objects were set
aside (`gc.get_freeze_count()`) at every collection the step triggers, with
the threshold lowered so that a small step triggers many.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest

from pipelines.state import StateStore
from pipelines.steps.heap import long_lived_set_aside
from pipelines.steps.ingest import ingest
from pipelines.steps.normalize import normalize_pending
from pipelines.steps.persons import rebuild_persons
from pipelines.steps.sync import SyncStats, run


@contextmanager
def collections() -> Iterator[list[int]]:
    """The freeze count at each collection within (the threshold lowered to 500, counted from zero)."""
    seen: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(gc.get_freeze_count())

    threshold = gc.get_threshold()
    gc.collect()
    gc.set_threshold(500, 1, 1)
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*threshold)


def test_what_was_alive_is_set_aside_within_and_given_back_after() -> None:
    assert gc.get_freeze_count() == 0
    with collections() as seen, long_lived_set_aside():
        inside = gc.get_freeze_count()
        with long_lived_set_aside():
            [[] for _ in range(2000)]  # enough new containers to start collections
        assert gc.get_freeze_count() == inside  # the inner one leaves the outer's freeze in place
    assert inside > 1000 and gc.get_freeze_count() == 0
    with collections() as after:
        [[] for _ in range(2000)]
    assert seen and min(seen) == inside and after and max(after) == 0


def test_someone_elses_freeze_is_left_as_it_is() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with long_lived_set_aside():
            pass
        assert gc.get_freeze_count() >= before > 0
    finally:
        gc.unfreeze()


def _pages() -> list[list[dict]]:
    return [[{"id": f"cust_{i}", "email": f"p{i}@example.com", "name": f"Pat Number{i}",
              "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-02T00:00:00Z"}
             for i in range(page * 50, page * 50 + 50)] for page in range(4)]


@pytest.mark.parametrize("step", ["normalize", "persons", "push chunks"])
def test_every_bulk_step_runs_with_the_long_lived_set_aside(tmp_path, step: str) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    ingest(store, "agentclara", "contacts", _pages())
    kept: list[list] = []
    steps: dict[str, Callable[[], object]] = {
        "normalize": lambda: normalize_pending(store, "agentclara", "contacts"),
        "persons": lambda: rebuild_persons(store),
        "push chunks": lambda: run(SyncStats("hubspot"), ([[] for _ in range(100)] for _ in range(20)), kept.append),
    }
    if step != "normalize":
        normalize_pending(store, "agentclara", "contacts")
    with collections() as seen:
        steps[step]()
    store.dispose()
    assert seen, "the step started no collection: the test proves nothing"
    assert min(seen) > 1000, "a collection inside the step walked what was alive before it"
    assert gc.get_freeze_count() == 0
