"""Send each CRM only the persons whose mapped properties changed.

The hash is taken over what the sink would write (its mapping), per target,
so a mapping change resends what it affects and nothing else; targets keep
separate state, so turning a second CRM on later sends it everything and the
first one nothing new.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConnectorError, QuotaExhausted
from connectors.sink import ContactSink, SyncOutcome
from pipelines.state import StateStore
from schemas.hashing import content_hash

OBJECT_TYPE = "contact"
CHUNK = 1000

log = logging.getLogger(__name__)


@dataclass
class PushStats:
    target: str
    dry_run: bool = False
    considered: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    waiting_for_change: int = 0
    stopped: str | None = None
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        verb = "would be " if self.dry_run else ""
        return {
            "dry run": self.dry_run,
            f"{verb}created": self.created,
            f"{verb}updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "failed earlier, waiting for a data change": self.waiting_for_change,
            "errors by code": dict(self.errors),
            "stopped early": self.stopped or "no",
            "seconds": round(self.seconds, 2),
        }


def push_persons(store: StateStore, sink: ContactSink, *, dry_run: bool = False) -> PushStats:
    """Diff every person against the target's sync state and upsert the changed ones."""
    stats = PushStats(sink.target, dry_run=dry_run)
    started = time.monotonic()
    sink.prepare()
    try:
        for chunk in store.iter_persons(batch=CHUNK):
            _push_chunk(store, sink, chunk, stats, dry_run)
    except QuotaExhausted as exc:
        stats.stopped = str(exc)
    stats.seconds = time.monotonic() - started
    return stats


def _push_chunk(
    store: StateStore,
    sink: ContactSink,
    chunk: list[tuple[str, dict[str, Any]]],
    stats: PushStats,
    dry_run: bool,
) -> None:
    hashes = {key: content_hash(sink.properties(person)) for key, person in chunk}
    states = store.sync_rows(sink.target, OBJECT_TYPE, list(hashes))
    todo: list[dict[str, Any]] = []
    for key, person in chunk:
        stats.considered += 1
        state = states.get(key)
        if state and state.last_hash == hashes[key]:
            stats.unchanged += 1
        elif state and state.error_permanent and state.failed_hash == hashes[key]:
            stats.waiting_for_change += 1
        else:
            todo.append(person)
    if not todo:
        return
    if dry_run:
        for person in todo:
            state = states.get(person["person_key"])
            if state and state.crm_id:
                stats.updated += 1
            else:
                stats.created += 1
        return
    recorded: set[str] = set()

    def record_batch(outcomes: list[SyncOutcome]) -> None:
        fresh = [o for o in outcomes if o.key not in recorded]
        recorded.update(o.key for o in fresh)
        _record(store, sink.target, fresh, hashes, stats)

    # A re-keyed person is written onto the CRM record it was synced as (by id), not upserted by its new key.
    moved: list[tuple[dict[str, Any], str]] = []
    rest: list[dict[str, Any]] = []
    for person in todo:
        state = states.get(person["person_key"])
        if state and state.moved_from and state.crm_id:
            moved.append((person, state.crm_id))
        else:
            rest.append(person)
    try:
        if moved:
            record_batch(sink.move(moved, on_batch=record_batch))
        record_batch(sink.upsert(rest, on_batch=record_batch))
    except ConnectorError as exc:
        # Keep whatever the sink finished before it had to stop, then stop.
        record_batch(getattr(exc, "outcomes", []))
        raise


def _record(
    store: StateStore,
    target: str,
    outcomes: list[SyncOutcome],
    hashes: dict[str, str],
    stats: PushStats,
) -> None:
    for outcome in outcomes:
        if not outcome.ok:
            stats.failed += 1
            stats.errors[outcome.error_code or "ERROR"] += 1
        elif outcome.created:
            stats.created += 1
        else:
            stats.updated += 1
    store.record_sync(
        target,
        OBJECT_TYPE,
        [
            (o.key, hashes[o.key], o.ok, o.crm_id, o.error, o.error_code, o.permanent)
            for o in outcomes
        ],
    )
